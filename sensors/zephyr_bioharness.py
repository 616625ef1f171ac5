"""Zephyr BioHarness 3 (Bluetooth SPP, "General Comms" framing): ECG, R-to-R, summary.

Frame: ``02 ID DLC <DLC payload bytes> CRC FIN`` with DLC <= 128, the HxM CRC-8
over the payload, and FIN = 03 (ETX), 06 (ACK) or 15 (NAK). Sources: the
reference's §2 and the open App-Zephyr (labstreaminglayer) implementation.

Decoded streams (payload offsets; bytes 0-8 are sequence number, year u16, month,
day, ms-of-day u32 LE):

* ECG 0x22 (88 B): 63 samples x 10 bit packed LSB-first from byte 9; code 0 is
  invalid (NaN here), else (code - 512) x 0.025 mV; 250 Hz. A jump of the
  device timestamp by more than one packet (252 ms) yields a ``SequenceGap``
  with the number of lost ECG packets (the device clock is used, not the
  sequence byte, whose scope — per stream or shared — is not documented).
* R-to-R 0x24 (45 B): 18 x s16 LE every 56 ms; magnitude is the current RR in
  ms and the sign flips at each new beat. The first value after start only sets
  the sign, so the beat in progress is not reported.
* Summary 0x2B (71 B) version 2 (reference table) and version 3 (offsets from
  App-Zephyr, not in the reference): HR u16 (0xFFFF invalid), HR confidence %,
  status word. Quality: HR-unreliable, not-fitted or not-worn status bits or
  confidence < 40 % -> BAD; confidence < 80 %, unknown (0xFF) or partly worn ->
  UNCERTAIN. These thresholds are this driver's choice; Zephyr does not publish them.

Other message IDs with a good CRC (general data, ACK replies, lifesign) are
counted as good frames and produce no samples. No captured bytes were
published: all test vectors are [self]-made from the spec.
"""

from __future__ import annotations

import datetime
import math
import struct
from collections.abc import Sequence

import numpy as np

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
    Waveform,
    accept_frame,
    crc8_maxim,
)

STX = 0x02
ETX = 0x03
ACK = 0x06
NAK = 0x15
FINS = (ETX, ACK, NAK)
MAX_DLC = 128

ID_LIFESIGN = 0x23
ID_ECG = 0x22
ID_RTOR = 0x24
ID_SUMMARY = 0x2B
CMD_ECG_ENABLE = 0x16
CMD_RTOR_ENABLE = 0x19
CMD_SUMMARY_RATE = 0xBD

ECG_PAYLOAD_LEN = 88
ECG_SAMPLES = 63
ECG_RATE_HZ = 250.0
ECG_MV_PER_LSB = 0.025
ECG_OFFSET = 512
ECG_PACKET_MS = ECG_SAMPLES * 1000 / ECG_RATE_HZ  # 252 ms

RTOR_PAYLOAD_LEN = 45
RTOR_VALUES = 18
RTOR_SPACING_MS = 56
SUMMARY_PAYLOAD_LEN = 71

HR_INVALID = 0xFFFF
CONFIDENCE_UNKNOWN = 0xFF
STATUS_HR_UNRELIABLE = 1 << 4
STATUS_NOT_FITTED = 1 << 3
STATUS_WORN_MASK = 0b11  # 0 = worn (full confidence) .. 3 = not worn
CONFIDENCE_GOOD_PCT = 80
CONFIDENCE_BAD_PCT = 40
MS_PER_DAY = 86_400_000
_PAYLOAD_LEN = {ID_ECG: ECG_PAYLOAD_LEN, ID_RTOR: RTOR_PAYLOAD_LEN, ID_SUMMARY: SUMMARY_PAYLOAD_LEN}


def crc8(data: bytes) -> int:
    """Zephyr CRC-8: polynomial 0x8C (reflected 0x31), init 0 — CRC-8/MAXIM-DOW."""
    return crc8_maxim(data)


def encode_message(msg_id: int, payload: bytes = b"", fin: int = ETX) -> bytes:
    """One framed message (commands and data packets share the framing)."""
    if len(payload) > MAX_DLC:
        raise ValueError(f"payload of {len(payload)} bytes exceeds {MAX_DLC}")
    return bytes((STX, msg_id, len(payload))) + payload + bytes((crc8(payload), fin))


def _stream_header(seq: int, ms_of_day: int, date: datetime.date) -> bytes:
    return struct.pack("<BHBBI", seq & 0xFF, date.year, date.month, date.day, ms_of_day)


def pack_10bit(codes: Sequence[int]) -> bytes:
    """Pack 10-bit codes LSB-first (4 codes per 5 bytes, last chunk truncated)."""
    acc = 0
    for i, code in enumerate(codes):
        acc |= (int(code) & 0x3FF) << (10 * i)
    return acc.to_bytes((10 * len(codes) + 7) // 8, "little")


def unpack_10bit(data: bytes, count: int) -> list[int]:
    acc = int.from_bytes(data, "little")
    return [(acc >> (10 * i)) & 0x3FF for i in range(count)]


def encode_ecg_packet(seq: int, ms_of_day: int, date: datetime.date, codes: Sequence[int]) -> bytes:
    """ECG 0x22 packet from 63 raw 10-bit codes (0 = invalid, 512 = 0 mV)."""
    if len(codes) != ECG_SAMPLES:
        raise ValueError(f"an ECG packet holds {ECG_SAMPLES} samples, got {len(codes)}")
    payload = _stream_header(seq, ms_of_day, date) + pack_10bit(codes)
    return encode_message(ID_ECG, payload)


def encode_rtor_packet(
    seq: int, ms_of_day: int, date: datetime.date, values: Sequence[int]
) -> bytes:
    """R-to-R 0x24 packet from 18 signed values (|value| = RR ms, sign flips per beat)."""
    if len(values) != RTOR_VALUES:
        raise ValueError(f"an R-to-R packet holds {RTOR_VALUES} values, got {len(values)}")
    payload = _stream_header(seq, ms_of_day, date) + struct.pack("<18h", *values)
    return encode_message(ID_RTOR, payload)


def encode_summary_packet(
    seq: int,
    ms_of_day: int,
    date: datetime.date,
    hr_bpm: int | None,
    hr_confidence_pct: int | None,
    status: int = 0,
) -> bytes:
    """Summary 0x2B version 2 with HR, HR confidence and status word; the rest
    of the 71-byte payload carries the documented "invalid" markers or zeros."""
    body = bytearray(SUMMARY_PAYLOAD_LEN)
    body[0:9] = _stream_header(seq, ms_of_day, date)
    body[9] = 2
    struct.pack_into("<H", body, 10, HR_INVALID if hr_bpm is None else hr_bpm & 0xFFFF)
    struct.pack_into("<H", body, 12, 0xFFFF)  # respiration rate: not simulated
    body[34] = CONFIDENCE_UNKNOWN if hr_confidence_pct is None else hr_confidence_pct & 0xFF
    struct.pack_into("<H", body, 56, status & 0xFFFF)
    return encode_message(ID_SUMMARY, bytes(body))


def summary_quality(hr_confidence_pct: int, status: int) -> Quality:
    """This driver's mapping of the summary's confidence and status onto Quality."""
    worn = status & STATUS_WORN_MASK
    if status & (STATUS_HR_UNRELIABLE | STATUS_NOT_FITTED) or worn == STATUS_WORN_MASK:
        return Quality.BAD
    if hr_confidence_pct == CONFIDENCE_UNKNOWN:
        return Quality.UNCERTAIN
    if hr_confidence_pct < CONFIDENCE_BAD_PCT:
        return Quality.BAD
    if hr_confidence_pct < CONFIDENCE_GOOD_PCT or worn:
        return Quality.UNCERTAIN
    return Quality.GOOD


def _device_time_ms(payload: bytes) -> int | None:
    """Absolute device time (ms since 0001-01-01) or None for an invalid date."""
    year, month, day, ms_of_day = struct.unpack_from("<HBBI", payload, 1)
    try:
        ordinal = datetime.date(year, month, day).toordinal()
    except ValueError:
        return None
    return ordinal * MS_PER_DAY + ms_of_day


def _split(device_ms: int) -> tuple[int, datetime.date]:
    """Absolute device ms -> (ms of day, date), the wire representation."""
    days, ms_of_day = divmod(device_ms, MS_PER_DAY)
    return ms_of_day, datetime.date.fromordinal(days)


class BioHarnessDecoder:
    """Incremental decoder for the BioHarness 3 message stream."""

    def __init__(self) -> None:
        self.stats = DecoderStats()
        self._buffer = bytearray()
        self._last_ecg_ms: int | None = None
        self._rr_sign: int = 0  # 0 = not known yet, else +1 / -1

    def feed(self, data: bytes) -> list[Sample]:
        self._buffer += data
        out: list[Sample] = []
        buf = self._buffer
        while True:
            start = buf.find(STX)
            if start < 0:
                self.stats.bytes_discarded += len(buf)
                buf.clear()
                break
            if start:
                self.stats.bytes_discarded += start
                del buf[:start]
            if len(buf) < 3:
                break
            dlc = buf[2]
            if dlc > MAX_DLC:
                self.stats.bytes_discarded += 1
                del buf[:1]
                continue
            total = dlc + 5
            if len(buf) < total:
                break
            frame = bytes(buf[:total])
            payload = frame[3 : 3 + dlc]
            # A false STX (0x02 is common inside payloads): skip it and rescan.
            if not accept_frame(self.stats, payload, frame[-2], frame[-1] in FINS):
                del buf[:1]
                continue
            del buf[:total]
            out.extend(self._decode(frame[1], payload))
        return out

    def _decode(self, msg_id: int, payload: bytes) -> list[Sample]:
        expected = _PAYLOAD_LEN.get(msg_id)
        if expected is not None and len(payload) != expected:
            self.stats.frames_malformed += 1
            return []
        if msg_id == ID_ECG:
            self.stats.frames_ok += 1
            return self._decode_ecg(payload)
        if msg_id == ID_RTOR:
            self.stats.frames_ok += 1
            return self._decode_rtor(payload)
        if msg_id == ID_SUMMARY:
            return self._decode_summary(payload)
        self.stats.frames_ok += 1
        return []

    def _decode_ecg(self, payload: bytes) -> list[Sample]:
        out: list[Sample] = []
        now_ms = _device_time_ms(payload)
        if now_ms is not None and self._last_ecg_ms is not None:
            packets = round((now_ms - self._last_ecg_ms) / ECG_PACKET_MS)
            if packets > 1:
                out.append(SequenceGap(missing=packets - 1))
        self._last_ecg_ms = now_ms
        codes = np.array(unpack_10bit(payload[9:], ECG_SAMPLES), dtype=np.int32)
        values = ((codes - ECG_OFFSET) * ECG_MV_PER_LSB).astype(np.float32)
        invalid = codes == 0
        values[invalid] = np.nan
        if invalid.all():
            quality = Quality.BAD
        elif invalid.any():
            quality = Quality.UNCERTAIN
        else:
            quality = Quality.GOOD
        out.append(Waveform("ecg", values, ECG_RATE_HZ, "mV", quality))
        return out

    def _decode_rtor(self, payload: bytes) -> list[Sample]:
        rr_ms: list[float] = []
        for value in struct.unpack_from("<18h", payload, 9):
            if value == 0:
                continue
            sign = 1 if value > 0 else -1
            if self._rr_sign and sign != self._rr_sign:
                rr_ms.append(float(abs(value)))
            self._rr_sign = sign
        return [RRIntervals(tuple(rr_ms))] if rr_ms else []

    def _decode_summary(self, payload: bytes) -> list[Sample]:
        version = payload[9]
        if version == 2:
            confidence, status = payload[34], struct.unpack_from("<H", payload, 56)[0]
        elif version == 3:
            confidence, status = payload[27], struct.unpack_from("<H", payload, 32)[0]
        else:
            self.stats.frames_malformed += 1
            return []
        self.stats.frames_ok += 1
        hr_raw = struct.unpack_from("<H", payload, 10)[0]
        if hr_raw == HR_INVALID:
            return [HeartRate(0.0, Quality.BAD)]
        return [HeartRate(float(hr_raw), summary_quality(confidence, status))]


#: HR confidence and status the encoder puts on the wire for each quality.
_QUALITY_ON_WIRE: dict[Quality, tuple[int, int]] = {
    Quality.GOOD: (100, 0),
    Quality.UNCERTAIN: (60, 0),
    Quality.BAD: (20, STATUS_HR_UNRELIABLE),
}


class BioHarnessEncoder:
    """Simulated BioHarness 3 streaming ECG, R-to-R and 1 Hz summary packets.

    Per :meth:`frames_for` call: one ECG packet per complete 63 samples of the
    chunk's waveform (mV at 250 Hz; a remainder waits for the next call), one
    R-to-R packet per 17 beats (at least one), and one summary packet. The
    device clock advances 252 ms per ECG packet and 1008 ms per R-to-R packet.
    """

    waveform_kind: str | None = "ecg"
    waveform_rate_hz: float | None = ECG_RATE_HZ
    waveform_unit: str | None = "mV"
    waveform_range: tuple[float, float] | None = (
        (1 - ECG_OFFSET) * ECG_MV_PER_LSB,
        (0x3FF - ECG_OFFSET) * ECG_MV_PER_LSB,
    )

    def __init__(
        self, *, start_ms_of_day: int = 36_000_000, date: datetime.date | None = None
    ) -> None:
        start = (date or datetime.date(2024, 1, 1)).toordinal() * MS_PER_DAY + start_ms_of_day
        # One device clock per stream, in ms since 0001-01-01 (see _device_time_ms).
        self.ecg_ms = start
        self.rtor_ms = start
        self.summary_ms = start
        self._seq = {ID_ECG: 0, ID_RTOR: 0, ID_SUMMARY: 0}
        self._pending_codes: list[int] = []
        # The device shows the running RR before the first simulated beat.
        self._rr_value = 1000

    def _next_seq(self, msg_id: int) -> int:
        seq = self._seq[msg_id]
        self._seq[msg_id] = (seq + 1) & 0xFF
        return seq

    @staticmethod
    def mv_to_code(mv: float) -> int:
        if math.isnan(mv):
            return 0  # the device's "invalid sample" code
        mv = max(-1e3, min(1e3, mv))  # keep round() finite; the clip below does the rest
        return max(1, min(0x3FF, round(mv / ECG_MV_PER_LSB) + ECG_OFFSET))

    def ecg_packets(self, waveform_mv: Sequence[float]) -> bytes:
        self._pending_codes.extend(self.mv_to_code(float(v)) for v in waveform_mv)
        out = bytearray()
        while len(self._pending_codes) >= ECG_SAMPLES:
            codes, self._pending_codes = (
                self._pending_codes[:ECG_SAMPLES],
                self._pending_codes[ECG_SAMPLES:],
            )
            out += encode_ecg_packet(self._next_seq(ID_ECG), *_split(self.ecg_ms), codes)
            self.ecg_ms += round(ECG_PACKET_MS)
        return bytes(out)

    def rtor_packets(self, rr_ms: Sequence[float]) -> bytes:
        out = bytearray()
        beats = [max(1, min(0x7FFF, round(rr))) for rr in rr_ms]
        per_packet = RTOR_VALUES - 1  # slot 0 repeats the running value
        groups = [beats[i : i + per_packet] for i in range(0, len(beats), per_packet)] or [[]]
        for group in groups:
            k = len(group)
            # Beat j lands in slot (j+1)*18//(k+1): spread out, never slot 0.
            slots = {((j + 1) * RTOR_VALUES) // (k + 1): rr for j, rr in enumerate(group)}
            values: list[int] = []
            for slot in range(RTOR_VALUES):
                if slot in slots:
                    sign = -1 if self._rr_value > 0 else 1
                    self._rr_value = sign * slots[slot]
                values.append(self._rr_value)
            out += encode_rtor_packet(self._next_seq(ID_RTOR), *_split(self.rtor_ms), values)
            self.rtor_ms += RTOR_VALUES * RTOR_SPACING_MS
        return bytes(out)

    def summary_packet(self, hr_bpm: float | None, quality: Quality) -> bytes:
        confidence, status = _QUALITY_ON_WIRE[quality]
        hr = None if hr_bpm is None else max(0, min(0xFFFE, round(hr_bpm)))
        packet = encode_summary_packet(
            self._next_seq(ID_SUMMARY), *_split(self.summary_ms), hr, confidence, status
        )
        self.summary_ms += 1000
        return packet

    def frames_for(self, chunk: PhysioChunk) -> bytes:
        waveform = np.asarray(chunk.waveform, dtype=np.float64).ravel()
        return (
            self.ecg_packets(waveform.tolist())
            + self.rtor_packets(chunk.rr_ms)
            + self.summary_packet(chunk.hr_bpm, chunk.quality)
        )


#: Host -> device: enable ECG and R-to-R streaming, summary packets every 1 s.
START_COMMAND = (
    encode_message(CMD_ECG_ENABLE, b"\x01")
    + encode_message(CMD_RTOR_ENABLE, b"\x01")
    + encode_message(CMD_SUMMARY_RATE, b"\x01\x00")
)
#: The device drops the link without host life signs; App-Zephyr sends one every 2 s.
LIFESIGN = encode_message(ID_LIFESIGN)

DRIVER = DriverSpec(
    name="zephyr_bioharness",
    title="Zephyr BioHarness 3 (SPP)",
    serial=SerialSettings(baud=115_200),
    decoder=BioHarnessDecoder,
    encoder=BioHarnessEncoder,
    start_command=START_COMMAND,
    keepalive=(LIFESIGN, 2.0),
    description=(
        "Chest harness, Bluetooth SPP, bidirectional: ECG 250 Hz (mV), R-to-R "
        "intervals, 1 Hz summary heart rate with confidence."
    ),
    extras={"transport": "bluetooth-spp"},
)
