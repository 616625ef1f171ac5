"""BITalino (r)evolution (PLUX) over Bluetooth SPP or USB-serial, 115200 baud.

Source: reference §5 (PyPI ``bitalino`` 1.2.6 for the frame layout and commands,
PLUX ECG sensor data sheet for the transfer function).

Frame size for n analog channels: ``ceil((12 + 10n) / 8)`` for n <= 4, else
``ceil((52 + 6(n - 4)) / 8)`` -> 3, 4, 6, 7, 8, 8 bytes. Read from the end: the
last byte holds seq (high nibble) and CRC-4 (low nibble); the one before holds
the digital I1 I2 O1 O2 bits (7..4); analog slots 1-4 are 10 bit, slots 5-6 are
6 bit. Slot k holds the k-th *acquired* channel in ascending order, so with only
A2 acquired its value is in slot 1.

CRC-4 (x^4 + x + 1) runs MSB-first over the whole frame with the CRC nibble
zeroed. There is no sync byte, so the decoder locks on only after two
consecutive frames pass the CRC with consecutive sequence numbers; once locked
it expects a frame right after the previous one, counts a failing CRC as a bad
checksum and drops the lock. Sequence jumps give ``SequenceGap`` (lost frames
modulo 16: 16 or more lost frames in a row cannot be seen).

The ECG channel becomes a ``Waveform`` in mV via the data sheet's transfer
function ``ECG(V) = (ADC / 2**n - 1/2) * VCC / G_ECG`` (VCC 3.3 V, gain 1100;
n is the slot's bit width), in blocks of ``rate_hz / 10`` samples (at least one)
and at every sequence gap. A block touching the ADC rails (0 or full scale;
electrodes off or clipping) is UNCERTAIN; that rule is this driver's, the
device reports no quality. The only frame vector is [self]-made: ``90 39 55``
= seq 5, O1 = O2 = 1, slot-1 value 612.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vrexposure.sensor_api import (
    DecoderStats,
    DriverSpec,
    PhysioChunk,
    Quality,
    Sample,
    SequenceGap,
    SerialSettings,
    Waveform,
)

RATE_CODES_HZ: dict[int, int] = {1: 0, 10: 1, 100: 2, 1000: 3}
CMD_STOP = 0x00
VCC_V = 3.3
ECG_GAIN = 1100
SEQ_WRAP = 16
SLOT_BITS = (10, 10, 10, 10, 6, 6)
DEFAULT_CHANNELS = (2,)
DEFAULT_ECG_CHANNEL = 2
DEFAULT_RATE_HZ = 1000


def frame_size(n_channels: int) -> int:
    if not 1 <= n_channels <= 6:
        raise ValueError(f"BITalino acquires 1-6 analog channels, not {n_channels}")
    bits = 12 + 10 * n_channels if n_channels <= 4 else 52 + 6 * (n_channels - 4)
    return math.ceil(bits / 8)


def _crc4_step(x: int, byte: int) -> int:
    """Feed one byte, MSB first, into the CRC-4 (x^4 + x + 1) register."""
    for bit in range(7, -1, -1):
        x <<= 1
        if x & 0x10:
            x ^= 0x03
        x = (x ^ ((byte >> bit) & 1)) & 0x0F
    return x


# Byte-at-a-time table: the decoder runs this at up to 1000 frames/s.
_CRC4_TABLE = [[_crc4_step(x, byte) for byte in range(256)] for x in range(16)]


def crc4(frame: bytes) -> int:
    """CRC-4 (x^4+x+1) of a frame, computed with its own CRC nibble zeroed."""
    x = 0
    for byte in frame[:-1]:
        x = _CRC4_TABLE[x][byte]
    return _CRC4_TABLE[x][frame[-1] & 0xF0]


def start_command(channels: Sequence[int]) -> int:
    """The 1-byte start command for analog channels A1..A6 (1-based)."""
    mask = 0
    for ch in channels:
        mask |= 1 << (ch - 1)
    return 0x01 | (mask << 2)


def rate_command(rate_hz: int) -> int:
    return (RATE_CODES_HZ[rate_hz] << 6) | 0x03


def adc_to_mv(adc: float, bits: int) -> float:
    return (adc / 2**bits - 0.5) * VCC_V / ECG_GAIN * 1000.0


def mv_to_adc(mv: float, bits: int) -> int:
    full = 2**bits
    mv = max(-1e3, min(1e3, mv))  # keep round() finite; the clip below does the rest
    return max(0, min(full - 1, round((mv / 1000.0 * ECG_GAIN / VCC_V + 0.5) * full)))


@dataclass(frozen=True)
class BitalinoFrame:
    seq: int
    digital: tuple[int, int, int, int]  # I1, I2, O1, O2
    analog: tuple[int, ...]  # by slot


def parse_frame(frame: bytes, n_channels: int) -> BitalinoFrame:
    """Fields of one frame (CRC not checked here)."""
    b = frame
    slots = [
        ((b[-2] & 0x0F) << 6) | (b[-3] >> 2),
        ((b[-3] & 0x03) << 8) | b[-4] if n_channels > 1 else 0,
        (b[-5] << 2) | (b[-6] >> 6) if n_channels > 2 else 0,
        ((b[-6] & 0x3F) << 4) | (b[-7] >> 4) if n_channels > 3 else 0,
        ((b[-7] & 0x0F) << 2) | (b[-8] >> 6) if n_channels > 4 else 0,
        b[-8] & 0x3F if n_channels > 5 else 0,
    ]
    digital = ((b[-2] >> 7) & 1, (b[-2] >> 6) & 1, (b[-2] >> 5) & 1, (b[-2] >> 4) & 1)
    return BitalinoFrame(b[-1] >> 4, digital, tuple(slots[:n_channels]))


def encode_frame(seq: int, analog: Sequence[int], digital: Sequence[int] = (0, 0, 0, 0)) -> bytes:
    """One frame with a correct CRC; ``analog`` by slot (its length sets the size)."""
    n = len(analog)
    size = frame_size(n)
    v = [int(a) & ((1 << SLOT_BITS[i]) - 1) for i, a in enumerate(analog)] + [0] * (6 - n)
    b = bytearray(8)  # built right-aligned, then cut to size
    d = sum((digital[i] & 1) << (7 - i) for i in range(4))
    b[-1] = (seq % SEQ_WRAP) << 4
    b[-2] = d | (v[0] >> 6)
    b[-3] = ((v[0] & 0x3F) << 2) | (v[1] >> 8)
    b[-4] = v[1] & 0xFF
    b[-5] = v[2] >> 2
    b[-6] = ((v[2] & 0x03) << 6) | (v[3] >> 4)
    b[-7] = ((v[3] & 0x0F) << 4) | (v[4] >> 2)
    b[-8] = ((v[4] & 0x03) << 6) | v[5]
    frame = bytearray(b[-size:])
    frame[-1] |= crc4(bytes(frame))
    return bytes(frame)


class BitalinoDecoder:
    """Incremental decoder for BITalino frames with a fixed channel set."""

    def __init__(
        self,
        channels: Sequence[int] = DEFAULT_CHANNELS,
        ecg_channel: int = DEFAULT_ECG_CHANNEL,
        rate_hz: int = DEFAULT_RATE_HZ,
    ) -> None:
        self.channels = tuple(sorted(set(channels)))
        if ecg_channel not in self.channels:
            raise ValueError(f"ECG channel A{ecg_channel} is not among {self.channels}")
        if rate_hz not in RATE_CODES_HZ:
            raise ValueError(f"rate must be one of {sorted(RATE_CODES_HZ)} Hz")
        self.rate_hz = rate_hz
        self.stats = DecoderStats()
        self._n = len(self.channels)
        self._size = frame_size(self._n)
        self._slot = self.channels.index(ecg_channel)
        self._bits = SLOT_BITS[self._slot]
        self._block = max(1, rate_hz // 10)
        self._buffer = bytearray()
        self._locked = False
        self._last_seq: int | None = None
        self._values: list[float] = []
        self._railed = False

    def _crc_ok(self, pos: int) -> bool:
        frame = bytes(self._buffer[pos : pos + self._size])
        return crc4(frame) == frame[-1] & 0x0F

    def feed(self, data: bytes) -> list[Sample]:
        self._buffer += data
        out: list[Sample] = []
        buf, size = self._buffer, self._size
        pos = 0
        while True:
            if self._locked:
                if len(buf) - pos < size:
                    break
                if not self._crc_ok(pos):
                    self.stats.frames_bad_checksum += 1
                    self.stats.bytes_discarded += 1
                    self._locked = False
                    pos += 1
                    continue
            else:
                # Two CRC-valid frames with consecutive seq numbers to lock on.
                if len(buf) - pos < 2 * size:
                    break
                if not (
                    self._crc_ok(pos)
                    and self._crc_ok(pos + size)
                    and (buf[pos + 2 * size - 1] >> 4)
                    == ((buf[pos + size - 1] >> 4) + 1) % SEQ_WRAP
                ):
                    self.stats.bytes_discarded += 1
                    pos += 1
                    continue
                self._locked = True
            out.extend(self._frame(parse_frame(bytes(buf[pos : pos + size]), self._n)))
            pos += size
        del buf[:pos]
        return out

    def _frame(self, frame: BitalinoFrame) -> list[Sample]:
        self.stats.frames_ok += 1
        out: list[Sample] = []
        if self._last_seq is not None:
            missing = (frame.seq - self._last_seq - 1) % SEQ_WRAP
            if missing:
                out.extend(self._flush())
                out.append(SequenceGap(missing=missing))
        self._last_seq = frame.seq
        adc = frame.analog[self._slot]
        if adc in (0, 2**self._bits - 1):
            self._railed = True
        self._values.append(adc_to_mv(adc, self._bits))
        if len(self._values) >= self._block:
            out.extend(self._flush())
        return out

    def _flush(self) -> list[Sample]:
        if not self._values:
            return []
        quality = Quality.UNCERTAIN if self._railed else Quality.GOOD
        values = np.array(self._values, dtype=np.float32)
        self._values, self._railed = [], False
        return [Waveform("ecg", values, float(self.rate_hz), "mV", quality)]


class BitalinoEncoder:
    """Simulated BITalino: the ECG waveform (mV at ``rate_hz``) drives the frame clock.

    One frame per sample; the ECG goes in its channel's slot, other channels
    carry mid-scale. The sequence number counts 0-15 from the start command.
    """

    waveform_kind: str | None = "ecg"
    waveform_unit: str | None = "mV"

    def __init__(
        self,
        channels: Sequence[int] = DEFAULT_CHANNELS,
        ecg_channel: int = DEFAULT_ECG_CHANNEL,
        rate_hz: int = DEFAULT_RATE_HZ,
    ) -> None:
        self.channels = tuple(sorted(set(channels)))
        self._slot = self.channels.index(ecg_channel)
        self._bits = SLOT_BITS[self._slot]
        self.waveform_rate_hz: float | None = float(rate_hz)
        self.waveform_range: tuple[float, float] | None = (
            adc_to_mv(0, self._bits),
            adc_to_mv(2**self._bits - 1, self._bits),
        )
        self.seq = 0

    def frames_for(self, chunk: PhysioChunk) -> bytes:
        samples = np.asarray(chunk.waveform, dtype=np.float64).ravel()
        samples = np.nan_to_num(samples, nan=0.0)  # a source gap goes out as 0 mV
        analog = [2 ** (SLOT_BITS[i] - 1) for i in range(len(self.channels))]
        out = bytearray()
        for mv in samples:
            analog[self._slot] = mv_to_adc(float(mv), self._bits)
            out += encode_frame(self.seq, analog)
            self.seq = (self.seq + 1) % SEQ_WRAP
        return bytes(out)


def make_driver(
    channels: Sequence[int] = DEFAULT_CHANNELS,
    ecg_channel: int = DEFAULT_ECG_CHANNEL,
    rate_hz: int = DEFAULT_RATE_HZ,
) -> DriverSpec:
    """A DriverSpec for another channel set or rate (``DRIVER`` is A2 ECG at 1000 Hz)."""
    chans = tuple(sorted(set(channels)))
    BitalinoDecoder(chans, ecg_channel, rate_hz)  # validate now, not at connect time
    return DriverSpec(
        name="bitalino",
        title=f"BITalino (r)evolution, ECG on A{ecg_channel}, {rate_hz} Hz",
        serial=SerialSettings(baud=115_200),
        decoder=lambda: BitalinoDecoder(chans, ecg_channel, rate_hz),
        encoder=lambda: BitalinoEncoder(chans, ecg_channel, rate_hz),
        start_command=bytes((rate_command(rate_hz), start_command(chans))),
        description=(
            "DIY/lab biosignal board (SPP or USB-serial): raw ECG in mV from the PLUX "
            "ECG sensor, with sequence-number gap detection."
        ),
        extras={
            "channels": chans,
            "ecg_channel": ecg_channel,
            "rate_hz": rate_hz,
            "stop_command": bytes((CMD_STOP,)),
        },
    )


DRIVER = make_driver()
