"""Write small subsets of BANKING77 and CLINC150 for comparing sentence encoders quickly with evaluate_drafts.

    .venv/bin/python bench/encoder_subsets.py OUT_DIR [--data ../shared/data]

OUT_DIR/banking77_small_train.csv, banking77_small_test.csv   10 and 5 examples per intent of train.csv (seed 0)
OUT_DIR/clinc150_small_train.json                            10 per intent of train.json, 20 of its out-of-scope
OUT_DIR/clinc150_small_test.json                             4 per intent of val.json, 30 of its out-of-scope

Then, once per encoder (docs/architecture.md, "Languages and the sentence encoder"):
    SENTENCE_ENCODER=… CLASSIFIER_ENCODER=shared manage.py evaluate_drafts --format banking77 \\
        --train OUT_DIR/banking77_small_train.csv --test OUT_DIR/banking77_small_test.csv --json
"""

from __future__ import annotations

import argparse
import csv
import json
import random
from collections import defaultdict
from pathlib import Path

SEED = 0
Row = tuple[str, str]  # (text, label)


def per_label(rows: list[Row], train: int, test: int) -> tuple[list[Row], list[Row]]:
    """`train` then `test` (text, label) rows of each label, drawn at random (seed 0), labels in sorted order."""
    by_label: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        by_label[row[1]].append(row)
    rng = random.Random(SEED)
    chosen_train, chosen_test = [], []
    for label in sorted(by_label):
        drawn = rng.sample(by_label[label], min(train + test, len(by_label[label])))
        chosen_train += drawn[:train]
        chosen_test += drawn[train:]
    return chosen_train, chosen_test


def write_csv(path: Path, rows: list[Row]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "category"])
        writer.writerows(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    with open(args.data / "banking77" / "train.csv", newline="", encoding="utf-8") as handle:
        banking = [(row["text"], row["category"]) for row in csv.DictReader(handle)]
    train, test = per_label(banking, 10, 5)
    write_csv(args.out / "banking77_small_train.csv", train)
    write_csv(args.out / "banking77_small_test.csv", test)

    clinc_train = json.loads((args.data / "clinc150" / "train.json").read_text(encoding="utf-8"))
    clinc_val = json.loads((args.data / "clinc150" / "val.json").read_text(encoding="utf-8"))
    rng = random.Random(SEED)
    small_train = {
        "in_scope": [list(row) for row in per_label([tuple(r) for r in clinc_train["in_scope"]], 10, 0)[0]],
        "out_of_scope": rng.sample(clinc_train["out_of_scope"], 20),
    }
    small_test = {
        "in_scope": [list(row) for row in per_label([tuple(r) for r in clinc_val["in_scope"]], 4, 0)[0]],
        "out_of_scope": rng.sample(clinc_val["out_of_scope"], 30),
    }
    (args.out / "clinc150_small_train.json").write_text(json.dumps(small_train), encoding="utf-8")
    (args.out / "clinc150_small_test.json").write_text(json.dumps(small_test), encoding="utf-8")


if __name__ == "__main__":
    main()
