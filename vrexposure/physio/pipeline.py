"""Heart-rate pipelines: samples (ECG / PPG) or RR intervals in, estimates out.

Every pipeline is pure and streaming: ``feed`` takes the next chunk with its
session-clock timestamp and returns what became final (beats, labelled RR
intervals and window estimates). No I/O, no clock reads; memory is bounded.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from vrexposure.physio._stream import StreamingDetector
from vrexposure.physio.crosscheck import PPG_CROSSCHECK, CrossCheckSettings, SlopeEnvelope
from vrexposure.physio.ecg import EcgBeatDetector, EcgDetectorSettings
from vrexposure.physio.ppg import PpgDetectorSettings, PpgPulseDetector
from vrexposure.physio.quality import PPG_QUALITY, WindowQualitySettings
from vrexposure.physio.records import Beat, HeartRateEstimate, RrInterval
from vrexposure.physio.rr import RrClassifier, RrRuleSettings
from vrexposure.physio.window import HeartRateWindower
from vrexposure.sensor_api import Quality

__all__ = [
    "EcgHeartRatePipeline",
    "PipelineOutput",
    "PpgHeartRatePipeline",
    "RrHeartRatePipeline",
]

#: The detectors run once half a second of new signal has come, however small the
#: chunks a device delivers: the per-call cost is paid twice a second, and a heart-rate
#: window (one per second) comes at most this much later.
DETECT_EVERY_S = 0.5


@dataclass(frozen=True, slots=True)
class PipelineOutput:
    """What one ``feed`` call made final, oldest first."""

    beats: tuple[Beat, ...] = ()
    intervals: tuple[RrInterval, ...] = ()
    estimates: tuple[HeartRateEstimate, ...] = ()


class _WaveformPipeline:
    def __init__(
        self,
        detector: StreamingDetector,
        window_s: float,
        step_s: float,
        rr_settings: RrRuleSettings | None,
        quality_settings: WindowQualitySettings | None,
        crosscheck: CrossCheckSettings,
    ) -> None:
        self.detector = detector
        self._rr = RrClassifier(rr_settings)
        self._env = SlopeEnvelope(crosscheck)
        self._win = HeartRateWindower(window_s, step_s, quality_settings, envelope=self._env)
        self._watermark: float | None = None
        self._expected_t0: float | None = None

    def feed(
        self,
        values: npt.ArrayLike,
        t0_s: float,
        rate_hz: float,
        quality: Quality = Quality.GOOD,
    ) -> PipelineOutput:
        """Consume one chunk of samples.

        Args:
            values: 1-D samples (ECG in any unit, PPG in device units). NaN/inf
                samples are treated as bad input.
            t0_s: Session-clock time of ``values[0]``, seconds.
            rate_hz: Sampling rate, Hz.
            quality: The device's own quality flag for this chunk (e.g. lead-off);
                anything but GOOD makes overlapping windows untrusted.
        """
        x = np.asarray(values, dtype=np.float64).reshape(-1)
        if x.size == 0:
            return PipelineOutput()
        intervals: list[RrInterval] = []
        beats: list[Beat] = []
        if self.detector.starts_new_segment(t0_s, rate_hz):
            old = self.detector.flush()  # the previous segment's pending beats
            intervals += self._consume(old)
            beats += old
            self._win.mark_start(t0_s)
            self._rr.reset()
            self._win.break_sequence()
            self._env.reset()
        self._env.feed(x, t0_s, rate_hz)
        new = self.detector.feed(x, t0_s, rate_hz)
        intervals += self._consume(new)
        beats += new
        dt = 1.0 / rate_hz
        if quality is not Quality.GOOD:
            self._win.mark_bad_input(t0_s, t0_s + x.size * dt)
        else:
            bad = ~np.isfinite(x)
            if bad.any():
                edges = np.flatnonzero(np.diff(np.concatenate(([0], bad.astype(np.int8), [0]))))
                for a, b in zip(edges[::2], edges[1::2], strict=True):
                    self._win.mark_bad_input(t0_s + a * dt, t0_s + b * dt)
        self._expected_t0 = t0_s + x.size * dt
        estimates = self._advance(self.detector.final_until_s)
        return PipelineOutput(tuple(beats), tuple(intervals), tuple(estimates))

    def flush(self) -> PipelineOutput:
        """End of input: emit pending beats and every window up to the last sample."""
        beats = self.detector.flush()
        intervals = self._consume(beats)
        estimates = self._advance(self._expected_t0)
        self._expected_t0 = None
        return PipelineOutput(tuple(beats), tuple(intervals), tuple(estimates))

    def run(
        self, values: npt.ArrayLike, rate_hz: float, chunk_s: float = 0.25, t0_s: float = 0.0
    ) -> PipelineOutput:
        """A whole recording, fed in ``chunk_s`` chunks as a live stream would be, then
        flushed: everything the pipeline made of it (benchmarks, tests, offline analysis)."""
        x = np.asarray(values, dtype=np.float64).reshape(-1)
        n = max(1, round(chunk_s * rate_hz))
        outputs = [
            self.feed(x[i : i + n], t0_s + i / rate_hz, rate_hz) for i in range(0, x.size, n)
        ]
        outputs.append(self.flush())
        return PipelineOutput(
            tuple(b for o in outputs for b in o.beats),
            tuple(r for o in outputs for r in o.intervals),
            tuple(e for o in outputs for e in o.estimates),
        )

    def reset(self) -> None:
        """Drop detector state (e.g. on a reported sequence gap); windows continue."""
        self.detector.reset()
        self._env.reset()
        self._expected_t0 = None

    def _consume(self, beats: Sequence[Beat]) -> list[RrInterval]:
        out: list[RrInterval] = []
        for b in beats:
            self._win.add_beat(
                b.t_s, b.shape_corr, b.noise_ratio, b.searchback, b.prominence, b.missed_like_s
            )
            if b.rr_ms is None:
                self._rr.reset()
                self._win.break_sequence()
                continue
            label = self._rr.classify(b.rr_ms)
            self._win.add_interval(b.t_s, b.rr_ms, label)
            out.append(RrInterval(b.t_s, b.rr_ms, label, b.shape_corr, b.searchback))
        return out

    def _advance(self, watermark: float | None) -> list[HeartRateEstimate]:
        if watermark is None:
            return []
        if self._watermark is not None and watermark < self._watermark:
            watermark = self._watermark
        self._watermark = watermark
        return self._win.advance(watermark)


class EcgHeartRatePipeline(_WaveformPipeline):
    """ECG samples -> R peaks -> labelled RR intervals -> windowed heart rate.

    Args:
        window_s: Heart-rate window length, seconds.
        step_s: Spacing of window ends on the session clock, seconds.
        detector: Tuning of the R-peak detector.
        rr_settings: Tuning of the RR artifact rule.
        quality_settings: Thresholds of the window quality flag.
        max_clock_error_s: Timestamp disagreement that counts as a gap.
        detect_every_s: The detector runs once this much new signal has come (the
            beats do not depend on it; windows come up to this much later).
    """

    def __init__(
        self,
        window_s: float = 10.0,
        step_s: float = 1.0,
        detector: EcgDetectorSettings | None = None,
        rr_settings: RrRuleSettings | None = None,
        quality_settings: WindowQualitySettings | None = None,
        max_clock_error_s: float = 0.25,
        detect_every_s: float = DETECT_EVERY_S,
    ) -> None:
        super().__init__(
            EcgBeatDetector(detector, max_clock_error_s, detect_every_s),
            window_s,
            step_s,
            rr_settings,
            quality_settings,
            CrossCheckSettings(),
        )


class PpgHeartRatePipeline(_WaveformPipeline):
    """PPG samples -> pulses (upstroke) -> labelled RR intervals -> windowed heart rate.

    Same arguments as :class:`EcgHeartRatePipeline` (``detector`` tunes the pulse
    detector; ``quality_settings`` defaults to
    :data:`~vrexposure.physio.quality.PPG_QUALITY`, which allows no premature beat).
    """

    def __init__(
        self,
        window_s: float = 10.0,
        step_s: float = 1.0,
        detector: PpgDetectorSettings | None = None,
        rr_settings: RrRuleSettings | None = None,
        quality_settings: WindowQualitySettings | None = None,
        max_clock_error_s: float = 0.25,
        detect_every_s: float = DETECT_EVERY_S,
    ) -> None:
        super().__init__(
            PpgPulseDetector(detector, max_clock_error_s, detect_every_s),
            window_s,
            step_s,
            rr_settings,
            quality_settings or PPG_QUALITY,
            PPG_CROSSCHECK,
        )


class RrHeartRatePipeline:
    """RR intervals from a device (e.g. a chest strap) -> labelled intervals -> windows.

    Beat times are rebuilt by chaining the intervals; the chain is anchored to
    the session clock at the first notification and re-anchored when it falls
    behind the notification times by more than ``resync_s`` (intervals were lost).

    Args:
        window_s: Heart-rate window length, seconds.
        step_s: Spacing of window ends on the session clock, seconds.
        rr_settings: Tuning of the RR artifact rule.
        quality_settings: Thresholds of the window quality flag.
        resync_s: Lag of the beat chain behind the notification time that is
            treated as lost intervals.
    """

    def __init__(
        self,
        window_s: float = 10.0,
        step_s: float = 1.0,
        rr_settings: RrRuleSettings | None = None,
        quality_settings: WindowQualitySettings | None = None,
        resync_s: float = 3.0,
    ) -> None:
        self._rr = RrClassifier(rr_settings)
        self._win = HeartRateWindower(window_s, step_s, quality_settings)
        self._resync_s = float(resync_s)
        self._max_rr_s = self._rr.settings.max_ms / 1000.0
        self._last_beat_s: float | None = None
        self._last_t_s: float | None = None
        self._watermark: float | None = None

    def feed(
        self, rr_ms: Sequence[float], t_s: float, quality: Quality = Quality.GOOD
    ) -> PipelineOutput:
        """Consume one notification.

        Args:
            rr_ms: Intervals that ended since the previous notification, oldest first,
                milliseconds (may be empty).
            t_s: Session-clock time of the notification (at or after the last beat).
            quality: Device quality flag (e.g. no skin contact): anything but GOOD
                makes windows overlapping ``[previous beat, t_s)`` untrusted.
        """
        if not math.isfinite(t_s):
            raise ValueError(f"t_s must be finite, got {t_s!r}")
        values = [float(v) for v in rr_ms]
        beats: list[Beat] = []
        intervals: list[RrInterval] = []
        if values:
            total_s = sum(v for v in values if math.isfinite(v) and v > 0) / 1000.0
            first_anchor = self._last_beat_s is None
            lagging = (
                self._last_beat_s is not None and self._last_beat_s + total_s < t_s - self._resync_s
            )
            if first_anchor or lagging:
                anchor = t_s - total_s
                if lagging:
                    self._win.break_sequence()
                self._win.mark_start(anchor)
                self._last_beat_s = anchor
            assert self._last_beat_s is not None
            t = self._last_beat_s
            for v in values:
                if not (math.isfinite(v) and v > 0):
                    continue
                t += v / 1000.0
                label = self._rr.classify(v)
                self._win.add_beat(t)
                self._win.add_interval(t, v, label)
                beats.append(Beat(t_s=t, rr_ms=v, shape_corr=float("nan"), prominence=1.0))
                intervals.append(RrInterval(t, v, label))
            self._last_beat_s = t
        elif self._last_beat_s is None:
            self._win.mark_start(t_s)
        if quality is not Quality.GOOD:
            prev = self._last_t_s if self._last_t_s is not None else t_s - self._max_rr_s
            self._win.mark_bad_input(min(prev, t_s - self._max_rr_s), t_s)
        self._last_t_s = t_s
        wm = max(self._last_beat_s or t_s, t_s - self._max_rr_s)
        if self._watermark is not None:
            wm = max(wm, self._watermark)
        self._watermark = wm
        return PipelineOutput(tuple(beats), tuple(intervals), tuple(self._win.advance(wm)))

    def reset(self) -> None:
        """Forget the beat chain and RR history (e.g. after a reconnect)."""
        self._rr.reset()
        self._win.break_sequence()
        self._last_beat_s = None
