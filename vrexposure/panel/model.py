"""What the therapist panel knows, built from the messages it receives (pure, no Qt, no I/O).

:class:`PanelModel` ingests data messages (``state``, ``event``, ``alert`` and the
data streams) together with the local monotonic time they arrived, and keeps:

* the latest session state, accepting a restarted host (a new session id, or a
  state sequence number that went backwards) and saying so in the log;
* plot buffers: numpy ring buffers of heart rate (with its quality), RR
  intervals (for RMSSD) and ECG per source;
* connection status per source with last-seen times (lost after 3 s of silence,
  or when a sensor reports itself disconnected);
* head pose and the share of time looking away from the stimulus per step visit;
* alerts, expectancies, the command log with the host's acknowledgements or
  errors, and a human-readable session log.

The clock is always passed in (``now_s``: local ``time.monotonic()`` seconds),
so tests drive time explicitly.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from ..protocol import DataMessage, ProtocolError, chunk_values

#: A source (or the host) with no message for this long is shown as lost.
LOST_AFTER_S = 3.0
#: Heart-rate quality codes in the plot buffers.
QUALITY_CODES = {"good": 0, "uncertain": 1, "bad": 2}
GOOD, UNCERTAIN, BAD = 0, 1, 2
#: Kinds whose samples are drawn in plots (their ``sent_ns`` probes measure display latency).
PLOT_KINDS = frozenset({"hr", "ecg"})
#: Alert rule used to draw the band when neither the state nor an alert says the threshold
#: (the hierarchy default: ``mean + max(20 bpm, 3 SD)``).
DEFAULT_RISE_BPM = 20.0
DEFAULT_RISE_SD = 3.0
#: A source whose sample times differ from the session clock by more than this is flagged.
MAX_CLOCK_SKEW_S = 5.0
#: Pose samples further apart than this do not count towards look-away time (a gap).
MAX_POSE_GAP_S = 0.5
RENDERER_KINDS = frozenset({"render", "preview"})
RENDERER_SOURCES = frozenset({"head"})  # pose.head comes from the renderer (headset)

FloatArray = npt.NDArray[np.float64]


# --- ring buffers --------------------------------------------------------------------

class Ring:
    """A fixed-capacity ring of (time, value, quality) samples, oldest dropped first."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be positive")
        self.capacity = capacity
        self._t = np.zeros(capacity, dtype=np.float64)
        self._v = np.zeros(capacity, dtype=np.float64)
        self._q = np.zeros(capacity, dtype=np.int8)
        self._end = 0  # total samples ever written (write position = _end % capacity)

    def __len__(self) -> int:
        return min(self._end, self.capacity)

    @property
    def total(self) -> int:
        """Samples ever appended (including those already overwritten)."""
        return self._end

    def clear(self) -> None:
        self._end = 0

    def append(self, t_s: float, value: float, quality: int = GOOD) -> None:
        i = self._end % self.capacity
        self._t[i], self._v[i], self._q[i] = t_s, value, quality
        self._end += 1

    def extend(self, t_s: npt.ArrayLike, values: npt.ArrayLike, quality: int = GOOD) -> None:
        t = np.asarray(t_s, dtype=np.float64).ravel()
        v = np.asarray(values, dtype=np.float64).ravel()
        if t.shape != v.shape:
            raise ValueError("times and values differ in length")
        n = t.size
        if n == 0:
            return
        if n > self.capacity:  # only the newest samples fit
            skip = n - self.capacity
            t, v, n = t[skip:], v[skip:], self.capacity
            self._end += skip
        start = self._end % self.capacity
        first = min(n, self.capacity - start)
        self._t[start:start + first] = t[:first]
        self._v[start:start + first] = v[:first]
        self._q[start:start + first] = quality
        rest = n - first
        if rest:
            self._t[:rest] = t[first:]
            self._v[:rest] = v[first:]
            self._q[:rest] = quality
        self._end += n

    def _ordered(self, column: npt.NDArray[Any]) -> npt.NDArray[Any]:
        n = len(self)
        if self._end <= self.capacity:
            return column[:n].copy()
        start = self._end % self.capacity
        return np.concatenate((column[start:], column[:start]))

    def arrays(self, since_t_s: float | None = None
               ) -> tuple[FloatArray, FloatArray, npt.NDArray[np.int8]]:
        """Times, values and qualities, oldest first (copies); from ``since_t_s`` if given."""
        t, v, q = self._ordered(self._t), self._ordered(self._v), self._ordered(self._q)
        if since_t_s is not None and t.size:
            first = int(np.searchsorted(t, since_t_s, side="left"))
            t, v, q = t[first:], v[first:], q[first:]
        return t, v, q

    def last_t(self) -> float | None:
        if self._end == 0:
            return None
        return float(self._t[(self._end - 1) % self.capacity])

    def last(self) -> tuple[float, float, int] | None:
        if self._end == 0:
            return None
        i = (self._end - 1) % self.capacity
        return float(self._t[i]), float(self._v[i]), int(self._q[i])


# --- pure helpers ---------------------------------------------------------------------

def rmssd_ms(rr_ms: npt.ArrayLike, max_jump: float = 0.2) -> float | None:
    """RMSSD of successive RR intervals, skipping implausible intervals and jumps.

    An interval outside 300–2000 ms is dropped, and a successive difference larger
    than ``max_jump`` (20 %) of the previous interval is treated as an artefact
    (a missed or extra beat) and left out. ``None`` without at least two differences.
    """
    rr = np.asarray(rr_ms, dtype=np.float64)
    if rr.size < 3:
        return None
    plausible = (rr >= 300.0) & (rr <= 2000.0)
    d = np.diff(rr)
    ok = plausible[1:] & plausible[:-1] & (np.abs(d) <= max_jump * rr[:-1])
    if int(ok.sum()) < 2:
        return None
    return float(np.sqrt(np.mean(d[ok] ** 2)))


def format_duration(seconds: float | None) -> str:
    """``m:ss`` below an hour, ``h:mm:ss`` above; ``–:––`` when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "–:––"
    total = max(0, int(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def format_bytes(size: int | float | None) -> str:
    if size is None:
        return "–"
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"  # pragma: no cover


def _num(value: Any, default: float | None = None) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    return float(value) if math.isfinite(value) else default


#: Session fields that change with every state message (shown by the 4 Hz tick instead).
_RUNNING_FIELDS = frozenset({"t_s", "recording_bytes"})


def _without_clock(session: Any) -> dict[str, Any]:
    return {k: v for k, v in dict(session or {}).items() if k not in _RUNNING_FIELDS}


EVENT_TEXT = {
    "baseline_started": "Baseline started",
    "baseline_completed": "Baseline complete",
    "exposure_started": "Exposure started",
    "paused": "Paused",
    "resumed": "Resumed",
    "stopped": "STOP: calm scene",
    "suds_requested": "SUDS requested from the patient",
    "suggestion_accepted": "Suggestion accepted",
    "suggestion_dismissed": "Suggestion dismissed",
    "ended": "Session ended",
    "controller_connected": "Panel in control",
    "controller_lost": "Controlling panel lost",
    "session_resumed": "Session resumed by the host",
}


def describe_event(event: Mapping[str, Any]) -> str:
    """One line a therapist can read for a host ``event``/``alert`` payload."""
    kind = str(event.get("kind", "?"))
    by = event.get("by")
    suffix = f" ({by})" if by else ""
    if kind == "step_changed":
        return (f"Step {int(event.get('from', 0)) + 1} → {int(event.get('to', 0)) + 1} "
                f"({event.get('reason', '')}){suffix}")
    if kind == "exposure_started":
        return f"Exposure started at step {int(event.get('step_index', 0)) + 1}{suffix}"
    if kind == "intensity_changed":
        return f"Intensity {round(100 * float(event.get('intensity', 0.0)))} %{suffix}"
    if kind == "suds_recorded":
        return (f"SUDS {event.get('value')} at step {int(event.get('step_index', 0)) + 1}"
                f"{suffix}")
    if kind == "expectancy_recorded":
        return (f"Prediction: “{event.get('outcome')}” {event.get('likelihood_pct')} %"
                f"{suffix}")
    if kind == "expectancy_outcome":
        verdict = "happened" if event.get("happened") else "did not happen"
        return f"Outcome: “{event.get('outcome')}” {verdict}{suffix}"
    if kind == "marker":
        return f"Marker: {event.get('text')}{suffix}"
    if kind == "note":
        lines = str(event.get("text", "")).strip().splitlines() or [""]
        more = f" (+{len(lines) - 1} more lines)" if len(lines) > 1 else ""
        return f"Note: {lines[-1]}{more}{suffix}"
    if kind == "advance_suggested":
        return f"Suggestion: advance ({describe_reason(event)})"
    if kind == "auto_advance_set":
        return f"Auto-advance {'on' if event.get('enabled') else 'off'}{suffix}"
    if kind == "auto_advanced":
        return (f"Auto-advanced to step {int(event.get('to', 0)) + 1} "
                f"({event.get('reason', '')})")
    if kind == "alert":
        return describe_alert(event)
    if kind == "alert_cleared":
        return f"Alert cleared: {event.get('alert')}"
    if kind == "baseline_completed":
        if event.get("mean_bpm") is None:
            return f"Baseline complete: no trustworthy heart rate ({event.get('warning', '')})"
        return (f"Baseline complete: {float(event['mean_bpm']):.0f} ± "
                f"{float(event.get('sd_bpm') or 0.0):.1f} bpm")
    if kind in ("paused", "stopped"):
        reason = event.get("reason")
        text = EVENT_TEXT[kind]
        return f"{text}{f': {reason}' if reason and reason not in ('command', 'STOP') else ''}" \
            f"{suffix}"
    if kind in ("controller_connected", "controller_lost"):
        return f"{EVENT_TEXT[kind]}: {event.get('client')}"
    return f"{EVENT_TEXT.get(kind, kind.replace('_', ' ').capitalize())}{suffix}"


def describe_reason(suggestion: Mapping[str, Any]) -> str:
    """Why the host suggests advancing, in words."""
    reason = str(suggestion.get("reason", ""))
    detail = suggestion.get("detail") or {}
    if reason == "suds_drop":
        return (f"SUDS fell from a peak of {detail.get('peak_suds')} to "
                f"{detail.get('last_suds')} ({detail.get('drop_pct')} % drop)")
    if reason == "time_cap":
        return (f"{format_duration(_num(detail.get('time_in_step_s')))} in this step "
                f"(cap {format_duration(_num(detail.get('max_time_in_step_s')))})")
    if reason == "expectancy_violated":
        return (f"the feared outcome “{detail.get('outcome')}” did not happen "
                f"(predicted {detail.get('likelihood_pct')} %)")
    return reason.replace("_", " ")


def describe_alert(alert: Mapping[str, Any]) -> str:
    name = str(alert.get("alert", "alert"))
    if name == "hr_above_baseline":
        value, threshold = _num(alert.get("value_bpm")), _num(alert.get("threshold_bpm"))
        sustained = _num(alert.get("sustained_s"))
        text = "Heart rate above the patient's baseline"
        if value is not None and threshold is not None:
            text += f": {value:.0f} bpm > {threshold:.0f} bpm"
        if sustained is not None:
            text += f" for {sustained:.0f} s" if sustained >= 10 else f" for {sustained:.1f} s"
        return text
    return name.replace("_", " ")


# --- records ------------------------------------------------------------------------

class Link(str, Enum):
    """Connection state of the host or of one source."""

    NOT_SEEN = "not seen"
    OK = "connected"
    LOST = "lost"
    DISCONNECTED = "disconnected"  # the source is alive but reports its device is not


@dataclass
class SourceStatus:
    """One publishing source (a sensor, the simulated patient, the renderer)."""

    name: str
    first_seen_s: float
    last_seen_s: float
    counts: dict[str, int] = field(default_factory=dict)
    device_connected: bool | None = None
    device_info: dict[str, Any] = field(default_factory=dict)
    #: Sample time minus the session clock at arrival (s): large when the source's clock
    #: is not synchronised to the session (its data would be drawn off the plot).
    clock_skew_s: float | None = None

    @property
    def role(self) -> str:
        if RENDERER_KINDS & self.counts.keys() or self.name in RENDERER_SOURCES:
            return "renderer"
        return "sensor"

    def link(self, now_s: float, lost_after_s: float = LOST_AFTER_S) -> Link:
        if now_s - self.last_seen_s > lost_after_s:
            return Link.LOST
        if self.device_connected is False:
            return Link.DISCONNECTED
        return Link.OK

    def silent_s(self, now_s: float) -> float:
        return max(0.0, now_s - self.last_seen_s)


@dataclass
class CommandRecord:
    id: str
    name: str
    args: dict[str, Any]
    sent_s: float
    status: str = "pending"  # pending | ok | refused | unreachable
    error: str = ""
    state_seq: int | None = None
    events: list[str] = field(default_factory=list)
    answered_s: float | None = None
    attempts_s: float = 0.0  # for STOP: how long it has been retried

    @property
    def done(self) -> bool:
        return self.status != "pending"


@dataclass
class LookAway:
    """Time looking away from the stimulus during one visit of a step (pose time, s)."""

    away_s: float = 0.0
    total_s: float = 0.0

    @property
    def share(self) -> float | None:
        return self.away_s / self.total_s if self.total_s > 0 else None


@dataclass(frozen=True)
class PoseSample:
    t_s: float
    yaw_deg: float | None
    pitch_deg: float | None
    look_angle_deg: float | None
    looking_away: bool | None
    received_s: float


@dataclass(frozen=True)
class PreviewFrame:
    source: str
    jpeg: bytes
    width_px: int | None
    height_px: int | None
    frame: int | None
    t_s: float
    received_s: float


@dataclass(frozen=True)
class LogEntry:
    number: int
    received_s: float
    session_t_s: float | None
    level: str  # info | ok | error | warn | alert | event
    text: str
    clinical: bool = False  # a session event a clinician reads (SUDS, alert, STOP, ...)


@dataclass(frozen=True)
class AlertRecord:
    t_s: float
    alert: str
    text: str
    value_bpm: float | None
    threshold_bpm: float | None


@dataclass
class PhaseCause:
    """Who stopped or paused the session, why and when (session time), from the event."""

    t_s: float
    by: str
    reason: str
    resumed_t_s: float | None = None


def who_text(by: str, client_id: str) -> str:
    """'this panel', 'the patient', 'the host' or the other client's id, from an event's
    ``by`` (``role:client``)."""
    role, _, client = by.partition(":")
    if client == client_id:
        return "this panel"
    if role == "patient":
        return "the patient"
    if role == "host":
        return "the host"
    return client or by or "?"


#: Pause reasons a therapist reads ("command": no reason worth saying).
PAUSE_REASONS = {"controller_lost": "the controlling panel fell silent",
                 "heartbeat": "the controlling panel fell silent", "command": ""}


#: Parameter-name endings and the unit they mean (longest first).
PARAM_UNITS = [("_cm_s", "cm/s"), ("_deg", "°"), ("_pct", "%"), ("_cm", "cm"), ("_m", "m"),
               ("_s", "s")]


def intensity_effect(step: Mapping[str, Any], intensity: float | None = None) -> str:
    """What the within-step intensity changes at a step, from the hierarchy:
    "distance 1.6 → 0.9 m (now 1.2 m)", or that it changes nothing there."""
    ranges = step.get("intensity") or {}
    parts = []
    for name, pair in sorted(ranges.items()):
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            continue
        low, high = float(pair[0]), float(pair[1])
        label, unit = str(name), ""
        for ending, symbol in PARAM_UNITS:
            if label.endswith(ending):
                label, unit = label[: -len(ending)], symbol
                break
        space = "" if unit in ("°", "") else " "
        text = f"{label.replace('_', ' ')} {low:g} → {high:g}{space}{unit}"
        if intensity is not None:
            text += f" (now {low + (high - low) * intensity:.2g}{space}{unit})"
        parts.append(text)
    return "; ".join(parts) if parts else "changes nothing at this step"


#: Events a clinician reads in the log (the rest: connections, acknowledgements, ...).
CLINICAL_EVENTS = frozenset({
    "suds_recorded", "suds_requested", "alert", "alert_cleared", "stopped", "paused",
    "resumed", "baseline_started", "baseline_completed", "exposure_started", "step_changed",
    "expectancy_recorded", "expectancy_outcome", "marker", "note", "ended", "auto_advanced",
    "advance_suggested", "intensity_changed"})


# --- the model ----------------------------------------------------------------------

class PanelModel:
    """Everything the panel shows, updated by :meth:`ingest` and the command callbacks.

    ``dirty`` collects the names of the parts that changed since the window last
    called :meth:`take_dirty`: ``state``, ``hr``, ``ecg``, ``rr``, ``pose``,
    ``preview``, ``sources``, ``log``, ``commands``, ``alerts``.
    """

    def __init__(self, client_id: str = "panel", *, hr_capacity: int = 16_384,
                 rr_capacity: int = 4096, ecg_seconds: float = 10.0,
                 lost_after_s: float = LOST_AFTER_S, rr_window_s: float = 60.0,
                 log_capacity: int = 2000) -> None:
        self.client_id = client_id
        self.hr_capacity = hr_capacity
        self.rr_capacity = rr_capacity
        self.ecg_seconds = ecg_seconds
        self.lost_after_s = lost_after_s
        self.rr_window_s = rr_window_s
        self.dirty: set[str] = set()
        self.log: deque[LogEntry] = deque(maxlen=log_capacity)
        self._log_number = 0
        self.commands: OrderedDict[str, CommandRecord] = OrderedDict()
        self.rejected_messages = 0
        self.host_restarts = 0
        self.probe_sent_ns: list[int] = []
        self.ingest_latency_ms: deque[float] = deque(maxlen=100_000)
        self._reset_session()
        self.sources: dict[str, SourceStatus] = {}
        self.heartbeat_ok_s: float | None = None
        self.heartbeat_failures = 0
        self.heartbeat_enabled = True

    def _reset_session(self) -> None:
        self.state: dict[str, Any] | None = None
        self.state_received_s: float | None = None
        self.session_id: str | None = None
        self.hr: dict[str, Ring] = {}
        self.rr: dict[str, Ring] = {}
        self.ecg: dict[str, Ring] = {}
        self.ecg_rate_hz: dict[str, float] = {}
        self.pose: dict[str, PoseSample] = {}
        self.preview: PreviewFrame | None = None
        self.preview_version = 0
        self.render_stats: dict[str, dict[str, Any]] = {}
        self.look_away: dict[int, LookAway] = {}
        self.current_visit: tuple[int, float] | None = None  # (step index, started t_s)
        self._pose_last_t: float | None = None
        self.alerts: list[AlertRecord] = []
        self.alert_threshold_bpm: float | None = None
        self.expectancies: list[dict[str, Any]] = []
        self.timeline: list[tuple[float, str, str]] = []  # (t_s, kind step|marker, label)
        self.last_suds: tuple[float, int, int, str] | None = None  # t, step, value, by
        self.last_stop: PhaseCause | None = None
        self.last_suds_asked_t: float | None = None  # SUDS asked for or recorded
        self.last_pause: PhaseCause | None = None

    # --- bookkeeping -------------------------------------------------------------

    def take_dirty(self) -> set[str]:
        dirty, self.dirty = self.dirty, set()
        return dirty

    def add_log(self, level: str, text: str, now_s: float,
                session_t_s: float | None = None, clinical: bool = False) -> LogEntry:
        self._log_number += 1
        entry = LogEntry(self._log_number, now_s,
                         session_t_s if session_t_s is not None else self.session_time(now_s),
                         level, text, clinical)
        self.log.append(entry)
        self.dirty.add("log")
        return entry

    def take_probes(self) -> list[int]:
        """``sent_ns`` of plotted samples ingested since the last call (display latency)."""
        probes, self.probe_sent_ns = self.probe_sent_ns, []
        return probes

    # --- ingest ------------------------------------------------------------------

    def ingest_many(self, messages: Iterable[tuple[float, DataMessage]]) -> None:
        for received_s, message in messages:
            self.ingest(message, received_s)

    def ingest(self, message: DataMessage, now_s: float) -> None:
        """Take one message that arrived at local monotonic time ``now_s``."""
        kind, source, payload = message.kind, message.source, message.payload
        try:
            if message.topic == "state":
                self._on_state(payload, now_s)
            elif message.topic in ("event", "alert"):
                self._on_event(payload, now_s)
            elif self._not_admitted(source):
                # The host does not record it (another session's sensor, a leftover one):
                # the therapist must not read it as this patient's either.
                self.not_admitted_messages += 1
                return
            else:
                status = self._touch_source(source or "?", kind, now_s)
                session_t = self.session_time(now_s)
                if session_t is not None and kind != "sensor":
                    status.clock_skew_s = message.t_s - session_t
                handler = self._DATA_HANDLERS.get(kind)
                if handler is not None:
                    handler(self, source, message, now_s)
        except (KeyError, TypeError, ValueError, ProtocolError) as exc:
            self.rejected_messages += 1
            self.add_log("warn", f"ignored a malformed {message.topic} message: {exc}", now_s)
            return
        if kind in PLOT_KINDS:
            sent_ns = payload.get("sent_ns")
            if isinstance(sent_ns, int) and not isinstance(sent_ns, bool):
                self.probe_sent_ns.append(sent_ns)
                self.ingest_latency_ms.append(now_s * 1e3 - sent_ns / 1e6)

    not_admitted_messages = 0

    def _not_admitted(self, source: str | None) -> bool:
        """A source the host lists as waiting for admission or rejected."""
        session = (self.state or {}).get("session") or {}
        return bool(source) and (source in (session.get("pending_sources") or {})
                                 or source in (session.get("rejected_sources") or []))

    def _touch_source(self, source: str, kind: str, now_s: float) -> SourceStatus:
        status = self.sources.get(source)
        if status is None:
            status = self.sources[source] = SourceStatus(source, now_s, now_s)
            self.add_log("info", f"Source '{source}' connected ({kind})", now_s)
            self.dirty.add("sources")
        elif now_s - status.last_seen_s > self.lost_after_s:
            self.add_log("ok", f"Source '{source}' is back after "
                               f"{now_s - status.last_seen_s:.0f} s", now_s)
            self.dirty.add("sources")
        status.last_seen_s = now_s
        if kind not in status.counts:
            self.dirty.add("sources")  # a new kind from this source
        status.counts[kind] = status.counts.get(kind, 0) + 1
        return status

    # state ------------------------------------------------------------------------

    def _on_state(self, payload: Mapping[str, Any], now_s: float) -> None:
        state = dict(payload)
        session = dict(state.get("session") or {})
        seq = int(state["seq"])
        session_id = session.get("session_id")
        previous = self.state
        if previous is not None and session_id and session_id != self.session_id:
            self.host_restarts += 1
            old = self.session_id
            self._reset_session()
            previous = None
            self.add_log("warn", f"Host restarted with a new session {str(session_id)[:8]} "
                                 f"(was {str(old)[:8]}); plots cleared", now_s,
                         _num(session.get("t_s")))
        elif previous is not None and seq < int(previous["seq"]):
            self.host_restarts += 1
            self.add_log("warn", f"Host restarted: state sequence went back from "
                                 f"{previous['seq']} to {seq}; showing the host's state",
                         now_s, _num(session.get("t_s")))
        elif (previous is None and self.state_received_s is None
              and session_id and self.session_id is None):
            self.add_log("ok", f"Connected to session {str(session_id)[:8]} "
                               f"(patient {session.get('patient_id')})", now_s,
                         _num(session.get("t_s")))
        was_lost = (self.state_received_s is not None
                    and now_s - self.state_received_s > self.lost_after_s)
        if was_lost and self.stalled_s is not None and now_s - self.stalled_s < 2.0:
            was_lost = False  # the panel froze, not the host: its state was only waiting
        elif was_lost:
            self.add_log("ok", f"Host back after {now_s - (self.state_received_s or now_s):.0f} s",
                         now_s)
        self.session_id = session_id
        self.state = state
        self.state_received_s = now_s
        self._track_visit(state)
        baseline = state.get("baseline")
        if isinstance(baseline, Mapping) and _num(baseline.get("threshold_bpm")) is not None:
            self.alert_threshold_bpm = _num(baseline.get("threshold_bpm"))
        expectancies = state.get("expectancies")
        if isinstance(expectancies, list):
            # The host's state is the authority (a restarted panel sees open predictions too).
            self.expectancies = [dict(e) for e in expectancies if isinstance(e, Mapping)]
        if previous is None or previous.get("seq") != seq or was_lost \
                or _without_clock(previous.get("session")) != _without_clock(session):
            self.dirty.add("state")
        self.dirty.add("clock")  # the running fields (session time, recording size)

    def _track_visit(self, state: Mapping[str, Any]) -> None:
        index = int(state.get("step_index", 0))
        if self.current_visit is None or self.current_visit[0] != index:
            t = _num((state.get("session") or {}).get("t_s"), 0.0) or 0.0
            started = t - (_num(state.get("time_in_step_s"), 0.0) or 0.0)
            self._start_visit(index, started)

    def _start_visit(self, index: int, t_s: float) -> None:
        self.current_visit = (index, t_s)
        self.look_away[index] = LookAway()
        self._pose_last_t = None
        self.dirty.add("pose")

    # events --------------------------------------------------------------------------

    def _on_event(self, event: Mapping[str, Any], now_s: float) -> None:
        kind = str(event.get("kind", ""))
        t_s = _num(event.get("t_s"))
        level = "event"
        if kind == "step_changed" and float((self.state or {}).get("intensity", 0.0)) > 0:
            self.add_log("info", f"Intensity reset to 0 % for step "
                                 f"{int(event.get('to', 0)) + 1} (a new step starts at its "
                                 "low end)", now_s, t_s)
        if kind == "step_changed" or kind == "exposure_started":
            index = int(event.get("to", event.get("step_index", 0)))
            self._start_visit(index, t_s or 0.0)
            self.timeline.append((t_s or 0.0, "step", f"step {index + 1}"))
        elif kind == "marker":
            self.timeline.append((t_s or 0.0, "marker", str(event.get("text", ""))[:40]))
        elif kind == "alert":
            level = "alert"
            threshold = _num(event.get("threshold_bpm"))
            if threshold is not None:
                self.alert_threshold_bpm = threshold
            self.alerts.append(AlertRecord(t_s or 0.0, str(event.get("alert", "")),
                                           describe_alert(event), _num(event.get("value_bpm")),
                                           threshold))
            self.dirty.add("alerts")
        elif kind == "alert_cleared":
            self.dirty.add("alerts")
        elif kind == "expectancy_recorded":
            self.expectancies.append({**dict(event), "happened": None})
        elif kind == "expectancy_outcome":
            for exp in reversed(self.expectancies):
                if exp.get("step_index") == event.get("step_index") and exp["happened"] is None:
                    exp["happened"] = bool(event.get("happened"))
                    break
        if kind in ("suds_recorded", "suds_requested"):
            self.last_suds_asked_t = max(t_s or 0.0, self.last_suds_asked_t or 0.0)
        if kind == "suds_recorded":
            self.last_suds = (t_s or 0.0, int(event.get("step_index", 0)),
                              int(event.get("value", 0)), str(event.get("by", "")))
        elif kind in ("stopped", "paused"):
            level = "warn"
            cause = PhaseCause(t_s or 0.0, str(event.get("by", "")),
                               str(event.get("reason", "")))
            if kind == "stopped":
                if not (event.get("already_safe") and self.last_stop is not None
                        and self.last_stop.resumed_t_s is None):
                    self.last_stop = cause  # a second STOP while safe keeps the first
            else:
                self.last_pause = cause
        elif kind == "resumed":
            if self.last_stop is not None and self.last_stop.resumed_t_s is None:
                self.last_stop.resumed_t_s = t_s or 0.0
        elif kind == "controller_lost":
            level = "warn"
        elif kind in ("intensity_changed", "suds_requested"):
            level = "info"
        if kind in ("controller_connected", "controller_lost") \
                and event.get("client") == self.client_id:
            level = "ok" if kind == "controller_connected" else "warn"
        self.add_log(level, describe_event(event), now_s, t_s,
                     clinical=kind in CLINICAL_EVENTS)
        self.dirty.add("events")

    # data ----------------------------------------------------------------------------

    def _on_hr(self, source: str, message: DataMessage, now_s: float) -> None:
        p = message.payload
        ring = self.hr.get(source)
        if ring is None:
            ring = self.hr[source] = Ring(self.hr_capacity)
        self._check_clock(ring, message.t_s)
        ring.append(message.t_s, float(p["bpm"]), QUALITY_CODES.get(str(p.get("quality",
                                                                               "good")), BAD))
        self.dirty.add("hr")

    def _on_rr(self, source: str, message: DataMessage, now_s: float) -> None:
        p = message.payload
        if p.get("quality", "good") != "good":
            return
        intervals = np.asarray(p["rr_ms"], dtype=np.float64)
        if intervals.size == 0:
            return
        ring = self.rr.get(source)
        if ring is None:
            ring = self.rr[source] = Ring(self.rr_capacity)
        self._check_clock(ring, message.t_s)
        # the last beat is at t; earlier beats are found by walking back the intervals
        ends = message.t_s - np.concatenate(([0.0], np.cumsum(intervals[::-1])[:-1]))[::-1] / 1e3
        ring.extend(ends, intervals)
        self.dirty.add("rr")

    def _on_ecg(self, source: str, message: DataMessage, now_s: float) -> None:
        values = chunk_values(message.payload)[:, 0]
        rate = float(message.payload["rate_hz"])
        ring = self.ecg.get(source)
        if ring is None or self.ecg_rate_hz.get(source) != rate:
            ring = self.ecg[source] = Ring(max(1, int(rate * self.ecg_seconds)))
            self.ecg_rate_hz[source] = rate
        self._check_clock(ring, message.t_s)
        ring.extend(message.t_s + np.arange(values.size) / rate, values)
        self.dirty.add("ecg")

    def _on_pose(self, source: str, message: DataMessage, now_s: float) -> None:
        p = message.payload
        away = p.get("looking_away")
        sample = PoseSample(message.t_s, _num(p.get("yaw_deg")), _num(p.get("pitch_deg")),
                            _num(p.get("look_angle_deg")),
                            bool(away) if isinstance(away, bool) else None, now_s)
        self.pose[source] = sample
        if source == self.pose_source(now_s):
            self._count_look_away(sample)
        self.dirty.add("pose")

    def _count_look_away(self, sample: PoseSample) -> None:
        state = self.state
        last_t, self._pose_last_t = self._pose_last_t, sample.t_s
        if (state is None or state.get("phase") != "exposure" or self.current_visit is None
                or sample.looking_away is None or last_t is None):
            return
        dt = sample.t_s - last_t
        if not 0.0 < dt <= MAX_POSE_GAP_S or sample.t_s < self.current_visit[1]:
            return
        share = self.look_away.setdefault(self.current_visit[0], LookAway())
        share.total_s += dt
        if sample.looking_away:
            share.away_s += dt

    def _on_preview(self, source: str, message: DataMessage, now_s: float) -> None:
        p = message.payload
        jpeg = p.get("jpeg")
        if not isinstance(jpeg, bytes | bytearray) or not jpeg:
            raise ValueError("preview without JPEG bytes")

        def opt_int(key: str) -> int | None:
            value = p.get(key)
            return int(value) if isinstance(value, int) and not isinstance(value, bool) else None

        self.preview = PreviewFrame(source, bytes(jpeg), opt_int("width_px"),
                                    opt_int("height_px"), opt_int("frame"), message.t_s, now_s)
        self.preview_version += 1
        self.dirty.add("preview")

    def _on_render(self, source: str, message: DataMessage, now_s: float) -> None:
        previous = self.render_stats.get(source, {})
        stats = dict(message.payload)
        if stats.get("failsafe") and not previous.get("failsafe"):
            self.add_log("warn", f"Renderer '{source}' is in failsafe (calm scene): "
                                 "it lost the host's state", now_s)
        self.render_stats[source] = stats
        self.dirty.add("preview")

    def _on_sensor(self, source: str, message: DataMessage, now_s: float) -> None:
        p = message.payload
        status = self.sources[source]
        event = str(p.get("event", "status"))
        was = status.device_connected
        if event == "status":
            status.device_info = dict(p)
            connected = p.get("connected")
            if isinstance(connected, bool):
                status.device_connected = connected
        elif event in ("disconnected", "stopped"):
            status.device_connected = False
        elif event == "connected":
            status.device_connected = True
        elif event == "gap":
            self.add_log("warn", f"Sensor '{source}': gap in the data "
                                 f"({p.get('missing', '?')} samples missing)", now_s)
        if was != status.device_connected:
            self.dirty.add("sources")
        if was is not None and was != status.device_connected:
            self.add_log("ok" if status.device_connected else "error",
                         f"Sensor '{source}' device {'re' if status.device_connected else 'dis'}"
                         f"connected{' (' + str(p.get('port')) + ')' if p.get('port') else ''}",
                         now_s)
        elif was is None and status.device_connected is False:
            self.add_log("error", f"Sensor '{source}' reports its device disconnected", now_s)

    _DATA_HANDLERS: ClassVar[dict[str, Any]] = {
        "hr": _on_hr, "rr": _on_rr, "ecg": _on_ecg, "pose": _on_pose, "preview": _on_preview,
        "render": _on_render, "sensor": _on_sensor}

    @staticmethod
    def _check_clock(ring: Ring, t_s: float) -> None:
        """A sample far before the last one means the source's clock restarted: start over."""
        last = ring.last_t()
        if last is not None and t_s < last - 1.0:
            ring.clear()

    # --- commands ------------------------------------------------------------------

    def command_sent(self, command_id: str, name: str, args: Mapping[str, Any],
                     now_s: float) -> CommandRecord:
        record = CommandRecord(command_id, name, dict(args), now_s)
        self.commands[command_id] = record
        while len(self.commands) > 500:
            self.commands.popitem(last=False)
        self.dirty.add("commands")
        return record

    def command_answered(self, command_id: str, ok: bool, error: str, state_seq: int | None,
                         events: Iterable[str], now_s: float) -> CommandRecord | None:
        record = self.commands.get(command_id)
        if record is None:
            return None
        record.status = "ok" if ok else "refused"
        record.error = error
        record.state_seq = state_seq
        record.events = list(events)
        record.answered_s = now_s
        label = command_label(record.name, record.args)
        if ok:
            what = ", ".join(e.replace("_", " ") for e in record.events) or "no change"
            self.add_log("ok", f"✓ {label}: acknowledged by the host ({what})", now_s)
        else:
            self.add_log("error", f"✗ {label}: refused by the host: {error}", now_s)
        self.dirty.add("commands")
        return record

    def command_unreachable(self, command_id: str, error: str, now_s: float,
                            still_trying: bool = False) -> CommandRecord | None:
        record = self.commands.get(command_id)
        if record is None:
            return None
        record.attempts_s = now_s - record.sent_s
        if not still_trying:
            record.status = "unreachable"
            record.error = error
            record.answered_s = now_s
            self.add_log("error", f"✗ {command_label(record.name, record.args)}: no answer "
                                  f"from the host ({error}); it may not have been applied",
                         now_s)
        self.dirty.add("commands")
        return record

    def last_command(self, name: str | None = None) -> CommandRecord | None:
        for record in reversed(self.commands.values()):
            if name is None or record.name == name:
                return record
        return None

    def pending(self, name: str) -> bool:
        return any(r.name == name and not r.done for r in self.commands.values())

    def heartbeat_result(self, ok: bool, now_s: float) -> None:
        if ok:
            if self.heartbeat_failures >= 3:
                self.add_log("ok", "Heartbeat answered again", now_s)
                self.dirty.add("sources")
            self.heartbeat_ok_s = now_s
            self.heartbeat_failures = 0
        else:
            self.heartbeat_failures += 1
            if self.heartbeat_failures == 3:
                self.add_log("error", "Heartbeat not answered: the host may pause exposure",
                             now_s)
                self.dirty.add("sources")

    # --- queries -------------------------------------------------------------------

    @property
    def session(self) -> dict[str, Any]:
        return dict((self.state or {}).get("session") or {})

    def session_time(self, now_s: float) -> float | None:
        """Session clock now, extrapolated from the last state (frozen once the host is lost)."""
        if self.state is None or self.state_received_s is None:
            return None
        t = _num(self.session.get("t_s"))
        if t is None:
            return None
        return t + min(max(0.0, now_s - self.state_received_s), self.lost_after_s)

    def time_in_step(self, now_s: float) -> float | None:
        if self.state is None or self.state_received_s is None:
            return None
        base = _num(self.state.get("time_in_step_s"))
        if base is None:
            return None
        return base + min(max(0.0, now_s - self.state_received_s), self.lost_after_s)

    def time_in_phase(self, now_s: float) -> float | None:
        """Time in the current phase now, extrapolated like the session clock."""
        if self.state is None or self.state_received_s is None:
            return None
        base = _num(self.state.get("time_in_phase_s"), 0.0) or 0.0
        return base + min(max(0.0, now_s - self.state_received_s), self.lost_after_s)

    def host_link(self, now_s: float) -> Link:
        if self.state_received_s is None:
            return Link.NOT_SEEN
        if now_s - self.state_received_s > self.lost_after_s:
            return Link.LOST
        return Link.OK

    def host_silent_s(self, now_s: float) -> float | None:
        return None if self.state_received_s is None else now_s - self.state_received_s

    def is_controller(self) -> bool:
        session = self.session
        return bool(session.get("controller") == self.client_id
                    and session.get("controller_connected"))

    def renderer_sources(self) -> list[SourceStatus]:
        return [s for s in self.sources.values() if s.role == "renderer"]

    def sensor_sources(self) -> list[SourceStatus]:
        return [s for s in self.sources.values() if s.role == "sensor"]

    def renderer_link(self, now_s: float) -> Link:
        links = [s.link(now_s, self.lost_after_s) for s in self.renderer_sources()
                 if RENDERER_KINDS & s.counts.keys()]
        if not links:
            return Link.NOT_SEEN
        return Link.OK if Link.OK in links else links[0]

    def steps(self) -> list[dict[str, Any]]:
        """The hierarchy steps (from the state's ``steps``; just the current one without it)."""
        state = self.state or {}
        steps = state.get("steps")
        if isinstance(steps, list) and steps:
            return [dict(s) for s in steps]
        n = int(state.get("n_steps", 0) or 0)
        current = int(state.get("step_index", 0) or 0)
        return [{"id": state.get("step_id") if i == current else f"step-{i + 1}",
                 "label": state.get("step_label") if i == current else "",
                 "expected_suds": state.get("step_expected_suds") if i == current else None}
                for i in range(n)]

    def suds_by_step(self) -> dict[int, list[int]]:
        result: dict[int, list[int]] = {}
        for entry in (self.state or {}).get("suds", []):
            _, step, value = entry
            result.setdefault(int(step), []).append(int(value))
        return result

    def baseline_band(self) -> tuple[float, float, float, bool] | None:
        """(mean, low, high=alert threshold, threshold_known) of the baseline band, or None.

        ``threshold_known`` is False when the threshold is the hierarchy default rule
        (``mean + max(20 bpm, 3 SD)``) because neither the state nor an alert gave it.
        """
        baseline = (self.state or {}).get("baseline")
        if not isinstance(baseline, Mapping):
            return None
        mean, sd = _num(baseline.get("mean_bpm")), _num(baseline.get("sd_bpm"), 0.0)
        if mean is None:
            return None
        threshold = self.alert_threshold_bpm
        known = threshold is not None
        if threshold is None:
            threshold = mean + max(DEFAULT_RISE_BPM, DEFAULT_RISE_SD * (sd or 0.0))
        delta = threshold - mean
        return mean, mean - delta, threshold, known

    def primary_source(self, rings: Mapping[str, Ring]) -> str | None:
        """The source with the most recent sample."""
        best, best_t = None, -math.inf
        for name, ring in rings.items():
            last = ring.last_t()
            if last is not None and last > best_t:
                best, best_t = name, last
        return best

    #: How far back the automatic choice of the headline source looks.
    QUALITY_WINDOW_S: ClassVar[float] = 30.0

    def hr_good_count(self, source: str) -> int:
        """Trusted heart-rate values of ``source`` in the last 30 s (of all sources' time):
        a lost source has none, a noisy one few."""
        lasts = [t for t in (r.last_t() for r in self.hr.values()) if t is not None]
        newest = max(lasts, default=None)
        ring = self.hr.get(source)
        if ring is None or newest is None:
            return 0
        _, _, quality = ring.arrays(newest - self.QUALITY_WINDOW_S)
        return int(np.count_nonzero(quality == GOOD))

    def primary_hr_source(self) -> str | None:
        """The heart-rate source of the headline (and of the numbers the alert is read
        against): the one chosen (config or therapist) while it exists, else the one with
        the most trusted values over the last 30 s (ties: by name, so it never flips)."""
        if self.primary_hr_choice in self.hr:
            return self.primary_hr_choice
        host_choice = self.session.get("hr_source")  # the source the host's alert reads
        if host_choice in self.hr:
            return str(host_choice)
        if not self.hr:
            return None
        return max(sorted(self.hr), key=self.hr_good_count)

    primary_hr_choice: str | None = None

    def latest_hr(self) -> tuple[str, float, float, int] | None:
        source = self.primary_hr_source()
        if source is None:
            return None
        last = self.hr[source].last()
        assert last is not None
        return (source, *last)

    def hrv(self, source: str | None = None) -> tuple[float | None, int]:
        """(RMSSD ms over the last ``rr_window_s`` of the source, number of intervals)."""
        source = source or self.primary_source(self.rr)
        if source is None:
            return None, 0
        ring = self.rr[source]
        last = ring.last_t()
        assert last is not None
        _, rr, _ = ring.arrays(last - self.rr_window_s)
        return rmssd_ms(rr), int(rr.size)

    def pose_source(self, now_s: float) -> str | None:
        """The head pose that counts: the renderer's headset (``head``) while it is alive."""
        head = self.pose.get("head")
        if head is not None and now_s - head.received_s <= self.lost_after_s:
            return "head"
        live = [(s.received_s, name) for name, s in self.pose.items()]
        return max(live)[1] if live else None

    def current_look_away(self) -> tuple[int, LookAway] | None:
        if self.current_visit is None:
            return None
        index = self.current_visit[0]
        return index, self.look_away.setdefault(index, LookAway())

    def open_expectancy(self) -> dict[str, Any] | None:
        step = (self.state or {}).get("step_index")
        for exp in reversed(self.expectancies):
            if exp.get("step_index") == step and exp["happened"] is None:
                return exp
        return None

    def stop_status(self) -> CommandRecord | None:
        return self.last_command("stop")

    def stop_line(self, now_s: float) -> tuple[str, str]:
        """The line under STOP and its level (ok, pending, error, idle), from the host's
        events: when the STOP happened (its own time, not now), who pressed it, and
        whether the session has resumed since."""
        record = self.stop_status()
        phase = (self.state or {}).get("phase")
        stop = self.last_stop
        if record is not None and record.status == "pending":
            return f"sent — waiting for the host ({now_s - record.sent_s:.0f} s)…", "pending"
        if record is not None and record.status == "refused" and phase != "safe":
            return f"✗ refused: {record.error}", "error"
        if record is not None and record.status == "unreachable" and phase != "safe":
            return "✗ NOT acknowledged — press STOP again", "error"
        if stop is None and record is not None and record.status == "ok" \
                and record.answered_s is not None and phase == "safe":
            # acknowledged, its event not seen (a restarted host's first moments)
            return (f"✓ STOPPED, acknowledged in "
                    f"{1000 * (record.answered_s - record.sent_s):.0f} ms"), "ok"
        if stop is None:
            return "not pressed this session", "idle"
        who = who_text(stop.by, self.client_id)
        if stop.resumed_t_s is None and phase == "safe":
            acked = ""
            if record is not None and record.status == "ok" and record.answered_s:
                acked = f", acknowledged in {1000 * (record.answered_s - record.sent_s):.0f} ms"
            return f"✓ STOPPED at {format_duration(stop.t_s)} by {who}{acked}", "ok"
        resumed = ("" if stop.resumed_t_s is None
                   else f", resumed at {format_duration(stop.resumed_t_s)}")
        return f"last STOP at {format_duration(stop.t_s)} by {who}{resumed}", "idle"

    def suds_reminder(self, now_s: float) -> str:
        """"" or a reminder that no SUDS was asked for in the hierarchy's interval (in
        exposure; counted from the later of the last SUDS and the step's start)."""
        state = self.state or {}
        interval = _num(state.get("suds_interval_s"))
        session_now = self.session_time(now_s)
        if state.get("phase") != "exposure" or not interval or session_now is None:
            return ""
        since = max(self.last_suds_asked_t or 0.0,
                    self.current_visit[1] if self.current_visit else 0.0)
        quiet = session_now - since
        if quiet < interval:
            return ""
        return (f"No SUDS for {format_duration(quiet)} (the hierarchy asks every "
                f"{format_duration(interval)}): press A to ask the patient, or type it")

    def pause_text(self) -> str:
        """Why the session is paused, for the header ("" when not paused)."""
        if (self.state or {}).get("phase") != "paused" or self.last_pause is None:
            return ""
        pause = self.last_pause
        reason = PAUSE_REASONS.get(pause.reason, pause.reason)
        return (f"paused by {who_text(pause.by, self.client_id)} at "
                f"{format_duration(pause.t_s)}" + (f": {reason}" if reason else ""))

    def panel_stalled(self, gap_s: float, now_s: float) -> None:
        """This panel's own event loop did not run for ``gap_s``: say so, and do not
        blame the host for the silence that follows."""
        self.add_log("warn", f"This panel did not respond for {gap_s:.1f} s (the panel "
                             "itself, not the host)", now_s)
        self.stalled_s = now_s

    stalled_s: float | None = None


def command_label(name: str, args: Mapping[str, Any]) -> str:
    """A command as the therapist would say it."""
    if name == "intensity":
        return f"intensity {round(100 * float(args.get('value', 0)))} %"
    if name == "suds":
        return f"SUDS {args.get('value')}"
    if name == "jump":
        step = args.get("step")
        return f"jump to step {int(step) + 1}" if isinstance(step, int) else f"jump to {step}"
    if name == "start_exposure" and "step" in args:
        return f"start exposure at step {int(args['step']) + 1}"
    if name == "expectancy":
        return f"prediction “{args.get('outcome')}” {args.get('likelihood_pct')} %"
    if name == "expectancy_outcome":
        return f"outcome: {'happened' if args.get('happened') else 'did not happen'}"
    if name == "marker":
        return f"marker “{args.get('text')}”"
    if name == "preview_step":
        return (f"headset shows step '{args['step_id']}' (editing)" if "params" in args
                else "headset preview ended")
    if name == "auto_advance":
        return f"auto-advance {'on' if args.get('enabled') else 'off'}"
    names = {"stop": "STOP", "request_suds": "ask for SUDS", "accept_suggestion":
             "accept suggestion", "dismiss_suggestion": "dismiss suggestion",
             "start_baseline": "start baseline", "start_exposure": "start exposure",
             "end": "end session", "previous": "previous step", "next": "next step",
             "repeat": "repeat step"}
    return names.get(name, name.replace("_", " "))
