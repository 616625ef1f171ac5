"""A simulated serial sensor on a pseudo-terminal, replaying a real recording.

:class:`SimDevice` opens a pty pair and writes, at the device's real rate, the
byte-exact frames its driver's encoder makes from a recording:

* ECG devices (and chest straps without a waveform): MIT-BIH record 100 (lead
  MLII, 360 Hz, resampled by linear interpolation), heart rate and RR intervals
  from the reference beat annotations ``100_atr.csv``;
* PPG devices (and oximeters without a waveform): the Nonin PPG of ``systole``
  (75 Hz) with its RR intervals ``rr.txt``;
* otherwise a plain 70 bpm rhythm with a synthetic pulse.

The recording is read from ``start_s`` on in real time and loops at its end.
Open ``path`` (the slave side) with pyserial; :meth:`close` closes the master
side, which a reader sees as the device being unplugged.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import errno
import logging
import os
import threading
import time
import tty
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from .sensor_api import DriverSpec, Encoder, PhysioChunk, Quality

log = logging.getLogger(__name__)



def data_dir() -> Path:
    """``VREXPOSURE_SHARED_DATA``, else ``../shared/data`` beside the checkout."""
    env = os.environ.get("VREXPOSURE_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"


DATA_DIR = data_dir()
MITDB_RECORD = DATA_DIR / "mitdb_100" / "100"
NONIN_PPG = DATA_DIR / "nonin_systole" / "ppg.npy"
NONIN_PPG_RATE_HZ = 75.0
#: Annotation symbols of beats (the rest are rhythm, noise and other markers).
BEAT_SYMBOLS = frozenset("NLRBAaJSVrFejnE/fQ?")
#: How much of a long record is loaded (it loops after that).
MAX_LOAD_S = 600.0

FloatArray = npt.NDArray[np.float64]


FAULT_KINDS = ("displaced", "garbage", "unplug", "wrong-device")


@dataclass(frozen=True)
class Fault:
    """A fault the simulator injects ``at_s`` seconds after it starts.

    ``value``: the shift of a displaced beat (s, default 0.224), the size of a garbage
    burst (bytes, default 300), the length of an unplug (s, default 3).
    """

    kind: str
    at_s: float = 5.0
    value: float | None = None

    @classmethod
    def parse(cls, text: str) -> Fault:
        """``KIND[@SECONDS][:VALUE]``, e.g. ``garbage@10:500``, ``unplug@20:3``."""
        head, _, value = text.partition(":")
        kind, _, at = head.partition("@")
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault '{kind}' (one of: {', '.join(FAULT_KINDS)})")
        try:
            return cls(kind, float(at) if at else 5.0, float(value) if value else None)
        except ValueError as exc:
            raise ValueError(f"bad fault '{text}': KIND[@SECONDS][:VALUE]") from exc


@dataclass(frozen=True)
class Recording:
    """A waveform (may be empty) and the reference beat times, both in recording seconds."""

    name: str
    kind: str  # "ecg", "ppg" or "none"
    signal: FloatArray
    rate_hz: float
    beats_s: FloatArray
    duration_s: float

    #: Beats moved in time: (original beat time, shift s). The waveform is warped so
    #: that the complex keeps its shape and the intervals either side change.
    displaced: tuple[tuple[float, float], ...] = ()

    def displace_beat(self, near_s: float, shift_s: float) -> Recording:
        """This recording with the beat nearest ``near_s`` (recording time) moved."""
        t = near_s % self.duration_s
        k = int(np.argmin(np.abs(self.beats_s - t)))
        beats = self.beats_s.copy()
        b = float(beats[k])
        beats[k] += shift_s
        return dataclasses.replace(self, beats_s=beats,
                                   displaced=(*self.displaced, (b, shift_s)))

    def _warp(self, t: FloatArray) -> FloatArray:
        """Output time -> source time: around a displaced beat the source lags by the shift."""
        for b, d in self.displaced:
            ramp_s = 0.4
            up = np.clip((t - (b + d - ramp_s)) / (ramp_s - 0.12), 0.0, 1.0)
            down = np.clip(((b + d + ramp_s) - t) / (ramp_s - 0.12), 0.0, 1.0)
            t = t - d * np.minimum(up, down)
        return t

    def window(self, t0_s: float, n: int, rate_hz: float) -> FloatArray:
        """``n`` samples at ``rate_hz`` from ``t0_s`` on (looping), linearly interpolated."""
        t = (t0_s + np.arange(n) / rate_hz) % self.duration_s
        if self.signal.size == 0:  # synthetic: pulses at the (possibly moved) beat times
            phase = (t[:, None] - self.beats_s[None, :])
            phase = np.where(phase >= 0, phase, np.inf).min(axis=1)
            return np.exp(-((phase - 0.15) / 0.08) ** 2)
        src_t = np.arange(self.signal.size) / self.rate_hz
        return np.interp(self._warp(t), src_t, self.signal)

    def rr_between(self, t0_s: float, t1_s: float) -> tuple[float, ...]:
        """Intervals of the beats that fall in [t0, t1) (recording time, looping)."""
        out: list[float] = []
        span = t1_s - t0_s
        a = t0_s % self.duration_s
        for lo, hi in ((a, min(a + span, self.duration_s)),
                       (0.0, max(0.0, a + span - self.duration_s))):
            if hi <= lo:
                continue
            idx = np.nonzero((self.beats_s >= lo) & (self.beats_s < hi))[0]
            out.extend(float(1000 * (self.beats_s[i] - self.beats_s[i - 1]))
                       for i in idx if i > 0)
        return tuple(out)

    def hr_at(self, t_s: float, n_beats: int = 4) -> float | None:
        """Mean rate over the last ``n_beats`` intervals before ``t_s`` (None before 2 beats)."""
        t = t_s % self.duration_s
        before = self.beats_s[self.beats_s <= t]
        if before.size < 2:
            return None
        rr = np.diff(before[-(n_beats + 1):])
        return float(60.0 / rr.mean())

    def reference_hr(self, t0_s: float, t1_s: float) -> float:
        """Mean heart rate of the reference beats in [t0, t1] (no looping)."""
        beats = self.beats_s[(self.beats_s >= t0_s - 3) & (self.beats_s <= t1_s)]
        return float(60.0 / np.diff(beats).mean())


def load_mitdb(record: Path = MITDB_RECORD, max_s: float = MAX_LOAD_S) -> Recording:
    import wfdb  # optional (test extra); imported only when an ECG recording is used

    header = wfdb.rdheader(str(record))
    rate = float(header.fs)
    n = min(int(header.sig_len), int(max_s * rate))
    rec = wfdb.rdrecord(str(record), channels=[0], sampto=n)
    assert rec.p_signal is not None
    signal = np.asarray(rec.p_signal[:, 0], dtype=np.float64)
    beats: list[float] = []
    csv_path = record.with_name(record.name + "_atr.csv")
    with csv_path.open(newline="") as f:
        for row in csv.DictReader(f):
            if row["symbol"] in BEAT_SYMBOLS:
                beats.append(int(row["sample"]) / rate)
    beats_s = np.asarray(beats)
    duration = n / rate
    return Recording(record.name, "ecg", signal, rate, beats_s[beats_s < duration], duration)


def load_nonin(ppg_path: Path = NONIN_PPG, rate_hz: float = NONIN_PPG_RATE_HZ) -> Recording:
    signal = np.load(ppg_path).astype(np.float64)
    rr_ms: list[float] = []
    with (ppg_path.parent / "rr.txt").open(newline="") as f:
        for row in csv.DictReader(f):
            rr_ms.append(float(row["rr"]))
    beats_s = np.cumsum(rr_ms) / 1000.0
    duration = min(signal.size / rate_hz, float(beats_s[-1]))
    signal = signal[: int(duration * rate_hz)]
    return Recording(ppg_path.stem, "ppg", signal, rate_hz, beats_s[beats_s < duration], duration)


def default_recording(duration_s: float = 60.0, bpm: float = 70.0) -> Recording:
    beats = np.arange(0.5, duration_s, 60.0 / bpm)
    return Recording("default", "none", np.zeros(0), 0.0, beats, duration_s)


def _is_oximeter(driver: DriverSpec) -> bool:
    text = f"{driver.name} {driver.title} {driver.description}".lower()
    return any(word in text for word in ("oximeter", "spo2", "pulse", "ppg"))


def recording_for(driver: DriverSpec, encoder: Encoder, path: Path | None = None) -> Recording:
    """The recording a simulated ``driver`` replays (``path`` overrides the default)."""
    if path is not None:
        if path.suffix == ".npy":
            return load_nonin(path)
        return load_mitdb(path.with_suffix("") if path.suffix in (".dat", ".hea") else path)
    have_ecg = MITDB_RECORD.with_suffix(".dat").exists()
    have_ppg = NONIN_PPG.exists()
    kind = encoder.waveform_kind
    if (kind == "ppg" or (kind is None and _is_oximeter(driver))) and have_ppg:
        return load_nonin()
    if kind != "ppg" and have_ecg:
        return load_mitdb()
    log.warning("shared recordings not found under %s (set VREXPOSURE_SHARED_DATA or put "
                "them at ../shared/data beside the checkout); using a synthetic 70 bpm rhythm",
                DATA_DIR)
    return default_recording()


class SimDevice:
    """A device on a pseudo-terminal replaying ``recording`` through ``driver``'s encoder."""

    def __init__(self, driver: DriverSpec, recording: Path | str | None = None,
                 start_s: float = 30.0, chunk_s: float | None = None,
                 spo2_pct: float = 97.0, faults: Sequence[Fault] = (),
                 wrong_encoder: Encoder | None = None) -> None:
        if driver.encoder is None:
            raise ValueError(f"driver {driver.name} has no encoder to simulate it")
        self.driver = driver
        self.encoder = driver.encoder()
        self.recording = recording_for(driver, self.encoder,
                                       Path(recording) if recording else None)
        self.faults = sorted(faults, key=lambda f: f.at_s)
        for fault in self.faults:
            if fault.kind == "displaced":
                self.recording = self.recording.displace_beat(start_s + fault.at_s,
                                                              fault.value or 0.224)
        #: Frames of another device on this port ("wrong device").
        self.wire_encoder = wrong_encoder or self.encoder
        #: Called with the new path after a simulated unplug and replug.
        self.on_new_path: Callable[[str], None] | None = None
        self._rng = np.random.default_rng(14)
        self.start_s = start_s
        # One chunk per second for devices that only send a summary (HxM: 1 packet/s).
        self.chunk_s = chunk_s or (0.1 if self.encoder.waveform_kind else 1.0)
        self.spo2_pct = spo2_pct
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self._slave)
        self.received = bytearray()  # what the reader wrote to the device
        self.bytes_written = 0
        self.bytes_dropped = 0
        self.elapsed_s = 0.0  # recording time played so far
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False

    @property
    def recording_time_s(self) -> float:
        return self.start_s + self.elapsed_s

    def chunk(self, t0_s: float) -> PhysioChunk:
        """Physiology for [t0, t0 + chunk_s) of the recording."""
        rec, enc = self.recording, self.encoder
        waveform: FloatArray = np.zeros(0)
        if enc.waveform_rate_hz:
            n = round(self.chunk_s * enc.waveform_rate_hz)
            raw = rec.window(t0_s, n, enc.waveform_rate_hz)
            waveform = self._scale(raw)
        return PhysioChunk(hr_bpm=rec.hr_at(t0_s + self.chunk_s),
                           rr_ms=rec.rr_between(t0_s, t0_s + self.chunk_s), waveform=waveform,
                           spo2_pct=self.spo2_pct, quality=Quality.GOOD)

    def _scale(self, raw: FloatArray) -> FloatArray:
        enc, rec = self.encoder, self.recording
        low, high = enc.waveform_range or (-np.inf, np.inf)
        if enc.waveform_kind == "ecg" and rec.kind == "ecg":
            return np.clip(raw, low, high)  # both in mV
        # Map the recording's range onto the device's counts.
        src_lo, src_hi = ((float(rec.signal.min()), float(rec.signal.max()))
                          if rec.signal.size else (0.0, 1.0))
        if not (np.isfinite(low) and np.isfinite(high)):
            low, high = 0.0, 255.0
        scaled = low + (raw - src_lo) / max(src_hi - src_lo, 1e-9) * (high - low)
        return np.clip(scaled, low, high)

    def write(self, data: bytes) -> None:
        """Put bytes on the wire (e.g. garbage from a test); dropped when nobody reads."""
        with self._lock:
            if self._closed:
                return
            view = memoryview(data)
            while view:
                try:
                    written = os.write(self.master, view)
                except BlockingIOError:
                    self.bytes_dropped += len(view)
                    return
                except OSError as exc:
                    if exc.errno in (errno.EIO, errno.EBADF):
                        self.bytes_dropped += len(view)
                        return
                    raise
                self.bytes_written += written
                view = view[written:]

    def _drain_input(self) -> None:
        with self._lock:
            if self._closed:
                return
            try:
                while chunk := os.read(self.master, 4096):
                    self.received += chunk
            except (BlockingIOError, OSError):
                pass

    def start(self) -> SimDevice:
        self._thread = threading.Thread(target=self.run, name=f"sim-{self.driver.name}",
                                        daemon=True)
        self._thread.start()
        return self

    def run(self) -> None:
        """Write frames in real time until :meth:`stop` or :meth:`close`."""
        t_start = time.monotonic()
        k = 0
        pending = [f for f in self.faults if f.kind in ("garbage", "unplug")]
        while not self._stop.is_set() and not self._closed:
            t0 = self.start_s + k * self.chunk_s
            while pending and pending[0].at_s <= k * self.chunk_s:
                fault = pending.pop(0)
                if fault.kind == "garbage":
                    n = int(fault.value or 300)
                    self.write(self._rng.integers(0, 256, n, dtype=np.uint8).tobytes())
                    log.warning("injected %d bytes of garbage", n)
                else:
                    self.unplug(fault.value or 3.0)
            self.write(self.wire_encoder.frames_for(self.chunk(t0)))
            self._drain_input()
            k += 1
            self.elapsed_s = k * self.chunk_s
            self._stop.wait(max(0.0, t_start + k * self.chunk_s - time.monotonic()))

    def unplug(self, for_s: float) -> None:
        """Close the pty (the reader sees the device gone), wait, open a new one."""
        with self._lock:
            for fd in (self.master, self._slave):
                with contextlib.suppress(OSError):
                    os.close(fd)
            log.warning("unplugged %s for %.1f s", self.path, for_s)
        self._stop.wait(for_s)
        with self._lock:
            self.master, self._slave = os.openpty()
            tty.setraw(self._slave)
            os.set_blocking(self.master, False)
            self.path = os.ttyname(self._slave)
        log.warning("plugged back in as %s", self.path)
        if self.on_new_path is not None:
            self.on_new_path(self.path)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(2.0)
            self._thread = None

    def close(self) -> None:
        """Close both ends of the pty (the reader sees the device unplugged)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for fd in (self.master, self._slave):
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.stop()

    def __enter__(self) -> SimDevice:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
