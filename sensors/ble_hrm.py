"""Bluetooth LE Heart Rate Measurement (GATT characteristic 0x2A37).

Polar H10/H9/OH1/Verity Sense, Garmin HRM, Wahoo TICKR, Zephyr HxM Smart and
other straps with the standard Heart Rate Service 0x180D. Source: reference §6
(Bluetooth SIG GATT XML ``org.bluetooth.characteristic.heart_rate_measurement``).

**Not a serial device.** There is no port: an optional transport built on
``bleak`` (the ``ble`` extra) subscribes to notifications of
``00002a37-0000-1000-8000-00805f9b34fb`` and passes each notification payload
to this decoder. **Each ``feed()`` call must be exactly one notification
payload**: the payload has no length field or delimiter, so concatenated or
split payloads cannot be told apart. The ``serial`` settings of ``DRIVER`` are
placeholders the runtime must ignore (``extras["transport"] == "ble"``).

Payload (little-endian): flags (bit0 HR is u16, bit1 sensor contact detected,
bit2 contact feature supported, bit3 energy expended present, bit4 RR present,
bits 5-7 reserved and ignored), HR u8 or u16, energy expended u16 kJ (read and
dropped: no sample type carries it), then 0..n RR u16 in 1/1024 s, converted
exactly to ms (x 1000/1024, not rounded).

Quality: contact supported but not detected, or HR 0 -> BAD (HR and RR).
A payload that is too short or ends in half an RR value is malformed: no
samples, all its bytes discarded. The link layer has its own CRC, so
``frames_bad_checksum`` never counts here. Public vector from SmartGattLib:
``16 48 54 01 EC 02`` -> 72 bpm, contact, RR 332.03125 and 730.46875 ms.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from vrexposure.sensor_api import (
    DecoderStats,
    DriverSpec,
    HeartRate,
    PhysioChunk,
    Quality,
    RRIntervals,
    Sample,
    SerialSettings,
)

HRM_CHARACTERISTIC_UUID = "00002a37-0000-1000-8000-00805f9b34fb"
HR_SERVICE_UUID = "0000180d-0000-1000-8000-00805f9b34fb"
FLAG_HR_U16 = 0x01
FLAG_CONTACT_DETECTED = 0x02
FLAG_CONTACT_SUPPORTED = 0x04
FLAG_ENERGY = 0x08
FLAG_RR = 0x10
RR_UNITS_PER_S = 1024


def rr_raw_to_ms(raw: int) -> float:
    return raw * 1000.0 / RR_UNITS_PER_S


def rr_ms_to_raw(rr_ms: float) -> int:
    return max(0, min(0xFFFF, round(rr_ms * RR_UNITS_PER_S / 1000.0)))


def encode_notification(
    hr_bpm: int,
    rr_raw: Sequence[int] = (),
    *,
    contact: bool | None = True,
    energy_kj: int | None = None,
    hr_u16: bool | None = None,
) -> bytes:
    """One 0x2A37 payload. ``contact=None`` means the contact feature is unsupported;
    ``hr_u16=None`` picks u16 only when the rate does not fit a byte. RR values
    are raw 1/1024 s units; an empty list leaves the RR flag clear."""
    wide = hr_bpm > 0xFF if hr_u16 is None else hr_u16
    flags = (FLAG_HR_U16 if wide else 0) | (FLAG_RR if rr_raw else 0)
    if contact is not None:
        flags |= FLAG_CONTACT_SUPPORTED | (FLAG_CONTACT_DETECTED if contact else 0)
    if energy_kj is not None:
        flags |= FLAG_ENERGY
    out = bytearray((flags,))
    out += struct.pack("<H", hr_bpm & 0xFFFF) if wide else bytes((hr_bpm & 0xFF,))
    if energy_kj is not None:
        out += struct.pack("<H", energy_kj & 0xFFFF)
    for raw in rr_raw:
        out += struct.pack("<H", raw & 0xFFFF)
    return bytes(out)


class BleHrmDecoder:
    """Decoder for Heart Rate Measurement notifications: one payload per ``feed()``."""

    def __init__(self) -> None:
        self.stats = DecoderStats()

    def feed(self, data: bytes) -> list[Sample]:
        if not data:
            return []
        flags = data[0]
        hr_len = 2 if flags & FLAG_HR_U16 else 1
        pos = 1 + hr_len + (2 if flags & FLAG_ENERGY else 0)
        rr_bytes = data[pos:]
        if (
            len(data) < pos
            or (flags & FLAG_RR and len(rr_bytes) % 2)
            or (not flags & FLAG_RR and rr_bytes)
        ):
            self.stats.frames_malformed += 1
            self.stats.bytes_discarded += len(data)
            return []
        self.stats.frames_ok += 1
        hr = struct.unpack_from("<H", data, 1)[0] if hr_len == 2 else data[1]
        no_contact = flags & FLAG_CONTACT_SUPPORTED and not flags & FLAG_CONTACT_DETECTED
        quality = Quality.BAD if no_contact or hr == 0 else Quality.GOOD
        out: list[Sample] = [HeartRate(float(hr), quality)]
        if flags & FLAG_RR and rr_bytes:
            raw = struct.unpack(f"<{len(rr_bytes) // 2}H", rr_bytes)
            out.append(RRIntervals(tuple(rr_raw_to_ms(r) for r in raw), quality))
        return out


class BleHrmEncoder:
    """Simulated HRS strap: one notification payload per :meth:`frames_for` call.

    All of the chunk's RR intervals go into that payload (a real strap with the
    default 23-byte ATT MTU fits at most 9). Quality BAD clears the contact bit.
    """

    waveform_kind: str | None = None
    waveform_rate_hz: float | None = None
    waveform_unit: str | None = None
    waveform_range: tuple[float, float] | None = None

    def __init__(self, *, energy_kj: int | None = None) -> None:
        self.energy_kj = energy_kj

    def frames_for(self, chunk: PhysioChunk) -> bytes:
        hr = 0 if chunk.hr_bpm is None else max(0, min(0xFFFF, round(chunk.hr_bpm)))
        return encode_notification(
            hr,
            [rr_ms_to_raw(rr) for rr in chunk.rr_ms],
            contact=chunk.quality is not Quality.BAD,
            energy_kj=self.energy_kj,
        )


DRIVER = DriverSpec(
    name="ble_hrm",
    title="Bluetooth LE heart-rate strap (Heart Rate Measurement 0x2A37)",
    # Placeholder: BLE has no serial link. See the module docstring.
    serial=SerialSettings(baud=0),
    decoder=BleHrmDecoder,
    encoder=BleHrmEncoder,
    description=(
        "Any strap with the standard BLE Heart Rate Service (Polar, Garmin, Wahoo, "
        "Zephyr HxM Smart): heart rate, RR intervals, sensor contact. Needs the "
        "optional 'ble' extra (bleak); each feed() is one notification payload."
    ),
    extras={
        "transport": "ble",
        "feed_unit": "notification",
        "service_uuid": HR_SERVICE_UUID,
        "characteristic_uuid": HRM_CHARACTERISTIC_UUID,
        "requires_extra": "ble",
    },
)
