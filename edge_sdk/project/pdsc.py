"""Create a board file from a CMSIS-Pack description (``*.pdsc``).

A PDSC lists devices in a family -> subFamily -> (variant) -> device hierarchy; ``processor``
and ``memory`` elements at any level apply to the devices below. We collect them along the
path to the requested device, map ``Dcore`` to one of our targets, take the startup ROM as flash
and the default RAM (merged with RAM regions that are contiguous with it) as RAM. Both the
older ``id="IROM1"`` and the newer ``name=... access=...`` memory attributes are understood.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from edge_sdk.errors import BoardError

CORES = {
    "Cortex-M0": "cortex-m0plus", "Cortex-M0+": "cortex-m0plus", "Cortex-M3": "cortex-m3",
    "Cortex-M4": "cortex-m4", "Cortex-M7": "cortex-m7", "Cortex-M33": "cortex-m33",
    "Cortex-M55": "cortex-m55",
}


def _int(text: str) -> int:
    return int(text, 0)


def _is_rom(mem: ET.Element) -> bool:
    ident, access = mem.get("id", ""), mem.get("access", "")
    return ident.startswith("IROM") or ("x" in access and "w" not in access)


def _find_path(root: ET.Element, device: str) -> list[ET.Element] | None:
    for family in root.iter("family"):
        stack = [(family, [family])]
        while stack:
            node, path = stack.pop()
            for child in node:
                if child.tag in ("subFamily", "device", "variant"):
                    name = child.get("Dname") or child.get("Dvariant") or ""
                    if child.tag != "subFamily" and name.lower() == device.lower():
                        return [*path, child]
                    stack.append((child, [*path, child]))
    return None


def board_from_pdsc(pdsc: Path, device: str, name: str | None = None) -> dict:
    try:
        root = ET.parse(pdsc).getroot()
    except (ET.ParseError, OSError) as err:
        raise BoardError(f"cannot read {pdsc} as a CMSIS pack description: {err}") from None
    path = _find_path(root, device)
    if path is None:
        names = sorted({d.get("Dname", "") for d in root.iter("device")} - {""})
        hint = ", ".join(names[:8]) + (" ..." if len(names) > 8 else "")
        raise BoardError(f"device {device} is not in {pdsc.name}; it describes: {hint}")
    processor: dict[str, str] = {}
    memories: list[ET.Element] = []
    vendor = ""
    for node in path:
        vendor = (node.get("Dvendor") or vendor).split(":")[0]
        for p in node.findall("processor"):
            processor.update(p.attrib)
        memories += node.findall("memory")
    core = processor.get("Dcore", "")
    if core not in CORES:
        raise BoardError(f"{device} has a {core or 'unknown'} core; edge-sdk targets "
                         f"{', '.join(sorted(CORES))}")
    roms = [m for m in memories if _is_rom(m)]
    rams = [m for m in memories if not _is_rom(m)]
    if not roms or not rams:
        raise BoardError(f"{device}: the pack lists no flash or no RAM region")
    flash = next((m for m in roms if m.get("startup") == "1"), roms[0])
    ram = next((m for m in rams if m.get("default") == "1"), rams[0])
    ram_start, ram_end = _int(ram.get("start", "0")), 0
    ram_end = ram_start + _int(ram.get("size", "0"))
    merged = True
    while merged:  # grow the default RAM with regions that touch it
        merged = False
        for m in rams:
            start, end = _int(m.get("start", "0")), _int(m.get("start", "0")) + _int(
                m.get("size", "0"))
            if end == ram_start or start == ram_end:
                ram_start, ram_end = min(ram_start, start), max(ram_end, end)
                merged = True
    pack = f"{root.findtext('vendor', '').strip()}::{root.findtext('name', '').strip()}"
    board_name = name or device.lower()
    return {
        "name": board_name,
        "description": f"{vendor} {device}, {core} at {int(processor.get('Dclock', 0)) // 10**6}"
                       " MHz (from " + pdsc.name + ")",
        "cpu": CORES[core],
        "clock_hz": int(processor.get("Dclock", 0)),
        "memory": {
            "flash": {"origin": _int(flash.get("start", "0")),
                      "size": _int(flash.get("size", "0"))},
            "ram": {"origin": ram_start, "size": ram_end - ram_start},
        },
        "port": None,
        "cmsis": {"vendor": vendor, "device": device, "pack": pack},
        "runners": {"default": "pyocd", "pyocd": {"target": device.lower()}},
        "templates": ["cmsis"],
    }
