"""Zephyr BioHarness 3: framing, ECG 10-bit packing, R-to-R sign toggles, summary quality."""

from __future__ import annotations

import datetime
import math
import struct
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from vrexposure.plugins import load_module
from vrexposure.sensor_api import (
    HeartRate,
    PhysioChunk,
    Quality,
    RRIntervals,
    SequenceGap,
    Waveform,
)

SENSORS = Path(__file__).resolve().parent.parent / "sensors"
DAY = datetime.date(2024, 3, 5)


@pytest.fixture(scope="module")
def bh() -> ModuleType:
    return load_module(SENSORS / "zephyr_bioharness.py", "sensors")


def test_command_bytes(bh: ModuleType) -> None:
    # CRC of an empty payload is 0; CRC-8/MAXIM of 0x01 is 0x5E.
    lifesign = bh.LIFESIGN
    assert lifesign == bytes.fromhex("0223000003")
    assert bh.DRIVER.keepalive == (lifesign, 2.0)
    # STX, ID, DLC, payload, CRC, ETX: ECG on, R-to-R on, summary every 1 s.
    assert bh.START_COMMAND[:12] == bytes.fromhex("021601015e03021901015e03")
    assert bh.START_COMMAND[12:17] == bytes.fromhex("02bd020100")
    assert bh.START_COMMAND[17] == bh.crc8(b"\x01\x00")
    assert bh.START_COMMAND[18:] == b"\x03"


def test_ten_bit_packing_is_lsb_first(bh: ModuleType) -> None:
    # 1 | 2<<10 | 3<<20 | 4<<30 = 0x1_0030_0801, little-endian over 5 bytes.
    assert bh.pack_10bit([1, 2, 3, 4]) == bytes.fromhex("0108300001")
    assert bh.unpack_10bit(bytes.fromhex("0108300001"), 4) == [1, 2, 3, 4]
    codes = [(i * 37 + 11) % 1024 for i in range(63)]
    packed = bh.pack_10bit(codes)
    assert len(packed) == 79  # 15 full 5-byte chunks + 3 samples in 4 bytes
    assert bh.unpack_10bit(packed, 63) == codes


def test_ecg_packet_layout_and_values(bh: ModuleType) -> None:
    codes = [512, 552, 472, 0] + [512] * 59
    packet = bh.encode_ecg_packet(7, 45_296_789, DAY, codes)
    assert packet[:3] == bytes((0x02, 0x22, 88))
    payload = packet[3:-2]
    assert payload[0] == 7
    assert struct.unpack_from("<HBBI", payload, 1) == (2024, 3, 5, 45_296_789)
    dec = bh.BioHarnessDecoder()
    (wave,) = dec.feed(packet)
    assert isinstance(wave, Waveform)
    assert (wave.kind, wave.rate_hz, wave.unit) == ("ecg", 250.0, "mV")
    assert len(wave.values) == 63
    assert wave.values[0] == 0.0
    assert wave.values[1] == pytest.approx(1.0)
    assert wave.values[2] == pytest.approx(-1.0)
    assert math.isnan(wave.values[3])
    assert wave.quality is Quality.UNCERTAIN  # one invalid sample
    (all_invalid,) = dec.feed(bh.encode_ecg_packet(8, 45_297_041, DAY, [0] * 63))
    assert all_invalid.quality is Quality.BAD


def test_ecg_gap_from_device_clock(bh: ModuleType) -> None:
    dec = bh.BioHarnessDecoder()
    t0 = 86_400_000 - 252  # the next packets cross midnight
    dec.feed(bh.encode_ecg_packet(0, t0, DAY, [512] * 63))
    nxt = DAY + datetime.timedelta(days=1)
    out = dec.feed(bh.encode_ecg_packet(1, 0, nxt, [512] * 63))
    assert [type(s) for s in out] == [Waveform]
    out = dec.feed(bh.encode_ecg_packet(4, 3 * 252, nxt, [512] * 63))  # two packets lost
    assert out[0] == SequenceGap(missing=2)
    assert isinstance(out[1], Waveform)


def test_rtor_sign_toggles_delimit_beats(bh: ModuleType) -> None:
    dec = bh.BioHarnessDecoder()
    values = [800] * 5 + [-810] * 6 + [790] * 7
    out = dec.feed(bh.encode_rtor_packet(0, 1000, DAY, values))
    # The first value only sets the sign: the beat in progress is not reported.
    assert out == [RRIntervals((810.0, 790.0))]
    out = dec.feed(bh.encode_rtor_packet(1, 2008, DAY, [790] * 3 + [-820] * 15))
    assert out == [RRIntervals((820.0,))]
    assert dec.feed(bh.encode_rtor_packet(2, 3016, DAY, [-820] * 18)) == []


def summary(bh: ModuleType, hr: int | None, conf: int | None, status: int = 0) -> bytes:
    return bh.encode_summary_packet(1, 1000, DAY, hr, conf, status)


@pytest.mark.parametrize(
    ("hr", "conf", "status", "expected"),
    [
        (72, 100, 0, HeartRate(72.0, Quality.GOOD)),
        (72, 80, 0, HeartRate(72.0, Quality.GOOD)),
        (72, 79, 0, HeartRate(72.0, Quality.UNCERTAIN)),
        (72, 0xFF, 0, HeartRate(72.0, Quality.UNCERTAIN)),
        (72, 39, 0, HeartRate(72.0, Quality.BAD)),
        (72, 100, 1 << 4, HeartRate(72.0, Quality.BAD)),  # HR unreliable
        (72, 100, 1 << 3, HeartRate(72.0, Quality.BAD)),  # not fitted to garment
        (72, 100, 0b11, HeartRate(72.0, Quality.BAD)),  # worn confidence 0
        (72, 100, 0b01, HeartRate(72.0, Quality.UNCERTAIN)),
        (None, 100, 0, HeartRate(0.0, Quality.BAD)),  # 0xFFFF
    ],
)
def test_summary_heart_rate_quality(
    bh: ModuleType, hr: int | None, conf: int | None, status: int, expected: HeartRate
) -> None:
    packet = summary(bh, hr, conf, status)
    assert len(packet) == 71 + 5
    assert bh.BioHarnessDecoder().feed(packet) == [expected]


def test_summary_version_3_offsets(bh: ModuleType) -> None:
    body = bytearray(71)
    body[9] = 3
    struct.pack_into("<H", body, 10, 64)
    body[27] = 90
    struct.pack_into("<H", body, 32, 1 << 4)
    dec = bh.BioHarnessDecoder()
    assert dec.feed(bh.encode_message(0x2B, bytes(body))) == [HeartRate(64.0, Quality.BAD)]
    body[9] = 9  # unknown version
    assert dec.feed(bh.encode_message(0x2B, bytes(body))) == []
    assert dec.stats.frames_malformed == 1


def test_other_messages_and_ack_replies_are_skipped(bh: ModuleType) -> None:
    dec = bh.BioHarnessDecoder()
    ack = bh.encode_message(0x16, b"", fin=0x06)
    nak = bh.encode_message(0x19, b"", fin=0x15)
    general = bh.encode_message(0x20, bytes(53))
    out = dec.feed(ack + nak + general + bh.LIFESIGN + summary(bh, 70, 100))
    assert out == [HeartRate(70.0)]
    assert dec.stats.frames_ok == 5
    # A known ID with the wrong payload length is malformed, not decoded.
    assert dec.feed(bh.encode_message(0x22, bytes(20))) == []
    assert dec.stats.frames_malformed == 1


def test_bad_crc_wrong_fin_and_garbage(bh: ModuleType) -> None:
    good = summary(bh, 70, 100)
    bad_crc = bytearray(good)
    bad_crc[-2] ^= 0xFF
    bad_fin = bytearray(good)
    bad_fin[-1] = 0x04
    garbage = b"\xaa\x02\xff\x10"  # STX with DLC 255 > 128: not a frame start
    dec = bh.BioHarnessDecoder()
    out = dec.feed(garbage + bytes(bad_crc) + bytes(bad_fin) + good)
    assert out == [HeartRate(70.0)]
    assert dec.stats.frames_bad_checksum >= 1
    assert dec.stats.frames_malformed >= 1
    assert dec.stats.bytes_discarded == len(garbage) + 2 * len(good)


def test_round_trip_through_encoder(bh: ModuleType) -> None:
    enc = bh.BioHarnessEncoder()
    dec = bh.BioHarnessDecoder()
    rng = np.random.default_rng(3)
    mv = np.round(rng.uniform(-3, 3, 250 * 3) / 0.025) * 0.025
    rr_sent = [(801.0, 799.0), (812.0,), (788.0, 790.0, 805.0)]
    samples = []
    for i, rr in enumerate(rr_sent):
        chunk = PhysioChunk(hr_bpm=75 + i, rr_ms=rr, waveform=mv[i * 250 : (i + 1) * 250])
        samples += dec.feed(enc.frames_for(chunk))
    ecg = np.concatenate([s.values for s in samples if isinstance(s, Waveform)])
    assert len(ecg) == 63 * (750 // 63)  # the remainder waits for the next chunk
    np.testing.assert_allclose(ecg, mv[: len(ecg)], atol=1e-5)
    rr_got = [r for s in samples if isinstance(s, RRIntervals) for r in s.rr_ms]
    assert rr_got == [r for group in rr_sent for r in group]
    assert [s for s in samples if isinstance(s, HeartRate)] == [
        HeartRate(75.0),
        HeartRate(76.0),
        HeartRate(77.0),
    ]
    assert not any(isinstance(s, SequenceGap) for s in samples)
    out = dec.feed(enc.frames_for(PhysioChunk(hr_bpm=70, quality=Quality.UNCERTAIN)))
    assert out[-1] == HeartRate(70.0, Quality.UNCERTAIN)
    out = dec.feed(enc.frames_for(PhysioChunk(hr_bpm=None)))
    assert out[-1] == HeartRate(0.0, Quality.BAD)


def test_many_beats_span_several_rtor_packets(bh: ModuleType) -> None:
    enc = bh.BioHarnessEncoder()
    dec = bh.BioHarnessDecoder()
    rr = tuple(400.0 + i for i in range(40))
    out = dec.feed(enc.rtor_packets(rr))
    assert [r for s in out if isinstance(s, RRIntervals) for r in s.rr_ms] == list(rr)
