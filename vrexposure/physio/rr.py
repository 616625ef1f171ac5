"""RR-interval artifact rules, heart rate and RMSSD (pure functions + a causal classifier).

Artifact rule (causal, one interval at a time, in the spirit of Kubios' median
rule and Lipponen & Tarvainen 2019):

* an interval outside ``[min_ms, max_ms]`` is ``IMPLAUSIBLE``;
* otherwise it is compared with the *reference*, the median of the preceding
  ``reference_beats`` plausible intervals. Its relative deviation is
  acceptable up to a tolerance that adapts to the patient's normal beat-to-beat
  variability (``tolerance_k`` robust SDs of the recent relative deviations of
  NORMAL intervals), clipped to ``[tolerance_floor, tolerance_cap]``;
* a deviating interval is named by its pattern: ``MISSED`` (≈ k × reference),
  ``EXTRA`` (two short intervals summing to ≈ one reference), ``ECTOPIC`` (a
  short-long pair summing to ≈ two references), else ``SHORT`` / ``LONG``.

Only ``NORMAL`` intervals enter the heart rate and RMSSD. Because the reference
is the median of recent intervals *of any label*, a genuine change of rhythm is
followed within a few beats.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from vrexposure.physio._stream import median
from vrexposure.physio.records import RrLabel

__all__ = [
    "RrClassifier",
    "RrRuleSettings",
    "classify_rr",
    "mean_heart_rate_bpm",
    "rmssd_ms",
]


@dataclass(frozen=True, slots=True)
class RrRuleSettings:
    """Constants of the RR artifact rule.

    Attributes:
        min_ms: Shortest plausible interval (250 ms = 240 bpm).
        max_ms: Longest plausible interval (2000 ms = 30 bpm).
        reference_beats: Number of preceding plausible intervals whose median is
            the reference.
        min_reference: Intervals needed before judging (earlier ones are WARMUP).
        tolerance_floor: Smallest accepted relative deviation from the reference.
        tolerance_cap: Largest accepted relative deviation from the reference.
        tolerance_k: Multiplier of the robust SD of recent NORMAL deviations.
        spread_beats: How many recent NORMAL deviations define that SD.
    """

    min_ms: float = 250.0
    max_ms: float = 2000.0
    reference_beats: int = 9
    min_reference: int = 3
    tolerance_floor: float = 0.15
    tolerance_cap: float = 0.30
    tolerance_k: float = 4.0
    spread_beats: int = 30


class RrClassifier:
    """Labels RR intervals one at a time using only earlier intervals."""

    def __init__(self, settings: RrRuleSettings | None = None) -> None:
        self.settings = settings or RrRuleSettings()
        self._hist: deque[float] = deque(maxlen=self.settings.reference_beats)
        self._devs: deque[float] = deque(maxlen=self.settings.spread_beats)
        self._prev_rr: float | None = None
        self._prev_label: RrLabel | None = None

    def reset(self) -> None:
        """Forget the history (e.g. after a gap in the beat sequence)."""
        self._hist.clear()
        self._devs.clear()
        self._prev_rr = None
        self._prev_label = None

    def tolerance(self) -> float:
        """Current accepted relative deviation from the reference."""
        s = self.settings
        if len(self._devs) < 5:
            return s.tolerance_floor
        mid = median(self._devs)
        spread = 1.4826 * median(abs(d - mid) for d in self._devs)
        # min/max: np.clip's fixed cost on one number was a tenth of the classifier's
        return min(max(s.tolerance_k * spread, s.tolerance_floor), s.tolerance_cap)

    def reference_ms(self) -> float | None:
        """Median of the recent plausible intervals (``None`` during warm-up)."""
        if len(self._hist) < self.settings.min_reference:
            return None
        return median(self._hist)

    def classify(self, rr_ms: float) -> RrLabel:
        """Label the next interval of the sequence and update the history."""
        s = self.settings
        rr = float(rr_ms)
        if not (math.isfinite(rr) and s.min_ms <= rr <= s.max_ms):
            label = RrLabel.IMPLAUSIBLE
            self._prev_rr, self._prev_label = rr, label
            return label
        ref = self.reference_ms()
        if ref is None:
            label = RrLabel.WARMUP
        else:
            tol = self.tolerance()
            dev = rr / ref - 1.0
            prev_short = self._prev_label is RrLabel.SHORT and self._prev_rr is not None
            label = RrLabel.NORMAL
            if abs(dev) > tol:
                k = round(rr / ref)
                if (
                    prev_short
                    and self._prev_rr is not None
                    and dev < 0
                    and (abs(self._prev_rr + rr - ref) <= tol * ref)
                ):
                    label = RrLabel.EXTRA
                elif (
                    prev_short
                    and self._prev_rr is not None
                    and dev > 0
                    and (abs(self._prev_rr + rr - 2 * ref) <= tol * ref)
                ):
                    label = RrLabel.ECTOPIC
                elif dev > 0 and k >= 2 and abs(rr / k - ref) <= tol * ref:
                    label = RrLabel.MISSED
                else:
                    label = RrLabel.SHORT if dev < 0 else RrLabel.LONG
            if label is RrLabel.NORMAL:
                self._devs.append(dev)
        self._hist.append(rr)
        self._prev_rr, self._prev_label = rr, label
        return label


def classify_rr(rr_ms: Iterable[float], settings: RrRuleSettings | None = None) -> list[RrLabel]:
    """Label a whole RR sequence (same causal rule as :class:`RrClassifier`)."""
    clf = RrClassifier(settings)
    return [clf.classify(v) for v in rr_ms]


def _usable(labels: Sequence[RrLabel], include_warmup: bool) -> np.ndarray:
    ok = [lab is RrLabel.NORMAL or (include_warmup and lab is RrLabel.WARMUP) for lab in labels]
    return np.array(ok, dtype=bool)


def mean_heart_rate_bpm(
    rr_ms: Sequence[float],
    labels: Sequence[RrLabel] | None = None,
    include_warmup: bool = True,
) -> float | None:
    """``60000 / mean(RR)`` over the usable intervals (``None`` if fewer than 2).

    Args:
        rr_ms: Intervals in milliseconds.
        labels: Their labels; ``None`` uses every interval.
        include_warmup: Whether WARMUP intervals count as usable.
    """
    rr = np.asarray(rr_ms, dtype=np.float64)
    if labels is not None:
        if len(labels) != rr.size:
            raise ValueError("rr_ms and labels differ in length")
        rr = rr[_usable(labels, include_warmup)]
    if rr.size < 2:
        return None
    return 60000.0 / float(rr.mean())


def rmssd_ms(
    rr_ms: Sequence[float],
    labels: Sequence[RrLabel] | None = None,
    adjacent: Sequence[bool] | None = None,
    include_warmup: bool = True,
) -> float | None:
    """Root mean square of successive differences, milliseconds.

    A difference ``rr[i] - rr[i-1]`` is used only if both intervals are usable
    (NORMAL, or WARMUP when ``include_warmup``) and, when ``adjacent`` is given,
    ``adjacent[i]`` is true (interval ``i`` directly follows interval ``i-1``,
    i.e. no gap or dropped interval between them). ``None`` if no difference
    qualifies.
    """
    # Plain Python: called once per heart-rate window on a dozen intervals, where
    # numpy's per-call cost was most of the work.
    rr = [float(v) for v in rr_ms]
    n = len(rr)
    if n < 2:
        return None
    if labels is not None and len(labels) != n:
        raise ValueError("rr_ms and labels differ in length")
    if adjacent is not None and len(adjacent) != n:
        raise ValueError("rr_ms and adjacent differ in length")
    ok = [True] * n if labels is None else _usable(labels, include_warmup).tolist()
    total = 0.0
    count = 0
    for i in range(1, n):
        if ok[i] and ok[i - 1] and (adjacent is None or adjacent[i]):
            d = rr[i] - rr[i - 1]
            total += d * d
            count += 1
    if count == 0:
        return None
    return math.sqrt(total / count)
