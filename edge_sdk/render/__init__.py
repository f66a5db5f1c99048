"""Reading a compile or run report: a per-layer table for the terminal, a self-contained HTML
page (the arena's memory plan drawn as offset over time, per-layer work and memory bars), and a
PNG of the memory plan.

The input is the ``report.json`` that ``compile``, ``run --report`` and ``validate`` write
(:func:`edge_sdk.api.report`); nothing here compiles or runs anything.
"""

from edge_sdk.render.html import render_html
from edge_sdk.render.png import render_png
from edge_sdk.render.table import human_bytes, layer_table, load_report, short_name

__all__ = ["human_bytes", "layer_table", "load_report", "render_html", "render_png",
           "short_name"]
