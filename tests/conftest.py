"""Shared test helpers: the LiteRT reference oracle and paths to the shared models."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_MODELS = ROOT.parent / "shared" / "models" / "mlperf_tiny"
MLPERF_INT8 = ["kws_ref_model", "vww_96_int8", "pretrainedResnet_quant", "ad01_int8"]


def shared_model(name: str) -> Path:
    path = SHARED_MODELS / f"{name}.tflite"
    if not path.exists():
        pytest.skip(f"{path} is absent: the MLPerf Tiny models live in ../shared (CI has them)")
    return path


def reference(model: Path | bytes, inputs: np.ndarray) -> np.ndarray:
    """Outputs of ai-edge-litert's interpreter with the reference kernels (our oracle)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    kwargs = {"model_content": model} if isinstance(model, bytes) else {"model_path": str(model)}
    it = Interpreter(experimental_op_resolver_type=OpResolverType.BUILTIN_REF, **kwargs)
    it.allocate_tensors()
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    results = []
    for x in inputs:
        it.set_tensor(inp["index"], x.reshape(inp["shape"]))
        it.invoke()
        results.append(it.get_tensor(out["index"]).copy())
    return np.stack(results)


def random_inputs(shape: tuple[int, ...], n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(-128, 128, size=(n, *shape), dtype=np.int8)


@contextmanager
def qemu_serving(board, elf: Path) -> Iterator[int]:
    """QEMU running ``elf`` as ``board`` would, its UART on a free TCP port (yielded), as a
    flashed board waits on its serial port; killed afterwards."""
    from edge_sdk.device.launch import _free_port, qemu_command

    port = _free_port()
    qemu = subprocess.Popen(qemu_command(board, elf, port), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.3)
        yield port
    finally:
        qemu.kill()
        qemu.wait()
