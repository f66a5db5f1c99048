"""What a board's tick counts mean, in the unit they really are, and as time where the clock is
known.

The firmware reports its timer as a kind and a rate (protocol INFO):

- ``cycles``: core clock cycles (DWT->CYCCNT) at ``timer_hz``;
- ``systick``: SysTick on the core clock: cycles on a real core; under QEMU (``-icount
  shift=0``) virtual time, that is instructions executed, which says nothing of the board's
  speed;
- ``clock``: ticks of a clock other than the core's at ``timer_hz`` (Zephyr's cycle counter, a
  32 kHz RTC on nRF52; Arduino's ``micros()``): only time, no cycle count;
- ``nanoseconds``: the host's wall clock;
- ``systick-emulated``: SysTick on a core whose cycle counter exists but never moves, which is
  an emulator's (QEMU): read as instructions, whether or not the caller knew the board.
"""

from __future__ import annotations


def timing(kind: str, hz: int, ticks: list[int], emulated: bool) -> dict:
    """The report's ``timer`` entry: the raw ticks, their true ``unit``, the figure per
    inference in that unit (``per_inference``), and ``seconds`` where it is time on the board
    (not under an emulator). The unit's own key (``instructions``, ``cycles``, ``latency_ns``)
    is kept too, for readers of earlier reports."""
    per = [int(t) for t in ticks]
    out: dict = {"kind": kind, "ticks": per, "timer_hz": hz}
    if (kind == "systick-emulated" or (kind == "systick" and emulated)) and hz:
        # QEMU -icount shift=0 runs one instruction per virtual nanosecond: ticks -> instructions.
        out["instructions"] = [t * 1_000_000_000 // hz for t in per]
        out["unit"], out["per_inference"] = "instructions", out["instructions"]
        out["unit_note"] = ("instructions executed (QEMU -icount shift=0; SysTick resolution "
                            f"{1_000_000_000 // hz} instructions); QEMU does not model cycles")
    elif kind in ("systick", "cycles") and hz:
        out["cycles"] = per
        out["unit"], out["per_inference"] = "cycles", per
        out["seconds"] = [t / hz for t in per]
        out["unit_note"] = f"core clock cycles at {hz / 1e6:g} MHz"
    elif kind == "clock" and hz:
        out["unit"], out["per_inference"] = "ticks", per
        out["seconds"] = [t / hz for t in per]
        out["unit_note"] = f"ticks of a {hz:,} Hz clock (not core cycles)"
    elif kind == "nanoseconds":
        out["latency_ns"] = per
        out["unit"], out["per_inference"] = "ns", per
        out["seconds"] = [t / 1e9 for t in per]
        out["unit_note"] = "host wall clock"
    else:
        out["unit"], out["per_inference"] = "ticks", per
        out["unit_note"] = "a timer of unknown rate"
    return out


def linux_timing(stats: dict, emulated: bool) -> dict:
    """The ``timer`` entry of a run on a Linux board: the runner's median wall-clock latency
    (none under qemu-user, whose speed says nothing about the board)."""
    ns = stats["p50_ns"] if stats.get("bench_runs") else None
    out: dict = {"kind": "wall clock", "latency_ns": ns, "emulated": emulated}
    if ns is not None:
        out.update({"unit": "ns", "per_inference": [ns], "seconds": [ns / 1e9],
                    "unit_note": f"median of {stats['bench_runs']} timed runs, wall clock"})
    return out


def seconds_text(s: float) -> str:
    """0.0000512 -> '51.2 µs'; 0.0123 -> '12.3 ms'; 2.5 -> '2.50 s'."""
    if s < 1e-3:
        return f"{s * 1e6:.1f} µs"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.2f} s"


def describe(timer: dict) -> str:
    """One phrase for the summary line: the median inference in its unit, and as time where
    that is known, e.g. '1,234,567 cycles at 216 MHz = 5.72 ms per inference'."""
    values = sorted(timer.get("per_inference") or [])
    if not values:
        return "not timed"
    mid = values[len(values) // 2]
    many = f" (median of {len(values)}, {values[0]:,} to {values[-1]:,})" if len(values) > 1 else ""
    unit, hz = timer.get("unit", "ticks"), timer.get("timer_hz", 0)
    secs = sorted(timer.get("seconds") or [])
    when = seconds_text(secs[len(secs) // 2]) if secs else ""
    if unit == "instructions":
        return (f"{mid:,} instructions per inference{many} (QEMU counts instructions: not the "
                "board's cycles or time)")
    if unit == "cycles":
        return f"{mid:,} cycles at {hz / 1e6:g} MHz = {when} per inference{many}"
    if unit == "ticks" and secs:
        return f"{mid:,} ticks of a {hz:,} Hz clock = {when} per inference{many}"
    if unit == "ns":
        return f"{when} per inference{many} ({timer.get('unit_note', 'wall clock')})"
    return f"{mid:,} ticks per inference{many} (timer rate unknown)"
