"""The sensor driver API: what a file in ``sensors/`` declares and returns.

A driver is a pure, incremental decoder (``feed(bytes) -> list[Sample]``) plus
the serial settings of its device and an encoder for its simulator. The
runtime (``vrexposure sensor``) owns the port; drivers never touch I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

import numpy as np
import numpy.typing as npt


class Quality(str, Enum):
    """How far a value can be trusted. The panel shows anything but GOOD as uncertain."""

    GOOD = "good"
    UNCERTAIN = "uncertain"
    BAD = "bad"


_QUALITY_RANK = {Quality.GOOD: 0, Quality.UNCERTAIN: 1, Quality.BAD: 2}


def worst_quality(qualities: Iterable[Quality]) -> Quality:
    """The least trustworthy of ``qualities`` (GOOD when there are none)."""
    return max(qualities, key=_QUALITY_RANK.__getitem__, default=Quality.GOOD)


@dataclass(frozen=True, slots=True)
class HeartRate:
    """Heart or pulse rate. A device's explicit "no valid rate" marker decodes as
    ``bpm=0.0`` with ``Quality.BAD`` (the same convention holds for SpO2)."""

    bpm: float
    quality: Quality = Quality.GOOD


@dataclass(frozen=True, slots=True)
class RRIntervals:
    """Beat-to-beat intervals, oldest first."""

    rr_ms: tuple[float, ...]
    quality: Quality = Quality.GOOD


@dataclass(frozen=True, slots=True)
class Waveform:
    """A block of evenly sampled raw signal (ECG in mV, PPG in device units)."""

    kind: str  # "ecg" or "ppg"
    values: npt.NDArray[np.float32]
    rate_hz: float
    unit: str
    quality: Quality = Quality.GOOD


@dataclass(frozen=True, slots=True)
class OxygenSaturation:
    spo2_pct: float
    quality: Quality = Quality.GOOD


@dataclass(frozen=True, slots=True)
class SequenceGap:
    """The device's own sequence counter jumped: ``missing`` frames were lost."""

    missing: int


Sample = HeartRate | RRIntervals | Waveform | OxygenSaturation | SequenceGap


@dataclass
class DecoderStats:
    frames_ok: int = 0
    frames_bad_checksum: int = 0
    frames_malformed: int = 0
    bytes_discarded: int = 0


class Decoder(Protocol):
    """Incremental decoder: bytes in any split, samples out. Never raises on bad input."""

    stats: DecoderStats

    def feed(self, data: bytes) -> list[Sample]: ...


@dataclass(frozen=True)
class PhysioChunk:
    """Physiology for one stretch of simulated time, handed to an :class:`Encoder`.

    The simulator decides how long a stretch is (typically 1 s). Fields a device
    cannot carry are ignored by its encoder.
    """

    #: Current heart rate; ``None`` puts the device's "no valid rate" marker on the wire.
    hr_bpm: float | None = None
    #: Intervals of the beats that ended in this stretch, oldest first.
    rr_ms: tuple[float, ...] = ()
    #: Raw signal at the encoder's ``waveform_rate_hz``, in its ``waveform_unit``
    #: (ECG in mV; PPG in device counts within ``waveform_range``).
    waveform: npt.ArrayLike = ()
    spo2_pct: float | None = None
    #: Signal quality the device should report (mapped onto its status flags).
    quality: Quality = Quality.GOOD


class Encoder(Protocol):
    """Turns physiology into byte-exact frames of one protocol (for simulators).

    Encoders are stateful (device counters, clocks, partial waveform packets),
    so one instance feeds one simulated device. Decoding what ``frames_for``
    returns gives back the chunk's values, quantised to the protocol.
    """

    #: "ecg", "ppg" or None when the protocol carries no waveform.
    waveform_kind: str | None
    waveform_rate_hz: float | None
    waveform_unit: str | None
    #: (min, max) the waveform is clipped to on the wire, in ``waveform_unit``.
    waveform_range: tuple[float, float] | None

    def frames_for(self, chunk: PhysioChunk) -> bytes: ...


@dataclass(frozen=True)
class SerialSettings:
    baud: int
    bytesize: int = 8
    parity: str = "N"  # pyserial PARITY_* letter: N, E, O
    stopbits: float = 1


@dataclass(frozen=True)
class DriverSpec:
    """What a file in ``sensors/`` declares as ``DRIVER``."""

    name: str
    title: str
    serial: SerialSettings
    decoder: Callable[[], Decoder]
    #: Bytes the runtime writes after opening the port (e.g. a start command).
    start_command: bytes = b""
    #: (bytes, interval_s): written periodically to keep the device streaming.
    keepalive: tuple[bytes, float] | None = None
    description: str = ""
    extras: dict[str, object] = field(default_factory=dict)
    #: Factory for this protocol's encoder (used by the device simulators).
    encoder: Callable[[], Encoder] | None = None


class LineSplitter:
    """Splits a byte stream into complete lines for text protocols (pure).

    A line longer than ``max_bytes`` is dropped up to its newline and counted
    once as malformed, with its bytes counted as discarded, so a device stuck
    sending garbage without newlines cannot grow memory without bound.
    """

    def __init__(self, stats: DecoderStats, max_bytes: int) -> None:
        self.stats = stats
        self.max_bytes = max_bytes
        self._line = bytearray()
        self._overflowed = False  # the current line was dropped; discard up to its newline

    def feed(self, data: bytes) -> list[bytes]:
        """Complete lines (each ending in ``\\n``) that ``data`` finishes."""
        lines: list[bytes] = []
        start = 0
        while True:
            end = data.find(b"\n", start)
            if end < 0:
                self._line += data[start:]
                if len(self._line) > self.max_bytes:
                    self._drop_long_line()
                return lines
            self._line += data[start:end + 1]
            start = end + 1
            if len(self._line) > self.max_bytes:
                self._drop_long_line()
            line = bytes(self._line)
            self._line.clear()
            if self._overflowed:
                self.stats.bytes_discarded += len(line)
                self._overflowed = False
                continue
            lines.append(line)

    def _drop_long_line(self) -> None:
        self.stats.bytes_discarded += len(self._line)
        if not self._overflowed:
            self.stats.frames_malformed += 1
        self._overflowed = True
        self._line.clear()


def oximeter_block(pleth: npt.NDArray[np.float32], rate_hz: float, pulse_bpm: int | None,
                   spo2_pct: int | None, quality: Quality) -> list[Sample]:
    """The samples of one block of oximeter frames: pleth, pulse rate and SpO2.

    ``None`` means the device sent its "no reading" code, which decodes as 0
    with quality BAD (the convention of every driver); SpO2 above 100 % is
    treated the same way.
    """
    pulse: Sample = (HeartRate(0.0, Quality.BAD) if pulse_bpm is None
                     else HeartRate(float(pulse_bpm), quality))
    spo2: Sample = (OxygenSaturation(0.0, Quality.BAD) if spo2_pct is None or spo2_pct > 100
                    else OxygenSaturation(float(spo2_pct), quality))
    return [Waveform("ppg", pleth, rate_hz, "counts", quality), pulse, spo2]


def crc8_maxim(data: bytes) -> int:
    """CRC-8/MAXIM-DOW (polynomial 0x8C reflected, init 0), as Zephyr devices use."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8C if crc & 1 else crc >> 1
    return crc


def accept_frame(stats: DecoderStats, payload: bytes, crc_byte: int, end_ok: bool,
                 crc: Callable[[bytes], int] = crc8_maxim) -> bool:
    """Check a candidate ``STX … CRC END`` frame; count what is wrong with it.

    A wrong end byte means the start byte was a false one (it also occurs inside
    payloads): counted as malformed. A wrong CRC is counted as a bad checksum. In
    both cases the caller drops one byte and rescans.
    """
    if not end_ok:
        stats.frames_malformed += 1
        stats.bytes_discarded += 1
        return False
    if crc(payload) != crc_byte:
        stats.frames_bad_checksum += 1
        stats.bytes_discarded += 1
        return False
    return True
