"""Structured mutants of a ``.tflite`` file, and LiteRT's verdict on each.

A random byte flip mostly lands in weights (a valid model with other numbers). These mutants
instead rewrite, in place, the fields a loader must not trust: tensor indices in operators and
in the graph's inputs and outputs, shapes, element types, buffer indices, scales, zero points,
quantized dimensions, opcode indices and each operator's option scalars (strides, filter sizes,
activations, paddings...). Each mutant changes one field to a value chosen to be awkward (-1,
-2, one past the end, 0, NaN, infinity, a huge number), plus a share of plain byte flips
outside the weights. Used by ``tests/test_mutants.py`` and ``benchmarks/robustness.py``.

LiteRT runs each mutant in a forked child: a mutant can crash the interpreter itself.
"""

from __future__ import annotations

import inspect
import os
import pickle
import re
import struct
from dataclasses import dataclass

import numpy as np

# struct format of each flatbuffers scalar type the generated accessors read.
_FORMATS = {"Int8": "b", "Uint8": "B", "Bool": "B", "Int16": "h", "Uint16": "H", "Int32": "i",
            "Uint32": "I", "Int64": "q", "Float32": "f"}
_GET = re.compile(r"Get\(flatbuffers\.number_types\.(\w+)Flags, o \+ self\._tab\.Pos\)")
_OFFSET = re.compile(r"Offset\((\d+)\)")


@dataclass(frozen=True)
class Site:
    """One mutable field: its byte position, struct format and what it is."""

    pos: int
    fmt: str
    kind: str   # "index", "shape", "type", "buffer", "scale", "zero_point", "axis", "opcode",
                # "option", "byte"
    what: str   # human description, e.g. "operator 3 input 1"


@dataclass(frozen=True)
class Mutant:
    raw: bytes
    what: str


def _field_pos(table, vt_offset: int) -> int | None:
    o = table._tab.Offset(vt_offset)
    return table._tab.Pos + o if o else None


def _vector_sites(table, vt_offset: int, fmt: str, kind: str, what: str) -> list[Site]:
    o = table._tab.Offset(vt_offset)
    if not o:
        return []
    start, n = table._tab.Vector(o), table._tab.VectorLen(o)
    size = struct.calcsize(fmt)
    return [Site(start + i * size, fmt, kind, f"{what} {i}") for i in range(n)]


def _option_fields(options_cls) -> list[tuple[str, int, str]]:
    """(name, vtable offset, struct format) of each scalar field of a generated options class."""
    fields = []
    for name, fn in inspect.getmembers(options_cls, inspect.isfunction):
        src = inspect.getsource(fn)
        get, off = _GET.search(src), _OFFSET.search(src)
        if get and off and get.group(1) in _FORMATS:
            fields.append((name, int(off.group(1)), _FORMATS[get.group(1)]))
    return fields


def sites(raw: bytes) -> list[Site]:
    """Every field of the first subgraph that the mutants rewrite."""
    import tflite
    from tflite.BuiltinOptions import BuiltinOptions

    model = tflite.Model.GetRootAsModel(raw, 0)
    graph = model.Subgraphs(0)
    out: list[Site] = []
    out += _vector_sites(graph, 6, "i", "index", "graph input")
    out += _vector_sites(graph, 8, "i", "index", "graph output")
    option_names = {v: k for k, v in vars(BuiltinOptions).items() if not k.startswith("_")}
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        pos = _field_pos(op, 4)
        if pos is not None:
            out.append(Site(pos, "I", "opcode", f"operator {i} opcode index"))
        out += _vector_sites(op, 6, "i", "index", f"operator {i} input")
        out += _vector_sites(op, 8, "i", "index", f"operator {i} output")
        table = op.BuiltinOptions()
        name = option_names.get(op.BuiltinOptionsType())
        if table is None or name is None:
            continue
        cls = getattr(__import__(f"tflite.{name}", fromlist=[name]), name)
        opts = cls()
        opts.Init(table.Bytes, table.Pos)
        for field, vt, fmt in _option_fields(cls):
            pos = _field_pos(opts, vt)
            if pos is not None:
                out.append(Site(pos, fmt, "option", f"operator {i} {name}.{field}"))
    for i in range(graph.TensorsLength()):
        t = graph.Tensors(i)
        out += _vector_sites(t, 4, "i", "shape", f"tensor {i} dim")
        for vt, fmt, kind in ((6, "b", "type"), (8, "I", "buffer")):
            pos = _field_pos(t, vt)
            if pos is not None:
                out.append(Site(pos, fmt, kind, f"tensor {i} {kind}"))
        q = t.Quantization()
        if q is not None:
            out += _vector_sites(q, 8, "f", "scale", f"tensor {i} scale")
            out += _vector_sites(q, 10, "q", "zero_point", f"tensor {i} zero point")
            pos = _field_pos(q, 16)
            if pos is not None:
                out.append(Site(pos, "i", "axis", f"tensor {i} quantized dimension"))
    return out


def _weights_ranges(raw: bytes) -> list[tuple[int, int]]:
    import tflite

    model = tflite.Model.GetRootAsModel(raw, 0)
    ranges = []
    for i in range(model.BuffersLength()):
        b = model.Buffers(i)
        o = b._tab.Offset(4)
        if o and b._tab.VectorLen(o) > 16:
            start = b._tab.Vector(o)
            ranges.append((start, start + b._tab.VectorLen(o)))
    return ranges


def _values(site: Site, old, n_tensors: int, rng: np.random.Generator) -> list:
    if site.kind == "index":
        return [-1, -2, n_tensors, n_tensors + 7, int(rng.integers(0, n_tensors))]
    if site.kind == "shape":
        return [0, -1, 1, max(1, old) * 2, 1 << 30]
    if site.kind == "type":
        return [int(rng.integers(0, 18)), 0, 2, 7]
    if site.kind in ("buffer", "opcode"):
        return [old + 1, old + 1000, 0, 0xFFFFFFFF]
    if site.kind == "scale":
        return [0.0, -old, float("nan"), float("inf"), 1e-30, 1e30]
    if site.kind == "zero_point":
        return [128, -129, 300, 1 << 40, old + 1]
    if site.kind == "axis":
        return [-1, 1, 3, 7]
    if site.fmt == "f":
        return [0.0, -1.0, float("nan"), float("inf")]
    if site.fmt in ("b", "B"):
        return [0, 1, 2, 5, 6, 100]
    return [0, -1, 2, 5, 1000]


def _fits(fmt: str, value) -> bool:
    try:
        struct.pack(fmt, value)
        return True
    except struct.error:
        return False


def mutants(raw: bytes, count: int, seed: int = 0, byte_share: float = 0.2) -> list[Mutant]:
    """``count`` mutants of ``raw``, deterministic for a seed: each one field rewritten
    (or, for ``byte_share`` of them, one byte outside the weights XORed with a random value)."""
    import tflite

    rng = np.random.default_rng(seed)
    fields = sites(raw)
    n_tensors = tflite.Model.GetRootAsModel(raw, 0).Subgraphs(0).TensorsLength()
    weights = _weights_ranges(raw)
    free = np.ones(len(raw), dtype=bool)
    for a, b in weights:
        free[a:b] = False
    free[:8] = False  # keep the root offset and the 'TFL3' identifier: those are checked first
    byte_positions = np.flatnonzero(free)
    out: list[Mutant] = []
    while len(out) < count:
        buf = bytearray(raw)
        if rng.random() < byte_share:
            pos = int(rng.choice(byte_positions))
            flip = int(rng.integers(1, 256))
            buf[pos] ^= flip
            out.append(Mutant(bytes(buf), f"byte {pos} xor 0x{flip:02x}"))
            continue
        site = fields[int(rng.integers(0, len(fields)))]
        old = struct.unpack_from(site.fmt, raw, site.pos)[0]
        choices = [v for v in _values(site, old, n_tensors, rng) if _fits(site.fmt, v)
                   and v != old]
        if not choices:
            continue
        value = choices[int(rng.integers(0, len(choices)))]
        struct.pack_into(site.fmt, buf, site.pos, value)
        out.append(Mutant(bytes(buf), f"{site.what}: {old} -> {value}"))
    return out


@dataclass(frozen=True)
class Verdict:
    """LiteRT on one mutant: ``accepted`` (it allocated and ran), its outputs if so, or why not
    (``error``; ``crashed`` when the interpreter took its process down)."""

    accepted: bool
    outputs: list[np.ndarray] | None = None
    error: str = ""
    crashed: bool = False


def _litert(raw: bytes, inputs: list[np.ndarray]) -> Verdict:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    try:
        it = Interpreter(model_content=raw,
                         experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
        it.allocate_tensors()
        details = it.get_input_details()
        if len(details) != len(inputs):
            return Verdict(False, error=f"{len(details)} inputs")
        for d, x in zip(details, inputs, strict=True):
            if tuple(d["shape"]) != x.shape or d["dtype"] != x.dtype:
                return Verdict(False, error=f"input {d['shape']} {d['dtype']}")
            it.set_tensor(d["index"], x)
        it.invoke()
        return Verdict(True, [it.get_tensor(d["index"]).copy()
                              for d in it.get_output_details()])
    except Exception as err:
        return Verdict(False, error=str(err).splitlines()[0][:200] if str(err) else repr(err))


def litert_verdict(raw: bytes, inputs: list[np.ndarray]) -> Verdict:
    """LiteRT's verdict on ``raw`` with ``inputs``, in a forked child (a crash is a verdict:
    rejected, ``crashed``)."""
    return forked_verdict(_litert, raw, inputs, "interpreter")


def forked_verdict(judge, raw: bytes, inputs: list[np.ndarray], who: str) -> Verdict:
    """``judge(raw, inputs)`` in a forked child, its Verdict sent back; a child that dies is
    the verdict "rejected, ``crashed``" (``who`` names the oracle in the message)."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(read_fd)
        try:
            data = pickle.dumps(judge(raw, inputs))
            with os.fdopen(write_fd, "wb") as f:
                f.write(data)
        finally:
            os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as f:
        data = f.read()
    _, status = os.waitpid(pid, 0)
    if not data:
        sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
        return Verdict(False, error=f"{who} crashed (signal {sig})", crashed=True)
    return pickle.loads(data)
