"""The sensor runtime: one serial device → its driver's decoder → the bridge.

:func:`samples_to_messages` (pure) turns decoded samples into wire payloads;
:class:`SensorRuntime` is the I/O shell that owns the serial port. Samples are
stamped on the session clock when their bytes arrive (``"arrival_stamped":
True`` in every payload); a waveform block is stamped so that its *last*
sample falls on the arrival time.

On port loss (a ``SerialException``/``OSError`` while reading or writing) the
runtime publishes ``sensor.<src>`` ``{"event": "disconnected"}``, retries
opening with exponential back-off (0.2 s doubling to 5 s) and publishes
``{"event": "connected", "gap_s": ...}`` once the port is back. The port to
reopen is asked from ``port_resolver`` on every attempt, so a device that comes
back under a new name (a new Bluetooth rfcomm or pseudo-terminal node) is found.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

import serial

from . import protocol
from .client import ControlClient, HostUnreachable, Publisher
from .config import Endpoints
from .sensor_api import (
    DecoderStats,
    DriverSpec,
    HeartRate,
    OxygenSaturation,
    RRIntervals,
    Sample,
    SequenceGap,
    Waveform,
)

log = logging.getLogger(__name__)

Message = tuple[str, dict[str, Any], float]

BACKOFF_START_S = 0.2
BACKOFF_MAX_S = 5.0
READ_TIMEOUT_S = 0.05
STATUS_INTERVAL_S = 1.0
#: A live port that gives bytes but no valid frame for this long is the wrong device.
NO_FRAMES_S = 3.0
#: Persisting problems (port missing, wrong device, no host) are logged again this often.
REMIND_S = 5.0


def _finite_in(value: float, low: float, high: float) -> bool:
    return math.isfinite(value) and low <= value <= high


def samples_to_messages(samples: Sequence[Sample], t_s: float) -> list[Message]:
    """Wire messages ``(kind, payload, t_s)`` for samples whose bytes arrived at ``t_s``.

    Values the protocol would refuse (out-of-range rates, empty blocks) are dropped.
    """
    out: list[Message] = []
    for sample in samples:
        if isinstance(sample, HeartRate):
            if _finite_in(sample.bpm, 0.0, 400.0):
                out.append(("hr", {"bpm": float(sample.bpm), "quality": sample.quality.value,
                                   "arrival_stamped": True}, t_s))
        elif isinstance(sample, RRIntervals):
            rr = [float(v) for v in sample.rr_ms if _finite_in(float(v), 1e-6, 9_999.0)]
            if rr:
                out.append(("rr", {"rr_ms": rr, "quality": sample.quality.value,
                                   "arrival_stamped": True}, t_s))
        elif isinstance(sample, Waveform):
            n = len(sample.values)
            if n == 0 or sample.kind not in ("ecg", "ppg") or not sample.rate_hz > 0:
                continue
            payload = protocol.chunk_payload(sample.values, sample.rate_hz, sample.unit,
                                             sample.quality.value)
            payload["arrival_stamped"] = True
            out.append((sample.kind, payload, t_s - (n - 1) / sample.rate_hz))
        elif isinstance(sample, OxygenSaturation):
            if _finite_in(sample.spo2_pct, 0.0, 100.0):
                out.append(("spo2", {"spo2_pct": float(sample.spo2_pct),
                                     "quality": sample.quality.value,
                                     "arrival_stamped": True}, t_s))
        elif isinstance(sample, SequenceGap):
            out.append(("sensor", {"event": "gap", "missing": int(sample.missing),
                                   "arrival_stamped": True}, t_s))
    return out


class HeartRateDeriver:
    """The heart rate the therapist sees, computed from the device's raw beats (pure).

    A waveform (ECG or PPG) or beat-to-beat intervals go through the streaming
    physiology pipeline, which flags every window it cannot trust. Once a device
    has given such raw data, its own heart-rate figure is demoted to the source
    ``<src>.device`` so that ``hr.<src>`` carries one trustworthy series.
    """

    def __init__(self) -> None:
        from .physio import EcgHeartRatePipeline, PpgHeartRatePipeline, RrHeartRatePipeline

        self._ecg = EcgHeartRatePipeline()
        self._ppg = PpgHeartRatePipeline()
        self._rr = RrHeartRatePipeline()
        self.origin: str | None = None  # "ecg", "ppg" or "rr" once raw data has arrived
        self._not_before_s: float = -math.inf  # windows ending earlier are not published

    @property
    def active(self) -> bool:
        return self.origin is not None

    def reset(self, t_s: float | None = None) -> None:
        """After a gap in the data: start new segments (no interval spans the gap).

        With ``t_s`` (the time the data came back), windows ending before it are not
        published: they cover the outage and would arrive late, looking current.
        """
        for pipeline in (self._ecg, self._ppg, self._rr):
            pipeline.reset()
        if t_s is not None:
            self._not_before_s = max(self._not_before_s, t_s)

    def feed(self, samples: Sequence[Sample], t_s: float) -> list[Message]:
        estimates: list[Any] = []
        for sample in samples:
            if isinstance(sample, Waveform) and sample.kind in ("ecg", "ppg") \
                    and len(sample.values) and sample.rate_hz > 0:
                if self.origin in (None, "rr"):
                    self.origin = sample.kind
                if sample.kind != self.origin:
                    continue
                pipeline = self._ecg if sample.kind == "ecg" else self._ppg
                t0 = t_s - (len(sample.values) - 1) / sample.rate_hz
                try:
                    out = pipeline.feed(sample.values, t0, sample.rate_hz, sample.quality)
                except ValueError as exc:  # e.g. a rate too low for beat detection
                    log.warning("heart rate not derived from %s: %s", sample.kind, exc)
                    continue
                estimates.extend(out.estimates)
            elif isinstance(sample, RRIntervals) and self.origin in (None, "rr"):
                rr = [float(v) for v in sample.rr_ms if _finite_in(float(v), 1e-6, 9_999.0)]
                if rr:
                    self.origin = "rr"
                    estimates.extend(self._rr.feed(rr, t_s, sample.quality).estimates)
            elif isinstance(sample, SequenceGap):
                self.reset()
        messages: list[Message] = []
        for estimate in estimates:
            if estimate.t_s < self._not_before_s:
                continue
            trusted = estimate.bpm is not None and _finite_in(estimate.bpm, 0.0, 400.0)
            payload: dict[str, Any] = {
                "bpm": float(estimate.bpm) if trusted and estimate.bpm is not None else 0.0,
                "quality": estimate.quality.value if trusted else "bad",
                "origin": self.origin, "n_beats": estimate.n_beats,
                "window_s": estimate.window_s, "reasons": list(estimate.reasons),
                # One readable reason for the panel when the value is not to be trusted.
                "quality_reason": ", ".join(estimate.reasons),
                "n_ectopic": estimate.n_ectopic}
            if estimate.rmssd_ms is not None and math.isfinite(estimate.rmssd_ms):
                payload["rmssd_ms"] = float(estimate.rmssd_ms)
            messages.append(("hr", payload, estimate.t_s))
        return messages


class SensorRuntime:
    """Reads one serial device and publishes what its driver decodes.

    ``clock`` returns session time; by default local monotonic time plus the
    offset from the host's ``ping`` (``ControlClient.sync_clock``), or plain
    monotonic time when the host does not answer.
    """

    def __init__(self, driver: DriverSpec, port: str, endpoints: Endpoints,
                 source_id: str | None = None, clock: Callable[[], float] | None = None,
                 port_resolver: Callable[[], str | None] | None = None,
                 status_interval_s: float = STATUS_INTERVAL_S,
                 sync_timeout_s: float = 1.0, remind_s: float = REMIND_S,
                 no_frames_s: float = NO_FRAMES_S) -> None:
        if driver.extras.get("transport") == "ble":
            raise ValueError(f"{driver.name} is a Bluetooth LE device, not a serial port")
        self.driver = driver
        self.port = port
        self.endpoints = endpoints
        self.source_id = source_id or driver.name
        protocol.check_topic(f"sensor.{self.source_id}")
        self.port_resolver = port_resolver or (lambda: self.port)
        self.status_interval_s = status_interval_s
        self.sync_timeout_s = sync_timeout_s
        self.remind_s = remind_s
        self.no_frames_s = no_frames_s
        self._clock = clock
        self._offset_s = 0.0
        self.decoder = driver.decoder()
        self.deriver = HeartRateDeriver()
        self.bytes_read = 0
        self.connected = False
        self.disconnects = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._serial: serial.Serial | None = None
        self.host_synced = False
        #: What is wrong right now (missing port, wrong device), ``None`` when all is well.
        self.problem: str | None = None

    # --- clock -------------------------------------------------------------------

    def now(self) -> float:
        return self._clock() if self._clock is not None else time.monotonic() + self._offset_s

    def _sync_clock(self) -> None:
        if self._clock is not None:
            return
        control = ControlClient(self.endpoints.control, "sensor", self.source_id,
                                reply_timeout_s=min(0.5, self.sync_timeout_s))
        try:
            self._offset_s = control.sync_clock(rounds=4, timeout_s=self.sync_timeout_s)
            if not self.host_synced:
                log.warning("session host at %s answered; clock synchronised",
                            self.endpoints.control)
            self.host_synced = True
        except HostUnreachable:
            log.warning("no session host at %s; stamping with the local clock and retrying "
                        "every %.0f s", self.endpoints.control, self.remind_s)
        finally:
            control.close()

    # --- stats -------------------------------------------------------------------

    @property
    def stats(self) -> DecoderStats:
        return self.decoder.stats

    def status_payload(self) -> dict[str, Any]:
        out = {"event": "status", "connected": self.connected, "device": self.driver.name,
               "port": self.port, "bytes_read": self.bytes_read,
               "disconnects": self.disconnects, **asdict(self.decoder.stats)}
        if self.problem is not None:
            out["problem"] = self.problem
        return out

    # --- port --------------------------------------------------------------------

    def _open(self) -> serial.Serial:
        port = self.port_resolver() or self.port
        settings = self.driver.serial
        ser = serial.Serial(port, baudrate=settings.baud or 9600, bytesize=settings.bytesize,
                            parity=settings.parity, stopbits=settings.stopbits,
                            timeout=READ_TIMEOUT_S)
        try:
            ser.reset_input_buffer()  # bytes queued while nobody listened are stale
            if self.driver.start_command:
                ser.write(self.driver.start_command)
        except (serial.SerialException, OSError):
            ser.close()
            raise
        self.port = port
        return ser

    def _close_port(self) -> None:
        if self._serial is not None:
            try:
                self._serial.close()
            except (serial.SerialException, OSError):
                pass
            self._serial = None

    # --- main loop ---------------------------------------------------------------

    def start(self) -> SensorRuntime:
        self._thread = threading.Thread(target=self.run, name=f"sensor-{self.source_id}",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 3.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def run(self) -> None:
        """Until :meth:`stop`: keep the port open, decode, publish."""
        publisher = Publisher(self.endpoints.publish, self.source_id, clock=self.now,
                              control=self.endpoints.control)
        try:
            publisher.wait_connected(2.0)
            self._sync_clock()
            self._loop(publisher)
        finally:
            self._close_port()
            self.connected = False
            try:
                publisher.publish("sensor", {"event": "stopped", **asdict(self.decoder.stats)})
            finally:
                publisher.close()

    def _report(self, publisher: Publisher, problem: str | None, now_local: float) -> None:
        """Say what is wrong: in the log (without -v) and as ``sensor_lost`` on the host.

        A new problem is published at once as a ``disconnected`` event (the host raises
        ``sensor_lost``); a persisting one is logged again every ``REMIND_S``; its end is
        published as ``connected`` (the host clears the alert).
        """
        if problem is None:
            if self.problem is not None:
                log.warning("%s on %s: ok again", self.driver.name, self.port)
                self.problem = None
                publisher.publish("sensor", {"event": "connected", "port": self.port})
            return
        if problem != self.problem:
            self.problem = problem
            self._remind_at = now_local + self.remind_s
            log.warning("%s", problem)
            publisher.publish("sensor", {"event": "disconnected", "port": self.port,
                                         "reason": problem[:200]})
        elif now_local >= self._remind_at:
            self._remind_at = now_local + self.remind_s
            log.warning("still: %s", problem)

    def _loop(self, publisher: Publisher) -> None:
        backoff = BACKOFF_START_S
        lost_at: float | None = None
        next_status = 0.0
        next_keepalive = math.inf
        retry_at = 0.0
        self._remind_at = 0.0
        next_sync = time.monotonic() + self.remind_s
        frames_ok_at_open = 0
        bytes_at_open = 0
        opened_at = 0.0
        while not self._stop.is_set():
            now_local = time.monotonic()
            if now_local >= next_status:
                publisher.publish("sensor", self.status_payload())
                next_status = now_local + self.status_interval_s
            if not self.host_synced and self._clock is None and now_local >= next_sync:
                self._sync_clock()  # no host yet: keep asking, and say so
                next_sync = time.monotonic() + self.remind_s
            if self._serial is None:
                if now_local < retry_at:
                    self._stop.wait(max(0.0, min(retry_at, next_status) - now_local))
                    continue
                try:
                    self._serial = self._open()
                except (serial.SerialException, OSError, ValueError) as exc:
                    self._report(publisher, f"cannot open {self.port} for {self.driver.name}: "
                                 f"{exc}; retrying", now_local)
                    log.info("retry %s in %.1f s", self.port, backoff)
                    retry_at = time.monotonic() + backoff
                    backoff = min(BACKOFF_MAX_S, backoff * 2)
                    continue
                backoff = BACKOFF_START_S
                self.connected = True
                if self.problem is not None and self.problem.startswith("cannot open"):
                    log.warning("%s opened", self.port)
                    self.problem = None
                event: dict[str, Any] = {"event": "connected", "port": self.port}
                if lost_at is not None:
                    event["gap_s"] = time.monotonic() - lost_at
                    lost_at = None
                    self.deriver.reset(self.now())  # no interval spans, no window backdated
                publisher.publish("sensor", event)
                frames_ok_at_open = self.decoder.stats.frames_ok
                bytes_at_open = self.bytes_read
                opened_at = time.monotonic()
                keepalive = self.driver.keepalive
                next_keepalive = time.monotonic() + keepalive[1] if keepalive else math.inf
            try:
                if time.monotonic() >= next_keepalive and self.driver.keepalive:
                    self._serial.write(self.driver.keepalive[0])
                    next_keepalive = time.monotonic() + self.driver.keepalive[1]
                data = self._serial.read(max(1, self._serial.in_waiting))
            except (serial.SerialException, OSError) as exc:
                log.warning("lost %s: %s", self.port, exc)
                self._close_port()
                self.connected = False
                self.disconnects += 1
                lost_at = time.monotonic()
                retry_at = lost_at + BACKOFF_START_S
                backoff = BACKOFF_START_S * 2
                self.problem = None
                publisher.publish("sensor", {"event": "disconnected", "port": self.port,
                                             "reason": str(exc)[:200]})
                continue
            if self.decoder.stats.frames_ok > frames_ok_at_open:
                if self.problem is not None:
                    self._report(publisher, None, now_local)
            elif (self.bytes_read > bytes_at_open
                  and time.monotonic() - opened_at > self.no_frames_s):
                self._report(publisher, f"no valid {self.driver.name} frames on {self.port}: "
                             "is it the right device?", now_local)
            if not data:
                continue
            t_s = self.now()
            self.bytes_read += len(data)
            samples = self.decoder.feed(data)
            derived = self.deriver.feed(samples, t_s)
            for kind, payload, stamp in samples_to_messages(samples, t_s):
                demoted = kind == "hr" and self.deriver.active
                publisher.publish(kind, payload, stamp,
                                  source=f"{self.source_id}.device" if demoted else None)
            for kind, payload, stamp in derived:
                publisher.publish(kind, payload, stamp)
