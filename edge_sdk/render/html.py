"""One self-contained HTML page for a report: a fit-and-validation report, like ``stedgeai
analyze``/``validate`` but visual. No external file; inline SVG; one small script that sorts the
layer table (the page reads fine without it).

Top to bottom, what a user asks in that order: did the outputs match the reference, does it fit
the board (RAM and flash against the board's capacity, flash split into weights, kernels and the
rest of the firmware), where the memory and the time go, and each layer's row.
"""

from __future__ import annotations

from html import escape

from edge_sdk.render.table import human_bytes, measured, short_name

PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1",
           "#ff9da7", "#9c755f", "#86bcb6")
SCRATCH = "#b8b8b8"
PASS, FAIL, UNCHECKED = "#2e7d32", "#c62828", "#757575"

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px auto; padding: 0 20px; color: #222;
       max-width: 1340px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px; }
.made { color: #555; margin: 0 0 14px; } .made code { background: #f3f3f3; padding: 1px 4px;
  overflow-wrap: anywhere; }
.summary { display: flex; flex-wrap: wrap; gap: 4px 18px; }
.verdict { border-left: 6px solid; padding: 8px 12px; background: #f7f7f7; margin: 10px 0; }
.verdict b { font-size: 16px; } .verdict table { margin-top: 4px; }
.fit { display: grid; grid-template-columns: 70px minmax(0, 1fr) 260px; gap: 6px 12px;
       align-items: center; max-width: 1100px; }
.track { position: relative; height: 22px; background: #eee; border: 1px solid #bbb; }
.track span { position: absolute; top: 0; bottom: 0; }
.ticks { position: relative; height: 14px; font-size: 11px; color: #555; }
.ticks span { position: absolute; transform: translateX(-50%); white-space: nowrap; }
.ticks span:last-child { transform: translateX(-100%); }
.ticks span:first-child { transform: none; }
.legend span { margin-right: 14px; white-space: nowrap; }
.legend i { display: inline-block; width: 10px; height: 10px; margin-right: 4px; }
svg { max-width: 100%; height: auto; }
svg text { font: 11px system-ui, sans-serif; fill: #333; }
table { border-collapse: collapse; margin-top: 8px; }
#layers { width: 100%; }
td, th { border-bottom: 1px solid #ddd; padding: 3px 6px; text-align: right; }
th { cursor: pointer; user-select: none; white-space: nowrap; background: #fafafa; }
td.name, th.name, td.op, th.op { text-align: left; }
td.kernel { text-align: left; font-size: 12px; color: #444; overflow-wrap: anywhere;
            min-width: 240px; }
td.name { white-space: nowrap; }
.note { color: #666; }
"""

# Click a column's heading to sort by it (numbers by their data-v value), again to reverse.
SCRIPT = """
for (const th of document.querySelectorAll('#layers th')) {
  th.addEventListener('click', () => {
    const body = document.querySelector('#layers tbody');
    const col = th.cellIndex, down = th.dataset.dir !== 'down';
    const key = r => { const c = r.cells[col]; const v = c.dataset.v;
                       return v === undefined ? c.textContent : parseFloat(v); };
    const rows = [...body.rows].sort((a, b) => {
      const x = key(a), y = key(b);
      return (x < y ? -1 : x > y ? 1 : 0) * (down ? -1 : 1); });
    for (const h of th.parentNode.cells) delete h.dataset.dir;
    th.dataset.dir = down ? 'down' : 'up';
    rows.forEach(r => body.appendChild(r));
  });
}
"""


def live_bytes(plan: list[dict], steps: int) -> list[int]:
    """Arena bytes in use during each step (tensors and scratch)."""
    return [sum(b["bytes"] for b in plan if b["first"] <= i <= b["last"]) for i in range(steps)]


def _g(x: float) -> str:
    return f"{x:.3g}"


def verdict_html(rep: dict) -> str:
    """The ``--check`` verdict and its error figures; a note when the run was not checked."""
    check = rep.get("check")
    if not check:
        return ('<div class="verdict" style="border-color:#bbb"><b>not checked</b>: run with '
                '<code>--check</code> to compare the outputs with the reference interpreter '
                '(<code>edge-sdk validate</code> compares every layer)</div>')
    if check.get("match") is None:
        return (f'<div class="verdict" style="border-color:{UNCHECKED}"><b>not checked</b>: '
                f'{escape(check.get("error", "the reference could not run"))}</div>')
    ok = bool(check["match"])
    head = (f"outputs match {escape(check['reference'])}" if ok else
            f"outputs differ from {escape(check['reference'])}: {check['differing']:,} of "
            f"{check['elements']:,} values")
    rows = check.get("outputs") or [check]
    cells = ["<tr><th>output</th><th>values</th><th>differing</th><th>max abs error</th>"
             "<th>max rel error</th><th>max error / range</th><th class=name>rule</th></tr>"]
    for k, r in enumerate(rows):
        cells.append(
            f"<tr><td>{k}</td><td>{r['elements']:,}</td><td>{r['differing']:,}</td>"
            f"<td>{_g(r['max_abs_error'])}</td>"
            f"<td>{_g(r['max_rel_error']) if 'max_rel_error' in r else '-'}</td>"
            f"<td>{_g(r['max_error_vs_range']) if 'max_error_vs_range' in r else '-'}</td>"
            f"<td class=name>{escape(r['rule'])}</td></tr>")
    return (f'<div class="verdict" id="verdict" style="border-color:{PASS if ok else FAIL}">'
            f'<b style="color:{PASS if ok else FAIL}">{"✔" if ok else "✘"} {head}</b>'
            f'<table>{"".join(cells)}</table></div>')


def _segments(rep: dict) -> tuple[list[tuple[str, int, str]], list[tuple[str, int, str]], str]:
    """RAM and flash, each split into named parts (label, bytes, colour), and a note."""
    fw = rep.get("firmware")
    arena, io = rep.get("arena_bytes") or 0, rep.get("io_bytes") or 0
    weights = rep.get("weights_bytes") or 0
    ram = [("arena", arena, PALETTE[0]), ("input + output", io, PALETTE[1])]
    flash = [("weights", weights, PALETTE[2])]
    measured_flash = not str(rep.get("flash_basis", "measured")).startswith("estimate")
    note = ""
    if fw and measured_flash and rep.get("flash_bytes"):
        model = rep["flash_bytes"]
        flash.append(("kernels (model code)", max(model - weights, 0), PALETTE[3]))
        flash.append(("rest of the firmware", max(fw["text_bytes"] + fw["data_bytes"] - model,
                                                  0), PALETTE[4]))
        ram.append(("rest of the firmware",
                    max(fw["data_bytes"] + fw["bss_bytes"] - arena - io, 0), PALETTE[4]))
    else:
        note = ("Flash shows the weights only: the code is measured when the firmware is built "
                "(<code>edge-sdk run</code> or <code>build</code>).")
    return ram, flash, note


def _bar(label: str, parts: list[tuple[str, int, str]], capacity: int | None) -> str:
    used = sum(b for _, b, _ in parts)
    scale = capacity or max(used, 1)
    spans, x = [], 0.0
    for name, size, color in parts:
        w = size / scale * 100
        spans.append(f'<span style="left:{x:.3f}%;width:{max(w, 0.15 if size else 0):.3f}%;'
                     f'background:{color}" title="{escape(name)}: {size:,} B"></span>')
        x += w
    if capacity:
        text = f"{human_bytes(used)} of {human_bytes(capacity)} ({used / capacity:.1%})"
        if used > capacity:
            text = f"<b style='color:{FAIL}'>{text}: does not fit</b>"
    else:
        text = f"{human_bytes(used)} (no capacity: a host or Linux board)"
    ticks = "".join(f'<span style="left:{k * 25}%">{human_bytes(scale * k / 4)}</span>'
                    for k in range(5))
    return (f'<div><b>{label}</b></div><div><div class="track">{"".join(spans)}</div>'
            f'<div class="ticks">{ticks}</div></div><div>{text}</div>')


def fit_html(rep: dict) -> str:
    ram, flash, note = _segments(rep)
    legend = {name: color for name, _, color in ram + flash}  # one key per part, RAM's first
    keys = "".join(f'<span><i style="background:{c}"></i>{escape(n)}</span>'
                   for n, c in legend.items())
    return (f'<div class="fit" id="fit">{_bar("RAM", ram, rep.get("ram_capacity_bytes"))}'
            f'{_bar("Flash", flash, rep.get("flash_capacity_bytes"))}</div>'
            f'<p class="legend">{keys}</p>' + (f'<p class="note">{note}</p>' if note else ""))


def memory_svg(rep: dict) -> str:
    """The arena over time: one box per buffer, from the step that writes it to the last step
    that reads it (x), at its offset and size in the arena (y)."""
    layers, plan = rep["layers"], rep.get("memory_plan") or []
    n = max(len(layers), 1)
    arena = max([rep.get("arena_bytes") or 0, *(b["offset"] + b["bytes"] for b in plan), 1])
    left, top, width, height = 80, 10, 860, 300
    col = width / n
    label_rows = 150 if n <= 60 else 30
    full_w, full_h = left + width + 20, top + height + label_rows
    out = [f'<svg id="memory-plan" xmlns="http://www.w3.org/2000/svg" width="{full_w}" '
           f'height="{full_h}" viewBox="0 0 {full_w} {full_h}" role="img" '
           'aria-label="arena memory plan">',
           f'<rect x="{left}" y="{top}" width="{width}" height="{height}" fill="#fafafa" '
           'stroke="#999"/>',
           f'<text x="12" y="{top + height / 2:.0f}" transform="rotate(-90 12 '
           f'{top + height / 2:.0f})" text-anchor="middle">arena offset</text>']
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


def _axis(x0: float, width: float, top: float, bottom: float, peak: float, fmt) -> list[str]:
    """Gridlines and labels at 0, 1/2 and all of ``peak`` under a bar column."""
    out = []
    for k in range(3):
        x = x0 + width * k / 2
        out.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{bottom}" stroke="#ddd"/>')
        out.append(f'<text x="{x:.1f}" y="{bottom + 13}" text-anchor="middle">'
                   f'{escape(fmt(peak * k / 2))}</text>')
    return out


def bars_svg(rep: dict) -> str:
    """Per layer: its work (measured time when profiled, else MACs) and the arena in use, each
    with its scale."""
    layers = rep["layers"]
    live = live_bytes(rep.get("memory_plan") or [], len(layers))
    timed = [measured(layer) for layer in layers]
    present = [t for t in timed if t is not None]
    if present and len(present) == len(timed):
        work, work_label = [t[1] for t in present], f"measured ({present[0][0]})"
    else:
        work, work_label = [layer.get("macs", 0) for layer in layers], "MACs"
    top_work, top_live = max([*work, 1]), max([*live, 1])
    row, label_w, bar_w, gap = 18, 300, 300, 50
    height = 24 + row * len(layers)
    full_w, full_h = label_w + 2 * bar_w + gap + 30, height + 20
    out = [f'<svg id="layer-bars" xmlns="http://www.w3.org/2000/svg" width="{full_w}" '
           f'height="{full_h}" viewBox="0 0 {full_w} {full_h}">',
           f'<text x="{label_w}" y="14">{escape(work_label)} per layer</text>',
           f'<text x="{label_w + bar_w + gap}" y="14">arena in use during the layer</text>']
    out += _axis(label_w, bar_w, 20, height, top_work, lambda v: f"{v:,.0f}")
    out += _axis(label_w + bar_w + gap, bar_w, 20, height, top_live, human_bytes)
    for i, layer in enumerate(layers):
        y = 22 + i * row
        name = layer.get("name", "")
        out.append(f'<text x="{label_w - 6}" y="{y + 12}" text-anchor="end">'
                   f'{i} {escape(layer["op"])} {escape(short_name(name, 24))}'
                   f'<title>{escape(name)}</title></text>')
        w1 = work[i] / top_work * bar_w
        w2 = live[i] / top_live * bar_w
        out.append(f'<rect x="{label_w}" y="{y}" width="{w1:.1f}" height="{row - 4}" '
                   f'fill="#4e79a7"><title>{work[i]:,.0f}</title></rect>')
        out.append(f'<rect x="{label_w + bar_w + gap}" y="{y}" width="{w2:.1f}" '
                   f'height="{row - 4}" fill="#f28e2b"><title>{live[i]:,} B</title></rect>')
    out.append("</svg>")
    return "\n".join(out)


def table_html(rep: dict) -> str:
    """Every layer: short name (the full one on hover), sizes, and when profiled its time and
    share of the total; the headings sort."""
    timed = [measured(layer) for layer in rep["layers"]]
    unit = next((t[0] for t in timed if t), None)
    total = sum(t[1] for t in timed if t) or 1
    head = ("<thead><tr><th>#</th><th class=name>layer</th><th class=op>op</th><th>output</th>"
            "<th>MACs</th><th>arena offset</th><th>arena bytes</th><th>weights bytes</th>"
            + (f"<th>{escape(unit)}</th><th>share</th>" if unit else "")
            + "<th class=name>kernel</th></tr></thead>")
    rows = [head, "<tbody>"]
    for layer, t in zip(rep["layers"], timed, strict=True):
        at = layer.get("arena_offset")
        name = layer.get("name", "")
        shape = layer.get("output_shape", [])
        time = ""
        if unit:
            time = (f"<td data-v={t[1]}>{t[1]:,.0f}</td><td data-v={t[1] / total}>"
                    f"{t[1] / total:.1%}</td>" if t else "<td data-v=-1></td><td data-v=-1></td>")
        rows.append(
            f"<tr><td data-v={layer['index']}>{layer['index']}</td>"
            f'<td class=name title="{escape(name)}">{escape(short_name(name, 32))}</td>'
            f"<td class=op>{escape(layer['op'])}</td>"
            f"<td>{'x'.join(str(d) for d in shape)}</td>"
            f"<td data-v={layer.get('macs', 0)}>{layer.get('macs', 0):,}</td>"
            f"<td data-v={-1 if at is None else at}>{'-' if at is None else f'{at:,}'}</td>"
            f"<td data-v={layer.get('arena_size', 0)}>{layer.get('arena_size', 0):,}</td>"
            f"<td data-v={layer.get('weights_bytes', 0)}>{layer.get('weights_bytes', 0):,}</td>"
            + time
            + f"<td class=kernel>{escape(layer.get('variant', layer.get('kernel', '')))}"
              "</td></tr>")
    rows.append("</tbody>")
    return '<table id="layers">' + "\n".join(rows) + "</table>"


def render_html(rep: dict) -> str:
    model, board = rep.get("model", "?"), rep.get("board", "?")
    facts = [("arena", human_bytes(rep.get("arena_bytes"))),
             ("input + output", human_bytes(rep.get("io_bytes"))),
             ("weights", human_bytes(rep.get("weights_bytes"))),
             ("MACs", f"{rep.get('macs', 0):,}")]
    if rep.get("flash_bytes") and not str(rep.get("flash_basis", "")).startswith("estimate"):
        facts.append(("model flash", human_bytes(rep["flash_bytes"])))
    timer = rep.get("timer") or {}
    if timer.get("per_inference"):
        from edge_sdk.device.timing import describe

        facts.append(("speed", describe(timer)))
    summary = "".join(f"<span><b>{escape(k)}</b> {escape(v)}</span>" for k, v in facts)
    made = rep.get("made") or {}
    made_line = (f'<p class="made">edge-sdk {escape(made.get("edge_sdk", "?"))}, '
                 f'{escape(made.get("date", "date not recorded"))}: '
                 f'<code>{escape(made.get("command", "?"))}</code></p>' if made else
                 '<p class="made">made by an edge-sdk that did not record its version</p>')
    cpu = f" ({escape(rep['cpu'])})" if rep.get("cpu") else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>edge-sdk report: {escape(model)} on {escape(board)}</title>
<style>{STYLE}</style></head>
<body>
<h1>{escape(model)} on {escape(board)}{cpu}</h1>
{made_line}
{verdict_html(rep)}
<h2>Fit</h2>
{fit_html(rep)}
<p class="summary">{summary}</p>
<h2>Memory plan</h2>
<p class="note">The arena over the run: each box is a buffer, from the layer that writes it
to the last layer that reads it, at its offset; grey boxes are kernels' scratch. Input and
output live in the caller's buffers, outside the arena.</p>
{memory_svg(rep)}
<h2>Per layer</h2>
{bars_svg(rep)}
<p class="note">Click a column's heading to sort; hover a layer's name for the full one.</p>
{table_html(rep)}
<p class="note">Written by <code>edge-sdk report</code> from the run's report.json.</p>
<script>{SCRIPT}</script>
</body></html>
"""
