"""Calibration: run the float model on sample inputs and turn activations into ranges.

Statistics come from LiteRT running the float model with every intermediate tensor kept
(``experimental_preserve_all_tensors``), so they are the values the float model really
computes. Two passes: the first finds each tensor's min and max, the second fills a 2048-bin
histogram over that span, from which the three methods pick a range:

- ``minmax``: the observed extremes;
- ``percentile``: drop the (100 - p)% tails on each side (default p = 99.99);
- ``kl``: the clipping threshold whose 255-level quantization loses least information, by the
  KL divergence between the clipped and the quantized histogram of the non-zero ``|x|``
  (TensorRT's entropy calibration, as in MXNet and TVM's ``relay.quantize``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from edge_sdk.errors import UsageError

BINS = 2048
METHODS = ("minmax", "percentile", "kl")


@dataclass
class TensorStats:
    """What calibration saw of one tensor."""

    min: float = np.inf
    max: float = -np.inf
    hist: np.ndarray | None = None   # counts over [min, max]
    abs_hist: np.ndarray | None = None  # counts of |x| over [0, max(|min|, |max|)]

    def edges(self) -> np.ndarray:
        return np.linspace(self.min, self.max, BINS + 1)


def _interpreter(model: bytes):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    it = Interpreter(model_content=model, experimental_preserve_all_tensors=True,
                     experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    return it


def check_samples(samples: Iterable[Sequence[np.ndarray]], shapes: list[tuple[int, ...]]
                  ) -> list[list[np.ndarray]]:
    """Validate calibration data (one array per model input in each sample): right size,
    finite, non-empty. Returns float32 samples shaped as the inputs."""
    out = []
    several = len(shapes) > 1
    for n, sample in enumerate(samples):
        arrays = []
        for k, (x, shape) in enumerate(zip(sample, shapes, strict=True)):
            what = f"calibration sample {n}" + (f", input {k}," if several else "")
            x = np.asarray(x)
            if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
                raise UsageError(f"{what} has dtype {x.dtype}: give numbers")
            if x.size != int(np.prod(shape)):
                raise UsageError(f"{what} has {x.size} values ({list(x.shape)}); "
                                 f"the model input is {list(shape)}")
            if not np.all(np.isfinite(x)):
                raise UsageError(f"{what} contains NaN or infinity: clean the data")
            arrays.append(x.astype(np.float32).reshape(shape))
        out.append(arrays)
    if not out:
        raise UsageError("the calibration set is empty: give at least one sample "
                         "(a few hundred representative inputs is typical)")
    return out


def collect(model: bytes, samples: list[list[np.ndarray]], tensors: list[int],
            progress: bool = True) -> dict[int, TensorStats]:
    """Min/max and histograms of ``tensors`` over ``samples``."""
    from tqdm import tqdm

    it = _interpreter(model)
    inputs = [d["index"] for d in it.get_input_details()]
    stats = {t: TensorStats() for t in tensors}

    def run(sample):
        for index, x in zip(inputs, sample, strict=True):
            it.set_tensor(index, x)
        it.invoke()
        return {t: it.get_tensor(t) for t in tensors}

    for sample in tqdm(samples, desc="calibrating (1/2)", disable=not progress or None,
                       leave=False):
        for t, v in run(sample).items():
            s = stats[t]
            s.min, s.max = min(s.min, float(v.min())), max(s.max, float(v.max()))
    for sample in tqdm(samples, desc="calibrating (2/2)", disable=not progress or None,
                       leave=False):
        for t, v in run(sample).items():
            s = stats[t]
            top = max(abs(s.min), abs(s.max))
            if s.max - s.min <= BINS * np.spacing(top):  # one value, or too close to bin
                continue  # (a clip's saturated output): min-max is all there is to know
            # In float64: a float32 tensor's narrow range (0.9999999 to 1) has no 2048 float32
            # bin edges.
            v = np.asarray(v, np.float64)
            h, _ = np.histogram(v, bins=BINS, range=(s.min, s.max))
            # Exact zeros (ReLU outputs are mostly zeros) are exact in int8 whatever the range;
            # left in, their spike dominates the entropy search and drives it to clip hard.
            mags = np.abs(v[v != 0])
            a, _ = np.histogram(mags, bins=BINS, range=(0.0, top))
            s.hist = h if s.hist is None else s.hist + h
            s.abs_hist = a if s.abs_hist is None else s.abs_hist + a
    return stats


def _percentile_range(s: TensorStats, p: float) -> tuple[float, float]:
    cdf = np.cumsum(s.hist) / s.hist.sum()
    edges = s.edges()
    lo = edges[int(np.searchsorted(cdf, (100.0 - p) / 100.0, side="left"))]
    hi = edges[min(int(np.searchsorted(cdf, p / 100.0, side="left")) + 1, BINS)]
    return float(lo), float(hi)


def _smooth(dist: np.ndarray, eps: float = 1e-4) -> np.ndarray | None:
    """Move a little mass into empty bins so KL stays finite (MXNet's ``_smooth_distribution``)."""
    zeros = dist == 0
    n_zero, n_nonzero = int(zeros.sum()), int((~zeros).sum())
    if n_nonzero == 0:
        return None
    eps1 = eps * n_zero / n_nonzero
    if eps1 >= 1.0:
        return None
    return dist + eps * zeros - eps1 * ~zeros


def _kl_threshold(abs_hist: np.ndarray, top: float, levels: int) -> float:
    """Entropy calibration over the histogram of |x| (TensorRT; MXNet's implementation).

    For each candidate threshold (bin i): P is the histogram up to i with everything beyond
    folded into its last bin; Q quantizes the unclipped bins into ``levels`` levels and spreads
    each level evenly over the bins where P is non-zero. The threshold with the smallest
    KL(P || Q) wins. ``levels`` is how many int8 steps cover [0, threshold]: 255 for a
    non-negative tensor (post-ReLU), 128 for a signed one.
    """
    hist = abs_hist.astype(np.float64)
    best, best_i = np.inf, BINS
    for i in range(levels, BINS + 1, 8):
        p = hist[:i].copy()
        p[i - 1] += hist[i:].sum()
        nonzero = p > 0
        q = np.zeros(i)
        for idx in np.array_split(np.arange(i), levels):
            n = int(nonzero[idx].sum())
            if n:
                q[idx] = np.where(nonzero[idx], hist[idx].sum() / n, 0.0)
        ps, qs = _smooth(p), _smooth(q)  # on counts, as MXNet does
        if ps is None or qs is None:
            continue
        ps, qs = ps / ps.sum(), qs / qs.sum()
        kl = float(np.sum(ps * np.log(ps / qs)))
        if kl < best:
            best, best_i = kl, i
    return top * best_i / BINS


# Entropy calibration compares histograms bin by bin; below this many values per bin the
# comparison measures sampling noise, so such tensors use the percentile method instead.
KL_MIN_VALUES = 16 * BINS


def choose_range(s: TensorStats, method: str, percentile: float = 99.99
                 ) -> tuple[float, float, str]:
    """The (min, max) to quantize a tensor to, and the method that actually chose it."""
    if method not in METHODS:
        raise UsageError(f"unknown calibration method '{method}': use {', '.join(METHODS)}")
    if not 50.0 < percentile <= 100.0:
        raise UsageError(f"percentile {percentile} must be in (50, 100]")
    if s.hist is None or method == "minmax":
        return s.min, s.max, "minmax"
    if method == "kl" and s.hist.sum() >= KL_MIN_VALUES:
        top = max(abs(s.min), abs(s.max))
        t = _kl_threshold(s.abs_hist, top, levels=255 if s.min >= 0 else 128)
        return max(s.min, -t), min(s.max, t), "kl"
    lo, hi = _percentile_range(s, percentile)
    return lo, hi, "percentile"


def asymmetric_params(rmin: float, rmax: float) -> tuple[float, int]:
    """TFLite's int8 activation parameters: the range always holds 0, the zero point is nudged
    to an integer in [-128, 127] (``GetAsymmetricQuantizationParams``)."""
    rmin, rmax = min(float(rmin), 0.0), max(float(rmax), 0.0)
    if rmax == rmin:
        return 1.0, 0
    qmin, qmax = -128.0, 127.0
    scale = float(np.float32((rmax - rmin) / (qmax - qmin)))
    zp_from_min = qmin - rmin / scale
    zp_from_max = qmax - rmax / scale
    use_min = abs(qmin) + abs(rmin / scale) < abs(qmax) + abs(rmax / scale)
    zp = zp_from_min if use_min else zp_from_max
    nudged = int(qmin) if zp < qmin else int(qmax) if zp > qmax else int(np.round(zp))
    return scale, nudged
