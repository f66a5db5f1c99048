"""The TFLite options table: what the writer encodes, the reader decodes back unchanged, for
every operator in the table (before, two hand-written chains disagreed: the writer dropped
options the reader kept)."""

from __future__ import annotations

import pytest

from edge_sdk.frontend.tflite_options import OPTIONS, decode
from edge_sdk.frontend.tflite_writer import OpSpec, TensorSpec, build_model

# A value of each field that is not its default, so a dropped field shows.
SAMPLES = {
    "padding": "SAME", "stride": (2, 3), "dilation": (2, 1), "activation": "RELU6",
    "depth_multiplier": 2, "filter": (3, 2), "keep_num_dims": True, "weights_format": 1,
    "pot_scale_int16": False, "beta": 0.5, "output_type": "int32", "cell_clip": 1.5,
    "proj_clip": 2.5, "time_major": True, "num_splits": 3, "axis": 1, "values_count": 2,
    "num": 4, "block_size": 2, "batch_dims": 1, "keep_dims": True, "align_corners": True,
    "half_pixel_centers": True, "alpha": 0.25, "radius": 3, "bias": 1.5, "rank": 2,
    "asymmetric_quantize_inputs": True, "container": "box", "shared_name": "state",
    "init_subgraph_index": 1, "approximate": True, "adj_x": True, "adj_y": True,
    "begin_mask": 1, "end_mask": 2, "ellipsis_mask": 4, "new_axis_mask": 8,
    "shrink_axis_mask": 16, "offset": True, "out_type": "int64", "new_shape": (1, -1, 4),
}


def written_and_read(opcode: str, options: dict) -> dict:
    import tflite

    tensors = [TensorSpec("x", (1, 4), "float32"), TensorSpec("y", (1, 4), "float32")]
    raw = build_model(tensors, [OpSpec(opcode, [0], [1], options)], [0], [1])
    model = tflite.Model.GetRootAs(raw, 0)
    return decode(model.Subgraphs(0).Operators(0), opcode)


@pytest.mark.parametrize("opcode", sorted(OPTIONS))
def test_every_option_survives_a_write_and_a_read(opcode):
    options = {f.key: SAMPLES[f.key] for f in OPTIONS[opcode][1]}
    if opcode == "LOCAL_RESPONSE_NORMALIZATION":
        options["alpha"] = 0.125  # float32 values exactly
    assert written_and_read(opcode, options) == options


def test_missing_keys_take_the_schema_defaults():
    got = written_and_read("CONV_2D", {})
    assert got == {"padding": "VALID", "stride": (1, 1), "dilation": (1, 1),
                   "activation": "NONE"}
    assert written_and_read("ADD", {})["pot_scale_int16"] is True


def test_a_required_option_is_not_invented():
    with pytest.raises(KeyError, match="filter"):
        written_and_read("MAX_POOL_2D", {"padding": "SAME"})


def test_the_table_names_real_schema_fields():
    import tflite

    for opcode, (table, fields) in OPTIONS.items():
        cls = getattr(tflite, table)
        for f in fields:
            for name in f.names:
                assert hasattr(cls, name) or hasattr(cls, f"{name}AsNumpy"), (opcode, name)
