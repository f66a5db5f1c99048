"""The per-layer table and the helpers the renderers share."""

from __future__ import annotations

import json
from pathlib import Path

from edge_sdk.errors import UsageError


def load_report(source: str | Path) -> dict:
    """A ``report.json``, or a folder holding one (``compile -o DIR``, ``run --workdir``)."""
    path = Path(source)
    if path.is_dir():
        path = path / "report.json"
    if not path.is_file():
        raise UsageError(f"{source}: no report.json there: give the file `compile -o DIR` or "
                         "`run --report FILE` wrote, or its folder")
    try:
        rep = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UsageError(f"{path} is not a readable report ({err}): write it again") from None
    if not isinstance(rep, dict) or not isinstance(rep.get("layers"), list):
        raise UsageError(f"{path} is not an edge-sdk report (no per-layer list)")
    return rep


def short_name(name: str, width: int = 40) -> str:
    """A layer's name for a label: TFLite joins fused ops' names with ';', the first is the
    layer's own; long names keep their end, where the distinguishing part is."""
    first = name.split(";")[0]
    return first if len(first) <= width else "..." + first[-(width - 3):]


def human_bytes(n: int | float | None) -> str:
    if n is None:
        return "-"
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


def measured(layer: dict) -> tuple[str, float] | None:
    """A profiled layer's median figure and its unit."""
    m = layer.get("measured")
    if not m:
        return None
    values = sorted(m.get("per_inference") or m.get("instructions") or m.get("cycles")
                    or m.get("latency_ns") or m.get("ticks") or [])
    if not values:
        return None
    unit = m.get("unit") or ("instructions" if "instructions" in m else "ticks")
    return unit, values[len(values) // 2]


def layer_table(rep: dict) -> str:
    """One row per layer: op, output shape, MACs, where its output sits in the arena, weights,
    and the measured figure when the run was profiled."""
    layers = rep["layers"]
    timed = [measured(layer) for layer in layers]
    unit = next((t[0] for t in timed if t), None)
    head = (f"{'#':>3}  {'op':<18} {'output':<16} {'MACs':>11} {'arena at':>9} "
            f"{'arena B':>8} {'weights B':>9}" + (f" {unit:>13}" if unit else "") + "  layer")
    rows = [head, "-" * len(head)]
    for layer, t in zip(layers, timed, strict=True):
        shape = "x".join(str(d) for d in layer.get("output_shape", []))
        at = layer.get("arena_offset")
        rows.append(
            f"{layer['index']:>3}  {layer['op'][:18]:<18} {shape[:16]:<16} "
            f"{layer.get('macs', 0):>11,} {'-' if at is None else at:>9} "
            f"{layer.get('arena_size', 0):>8,} {layer.get('weights_bytes', 0):>9,}"
            + (f" {t[1]:>13,.0f}" if unit and t else (" " * 14 if unit else ""))
            + f"  {short_name(layer.get('name', ''))}")
    total = (f"{len(layers)} layers, {rep.get('macs', 0):,} MACs; arena "
             f"{human_bytes(rep.get('arena_bytes'))} + input/output "
             f"{human_bytes(rep.get('io_bytes'))} RAM; weights "
             f"{human_bytes(rep.get('weights_bytes'))}")
    flash = rep.get("flash_bytes")
    if flash and not str(rep.get("flash_basis", "measured")).startswith("estimate"):
        total += f"; model flash {human_bytes(flash)}"
    rows.append(total + f" ({rep.get('model', '?')} for {rep.get('board', '?')})")
    return "\n".join(rows)
