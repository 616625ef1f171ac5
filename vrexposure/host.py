"""The session host: bridge sockets, the authoritative state machine, recorder and clock.

Sockets (DESIGN §4, docs/protocol.md):

* ``publish`` (SUB, bind): producers connect PUB here. It subscribes only to the
  data kinds in :data:`protocol.DATA_KINDS`.
* ``feed`` (PUB, bind): data forwarded to consumers by ``zmq.proxy`` in C, with a
  capture copy of every message going to the recorder.
* ``host_feed`` (PUB, bind): the host's own ``state``, ``event`` and ``alert``.
* ``control`` (ROUTER, bind): commands from DEALER clients; replies are cached by
  command id so a retried command is applied once.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from collections import Counter, OrderedDict
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import zmq

from . import __version__, protocol
from .clock import SessionClock
from .config import Endpoints
from .hierarchy import Hierarchy, hierarchy_from_dict, hierarchy_to_dict
from .monitor import HeartRateMonitor
from .plugins import discover_scenes
from .protocol import ReplyMessage
from .recorder import EVENTS_STREAM, Recorder
from .scene_api import SceneSpec
from .security import HostSecurity, KeyStoreError
from .state import (
    READ_ONLY_COMMANDS,
    Command,
    CommandError,
    Event,
    Phase,
    Role,
    SessionState,
    apply,
    initial_state,
    rebuild,
    state_to_dict,
)
from .xdf import read_xdf

log = logging.getLogger(__name__)

#: A pseudonymous id: letters, digits, '-' or '_', with at least one digit (e.g. P017).
#: Requiring a digit keeps a plain name such as "JaneDoe" out of files and logs.
PATIENT_ID_RE = re.compile(r"^(?=.*\d)[A-Za-z0-9_-]{2,32}$")
REPLY_CACHE_SIZE = 2048
ALERT_RECORDING = "recording_failed"
ALERT_SENSOR_LOST = "sensor_lost"
#: How often forwarded data is drained into the recorder and the heart-rate monitor.
CAPTURE_BATCH_S = 0.02
LOOPBACK_PREFIXES = ("127.", "localhost", "[::1]", "::1")


class HostError(Exception):
    pass


def check_patient_id(patient_id: str) -> str:
    if not PATIENT_ID_RE.match(patient_id):
        raise HostError(
            f"patient id {patient_id!r} is not a pseudonymous id: use 2-32 letters, digits, "
            "'-' or '_' including at least one digit (e.g. P017); never a name")
    return patient_id


def is_loopback(endpoint: str) -> bool:
    address = endpoint.split("://", 1)[-1].rsplit(":", 1)[0]
    return address.startswith(LOOPBACK_PREFIXES)


def _clinic_questionnaires(config: Mapping[str, Any]) -> dict[str, Any] | None:
    """Built-in questionnaires plus the clinic's folders (``questionnaires.dirs``; licensed
    copies override built-ins), or None when the clinic adds none."""
    dirs = (config.get("questionnaires") or {}).get("dirs") or []
    if not dirs:
        return None
    from .questionnaires import QuestionnaireError, discover_questionnaires

    try:
        return dict(discover_questionnaires([Path(d) for d in dirs]))
    except QuestionnaireError as exc:
        raise HostError(f"invalid questionnaire file:\n{exc}") from exc


def recording_name(patient_id: str, hierarchy_id: str, started: datetime) -> str:
    return f"{patient_id}_{started.strftime('%Y%m%dT%H%M%S')}_{hierarchy_id}.xdf"


class SessionHost:
    """Runs one session. Use as a library object (``start()``/``close()``) or via ``run()``."""

    def __init__(self, hierarchy: Hierarchy | None, patient_id: str, endpoints: Endpoints,
                 config: Mapping[str, Any], *, recording_dir: Path | None = None,
                 resume_from: Path | None = None,
                 scenes: Mapping[str, SceneSpec] | None = None,
                 context: zmq.Context[Any] | None = None,
                 keys_dir: Path | None = None,
                 hierarchy_version: int | None = None) -> None:
        # The patient's personalised hierarchy version (clinic database), recorded as is.
        self.hierarchy_version = hierarchy_version
        for endpoint in (endpoints.publish, endpoints.feed, endpoints.host_feed,
                         endpoints.control):
            if not is_loopback(endpoint) and keys_dir is None:
                raise HostError(
                    f"refusing to listen on {endpoint}: off loopback every socket needs "
                    "CurveZMQ keys (vrexposure keys init; then --keys DIR; see "
                    "docs/security.md), or listen on 127.0.0.1")
        self.endpoints = endpoints
        self.config = config
        session_cfg = config["session"]
        self.state_interval_s = 1.0 / float(session_cfg["state_rate_hz"])
        self.heartbeat_timeout_s = float(session_cfg["panel_heartbeat_timeout_s"])
        self.scenes = dict(scenes) if scenes is not None else discover_scenes(
            [Path(d) for d in config.get("plugins", {}).get("scene_dirs", [])])
        self.counters: Counter[str] = Counter()
        self._replies: OrderedDict[str, ReplyMessage] = OrderedDict()
        self._context = context or zmq.Context.instance()
        self.security: HostSecurity | None = None
        if keys_dir is not None:
            try:
                self.security = HostSecurity(Path(keys_dir), self._context)
            except KeyStoreError as exc:
                raise HostError(str(exc)) from exc
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._proxy_thread: threading.Thread | None = None
        self.controller: str | None = None
        self._controller_seen_s: float | None = None
        self._controller_lost = False
        self._closed = False
        clinic_questionnaires = _clinic_questionnaires(config)

        if resume_from is not None:
            self._init_resumed(Path(resume_from), patient_id)
        else:
            if hierarchy is None:
                raise HostError("a new session needs a hierarchy")
            self.patient_id = check_patient_id(patient_id)
            self.hierarchy = hierarchy
            self.session_id = uuid.uuid4().hex
            started = datetime.now(UTC)
            self.started_wall_s = started.timestamp()
            self.clock = SessionClock()
            self.state = initial_state(hierarchy)
            directory = Path(recording_dir or session_cfg["recording_dir"])
            self.recording_path = directory / recording_name(self.patient_id, hierarchy.id,
                                                             started)
            try:
                directory.mkdir(parents=True, exist_ok=True, mode=0o700)
                self.recorder = Recorder(self.recording_path, self._metadata(started),
                                         sync_interval_s=float(session_cfg["sync_interval_s"]))
            except OSError as exc:
                # No session without its recording: say where and why, before anything runs.
                if self.security is not None:
                    self.security.stop()
                raise HostError(f"cannot create the recording in {directory}: "
                                f"{exc.strerror or exc}") from exc
        if clinic_questionnaires is not None:
            self.state = replace(self.state, questionnaire_library=clinic_questionnaires)
        self.monitor = HeartRateMonitor(self.hierarchy.alerts)
        if self.state.baseline is not None:
            self.monitor.set_baseline(self.state.baseline.mean_bpm, self.state.baseline.sd_bpm)
        try:
            self._open_sockets()
        except HostError:
            # A host that cannot listen records nothing: leave no empty file behind (a
            # resumed session's file is the patient's record and stays).
            self.recorder.close(self.clock.now())
            if resume_from is None:
                self.recording_path.unlink(missing_ok=True)
            if self.security is not None:
                self.security.stop()
            raise
        self._exit_when_ended_s: float | None = None
        self._last_state_pub_s = -1.0
        self._last_recorded_seq = -1

    # --- set-up -------------------------------------------------------------------

    def _metadata(self, started: datetime) -> dict[str, Any]:
        return {
            "session_id": self.session_id,
            "patient_id": self.patient_id,
            "hierarchy_id": self.hierarchy.id,
            "hierarchy": hierarchy_to_dict(self.hierarchy),
            "started_utc": started.isoformat(),
            "started_wall_s": self.started_wall_s,
            "software": f"vrexposure {__version__}",
            "clock": "session clock: host monotonic seconds since session start",
            # Not the database section: its URL may hold a password.
            "config": {k: v for k, v in self.config.items()
                       if k not in ("plugins", "database")},
            **({"hierarchy_version": self.hierarchy_version}
               if self.hierarchy_version is not None else {}),
        }

    def _init_resumed(self, path: Path, patient_id: str) -> None:
        recording = read_xdf(path)
        try:
            metadata = json.loads(recording.header["vrexposure"])
        except (KeyError, json.JSONDecodeError) as exc:
            raise HostError(f"{path}: not a vrexposure recording (no session metadata)") from exc
        if patient_id and patient_id != metadata["patient_id"]:
            raise HostError(f"{path} belongs to patient {metadata['patient_id']}, "
                            f"not {patient_id}")
        self.patient_id = metadata["patient_id"]
        self.session_id = metadata["session_id"]
        self.started_wall_s = float(metadata["started_wall_s"])
        self.hierarchy = hierarchy_from_dict(metadata["hierarchy"], self.scenes, str(path))
        events = [Event.from_dict(record) for record in events_from_recording(recording)]
        self.state = rebuild(self.hierarchy, events)
        last_t = max((float(s.timestamps[-1]) for s in recording.streams.values()
                      if len(s.timestamps)), default=0.0)
        # The session clock continues across the outage, measured by wall-clock time.
        elapsed = max(last_t, time.time() - self.started_wall_s)
        self.clock = SessionClock(start_at_s=elapsed)
        self.recording_path = path
        self.recorder = Recorder(path, {}, resume=True,
                                 sync_interval_s=float(self.config["session"]["sync_interval_s"]))
        self.resumed_events = len(events)
        self.recorder.record_event(self.clock.now(), {
            "type": "event", "kind": "session_resumed", "t_s": self.clock.now(),
            "events_replayed": len(events), "state_seq": self.state.seq,
            "recording_cut_short": recording.truncated})
        log.info("resumed session %s at t=%.1f s (phase %s, step %d)", self.session_id,
                 self.clock.now(), self.state.phase.value, self.state.step_index)

    def _open_sockets(self) -> None:
        ctx = self._context
        self._frontend = ctx.socket(zmq.SUB)
        self._frontend.setsockopt(zmq.RCVHWM, 0)
        for kind in protocol.DATA_KINDS:
            self._frontend.setsockopt(zmq.SUBSCRIBE, f"{kind}.".encode())
        self._backend = ctx.socket(zmq.PUB)
        self._backend.setsockopt(zmq.SNDHWM, 100_000)
        self._capture = ctx.socket(zmq.PUB)
        self._capture.setsockopt(zmq.SNDHWM, 0)  # never drop what the recorder must see
        self._steer = ctx.socket(zmq.PAIR)
        self._steer_peer = ctx.socket(zmq.PAIR)
        tag = uuid.uuid4().hex
        self._capture_addr = f"inproc://capture-{tag}"
        self._steer_addr = f"inproc://steer-{tag}"
        self._capture.bind(self._capture_addr)
        self._steer.bind(self._steer_addr)
        self._steer_peer.connect(self._steer_addr)
        self._recorder_in = ctx.socket(zmq.SUB)
        self._recorder_in.setsockopt(zmq.RCVHWM, 0)
        self._recorder_in.setsockopt(zmq.SUBSCRIBE, b"")
        self._recorder_in.connect(self._capture_addr)
        self._host_pub = ctx.socket(zmq.PUB)
        self._host_pub.setsockopt(zmq.SNDHWM, 10_000)
        self._router = ctx.socket(zmq.ROUTER)
        self._router.setsockopt(zmq.ROUTER_HANDOVER, 1)
        if self.security is not None:
            self.security.serve(self._frontend, "publish")
            self.security.serve(self._backend, "feed")
            self.security.serve(self._host_pub, "feed")
            self.security.serve(self._router, "control")
        try:
            for sock, endpoint in ((self._frontend, self.endpoints.publish),
                                   (self._backend, self.endpoints.feed),
                                   (self._host_pub, self.endpoints.host_feed),
                                   (self._router, self.endpoints.control)):
                sock.setsockopt(zmq.LINGER, 0)
                sock.bind(endpoint)
        except zmq.ZMQError as exc:
            self._close_sockets()
            raise HostError(f"cannot listen on {endpoint}: {exc}") from exc

    # --- running ------------------------------------------------------------------

    def start(self) -> SessionHost:
        """Run the host in background threads (returns at once)."""
        self._proxy_thread = threading.Thread(target=self._proxy, name="host-proxy",
                                              daemon=True)
        self._proxy_thread.start()
        self._thread = threading.Thread(target=self._loop, name="host-loop", daemon=True)
        self._thread.start()
        return self

    def run(self, exit_after_end_s: float | None = None) -> None:
        """Run in the calling thread until :meth:`request_stop` (or Ctrl-C), or, with
        ``exit_after_end_s``, until that long after the session has ended (clients see the
        ended state before the host goes)."""
        self._exit_when_ended_s = exit_after_end_s
        self._proxy_thread = threading.Thread(target=self._proxy, name="host-proxy",
                                              daemon=True)
        self._proxy_thread.start()
        try:
            self._loop()
        finally:
            self.close()

    def _proxy(self) -> None:
        try:
            zmq.proxy_steerable(self._frontend, self._backend, self._capture, self._steer)
        except zmq.ContextTerminated:
            pass
        except zmq.ZMQError as exc:
            log.error("bridge proxy stopped: %s", exc)

    def request_stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        """Stop the threads, close the recording (with footers) and the sockets. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        if self._proxy_thread is not None:
            try:
                self._steer_peer.send(b"TERMINATE")
            except zmq.ZMQError:
                pass
            self._proxy_thread.join(timeout=5)
            self._proxy_thread = None
        self.recorder.close(self.clock.now())
        self._close_sockets()
        if self.security is not None:
            self.security.stop()

    def _close_sockets(self) -> None:
        for sock in (self._frontend, self._backend, self._capture, self._steer,
                     self._steer_peer, self._recorder_in, self._host_pub, self._router):
            sock.close(linger=0)

    def _loop(self) -> None:
        # Commands wake the loop at once. Recorded data is drained in batches every
        # CAPTURE_BATCH_S instead: waking for each forwarded sample would put this
        # thread on a core exactly when producers and consumers need it (the data
        # plane itself is forwarded in C and never waits for this thread).
        poller = zmq.Poller()
        poller.register(self._router, zmq.POLLIN)
        next_tick_s = next_capture_s = 0.0
        while not self._stop.is_set():
            now = self.clock.now()
            wake_s = min(next_tick_s, next_capture_s)
            if poller.poll(max(0, int((wake_s - now) * 1000))):
                self._drain_router()
            now = self.clock.now()
            if now >= next_capture_s:
                self._drain_capture()
                next_capture_s = now + CAPTURE_BATCH_S
            if now >= next_tick_s:
                self._timers(now)
                next_tick_s = now + min(0.05, self.state_interval_s)
                if (self._exit_when_ended_s is not None and self.state.phase == Phase.ENDED
                        and now - self.state.phase_since_s >= self._exit_when_ended_s):
                    log.info("the session has ended: closing the recording")
                    break

    def _drain_capture(self, budget: int = 100_000) -> None:
        for _ in range(budget):
            try:
                frames = self._recorder_in.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            self.counters["data_messages"] += 1
            message = self.recorder.record_raw(frames)
            if message is None:
                self.counters["data_rejected"] += 1
                continue
            if message.kind == "hr" and not message.source.endswith(".device"):
                # A device's own figure is shadowed by the derived, quality-flagged one.
                for name, args in self.monitor.observe(
                        message.t_s, float(message.payload["bpm"]),
                        str(message.payload.get("quality", "good"))):
                    self._apply_internal(name, args)
            elif message.kind == "sensor":
                self._sensor_status(message)

    def _drain_router(self, budget: int = 200) -> None:
        for _ in range(budget):
            try:
                frames = self._router.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            if len(frames) != 2:
                self.counters["commands_malformed"] += 1
                continue
            identity, body = frames
            key_role = None
            if self.security is not None:
                # The key that authenticated this connection decides the role.
                key_role = self.security.role_of(body.get("User-Id")) or "revoked"
            reply = self.handle_command_bytes(body.bytes, key_role)
            if reply is not None:
                self._router.send_multipart([identity.bytes, protocol.encode_reply(reply)])

    def _sensor_status(self, message: protocol.DataMessage) -> None:
        """A sensor that lost its port is an alert for the therapist until it is back."""
        alert = f"{ALERT_SENSOR_LOST}.{message.source}"[:64]
        event = message.payload.get("event")
        if event == "disconnected":
            self._apply_internal("alert", {"alert": alert, "source": message.source,
                                           "port": str(message.payload.get("port", ""))})
        elif event == "connected" and alert in self.state.alerts_active:
            self._apply_internal("alert_cleared", {"alert": alert})

    # --- commands -----------------------------------------------------------------

    def handle_command_bytes(self, raw: bytes, key_role: str | None = None
                             ) -> ReplyMessage | None:
        now = self.clock.now()
        try:
            msg = protocol.decode_command(raw)
        except protocol.ProtocolError as exc:
            self.counters["commands_malformed"] += 1
            log.warning("rejected a malformed command: %s", exc)
            return None
        if key_role is not None and msg.role != key_role:
            return self._reject(msg, now, f"this client's key is for the role '{key_role}', "
                                          f"not '{msg.role}'")
        cached = self._replies.get(msg.id)
        if cached is not None:
            self.counters["commands_retried"] += 1
            return cached
        reply = self._execute(msg, now)
        if msg.name not in ("ping", "get_state", "heartbeat"):
            self._replies[msg.id] = reply
            while len(self._replies) > REPLY_CACHE_SIZE:
                self._replies.popitem(last=False)
        return reply

    def _reply(self, msg: protocol.CommandMessage, ok: bool, error: str = "",
               result: Mapping[str, Any] | None = None) -> ReplyMessage:
        return ReplyMessage(msg.id, ok, self.state.seq, error, dict(result or {}))

    def _execute(self, msg: protocol.CommandMessage, now: float) -> ReplyMessage:
        try:
            role = Role(msg.role)
        except ValueError:
            return self._reject(msg, now, f"unknown role '{msg.role}'")
        if role == Role.HOST:
            return self._reject(msg, now, "role 'host' is reserved for the session host")
        if msg.name == "ping":
            return self._reply(msg, True, result={"t_s": self.clock.now()})
        if msg.name == "get_state":
            return self._reply(msg, True, result=self.state_payload(now))
        if msg.name == "heartbeat":
            return self._heartbeat(msg, role, now)
        if msg.name == "clock_report":
            self.recorder.record_event(now, {"type": "clock", "t_s": now, "client": msg.client,
                                             "role": msg.role, **dict(msg.args)})
            return self._reply(msg, True)
        command = Command(msg.name, msg.args, role, msg.client)
        try:
            self.state, events = apply(self.state, command, now)
        except CommandError as exc:
            return self._reject(msg, now, str(exc))
        self.counters["commands_applied"] += 1
        self._record_command(msg, now, True, "")
        self._after_events(events, now)
        return self._reply(msg, True, result={"events": [e.kind for e in events]})

    def _reject(self, msg: protocol.CommandMessage, now: float, error: str) -> ReplyMessage:
        self.counters["commands_rejected"] += 1
        log.warning("refused '%s' from %s:%s: %s", msg.name, msg.role, msg.client, error)
        self._record_command(msg, now, False, error)
        return self._reply(msg, False, error)

    def _record_command(self, msg: protocol.CommandMessage, now: float, ok: bool,
                        error: str) -> None:
        self.recorder.record_event(now, {
            "type": "command", "t_s": now, "id": msg.id, "name": msg.name,
            "args": dict(msg.args), "role": msg.role, "client": msg.client, "ok": ok,
            **({"error": error} if error else {})})

    def _heartbeat(self, msg: protocol.CommandMessage, role: Role, now: float) -> ReplyMessage:
        if role == Role.THERAPIST and msg.args.get("controlling", False):
            if self.controller != msg.client or self._controller_lost:
                self.recorder.record_event(now, {"type": "event", "kind": "controller_connected",
                                                 "t_s": now, "client": msg.client})
                self._publish_event(Event("controller_connected", now, {"client": msg.client}))
            self.controller = msg.client
            self._controller_seen_s = now
            self._controller_lost = False
        return self._reply(msg, True, result={"t_s": self.clock.now()})

    def _apply_internal(self, name: str, args: Mapping[str, Any]) -> None:
        now = self.clock.now()
        try:
            self.state, events = apply(self.state, Command(name, args, Role.HOST, "host"), now)
        except CommandError as exc:
            log.debug("internal %s not applied: %s", name, exc)
            return
        if name not in ("tick",):
            self.recorder.record_event(now, {"type": "command", "t_s": now, "name": name,
                                             "args": dict(args), "role": "host",
                                             "client": "host", "ok": True})
        self._after_events(events, now)

    def _after_events(self, events: list[Event], now: float) -> None:
        for event in events:
            self.recorder.record_event(event.t_s, {"type": "event", **event.to_dict()})
            self._publish_event(event)
            if event.kind == "baseline_started":
                self.monitor.start_baseline()
            elif event.kind == "baseline_completed":
                self.monitor.set_baseline(event.data.get("mean_bpm"), event.data.get("sd_bpm"))
        if events:
            self._publish_state(now)

    # --- periodic work --------------------------------------------------------------

    def _timers(self, now: float) -> None:
        state = self.state
        if (state.phase == Phase.BASELINE and not state.baseline_done
                and now - state.phase_since_s >= self.hierarchy.baseline.duration_s):
            self._apply_internal("complete_baseline", self.monitor.baseline_args())
        if (self.controller is not None and not self._controller_lost
                and self._controller_seen_s is not None
                and now - self._controller_seen_s > self.heartbeat_timeout_s):
            self._controller_lost = True
            self.recorder.record_event(now, {"type": "event", "kind": "controller_lost",
                                             "t_s": now, "client": self.controller})
            self._publish_event(Event("controller_lost", now, {"client": self.controller}))
            if self.state.phase in (Phase.EXPOSURE, Phase.BASELINE):
                self._apply_internal("pause", {"reason": "panel_heartbeat_lost"})
        self._apply_internal("tick", {})
        had_error = self.recorder.write_error is not None
        self.recorder.flush(now)
        if (self.recorder.write_error is not None) != had_error:
            # Tell the therapist at once; nothing is lost while the data waits in memory.
            if self.recorder.write_error is not None:
                self._apply_internal("alert", {"alert": ALERT_RECORDING,
                                               "error": self.recorder.write_error})
            else:
                self._apply_internal("alert_cleared", {"alert": ALERT_RECORDING})
            self._publish_state(now)
        if now - self._last_state_pub_s >= self.state_interval_s:
            self._publish_state(now)

    def state_payload(self, now: float) -> dict[str, Any]:
        payload = state_to_dict(self.state, now, self.scenes)
        payload["session"] = {
            "session_id": self.session_id,
            "patient_id": self.patient_id,
            "t_s": now,
            "recording": str(self.recording_path),
            "recording_bytes": self.recorder.bytes_written,
            "recording_error": self.recorder.write_error,
            "recording_unwritten_bytes": self.recorder.unwritten_bytes,
            "controller": self.controller,
            "controller_connected": self.controller is not None and not self._controller_lost,
            "data_rejected": self.counters["data_rejected"],
            "commands_rejected": self.counters["commands_rejected"],
        }
        return payload

    def _publish_state(self, now: float) -> None:
        payload = self.state_payload(now)
        self._host_pub.send_multipart(protocol.encode_data(
            protocol.TOPIC_STATE, self.counters["state_published"], now, payload))
        self.counters["state_published"] += 1
        self._last_state_pub_s = now
        if self.state.seq != self._last_recorded_seq:
            self._last_recorded_seq = self.state.seq
            self.recorder.record_state(now, state_to_dict(self.state, now, self.scenes))

    def _publish_event(self, event: Event) -> None:
        topic = protocol.TOPIC_ALERT if event.kind == "alert" else protocol.TOPIC_EVENT
        self._host_pub.send_multipart(protocol.encode_data(
            topic, self.counters["events_published"], event.t_s, event.to_dict()))
        self.counters["events_published"] += 1

    def current_state(self) -> SessionState:
        return self.state


def events_from_recording(recording: Any) -> list[dict[str, Any]]:
    """The state-machine events (in order) of a read recording."""
    try:
        stream = recording.by_name(EVENTS_STREAM)
    except KeyError:
        return []
    events = []
    for text in stream.values:
        try:
            record = json.loads(text)
        except json.JSONDecodeError:
            continue
        if record.get("type") == "event" and record.get("kind") not in (
                "session_resumed", "controller_connected", "controller_lost"):
            events.append({k: v for k, v in record.items() if k != "type"})
    return events


__all__ = [
    "READ_ONLY_COMMANDS",
    "HostError",
    "SessionHost",
    "check_patient_id",
    "events_from_recording",
]
