"""``edge-sdk benchmark``: one model's inference time on one board, over N runs, in the unit
the board's timer really counts, and as time where its clock is known.

Where it runs is the board's own way: the host build or QEMU (started here), a flashed
microcontroller over its serial port (``port``), a Linux board over SSH (``host``) or, for
``linux-x86_64``, this machine. The figures come from the board itself (its timer around
``model_run``, or the Linux runner's clock), never from the host's view of the link.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edge_sdk.errors import UsageError


def _spread(values: list[float]) -> dict:
    ordered = sorted(values)
    return {"min": ordered[0], "median": ordered[len(ordered) // 2], "max": ordered[-1]}


def benchmark(model: Any, board: str, runs: int = 10, port: str | None = None,
              host: str | None = None, **ssh: Any) -> dict:
    """Time ``runs`` inferences of the deterministic input (BASELINES.md's pattern) and return
    {model, board, where, runs, unit, min, median, max, seconds: {...} or None, unit_note}."""
    from edge_sdk import api
    from edge_sdk.device.launch import run_budget
    from edge_sdk.model_io import default_inputs

    if runs < 1:
        raise UsageError("--runs takes 1 or more")
    graph = model if isinstance(model, api.Graph) else api.load(model)
    b = api.get_board(board)
    batch = [np.repeat(a, runs, axis=0) for a in default_inputs(graph)]
    out: dict = {"model": graph.name, "board": b.name, "runs": runs}
    if b.linux is not None:
        if port:
            raise UsageError(f"{b.name} runs Linux: benchmark it over SSH with --host")
        if host:
            result = api.deploy(graph, b.name, host, inputs=[a[:1] for a in batch], bench=runs,
                                **ssh)
            out["where"] = f"ssh {host}"
        else:
            from edge_sdk.device import linux

            if linux.local_prefix(b):
                raise UsageError(f"{b.name} runs here only under qemu-user, whose speed says "
                                 "nothing about the board: give --host user@board")
            result = api.run_linux_here(graph, b, [a[:1] for a in batch], bench=runs)
            out["where"] = "this machine"
        lat = result.report["latency"]
        out.update({"unit": "ns", "median": lat["p50_ns"], "p90": lat["p90_ns"],
                    "p99": lat["p99_ns"], "mean": lat["mean_ns"],
                    "seconds": {"median": lat["p50_ns"] / 1e9, "p90": lat["p90_ns"] / 1e9,
                                "p99": lat["p99_ns"] / 1e9},
                    "unit_note": f"wall clock on the board, {lat['bench_runs']} timed runs"})
        return out
    if port:
        program = api.compile_for(graph, b).program
        budget = run_budget(sum(s.macs for s in program.steps), b,
                            program.graph.origin == "relax")
        result = api.run_remote(port, batch if len(batch) > 1 else batch[0], model=graph,
                                run_timeout=budget, emulated=b.emulator is not None)
        out["where"] = f"serial {port}"
    else:
        api.require_startable(b, "benchmark")
        result = api.run(graph, board=b.name, inputs=batch)
        out["where"] = "QEMU" if b.emulator else "host build"
    timer = result.report["timer"]
    values = timer.get("per_inference") or []
    if not values:
        raise UsageError(f"{b.name}'s firmware reports no timer: nothing to benchmark")
    out.update({"unit": timer["unit"], **_spread(values),
                "seconds": _spread(timer["seconds"]) if timer.get("seconds") else None,
                "unit_note": timer.get("unit_note", ""),
                "arena_bytes": result.report.get("arena_bytes"),
                "flash_bytes": result.report.get("flash_bytes")})
    return out


def describe(result: dict) -> str:
    """The table printed for a benchmark result."""
    from edge_sdk.device.timing import seconds_text

    unit = result["unit"]
    keys = [k for k in ("min", "median", "max", "p90", "p99") if k in result]
    head = f"{'':<8}" + "".join(f"{k:>16}" for k in keys)
    rows = [f"{result['model']} on {result['board']} ({result['where']}), {result['runs']} "
            f"runs:", head, f"{unit:<8}" + "".join(f"{result[k]:>16,.0f}" for k in keys)]
    secs = result.get("seconds")
    if secs:
        rows.append(f"{'time':<8}" + "".join(f"{seconds_text(secs[k]):>16}" if k in secs
                                             else f"{'':>16}" for k in keys))
    rows.append(f"({result['unit_note']})")
    return "\n".join(rows)

