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

import ipaddress
import json
import logging
import math
import os
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

import msgpack
import zmq

from . import __version__, admission, protocol
from .args import ArgError
from .clock import SessionClock, poll_timeout_ms
from .config import Endpoints
from .hierarchy import Hierarchy, hierarchy_from_dict, hierarchy_to_dict
from .monitor import HeartRateMonitor, PrimaryHrSource
from .plugins import discover_scenes
from .protocol import ReplyMessage
from .recorder import EVENTS_STREAM, UNRECORDED_KINDS, Recorder, jsonable
from .scene_api import SceneSpec
from .security import DOMAIN_ROLES, HostSecurity, KeyStoreError
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

#: The default pseudonymous id: 1-4 letters then 1-6 digits (P017, DEMO01). A clinic sets
#: its own with ``session.patient_id_pattern``; "JaneDoe1985" or "Smith_J_1970" do not fit.
DEFAULT_PATIENT_ID_PATTERN = r"[A-Za-z]{1,4}[0-9]{1,6}"
REPLY_CACHE_SIZE = 2048
#: Commands whose replies are never cached: read-only ones, and STOP, which must always run.
UNCACHED_COMMANDS = frozenset({"ping", "get_state", "heartbeat", "stop"})
#: Accepted commands are recorded with their arguments up to this size (JSON characters);
#: refused ones by name and reason only.
RECORDED_ARGS_MAX_CHARS = 2000
#: Distinct data topics recorded in one session; further ones are counted and dropped.
MAX_RECORDED_TOPICS = 128
#: Clients that may publish under one proven source name at once (a restarted producer
#: proves again and gets a new tag; the oldest is dropped).
MAX_TAGS_PER_SOURCE = 4
#: Unknown sources listed for the therapist at once (the rest are only counted).
MAX_PENDING_SOURCES = 32
#: Distinct 'sensor lost' alerts active at once; more collapse into a counter.
MAX_SOURCE_ALERTS = 8
#: 'sensor' status messages recorded per source per second; the excess is counted.
SENSOR_STATUS_PER_S = 50
#: Messages per topic per second recorded for any other kind: 1 kHz ECG in 20-sample
#: chunks is 50/s and 90 Hz pose 90/s; a 20x soak sends 1 800/s. Far above any real
#: stream, it only stops a flood from filling the recording.
DATA_MESSAGES_PER_S = 5_000
#: Data stamped too far from the session clock is not recorded (counted): into the
#: future beyond clock-sync error, or before the session began.
DATA_FUTURE_TOLERANCE_S = 30.0
DATA_PAST_TOLERANCE_S = 30.0
#: Data older than this is not live (a replayed or forged stamp): counted, not recorded.
DATA_MAX_AGE_S = 600.0
#: High-water marks (messages queued per peer) by consumer kind. A data consumer gets
#: about two minutes of every stream (~150 messages/s); a state/event consumer over a
#: minute and a half of state at 10 Hz plus events; the recorder's in-process queue
#: half a minute of a 20x soak. A consumer that stops reading costs at most this much.
FEED_HWM = 20_000
HOST_FEED_HWM = 2_000
RECORDER_HWM = 100_000
#: Commands per second one client (connection, or key with CurveZMQ) may send, with
#: bursts up to COMMAND_BURST; a panel sends a few a second. STOP is never limited.
COMMANDS_PER_S = 100
COMMAND_BURST = 1000
MAX_RATE_BUCKETS = 1024
#: Refusals logged per second; beyond, counted (100 000 bad commands are not 100 000 lines).
LOG_REFUSALS_PER_S = 20
#: How often the allow-list is checked for revoked keys.
KEY_CHECK_INTERVAL_S = 0.25
#: Bytes a host socket accepts in one message (ZMQ_MAXMSGSIZE); a bigger one drops the peer.
SOCKET_MAX_MESSAGE_BYTES = protocol.MAX_MESSAGE_BYTES + 4096
ALERT_RECORDING = "recording_failed"
ALERT_SENSOR_LOST = "sensor_lost"
#: How often forwarded data is drained into the recorder and the heart-rate monitor.
CAPTURE_BATCH_S = 0.02


class HostError(Exception):
    pass


def check_patient_id(patient_id: str, pattern: str | None = None) -> str:
    """``patient_id`` if it matches the clinic's pattern as a whole; nothing is stripped
    (a trailing newline is an error, not a file name)."""
    pattern = pattern or DEFAULT_PATIENT_ID_PATTERN
    if not isinstance(patient_id, str) or len(patient_id) > 32 \
            or not re.fullmatch(pattern, patient_id, flags=re.ASCII):
        raise HostError(
            f"patient id {patient_id[:40]!r} is not a pseudonymous id of this clinic's form "
            f"({pattern}, e.g. P017); never a name")
    return patient_id


_ENDPOINT_RE = re.compile(r"^tcp://(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-]+):"
                          r"(?P<port>[0-9]{1,5}|\*)$")


def parse_endpoint(endpoint: str) -> tuple[str, str]:
    """(host, port) of a ``tcp://HOST:PORT`` endpoint; anything else (several addresses,
    ';' source/destination pairs, interface names with odd characters) is a HostError."""
    match = _ENDPOINT_RE.match(endpoint)
    if match is None:
        raise HostError(f"not a single tcp://HOST:PORT endpoint: {endpoint[:80]!r}")
    port = match["port"]
    if port != "*" and not 0 <= int(port) <= 65535:
        raise HostError(f"port out of range in {endpoint!r}")
    return match["host"].strip("[]"), port


def is_loopback(endpoint: str) -> bool:
    """True only for one well-formed endpoint on a loopback address."""
    try:
        host, _ = parse_endpoint(endpoint)
    except HostError:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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
            parse_endpoint(endpoint)  # one address, properly formed, or a HostError
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
        self._replies: OrderedDict[tuple[str, ...], ReplyMessage] = OrderedDict()
        self._topics_recorded: set[str] = set()
        self._status_window: dict[str, tuple[int, int]] = {}  # topic -> (second, count)
        self._last_seq: dict[str, int] = {}  # topic -> last sequence number seen
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        # Admission (DESIGN §11): only sources that were proven (on loopback with the
        # session's secret, with CurveZMQ by the publisher's key over ``control``), or that
        # the therapist admitted, are recorded.
        self.admission_required = bool(session_cfg.get("source_admission", True))
        self._secret = admission.new_secret()
        self.admitted_sources: dict[str, float] = {}
        self.pending_sources: Counter[str] = Counter()
        self.rejected_sources: set[str] = set()
        self._source_tags: dict[str, list[str]] = {}  # source -> binding tags handed out
        self._source_keys: dict[str, str] = {}  # source -> the CURVE key that proved it
        self._bound_seq: dict[tuple[str, str], int] = {}  # (topic, tag) -> last seq
        self._log_second = self._log_count = self._log_suppressed = 0
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
        self._gate_thread: threading.Thread | None = None
        self._gate_topics: set[str] = set()  # topic prefixes forwarded to consumers
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
            self.patient_id = check_patient_id(
                patient_id, session_cfg.get("patient_id_pattern"))
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
        self.hr_source = PrimaryHrSource(session_cfg.get("primary_hr_source"))
        if self.state.baseline is not None:
            self.monitor.set_baseline(self.state.baseline.mean_bpm, self.state.baseline.sd_bpm)
        self._allowed_keys: set[str] = set()
        self._revoked_keys: set[str] = set()
        self._next_key_check_s = 0.0
        try:
            self._open_sockets()
        except HostError:
            # Nothing ran: leave no empty recording behind (a resumed one is kept as it is).
            self.recorder.close(0.0)
            if resume_from is None:
                self.recording_path.unlink(missing_ok=True)
            if self.security is not None:
                self.security.stop()
            raise
        self._exit_when_ended_s: float | None = None
        self._write_ticket()
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

    def _public_sockets(self) -> tuple[zmq.Socket[Any], zmq.Socket[Any], zmq.Socket[Any]]:
        """New (unbound) publish, feed and host-feed sockets."""
        ctx = self._context
        frontend = ctx.socket(zmq.SUB)
        frontend.setsockopt(zmq.RCVHWM, 0)
        # A message over the limit disconnects its sender before it is ever forwarded.
        frontend.setsockopt(zmq.MAXMSGSIZE, SOCKET_MAX_MESSAGE_BYTES)
        for kind in protocol.DATA_KINDS:
            frontend.setsockopt(zmq.SUBSCRIBE, f"{kind}.".encode())
        backend = ctx.socket(zmq.PUB)
        backend.setsockopt(zmq.SNDHWM, FEED_HWM)
        host_pub = ctx.socket(zmq.PUB)
        host_pub.setsockopt(zmq.SNDHWM, HOST_FEED_HWM)
        for sock in (backend, host_pub):
            # Subscribers send only (un)subscriptions: nothing bigger is legitimate.
            sock.setsockopt(zmq.MAXMSGSIZE, 4096)
        if self.security is not None:
            self.security.serve(frontend, "publish")
            self.security.serve(backend, "feed")
            self.security.serve(host_pub, "feed")
        for sock in (frontend, backend, host_pub):
            sock.setsockopt(zmq.LINGER, 0)
        return frontend, backend, host_pub

    def _open_sockets(self) -> None:
        ctx = self._context
        self._frontend, self._backend, self._host_pub = self._public_sockets()
        self._capture = ctx.socket(zmq.PUB)
        # Deep enough that the recorder never drops in a session (gaps would be recorded
        # as data_gap if it did), finite so a flood cannot take all memory.
        self._capture.setsockopt(zmq.SNDHWM, RECORDER_HWM)
        self._steer = ctx.socket(zmq.PAIR)
        self._steer_peer = ctx.socket(zmq.PAIR)
        tag = uuid.uuid4().hex
        self._capture_addr = f"inproc://capture-{tag}"
        self._steer_addr = f"inproc://steer-{tag}"
        self._capture.bind(self._capture_addr)
        self._steer.bind(self._steer_addr)
        self._steer_peer.connect(self._steer_addr)
        # The gate: a second C proxy from the capture to the consumers' feed, subscribed
        # only to admitted sources, so the therapist never sees data the recorder refuses
        # (another session's sensor, a leftover one). Re-subscribed on each admission.
        self._gate_in = ctx.socket(zmq.SUB)
        self._gate_in.setsockopt(zmq.RCVHWM, FEED_HWM)
        self._gate_in.connect(self._capture_addr)
        self._gate_steer = ctx.socket(zmq.PAIR)
        self._gate_steer_peer = ctx.socket(zmq.PAIR)
        self._gate_steer.bind(f"inproc://gate-steer-{tag}")
        self._gate_steer_peer.connect(f"inproc://gate-steer-{tag}")
        self._set_gate_topics()
        self._recorder_in = ctx.socket(zmq.SUB)
        self._recorder_in.setsockopt(zmq.RCVHWM, RECORDER_HWM)
        self._recorder_in.setsockopt(zmq.SUBSCRIBE, b"")
        self._recorder_in.connect(self._capture_addr)
        self._router = ctx.socket(zmq.ROUTER)
        self._router.setsockopt(zmq.ROUTER_HANDOVER, 1)
        self._router.setsockopt(zmq.MAXMSGSIZE, SOCKET_MAX_MESSAGE_BYTES)
        if self.security is not None:
            self.security.serve(self._router, "control")
            self._allowed_keys = set(self.security.allow_list.roles_by_key())
            self._revoked_keys = set(self.security.allow_list.revoked_keys())
        try:
            for sock, endpoint in ((self._frontend, self.endpoints.publish),
                                   (self._backend, self.endpoints.feed),
                                   (self._host_pub, self.endpoints.host_feed),
                                   (self._router, self.endpoints.control)):
                sock.setsockopt(zmq.LINGER, 0)
                sock.bind(endpoint)
        except zmq.ZMQError as exc:
            self._close_sockets()
            if self.security is not None:
                self.security.stop()
            holder = admission.read_ticket(self.endpoints.publish)
            if holder is not None and exc.errno == zmq.EADDRINUSE:
                raise HostError(
                    f"cannot listen on {endpoint}: the ports are held by session "
                    f"{holder.get('session_id')} (process {holder.get('pid')}, started "
                    f"{holder.get('started_utc')}); end it or choose other ports") from exc
            raise HostError(f"cannot listen on {endpoint}: {exc}") from exc

    def _write_ticket(self) -> None:
        """The session ticket local clients read to prove they belong (owner-only file)."""
        try:
            admission.write_ticket(self.endpoints.publish, {
                "session_id": self.session_id, "secret": self._secret, "pid": os.getpid(),
                "control": self.endpoints.control, "secure": self.security is not None,
                "started_utc": datetime.fromtimestamp(self.started_wall_s, UTC).isoformat()})
        except OSError as exc:
            log.error("cannot write the session ticket (local sources need the therapist "
                      "to admit them): %s", exc)

    # --- running ------------------------------------------------------------------

    def start(self) -> SessionHost:
        """Run the host in background threads (returns at once)."""
        self._start_proxy()
        self._thread = threading.Thread(target=self._loop, name="host-loop", daemon=True)
        self._thread.start()
        return self

    def run(self, exit_after_end_s: float | None = None) -> None:
        """Run in the calling thread until :meth:`request_stop` (or Ctrl-C), or, with
        ``exit_after_end_s``, until that long after the session has ended (clients see the
        ended state before the host goes)."""
        self._exit_when_ended_s = exit_after_end_s
        self._start_proxy()
        try:
            self._loop()
        finally:
            self.close()

    def _start_proxy(self) -> None:
        self._proxy_thread = threading.Thread(target=self._proxy, name="host-proxy",
                                              daemon=True)
        self._proxy_thread.start()
        self._start_gate()

    def _start_gate(self) -> None:
        self._gate_thread = threading.Thread(target=self._gate, name="host-gate",
                                             daemon=True)
        self._gate_thread.start()

    def _stop_gate(self) -> bool:
        """Stop the gate proxy (its queued messages wait in its socket); True if it ran."""
        if self._gate_thread is None:
            return False
        try:
            self._gate_steer_peer.send(b"TERMINATE")
        except zmq.ZMQError:
            pass
        self._gate_thread.join(timeout=5)
        self._gate_thread = None
        return True

    def _gate_wanted(self) -> set[str]:
        if not self.admission_required:
            return {f"{kind}." for kind in protocol.DATA_KINDS}
        # A prefix: "hr.strap" also lets "hr.strap2" through to consumers (ZeroMQ matches
        # prefixes); such a source is pending, so the recorder refuses it and the panel
        # drops it.
        return {f"{kind}.{source}" for source in self.admitted_sources
                for kind in protocol.DATA_KINDS}

    def _set_gate_topics(self) -> None:
        """Subscribe the gate to exactly the admitted sources (stopping it meanwhile: a
        socket belongs to one thread at a time)."""
        wanted = self._gate_wanted()
        if wanted == self._gate_topics:
            return
        running = self._stop_gate()
        for topic in self._gate_topics - wanted:
            self._gate_in.setsockopt(zmq.UNSUBSCRIBE, topic.encode("ascii"))
        for topic in wanted - self._gate_topics:
            self._gate_in.setsockopt(zmq.SUBSCRIBE, topic.encode("ascii"))
        self._gate_topics = wanted
        if running:
            self._start_gate()

    def _gate(self) -> None:
        try:
            zmq.proxy_steerable(self._gate_in, self._backend, None, self._gate_steer)
        except zmq.ContextTerminated:
            pass
        except zmq.ZMQError as exc:
            log.error("feed gate stopped: %s", exc)

    def _check_revocations(self) -> None:
        """Cut every open connection of a key that left the allow-list (within a second)."""
        if self.security is None:
            return
        try:
            allowed = set(self.security.allow_list.roles_by_key())
            revoked_now = set(self.security.allow_list.revoked_keys())
        except Exception as exc:  # a hand-edited file may be broken in any way
            log.error("cannot read the allow-list (keeping the last one): %s", exc)
            return
        # Keys marked revoked since the last look, and keys removed from the file.
        cut = (revoked_now - self._revoked_keys) | (self._allowed_keys - allowed)
        self._allowed_keys, self._revoked_keys = allowed, revoked_now
        if cut:
            self.counters["keys_revoked"] += len(cut)
            self._reopen_public_sockets()

    def _reopen_public_sockets(self) -> None:
        """Close and re-open the publish and feed sockets. ZeroMQ cannot drop one peer of a
        bound socket, so every peer handshakes again: ZAP refuses the revoked keys and the
        others reconnect within ZeroMQ's reconnect interval (about 0.1 s; data published in
        that moment is lost, and shows as a sequence gap)."""
        if self._proxy_thread is not None:
            self._steer_peer.send(b"TERMINATE")
            self._proxy_thread.join(timeout=5)
        self._stop_gate()
        for sock in (self._frontend, self._backend, self._host_pub):
            sock.close(linger=0)
        self._frontend, self._backend, self._host_pub = self._public_sockets()
        for sock, endpoint in ((self._frontend, self.endpoints.publish),
                               (self._backend, self.endpoints.feed),
                               (self._host_pub, self.endpoints.host_feed)):
            deadline = time.monotonic() + 2.0
            while True:
                try:
                    sock.bind(endpoint)
                    break
                except zmq.ZMQError:
                    # The closed socket's port is released by ZeroMQ's I/O thread shortly.
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.01)
        log.warning("a key was revoked: all publish/feed connections were cut and "
                    "re-authenticated")
        if self._proxy_thread is not None:
            self._start_proxy()

    def _proxy(self) -> None:
        try:
            # Everything published goes to the capture (the recorder and the gate).
            zmq.proxy_steerable(self._frontend, self._capture, None, self._steer)
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
        self._stop_gate()
        self.recorder.close(self.clock.now())
        self._close_sockets()
        admission.remove_ticket(self.endpoints.publish, self.session_id)
        if self.security is not None:
            self.security.stop()

    def _close_sockets(self) -> None:
        for sock in (self._frontend, self._backend, self._capture, self._steer,
                     self._steer_peer, self._recorder_in, self._host_pub, self._router,
                     self._gate_in, self._gate_steer, self._gate_steer_peer):
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
            if poller.poll(poll_timeout_ms(wake_s - now)):
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
            try:
                self._capture_one(frames)
            except Exception:  # no data message may end the host
                self.counters["data_rejected"] += 1
                self.counters["data_errors"] += 1
                self._log_refusal("a data message could not be handled (dropped)",
                                  exc_info=True)

    def _capture_one(self, frames: list[bytes]) -> None:
        try:
            message = protocol.decode_data(frames)
        except protocol.ProtocolError as exc:
            self.counters["data_rejected"] += 1
            self.recorder.rejected += 1
            log.debug("rejected a malformed data message: %s", exc)
            return
        reason = self._admit_data(message)
        if reason is not None:
            if reason != "pending_source":
                self.counters["data_rejected"] += 1
            self.counters[f"data_rejected_{reason}"] += 1
            return
        self._check_sequence(message)
        if not self.recorder.record(message) and message.kind not in UNRECORDED_KINDS:
            self.counters["data_rejected"] += 1
            return
        if message.kind == "hr" and not message.source.endswith(".device"):
            # A device's own figure is shadowed by the derived, quality-flagged one.
            # Timed by arrival on the host's clock, not by the sender's stamp: forged
            # stamps must not make two samples look like a sustained rise.
            now, quality = self.clock.now(), str(message.payload.get("quality", "good"))
            self.hr_source.observe(now, message.source, quality)
            if message.source != self.hr_source.primary(now):
                return  # baseline and alert read one source: the one the panel shows
            for name, args in self.monitor.observe(now, float(message.payload["bpm"]),
                                                   quality):
                self._apply_internal(name, args)
        elif message.kind == "sensor":
            self._sensor_status(message)

    def _check_sequence(self, message: protocol.DataMessage) -> None:
        """Record a ``data_gap`` when a producer's sequence numbers skip: ZeroMQ drops at a
        high-water mark silently, so the recording says where data is missing."""
        last = self._last_seq.get(message.topic)
        self._last_seq[message.topic] = message.seq
        if last is None or message.seq <= last:
            return  # first message, or the producer restarted (numbers from 0 again)
        if message.seq > last + 1:
            count = message.seq - last - 1
            self.counters["data_gaps"] += 1
            self.counters["data_gap_messages"] += count
            self.recorder.record_event(message.t_s, {
                "type": "data_gap", "t_s": message.t_s, "source": message.topic,
                "from_seq": last + 1, "to_seq": message.seq - 1, "count": count})

    def _admit_data(self, message: protocol.DataMessage) -> str | None:
        """Why ``message`` must not be recorded (a counter name), or None."""
        now = self.clock.now()
        if not (max(-DATA_PAST_TOLERANCE_S, now - DATA_MAX_AGE_S) <= message.t_s
                <= now + DATA_FUTURE_TOLERANCE_S):
            return "time"
        tags = self._source_tags.get(message.source)
        if tags:
            # The name is bound to the clients that proved it: anyone else using it (a
            # leftover sensor of the same name) is refused, and so is a replayed message.
            tag = admission.check_binding(tags, message.topic, message.seq, message.t_s,
                                          message.auth)
            if tag is None:
                return "unbound_source"
            last = self._bound_seq.get((message.topic, tag), -1)
            if message.seq <= last:
                return "replayed"
            self._bound_seq[(message.topic, tag)] = message.seq
        if self.admission_required and message.source not in self.admitted_sources:
            if message.source in self.rejected_sources:
                return "rejected_source"
            # Shown to the therapist to admit or reject; never recorded until admitted.
            if message.source in self.pending_sources or \
                    len(self.pending_sources) < MAX_PENDING_SOURCES:
                self.pending_sources[message.source] += 1
            else:
                self.counters["pending_sources_overflow"] += 1
            return "pending_source"
        if message.topic not in self._topics_recorded:
            if len(self._topics_recorded) >= MAX_RECORDED_TOPICS:
                return "too_many_sources"
            self._topics_recorded.add(message.topic)
        # Per-topic rate limit: the excess is counted (data_rejected_rate), not recorded.
        limit = SENSOR_STATUS_PER_S if message.kind == "sensor" else DATA_MESSAGES_PER_S
        second = int(now)
        window, count = self._status_window.get(message.topic, (second, 0))
        count = count + 1 if window == second else 1
        self._status_window[message.topic] = (second, count)
        if count > limit:
            return "rate"
        return None

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
            try:
                key_role = key_id = None
                if self.security is not None:
                    # The key that authenticated this connection decides the role; the
                    # allow-list is read again, so a revoked key's open connection is cut.
                    key_id = body.get("User-Id")
                    key_role = self.security.role_of(key_id) or "revoked"
                reply = self.handle_command_bytes(body.bytes, key_role, sender=key_id or "",
                                                  peer=identity.bytes)
            except Exception:  # no command may end the host
                self.counters["commands_failed"] += 1
                self._log_refusal("a command could not be handled", exc_info=True)
                reply = ReplyMessage(_envelope_id(body.bytes), False, self.state.seq,
                                     "internal error while handling this command (logged)",
                                     {})
            if reply is not None:
                try:
                    self._router.send_multipart([identity.bytes, protocol.encode_reply(reply)],
                                                zmq.NOBLOCK)
                except zmq.ZMQError as exc:
                    self.counters["replies_dropped"] += 1
                    log.warning("reply not sent: %s", exc)

    def _sensor_status(self, message: protocol.DataMessage) -> None:
        """A sensor that lost its port is an alert for the therapist until it is back."""
        alert = f"{ALERT_SENSOR_LOST}.{message.source}"[:64]
        event = message.payload.get("event")
        lost = [a for a in self.state.alerts_active if a.startswith(ALERT_SENSOR_LOST)]
        if event == "disconnected" and alert not in lost and len(lost) >= MAX_SOURCE_ALERTS:
            # A flood of sources is one problem for the therapist, not thousands of alerts.
            self.counters["sensor_alerts_collapsed"] += 1
            return
        if event == "disconnected":
            self._apply_internal("alert", {"alert": alert, "source": message.source,
                                           "port": str(message.payload.get("port", ""))})
        elif event == "connected" and alert in self.state.alerts_active:
            self._apply_internal("alert_cleared", {"alert": alert})

    # --- commands -----------------------------------------------------------------

    def handle_command_bytes(self, raw: bytes, key_role: str | None = None,
                             sender: str = "", peer: bytes = b"") -> ReplyMessage | None:
        """The reply to one command envelope. Every envelope gets one: a malformed one is
        answered with its error (under its id when that much could be read)."""
        now = self.clock.now()
        try:
            msg = protocol.decode_command(raw)
        except protocol.ProtocolError as exc:
            stop = _readable_stop(raw)
            if stop is None:
                self.counters["commands_malformed"] += 1
                self._log_refusal("rejected a malformed command: %s", exc)
                return ReplyMessage(_envelope_id(raw), False, self.state.seq,
                                    f"malformed command: {exc}"[:300], {})
            # A STOP whose arguments are malformed still stops (without them): it grants
            # nothing a well-formed STOP would not, and STOP must always work.
            self.counters["stops_from_malformed"] += 1
            msg = stop
        if msg.name != "stop" and not self._within_rate(sender or peer.hex(), now):
            # Counted, answered, not recorded: a flood must not fill the recording. STOP is
            # never limited.
            self.counters["commands_rate_limited"] += 1
            return ReplyMessage(msg.id, False, self.state.seq,
                                f"rate limited: more than {COMMANDS_PER_S} commands a second "
                                "from this client", {})
        if key_role is not None and msg.name == admission.HELLO_COMMAND \
                and key_role in DOMAIN_ROLES["publish"]:
            # A publisher proves its source with whatever publishing key it holds (a
            # simulator may be configured with a therapist's key): the key's role counts.
            msg = replace(msg, role=key_role)
        if key_role is not None and msg.role != key_role:
            return self._reject(msg, now, f"this client's key is for the role '{key_role}', "
                                          f"not '{msg.role}'")
        # A retried command is answered from the cache, but only the same command from the
        # same sender: another client's id (or another command under a reused id) runs.
        cache_key = (sender, msg.role, msg.client, msg.id, msg.name)
        if msg.name not in UNCACHED_COMMANDS:
            cached = self._replies.get(cache_key)
            if cached is not None:
                self.counters["commands_retried"] += 1
                return cached
        reply = self._execute(msg, now, sender)
        if msg.name not in UNCACHED_COMMANDS:
            self._replies[cache_key] = reply
            while len(self._replies) > REPLY_CACHE_SIZE:
                self._replies.popitem(last=False)
        return reply

    def _within_rate(self, client: str, now: float) -> bool:
        """Token bucket per connection (or key): COMMANDS_PER_S, bursts of COMMAND_BURST."""
        tokens, last = self._buckets.pop(client, (float(COMMAND_BURST), now))
        tokens = min(float(COMMAND_BURST), tokens + (now - last) * COMMANDS_PER_S)
        allowed = tokens >= 1.0
        self._buckets[client] = (tokens - 1.0 if allowed else tokens, now)
        while len(self._buckets) > MAX_RATE_BUCKETS:
            self._buckets.popitem(last=False)  # the least recently active client
        return allowed

    def _reply(self, msg: protocol.CommandMessage, ok: bool, error: str = "",
               result: Mapping[str, Any] | None = None) -> ReplyMessage:
        return ReplyMessage(msg.id, ok, self.state.seq, error, dict(result or {}))

    def _execute(self, msg: protocol.CommandMessage, now: float, sender: str = ""
                 ) -> ReplyMessage:
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
        if msg.name in (admission.HELLO_COMMAND, "admit_source", "reject_source"):
            return self._admission_command(msg, role, now, sender)
        if msg.name == "set_hr_source":
            return self._set_hr_source(msg, role, now)
        if msg.name == "clock_report":
            # Only the two figures a clock report carries, each a finite number.
            figures = {k: float(v) for k, v in msg.args.items()
                       if k in ("offset_s", "error_bound_s") and not isinstance(v, bool)
                       and isinstance(v, int | float) and math.isfinite(v)}
            self.recorder.record_event(now, {"type": "clock", "t_s": now, "client": msg.client,
                                             "role": msg.role, **figures})
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

    def _set_hr_source(self, msg: protocol.CommandMessage, role: Role, now: float
                       ) -> ReplyMessage:
        """The therapist names the heart-rate source of the headline and the alert (None:
        the best trusted one)."""
        try:
            if role != Role.THERAPIST:
                raise ArgError(f"role '{role.value}' may not send 'set_hr_source'")
            value = msg.args.get("source")
            source = None if value is None else admission.check_source(value)
        except ArgError as exc:
            return self._reject(msg, now, str(exc))
        self.hr_source.chosen = source
        self._record_command(msg, now, True, "")
        self._last_state_pub_s = -1.0  # the panel sees the choice at once
        return self._reply(msg, True, result={"hr_source": self.hr_source.primary(now)})

    def _admission_command(self, msg: protocol.CommandMessage, role: Role, now: float,
                           sender: str = "") -> ReplyMessage:
        key_name: str | None = None
        rebound = False  # the name passes from a revoked key to this one: recorded
        try:
            if msg.name == admission.HELLO_COMMAND:
                if self.security is not None:
                    # The key authenticated this connection; the name is bound to that key,
                    # so another key (or no proof) under the same name is not recorded.
                    source, how = admission.check_source(msg.args.get("source")), "key"
                    if role.value not in DOMAIN_ROLES["publish"]:
                        raise ArgError(f"role '{role.value}' may not publish data")
                    owner = self._source_keys.get(source)
                    if owner is not None and owner != sender and \
                            self.security.role_of(owner) is not None:
                        raise ArgError(f"source '{source}' is bound to another key")
                    key_name = self.security.name_of(sender) or "unknown"
                    if owner != sender:
                        self._source_tags.pop(source, None)  # the old key was revoked
                        rebound = owner is not None
                    self._source_keys[source] = sender
                else:
                    source = admission.check_hello(self._secret, self.session_id, msg.args)
                    how = "session_secret"
            else:
                if role != Role.THERAPIST:
                    raise ArgError(f"role '{role.value}' may not send '{msg.name}'")
                source, how = admission.check_source(msg.args.get("source")), "therapist"
        except ArgError as exc:
            return self._reject(msg, now, str(exc))
        tag: str | None = None
        if msg.name == "reject_source":
            self._source_tags.pop(source, None)
            self._source_keys.pop(source, None)
            self.pending_sources.pop(source, None)
            if len(self.rejected_sources) < MAX_PENDING_SOURCES:
                self.rejected_sources.add(source)
            self.admitted_sources.pop(source, None)
            kind = "source_rejected"
        else:
            known = source in self.admitted_sources
            if not known and len(self.admitted_sources) >= MAX_RECORDED_TOPICS:
                return self._reject(msg, now, "too many sources in this session")
            if how in ("session_secret", "key"):
                # Bind the name to this client: its messages must carry a MAC with the tag.
                tag = admission.new_tag()
                tags = self._source_tags.setdefault(source, [])
                tags.append(tag)
                del tags[:-MAX_TAGS_PER_SOURCE]
            if known and not rebound:
                return self._reply(msg, True, result={"source": source, "admitted": True,
                                                      **({"tag": tag} if tag else {})})
            self.pending_sources.pop(source, None)
            self.rejected_sources.discard(source)
            self.admitted_sources[source] = now
            kind = "source_admitted"
        self._set_gate_topics()  # consumers see exactly the admitted sources
        record = {"type": "admission", "kind": kind, "t_s": now, "source": source,
                  "how": how, "role": msg.role, "client": msg.client}
        if key_name is not None:
            record["key"] = key_name  # which key admitted the source (never the key itself)
        self.recorder.record_event(now, record)
        self._publish_event(Event(kind, now, {"source": source, "how": how}))
        self._publish_state(now)
        result: dict[str, Any] = {"source": source, "admitted": kind == "source_admitted"}
        if kind == "source_admitted" and tag is not None:
            result["tag"] = tag
        return self._reply(msg, True, result=result)

    def _reject(self, msg: protocol.CommandMessage, now: float, error: str) -> ReplyMessage:
        self.counters["commands_rejected"] += 1
        self._log_refusal("refused '%s' from %s:%s: %s", msg.name[:64], msg.role, msg.client,
                          error[:200])
        self._record_command(msg, now, False, error)
        return self._reply(msg, False, error)

    def _log_refusal(self, message: str, *args: Any, exc_info: bool = False) -> None:
        """Log a refusal, at most LOG_REFUSALS_PER_S a second (a flood is counted instead,
        and summed up in one line when the next second starts)."""
        second = int(time.monotonic())
        if second != self._log_second:
            if self._log_suppressed:
                log.warning("%d more refusals not logged (flood)", self._log_suppressed)
            self._log_second, self._log_count, self._log_suppressed = second, 0, 0
        self._log_count += 1
        if self._log_count <= LOG_REFUSALS_PER_S:
            log.warning(message, *args, exc_info=exc_info)
        else:
            self._log_suppressed += 1

    def _record_command(self, msg: protocol.CommandMessage, now: float, ok: bool,
                        error: str) -> None:
        record: dict[str, Any] = {"type": "command", "t_s": now, "id": msg.id,
                                  "name": msg.name, "role": msg.role, "client": msg.client,
                                  "ok": ok}
        if ok:
            args_json = json.dumps(jsonable(dict(msg.args)), sort_keys=True)
            if len(args_json) <= RECORDED_ARGS_MAX_CHARS:
                record["args"] = dict(msg.args)
            else:
                record["args_omitted_chars"] = len(args_json)
        else:
            # A refused command is recorded by name and reason only: its arguments are
            # whatever the sender chose, of any size.
            record["error"] = error[:300]
        self.recorder.record_event(now, record)

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
        if now >= self._next_key_check_s:
            self._next_key_check_s = now + KEY_CHECK_INTERVAL_S
            self._check_revocations()
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
            # the heart-rate source of the headline, the baseline and the alert
            "hr_source": self.hr_source.primary(now),
            "hr_source_chosen": self.hr_source.chosen,
            "commands_rejected": self.counters["commands_rejected"],
            "commands_malformed": self.counters["commands_malformed"],
            "commands_failed": self.counters["commands_failed"],
            "commands_rate_limited": self.counters["commands_rate_limited"],
            "data_rejected_time": self.counters["data_rejected_time"],
            "data_rejected_rate": self.counters["data_rejected_rate"],
            "data_rejected_too_many_sources": self.counters["data_rejected_too_many_sources"],
            "data_rejected_unbound_source": self.counters["data_rejected_unbound_source"],
            "sensor_alerts_collapsed": self.counters["sensor_alerts_collapsed"],
            "source_admission": self.admission_required,
            "admitted_sources": dict(self.admitted_sources),
            "pending_sources": dict(self.pending_sources.most_common(MAX_PENDING_SOURCES)),
            "rejected_sources": sorted(self.rejected_sources),
            "data_gaps": self.counters["data_gaps"],
            "data_gap_messages": self.counters["data_gap_messages"],
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


def _shallow_envelope(raw: bytes) -> dict[str, Any] | None:
    try:
        body = msgpack.unpackb(raw, raw=False, max_str_len=1 << 16, max_bin_len=1 << 20,
                               max_array_len=1024, max_map_len=1024, max_ext_len=0)
    except Exception:  # any garbage: nothing readable
        return None
    return body if isinstance(body, dict) else None


def _readable_stop(raw: bytes) -> protocol.CommandMessage | None:
    """A STOP command from an envelope that failed full decoding (e.g. a reason nested too
    deep), when its version, id, role and client are readable; else None."""
    body = _shallow_envelope(raw)
    if body is None or body.get("cmd") != "stop" or body.get("v") != protocol.PROTOCOL_VERSION:
        return None
    fields = [body.get(key) for key in ("id", "role", "client")]
    texts = [f for f in fields if isinstance(f, str) and 0 < len(f) <= 64]
    if len(texts) != 3:
        return None
    return protocol.CommandMessage(texts[0], "stop", {}, texts[1], texts[2])


def _envelope_id(raw: bytes) -> str:
    """The id of a command envelope that could not be fully decoded, or '' (so the sender
    still gets an answer it can match)."""
    try:
        body = msgpack.unpackb(raw, raw=False, max_str_len=1 << 16, max_bin_len=0,
                               max_array_len=64, max_map_len=64, max_ext_len=0)
    except Exception:  # any garbage: no id
        return ""
    value = body.get("id") if isinstance(body, dict) else None
    return value if isinstance(value, str) and 0 < len(value) <= 64 else ""


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
