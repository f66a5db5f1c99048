"""User data <-> the bytes a board exchanges: every input and output of a model, batched.

A model has one or several inputs and outputs. The user gives inputs as one array (a
single-input model), a list in the model's input order, or a mapping keyed ``input_0``,
``input_1``, ... (what ``.npz`` files hold) or by tensor name. Each input is converted on its own
(int8 as is, float quantized with that input's parameters) and the batch is packed into the
layout the firmware uses (:class:`edge_sdk.compiler.program.ModelIO`: each tensor at a 16-byte
aligned offset). Outputs come back the other way: one array per output, ``(batch, *shape)``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from edge_sdk.compiler.program import ModelIO, model_io, packed_bytes
from edge_sdk.compiler.quantization import quantize_array
from edge_sdk.errors import UsageError
from edge_sdk.ir import Graph, Tensor

Inputs = np.ndarray | Sequence[np.ndarray] | Mapping[str, np.ndarray]


def input_key(i: int) -> str:
    return f"input_{i}"


def output_key(i: int) -> str:
    return f"output_{i}"


def input_list(graph: Graph, inputs: Inputs) -> list[np.ndarray]:
    """The user's inputs, one array per model input, in the model's order."""
    tensors = [graph.tensor(t) for t in graph.inputs]
    if isinstance(inputs, np.ndarray):
        if len(tensors) != 1:
            raise UsageError(f"the model has {len(tensors)} inputs: give them as an .npz with "
                             f"keys {', '.join(input_key(i) for i in range(len(tensors)))}")
        return [inputs]
    if isinstance(inputs, Mapping):
        out = []
        for i, t in enumerate(tensors):
            key = next((k for k in (input_key(i), t.name) if k in inputs), None)
            if key is None:
                raise UsageError(f"no data for model input {i} ('{t.name}'): give key "
                                 f"{input_key(i)} (keys given: {', '.join(sorted(inputs))})")
            out.append(np.asarray(inputs[key]))
        extra = set(inputs) - {input_key(i) for i in range(len(tensors))} - {
            t.name for t in tensors}
        if extra:
            keys = ", ".join(input_key(i) for i in range(len(tensors)))
            raise UsageError(f"the model has no input named {', '.join(sorted(extra))}: "
                             f"its inputs are {keys}")
        return out
    arrays = [np.asarray(a) for a in inputs]
    if len(arrays) != len(tensors):
        raise UsageError(f"the model has {len(tensors)} inputs, {len(arrays)} were given")
    return arrays


def layout(x: np.ndarray, t: Tensor) -> tuple[int, str]:
    """How the user's array ``x`` holds samples of input ``t``: ``(samples, how)``.

    ``one``: one sample, in the tensor's shape, without its batch axis of 1, or flat.
    ``batch``: N samples along the tensor's batch axis of 1, ``(N, *shape[1:])``.
    ``stack``: N samples each in the tensor's full shape, ``(N, *shape)``, or flat rows
    ``(N, size)``. Anything else is refused, naming the shapes that fit: an array of the right
    size in another layout (NCHW for an NHWC model) would run and give wrong outputs."""
    shape, got = tuple(t.shape), tuple(x.shape)
    if got in (shape, (t.size,)) or (shape[:1] == (1,) and got == shape[1:]):
        return 1, "one"
    if len(got) >= 1 and got[0] >= 1:
        if len(shape) >= 2 and shape[0] == 1 and got[1:] == shape[1:]:
            return got[0], "batch"
        if got[1:] in (shape, (t.size,)):
            return got[0], "stack"
    sample = shape[1:] if shape[:1] == (1,) else shape
    fits = f"{list(sample)} for one sample or [N, {', '.join(map(str, sample))}] for N"
    hint = ""
    if (len(got) == len(shape) and len(shape) == 4 and got[1:] != shape[1:]
            and sorted(got[1:]) == sorted(shape[1:]) and got[1] == shape[3]):
        hint = (": this looks channels-first (NCHW); the model takes NHWC, so transpose it "
                "with x.transpose(0, 2, 3, 1)")
    elif x.size == 0:
        hint = ": the array is empty"
    raise UsageError(f"input '{t.name}' has shape {list(got)}; the model takes {fits}{hint}")


def quantize_one(x: np.ndarray, t: Tensor) -> np.ndarray:
    """One input's data as a batch of rows of the tensor's type: int8 as is, float quantized
    with the tensor's parameters; a float32 tensor takes float (or integer) data."""
    layout(x, t)
    if t.dtype == "float32":
        if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
            raise UsageError(f"input '{t.name}': dtype {x.dtype} is not supported: give float32")
        q = x.astype(np.float32)
        bad = int(np.count_nonzero(~np.isfinite(q)))
        if bad:  # a float model takes them as they are; say so instead of running silently
            from edge_sdk import progress

            progress.warn(f"input '{t.name}' holds {bad} NaN or infinite value(s): the model "
                          "computes with them as given, so its outputs will likely be NaN too")
    elif x.dtype == np.dtype(t.dtype):
        q = x
    elif np.issubdtype(x.dtype, np.floating) and t.quant is not None:
        if not np.all(np.isfinite(x)):  # quantizing would turn NaN into 0 without a word
            raise UsageError(f"input '{t.name}' contains NaN or infinity: clean the data "
                             f"before it is quantized to {t.dtype}")
        q = quantize_array(x, t.quant.scale[0], t.quant.zero_point[0], t.dtype)
    elif np.issubdtype(x.dtype, np.integer) and t.dtype in ("int16", "int32"):
        info = np.iinfo(t.dtype)
        if x.size and (x.min() < info.min or x.max() > info.max):
            raise UsageError(f"input '{t.name}': values outside {t.dtype}")
        q = x.astype(t.dtype)
    else:
        raise UsageError(f"input '{t.name}': dtype {x.dtype} is not supported: give {t.dtype} "
                         "or float32 data")
    if q.size % t.size or q.size == 0:
        raise UsageError(f"input '{t.name}' has {q.size} values; the model takes batches of "
                         f"{t.size} (shape {list(t.shape)})")
    return q.reshape(-1, t.size)


def quantize_inputs(graph: Graph, inputs: Inputs) -> list[np.ndarray]:
    """Each input as a ``(batch, size)`` array of its tensor's type; batches must agree."""
    arrays = [quantize_one(x, graph.tensor(t))
              for x, t in zip(input_list(graph, inputs), graph.inputs, strict=True)]
    counts = {len(a) for a in arrays}
    if len(counts) > 1:
        raise UsageError(f"the inputs hold different numbers of samples ({sorted(counts)}): "
                         "give each input the same batch")
    return arrays


def default_inputs(graph: Graph) -> list[np.ndarray]:
    """The deterministic input of ../shared/BASELINES.md, for each input:
    ``input[i] = (int8)(i*7 + 3)``; a float input gets the same integers scaled to [-1, 1), an
    int16 one the same values times 256."""
    out = []
    for t in (graph.tensor(i) for i in graph.inputs):
        pattern = ((np.arange(t.size, dtype=np.int64) * 7 + 3) & 0xFF).astype(np.uint8)
        signed = pattern.view(np.int8)
        if t.dtype == "float32":
            out.append((signed.astype(np.float32) / 128.0)[None])
        else:  # int16 gets the same pattern in its high byte
            out.append((signed.astype(t.dtype) * (256 if t.dtype == "int16" else 1))[None])
    return out


def pack(graph: Graph, arrays: list[np.ndarray]) -> np.ndarray:
    """``(batch, packed_bytes)`` uint8: each sample's inputs at their offsets."""
    ios = model_io(graph, "input")
    batch = len(arrays[0])
    out = np.zeros((batch, packed_bytes(ios)), np.uint8)
    for io, a in zip(ios, arrays, strict=True):
        out[:, io.offset:io.offset + io.nbytes] = np.ascontiguousarray(a).view(np.uint8).reshape(
            batch, io.nbytes)
    return out


def unpack(graph: Graph, rows: list[bytes]) -> list[np.ndarray]:
    """Each output as ``(batch, *shape)`` from the packed output bytes of each sample."""
    out = []
    for io in model_io(graph, "output"):
        t = graph.tensor(io.tensor)
        data = b"".join(r[io.offset:io.offset + io.nbytes] for r in rows)
        out.append(np.frombuffer(data, dtype=np.dtype(t.dtype)).reshape(len(rows), *t.shape))
    return out


def shape_outputs(graph: Graph, inputs: Inputs | None, outs: list[np.ndarray]
                  ) -> list[np.ndarray]:
    """The outputs shaped as the inputs were given (see :func:`layout`), the same in the API's
    ``result.outputs`` and the CLI's ``--output``: one sample (or none given: the default
    input) gives the model's output shape, ``(1, 12)``; N samples along the batch axis give
    ``(N, *shape[1:])``; N stacked samples ``(N, *shape)``."""
    how = "one"
    if inputs is not None:
        first = input_list(graph, inputs)[0]  # the model's first input, whatever the keys' order
        how = layout(np.asarray(first), graph.tensor(graph.inputs[0]))[1]
    shapes = [tuple(graph.tensor(t).shape) for t in graph.outputs]
    if how == "one":
        return [o.reshape(shape) for o, shape in zip(outs, shapes, strict=True)]
    if how == "batch":
        return [o.reshape(len(o), *(shape[1:] if shape[:1] == (1,) else shape))
                for o, shape in zip(outs, shapes, strict=True)]
    return outs


def output_ios(graph: Graph) -> tuple[ModelIO, ...]:
    return model_io(graph, "output")


def outputs_bytes(graph: Graph) -> int:
    return packed_bytes(model_io(graph, "output"))
