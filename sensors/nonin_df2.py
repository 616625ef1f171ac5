"""Nonin pulse oximeters, serial Data Format #2 (Xpod 3012LP, OEM III, WristOx2 3150).

5-byte frames at 75 frames/s, ``01 STATUS PLETH FLOAT CHK``: STATUS bit 7 is
always 1, FLOAT bit 7 always 0, CHK = (sum of the first four) mod 256. 25 frames
make a packet (1/3 s); STATUS bit 0 (SYNC) marks frame 1. FLOAT carries a
different value per frame index: 1 HR MSB, 2 HR LSB (HR = ((MSB & 3) << 7) |
(LSB & 0x7F), 511 = missing), 3 SpO2 (4-beat average) and others (see
``FLOAT_FIELDS``). Source: reference §3 (Nonin OEM III / WristOx2 specs, bit
layout as in pufferfish-software's PacketReceiver).

Per packet this decoder emits, in order: a ``Waveform`` (ppg, 8-bit counts,
75 Hz) of the packet's pleth values, then ``HeartRate`` and ``OxygenSaturation``
(4-beat averages). Before the first SYNC frame, and in a packet that lost its
SYNC frame or had bytes discarded inside it, frame indices are unknown: only
the pleth is emitted. When SYNC arrives after a number of frames that is not a
multiple of 25, the shortfall is reported as ``SequenceGap`` (whole lost
packets cannot be seen: the format has no counter).

Quality from the STATUS flags of the packet's frames: sensor disconnect,
out-of-track or sensor alarm -> BAD; artifact or low (red) perfusion ->
UNCERTAIN. SpO2 127 is treated as "missing" (Nonin's convention for the
missing-data value; the reference gives it for HR only).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vrexposure.sensor_api import (
    DecoderStats,
    DriverSpec,
    HeartRate,
    OxygenSaturation,
    PhysioChunk,
    Quality,
    Sample,
    SequenceGap,
    SerialSettings,
    Waveform,
    worst_quality,
)

START = 0x01
FRAME_LEN = 5
FRAMES_PER_PACKET = 25
PLETH_RATE_HZ = 75.0

STATUS_ALWAYS = 0x80
STATUS_SNSD = 0x40  # sensor disconnect
STATUS_ARTF = 0x20  # artifact
STATUS_OOT = 0x10  # out of track
STATUS_SNSA = 0x08  # sensor alarm
STATUS_PERFUSION_MASK = 0x06
PERFUSION_GREEN = 0x02  # high
PERFUSION_RED = 0x04  # low
PERFUSION_YELLOW = 0x06  # medium
STATUS_SYNC = 0x01

HR_MISSING = 511
SPO2_MISSING = 127

#: 1-based frame index -> name of the FLOAT value it carries.
FLOAT_FIELDS: dict[int, str] = {
    1: "hr_msb",
    2: "hr_lsb",
    3: "spo2",
    4: "firmware_revision",
    9: "spo2_d",
    10: "spo2_fast",
    11: "spo2_beat_to_beat",
    14: "e_hr_msb",
    15: "e_hr_lsb",
    16: "e_spo2",
    17: "e_spo2_d",
    20: "hr_d_msb",
    21: "hr_d_lsb",
    22: "e_hr_d_msb",
    23: "e_hr_d_lsb",
}


def encode_frame(status: int, pleth: int, float_byte: int) -> bytes:
    """One 5-byte frame; bit 7 of STATUS is forced on, of FLOAT off."""
    b = (START, (status | STATUS_ALWAYS) & 0xFF, pleth & 0xFF, float_byte & 0x7F)
    return bytes((*b, sum(b) & 0xFF))


def parse_frame(frame: bytes) -> tuple[int, int, int] | None:
    """(status, pleth, float) of one 5-byte frame, or None if it is not valid."""
    if len(frame) != FRAME_LEN:
        return None
    b0, status, pleth, flt, chk = frame
    if b0 != START or not status & 0x80 or flt & 0x80 or (b0 + status + pleth + flt) & 0xFF != chk:
        return None
    return status, pleth, flt


def encode_packet(
    pleth: Sequence[int],
    *,
    hr_bpm: int | None,
    spo2_pct: int | None,
    status: int = STATUS_ALWAYS | PERFUSION_GREEN,
    firmware_revision: int = 0x2A,
) -> bytes:
    """One 25-frame packet. ``None`` sends the missing-data markers (511, 127).

    The 4-beat values are repeated in the display/extended/fast slots, which a
    real device computes separately.
    """
    if len(pleth) != FRAMES_PER_PACKET:
        raise ValueError(f"a packet has {FRAMES_PER_PACKET} pleth values, got {len(pleth)}")
    hr = HR_MISSING if hr_bpm is None else max(0, min(HR_MISSING - 1, hr_bpm))
    spo2 = SPO2_MISSING if spo2_pct is None else max(0, min(100, spo2_pct))
    msb, lsb = (hr >> 7) & 0x03, hr & 0x7F
    values = {
        "hr_msb": msb,
        "hr_lsb": lsb,
        "e_hr_msb": msb,
        "e_hr_lsb": lsb,
        "hr_d_msb": msb,
        "hr_d_lsb": lsb,
        "e_hr_d_msb": msb,
        "e_hr_d_lsb": lsb,
        "firmware_revision": firmware_revision,
    }
    for name in ("spo2", "spo2_d", "spo2_fast", "spo2_beat_to_beat", "e_spo2", "e_spo2_d"):
        values[name] = spo2
    out = bytearray()
    for index, value in enumerate(pleth, start=1):
        frame_status = (status & ~STATUS_SYNC) | (STATUS_SYNC if index == 1 else 0)
        out += encode_frame(frame_status, int(value), values.get(FLOAT_FIELDS.get(index, ""), 0))
    return bytes(out)


def status_quality(status: int) -> Quality:
    if status & (STATUS_SNSD | STATUS_OOT | STATUS_SNSA):
        return Quality.BAD
    if status & STATUS_ARTF or status & STATUS_PERFUSION_MASK == PERFUSION_RED:
        return Quality.UNCERTAIN
    return Quality.GOOD






class NoninDf2Decoder:
    """Incremental decoder for Nonin Data Format #2."""

    def __init__(self) -> None:
        self.stats = DecoderStats()
        self._buffer = bytearray()
        self._pleth: list[int] = []
        self._status: list[int] = []
        self._floats: list[int] = []
        #: Frames since the last SYNC frame (None before the first one).
        self._since_sync: int | None = None
        #: The current packet's frame indices can be trusted.
        self._aligned = False

    def feed(self, data: bytes) -> list[Sample]:
        self._buffer += data
        out: list[Sample] = []
        buf = self._buffer
        pos = 0
        while len(buf) - pos >= FRAME_LEN:
            b0, status, pleth, flt, chk = buf[pos : pos + FRAME_LEN]
            if b0 != START or not status & 0x80 or flt & 0x80:
                self._discard(1)
                pos += 1
                continue
            if (b0 + status + pleth + flt) & 0xFF != chk:
                self.stats.frames_bad_checksum += 1
                self._discard(1)
                pos += 1
                continue
            pos += FRAME_LEN
            self.stats.frames_ok += 1
            out.extend(self._frame(status, pleth, flt))
        # A trailing partial frame waits; bytes that cannot start one are dropped.
        tail = buf.find(START, pos)
        drop = len(buf) - pos if tail < 0 else tail - pos
        if drop:
            self._discard(drop)
        del buf[: pos + drop]
        return out

    def _discard(self, n: int) -> None:
        self.stats.bytes_discarded += n
        # A lost frame would shift the indices of the rest of this packet.
        self._aligned = False

    def _frame(self, status: int, pleth: int, flt: int) -> list[Sample]:
        out: list[Sample] = []
        if status & STATUS_SYNC:
            out.extend(self._flush())
            if self._since_sync is not None:
                missing = -self._since_sync % FRAMES_PER_PACKET
                if missing:
                    out.append(SequenceGap(missing=missing))
            self._since_sync = 0
            self._aligned = True
        self._pleth.append(pleth)
        self._status.append(status)
        self._floats.append(flt)
        if self._since_sync is not None:
            self._since_sync += 1
        if len(self._pleth) == FRAMES_PER_PACKET:
            out.extend(self._flush())
        return out

    def _flush(self) -> list[Sample]:
        """Emit the frames collected since the last packet boundary."""
        if not self._pleth:
            return []
        quality = worst_quality([status_quality(s) for s in self._status])
        complete = self._aligned and len(self._pleth) == FRAMES_PER_PACKET
        out: list[Sample] = [
            Waveform(
                "ppg", np.array(self._pleth, dtype=np.float32), PLETH_RATE_HZ, "counts", quality
            )
        ]
        if complete:
            hr = ((self._floats[0] & 0x03) << 7) | (self._floats[1] & 0x7F)
            spo2 = self._floats[2]
            if hr == HR_MISSING:
                out.append(HeartRate(0.0, Quality.BAD))
            else:
                out.append(HeartRate(float(hr), quality))
            if spo2 == SPO2_MISSING or spo2 > 100:
                out.append(OxygenSaturation(0.0, Quality.BAD))
            else:
                out.append(OxygenSaturation(float(spo2), quality))
        self._pleth, self._status, self._floats = [], [], []
        # Frames after a complete packet but before the next SYNC have no known index.
        self._aligned = False
        return out


#: Status byte the encoder sends for each quality.
_STATUS_FOR: dict[Quality, int] = {
    Quality.GOOD: STATUS_ALWAYS | PERFUSION_GREEN,
    Quality.UNCERTAIN: STATUS_ALWAYS | STATUS_ARTF | PERFUSION_YELLOW,
    Quality.BAD: STATUS_ALWAYS | STATUS_OOT,
}


class NoninDf2Encoder:
    """Simulated Nonin DF2 device: pleth (0-255 counts at 75 Hz) drives the frame clock.

    Each complete 25 samples of pleth become one packet carrying the chunk's
    HR and SpO2; a remainder waits for the next :meth:`frames_for` call.
    """

    waveform_kind: str | None = "ppg"
    waveform_rate_hz: float | None = PLETH_RATE_HZ
    waveform_unit: str | None = "counts"
    waveform_range: tuple[float, float] | None = (0.0, 255.0)

    def __init__(self) -> None:
        self._pending: list[int] = []

    def frames_for(self, chunk: PhysioChunk) -> bytes:
        samples = np.asarray(chunk.waveform, dtype=np.float64).ravel()
        # NaN (a gap in the source signal) goes on the wire as the baseline.
        samples = np.nan_to_num(samples, nan=128.0)
        self._pending.extend(int(v) for v in np.clip(np.rint(samples), 0, 255))
        hr = None if chunk.hr_bpm is None else round(chunk.hr_bpm)
        spo2 = None if chunk.spo2_pct is None else round(chunk.spo2_pct)
        out = bytearray()
        while len(self._pending) >= FRAMES_PER_PACKET:
            pleth = self._pending[:FRAMES_PER_PACKET]
            del self._pending[:FRAMES_PER_PACKET]
            out += encode_packet(pleth, hr_bpm=hr, spo2_pct=spo2, status=_STATUS_FOR[chunk.quality])
        return bytes(out)


DRIVER = DriverSpec(
    name="nonin_df2",
    title="Nonin pulse oximeter, Data Format #2 (Xpod 3012LP, OEM III, WristOx2)",
    serial=SerialSettings(baud=9600),
    decoder=NoninDf2Decoder,
    encoder=NoninDf2Encoder,
    description=(
        "Finger pulse oximeter over USB (FTDI) or SPP: pleth 75 Hz, 4-beat heart "
        "rate and SpO2 three times a second, perfusion and artifact flags."
    ),
    extras={"usb_vid_pid": (0x0403, 0x6001)},
)
