"""Arena planning: no two simultaneously live buffers overlap, and we beat TFLM's arena."""

from __future__ import annotations

import pytest

import edge_sdk
from edge_sdk.compiler.planner import ALIGNMENT
from tests.conftest import MLPERF_INT8, shared_model
from tests.test_models import TFLM_ARENA
from tests.test_ops import CASES


def check_plan(compiled) -> None:
    bufs = [b for b in compiled.memory.buffers if b.location == "arena"]
    for b in bufs:
        assert b.offset % ALIGNMENT == 0
        assert b.offset + b.nbytes <= compiled.memory.arena_bytes
    for i, a in enumerate(bufs):
        for b in bufs[i + 1:]:
            live_together = a.first <= b.last and b.first <= a.last
            overlap = a.offset < b.offset + b.nbytes and b.offset < a.offset + a.nbytes
            assert not (live_together and overlap), (a, b)


@pytest.mark.parametrize("name", MLPERF_INT8)
def test_plan_is_sound_and_smaller_than_tflm(name):
    compiled = edge_sdk.compile(shared_model(name))
    check_plan(compiled)
    assert compiled.memory.arena_bytes < TFLM_ARENA[name]
    # Every intermediate lives in the arena or aliases a planned buffer.
    graph = compiled.program.graph
    for step in compiled.program.steps:
        for t in (*step.inputs, *step.outputs):
            assert compiled.memory.buffer_of(t).nbytes == graph.tensor(
                compiled.memory.buffer_of(t).root).nbytes


def test_reshape_into_output_needs_no_arena():
    from edge_sdk.frontend.tflite import parse

    compiled = edge_sdk.compile(parse(CASES["reshape_aliases"](), name="r"))
    check_plan(compiled)
    # input -> reshape (alias of input) -> FC -> reshape (alias of output): nothing in the arena.
    assert compiled.memory.arena_bytes == 0
    assert {b.location for b in compiled.memory.buffers} == {"input", "output"}
