"""The model as every stage after a frontend sees it: tensors, operators, the graph.

A frontend (the TFLite reader, the ONNX importer) produces a :class:`Graph`; the compiler, the
report and ``inspect`` read it and never see the file it came from. These are plain data with
no behaviour of any stage, so they import nothing of edge-sdk's but its error type.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edge_sdk.errors import ModelError


@dataclass(frozen=True)
class QuantParams:
    """Affine quantization of one tensor: ``real = scale * (q - zero_point)``.

    ``scale`` holds the float32 values exactly as stored (as Python floats); one entry for
    per-tensor quantization, one per channel along ``axis`` otherwise.
    """

    scale: tuple[float, ...]
    zero_point: tuple[int, ...]
    axis: int = 0

    @property
    def per_channel(self) -> bool:
        return len(self.scale) > 1


@dataclass
class Tensor:
    """A tensor of the graph; ``data`` is set for constants (weights, biases, shapes)."""

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str
    quant: QuantParams | None = None
    data: np.ndarray | None = field(default=None, repr=False)
    is_variable: bool = False  # state kept across inferences (an LSTM's hidden and cell state)
    # A variable's value before the first inference: a resource variable's initialiser
    # (CALL_ONCE). None: TFLite's reset value, the zero point for int8 and 0 otherwise.
    initial: np.ndarray | None = field(default=None, repr=False)
    # The shape with -1 where the model leaves a dimension open (Keras' batch); ``shape`` holds
    # what the file stores there (1), which is what edge-sdk compiles for. None: all fixed.
    signature: tuple[int, ...] | None = None

    @property
    def dynamic(self) -> bool:
        return self.signature is not None and any(d < 0 for d in self.signature)

    @property
    def short_name(self) -> str:
        """The converter joins fused names with ';': the first one names the layer."""
        return self.name.split(";")[0]

    @property
    def is_constant(self) -> bool:
        return self.data is not None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    @property
    def nbytes(self) -> int:
        return self.size * np.dtype(self.dtype).itemsize


@dataclass
class Operator:
    """One operator: ``opcode`` is the TFLite builtin name, e.g. ``"CONV_2D"``.

    ``inputs`` may hold ``-1`` for an optional input that is absent (e.g. no bias).
    ``intermediates`` are tensors that only carry quantization parameters for values inside
    the operator (an int8 LSTM's gate and hidden scales).
    """

    index: int
    opcode: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: dict[str, Any]
    intermediates: tuple[int, ...] = ()


@dataclass
class Graph:
    """The main subgraph of a model, in execution order."""

    name: str
    tensors: list[Tensor]
    operators: list[Operator]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    source: Path | None = None
    # "tflite": TFLite builtin operators read from a .tflite file; "onnx": the same operators,
    # translated from a .onnx file (frontend/onnx.py); "relax": a .onnx file imported through
    # TVM's Relax frontend, each operator a legalized TIR kernel (options["prim_func"]), see
    # frontend/relax_onnx.py. Both ONNX origins are checked against onnxruntime.
    origin: str = "tflite"

    @property
    def from_onnx(self) -> bool:
        """Read from a .onnx file (onnxruntime is its reference), by either route."""
        return self.origin in ("onnx", "relax")

    def tensor(self, index: int) -> Tensor:
        """The tensor at ``index``. A negative index is never "from the end" (Python's
        meaning): -1 is TFLite's absent optional input, which the caller must test first."""
        if not 0 <= index < len(self.tensors):
            raise ModelError(f"tensor index {index} does not exist (the graph has "
                             f"{len(self.tensors)} tensors)")
        return self.tensors[index]

    @property
    def is_int8(self) -> bool:
        """True when every graph input and output is int8 (a full-integer model)."""
        io = [self.tensors[i] for i in (*self.inputs, *self.outputs)]
        return all(t.dtype == "int8" and t.quant is not None for t in io)
