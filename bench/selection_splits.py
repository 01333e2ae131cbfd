"""Write the held-back splits the selection figures in the issues were measured on (nothing else is held back).

    .venv/bin/python bench/selection_splits.py OUT_DIR [--data ../shared/data]

OUT_DIR/banking77_train.csv, banking77_test.csv   stratified 80/20 of BANKING77 train.csv (seed 0)
OUT_DIR/banking77_train10.csv                    10 examples per intent from the 80 % part (seed 0)
OUT_DIR/clinc150_valA.json, clinc150_valB.json   CLINC150 val.json halved (seed 0): A chooses thresholds, B scores

Then, for example:
    manage.py evaluate_drafts --format banking77 --train OUT_DIR/banking77_train.csv --test OUT_DIR/banking77_test.csv
    manage.py evaluate_drafts --format clinc150 --train ../shared/data/clinc150/train.json \\
        --val OUT_DIR/clinc150_valA.json --test OUT_DIR/clinc150_valB.json
"""

from __future__ import annotations

import argparse
import csv
import json
import random
from pathlib import Path

FIELDS = ["text", "category"]


def write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    with open(args.data / "banking77" / "train.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    rng = random.Random(0)
    by_intent: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        by_intent.setdefault(row["category"], []).append(row)
    train, test, ten_shot = [], [], []
    for _intent, members in by_intent.items():
        rng.shuffle(members)
        cut = round(len(members) * 0.2)
        test += members[:cut]
        train += members[cut:]
    for _intent, members in sorted(by_intent.items()):
        kept = [m for m in members if m in train]
        rng.shuffle(kept)
        ten_shot += kept[:10]
    write_csv(args.out / "banking77_train.csv", train)
    write_csv(args.out / "banking77_test.csv", test)
    write_csv(args.out / "banking77_train10.csv", ten_shot)

    validation = json.loads((args.data / "clinc150" / "val.json").read_text(encoding="utf-8"))
    rng = random.Random(0)
    in_scope, out_of_scope = list(validation["in_scope"]), list(validation["out_of_scope"])
    rng.shuffle(in_scope)
    rng.shuffle(out_of_scope)
    halves = {
        "A": {"in_scope": in_scope[: len(in_scope) // 2], "out_of_scope": out_of_scope[: len(out_of_scope) // 2]},
        "B": {"in_scope": in_scope[len(in_scope) // 2 :], "out_of_scope": out_of_scope[len(out_of_scope) // 2 :]},
    }
    for name, half in halves.items():
        (args.out / f"clinc150_val{name}.json").write_text(json.dumps(half), encoding="utf-8")
    print(f"{len(train)} / {len(test)} BANKING77 train/test, {len(ten_shot)} ten-shot; CLINC150 val halves written")


if __name__ == "__main__":
    main()
