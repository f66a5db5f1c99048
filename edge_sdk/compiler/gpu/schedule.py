"""TVM's default GPU schedules (``dlight``) for each step, and which one each step got.

The rules are tried in the order TVM's own Relax GPU pipeline uses; the first that accepts a
function schedules it. ``Fallback`` always accepts: it fuses the spatial loops and binds them to
``blockIdx.x``/``threadIdx.x`` with the target's ``max_threads_per_block``.

Softmax gets one thread per row (:func:`one_thread_per_row`): its float sum must run in TFLite's
order to stay within rounding of LiteRT, and its rows are short (10-12 scores here).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import tvm
from tvm import s_tir, tirx
from tvm.s_tir import dlight as dl
from tvm.s_tir.dlight.analysis import normalize_prim_func
from tvm.s_tir.dlight.base import max_threads_per_block, try_inline
from tvm.target import Target

from edge_sdk.compiler.program import Step
from edge_sdk.errors import UnsupportedOpError


def default_rules(target: Target, matmul: bool = True) -> list:
    """TVM's Relax GPU rule order: ``Matmul`` (tiled, shared memory), the GEMV rules (fully
    connected at batch 1), the reductions (pooling, means), ``Fallback``; ``matmul=False``
    leaves ``Matmul`` out.

    Matmul is bit-exact on our convolutions (each layer of KWS, VWW and ResNet-8 against
    LiteRT on PoCL and on an NVIDIA GPU) and, since :func:`unfinished` checks every schedule,
    on TVM's legalized ONNX ones too. It had been wrong there (PoCL: all 32 outputs of ONNX's
    test_Conv2d_strided, NaN in test_Conv2d_padding) because the padding stage wrote a buffer
    given as an argument: Matmul could not inline it and left it unscheduled, so it was never
    run and the convolution read stale memory. GPU builds now keep that buffer inside the
    kernel (:func:`..relax_lower.lower_relax`), where Matmul inlines it."""
    rules = [dl.gpu.GEMV(), dl.gpu.LowBatchGEMV(), dl.gpu.Reduction(), dl.gpu.GeneralReduction(),
             dl.gpu.Fallback()]
    return [dl.gpu.Matmul(), *rules] if matmul else rules


MATMUL = True  # False: dlight's Matmul offered to no step (the benchmark's "before" schedules)
SERIAL_SUM_OPS = ("SOFTMAX",)
# Convolutions whose sums are long get :func:`split_reduction` instead of Matmul.
SPLIT_REDUCTION_OPS = ("CONV_2D",)
SPLIT_MIN_TAPS = 64
# Convolutions with shorter sums (a first layer: 3x3x3, KWS's 10x4x1): one thread per output,
# as depthwise layers, instead of Matmul's tiles (4 blocks for KWS's first layer).
SHORT_SUM_ONE_THREAD = True
CONV_THREADS = 256  # threads per block of split_reduction
LANE_MIN_TAPS = 4  # split_reduction leaves each lane at least this many taps
PREFETCH = True
UNROLL = 64  # inner loops up to this many steps are unrolled (0: none)
ROW_UNROLL = False  # one_thread_per_row's loops too (opt-in: not yet measured on a GPU)
# Depthwise layers sum 9-25 taps per output: a reduction rule spreads those few taps over a
# thread block and reduces across it, leaving most threads idle. One thread per output with
# the taps in a loop keeps every thread busy, and neighbouring threads read neighbouring
# channels (see :func:`one_thread_per_output`).
ONE_THREAD_PER_OUTPUT = ("DEPTHWISE_CONV_2D",)
DEPTHWISE_THREADS: int | None = 128  # threads per block (at most the target's most)
# A convolution given one thread per output reads its weights [out channel][taps]: the threads
# of a warp, on neighbouring output channels, read bytes `taps` apart, one load instruction
# touching up to 32 memory sectors (KWS's first layer: 40 apart). Weights up to this size are
# first copied into shared memory by the whole thread block, in order (0: never; opt-in until a
# GPU run shows it faster: ``--schedule SHARED_WEIGHTS_BYTES=16384``).
SHARED_WEIGHTS_BYTES = 0


def _sum_and_epilogue(func: tirx.PrimFunc) -> tuple[s_tir.Schedule, list, list]:
    """The function's blocks after dlight's normalisation with the padding-like producers
    inlined: (the schedule, the blocks that reduce, the elementwise ones); none where it cannot
    be normalised."""
    sch = s_tir.Schedule(func)
    infos = normalize_prim_func(sch)
    if infos is None:
        return sch, [], []
    infos = try_inline(sch, infos)
    return (sch, [b for b in infos if "R" in b.dom_kind()],
            [b for b in infos if "R" not in b.dom_kind()])


def one_thread_per_output(func: tirx.PrimFunc, target: Target, threads: int | None = None,
                          stage_weights: bool = False) -> s_tir.Schedule | None:
    """Each thread computes one output element: the padding read inlined, the int32 sum over
    the taps in a register (its block computed at the thread's loop), then the epilogue
    (requantization). dlight's ``Fallback`` would give the sum its own kernel and a global
    buffer between the two; here the layer stays one launch with no scratch."""
    sch, reductions, spatial = _sum_and_epilogue(func)
    if len(reductions) != 1 or len(spatial) != 1:
        return None
    acc, out = reductions[0].block_rv, spatial[0].block_rv
    most = max_threads_per_block(target)
    bx, tx = sch.split(sch.fuse(*sch.get_loops(out)), factors=[None, min(threads or most, most)])
    sch.bind(bx, "blockIdx.x")
    sch.bind(tx, "threadIdx.x")
    if UNROLL:
        sch.annotate(tx, ann_key="pragma_auto_unroll_max_step", ann_val=UNROLL)
        sch.annotate(tx, ann_key="pragma_unroll_explicit", ann_val=1)
    if PREFETCH:
        _prefetch(sch, out, acc, tx)
    sch.compute_at(acc, tx)
    sch.set_scope(acc, 0, "local")  # its init runs on the first tap (TIR's own lowering)
    if stage_weights and not _weights_in_shared(sch, acc, bx, min(threads or most, most)):
        return None  # nothing staged: the plain schedule, under its own name, is next
    return sch


def _weights_in_shared(sch: s_tir.Schedule, acc, bx, threads: int) -> bool:
    """Copy the slice of ``weights`` that a thread block reads into shared memory, every thread
    taking consecutive elements (one pass of coalesced loads), where the whole tensor is at most
    SHARED_WEIGHTS_BYTES; the taps then read shared memory. TVM inserts the barrier. False
    where nothing was staged (no weights, or too many)."""
    buffers = [_buffer(r) for r in sch.get(acc).reads]
    names = [b.name for b in buffers]
    if "weights" not in names:
        return False
    weights = buffers[names.index("weights")]
    size = int(np.prod([int(d) for d in weights.shape])) * np.dtype(str(weights.dtype)).itemsize
    if not 0 < size <= SHARED_WEIGHTS_BYTES:
        return False
    cached = sch.cache_read(acc, names.index("weights"), "shared")
    sch.compute_at(cached, bx, preserve_unit_loops=True)
    loops = sch.get_loops(cached)[1:]
    _, tx = sch.split(sch.fuse(*loops), factors=[None, threads])
    sch.bind(tx, "threadIdx.x")
    return True


def one_thread_per_row(func: tirx.PrimFunc, target: Target) -> s_tir.Schedule | None:
    """Every stage of a row-wise function (softmax: the row's maximum, its sum, the reciprocal's
    Newton steps, the outputs) in one thread per row, the stages between in registers. The sums
    run in the row's own order (TFLite's), so the float softmax stays within rounding of
    LiteRT and the int8 one bit-exact; the layer is one launch, where one kernel per stage made
    it 3 (float) or 15 (int8) launches with row vectors in device memory between them."""
    sch = s_tir.Schedule(func)
    blocks = list(sch.get_child_blocks(sch.get_sblock("root")))
    *stages, out = blocks
    loops = sch.get_loops(out)
    if len(loops) != 2:
        return None
    rows = int(sch.get(loops[0]).extent)
    bx, tx = sch.split(loops[0], factors=[None, min(rows, max_threads_per_block(target))])
    sch.bind(bx, "blockIdx.x")
    sch.bind(tx, "threadIdx.x")
    for block in reversed(stages):
        sch.compute_at(block, tx)
        sch.set_scope(block, 0, "local")
    if UNROLL and ROW_UNROLL:  # a row's loads issued together, not one round trip per score
        sch.annotate(tx, ann_key="pragma_auto_unroll_max_step", ann_val=UNROLL)
        sch.annotate(tx, ann_key="pragma_unroll_explicit", ann_val=1)
    return sch


def split_reduction(func: tirx.PrimFunc, target: Target,
                    threads: int = 256) -> s_tir.Schedule | None:
    """Each output's sum split over a few threads (:func:`reduction_lanes`), the lanes' partial
    sums in registers and joined by TVM's cross-thread reduction (warp shuffles on CUDA),
    ``threads // lanes`` outputs per thread block, the epilogue (requantization) in the same
    launch.

    For the late layers of a batch-1 network (few outputs, long sums: ResNet-8's 8x8x64
    outputs of 576 taps) a tiled matrix product gives 1-2 thread blocks on a GPU of 100+
    multiprocessors; this gives every output a slice of a warp. int32 sums are exact in any
    order; a float sum's order changes, within rounding."""
    sch, reductions, spatial = _sum_and_epilogue(func)
    if len(reductions) != 1 or len(spatial) > 1:
        return None
    info = reductions[0]
    acc, kinds = info.block_rv, info.dom_kind()
    if spatial and sch.get(spatial[0].block_rv) not in [sch.get(b) for b in
                                                         sch.get_consumers(acc)]:
        return None  # a producer that could not be inlined (a padding TVM keeps apart)
    loops = sch.get_loops(acc)
    if len(loops) != len(kinds) or kinds != "".join(sorted(kinds, key="SR".index)):
        return None  # only spatial loops outside the reduction ones
    sch.fuse(*[lp for lp, k in zip(loops, kinds, strict=True) if k == "S"])
    r = sch.fuse(*[lp for lp, k in zip(loops, kinds, strict=True) if k == "R"])
    lanes = reduction_lanes(int(sch.get(r).extent))
    _, tx = sch.split(r, factors=[None, lanes])
    rf = sch.rfactor(tx, 0)
    s_rf, r_rf, tx_rf = sch.get_loops(rf)
    bx, ty = sch.split(s_rf, factors=[None, max(1, threads // lanes)])
    sch.reorder(bx, ty, tx_rf, r_rf)
    sch.bind(bx, "blockIdx.x")
    sch.bind(ty, "threadIdx.y")
    sch.bind(tx_rf, "threadIdx.x")
    if UNROLL:  # the taps' loads issued together, not one round trip each
        sch.annotate(tx_rf, ann_key="pragma_auto_unroll_max_step", ann_val=UNROLL)
        sch.annotate(tx_rf, ann_key="pragma_unroll_explicit", ann_val=1)
    sch.set_scope(rf, 0, "local")
    sch.decompose_reduction(rf, r_rf)
    sch.reverse_compute_at(acc, ty, preserve_unit_loops=True)
    _, _, lane, *units = sch.get_loops(acc)
    if units:  # the lane loop must be the innermost for TVM's cross-thread reduction
        sch.reorder(sch.fuse(*units), lane)
    sch.bind(lane, "threadIdx.x")
    if spatial:  # an epilogue: the joined sum stays in a register for it
        epilogue = spatial[0].block_rv
        sch.set_scope(acc, 0, "local")
        sch.reverse_compute_at(epilogue, ty, preserve_unit_loops=True)
        if PREFETCH:
            _prefetch(sch, epilogue, acc, ty)
    return sch


def _buffer(region):
    """The buffer of a block's read or write region."""
    return region.source


def _prefetch(sch: s_tir.Schedule, block, skip, loop) -> None:
    """Load the epilogue's per-output constants (bias, multiplier, shift) into registers at
    ``loop``, ahead of the sum, so their round trip to memory overlaps the taps' loads instead
    of following the reduction."""
    skip_buffers = {_buffer(sch.get(skip).writes[0]).name}
    reads = [_buffer(r).name for r in sch.get(block).reads]
    for name in reads:
        if name in skip_buffers:
            continue
        index = [_buffer(r).name for r in sch.get(block).reads].index(name)
        cached = sch.cache_read(block, index, "local")
        sch.compute_at(cached, loop, preserve_unit_loops=True, index=-2)


def reduction_lanes(taps: int) -> int:
    """Threads per output in :func:`split_reduction`: the largest power of two up to a warp
    (32) that leaves each lane at least LANE_MIN_TAPS taps, so the shuffles that join the
    lanes stay a small part of the work."""
    lanes = 1
    while lanes < 32 and taps >= 2 * LANE_MIN_TAPS * lanes:
        lanes *= 2
    return lanes


def _taps(func: tirx.PrimFunc) -> int:
    """The length of the function's one sum (0 where it has none or several)."""
    sch, reductions, _ = _sum_and_epilogue(func)
    if len(reductions) != 1:
        return 0
    info = reductions[0]
    return int(np.prod([int(sch.get(lp).extent) for lp, k in
                        zip(sch.get_loops(info.block_rv), info.dom_kind(), strict=False)
                        if k == "R"]))


def _ours(step: Step, target: Target) -> list[tuple[str, Callable]]:
    """Our own schedules that suit the step, best first: (the name the report gives, a function
    that makes the schedule or None)."""
    taps = _taps(step.func) if step.opcode in SPLIT_REDUCTION_OPS else 0
    candidates: list[tuple[str, Callable]] = []
    if taps >= SPLIT_MIN_TAPS:
        candidates.append(("edge-sdk: each sum split over a warp's lanes",
                           lambda f: split_reduction(f, target, CONV_THREADS)))
    short = SHORT_SUM_ONE_THREAD and 0 < taps < SPLIT_MIN_TAPS
    if step.opcode in ONE_THREAD_PER_OUTPUT or short:
        if short and SHARED_WEIGHTS_BYTES:
            candidates.append(("edge-sdk: one thread per output, weights in shared memory",
                               lambda f: one_thread_per_output(f, target, DEPTHWISE_THREADS,
                                                               stage_weights=True)))
        candidates.append(("edge-sdk: one thread per output, taps in a loop",
                           lambda f: one_thread_per_output(f, target, DEPTHWISE_THREADS)))
    if step.opcode in SERIAL_SUM_OPS:
        candidates.append(("edge-sdk: one thread per row, every stage in registers",
                           lambda f: one_thread_per_row(f, target)))
    return candidates


@dataclass(frozen=True)
class Scheduled:
    """A step's kernel as scheduled: the function, the name of the schedule (for the report),
    and the function through TVM's TIR pipeline (named after the step), which checked it and
    which :func:`..build.build_device_code` reuses instead of lowering it again."""

    func: tirx.PrimFunc
    rule: str
    lowered: tvm.IRModule


def schedule_step(step: Step, target: Target) -> Scheduled:
    """The first of our schedules (:func:`_ours`), then of TVM's rules, that accepts the
    function and leaves it one complete kernel (:func:`unfinished`) that TVM can lower."""
    rules: list[tuple[str, Callable]] = [
        (f"dlight.gpu.{type(r).__name__}", lambda f, r=r: r.apply(f, target, False))
        for r in ([dl.gpu.Fallback()] if step.opcode in SERIAL_SUM_OPS
                  else default_rules(target, matmul=MATMUL))]
    left: list[str] = []
    with target:
        for name, make in [*_ours(step, target), *rules]:
            try:
                sch = make(step.func)
            except Exception:  # a rule that matched the pattern but could not finish
                sch = None
            if sch is None:
                continue
            sch = sch[0] if isinstance(sch, list) else sch
            func = sch.mod["main"].with_attr("tirx.is_scheduled", True)
            why = unfinished(func)
            lowered = None
            if why is None:
                lowered, why = _lowered(func, step.func_name, target)
            if lowered is None:
                left.append(f"{name}: {why}")
                continue
            if name.startswith("dlight") and step.opcode in SERIAL_SUM_OPS:
                name += " (serial row sum, for bit-exactness)"
            return Scheduled(func, name, lowered)
    raise UnsupportedOpError(
        f"layer {step.op_index} ({step.opcode}): no GPU schedule applies to it"
        f"{' (' + '; '.join(left) + ')' if left else ''}; report this model, or compile for a "
        "CPU board")


def _lowered(func: tirx.PrimFunc, name: str,
             target: Target) -> tuple[tvm.IRModule | None, str | None]:
    """The scheduled function through TVM's TIR pipeline as ``name``, or None and why TVM
    refuses it (a rule can accept a function and leave a schedule the pipeline cannot lower:
    with a grouped 1-D convolution's padding inside, GeneralReduction left a cross-thread sum
    whose loops are not innermost)."""
    from edge_sdk.compiler.gpu.build import lower_tir

    try:
        return lower_tir(tvm.IRModule({name: func.with_attr("global_symbol", name)}),
                         target), None
    except Exception as err:  # TVM's checks raise their own error types
        return None, f"TVM cannot lower it ({str(err).strip().splitlines()[0][:120]})"


def unfinished(func: tirx.PrimFunc) -> str | None:
    """Why a scheduled function is not one complete GPU kernel, or None where it is.

    A rule may schedule the stage it recognises and leave another as it was: dlight's Matmul,
    given an ONNX convolution whose padding stage writes a buffer it cannot inline, left that
    stage outside any thread binding. TVM's pipeline puts such a loop in the host half, where
    nothing runs it here (the runner replays only the launches), so the convolution read a
    buffer never written. A buffer left in global memory would need a workspace the runner
    does not allocate."""
    found: list[str] = []

    def visit(stmt, bound: bool) -> None:
        if isinstance(stmt, s_tir.SBlockRealize):
            block = stmt.block
            if block.name_hint != "root" and not bound:
                found.append(f"stage '{block.name_hint}' is bound to no GPU thread")
            found.extend(f"buffer '{b.name}' is left in global memory"
                         for b in block.alloc_buffers if b.scope() == "global")
            visit(block.body, bound)
            if block.init is not None:
                visit(block.init, bound)
            return
        if isinstance(stmt, tirx.For):
            binds = (stmt.kind == tirx.ForKind.THREAD_BINDING and stmt.thread_binding is not None
                     and str(stmt.thread_binding.thread_tag).startswith("blockIdx"))
            visit(stmt.body, bound or binds)
            return
        if isinstance(stmt, tirx.SeqStmt):
            for s in stmt.seq:
                visit(s, bound)
            return
        if isinstance(stmt, tirx.IfThenElse):
            visit(stmt.then_case, bound)
            if stmt.else_case is not None:
                visit(stmt.else_case, bound)
            return
        body = getattr(stmt, "body", None)
        if body is not None:
            visit(body, bound)

    visit(func.body, False)
    return found[0] if found else None
