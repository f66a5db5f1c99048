"""The guard for moving code: the generated sources of the four MLPerf Tiny models, hashed, on a
board of each code path (portable C on host, Cortex-M DSP, Helium, the Linux CPU kernels through
LLVM, the GPU through OpenCL).

A pure move or rename must leave every hash as it is. A change that means to alter generated
code says why in its commit and records the new hashes in the same commit:

    .venv/bin/python -m tests.test_golden_sources --record

What is hashed: the model's header and C source; on a Linux board also each kernel's TIR (LLVM
compiles it to an object, so the C does not show it); on a GPU board also the device code.
"""

from __future__ import annotations

import hashlib
import json
import sys

import pytest

from tests.conftest import ROOT, shared_model

GOLDEN = ROOT / "tests" / "data" / "golden_sources.json"
MODELS = ("kws_ref_model", "vww_96_int8", "pretrainedResnet_quant", "ad01_int8")
BOARDS = ("host", "mps2-an386", "mps3-an547", "linux-x86_64", "linux-x86_64-v4",
          "rk3399-mali-t860")
# linux-x86_64 is this machine's CPU, whose features pick the kernel set: the guard pins the
# AVX2 set so its hash does not depend on the machine; linux-x86_64-v4 covers the VNNI set.
PINNED = {"linux-x86_64": "cpu-avx2"}


def digest(model: str, board: str) -> str:
    import edge_sdk
    from edge_sdk.api import compile_for
    from edge_sdk.project.boards import get_board

    b = get_board(board)
    compiled = compile_for(edge_sdk.load(shared_model(model)), b, isa=PINNED.get(board))
    h = hashlib.sha256()
    h.update(compiled.sources.header.encode())
    h.update(compiled.sources.source.encode())
    if b.linux is not None and b.gpu is None:
        for step in compiled.program.steps:
            if step.kind == "kernel" and step.func is not None:
                h.update(step.func_name.encode())
                h.update(step.func.script().encode())
    if compiled.gpu is not None:
        h.update(compiled.gpu.device.source.encode())
    return h.hexdigest()


def recorded() -> dict[str, str]:
    return json.loads(GOLDEN.read_text())["sha256"]


@pytest.mark.parametrize("board", BOARDS)
@pytest.mark.parametrize("model", MODELS)
def test_generated_sources_are_unchanged(model, board):
    want = recorded().get(f"{model}@{board}")
    assert want is not None, "no recorded hash: run `python -m tests.test_golden_sources --record`"
    assert digest(model, board) == want, (
        f"the generated code of {model} for {board} changed; if that was meant, say why in the "
        "commit and record: .venv/bin/python -m tests.test_golden_sources --record")


def record() -> None:
    hashes = {f"{m}@{b}": digest(m, b) for m in MODELS for b in BOARDS}
    GOLDEN.write_text(json.dumps({"about": "sha256 of generated sources; see "
                                  "tests/test_golden_sources.py", "sha256": hashes},
                                 indent=1, sort_keys=True) + "\n")
    print(f"recorded {len(hashes)} hashes in {GOLDEN}")


if __name__ == "__main__":
    if sys.argv[1:] != ["--record"]:
        sys.exit("usage: python -m tests.test_golden_sources --record")
    record()
