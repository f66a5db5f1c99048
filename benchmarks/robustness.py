#!/usr/bin/env python3
"""How edge-sdk takes broken models: structured mutants of real models, LiteRT's verdict beside
ours, counted.

    python3 benchmarks/robustness.py [--count 3200] [--models kws_ref_model,vww_96_int8]
                                      [--run 20] [--json benchmarks/robustness.json]
    python3 benchmarks/robustness.py --onnx 1100 [--run 40]

``--onnx N``: N protobuf-level mutants of a small PyTorch-style ONNX classifier
(``tests/onnx_mutants.py``; several random-weight copies), onnxruntime's verdict beside ours;
``wrong`` is then an output outside the ``--check`` float rule (rtol 1e-4).

For each mutant (see ``tests/mutants.py``): LiteRT (reference kernels) loads and runs it, or
rejects it; edge-sdk loads and compiles it (plain C for the host), or refuses it with an
``EdgeSDKError``. Outcomes:

- ``both refuse``: right.
- ``compiled, LiteRT rejects``: a defect (a broken model turned into code).
- ``traceback``: a defect (anything but an ``EdgeSDKError`` escaped).
- ``both accept``: with ``--run N``, the first N such mutants are built and run on the host and
  their outputs compared with LiteRT's bit for bit (``wrong`` counts those that differ).
- ``we refuse, LiteRT runs``: stricter than LiteRT (scale 0, a zero point out of range...);
  listed so the reasons can be read.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
SHARED = ROOT.parent / "shared" / "models" / "mlperf_tiny"


def measure(path: Path, count: int, run: int, seed: int) -> dict:
    from ai_edge_litert.interpreter import Interpreter
    from mutants import litert_verdict, mutants

    raw = path.read_bytes()
    it = Interpreter(model_path=str(path))
    d = it.get_input_details()[0]
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, size=tuple(d["shape"]), dtype=np.int8).astype(d["dtype"])
    cases = mutants(raw, count, seed=seed)
    outcomes: Counter = Counter()
    examples: dict[str, list[str]] = {}
    ran = 0
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="edge-sdk-robust-") as tmp:
        for i, m in enumerate(cases):
            verdict = litert_verdict(m.raw, [x])
            run_it = verdict.accepted and ran < run
            outcome, detail = classify(m.raw, verdict, x, run_it, Path(tmp) / str(i))
            ran += run_it
            outcomes[outcome] += 1
            examples.setdefault(outcome, [])
            if len(examples[outcome]) < 8:
                examples[outcome].append(f"{m.what}: {detail}")
    return {"model": path.name, "mutants": count, "seconds": round(time.perf_counter() - start, 1),
            "outcomes": dict(outcomes), "examples": examples}


def classify(raw: bytes, verdict, x: np.ndarray, run_it: bool, workdir: Path
                        ) -> tuple[str, str]:
    import edge_sdk
    from edge_sdk.errors import EdgeSDKError
    from edge_sdk.frontend.tflite import parse
    from edge_sdk.pipeline import compile_graph

    try:
        graph = parse(raw, name="mutant")
        compile_graph(graph)
    except EdgeSDKError as err:
        msg = str(err)
        if "\n" in msg:
            return "traceback", f"a message of several lines: {msg[:120]!r}"
        return ("both refuse" if not verdict.accepted else "we refuse, LiteRT runs"), msg
    except Exception as err:
        return "traceback", f"{type(err).__name__}: {str(err)[:160]}"
    if not verdict.accepted:
        return "compiled, LiteRT rejects", verdict.error
    if not run_it:
        return "both accept", ""
    try:
        got = edge_sdk.run(graph, board="host", inputs=x, workdir=workdir).outputs
    except EdgeSDKError as err:
        return "we refuse, LiteRT runs", f"at run: {err}"
    except Exception as err:
        return "traceback", f"at run: {type(err).__name__}: {str(err)[:160]}"
    want = verdict.outputs[0]
    same = got.size == want.size and np.array_equal(got.reshape(want.shape), want)
    return ("both accept, same output" if same else "wrong"), ""


def measure_onnx(count: int, run: int, seed: int) -> dict:
    from onnx_mutants import onnx_mutants, ort_verdict, sample_model
    from test_mutants import input_for

    import edge_sdk
    from edge_sdk.errors import EdgeSDKError
    from edge_sdk.validate import compare

    per_model = 200
    outcomes: Counter = Counter()
    examples: dict[str, list[str]] = {}
    ran = 0
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="edge-sdk-robust-onnx-") as tmp:
        for k in range(-(-count // per_model)):
            base = sample_model(seed + k)
            x = np.random.default_rng(seed + k).normal(0, 1, (1, 3, 8, 8)).astype(np.float32)
            for i, m in enumerate(onnx_mutants(base, min(per_model, count - k * per_model),
                                               seed=seed + k)):
                path = Path(tmp) / f"m{k}_{i}.onnx"
                path.write_bytes(m.raw)
                feed = input_for(m.raw, x)
                if feed is None:  # a (valid) input too large to feed: nothing to compare with
                    outcomes["input too large to feed, not compared"] += 1
                    path.unlink()
                    continue
                verdict = ort_verdict(m.raw, [feed])
                detail = ""
                try:
                    graph = edge_sdk.load(path)
                    edge_sdk.compile(graph)
                    if not verdict.accepted:
                        outcome, detail = "compiled, onnxruntime refuses", verdict.error
                    elif ran < run:
                        ran += 1
                        got = edge_sdk.run(graph, board="host", inputs=feed).output_list
                        same = all(compare(g, w[None], rtol=1e-4)["match"]
                                   for g, w in zip(got, verdict.outputs, strict=True))
                        outcome = "both accept, same output" if same else "wrong"
                    else:
                        outcome = "both accept"
                except EdgeSDKError as err:
                    detail = str(err)
                    outcome = ("traceback" if "\n" in detail else "both refuse"
                               if not verdict.accepted else "we refuse, onnxruntime runs")
                except Exception as err:
                    outcome, detail = "traceback", f"{type(err).__name__}: {str(err)[:160]}"
                path.unlink()
                outcomes[outcome] += 1
                examples.setdefault(outcome, [])
                if len(examples[outcome]) < 8:
                    examples[outcome].append(f"{m.what}: {detail[:200]}")
    return {"model": "sample ONNX classifier (opset 17)", "mutants": count,
            "seconds": round(time.perf_counter() - start, 1), "outcomes": dict(outcomes),
            "examples": examples}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1600, help="mutants per model (default 1600)")
    parser.add_argument("--models", default="kws_ref_model,vww_96_int8",
                        help="MLPerf Tiny int8 models in ../shared "
                             "(default kws_ref_model,vww_96_int8)")
    parser.add_argument("--run", type=int, default=20,
                        help="mutants LiteRT accepts to build and run on the host (default 20)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--onnx", type=int, default=0,
                        help="ONNX mutants instead of TFLite ones (onnxruntime the oracle)")
    parser.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "robustness.json"))
    args = parser.parse_args()
    results = []
    if args.onnx:
        results.append(measure_onnx(args.onnx, args.run, args.seed))
    for name in ([] if args.onnx else args.models.split(",")):
        path = SHARED / f"{name}.tflite"
        if not path.exists():
            print(f"{path} is absent: the MLPerf Tiny models live in ../shared", file=sys.stderr)
            return 1
        results.append(measure(path, args.count, args.run, args.seed))
    kinds = sorted({k for r in results for k in r["outcomes"]})
    print(f"| model | mutants | {' | '.join(kinds)} | s |")
    print("|---|---:|" + "---:|" * len(kinds) + "---:|")
    for r in results:
        cells = " | ".join(str(r["outcomes"].get(k, 0)) for k in kinds)
        print(f"| {r['model']} | {r['mutants']} | {cells} | {r['seconds']} |")
    for r in results:
        for outcome, lines in r["examples"].items():
            if outcome in ("both accept", "both accept, same output"):
                continue
            print(f"\n{r['model']}, {outcome}:")
            for line in lines:
                print(f"  {line}")
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
