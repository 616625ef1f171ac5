"""Contec CMS50D+ firmware 4.6+: 9-byte frames, start command, keep-alive."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vrexposure.plugins import load_module
from vrexposure.sensor_api import HeartRate, OxygenSaturation, PhysioChunk, Quality, Waveform

SENSORS = Path(__file__).resolve().parent.parent / "sensors"
#: A real frame quoted in MarkMLl/Contec_cms50dplus consoleapp.pas ("Nominal operation").
#: Its comment reads the pulse as 53, but 0xbd & 0x7f is 61; we follow the bytes.
REAL_FRAME = bytes.fromhex("01e085d59abde3ffff")


@pytest.fixture(scope="module")
def cms() -> ModuleType:
    return load_module(SENSORS / "contec_cms50d.py", "sensors")


def test_start_command_and_keepalive(cms: ModuleType) -> None:
    assert cms.DRIVER.start_command == bytes.fromhex("7d81a1808080808080")
    assert cms.DRIVER.keepalive == (cms.DRIVER.start_command, 20.0)
    s = cms.DRIVER.serial
    assert (s.baud, s.bytesize, s.parity, s.stopbits) == (115200, 8, "N", 1)


def test_real_frame(cms: ModuleType) -> None:
    assert cms.is_frame(REAL_FRAME)
    wave, hr, spo2 = cms.Cms50dDecoder().feed(REAL_FRAME * cms.BLOCK_FRAMES)
    assert isinstance(wave, Waveform)
    assert wave.values.tolist() == [85.0] * 15
    assert (wave.kind, wave.rate_hz, wave.quality) == ("ppg", 60.0, Quality.GOOD)
    assert hr == HeartRate(61.0) and spo2 == OxygenSaturation(99.0)
    # The encoder writes the same bytes for the same values.
    assert cms.encode_frame(85, 61, 99, pleth2=26, signal_strength=5) == REAL_FRAME


@pytest.mark.parametrize(
    ("b1", "quality"), [(0xE0, Quality.GOOD), (0xE1, Quality.BAD), (0xE2, Quality.UNCERTAIN)]
)
def test_status_bits(cms: ModuleType, b1: int, quality: Quality) -> None:
    frame = bytearray(REAL_FRAME)
    frame[1] = b1
    out = cms.Cms50dDecoder().feed(bytes(frame) * 15)
    assert [s.quality for s in out] == [quality] * 3


def test_resync_after_garbage_and_broken_frames(cms: ModuleType) -> None:
    broken = bytearray(REAL_FRAME)
    broken[8] = 0x00  # trailer damaged
    garbage = b"\x7d\x81\x01\x02"
    dec = cms.Cms50dDecoder()
    out = dec.feed(garbage + bytes(broken) + REAL_FRAME * 15)
    assert out[1:] == [HeartRate(61.0), OxygenSaturation(99.0)]
    assert dec.stats.bytes_discarded == len(garbage) + len(broken)
    assert dec.stats.frames_malformed == 1
    assert dec.stats.frames_ok == 15


def test_missing_values(cms: ModuleType) -> None:
    frame = cms.encode_frame(0, 0, 0, finger_out=True)
    _, hr, spo2 = cms.Cms50dDecoder().feed(frame * 15)
    assert hr == HeartRate(0.0, Quality.BAD) and spo2 == OxygenSaturation(0.0, Quality.BAD)


def test_round_trip_through_encoder(cms: ModuleType) -> None:
    enc = cms.Cms50dEncoder()
    dec = cms.Cms50dDecoder()
    pleth = np.arange(60) * 3 % 128
    data = enc.frames_for(PhysioChunk(hr_bpm=88, spo2_pct=96, rr_ms=(680.0,), waveform=pleth))
    assert sum(bool(data[i + 2] & 0x40) for i in range(0, len(data), 9)) == 1
    out = dec.feed(data)
    waves = [s.values for s in out if isinstance(s, Waveform)]
    assert np.concatenate(waves).tolist() == pleth.tolist()
    assert {s for s in out if not isinstance(s, Waveform)} == {
        HeartRate(88.0),
        OxygenSaturation(96.0),
    }
    out = dec.feed(
        enc.frames_for(PhysioChunk(hr_bpm=88, quality=Quality.UNCERTAIN, waveform=pleth))
    )
    assert out[1] == HeartRate(88.0, Quality.UNCERTAIN)


@settings(max_examples=200, deadline=None)
@given(pleth=st.integers(0, 127), pr=st.integers(1, 126), spo2=st.integers(1, 100))
def test_any_frame_round_trips(cms: ModuleType, pleth: int, pr: int, spo2: int) -> None:
    out = cms.Cms50dDecoder().feed(cms.encode_frame(pleth, pr, spo2) * 15)
    assert out[0].values.tolist() == [pleth] * 15
    assert out[1:] == [HeartRate(float(pr)), OxygenSaturation(float(spo2))]
