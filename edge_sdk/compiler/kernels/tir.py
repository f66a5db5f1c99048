"""Small helpers to write TIR kernels with TVM's IRBuilder.

Every kernel is a *private* PrimFunc whose arguments are typed pointers (``T.handle("int8")``)
viewed through ``decl_buffer``: TVM 0.27's C codegen then emits a plain C function with pointer
arguments and no runtime calls. Scalars that must change inside a loop (accumulators) live in
one-element buffers, which the C codegen turns into stack variables.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from tvm import tirx
from tvm.script.ir_builder import IRBuilder
from tvm.script.ir_builder import tirx as T


class KernelFunc:
    """Holds the PrimFunc once the ``kernel`` block has closed."""

    func: tirx.PrimFunc


@contextmanager
def kernel(name: str) -> Iterator[KernelFunc]:
    """Open a private PrimFunc named ``name``; the function is in ``.func`` after the block."""
    holder = KernelFunc()
    with IRBuilder() as ib, T.prim_func(is_private=True):
        T.func_name(name)
        T.func_attr({"tirx.noalias": True})
        yield holder
    holder.func = ib.get()


ArgSpec = tuple[str, tuple[int, ...], str]


def row_range_args() -> tuple[tirx.Var, tirx.Var, tirx.Var]:
    """``phase, begin, end``: the int32 parameters of a kernel whose rows are split over
    threads (see ``Step.row_phases``); declare them right after :func:`buffer_args`'s
    handles, i.e. pass ``rows=True`` there."""
    return tuple(T.arg(name, T.int32()) for name in ("phase", "row_begin", "row_end"))


def buffer_args(*specs: ArgSpec, rows: bool = False) -> list[tirx.Buffer]:
    """Declare pointer arguments ``(name, shape, dtype)`` and view each as a shaped buffer.
    With ``rows``, the three int32 row-range parameters follow the pointers and are returned
    last (``phase, begin, end``).

    All arguments must exist before the first ``decl_buffer`` frame opens, hence one call.
    """
    handles = [T.arg(name, T.handle(dtype)) for name, _, dtype in specs]
    ranges = list(row_range_args()) if rows else []
    return [
        T.decl_buffer(tuple(int(d) for d in shape) or (1,), dtype, data=handle)
        for handle, (_, shape, dtype) in zip(handles, specs, strict=True)
    ] + ranges


def scalar(name: str, dtype: str = "int32") -> tirx.Buffer:
    """A one-element local buffer: a mutable scalar (``int32_t name[1]`` in C)."""
    buf = T.alloc_buffer((1,), dtype)
    IRBuilder.name(name, buf)
    return buf


def binder(fresh: bool = False):
    """``bind(name, value)``: store ``value`` in a local scalar called ``name`` and return its
    load, so a long fixed-point computation is a chain of named steps (TVM's simplifier takes
    very long over one deep expression). By default a name is one scalar, reused; ``fresh``
    gives every call a scalar of its own, declared where it is first stored (for values
    computed in several loops of one kernel)."""
    scalars: dict[str, tirx.Buffer] = {}

    def bind(name: str, value: Any) -> Any:
        if fresh or name not in scalars:
            scalars[name] = scalar(name)
        store(scalars[name], value)
        return scalars[name][0]

    return bind


def local_array(name: str, size: int, dtype: str = "int32") -> tirx.Buffer:
    """A local array a micro-kernel fills through a pointer (``int32_t name[size]`` in C).

    TVM sizes a local allocation by the elements the TIR itself touches, and a pointer passed to
    an extern call counts as one element; so the last element is written once, at the start,
    to keep all ``size`` elements (a micro-kernel storing past a shrunken array would corrupt
    the stack).
    """
    buf = T.alloc_buffer((size,), dtype)
    IRBuilder.name(name, buf)
    T.buffer_store(buf, tirx.const(0, dtype), [size - 1])
    return buf


@contextmanager
def loop(name: str, extent: int, start: int = 0) -> Iterator[tirx.Var]:
    """A serial loop over ``[start, extent)``: ``extent`` is where it ends, not a count."""
    with T.serial(start, int(extent) if isinstance(extent, int | np.integer) else extent) as var:
        IRBuilder.name(name, var)
        yield var


@contextmanager
def when(cond: Any) -> Iterator[None]:
    with T.If(cond), T.Then():
        yield


def store(buf: tirx.Buffer, value: Any, *index: Any) -> None:
    T.buffer_store(buf, value, list(index) if index else [0])


def i32(x: Any) -> Any:
    return tirx.IntImm("int32", x) if isinstance(x, int) else tirx.Cast("int32", x)


def i64(x: Any) -> Any:
    return tirx.IntImm("int64", x) if isinstance(x, int) else tirx.Cast("int64", x)


def f32(x: Any) -> Any:
    """A float32 cast, or a float32 immediate for small integral values only.

    TVM's C printer writes float immediates with 7 significant digits, which does not round-trip
    a float32: scales and other arbitrary constants must travel in ``Constant`` tables, which
    edge-sdk prints exactly.
    """
    if isinstance(x, float):
        if x != int(x) or abs(x) > 1e6:
            raise ValueError(f"float immediate {x!r} would lose precision in C: use a table")
        return tirx.FloatImm("float32", x)
    return tirx.Cast("float32", x)


def select(cond: Any, a: Any, b: Any) -> Any:
    return tirx.Select(cond, a, b)


def clamp(x: Any, lo: int, hi: int) -> Any:
    """``min(max(x, lo), hi)``. TVM's C printer names ``x`` in a temporary and reuses that
    temporary for the same printed expression later in the block, even after a store changed
    the buffer it loads: do not clamp the same bare scalar load twice around a store to it."""
    return tirx.max(tirx.min(x, i32(hi)), i32(lo))


def float_clamp(x: Any, lo: float | None, hi: float | None) -> Any:
    """TFLite's float clamp, ``x < lo ? lo : x`` then ``x > hi ? hi : x``: a NaN passes
    through, as in LiteRT's RELU, RELU6 and fused activations (TVM's max/min return the bound
    for a NaN, so ours gave 0 where LiteRT gives NaN)."""
    if lo is not None:
        x = tirx.Select(x < f32(lo), f32(lo), x)
    if hi is not None:
        x = tirx.Select(x > f32(hi), f32(hi), x)
    return x


def in_range(index: Any, size: int) -> Any:
    """``0 <= index < size`` as a TIR condition."""
    return tirx.all(index >= 0, index < size)


def flat_index(shape: tuple[int, ...], indices: list[Any]) -> Any:
    """Row-major flat offset of ``indices`` in ``shape`` (buffers are declared flat or shaped)."""
    offset: Any = i32(0)
    for dim, idx in zip(shape, indices, strict=True):
        offset = offset * dim + idx
    return offset


@contextmanager
def loop_nest(shape: tuple[int, ...], prefix: str = "i") -> Iterator[list[tirx.Var]]:
    """Nested serial loops over ``shape`` (row-major); yields the loop variables."""
    from contextlib import ExitStack

    with ExitStack() as stack:
        yield [stack.enter_context(loop(f"{prefix}{axis}", d)) for axis, d in enumerate(shape)]


def strided_offset(indices: list[Any], strides: list[int]) -> Any:
    """``sum(index * stride)``, skipping zero strides (broadcast axes)."""
    offset: Any = i32(0)
    for idx, stride in zip(indices, strides, strict=True):
        if stride:
            offset = offset + idx * stride
    return offset


def row_major_strides(shape: tuple[int, ...]) -> list[int]:
    strides, running = [0] * len(shape), 1
    for axis in reversed(range(len(shape))):
        strides[axis] = running
        running *= shape[axis]
    return strides


# A threaded elementwise kernel's row holds at least this many values: fewer rows, each long
# enough for the vector loop inside it to run at full speed.
ROW_VALUES = 256


def thread_rows(shape: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``shape`` split into its leading axes, merged into rows that threads share, and the
    axes each row holds: as many rows as keep each row at least :data:`ROW_VALUES` values
    (an NHWC activation: N*H rows of W*C values)."""
    k = len(shape)
    while k > 0 and int(np.prod(shape[k:], dtype=np.int64)) < ROW_VALUES:
        k -= 1
    return tuple(shape[:k]), tuple(shape[k:])


@contextmanager
def row_nest(outer: tuple[int, ...], inner: tuple[int, ...], begin: Any, end: Any
             ) -> Iterator[list[Any]]:
    """Loops over rows ``[begin, end)`` of the ``outer`` axes (merged) and all of ``inner``;
    yields the index of every axis, outer then inner."""
    with loop("row", end, begin) as row:
        index: list[Any] = []
        rest = row
        for position in reversed(range(len(outer))):
            axis = outer[position]
            # The first axis needs no modulo: the row is below the product of all of them.
            index.insert(0, i32(0) if axis == 1 else rest if position == 0
                         else tirx.floormod(rest, axis))
            rest = tirx.floordiv(rest, axis)
        with loop_nest(inner, "j") as inner_index:
            yield index + inner_index


def thread_row_count(shape: tuple[int, ...]) -> int:
    """How many rows :func:`thread_rows` makes of ``shape`` (a kernel's ``row_phases``)."""
    return int(np.prod(thread_rows(shape)[0], dtype=np.int64))


def output_nest(shape: tuple[int, ...], span: list[Any]):
    """The loops over an output of ``shape``: all of it, or, where ``span`` holds the
    ``phase, begin, end`` of :func:`buffer_args` (``rows=True``), rows ``[begin, end)`` of
    :func:`thread_rows`. Yields the index of every axis either way."""
    if not span:
        return loop_nest(shape)
    outer, inner = thread_rows(shape)
    return row_nest(outer, inner, span[1], span[2])
