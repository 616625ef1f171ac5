"""Streaming ECG R-peak detection.

Algorithm (all causal and indexed by sample number, so the result does not
depend on chunking; shared machinery in :mod:`vrexposure.physio._detect`):

1. Band-pass 5–35 Hz (2nd-order Butterworth, state carried across chunks) and a
   80 ms moving average of its square: the QRS energy envelope (Pan & Tompkins
   1985).
2. Candidates: envelope maxima that are the largest within ±200 ms, so every
   candidate is final 200 ms after it occurred.
3. Each candidate's waveform (band-passed, ±80 ms around its largest absolute
   value) is correlated with a running template of accepted beats (best of
   ±40 ms lags). Electrode-motion artifacts and T waves are shaped differently
   from the patient's QRS complexes; this removes most of the false detections
   plain threshold detectors make in noise.
4. Accept when the envelope peak exceeds the adaptive threshold
   ``NPK + 0.25 (SPK − NPK)`` *and* the shape matches; candidates within 360 ms
   of the previous beat (T-wave zone) need a closer match, while an early (premature)
   candidate of the beat's shape is a beat like any other. A much larger
   odd-shaped candidate is accepted as an ectopic beat. The
   signal level SPK follows beat-shaped candidates (accepted or not), the noise
   level NPK the others (capped at half of SPK), both clipped against outliers.
5. Search-back: when a beat is overdue (> 1.66 × the median recent RR), the
   largest rejected beat-shaped candidate above half the threshold since the
   last beat is accepted; failing that, the largest candidate above the full
   threshold well inside the gap (a missed ectopic beat before its pause); failing
   that, the largest candidate above half the threshold at least 0.6 × RR from both
   neighbours, whatever its shape (a beat whose shape changed).
6. When nothing was accepted for max(2.5 s, 1.8 RR), the levels (and, if at
   least three candidates agree on a shape, the template) are re-learnt from the
   last 4 s. Candidates below 0.2 % of a slowly decaying (30 s) long-term beat
   energy are never beats.

The reported time is the largest absolute band-pass value, corrected for the
filter's group delay at 12 Hz (≈ the R or S peak). Each beat carries its
template correlation, a noise ratio (largest rejected candidate since the
previous beat relative to the beat level) and the time of any rejected candidate
with a beat's shape well between the two beats (a small beat may have been
missed there), which the window quality flag uses.

Latency: ≈ 0.3 s after the R peak. Beats recovered by search-back come later
(up to ~1 s), and the beats of the first 2.5 s of a segment come when the
initial learning ends.

Known limits: wide ectopic beats (PVCs) with little 5–35 Hz energy can be
missed (they then show as MISSED/LONG intervals and make the window uncertain);
a recording that is noise only still yields spurious beats, which the window
quality flag rejects (shape, noise ratio, irregular RR).
"""

from __future__ import annotations

from dataclasses import dataclass

from vrexposure.physio._detect import DetectorSettings, TemplateBeatCore
from vrexposure.physio._stream import SegmentCore, StreamingDetector

__all__ = ["EcgBeatDetector", "EcgDetectorSettings"]


@dataclass(frozen=True)
class EcgDetectorSettings(DetectorSettings):
    """ECG defaults of :class:`~vrexposure.physio._detect.DetectorSettings`.

    Chosen on all 18 records of the development set (``bench/heart_rate.py``,
    per record and pooled); change them only with the benchmark at hand.
    """

    # A premature candidate that passes the normal shape test is a beat (an ectopic
    # beat is still a beat): on the development set every such candidate at least
    # 360 ms after the previous beat was one.
    shape_premature: float = 0.6
    amp_premature: float = 0.0
    searchback_timed: float = 0.6
    missed_like_amp: float = 0.08


class EcgBeatDetector(StreamingDetector):
    """Streaming R-peak detector: ``feed(values, t0_s, rate_hz) -> list[Beat]``.

    Pure and incremental: no I/O, no clock reads; bounded memory (a few seconds of
    samples). The output does not depend on how the stream is chunked. Beats are
    final when emitted, normally ≈0.25 s after the R peak. Sampling rate ≥ 60 Hz.

    Args:
        settings: Tuning constants (defaults: :class:`EcgDetectorSettings`).
        max_clock_error_s: A chunk whose ``t0_s`` differs from the time implied by
            the sample count by more than this starts a new segment (detector
            re-learns; no RR interval spans the discontinuity). Within a segment,
            beat times follow the sample count from the segment's first ``t0_s``,
            so timestamp jitter smaller than this is ignored.
        batch_s: Queue chunks until this much signal has come and detect them in one
            go (same beats, emitted up to ``batch_s`` later; 0: at every chunk).
    """

    def __init__(
        self,
        settings: DetectorSettings | None = None,
        max_clock_error_s: float = 0.25,
        batch_s: float = 0.0,
    ) -> None:
        super().__init__(max_clock_error_s=max_clock_error_s, batch_s=batch_s)
        self.settings = settings or EcgDetectorSettings()

    def _new_core(self, rate_hz: float) -> SegmentCore:
        return TemplateBeatCore(rate_hz, self.settings)
