"""The compiler's output: a straight-line program of kernel calls over named tensors.

Data flows one way: :mod:`edge_sdk.frontend` gives a ``Graph``, :mod:`edge_sdk.compiler.lower`
turns each operator into a :class:`Step` (a TIR kernel plus its arguments), the planner assigns
arena offsets, and :mod:`edge_sdk.codegen` prints C. These objects are the contract between those
stages; none of them holds a reference to the flatbuffer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edge_sdk.frontend.tflite import Graph


@dataclass(frozen=True, eq=False)
class Constant:
    """A read-only array baked into flash: weights, biases, requantization tables.

    ``name`` becomes part of a C identifier (``<model>_<name>``).
    """

    name: str
    array: np.ndarray = field(repr=False)

    @property
    def dtype(self) -> str:
        return str(self.array.dtype)

    @property
    def nbytes(self) -> int:
        return int(self.array.nbytes)


@dataclass(frozen=True)
class TensorArg:
    """A kernel argument that is an activation tensor of the graph (arena, input or output)."""

    tensor: int
    writes: bool = False


@dataclass(frozen=True)
class Scratch:
    """Working memory one step needs only while it runs.

    On a GPU, device memory between a step's kernels (e.g. softmax's row maxima); on a
    microcontroller, a kernel's im2col buffer, planned into the arena like a tensor that lives
    for one step.
    """

    name: str
    shape: tuple[int, ...]
    dtype: str

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape)) * np.dtype(self.dtype).itemsize


KernelArg = TensorArg | Constant | Scratch


@dataclass
class Step:
    """One source layer, lowered.

    ``kind`` is ``"kernel"`` (call ``func`` with ``args``) or ``"alias"`` (the output shares the
    input's memory: RESHAPE and friends cost nothing at run time).
    """

    op_index: int
    opcode: str
    layer: str
    kind: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    func: Any = None  # tvm.tirx.PrimFunc for kernels
    func_name: str = ""
    args: tuple[KernelArg, ...] = ()
    macs: int = 0
    notes: str = ""

    @property
    def constants(self) -> list[Constant]:
        return [a for a in self.args if isinstance(a, Constant)]

    @property
    def scratch(self) -> list[Scratch]:
        return [a for a in self.args if isinstance(a, Scratch)]


@dataclass
class Program:
    """All steps of a model, in execution order, plus the graph they came from."""

    name: str
    graph: Graph
    steps: list[Step]
    isa: str = "generic"  # the kernel set (see edge_sdk.compiler.lower.ISAS)

    @property
    def input(self) -> int:
        return self.graph.inputs[0]

    @property
    def output(self) -> int:
        return self.graph.outputs[0]

    @property
    def constants(self) -> list[Constant]:
        return [c for s in self.steps for c in s.constants]
