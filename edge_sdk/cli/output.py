"""What the commands print: a check's verdict, a profile's per-layer table, JSON results."""

from __future__ import annotations

JSON_OUTPUT_VALUES = 4096


def json_result(result) -> dict:
    """``run``/``run-remote --json``: the report, and the outputs when they are small."""
    outs = result.output_list
    if sum(o.size for o in outs) <= JSON_OUTPUT_VALUES:
        return {**result.report, "outputs": [o.tolist() for o in outs]}
    return {**result.report, "outputs": None,
            "outputs_note": f"more than {JSON_OUTPUT_VALUES} values: use --output FILE"}


def print_check(check: dict) -> None:
    """One line with the verdict; a mismatch ends the command with exit code 7."""
    from edge_sdk.validate import CheckFailed

    if check["match"]:
        print(f"check: {check['rule']} against {check['reference']} "
              f"({check['elements']} output values)")
        return
    raise CheckFailed(f"check failed: {check['differing']} of {check['elements']} output values "
                      f"differ from {check['reference']} (largest error "
                      f"{check['max_abs_error']:g}); the outputs were still written. This is a "
                      "bug: please report it with the model (--report has the details)")


def print_profile(rep: dict) -> None:
    """The per-layer table of a profiled run (first inference), in the run's own unit."""
    first = rep["layers"][0]["measured"]
    unit = ("instructions" if "instructions" in first else "ns" if "latency_ns" in first
            else "cycles" if "cycles" in first else "ticks")
    key = {"ns": "latency_ns"}.get(unit, unit)
    total = sum(layer["measured"][key][0] for layer in rep["layers"]) or 1
    print(f"\n{'#':>4} {'op':<18}{'MACs':>11}{unit:>14}{'share':>7}{'MAC/' + unit[:5]:>11}  "
          f"{'scratch':>7}  kernel")
    for layer in rep["layers"]:
        value = layer["measured"][key][0]
        rate = f"{layer['macs'] / value:.2f}" if value and layer["macs"] else "-"
        print(f"{layer['index']:>4} {layer['op']:<18}{layer['macs']:>11,}{value:>14,}"
              f"{value / total:>7.1%}{rate:>11}  {layer.get('scratch_bytes', 0):>7}  "
              f"{layer.get('variant', layer['kernel'])[:60]}")
    print(f"({unit}; {rep['timer'].get('unit_note', '')})")
