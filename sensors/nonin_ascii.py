"""Nonin handheld oximeters, ASCII real-time output (8500, 9847, 2500, Avant 9600, BT4000).

One line per second: ``SPO2=<spo2> HR=<hr>`` with three characters per value,
``---`` when there is no reading, an optional `` F`` suffix (fast mode) and ``*``
(event marker), some models prefix ``HH:MM:SS``; lines end in CR LF. Source:
reference §3 (Nonin operator manuals); no integrity check exists.

Decoding: each line gives ``OxygenSaturation`` then ``HeartRate``; ``---`` gives
the value 0 with Quality.BAD. Neither suffix is a quality flag (fast mode is an
averaging choice, ``*`` a patient/operator event), so both leave the quality
GOOD. Values out of physiological range (SpO2 > 100, HR > 321 — Nonin's upper
display limit) make the line malformed. The reference does not say whether
values are zero-padded: the decoder accepts 1-3 digits with optional leading
spaces; the encoder writes zero-padded three-digit values ([self] format).

Garbage before the record on the same line is discarded (counted), and lines
that hold no record count as malformed with all their bytes discarded. A line
longer than ``MAX_LINE_BYTES`` without a newline is dropped.
"""

from __future__ import annotations

import re

from vrexposure.sensor_api import (
    DecoderStats,
    DriverSpec,
    HeartRate,
    LineSplitter,
    OxygenSaturation,
    PhysioChunk,
    Quality,
    Sample,
    SerialSettings,
)

MAX_LINE_BYTES = 64
HR_MAX_BPM = 321
MISSING = "---"

_RECORD = re.compile(
    rb"(?:(?P<time>\d{2}:\d{2}:\d{2})\s+)?"
    rb"SPO2=\s*(?P<spo2>\d{1,3}|---)\s+HR=\s*(?P<hr>\d{1,3}|---)"
    rb"(?P<flags>(?:\s*[F*])*)\s*$"
)


def encode_line(
    spo2_pct: int | None,
    hr_bpm: int | None,
    *,
    fast: bool = False,
    event: bool = False,
    time_hms: str | None = None,
) -> bytes:
    """One output line; ``None`` writes ``---``."""
    spo2 = MISSING if spo2_pct is None else f"{max(0, min(100, spo2_pct)):03d}"
    hr = MISSING if hr_bpm is None else f"{max(0, min(HR_MAX_BPM, hr_bpm)):03d}"
    text = f"SPO2={spo2} HR={hr}"
    if fast:
        text += " F"
    if event:
        text += "*"
    if time_hms is not None:
        text = f"{time_hms} {text}"
    return text.encode("ascii") + b"\r\n"


class NoninAsciiDecoder:
    """Incremental decoder for the Nonin ASCII line format."""

    def __init__(self) -> None:
        self.stats = DecoderStats()
        self._lines = LineSplitter(self.stats, MAX_LINE_BYTES)

    def feed(self, data: bytes) -> list[Sample]:
        out: list[Sample] = []
        for line in self._lines.feed(data):
            out.extend(self._decode_line(line))
        return out

    def _decode_line(self, line: bytes) -> list[Sample]:
        text = line.rstrip(b"\r\n")
        if not text.strip():
            self.stats.bytes_discarded += len(line)
            return []
        match = _RECORD.search(text)
        spo2 = _value(match["spo2"]) if match else None
        hr = _value(match["hr"]) if match else None
        if match is None or spo2 is None or hr is None or spo2 > 100 or hr > HR_MAX_BPM:
            self.stats.bytes_discarded += len(line)
            self.stats.frames_malformed += 1
            return []
        self.stats.bytes_discarded += match.start()
        self.stats.frames_ok += 1
        return [
            OxygenSaturation(0.0, Quality.BAD) if spo2 < 0 else OxygenSaturation(float(spo2)),
            HeartRate(0.0, Quality.BAD) if hr < 0 else HeartRate(float(hr)),
        ]


def _value(field: bytes) -> int:
    """-1 for ``---``, else the number."""
    return -1 if field == MISSING.encode() else int(field)


class NoninAsciiEncoder:
    """Simulated handheld Nonin: one line per :meth:`frames_for` call (the device prints 1/s).

    Quality BAD (or a missing value) prints ``---``; the ASCII format has no
    other quality signal.
    """

    waveform_kind: str | None = None
    waveform_rate_hz: float | None = None
    waveform_unit: str | None = None
    waveform_range: tuple[float, float] | None = None

    def frames_for(self, chunk: PhysioChunk) -> bytes:
        bad = chunk.quality is Quality.BAD
        spo2 = None if bad or chunk.spo2_pct is None else round(chunk.spo2_pct)
        hr = None if bad or chunk.hr_bpm is None else round(chunk.hr_bpm)
        return encode_line(spo2, hr)


DRIVER = DriverSpec(
    name="nonin_ascii",
    title="Nonin handheld oximeter, ASCII real-time output",
    # The manuals give 8 data bits with a mark 9th bit, or 8N1/8N2; 8N1 reads all of them.
    serial=SerialSettings(baud=9600),
    decoder=NoninAsciiDecoder,
    encoder=NoninAsciiEncoder,
    description="Handheld pulse oximeter printing 'SPO2=.. HR=..' once a second (RS-232/TTL).",
)
