"""TFLM's int16x8 layer tests (SEANet, ../shared/models/real/tflm_int16_layers): each model run on
the host against the golden outputs TFLM produced, bit for bit.

Each ``<op>N.tflite`` comes with ``<op>N_input<k>_<dtype>.csv`` (one per model input, flattened)
and ``<op>N_golden_int16.csv``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import edge_sdk
from tests.conftest import ROOT

LAYERS = ROOT.parent / "shared" / "models" / "real" / "tflm_int16_layers"
MODELS = sorted(LAYERS.glob("*/*.tflite")) if LAYERS.is_dir() else []


def read_csv(path: Path, dtype: str) -> np.ndarray:
    return np.array([int(v) for v in path.read_text().replace("\n", ",").split(",") if v.strip()],
                    dtype=dtype)


def case(model: Path) -> tuple[list[np.ndarray], np.ndarray]:
    stem = model.stem
    inputs = []
    for k in range(8):
        found = sorted(model.parent.glob(f"{stem}_input{k}_*.csv"))
        if not found:
            break
        inputs.append(read_csv(found[0], found[0].stem.rsplit("_", 1)[1]))
    golden = read_csv(model.parent / f"{stem}_golden_int16.csv", "int16")
    return inputs, golden


@pytest.mark.skipif(not MODELS, reason="../shared/models/real is not beside the checkout")
@pytest.mark.parametrize("model", MODELS, ids=lambda p: p.stem)
def test_int16_layer_matches_tflm_golden(model):
    inputs, golden = case(model)
    graph = edge_sdk.load(model)
    result = edge_sdk.run(graph, board="host", inputs=inputs)
    np.testing.assert_array_equal(result.output_list[0].reshape(-1), golden)


@pytest.mark.slow
@pytest.mark.skipif(not MODELS, reason="../shared/models/real is not beside the checkout")
@pytest.mark.parametrize("model", MODELS, ids=lambda p: p.stem)
def test_int16_layer_on_cortex_m4_matches_tflm_golden(model):
    """The same layers built into firmware for the Cortex-M4 board (QEMU mps2-an386)."""
    inputs, golden = case(model)
    result = edge_sdk.run(edge_sdk.load(model), board="mps2-an386", inputs=inputs)
    np.testing.assert_array_equal(result.output_list[0].reshape(-1), golden)
