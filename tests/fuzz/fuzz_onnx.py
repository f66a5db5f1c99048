#!/usr/bin/env python3
"""Coverage-guided fuzz target (atheris) for the ONNX front door: parsing, the ONNX checks
(``frontend/onnx_check.py``) and TVM's importer behind them.

    python3 tests/fuzz/fuzz_onnx.py [libFuzzer flags] CORPUS_DIR...

Each input is taken as an ``.onnx`` file: edge-sdk must load it or refuse it with an
``EdgeSDKError`` whose message is one line. Anything else escaping is a crash, which atheris
reports with the input. Seed the corpus with small models (``tests/test_fuzz.py`` writes the
PyTorch-style classifier of ``tests/onnx_mutants.py``). Compiling is left to the mutant sweep
(``tests/test_mutants.py``): an import takes tens of milliseconds, a compile far more.
"""

import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["edge_sdk"]):
    from edge_sdk.errors import EdgeSDKError
    from edge_sdk.frontend.relax_onnx import load_onnx

FILE = Path(tempfile.mkdtemp(prefix="edge-sdk-fuzz-onnx-")) / "fuzz.onnx"


def test_one_input(data: bytes) -> None:
    FILE.write_bytes(data)
    try:
        load_onnx(FILE)
    except EdgeSDKError as err:
        if "\n" in str(err):
            raise AssertionError(f"a refusal of several lines: {err!r}") from None


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
