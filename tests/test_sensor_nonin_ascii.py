"""Nonin handheld ASCII real-time lines ("SPO2=.. HR=..")."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vrexposure.plugins import load_module
from vrexposure.sensor_api import HeartRate, OxygenSaturation, PhysioChunk, Quality

SENSORS = Path(__file__).resolve().parent.parent / "sensors"


@pytest.fixture(scope="module")
def nonin() -> ModuleType:
    return load_module(SENSORS / "nonin_ascii.py", "sensors")


@pytest.mark.parametrize(
    ("line", "spo2", "hr"),
    [
        (b"SPO2=097 HR=072\r\n", OxygenSaturation(97.0), HeartRate(72.0)),
        (b"SPO2=100 HR=180 F\r\n", OxygenSaturation(100.0), HeartRate(180.0)),
        (b"SPO2=095 HR=061*\r\n", OxygenSaturation(95.0), HeartRate(61.0)),
        (b"SPO2=095 HR=061 F*\r\n", OxygenSaturation(95.0), HeartRate(61.0)),
        (b"12:34:56 SPO2=093 HR=088\r\n", OxygenSaturation(93.0), HeartRate(88.0)),
        (b"SPO2= 97 HR= 72\n", OxygenSaturation(97.0), HeartRate(72.0)),
        (
            b"SPO2=--- HR=---\r\n",
            OxygenSaturation(0.0, Quality.BAD),
            HeartRate(0.0, Quality.BAD),
        ),
        (b"SPO2=--- HR=070\r\n", OxygenSaturation(0.0, Quality.BAD), HeartRate(70.0)),
    ],
)
def test_lines(nonin: ModuleType, line: bytes, spo2: OxygenSaturation, hr: HeartRate) -> None:
    dec = nonin.NoninAsciiDecoder()
    assert dec.feed(line) == [spo2, hr]
    assert dec.stats.frames_ok == 1 and dec.stats.bytes_discarded == 0


def test_encoder_lines(nonin: ModuleType) -> None:
    # [self] format: zero-padded three digits (padding on real devices unverified).
    assert nonin.encode_line(97, 72) == b"SPO2=097 HR=072\r\n"
    assert nonin.encode_line(None, None) == b"SPO2=--- HR=---\r\n"
    assert nonin.encode_line(99, 101, fast=True, event=True) == b"SPO2=099 HR=101 F*\r\n"
    assert nonin.encode_line(99, 60, time_hms="01:02:03") == b"01:02:03 SPO2=099 HR=060\r\n"


def test_malformed_and_out_of_range_lines(nonin: ModuleType) -> None:
    dec = nonin.NoninAsciiDecoder()
    bad = [b"SPO2=101 HR=070\r\n", b"SPO2=097 HR=400\r\n", b"HELLO\r\n", b"SPO2=97\r\n"]
    assert dec.feed(b"".join(bad)) == []
    assert dec.stats.frames_malformed == 4
    assert dec.stats.bytes_discarded == sum(map(len, bad))
    assert dec.feed(b"\r\n") == []  # blank lines are not malformed
    assert dec.stats.frames_malformed == 4


def test_garbage_before_a_record_on_the_same_line(nonin: ModuleType) -> None:
    dec = nonin.NoninAsciiDecoder()
    assert dec.feed(b"\x00\xff#SPO2=096 HR=070\r\n") == [OxygenSaturation(96.0), HeartRate(70.0)]
    assert dec.stats.bytes_discarded == 3


def test_over_long_line_is_dropped_once(nonin: ModuleType) -> None:
    long_line = b"x" * 100 + b"SPO2=096 HR=070\r\n"
    whole = nonin.NoninAsciiDecoder()
    assert whole.feed(long_line + b"SPO2=097 HR=071\r\n") == [
        OxygenSaturation(97.0),
        HeartRate(71.0),
    ]
    single = nonin.NoninAsciiDecoder()
    out = []
    for b in long_line + b"SPO2=097 HR=071\r\n":
        out += single.feed(bytes((b,)))
    assert out == [OxygenSaturation(97.0), HeartRate(71.0)]
    assert single.stats == whole.stats
    assert whole.stats.frames_malformed == 1 and whole.stats.bytes_discarded == len(long_line)


def test_round_trip_through_encoder(nonin: ModuleType) -> None:
    enc = nonin.NoninAsciiEncoder()
    dec = nonin.NoninAsciiDecoder()
    assert dec.feed(enc.frames_for(PhysioChunk(hr_bpm=72.4, spo2_pct=96.6))) == [
        OxygenSaturation(97.0),
        HeartRate(72.0),
    ]
    assert dec.feed(enc.frames_for(PhysioChunk(hr_bpm=72, spo2_pct=97, quality=Quality.BAD))) == [
        OxygenSaturation(0.0, Quality.BAD),
        HeartRate(0.0, Quality.BAD),
    ]


@settings(max_examples=200, deadline=None)
@given(spo2=st.integers(0, 100) | st.none(), hr=st.integers(0, 321) | st.none())
def test_any_line_round_trips(nonin: ModuleType, spo2: int | None, hr: int | None) -> None:
    out = nonin.NoninAsciiDecoder().feed(nonin.encode_line(spo2, hr))
    assert out == [
        OxygenSaturation(0.0, Quality.BAD) if spo2 is None else OxygenSaturation(float(spo2)),
        HeartRate(0.0, Quality.BAD) if hr is None else HeartRate(float(hr)),
    ]
