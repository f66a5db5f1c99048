"""Microcontroller targets: the CPU features and compiler flags of each Cortex-M core."""

from __future__ import annotations

from dataclasses import dataclass

from edge_sdk.errors import BoardError


@dataclass(frozen=True)
class Target:
    name: str
    arch: str
    fpu: str | None  # None: soft float (the int8 paths need none; softmax's float runs in software)
    dsp: bool        # the SIMD/DSP extension (SMLAD & co.)
    mve: bool        # Helium (M-profile vector extension)
    cflags: str


TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target("cortex-m0plus", "armv6-m", None, False, False,
               "-mcpu=cortex-m0plus -mthumb -mfloat-abi=soft"),
        Target("cortex-m3", "armv7-m", None, False, False,
               "-mcpu=cortex-m3 -mthumb -mfloat-abi=soft"),
        Target("cortex-m4", "armv7e-m", "fpv4-sp-d16", True, False,
               "-mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16"),
        Target("cortex-m7", "armv7e-m", "fpv5-d16", True, False,
               "-mcpu=cortex-m7 -mthumb -mfloat-abi=hard -mfpu=fpv5-d16"),
        Target("cortex-m33", "armv8-m.main", "fpv5-sp-d16", True, False,
               "-mcpu=cortex-m33 -mthumb -mfloat-abi=hard -mfpu=fpv5-sp-d16"),
        Target("cortex-m55", "armv8.1-m.main", "auto", True, True,
               "-mcpu=cortex-m55 -mthumb -mfloat-abi=hard -mfpu=auto"),
        Target("cortex-a7", "armv7-a", "neon-vfpv4", False, False,
               "-mcpu=cortex-a7 -mfpu=neon-vfpv4 -mfloat-abi=hard"),
        Target("cortex-a53-armv7", "armv8-a (AArch32)", "neon-fp-armv8", False, False,
               "-mcpu=cortex-a53 -mfpu=neon-fp-armv8 -mfloat-abi=hard"),
        Target("cortex-a53", "armv8-a", "neon", False, False, "-mcpu=cortex-a53"),
        Target("cortex-a72", "armv8-a", "neon", False, False, "-mcpu=cortex-a72"),
        Target("cortex-a76", "armv8.2-a", "neon", True, False, "-mcpu=cortex-a76"),
        Target("cortex-a78", "armv8.2-a", "neon", True, False, "-mcpu=cortex-a78"),
        Target("host", "host", "host", False, False, ""),
    )
}


def get_target(name: str) -> Target:
    try:
        return TARGETS[name]
    except KeyError:
        raise BoardError(f"unknown CPU '{name}'; known: {', '.join(sorted(TARGETS))}") from None
