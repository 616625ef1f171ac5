"""The cheaper arithmetic of the streaming pipeline gives numpy's / scipy's results bit for bit.

The streaming cost was cut by replacing per-call-expensive numpy and scipy calls on tiny
arrays (medians, a quantile, the standard deviation, the band-pass, a sliding maximum)
with equivalent code. "Equivalent" here means identical floats, so the detector's
decisions cannot move; these tests hold each replacement to its original.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy import signal

from vrexposure.physio._stream import (
    SampleBuffer,
    SosFilter,
    local_maxima,
    median,
    median_array,
    quantile_linear,
    zscore,
)
from vrexposure.physio.crosscheck import peaks_apart

FINITE = st.floats(min_value=-1e12, max_value=1e12, allow_nan=False, allow_infinity=False)
ARRAYS = hnp.arrays(np.float64, st.integers(1, 60), elements=FINITE)


@settings(max_examples=400, deadline=None)
@given(ARRAYS)
def test_medians_equal_numpy_bit_for_bit(x: np.ndarray) -> None:
    assert median(x.tolist()) == float(np.median(x))
    assert median_array(x.copy()) == float(np.median(x))


@settings(max_examples=400, deadline=None)
@given(ARRAYS, st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.8, 0.9, 1.0]))
def test_quantile_equals_numpy_bit_for_bit(x: np.ndarray, q: float) -> None:
    assert quantile_linear(x, q) == float(np.quantile(x, q))


@settings(max_examples=300, deadline=None)
@given(hnp.arrays(np.float64, st.integers(2, 120), elements=FINITE))
def test_zscore_equals_numpy_std_arithmetic(x: np.ndarray) -> None:
    s = float(x.std())
    expected = np.zeros_like(x) if s <= 0 else (x - x.mean()) / s
    assert np.array_equal(zscore(x), expected)


def test_medians_of_nothing_are_nan() -> None:
    assert np.isnan(median([]))
    assert np.isnan(median_array(np.zeros(0)))
    assert np.isnan(quantile_linear(np.zeros(0), 0.8))


@pytest.mark.parametrize("chunk", [1, 7, 90, 1000])
def test_sos_filter_equals_scipy_sosfilt_over_chunks(chunk: int) -> None:
    rng = np.random.default_rng(7)
    x = np.cumsum(rng.normal(size=3000)) + 50.0
    sos = signal.butter(2, (5.0, 35.0), btype="bandpass", fs=360.0, output="sos")
    # The reference: scipy's public function, started in the first sample's steady state.
    zi = signal.sosfilt_zi(sos) * x[0]
    ref_parts = []
    for i in range(0, x.size, chunk):
        y, zi = signal.sosfilt(sos, x[i : i + chunk], zi=zi)
        ref_parts.append(y)
    f = SosFilter(sos)
    ours = np.concatenate([f(x[i : i + chunk]) for i in range(0, x.size, chunk)])
    assert np.array_equal(ours, np.concatenate(ref_parts))


def _reference_maxima(x: np.ndarray, a: int, b: int, h: int) -> list[tuple[int, float]]:
    ext = np.concatenate([np.full(h, -np.inf), x, np.full(h, -np.inf)])
    out = []
    for i in range(a, b):
        v = ext[i + h]
        if v > 0 and v > ext[i : i + h].max() and v >= ext[i + h + 1 : i + 2 * h + 1].max():
            out.append((i, float(v)))
    return out


@settings(max_examples=200, deadline=None)
@given(
    hnp.arrays(np.float64, st.integers(5, 300), elements=st.floats(-5, 5, allow_nan=False)),
    st.integers(1, 20),
    st.data(),
)
def test_local_maxima_equal_the_definition(x: np.ndarray, h: int, data: st.DataObject) -> None:
    # Rounded values make plateaus, the case the strict/non-strict sides exist for.
    x = np.round(x, 1)
    buf = SampleBuffer()
    buf.append(x)
    a = data.draw(st.integers(0, x.size - 1))
    b = data.draw(st.integers(a, x.size))
    assert local_maxima(buf, a, b, h) == _reference_maxima(x, a, b, h)


@settings(max_examples=300, deadline=None)
@given(
    hnp.arrays(np.float64, st.integers(0, 600), elements=st.floats(0, 10, allow_nan=False)),
    st.integers(1, 30),
)
def test_peaks_apart_equal_find_peaks(x: np.ndarray, distance: int) -> None:
    x = np.round(x, 1)  # plateaus, and equal peaks competing within the distance
    assert np.array_equal(peaks_apart(x, distance), signal.find_peaks(x, distance=distance)[0])
