"""One self-contained HTML page for a report: no script, no external file, inline SVG."""

from __future__ import annotations

from html import escape

from edge_sdk.render.table import human_bytes, measured, short_name

PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1",
           "#ff9da7", "#9c755f", "#86bcb6")
SCRATCH = "#b8b8b8"

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px; }
.summary span { margin-right: 18px; white-space: nowrap; }
svg text { font: 11px system-ui, sans-serif; fill: #333; }
table { border-collapse: collapse; margin-top: 8px; }
td, th { border-bottom: 1px solid #ddd; padding: 3px 8px; text-align: right; }
td.name, th.name, td.op, th.op { text-align: left; }
td.name { max-width: 420px; overflow-wrap: anywhere; }
.note { color: #666; }
"""


def live_bytes(plan: list[dict], steps: int) -> list[int]:
    """Arena bytes in use during each step (tensors and scratch)."""
    return [sum(b["bytes"] for b in plan if b["first"] <= i <= b["last"]) for i in range(steps)]


def memory_svg(rep: dict) -> str:
    """The arena over time: one box per buffer, from the step that writes it to the last step
    that reads it (x), at its offset and size in the arena (y)."""
    layers, plan = rep["layers"], rep.get("memory_plan") or []
    n = max(len(layers), 1)
    arena = max([rep.get("arena_bytes") or 0, *(b["offset"] + b["bytes"] for b in plan), 1])
    left, top, width, height = 80, 10, 860, 300
    col = width / n
    label_rows = 150 if n <= 60 else 30
    out = [f'<svg id="memory-plan" xmlns="http://www.w3.org/2000/svg" width="{left + width + 20}" '
           f'height="{top + height + label_rows}" role="img" aria-label="arena memory plan">',
           f'<rect x="{left}" y="{top}" width="{width}" height="{height}" fill="#fafafa" '
           'stroke="#999"/>']
    for k in range(5):  # offset ticks
        off = arena * k / 4
        y = top + height * k / 4
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">'
                   f'{escape(human_bytes(off))}</text>')
    for i, b in enumerate(plan):
        x = left + b["first"] * col
        w = max((b["last"] - b["first"] + 1) * col - 1, 1)
        y = top + b["offset"] / arena * height
        h = max(b["bytes"] / arena * height, 1.5)
        color = SCRATCH if b["kind"] == "scratch" else PALETTE[i % len(PALETTE)]
        tip = (f"{b['name']}: {b['bytes']:,} B at offset {b['offset']:,}, layers "
               f"{b['first']} to {b['last']}" + (" (scratch)" if b["kind"] == "scratch" else ""))
        out.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" '
                   f'fill="{color}" stroke="#fff" stroke-width="0.5"><title>{escape(tip)}'
                   '</title></rect>')
        if w > 60 and h > 14:
            out.append(f'<text x="{x + 3:.1f}" y="{y + 12:.1f}" fill="#fff">'
                       f'{escape(short_name(b["name"], int(w / 6.5)))}</text>')
    step = max(1, n // 60)
    for i, layer in enumerate(layers):
        if i % step:
            continue
        x = left + (i + 0.5) * col
        y = top + height + 12
        text = f"{i} {layer['op']}" if n <= 60 else str(i)
        rotate = f' transform="rotate(-60 {x:.1f} {y:.1f})"' if n <= 60 else ""
        out.append(f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="end"{rotate}>'
                   f'{escape(text)}</text>')
    out.append("</svg>")
    return "\n".join(out)


def bars_svg(rep: dict) -> str:
    """Per layer: its work (measured time when profiled, else MACs) and the arena in use."""
    layers = rep["layers"]
    live = live_bytes(rep.get("memory_plan") or [], len(layers))
    timed = [measured(layer) for layer in layers]
    if all(timed):
        work, work_label = [t[1] for t in timed], f"measured ({timed[0][0]})"
    else:
        work, work_label = [layer.get("macs", 0) for layer in layers], "MACs"
    top_work, top_live = max([*work, 1]), max([*live, 1])
    row, label_w, bar_w = 18, 300, 280
    height = 24 + row * len(layers)
    out = [f'<svg id="layer-bars" xmlns="http://www.w3.org/2000/svg" '
           f'width="{label_w + 2 * bar_w + 60}" height="{height}">',
           f'<text x="{label_w}" y="14">{escape(work_label)}</text>',
           f'<text x="{label_w + bar_w + 30}" y="14">arena in use</text>']
    for i, layer in enumerate(layers):
        y = 22 + i * row
        out.append(f'<text x="{label_w - 6}" y="{y + 12}" text-anchor="end">'
                   f'{i} {escape(layer["op"])} {escape(short_name(layer.get("name", ""), 24))}'
                   '</text>')
        w1 = work[i] / top_work * bar_w
        w2 = live[i] / top_live * bar_w
        out.append(f'<rect x="{label_w}" y="{y}" width="{w1:.1f}" height="{row - 4}" '
                   f'fill="#4e79a7"><title>{work[i]:,.0f}</title></rect>')
        out.append(f'<rect x="{label_w + bar_w + 30}" y="{y}" width="{w2:.1f}" '
                   f'height="{row - 4}" fill="#f28e2b"><title>{live[i]:,} B</title></rect>')
    out.append("</svg>")
    return "\n".join(out)


def table_html(rep: dict) -> str:
    timed = [measured(layer) for layer in rep["layers"]]
    unit = next((t[0] for t in timed if t), None)
    head = ("<tr><th>#</th><th class=name>layer</th><th class=op>op</th><th>output</th>"
            "<th>MACs</th><th>arena offset</th><th>arena bytes</th><th>weights bytes</th>"
            + (f"<th>{escape(unit)}</th>" if unit else "") + "<th class=name>kernel</th></tr>")
    rows = [head]
    for layer, t in zip(rep["layers"], timed, strict=True):
        at = layer.get("arena_offset")
        rows.append(
            f"<tr><td>{layer['index']}</td><td class=name>{escape(layer.get('name', ''))}</td>"
            f"<td class=op>{escape(layer['op'])}</td>"
            f"<td>{'x'.join(str(d) for d in layer.get('output_shape', []))}</td>"
            f"<td>{layer.get('macs', 0):,}</td><td>{'-' if at is None else at}</td>"
            f"<td>{layer.get('arena_size', 0):,}</td><td>{layer.get('weights_bytes', 0):,}</td>"
            + (f"<td>{t[1]:,.0f}</td>" if unit and t else ("<td></td>" if unit else ""))
            + f"<td class=name>{escape(layer.get('variant', layer.get('kernel', '')))}</td></tr>")
    return '<table id="layers">' + "\n".join(rows) + "</table>"


def render_html(rep: dict) -> str:
    model, board = rep.get("model", "?"), rep.get("board", "?")
    facts = [("arena", human_bytes(rep.get("arena_bytes"))),
             ("input + output", human_bytes(rep.get("io_bytes"))),
             ("weights", human_bytes(rep.get("weights_bytes"))),
             ("MACs", f"{rep.get('macs', 0):,}")]
    if rep.get("flash_bytes"):
        facts.append(("model flash", human_bytes(rep["flash_bytes"])))
    timer = rep.get("timer") or {}
    if timer.get("per_inference"):
        from edge_sdk.device.timing import describe

        facts.append(("speed", describe(timer)))
    summary = "".join(f"<span><b>{escape(k)}</b> {escape(v)}</span>" for k, v in facts)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>edge-sdk report: {escape(model)} on {escape(board)}</title>
<style>{STYLE}</style></head>
<body>
<h1>{escape(model)} on {escape(board)}</h1>
<p class="summary">{summary}</p>
<h2>Memory plan</h2>
<p class="note">The arena over the run: each box is a buffer, from the layer that writes it
to the last layer that reads it, at its offset; grey boxes are kernels' scratch. Input and
output live in the caller's buffers, outside the arena.</p>
{memory_svg(rep)}
<h2>Per layer</h2>
{bars_svg(rep)}
{table_html(rep)}
<p class="note">Written by edge-sdk report from the run's report.json.</p>
</body></html>
"""
