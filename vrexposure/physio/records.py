"""Records emitted by the physiology pipeline.

All times are on the *session clock* (seconds), i.e. the clock of the ``t0_s``
values the caller passes to ``feed``. Intervals (``rr_ms``) are measured on the
device's own sample clock, so they are free of any jitter in those timestamps.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from vrexposure.sensor_api import Quality

__all__ = ["Beat", "HeartRateEstimate", "Quality", "RrInterval", "RrLabel"]


@dataclass(frozen=True, slots=True)
class Beat:
    """One detected heartbeat (ECG R peak, or PPG pulse upstroke).

    Attributes:
        t_s: Session-clock time of the fiducial point (ECG: R/S peak; PPG: steepest
            point of the pulse upstroke; RR-only input: the reconstructed beat).
        rr_ms: Interval to the previous beat of the same continuous recording
            segment, on the device sample clock; ``None`` for the first beat after
            a start, a reset or a gap.
        shape_corr: Correlation (-1..1) of the beat's waveform with the running
            template of recent beats; ``nan`` while no template exists yet.
        prominence: Detection feature of this beat relative to the running level
            of accepted beats (1.0 = typical beat).
        noise_ratio: Largest rejected candidate since the previous beat relative to
            that level (0 = nothing else in between; T waves ~0.1; noise > 0.3).
        searchback: True when the beat was recovered by the search-back rule
            (accepted below the normal threshold because a beat was overdue).
        missed_like_s: Time of a rejected candidate since the previous beat that had a
            beat's shape, away from both beats (a small premature beat both the
            detector and the envelope may have missed); ``None`` when there was none.
    """

    t_s: float
    rr_ms: float | None
    shape_corr: float
    prominence: float
    noise_ratio: float = 0.0
    searchback: bool = False
    missed_like_s: float | None = None


class RrLabel(str, Enum):
    """Classification of one RR interval against the recent rhythm.

    Only ``NORMAL`` intervals enter the heart rate and RMSSD. ``WARMUP`` intervals
    are plausible but there was not enough history to judge them.
    """

    NORMAL = "normal"
    WARMUP = "warmup"
    SHORT = "short"  # premature beat or extra detection (first of a pair)
    LONG = "long"  # pause or missed detection that is not a clean multiple
    MISSED = "missed"  # ~k x the reference interval (k >= 2): beat(s) not detected
    EXTRA = "extra"  # completes a pair of short intervals that sum to ~one normal
    ECTOPIC = "ectopic"  # long interval completing a short-long (compensatory) pair
    IMPLAUSIBLE = "implausible"  # outside the physiological range


@dataclass(frozen=True, slots=True)
class RrInterval:
    """One beat-to-beat interval with its artifact label.

    Attributes:
        t_s: Session-clock time of the beat that ends the interval.
        rr_ms: Interval length on the device clock, milliseconds.
        label: Artifact classification (causal: uses only earlier intervals).
        shape_corr: ``shape_corr`` of the ending beat (``nan`` for RR-only input).
        searchback: True if either beat of the interval came from search-back.
    """

    t_s: float
    rr_ms: float
    label: RrLabel
    shape_corr: float = float("nan")
    searchback: bool = False


@dataclass(frozen=True, slots=True)
class HeartRateEstimate:
    """Heart rate over one window, with a trust flag.

    Attributes:
        t_s: Session-clock time of the window end; the window is ``[t_s - window_s, t_s)``.
        bpm: Mean heart rate over the window, beats per minute, from its NORMAL
            intervals with premature beats kept and detection errors corrected
            (see :mod:`vrexposure.physio.window`); ``None`` when the window is BAD
            (too few usable intervals).
        quality: ``GOOD`` only if the beats are consistent enough to trust the
            value (see :mod:`vrexposure.physio.quality`); anything else must be
            shown as uncertain.
        rmssd_ms: Root mean square of successive differences of adjacent NORMAL
            (or WARMUP) intervals, milliseconds; ``None`` if there is no such pair.
        n_beats: Number of beats in the window.
        window_s: Window length, seconds.
        reasons: Short machine-readable reasons why the quality is not GOOD.
        n_ectopic: Beats in the window classified ectopic (premature by RR, or of
            another shape than the running template); they count as beats.
    """

    t_s: float
    bpm: float | None
    quality: Quality
    rmssd_ms: float | None
    n_beats: int
    window_s: float
    reasons: tuple[str, ...] = ()
    n_ectopic: int = 0
