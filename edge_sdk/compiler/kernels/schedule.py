"""The tunable choices of the Linux CPU kernels, and the records `edge-sdk tune` keeps.

A :class:`Schedule` changes how a layer's work is laid out (vector lanes per block of output
channels, output pixels per tile, blocks per fully-connected tile), never what it computes: every
schedule gives the same bits. Without tuning, :func:`default_schedule` is a fixed heuristic;
`edge-sdk tune` times :func:`candidates` on the target and records the fastest per layer in a
JSON file that `compile`, `generate`, `run` and `deploy` take with ``--tuning``.

A layer's record is found by its :func:`layer_key`: the kernel set, operator, types, shapes and
geometry, so a layer tuned in one model is reused by any model with the same layer.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from edge_sdk.compiler.kernels.tir import thread_row_count
from edge_sdk.compiler.program import Step
from edge_sdk.errors import UsageError
from edge_sdk.ir import Graph, Operator

TUNABLE = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")


@dataclass(frozen=True)
class Schedule:
    lanes: int       # output channels (units) per block: the vector lanes
    pixels: int = 4  # output pixels per regular-convolution tile
    blocks: int = 4  # blocks per fully-connected tile (one input group built for all)


def default_lanes(channels: int) -> int:
    """16 int32 lanes (two AVX2 or four NEON registers) unless the channels fit 8 better."""
    return 16 if channels % 16 == 0 or channels > 24 else 8


def default_schedule(opcode: str, channels: int) -> Schedule:
    return Schedule(default_lanes(channels))


def candidates(opcode: str, channels: int, width: int) -> list[Schedule]:
    """Schedules worth timing for a layer with ``channels`` output channels, on a kernel set
    whose dot-product step fills ``width`` lanes (lanes must be a multiple of it). The default
    comes first."""
    lanes = [n for n in (8, 16, 32) if n % width == 0 and n < 2 * max(channels, 8)]
    out = [default_schedule(opcode, channels)]
    if opcode == "CONV_2D":
        out += [Schedule(n, p) for n in lanes for p in (2, 4, 6, 8)]
    elif opcode == "FULLY_CONNECTED":
        out += [Schedule(n, blocks=k) for n in lanes for k in (1, 2, 4, 8)]
    else:
        out += [Schedule(n) for n in lanes]
    unique: list[Schedule] = []
    for s in out:
        if s not in unique:
            unique.append(s)
    return unique


def layer_key(op: Operator, graph: Graph, isa: str) -> str:
    """What makes two layers the same work: kernel set, operator, types, shapes, geometry."""
    parts = [isa, op.opcode]
    for role, index in (("in", op.inputs[0]), ("w", op.inputs[1]), ("out", op.outputs[0])):
        t = graph.tensor(index)
        parts.append(f"{role}={t.dtype}[{'x'.join(str(d) for d in t.shape)}]")
    for name in ("padding", "stride", "dilation", "depth_multiplier"):
        if name in op.options:
            value = op.options[name]
            text = "x".join(map(str, value)) if isinstance(value, tuple | list) else value
            parts.append(f"{name}={text}")
    return "|".join(parts)


class Tuning:
    """The records of one tuning file: layer key -> schedule (and the timings behind it)."""

    def __init__(self, records: Mapping[str, dict] | None = None, board: str = "",
                 isa: str = "") -> None:
        self.records: dict[str, dict] = dict(records or {})
        self.board = board
        self.isa = isa

    def schedule(self, key: str) -> Schedule | None:
        record = self.records.get(key)
        return Schedule(**record["schedule"]) if record else None

    def record(self, key: str, best: Schedule, timings_ns: dict[str, float],
               default_ns: float) -> None:
        """``timings_ns``: each candidate's median (keyed by its schedule as JSON);
        ``default_ns``: the default schedule's, for the speed-up a tuning brings."""
        self.records[key] = {"schedule": asdict(best), "timings_ns": timings_ns,
                             "default_ns": default_ns, "best_ns": min(timings_ns.values())}

    def to_json(self) -> str:
        return json.dumps({"edge_sdk_tuning": 1, "board": self.board, "isa": self.isa,
                           "records": self.records}, indent=2, sort_keys=True) + "\n"

    @classmethod
    def load(cls, path: str | Path) -> Tuning:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            records = data["records"]
            for record in records.values():
                Schedule(**record["schedule"])
        except FileNotFoundError:
            raise UsageError(f"{path}: no such tuning file (make one with `edge-sdk tune`)"
                             ) from None
        except (ValueError, KeyError, TypeError):
            raise UsageError(f"{path} is not an edge-sdk tuning file (from `edge-sdk tune`)"
                             ) from None
        return cls(records, data.get("board", ""), data.get("isa", ""))


# Below this many output values an elementwise layer stays on one thread: waking the pool
# costs more than the work it would share.
THREAD_MIN_VALUES = 16384


def threaded(op: Operator, graph: Graph, func_name: str, scratch=None, *,
             lowering: Callable[..., Step]) -> Step | None:
    """The Linux CPU schedule of an elementwise operator (``lowering``, called with
    ``threads=True``): its output rows (:func:`~.tir.thread_rows`) shared by the thread pool;
    None (the one-thread kernel) for a layer too small to share or that does not split into
    two rows."""
    y = graph.tensor(op.outputs[0])
    if y.size < THREAD_MIN_VALUES or thread_row_count(tuple(y.shape)) < 2:
        return None
    return lowering(op, graph, func_name, threads=True)
