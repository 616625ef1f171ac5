"""Panda3D's own per-frame CPU timings (PStats collectors), read in-process without the GUI.

Panda3D's PStats client only records while it is connected to a server, and
1.10 has no API to read a collector's time back. :class:`PStatsRecorder` is the
smallest server that will do: it listens on loopback, answers the client's
hello, takes every frame over TCP (``pstats-tcp-ratio 1.0``) and keeps the raw
bytes; :meth:`PStatsRecorder.frames` decodes them afterwards, so the
measuring thread only copies bytes while frames are drawn.

A frame's events are starts and stops of collectors (``Frame``, ``App:…``,
``Cull:…``, ``Draw:…``, ``Wait:…`` and the shared ``*:…`` ones such as
``*:Munge``). :func:`exclusive_ms` charges each interval of the frame to the
innermost open collector, as PStats' own views do, and folds a ``*`` collector
into the named one it runs inside; :func:`phase_ms` sums that by top-level
phase. ``App`` includes the Python code between frames (``App:Show code``: the
scenes' update) and ``App:render_frame``'s own work; ``Cull`` is the scene-graph
traversal. ``Draw`` (state changes, driver calls and, on a software renderer, the
vertex and pixel work a GPU would do) is reported apart.

Wire format (Panda3D 1.10, pstatclient): messages are Panda3D datagrams behind a
4-byte little-endian length. The server's hello is ``uint8 1, string host,
string progname, uint16 udp_port``; a frame is ``uint8 0, uint16 thread,
uint32 frame``, then ``uint16 n`` × (``uint16 collector``, ``float32 seconds``) time
events, a stop having bit 15 set, then the level values in the same layout.
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
from collections import defaultdict
from dataclasses import dataclass

log = logging.getLogger(__name__)

#: Config the client needs before it connects: every frame over TCP (none dropped
#: for the rate limit, none over UDP).
PSTATS_PRC = "pstats-tcp-ratio 1.0\npstats-max-rate 100000\npstats-threaded-write true\n"
_STOP = 0x8000
_HELLO = 1
_FRAME = 0
PHASES = ("App", "Cull", "Draw", "Wait", "Frame")


@dataclass(frozen=True)
class FrameEvents:
    """One frame of one thread: (collector index, is_start, seconds) in sent order."""

    thread: int
    number: int
    events: tuple[tuple[int, bool, float], ...]


def _string(text: str) -> bytes:
    data = text.encode()
    return struct.pack("<H", len(data)) + data


def hello_message(udp_port: int, name: str = "vrexposure") -> bytes:
    """The server's hello, framed (the client starts recording once it has it)."""
    body = bytes([_HELLO]) + _string(socket.gethostname()) + _string(name)
    body += struct.pack("<H", udp_port)
    return struct.pack("<I", len(body)) + body


def decode_frames(raw: bytes) -> tuple[list[FrameEvents], int]:
    """Frames in a stream of framed messages; also how many other or broken messages.

    Control messages (collector and thread definitions) are skipped: the names
    are read from the client in the same process.
    """
    frames: list[FrameEvents] = []
    skipped = 0
    offset = 0
    while offset + 4 <= len(raw):
        (size,) = struct.unpack_from("<I", raw, offset)
        body = raw[offset + 4: offset + 4 + size]
        offset += 4 + size
        if len(body) < size or size < 9 or body[0] != _FRAME:
            skipped += 1
            continue
        thread, number, count = struct.unpack_from("<HIH", body, 1)
        if 9 + 6 * count > size:
            skipped += 1
            continue
        events = tuple((index & ~_STOP, not index & _STOP, float(t))
                       for index, t in struct.iter_unpack("<Hf", body[9: 9 + 6 * count]))
        frames.append(FrameEvents(thread, number, events))
    return frames, skipped


def exclusive_ms(frame: FrameEvents, names: dict[int, str]) -> dict[str, float]:
    """Milliseconds charged to each collector (full name) as the innermost open one.

    A ``*:`` collector (shared, such as ``*:Munge``) is charged to the named
    collector it runs inside, so each millisecond lands in App, Cull, Draw, Wait
    or the bare Frame exactly once.
    """
    out: dict[str, float] = defaultdict(float)
    open_: list[int] = []  # collectors open, in start order
    last: float | None = None
    for index, start, t in frame.events:
        if last is not None and open_:
            owner = next((c for c in reversed(open_)
                          if not names.get(c, "").startswith("*")), open_[-1])
            out[names.get(owner, str(owner))] += (t - last) * 1000.0
        last = t
        if start:
            open_.append(index)
        elif index in open_:
            # The last one of that index (a collector may be restarted while open).
            del open_[len(open_) - 1 - open_[::-1].index(index)]
    return dict(out)


def phase_ms(exclusive: dict[str, float]) -> dict[str, float]:
    """Exclusive times summed by top-level phase (App, Cull, Draw, Wait, Frame, other)."""
    out = dict.fromkeys((*PHASES, "other"), 0.0)
    for name, ms in exclusive.items():
        top = name.split(":", 1)[0]
        out[top if top in PHASES else "other"] += ms
    return out


class PStatsRecorder:
    """A loopback PStats server for this process's Panda3D client (a context manager).

    ``with PStatsRecorder() as rec: ...draw frames...; rec.frames()``. Call
    :meth:`clear` to start a new measurement; :meth:`cpu_ms` gives App + Cull per
    main-thread frame.
    """

    def __init__(self) -> None:
        self._listen = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listen.bind(("127.0.0.1", 0))
        self._listen.listen(1)
        self._udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # never used: all TCP
        self._udp.bind(("127.0.0.1", 0))
        self._chunks: list[bytes] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, name="pstats-recorder", daemon=True)
        self._conn: socket.socket | None = None
        self.port = int(self._listen.getsockname()[1])

    def __enter__(self) -> PStatsRecorder:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Listen and connect this process's PStats client (config applied first)."""
        from panda3d.core import PStatClient, loadPrcFileData

        loadPrcFileData("vrexposure-pstats", PSTATS_PRC)
        self._thread.start()
        if not PStatClient.connect("127.0.0.1", self.port):
            raise RuntimeError("the PStats client could not connect (built without PStats?)")

    def _serve(self) -> None:
        try:
            conn, _ = self._listen.accept()
        except OSError:
            return
        self._conn = conn
        conn.sendall(hello_message(int(self._udp.getsockname()[1])))
        while True:
            try:
                data = conn.recv(1 << 16)
            except OSError:
                return
            if not data:
                return
            with self._lock:
                self._chunks.append(data)

    def _raw(self) -> bytes:
        with self._lock:
            return b"".join(self._chunks)

    def clear(self) -> None:
        """Forget the frames so far (a partly received message is kept)."""
        raw = self._raw()
        offset = 0
        while offset + 4 <= len(raw):
            (size,) = struct.unpack_from("<I", raw, offset)
            if offset + 4 + size > len(raw):
                break
            offset += 4 + size
        with self._lock:
            rest = b"".join(self._chunks)[offset:]
            self._chunks = [rest] if rest else []

    def frames(self, thread: int = 0) -> list[FrameEvents]:
        """The complete frames of ``thread`` (0: the main thread) received so far."""
        frames, _skipped = decode_frames(self._raw())
        return [f for f in frames if f.thread == thread]

    @staticmethod
    def collector_names() -> dict[int, str]:
        from panda3d.core import PStatClient

        client = PStatClient.getGlobalPstats()
        return {i: client.getCollectorFullname(i) for i in range(client.getNumCollectors())}

    def phases(self, thread: int = 0) -> list[dict[str, float]]:
        """Per frame: milliseconds by phase (App, Cull, Draw, Wait, Frame, other)."""
        names = self.collector_names()
        return [phase_ms(exclusive_ms(f, names)) for f in self.frames(thread)]

    def breakdown(self, thread: int = 0) -> list[dict[str, float]]:
        """Per frame: exclusive milliseconds per collector (full names)."""
        names = self.collector_names()
        return [exclusive_ms(f, names) for f in self.frames(thread)]

    def close(self) -> None:
        from panda3d.core import PStatClient

        PStatClient.disconnect()
        for sock in (self._conn, self._listen, self._udp):
            if sock is not None:
                try:
                    sock.close()
                except OSError:
                    pass
        self._thread.join(2.0)


def cpu_ms(phases: dict[str, float]) -> float:
    """The CPU side of a frame a GPU would not take away: App + Cull (ms)."""
    return phases.get("App", 0.0) + phases.get("Cull", 0.0)
