"""Streaming physiology: beats, RR intervals and trusted heart rate.

Pure and incremental: every object is fed chunks with their session-clock
timestamps (``feed(values, t0_s, rate_hz)``) and returns what became final; no
I/O and no clock reads. The pipelines are the entry points:

* :class:`EcgHeartRatePipeline` — ECG samples in;
* :class:`PpgHeartRatePipeline` — PPG samples in;
* :class:`RrHeartRatePipeline` — RR intervals from a device in;

each returning :class:`PipelineOutput` (beats, labelled RR intervals and
:class:`HeartRateEstimate` windows with a :class:`Quality` flag).
:class:`BaselineStats` summarises a resting period.

Example::

    pipe = EcgHeartRatePipeline(window_s=10.0, step_s=1.0)
    for chunk, t0_s in stream:                      # the caller owns the clock
        out = pipe.feed(chunk, t0_s, rate_hz=130.0)
        for est in out.estimates:                   # one per second, ~0.35 s late
            show(est.bpm if est.quality is Quality.GOOD else None, est.quality)
    baseline = BaselineStats.from_estimates(history, start_s=0.0, end_s=180.0)
"""

from vrexposure.physio._detect import DetectorSettings
from vrexposure.physio.baseline import BaselineStats
from vrexposure.physio.ecg import EcgBeatDetector, EcgDetectorSettings
from vrexposure.physio.pipeline import (
    EcgHeartRatePipeline,
    PipelineOutput,
    PpgHeartRatePipeline,
    RrHeartRatePipeline,
)
from vrexposure.physio.ppg import PpgDetectorSettings, PpgPulseDetector
from vrexposure.physio.quality import WindowFeatures, WindowQualitySettings, assess_window
from vrexposure.physio.records import Beat, HeartRateEstimate, RrInterval, RrLabel
from vrexposure.physio.rr import (
    RrClassifier,
    RrRuleSettings,
    classify_rr,
    mean_heart_rate_bpm,
    rmssd_ms,
)
from vrexposure.physio.window import HeartRateWindower
from vrexposure.sensor_api import Quality

__all__ = [
    "BaselineStats",
    "Beat",
    "DetectorSettings",
    "EcgBeatDetector",
    "EcgDetectorSettings",
    "EcgHeartRatePipeline",
    "HeartRateEstimate",
    "HeartRateWindower",
    "PipelineOutput",
    "PpgDetectorSettings",
    "PpgHeartRatePipeline",
    "PpgPulseDetector",
    "Quality",
    "RrClassifier",
    "RrHeartRatePipeline",
    "RrInterval",
    "RrLabel",
    "RrRuleSettings",
    "WindowFeatures",
    "WindowQualitySettings",
    "assess_window",
    "classify_rr",
    "mean_heart_rate_bpm",
    "rmssd_ms",
]
