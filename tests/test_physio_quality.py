"""Window quality flags: the pure rule, the windower and the RR-only pipeline."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from vrexposure.physio import (
    HeartRateEstimate,
    HeartRateWindower,
    Quality,
    RrHeartRatePipeline,
    RrLabel,
    WindowFeatures,
    WindowQualitySettings,
    assess_window,
)

CLEAN = WindowFeatures(
    window_s=10.0,
    n_beats=13,
    n_used=12,
    n_warmup=0,
    n_premature=0,
    n_corrected=0,
    n_excluded=0,
    used_coverage=0.93,
    min_shape_corr=0.97,
    max_noise_ratio=0.05,
    n_searchback=0,
    discontinuous=False,
    bad_input_fraction=0.0,
)


def test_clean_window_is_good() -> None:
    assert assess_window(CLEAN) == (Quality.GOOD, ())


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"used_coverage": 0.6}, "low_coverage"),
        ({"n_corrected": 1}, "detection_errors"),
        ({"n_excluded": 2}, "excluded_intervals"),
        ({"n_premature": 3}, "irregular_rr"),
        ({"min_shape_corr": 0.5}, "beat_shape"),
        ({"max_noise_ratio": 0.6}, "noise"),
        ({"n_searchback": 1}, "searchback"),
        ({"n_warmup": 2}, "warmup"),
        ({"discontinuous": True}, "discontinuity"),
        ({"bad_input_fraction": 0.5}, "bad_input"),
        ({"n_missed_like": 1}, "possible_missed_beat"),
    ],
)
def test_each_condition_makes_a_window_uncertain(change: dict[str, object], reason: str) -> None:
    q, reasons = assess_window(dataclasses.replace(CLEAN, **change))  # type: ignore[arg-type]
    assert q is Quality.UNCERTAIN
    assert reasons == (reason,)


def test_tolerated_amounts_stay_good() -> None:
    ok = dataclasses.replace(
        CLEAN, n_premature=2, n_excluded=1, max_noise_ratio=0.3, bad_input_fraction=0.01
    )
    assert assess_window(ok)[0] is Quality.GOOD
    assert assess_window(dataclasses.replace(CLEAN, min_shape_corr=math.nan))[0] is Quality.GOOD


def test_too_little_is_bad() -> None:
    assert assess_window(dataclasses.replace(CLEAN, n_used=1))[0] is Quality.BAD
    assert assess_window(dataclasses.replace(CLEAN, used_coverage=0.3)) == (
        Quality.BAD,
        ("too_few_beats",),
    )


def test_settings_are_respected() -> None:
    strict = WindowQualitySettings(max_premature=0)
    assert assess_window(dataclasses.replace(CLEAN, n_premature=1), strict)[0] is Quality.UNCERTAIN


def feed_rr(win: HeartRateWindower, rr_ms: list[float], labels: list[RrLabel], t0: float) -> float:
    t = t0
    win.mark_start(t0)
    win.add_beat(t, shape_corr=0.99)
    for rr, lab in zip(rr_ms, labels, strict=True):
        t += rr / 1000.0
        win.add_beat(t, shape_corr=0.99)
        win.add_interval(t, rr, lab)
    return t


def test_windower_regular_rhythm() -> None:
    win = HeartRateWindower(window_s=10.0, step_s=2.0)
    t_end = feed_rr(win, [800.0] * 40, [RrLabel.NORMAL] * 40, t0=3.3)
    est = win.advance(t_end)
    assert [e.t_s for e in est] == pytest.approx([4.0 + 2 * k for k in range(len(est))])
    assert est[-1].t_s <= t_end
    for e in est:
        if e.t_s - 10.0 >= 3.3:
            assert e.quality is Quality.GOOD
            assert e.bpm == pytest.approx(75.0)
            assert e.rmssd_ms == pytest.approx(0.0)
            assert e.n_beats in (12, 13)
        else:  # the window starts before the input does
            assert e.quality is not Quality.GOOD
    assert win.advance(t_end) == []  # each window is emitted once


def test_windower_corrects_a_missed_beat_but_flags_it() -> None:
    win = HeartRateWindower(window_s=10.0, step_s=1.0)
    rr = [800.0] * 20 + [1600.0] + [800.0] * 20
    labels = [RrLabel.NORMAL] * 20 + [RrLabel.MISSED] + [RrLabel.NORMAL] * 20
    t_end = feed_rr(win, rr, labels, t0=0.0)
    est = [e for e in win.advance(t_end) if e.t_s > 10.0]
    hit = [e for e in est if "detection_errors" in e.reasons]
    assert hit
    for e in hit:
        assert e.quality is Quality.UNCERTAIN
        assert e.bpm == pytest.approx(75.0)


def test_windower_marks_gaps_and_bad_input() -> None:
    win = HeartRateWindower(window_s=10.0, step_s=1.0)
    t = feed_rr(win, [800.0] * 30, [RrLabel.NORMAL] * 30, t0=0.0)
    win.mark_bad_input(5.0, 6.0)
    win.break_sequence()
    t2 = feed_rr(win, [800.0] * 30, [RrLabel.NORMAL] * 30, t0=t + 5.0)
    est = {e.t_s: e for e in win.advance(t2)}
    assert "bad_input" in est[12.0].reasons
    assert est[20.0].quality is Quality.GOOD
    assert "discontinuity" in est[t + 6.0 - (t + 6.0) % 1.0 + 1.0].reasons
    assert est[math.floor(t2)].quality is Quality.GOOD


def test_window_parameters_are_validated() -> None:
    with pytest.raises(ValueError):
        HeartRateWindower(window_s=0.0)


def run_rr(rr: list[float], per_notification: int = 1) -> list[HeartRateEstimate]:
    pipe = RrHeartRatePipeline()
    t = 10.0
    est: list[HeartRateEstimate] = []
    for i in range(0, len(rr), per_notification):
        chunk = rr[i : i + per_notification]
        t += sum(chunk) / 1000.0
        est += pipe.feed(chunk, t + 0.1).estimates
    return est


def test_rr_pipeline_clean_and_artifact() -> None:
    rng = np.random.default_rng(3)
    rr = list(750 + rng.normal(0, 15, 100))
    est = run_rr(rr)
    good = [e for e in est if e.quality is Quality.GOOD]
    assert len(good) > 40
    for e in good:
        assert e.bpm == pytest.approx(80.0, abs=2.0)
        assert e.rmssd_ms is not None and 5 < e.rmssd_ms < 40
    # An extra beat reported by the device (750 -> 300 + 450) is caught.
    bad = [*rr[:50], 300.0, 450.0, *rr[50:]]
    est = run_rr(bad)
    t_extra = 10.0 + sum(bad[:51]) / 1000.0
    around = [e for e in est if e.t_s - 10.0 < t_extra < e.t_s]
    # Windows holding both halves see the correction; at a window edge the lone
    # half is left out instead. Either way the value stays right.
    both = [e for e in around if e.t_s - 10.0 < t_extra - 0.3 and t_extra + 0.45 < e.t_s]
    assert both and all(e.quality is not Quality.GOOD for e in both)
    assert all(e.bpm == pytest.approx(80.0, abs=2.0) for e in around if e.bpm is not None)


def test_rr_pipeline_lost_notifications_break_the_sequence() -> None:
    pipe = RrHeartRatePipeline()
    est: list[HeartRateEstimate] = []
    t = 0.0
    for k in range(60):
        t += 0.8
        if 25 <= k < 35:  # ten notifications lost
            continue
        est += pipe.feed([800.0], t).estimates
    flagged = [e for e in est if e.t_s - 10.0 < 27.0 < e.t_s]
    assert flagged and all(e.quality is not Quality.GOOD for e in flagged)
    assert any(e.quality is Quality.GOOD for e in est if e.t_s > 40.0)


def test_rr_pipeline_device_quality() -> None:
    pipe = RrHeartRatePipeline()
    est: list[HeartRateEstimate] = []
    t = 0.0
    for k in range(40):
        t += 0.8
        q = Quality.BAD if k == 20 else Quality.GOOD
        est += pipe.feed([800.0], t, quality=q).estimates
    assert any("bad_input" in e.reasons for e in est)
