"""Contec CMS50D+ old firmware (<= 4.5): 5-byte frames with bit-7 sync."""

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


@pytest.fixture(scope="module")
def cms() -> ModuleType:
    return load_module(SENSORS / "contec_cms50d_legacy.py", "sensors")


def block(cms: ModuleType, frame: bytes) -> bytes:
    return frame * cms.BLOCK_FRAMES


def test_serial_settings(cms: ModuleType) -> None:
    s = cms.DRIVER.serial
    assert (s.baud, s.bytesize, s.parity, s.stopbits) == (19200, 8, "O", 1)
    assert cms.DRIVER.start_command == b""


def test_self_vector_pulse_133_spo2_97(cms: ModuleType) -> None:
    frame = bytes.fromhex("8000400561")
    assert cms.pulse_rate_bpm(frame) == 133 and frame[4] == 97
    assert cms.encode_frame(0, 133, 97, signal_strength=0) == frame
    wave, hr, spo2 = cms.Cms50dLegacyDecoder().feed(block(cms, frame))
    assert isinstance(wave, Waveform)
    assert (wave.kind, wave.rate_hz, wave.unit, len(wave.values)) == ("ppg", 60.0, "counts", 15)
    assert hr == HeartRate(133.0) and spo2 == OxygenSaturation(97.0)


def test_self_vector_finger_out(cms: ModuleType) -> None:
    frame = bytes.fromhex("9000000000")
    assert cms.frame_quality(frame) is Quality.BAD
    _, hr, spo2 = cms.Cms50dLegacyDecoder().feed(block(cms, frame))
    assert hr == HeartRate(0.0, Quality.BAD) and spo2 == OxygenSaturation(0.0, Quality.BAD)


@pytest.mark.parametrize(
    ("flags", "quality"),
    [
        ({"searching": True}, Quality.UNCERTAIN),
        ({"probe_error": True}, Quality.BAD),
        ({"finger_out": True}, Quality.BAD),
        ({"beep": True, "spo2_dropping": True}, Quality.GOOD),
    ],
)
def test_flags_to_quality(cms: ModuleType, flags: dict[str, bool], quality: Quality) -> None:
    frame = cms.encode_frame(60, 75, 98, **flags)
    out = cms.Cms50dLegacyDecoder().feed(block(cms, frame))
    assert [s.quality for s in out] == [quality] * 3


def test_sync_inside_a_frame_restarts_there(cms: ModuleType) -> None:
    good = cms.encode_frame(10, 70, 97)
    dec = cms.Cms50dLegacyDecoder()
    garbage = b"\x01\x02\x80\x05"  # stray bytes, then a truncated frame
    out = dec.feed(garbage + block(cms, good))
    assert out[1:] == [HeartRate(70.0), OxygenSaturation(97.0)]
    assert dec.stats.frames_malformed == 1
    assert dec.stats.bytes_discarded == len(garbage)
    assert dec.stats.frames_bad_checksum == 0  # the format has no checksum


def test_round_trip_through_encoder(cms: ModuleType) -> None:
    enc = cms.Cms50dLegacyEncoder()
    dec = cms.Cms50dLegacyDecoder()
    pleth = np.arange(60) * 2 % 128
    data = enc.frames_for(
        PhysioChunk(hr_bpm=150, spo2_pct=95, rr_ms=(400.0, 400.0), waveform=pleth)
    )
    assert sum(bool(data[i] & 0x40) for i in range(0, len(data), 5)) == 2  # beep per beat
    out = dec.feed(data)
    waves = [s.values for s in out if isinstance(s, Waveform)]
    assert np.concatenate(waves).tolist() == pleth.tolist()
    assert {s for s in out if not isinstance(s, Waveform)} == {
        HeartRate(150.0),
        OxygenSaturation(95.0),
    }


@settings(max_examples=200, deadline=None)
@given(pleth=st.integers(0, 127), pr=st.integers(1, 254), spo2=st.integers(1, 100))
def test_any_frame_round_trips(cms: ModuleType, pleth: int, pr: int, spo2: int) -> None:
    out = cms.Cms50dLegacyDecoder().feed(block(cms, cms.encode_frame(pleth, pr, spo2)))
    assert out[0].values.tolist() == [pleth] * 15
    assert out[1:] == [HeartRate(float(pr)), OxygenSaturation(float(spo2))]


def test_heavy_garbage_gives_no_bogus_frames(cms: ModuleType) -> None:
    """Issue 14: under heavy garbage no window was trusted. Random bytes that happen to
    fit the sync bits (1 in 32) used to enter the stream as frames (junk pleth, finger
    out); now an abrupt change needs the next frame to confirm it."""
    rng = np.random.default_rng(14)
    pleth = (64 + 40 * np.sin(2 * np.pi * 1.2 * np.arange(1200) / 60.0)).astype(int)
    wire = bytearray()
    for i, v in enumerate(pleth):
        wire += cms.encode_frame(int(v), 72, 97)
        if i % 10 == 9:
            wire += rng.integers(0, 256, 40, dtype=np.uint8).tobytes()  # 2/3 of the bytes
    dec = cms.DRIVER.decoder()
    out = dec.feed(bytes(wire))
    got = np.concatenate([w.values for w in out if isinstance(w, Waveform)]).astype(int)
    quality = {w.quality for w in out if isinstance(w, Waveform)}
    assert quality == {Quality.GOOD}  # no bogus finger-out / searching flags
    # Every decoded sample is a real one, in order (a subsequence of what was sent).
    k = 0
    for v in got:
        while k < pleth.size and pleth[k] != v:
            k += 1
        assert k < pleth.size, "a value that was never sent"
        k += 1
    assert got.size >= 0.9 * pleth.size // cms.BLOCK_FRAMES * cms.BLOCK_FRAMES
    rates = [s.bpm for s in out if isinstance(s, HeartRate)]
    assert rates and set(rates) == {72.0}
