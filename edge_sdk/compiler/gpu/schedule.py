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


class MobileMatmul(dl.gpu.Matmul):
    """``dlight.gpu.Matmul`` with the configuration TVM uses for mobile OpenCL GPUs (Adreno):
    no shared-memory staging, 8-wide vectors, short unrolls.

    On Mali, OpenCL local memory is ordinary system RAM, so staging through it buys nothing;
    the default configuration also takes ~30x longer to lower (6.5 s against 0.2 s per KWS
    convolution, measured), which matters for a CPU-only CI.
    """

    def get_configs(self, target: Target) -> dl.gpu.Matmul.Config:
        return dl.gpu.Matmul.Config(
            block_size_x=32, block_size_y=4, micro_size_x=8, micro_size_y=2, micro_size_k=16,
            vector_size=8, unroll=16, use_shared=False, storage_align=False, inner_x=True)


def default_rules(target: Target) -> list:
    matmul = MobileMatmul() if target.kind.name == "opencl" else dl.gpu.Matmul()
    return [matmul, dl.gpu.GEMV(), dl.gpu.LowBatchGEMV(), dl.gpu.Reduction(),
            dl.gpu.GeneralReduction(), dl.gpu.Fallback()]


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
            name = ("dlight.gpu.Matmul (mobile config)" if isinstance(rule, MobileMatmul)
                    else f"dlight.gpu.{type(rule).__name__}")
            if step.opcode in SERIAL_SUM_OPS:
                name += " (serial row sum, for bit-exactness)"
            return sch.mod["main"].with_attr("tirx.is_scheduled", True), name
    raise UnsupportedOpError(
        f"layer {step.op_index} ({step.opcode}): no GPU schedule applies to it; report this "
        "model, or compile for a CPU board")
