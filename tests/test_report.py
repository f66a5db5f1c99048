"""`edge-sdk report` and `inspect`: the per-layer table, and the HTML page checked in a real
browser (Debian's headless Chromium): rendered, not blank, with every layer named and the
memory plan's boxes drawn."""

from __future__ import annotations

import json
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
    assert img.shape == (360, 960, 3)
    colors = {tuple(c) for c in img.reshape(-1, 3)[::7]}
    assert (0x4E, 0x79, 0xA7) in colors and len(colors) >= 8  # the boxes, in several colours


def test_html_report_renders_in_a_real_browser(kws_compiled, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "chromium not found: ./setup.sh installs it (apt-get install chromium)"
    page = tmp_path / "kws.html"
    assert main(["report", str(kws_compiled), "--html", str(page)]) == 0
    flags = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--allow-file-access-from-files"]
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
