#!/usr/bin/env python3
"""Coverage-guided fuzz target (atheris) for the loader and the compiler.

    python3 tests/fuzz/fuzz_loader.py [libFuzzer flags] CORPUS_DIR...
    python3 tests/fuzz/fuzz_loader.py -runs=100000 -artifact_prefix=/tmp/ corpus/

Each input is taken as a ``.tflite`` file: edge-sdk must load and compile it, or refuse it with
an ``EdgeSDKError`` whose message is one line. Anything else escaping (IndexError, KeyError,
ZeroDivisionError...) is a crash, which atheris reports with the input that caused it. Seed the
corpus with small real models (``tests/test_fuzz.py`` uses TFLM's int16 layer tests): most
mutations of a large model land in its weights. ``tests/test_fuzz.py`` runs a short smoke.
"""

import sys

import atheris

with atheris.instrument_imports(include=["edge_sdk"]):
    from edge_sdk.errors import EdgeSDKError
    from edge_sdk.frontend.tflite import parse
    from edge_sdk.pipeline import compile_graph

MAX_OPERATORS = 8  # compile only small graphs: each execution must stay in milliseconds


def test_one_input(data: bytes) -> None:
    try:
        graph = parse(data, name="fuzz")
        if len(graph.operators) <= MAX_OPERATORS:
            compile_graph(graph)
    except EdgeSDKError as err:
        if "\n" in str(err):
            raise AssertionError(f"a refusal of several lines: {err!r}") from None


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
