"""Streaming properties of the physiology pipeline: chunk invariance, latency,
gaps, invalid samples, bounded memory, purity. Uses only the excerpts in tests/data."""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vrexposure.physio import (
    Beat,
    EcgBeatDetector,
    EcgHeartRatePipeline,
    HeartRateEstimate,
    PpgHeartRatePipeline,
    PpgPulseDetector,
    Quality,
    RrHeartRatePipeline,
)
from vrexposure.physio._stream import StreamingDetector

DATA = Path(__file__).parent / "data"
ECG_FS = 360.0
PPG_FS = 250.0


def _load(name: str) -> np.ndarray:
    return np.loadtxt(DATA / name, comments="#")


ECG = _load("mitdb100_mlii_0-20s_360hz.csv")
PPG = _load("a103l_pleth_30-50s_250hz.csv")
REF_SAMPLES = np.loadtxt(DATA / "mitdb100_atr_0-20s.csv", delimiter=",", skiprows=2, usecols=0)


def feed_chunks(
    det: StreamingDetector, x: np.ndarray, fs: float, sizes: list[int], t0: float = 100.0
) -> list[Beat]:
    """Feed ``x`` cut into chunks of the given sizes (cycled), then flush."""
    out: list[Beat] = []
    i = k = 0
    while i < x.size:
        n = max(1, sizes[k % len(sizes)])
        out += det.feed(x[i : i + n], t0 + i / fs, fs)
        i += n
        k += 1
    return out + det.flush()


def beat_times(beats: list[Beat]) -> np.ndarray:
    return np.array([b.t_s for b in beats])


# -- chunk invariance ------------------------------------------------------------------


@pytest.fixture(scope="module")
def ecg_reference() -> list[Beat]:
    return feed_chunks(EcgBeatDetector(), ECG, ECG_FS, [ECG.size])


@pytest.fixture(scope="module")
def ppg_reference() -> list[Beat]:
    return feed_chunks(PpgPulseDetector(), PPG, PPG_FS, [PPG.size])


def assert_same_beats(a: list[Beat], b: list[Beat]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert x.t_s == pytest.approx(y.t_s, abs=1e-9)
        assert (x.rr_ms is None) == (y.rr_ms is None)
        if x.rr_ms is not None and y.rr_ms is not None:
            assert x.rr_ms == pytest.approx(y.rr_ms, abs=1e-6)
        assert x.shape_corr == pytest.approx(y.shape_corr, abs=1e-9, nan_ok=True)
        assert x.searchback == y.searchback


def test_ecg_detects_the_reference_beats(ecg_reference: list[Beat]) -> None:
    t = beat_times(ecg_reference) - 100.0
    ref = REF_SAMPLES / ECG_FS
    assert len(t) == len(ref)
    assert np.max(np.abs(t - ref)) < 0.05


@settings(max_examples=5, deadline=None)
@given(sizes=st.lists(st.integers(min_value=2, max_value=900), min_size=1, max_size=12))
def test_ecg_chunk_invariance(ecg_reference: list[Beat], sizes: list[int]) -> None:
    assert_same_beats(feed_chunks(EcgBeatDetector(), ECG, ECG_FS, sizes), ecg_reference)


@settings(max_examples=5, deadline=None)
@given(sizes=st.lists(st.integers(min_value=2, max_value=700), min_size=1, max_size=12))
def test_ppg_chunk_invariance(ppg_reference: list[Beat], sizes: list[int]) -> None:
    assert_same_beats(feed_chunks(PpgPulseDetector(), PPG, PPG_FS, sizes), ppg_reference)


def test_single_sample_chunks(ecg_reference: list[Beat]) -> None:
    x = ECG[: int(7 * ECG_FS)]
    one = feed_chunks(EcgBeatDetector(), x, ECG_FS, [1])
    whole = feed_chunks(EcgBeatDetector(), x, ECG_FS, [x.size])
    assert_same_beats(one, whole)
    assert len(one) >= 8


def run_pipeline(
    pipe: EcgHeartRatePipeline | PpgHeartRatePipeline, x: np.ndarray, fs: float, sizes: list[int]
) -> tuple[list[Beat], list[HeartRateEstimate]]:
    beats: list[Beat] = []
    est: list[HeartRateEstimate] = []
    i = k = 0
    while i < x.size:
        n = sizes[k % len(sizes)]
        out = pipe.feed(x[i : i + n], 100.0 + i / fs, fs)
        beats += out.beats
        est += out.estimates
        i += n
        k += 1
    out = pipe.flush()
    return beats + list(out.beats), est + list(out.estimates)


@pytest.mark.parametrize("sizes", [[7], [1000, 3, 250]])
def test_pipeline_chunk_invariance(sizes: list[int]) -> None:
    ref_beats, ref_est = run_pipeline(EcgHeartRatePipeline(), ECG, ECG_FS, [ECG.size])
    beats, est = run_pipeline(EcgHeartRatePipeline(), ECG, ECG_FS, sizes)
    assert_same_beats(beats, ref_beats)
    assert len(est) == len(ref_est) == 20
    for a, b in zip(est, ref_est, strict=True):
        assert a.t_s == pytest.approx(b.t_s)
        assert a.quality is b.quality
        assert a.reasons == b.reasons
        assert (a.bpm is None) == (b.bpm is None)
        if a.bpm is not None and b.bpm is not None:
            assert a.bpm == pytest.approx(b.bpm, abs=1e-9)


def test_pipeline_windows_on_the_session_grid() -> None:
    _, est = run_pipeline(EcgHeartRatePipeline(window_s=10.0, step_s=1.0), ECG, ECG_FS, [360])
    assert [e.t_s for e in est] == pytest.approx([101.0 + k for k in range(20)])
    good = [e for e in est if e.quality is Quality.GOOD]
    # Windows that start before the first samples (and the first RR warm-up) are not trusted.
    assert all(e.t_s >= 110.0 for e in good)
    assert len(good) >= 8
    ref = REF_SAMPLES / ECG_FS + 100.0
    for e in good:
        b = ref[(ref >= e.t_s - 10.0) & (ref < e.t_s)]
        assert e.bpm == pytest.approx(60.0 / np.mean(np.diff(b)), abs=0.5)
        assert e.rmssd_ms is not None and 0 < e.rmssd_ms < 200


def test_rr_pipeline_grouping_invariance() -> None:
    rng = np.random.default_rng(1)
    rr = 800 + 40 * np.sin(np.arange(120) / 3) + rng.normal(0, 10, 120)
    beats_t = 50.0 + np.cumsum(rr) / 1000.0

    def run(groups: list[int]) -> list[HeartRateEstimate]:
        pipe = RrHeartRatePipeline()
        est: list[HeartRateEstimate] = []
        i = k = 0
        while i < rr.size:
            n = groups[k % len(groups)]
            chunk = rr[i : i + n]
            t = beats_t[i + chunk.size - 1] + 0.05  # notification shortly after the last beat
            est += pipe.feed(chunk.tolist(), t).estimates
            i += n
            k += 1
        return est

    a, b = run([1]), run([3, 1, 2])
    common = {e.t_s for e in a} & {e.t_s for e in b}
    assert len(common) > 80
    da = {e.t_s: e for e in a}
    db = {e.t_s: e for e in b}
    for t in common:
        assert da[t].quality is db[t].quality
        assert da[t].bpm == pytest.approx(db[t].bpm)


# -- latency ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("det", "x", "fs", "limit_s"),
    [(EcgBeatDetector, ECG, ECG_FS, 0.35), (PpgPulseDetector, PPG, PPG_FS, 0.5)],
)
def test_beats_reported_promptly(
    det: type[StreamingDetector], x: np.ndarray, fs: float, limit_s: float
) -> None:
    d = det()
    step = max(1, int(0.02 * fs))
    late = []
    for i in range(0, x.size, step):
        now = (i + min(step, x.size - i)) / fs
        for b in d.feed(x[i : i + step], i / fs, fs):
            if b.t_s > 4.0 and not b.searchback:  # after the initial learning period
                late.append(now - b.t_s)
    assert late and max(late) <= limit_s


def test_batched_detection_gives_the_same_beats_a_little_later(
    ecg_reference: list[Beat],
) -> None:
    """Chunks queued until 0.5 s of signal has come: the same beats, at most 0.5 s later."""
    d = EcgBeatDetector(batch_s=0.5)
    step = 7  # a serial read's worth of samples
    out: list[Beat] = []
    late = []
    calls_with_work = 0
    for i in range(0, ECG.size, step):
        now = (i + min(step, ECG.size - i)) / ECG_FS
        new = d.feed(ECG[i : i + step], 100.0 + i / ECG_FS, ECG_FS)
        calls_with_work += d._queued_n == 0  # the queue was just processed
        late += [now - (b.t_s - 100.0) for b in new if b.t_s > 104.0 and not b.searchback]
        out += new
    out += d.flush()
    assert_same_beats(out, ecg_reference)
    assert late and max(late) <= 0.35 + 0.5
    # ~2 detector runs per second of signal instead of one per 7-sample read
    assert calls_with_work <= 2 * ECG.size / ECG_FS + 2


def test_batched_detector_flushes_its_queue_at_a_gap() -> None:
    plain, batched = EcgBeatDetector(), EcgBeatDetector(batch_s=0.5)
    half = ECG.size // 2
    results = []
    for d in (plain, batched):
        out: list[Beat] = []
        for i in range(0, half, 50):
            out += d.feed(ECG[i : min(i + 50, half)], i / ECG_FS, ECG_FS)
        for i in range(half, ECG.size, 50):
            out += d.feed(ECG[i : i + 50], 1000.0 + (i - half) / ECG_FS, ECG_FS)
        results.append(out + d.flush())
    assert_same_beats(results[1], results[0])
    assert sum(b.rr_ms is None for b in results[1]) == 2  # two segments, none across


# -- gaps, clock, invalid input ----------------------------------------------------------


def test_timestamp_gap_starts_a_new_segment() -> None:
    d = EcgBeatDetector()
    half = ECG.size // 2
    first = d.feed(ECG[:half], 0.0, ECG_FS)
    second = d.feed(ECG[half:], 1000.0, ECG_FS)  # 990 s later than the samples imply
    second += d.flush()
    assert all(b.t_s < 10.5 for b in first)
    new = [b for b in second if b.t_s >= 1000.0]
    assert new and new[0].rr_ms is None  # no interval across the gap
    assert all(b.rr_ms is not None for b in new[1:])


def test_small_timestamp_jitter_is_ignored(ecg_reference: list[Beat]) -> None:
    rng = np.random.default_rng(0)
    d = EcgBeatDetector(max_clock_error_s=0.25)
    out: list[Beat] = []
    for i in range(0, ECG.size, 90):
        out += d.feed(ECG[i : i + 90], 100.0 + i / ECG_FS + rng.uniform(-0.05, 0.05), ECG_FS)
    out += d.flush()
    assert len(out) == len(ecg_reference)
    # Beat times follow the sample clock of the segment, not the jittery stamps.
    assert np.max(np.abs(beat_times(out) - beat_times(ecg_reference))) < 0.051


def test_nan_samples_are_bad_input() -> None:
    x = ECG.copy()
    x[int(12.0 * ECG_FS) : int(12.2 * ECG_FS)] = np.nan
    _, est = run_pipeline(EcgHeartRatePipeline(), x, ECG_FS, [360])
    for e in est:
        overlaps = e.t_s - 10.0 < 112.2 and e.t_s > 112.0
        if overlaps:
            assert e.quality is not Quality.GOOD
            assert "bad_input" in e.reasons


def test_device_quality_flag_marks_windows() -> None:
    pipe = EcgHeartRatePipeline()
    est: list[HeartRateEstimate] = []
    for i in range(0, ECG.size, 360):
        q = Quality.BAD if 14 <= i / ECG_FS < 15 else Quality.GOOD
        est += pipe.feed(ECG[i : i + 360], i / ECG_FS, ECG_FS, quality=q).estimates
    est += pipe.flush().estimates
    for e in est:
        if e.t_s > 14.0 and e.t_s - 10.0 < 15.0:
            assert e.quality is not Quality.GOOD


def test_flat_signal_gives_no_beats_and_bad_windows() -> None:
    pipe = EcgHeartRatePipeline()
    est: list[HeartRateEstimate] = []
    beats: list[Beat] = []
    for i in range(30):
        out = pipe.feed(np.zeros(250), float(i), 250.0)
        est += out.estimates
        beats += out.beats
    assert not beats
    assert est and all(e.quality is Quality.BAD and e.bpm is None for e in est)


def test_invalid_arguments() -> None:
    d = EcgBeatDetector()
    with pytest.raises(ValueError):
        d.feed(ECG[:10], 0.0, 0.0)
    with pytest.raises(ValueError):
        d.feed(ECG[:10], float("nan"), 360.0)
    with pytest.raises(ValueError):
        d.feed(ECG[:10], 0.0, 30.0)  # below the ECG detector's minimum rate
    assert d.feed(np.zeros(0), 0.0, 360.0) == []


# -- bounded memory and purity ----------------------------------------------------------


def test_memory_is_bounded() -> None:
    pipe = EcgHeartRatePipeline()
    t = 0.0
    tracemalloc.start()
    try:
        sizes: list[int] = []
        for rep in range(15):  # 5 minutes, the excerpt repeated
            for i in range(0, ECG.size, 1800):
                chunk = ECG[i : i + 1800]
                pipe.feed(chunk, t, ECG_FS)
                t += chunk.size / ECG_FS
            if rep in (3, 14):
                sizes.append(tracemalloc.get_traced_memory()[0])
    finally:
        tracemalloc.stop()
    assert sizes[1] - sizes[0] < 150_000


def test_no_clock_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom() -> float:
        raise AssertionError("the pipeline must not read the clock")

    for name in ("time", "monotonic", "perf_counter", "time_ns", "monotonic_ns"):
        monkeypatch.setattr(time, name, boom)
    pipe = PpgHeartRatePipeline()
    for i in range(0, PPG.size, 500):
        pipe.feed(PPG[i : i + 500], i / PPG_FS, PPG_FS)
    pipe.flush()


def test_windows_keep_coming_when_the_signal_goes_flat() -> None:
    """Lead-off after real ECG: windows are still emitted (BAD), not held back."""
    pipe = EcgHeartRatePipeline()
    est: list[HeartRateEstimate] = []
    x = np.concatenate([ECG, np.full(int(30 * ECG_FS), ECG[-1])])
    for i in range(0, x.size, 180):
        now = (i + 180) / ECG_FS
        out = pipe.feed(x[i : i + 180], i / ECG_FS, ECG_FS)
        est += out.estimates
        if est:
            assert now - est[-1].t_s < 1.5
    assert est[-1].t_s >= 49.0
    assert est[-1].quality is Quality.BAD and est[-1].bpm is None


def test_noise_after_lead_off_is_never_trusted() -> None:
    rng = np.random.default_rng(7)
    x = np.concatenate([ECG, rng.normal(0.0, 0.1, int(60 * ECG_FS))])
    _, est = run_pipeline(EcgHeartRatePipeline(), x, ECG_FS, [360])
    inside = [e for e in est if e.t_s - 10.0 >= 121.0]  # windows entirely in the noise
    assert len(inside) >= 45
    assert all(e.quality is not Quality.GOOD for e in inside)
