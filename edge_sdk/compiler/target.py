"""The compiler's view of where a program runs: a kernel set, and the variants it tries per op.

A board (``project/boards.py``) knows its core; this object is what the compiler needs of it.
The operator registry (:mod:`edge_sdk.compiler.registry`) says *what* each operator computes and
names its portable kernel; a kernel set adds faster *variants* for the operators that carry the
multiply-accumulates, each of which serves the layers it fits (its ``select`` says which, with
named predicates, the way CMSIS-NN's wrappers do) and leaves the others to the next variant and,
last, to the portable kernel:

=============  ===========================================================================
kernel set     variants, tried in order
=============  ===========================================================================
``generic``    none: portable C (any core; also what TVM's LLVM backend builds)
``dsp``        Armv7E-M/Armv8-M DSP (``edge_dsp.h``): convolution, depthwise, fully
               connected, ADD/SUB
``mve``        Helium (``edge_mve.h``) first, then the DSP variants
``cpu``        Linux CPUs through LLVM: vector-friendly layouts and tiles, int8 and float32,
               threads; ``cpu-avx2``, ``cpu-vnni`` and ``cpu-dotprod`` add x86
               ``vpmaddwd`` / x86 ``vpdpbusd`` / Arm ``sdot`` dot-product steps
=============  ===========================================================================

Adding a kernel set: its kernels in ``kernels/<set>.py`` (each a ``select`` and the variants it
names), a row in :data:`KERNEL_SETS`, its chains in :meth:`Target.variants`, and the board
feature that picks it in ``api.isa_for``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property, partial

from edge_sdk.compiler.kernels.schedule import Tuning
from edge_sdk.compiler.program import Step
from edge_sdk.errors import UsageError

KERNEL_SETS = ("generic", "dsp", "mve", "cpu", "cpu-avx2", "cpu-vnni", "cpu-dotprod")

# A variant: lowers an operator for this kernel set, or returns None where it does not fit.
Variant = Callable[..., Step | None]


@dataclass(frozen=True)
class Target:
    """``kernels``: one of :data:`KERNEL_SETS`. ``tuning``: schedules `edge-sdk tune` measured
    for the Linux CPU kernels."""

    kernels: str = "generic"
    tuning: Tuning | None = None

    def __post_init__(self) -> None:
        if self.kernels not in KERNEL_SETS:
            raise UsageError(f"kernel set '{self.kernels}' does not exist: choose one of "
                             f"{', '.join(KERNEL_SETS)}")

    @property
    def linux(self) -> bool:
        """A Linux CPU's kernel set (built by TVM's LLVM backend, threads, tuning)."""
        return self.kernels.startswith("cpu")

    @property
    def microcontroller_simd(self) -> bool:
        """Kernels that call the Cortex-M micro-kernel headers (``edge_dsp.h``...)."""
        return self.kernels in ("dsp", "mve")

    def variants(self, key: str) -> list[Variant]:
        """The variants to try, in order, for ``key``: an opcode on int8 data, or
        ``float32:<opcode>`` on float data."""
        return self._chains.get(key, [])

    @cached_property
    def _chains(self) -> dict[str, list[Variant]]:
        if self.kernels == "generic":
            return {}
        if self.linux:
            from edge_sdk.compiler.kernels import (
                cpu,
                elementwise,
                float32,
                layout,
                pooling,
                reduce,
            )
            from edge_sdk.compiler.kernels.schedule import threaded
            from edge_sdk.compiler.registry import OPS

            # One schedule per op family, for int8 and float32 layers alike.
            conv = partial(cpu.lower_conv2d_cpu, isa=self.kernels, tuning=self.tuning)
            fc = partial(cpu.lower_fully_connected_cpu, isa=self.kernels, tuning=self.tuning)
            linux: dict[str, list[Variant]] = {
                "CONV_2D": [conv], "DEPTHWISE_CONV_2D": [conv], "FULLY_CONNECTED": [fc],
                "float32:CONV_2D": [conv], "float32:DEPTHWISE_CONV_2D": [conv],
                "float32:FULLY_CONNECTED": [fc]}
            # Elementwise operators: the same computation, its rows over the threads.
            for name, op in OPS.items():
                if op.float32 in (float32.lower_unary, float32.lower_binary):
                    linux[f"float32:{name}"] = [partial(threaded, lowering=op.float32)]
            for name, lowering in (("ADD", elementwise.lower_add),
                                   ("SUB", elementwise.lower_add),
                                   ("MUL", elementwise.lower_mul)):
                linux[name] = [partial(threaded, lowering=lowering)]
            for name, lowering in (("PAD", layout.lower_pad), ("PADV2", layout.lower_pad),
                                   ("TRANSPOSE", layout.lower_transpose)):
                linux[name] = linux[f"float32:{name}"] = [partial(threaded, lowering=lowering)]
            # Pooling: channels in vector lanes, output rows over the threads.
            for name in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
                linux[name] = linux[f"float32:{name}"] = [pooling.lower_pool_rows]
            # MEAN/SUM: sums side by side in vector lanes, blocks of them over the threads.
            for name in ("MEAN", "SUM"):
                linux[name] = linux[f"float32:{name}"] = [reduce.lower_reduce_rows]
            return linux
        from edge_sdk.compiler.kernels import dsp, mve

        chains: dict[str, list[Variant]] = {
            "CONV_2D": [dsp.lower_conv2d_dsp], "DEPTHWISE_CONV_2D": [dsp.lower_conv2d_dsp],
            "FULLY_CONNECTED": [dsp.lower_fully_connected_dsp], "ADD": [dsp.lower_add_dsp],
            "SUB": [dsp.lower_add_dsp]}
        if self.kernels == "mve":
            chains["CONV_2D"].insert(0, mve.lower_conv2d_mve)
            chains["DEPTHWISE_CONV_2D"].insert(0, mve.lower_conv2d_mve)
            chains["FULLY_CONNECTED"].insert(0, mve.lower_fully_connected_mve)
        return chains


def as_target(target: Target | str, tuning: Tuning | None = None) -> Target:
    """A Target from itself or a kernel set's name."""
    return target if isinstance(target, Target) else Target(target, tuning)
