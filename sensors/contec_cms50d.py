"""Contec CMS50D+, new live protocol (firmware 4.6+, 2016 on): 9-byte frames, 115200 8N1.

Sources: reference §4 (celiponcio/oximeter-CMS50Dplus-v4.6, MarkMLl/Contec_cms50dplus)
and one real frame quoted in MarkMLl's ``consoleapp.pas``:
``01 e0 85 d5 9a bd e3 ff ff`` = finger in, pleth 85, pulse 53, SpO2 99.

The host must write ``7D 81 A1 80 80 80 80 80 80`` to start streaming. MarkMLl
found that streaming stops about 30 s after that command whatever the host
does; no separate keep-alive command is documented, so the keep-alive here
re-sends the start command every 20 s (an assumption, not a verified command).

| byte | content |
|---|---|
| 0 | 0x01 |
| 1 | 0xE0 fixed, bit0 finger out, bit1 searching |
| 2 | bit7 set, bit6 beat marker, low bits signal strength |
| 3 | pleth (low 7 bits) |
| 4 | second waveform (low 7 bits) |
| 5 | pulse rate (low 7 bits) |
| 6 | SpO2 (low 7 bits) |
| 7, 8 | 0xFF |

Deviation from the reference table: it gives b5 and b6 as plain bytes, but the
real frame above has bit 7 set in b2..b6 and both open implementations mask
it off, so this driver reads the low 7 bits (pulse rates >= 128 bpm cannot be
represented as far as is known). A frame is accepted on its fixed bits only
(there is no checksum): byte 0 = 0x01, byte 1 & 0xFC = 0xE0, bytes 7-8 = 0xFF.

Output as for the legacy driver: every ``BLOCK_FRAMES`` frames (1/4 s) a
``Waveform`` (ppg, 7-bit counts, nominal 60 Hz) plus the newest pulse rate and
SpO2; finger out -> BAD, searching -> UNCERTAIN; pulse 0 or 127 and SpO2 0 or
> 100 are read as "no reading" (value 0, BAD).
"""

from __future__ import annotations

import numpy as np

from vrexposure.sensor_api import (
    DecoderStats,
    DriverSpec,
    PhysioChunk,
    Quality,
    Sample,
    SerialSettings,
    oximeter_block,
    worst_quality,
)

FRAME_LEN = 9
FRAME_RATE_HZ = 60.0
BLOCK_FRAMES = 15
START = 0x01
B1_FIXED = 0xE0
B1_FINGER_OUT = 0x01
B1_SEARCHING = 0x02
B2_BEAT = 0x40
TRAILER = b"\xff\xff"
DATA_BIT = 0x80
START_COMMAND = bytes((0x7D, 0x81, 0xA1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80))
KEEPALIVE_INTERVAL_S = 20.0


def encode_frame(
    pleth: int,
    pr_bpm: int,
    spo2_pct: int,
    *,
    beat: bool = False,
    finger_out: bool = False,
    searching: bool = False,
    signal_strength: int = 5,
    pleth2: int | None = None,
) -> bytes:
    """One 9-byte live frame; data bytes carry bit 7 set, as the real device sends."""
    b1 = B1_FIXED | (B1_FINGER_OUT if finger_out else 0) | (B1_SEARCHING if searching else 0)
    b2 = DATA_BIT | (B2_BEAT if beat else 0) | (signal_strength & 0x0F)
    data = (pleth, pleth if pleth2 is None else pleth2, pr_bpm, spo2_pct)
    return bytes((START, b1, b2, *(DATA_BIT | max(0, min(127, int(v))) for v in data))) + TRAILER


def is_frame(frame: bytes) -> bool:
    return (
        len(frame) == FRAME_LEN
        and frame[0] == START
        and frame[1] & 0xFC == B1_FIXED
        and frame[7:9] == TRAILER
    )


def frame_quality(frame: bytes) -> Quality:
    if frame[1] & B1_FINGER_OUT:
        return Quality.BAD
    if frame[1] & B1_SEARCHING:
        return Quality.UNCERTAIN
    return Quality.GOOD


class Cms50dDecoder:
    """Incremental decoder for the CMS50D+ firmware 4.6 9-byte live format."""

    def __init__(self) -> None:
        self.stats = DecoderStats()
        self._buffer = bytearray()
        self._frames: list[bytes] = []

    def feed(self, data: bytes) -> list[Sample]:
        self._buffer += data
        out: list[Sample] = []
        buf = self._buffer
        pos = 0
        while len(buf) - pos >= FRAME_LEN:
            if buf[pos] != START:
                pos += 1
                self.stats.bytes_discarded += 1
                continue
            frame = bytes(buf[pos : pos + FRAME_LEN])
            if not is_frame(frame):
                # 0x01 is also a plausible data value; only count structure
                # failures where the header matched.
                if frame[1] & 0xFC == B1_FIXED:
                    self.stats.frames_malformed += 1
                pos += 1
                self.stats.bytes_discarded += 1
                continue
            self.stats.frames_ok += 1
            self._frames.append(frame)
            pos += FRAME_LEN
            if len(self._frames) == BLOCK_FRAMES:
                out.extend(self._flush())
        del buf[:pos]
        return out

    def _flush(self) -> list[Sample]:
        frames, self._frames = self._frames, []
        quality = worst_quality(frame_quality(f) for f in frames)
        pleth = np.array([f[3] & 0x7F for f in frames], dtype=np.float32)
        last = frames[-1]
        pr, spo2 = last[5] & 0x7F, last[6] & 0x7F
        return oximeter_block(pleth, FRAME_RATE_HZ, None if pr in (0, 127) else pr,
                              None if spo2 == 0 else spo2, quality)


class Cms50dEncoder:
    """Simulated firmware-4.6 CMS50D+: pleth (0-127 counts at 60 Hz) drives the frame clock.

    One frame per pleth sample with the chunk's pulse rate (clipped to 126) and
    SpO2; the beat marker is set on the sample nearest each beat's end. Quality
    BAD sets finger-out, UNCERTAIN sets searching.
    """

    waveform_kind: str | None = "ppg"
    waveform_rate_hz: float | None = FRAME_RATE_HZ
    waveform_unit: str | None = "counts"
    waveform_range: tuple[float, float] | None = (0.0, 127.0)

    def frames_for(self, chunk: PhysioChunk) -> bytes:
        samples = np.asarray(chunk.waveform, dtype=np.float64).ravel()
        # NaN (a gap in the source signal) goes on the wire as the baseline.
        pleth = np.clip(np.rint(np.nan_to_num(samples, nan=64.0)), 0, 127)
        n = len(pleth)
        beats = {((j + 1) * n) // (len(chunk.rr_ms) + 1) for j in range(len(chunk.rr_ms))}
        pr = 0 if chunk.hr_bpm is None else max(1, min(126, round(chunk.hr_bpm)))
        spo2 = 0 if chunk.spo2_pct is None else round(chunk.spo2_pct)
        out = bytearray()
        for i, value in enumerate(pleth):
            out += encode_frame(
                int(value),
                pr,
                spo2,
                beat=i in beats,
                finger_out=chunk.quality is Quality.BAD,
                searching=chunk.quality is Quality.UNCERTAIN,
            )
        return bytes(out)


DRIVER = DriverSpec(
    name="contec_cms50d",
    title="Contec CMS50D+, firmware 4.6+ (9-byte frames)",
    serial=SerialSettings(baud=115_200),
    decoder=Cms50dDecoder,
    encoder=Cms50dEncoder,
    start_command=START_COMMAND,
    keepalive=(START_COMMAND, KEEPALIVE_INTERVAL_S),
    description=(
        "Finger pulse oximeter with USB cable, 2016+ firmware: streams about 60 "
        "frames/s after a start command (pleth, pulse rate, SpO2, finger-out flag)."
    ),
)
