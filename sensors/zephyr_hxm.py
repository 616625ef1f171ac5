"""Zephyr HxM BT (1st generation, Bluetooth SPP): standard data packet 0x26.

Source: Zephyr HxM Bluetooth API Guide 9700.0031 v1.7 (see
``shared/reference/serial-protocols.md`` §1). One 60-byte packet per second::

    02 26 37 <55 payload bytes> CRC 03

Payload fields used (offsets are from the STX byte): 12 heart rate (0 = no valid
beat within the device's timeout), 13 heart-beat number (+1 per beat, wraps at
256), 14-43 fifteen u16 LE beat timestamps in ms, newest first, wrapping at 65 536.

RR intervals come from consecutive timestamps; the change of the heart-beat
number tells how many of the 15 stamps are new, which survives up to three lost
packets at 240 bpm. The first packet after start only sets the reference: its
stamps are of unknown age (and may be zero-filled after power-on), so no RR
comes from it.

No captured packet was published; every vector in the tests is built from the
written spec ([self]), so a match with real hardware is not proven.
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
    SequenceGap,
    SerialSettings,
    accept_frame,
    crc8_maxim,
)

STX = 0x02
ETX = 0x03
MSG_ID = 0x26
DLC = 0x37
PACKET_LEN = 3 + DLC + 2  # header, payload, CRC, ETX = 60
HEADER = bytes((STX, MSG_ID, DLC))
N_STAMPS = 15
TIMESTAMP_WRAP_MS = 65_536
BEAT_NUMBER_WRAP = 256
#: Heart rates the device documents as its range; others are flagged UNCERTAIN.
HR_RANGE_BPM = (30, 240)


def crc8(data: bytes) -> int:
    """Zephyr CRC-8: polynomial 0x8C (reflected 0x31), init 0 — CRC-8/MAXIM-DOW."""
    return crc8_maxim(data)


def encode_packet(
    hr_bpm: int,
    beat_number: int,
    timestamps_ms: Sequence[int],
    *,
    battery_pct: int = 80,
    firmware_id: int = 0x001A,
    firmware_version: bytes = b"A1",
    hardware_id: int = 0x001A,
    hardware_version: bytes = b"A1",
    distance_16th_m: int = 0,
    speed_256th_m_s: int = 0,
    strides: int = 0,
) -> bytes:
    """One byte-exact 0x26 packet. ``timestamps_ms`` are newest first (15 values;
    fewer are zero-filled, values are taken modulo 65 536)."""
    stamps = [int(t) % TIMESTAMP_WRAP_MS for t in timestamps_ms][:N_STAMPS]
    stamps += [0] * (N_STAMPS - len(stamps))
    payload = struct.pack(
        "<H2sH2sBBB15H6sHHB3s",
        firmware_id & 0xFFFF,
        firmware_version[:2].ljust(2, b" "),
        hardware_id & 0xFFFF,
        hardware_version[:2].ljust(2, b" "),
        max(0, min(100, battery_pct)),
        max(0, min(255, hr_bpm)),
        beat_number % BEAT_NUMBER_WRAP,
        *stamps,
        bytes(6),
        distance_16th_m & 0x0FFF,
        speed_256th_m_s & 0x0FFF,
        strides % 128,
        bytes(3),
    )
    assert len(payload) == DLC
    return HEADER + payload + bytes((crc8(payload), ETX))


class HxmDecoder:
    """Incremental decoder for the HxM 0x26 packet stream."""

    def __init__(self) -> None:
        self.stats = DecoderStats()
        self._buffer = bytearray()
        self._last_beat_number: int | None = None
        self._last_stamp_ms: int | None = None

    def feed(self, data: bytes) -> list[Sample]:
        self._buffer += data
        out: list[Sample] = []
        buf = self._buffer
        while True:
            start = buf.find(HEADER)
            if start < 0:
                # Keep a possible header prefix for the next feed.
                keep = next((k for k in (2, 1) if buf.endswith(HEADER[:k])), 0)
                self.stats.bytes_discarded += len(buf) - keep
                del buf[: len(buf) - keep]
                break
            if start:
                self.stats.bytes_discarded += start
                del buf[:start]
            if len(buf) < PACKET_LEN:
                break
            packet = bytes(buf[:PACKET_LEN])
            payload = packet[3 : 3 + DLC]
            # STX 26 37 can occur inside a payload: on a bad frame skip one byte and rescan.
            if not accept_frame(self.stats, payload, packet[-2], packet[-1] == ETX):
                del buf[:1]
                continue
            del buf[:PACKET_LEN]
            self.stats.frames_ok += 1
            out.extend(self._decode(packet))
        return out

    def _decode(self, packet: bytes) -> list[Sample]:
        hr_bpm = packet[12]
        beat_number = packet[13]
        stamps = struct.unpack_from("<15H", packet, 14)
        if hr_bpm == 0:
            quality = Quality.BAD
        elif HR_RANGE_BPM[0] <= hr_bpm <= HR_RANGE_BPM[1]:
            quality = Quality.GOOD
        else:
            quality = Quality.UNCERTAIN
        out: list[Sample] = [HeartRate(float(hr_bpm), quality)]

        prev_beat, prev_stamp = self._last_beat_number, self._last_stamp_ms
        self._last_beat_number, self._last_stamp_ms = beat_number, stamps[0]
        if prev_beat is None or prev_stamp is None:
            return out
        n_new = (beat_number - prev_beat) % BEAT_NUMBER_WRAP
        if n_new == 0:
            return out
        # Stamp before the oldest new beat: in this packet, or the last packet's newest.
        history = [*stamps, prev_stamp] if n_new == N_STAMPS else list(stamps)
        n_recoverable = min(n_new, len(history) - 1)
        rr_ms = [
            float((history[k] - history[k + 1]) % TIMESTAMP_WRAP_MS)
            for k in range(n_recoverable - 1, -1, -1)  # oldest first
        ]
        rr_quality = quality
        if n_new < N_STAMPS and stamps[n_new] != prev_stamp:
            # The stamp that should be our last newest one differs: counter or
            # clock jumped (device reset, >255 beats lost), so trust less.
            rr_quality = Quality.UNCERTAIN if quality is Quality.GOOD else quality
        if n_new > n_recoverable:
            # More beats than stamps: these RR intervals are gone.
            out.append(SequenceGap(missing=n_new - n_recoverable))
        out.append(RRIntervals(tuple(rr_ms), rr_quality))
        return out


class HxmEncoder:
    """Simulated HxM: one packet per :meth:`frames_for` call (the device sends 1/s).

    Keeps the device's beat counter and millisecond clock; each RR interval in
    the chunk advances the clock and adds a beat stamp. RR values are rounded
    to whole ms (the device's resolution).
    """

    waveform_kind: str | None = None
    waveform_rate_hz: float | None = None
    waveform_unit: str | None = None
    waveform_range: tuple[float, float] | None = None

    def __init__(self, *, start_clock_ms: int = 0, battery_pct: int = 80) -> None:
        self.clock_ms = start_clock_ms
        self.beat_number = 0
        self.battery_pct = battery_pct
        # Newest first; a made-up 60 bpm history before the start keeps the first RR right.
        self._stamps_ms = [(start_clock_ms - 1000 * k) % TIMESTAMP_WRAP_MS for k in range(N_STAMPS)]

    def frames_for(self, chunk: PhysioChunk) -> bytes:
        for rr in chunk.rr_ms:
            self.clock_ms += round(rr)
            self.beat_number = (self.beat_number + 1) % BEAT_NUMBER_WRAP
            self._stamps_ms = [self.clock_ms % TIMESTAMP_WRAP_MS, *self._stamps_ms[:-1]]
        if chunk.hr_bpm is None or chunk.quality is Quality.BAD:
            hr = 0
        else:
            hr = max(1, min(255, round(chunk.hr_bpm)))
        return encode_packet(hr, self.beat_number, self._stamps_ms, battery_pct=self.battery_pct)


DRIVER = DriverSpec(
    name="zephyr_hxm",
    title="Zephyr HxM BT (1st gen, SPP)",
    serial=SerialSettings(baud=115_200),
    decoder=HxmDecoder,
    encoder=HxmEncoder,
    description=(
        "Chest strap, Bluetooth SPP (pair with PIN 1234), simplex: 1 packet/s with "
        "heart rate and 15 beat timestamps from which RR intervals are recovered."
    ),
    extras={"transport": "bluetooth-spp", "pin": "1234"},
)
