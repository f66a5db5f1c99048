"""The compiler's output: a straight-line program of kernel calls over named tensors.

Data flows one way: :mod:`edge_sdk.frontend` gives a ``Graph``, :mod:`edge_sdk.compiler.lower`
turns each operator into a :class:`Step` (a TIR kernel plus its arguments), the planner assigns
arena offsets, and :mod:`edge_sdk.codegen` prints C. These objects are the contract between those
stages; none of them holds a reference to the flatbuffer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from edge_sdk.ir import Graph


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

    ``kind`` is ``"kernel"`` (call ``func`` with ``args``), ``"alias"`` (the output shares the
    input's memory: RESHAPE and friends cost nothing at run time) or ``"copy"`` (the output gets
    the bytes of ``inputs[0]``, or of the step's one constant: a model output that is a model
    input, a constant, or another output already, has its own buffer to be written to).
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
    # Kernels that split their work over threads take (phase, begin, end) after ``args`` and
    # run phase k over rows [begin, end) of ``row_phases[k]``; phases run one after another.
    row_phases: tuple[int, ...] = ()

    @property
    def constants(self) -> list[Constant]:
        return [a for a in self.args if isinstance(a, Constant)]

    @property
    def scratch(self) -> list[Scratch]:
        return [a for a in self.args if isinstance(a, Scratch)]


IO_ALIGNMENT = 16  # each tensor's place in the packed input/output bytes


@dataclass(frozen=True)
class ModelIO:
    """One of the model's inputs or outputs, as the generated C and the firmware see it.

    ``param`` is its parameter in ``<model>_run``: ``input``/``output`` when the model has one
    (the historical API), ``input_0``, ``input_1``, ... when it has several. The firmware moves
    all inputs as one packed byte array (and all outputs as another): each tensor at ``offset``,
    a multiple of 16, in the model's order; the host splits and joins the same way.
    """

    role: str  # "input" or "output"
    index: int
    tensor: int
    param: str
    offset: int
    nbytes: int


def model_io(graph: Graph, role: str) -> tuple[ModelIO, ...]:
    tensors = graph.inputs if role == "input" else graph.outputs
    out, offset = [], 0
    for i, t in enumerate(tensors):
        nbytes = graph.tensor(t).nbytes
        out.append(ModelIO(role, i, t, role if len(tensors) == 1 else f"{role}_{i}", offset,
                           nbytes))
        offset += (nbytes + IO_ALIGNMENT - 1) // IO_ALIGNMENT * IO_ALIGNMENT
    return tuple(out)


def packed_bytes(ios: tuple[ModelIO, ...]) -> int:
    """Bytes of the packed layout (the last tensor unpadded)."""
    return max((io.offset + io.nbytes for io in ios), default=0)


@dataclass
class Program:
    """All steps of a model, in execution order, plus the graph they came from."""

    name: str
    graph: Graph
    steps: list[Step]
    isa: str = "generic"  # the kernel set (see edge_sdk.compiler.target.KERNEL_SETS)

    @property
    def inputs(self) -> tuple[ModelIO, ...]:
        return model_io(self.graph, "input")

    @property
    def outputs(self) -> tuple[ModelIO, ...]:
        return model_io(self.graph, "output")

    def io_of(self, tensor: int) -> ModelIO | None:
        """The model input or output that is this tensor (an output first), if any."""
        for io in (*self.outputs, *self.inputs):
            if io.tensor == tensor:
                return io
        return None

    @property
    def state_init(self) -> list[tuple[int, np.ndarray]]:
        """The variables (state kept between inferences) whose starting value is not all zero
        bytes, with that value: what the run function sets on its first call, since a zeroed
        arena holds zeros. TFLite starts a variable from its initialiser's constant (a
        resource variable's CALL_ONCE) or else resets it to its zero point: an int8 LSTM whose
        hidden state has zero point -4 starts from -4 (real 0), not from 0."""
        used = {t for step in self.steps for t in (*step.inputs, *step.outputs)}
        found = []
        for t in sorted(used):
            tensor = self.graph.tensor(t)
            if not tensor.is_variable:
                continue
            if tensor.initial is not None:
                value = np.ascontiguousarray(tensor.initial, dtype=tensor.dtype)
            elif tensor.dtype == "int8" and tensor.quant is not None and tensor.quant.zero_point[0]:
                value = np.full(tensor.shape, tensor.quant.zero_point[0], np.int8)
            else:
                continue
            if value.view(np.uint8).any():
                found.append((t, value.reshape(tensor.shape)))
        return found

    @property
    def constants(self) -> list[Constant]:
        """Every step's constants, once each by content: the flash arrays to emit. Steps may
        share one by name (e.g. the int16 sigmoid knots; a shared name must hold the same
        array), and different names may hold the same values: an unrolled RNN's steps all use
        one weight matrix, bias and activation table (an unrolled GRU keyword spotter stored
        each 48 times: 8x its file's size). :attr:`constant_aliases` names the others."""
        return list(self._constant_sharing[0])

    @property
    def constant_aliases(self) -> dict[str, str]:
        """A constant's name -> the name of the emitted constant with the same values."""
        return dict(self._constant_sharing[1])

    @cached_property
    def _constant_sharing(self) -> tuple[list[Constant], dict[str, str]]:
        """Computed once per program (it reads every weight's bytes): a Program's steps are
        not changed after lowering makes it."""
        seen: dict[str, Constant] = {}
        for c in (c for s in self.steps for c in s.constants):
            first = seen.setdefault(c.name, c)
            if first is not c and not np.array_equal(first.array, c.array):
                raise ValueError(f"two different constants are both named {c.name!r}")
        by_value: dict[tuple[str, tuple[int, ...], bytes], Constant] = {}
        aliases: dict[str, str] = {}
        for c in seen.values():
            key = (c.dtype, tuple(c.array.shape), np.ascontiguousarray(c.array).tobytes())
            home = by_value.setdefault(key, c)
            if home is not c:
                aliases[c.name] = home.name
        return list(by_value.values()), aliases
