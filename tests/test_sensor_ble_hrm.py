"""BLE Heart Rate Measurement (0x2A37) payloads: one notification per feed()."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vrexposure.plugins import load_module
from vrexposure.sensor_api import HeartRate, PhysioChunk, Quality, RRIntervals

SENSORS = Path(__file__).resolve().parent.parent / "sensors"


@pytest.fixture(scope="module")
def ble() -> ModuleType:
    return load_module(SENSORS / "ble_hrm.py", "sensors")


def test_public_vector(ble: ModuleType) -> None:
    """[vec] movisens/SmartGattLib HeartRateMeasurementTest.java."""
    payload = bytes.fromhex("164854 01ec02".replace(" ", ""))
    dec = ble.BleHrmDecoder()
    assert dec.feed(payload) == [HeartRate(72.0), RRIntervals((332.03125, 730.46875))]
    assert dec.stats.frames_ok == 1
    assert ble.encode_notification(72, [0x0154, 0x02EC], contact=True) == payload


def test_u16_heart_rate_and_energy(ble: ModuleType) -> None:
    payload = bytes.fromhex("192c01e8030004")  # u16 HR 300, EE 1000 kJ, RR 1024
    assert ble.BleHrmDecoder().feed(payload) == [HeartRate(300.0), RRIntervals((1000.0,))]
    assert ble.encode_notification(300, [1024], contact=None, energy_kj=1000) == payload


@pytest.mark.parametrize(
    ("flags", "quality"),
    [
        (0x00, Quality.GOOD),  # contact feature not supported: no information
        (0x02, Quality.GOOD),  # bit1 without bit2 is meaningless
        (0x04, Quality.BAD),  # supported, not detected
        (0x06, Quality.GOOD),
        (0xE6, Quality.GOOD),  # reserved bits ignored
    ],
)
def test_contact_bits(ble: ModuleType, flags: int, quality: Quality) -> None:
    assert ble.BleHrmDecoder().feed(bytes((flags, 60))) == [HeartRate(60.0, quality)]


def test_zero_rate_is_bad(ble: ModuleType) -> None:
    out = ble.BleHrmDecoder().feed(bytes((0x16, 0, 0x00, 0x04)))
    assert out == [HeartRate(0.0, Quality.BAD), RRIntervals((1000.0,), Quality.BAD)]


@pytest.mark.parametrize(
    "payload",
    ["", "01", "0148", "08", "0848", "1048ec", "0048ec02"],
)
def test_malformed_payloads(ble: ModuleType, payload: str) -> None:
    raw = bytes.fromhex(payload)
    dec = ble.BleHrmDecoder()
    assert dec.feed(raw) == []
    if raw:
        assert dec.stats.frames_malformed == 1 and dec.stats.bytes_discarded == len(raw)
    assert dec.stats.frames_ok == 0


def test_round_trip_through_encoder(ble: ModuleType) -> None:
    enc = ble.BleHrmEncoder(energy_kj=12)
    dec = ble.BleHrmDecoder()
    rr = (1000 * 700 / 1024, 1000 * 845 / 1024)  # on the 1/1024 s grid
    assert dec.feed(enc.frames_for(PhysioChunk(hr_bpm=71, rr_ms=rr))) == [
        HeartRate(71.0),
        RRIntervals(rr),
    ]
    assert dec.feed(enc.frames_for(PhysioChunk(hr_bpm=71, quality=Quality.BAD))) == [
        HeartRate(71.0, Quality.BAD)
    ]


def test_spec_says_feed_is_one_notification(ble: ModuleType) -> None:
    spec = ble.DRIVER
    assert spec.extras["transport"] == "ble"
    assert spec.extras["feed_unit"] == "notification"
    assert spec.extras["characteristic_uuid"] == "00002a37-0000-1000-8000-00805f9b34fb"
    assert "one notification" in (ble.__doc__ or "")


@settings(max_examples=200, deadline=None)
@given(
    hr=st.integers(0, 0xFFFF),
    rr=st.lists(st.integers(1, 0xFFFF), max_size=9),
    contact=st.booleans() | st.none(),
    energy=st.integers(0, 0xFFFF) | st.none(),
)
def test_any_notification_round_trips(
    ble: ModuleType, hr: int, rr: list[int], contact: bool | None, energy: int | None
) -> None:
    payload = ble.encode_notification(hr, rr, contact=contact, energy_kj=energy)
    quality = Quality.BAD if contact is False or hr == 0 else Quality.GOOD
    expected: list[object] = [HeartRate(float(hr), quality)]
    if rr:
        expected.append(RRIntervals(tuple(r * 1000 / 1024 for r in rr), quality))
    assert ble.BleHrmDecoder().feed(payload) == expected
