"""Contec CMS50D+/CMS50E, old live protocol (firmware <= 4.5): 5-byte frames, 19200 8O1.

Source: reference §4 (atbrask/CMS50Dplus; apneuvereniging wiki "CMS50X"; an OEM
pulse-oximeter module manual). About 60 frames/s; bit 7 is the frame sync (1 in
byte 0, 0 in bytes 1-4). There is no checksum: a frame is accepted when its
five sync bits fit, so ``frames_bad_checksum`` never counts here; a sync byte
inside a frame counts it as malformed and decoding restarts at that byte.

| byte | content |
|---|---|
| 0 | bit7 sync, bit6 beep (pulse), bit5 SpO2 dropping, bit4 finger out (atbrask) or |
|   | "searching too long" (OEM manual), bits3-0 signal strength |
| 1 | pleth 0-127 |
| 2 | bit6 pulse-rate bit 7, bit5 searching, bit4 probe error, bits3-0 bar graph |
| 3 | pulse-rate bits 6-0 |
| 4 | SpO2 % |

Output: every ``BLOCK_FRAMES`` frames (1/4 s) one ``Waveform`` (ppg, 7-bit
counts, nominal 60 Hz — the device rate is approximate) and the newest pulse
rate and SpO2 as ``HeartRate`` / ``OxygenSaturation``. Quality over the block:
finger out or probe error -> BAD, searching -> UNCERTAIN. Pulse rate 0 or 255
and SpO2 0 or > 100 are this driver's "no reading" markers (value 0, BAD): the
device's own marker values are not documented. The only test vectors are
[self]-made (``80 00 40 05 61`` -> 133 bpm, 97 %; ``90 00 00 00 00`` -> finger out).
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

FRAME_LEN = 5
FRAME_RATE_HZ = 60.0
BLOCK_FRAMES = 15

B0_SYNC = 0x80
B0_BEEP = 0x40
B0_SPO2_DROPPING = 0x20
B0_FINGER_OUT = 0x10
B0_SIGNAL_MASK = 0x0F
B2_PR_BIT7 = 0x40
B2_SEARCHING = 0x20
B2_PROBE_ERROR = 0x10
B2_BAR_MASK = 0x0F


def encode_frame(
    pleth: int,
    pr_bpm: int,
    spo2_pct: int,
    *,
    beep: bool = False,
    finger_out: bool = False,
    searching: bool = False,
    probe_error: bool = False,
    spo2_dropping: bool = False,
    signal_strength: int = 8,
    bar_graph: int = 0,
) -> bytes:
    """One 5-byte live frame (pulse rate 0-255, pleth and SpO2 0-127)."""
    pr = max(0, min(255, pr_bpm))
    b0 = (
        B0_SYNC
        | (B0_BEEP if beep else 0)
        | (B0_SPO2_DROPPING if spo2_dropping else 0)
        | (B0_FINGER_OUT if finger_out else 0)
        | (max(0, min(8, signal_strength)) & B0_SIGNAL_MASK)
    )
    b2 = (
        ((pr >> 1) & B2_PR_BIT7)
        | (B2_SEARCHING if searching else 0)
        | (B2_PROBE_ERROR if probe_error else 0)
        | (bar_graph & B2_BAR_MASK)
    )
    return bytes((b0, pleth & 0x7F, b2, pr & 0x7F, max(0, min(127, spo2_pct))))


def frame_quality(frame: bytes) -> Quality:
    if frame[0] & B0_FINGER_OUT or frame[2] & B2_PROBE_ERROR:
        return Quality.BAD
    if frame[2] & B2_SEARCHING:
        return Quality.UNCERTAIN
    return Quality.GOOD


def pulse_rate_bpm(frame: bytes) -> int:
    return ((frame[2] & B2_PR_BIT7) << 1) | (frame[3] & 0x7F)


#: Largest frame-to-frame change of a real device (pleth counts, bpm, %).
MAX_PLETH_STEP = 40
MAX_PR_STEP_BPM = 5
MAX_SPO2_STEP_PCT = 3
_STATUS = (0, B0_FINGER_OUT), (2, B2_SEARCHING | B2_PROBE_ERROR)


def _continues(frame: bytes, prev: bytes) -> bool:
    """Whether ``frame`` is a plausible successor of ``prev`` (60 frames a second)."""
    return (
        abs(frame[1] - prev[1]) <= MAX_PLETH_STEP
        and abs(pulse_rate_bpm(frame) - pulse_rate_bpm(prev)) <= MAX_PR_STEP_BPM
        and abs(frame[4] - prev[4]) <= MAX_SPO2_STEP_PCT
        and all((frame[i] & m) == (prev[i] & m) for i, m in _STATUS)
    )


class Cms50dLegacyDecoder:
    """Incremental decoder for the old CMS50D+ 5-byte live format."""

    def __init__(self) -> None:
        self.stats = DecoderStats()
        self._buffer = bytearray()
        self._frames: list[bytes] = []
        self._last: bytes | None = None  # last accepted frame
        self._suspect: bytes | None = None  # an abrupt change waiting for confirmation

    def feed(self, data: bytes) -> list[Sample]:
        self._buffer += data
        out: list[Sample] = []
        buf = self._buffer
        pos = 0
        while len(buf) - pos >= FRAME_LEN:
            if not buf[pos] & 0x80:
                pos += 1
                self.stats.bytes_discarded += 1
                continue
            body = buf[pos + 1 : pos + FRAME_LEN]
            bad = next((i for i, b in enumerate(body) if b & 0x80), None)
            if bad is not None:
                # A sync byte inside: this frame is short; restart there.
                self.stats.frames_malformed += 1
                self.stats.bytes_discarded += bad + 1
                pos += bad + 1
                continue
            pos += FRAME_LEN
            out.extend(self._candidate(bytes(buf[pos - FRAME_LEN : pos])))
        del buf[:pos]
        return out

    def _candidate(self, frame: bytes) -> list[Sample]:
        """Accept a frame that continues the last one; hold an abrupt change for one frame.

        Without a checksum, one random byte sequence in 32 passes the sync bits; under a
        garbage burst such frames put junk pleth values and finger-out flags into the
        stream (and no window could be trusted). A genuine change is confirmed by the next
        frame; a garbage frame is not.
        """
        out: list[Sample] = []
        if self._suspect is not None:
            suspect, self._suspect = self._suspect, None
            if _continues(frame, suspect):
                out += self._accept(suspect)
            else:
                self.stats.frames_malformed += 1
                self.stats.bytes_discarded += FRAME_LEN
        if self._last is None or _continues(frame, self._last):
            out += self._accept(frame)
        else:
            self._suspect = frame
        return out

    def _accept(self, frame: bytes) -> list[Sample]:
        self.stats.frames_ok += 1
        self._last = frame
        self._frames.append(frame)
        return self._flush() if len(self._frames) == BLOCK_FRAMES else []

    def _flush(self) -> list[Sample]:
        frames, self._frames = self._frames, []
        quality = worst_quality(frame_quality(f) for f in frames)
        pleth = np.array([f[1] for f in frames], dtype=np.float32)
        last = frames[-1]
        pr, spo2 = pulse_rate_bpm(last), last[4]
        return oximeter_block(pleth, FRAME_RATE_HZ, None if pr in (0, 255) else pr,
                              None if spo2 == 0 else spo2, quality)


class Cms50dLegacyEncoder:
    """Simulated old-firmware CMS50D+: pleth (0-127 counts at 60 Hz) drives the frame clock.

    One frame per pleth sample, carrying the chunk's pulse rate and SpO2; the
    beep bit is set on the sample nearest each beat's end. Quality BAD sets
    finger-out, UNCERTAIN sets searching.
    """

    waveform_kind: str | None = "ppg"
    waveform_rate_hz: float | None = FRAME_RATE_HZ
    waveform_unit: str | None = "counts"
    waveform_range: tuple[float, float] | None = (0.0, 127.0)

    def frames_for(self, chunk: PhysioChunk) -> bytes:
        samples = np.asarray(chunk.waveform, dtype=np.float64).ravel()
        # NaN (a gap in the source signal) goes on the wire as the baseline.
        pleth = np.clip(np.rint(np.nan_to_num(samples, nan=64.0)), 0, 127)
        beats = _beat_positions(len(pleth), len(chunk.rr_ms))
        pr = 0 if chunk.hr_bpm is None else round(chunk.hr_bpm)
        spo2 = 0 if chunk.spo2_pct is None else round(chunk.spo2_pct)
        out = bytearray()
        for i, value in enumerate(pleth):
            out += encode_frame(
                int(value),
                pr,
                spo2,
                beep=i in beats,
                finger_out=chunk.quality is Quality.BAD,
                searching=chunk.quality is Quality.UNCERTAIN,
            )
        return bytes(out)


def _beat_positions(n_samples: int, n_beats: int) -> set[int]:
    """Sample indices spread evenly over the chunk, one per beat."""
    return {((j + 1) * n_samples) // (n_beats + 1) for j in range(n_beats)} if n_samples else set()


DRIVER = DriverSpec(
    name="contec_cms50d_legacy",
    title="Contec CMS50D+/CMS50E, firmware <= 4.5 (5-byte frames)",
    serial=SerialSettings(baud=19_200, bytesize=8, parity="O", stopbits=1),
    decoder=Cms50dLegacyDecoder,
    encoder=Cms50dLegacyEncoder,
    description=(
        "Finger pulse oximeter with USB cable, old firmware: streams by itself at "
        "about 60 frames/s (pleth, pulse rate, SpO2, finger-out and searching flags)."
    ),
)
