"""The Cortex-M SIMD kernels (DSP: M4/M7/M33, MVE: M55), bit-exact to LiteRT, awkward shapes.

Every case is one operator with shapes chosen to hit the kernels' edges: channel counts that are
not multiples of 2, 4 or 16, odd pixel counts, padding, strides, dilation, depth multipliers,
per-channel and per-tensor weights, zero points far from 0, requantization outside the fast
path. Each runs with both arena preferences: ``memory`` (kernels without scratch, as a one-op
model has no free arena) and ``speed`` (the im2col variants).

Fast set: the generated C for each instruction set, built on the host, where the micro-kernels
compile as their plain-C twins. Slow set: the same models on the emulated cores (QEMU), where
the inline assembly runs: mps2-an386 (M4, DSP), mps2-an505 (M33, DSP), mps3-an547 (M55, MVE).
"""

from __future__ import annotations

import numpy as np
import pytest

import edge_sdk
from edge_sdk.frontend.tflite import parse
from edge_sdk.frontend.tflite_writer import OpSpec, build_model
from tests.conftest import random_inputs, reference
from tests.test_ops import act, conv_model, fc_model, weights


def add_model(shape_b, opcode="ADD", shape=(1, 8, 8, 4)):
    """input -> 1x1 conv (4 channels) -> ADD or SUB(input, conv or a pooled copy), different
    scales. 256 outputs by default: the DSP kernel's two 256-entry tables serve sums at least
    that large (smaller ones use the portable kernel)."""
    from tests.test_ops import bias

    tensors = [act("input", shape, 0.05, 3), weights("w", (4, 1, 1, 4), [0.02] * 4),
               bias("b", 4, 0.05, [0.02] * 4), act("conv", shape, 0.13, -20)]
    ops = [OpSpec("CONV_2D", [0, 1, 2], [3], {"padding": "VALID"})]
    if shape_b == shape:
        tensors.append(act("sum", shape, 0.11, -4))
        ops.append(OpSpec(opcode, [0, 3], [4], {"activation": "RELU"}))
        return build_model(tensors, ops, [0], [4])
    tensors += [act("pooled", shape_b, 0.13, -20), act("sum", shape, 0.11, -4)]
    ops += [OpSpec("AVERAGE_POOL_2D", [3], [4], {"filter": shape[1:3], "stride": (1, 1)}),
            OpSpec(opcode, [0, 4], [5])]
    return build_model(tensors, ops, [0], [5])


# name -> (model builder, the variant each instruction set must use: a prefix of the layer's
# kernel note, or None where the kernel is expected to fall back to the portable one). A DSP
# convolution whose input depth is not a multiple of 4 exists only with im2col scratch, so with
# prefer=memory those cases use the portable kernel: NO_SCRATCH_DSP lists them.
CASES = {
    "conv3x3_same_ic8_oc6": (
        lambda: conv_model((1, 5, 6, 8), 6, (3, 3), (1, 1), "SAME"), "DSP", "MVE"),
    "conv3x3_same_s2_ic3_oc5_odd_pixels": (
        lambda: conv_model((1, 7, 7, 3), 5, (3, 3), (2, 2), "SAME", in_q=(0.05, -90)),
        "DSP", "MVE"),
    "conv_dilated_valid_ic4_oc7_relu6": (
        lambda: conv_model((1, 10, 9, 4), 7, (3, 3), (1, 1), "VALID", "RELU6", dilation=(2, 2),
                           out_q=(0.05, -128)), "DSP", "MVE"),
    "conv1x1_ic20_oc9": (
        lambda: conv_model((1, 3, 5, 20), 9, (1, 1), (1, 1), "VALID", in_q=(0.02, -100),
                           out_q=(0.07, 90)), "DSP", "MVE"),
    "conv5x4_ic1_oc8_stride2": (
        lambda: conv_model((1, 12, 6, 1), 8, (5, 4), (2, 2), "SAME"), "DSP", "MVE"),
    "conv2x3_per_tensor_relu": (
        lambda: conv_model((1, 6, 7, 2), 3, (2, 3), (1, 2), "SAME", "RELU", per_channel=False),
        "DSP", "MVE"),
    "conv_requant_outside_fast_path": (  # output scale tiny: shift >= 0, 64-bit requantization
        lambda: conv_model((1, 4, 4, 8), 4, (1, 1), (1, 1), "VALID", out_q=(0.0001, 3)),
        "DSP", "MVE"),
    "depthwise3x3_same_c16": (
        lambda: conv_model((1, 6, 5, 16), 16, (3, 3), (1, 1), "SAME", depthwise=True,
                           in_q=(0.05, 77)), "DSP", "MVE"),
    "depthwise3x3_same_s2_c32_relu": (
        lambda: conv_model((1, 9, 8, 32), 32, (3, 3), (2, 2), "SAME", "RELU", depthwise=True),
        "DSP", "MVE"),
    "depthwise3x3_valid_dilated_c8": (  # MVE: groups of 8 channels
        lambda: conv_model((1, 9, 9, 8), 8, (3, 3), (1, 1), "VALID", dilation=(2, 2),
                           depthwise=True), "DSP", "MVE"),
    "depthwise3x3_same_c12_stride2": (  # MVE: groups of 4 channels
        lambda: conv_model((1, 7, 6, 12), 12, (3, 3), (2, 2), "SAME", depthwise=True,
                           in_q=(0.04, -60)), "DSP", "MVE"),
    "depthwise_multiplier2": (
        lambda: conv_model((1, 7, 5, 4), 8, (3, 3), (1, 1), "VALID", "RELU", depthwise=True,
                           mult=2), None, None),
    "depthwise_c6": (
        lambda: conv_model((1, 6, 6, 6), 6, (3, 3), (2, 2), "SAME", depthwise=True), None, None),
    "fc_d64_u12": (lambda: fc_model(1, 64, 12), "DSP", "MVE"),
    "fc_d20_u5_per_channel_batch3": (
        lambda: fc_model(3, 20, 5, per_channel=True), "DSP", "MVE"),
    "fc_d6_u3_relu_saturating": (  # depth 6: no DSP kernel; MVE predicates the tail
        lambda: fc_model(1, 6, 3, "RELU", out_q=(0.01, -128)), None, "MVE"),
    "add_residual": (lambda: add_model((1, 8, 8, 4)), "input rescaling", "input rescaling"),
    "add_small_portable": (  # 60 outputs: the tables (2 KB) would outweigh the sum
        lambda: add_model((1, 5, 3, 4), shape=(1, 5, 3, 4)), None, None),
    "add_broadcast": (lambda: add_model((1, 1, 1, 4)), "input rescaling", "input rescaling"),
    "sub_residual": (lambda: add_model((1, 8, 8, 4), "SUB"), "input rescaling",
                     "input rescaling"),
    "sub_broadcast": (lambda: add_model((1, 1, 1, 4), "SUB"), "input rescaling",
                      "input rescaling"),
}
ISA_COLUMN = {"dsp": 0, "mve": 1}
NO_SCRATCH_DSP = {"conv3x3_same_s2_ic3_oc5_odd_pixels", "conv5x4_ic1_oc8_stride2",
                  "conv2x3_per_tensor_relu"}


def check(case: str, board: str, isa: str | None, prefer: str, n: int = 6) -> dict:
    builder, *expected = CASES[case]
    model = builder()
    graph = parse(model, name=case)
    x = random_inputs(graph.tensor(graph.inputs[0]).shape, n=n, seed=sum(map(ord, case)))
    result = edge_sdk.run(graph, board=board, inputs=x, isa=isa, prefer=prefer)
    want = reference(model, x)
    np.testing.assert_array_equal(result.outputs.reshape(want.shape), want)
    isa = isa or ("mve" if board == "mps3-an547" else "dsp")
    variant = expected[ISA_COLUMN[isa]]
    if isa == "dsp" and prefer == "memory" and case in NO_SCRATCH_DSP:
        variant = None
    kernel_layers = [layer for layer in result.report["layers"]
                     if layer["op"] in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD",
                                        "SUB")]
    last = kernel_layers[-1].get("variant", "")
    if variant is None:
        assert not last.startswith(("DSP", "MVE")), last
    else:
        assert last.startswith(variant), f"expected a {variant} kernel, got {last!r}"
    return result.report


@pytest.mark.parametrize("prefer", ["memory", "speed"])
@pytest.mark.parametrize("isa", ["dsp", "mve"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_simd_kernel_on_host(case, isa, prefer):
    check(case, "host", isa, prefer)


def test_memory_preference_never_grows_the_arena():
    """One-op models have no free arena: with prefer=memory no kernel takes scratch."""
    for case in ("conv3x3_same_ic8_oc6", "conv5x4_ic1_oc8_stride2"):
        graph = parse(CASES[case][0](), name=case)
        board = edge_sdk.api.get_board("mps2-an386")
        lean = edge_sdk.api.compile_for(graph, board)
        fast = edge_sdk.api.compile_for(graph, board, prefer="speed")
        assert lean.memory.arena_bytes == 0
        assert fast.memory.arena_bytes > 0 and "im2col" in fast.program.steps[0].notes


@pytest.mark.slow
@pytest.mark.parametrize("prefer", ["memory", "speed"])
@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("board", ["mps2-an386", "mps3-an547"])  # M4 (DSP), M55 (MVE)
def test_simd_kernel_on_qemu(board, case, prefer):
    report = check(case, board, None, prefer, n=3)
    assert all(n > 0 for n in report["timer"]["instructions"])


@pytest.mark.slow
@pytest.mark.parametrize("case", ["conv3x3_same_s2_ic3_oc5_odd_pixels",
                                  "depthwise3x3_same_c16", "fc_d20_u5_per_channel_batch3",
                                  "add_residual"])
def test_simd_kernel_on_cortex_m33(case):
    check(case, "mps2-an505", None, "speed", n=3)
