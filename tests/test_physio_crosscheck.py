"""Independent evidence behind the trust flag: slope-envelope beat check and rate continuity."""

from __future__ import annotations

import numpy as np

from vrexposure.physio import (
    EcgHeartRatePipeline,
    HeartRateEstimate,
    HeartRateWindower,
    Quality,
    RrLabel,
)
from vrexposure.physio.crosscheck import (
    CrossCheckSettings,
    RateContinuity,
    SlopeEnvelope,
    beats_agree,
    envelope_peaks,
)

FS_HZ = 360.0


def spikes(beat_times_s: np.ndarray, amps: np.ndarray, duration_s: float) -> np.ndarray:
    """A crude ECG: narrow Gaussian QRS complexes on a flat line plus a little noise."""
    t = np.arange(round(duration_s * FS_HZ)) / FS_HZ
    x = np.zeros_like(t)
    for tb, a in zip(beat_times_s, amps, strict=True):
        x += a * np.exp(-0.5 * ((t - tb) / 0.012) ** 2)
    return x + np.random.default_rng(1).normal(0.0, 0.005, t.size)


def bigeminy(duration_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Normal beats (small) each followed 0.6 s later by a large ectopic one; 1.1 s pause."""
    normal = np.arange(0.5, duration_s - 1.0, 1.7)
    times = np.sort(np.concatenate([normal, normal + 0.6]))
    amps = np.where(np.isin(times, normal), 0.6, 1.5)
    return times, amps


def envelope_of(x: np.ndarray, chunk: int) -> SlopeEnvelope:
    env = SlopeEnvelope()
    for i in range(0, x.size, chunk):
        env.feed(x[i : i + chunk], i / FS_HZ, FS_HZ)
    return env


def test_envelope_is_the_same_for_any_chunking() -> None:
    times, amps = bigeminy(30.0)
    x = spikes(times, amps, 30.0)
    a = envelope_of(x, 7).window(0.0, 30.0)
    b = envelope_of(x, 900).window(0.0, 30.0)
    np.testing.assert_allclose(a[0], b[0])
    np.testing.assert_allclose(a[1], b[1])
    assert a[1].size > 1400  # ~50 Hz over 30 s


def test_envelope_peaks_find_every_beat_of_a_bigeminy() -> None:
    times, amps = bigeminy(20.0)
    t, v = envelope_of(spikes(times, amps, 20.0), 90).window(0.0, 20.0)
    low, _ = envelope_peaks(t, v)
    inside = times[(times > 0.3) & (times < 19.7)]
    assert low.size == inside.size
    assert np.max(np.abs(low - inside)) < 0.05


def test_a_halved_rate_is_never_confirmed() -> None:
    """Locked onto the ectopic beats only (the bigeminy failure of issue 14): disagreement."""
    times, amps = bigeminy(20.0)
    t, v = envelope_of(spikes(times, amps, 20.0), 90).window(0.0, 20.0)
    low, high = envelope_peaks(t, v)
    ectopic_only = times[amps > 1.0]
    assert beats_agree(ectopic_only, low, high) == "second_estimator_more_beats"
    normal_only = times[amps < 1.0]
    assert beats_agree(normal_only, low, high) == "second_estimator_more_beats"
    assert beats_agree(times, low, high) is None


def test_an_invented_beat_is_not_confirmed() -> None:
    times = np.arange(0.5, 10.0, 0.8)
    t, v = envelope_of(spikes(times, np.ones(times.size), 10.0), 90).window(0.0, 10.0)
    low, high = envelope_peaks(t, v)
    extra = np.sort(np.append(times, 4.9))  # between two beats, no peak there
    assert beats_agree(extra, low, high) == "second_estimator_fewer_beats"


def windower_estimates(beats_s: np.ndarray, x: np.ndarray) -> list[HeartRateEstimate]:
    env = SlopeEnvelope()
    win = HeartRateWindower(10.0, 1.0, envelope=env)
    env.feed(x, 0.0, FS_HZ)
    win.mark_start(0.0)
    prev = None
    for b in beats_s:
        win.add_beat(float(b), shape_corr=0.95)
        if prev is not None:
            win.add_interval(float(b), (b - prev) * 1000.0, RrLabel.NORMAL)
        prev = b
    return win.advance(x.size / FS_HZ)


def test_windower_does_not_trust_beats_the_waveform_contradicts() -> None:
    times, amps = bigeminy(40.0)
    x = spikes(times, amps, 40.0)
    locked = windower_estimates(times[amps > 1.0], x)  # perfectly regular 35 bpm
    late = [e for e in locked if e.t_s >= 15.0]
    assert late and all(e.quality is not Quality.GOOD for e in late)
    assert all("second_estimator_more_beats" in e.reasons for e in late)
    regular = np.arange(0.5, 39.0, 0.85)
    x2 = spikes(regular, np.ones(regular.size), 40.0)
    ok = [e for e in windower_estimates(regular, x2) if e.t_s >= 15.0]
    assert ok and all(e.quality is Quality.GOOD for e in ok)
    assert all(abs((e.bpm or 0.0) - 60.0 / 0.85) < 0.5 for e in ok)


def test_rate_continuity_rejects_a_sudden_halving() -> None:
    c = RateContinuity(CrossCheckSettings())
    c.trusted(100.0, 70.0)
    assert c.check(101.0, 72.0) is None
    assert c.check(101.0, 35.0) == "implausible_rate_change"
    assert c.check(130.0, 35.0) is None  # the old trusted window is too far back to judge


def test_bigeminy_on_a_pipeline_gives_no_wrong_trusted_rate() -> None:
    """The real detector locks onto the large ectopic beats of this bigeminy (35 bpm for a
    true 71): the value is shown, but never as trusted, and the reason says why."""
    times, amps = bigeminy(60.0)
    x = spikes(times, amps, 60.0)
    pipe = EcgHeartRatePipeline()
    est = list(pipe.feed(x, 0.0, FS_HZ).estimates) + list(pipe.flush().estimates)
    true_bpm = 120.0 / 1.7
    good = [e for e in est if e.quality is Quality.GOOD]
    assert all(abs((e.bpm or 0.0) - true_bpm) < 3.0 for e in good)
    halved = [e for e in est if e.bpm is not None and abs(e.bpm - true_bpm / 2) < 3.0]
    assert len(halved) > 30  # the failure is reproduced ...
    assert all(e.quality is Quality.UNCERTAIN for e in halved)  # ... and caught
    assert all("second_estimator_more_beats" in e.reasons for e in halved)


def test_a_displaced_beat_gives_no_biased_trusted_window_rr_input() -> None:
    """The BITalino case of issue 14: RR 1055 ms then 607 ms in a ~831 ms rhythm."""
    from vrexposure.physio import RrHeartRatePipeline

    rr = [831.0] * 40 + [1055.0, 607.0] + [831.0] * 30
    pipe = RrHeartRatePipeline()
    est: list[HeartRateEstimate] = []
    t = 0.0
    for v in rr:
        t += v / 1000.0
        est += pipe.feed([v], t).estimates
    true_bpm = 60000.0 / 831.0
    near = [e for e in est if 33.0 <= e.t_s <= 47.0 and e.bpm is not None]
    assert near
    for e in near:
        if e.quality is Quality.GOOD:
            assert abs(e.bpm - true_bpm) < 0.3, (e.t_s, e.bpm)  # type: ignore[operator]
    assert sum(e.quality is Quality.GOOD for e in near) >= len(near) - 2


def test_a_displaced_beat_gives_no_biased_trusted_window_ecg() -> None:
    times = np.arange(0.5, 60.0, 0.831)
    times[30] += 0.224  # detected/produced 224 ms late: RR 1055 then 607 ms
    x = spikes(times, np.ones(times.size), 60.0)
    pipe = EcgHeartRatePipeline()
    est = list(pipe.feed(x, 0.0, FS_HZ).estimates) + list(pipe.flush().estimates)
    true_bpm = 60000.0 / 831.0
    good = [e for e in est if e.quality is Quality.GOOD and e.bpm is not None]
    around = [e for e in good if times[30] < e.t_s < times[30] + 10.0]
    assert around  # trusted through the displaced beat ...
    assert all(abs(e.bpm - true_bpm) < 0.5 for e in good)  # type: ignore[operator]
