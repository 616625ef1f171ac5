"""Resting-baseline statistics with uncertain values."""

from __future__ import annotations

import statistics

import pytest

from vrexposure.physio import BaselineStats, HeartRateEstimate, Quality


def est(t: float, bpm: float | None, q: Quality = Quality.GOOD) -> HeartRateEstimate:
    return HeartRateEstimate(t_s=t, bpm=bpm, quality=q, rmssd_ms=None, n_beats=12, window_s=10.0)


def test_mean_and_sd_of_good_windows() -> None:
    values = [70.0, 72.0, 71.0, 69.0, 73.0, 70.0, 71.0, 72.0, 70.0, 71.0, 72.0, 69.0]
    b = BaselineStats.from_estimates([est(10.0 + k, v) for k, v in enumerate(values)])
    assert b.mean_bpm == pytest.approx(statistics.mean(values))
    assert b.sd_bpm == pytest.approx(statistics.stdev(values))
    assert b.median_bpm == pytest.approx(statistics.median(values))
    assert (b.n_used, b.n_windows, b.n_outliers) == (12, 12, 0)
    assert b.quality is Quality.GOOD
    assert b.mean_bpm is not None
    assert b.delta_bpm(80.0) == pytest.approx(80.0 - b.mean_bpm)
    assert b.z_score(b.mean_bpm) == pytest.approx(0.0)


def test_uncertain_and_bad_values_are_never_averaged() -> None:
    good = [est(10.0 + k, 70.0 + (k % 3)) for k in range(12)]
    noisy = [est(30.0 + k, 140.0, Quality.UNCERTAIN) for k in range(5)]
    empty = [est(40.0 + k, None, Quality.BAD) for k in range(3)]
    b = BaselineStats.from_estimates(good + noisy + empty)
    assert b.mean_bpm == pytest.approx(71.0)
    assert b.n_used == 12 and b.n_windows == 20
    assert b.trusted_fraction == pytest.approx(0.6)
    assert b.quality is Quality.GOOD


def test_outlier_among_good_values_is_dropped() -> None:
    values = [70.0, 71.0, 72.0, 70.0, 71.0, 72.0, 70.0, 71.0, 72.0, 71.0, 120.0]
    b = BaselineStats.from_estimates([est(10.0 + k, v) for k, v in enumerate(values)])
    assert b.n_outliers == 1
    assert b.mean_bpm == pytest.approx(71.0)


def test_mostly_untrusted_period_is_uncertain() -> None:
    good = [est(10.0 + k, 70.0) for k in range(10)]
    bad = [est(20.0 + k, 90.0, Quality.UNCERTAIN) for k in range(20)]
    b = BaselineStats.from_estimates(good + bad)
    assert b.quality is Quality.UNCERTAIN
    assert b.mean_bpm == pytest.approx(70.0)


def test_no_trusted_value_is_bad() -> None:
    b = BaselineStats.from_estimates(
        [est(10.0, 70.0, Quality.UNCERTAIN), est(11.0, None, Quality.BAD)]
    )
    assert b.quality is Quality.BAD
    assert b.mean_bpm is None and b.sd_bpm is None
    assert b.delta_bpm(80.0) is None and b.z_score(80.0) is None
    assert BaselineStats.from_estimates([]).quality is Quality.BAD


def test_period_selection() -> None:
    estimates = [est(10.0 + k, 60.0 if k < 20 else 90.0) for k in range(40)]
    # Whole windows inside [0, 29]: window ends 10..29 -> the 60-bpm part.
    b = BaselineStats.from_estimates(estimates, start_s=0.0, end_s=29.0)
    assert b.mean_bpm == pytest.approx(60.0)
    assert b.n_windows == 20
    assert (b.start_s, b.end_s) == (0.0, 29.0)
    # Too short a period cannot be a GOOD baseline.
    short = BaselineStats.from_estimates(estimates, start_s=0.0, end_s=15.0)
    assert short.quality is Quality.UNCERTAIN and short.n_used == 6
