"""Nonin Data Format #2: public frame vectors, packet alignment, HR bits, flags, resync."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vrexposure.plugins import load_module
from vrexposure.sensor_api import (
    HeartRate,
    OxygenSaturation,
    PhysioChunk,
    Quality,
    SequenceGap,
    Waveform,
)

from .conftest import SHARED_DATA, needs_shared_data

SENSORS = Path(__file__).resolve().parent.parent / "sensors"

#: [vec] frames from pufferfish-software TestFrameReceiver.cpp.
VEC_FRAMES = ["0181010083", "01800148ca", "01800161e3", "01800130b2"]
VEC_NEXT_SYNC = "0181020084"
VEC_INVALID = "017f020082"  # STATUS bit 7 clear


@pytest.fixture(scope="module")
def df2() -> ModuleType:
    return load_module(SENSORS / "nonin_df2.py", "sensors")


def test_public_vectors_parse(df2: ModuleType) -> None:
    parsed = [df2.parse_frame(bytes.fromhex(f)) for f in [*VEC_FRAMES, VEC_NEXT_SYNC]]
    assert parsed == [
        (0x81, 1, 0x00),  # SYNC, HR MSB 0
        (0x80, 1, 0x48),  # HR LSB 72
        (0x80, 1, 0x61),  # SpO2 97
        (0x80, 1, 0x30),  # firmware revision
        (0x81, 2, 0x00),  # next packet's SYNC frame
    ]
    assert df2.parse_frame(bytes.fromhex(VEC_INVALID)) is None
    for f in [*VEC_FRAMES, VEC_NEXT_SYNC]:
        raw = bytes.fromhex(f)
        assert df2.encode_frame(raw[1], raw[2], raw[3]) == raw


def test_public_vectors_complete_a_packet(df2: ModuleType) -> None:
    # The vector frames are frames 1-4 of a packet; frames 5-25 are [self]-made.
    filler = b"".join(df2.encode_frame(0x80, 1, 0) for _ in range(21))
    stream = b"".join(bytes.fromhex(f) for f in VEC_FRAMES) + filler
    dec = df2.NoninDf2Decoder()
    wave, hr, spo2 = dec.feed(stream)
    assert isinstance(wave, Waveform)
    assert (wave.kind, wave.rate_hz, wave.unit, len(wave.values)) == ("ppg", 75.0, "counts", 25)
    assert hr == HeartRate(72.0, Quality.GOOD)
    assert spo2 == OxygenSaturation(97.0, Quality.GOOD)
    assert dec.stats.frames_ok == 25


def test_short_packet_gives_pleth_and_a_gap(df2: ModuleType) -> None:
    stream = b"".join(bytes.fromhex(f) for f in [*VEC_FRAMES, VEC_NEXT_SYNC])
    out = df2.NoninDf2Decoder().feed(stream)
    assert len(out) == 2
    assert isinstance(out[0], Waveform) and out[0].values.tolist() == [1, 1, 1, 1]
    assert out[1] == SequenceGap(missing=21)


def test_invalid_frame_is_skipped(df2: ModuleType) -> None:
    dec = df2.NoninDf2Decoder()
    stream = bytes.fromhex(VEC_INVALID) + b"".join(bytes.fromhex(f) for f in VEC_FRAMES)
    dec.feed(stream)
    assert dec.stats.frames_ok == 4
    assert dec.stats.bytes_discarded == 5


def test_nine_bit_heart_rate(df2: ModuleType) -> None:
    packet = df2.encode_packet([100] * 25, hr_bpm=300, spo2_pct=88)
    assert packet[3] == 0x02 and packet[8] == 300 & 0x7F  # MSB bits 1-0, LSB bits 6-0
    out = df2.NoninDf2Decoder().feed(packet)
    assert out[1:] == [HeartRate(300.0), OxygenSaturation(88.0)]


def test_missing_values(df2: ModuleType) -> None:
    out = df2.NoninDf2Decoder().feed(df2.encode_packet([0] * 25, hr_bpm=None, spo2_pct=None))
    assert out[1:] == [HeartRate(0.0, Quality.BAD), OxygenSaturation(0.0, Quality.BAD)]


@pytest.mark.parametrize(
    ("status", "quality"),
    [
        (0x80 | 0x02, Quality.GOOD),  # green perfusion
        (0x80 | 0x06, Quality.GOOD),  # yellow perfusion
        (0x80 | 0x04, Quality.UNCERTAIN),  # red (low) perfusion
        (0x80 | 0x20, Quality.UNCERTAIN),  # artifact
        (0x80 | 0x10, Quality.BAD),  # out of track
        (0x80 | 0x40, Quality.BAD),  # sensor disconnect
        (0x80 | 0x08, Quality.BAD),  # sensor alarm
    ],
)
def test_status_flags_to_quality(df2: ModuleType, status: int, quality: Quality) -> None:
    out = df2.NoninDf2Decoder().feed(
        df2.encode_packet([50] * 25, hr_bpm=60, spo2_pct=95, status=status)
    )
    assert [s.quality for s in out] == [quality] * 3


def test_one_flagged_frame_flags_the_packet(df2: ModuleType) -> None:
    packet = bytearray(df2.encode_packet([50] * 25, hr_bpm=60, spo2_pct=95))
    packet[10 * 5 : 11 * 5] = df2.encode_frame(0x80 | 0x20, 50, 0)  # artifact in frame 11
    out = df2.NoninDf2Decoder().feed(bytes(packet))
    assert out[1] == HeartRate(60.0, Quality.UNCERTAIN)


def test_bad_checksum_drops_index_trust_until_next_sync(df2: ModuleType) -> None:
    first = bytearray(df2.encode_packet(list(range(25)), hr_bpm=60, spo2_pct=95))
    first[2 * 5 + 4] ^= 0xFF  # break frame 3's checksum
    second = df2.encode_packet([7] * 25, hr_bpm=61, spo2_pct=96)
    dec = df2.NoninDf2Decoder()
    out = dec.feed(bytes(first) + second)
    assert dec.stats.frames_bad_checksum == 1
    assert dec.stats.bytes_discarded == 5
    # The damaged packet gives pleth only (and its missing frame shows at SYNC).
    assert isinstance(out[0], Waveform) and len(out[0].values) == 24
    assert out[1] == SequenceGap(missing=1)
    assert isinstance(out[2], Waveform)
    assert out[3:] == [HeartRate(61.0), OxygenSaturation(96.0)]


def test_resync_after_garbage(df2: ModuleType) -> None:
    garbage = b"\x01\x02\x03\x80\x01\xff\x00\x7e"
    packet = df2.encode_packet([9] * 25, hr_bpm=70, spo2_pct=98)
    dec = df2.NoninDf2Decoder()
    out = dec.feed(garbage + packet)
    assert out[1:] == [HeartRate(70.0), OxygenSaturation(98.0)]
    assert dec.stats.bytes_discarded == len(garbage)


def test_round_trip_through_encoder(df2: ModuleType) -> None:
    enc = df2.NoninDf2Encoder()
    dec = df2.NoninDf2Decoder()
    pleth = (np.arange(200) * 7 % 256).astype(float)
    out = dec.feed(enc.frames_for(PhysioChunk(hr_bpm=66, spo2_pct=99, waveform=pleth)))
    waves = [s for s in out if isinstance(s, Waveform)]
    assert np.concatenate([w.values for w in waves]).tolist() == pleth[: 200 // 25 * 25].tolist()
    assert {s for s in out if isinstance(s, HeartRate)} == {HeartRate(66.0)}
    assert {s for s in out if isinstance(s, OxygenSaturation)} == {OxygenSaturation(99.0)}
    out = dec.feed(enc.frames_for(PhysioChunk(hr_bpm=66, waveform=[1.0] * 25)))
    assert out[-1] == OxygenSaturation(0.0, Quality.BAD)  # the remainder + 25 = one packet
    out = dec.feed(
        enc.frames_for(PhysioChunk(hr_bpm=66, spo2_pct=90, quality=Quality.BAD, waveform=[1] * 25))
    )
    assert out[1] == HeartRate(66.0, Quality.BAD)


@settings(max_examples=200, deadline=None)
@given(
    pleth=st.lists(st.integers(0, 255), min_size=25, max_size=25),
    hr=st.integers(0, 510),
    spo2=st.integers(0, 100),
)
def test_any_packet_round_trips(df2: ModuleType, pleth: list[int], hr: int, spo2: int) -> None:
    out = df2.NoninDf2Decoder().feed(df2.encode_packet(pleth, hr_bpm=hr, spo2_pct=spo2))
    assert out[0].values.tolist() == pleth
    assert out[1:] == [HeartRate(float(hr)), OxygenSaturation(float(spo2))]


SYSTOLE_PPG = SHARED_DATA / "nonin_systole" / "ppg.npy"


@needs_shared_data("nonin_systole", "ppg.npy")
def test_real_nonin_pleth_round_trips(df2: ModuleType) -> None:
    """Pleth recorded from a Nonin 3012LP Xpod (0-255 at 75 Hz, shipped in systole)."""
    ppg = np.load(SYSTOLE_PPG).astype(float)
    enc = df2.NoninDf2Encoder()
    dec = df2.NoninDf2Decoder()
    out = []
    for start in range(0, len(ppg), 75):  # one chunk per second, as a simulator would
        chunk = PhysioChunk(hr_bpm=62, spo2_pct=98, waveform=ppg[start : start + 75])
        out += dec.feed(enc.frames_for(chunk))
    got = np.concatenate([s.values for s in out if isinstance(s, Waveform)])
    n = len(ppg) // 25 * 25
    assert got.tolist() == ppg[:n].tolist()
    assert dec.stats.frames_ok == n and dec.stats.bytes_discarded == 0
