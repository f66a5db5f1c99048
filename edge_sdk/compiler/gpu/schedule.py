"""TVM's default GPU schedules (``dlight``) for each step, and which one each step got.

The rules are tried in the order TVM's own Relax GPU pipeline uses; the first that accepts a
function schedules it. ``Fallback`` always accepts: it fuses the spatial loops and binds them to
``blockIdx.x``/``threadIdx.x`` with the target's ``max_threads_per_block``.

Softmax goes straight to ``Fallback``: its float sum must run in TFLite's order to stay bit-exact,
so each row is summed by one thread (its rows are short; the normalisation stays parallel).
"""

from __future__ import annotations

from tvm import s_tir, tirx
from tvm.s_tir import dlight as dl
from tvm.s_tir.dlight.analysis import normalize_prim_func
from tvm.s_tir.dlight.base import max_threads_per_block, try_inline
from tvm.target import Target

from edge_sdk.compiler.program import Step
from edge_sdk.errors import UnsupportedOpError


def default_rules(target: Target, matmul: bool = True) -> list:
    """TVM's Relax GPU rule order: ``Matmul`` (tiled, shared memory), the GEMV rules (fully
    connected at batch 1), the reductions (pooling, means), ``Fallback``.

    ``matmul=False`` leaves ``Matmul`` out. :func:`schedule_step` offers it only to the
    convolutions we define ourselves (``CONV_2D`` from a .tflite, NHWC): there it is bit-exact
    in every case measured (each layer of KWS, VWW and ResNet-8 compared with LiteRT on PoCL,
    the convolution cases of tests/test_ops.py, and the NVIDIA GPU run of
    benchmarks/gpu_cuda.py). On the NCHW convolutions that TVM's ONNX importer legalizes it is
    still wrong (PoCL: all 32 outputs of ONNX's test_Conv2d_strided, NaN in test_Conv2d_padding;
    an early build of ours had 5,108 of 8,000 of KWS layer 0 wrong); why is not found yet, so
    those keep ``GeneralReduction``. ``tests/test_gpu.py`` pins the rule each layer gets.
    """
    rules = [dl.gpu.GEMV(), dl.gpu.LowBatchGEMV(), dl.gpu.Reduction(), dl.gpu.GeneralReduction(),
             dl.gpu.Fallback()]
    return [dl.gpu.Matmul(), *rules] if matmul else rules


# Our own convolution definitions (kernels.conv2d_int8, the float one), where Matmul is right.
MATMUL_OPS = ("CONV_2D",)
SERIAL_SUM_OPS = ("SOFTMAX",)
# Depthwise layers sum 9-25 taps per output: a reduction rule spreads those few taps over a
# thread block and reduces across it, leaving most threads idle. One thread per output with
# the taps in a loop keeps every thread busy, and neighbouring threads read neighbouring
# channels (see :func:`one_thread_per_output`).
ONE_THREAD_PER_OUTPUT = ("DEPTHWISE_CONV_2D",)


def one_thread_per_output(func: tirx.PrimFunc, target: Target) -> s_tir.Schedule | None:
    """Each thread computes one output element: the padding read inlined, the int32 sum over
    the taps in a register (its block computed at the thread's loop), then the epilogue
    (requantization). dlight's ``Fallback`` would give the sum its own kernel and a global
    buffer between the two; here the layer stays one launch with no scratch."""
    sch = s_tir.Schedule(func)
    infos = normalize_prim_func(sch)
    if infos is None:
        return None
    infos = try_inline(sch, infos)
    reductions = [b for b in infos if "R" in b.dom_kind()]
    spatial = [b for b in infos if "R" not in b.dom_kind()]
    if len(reductions) != 1 or len(spatial) != 1:
        return None
    acc, out = reductions[0].block_rv, spatial[0].block_rv
    bx, tx = sch.split(sch.fuse(*sch.get_loops(out)),
                       factors=[None, max_threads_per_block(target)])
    sch.bind(bx, "blockIdx.x")
    sch.bind(tx, "threadIdx.x")
    sch.compute_at(acc, tx)
    sch.set_scope(acc, 0, "local")  # its init runs on the first tap (TIR's own lowering)
    return sch


def schedule_step(step: Step, target: Target) -> tuple[tirx.PrimFunc, str]:
    """The scheduled function and the name of the rule that scheduled it."""
    if step.opcode in ONE_THREAD_PER_OUTPUT:
        with target:
            sch = one_thread_per_output(step.func, target)
        if sch is not None:
            return (sch.mod["main"].with_attr("tirx.is_scheduled", True),
                    "edge-sdk: one thread per output, taps in a loop")
    rules = ([dl.gpu.Fallback()] if step.opcode in SERIAL_SUM_OPS
             else default_rules(target, matmul=step.opcode in MATMUL_OPS))
    with target:
        for rule in rules:
            try:
                sch = rule.apply(step.func, target, False)
            except Exception:  # a rule that matched the pattern but could not finish
                sch = None
            if sch is None:
                continue
            sch = sch[0] if isinstance(sch, list) else sch
            name = f"dlight.gpu.{type(rule).__name__}"
            if step.opcode in SERIAL_SUM_OPS:
                name += " (serial row sum, for bit-exactness)"
            return sch.mod["main"].with_attr("tirx.is_scheduled", True), name
    raise UnsupportedOpError(
        f"layer {step.op_index} ({step.opcode}): no GPU schedule applies to it; report this "
        "model, or compile for a CPU board")
