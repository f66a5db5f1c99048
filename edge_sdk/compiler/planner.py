"""Static arena planning: every intermediate tensor gets a fixed offset in one byte array.

The caller owns the model's input and output buffers, so only intermediates live in the arena,
plus the scratch a kernel needs while it runs (an im2col buffer), live for that one step.
Tensors joined by an alias step (RESHAPE) share one buffer. Each buffer is live from the step
that writes it to the last step that reads it; buffers are placed largest first at the lowest
offset that does not overlap a placed buffer with an intersecting lifetime (TFLite Micro's
greedy planner does the same, over a larger set of tensors).
"""

from __future__ import annotations

from dataclasses import dataclass

from edge_sdk.compiler.program import Program
from edge_sdk.errors import ModelError

ALIGNMENT = 16
STATE_READY = "state_ready"  # the arena word that says the model's state has been set


@dataclass(frozen=True)
class Buffer:
    """One planned buffer: the tensors that share it and where it lives.

    ``location`` is ``"arena"``, ``"input"`` or ``"output"`` (the caller's pointers; ``io``
    says which of the model's inputs or outputs).
    """

    root: int
    tensors: tuple[int, ...]
    nbytes: int
    first: int
    last: int
    location: str
    offset: int = 0
    scratch: str = ""  # a step's scratch buffer: its name (root is then negative)
    io: int = 0


@dataclass(frozen=True)
class MemoryPlan:
    buffers: tuple[Buffer, ...]
    arena_bytes: int

    def buffer_of(self, tensor: int) -> Buffer:
        for buf in self.buffers:
            if tensor in buf.tensors:
                return buf
        raise KeyError(tensor)

    def scratch(self, name: str) -> Buffer:
        for buf in self.buffers:
            if buf.scratch == name:
                return buf
        raise KeyError(name)

    def scratch_bytes(self, names: list[str]) -> int:
        """Arena bytes of these scratch buffers (GPU scratch is device memory: not here)."""
        return sum(b.nbytes for b in self.buffers if b.scratch and b.scratch in names)


def _align(n: int) -> int:
    return (n + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT


def plan(program: Program, scratch_in_arena: bool = True) -> MemoryPlan:
    """Place every intermediate (and, unless ``scratch_in_arena`` is off, as on GPUs where
    scratch is device memory, every step's scratch) in one arena."""
    graph = program.graph
    root: dict[int, int] = {}

    def find(t: int) -> int:
        while root.get(t, t) != t:
            t = root[t]
        return t

    for step in program.steps:
        if step.kind == "alias":
            root[step.outputs[0]] = find(step.inputs[0])

    groups: dict[int, list[int]] = {}
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for i, step in enumerate(program.steps):
        for t in (*step.inputs, *step.outputs):
            r = find(t)
            groups.setdefault(r, [])
            if t not in groups[r]:
                groups[r].append(t)
            first.setdefault(r, i)
            last[r] = i
    ios = (*program.inputs, *program.outputs)
    for io in ios:
        groups.setdefault(find(io.tensor), [io.tensor])

    buffers: list[Buffer] = []
    for r, members in groups.items():
        # An output wins over an input. (A model whose output is its input reshaped never
        # gets here as one group: lower makes that last reshape a copy.)
        mine = sorted((io for io in ios if io.tensor in members),
                      key=lambda io: io.role != "output")
        outputs = [io for io in mine if io.role == "output"]
        if len(outputs) > 1:
            raise ModelError(f"model outputs {outputs[0].index} and {outputs[1].index} are the "
                             "same tensor seen through a reshape: keep one of them")
        location, io_index = (mine[0].role, mine[0].index) if mine else ("arena", 0)
        start, end = first.get(r, 0), last.get(r, len(program.steps))
        if any(graph.tensor(t).is_variable for t in members):
            start, end = 0, len(program.steps)  # state: no other buffer ever shares its bytes
        buffers.append(Buffer(r, tuple(members), graph.tensor(r).nbytes, start, end, location,
                              io=io_index))

    if program.state_init:  # a word that says the state was set (see codegen.c_model)
        buffers.append(Buffer(-1 - len(buffers), (), ALIGNMENT, 0, len(program.steps), "arena",
                              scratch=STATE_READY))
    if scratch_in_arena:
        for i, step in enumerate(program.steps):
            for sc in step.scratch:
                buffers.append(Buffer(-1 - len(buffers), (), sc.nbytes, i, i, "arena",
                                      scratch=sc.name))

    placed: list[Buffer] = []
    arena = [b for b in buffers if b.location == "arena"]
    for buf in sorted(arena, key=lambda b: (-b.nbytes, b.first)):
        offset = 0
        conflicts = sorted(
            (p for p in placed if p.first <= buf.last and buf.first <= p.last),
            key=lambda p: p.offset,
        )
        for other in conflicts:
            if offset + buf.nbytes <= other.offset:
                break
            offset = max(offset, _align(other.offset + other.nbytes))
        placed.append(Buffer(buf.root, buf.tensors, buf.nbytes, buf.first, buf.last,
                             "arena", offset, buf.scratch))
    external = [b for b in buffers if b.location != "arena"]
    size = max((b.offset + b.nbytes for b in placed), default=0)
    return MemoryPlan(tuple(sorted(placed + external, key=lambda b: b.first)), _align(size))
