#!/usr/bin/env python3
"""Real and converter-made models, each run once the way a user would, with the verdict counted.

    python3 benchmarks/real_models.py [--board host] [--json benchmarks/results/real_models.json]
                                      [--models DIR_OR_FILE ...]

By default: every ``.tflite`` under ``../shared/models/real`` (made by others) and under
``tests/models/state`` (made here by TensorFlow's converter). Each model runs as
``edge-sdk run MODEL --board B --check`` in a process of its own (a crash cannot stop the
count), on the CLI's default input. Outcomes, from its exit code and its one-line message:

- ``match``: bit-exact (integer outputs) or within the float rule of the reference;
- ``refused``: exit 2 (the model) with the reason in one line; the reason is listed;
- ``wrong``: ``check failed`` (exit 7): a wrong answer, the defect this guards;
- ``no oracle``: the reference could not run the model (LiteRT rejects or crashes), so the
  outputs were written but not checked;
- ``other``: anything else (a crash, a toolchain error): listed with its message.

Counts are for one commit; run it on two to compare (the note of issue 32 does).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SETS = (ROOT.parent / "shared" / "models" / "real", ROOT / "tests" / "models" / "state")


def outcome(code: int, err: str) -> str:
    last = err.strip().splitlines()[-1] if err.strip() else ""
    if code == 0:
        return "no oracle" if "not checked" in err else "match"
    if code == 7 and "check failed" in last:
        return "wrong"
    if code == 8 or any(text in last for text in (
            "reference interpreter crashed", "reference interpreter failed", "cannot run")):
        return "no oracle"
    if code == 2:
        return "refused"
    return "other"


def models(paths: list[Path]) -> list[Path]:
    found: list[Path] = []
    for p in paths:
        found += sorted(p.rglob("*.tflite")) if p.is_dir() else [p] if p.exists() else []
    return found


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--board", default="host")
    ap.add_argument("--models", nargs="*", type=Path, default=list(DEFAULT_SETS))
    ap.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results" /
                    "real_models.json")
    ap.add_argument("--timeout", type=float, default=600)
    args = ap.parse_args(argv)

    rows = []
    for model in models(args.models):
        start = time.monotonic()
        try:
            done = subprocess.run(
                [sys.executable, "-m", "edge_sdk.cli", "run", str(model), "--board", args.board,
                 "--check"], capture_output=True, text=True, timeout=args.timeout, cwd=ROOT)
            code, err = done.returncode, done.stderr
        except subprocess.TimeoutExpired:
            code, err = -1, "timed out"
        verdict = outcome(code, err)
        last = err.strip().splitlines()[-1] if err.strip() else ""
        name = str(model.relative_to(model.parents[2]))
        rows.append({"model": name, "outcome": verdict, "exit": code,
                     "message": "" if verdict == "match" else last[:300],
                     "seconds": round(time.monotonic() - start, 1)})
        print(f"{verdict:9s} {name}" + (f"  -- {last[:140]}" if verdict != "match" else ""),
              flush=True)
    counts = Counter(r["outcome"] for r in rows)
    print(f"\n{len(rows)} models on {args.board} ({platform.processor() or platform.machine()}): "
          + ", ".join(f"{k} {counts[k]}" for k in ("match", "refused", "no oracle", "wrong",
                                                      "other")))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"schema": "edge-sdk/1", "board": args.board,
                                     "counts": dict(counts), "models": rows}, indent=1) + "\n")
    return 1 if counts["wrong"] or counts["other"] else 0


if __name__ == "__main__":
    sys.exit(main())
