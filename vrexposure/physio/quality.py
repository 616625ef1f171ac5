"""Signal-quality flag of a heart-rate window (pure rule).

A window is ``GOOD`` (shown as a number to trust) only if *all* of these hold:

* enough of the window is covered by the intervals its heart rate is computed
  from (``min_coverage``);
* no interval needed a detection-error correction (MISSED / EXTRA), at most one
  was left out (LONG / IMPLAUSIBLE) and few premature beats occurred;
* every beat in it matches the running beat template well (``min_shape_corr``),
  no noise candidate between beats came near beat size (``max_noise_ratio``)
  and none was recovered by search-back (waveform input only);
* no rejected candidate with a beat's shape lies well between two beats
  (``possible_missed_beat``: a small beat may be missing from the count);
* the RR history was long enough to judge the intervals (no WARMUP);
* the input was continuous and not marked bad by the device.

Otherwise it is ``UNCERTAIN``, or ``BAD`` when there is too little to compute a
value at all. ``reasons`` name every failed condition.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from vrexposure.sensor_api import Quality

__all__ = ["PPG_QUALITY", "WindowFeatures", "WindowQualitySettings", "assess_window"]


@dataclass(frozen=True, slots=True)
class WindowQualitySettings:
    """Thresholds of the window quality rule.

    Attributes:
        min_coverage: GOOD needs the intervals used for the heart rate to cover at
            least this fraction of the window.
        bad_coverage: Below this fraction (or fewer than 2 used intervals) the
            window is BAD and has no value.
        max_premature: GOOD allows at most this many premature beats (a SHORT
            interval not explained as an extra detection).
        max_corrected: GOOD allows at most this many corrected detection errors
            (MISSED intervals split, EXTRA pairs merged).
        max_excluded: GOOD allows at most this many intervals left out (LONG,
            IMPLAUSIBLE, unexplained SHORT).
        min_shape_corr: GOOD needs every beat's template correlation at least this
            (ignored for RR-only input, where it is unknown).
        max_noise_ratio: GOOD needs every beat's ``noise_ratio`` at most this.
        max_searchback: GOOD allows at most this many search-back beats.
        max_bad_input_fraction: GOOD allows at most this fraction of the window to
            be covered by input flagged bad (NaN samples, device quality).
        max_missed_like: GOOD allows at most this many rejected beat-shaped candidates
            between beats (a small beat may be missing from the count).
    """

    min_coverage: float = 0.75
    bad_coverage: float = 0.4
    max_premature: int = 2
    max_corrected: int = 0
    max_excluded: int = 1
    min_shape_corr: float = 0.8
    max_noise_ratio: float = 0.3
    max_searchback: int = 0
    max_bad_input_fraction: float = 0.02
    max_missed_like: int = 0


#: Default for pulse (PPG) input: a premature beat often gives no proper pulse, so a
#: short interval in a PPG window is more likely an artifact than a real beat.
PPG_QUALITY = WindowQualitySettings(max_premature=0)


@dataclass(frozen=True, slots=True)
class WindowFeatures:
    """What the quality rule looks at, for one window.

    Attributes:
        window_s: Window length, seconds.
        n_beats: Beats inside the window.
        n_used: Intervals used for the heart rate (after corrections).
        n_warmup: WARMUP intervals among them.
        n_premature: Premature beats kept (SHORT intervals not followed by EXTRA).
        n_corrected: MISSED intervals split / EXTRA pairs merged.
        n_excluded: Intervals left out (LONG, IMPLAUSIBLE, unexplained SHORT).
        used_coverage: Duration of the used intervals divided by the window length.
        min_shape_corr: Lowest template correlation of the window's beats (``nan``
            if unknown, e.g. RR-only input).
        max_noise_ratio: Highest ``noise_ratio`` of the window's beats (0 if unknown).
        n_searchback: Beats recovered by search-back.
        discontinuous: The window contains a segment start (gap, reset, start of
            input) after its beginning.
        bad_input_fraction: Fraction of the window covered by input flagged bad.
        n_missed_like: Rejected beat-shaped candidates inside the window, away from
            the beats (see :attr:`~vrexposure.physio.records.Beat.missed_like_s`).
    """

    window_s: float
    n_beats: int
    n_used: int
    n_warmup: int
    n_premature: int
    n_corrected: int
    n_excluded: int
    used_coverage: float
    min_shape_corr: float
    max_noise_ratio: float
    n_searchback: int
    discontinuous: bool
    bad_input_fraction: float
    n_missed_like: int = 0


def assess_window(
    f: WindowFeatures, settings: WindowQualitySettings | None = None
) -> tuple[Quality, tuple[str, ...]]:
    """Quality flag and the reasons it is not GOOD (empty tuple when GOOD)."""
    s = settings or WindowQualitySettings()
    reasons: list[str] = []
    if f.n_used < 2 or f.used_coverage < s.bad_coverage:
        reasons.append("too_few_beats")
        return Quality.BAD, tuple(reasons)
    checks = (
        (f.used_coverage < s.min_coverage, "low_coverage"),
        (f.n_corrected > s.max_corrected, "detection_errors"),
        (f.n_excluded > s.max_excluded, "excluded_intervals"),
        (f.n_premature > s.max_premature, "irregular_rr"),
        (not math.isnan(f.min_shape_corr) and f.min_shape_corr < s.min_shape_corr, "beat_shape"),
        (f.max_noise_ratio > s.max_noise_ratio, "noise"),
        (f.n_searchback > s.max_searchback, "searchback"),
        (f.n_warmup > 0, "warmup"),
        (f.discontinuous, "discontinuity"),
        (f.bad_input_fraction > s.max_bad_input_fraction, "bad_input"),
        (f.n_missed_like > s.max_missed_like, "possible_missed_beat"),
    )
    reasons = [name for failed, name in checks if failed]
    return (Quality.UNCERTAIN if reasons else Quality.GOOD), tuple(reasons)
