"""Resource variables turned into variable tensors: state the run function keeps in the arena.

Streaming models (microWakeWord's format for ESPHome, made with the TFLite converter's
``experimental_enable_resource_variables``) keep each stream buffer in a *resource variable*:

- ``VAR_HANDLE`` (options ``container``, ``shared_name``) makes a RESOURCE tensor naming it;
- ``READ_VARIABLE(handle) -> value`` copies the variable's current value out;
- ``ASSIGN_VARIABLE(handle, value)`` stores a new one (it has no output);
- ``CALL_ONCE`` runs an initialiser subgraph once, before the first inference, whose
  ``ASSIGN_VARIABLE`` s give each variable its starting value.

The compiler already keeps state for LSTMs: a tensor marked ``is_variable`` gets arena bytes no
other tensor shares, so it lives from one inference to the next. So each variable becomes one
such tensor of the main subgraph: the RESOURCE tensor of its first ``VAR_HANDLE`` takes the
variable's dtype, shape and quantization (those of the values read and assigned, which must
agree) and the initialiser's constant as its ``initial`` value. ``READ_VARIABLE`` then reads that
tensor; ``ASSIGN_VARIABLE`` writes it (its only input is the value, its output the variable).
``VAR_HANDLE`` and ``CALL_ONCE`` do no work at run time and disappear; operators are renumbered.

An initialiser that computes its values (anything but constants assigned) is refused by name:
no model seen does that, and running arbitrary subgraphs once is a different feature.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from edge_sdk.errors import ModelError, UnsupportedOpError
from edge_sdk.ir import Operator, Tensor

VARIABLE_OPS = frozenset({"VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE", "CALL_ONCE"})

Subgraph = tuple[list[Tensor], list[Operator]]


def _key(op: Operator) -> tuple[str, str]:
    return op.options.get("container", ""), op.options.get("shared_name", "")


def _initial_values(read: Callable[[int], Subgraph], subgraphs: int, call: Operator
                    ) -> dict[tuple[str, str], Tensor]:
    """The constants an initialiser subgraph assigns, by variable."""
    index = int(call.options.get("init_subgraph_index", -1))
    if not 0 < index < subgraphs:
        raise ModelError(f"operator {call.index} (CALL_ONCE) names subgraph {index}; the model "
                         f"has {subgraphs}")
    tensors, operators = read(index)
    handles: dict[int, tuple[str, str]] = {}
    values: dict[tuple[str, str], Tensor] = {}
    for op in operators:
        if op.opcode == "VAR_HANDLE" and len(op.outputs) == 1:
            handles[op.outputs[0]] = _key(op)
        elif op.opcode == "ASSIGN_VARIABLE" and len(op.inputs) == 2:
            handle, value = op.inputs
            if handle not in handles:
                raise ModelError(f"the initialiser (subgraph {index}) assigns tensor {handle}, "
                                 "which no VAR_HANDLE made")
            if tensors[value].data is None:
                raise UnsupportedOpError(
                    f"the initialiser (subgraph {index}) computes the starting value of variable "
                    f"'{handles[handle][1]}': edge-sdk takes initialisers that assign constants")
            values[handles[handle]] = tensors[value]
        else:
            raise UnsupportedOpError(
                f"the initialiser (subgraph {index}) runs {op.opcode}: edge-sdk takes "
                "initialisers that only assign constants to variables (VAR_HANDLE, "
                "ASSIGN_VARIABLE)")
    return values


def resolve_variables(tensors: list[Tensor], operators: list[Operator],
                      read: Callable[[int], Subgraph], subgraphs: int
                      ) -> tuple[list[Tensor], list[Operator]]:
    """The main subgraph with its resource variables made variable tensors (module docstring).
    ``read(k)`` gives subgraph ``k``'s tensors and operators, for a CALL_ONCE's initialiser."""
    if not any(op.opcode in VARIABLE_OPS for op in operators) and not any(
            t.dtype == "resource" for t in tensors):
        return tensors, operators
    initial: dict[tuple[str, str], Tensor] = {}
    for op in operators:
        if op.opcode == "CALL_ONCE":
            initial.update(_initial_values(read, subgraphs, op))
    # Each variable is the RESOURCE tensor of its first VAR_HANDLE; later handles of the same
    # variable are read and written through that one.
    home: dict[tuple[str, str], int] = {}
    handle_of: dict[int, int] = {}
    for op in operators:
        if op.opcode == "VAR_HANDLE":
            if len(op.outputs) != 1 or tensors[op.outputs[0]].dtype != "resource":
                raise ModelError(f"operator {op.index} (VAR_HANDLE) must make one RESOURCE "
                                 "tensor")
            handle_of[op.outputs[0]] = home.setdefault(_key(op), op.outputs[0])
    seen: dict[int, list[Tensor]] = {}  # the variable -> the values read from it or assigned
    for op in operators:
        uses = [t for t in op.inputs if t >= 0 and tensors[t].dtype == "resource"]
        if op.opcode == "READ_VARIABLE" and len(op.inputs) == 1 and len(op.outputs) == 1:
            where = handle_of.get(op.inputs[0])
            if where is None:
                raise ModelError(f"operator {op.index} (READ_VARIABLE) reads tensor "
                                 f"{op.inputs[0]}, which no VAR_HANDLE made")
            seen.setdefault(where, []).append(tensors[op.outputs[0]])
        elif op.opcode == "ASSIGN_VARIABLE" and len(op.inputs) == 2 and not op.outputs:
            where = handle_of.get(op.inputs[0])
            if where is None:
                raise ModelError(f"operator {op.index} (ASSIGN_VARIABLE) writes tensor "
                                 f"{op.inputs[0]}, which no VAR_HANDLE made")
            seen.setdefault(where, []).append(tensors[op.inputs[1]])
        elif op.opcode in ("READ_VARIABLE", "ASSIGN_VARIABLE"):
            raise ModelError(f"operator {op.index} ({op.opcode}) has {len(op.inputs)} inputs and "
                             f"{len(op.outputs)} outputs")
        elif uses and op.opcode != "VAR_HANDLE":
            raise UnsupportedOpError(f"operator {op.index} ({op.opcode}) takes a resource "
                                     "variable's handle: only READ_VARIABLE and ASSIGN_VARIABLE "
                                     "may")

    tensors = list(tensors)
    for key, where in home.items():
        values = seen.get(where, [])
        start = initial.get(key)
        kinds = {(v.dtype, v.shape, v.quant) for v in (*values, *([start] if start else []))}
        name = key[1] or tensors[where].name
        if not kinds:
            raise ModelError(f"variable '{name}' is never read, assigned or initialised")
        if len(kinds) > 1:
            shown = "; ".join(f"{d} {list(s)}" for d, s, _ in sorted(kinds, key=str))
            raise ModelError(f"variable '{name}' is read, assigned or initialised as different "
                             f"tensors ({shown}, or different quantization)")
        dtype, shape, quant = kinds.pop()
        data = None if start is None else np.asarray(start.data).astype(dtype).reshape(shape)
        tensors[where] = Tensor(index=where, name=name, shape=shape, dtype=dtype, quant=quant,
                                is_variable=True, initial=data)
    for t, tensor in enumerate(tensors):
        if tensor.dtype == "resource":  # a second handle of a variable: never used now
            tensors[t] = dataclasses.replace(tensor, dtype="int32", shape=(), signature=None)

    rewritten: list[Operator] = []
    for op in operators:
        if op.opcode in ("VAR_HANDLE", "CALL_ONCE"):
            continue
        if op.opcode == "READ_VARIABLE":
            op = dataclasses.replace(op, inputs=(handle_of[op.inputs[0]],))
        elif op.opcode == "ASSIGN_VARIABLE":
            op = dataclasses.replace(op, inputs=(op.inputs[1],),
                                     outputs=(handle_of[op.inputs[0]],))
        rewritten.append(dataclasses.replace(op, index=len(rewritten)))
    return tensors, rewritten
