"""``edge-sdk`` command line. Every error becomes one line on stderr and a non-zero exit."""

from __future__ import annotations

import argparse
import codecs
import contextlib
import errno
import functools
import io
import json
import math
import os
import shlex
import signal
import sys
import threading
from pathlib import Path
from typing import NoReturn

import numpy as np

from edge_sdk import __version__, progress
from edge_sdk.device.timing import describe
from edge_sdk.errors import EdgeSDKError, UsageError, did_you_mean
from edge_sdk.files import json_text, write_atomic, write_json


def _load_npy(path: str) -> np.ndarray:
    """An ``.npy`` (or ``.npz``) file, refused in one line if it is not one, or if its header
    claims more data than the file holds (read before anything is allocated)."""
    if Path(path).is_dir():
        raise UsageError(f"input {path} is a directory: give an .npy or .npz file")
    if Path(path).exists() and not Path(path).is_file():  # a FIFO would block until written
        raise UsageError(f"input {path} is not a regular file (a pipe or a device): save the "
                         "inputs to an .npy or .npz file and give that")
    try:
        with open(path, "rb") as f:
            if f.read(6) == b"\x93NUMPY":
                f.seek(0)
                version = np.lib.format.read_magic(f)
                reader = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                          else np.lib.format.read_array_header_2_0)
                shape, _, dtype = reader(f)
                need = int(np.prod(shape, dtype=object)) * dtype.itemsize
                have = os.fstat(f.fileno()).st_size - f.tell()
                if need > have:
                    raise UsageError(f"input {path} claims {list(shape)} {dtype} values "
                                     f"({need} bytes) but holds {have} bytes: it is truncated "
                                     "or damaged")
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise UsageError(f"cannot read input {path}: {' '.join(str(err).split())}") from None


def _check_writable(path: str | None, what: str) -> None:
    """Before any work: the nearest existing folder on ``path``'s way must be a folder we may
    write in (missing folders below it are made when the result is written)."""
    if not path:
        return
    target = Path(path).absolute()
    ancestor = target.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise UsageError(f"{what} {path}: {ancestor} is a file, not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise UsageError(f"{what} {path}: cannot write in {ancestor} (permission denied)")
    if target.is_dir() and what in ("--output file", "--report"):
        raise UsageError(f"{what} {path} is a directory: give a file name")


def _load_inputs(path: str) -> np.ndarray | dict[str, np.ndarray]:
    """``.npy``: the one input; ``.npz``: keys ``input_0``, ``input_1``, ... (or tensor names)."""
    data = _load_npy(path)
    if isinstance(data, np.lib.npyio.NpzFile):
        with data:
            return {k: data[k] for k in data.files}
    return data


def _check_output_path(args: argparse.Namespace, graph) -> None:
    """Before any work: several outputs go to an ``.npz``, one to an ``.npy``."""
    path = getattr(args, "output", None)
    if graph is None or not path:
        return
    several = len(graph.outputs) > 1
    if several and not path.endswith(".npz"):
        raise UsageError(f"the model has {len(graph.outputs)} outputs: give --output a .npz "
                         "file (keys output_0, output_1, ...)")
    if not several and path.endswith(".npz"):
        raise UsageError("the model has one output: give --output a .npy file")


def _save_npy(path: str, data: np.ndarray | dict[str, np.ndarray]) -> None:
    """An ``.npy`` (one array) or ``.npz`` (several), written whole or not at all."""

    buf = io.BytesIO()
    if isinstance(data, dict):
        np.savez(buf, **data)
    else:
        np.save(buf, data)
    write_atomic(path, buf.getvalue())


def _save_results(args: argparse.Namespace, result) -> np.ndarray:
    """Write ``--output`` (``.npz`` with ``output_0``, ... for several outputs) and
    ``--report``. Shared by run, run-remote and deploy; returns the first output, for the
    summary line."""
    from edge_sdk.model_io import output_key

    outs = list(result.output_list)  # already shaped as the inputs were given
    if getattr(args, "output", None):
        _save_npy(args.output, outs[0] if len(outs) == 1 else {
            output_key(i): o for i, o in enumerate(outs)})
    if getattr(args, "report", None):
        write_json(args.report, result.report)
    return outs[0]


def cmd_compile(args: argparse.Namespace) -> int:
    from edge_sdk import api

    board = api.get_board(args.board)
    compiled = api.compile_for(args.model, board, prefer=args.prefer, tuning=args.tuning)
    out = api.write_compiled(compiled, args.output, board=args.board, force=args.force)
    if args.json:
        print(json_text({"output": str(out), **api.report(compiled, board)}))
        return 0
    if compiled.gpu is not None:
        rules = sorted(set(compiled.gpu.schedules.values()))
        print(f"{compiled.name}: {len(compiled.program.steps)} layers, "
              f"{len(compiled.gpu.device.launches)} GPU kernel launches "
              f"({compiled.gpu.target.summary}; schedules: {', '.join(rules)}), "
              f"weights {compiled.weights_bytes} B -> {out}")
        return 0
    print(f"{compiled.name}: {len(compiled.program.steps)} layers, arena "
          f"{compiled.memory.arena_bytes} B, weights {compiled.weights_bytes} B -> {out}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from edge_sdk import api
    from edge_sdk.model_io import default_inputs, quantize_inputs

    graph = api.load(args.model)
    _check_output_path(args, graph)
    x = _load_inputs(args.input) if args.input else None
    result = api.run(graph, board=args.board, inputs=x, workdir=args.workdir,
                     profile=args.profile, prefer=args.prefer, threads=args.threads,
                     tuning=args.tuning)
    unchecked = None
    if args.check:  # into the report first, so --report keeps the verdict
        from edge_sdk.validate import check_run

        arrays = default_inputs(graph) if x is None else quantize_inputs(graph, x)
        try:
            with progress.stage("checking the outputs against the reference interpreter"):
                result.report["check"] = check_run(graph, arrays, result.output_list)
        except EdgeSDKError as err:  # the oracle failed, not the run: keep what the run made
            result.report["check"] = {"match": None, "error": str(err)}
            unchecked = err
    out = _save_results(args, result)
    if unchecked is not None:
        raise unchecked
    if args.json:
        print(json_text(_json_result(result)))
        return 0
    timer = result.report.get("timer", {})
    print(f"{graph.name} on {args.board}: output {out.reshape(-1)[:16].tolist()}"
          f"{' ...' if out.size > 16 else ''}")
    rep = result.report
    size = (f"model flash {rep['flash_bytes']} B" if "flash_bytes" in rep
            else f"weights {rep['weights_bytes']} B")
    speed = describe(timer) if timer.get("per_inference") else (
        "not timed (an emulated run: its time says nothing about the board)")
    print(f"arena {rep['arena_bytes']} B, {size}, {speed}")
    if args.profile:
        print_profile(result.report)
    if args.check:
        _print_check(result.report["check"])
    return 0


# Outputs up to this many values go into --json output; larger ones only into --output files.
JSON_OUTPUT_VALUES = 4096


def _json_result(result) -> dict:
    """``run``/``run-remote --json``: the report, and the outputs when they are small."""
    outs = result.output_list
    if sum(o.size for o in outs) <= JSON_OUTPUT_VALUES:
        return {**result.report, "outputs": [o.tolist() for o in outs]}
    return {**result.report, "outputs": None,
            "outputs_note": f"more than {JSON_OUTPUT_VALUES} values: use --output FILE"}


def _print_check(check: dict) -> None:
    """One line with the verdict; a mismatch ends the command with exit code 7."""
    from edge_sdk.validate import CheckFailed

    if check["match"]:
        print(f"check: {check['rule']} against {check['reference']} "
              f"({check['elements']} output values)")
        return
    raise CheckFailed(f"check failed: {check['differing']} of {check['elements']} output values "
                      f"differ from {check['reference']} (largest error "
                      f"{check['max_abs_error']:g}); the outputs were still written. This is a "
                      "bug: please report it with the model (--report has the details)")


def print_profile(rep: dict) -> None:
    """The per-layer table of a profiled run (first inference), in the run's own unit."""
    first = rep["layers"][0]["measured"]
    unit = ("instructions" if "instructions" in first else "ns" if "latency_ns" in first
            else "cycles" if "cycles" in first else "ticks")
    key = {"ns": "latency_ns"}.get(unit, unit)
    total = sum(layer["measured"][key][0] for layer in rep["layers"]) or 1
    print(f"\n{'#':>4} {'op':<18}{'MACs':>11}{unit:>14}{'share':>7}{'MAC/' + unit[:5]:>11}  "
          f"{'scratch':>7}  kernel")
    for layer in rep["layers"]:
        value = layer["measured"][key][0]
        rate = f"{layer['macs'] / value:.2f}" if value and layer["macs"] else "-"
        print(f"{layer['index']:>4} {layer['op']:<18}{layer['macs']:>11,}{value:>14,}"
              f"{value / total:>7.1%}{rate:>11}  {layer.get('scratch_bytes', 0):>7}  "
              f"{layer.get('variant', layer['kernel'])[:60]}")
    print(f"({unit}; {rep['timer'].get('unit_note', '')})")


def cmd_generate(args: argparse.Namespace) -> int:
    from edge_sdk import api

    sample = _load_inputs(args.sample) if args.sample else None
    out = api.generate(args.model, args.board, args.output, template=args.template,
                       force=args.force, sample=sample, prefer=args.prefer,
                       tuning=args.tuning)
    meta = json.loads((out / "edge_project.json").read_text(encoding="utf-8"))
    print(f"{meta['model']} -> {out} ({meta['template']} project for {meta['board']}); "
          f"see {out}/README* for build and flash steps")
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    from edge_sdk import api

    result = api.build(args.project)
    if result is not None:
        model_flash = result.model_text_bytes + result.model_data_bytes
        print(f"built {result.executable}: model {model_flash} B flash; firmware text "
              f"{result.firmware_text_bytes} B, data "
              f"{result.firmware_data_bytes} B, bss {result.firmware_bss_bytes} B")
    else:
        print(f"built {args.project}")
    return 0


def cmd_flash(args: argparse.Namespace) -> int:
    from edge_sdk.device.runners import execute, plan_flash, project_meta
    from edge_sdk.project.boards import get_board

    project = Path(args.project)
    plan = plan_flash(project, args.runner, port=args.port,
                      file=Path(args.file) if args.file else None, target=args.target)
    for command in plan.commands:
        print(shlex.join(command))
    if plan.uf2:
        print(f"copy {plan.uf2[0]} as UF2 -> {plan.uf2[1] / 'EDGE_SDK.UF2'}")
    if args.dry_run:
        return 0
    if plan.runner == "qemu":  # runs until stopped: say where its UART is before it starts
        print(f"QEMU starts; {plan.verify.split('; ')[-1]} (Ctrl-C stops it)", flush=True)
    execute(plan, get_board(project_meta(project)["board"]), plan.firmware)
    print("QEMU stopped" if plan.runner == "qemu" else
          f"flashed with {plan.runner}; verified: {plan.verify}")
    return 0


def cmd_monitor(args: argparse.Namespace) -> int:
    from edge_sdk.device.monitor import monitor

    monitor(args.port, seconds=args.seconds, baudrate=args.baud)
    return 0


def cmd_run_remote(args: argparse.Namespace) -> int:
    from edge_sdk import api

    graph = api.load(args.model) if args.model else None
    _check_output_path(args, graph)
    x = _load_inputs(args.input)
    if isinstance(x, dict) and graph is None:
        raise UsageError("an .npz input needs --model, to know the order of the inputs")
    board = api.get_board(args.board) if args.board else None
    emulated = bool(board and board.emulator)
    run_timeout = args.run_timeout
    if run_timeout is None:
        run_timeout = 120.0
        if graph is not None and board is not None:  # as run and benchmark bound RUN
            from edge_sdk.device.launch import run_budget

            run_timeout = run_budget(sum(s.macs for s in api.compile_for(
                graph, board).program.steps), board)
    result = api.run_remote(args.port, x, model=graph, baudrate=args.baud, timeout=args.timeout,
                            run_timeout=run_timeout, emulated=emulated)
    _save_results(args, result)
    if args.json:
        print(json_text(_json_result(result)))
        return 0
    timer = result.report["timer"]
    print(f"{result.report['model']} on {args.port}: {len(result.output_list[0])} inference(s), "
          f"{describe(timer)}")
    return 0


def cmd_quantize(args: argparse.Namespace) -> int:
    from edge_sdk.quantization import quantize

    try:
        parts = (args.skip_layers or "").split(",")
        skip = [int(s) for s in parts if s.strip()]
    except ValueError:
        raise UsageError(f"--skip-layers takes operator indices like 0,5, not "
                         f"'{args.skip_layers}'") from None
    result = quantize(args.model, args.calibration, method=args.method,
                      percentile=args.percentile, per_channel=args.per_channel,
                      skip_layers=skip, float_io=args.float_io,
                      evaluation=args.evaluation, nhwc=args.nhwc)
    out = Path(args.output)
    write_atomic(out, result.model)
    if args.report:
        write_json(args.report, result.report)
    e = result.report["end_to_end"]
    worst = min((layer for layer in result.report["layers"] if layer["sqnr_db"] is not None),
                key=lambda layer: layer["sqnr_db"], default=None)
    if "top1_agreement" in e:
        summary = f"top-1 agreement with float {e['top1_agreement']:.1%}, "
    else:  # not a classifier: the error, as a fraction of the output and as SQNR
        summary = "output " + ", ".join(
            f"{o['output']}: SQNR {o['sqnr_db']} dB, RMS error "
            f"{o['relative_rms_error']:.2%} of the output's RMS" for o in e["outputs"]) + "; "
    print(f"wrote {out} ({len(result.model)} B): {summary}max output error "
          f"{e['max_abs_error']:.4g} on {e['samples']} samples"
          + (f"; lowest layer SQNR {worst['sqnr_db']} dB ([{worst['index']}] {worst['op']})"
             if worst else "")
          + (f"; kept float (no int8 kernel in TFLite): layers {floats}"
             if (floats := result.report.get("float_only_layers")) else ""))
    if result.report["input_layout"].startswith("NHWC"):
        print("its 4-D inputs and outputs are NHWC (the ONNX model's NCHW, transposed): give it "
              "NHWC data; calibration and evaluation data stayed NCHW")
    for warning in result.report["warnings"]:
        print(f"edge-sdk: warning: {warning}", file=sys.stderr)
    return 0


def cmd_deploy(args: argparse.Namespace) -> int:
    from edge_sdk import api

    graph = api.load(args.model)
    _check_output_path(args, graph)
    x = _load_inputs(args.input) if args.input else None
    result = api.deploy(graph, args.board, args.host, inputs=x, bench=args.bench,
                        threads=args.threads,
                        identity=args.identity, port=args.port, remote_dir=args.remote_dir,
                        accept_new_host_key=args.accept_new_host_key,
                        known_hosts=args.known_hosts,
                        run_prefix=shlex.split(args.run_prefix) if args.run_prefix else None,
                        tuning=args.tuning)
    _save_results(args, result)
    lat = result.report["latency"]
    line = (f"{graph.name} on {args.host} ({args.board}): {len(result.output_list[0])} "
            f"inference(s), {result.report['threads']} thread(s)")
    if lat["bench_runs"]:
        line += (f"; latency over {lat['bench_runs']} runs p50 {lat['p50_ns'] / 1e6:.3f} ms, "
                 f"p90 {lat['p90_ns'] / 1e6:.3f} ms, p99 {lat['p99_ns'] / 1e6:.3f} ms")
    print(line + f"; peak memory {result.report['peak_rss_kb']} KB")
    return 0


def cmd_benchmark(args: argparse.Namespace) -> int:
    from edge_sdk import benchmark as bm

    _check_writable(args.json, "--json")
    ssh = {k: v for k, v in (("identity", args.identity), ("port", args.ssh_port),
                             ("known_hosts", args.known_hosts)) if v is not None}
    if args.accept_new_host_key:
        ssh["accept_new_host_key"] = True
    result = bm.benchmark(args.model, args.board, runs=args.runs, port=args.port,
                          host=args.host, **ssh)
    print(bm.describe(result))
    if args.json:
        write_json(args.json, result)
        print(f"wrote {args.json}")
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    from edge_sdk import api

    tuning = api.tune(args.model, args.board, args.output, host=args.host, trials=args.trials,
                      runs=args.runs, identity=args.identity, port=args.port,
                      known_hosts=args.known_hosts,
                      accept_new_host_key=args.accept_new_host_key,
                      run_prefix=shlex.split(args.run_prefix) if args.run_prefix else None)
    gains = [r["default_ns"] / max(r["best_ns"], 1) for r in tuning.records.values()]
    print(f"{len(tuning.records)} layer(s) tuned for {tuning.board} ({tuning.isa}) -> "
          f"{args.output}; fastest vs default schedule: up to "
          f"{max(gains, default=1.0):.2f}x on a layer")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from edge_sdk import api
    from edge_sdk.validate import CheckFailed

    graph = api.load(args.model)
    x = _load_inputs(args.input) if args.input else None
    rep = api.validate(graph, board=args.board, inputs=x, workdir=args.workdir)
    if args.report:
        write_json(args.report, rep)
    floating = any("max_rel_error" in r for r in rep["layers"])
    print(f"{'step':>4}  {'op':<22} {'layer':<34} {'elements':>9} {'differ':>7} {'max err':>9}"
          + (f" {'rel err':>9}" if floating else ""))
    for r in rep["layers"]:
        name = r["name"] if len(r["name"]) <= 34 else r["name"][:31] + "..."
        line = (f"{r['step']:>4}  {r['op']:<22} {name:<34} {r['elements']:>9} "
                f"{r['differing']:>7} {r['max_abs_error']:>9.3g}")
        if floating:
            line += f" {r.get('max_rel_error', 0.0):>9.2g}"
        print(line + ("" if r["match"] else "  <- differs"))
    print(f"{rep['model']} on {rep['board']}, {rep['samples']} sample(s), against "
          f"{rep['reference']}")
    first = rep["first_divergence"]
    if first is None:
        print(f"every layer matches ({len(rep['layers'])} layers; integer: bit-exact, "
              "float: |ours - ref| <= 1e-05 * max|ref| + 1e-05 * |ref|)")
        return 0
    raise CheckFailed(f"validate: layer {first['index']} ({first['op']}, '{first['name']}') is "
                      "the first that differs from the reference; this is a bug: please report "
                      "it with the model" + (" (--report has the details)" if args.report else ""))


def cmd_ops(args: argparse.Namespace) -> int:
    from edge_sdk.support import operator_table

    del args
    print(operator_table())
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    from edge_sdk import api
    from edge_sdk.compiler.lower import LOWERINGS
    from edge_sdk.support import FOLDED

    graph = api.load(args.model)
    # An ONNX model's operators are the kernels TVM's importer legalized: all have code.
    ops = [{"index": op.index, "op": op.opcode,
            "supported": graph.origin == "onnx" or op.opcode in LOWERINGS or op.opcode in FOLDED,
            "output": graph.tensor(op.outputs[0]).short_name if op.outputs else ""}
           for op in graph.operators]
    tensors = [{"index": t.index, "name": t.name, "shape": list(t.shape), "dtype": t.dtype,
                "constant": t.is_constant,
                "scale": list(t.quant.scale[:4]) if t.quant else None,
                "zero_point": list(t.quant.zero_point[:4]) if t.quant else None}
               for t in graph.tensors]
    info: dict = {"model": graph.name, "int8": graph.is_int8, "operators": ops,
                  "inputs": list(graph.inputs), "outputs": list(graph.outputs)}
    unsupported = [o for o in ops if not o["supported"]]
    try:
        compiled = api.compile(graph) if not unsupported else None
    except EdgeSDKError as err:
        compiled, info["compile_error"] = None, str(err)
    if compiled is not None:
        info["estimate"] = {"arena_bytes": compiled.memory.arena_bytes,
                            "io_bytes": compiled.io_bytes,
                            "weights_bytes": compiled.weights_bytes,
                            "macs": sum(s.macs for s in compiled.program.steps)}
    if args.json:
        info["tensors"] = tensors
        print(json_text(info))
        return 0
    print(f"{graph.name}: {len(ops)} operators, {len(tensors)} tensors, "
          f"{'int8' if graph.is_int8 else 'not full-int8'}")
    if "compile_error" in info:
        print(f"  cannot compile: {info['compile_error']}")
    for o in ops:
        print(f"  [{o['index']:3d}] {o['op']:<20} {'' if o['supported'] else 'UNSUPPORTED '}"
              f"-> {o['output']}")
    for role, idx in (("input", graph.inputs), ("output", graph.outputs)):
        for i in idx:
            t = graph.tensor(i)
            q = (f" scale {t.quant.scale[0]:.6g} zero point {t.quant.zero_point[0]}"
                 if t.quant else "")
            print(f"  {role}: {t.name} {list(t.shape)} {t.dtype}{q}")
            if t.dynamic:
                print(f"    open dimensions: {list(t.signature or ())}; compiled at the shape "
                      f"the file stores, {list(t.shape)}")
    if "estimate" in info:
        e = info["estimate"]
        print(f"  estimate: arena {e['arena_bytes']} B + input/output {e['io_bytes']} B RAM, "
              f"weights {e['weights_bytes']} B flash, {e['macs']} MACs")
        from edge_sdk.render import layer_table

        print("\n" + layer_table(api.report(compiled, api.get_board("host"))))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from edge_sdk import api
    from edge_sdk import render as rp

    if args.source.endswith((".tflite", ".onnx")):  # a model: compile it for the board first
        board = api.get_board(args.board)
        rep = api.report(api.compile_for(args.source, board), board)
    else:
        rep = rp.load_report(args.source)
    for path, what in ((args.html, "--html"), (args.png, "--png")):
        _check_writable(path, what)
    if args.json:
        print(json_text(rep))
    else:
        print(rp.layer_table(rep))
    if args.html:
        write_atomic(args.html, rp.render_html(rep).encode())
        print(f"wrote {args.html}")
    if args.png:
        write_atomic(args.png, rp.render_png(rep))
        print(f"wrote {args.png}")
    return 0


def cmd_boards(args: argparse.Namespace) -> int:
    from edge_sdk.project.boards import all_boards

    if args.import_pdsc:
        import yaml

        from edge_sdk.project.pdsc import board_from_pdsc

        pdsc, device = args.import_pdsc
        board = board_from_pdsc(Path(pdsc), device, name=args.name)
        out = Path(args.output or f"{board['name']}.yaml")
        if out.exists() and not args.force:
            raise UsageError(f"{out} already exists: choose another path (-o) or pass --force")
        write_atomic(out, (f"# Imported by edge-sdk from {Path(pdsc).name}, device {device}.\n"
                               + yaml.safe_dump(board, sort_keys=False)).encode("utf-8"))
        print(f"wrote {out}: {board['cpu']}, flash {board['memory']['flash']['size']} B, "
              f"RAM {board['memory']['ram']['size']} B; use it with --board {out}")
        return 0

    from edge_sdk.render import human_bytes

    def how_it_runs(b) -> str:
        if b.port == "host":
            return "here (host build)"
        if b.emulator:
            return "here (QEMU)"
        if b.linux is None:
            return "flash, then serial (run-remote)"
        from edge_sdk.device import linux

        try:
            return "here, or SSH (deploy)" if not linux.local_prefix(b) else \
                "here (qemu-user), or SSH (deploy)"
        except EdgeSDKError:
            return "SSH (deploy)"

    rows = []
    for b in all_boards().values():
        runs = how_it_runs(b)
        rows.append({"board": b.name, "cpu": b.cpu, "flash_capacity_bytes": b.flash.size,
                     "ram_capacity_bytes": b.ram.size, "templates": list(b.templates),
                     "runner": "process" if b.port == "host" else b.default_runner,
                     "run": runs, "description": b.description})
    if args.json:
        print(json_text({"boards": rows}))
        return 0
    table = [["board", "cpu", "flash", "RAM", "templates", "flash with", "edge-sdk run"]] + [
        [r["board"], r["cpu"], human_bytes(r["flash_capacity_bytes"]),
         human_bytes(r["ram_capacity_bytes"]),
         ",".join(r["templates"]) or "-", r["runner"], r["run"]] for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    right = {2, 3}
    for row in table:
        print("  ".join(cell.rjust(w) if i in right else cell.ljust(w)
                        for i, (cell, w) in enumerate(zip(row, widths, strict=True))).rstrip())
    return 0


def _threads(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 64:
        raise argparse.ArgumentTypeError("--threads takes 0 (one per CPU) to 64")
    return value


def _count(most: int, least: int = 1):
    """An argparse type: a whole number from ``least`` to ``most`` (``--runs 10**12`` tried
    to allocate 446 TiB of inputs)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
        if not least <= value <= most:
            raise argparse.ArgumentTypeError(f"takes {least} to {most:,}, not {text}")
        return value
    return parse


def _seconds(text: str) -> float:
    """A time limit: finite and above zero (``nan`` and ``inf`` never give up, 0 and below
    gave a misleading "cannot open serial port")."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0 or value > 86400:
        raise argparse.ArgumentTypeError(f"takes seconds above 0 and at most a day, not {text}")
    return value


BOARD_HELP = "a board of `edge-sdk boards`, or a board .yaml file"


def verbosity_options(sp: argparse.ArgumentParser, default: object) -> None:
    group = sp.add_mutually_exclusive_group()
    group.add_argument("-v", "--verbose", action="store_true", default=default,
                       help="show each step and its time, even when the output is not a terminal")
    group.add_argument("-q", "--quiet", action="store_true", default=default,
                       help="print nothing but errors, warnings and --json output")


class _HelpFormatter(argparse.HelpFormatter):
    """Every option's help ends with its default, unless the text already gives it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (action.option_strings and "default" not in text and default not in (None, False)
                and default is not argparse.SUPPRESS and not isinstance(default, bool)):
            text += " (default: %(default)s)"
        return text


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors in the house style: one line, what to do, exit code 6 (usage;
    argparse's own 2 is the model-error code here), "did you mean" for a mistyped command."""

    def error(self, message: str) -> NoReturn:
        import re

        m = re.match(r"argument (\w+): invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if m:
            known = [c.strip(" '") for c in m.group(3).split(",")]
            message = (f"unknown {'command' if m.group(1) == 'COMMAND' else m.group(1)} "
                       f"'{m.group(2)}': {did_you_mean(m.group(2), known)}choose from "
                       f"{', '.join(known)}")
        print(f"{self.prog}: error: {message} (see `{self.prog} --help`)", file=sys.stderr)
        sys.exit(UsageError.exit_code)


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="edge-sdk", description=__doc__, formatter_class=_HelpFormatter)
    p.add_argument("--version", action="version", version=f"edge-sdk {__version__}")
    verbosity_options(p, False)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND",
                           parser_class=functools.partial(_Parser, formatter_class=_HelpFormatter))

    def json_option(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--json", action="store_true",
                        help="print the result as JSON (the report) instead of the summary")

    def shape_option(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--input-shape", action="append", metavar="NAME:D1,D2,...",
                        help="the shape of an input that leaves a dimension open (-1), e.g. "
                             "audio:1,16000; repeat for several inputs (default: the shape the "
                             "file stores)")

    def tuning_option(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--tuning", help="Linux boards: schedules from `edge-sdk tune` "
                                         "(default: the built-in ones)")

    def threads_option(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--threads", type=_threads, default=0,
                        help="Linux boards: threads sharing each layer's rows (default 0: one "
                             "per CPU of the machine that runs it)")

    def prefer_option(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--prefer", choices=("memory", "speed"), default="memory",
                        help="memory (default): the arena holds only what the tensors need; "
                             "speed: kernels may add im2col scratch to it where that is faster")

    c = sub.add_parser("compile", help="INT8 model -> C sources, model.h and report.json")
    c.add_argument("model", help="the model: .tflite (int8, int16 or float), or .onnx")
    shape_option(c)
    c.add_argument("--board", default="host", help=BOARD_HELP)
    c.add_argument("-o", "--output", required=True, help="output directory")
    c.add_argument("--force", action="store_true", help="replace an existing output directory")
    json_option(c)
    prefer_option(c)
    tuning_option(c)
    c.set_defaults(func=cmd_compile)

    t = sub.add_parser("tune", help="time each layer's kernel schedules on a Linux board "
                                    "and keep the fastest (for --tuning)")
    t.add_argument("model", help="the model: .tflite (int8, int16 or float), or .onnx")
    shape_option(t)
    t.add_argument("--board", required=True, help="a Linux board: rpi4, rpi5, linux-x86_64...")
    t.add_argument("--host", help="user@address: measure on the board over SSH (default: "
                                  "this machine, natively or under the board's emulator)")
    t.add_argument("--identity", help="SSH private key")
    t.add_argument("--port", type=int, help="SSH port")
    t.add_argument("--known-hosts", help="known_hosts file (default: ssh's)")
    t.add_argument("--accept-new-host-key", action="store_true",
                   help="trust a host not yet in known_hosts (first contact)")
    t.add_argument("--run-prefix", help="command before the benchmark, e.g. "
                                        "'qemu-aarch64-static'")
    t.add_argument("--trials", type=_count(1000),
                   help="candidate schedules per layer (default: all)")
    t.add_argument("--runs", type=_count(100_000), default=20, help="timed runs per candidate")
    t.add_argument("-o", "--output", required=True,
                   help="tuning file (JSON); an existing one is resumed")
    t.set_defaults(func=cmd_tune)

    o = sub.add_parser("ops", help="the operators and data types each target runs (Markdown)")
    o.set_defaults(func=cmd_ops)

    v = sub.add_parser("validate", help="run layer by layer on the board and compare every "
                                        "layer's output with LiteRT's reference kernels")
    v.add_argument("model", help="the model: .tflite (int8, int16 or float), or .onnx")
    shape_option(v)
    v.add_argument("--board", default="host", help=BOARD_HELP)
    v.add_argument("--input", help=".npy or .npz (keys input_0, ...) inputs; default: the "
                                   "deterministic pattern of BASELINES.md")
    v.add_argument("--report", help="write the per-layer comparison as JSON")
    v.add_argument("--workdir", help="keep the generated firmware project here")
    v.set_defaults(func=cmd_validate)

    r = sub.add_parser("run", help="compile, build, start the board, run inference")
    r.add_argument("model", help="the model: .tflite (int8, int16 or float), or .onnx")
    shape_option(r)
    r.add_argument("--board", default="host", help=BOARD_HELP)
    r.add_argument("--input", help=".npy (one input) or .npz (keys input_0, input_1, ...), "
                                   "int8 or float to quantize; default: the deterministic "
                                   "pattern of BASELINES.md")
    r.add_argument("--check", action="store_true",
                   help="compare the outputs with the reference interpreter on the same inputs "
                        "(LiteRT's reference kernels; onnxruntime for ONNX): integer outputs "
                        "bit-exact, float outputs where |ours - ref| <= atol + rtol*|ref| with "
                        "atol = rtol * the sample's largest |ref| (rtol 1e-5 TFLite, 1e-4 ONNX; "
                        "NaN equals NaN); exit code 7 if they differ")
    r.add_argument("--profile", action="store_true",
                   help="time every layer on the board (firmware built with EDGE_PROFILE); "
                        "prints a table and adds it to --report")
    r.add_argument("--output", help=".npy (one output) or .npz (keys output_0, output_1, ...)")
    r.add_argument("--report", help="write report.json")
    r.add_argument("--workdir", help="keep the generated firmware project here")
    threads_option(r)
    tuning_option(r)
    prefer_option(r)
    json_option(r)
    r.set_defaults(func=cmd_run)

    g = sub.add_parser("generate", help="a firmware project for a board (zephyr, arduino, "
                                         "cmsis, baremetal)")
    g.add_argument("model", help="the model: .tflite (int8, int16 or float), or .onnx")
    shape_option(g)
    g.add_argument("--board", required=True, help=BOARD_HELP)
    g.add_argument("--template", help="default: the board's first template (edge-sdk boards)")
    g.add_argument("-o", "--output", required=True, help="project directory")
    g.add_argument("--force", action="store_true", help="replace an existing edge-sdk project")
    g.add_argument("--sample", help=".npy/.npz input the firmware runs at boot (default: a "
                                    "pattern)")
    prefer_option(g)
    tuning_option(g)
    g.set_defaults(func=cmd_generate)

    bl = sub.add_parser("build", help="build a generated project")
    bl.add_argument("project", help="a project folder made by `edge-sdk generate`")
    bl.set_defaults(func=cmd_build)

    f = sub.add_parser("flash", help="flash a built project (openocd, pyocd, west, serial, qemu)")
    f.add_argument("project", help="a built project folder (`edge-sdk build`)")
    f.add_argument("--runner", help="openocd, pyocd, west, serial, qemu or arduino; default: "
                                    "the board's (edge-sdk boards), arduino for Arduino projects")
    f.add_argument("--port", help="serial runner: bootloader drive; qemu: TCP port; arduino: "
                                  "the board's serial port")
    f.add_argument("--file", help="the firmware file, if not where the project builds it")
    f.add_argument("--target", help="pyOCD target name, overriding the board's")
    f.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    f.set_defaults(func=cmd_flash)

    m = sub.add_parser("monitor", help="print what a board sends on its serial port")
    m.add_argument("--port", required=True, help="/dev/ttyACM0, COM3, socket://HOST:PORT")
    m.add_argument("--baud", type=int, default=115200,
                   help="serial baud rate (ignored for socket://)")
    m.add_argument("--seconds", type=_seconds, help="stop after this long (default: Ctrl-C)")
    m.set_defaults(func=cmd_monitor)

    rr = sub.add_parser("run-remote", help="run inputs on a board that runs edge-sdk firmware")
    rr.add_argument("--port", required=True, help="/dev/ttyACM0, COM3, socket://HOST:PORT")
    rr.add_argument("--model", help="the .tflite it runs: checks the name, shapes the data")
    rr.add_argument("--input", required=True, help=".npy or .npz (keys input_0, ...) inputs")
    rr.add_argument("--output", help=".npy (one output) or .npz (keys output_0, output_1, ...)")
    rr.add_argument("--report", help="write timings as JSON")
    rr.add_argument("--baud", type=int, default=115200,
                    help="serial baud rate (ignored for socket://)")
    rr.add_argument("--timeout", type=_seconds, default=10.0,
                    help="seconds a reply may take; a command gives up after twice this "
                         "(default 10)")
    rr.add_argument("--run-timeout", type=_seconds,
                    help="seconds one inference may take (default: from the model's MACs and "
                         "the --board's clock, at least 10 s; 120 s without both)")
    rr.add_argument("--board", help="the board on the port: tells what its timer counts (an "
                                    "emulated board's SysTick counts instructions)")
    json_option(rr)
    rr.set_defaults(func=cmd_run_remote)

    q = sub.add_parser("quantize", help="float .tflite/.onnx -> full-integer INT8 .tflite")
    q.add_argument("model", help="the model: .tflite (int8, int16 or float), or .onnx")
    q.add_argument("--calibration", required=True,
                   help=".npy batch (samples on the first axis), a directory of .npy files, or "
                        "for several inputs an .npz of batches keyed input_0, input_1, ...")
    q.add_argument("--method", default="minmax", choices=["minmax", "percentile", "kl"],
                   help="how activation ranges are calibrated")
    q.add_argument("--percentile", type=float, default=99.99,
                   help="--method percentile: the percentile of |x| kept in range")
    q.add_argument("--per-channel", dest="per_channel", action="store_true", default=True,
                   help="per-channel weights (default)")
    q.add_argument("--per-tensor", dest="per_channel", action="store_false",
                   help="one scale per weight tensor (default: one per output channel)")
    q.add_argument("--skip-layers", help="operator indices to keep in float, e.g. 0,5")
    q.add_argument("--float-io", action="store_true", help="keep float32 input and output")
    q.add_argument("--nhwc", action="store_true",
                   help="ONNX models: 4-D inputs and outputs NHWC in the int8 model (default: "
                        "the model's own NCHW); calibration data stays NCHW")
    q.add_argument("--evaluation", help="data held out for the report, in --calibration's "
                                        "forms (default: the calibration samples)")
    q.add_argument("-o", "--output", required=True, help="the int8 .tflite to write")
    q.add_argument("--report", help="write the quantization report as JSON")
    q.set_defaults(func=cmd_quantize)

    d = sub.add_parser("deploy", help="cross-build for a Linux board, run it there over SSH")
    d.add_argument("model", help="the model: .tflite (int8, int16 or float), or .onnx")
    shape_option(d)
    d.add_argument("--board", required=True, help="rpi3, rpi3-aarch64, rpi4, rpi5, linux-...")
    d.add_argument("--host", required=True, help="user@address (or an ~/.ssh/config alias)")
    d.add_argument("--identity", help="SSH private key")
    d.add_argument("--port", type=int, help="SSH port")
    d.add_argument("--input", help=".npy or .npz (keys input_0, ...) inputs; default: a "
                                   "fixed pattern")
    d.add_argument("--output", help=".npy (one output) or .npz (keys output_0, output_1, ...)")
    d.add_argument("--report", help="write report.json (latency percentiles, peak memory)")
    d.add_argument("--bench", type=_count(1_000_000, least=0), default=0,
                   help="time this many runs")
    threads_option(d)
    tuning_option(d)
    d.add_argument("--remote-dir", default="edge-sdk", help="on the board (default ~/edge-sdk)")
    d.add_argument("--accept-new-host-key", action="store_true",
                   help="trust an unknown host key on first use (a changed key is refused)")
    d.add_argument("--known-hosts", help="known_hosts file (default: ssh's)")
    d.add_argument("--run-prefix", help="command before the program on the board, e.g. "
                                        "'qemu-aarch64-static' to emulate")
    d.set_defaults(func=cmd_deploy)

    bm = sub.add_parser("benchmark", help="time N inferences on a board: min/median/max in "
                                          "the board's own unit, and as time where known")
    bm.add_argument("model", help="the model: .tflite (int8, int16 or float), or .onnx")
    shape_option(bm)
    bm.add_argument("--board", default="host", help=BOARD_HELP)
    bm.add_argument("--runs", type=_count(100_000), default=10, help="inferences to time")
    bm.add_argument("--port", help="a flashed microcontroller's serial port (else the host build "
                                   "or QEMU is started here)")
    bm.add_argument("--host", help="a Linux board over SSH: user@address")
    bm.add_argument("--identity", help="--host: SSH private key")
    bm.add_argument("--ssh-port", type=int, help="--host: SSH port")
    bm.add_argument("--known-hosts", help="--host: known_hosts file (default: ssh's)")
    bm.add_argument("--accept-new-host-key", action="store_true",
                    help="--host: trust a host not yet in known_hosts (first contact)")
    bm.add_argument("--json", help="write the figures here as JSON")
    bm.set_defaults(func=cmd_benchmark)

    rp = sub.add_parser("report", help="per-layer table of a report (or a model), and an HTML "
                                       "page / PNG of its memory plan")
    rp.add_argument("source", help="report.json, a folder holding one (compile -o DIR), or a "
                                   "model to compile for --board")
    rp.add_argument("--board", default="host", help="with a model: " + BOARD_HELP)
    rp.add_argument("--html", help="write one self-contained HTML page here")
    rp.add_argument("--png", help="write the memory plan as a PNG here")
    rp.add_argument("--json", action="store_true", help="print the report's JSON instead")
    rp.set_defaults(func=cmd_report)

    i = sub.add_parser("inspect", help="operators, tensors, quantization, RAM/flash estimate")
    i.add_argument("model", help="the model: .tflite (int8, int16 or float), or .onnx")
    shape_option(i)
    i.add_argument("--json", action="store_true", help="print JSON instead of the tables")
    i.set_defaults(func=cmd_inspect)

    b = sub.add_parser("boards", help="list the boards edge-sdk knows, or import one")
    b.add_argument("--import-pdsc", nargs=2, metavar=("FILE.pdsc", "DEVICE"),
                   help="write a board file from a CMSIS pack description")
    b.add_argument("--name", help="board name for --import-pdsc (default: the device)")
    b.add_argument("-o", "--output", help="board file to write (default: NAME.yaml)")
    b.add_argument("--force", action="store_true", help="overwrite an existing board file")
    json_option(b)
    b.set_defaults(func=cmd_boards)

    for command in sub.choices.values():  # -v/-q after the command too: `edge-sdk run -v ...`
        verbosity_options(command, argparse.SUPPRESS)
    return p


# Commands whose -o/--output names a file (the others name a folder).
FILE_OUTPUTS = {"run", "validate", "deploy", "quantize", "boards"}


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM (a CI job cancelled, `kill`) unwinds like Ctrl-C: emulators and scp children are
    ended, scratch directories and partial uploads removed, by the code's own cleanup."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    from edge_sdk import provenance

    provenance.command_line = ["edge-sdk", *(sys.argv[1:] if argv is None else argv)]
    try:
        if threading.current_thread() is not threading.main_thread():
            return _main(argv)
        previous = signal.signal(signal.SIGTERM, _terminate)
        try:
            return _main(argv)
        finally:
            signal.signal(signal.SIGTERM, previous)
    finally:
        provenance.command_line = None


def _plain_text(err: UnicodeError) -> tuple[str, int]:
    """Spell what an ASCII terminal cannot show ("µs" -> "us") instead of crashing on it."""
    if not isinstance(err, UnicodeEncodeError):
        raise err
    text = err.object[err.start:err.end]
    return "".join({"µ": "u", "—": "-", "≈": "~"}.get(c, "?") for c in text), err.end


codecs.register_error("edge_sdk_plain", _plain_text)


def _plain_streams() -> None:
    """A C/POSIX locale without UTF-8 (some CI images, cron, ssh without LANG) gets an ASCII
    stdout; the summary lines must still print."""
    for stream in (sys.stdout, sys.stderr):
        encoding = getattr(stream, "encoding", None) or "ascii"
        try:
            "µ".encode(encoding)
        except (UnicodeEncodeError, LookupError):
            with contextlib.suppress(AttributeError, ValueError):
                stream.reconfigure(errors="edge_sdk_plain")


def _main(argv: list[str] | None) -> int:
    _plain_streams()

    args = parser().parse_args(argv)
    progress.level = (progress.QUIET if args.quiet else progress.VERBOSE if args.verbose
                      else progress.NORMAL)
    quiet = args.quiet and not getattr(args, "json", False)
    try:
        if quiet:  # the summary lines go; errors and warnings (stderr) stay
            with contextlib.redirect_stdout(io.StringIO()):
                return _dispatch(args, argv)
        return _dispatch(args, argv)
    finally:
        progress.level = progress.NORMAL


def _input_shapes(items: list[str]) -> dict[str, tuple[int, ...]]:
    """``--input-shape NAME:1,16000`` (repeatable) -> {NAME: (1, 16000)}."""
    shapes = {}
    for item in items:
        name, _, dims = item.rpartition(":")
        try:
            shape = tuple(int(d) for d in dims.split(","))
        except ValueError:
            shape = ()
        if not name or not shape or any(d < 1 for d in shape):
            raise UsageError(f"--input-shape takes NAME:D1,D2,... with every dimension 1 or "
                             f"more (e.g. audio:1,16000), not '{item}'")
        shapes[name] = shape
    return shapes


def _dispatch(args: argparse.Namespace, argv: list[str] | None) -> int:
    try:
        if getattr(args, "input_shape", None):  # a Graph at those shapes, for every command
            from edge_sdk import api

            args.model = api.load(args.model, input_shapes=_input_shapes(args.input_shape))
        command = getattr(args, "command", None) or args.func.__name__.removeprefix("cmd_")
        _check_writable(getattr(args, "output", None),
                        "--output file" if command in FILE_OUTPUTS else "--output")
        _check_writable(getattr(args, "report", None), "--report")
        return int(args.func(args))
    except EdgeSDKError as err:
        print(f"edge-sdk: error: {err}", file=sys.stderr)
        return err.exit_code
    except BrokenPipeError:
        # `edge-sdk inspect M | head`: the reader has gone. Stop quietly, as Unix tools do, and
        # point stdout at /dev/null so that Python's own flush at exit does not fail again.
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # 128 + SIGPIPE, what a shell reports for a tool killed by the signal
    except KeyboardInterrupt:
        print("edge-sdk: interrupted", file=sys.stderr)
        return 130
    except OSError as err:  # the file system said no (a name too long, /proc, a full disk)
        if err.errno not in USER_ERRNOS:
            raise
        where = f" ({str(err.filename)[:120]})" if err.filename else ""
        print(f"edge-sdk: error: cannot write or read a file{where}: {err.strerror}; choose "
              "another path", file=sys.stderr)
        return UsageError.exit_code
    except MemoryError:
        print("edge-sdk: error: out of memory: the model or the inputs are larger than this "
              "machine can hold; use a smaller model, batch or --runs", file=sys.stderr)
        return UsageError.exit_code
    except Exception as err:  # the last guard: a bug of ours, never a traceback on screen
        crash = save_crash_report(err, argv)
        print(f"edge-sdk: internal error ({type(err).__name__}: "
              f"{' '.join(str(err).split())[:200]}): this is a bug, please report it with "
              f"{crash}", file=sys.stderr)
        return INTERNAL_ERROR


# Exit status of an unexpected exception (BSD's EX_SOFTWARE): distinct from every user error.
INTERNAL_ERROR = 70
# OSErrors that are about the paths a user gave, never a bug of ours.
USER_ERRNOS = {errno.ENAMETOOLONG, errno.EACCES, errno.EPERM, errno.ENOENT, errno.EROFS,
               errno.ENOSPC, errno.EDQUOT, errno.ENOTDIR, errno.EISDIR, errno.EEXIST,
               errno.ELOOP, errno.EXDEV, errno.EFBIG}


def save_crash_report(err: BaseException, argv: list[str] | None) -> Path:
    """The traceback, the command and the versions, in a file the user can attach to a report
    (``$EDGE_SDK_CRASH_DIR``, else the temp directory)."""
    import platform
    import tempfile
    import time
    import traceback

    folder = Path(os.environ.get("EDGE_SDK_CRASH_DIR") or tempfile.gettempdir())
    text = "".join([
        f"edge-sdk {__version__} crash, {time.strftime('%Y-%m-%d %H:%M:%S %z')}\n",
        f"command: edge-sdk {' '.join(sys.argv[1:] if argv is None else argv)}\n",
        f"python {platform.python_version()} on {platform.platform()}\n\n",
        *traceback.format_exception(err),
    ])
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", prefix="edge-sdk-crash-", suffix=".txt",
                                         dir=folder, delete=False) as f:
            f.write(text)
        return Path(f.name)
    except OSError:  # nowhere to write: the traceback goes to stderr after all
        sys.stderr.write(text)
        return Path("(stderr above)")


if __name__ == "__main__":
    sys.exit(main())
