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

ALIASES = ("RESHAPE", "SQUEEZE", "EXPAND_DIMS")
FOLDED = ("DENSIFY", "SHAPE")  # constant-only: done at compile time, on every target
# Resolved when the model is loaded into variable tensors (frontend.variables): CPU targets.
RESOLVED = ("VAR_HANDLE", "CALL_ONCE")
LIMITS = {
    "MEAN": "any axes, rank and keep_dims",
    "SUM": "any axes; int8/int16 as TFLite Micro computes it (LiteRT's reference reads them "
           "as uint8)",
    "TRANSPOSE_CONV": "output-shape operand fixed at compile time",
    "SOFTMAX": "float: beta 1 only",
    "QUANTIZE": "float->int8, int8/int16/int32->int8/int16, int16->int32, int8->uint8",
    "UNIDIRECTIONAL_SEQUENCE_LSTM": "int8 with int16 cell state (TFLite's 8x8->16) and float32; "
                                    "no peephole, projection, layer norm or CIFG",
    "BATCH_MATMUL": "adj_x/adj_y, broadcast batch dimensions, either operand constant",
    "L2_NORMALIZATION": "last axis; int8 output at TFLite's fixed 1/128, zero point 0",
    "LOG_SOFTMAX": "int8 output at TFLite's fixed 16/256, zero point 127",
    "SVDF": "state kept in the arena between inferences; int8: int16 state and time weights",
    "DENSIFY": "of sparse weights (CSR, block-sparse): expanded when the model is loaded",
    "SHAPE": "folded at the stored shape (an open batch, -1, compiles as 1), with the integer "
             "ops after it on constants",
    "READ_VARIABLE": "resource variables: one arena buffer each, kept between inferences",
    "ASSIGN_VARIABLE": "resource variables: one arena buffer each, kept between inferences",
    "VAR_HANDLE": "resolved when the model is loaded: names the variable's buffer",
    "CALL_ONCE": "an initialiser that assigns constants: set on the first call",
    "DEQUANTIZE": "of a constant (float16 or int8 weights): folded at compile time",
}


def registry_rows() -> list[tuple[str, ...]]:
    """The table from the compiler's registries (imports the kernels, and so TVM)."""
    from edge_sdk.compiler.gpu import kernels as gpu
    from edge_sdk.compiler.kernels import float32
    from edge_sdk.compiler.lower import INT16_OPS, LOWERINGS

    ops = sorted({*LOWERINGS, *float32.LOWERINGS, *gpu.INT8, *gpu.FLOAT32, *ALIASES, *FOLDED,
                  *RESOLVED})

    def mark(ok: bool) -> str:
        return "yes" if ok else "-"

    rows: list[tuple[str, ...]] = []
    for op in ops:
        alias = op in ALIASES or op in FOLDED
        cpu = op in FOLDED or op in RESOLVED
        rows.append((op, mark(op in LOWERINGS or cpu), mark(op in INT16_OPS),
                     mark(op in float32.LOWERINGS or alias or cpu),
                     mark(op in gpu.INT8 or alias), mark(op in gpu.FLOAT32 or alias),
                     LIMITS.get(op, "")))
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
