"""The panel's ZeroMQ I/O, off the GUI thread.

Four daemon threads, each owning its own sockets (ZeroMQ sockets are not
thread-safe):

* **receive**: one SUB on the host's data feed and host feed; decoded messages
  are queued with their arrival time and the GUI is told when the first of them
  arrives (``messages_ready``), never once per message; told once more when data of
  a ``prompt_kinds`` kind arrives ``min_gap_s`` or later after the GUI last took
  them (so the GUI draws the plots as their data lands, not on a timer of its own);
* **commands**: sends queued commands one at a time with retries (same command
  id, so the host applies each once) and reports the host's answer;
* **STOP**: its own socket and thread so STOP never waits behind another
  command; resent with the same id until the host acknowledges it or 60 s pass;
* **heartbeat**: ``heartbeat {"controlling": true}`` at 3 Hz (the host pauses
  exposure when the controlling panel falls silent).

ZeroMQ reconnects SUB and DEALER sockets by itself, so a restarted host is
picked up without any action here. Qt signals emitted from these threads are
delivered to GUI-thread slots as queued calls.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import zmq
from PySide6.QtCore import QObject, Signal

from ..client import ControlClient, HostUnreachable, Subscriber
from ..config import Endpoints
from ..protocol import DataMessage

log = logging.getLogger(__name__)

HEARTBEAT_HZ = 3.0
COMMAND_TIMEOUT_S = 3.0
STOP_GIVE_UP_S = 60.0
#: When the GUI falls this far behind, the oldest queued messages are dropped (and counted).
MAX_QUEUED_MESSAGES = 50_000


@dataclass(frozen=True)
class CommandOutcome:
    """The host's answer to one command, or the lack of one."""

    id: str
    name: str
    args: dict[str, Any]
    ok: bool
    error: str = ""
    state_seq: int | None = None
    result: dict[str, Any] = field(default_factory=dict)
    unreachable: bool = False
    elapsed_s: float = 0.0
    still_trying: bool = False  # STOP only: not acknowledged yet, still resending


class BridgeSignals(QObject):
    messages_ready = Signal()
    command_done = Signal(object)  # CommandOutcome
    heartbeat_done = Signal(bool, float)  # answered, round trip (s)


class Bridge:
    """Receives everything the host publishes and sends commands for the panel."""

    def __init__(self, endpoints: Endpoints, client_id: str, *, role: str = "therapist",
                 controlling: bool = True, heartbeat_hz: float = HEARTBEAT_HZ,
                 command_timeout_s: float = COMMAND_TIMEOUT_S,
                 stop_give_up_s: float = STOP_GIVE_UP_S,
                 context: zmq.Context[Any] | None = None) -> None:
        self.endpoints = endpoints
        self.client_id = client_id
        self.role = role
        self.heartbeat_period_s = 1.0 / heartbeat_hz
        self.command_timeout_s = command_timeout_s
        self.stop_give_up_s = stop_give_up_s
        self.signals = BridgeSignals()
        self._context = context or zmq.Context.instance()
        self._closing = threading.Event()
        self._heartbeat_on = threading.Event()
        if controlling:
            self._heartbeat_on.set()
        self._lock = threading.Lock()
        self._inbox: deque[tuple[float, DataMessage]] = deque()
        self._notified = False
        #: Tell the GUI again when data arrives this long after its last take (its frame
        #: interval); 0: only the first message after a take.
        self.min_gap_s = 0.0
        #: Kinds (topic prefixes before the dot) worth that second call; empty: any.
        self.prompt_kinds: frozenset[str] = frozenset()
        self._last_take_s = 0.0
        self._nudged = False
        #: A message of a ``prompt_kinds`` kind is waiting to be taken.
        self.plots_pending = False
        self.dropped_messages = 0
        self.rejected_messages = 0
        self._commands: queue.Queue[tuple[str, str, dict[str, Any]]] = queue.Queue()
        self._stops: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._subscribed = threading.Event()

    # --- life cycle ----------------------------------------------------------------

    def start(self) -> Bridge:
        targets = [("receive", self._receive_loop), ("commands", self._command_loop),
                   ("stop", self._stop_loop), ("heartbeat", self._heartbeat_loop)]
        for name, target in targets:
            thread = threading.Thread(target=target, name=f"panel-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        self._subscribed.wait(2.0)
        return self

    def close(self) -> None:
        """Stop every thread (each notices within 0.1 s) and close the sockets."""
        self._closing.set()
        for thread in self._threads:
            thread.join(timeout=5.0)
        self._threads.clear()

    @property
    def running(self) -> bool:
        return bool(self._threads) and not self._closing.is_set()

    # --- API for the GUI thread ---------------------------------------------------

    def take_messages(self) -> list[tuple[float, DataMessage]]:
        """Every message received since the last call, with its local arrival time."""
        with self._lock:
            batch = list(self._inbox)
            self._inbox.clear()
            self._notified = False
            self._nudged = False
            self.plots_pending = False
            self._last_take_s = time.monotonic()
        return batch

    def send(self, name: str, args: Mapping[str, Any] | None = None) -> str:
        """Queue a command; returns its id (the answer arrives as ``command_done``)."""
        command_id = uuid.uuid4().hex
        self._commands.put((command_id, name, dict(args or {})))
        return command_id

    def stop(self, reason: str = "STOP") -> str:
        """Send STOP at once on its own socket, resent until acknowledged."""
        command_id = uuid.uuid4().hex
        self._stops.put((command_id, {"reason": reason}))
        return command_id

    @property
    def heartbeat_enabled(self) -> bool:
        return self._heartbeat_on.is_set()

    def set_heartbeat(self, enabled: bool) -> None:
        """Start or stop claiming control (stopping it lets the host pause exposure)."""
        if enabled:
            self._heartbeat_on.set()
        else:
            self._heartbeat_on.clear()

    # --- threads --------------------------------------------------------------------

    def _receive_loop(self) -> None:
        subscriber = Subscriber(self.endpoints, topics=("",), context=self._context)
        self._subscribed.set()
        socket = subscriber.socket
        try:
            while not self._closing.is_set():
                if not socket.poll(100):
                    continue
                batch = subscriber.drain(2000)
                if not batch:
                    continue
                now = time.monotonic()
                with self._lock:
                    self._inbox.extend((now, message) for message in batch)
                    overflow = len(self._inbox) - MAX_QUEUED_MESSAGES
                    for _ in range(max(0, overflow)):
                        self._inbox.popleft()
                        self.dropped_messages += 1
                    prompt = self._prompt(batch)
                    self.plots_pending = self.plots_pending or prompt
                    nudge = (self.min_gap_s > 0 and self._notified and not self._nudged
                             and now - self._last_take_s >= self.min_gap_s and prompt)
                    notify = not self._notified or nudge
                    self._notified = True
                    self._nudged = self._nudged or nudge
                self.rejected_messages = sum(subscriber.rejected.values())
                if notify:
                    self.signals.messages_ready.emit()
        except Exception:  # pragma: no cover - keep the panel alive, say why
            log.exception("panel receive thread failed")
        finally:
            subscriber.close()

    def _prompt(self, batch: list[DataMessage]) -> bool:
        kinds = self.prompt_kinds
        return not kinds or any(message.kind in kinds for message in batch)

    def _client(self) -> ControlClient:
        return ControlClient(self.endpoints.control, self.role, self.client_id,
                             context=self._context, reply_timeout_s=0.3)

    def _command_loop(self) -> None:
        client = self._client()
        try:
            while not self._closing.is_set():
                try:
                    command_id, name, args = self._commands.get(timeout=0.1)
                except queue.Empty:
                    continue
                started = time.monotonic()
                try:
                    reply = client.request(name, args, timeout_s=self.command_timeout_s,
                                           command_id=command_id)
                except HostUnreachable:
                    outcome = CommandOutcome(
                        command_id, name, args, False,
                        f"no answer within {self.command_timeout_s:.0f} s",
                        unreachable=True, elapsed_s=time.monotonic() - started)
                else:
                    outcome = CommandOutcome(command_id, name, args, reply.ok, reply.error,
                                             reply.state_seq, dict(reply.result),
                                             elapsed_s=time.monotonic() - started)
                if not self._closing.is_set():
                    self.signals.command_done.emit(outcome)
        finally:
            client.close()

    def _stop_loop(self) -> None:
        client = self._client()
        try:
            while not self._closing.is_set():
                try:
                    command_id, args = self._stops.get(timeout=0.1)
                except queue.Empty:
                    continue
                started = time.monotonic()
                while not self._closing.is_set():
                    try:
                        reply = client.request("stop", args, timeout_s=1.0,
                                               command_id=command_id)
                    except HostUnreachable:
                        elapsed = time.monotonic() - started
                        gave_up = elapsed >= self.stop_give_up_s
                        self.signals.command_done.emit(CommandOutcome(
                            command_id, "stop", args, False,
                            f"no acknowledgement after {elapsed:.0f} s",
                            unreachable=True, elapsed_s=elapsed, still_trying=not gave_up))
                        if gave_up:
                            break
                        continue
                    self.signals.command_done.emit(CommandOutcome(
                        command_id, "stop", args, reply.ok, reply.error, reply.state_seq,
                        dict(reply.result), elapsed_s=time.monotonic() - started))
                    break
        finally:
            client.close()

    def _heartbeat_loop(self) -> None:
        client = self._client()
        try:
            next_beat = time.monotonic()
            while not self._closing.is_set():
                delay = next_beat - time.monotonic()
                if delay > 0 and self._closing.wait(min(delay, 0.1)):
                    break
                if time.monotonic() < next_beat:
                    continue
                next_beat += self.heartbeat_period_s
                if next_beat < time.monotonic():  # fell behind (host down): do not burst
                    next_beat = time.monotonic() + self.heartbeat_period_s
                if not self._heartbeat_on.is_set():
                    continue
                started = time.monotonic()
                try:
                    reply = client.request("heartbeat", {"controlling": True},
                                           timeout_s=min(1.0, 2 * self.heartbeat_period_s))
                    ok = reply.ok
                except HostUnreachable:
                    ok = False
                if not self._closing.is_set():
                    self.signals.heartbeat_done.emit(ok, time.monotonic() - started)
        finally:
            client.close()
