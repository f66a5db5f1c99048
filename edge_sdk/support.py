"""Which operator runs where, read from the compiler's own registries (so it cannot drift).

``edge-sdk ops`` prints it; the README's operator table is this output (a test keeps them equal).
Microcontrollers and Linux CPUs share the C kernels (Linux compiles them with TVM's LLVM
backend); float32 on a microcontroller needs an FPU to be fast, but runs anywhere.

The registries live in modules that import TVM (seconds), so the table also ships as
``edge_sdk/data/operators.json``, which ``edge-sdk ops`` reads; a test keeps it equal to
:func:`registry_rows`, and ``python -m edge_sdk.support`` writes it again after a change.
"""

from __future__ import annotations

import json

from edge_sdk.resources import data_path

OPERATORS_FILE = data_path("operators.json")

def registry_rows() -> list[tuple[str, ...]]:
    """The table from the operator registry (imports the kernels, and so TVM)."""
    from edge_sdk.compiler.registry import OPS

    def mark(ok: bool) -> str:
        return "yes" if ok else "-"

    rows: list[tuple[str, ...]] = []
    for name in sorted(OPS):
        d = OPS[name]
        free = d.how in ("alias", "folded")  # no code on any target
        cpu = d.how in ("folded", "resolved")  # done before the kernels, on every CPU target
        rows.append((name, mark(d.integer is not None or cpu), mark(d.int16),
                     mark(d.float32 is not None or free or cpu),
                     mark(d.gpu_int8 is not None or free), mark(d.gpu_float32 is not None or free),
                     d.limits))
    return rows


def operator_rows() -> list[tuple[str, ...]]:
    """The table as shipped (``data/operators.json``): no TVM import."""
    return [tuple(row) for row in json.loads(OPERATORS_FILE.read_text(encoding="utf-8"))]


def write_operators_file() -> None:
    """``python -m edge_sdk.support``: the shipped table, from the registries."""
    rows = ",\n".join(json.dumps(row) for row in registry_rows())  # a row a line: clear diffs
    OPERATORS_FILE.write_text(f"[\n{rows}\n]\n", encoding="utf-8")


def operator_table() -> str:
    """The Markdown table: one row per operator."""
    header = ("operator", "int8", "int16x8", "float32", "GPU int8", "GPU float32", "notes")
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in operator_rows()]
    return "\n".join(lines)


if __name__ == "__main__":
    write_operators_file()
    print(f"wrote {OPERATORS_FILE}")
