"""BITalino frames: sizes, CRC-4, the [self] vector, ECG transfer function, sequence gaps."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vrexposure.plugins import load_module
from vrexposure.sensor_api import PhysioChunk, Quality, SequenceGap, Waveform

from .conftest import SHARED_DATA, needs_shared_data

SENSORS = Path(__file__).resolve().parent.parent / "sensors"
VEC = bytes.fromhex("903955")  # [self]: seq 5, O1 = O2 = 1, slot-1 value 612


@pytest.fixture(scope="module")
def bit() -> ModuleType:
    return load_module(SENSORS / "bitalino.py", "sensors")


def stream(bit: ModuleType, values: list[int], first_seq: int = 0, n: int = 1) -> bytes:
    return b"".join(
        bit.encode_frame(first_seq + i, [v] + [512] * (n - 1)) for i, v in enumerate(values)
    )


def test_frame_sizes(bit: ModuleType) -> None:
    assert [bit.frame_size(n) for n in range(1, 7)] == [3, 4, 6, 7, 8, 8]
    with pytest.raises(ValueError):
        bit.frame_size(0)


def test_self_vector(bit: ModuleType) -> None:
    frame = bit.parse_frame(VEC, 1)
    assert (frame.seq, frame.digital, frame.analog) == (5, (0, 0, 1, 1), (612,))
    assert bit.crc4(VEC) == 5 == VEC[-1] & 0x0F
    assert bit.encode_frame(5, [612], (0, 0, 1, 1)) == VEC


def test_crc_detects_every_single_bit_flip(bit: ModuleType) -> None:
    for i in range(len(VEC) * 8):
        flipped = bytearray(VEC)
        flipped[i // 8] ^= 1 << (i % 8)
        assert bit.crc4(bytes(flipped)) != flipped[-1] & 0x0F


def test_commands(bit: ModuleType) -> None:
    assert bit.rate_command(1000) == 0xC3 and bit.rate_command(1) == 0x03
    assert bit.start_command([2]) == 0x09
    assert bit.start_command([1, 2, 3, 4, 5, 6]) == 0xFD
    assert bit.DRIVER.start_command == b"\xc3\x09"  # 1000 Hz, then start A2
    assert bit.DRIVER.extras["stop_command"] == b"\x00"


def test_ecg_transfer_function(bit: ModuleType) -> None:
    # ECG(V) = (ADC/2^n - 1/2) * 3.3 / 1100: +-1.5 mV full range.
    assert bit.adc_to_mv(512, 10) == 0.0
    assert bit.adc_to_mv(0, 10) == pytest.approx(-1.5)
    assert bit.adc_to_mv(1024, 10) == pytest.approx(1.5)
    assert bit.adc_to_mv(32, 6) == 0.0
    assert bit.mv_to_adc(0.0, 10) == 512
    assert bit.mv_to_adc(5.0, 10) == 1023 and bit.mv_to_adc(-5.0, 10) == 0


@pytest.mark.parametrize("n", range(1, 7))
def test_all_channel_counts_round_trip(bit: ModuleType, n: int) -> None:
    values = [(97 * i + 13) % (1 << bit.SLOT_BITS[i]) for i in range(n)]
    frame = bit.encode_frame(11, values, (1, 1, 0, 1))
    assert len(frame) == bit.frame_size(n)
    parsed = bit.parse_frame(frame, n)
    assert (parsed.seq, parsed.digital, parsed.analog) == (11, (1, 1, 0, 1), tuple(values))


def test_decoder_blocks_and_lock(bit: ModuleType) -> None:
    dec = bit.BitalinoDecoder(channels=(2,), ecg_channel=2, rate_hz=100)
    out = dec.feed(stream(bit, [512] * 25))
    assert [len(w.values) for w in out] == [10, 10]
    w = out[0]
    assert isinstance(w, Waveform)
    assert (w.kind, w.rate_hz, w.unit, w.quality) == ("ecg", 100.0, "mV", Quality.GOOD)
    assert dec.stats.frames_ok == 25


def test_ecg_in_a_six_bit_slot(bit: ModuleType) -> None:
    dec = bit.BitalinoDecoder(channels=(1, 2, 3, 4, 5, 6), ecg_channel=6, rate_hz=10)
    frames = b"".join(bit.encode_frame(i, [512] * 5 + [48]) for i in range(3))
    out = dec.feed(frames)  # 10 Hz: one-sample blocks
    assert [v for w in out for v in w.values.tolist()] == [0.75] * 3


def test_sequence_gap(bit: ModuleType) -> None:
    dec = bit.BitalinoDecoder(rate_hz=100)
    data = stream(bit, [512] * 4, first_seq=0) + stream(bit, [600] * 3, first_seq=7)
    out = dec.feed(data)
    assert isinstance(out[0], Waveform) and len(out[0].values) == 4
    assert out[1] == SequenceGap(missing=3)
    assert dec.stats.frames_ok == 7


def test_sequence_wraps_without_gap(bit: ModuleType) -> None:
    dec = bit.BitalinoDecoder(rate_hz=1)
    out = dec.feed(stream(bit, [512] * 40, first_seq=10))
    assert len(out) == 40 and not any(isinstance(s, SequenceGap) for s in out)


def test_garbage_resync_and_bad_checksum(bit: ModuleType) -> None:
    dec = bit.BitalinoDecoder(rate_hz=1)
    garbage = bytes.fromhex("00ff13")
    good = stream(bit, [512] * 6)
    corrupt = bytearray(stream(bit, [300], first_seq=6))
    corrupt[0] ^= 0x40
    tail = stream(bit, [512] * 4, first_seq=7)
    out = dec.feed(garbage + good + bytes(corrupt) + tail)
    assert dec.stats.frames_bad_checksum == 1
    assert dec.stats.frames_ok == 10
    assert dec.stats.bytes_discarded == len(garbage) + len(corrupt)
    assert sum(isinstance(s, Waveform) for s in out) == 10
    assert SequenceGap(missing=1) in out


def test_rail_values_mark_block_uncertain(bit: ModuleType) -> None:
    dec = bit.BitalinoDecoder(rate_hz=100)
    (w,) = dec.feed(stream(bit, [512, 1023] + [512] * 8))
    assert w.quality is Quality.UNCERTAIN


def test_bad_configuration_is_rejected(bit: ModuleType) -> None:
    with pytest.raises(ValueError):
        bit.BitalinoDecoder(channels=(1,), ecg_channel=2)
    with pytest.raises(ValueError):
        bit.make_driver(rate_hz=500)


def test_make_driver(bit: ModuleType) -> None:
    spec = bit.make_driver(channels=(1, 3), ecg_channel=3, rate_hz=100)
    assert spec.start_command == bytes((0x83, 0x01 | 0b101 << 2))
    enc = spec.encoder()
    data = enc.frames_for(PhysioChunk(waveform=[0.0] * 10))
    assert len(data) == 10 * 4
    (w,) = spec.decoder().feed(data)
    assert w.values.tolist() == [0.0] * 10


def test_round_trip_through_encoder(bit: ModuleType) -> None:
    enc = bit.DRIVER.encoder()
    dec = bit.DRIVER.decoder()
    rng = np.random.default_rng(1)
    adc = rng.integers(1, 1023, 2000)
    mv = (adc / 1024 - 0.5) * 3.0
    out = dec.feed(enc.frames_for(PhysioChunk(waveform=mv[:1000])))
    out += dec.feed(enc.frames_for(PhysioChunk(waveform=mv[1000:])))
    got = np.concatenate([w.values for w in out if isinstance(w, Waveform)])
    np.testing.assert_allclose(got, mv.astype(np.float32), atol=1e-6)


@settings(max_examples=200, deadline=None)
@given(seq=st.integers(0, 15), values=st.lists(st.integers(0, 1023), min_size=4, max_size=4))
def test_any_four_channel_frame_round_trips(bit: ModuleType, seq: int, values: list[int]) -> None:
    frame = bit.encode_frame(seq, values)
    assert bit.crc4(frame) == frame[-1] & 0x0F
    assert bit.parse_frame(frame, 4).analog == tuple(values)


SAMPLE_ECG = SHARED_DATA / "bitalino_pyhrv" / "SampleECG.txt"


@needs_shared_data("bitalino_pyhrv", "SampleECG.txt")
def test_real_recording_through_the_wire_format(bit: ModuleType) -> None:
    """A real BITalino recording (OpenSignals text: nSeq, I1, I2, O1, O2, A2 = ECG,
    1000 Hz, from the pyhrv wheel) re-framed byte by byte and decoded back."""
    rows = np.loadtxt(SAMPLE_ECG, dtype=np.int64, comments="#")
    assert rows.shape[1] == 6 and len(rows) > 20_000
    data = b"".join(
        bit.encode_frame(int(r[0]), [int(r[5])], tuple(int(v) for v in r[1:5])) for r in rows
    )
    dec = bit.DRIVER.decoder()
    out = dec.feed(data)
    assert dec.stats.frames_ok == len(rows)
    assert dec.stats.bytes_discarded == dec.stats.frames_bad_checksum == 0
    got = np.concatenate([w.values for w in out if isinstance(w, Waveform)])
    expected = ((rows[:, 5] / 1024 - 0.5) * 3.0).astype(np.float32)
    assert len(rows) - len(got) < 100  # the last partial block is still pending
    np.testing.assert_allclose(got, expected[: len(got)], atol=1e-6)
    gaps = [s.missing for s in out if isinstance(s, SequenceGap)]
    assert gaps == [int(g) for g in (np.diff(rows[:, 0]) - 1) % 16 if g]
