"""The memory plan as a PNG, drawn without a graphics library: boxes on a raster, encoded with
zlib (PNG is a zlib stream of filtered rows with CRC-framed chunks)."""

from __future__ import annotations

import struct
import zlib

import numpy as np

from edge_sdk.render.html import PALETTE, SCRATCH


def _rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def encode_png(pixels: np.ndarray) -> bytes:
    """``pixels``: (height, width, 3) uint8 -> PNG bytes (8-bit RGB, filter 0 on every row)."""
    height, width, _ = pixels.shape
    raw = b"".join(b"\x00" + pixels[y].tobytes() for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def render_png(rep: dict, width: int = 960, height: int = 360) -> bytes:
    """Offset (down) over layers (across), one box per arena buffer, as in the HTML page."""
    img = np.full((height, width, 3), 255, np.uint8)
    left, top, w, h = 10, 10, width - 20, height - 20
    img[top:top + h, left:left + w] = 250
    plan, n = rep.get("memory_plan") or [], max(len(rep["layers"]), 1)
    arena = max([rep.get("arena_bytes") or 0, *(b["offset"] + b["bytes"] for b in plan), 1])
    for i, b in enumerate(plan):
        x0 = left + int(b["first"] * w / n)
        x1 = max(left + int((b["last"] + 1) * w / n) - 1, x0 + 1)
        y0 = top + int(b["offset"] / arena * h)
        y1 = max(top + int((b["offset"] + b["bytes"]) / arena * h), y0 + 2)
        color = SCRATCH if b["kind"] == "scratch" else PALETTE[i % len(PALETTE)]
        img[y0:y1, x0:x1] = _rgb(color)
    img[top, left:left + w] = img[top + h - 1, left:left + w] = 120  # frame
    img[top:top + h, left] = img[top:top + h, left + w - 1] = 120
    return encode_png(img)
