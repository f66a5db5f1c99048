"""`edge-sdk report` and `inspect`: the per-layer table, and the HTML page checked in a real
browser (Debian's headless Chromium): rendered, not blank, with every layer named and the
memory plan's boxes drawn."""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import zlib
from html import escape

import numpy as np
import pytest

from edge_sdk.cli import main
from edge_sdk.render import short_name
from tests.conftest import shared_model


def decode_png(blob: bytes) -> np.ndarray:
    """A PNG (8-bit RGB or RGBA, not interlaced, as Chromium writes) -> (h, w, channels)."""
    assert blob[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, header = 8, b"", None
    while pos < len(blob):
        (length,) = struct.unpack(">I", blob[pos:pos + 4])
        kind, data = blob[pos + 4:pos + 8], blob[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", data)
        elif kind == b"IDAT":
            idat += data
        pos += 12 + length
    width, height, depth, color, _, _, interlace = header
    assert depth == 8 and color in (2, 6) and interlace == 0
    ch = 3 if color == 2 else 4
    raw = zlib.decompress(idat)
    stride = width * ch
    out = np.zeros((height, stride), np.int32)
    prev = np.zeros(stride, np.int32)
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = np.frombuffer(raw, np.uint8, stride, y * (stride + 1) + 1).astype(np.int32)
        cur = np.zeros(stride, np.int32)
        for x in range(stride):
            a = cur[x - ch] if x >= ch else 0
            b = prev[x]
            c = prev[x - ch] if x >= ch else 0
            if f == 0:
                pred = 0
            elif f == 1:
                pred = a
            elif f == 2:
                pred = b
            elif f == 3:
                pred = (a + b) // 2
            else:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
            cur[x] = (line[x] + pred) & 0xFF
        out[y], prev = cur, cur
    return out.reshape(height, width, ch).astype(np.uint8)


@pytest.fixture(scope="module")
def kws_compiled(tmp_path_factory):
    out = tmp_path_factory.mktemp("rep") / "kws"
    assert main(["compile", str(shared_model("kws_ref_model")), "--board", "mps2-an386",
                 "-o", str(out)]) == 0
    return out


def test_report_prints_the_per_layer_table(kws_compiled, capsys):
    capsys.readouterr()
    assert main(["report", str(kws_compiled)]) == 0
    out = capsys.readouterr().out
    rep = json.loads((kws_compiled / "report.json").read_text())
    for layer in rep["layers"]:
        assert short_name(layer["name"]) in out
    row = next(line for line in out.splitlines() if line.strip().startswith("0 "))
    assert "CONV_2D" in row and "320,000" in row and "8,000" in row
    assert "2,664,780 MACs" in out and "kws_ref_model for mps2-an386" in out


def test_report_of_a_profiled_run_shows_the_measured_column(tmp_path, capsys):
    rep = tmp_path / "r.json"
    assert main(["run", str(shared_model("kws_ref_model")), "--board", "host", "--profile",
                 "--report", str(rep)]) == 0
    capsys.readouterr()
    assert main(["report", str(rep)]) == 0
    head = capsys.readouterr().out.splitlines()[0]
    assert head.split()[-2] == "ns"


def browser() -> list[str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "chromium not found: ./setup.sh installs it (apt-get install chromium)"
    return [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            "--allow-file-access-from-files"]


def test_html_is_a_fit_and_validation_report(tmp_path, capsys):
    """The page of a checked, profiled run on a microcontroller board: the verdict with its
    figures, RAM and flash against the board's capacity with flash split three ways, short
    names with the full one on hover, a time column with shares that sorts, version/date/command
    line, and nothing wider than a 1400-pixel window."""
    rep_path, page = tmp_path / "r.json", tmp_path / "r.html"
    assert main(["run", str(shared_model("kws_ref_model")), "--board", "mps2-an386",
                 "--profile", "--check", "--report", str(rep_path)]) == 0
    assert main(["report", str(rep_path), "--html", str(page)]) == 0
    capsys.readouterr()
    rep = json.loads(rep_path.read_text())
    assert rep["flash_capacity_bytes"] == 4 << 20 and rep["made"]["command"].startswith(
        "edge-sdk run ")
    # Let the browser report what it laid out: the page's width, and the table after a click on
    # the time column's heading (sorted, largest first).
    probe = page.read_text().replace("</body>", (
        "<script>document.querySelector('#layers th:nth-child(9)').click();"
        "document.body.dataset.scrollWidth = document.documentElement.scrollWidth;</script>"
        "</body>"))
    (tmp_path / "probe.html").write_text(probe)
    dom = subprocess.run([*browser(), "--window-size=1400,1000", "--dump-dom",
                          (tmp_path / "probe.html").as_uri()], check=True, capture_output=True,
                         text=True, timeout=120).stdout
    width = int(dom.split('data-scroll-width="')[1].split('"')[0])
    assert width <= 1400, f"the page scrolls sideways at 1400 px ({width} px wide)"
    assert "outputs match LiteRT BUILTIN_REF" in dom and "bit-exact" in dom
    fit = dom[dom.index('id="fit"'):dom.index('class="legend"')]
    assert "of 4.0 MiB (" in fit and "weights" in dom and "kernels (model code)" in dom
    assert "rest of the firmware" in dom
    assert rep["made"]["command"] in dom.replace("&amp;", "&") and "edge-sdk 0.1.0" in dom
    table = dom[dom.index('<table id="layers">'):]
    body = table[table.index("<tbody>"):table.index("</tbody>")]
    rows = [[(dict(re.findall(r'([\w-]+)="([^"]*)"', attrs)).get("data-v"), text)
             for attrs, text in re.findall(r"<td([^>]*)>(.*?)</td>", r)]
            for r in body.split("<tr>")[1:]]
    assert len(rows) == len(rep["layers"])
    times = [float(r[8][0]) for r in rows]  # columns: # layer op output MACs offset arena
    assert times == sorted(times, reverse=True) and times[0] > times[-1]  # weights time share
    assert all(r[9][1].endswith("%") for r in rows)
    assert sum(float(r[9][0]) for r in rows) == pytest.approx(1.0)
    first = rep["layers"][0]["name"]
    assert f'title="{escape(first)}"' in dom and f">{short_name(first, 32)}<" in dom
    assert len(first) > 100  # the row shows the short name, the title the whole


def test_report_refuses_what_is_not_a_report(tmp_path, capsys):
    (tmp_path / "report.json").write_text("{not json")
    assert main(["report", str(tmp_path)]) == 6
    assert "not a readable report" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "nowhere")]) == 6


def test_inspect_prints_the_layer_table(capsys):
    assert main(["inspect", str(shared_model("ad01_int8"))]) == 0
    out = capsys.readouterr().out
    assert "arena at" in out and "FULLY_CONNECTED" in out and "ad01_int8 for host" in out


def test_png_of_the_memory_plan(kws_compiled, tmp_path):
    png = tmp_path / "plan.png"
    assert main(["report", str(kws_compiled), "--png", str(png)]) == 0
    img = decode_png(png.read_bytes())
    assert img.shape == (420, 960, 3)
    colors = {tuple(c) for c in img.reshape(-1, 3)[::7]}
    assert (0x4E, 0x79, 0xA7) in colors and len(colors) >= 8  # the boxes, in several colours
    dark = img.astype(int).sum(axis=2) < 200  # text: the title, tick labels, axis names
    assert dark[5:35, 80:700].sum() > 300, "no title above the chart"
    assert dark[40:400, 0:85].sum() > 200, "no offset ticks or axis name on the left"
    assert dark[372:420, 90:950].sum() > 300, "no layer ticks or axis name below"
    legend = img[14:26, 700:950].reshape(-1, 3)
    assert any(tuple(c) == (0xB8, 0xB8, 0xB8) for c in legend), "no legend swatch for scratch"


def test_html_report_renders_in_a_real_browser(kws_compiled, tmp_path):
    page = tmp_path / "kws.html"
    assert main(["report", str(kws_compiled), "--html", str(page)]) == 0
    flags = browser()
    shot = tmp_path / "shot.png"
    subprocess.run([*flags, f"--screenshot={shot}", "--window-size=1280,1400",
                    page.as_uri()], check=True, capture_output=True, timeout=120)
    dom = subprocess.run([*flags, "--dump-dom", page.as_uri()], check=True,
                         capture_output=True, text=True, timeout=120).stdout
    rep = json.loads((kws_compiled / "report.json").read_text())
    for layer in rep["layers"]:  # every layer named in the rendered page
        assert escape(layer["name"]) in dom
    assert dom.count("<rect") >= len(rep["memory_plan"]) + len(rep["layers"])
    img = decode_png(shot.read_bytes())[:, :, :3]
    assert img.shape[:2] == (1400, 1280)
    ink = (img.astype(int).sum(axis=2) < 600).mean()
    assert ink > 0.05, f"the page looks blank ({ink:.1%} of pixels drawn)"
    # The memory plan's first box (the palette's first colour) is on screen.
    assert ((np.abs(img.astype(int) - (0x4E, 0x79, 0xA7)).sum(axis=2)) < 12).sum() > 2000
