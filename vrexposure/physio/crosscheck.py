"""Independent evidence for the trust flag (pure, streaming).

The beat detector decides beat by beat with adaptive thresholds and a running
template; when it goes wrong (e.g. locks onto the ectopic beats of a bigeminy
and misses every normal beat) its own beat-level features can look perfect.
These checks do not share its decisions:

* :class:`SlopeEnvelope` keeps a coarse (≈ 50 Hz) envelope of the raw signal's
  slope (ECG: ``|x[k] - x[k - 10 ms]|``; PPG: the rise over 50 ms), with no
  adaptive state at all;
* :func:`envelope_peaks` finds the envelope peaks in a window above a low and a
  high threshold (relative to the window's own peaks); :func:`beats_agree`
  matches them with the detected beats: no prominent peak without a beat, no
  beat without a peak, and not far more low peaks than beats (a halved rate:
  every second beat missed);
* :class:`RateContinuity` compares a window with the previous trusted windows
  (a plausible change of rate over the time between them).
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import deque
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.signal import find_peaks

from vrexposure.physio._stream import median_array, quantile_linear

try:  # the compiled steps of scipy's find_peaks, without its argument handling
    from scipy.signal._peak_finding_utils import _local_maxima_1d, _select_by_peak_distance
except ImportError:  # pragma: no cover - a scipy that moved them: the public function
    _local_maxima_1d = _select_by_peak_distance = None

__all__ = [
    "CrossCheckSettings",
    "RateContinuity",
    "SlopeEnvelope",
    "beats_agree",
    "envelope_peaks",
]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class CrossCheckSettings:
    """Constants of the independent checks (chosen with ``bench/heart_rate.py``).

    Attributes:
        envelope_rate_hz: Rate of the slope envelope (block maxima of the slope).
        slope_lag_s: Lag of the slope difference (ECG 10 ms: QRS slopes; PPG 50 ms).
        rise_only: Use only rising slopes (PPG upstroke) instead of both signs.
        min_peak_gap_s: Envelope peaks closer than this are one (240 bpm).
        low_fraction: Low threshold, x the 80th percentile of the window's peaks.
        high_fraction: High threshold, same reference.
        match_tolerance_s: An envelope peak and a detected beat this close are one beat.
        t_wave_s: A low peak this long after a beat may be its T wave (not a beat).
        long_ratio: A LONG interval up to this x the window's median interval is rhythm
            variation, not a hidden beat (when the envelope confirms the beats).
        count_every_beat: When the envelope confirms the beats, count every interval
            (ectopic beats are beats) and relax the beat-shape rules. Off for PPG: a
            premature beat often gives no proper pulse, and the rule stays strict.
        halving_band: Where in an interval (fraction) a missed beat of a halved rate lies.
        halving_share: More unmatched low peaks there than this x the beats (and more
            than one) means beats are being missed.
        max_change_bpm_per_s: Plausible change of the window rate per second since
            the last trusted window ...
        change_floor_bpm: ... plus this, for beat-to-beat variation.
        continuity_horizon_s: Trusted windows older than this are not compared.
    """

    envelope_rate_hz: float = 50.0
    slope_lag_s: float = 0.01
    rise_only: bool = False
    min_peak_gap_s: float = 0.25
    low_fraction: float = 0.3
    high_fraction: float = 0.45
    match_tolerance_s: float = 0.15
    t_wave_s: tuple[float, float] = (0.15, 0.42)
    long_ratio: float = 1.3
    count_every_beat: bool = True
    halving_band: tuple[float, float] = (0.4, 0.6)
    halving_share: float = 0.3
    max_change_bpm_per_s: float = 2.0
    change_floor_bpm: float = 6.0
    continuity_horizon_s: float = 10.0


#: Pulse (PPG) input: the upstroke is slow, so a longer lag and rising slopes only; the
#: cross-check only vetoes (a pulse after a premature beat is unreliable).
PPG_CROSSCHECK = CrossCheckSettings(slope_lag_s=0.05, rise_only=True, count_every_beat=False)


class SlopeEnvelope:
    """Streaming slope envelope of one continuous segment; chunking does not matter.

    Because chunking does not matter, chunks are only queued when fed and computed
    together when the envelope is next read (once per heart-rate window): the fixed
    cost of the computation is paid once a second instead of once per chunk.
    """

    def __init__(self, settings: CrossCheckSettings | None = None) -> None:
        self.s = settings or CrossCheckSettings()
        self._queued: list[tuple[FloatArray, float, float]] = []  # (x, t0_s, rate_hz)
        self._queued_n = 0
        self._t: deque[FloatArray] = deque()  # one array per chunk, times increasing
        self._v: deque[FloatArray] = deque()
        # The chunks above joined (from sample ``_joined_from`` on), plus the chunks not
        # joined yet: a window joins only the new chunks instead of all of them.
        self._joined_t: FloatArray = np.zeros(0)
        self._joined_v: FloatArray = np.zeros(0)
        self._joined_from = 0
        self._unjoined: list[tuple[FloatArray, FloatArray]] = []
        self.reset()

    def reset(self) -> None:
        """A new continuous segment starts with the next chunk."""
        self._compute_queued()
        self._prev: FloatArray = np.zeros(0)
        self._carry: FloatArray = np.zeros(0)
        self._t0: float | None = None
        self._n = 0  # slope samples emitted into blocks so far in this segment
        self._fs = 0.0

    def feed(self, x: FloatArray, t0_s: float, rate_hz: float) -> None:
        """Append one chunk (NaN samples count as flat signal)."""
        x = np.array(x, dtype=np.float64).reshape(-1)  # a copy: the caller may reuse its buffer
        self._queued.append((x, float(t0_s), float(rate_hz)))
        self._queued_n += x.size
        if self._queued_n >= 2.0 * rate_hz:  # bounded memory if nobody reads the envelope
            self._compute_queued()

    def _compute_queued(self) -> None:
        """Compute the queued chunks, consecutive chunks of one rate in one go."""
        q = self._queued
        i = 0
        while i < len(q):
            j = i + 1
            while j < len(q) and q[j][2] == q[i][2]:
                j += 1
            # Within one rate only the first chunk's time is used (it starts the segment).
            x = q[i][0] if j == i + 1 else np.concatenate([c[0] for c in q[i:j]])
            self._compute(x, q[i][1], q[i][2])
            i = j
        q.clear()
        self._queued_n = 0

    def _compute(self, x: FloatArray, t0_s: float, rate_hz: float) -> None:
        if self._t0 is None or rate_hz != self._fs:
            self._prev = np.zeros(0)
            self._carry = np.zeros(0)
            self._t0, self._n, self._fs = t0_s, 0, rate_hz
        lag = max(1, round(self.s.slope_lag_s * rate_hz))
        if not np.isfinite(x).all():  # rare: nan_to_num's fixed cost only when needed
            x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
        ext = np.concatenate([self._prev, x])
        if ext.size > lag:
            d = ext[lag:] - ext[:-lag]
            slope = np.maximum(d, 0.0) if self.s.rise_only else np.abs(d)
            if self._prev.size < lag:  # segment start: the first slopes are undefined
                slope = slope[: max(0, ext.size - lag)]
        else:
            slope = np.zeros(0)
        self._prev = ext[-lag:].copy()
        block = max(1, round(rate_hz / self.s.envelope_rate_hz))
        v = np.concatenate([self._carry, slope])
        n = v.size // block * block
        self._carry = v[n:].copy()
        if n == 0:
            return
        env = v[:n].reshape(-1, block).max(axis=1)
        k = self._n // block + np.arange(env.size)
        t = self._t0 + (k * block + 0.5 * block + lag) / rate_hz
        self._n += n
        self._t.append(t)
        self._v.append(env)
        self._unjoined.append((t, env))

    def window(self, t0_s: float, t1_s: float) -> tuple[FloatArray, FloatArray]:
        """Envelope samples with time in ``[t0_s, t1_s)``."""
        self._compute_queued()
        if self._unjoined:
            f = self._joined_from
            self._joined_t = np.concatenate([self._joined_t[f:], *(p[0] for p in self._unjoined)])
            self._joined_v = np.concatenate([self._joined_v[f:], *(p[1] for p in self._unjoined)])
            self._joined_from = 0
            self._unjoined.clear()
        t = self._joined_t[self._joined_from :]
        v = self._joined_v[self._joined_from :]
        # Times increase within a chunk, so masking the joined samples selects exactly
        # the samples of the chunks that overlap the window.
        m = (t >= t0_s) & (t < t1_s)
        return t[m], v[m]

    def prune(self, before_s: float) -> None:
        """Forget envelope samples before ``before_s``."""
        # Queued chunks are newer than every computed one: they can wait (window() masks
        # by time, so a queued sample that is already too old is never returned).
        while self._t and self._t[0].size and self._t[0][-1] < before_s:
            t = self._t.popleft()
            self._v.popleft()
            if self._unjoined and self._unjoined[0][0] is t:
                self._unjoined.pop(0)
            else:
                self._joined_from += t.size


def envelope_peaks(
    t_s: FloatArray, env: FloatArray, settings: CrossCheckSettings | None = None
) -> tuple[FloatArray, FloatArray]:
    """Times of the envelope peaks above the low and above the high threshold."""
    s = settings or CrossCheckSettings()
    if t_s.size < 3:
        return np.zeros(0), np.zeros(0)
    step = float(t_s[1] - t_s[0])
    if abs(float(t_s[-1] - t_s[0]) - step * (t_s.size - 1)) > 1e-6 * step * t_s.size:
        step = median_array(np.diff(t_s))  # two segments of different rates
    rate = 1.0 / step
    pk = peaks_apart(env, max(1, round(s.min_peak_gap_s * rate)))
    if pk.size < 3:
        return np.zeros(0), np.zeros(0)
    h = env[pk]
    ref = quantile_linear(h, 0.8)
    return t_s[pk[h >= s.low_fraction * ref]], t_s[pk[h >= s.high_fraction * ref]]


def peaks_apart(x: FloatArray, distance: int) -> npt.NDArray[np.intp]:
    """``scipy.signal.find_peaks(x, distance=distance)[0]``, the same steps in the same order.

    Called once per heart-rate window on ~500 samples, where ``find_peaks``'s own
    argument handling cost as much as the search.
    """
    if _local_maxima_1d is None or _select_by_peak_distance is None:  # pragma: no cover
        return find_peaks(x, distance=distance)[0]
    x = np.ascontiguousarray(x, dtype=np.float64)
    peaks, _, _ = _local_maxima_1d(x)
    keep = _select_by_peak_distance(peaks, x[peaks], distance)
    return peaks[keep]


def _any_unmatched(a: list[float], b: list[float], tol_s: float) -> bool:
    """Whether some time of ``a`` has no time of ``b`` within ``tol_s`` (both sorted)."""
    if not a:
        return False
    if not b:
        return True
    # One merge walk instead of a bisection per time.
    j = 0
    last = len(b) - 1
    for t in a:
        while j < last and b[j + 1] <= t:
            j += 1
        if abs(t - b[j]) > tol_s and (j == last or abs(b[j + 1] - t) > tol_s):
            return True
    return False


def beats_agree(
    beats_s: FloatArray | list[float],
    low_s: FloatArray,
    high_s: FloatArray,
    settings: CrossCheckSettings | None = None,
    env_end_s: float = float("inf"),
) -> str | None:
    """``None`` when the envelope peaks confirm the detected beats, else the reason.

    Every prominent (high-threshold) peak between the first and the last beat must be a
    detected beat (no beat missed); every detected beat must be an envelope peak (no beat
    invented); and the low-threshold peaks must not be far more than the beats (a halved
    rate: every second beat missed, whatever its size).
    """
    # Plain Python on a dozen beats and peaks: called once per window, where numpy's
    # per-call cost on such tiny arrays was most of the work.
    s = settings or CrossCheckSettings()
    b = beats_s if isinstance(beats_s, list) else beats_s.tolist()
    if len(b) < 3 or low_s.size < 3:
        return "no_second_estimate"
    tol = s.match_tolerance_s
    nb = len(b)
    lo, hi = b[0] - tol, b[-1] + tol
    low_in = [t for t in low_s.tolist() if lo <= t <= hi]
    high_in = [t for t in high_s.tolist() if lo <= t <= hi]
    n_mid = 0
    for t in low_in:
        k = bisect_left(b, t) - 1  # the beat before the peak (-1: none)
        after = t - b[k] if k >= 0 else math.inf
        near = abs(after) <= tol or (k + 1 < nb and abs(b[k + 1] - t) <= tol)
        # A smaller peak that is no beat is only acceptable where a T wave can be ...
        if not near and not (s.t_wave_s[0] <= after <= s.t_wave_s[1]):
            return "second_estimator_more_beats"
        # ... and in a fast rhythm the middle of an interval is where a missed beat of a
        # halved rate would be: a few such peaks there mean beats are being missed.
        if not near and k >= 0 and k + 1 < nb:
            frac = after / (b[k + 1] - b[k])
            n_mid += s.halving_band[0] <= frac <= s.halving_band[1]
    if n_mid > max(1.0, s.halving_share * nb):
        return "second_estimator_more_beats"
    if _any_unmatched(high_in, b, tol):
        return "second_estimator_more_beats"
    # A beat at the very end of the envelope has no peak yet (a peak needs a next sample).
    if _any_unmatched([t for t in b if t < env_end_s - 0.06], low_in, tol):
        return "second_estimator_fewer_beats"
    return None


class RateContinuity:
    """Remembers recent trusted windows; a window far off their rate is not trusted."""

    def __init__(self, settings: CrossCheckSettings | None = None) -> None:
        self.s = settings or CrossCheckSettings()
        self._last: deque[tuple[float, float]] = deque(maxlen=5)  # (t_s, bpm)

    def check(self, t_s: float, bpm: float) -> str | None:
        """``None`` if ``bpm`` is a plausible continuation of the trusted windows."""
        s = self.s
        recent = [(t, b) for t, b in self._last if 0 < t_s - t <= s.continuity_horizon_s]
        if not recent:
            return None
        t, ref = recent[-1]
        limit = s.change_floor_bpm + s.max_change_bpm_per_s * (t_s - t)
        return "implausible_rate_change" if abs(bpm - ref) > limit else None

    def trusted(self, t_s: float, bpm: float) -> None:
        """Record a window that was flagged trusted."""
        if math.isfinite(bpm):
            self._last.append((t_s, bpm))
