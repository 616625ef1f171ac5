"""``vrexposure lsl``: republish a live session (or a replay) as Lab Streaming Layer outlets.

So that LabRecorder can record vrexposure's streams beside EEG, EDA or eye
tracking from other LSL devices. The gateway subscribes to the session host's
feeds like any consumer and creates one outlet per topic as it first appears:

* waveforms (``ecg``, ``ppg``, ``eda``, ``resp``): float32 at their nominal rate,
  pushed as chunks;
* ``hr`` (bpm, quality 0/1/2), ``spo2``, ``rr`` (one sample per interval, stamped
  at the beat that ends it) and ``pose`` (x y z qw qx qy qz look_angle_deg
  looking_away): double64, irregular rate — the same channels as the recording;
* ``events``: a string marker outlet with one JSON record per event or alert (the
  recording's ``events`` format); ``state``: a marker with the full state JSON each
  time it changes; any other kind (``sensor``, ``render``…) as JSON markers.
  Preview images are not forwarded.

Outlet names are the topics (``hr.sim``, ``ecg.bitalino1``), so an XDF from
LabRecorder has the same stream names as vrexposure's own recording.

Time stamps: a sample's session time is mapped to LSL's clock with the offset
measured by ``ping`` round trips (NTP-style, like every client; re-measured
every ``resync_s`` and when a new session appears). A replay at a speed other
than 1 (or as fast as possible) has no fixed offset, so its samples are stamped
when they arrive.

pylsl is an optional extra (``pip install 'vrexposure[lsl]'``), imported only here.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import zmq

from . import __version__, protocol
from .client import CommandFailed, ControlClient, HostUnreachable, Subscriber
from .clock import OffsetEstimator
from .config import Endpoints
from .protocol import DataMessage
from .recorder import NUMERIC_LAYOUTS, QUALITY_CODE, WAVEFORM_TYPES, jsonable, pose_row

log = logging.getLogger(__name__)

EVENTS_OUTLET = "events"
STATE_OUTLET = "state"
SKIPPED_KINDS = frozenset({"preview"})
DEFAULT_RESYNC_S = 30.0


class LslUnavailable(RuntimeError):
    """pylsl (or its liblsl library) is not installed."""


def import_pylsl() -> Any:
    """The pylsl module, or :class:`LslUnavailable` with how to install it."""
    try:
        import pylsl
    except ImportError as exc:
        raise LslUnavailable("the LSL gateway needs pylsl, an optional extra: "
                             "pip install 'vrexposure[lsl]'") from exc
    except (OSError, RuntimeError) as exc:  # pylsl present, liblsl not loadable
        raise LslUnavailable(f"pylsl is installed but cannot load liblsl: {exc}") from exc
    return pylsl


# --------------------------------------------------------------------------- pure mapping


@dataclass(frozen=True)
class OutletSpec:
    name: str
    type: str
    channel_count: int
    nominal_srate: float  # 0: irregular
    channel_format: str  # "float32" | "double64" | "string"
    source_id: str
    labels: tuple[str, ...]
    units: tuple[str, ...]


EVENTS_SPEC = OutletSpec(EVENTS_OUTLET, "Markers", 1, 0.0, "string", "vrexposure-events",
                         ("event",), ("",))


def outlet_spec(message: DataMessage) -> OutletSpec | None:
    """The LSL outlet a message belongs to (None: not forwarded)."""
    kind, topic = message.kind, message.topic
    if kind in SKIPPED_KINDS:
        return None
    if topic in (protocol.TOPIC_EVENT, protocol.TOPIC_ALERT):
        return EVENTS_SPEC
    if topic == protocol.TOPIC_STATE:
        return OutletSpec(STATE_OUTLET, "Markers", 1, 0.0, "string", "vrexposure-state",
                          ("state",), ("",))
    if kind in WAVEFORM_TYPES:
        n = int(message.payload["n_channels"])
        unit = str(message.payload.get("unit", ""))
        return OutletSpec(topic, WAVEFORM_TYPES[kind], n, float(message.payload["rate_hz"]),
                          "float32", f"vrexposure-{topic}",
                          tuple(f"{kind}{i + 1}" for i in range(n)), (unit,) * n)
    if kind in NUMERIC_LAYOUTS:
        layout = NUMERIC_LAYOUTS[kind]
        return OutletSpec(topic, layout.xdf_type, len(layout.labels), 0.0, "double64",
                          f"vrexposure-{topic}", layout.labels, layout.units)
    return OutletSpec(topic, "JSON", 1, 0.0, "string", f"vrexposure-{topic}", (kind,), ("",))


def message_samples(message: DataMessage) -> tuple[Any, list[float]]:
    """(samples, session times) of a message: a 2-D array (chunks; the time of the last
    sample only) or a list of rows with one time each."""
    kind, p = message.kind, message.payload
    if message.topic in (protocol.TOPIC_EVENT, protocol.TOPIC_ALERT):
        record = {"type": "event", **jsonable(p)}
        return [[json.dumps(record, sort_keys=True)]], [message.t_s]
    if message.topic == protocol.TOPIC_STATE:
        return [[json.dumps(jsonable(p), sort_keys=True)]], [message.t_s]
    if kind in WAVEFORM_TYPES:
        values = protocol.chunk_values(p)
        last = message.t_s + (len(values) - 1) / float(p["rate_hz"])
        return values, [last]
    if kind == "hr":
        return [[float(p["bpm"]), QUALITY_CODE[p.get("quality", "good")]]], [message.t_s]
    if kind == "spo2":
        return [[float(p["spo2_pct"]), QUALITY_CODE[p.get("quality", "good")]]], [message.t_s]
    if kind == "rr":
        # interval i ends at the beat sum(rr[i+1:]) ms before the last beat (at ``t``)
        rr = [float(v) for v in p["rr_ms"]]
        after: list[float] = (np.cumsum(rr[::-1])[::-1] - rr).tolist() if rr else []
        return [[v] for v in rr], [message.t_s - a / 1000.0 for a in after]
    if kind == "pose":
        return [pose_row(p)], [message.t_s]
    return [[json.dumps(jsonable(p), sort_keys=True)]], [message.t_s]


# --------------------------------------------------------------------------- the gateway


class LslGateway:
    """Subscribes to a session host (or replay) and republishes each topic as an LSL outlet.

    ``topics``: topic prefixes to forward (default: everything but previews); events and
    alerts are always forwarded.
    ``source_prefix``: outlets' LSL ``source_id`` is ``<prefix>-<topic>`` (stable, so
    LabRecorder picks a restarted gateway's streams up again; make it unique per room).
    ``on_outlet(spec)`` is called for each outlet created.
    """

    def __init__(self, endpoints: Endpoints, *, topics: Iterable[str] = ("",),
                 resync_s: float = DEFAULT_RESYNC_S, source_prefix: str = "vrexposure",
                 on_outlet: Callable[[OutletSpec], None] | None = None,
                 context: zmq.Context[Any] | None = None, curve: Any = None) -> None:
        self.pylsl = import_pylsl()
        self.endpoints = endpoints
        self.resync_s = resync_s
        self.on_outlet = on_outlet
        self.source_prefix = source_prefix
        self._context = context
        self._curve = curve
        self._topics = tuple(topics) or ("",)
        self.outlets: dict[str, Any] = {}
        self.specs: dict[str, OutletSpec] = {}
        self.counters: Counter[str] = Counter()
        self._offset_s: float | None = None  # session time − local monotonic time
        self._lsl_minus_mono = self.pylsl.local_clock() - time.monotonic()
        self._next_sync_s = 0.0
        self._session_id: str | None = None
        self._state_seq: int | None = None
        self._receipt_stamps = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        subscribe = ["state", "event", "alert"] if "" not in self._topics else [""]
        if "" not in self._topics:
            subscribe += list(self._topics)
        self._sub = Subscriber(endpoints, topics=subscribe, context=context, curve=curve)
        # the marker stream exists from the start, so a recorder can be set up before events
        self._outlet(EVENTS_SPEC)
        self._control = ControlClient(endpoints.control, "observer", "lsl-gateway",
                                      context=context, reply_timeout_s=0.3, curve=curve)

    # -- clock -----------------------------------------------------------------------

    def sync_clock(self) -> bool:
        """Measure the session clock's offset (a few pings); False when the host is silent."""
        # Fresh samples only: the client's estimator keeps its last 32 round trips, and
        # after a clock jump (new session, replay) those old ones would win on round trip.
        self._control.clock = OffsetEstimator()
        try:
            self._offset_s = self._control.sync_clock(rounds=6, timeout_s=1.0)
        except (HostUnreachable, CommandFailed) as exc:
            log.info("lsl: cannot measure the session clock yet: %s", exc)
            self._next_sync_s = time.monotonic() + 2.0
            return False
        self._lsl_minus_mono = self.pylsl.local_clock() - time.monotonic()
        self._next_sync_s = time.monotonic() + self.resync_s
        return True

    def lsl_time(self, t_session: float) -> float:
        """LSL time (local_clock) of a session time; 0.0 means 'now' for pylsl."""
        if self._receipt_stamps or self._offset_s is None:
            return 0.0
        return t_session - self._offset_s + self._lsl_minus_mono

    # -- outlets ---------------------------------------------------------------------

    def _outlet(self, spec: OutletSpec) -> Any:
        outlet = self.outlets.get(spec.name)
        if outlet is not None:
            known = self.specs[spec.name]
            if (known.channel_count, known.nominal_srate, known.channel_format) != \
                    (spec.channel_count, spec.nominal_srate, spec.channel_format):
                self.counters["mismatched"] += 1
                if self.counters["mismatched"] == 1:
                    log.warning("lsl: %s changed its layout (%s ch at %s Hz, now %s ch at %s "
                                "Hz); dropping the new layout", spec.name, known.channel_count,
                                known.nominal_srate, spec.channel_count, spec.nominal_srate)
                return None
            return outlet
        lsl = self.pylsl
        fmt = {"float32": lsl.cf_float32, "double64": lsl.cf_double64,
               "string": lsl.cf_string}[spec.channel_format]
        source_id = spec.source_id.replace("vrexposure", self.source_prefix, 1)
        info = lsl.StreamInfo(spec.name, spec.type, spec.channel_count,
                              spec.nominal_srate or lsl.IRREGULAR_RATE, fmt, source_id)
        channels = info.desc().append_child("channels")
        for label, unit in zip(spec.labels, spec.units, strict=False):
            channel = channels.append_child("channel")
            channel.append_child_value("label", label)
            channel.append_child_value("unit", unit)
            channel.append_child_value("type", spec.type)
        acquisition = info.desc().append_child("acquisition")
        acquisition.append_child_value("manufacturer", "vrexposure")
        acquisition.append_child_value("software", f"vrexposure {__version__}")
        acquisition.append_child_value("clock", "session samples re-stamped on LSL's clock")
        outlet = lsl.StreamOutlet(info)
        self.outlets[spec.name] = outlet
        self.specs[spec.name] = spec
        log.info("lsl: outlet %s (%s, %d ch, %s)", spec.name, spec.type, spec.channel_count,
                 f"{spec.nominal_srate:g} Hz" if spec.nominal_srate else "irregular")
        if self.on_outlet is not None:
            self.on_outlet(spec)
        return outlet

    def handle(self, message: DataMessage) -> None:
        """Forward one message (state only when its sequence number changes)."""
        topic = message.topic
        wanted = topic in (protocol.TOPIC_EVENT, protocol.TOPIC_ALERT) or any(
            topic.startswith(prefix) for prefix in self._topics)
        if topic == protocol.TOPIC_STATE and not self._on_state(message.payload):
            return
        if not wanted:
            return
        if not self._receipt_stamps and time.monotonic() >= self._next_sync_s:
            self.sync_clock()
        spec = outlet_spec(message)
        if spec is None:
            return
        try:
            samples, stamps = message_samples(message)
        except (KeyError, TypeError, ValueError, protocol.ProtocolError) as exc:
            self.counters["malformed"] += 1
            log.warning("lsl: skipped %s: %s", message.topic, exc)
            return
        outlet = self._outlet(spec)
        if outlet is None:
            return
        if isinstance(samples, np.ndarray):
            outlet.push_chunk(samples, self.lsl_time(stamps[-1]))
            self.counters[spec.name] += len(samples)
        else:
            for row, stamp in zip(samples, stamps, strict=True):
                outlet.push_sample(row, self.lsl_time(stamp))
            self.counters[spec.name] += len(samples)

    def _on_state(self, payload: Mapping[str, Any]) -> bool:
        """Track the session; True when this state is new (its seq changed)."""
        session = payload.get("session")
        session = session if isinstance(session, Mapping) else {}
        session_id = session.get("session_id")
        if session_id != self._session_id:
            self._session_id = session_id
            self._state_seq = None
            self._next_sync_s = 0.0  # a new session: measure its clock again
        replay_speed = session.get("replay_speed", 1.0) if session.get("replay") else 1.0
        self._receipt_stamps = replay_speed is None or abs(float(replay_speed) - 1.0) > 1e-9
        t_state = session.get("t_s")
        if (not self._receipt_stamps and self._offset_s is not None
                and isinstance(t_state, int | float)
                and abs(float(t_state) - (time.monotonic() + self._offset_s)) > 0.25):
            # the session clock jumped (a restarted host, a new replay): measure it again
            self._next_sync_s = 0.0
        seq = payload.get("seq")
        if seq == self._state_seq:
            return False
        self._state_seq = seq if isinstance(seq, int) else None
        return True

    # -- running ---------------------------------------------------------------------

    def poll(self, timeout_s: float = 0.1) -> int:
        """Forward what arrives within ``timeout_s``; returns the messages handled."""
        if not self._receipt_stamps and time.monotonic() >= self._next_sync_s:
            self.sync_clock()
        handled = 0
        message = self._sub.recv(timeout_s)
        while message is not None:
            self.handle(message)
            handled += 1
            if handled >= 5000:
                break
            message = self._sub.recv(0)
        return handled

    def run(self, duration_s: float | None = None) -> None:
        """Forward until :meth:`request_stop` (or ``duration_s``)."""
        deadline = None if duration_s is None else time.monotonic() + duration_s
        while not self._stop.is_set() and (deadline is None or time.monotonic() < deadline):
            self.poll(0.1)

    def start(self) -> LslGateway:
        self._thread = threading.Thread(target=self.run, name="lsl-gateway", daemon=True)
        self._thread.start()
        return self

    def request_stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self._sub.close()
        self._control.close()
        self.outlets.clear()  # outlets close when released


def describe(spec: OutletSpec) -> str:
    rate = f"{spec.nominal_srate:g} Hz" if spec.nominal_srate else "irregular"
    return f"LSL outlet {spec.name}: {spec.type}, {spec.channel_count} channel(s), {rate}"


def parse_topics(text: str | None) -> Sequence[str]:
    """``"hr,ecg.sim"`` → ("hr", "ecg.sim"); empty: everything."""
    if not text:
        return ("",)
    return tuple(t.strip() for t in text.split(",") if t.strip())


__all__ = [
    "LslGateway",
    "LslUnavailable",
    "OutletSpec",
    "describe",
    "import_pylsl",
    "message_samples",
    "outlet_spec",
    "parse_topics",
]
