"""The client library every process uses: publisher, subscriber, control client.

Thin I/O shells around :mod:`vrexposure.protocol`. Each object owns its
sockets; none is thread-safe (make one per thread). All accept an explicit
clock so tests and replays can drive time.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy.typing as npt
import zmq

from . import admission, protocol
from .clock import OffsetEstimator, poll_timeout_ms
from .config import Endpoints
from .protocol import DataMessage, ProtocolError, ReplyMessage
from .security import CurveClient

log = logging.getLogger(__name__)

#: How long a client waits for one reply before resending the same command id.
DEFAULT_REPLY_TIMEOUT_S = 0.5


class CommandFailed(Exception):
    """The host answered a command with an error."""

    def __init__(self, name: str, error: str) -> None:
        super().__init__(f"{name}: {error}")
        self.error = error


class HostUnreachable(Exception):
    """No reply from the host within the allowed time."""


def _context() -> zmq.Context[zmq.Socket[bytes]]:
    return zmq.Context.instance()


#: Frames below this size are copied into ZeroMQ (cheaper than tracking a zero-copy
#: buffer, as pyzmq's own threshold); a large preview image is sent without a copy.
COPY_BELOW_BYTES = 65_536


def send_frames(socket: zmq.Socket[Any], frames: list[bytes], flags: int = 0) -> None:
    """``send_multipart`` for the data plane: one ``send`` per frame without its per-call
    type checks and list handling (a few µs less per message on a cold cache)."""
    last = len(frames) - 1
    for i, frame in enumerate(frames):
        socket.send(frame, flags | zmq.SNDMORE if i < last else flags,
                    copy=len(frame) < COPY_BELOW_BYTES)


class Publisher:
    """Publishes data messages to the host's ``publish`` socket under ``<kind>.<source>``.

    ``clock`` returns session time; by default local monotonic time plus the
    offset set with :meth:`set_offset` (from :meth:`ControlClient.sync_clock`).
    """

    def __init__(self, endpoint: str, source: str,
                 clock: Callable[[], float] | None = None,
                 context: zmq.Context[Any] | None = None,
                 curve: CurveClient | None = None, control: str | None = None,
                 role: str = "sensor") -> None:
        self.source = source
        # The host's control endpoint, where a CurveZMQ publisher proves its sources with
        # its key (a local host's session ticket names it too), and the key's role.
        self._control = control
        self._role = role
        self._offset_s = 0.0
        self._clock = clock or (lambda: time.monotonic() + self._offset_s)
        self._socket = (context or _context()).socket(zmq.PUB)
        if curve is not None:
            curve.apply(self._socket)
        self._socket.setsockopt(zmq.LINGER, 500)
        self._socket.setsockopt(zmq.SNDHWM, 100_000)
        self._monitor = self._socket.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED)
        self._socket.connect(endpoint)
        self._seq: dict[str, int] = {}  # topic -> next sequence number
        self._endpoint = endpoint
        self._context = context
        self._curve = curve
        self._admitted: set[str] = set()
        self._tags: dict[str, str] = {}  # source -> binding tag from the host's hello reply

    def set_offset(self, offset_s: float) -> None:
        self._offset_s = offset_s

    def now(self) -> float:
        return self._clock()

    def wait_connected(self, timeout_s: float = 5.0) -> bool:
        """Wait for the connection handshake and the host's subscription to arrive."""
        if self._monitor.poll(int(timeout_s * 1000)):
            self._monitor.recv_multipart()
            time.sleep(0.05)  # the host's subscription follows the handshake
            return True
        return False

    def publish(self, kind: str, payload: Mapping[str, Any], t_s: float | None = None,
                source: str | None = None) -> None:
        name = source or self.source
        if name not in self._admitted:
            self.admit(name)
        topic = f"{kind}.{name}"
        seq = self._seq.get(topic, 0)
        self._seq[topic] = seq + 1
        stamp = self._clock() if t_s is None else t_s
        tag = self._tags.get(name)
        auth = None if tag is None else admission.binding(tag, topic, seq, stamp)
        send_frames(self._socket, protocol.encode_data(topic, seq, stamp, payload, auth))

    def admit(self, source: str | None = None, timeout_s: float = 2.0) -> bool:
        """Prove to the host that ``source`` belongs to its session (DESIGN §11), so its
        data is recorded: on loopback with the local session ticket's secret, with
        CurveZMQ with this publisher's key (over ``control``). Done automatically before a
        source's first message; the host answers with a tag this publisher MACs its
        messages with, binding the name to it. Returns False when the source could not be
        proven (no ticket and no control endpoint, or the host refused: the therapist can
        still admit the source by name)."""
        name = source or self.source
        self._admitted.add(name)  # once per source, whatever the answer
        ticket = admission.read_ticket(self._endpoint)
        if self._curve is not None:
            # CurveZMQ: the key is the proof; the control socket knows whose key it is.
            endpoint = self._control or (str(ticket.get("control")) if ticket else None)
            args: dict[str, str] = {"source": name}
            role = self._role
        elif ticket is not None and not ticket.get("secure"):
            endpoint = str(ticket.get("control"))
            args, role = admission.hello_args(ticket, name), "sensor"
        else:
            return False  # no session ticket, no key: nothing to prove with
        if endpoint is None:
            return False
        control = ControlClient(endpoint, role, name[:64], context=self._context,
                                curve=self._curve)
        try:
            reply = control.request(admission.HELLO_COMMAND, args, timeout_s=timeout_s)
        except (HostUnreachable, ValueError, KeyError) as exc:
            log.warning("source %s not admitted: %s", name, exc)
            return False
        finally:
            control.close()
        if not reply.ok:
            log.warning("source %s not admitted: %s", name, reply.error)
            return False
        tag = reply.result.get("tag")
        if isinstance(tag, str):
            self._tags[name] = tag  # this client's messages under ``name`` carry its MAC
        return True

    def publish_chunk(self, kind: str, values: npt.ArrayLike, rate_hz: float, unit: str,
                      t0_s: float, quality: str = "good") -> None:
        self.publish(kind, protocol.chunk_payload(values, rate_hz, unit, quality), t0_s)

    def send_raw(self, frames: list[bytes]) -> None:
        """Send frames as they are (for tests of malformed input)."""
        self._socket.send_multipart(frames)

    def close(self) -> None:
        self._monitor.close(linger=0)
        self._socket.close()


class Subscriber:
    """Receives data messages from the host's feeds (data and host state/events)."""

    def __init__(self, endpoints: Endpoints, topics: Iterable[str] = ("",),
                 context: zmq.Context[Any] | None = None, data: bool = True,
                 host: bool = True, curve: CurveClient | None = None) -> None:
        self._socket = (context or _context()).socket(zmq.SUB)
        if curve is not None:
            curve.apply(self._socket)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.setsockopt(zmq.RCVHWM, 100_000)
        for topic in topics:
            self._socket.setsockopt(zmq.SUBSCRIBE, topic.encode("ascii"))
        if data:
            self._socket.connect(endpoints.feed)
        if host:
            self._socket.connect(endpoints.host_feed)
        self.rejected: Counter[str] = Counter()

    @property
    def socket(self) -> zmq.Socket[Any]:
        return self._socket

    def recv(self, timeout_s: float | None = None) -> DataMessage | None:
        """The next valid message, or None on timeout. Malformed input is counted and skipped."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while True:
            try:  # a message already queued: no poll (one system call fewer on the hot path)
                frames = self._socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                remaining_ms = None if deadline is None else poll_timeout_ms(
                    deadline - time.monotonic())
                if not self._socket.poll(remaining_ms):
                    return None
                frames = self._socket.recv_multipart()
            try:
                return protocol.decode_data(frames)
            except ProtocolError as exc:
                self.rejected[str(exc).split(":")[0]] += 1
                log.warning("rejected a malformed message: %s", exc)

    def drain(self, max_messages: int = 10_000) -> list[DataMessage]:
        """Every message already queued, without waiting."""
        messages = []
        for _ in range(max_messages):
            message = self.recv(0)
            if message is None:
                break
            messages.append(message)
        return messages

    def close(self) -> None:
        self._socket.close()


class ControlClient:
    """Sends commands over DEALER, retrying with the same id until the host answers."""

    def __init__(self, endpoint: str, role: str, client_id: str,
                 context: zmq.Context[Any] | None = None,
                 reply_timeout_s: float = DEFAULT_REPLY_TIMEOUT_S,
                 curve: CurveClient | None = None) -> None:
        self.endpoint = endpoint
        self.curve = curve
        self.role = role
        self.client_id = client_id
        self.reply_timeout_s = reply_timeout_s
        self._context = context or _context()
        self._socket = self._new_socket()
        self.clock = OffsetEstimator()
        self.last_reply: ReplyMessage | None = None

    def _new_socket(self) -> zmq.Socket[Any]:
        socket = self._context.socket(zmq.DEALER)
        if self.curve is not None:
            self.curve.apply(socket)
        socket.setsockopt(zmq.LINGER, 0)
        socket.setsockopt(zmq.SNDHWM, 1000)
        socket.connect(self.endpoint)
        return socket

    def request(self, name: str, args: Mapping[str, Any] | None = None,
                timeout_s: float = 5.0, command_id: str | None = None) -> ReplyMessage:
        """Send a command and return the host's reply (ok or not); retries until timeout_s."""
        cid = command_id or uuid.uuid4().hex
        raw = protocol.encode_command(cid, name, args or {}, self.role, self.client_id)
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self._socket.send(raw, zmq.NOBLOCK)
            except zmq.Again:
                # No connection right now (refused key, host not up): a blocking send
                # would wait forever; wait out this round and try again until the deadline.
                pass
            wait_until = min(deadline, time.monotonic() + self.reply_timeout_s)
            while (remaining := wait_until - time.monotonic()) > 0:
                if not self._socket.poll(int(remaining * 1000) + 1):
                    break
                try:
                    reply = protocol.decode_reply(self._socket.recv())
                except ProtocolError as exc:
                    log.warning("malformed reply ignored: %s", exc)
                    continue
                if reply.id == cid:
                    self.last_reply = reply
                    return reply
                # a late reply to an earlier, already-abandoned request: ignore
            if time.monotonic() >= deadline:
                raise HostUnreachable(f"no reply to '{name}' from {self.endpoint} "
                                      f"within {timeout_s:.1f} s")
            # Resend on a fresh socket: a DEALER whose peer died may hold queued messages.
            self._socket.close()
            self._socket = self._new_socket()

    def send(self, name: str, args: Mapping[str, Any] | None = None,
             timeout_s: float = 5.0) -> ReplyMessage:
        """Like :meth:`request` but raises :class:`CommandFailed` on an error reply."""
        reply = self.request(name, args, timeout_s)
        if not reply.ok:
            raise CommandFailed(name, reply.error)
        return reply

    def stop(self, reason: str = "STOP", give_up_after_s: float = 60.0) -> ReplyMessage:
        """STOP: resent until the host acknowledges it (or ``give_up_after_s`` passes)."""
        return self.send("stop", {"reason": reason}, timeout_s=give_up_after_s)

    def state(self, timeout_s: float = 5.0) -> dict[str, Any]:
        return dict(self.send("get_state", timeout_s=timeout_s).result)

    def sync_clock(self, rounds: int = 8, timeout_s: float = 2.0) -> float:
        """Estimate session time minus local monotonic time; returns the offset in s."""
        # Start afresh: after a host restart old round trips describe another clock.
        self.clock = OffsetEstimator()
        for _ in range(rounds):
            t0 = time.monotonic()
            reply = self.send("ping", timeout_s=timeout_s)
            t1 = time.monotonic()
            self.clock.add(t0, float(reply.result["t_s"]), t1)
        offset = self.clock.offset_s()
        try:
            self.request("clock_report", {"offset_s": offset,
                                          "error_bound_s": self.clock.error_bound_s()},
                         timeout_s=timeout_s)
        except HostUnreachable:
            pass
        return offset

    def close(self) -> None:
        self._socket.close()
