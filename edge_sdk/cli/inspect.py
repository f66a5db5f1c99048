"""`edge-sdk inspect`: operators, tensors, quantization, RAM/flash estimate."""

from __future__ import annotations

import argparse

from edge_sdk.cli.options import (
    MODEL_HELP,
    shape_option,
)
from edge_sdk.errors import EdgeSDKError
from edge_sdk.files import json_text


def add_parser(sub: argparse._SubParsersAction) -> None:
    i = sub.add_parser("inspect", help="operators, tensors, quantization, RAM/flash estimate")
    i.add_argument("model", help=MODEL_HELP)
    shape_option(i)
    i.add_argument("--json", action="store_true", help="print JSON instead of the tables")
    i.set_defaults(func=cmd_inspect)


def cmd_inspect(args: argparse.Namespace) -> int:
    from edge_sdk import api
    from edge_sdk.compiler.registry import OPS

    graph = api.load(args.model)
    # An ONNX model's operators are the kernels TVM's importer legalized: all have code.
    ops = [{"index": op.index, "op": op.opcode,
            "supported": graph.origin == "relax" or (
                op.opcode in OPS and OPS[op.opcode].how != "resolved"),
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
    if "estimate" in info and compiled is not None:
        e = info["estimate"]
        print(f"  estimate: arena {e['arena_bytes']} B + input/output {e['io_bytes']} B RAM, "
              f"weights {e['weights_bytes']} B flash, {e['macs']} MACs")
        from edge_sdk.render import layer_table

        print("\n" + layer_table(api.report(compiled, api.get_board("host"))))
    return 0
