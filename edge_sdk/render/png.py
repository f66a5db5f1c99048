"""The memory plan as a PNG, for a slide or an issue: the same boxes as the HTML page, with a
title, both axes labelled and ticked. Drawn with Pillow and its built-in font, so it needs no
system fonts and looks the same on every machine."""

from __future__ import annotations

import io

from edge_sdk.render.html import PALETTE, SCRATCH
from edge_sdk.render.table import human_bytes


def render_png(rep: dict, width: int = 960, height: int = 420) -> bytes:
    """Offset (down) over layers (across), one box per arena buffer, as in the HTML page."""
    from PIL import Image, ImageDraw, ImageFont

    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    font, title_font = ImageFont.load_default(size=12), ImageFont.load_default(size=16)
    plan, layers = rep.get("memory_plan") or [], rep["layers"]
    n = max(len(layers), 1)
    arena = max([rep.get("arena_bytes") or 0, *(b["offset"] + b["bytes"] for b in plan), 1])
    left, top, right, bottom = 90, 40, width - 20, height - 50
    w, h = right - left, bottom - top

    title = (f"{rep.get('model', '?')} on {rep.get('board', '?')}: arena memory plan "
             f"({human_bytes(rep.get('arena_bytes'))}, {len(layers)} layers)")
    draw.text((left, 10), title, fill="#222", font=title_font)
    # legend, top right: a box's colour tells buffers apart; grey is a kernel's scratch
    lx = float(right)
    for label, colors in (("scratch", (SCRATCH,)), ("tensors", PALETTE[:3])):
        lx -= draw.textlength(label, font=font) + 6
        draw.text((lx, 20), label, fill="#333", font=font, anchor="lm")
        for color in reversed(colors):
            lx -= 12
            draw.rectangle((lx, 15, lx + 9, 24), fill=color)
        lx -= 14
    draw.rectangle((left, top, right, bottom), fill="#fafafa")
    for i, b in enumerate(plan):
        x0 = left + b["first"] * w / n
        x1 = max(left + (b["last"] + 1) * w / n - 1, x0 + 1)
        y0 = top + b["offset"] / arena * h
        y1 = max(top + (b["offset"] + b["bytes"]) / arena * h, y0 + 2)
        color = SCRATCH if b["kind"] == "scratch" else PALETTE[i % len(PALETTE)]
        draw.rectangle((x0, y0, x1, y1), fill=color, outline="white")
    draw.rectangle((left, top, right, bottom), outline="#777")

    for k in range(5):  # y: arena offset
        y = top + h * k / 4
        draw.line((left - 4, y, left, y), fill="#777")
        draw.text((left - 8, y), human_bytes(arena * k / 4), fill="#333", font=font,
                  anchor="rm")
    axis_name = Image.new("RGB", (h, 16), "white")
    ImageDraw.Draw(axis_name).text((h / 2, 8), "arena offset", fill="#333", font=font,
                                   anchor="mm")
    img.paste(axis_name.rotate(90, expand=True), (4, top))
    step = max(1, -(-n // 16))  # at most ~16 layer ticks
    for i in range(0, n, step):  # x: layers
        x = left + (i + 0.5) * w / n
        draw.line((x, bottom, x, bottom + 4), fill="#777")
        draw.text((x, bottom + 6), str(i), fill="#333", font=font, anchor="mt")
    draw.text((left + w / 2, height - 8), "layer (each box: a buffer, from the layer that "
              "writes it to the last that reads it)", fill="#333", font=font, anchor="mb")
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()
