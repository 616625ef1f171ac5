"""Replay a recorded session on the session host's sockets, read-only.

:class:`Replayer` stands in for the session host: it binds the same four
sockets (``publish``, ``feed``, ``host_feed``, ``control``) and publishes the
recording with its original timing, so the panel, the renderer, the LSL
gateway and any other consumer attach to it unchanged.

* Every recorded data sample goes out on ``feed`` under its recorded topic with
  its recorded session time: heart rate, RR intervals (one message per beat),
  head pose, JSON streams, and waveforms re-chunked as recorded (the file keeps
  only each chunk's first time stamp, so chunks are rebuilt from the time stamps:
  blocks of about 20 ms, split at every gap). A chunk goes out when its last
  sample is due, as it did live.
* ``event``/``alert`` records go out on ``host_feed`` at their time; the recorded
  ``state`` goes out at each change and again at least every 0.1 s of wall time
  (the host's heartbeat, which keeps a renderer out of its fail-safe), with the
  elapsed-time fields advanced and ``"replay": true`` in its ``session`` part.
* Timing is the recording's, scaled by ``speed``; or as fast as possible, paced
  losslessly by the slowest subscriber (``XPUB_NODROP``).
* ``control`` answers ``ping`` (the replay's session time), ``get_state`` and
  ``heartbeat``; every other command is refused with :data:`READ_ONLY_ERROR`.
* Live ``preview`` frames sent to ``publish`` (a renderer re-rendering the
  patient's view) are forwarded to ``feed`` so the panel shows them; nothing
  else from producers is forwarded.

The feeds are XPUB sockets so the replay can wait for its first consumer
(``wait_for_subscriber``) instead of publishing the start into the void.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import zmq

from . import protocol
from .config import Endpoints
from .host import is_loopback
from .protocol import ReplyMessage
from .recorder import EVENTS_STREAM, NUMERIC_LAYOUTS, STATE_STREAM, WAVEFORM_TYPES
from .xdf import XdfFile, XdfStream, read_xdf

log = logging.getLogger(__name__)

#: The reply to every command that would change something.
READ_ONLY_ERROR = "read-only replay: commands are not accepted"
ANSWERED_COMMANDS = frozenset({"ping", "get_state", "heartbeat"})
#: The state is re-published at least this often (wall time), like the host's heartbeat.
STATE_INTERVAL_S = 0.1
#: Rebuilt waveform chunks last about this long (20 samples at 1 kHz).
CHUNK_DURATION_S = 0.02
QUALITY_NAMES = {0: "good", 1: "uncertain", 2: "bad"}
#: Send high-water mark when pacing losslessly to the slowest subscriber.
LOSSLESS_HWM = 20_000
FEED_HWM = 100_000


class ReplayError(Exception):
    """The recording cannot be replayed as asked (bad window, no data, address in use)."""


# --------------------------------------------------------------------------- pure helpers


def chunk_bounds(timestamps: npt.NDArray[np.float64], rate_hz: float,
                 block: int | None = None) -> npt.NDArray[np.int64]:
    """Start indices of waveform chunks (plus the end index) rebuilt from sample times.

    A new chunk starts at every gap (a step between samples more than half a
    period away from the nominal period) and after ``block`` samples (default:
    :data:`CHUNK_DURATION_S` worth, at least one).
    """
    n = len(timestamps)
    if n == 0:
        return np.zeros(1, dtype=np.int64)
    if block is None:
        block = max(1, round(rate_hz * CHUNK_DURATION_S))
    period = 1.0 / rate_hz
    steps = np.diff(timestamps)
    breaks = np.flatnonzero(np.abs(steps - period) > 0.5 * period) + 1
    segment_starts = np.concatenate([[0], breaks])
    segment_ends = np.concatenate([breaks, [n]])
    starts = [np.arange(a, b, block, dtype=np.int64)
              for a, b in zip(segment_starts, segment_ends, strict=True)]
    return np.concatenate([*starts, np.array([n], dtype=np.int64)])


def session_metadata(recording: XdfFile) -> dict[str, Any]:
    """The ``vrexposure`` JSON header of a recording ({} when absent or unreadable)."""
    try:
        meta = json.loads(recording.header.get("vrexposure", "{}"))
    except (TypeError, json.JSONDecodeError):
        return {}
    return meta if isinstance(meta, dict) else {}


def channel_units(stream: XdfStream) -> list[str]:
    channels = stream.info.get("desc", {}) or {}
    channels = channels.get("channels", {}) if isinstance(channels, dict) else {}
    items = channels.get("channel", []) if isinstance(channels, dict) else []
    if isinstance(items, dict):
        items = [items]
    return [str(c.get("unit", "")) if isinstance(c, dict) else "" for c in items]


def parse_json_records(stream: XdfStream) -> list[tuple[float, dict[str, Any]]]:
    """(time, record) for each readable JSON marker of a string stream."""
    out = []
    for t, text in zip(stream.timestamps, stream.values, strict=False):
        try:
            record = json.loads(text)
        except (TypeError, json.JSONDecodeError):
            continue
        if isinstance(record, dict):
            out.append((float(t), record))
    return out


# --------------------------------------------------------------------------- the schedule


@dataclass
class _Source:
    """One topic's messages: due times, and how to build message ``i``."""

    topic: str
    host: bool  # published on host_feed (state/event/alert) rather than feed
    due: npt.NDArray[np.float64]
    build: Callable[[int], tuple[str, float, dict[str, Any], int]]  # topic, t, payload, samples
    n_samples: int = -1  # samples in all its messages (-1: one per message)

    @property
    def samples(self) -> int:
        return len(self.due) if self.n_samples < 0 else self.n_samples


def _numeric_source(stream: XdfStream, kind: str, mask: npt.NDArray[np.bool_]) -> _Source:
    t = stream.timestamps[mask]
    v = np.asarray(stream.values, dtype=np.float64)[mask]
    topic = stream.name
    rows = v.tolist()
    times = t.tolist()

    if kind == "hr":
        def build(i: int) -> tuple[str, float, dict[str, Any], int]:
            bpm, quality = rows[i][0], rows[i][1]
            return topic, times[i], {"bpm": bpm,
                                     "quality": QUALITY_NAMES.get(int(quality), "uncertain")}, 1
    elif kind == "spo2":
        def build(i: int) -> tuple[str, float, dict[str, Any], int]:
            value, quality = rows[i][0], rows[i][1]
            return topic, times[i], {"spo2_pct": value,
                                     "quality": QUALITY_NAMES.get(int(quality), "uncertain")}, 1
    elif kind == "rr":
        # The recording keeps each interval stamped at the beat that ends it.
        def build(i: int) -> tuple[str, float, dict[str, Any], int]:
            return topic, times[i], {"rr_ms": [rows[i][0]]}, 1
    else:  # pose
        def build(i: int) -> tuple[str, float, dict[str, Any], int]:
            r = rows[i]
            payload: dict[str, Any] = {"pos": r[0:3], "quat": r[3:7]}
            if math.isfinite(r[7]):
                payload["look_angle_deg"] = min(180.0, max(0.0, r[7]))
                payload["looking_away"] = r[8] > 0.5
            return topic, times[i], payload, 1
    return _Source(topic, False, t, build)


def _wave_source(stream: XdfStream, kind: str, lo: int, hi: int) -> _Source:
    t = stream.timestamps[lo:hi]
    values = np.ascontiguousarray(np.asarray(stream.values)[lo:hi], dtype="<f4")
    rate = float(stream.info.get("nominal_srate", 0.0))
    bounds = chunk_bounds(t, rate)
    starts, ends = bounds[:-1], bounds[1:]
    units = channel_units(stream)
    unit = units[0] if units else ""
    n_channels = values.shape[1] if values.ndim == 2 else 1
    topic = stream.name
    first = t[starts].tolist() if len(starts) else []

    def build(i: int) -> tuple[str, float, dict[str, Any], int]:
        a, b = int(starts[i]), int(ends[i])
        payload = {"rate_hz": rate, "n_channels": n_channels, "unit": unit,
                   "quality": "good", "data": values[a:b].tobytes()}
        return topic, first[i], payload, b - a

    # A chunk goes out once its last sample exists, as it did live.
    due = t[ends - 1] if len(starts) else np.empty(0)
    return _Source(topic, False, due, build, int(hi - lo))


def _json_source(stream: XdfStream, mask: npt.NDArray[np.bool_]) -> _Source:
    t = stream.timestamps[mask]
    texts = [text for text, keep in zip(stream.values, mask, strict=False) if keep]
    times = t.tolist()
    topic = stream.name

    def build(i: int) -> tuple[str, float, dict[str, Any], int]:
        try:
            payload = json.loads(texts[i])
        except json.JSONDecodeError:
            payload = {"text": texts[i]}
        return topic, times[i], payload if isinstance(payload, dict) else {"value": payload}, 1

    return _Source(topic, False, t, build)


@dataclass
class ReplaySchedule:
    """Everything a replay sends, in order (pure: built from a read recording)."""

    sources: list[_Source]
    due: npt.NDArray[np.float64]
    source_index: npt.NDArray[np.int32]
    item_index: npt.NDArray[np.int64]
    states: list[tuple[float, dict[str, Any]]]
    initial_state: dict[str, Any] | None
    start_s: float
    end_s: float
    skipped_streams: list[str] = field(default_factory=list)

    @property
    def n_messages(self) -> int:
        return len(self.due)

    @staticmethod
    def build(recording: XdfFile, start_s: float | None = None,
              end_s: float | None = None) -> ReplaySchedule:
        last = max((float(s.timestamps[-1]) for s in recording.streams.values()
                    if len(s.timestamps)), default=0.0)
        first = min((float(s.timestamps[0]) for s in recording.streams.values()
                     if len(s.timestamps)), default=0.0)
        lo = min(first, 0.0) if start_s is None else float(start_s)
        hi = last if end_s is None else min(float(end_s), last)
        if start_s is not None and start_s > last:
            raise ReplayError(f"--from {start_s:g} s is after the end of the recording "
                              f"({last:.1f} s)")
        if hi < lo:
            raise ReplayError(f"empty window: from {lo:g} s to {hi:g} s")
        sources: list[_Source] = []
        skipped: list[str] = []
        states: list[tuple[float, dict[str, Any]]] = []
        initial_state: dict[str, Any] | None = None
        for stream in recording.streams.values():
            name = stream.name
            t = stream.timestamps
            if name == STATE_STREAM:
                for when, record in parse_json_records(stream):
                    if when < lo:
                        initial_state = record
                    elif when <= hi:
                        states.append((when, record))
                continue
            if name == EVENTS_STREAM:
                records = [(when, r) for when, r in parse_json_records(stream)
                           if lo <= when <= hi and r.get("type") == "event"]
                sources.extend(_event_sources(records))
                continue
            kind = name.split(".", 1)[0]
            if kind not in protocol.DATA_KINDS or "." not in name:
                skipped.append(name)
                continue
            try:
                protocol.check_topic(name)
            except protocol.ProtocolError:
                skipped.append(name)
                continue
            mask = (t >= lo) & (t <= hi)
            if not mask.any():
                continue
            if kind in WAVEFORM_TYPES and stream.info.get("channel_format") != "string":
                index = np.flatnonzero(mask)
                sources.append(_wave_source(stream, kind, int(index[0]), int(index[-1]) + 1))
            elif kind in NUMERIC_LAYOUTS and stream.info.get("channel_format") != "string":
                values = np.asarray(stream.values, dtype=np.float64)
                mask &= np.isfinite(values[:, 0])
                if kind == "pose":
                    mask &= np.isfinite(values[:, :7]).all(axis=1)
                sources.append(_numeric_source(stream, kind, mask))
            elif stream.info.get("channel_format") == "string":
                sources.append(_json_source(stream, mask))
            else:
                skipped.append(name)
        if states:
            state_due = np.array([when for when, _ in states], dtype=np.float64)
            sources.append(_Source(protocol.TOPIC_STATE, True, state_due,
                                   lambda i: (protocol.TOPIC_STATE, states[i][0],
                                              states[i][1], 1)))
        # Merge by due time; at equal times host events go before the state they caused
        # (as the host sends them) and data keeps its per-stream order.
        order_keys = []
        for code, source in enumerate(sources):
            priority = 1 if source.topic in (protocol.TOPIC_EVENT, protocol.TOPIC_ALERT) else (
                2 if source.topic == protocol.TOPIC_STATE else 0)
            n = len(source.due)
            order_keys.append((source.due, np.full(n, priority, np.int8),
                               np.full(n, code, np.int32), np.arange(n, dtype=np.int64)))
        if order_keys:
            due = np.concatenate([k[0] for k in order_keys])
            ranks = np.concatenate([k[1] for k in order_keys])
            codes = np.concatenate([k[2] for k in order_keys])
            items = np.concatenate([k[3] for k in order_keys])
            order = np.lexsort((items, codes, ranks, due))
            due, codes, items = due[order], codes[order], items[order]
        else:
            due, codes, items = (np.empty(0), np.empty(0, np.int32), np.empty(0, np.int64))
        return ReplaySchedule(sources, due, codes, items, states, initial_state, lo, hi,
                              skipped)

    def sample_count(self) -> int:
        """Samples the schedule sends (a chunk counts its samples; a state counts one)."""
        return sum(source.samples for source in self.sources)


def _event_sources(records: list[tuple[float, dict[str, Any]]]) -> list[_Source]:
    out = []
    for topic in (protocol.TOPIC_EVENT, protocol.TOPIC_ALERT):
        chosen = [(when, {k: v for k, v in r.items() if k != "type"}) for when, r in records
                  if (r.get("kind") == "alert") == (topic == protocol.TOPIC_ALERT)]
        if not chosen:
            continue
        due = np.array([when for when, _ in chosen], dtype=np.float64)

        def build(i: int, chosen: list[tuple[float, dict[str, Any]]] = chosen,
                  topic: str = topic) -> tuple[str, float, dict[str, Any], int]:
            return topic, chosen[i][0], chosen[i][1], 1

        out.append(_Source(topic, True, due, build))
    return out


# --------------------------------------------------------------------------- the replayer


@dataclass
class ReplayStats:
    messages: int = 0
    samples: int = 0
    states_heartbeat: int = 0
    commands_answered: int = 0
    commands_refused: int = 0
    previews_forwarded: int = 0
    max_late_s: float = 0.0
    wall_s: float = 0.0
    by_topic: Counter[str] = field(default_factory=Counter)


def split_wait(timeout_s: float) -> tuple[int, float]:
    """How to wait ``timeout_s`` without spinning and without being late: a poll of whole
    milliseconds (it wakes before the sample is due), and under 1 ms none but a sleep of
    the rest (a poll(0) loop over that last fraction spun ~1 ms before every sample: 6 %
    of a core replaying at 1x)."""
    whole_ms = max(0, int(timeout_s * 1000))
    return whole_ms, (timeout_s if whole_ms == 0 and timeout_s > 0 else 0.0)


class Replayer:
    """Publishes a recording on the session host's sockets (see the module docstring).

    ``recording``: a path or an already read :class:`~vrexposure.xdf.XdfFile`.
    ``start_s``/``end_s``: the excerpt, in session seconds. ``speed``: 2.0 plays twice
    as fast. ``as_fast_as_possible``: ignore timing, pace by the slowest subscriber.
    ``wait_for_subscriber``: start the clock only once a consumer has subscribed.
    ``hold``: after the end keep publishing the last state and answering commands
    until :meth:`request_stop`. ``on_progress(t_s, samples)`` is called about ten
    times a second from the replay thread.
    """

    def __init__(self, recording: Path | str | XdfFile, endpoints: Endpoints, *,
                 speed: float = 1.0, start_s: float | None = None,
                 end_s: float | None = None, as_fast_as_possible: bool = False,
                 wait_for_subscriber: bool = False, wait_timeout_s: float | None = None,
                 hold: bool = False,
                 on_progress: Callable[[float, int], None] | None = None,
                 context: zmq.Context[Any] | None = None) -> None:
        if not as_fast_as_possible and not (math.isfinite(speed) and speed > 0):
            raise ReplayError(f"--speed must be a positive number, not {speed}")
        for endpoint in (endpoints.publish, endpoints.feed, endpoints.host_feed,
                         endpoints.control):
            if not is_loopback(endpoint):
                raise ReplayError(f"refusing to listen on {endpoint}: a replay serves "
                                  "health data and listens on loopback only (127.0.0.1)")
        if isinstance(recording, XdfFile):
            self.path: Path | None = None
            self.recording = recording
        else:
            self.path = Path(recording)
            self.recording = read_xdf(self.path)
        self.metadata = session_metadata(self.recording)
        self.schedule = ReplaySchedule.build(self.recording, start_s, end_s)
        self.endpoints = endpoints
        self.speed = float(speed)
        self.as_fast_as_possible = as_fast_as_possible
        self.wait_for_subscriber = wait_for_subscriber
        self.wait_timeout_s = wait_timeout_s
        self.hold = hold
        self.on_progress = on_progress
        self.stats = ReplayStats()
        #: Local monotonic time at which session time ``start_s`` was (is) played.
        self.started_at: float | None = None
        self.done = threading.Event()
        self.subscribed = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._state: dict[str, Any] | None = self.schedule.initial_state
        self._state_t = self.schedule.start_s
        self._now_s = self.schedule.start_s  # current replay position (session time)
        self._frozen_s: float | None = None
        self._topic_seq: Counter[str] = Counter()
        self._closed = False
        self._recording_bytes = self.path.stat().st_size if self.path is not None else None
        self._context = context or zmq.Context.instance()
        self._open_sockets()

    # -- sockets ---------------------------------------------------------------------

    def _open_sockets(self) -> None:
        ctx = self._context
        self._publish = ctx.socket(zmq.SUB)
        self._publish.setsockopt(zmq.SUBSCRIBE, b"preview.")
        self._feed = ctx.socket(zmq.XPUB)
        self._host_feed = ctx.socket(zmq.XPUB)
        hwm = LOSSLESS_HWM if self.as_fast_as_possible else FEED_HWM
        for sock in (self._feed, self._host_feed):
            sock.setsockopt(zmq.SNDHWM, hwm)
            if self.as_fast_as_possible:
                sock.setsockopt(zmq.XPUB_NODROP, 1)
        self._router = ctx.socket(zmq.ROUTER)
        self._router.setsockopt(zmq.ROUTER_HANDOVER, 1)
        self._sockets = (self._publish, self._feed, self._host_feed, self._router)
        endpoint = ""
        try:
            for sock, endpoint in ((self._publish, self.endpoints.publish),
                                   (self._feed, self.endpoints.feed),
                                   (self._host_feed, self.endpoints.host_feed),
                                   (self._router, self.endpoints.control)):
                sock.setsockopt(zmq.LINGER, 0)
                sock.bind(endpoint)
        except zmq.ZMQError as exc:
            self._close_sockets()
            raise ReplayError(f"cannot listen on {endpoint}: {exc} (is a session host or "
                              "another replay running on these ports?)") from exc
        self._poller = zmq.Poller()
        for sock in (self._router, self._publish, self._feed, self._host_feed):
            self._poller.register(sock, zmq.POLLIN)

    def _close_sockets(self) -> None:
        for sock in self._sockets:
            sock.close(linger=0)

    # -- life cycle ------------------------------------------------------------------

    def start(self) -> Replayer:
        """Replay in a background thread (returns at once); see :meth:`wait`."""
        self._thread = threading.Thread(target=self._run_guarded, name="replay", daemon=True)
        self._thread.start()
        return self

    def run(self) -> ReplayStats:
        """Replay in the calling thread until the end (or :meth:`request_stop`)."""
        try:
            self._run()
        finally:
            self.close()
        return self.stats

    def _run_guarded(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # reported by wait()
            self._error = exc
            log.exception("replay failed")
            self.done.set()

    def wait(self, timeout_s: float | None = None) -> bool:
        """Wait for the end of the replay; re-raises an error of the replay thread."""
        finished = self.done.wait(timeout_s)
        if self._error is not None:
            raise ReplayError(f"the replay failed: {self._error}") from self._error
        return finished

    def request_stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        """Stop the replay thread and close the sockets. Idempotent."""
        if self._closed:
            return
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        self._closed = True
        self._close_sockets()

    def __enter__(self) -> Replayer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the clock -------------------------------------------------------------------

    def now_s(self) -> float:
        """The replay's current session time (what ``ping`` answers)."""
        if self._frozen_s is not None:
            return self._frozen_s
        if self.as_fast_as_possible or self.started_at is None:
            return self._now_s
        elapsed = (time.monotonic() - self.started_at) * self.speed
        return min(self.schedule.end_s, self.schedule.start_s + elapsed)

    def wall_time_of(self, t_s: float) -> float:
        """Local monotonic time at which session time ``t_s`` is due (real-time replays)."""
        if self.started_at is None:
            raise RuntimeError("the replay has not started")
        return self.started_at + (t_s - self.schedule.start_s) / self.speed

    # -- the loop --------------------------------------------------------------------

    def _run(self) -> None:
        schedule = self.schedule
        if self.wait_for_subscriber:
            self._wait_for_subscriber()
        if self._stop.is_set():
            self.done.set()
            return
        wall_start = time.monotonic()
        self.started_at = wall_start
        next_state_wall = wall_start
        next_progress = wall_start
        if self._state is not None:
            self._publish_state(self._state_t)
            next_state_wall = wall_start + STATE_INTERVAL_S
        n = schedule.n_messages
        k = 0
        due = schedule.due
        afap = self.as_fast_as_possible
        while k < n and not self._stop.is_set():
            now_wall = time.monotonic()
            if afap:
                burst_end = min(n, k + 256)
            else:
                t_now = self.now_s()
                burst_end = int(np.searchsorted(due, t_now, side="right"))
            if burst_end > k:
                sources, codes, items = schedule.sources, schedule.source_index, \
                    schedule.item_index
                while k < burst_end and not self._stop.is_set():
                    source = sources[int(codes[k])]
                    if not afap:
                        late = time.monotonic() - self.wall_time_of(float(due[k]))
                        self.stats.max_late_s = max(self.stats.max_late_s, late)
                    self._send(source, source.build(int(items[k])), float(due[k]))
                    k += 1
                now_wall = time.monotonic()
            if now_wall >= next_state_wall and self._state is not None:
                self._publish_state(self.now_s(), heartbeat=True)
                next_state_wall = now_wall + STATE_INTERVAL_S
            if now_wall >= next_progress:
                self._progress()
                next_progress = now_wall + 0.1
            if afap:
                self._service(0)
                continue
            if k >= n:
                break
            wake = min(self.wall_time_of(float(due[k])), next_state_wall, next_progress)
            self._service(max(0.0, wake - time.monotonic()))
        # The tail of the window: keep the clock running to --to in real time.
        if not afap:
            end_wall = self.wall_time_of(schedule.end_s)
            while not self._stop.is_set() and (now_wall := time.monotonic()) < end_wall:
                if now_wall >= next_state_wall and self._state is not None:
                    self._publish_state(self.now_s(), heartbeat=True)
                    next_state_wall = now_wall + STATE_INTERVAL_S
                self._service(max(0.0, min(end_wall, next_state_wall) - time.monotonic()))
        self._now_s = schedule.end_s
        self.stats.wall_s = time.monotonic() - wall_start
        self._progress()
        self.done.set()  # everything sent; with ``hold`` the last state stays on air
        if self.hold:
            self._hold_loop()

    def _hold_loop(self) -> None:
        frozen = self.now_s()
        self._frozen_s = frozen  # the clock stays at the end
        while not self._stop.is_set():
            if self._state is not None:
                self._publish_state(frozen, heartbeat=True)
            self._service(STATE_INTERVAL_S)

    def _wait_for_subscriber(self) -> None:
        deadline = None if self.wait_timeout_s is None else \
            time.monotonic() + self.wait_timeout_s
        seen: set[int] = set()
        second_deadline: float | None = None
        while not self._stop.is_set():
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                log.warning("replay: no consumer subscribed within %.1f s; starting anyway",
                            self.wait_timeout_s)
                return
            if second_deadline is not None and (len(seen) == 2 or now >= second_deadline):
                return
            for sock, _ in self._poller.poll(50):
                if sock is self._feed or sock is self._host_feed:
                    if self._drain_subscriptions(sock):
                        seen.add(id(sock))
                        self.subscribed.set()
                        if second_deadline is None:
                            # A consumer connects to both feeds; give the other a moment.
                            second_deadline = time.monotonic() + 0.5
                elif sock is self._router:
                    self._drain_router()
                elif sock is self._publish:
                    self._forward_previews()

    # -- sending ---------------------------------------------------------------------

    def _send(self, source: _Source, built: tuple[str, float, dict[str, Any], int],
              due_s: float) -> None:
        topic, t_s, payload, samples = built
        if source.host and topic == protocol.TOPIC_STATE:
            self._state, self._state_t = payload, t_s
            self._now_s = max(self._now_s, due_s)
            self._publish_state(t_s)
        else:
            seq = self._topic_seq[topic]
            self._topic_seq[topic] = seq + 1
            self._emit(self._host_feed if source.host else self._feed,
                       protocol.encode_data(topic, seq, t_s, payload))
            self._now_s = max(self._now_s, due_s)
        self.stats.messages += 1
        self.stats.samples += samples
        self.stats.by_topic[topic] += 1

    def _emit(self, sock: zmq.Socket[Any], frames: list[bytes]) -> None:
        if not self.as_fast_as_possible:
            sock.send_multipart(frames)
            return
        stalled_since: float | None = None
        while True:
            try:
                sock.send_multipart(frames, zmq.NOBLOCK)
                return
            except zmq.Again:
                # Lossless pacing: wait for the slowest subscriber, keep answering commands.
                now = time.monotonic()
                if stalled_since is None:
                    stalled_since = now
                elif now - stalled_since > 10.0:
                    log.warning("replay: a subscriber has not read anything for 10 s")
                    stalled_since = now
                if self._stop.is_set():
                    return
                self._service(0)
                sock.poll(20, zmq.POLLOUT)

    def state_payload(self, now_s: float) -> dict[str, Any]:
        """The current recorded state as the host would publish it at ``now_s``."""
        payload = dict(self._state or {})
        elapsed = max(0.0, now_s - self._state_t)
        for key in ("time_in_step_s", "time_in_phase_s"):
            value = payload.get(key)
            if isinstance(value, int | float):
                payload[key] = round(float(value) + elapsed, 3)
        meta = self.metadata
        payload["session"] = {
            "session_id": meta.get("session_id"),
            "patient_id": meta.get("patient_id"),
            "t_s": now_s,
            "recording": str(self.path) if self.path is not None else None,
            "recording_bytes": self._recording_bytes,
            "recording_error": None,
            "recording_unwritten_bytes": 0,
            "controller": None,
            "controller_connected": False,
            "data_rejected": 0,
            "commands_rejected": 0,
            "replay": True,
            "replay_speed": None if self.as_fast_as_possible else self.speed,
            "replay_from_s": self.schedule.start_s,
            "replay_to_s": self.schedule.end_s,
            "recording_cut_short": self.recording.truncated,
        }
        return payload

    def _publish_state(self, now_s: float, heartbeat: bool = False) -> None:
        seq = self._topic_seq[protocol.TOPIC_STATE]
        self._topic_seq[protocol.TOPIC_STATE] = seq + 1
        self._emit(self._host_feed, protocol.encode_data(protocol.TOPIC_STATE, seq, now_s,
                                                         self.state_payload(now_s)))
        if heartbeat:
            self.stats.states_heartbeat += 1

    def _progress(self) -> None:
        if self.on_progress is not None:
            try:
                self.on_progress(self.now_s(), self.stats.samples)
            except Exception:  # a display problem must not stop the replay
                log.exception("replay progress callback failed")

    # -- incoming --------------------------------------------------------------------

    def _service(self, timeout_s: float) -> None:
        """Answer commands, read subscriptions, forward previews; wait up to ``timeout_s``."""
        poll_ms, sleep_s = split_wait(timeout_s)
        ready = self._poller.poll(poll_ms)
        if not ready and sleep_s > 0:
            time.sleep(sleep_s)
        for sock, _ in ready:
            if sock is self._router:
                self._drain_router()
            elif sock is self._publish:
                self._forward_previews()
            elif self._drain_subscriptions(sock):
                self.subscribed.set()

    @staticmethod
    def _drain_subscriptions(sock: zmq.Socket[Any]) -> bool:
        subscribed = False
        for _ in range(1000):
            try:
                message = sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                break
            if message[:1] == b"\x01":
                subscribed = True
        return subscribed

    def _forward_previews(self) -> None:
        for _ in range(100):
            try:
                frames = self._publish.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                protocol.decode_data(frames)
            except protocol.ProtocolError:
                continue
            try:
                self._feed.send_multipart(frames, zmq.NOBLOCK)
                self.stats.previews_forwarded += 1
            except zmq.Again:
                pass  # a preview is not worth blocking the replay

    def _drain_router(self) -> None:
        for _ in range(200):
            try:
                frames = self._router.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            if len(frames) != 2:
                continue
            reply = self.handle_command_bytes(frames[1])
            if reply is not None:
                self._router.send_multipart([frames[0], protocol.encode_reply(reply)])

    def handle_command_bytes(self, raw: bytes) -> ReplyMessage | None:
        try:
            msg = protocol.decode_command(raw)
        except protocol.ProtocolError as exc:
            log.warning("replay: ignored a malformed command: %s", exc)
            return None
        state_seq = int((self._state or {}).get("seq", 0) or 0)
        now = self.now_s()
        if msg.name not in ANSWERED_COMMANDS:
            self.stats.commands_refused += 1
            log.info("replay: refused '%s' from %s:%s", msg.name, msg.role, msg.client)
            return ReplyMessage(msg.id, False, state_seq, READ_ONLY_ERROR, {})
        self.stats.commands_answered += 1
        if msg.name == "get_state":
            return ReplyMessage(msg.id, True, state_seq, "", self.state_payload(now))
        return ReplyMessage(msg.id, True, state_seq, "", {"t_s": now})


__all__ = [
    "READ_ONLY_ERROR",
    "ReplayError",
    "ReplaySchedule",
    "ReplayStats",
    "Replayer",
    "chunk_bounds",
    "session_metadata",
]
