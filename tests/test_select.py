"""Kernel-variant choice, tested on plans of small hand-built graphs: no C is compiled.

Each kernel set's ``select`` says which of its variants serves a layer (or None: the next set's,
and last the portable kernel). These tests pin the rules the kernels' speed and correctness rest
on: a wrong choice here is either a slow layer or a kernel fed a shape it was not written for.
"""

from __future__ import annotations

import numpy as np
import pytest

from edge_sdk.compiler.kernels import cpu, dsp, mve
from edge_sdk.compiler.kernels.conv import plan_conv2d
from edge_sdk.compiler.kernels.fully_connected import plan_fully_connected
from edge_sdk.compiler.lower import lower
from edge_sdk.compiler.target import KERNEL_SETS, Target
from edge_sdk.errors import UsageError
from edge_sdk.ir import Graph, Operator, QuantParams, Tensor


def q(scale: float = 0.05, zp: int = 0) -> QuantParams:
    return QuantParams((scale,), (zp,))


def conv_graph(ic: int, oc: int, kernel: tuple[int, int] = (3, 3), depthwise: bool = False,
               padding: str = "SAME", dtype: str = "int8", zp: int = -3) -> Graph:
    """One CONV_2D (or DEPTHWISE_CONV_2D) on an 8x8 input, random int8 weights."""
    rng = np.random.default_rng(0)
    kh, kw = kernel
    w_shape = (1, kh, kw, oc) if depthwise else (oc, kh, kw, ic)
    tensors = [
        Tensor(0, "input", (1, 8, 8, ic), dtype, q(0.1, zp)),
        Tensor(1, "weights", w_shape, "int8", QuantParams((0.02,) * oc, (0,) * oc, 3 if
                                                         depthwise else 0),
               rng.integers(-127, 128, w_shape).astype(np.int8)),
        Tensor(2, "bias", (oc,), "int32", QuantParams((0.002,) * oc, (0,) * oc),
               rng.integers(-1000, 1000, oc).astype(np.int32)),
        Tensor(3, "output", (1, 8, 8, oc), dtype, q(0.2, 5 if zp else 0)),
    ]
    options = {"padding": padding, "stride": (1, 1), "dilation": (1, 1), "activation": "NONE"}
    if depthwise:
        options["depth_multiplier"] = oc // ic
    opcode = "DEPTHWISE_CONV_2D" if depthwise else "CONV_2D"
    return Graph("g", tensors, [Operator(0, opcode, (0, 1, 2), (3,), options)], (0,), (3,))


def fc_graph(depth: int, units: int = 10) -> Graph:
    rng = np.random.default_rng(1)
    tensors = [
        Tensor(0, "input", (1, depth), "int8", q(0.1, 2)),
        Tensor(1, "weights", (units, depth), "int8", q(0.02),
               rng.integers(-127, 128, (units, depth)).astype(np.int8)),
        Tensor(2, "bias", (units,), "int32", q(0.002),
               rng.integers(-1000, 1000, units).astype(np.int32)),
        Tensor(3, "output", (1, units), "int8", q(0.2, 5)),
    ]
    op = Operator(0, "FULLY_CONNECTED", (0, 1, 2), (3,), {"activation": "NONE"})
    return Graph("g", tensors, [op], (0,), (3,))


def conv_plan(graph: Graph):
    return plan_conv2d(graph.operators[0], graph)


@pytest.mark.parametrize(("ic", "scratch", "want"), [
    (8, True, "im2col"),     # im2col whenever scratch is allowed
    (3, True, "im2col"),     # ... whatever the channels (the gather widens them)
    (8, False, "direct"),    # no scratch: channels in fours are read in place
    (3, False, None),        # no scratch, odd channels: the portable kernel
])
def test_dsp_convolution_variant(ic, scratch, want):
    assert dsp.select_conv(conv_plan(conv_graph(ic, 8)), scratch) == want


@pytest.mark.parametrize(("ic", "oc", "want"), [
    (8, 8, "depthwise"),
    (6, 6, None),    # channels not in fours
    (4, 8, None),    # depth multiplier 2
])
def test_dsp_depthwise_variant(ic, oc, want):
    p = conv_plan(conv_graph(ic, oc, depthwise=True))
    assert dsp.select_conv(p, True) == want == dsp.select_conv(p, False)


@pytest.mark.parametrize(("ic", "oc", "want", "lanes"), [
    (32, 32, "depthwise", 16), (24, 24, "depthwise", 8), (12, 12, "depthwise", 4),
    (6, 6, None, 0), (4, 8, None, 4)])
def test_helium_depthwise_variant_and_lanes(ic, oc, want, lanes):
    p = conv_plan(conv_graph(ic, oc, depthwise=True))
    assert mve.select_conv(p, True) == want
    assert mve.depthwise_lanes(p) == lanes


def test_helium_pointwise_convolution_reads_rows_in_place():
    pointwise = conv_plan(conv_graph(16, 16, kernel=(1, 1)))
    assert mve.pointwise_in_place(pointwise)
    assert mve.select_conv(pointwise, True) == "direct"
    assert mve.select_conv(conv_plan(conv_graph(16, 16)), True) == "im2col"
    assert mve.select_conv(conv_plan(conv_graph(16, 16)), False) == "direct"


@pytest.mark.parametrize(("depth", "want"), [(16, "rows4"), (12, "rows4"), (10, None)])
def test_dsp_fully_connected_variant(depth, want):
    graph = fc_graph(depth)
    assert dsp.select_fully_connected(plan_fully_connected(graph.operators[0], graph)) == want


@pytest.mark.parametrize(("dtype", "depthwise", "ic", "oc", "want"), [
    ("int8", False, 3, 8, "conv"), ("int8", True, 8, 8, "depthwise"),
    ("int8", True, 4, 8, None), ("int16", False, 8, 8, None)])
def test_linux_cpu_convolution_variant(dtype, depthwise, ic, oc, want):
    graph = conv_graph(ic, oc, depthwise=depthwise, dtype=dtype, zp=0 if dtype == "int16"
                       else -3)
    assert cpu.select_conv(conv_plan(graph)) == want


def test_each_kernel_set_tries_its_variants_in_order():
    """Helium before DSP on an M55; the DSP set has no Helium; a Linux CPU set has float
    variants; the portable set has none."""
    mve_chain = Target("mve").variants("CONV_2D")
    assert [f.__module__.rsplit(".", 1)[-1] for f in mve_chain] == ["mve", "dsp"]
    assert [f.__module__.rsplit(".", 1)[-1] for f in Target("dsp").variants("CONV_2D")] == [
        "dsp"]
    assert Target("cpu-avx2").variants("float32:CONV_2D")
    assert Target("generic").variants("CONV_2D") == []
    assert set(KERNEL_SETS) >= {"generic", "dsp", "mve", "cpu", "cpu-avx2", "cpu-dotprod"}
    with pytest.raises(UsageError, match="kernel set 'avx9' does not exist"):
        Target("avx9")


def test_the_chosen_variant_is_named_on_the_step():
    """What `report.json` and the kernel's comment show: the variant the set chose, or the
    portable kernel where none fits (odd depthwise channels on a DSP core)."""
    fits = lower(conv_graph(8, 8, depthwise=True), Target("dsp")).steps[0]
    falls_back = lower(conv_graph(6, 6, depthwise=True), Target("dsp")).steps[0]
    assert fits.notes.startswith("DSP: 4 channels per word")
    assert falls_back.notes == ""  # the portable kernel
