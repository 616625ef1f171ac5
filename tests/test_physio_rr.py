"""RR artifact rules, heart rate, RMSSD and the window corrections, on hand-made numbers."""

from __future__ import annotations

import math

import pytest

from vrexposure.physio import (
    RrClassifier,
    RrLabel,
    RrRuleSettings,
    classify_rr,
    mean_heart_rate_bpm,
    rmssd_ms,
)
from vrexposure.physio.window import correct_intervals

N = RrLabel.NORMAL
W = RrLabel.WARMUP


def test_warmup_then_normal() -> None:
    labels = classify_rr([800, 810, 790, 800, 805, 795])
    assert labels == [W, W, W, N, N, N]


@pytest.mark.parametrize("rr", [100.0, 249.9, 2000.1, 5000.0, math.nan, math.inf, -800.0])
def test_implausible_intervals(rr: float) -> None:
    labels = classify_rr([800, 800, 800, 800, rr, 800])
    assert labels[4] is RrLabel.IMPLAUSIBLE
    assert labels[5] is N  # the history is not disturbed


def test_missed_beat_is_a_multiple_of_the_reference() -> None:
    assert classify_rr([800] * 6 + [1600, 800])[6:] == [RrLabel.MISSED, N]
    assert classify_rr([600] * 6 + [1810, 600])[6:] == [RrLabel.MISSED, N]


def test_extra_beat_splits_one_interval() -> None:
    # A false detection 300 ms into an 800-ms interval: 300 + 500.
    assert classify_rr([800] * 6 + [300, 500, 800])[6:] == [RrLabel.SHORT, RrLabel.EXTRA, N]


def test_ectopic_beat_with_compensatory_pause() -> None:
    # Premature beat at 560 ms, full compensatory pause 1040 ms (sum = 2 x 800).
    assert classify_rr([800] * 6 + [560, 1040, 800])[6:] == [RrLabel.SHORT, RrLabel.ECTOPIC, N]


def test_premature_beat_without_compensatory_pause() -> None:
    # Atrial premature beat: short interval, then a roughly normal one.
    assert classify_rr([800] * 6 + [580, 840, 800])[6:] == [RrLabel.SHORT, N, N]


def test_long_pause_not_a_multiple() -> None:
    assert classify_rr([800] * 6 + [1250, 800])[6:] == [RrLabel.LONG, N]


def test_tolerance_floor_and_cap() -> None:
    s = RrRuleSettings()
    # Within 15 % of the reference is always normal; beyond 30 % never.
    assert classify_rr([1000] * 6 + [1140])[6] is N
    assert classify_rr([1000] * 6 + [870])[6] is N
    assert classify_rr([1000] * 6 + [1180])[6] is RrLabel.LONG
    # Large physiological variability (respiratory sinus arrhythmia) widens the tolerance.
    rsa = [1000 + 120 * math.sin(k * 2 * math.pi / 5) for k in range(40)]
    clf = RrClassifier()
    labels = [clf.classify(v) for v in rsa]
    assert labels[3:] == [N] * (len(rsa) - 3)
    assert s.tolerance_floor < clf.tolerance() <= s.tolerance_cap
    assert clf.reference_ms() == pytest.approx(1000, abs=120)


def test_rhythm_change_is_followed() -> None:
    # A step from 75 to 100 bpm: a few intervals are flagged, then it is the new normal.
    labels = classify_rr([800] * 10 + [600] * 10)
    assert labels[10] is RrLabel.SHORT
    assert labels[16:] == [N] * 4


def test_reset_restarts_warmup() -> None:
    clf = RrClassifier()
    for _ in range(5):
        clf.classify(800)
    clf.reset()
    assert clf.classify(800) is W
    assert clf.reference_ms() is None


def test_mean_heart_rate() -> None:
    assert mean_heart_rate_bpm([1000, 1000]) == pytest.approx(60.0)
    assert mean_heart_rate_bpm([500, 1000, 1500]) == pytest.approx(60.0)
    assert mean_heart_rate_bpm([800]) is None
    labels = [N, N, RrLabel.MISSED, N]
    assert mean_heart_rate_bpm([750, 750, 1500, 750], labels) == pytest.approx(80.0)
    with pytest.raises(ValueError):
        mean_heart_rate_bpm([800, 800], [N])


def test_rmssd_known_values() -> None:
    # Successive differences 10, -20, 30 -> sqrt((100 + 400 + 900) / 3)
    assert rmssd_ms([800, 810, 790, 820]) == pytest.approx(math.sqrt(1400 / 3))
    assert rmssd_ms([800, 800, 800]) == pytest.approx(0.0)
    assert rmssd_ms([800]) is None
    # Differences touching a non-normal interval are left out: only 800->810 remains.
    labels = [N, N, RrLabel.SHORT, N]
    assert rmssd_ms([800, 810, 500, 820], labels) == pytest.approx(10.0)
    # ... and so are differences across a break in the sequence.
    assert rmssd_ms([800, 810, 790], adjacent=[False, True, False]) == pytest.approx(10.0)
    assert rmssd_ms([800, 810], [N, RrLabel.LONG]) is None


def test_window_corrections() -> None:
    adj = [False] + [True] * 9
    # Normal intervals only.
    c = correct_intervals([N] * 4, [800.0] * 4, adj[:4])
    assert (c.count, c.duration_ms, c.n_corrected, c.n_excluded) == (4, 3200.0, 0, 0)
    # Extra detection: the two halves are merged into one interval.
    c = correct_intervals([N, RrLabel.SHORT, RrLabel.EXTRA, N], [800, 300, 500, 800], adj[:4])
    assert (c.count, c.duration_ms, c.n_corrected) == (3, 2400.0, 1)
    # Missed beat: one interval of two references counts twice.
    c = correct_intervals([N, RrLabel.MISSED, N], [800, 1600, 800], adj[:3])
    assert (c.count, c.duration_ms, c.n_corrected) == (4, 3200.0, 1)
    # Premature beat with compensatory pause: both intervals are real beats.
    c = correct_intervals([N, RrLabel.SHORT, RrLabel.ECTOPIC, N], [800, 560, 1040, 800], adj[:4])
    assert (c.count, c.duration_ms, c.n_premature, c.n_excluded) == (4, 3200.0, 1, 0)
    # A trailing short interval (its explanation is not known yet) and a LONG are left out.
    c = correct_intervals([N, RrLabel.LONG, N, RrLabel.SHORT], [800, 1250, 800, 400], adj[:4])
    assert (c.count, c.duration_ms, c.n_excluded) == (2, 1600.0, 2)
    # No interval pairs across a break in the sequence.
    c = correct_intervals([RrLabel.SHORT, RrLabel.EXTRA], [300, 500], [False, False])
    assert (c.count, c.n_excluded) == (0, 2)
