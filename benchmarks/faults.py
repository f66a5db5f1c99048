#!/usr/bin/env python3
"""The serial link under wire faults: fault rate x inferences -> succeeded, clean errors, wrong,
hung, the time one inference takes, and the longest any one command took over its base time
(--timeout; RUN: --timeout + --run-timeout), which the client bounds at 2.0.

    python3 benchmarks/faults.py [--models fc,kws_ref_model] [--rates 0,1e-4,1e-3,1e-2]
                                 [--count 100] [--board mps2-an386]
                                 [--json benchmarks/results/faults.json]

How it is measured: each model is compiled for the board and its firmware built by the SDK (no
demo), QEMU runs it, and a TCP proxy (``tests/faultproxy.py``) between QEMU's UART socket and
the SDK's serial client drops each byte with probability RATE and changes it with probability
RATE, both directions (so about 2 x RATE of the bytes are faulty). Each inference is one
write_input, run and read_output through the client that `edge-sdk run` uses, with a per-try
timeout of 0.5 s (2 s for RUN) and 3 tries per command. Its output is compared with LiteRT's
reference kernels. "hung" is an inference past the bound the client's own deadlines give (the
run of that rate stops there). "fc" is the test suite's two-layer fully-connected model (48
bytes in, 14 out); the others are ../shared/models/mlperf_tiny/NAME.tflite.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import edge_sdk  # noqa: E402
from edge_sdk.project.boards import get_board  # noqa: E402
from edge_sdk.project.build import build_project  # noqa: E402
from edge_sdk.project.generate import generate_project  # noqa: E402
from tests.conftest import random_inputs, reference  # noqa: E402
from tests.faultproxy import measure_link  # noqa: E402

SHARED = ROOT.parent / "shared" / "models" / "mlperf_tiny"


def model_file(name: str, tmp: Path) -> Path:
    if name == "fc":
        from tests.test_ops import CASES

        path = tmp / "fc.tflite"
        path.write_bytes(CASES["fc_batch2"]())
        return path
    return SHARED / f"{name}.tflite"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="fc,kws_ref_model")
    parser.add_argument("--rates", default="0,1e-4,1e-3,1e-2")
    parser.add_argument("--count", type=int, default=100, help="inferences per rate (100)")
    parser.add_argument("--board", default="mps2-an386")
    parser.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "faults.json"))
    args = parser.parse_args()
    board = get_board(args.board)
    rates = [float(r) for r in args.rates.split(",")]
    rows = []
    print(f"{'model':<16} {'rate':>7} {'ok':>5} {'errors':>6} {'wrong':>5} {'hung':>4} "
          f"{'faults':>6} {'median s':>8} {'max s':>6} {'worst cmd/timeout':>17}")
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        for name in args.models.split(","):
            path = model_file(name, tmp)
            graph = edge_sdk.load(path)
            compiled = edge_sdk.api.compile_for(graph, board)
            generate_project(compiled, board, tmp / name, demo=False)
            elf = build_project(tmp / name, board, compiled.name).executable
            shape = tuple(graph.tensor(graph.inputs[0]).shape)
            for k, rate in enumerate(rates):
                xs = random_inputs(shape, args.count, seed=k)
                want = reference(path, xs)
                start = time.monotonic()
                fig = measure_link(board, elf, xs, want, rate, seed=k + 1)
                row = {"model": name, "board": board.name, **fig.as_dict(),
                       "wall_s": time.monotonic() - start}
                rows.append(row)
                print(f"{name:<16} {rate:>7.0e} {fig.succeeded:>5} {fig.clean_errors:>6} "
                      f"{fig.wrong:>5} {fig.hung:>4} {fig.faults:>6} {row['s_median']:>8.3f} "
                      f"{row['s_max']:>6.2f} {row['worst_command_over_timeout']:>17.2f}",
                      flush=True)
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"board": board.name, "count": args.count, "rows": rows},
                              indent=2) + "\n")
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
