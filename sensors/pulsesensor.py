"""PulseSensor (World Famous Electronics) on an Arduino running PulseSensor Playground.

Plain text at 115200 baud, no integrity check (reference §8;
``PulseSensorSerialOutput.cpp``). Two output modes, both understood:

* PROCESSING_VISUALIZER: ``S<signal 0-1023>`` per printed sample, and on each
  beat ``B<bpm>`` and ``Q<IBI ms>``. Newer versions prefix lower-case letters
  (``a``, ``b``, ...) for several sensors; ``sensor_index`` picks one (0 also
  accepts unprefixed lines).
* SERIAL_PLOTTER (the library default): ``<bpm>,<ibi>,<signal>`` per sample.
  Beats are not marked, so a beat is taken to be a change of (bpm, ibi); two
  beats in a row with identical values merge into one.

Signal samples become ``Waveform`` (ppg, 10-bit counts) blocks of
``BLOCK_SAMPLES``, at the nominal print rate of 50 Hz (one print every ~20 ms;
the real interval is not fixed, which this decoder cannot see). ``B`` ->
``HeartRate`` (0 -> BAD), ``Q`` -> ``RRIntervals`` of one value.

Without a checksum, garbage that happens to look like a line is accepted:
lines are checked for exact syntax and plausible ranges (signal 0-1023, bpm
0-250, IBI 0-3000 ms); other lines count as malformed and are discarded.
All test vectors are [self]-made from the format description.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from vrexposure.sensor_api import (
    DecoderStats,
    DriverSpec,
    HeartRate,
    LineSplitter,
    PhysioChunk,
    Quality,
    RRIntervals,
    Sample,
    SerialSettings,
    Waveform,
)

PRINT_RATE_HZ = 50.0
BLOCK_SAMPLES = 10
MAX_LINE_BYTES = 32
SIGNAL_MAX = 1023
BPM_MAX = 250
IBI_MAX_MS = 3000

_TAGGED = re.compile(rb"([a-z]?)([SBQ])(\d{1,5})")
_PLOTTER = re.compile(rb"(\d{1,5}),(\d{1,5}),(\d{1,5})")
_TAIL_SAMPLE = re.compile(rb"([a-z]?)S(\d{1,4})$")


def visualizer_lines(
    signal: Sequence[int], beats: Sequence[tuple[int, int, int]] = (), prefix: str = ""
) -> bytes:
    """PROCESSING_VISUALIZER output. ``beats`` are (after_sample_index, bpm, ibi_ms):
    ``B``/``Q`` lines printed after that many ``S`` lines."""
    out = bytearray()
    pending = sorted(beats)
    for i in range(len(signal) + 1):
        while pending and pending[0][0] <= i:
            _, bpm, ibi = pending.pop(0)
            out += f"{prefix}B{bpm}\r\n{prefix}Q{ibi}\r\n".encode()
        if i < len(signal):
            out += f"{prefix}S{int(signal[i])}\r\n".encode()
    return bytes(out)


def plotter_line(bpm: int, ibi_ms: int, signal: int) -> bytes:
    """One SERIAL_PLOTTER line."""
    return f"{bpm},{ibi_ms},{signal}\r\n".encode()


class PulseSensorDecoder:
    """Incremental decoder for PulseSensor Playground serial text."""

    def __init__(self, sensor_index: int = 0) -> None:
        self.stats = DecoderStats()
        self._prefixes = {b"", b"a"} if sensor_index == 0 else {bytes((ord("a") + sensor_index,))}
        self._lines = LineSplitter(self.stats, MAX_LINE_BYTES)
        self._signal: list[float] = []
        self._last_plotter_beat: tuple[int, int] | None = None
        self._last_value: float | None = None
        #: Samples put in place of garbled lines (see ``_malformed``).
        self.samples_filled = 0

    def feed(self, data: bytes) -> list[Sample]:
        out: list[Sample] = []
        for line in self._lines.feed(data):
            out.extend(self._decode_line(line))
        return out

    def _malformed(self, line: bytes) -> list[Sample]:
        self.stats.frames_malformed += 1
        self.stats.bytes_discarded += len(line)
        if self._last_value is None:
            return []  # no signal yet: nothing to keep in time
        # A garbled line was most likely a sample line (50 of ~52 lines a second): keep
        # the 50 Hz time base by putting a sample in its place, the value at its end if
        # it survived, else the previous one. Dropping it would shrink time (HR +3 %).
        tail = _TAIL_SAMPLE.search(line.rstrip(b"\r\n"))
        value = self._last_value
        if tail and tail.group(1) in self._prefixes and int(tail.group(2)) <= SIGNAL_MAX:
            value = float(tail.group(2))
        self.samples_filled += 1
        return self._add_signal(value)

    def _decode_line(self, line: bytes) -> list[Sample]:
        text = line.rstrip(b"\r\n")
        if not text:
            self.stats.bytes_discarded += len(line)
            return []
        tagged = _TAGGED.fullmatch(text)
        if tagged:
            prefix, tag, number = tagged.group(1), tagged.group(2), int(tagged.group(3))
            limit = {b"S": SIGNAL_MAX, b"B": BPM_MAX, b"Q": IBI_MAX_MS}[tag]
            if number > limit:
                return self._malformed(line)
            self.stats.frames_ok += 1
            if prefix not in self._prefixes:
                return []  # another sensor on the same board
            if tag == b"S":
                return self._add_signal(number)
            if tag == b"B":
                return [HeartRate(float(number), Quality.GOOD if number else Quality.BAD)]
            return [RRIntervals((float(number),))] if number else []
        plotter = _PLOTTER.fullmatch(text)
        if plotter:
            bpm, ibi, signal = (int(g) for g in plotter.groups())
            if bpm > BPM_MAX or ibi > IBI_MAX_MS or signal > SIGNAL_MAX:
                return self._malformed(line)
            self.stats.frames_ok += 1
            out = self._add_signal(signal)
            beat = (bpm, ibi)
            if beat != self._last_plotter_beat and self._last_plotter_beat is not None and ibi:
                out.append(HeartRate(float(bpm), Quality.GOOD if bpm else Quality.BAD))
                out.append(RRIntervals((float(ibi),)))
            self._last_plotter_beat = beat
            return out
        return self._malformed(line)

    def _add_signal(self, value: float) -> list[Sample]:
        self._last_value = float(value)
        self._signal.append(float(value))
        if len(self._signal) < BLOCK_SAMPLES:
            return []
        values = np.array(self._signal, dtype=np.float32)
        self._signal = []
        return [Waveform("ppg", values, PRINT_RATE_HZ, "counts")]


class PulseSensorEncoder:
    """Simulated PulseSensor Playground sketch printing in one of its two modes.

    The chunk's waveform (0-1023 counts at 50 Hz) gives one ``S`` (or plotter)
    line per sample; each RR interval is a beat, placed evenly over the chunk,
    with BPM from ``hr_bpm`` (or 60000 / RR when it is None). In plotter mode
    the first line carries the running (bpm, ibi) of the previous beat; a chunk
    with beats but no samples prints one line per beat with the last signal.
    """

    waveform_kind: str | None = "ppg"
    waveform_rate_hz: float | None = PRINT_RATE_HZ
    waveform_unit: str | None = "counts"
    waveform_range: tuple[float, float] | None = (0.0, float(SIGNAL_MAX))

    def __init__(self, mode: str = "visualizer") -> None:
        if mode not in ("visualizer", "plotter"):
            raise ValueError("mode is 'visualizer' or 'plotter'")
        self.mode = mode
        self._bpm, self._ibi, self._signal = 0, 0, 512

    def frames_for(self, chunk: PhysioChunk) -> bytes:
        samples = np.asarray(chunk.waveform, dtype=np.float64).ravel()
        # NaN (a gap in the source signal) goes on the wire as the baseline.
        samples = np.nan_to_num(samples, nan=512.0)
        signal = [int(v) for v in np.clip(np.rint(samples), 0, SIGNAL_MAX)]
        n, k = len(signal), len(chunk.rr_ms)
        beats = []
        for j, rr in enumerate(chunk.rr_ms):
            ibi = max(1, min(IBI_MAX_MS, round(rr)))
            bpm = round(chunk.hr_bpm) if chunk.hr_bpm is not None else round(60_000 / ibi)
            beats.append((((j + 1) * n) // (k + 1), max(0, min(BPM_MAX, bpm)), ibi))
        if self.mode == "visualizer":
            return visualizer_lines(signal, beats)
        out = bytearray()
        if not signal:
            for _, bpm, ibi in beats:
                out += plotter_line(bpm, ibi, self._signal)
            if beats:
                self._bpm, self._ibi = beats[-1][1], beats[-1][2]
            return bytes(out)
        pending = list(beats)
        for i, value in enumerate(signal):
            while pending and pending[0][0] <= i:
                _, self._bpm, self._ibi = pending.pop(0)
            out += plotter_line(self._bpm, self._ibi, value)
        self._signal = signal[-1]
        return bytes(out)


DRIVER = DriverSpec(
    name="pulsesensor",
    title="PulseSensor on Arduino (PulseSensor Playground serial text)",
    serial=SerialSettings(baud=115_200),
    decoder=PulseSensorDecoder,
    encoder=PulseSensorEncoder,
    description=(
        "Hobby PPG clip on an Arduino: raw 10-bit pulse signal, BPM and IBI as text "
        "lines. No integrity check: for demos, not for clinical claims."
    ),
)
