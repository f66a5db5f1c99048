"""Smoke runs of the coverage-guided fuzz targets in ``tests/fuzz/`` (atheris).

A few thousand executions each, seeded and deterministic: enough to catch a parser path that
raises something other than an ``EdgeSDKError`` (or, for the serial client, a ``DeviceError``).
Longer campaigns: run the targets by hand with ``-runs=N`` (see their docstrings).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("atheris", reason="atheris is in the dev extras: pip install -e '.[dev]'")

FUZZ = Path(__file__).with_name("fuzz")
SEEDS = Path(__file__).resolve().parents[2] / "shared" / "models" / "real" / "tflm_int16_layers"


def fuzz(target: str, runs: int, tmp_path: Path, corpus: Path | None = None) -> str:
    args = [sys.executable, str(FUZZ / target), f"-runs={runs}", "-seed=1",
            f"-artifact_prefix={tmp_path}/", "-max_total_time=240"]
    proc = subprocess.run(args + ([str(corpus)] if corpus else []), capture_output=True,
                          text=True, timeout=420, cwd=tmp_path)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{target} found a crash:\n{log[-3000:]}"
    assert f"Done {runs} runs" in log, log[-2000:]
    return log


def test_loader_and_compiler_fuzz_smoke(tmp_path):
    if not SEEDS.is_dir():
        pytest.skip(f"{SEEDS} is absent: the seed models live in ../shared (CI has them)")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for model in SEEDS.glob("*/*.tflite"):
        shutil.copy(model, corpus / model.name)
    fuzz("fuzz_loader.py", 3000, tmp_path, corpus)


def test_serial_frame_parser_fuzz_smoke(tmp_path):
    fuzz("fuzz_frames.py", 5000, tmp_path)


def test_onnx_loader_fuzz_smoke(tmp_path):
    sys.path.insert(0, str(Path(__file__).parent))
    from onnx_mutants import sample_model

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for seed in range(2):
        (corpus / f"sample{seed}.onnx").write_bytes(sample_model(seed).SerializeToString())
    fuzz("fuzz_onnx.py", 300, tmp_path, corpus)
