"""PulseSensor Playground serial text: visualizer (S/B/Q) and plotter (bpm,ibi,sig) lines."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from vrexposure.plugins import load_module
from vrexposure.sensor_api import HeartRate, PhysioChunk, Quality, RRIntervals, Waveform

SENSORS = Path(__file__).resolve().parent.parent / "sensors"


@pytest.fixture(scope="module")
def ps() -> ModuleType:
    return load_module(SENSORS / "pulsesensor.py", "sensors")


def test_visualizer_lines(ps: ModuleType) -> None:
    dec = ps.PulseSensorDecoder()
    signal = b"".join(f"S{500 + i}\r\n".encode() for i in range(10))
    out = dec.feed(signal[:30] + b"B72\r\nQ833\r\n" + signal[30:])
    assert out[:2] == [HeartRate(72.0), RRIntervals((833.0,))]
    (wave,) = out[2:]
    assert isinstance(wave, Waveform)
    assert wave.values.tolist() == [500.0 + i for i in range(10)]
    assert (wave.kind, wave.rate_hz, wave.unit) == ("ppg", 50.0, "counts")
    assert dec.stats.frames_ok == 12


def test_prefixes_pick_one_sensor(ps: ModuleType) -> None:
    data = b"aB70\naQ850\nbB90\nbQ666\nB71\n"
    assert ps.PulseSensorDecoder().feed(data) == [
        HeartRate(70.0),
        RRIntervals((850.0,)),
        HeartRate(71.0),
    ]
    assert ps.PulseSensorDecoder(sensor_index=1).feed(data) == [
        HeartRate(90.0),
        RRIntervals((666.0,)),
    ]


def test_plotter_lines_mark_beats_by_change(ps: ModuleType) -> None:
    dec = ps.PulseSensorDecoder()
    lines = [ps.plotter_line(0, 0, 500)] + [ps.plotter_line(72, 833, 510)] * 4
    lines += [ps.plotter_line(75, 800, 520)] * 5
    out = dec.feed(b"".join(lines))
    assert [s for s in out if not isinstance(s, Waveform)] == [
        HeartRate(72.0),
        RRIntervals((833.0,)),
        HeartRate(75.0),
        RRIntervals((800.0,)),
    ]
    (wave,) = [s for s in out if isinstance(s, Waveform)]
    assert wave.values.tolist() == [500.0] + [510.0] * 4 + [520.0] * 5


def test_bpm_zero_is_bad(ps: ModuleType) -> None:
    assert ps.PulseSensorDecoder().feed(b"B0\r\n") == [HeartRate(0.0, Quality.BAD)]


@pytest.mark.parametrize(
    "line", [b"S1024\r\n", b"B251\n", b"Q3001\n", b"X12\n", b"S\n", b"1,2\n", b"72,800,2000\n"]
)
def test_malformed_lines(ps: ModuleType, line: bytes) -> None:
    dec = ps.PulseSensorDecoder()
    assert dec.feed(line) == []
    assert dec.stats.frames_malformed == 1 and dec.stats.bytes_discarded == len(line)


def test_garbage_costs_one_line_at_most(ps: ModuleType) -> None:
    dec = ps.PulseSensorDecoder()
    out = dec.feed(b"\xff\x00garbage" + b"B70\r\n" + b"B71\r\n" + b"x" * 50 + b"\nB72\n")
    assert out == [HeartRate(71.0), HeartRate(72.0)]
    assert dec.stats.frames_malformed == 2


@pytest.mark.parametrize("mode", ["visualizer", "plotter"])
def test_round_trip_through_encoder(ps: ModuleType, mode: str) -> None:
    enc = ps.PulseSensorEncoder(mode)
    dec = ps.PulseSensorDecoder()
    signal = (np.arange(100) * 11 % 1024).astype(float)
    rr_sent = [(812.0, 790.0), (801.0,)]
    out = dec.feed(enc.frames_for(PhysioChunk(hr_bpm=74, rr_ms=rr_sent[0], waveform=signal[:50])))
    out += dec.feed(enc.frames_for(PhysioChunk(hr_bpm=75, rr_ms=rr_sent[1], waveform=signal[50:])))
    waves = [s.values for s in out if isinstance(s, Waveform)]
    assert np.concatenate(waves).tolist() == signal.tolist()
    assert [r for s in out if isinstance(s, RRIntervals) for r in s.rr_ms] == [812.0, 790.0, 801.0]
    assert [s.bpm for s in out if isinstance(s, HeartRate)] == [74.0, 74.0, 75.0]


def test_encoder_rejects_unknown_mode(ps: ModuleType) -> None:
    with pytest.raises(ValueError):
        ps.PulseSensorEncoder("csv")


@pytest.mark.parametrize("mode", ["visualizer", "plotter"])
def test_garbled_lines_keep_the_time_base(ps: ModuleType, mode: str) -> None:
    """Issue 14: garbage dropped lines and the 50 Hz decoder shrank time (HR +3 %).

    One line in 20 garbled (bytes overwritten in place): every sent sample still has
    a decoded sample in its place, so 10 s of signal stay 10 s long.
    """
    enc = ps.PulseSensorEncoder(mode)
    signal = 512 + 300 * np.sin(2 * np.pi * 1.2 * np.arange(500) / 50.0)
    wire = bytearray(enc.frames_for(PhysioChunk(hr_bpm=72, rr_ms=(833.0,) * 12, waveform=signal)))
    lines = bytes(wire).split(b"\n")
    garbled = [
        (b"\xff\x13" + line[2:]) if i % 20 == 7 and len(line) > 3 else line
        for i, line in enumerate(lines)
    ]
    dec = ps.PulseSensorDecoder()
    out = dec.feed(b"\n".join(garbled))
    got = np.concatenate([w.values for w in out if isinstance(w, Waveform)])
    assert dec.stats.frames_malformed >= 20 and dec.samples_filled == dec.stats.frames_malformed
    assert abs(got.size - 500) <= 10  # without filling: ~475 samples, a 5 % shorter time base
    # Aligned: only the filled samples differ (a lost sample would shift all later ones).
    n = min(got.size, 500)
    assert int(np.sum(got[:n] != np.rint(signal[:n]))) <= dec.samples_filled
