"""Shared machinery for the streaming beat detectors (private).

A detector is fed chunks ``(values, t0_s, rate_hz)``. Consecutive chunks whose
timestamps agree with the sample count form one *segment*; within a segment all
processing is indexed by sample number, so the output does not depend on how
the stream was cut into chunks. A timestamp that disagrees with the sample count
by more than ``max_clock_error_s`` (lost samples, a restarted device, a new
rate) ends the segment and starts a new one.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import signal

from vrexposure.physio.records import Beat

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Detection:
    """A beat inside a segment, by (fractional) sample index."""

    index: float
    shape_corr: float
    prominence: float
    noise_ratio: float
    searchback: bool = False
    # Fractional sample index of a beat-shaped candidate rejected since the previous
    # beat, well away from both beats (a small beat may have been missed there).
    missed_like_index: float | None = None


class SampleBuffer:
    """Append-only float buffer addressed by absolute sample index, trimmed from the left."""

    def __init__(self, capacity: int = 4096) -> None:
        self._data: FloatArray = np.zeros(max(16, capacity))
        self._start = 0  # absolute index of _data[0]
        self._len = 0

    @property
    def end(self) -> int:
        """Absolute index one past the last stored sample."""
        return self._start + self._len

    @property
    def start(self) -> int:
        """Absolute index of the oldest stored sample."""
        return self._start

    def append(self, values: FloatArray) -> None:
        n = values.size
        if self._len + n > self._data.size:
            new = np.zeros(max(2 * self._data.size, self._len + n))
            new[: self._len] = self._data[: self._len]
            self._data = new
        self._data[self._len : self._len + n] = values
        self._len += n

    def view(self, lo: int, hi: int) -> FloatArray:
        """Samples ``[lo, hi)`` by absolute index (clipped to what is stored)."""
        lo = max(lo, self._start)
        hi = min(hi, self.end)
        if hi <= lo:
            return self._data[:0]
        return self._data[lo - self._start : hi - self._start]

    def trim_before(self, index: int) -> None:
        """Forget samples before absolute ``index``."""
        drop = min(max(0, index - self._start), self._len)
        if drop == 0:
            return
        self._data[: self._len - drop] = self._data[drop : self._len]
        self._len -= drop
        self._start += drop


class SegmentCore(ABC):
    """Detection on one continuous segment, indexed by sample number."""

    @abstractmethod
    def process(self, x: FloatArray) -> list[Detection]:
        """Consume the next samples; return beats that became final."""

    @abstractmethod
    def finish(self) -> list[Detection]:
        """The segment ended: decide on everything still pending."""

    @property
    @abstractmethod
    def final_until(self) -> float:
        """Sample index before which no further detection can be emitted."""


class StreamingDetector(ABC):
    """Chunked, timestamped input -> :class:`Beat` records (base for ECG and PPG)."""

    def __init__(self, max_clock_error_s: float = 0.25, batch_s: float = 0.0) -> None:
        if not max_clock_error_s > 0:
            raise ValueError("max_clock_error_s must be > 0")
        if not batch_s >= 0:
            raise ValueError("batch_s must be >= 0")
        self._max_clock_error_s = float(max_clock_error_s)
        # Chunks of one segment are queued until this much signal has come, then
        # detected in one go: the result does not depend on chunking, and the fixed cost
        # per call (filter, envelope, peak search) is paid per batch, not per serial read.
        self._batch_s = float(batch_s)
        self._queue: list[FloatArray] = []
        self._queued_n = 0
        self._core: SegmentCore | None = None
        self._rate_hz = 0.0
        self._anchor_t0_s = 0.0  # session time of sample 0 of the segment
        self._n = 0  # samples consumed in the segment
        self._last_valid = 0.0
        self._prev_index: float | None = None

    @abstractmethod
    def _new_core(self, rate_hz: float) -> SegmentCore:
        """A fresh detection core for a segment sampled at ``rate_hz``."""

    # -- public API ----------------------------------------------------------------

    def feed(self, values: npt.ArrayLike, t0_s: float, rate_hz: float) -> list[Beat]:
        """Consume one chunk of samples.

        Args:
            values: 1-D samples (any unit; NaN/inf samples are replaced by the last
                valid value — callers should also mark such spans as bad input).
            t0_s: Session-clock time of ``values[0]``, seconds.
            rate_hz: Sampling rate of the chunk, Hz.

        Returns:
            Beats that became final with this chunk, oldest first.
        """
        x = np.asarray(values, dtype=np.float64).reshape(-1)
        if not (math.isfinite(rate_hz) and rate_hz > 0):
            raise ValueError(f"rate_hz must be finite and > 0, got {rate_hz!r}")
        if not math.isfinite(t0_s):
            raise ValueError(f"t0_s must be finite, got {t0_s!r}")
        if x.size == 0:
            return []
        out: list[Beat] = []
        if self._core is None or not self._continues(t0_s, rate_hz):
            out += self.flush()
            self._start_segment(t0_s, rate_hz, x)
        self._queue.append(x)
        self._queued_n += x.size
        if self._queued_n >= self._batch_s * self._rate_hz:
            out += self._process_queue()
        return out

    def _process_queue(self) -> list[Beat]:
        if not self._queue:
            return []
        x = self._queue[0] if len(self._queue) == 1 else np.concatenate(self._queue)
        self._queue.clear()
        self._queued_n = 0
        x = self._hold_invalid(x)
        assert self._core is not None
        detections = self._core.process(x)
        self._n += x.size
        return self._to_beats(detections)

    def starts_new_segment(self, t0_s: float, rate_hz: float) -> bool:
        """Whether a chunk stamped ``t0_s`` at ``rate_hz`` would start a new segment."""
        return self._core is None or not self._continues(t0_s, rate_hz)

    def flush(self) -> list[Beat]:
        """End the current segment (end of stream): emit what is still pending.

        The next ``feed`` starts a new segment.
        """
        if self._core is None:
            return []
        beats = self._process_queue()
        beats += self._to_beats(self._core.finish())
        self._core = None
        self._prev_index = None
        return beats

    def reset(self) -> None:
        """Drop all state (e.g. after a reported sequence gap or lead-off)."""
        self._core = None
        self._prev_index = None
        self._n = 0
        self._queue.clear()
        self._queued_n = 0

    @property
    def final_until_s(self) -> float | None:
        """Session time before which no further beat will be emitted (``None`` before input)."""
        if self._core is None:
            return None
        return self._time_of(self._core.final_until)

    @property
    def rate_hz(self) -> float:
        """Sampling rate of the current segment (0 before any input)."""
        return self._rate_hz

    # -- internals -----------------------------------------------------------------

    def _continues(self, t0_s: float, rate_hz: float) -> bool:
        if abs(rate_hz - self._rate_hz) > 1e-9 * max(1.0, rate_hz):
            return False
        expected = self._time_of(self._n + self._queued_n)
        return abs(t0_s - expected) <= self._max_clock_error_s

    def _start_segment(self, t0_s: float, rate_hz: float, x: FloatArray) -> None:
        self._rate_hz = float(rate_hz)
        self._anchor_t0_s = float(t0_s)
        self._n = 0
        self._prev_index = None
        finite = x[np.isfinite(x)]
        self._last_valid = float(finite[0]) if finite.size else 0.0
        self._core = self._new_core(self._rate_hz)

    def _hold_invalid(self, x: FloatArray) -> FloatArray:
        bad = ~np.isfinite(x)
        if not bad.any():
            self._last_valid = float(x[-1])
            return x
        x = x.copy()
        good_idx = np.where(~bad, np.arange(x.size), -1)
        np.maximum.accumulate(good_idx, out=good_idx)
        x[bad & (good_idx < 0)] = self._last_valid
        fill = bad & (good_idx >= 0)
        x[fill] = x[good_idx[fill]]
        self._last_valid = float(x[-1])
        return x

    def _time_of(self, index: float) -> float:
        return self._anchor_t0_s + index / self._rate_hz

    def _to_beats(self, detections: list[Detection]) -> list[Beat]:
        beats: list[Beat] = []
        for d in detections:
            rr_ms = None
            if self._prev_index is not None:
                rr_ms = (d.index - self._prev_index) * 1000.0 / self._rate_hz
            self._prev_index = d.index
            beats.append(
                Beat(
                    t_s=self._time_of(d.index),
                    rr_ms=rr_ms,
                    shape_corr=d.shape_corr,
                    prominence=d.prominence,
                    noise_ratio=d.noise_ratio,
                    searchback=d.searchback,
                    missed_like_s=(
                        None if d.missed_like_index is None else self._time_of(d.missed_like_index)
                    ),
                )
            )
        return beats


def local_maxima(buf: SampleBuffer, a: int, b: int, h: int) -> list[tuple[int, float]]:
    """Indices ``i`` in ``[a, b)`` where ``buf`` peaks within ``±h`` samples, with values.

    A peak is strictly larger than the ``h`` samples before it and at least as large
    as the ``h`` after it (so a plateau yields one peak). Samples missing at either
    edge of the buffer count as ``-inf``. Positive peaks only.
    """
    lo = a - h
    seg = buf.view(lo, b + h)
    first = max(lo, buf.start)
    pad_left = first - lo
    pad_right = (b + h) - (first + seg.size)
    if pad_left > 0 or pad_right > 0:  # only at the start and end of a segment
        ext = np.concatenate([np.full(pad_left, -np.inf), seg, np.full(max(0, pad_right), -np.inf)])
    else:
        ext = seg
    core = ext[h : h + (b - a)]
    if core.size == 0:
        return []
    # Necessary condition first (larger than the sample before, not smaller than the one
    # after): it leaves a few candidates per chunk, checked one by one, instead of a
    # sliding maximum over the whole chunk (whose fixed cost dominated streaming).
    n = core.size
    cand = np.flatnonzero(
        (core > ext[h - 1 : h - 1 + n]) & (core >= ext[h + 1 : h + 1 + n]) & (core > 0)
    )
    out: list[tuple[int, float]] = []
    for k in cand.tolist():
        v = ext[h + k]
        # ext[k : k + 2h + 1] is core[k] with h samples either side: one maximum rejects
        # most candidates; the survivors must also beat the left side strictly.
        if v >= ext[k : k + 2 * h + 1].max() and v > ext[k : k + h].max():
            out.append((a + k, float(v)))
    return out


def centre(template: FloatArray) -> tuple[FloatArray, float]:
    """The template minus its mean, and that vector's squared norm (for :func:`best_lag_corr`)."""
    t = template - template.mean()
    return t, float(t @ t)


def best_lag_corr(
    template: FloatArray, x: FloatArray, centred: tuple[FloatArray, float] | None = None
) -> tuple[float, int]:
    """Highest Pearson correlation of ``template`` with any window of ``x``.

    ``centred`` is ``centre(template)`` when the caller keeps it (the template
    changes once per beat but is matched against every candidate).

    Returns (correlation, offset of the best window in ``x``); ``(nan, 0)`` if
    ``x`` is shorter than the template.
    """
    m = template.size
    if x.size < m or m < 3:
        return float("nan"), 0
    t, tt = centred if centred is not None else centre(template)
    num = np.correlate(x, t, mode="valid")
    # Window sums by running sums (one C pass each) instead of per-window reductions.
    c1 = np.cumsum(x)
    c2 = np.cumsum(x * x)
    s1 = c1[m - 1 :].copy()
    s1[1:] -= c1[:-m]
    s2 = c2[m - 1 :].copy()
    s2[1:] -= c2[:-m]
    var = s2 - s1 * s1 / m
    np.maximum(var, 0.0, out=var)
    den = np.sqrt(var * tt)
    tiny = 1e-12 * max(1.0, float(s2.max()))
    flat = den <= tiny
    if flat.any():  # a flat window: correlation 0, never a division by ~0
        den[flat] = 1.0
        num = np.where(flat, 0.0, num)
    r = num / den
    k = int(r.argmax())
    return float(r[k]), k


try:  # scipy's C kernel behind signal.sosfilt, without its ~20 µs of argument checks
    from scipy.signal._sosfilt import _sosfilt as _sosfilt_kernel
except ImportError:  # pragma: no cover - a scipy that moved it: the public function
    _sosfilt_kernel = None


class SosFilter:
    """Causal second-order-sections filter fed chunk by chunk (state kept between chunks).

    The same arithmetic as ``scipy.signal.sosfilt(sos, x, zi=zi)``, bit for bit; it
    runs four times a second per stream, so the public function's fixed cost mattered.
    """

    def __init__(self, sos: FloatArray) -> None:
        self.sos = np.ascontiguousarray(sos, dtype=np.float64)
        self.zi: FloatArray | None = None  # shape (1, n_sections, 2)

    def __call__(self, x: FloatArray) -> FloatArray:
        if self.zi is None:  # start in the steady state of the first sample
            zi0 = signal.sosfilt_zi(self.sos) * x[0]
            self.zi = np.ascontiguousarray(zi0.reshape(1, -1, 2), dtype=np.float64)
        if _sosfilt_kernel is None:
            y, zi = signal.sosfilt(self.sos, x, zi=self.zi[0])
            self.zi = np.ascontiguousarray(zi.reshape(1, -1, 2))
            return np.asarray(y, dtype=np.float64)
        y2 = np.array(x, dtype=np.float64, order="C").reshape(1, -1)  # filtered in place
        _sosfilt_kernel(self.sos, y2, self.zi)
        return y2[0]


def median(values: Iterable[float]) -> float:
    """Median of a few finite floats, equal to ``np.median`` bit for bit.

    ``np.median`` costs ~20 µs of call overhead; it is called per beat and per
    window, so that overhead was a large share of the streaming cost.
    """
    v = sorted(values)
    n = len(v)
    if n == 0:
        return float("nan")
    k = n // 2
    if n % 2:
        return float(v[k])
    return (float(v[k - 1]) + float(v[k])) / 2.0


def median_array(x: FloatArray) -> float:
    """``np.median`` of a 1-D float array without NaN, bit for bit, at a fraction of the cost."""
    n = x.size
    if n == 0:
        return float("nan")
    k = n // 2
    if n % 2:
        return float(np.partition(x, k)[k])
    p = np.partition(x, (k - 1, k))
    return (float(p[k - 1]) + float(p[k])) / 2.0


def quantile_linear(x: FloatArray, q: float) -> float:
    """``np.quantile(x, q)`` (linear method) of a 1-D float array without NaN, bit for bit.

    The same index arithmetic and interpolation as numpy's ``_lerp``; called per
    heart-rate window, where ``np.quantile``'s fixed cost was most of the work.
    """
    n = x.size
    if n == 0:
        return float("nan")
    v = np.sort(x)
    virtual = (n - 1) * q
    lo = min(max(math.floor(virtual), 0), n - 1)
    hi = min(lo + 1, n - 1)
    gamma = virtual - lo
    a, b = float(v[lo]), float(v[hi])
    d = b - a
    return b - d * (1.0 - gamma) if gamma >= 0.5 else a + d * gamma


def zscore(x: FloatArray) -> FloatArray:
    """``(x - mean) / std`` (zeros for a constant input)."""
    # numpy's own std arithmetic (sum / n, centred squares, sum / n, sqrt), bit for bit,
    # without x.std()'s and x.mean()'s wrapper cost: this runs for every accepted beat.
    d = x - np.add.reduce(x) / x.size
    s = math.sqrt(float(np.add.reduce(d * d)) / x.size)
    if s <= 0:
        return np.zeros_like(x)
    return d / s
