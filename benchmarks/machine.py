"""The machine a figure was taken on: every benchmark prints this beside its table and writes it
into its JSON, because timings compare only within one machine (sessions move between an AMD
Zen 3 with AVX2 and an Intel Xeon with AVX-512 VNNI)."""

from __future__ import annotations

import os
import platform
from pathlib import Path

# The instruction-set features the kernel sets choose between (x86 and Arm names as Linux
# reports them in /proc/cpuinfo).
RELEVANT = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl",
            "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8", "amx_bf16",
            "asimd", "asimddp", "i8mm", "fphp", "asimdhp", "sve", "sve2", "bf16")


def cpu_model() -> str:
    for line in _cpuinfo():
        key, _, value = line.partition(":")
        if key.strip() in ("model name", "Model", "Hardware"):
            return value.strip()
    return platform.processor() or platform.machine()


def isa_flags() -> list[str]:
    for line in _cpuinfo():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            have = set(value.split())
            return [f for f in RELEVANT if f in have]
    return []


def describe() -> dict:
    """CPU model, relevant ISA flags and core count, for a benchmark's JSON."""
    return {"cpu": cpu_model(), "isa_flags": isa_flags(), "cores": os.cpu_count()}


def banner() -> str:
    d = describe()
    return f"machine: {d['cpu']}, {d['cores']} cores; ISA: {' '.join(d['isa_flags']) or '-'}"


def _cpuinfo() -> list[str]:
    try:
        return Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
