"""`edge-sdk tune`: time each layer's candidate schedules on the target, keep the fastest.

For every convolution, depthwise convolution and fully-connected layer that the Linux CPU
kernels take, the candidates of :func:`edge_sdk.compiler.kernels.schedule.candidates` are each
lowered (same arithmetic, other layouts), compiled by TVM's LLVM backend for the board into one
object, and linked with a small generated C benchmark that calls each candidate on the layer's
real constants and random activations and prints the median time of each. The benchmark runs
where the model will: on this machine (natively, or under the board's qemu-user emulator, whose
timings mean nothing but exercise the path), or on the board over SSH. No TVM, Python or
compiler is needed there: the benchmark is one static executable plus a data file.

Records go to the tuning file after each layer, so an interrupted run resumes where it stopped;
layers already in the file (by :func:`~edge_sdk.compiler.kernels.schedule.layer_key`) are
skipped.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np

from edge_sdk.compiler.fold import fold_constants
from edge_sdk.compiler.kernels.schedule import (
    TUNABLE,
    Schedule,
    Tuning,
    candidates,
    layer_key,
)
from edge_sdk.compiler.lower import is_float_op
from edge_sdk.compiler.program import Constant, Program, Scratch, Step, TensorArg
from edge_sdk.compiler.target import Target as KernelTarget
from edge_sdk.errors import ToolchainError, UsageError
from edge_sdk.files import write_atomic
from edge_sdk.ir import Graph, Operator
from edge_sdk.project.boards import Board


def tunable_layers(graph: Graph) -> list[Operator]:
    """The layers the Linux CPU kernels take (int8 or float32 CONV_2D, DEPTHWISE_CONV_2D,
    FULLY_CONNECTED)."""
    out = []
    for op in graph.operators:
        if op.opcode not in TUNABLE:
            continue
        dtypes = {graph.tensor(op.inputs[0]).dtype, graph.tensor(op.outputs[0]).dtype}
        if dtypes == {"int8"} or is_float_op(op, graph):
            out.append(op)
    return out


def _lower_candidate(op: Operator, graph: Graph, isa: str, sched: Schedule,
                     name: str) -> Step | None:
    tuning = Tuning({layer_key(op, graph, isa): {"schedule": asdict(sched)}})
    key = f"float32:{op.opcode}" if is_float_op(op, graph) else op.opcode
    for lowering in KernelTarget(isa, tuning).variants(key):
        step = lowering(op, graph, name)
        if step is not None:
            return step
    return None


def _harness(graph: Graph, steps: list[Step]) -> tuple[str, bytes]:
    """The benchmark's C source and its data file (each candidate's arguments, in order)."""
    from edge_sdk.codegen.tvm_c import _declaration

    data = bytearray()
    lines = ['#define _POSIX_C_SOURCE 200112L', "#include <stdint.h>", "#include <stdio.h>",
             "#include <stdlib.h>", "#include <string.h>", "#include <time.h>", ""]
    lines += ["void " + _declaration(s)[len("static void "):].rstrip(" {") + ";" for s in steps]
    lines += ["", "static uint64_t now_ns(void) {", "  struct timespec t;",
              "  clock_gettime(CLOCK_MONOTONIC, &t);",
              "  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;", "}",
              "static int by_value(const void *a, const void *b) {",
              "  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;",
              "  return (x > y) - (x < y);", "}",
              "static void *take(FILE *f, size_t bytes) {",
              "  void *p = NULL;",
              "  if (posix_memalign(&p, 64, bytes + 64) != 0) exit(3);",
              "  if (fread(p, 1, bytes, f) != bytes) exit(4);",
              "  return p;", "}", "",
              "int main(int argc, char **argv) {",
              "  if (argc < 3) return 2;",
              "  FILE *f = fopen(argv[1], \"rb\");",
              "  if (!f) return 2;",
              "  long runs = strtol(argv[2], NULL, 10);",
              f"  uint64_t *t = malloc(sizeof(uint64_t) * (size_t)(runs + 1) * {len(steps)});",
              "  if (!t || runs < 1) return 2;"]
    rng = np.random.default_rng(0)
    calls: list[list[str]] = []
    for k, step in enumerate(steps):
        args = []
        for j, a in enumerate(step.args):
            if isinstance(a, Constant):
                blob = a.array.tobytes()
            elif isinstance(a, TensorArg):
                t = graph.tensor(a.tensor)
                blob = (rng.integers(-128, 128, t.nbytes, dtype=np.int8).tobytes()
                        if t.dtype != "float32"
                        else rng.uniform(-1, 1, t.size).astype(np.float32).tobytes())
            else:
                assert isinstance(a, Scratch)
                blob = bytes(a.nbytes)
            data += blob
            lines.append(f"  void *a{k}_{j} = take(f, {len(blob)});")
            args.append(f"a{k}_{j}")
        calls.append([f"{step.func_name}({', '.join(args)}, {phase}, 0, {rows});"
                      for phase, rows in enumerate(step.row_phases)]
                     if step.row_phases else [f"{step.func_name}({', '.join(args)});"])
    # Candidates take turns, run by run, so a machine that slows down or speeds up over the
    # measurement (other load, clocks) shifts every candidate's median alike.
    lines += ["  for (long r = 0; r <= runs; ++r) {", "    uint64_t start;"]
    for k, cand in enumerate(calls):
        lines += ["    start = now_ns();", *(f"    {c}" for c in cand),
                  f"    t[{k} * (runs + 1) + r] = now_ns() - start;"]
    lines += ["  }", "  printf(\"{\");"]
    for k in range(len(calls)):
        separator = "" if k == 0 else ", "
        lines += [f"  qsort(t + {k} * (runs + 1) + 1, (size_t)runs, sizeof t[0], by_value);",
                  '  printf("' + separator + '\\"' + str(k) + '\\": %llu", '
                  f"(unsigned long long)t[{k} * (runs + 1) + 1 + runs / 2]);"]
    lines += ["  printf(\"}\\n\");", "  return 0;", "}", ""]
    return "\n".join(lines), bytes(data)


class Target:
    """Where the benchmarks run: this machine (with an optional emulator) or a board over
    SSH."""

    def __init__(self, board: Board, ssh=None, run_prefix: list[str] | None = None) -> None:
        self.board, self.ssh, self.prefix = board, ssh, run_prefix or []

    def run(self, bench: Path, data: Path, runs: int, remote_dir: str) -> str:
        if self.ssh is None:
            proc = subprocess.run([*self.prefix, str(bench), str(data), str(runs)],
                                  capture_output=True, text=True, timeout=3600)
            if proc.returncode:
                raise ToolchainError(f"the layer benchmark failed (exit {proc.returncode}): "
                                     f"{(proc.stderr or proc.stdout).strip()[-200:]}")
            return proc.stdout
        bundle = bench.parent / "bundle"
        bundle.mkdir(exist_ok=True)
        shutil.copy2(bench, bundle / "bench")
        shutil.copy2(data, bundle / "bench.bin")
        self.ssh.install_bundle(bundle, remote_dir)
        return self.ssh.run([*self.prefix, f"{remote_dir}/bench", f"{remote_dir}/bench.bin",
                             str(runs)], what="the layer benchmark")


def _build(graph: Graph, steps: list[Step], board: Board, work: Path) -> Path:
    from edge_sdk.codegen.llvm import build_kernel_object

    program = Program(name="tune", graph=graph, steps=steps, isa="")
    # Every candidate is the same layer (one op_index): name them all as distinct kernels.
    obj = build_kernel_object(program, {k: s.func_name for k, s in enumerate(steps)},
                              board.llvm_target, work / "kernels.o")
    source, data = _harness(graph, steps)
    (work / "bench.c").write_text(source, encoding="utf-8")
    (work / "bench.bin").write_bytes(data)
    if board.linux is None:
        raise UsageError(f"{board.name} is no Linux board: tune is for Linux CPU kernels")
    cc = board.linux["cross"] + "gcc"
    proc = subprocess.run([cc, "-O2", "-std=c99", "-static", str(work / "bench.c"), str(obj),
                           "-lm", "-o", str(work / "bench")], capture_output=True, text=True)
    if proc.returncode:
        raise ToolchainError(f"building the layer benchmark failed: "
                             f"{(proc.stderr or proc.stdout).strip().splitlines()[-1]}")
    return work / "bench"


def tune(graph: Graph, board: Board, isa: str, out: Path, target: Target,
         trials: int | None = None, runs: int = 20, remote_dir: str = "edge-sdk-tune",
         progress: Callable[[str], None] | None = None) -> Tuning:
    """Tune every tunable layer of ``graph`` not yet in ``out`` and return all records;
    ``progress`` gets a line before and after each layer (they take seconds each)."""
    graph = fold_constants(graph)
    tuning = Tuning.load(out) if out.exists() else Tuning(board=board.name, isa=isa)
    if tuning.isa and tuning.isa != isa:
        raise UsageError(f"{out} holds schedules for kernel set {tuning.isa}, not {isa} "
                         f"({board.name}): use another --output file")
    tuning.board, tuning.isa = tuning.board or board.name, isa
    layers: dict[str, Operator] = {}
    for op in tunable_layers(graph):
        layers.setdefault(layer_key(op, graph, isa), op)
    todo = [(key, op) for key, op in layers.items() if key not in tuning.records]
    from edge_sdk.compiler.kernels.cpu import DOT_STEPS

    width = DOT_STEPS[isa].width
    say = progress or (lambda line: None)
    say(f"tuning {len(todo)} layer(s) of {graph.name} for {board.name} ({isa})"
        + (f"; {len(layers) - len(todo)} already in {out}" if len(layers) > len(todo) else ""))
    for done, (key, op) in enumerate(todo):
        started = time.monotonic()
        channels = graph.tensor(op.outputs[0]).shape[-1]
        width_here = 1 if is_float_op(op, graph) or op.opcode == "DEPTHWISE_CONV_2D" else width
        cands = candidates(op.opcode, channels, width_here)[: trials or None]
        steps, kept = [], []
        for k, sched in enumerate(cands):
            step = _lower_candidate(op, graph, isa, sched, f"tune_l{op.index}_c{k}")
            if step is not None:
                steps.append(step)
                kept.append(sched)
        if not steps:
            continue
        say(f"layer {done + 1}/{len(todo)}: {op.opcode} (operator {op.index}): building and "
            f"timing {len(steps)} schedule(s), {runs} runs each")
        with tempfile.TemporaryDirectory(prefix="edge-sdk-tune-") as tmp:
            bench = _build(graph, steps, board, Path(tmp))
            stdout = target.run(bench, Path(tmp) / "bench.bin", runs, remote_dir)
        try:
            times = {int(k): float(v) for k, v in json.loads(stdout.strip().splitlines()[-1])
                     .items()}
        except (ValueError, IndexError):
            raise ToolchainError(f"the layer benchmark printed no timings: {stdout[-200:]!r}"
                                 ) from None
        best = min(times, key=lambda k: times[k])
        tuning.record(key, kept[best], {json.dumps(asdict(s)): times[k]
                                        for k, s in enumerate(kept)}, times[0])
        # After every layer: an interrupted run keeps what it measured.
        write_atomic(out, tuning.to_json().encode())
        say(f"layer {done + 1}/{len(todo)}: fastest {times[best]:,.0f} ns against the "
            f"default's {times[0]:,.0f} ns ({times[0] / max(times[best], 1e-9):.2f}x), "
            f"{time.monotonic() - started:.1f} s")
    if not out.exists():
        write_atomic(out, tuning.to_json().encode())
    return tuning
