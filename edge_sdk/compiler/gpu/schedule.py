"""TVM's default GPU schedules (``dlight``) for each step, and which one each step got.

The rules are tried in the order TVM's own Relax GPU pipeline uses; the first that accepts a
function schedules it. ``Fallback`` always accepts: it fuses the spatial loops and binds them to
``blockIdx.x``/``threadIdx.x`` with the target's ``max_threads_per_block``.

Softmax goes straight to ``Fallback``: its float sum must run in TFLite's order to stay bit-exact,
so each row is summed by one thread (its rows are short; the normalisation stays parallel).
"""

from __future__ import annotations

from tvm import tirx
from tvm.s_tir import dlight as dl
from tvm.target import Target

from edge_sdk.compiler.program import Step
from edge_sdk.errors import UnsupportedOpError


def default_rules(target: Target) -> list:
    """TVM's Relax GPU rule order, without ``Matmul``.

    ``dlight.gpu.Matmul`` accepts our convolutions but its result is wrong on them (measured on
    PoCL: 5,108 of 8,000 outputs of KWS layer 0 differ, with both its default and its mobile
    configuration), while every other rule is bit-exact; so convolutions get
    ``GeneralReduction`` (one work group per output pixel row, a cross-thread tree over the
    taps) until that is understood. ``tests/test_gpu.py`` pins this list.
    """
    return [dl.gpu.GEMV(), dl.gpu.LowBatchGEMV(), dl.gpu.Reduction(), dl.gpu.GeneralReduction(),
            dl.gpu.Fallback()]


SERIAL_SUM_OPS = ("SOFTMAX",)


def schedule_step(step: Step, target: Target) -> tuple[tirx.PrimFunc, str]:
    """The scheduled function and the name of the rule that scheduled it."""
    rules = [dl.gpu.Fallback()] if step.opcode in SERIAL_SUM_OPS else default_rules(target)
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
