"""Zephyr HxM BT packet 0x26: CRC, layout, RR recovery across wraps and lost packets."""

from __future__ import annotations

import struct
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vrexposure.plugins import load_module
from vrexposure.sensor_api import HeartRate, PhysioChunk, Quality, RRIntervals, SequenceGap

SENSORS = Path(__file__).resolve().parent.parent / "sensors"


@pytest.fixture(scope="module")
def hxm() -> ModuleType:
    return load_module(SENSORS / "zephyr_hxm.py", "sensors")


def stamps_from(newest_ms: int, rr_ms: list[int]) -> list[int]:
    """15 stamps newest first, going back by the given RRs (newest RR first)."""
    out = [newest_ms]
    for rr in rr_ms:
        out.append(out[-1] - rr)
    return [t % 65536 for t in out[:15]]


def test_crc8_is_maxim_dow(hxm: ModuleType) -> None:
    # Reference: the doc's loop is CRC-8/MAXIM-DOW, check("123456789") = 0xA1.
    assert hxm.crc8(b"123456789") == 0xA1
    assert hxm.crc8(b"") == 0
    assert hxm.crc8(b"\x01") == 0x5E


def test_self_packet_layout_matches_the_doc_table(hxm: ModuleType) -> None:
    """[self] vector: built from the spec (no public capture exists)."""
    stamps = stamps_from(30_000, [800] * 14)
    packet = hxm.encode_packet(72, 17, stamps, battery_pct=93, firmware_id=0x001A)
    assert len(packet) == 60
    assert packet[:5] == bytes.fromhex("0226371a00")  # STX, ID, DLC, firmware id 26 LE
    assert packet[11] == 93 and packet[12] == 72 and packet[13] == 17
    assert struct.unpack_from("<15H", packet, 14) == tuple(stamps)
    assert packet[14:16] == (30_000).to_bytes(2, "little")
    assert packet[58] == hxm.crc8(packet[3:58])
    assert packet[59] == 0x03


def test_first_packet_gives_heart_rate_only(hxm: ModuleType) -> None:
    dec = hxm.HxmDecoder()
    out = dec.feed(hxm.encode_packet(72, 17, stamps_from(30_000, [800] * 14)))
    assert out == [HeartRate(72.0, Quality.GOOD)]
    assert dec.stats.frames_ok == 1


def test_rr_across_the_65536_ms_wrap(hxm: ModuleType) -> None:
    dec = hxm.HxmDecoder()
    dec.feed(hxm.encode_packet(70, 10, stamps_from(65_000, [850] * 14)))
    # Two new beats: 65000 + 836 = 65836 -> 300 after the wrap, then + 790.
    newest = (65_000 + 836 + 790) % 65536
    out = dec.feed(hxm.encode_packet(71, 12, stamps_from(newest, [790, 836] + [850] * 12)))
    assert out == [HeartRate(71.0), RRIntervals((836.0, 790.0))]


def test_beat_number_wrap_and_lost_packets(hxm: ModuleType) -> None:
    dec = hxm.HxmDecoder()
    rrs = [700 + i for i in range(14)]
    dec.feed(hxm.encode_packet(80, 254, stamps_from(1_000, [900] * 14)))
    # Three packets lost: 6 beats later and the counter wrapped 254 -> 4.
    clock = 1_000 + sum(rrs[:6])
    newest_first = list(reversed(rrs[:6])) + [900] * 8
    out = dec.feed(hxm.encode_packet(80, 4, stamps_from(clock, newest_first)))
    assert out == [HeartRate(80.0), RRIntervals(tuple(float(r) for r in rrs[:6]))]


def test_exactly_fifteen_new_beats_use_the_previous_newest_stamp(hxm: ModuleType) -> None:
    dec = hxm.HxmDecoder()
    dec.feed(hxm.encode_packet(90, 0, stamps_from(5_000, [700] * 14)))
    rrs = [600 + 10 * i for i in range(15)]
    clock = 5_000 + sum(rrs)
    out = dec.feed(hxm.encode_packet(90, 15, stamps_from(clock, list(reversed(rrs)))))
    assert out == [HeartRate(90.0), RRIntervals(tuple(float(r) for r in rrs))]


def test_more_beats_than_stamps_reports_the_loss(hxm: ModuleType) -> None:
    dec = hxm.HxmDecoder()
    dec.feed(hxm.encode_packet(120, 0, stamps_from(5_000, [500] * 14)))
    rrs = [500 + i for i in range(20)]
    clock = 5_000 + sum(rrs)
    out = dec.feed(hxm.encode_packet(120, 20, stamps_from(clock, list(reversed(rrs)))))
    assert out == [
        HeartRate(120.0),
        SequenceGap(missing=6),
        RRIntervals(tuple(float(r) for r in rrs[-14:])),
    ]


def test_inconsistent_history_marks_rr_uncertain(hxm: ModuleType) -> None:
    dec = hxm.HxmDecoder()
    dec.feed(hxm.encode_packet(70, 3, stamps_from(10_000, [800] * 14)))
    # One new beat, but the stamp before it is not our last newest (device reset).
    out = dec.feed(hxm.encode_packet(70, 4, stamps_from(2_000, [800] * 14)))
    assert out == [HeartRate(70.0), RRIntervals((800.0,), Quality.UNCERTAIN)]


def test_hr_zero_means_no_valid_beat(hxm: ModuleType) -> None:
    dec = hxm.HxmDecoder()
    out = dec.feed(hxm.encode_packet(0, 0, [0] * 15))
    assert out == [HeartRate(0.0, Quality.BAD)]
    assert dec.feed(hxm.encode_packet(250, 0, [0] * 15)) == [HeartRate(250.0, Quality.UNCERTAIN)]


def test_no_new_beat_gives_no_rr(hxm: ModuleType) -> None:
    dec = hxm.HxmDecoder()
    packet = hxm.encode_packet(60, 9, stamps_from(9_000, [1000] * 14))
    dec.feed(packet)
    assert dec.feed(packet) == [HeartRate(60.0)]


def test_bad_crc_is_counted_and_skipped(hxm: ModuleType) -> None:
    good = hxm.encode_packet(72, 1, stamps_from(3_000, [800] * 14))
    corrupt = bytearray(good)
    corrupt[20] ^= 0x10
    dec = hxm.HxmDecoder()
    out = dec.feed(bytes(corrupt) + good)
    assert out == [HeartRate(72.0)]
    assert dec.stats.frames_bad_checksum == 1
    assert dec.stats.frames_ok == 1
    assert dec.stats.bytes_discarded == 60


def test_garbage_and_false_headers_are_discarded(hxm: ModuleType) -> None:
    good = hxm.encode_packet(72, 1, stamps_from(3_000, [800] * 14))
    garbage = b"\x00\xff\x02\x26\x37junk\x02\x26"
    dec = hxm.HxmDecoder()
    out = dec.feed(garbage + good + b"\x02")
    assert out == [HeartRate(72.0)]
    assert dec.stats.bytes_discarded == len(garbage)
    # The trailing STX waits for more bytes; a false header then costs its bytes.
    assert dec.feed(b"\x26\x37" + bytes(60)) == []
    assert dec.stats.frames_malformed + dec.stats.frames_bad_checksum >= 1


def test_round_trip_through_encoder(hxm: ModuleType) -> None:
    enc = hxm.HxmEncoder(start_clock_ms=64_000)  # crosses the 65 536 ms wrap
    dec = hxm.HxmDecoder()
    dec.feed(enc.frames_for(PhysioChunk(hr_bpm=70)))
    sent: list[float] = []
    got: list[float] = []
    for i in range(8):
        rr = (800.0 + i, 812.0 - i)
        sent.extend(rr)
        for s in dec.feed(enc.frames_for(PhysioChunk(hr_bpm=72, rr_ms=rr))):
            if isinstance(s, RRIntervals):
                got.extend(s.rr_ms)
    assert got == sent
    assert dec.feed(enc.frames_for(PhysioChunk(hr_bpm=None))) == [HeartRate(0.0, Quality.BAD)]


@settings(max_examples=200, deadline=None)
@given(rr=st.lists(st.integers(250, 2000), min_size=1, max_size=15), start=st.integers(0, 65535))
def test_any_rr_sequence_round_trips(hxm: ModuleType, rr: list[int], start: int) -> None:
    enc = hxm.HxmEncoder(start_clock_ms=start)
    dec = hxm.HxmDecoder()
    dec.feed(enc.frames_for(PhysioChunk(hr_bpm=70)))
    out = dec.feed(enc.frames_for(PhysioChunk(hr_bpm=70, rr_ms=tuple(map(float, rr)))))
    assert out[-1] == RRIntervals(tuple(map(float, rr)))
