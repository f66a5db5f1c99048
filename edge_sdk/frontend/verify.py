"""Structural verification of a ``.tflite`` flatbuffer before anything reads it.

The ``tflite`` package's generated accessors trust every offset they follow: a corrupt file
either raises deep inside them or, worse, reads plausible numbers from the wrong place. LiteRT
runs FlatBuffers' verifier first; the Python ``flatbuffers`` package has none, so this is ours.
It walks the tables the loader reads, from the root, and checks what FlatBuffers' verifier
checks: every table, vtable, vector and string lies inside the file, is aligned, and every
field a vtable declares fits inside its table.

The schema is not written out here: it is read from the generated accessor classes themselves
(each accessor names its vtable slot, the scalar type it reads, or the table class it builds),
so it follows the ``tflite`` package's schema version. Unions (builtin options) are followed
through their type field.
"""

from __future__ import annotations

import importlib
import inspect
import re
import struct
from dataclasses import dataclass
from functools import cache

from edge_sdk.errors import ModelError

# Byte size of each flatbuffers scalar type named by the generated code.
_SIZES = {"Bool": 1, "Int8": 1, "Uint8": 1, "Int16": 2, "Uint16": 2, "Int32": 4, "Uint32": 4,
          "Int64": 8, "Uint64": 8, "Float32": 4, "Float64": 8, "UOffsetT": 4}
_SLOT = re.compile(r"self\._tab\.Offset\((\d+)\)")
_SCALAR = re.compile(r"number_types\.(\w+?)Flags, (?:o|a) \+")
_CLASS = re.compile(r"from tflite\.(\w+) import (\w+)")
# A union accessor's enum: which table each type value names.
_UNION_ENUMS = {"BuiltinOptions": "BuiltinOptions", "BuiltinOptions2": "BuiltinOptions2",
                "Details": "QuantizationDetails", "ArraySegments": "SparseIndexVector",
                "ArrayIndices": "SparseIndexVector"}
_MAX_TABLES = 1_000_000  # FlatBuffers' verifier default: bounds the work a hostile file causes


@dataclass(frozen=True)
class _Field:
    slot: int                # vtable offset
    kind: str                # "scalar", "string", "table", "vector", "table_vector", "union"
    size: int = 0            # scalar or vector element size
    cls: str = ""            # table class name ("table", "table_vector")
    union: str = ""          # for "union": the enum module naming the member tables
    type_slot: int = 0       # for "union": the slot of its type field


@cache
def _schema(cls_name: str) -> tuple[_Field, ...]:
    """The fields of a generated table class, read from its accessors' source."""
    cls = getattr(importlib.import_module(f"tflite.{cls_name}"), cls_name)
    fields: dict[int, _Field] = {}
    slots: dict[str, int] = {}
    for name, fn in inspect.getmembers(cls, inspect.isfunction):
        try:
            src = inspect.getsource(fn)
        except (OSError, TypeError):
            continue
        slot = _SLOT.search(src)
        if slot is None or name.endswith(("Length", "IsNone", "AsNumpy")):
            continue
        n = int(slot.group(1))
        slots[name] = n
        nested = _CLASS.search(src)
        if "self._tab.Union(" in src:
            fields[n] = _Field(n, "union", union=_UNION_ENUMS.get(name, ""))
        elif "self._tab.Vector(" in src and nested:
            fields[n] = _Field(n, "table_vector", cls=nested.group(2))
        elif "self._tab.Vector(" in src and "self._tab.String(" in src:
            fields[n] = _Field(n, "string_vector")
        elif "self._tab.Vector(" in src:
            scalar = _SCALAR.search(src)
            fields[n] = _Field(n, "vector", size=_SIZES.get(scalar.group(1), 1) if scalar else 1)
        elif "self._tab.String(" in src:
            fields[n] = _Field(n, "string")
        elif "self._tab.Indirect(" in src and nested:
            fields[n] = _Field(n, "table", cls=nested.group(2))
        else:
            scalar = _SCALAR.search(src)
            if scalar and scalar.group(1) in _SIZES:
                fields[n] = _Field(n, "scalar", size=_SIZES[scalar.group(1)])
    for name, n in slots.items():  # a union's type field is the accessor named <union>Type
        f = fields.get(n)
        if f is not None and f.kind == "union" and f"{name}Type" in slots:
            fields[n] = _Field(n, "union", union=f.union, type_slot=slots[f"{name}Type"])
    return tuple(fields.values())


@cache
def _union_members(enum: str) -> dict[int, str]:
    if not enum:
        return {}
    values = vars(getattr(importlib.import_module(f"tflite.{enum}"), enum))
    return {v: k for k, v in values.items() if not k.startswith("_") and isinstance(v, int)}


def _known_table(name: str | None) -> str | None:
    """``name`` if the tflite package has that table class, else None (checked as a bare
    table: a union member newer than the package)."""
    if name is None:
        return None
    try:
        _schema(name)
    except (ImportError, AttributeError):
        return None
    return name


class _Verifier:
    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self.n = len(buf)
        self.tables = 0

    def fail(self, what: str) -> ModelError:
        return ModelError(f"the flatbuffer is corrupt or truncated: {what}; re-export the model")

    def _u32(self, pos: int, what: str) -> int:
        if pos < 0 or pos + 4 > self.n:
            raise self.fail(f"{what} lies outside the file")
        return struct.unpack_from("<I", self.buf, pos)[0]

    def offset_target(self, pos: int, what: str) -> int:
        """The position an unsigned offset at ``pos`` points to."""
        if pos % 4:
            raise self.fail(f"{what} is misaligned")
        offset = self._u32(pos, what)
        if offset == 0 or offset >= 1 << 31:  # flatbuffers' own rule: offsets point forward
            raise self.fail(f"{what} is not a valid offset")
        target = pos + offset
        if target + 4 > self.n:
            raise self.fail(f"{what} points outside the file")
        return target

    def vector(self, pos: int, elem: int, what: str) -> tuple[int, int]:
        """(first element, count) of the vector at ``pos``, checked to fit."""
        if pos % 4:
            raise self.fail(f"{what} is misaligned")
        count = self._u32(pos, what)
        start = pos + 4
        if start + count * elem > self.n:
            raise self.fail(f"{what} ({count} elements) runs past the end of the file")
        return start, count

    def string(self, pos: int, what: str) -> None:
        start, count = self.vector(pos, 1, what)
        if start + count >= self.n or self.buf[start + count] != 0:
            raise self.fail(f"{what} is not terminated")

    def table(self, pos: int, cls: str | None, what: str) -> None:
        self.tables += 1
        if self.tables > _MAX_TABLES:
            raise self.fail("too many tables")
        if pos % 4 or pos + 4 > self.n:
            raise self.fail(f"{what} is misaligned or outside the file")
        vtable = pos - struct.unpack_from("<i", self.buf, pos)[0]
        if vtable < 0 or vtable % 2 or vtable + 4 > self.n:
            raise self.fail(f"{what}'s vtable lies outside the file")
        vt_size, obj_size = struct.unpack_from("<HH", self.buf, vtable)
        if vt_size < 4 or vt_size % 2 or vtable + vt_size > self.n or pos + obj_size > self.n:
            raise self.fail(f"{what}'s vtable is malformed")

        def slot(n: int) -> int:
            return struct.unpack_from("<H", self.buf, vtable + n)[0] if n < vt_size else 0

        for n in range(4, vt_size, 2):  # every declared field lies inside the table
            if slot(n) and slot(n) >= obj_size:
                raise self.fail(f"{what} has a field outside its table")
        if cls is None:
            return
        for f in _schema(cls):
            off = slot(f.slot)
            if not off:
                continue
            here, name = pos + off, f"{what}.{cls}[{f.slot}]"
            if f.kind == "scalar":
                if off + f.size > obj_size:
                    raise self.fail(f"{name} overruns its table")
                if here % f.size:  # scalars sit at multiples of their size
                    raise self.fail(f"{name} is misaligned")
                continue
            target = self.offset_target(here, name)
            if f.kind == "string":
                self.string(target, name)
            elif f.kind == "vector":
                self.vector(target, f.size, name)
            elif f.kind == "table":
                self.table(target, f.cls, name)
            elif f.kind in ("table_vector", "string_vector"):
                start, count = self.vector(target, 4, name)
                for i in range(count):
                    item = self.offset_target(start + 4 * i, f"{name}[{i}]")
                    if f.kind == "string_vector":
                        self.string(item, f"{name}[{i}]")
                    else:
                        self.table(item, f.cls, f"{name}[{i}]")
            elif f.kind == "union":
                type_off = slot(f.type_slot)
                kind = self.buf[pos + type_off] if type_off else 0
                self.table(target, _known_table(_union_members(f.union).get(kind)), name)


def verify_flatbuffer(buf: bytes) -> None:
    """Raise :class:`ModelError` unless ``buf`` is a structurally sound TFLite flatbuffer."""
    v = _Verifier(buf)
    if len(buf) < 8:
        raise v.fail("the file is shorter than a flatbuffer header")
    v.table(v.offset_target(0, "the root offset"), "Model", "model")
