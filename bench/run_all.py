"""Every bench, one after another, and one summary table of their headline figures.

Each bench runs in its own process with the arguments of the chosen size and a time limit; its last
line must be JSON (the benches' convention), from which the table takes a few figures. With `--small`
every bench runs at a size that only shows it still works (what `.ci/run` does: the scripts complete
and their JSON parses; nothing is timed against a goal there). Without it each bench runs at its own
default size, as its docstring describes (tens of minutes in all on this 2-core machine).

    .venv/bin/python bench/run_all.py [--small] [--only reports,dashboard]

Prints one line per bench as it finishes, then the table; the last line is JSON:
{"small": bool, "ok": bool, "benches": {name: {"ok", "seconds", "figures", "error"}}}. Exits 1 when a
bench failed, ran out of time or printed no JSON.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Bench:
    name: str
    script: str
    small: tuple[str, ...]  # arguments for --small
    figures: tuple[str, ...]  # keys of its last-line JSON shown in the table (dotted for nested keys)
    limit_s: int = 1800  # at its default size
    small_limit_s: int = 300


BENCHES = (
    Bench(
        "reports",
        "reports.py",
        ("--conversations", "500"),
        ("conversations", "report_30d_s", "report_90d_s", "queries_30d", "queries_90d", "export_peak_rss_mb"),
        limit_s=7200,
    ),
    Bench("dashboard", "dashboard.py", ("--sizes", "100,1000", "--repeat", "2"), ("goals",)),
    Bench("memory", "memory.py", ("--sizes", "1000", "--drafts", "5"), ("goals",)),
    Bench(
        "time_to_draft",
        "time_to_draft.py",
        ("--messages", "5"),
        ("embedded.p50_s", "embedded.p99_s", "postgres_redis.p50_s", "postgres_redis.p99_s"),
    ),
    Bench(
        "generation",
        "generation.py",
        ("--requests", "4", "--new-tokens", "8", "--rounds", "1"),
        ("naive_tok_s", "batched_tok_s", "library_tok_s", "ratio", "batched_over_library", "identical"),
    ),
    Bench(
        "live_path",
        "live_path.py",
        ("--customers", "1", "--seconds", "2"),
        ("runs.1.ratios",),
    ),
    Bench(
        "soak",
        "soak.py",
        ("--customers", "6", "--agents", "2", "--seconds", "5"),
        ("invariants_hold", "counts.lost_acked_messages", "counts.undelivered_replies"),
    ),
)


def figure(result: dict[str, Any], key: str) -> Any:
    """`result[key]`, following dots into nested objects; None where it is missing."""
    value: Any = result
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def run(bench: Bench, *, small: bool) -> dict[str, Any]:
    """Run one bench; {"ok", "seconds", "figures", "error"}."""
    argv = [sys.executable, str(ROOT / "bench" / bench.script), *(bench.small if small else ())]
    started = time.perf_counter()
    try:
        done = subprocess.run(
            argv,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=bench.small_limit_s if small else bench.limit_s,
        )
    except subprocess.TimeoutExpired:
        return {"ok": False, "seconds": round(time.perf_counter() - started, 1), "figures": {}, "error": "time-out"}
    seconds = round(time.perf_counter() - started, 1)
    lines = done.stdout.strip().splitlines()
    try:
        result = json.loads(lines[-1]) if lines else None
    except json.JSONDecodeError:
        result = None
    if done.returncode != 0 or not isinstance(result, dict):
        tail = (done.stderr.strip().splitlines() or lines or ["no output"])[-1]
        return {"ok": False, "seconds": seconds, "figures": {}, "error": f"exit {done.returncode}: {tail[:300]}"}
    return {"ok": True, "seconds": seconds, "figures": {k: figure(result, k) for k in bench.figures}, "error": ""}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="every bench at a size that only checks it works")
    parser.add_argument("--only", default="", help="comma-separated bench names (default: all)")
    args = parser.parse_args()
    names = [n for n in args.only.split(",") if n]
    unknown = set(names) - {b.name for b in BENCHES}
    if unknown:
        parser.error(f"unknown bench {', '.join(sorted(unknown))}; choose from {', '.join(b.name for b in BENCHES)}")
    chosen = [b for b in BENCHES if not names or b.name in names]
    results: dict[str, dict[str, Any]] = {}
    for bench in chosen:
        results[bench.name] = run(bench, small=args.small)
        state = "ok" if results[bench.name]["ok"] else f"FAILED ({results[bench.name]['error']})"
        print(f"{bench.name}: {state} in {results[bench.name]['seconds']} s", file=sys.stderr, flush=True)
    width = max(len(b.name) for b in chosen)
    print(f"{'bench':<{width}}  {'ok':<3} {'seconds':>8}  figures")
    for bench in chosen:
        found = results[bench.name]
        shown = ", ".join(f"{k}={json.dumps(v)}" for k, v in found["figures"].items()) or found["error"]
        print(f"{bench.name:<{width}}  {'yes' if found['ok'] else 'NO':<3} {found['seconds']:>8}  {shown}")
    ok = all(r["ok"] for r in results.values())
    print(json.dumps({"small": args.small, "ok": ok, "benches": results}))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
