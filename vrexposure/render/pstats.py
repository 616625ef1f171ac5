"""Panda3D's own per-frame CPU timings (PStats collectors), read in-process without the GUI.

Panda3D's PStats client only records while it is connected to a server, and
1.10 has no API to read a collector's time back. :class:`PStatsRecorder` is the
smallest server that will do: it listens on loopback, answers the client's
hello, takes every frame over TCP (``pstats-tcp-ratio 1.0``) and keeps the raw
bytes; :meth:`PStatsRecorder.frames` decodes them afterwards. The server is
a child process: receiving never takes the measured process's interpreter lock.

A frame's events are starts and stops of collectors (``Frame``, ``App:…``,
``Cull:…``, ``Draw:…``, ``Wait:…`` and the shared ``*:…`` ones such as
``*:Munge``). :func:`exclusive_ms` charges each interval of the frame to the
innermost open collector, as PStats' own views do, and folds a ``*`` collector
into the named one it runs inside — except ``*:do_frame``'s own time, the flip at
the end of the frame (``Flip``); :func:`phase_ms` sums that by top-level
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
import subprocess
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

#: Config the client needs before it connects: every frame over TCP (none dropped
#: for the rate limit, none over UDP).
PSTATS_PRC = "pstats-tcp-ratio 1.0\npstats-max-rate 100000\npstats-threaded-write true\n"
_STOP = 0x8000
_HELLO = 1
_FRAME = 0
PHASES = ("App", "Cull", "Draw", "Flip", "Wait", "Frame")
#: ``*:do_frame`` is cull + draw + the end of the frame; its own time (nothing inside it
#: open) is the flip: swapping or, with ``gl-finish``, waiting for the renderer to finish
#: the pixels (on llvmpipe, for its raster threads) — the GPU's time, not the app's.
_OWN_PHASE = {"*:do_frame": "Flip:do_frame"}


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
            inner = names.get(open_[-1], "")
            if inner in _OWN_PHASE:
                out[_OWN_PHASE[inner]] += (t - last) * 1000.0
            else:
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
    """Exclusive times summed by top-level phase (App, Cull, Draw, Flip, Wait, Frame, other)."""
    out = dict.fromkeys((*PHASES, "other"), 0.0)
    for name, ms in exclusive.items():
        top = name.split(":", 1)[0]
        out[top if top in PHASES else "other"] += ms
    return out


class PStatsRecorder:
    """A loopback PStats server for this process's Panda3D client (a context manager).

    ``with PStatsRecorder() as rec: ...draw frames...; rec.phases()``. The server
    is a child process (:func:`serve`) that appends what it receives to a file,
    so receiving never takes this process's interpreter lock from the frames it
    measures. Call :meth:`clear` to start a new measurement.
    """

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="vrexposure-pstats-")
        self._path = Path(self._dir.name) / "frames.bin"
        self._offset = 0  # where the frames of the current measurement start in the file
        self._server: subprocess.Popen[str] | None = None
        self.port = 0

    def __enter__(self) -> PStatsRecorder:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Start the server and connect this process's PStats client (config applied first)."""
        from panda3d.core import PStatClient, loadPrcFileData

        loadPrcFileData("vrexposure-pstats", PSTATS_PRC)
        self._server = subprocess.Popen(
            [sys.executable, "-m", "vrexposure.render.pstats", str(self._path)],
            stdout=subprocess.PIPE, text=True)
        assert self._server.stdout is not None
        line = self._server.stdout.readline()
        if not line.strip().isdigit():
            self._server.kill()
            raise RuntimeError(f"the PStats recorder did not start ({line!r})")
        self.port = int(line)
        if not PStatClient.connect("127.0.0.1", self.port):
            raise RuntimeError("the PStats client could not connect (built without PStats?)")

    def _raw(self) -> bytes:
        try:
            with self._path.open("rb") as f:
                f.seek(self._offset)
                return f.read()
        except FileNotFoundError:
            return b""

    def clear(self) -> None:
        """Forget the frames so far (a partly received message is kept)."""
        raw = self._raw()
        offset = 0
        while offset + 4 <= len(raw):
            (size,) = struct.unpack_from("<I", raw, offset)
            if offset + 4 + size > len(raw):
                break
            offset += 4 + size
        self._offset += offset

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
        """Per frame: milliseconds by phase (App, Cull, Draw, Flip, Wait, Frame, other)."""
        names = self.collector_names()
        return [phase_ms(exclusive_ms(f, names)) for f in self.frames(thread)]

    def breakdown(self, thread: int = 0) -> list[dict[str, float]]:
        """Per frame: exclusive milliseconds per collector (full names)."""
        names = self.collector_names()
        return [exclusive_ms(f, names) for f in self.frames(thread)]

    def close(self) -> None:
        from panda3d.core import PStatClient

        PStatClient.disconnect()  # the server sees the end of the stream and exits
        if self._server is not None:
            try:
                self._server.wait(5.0)
            except subprocess.TimeoutExpired:
                self._server.kill()
                self._server.wait(5.0)
            if self._server.stdout is not None:
                self._server.stdout.close()
        self._dir.cleanup()


def serve(path: Path) -> None:
    """The recorder's child process: print the port, take one client, append its bytes."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listen, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        listen.bind(("127.0.0.1", 0))
        listen.listen(1)
        udp.bind(("127.0.0.1", 0))  # announced, never used: every frame comes over TCP
        print(listen.getsockname()[1], flush=True)
        listen.settimeout(60.0)
        conn, _ = listen.accept()
        with conn, path.open("ab", buffering=0) as out:
            conn.sendall(hello_message(int(udp.getsockname()[1])))
            while data := conn.recv(1 << 16):
                out.write(data)


def cpu_ms(phases: dict[str, float]) -> float:
    """The CPU side of a frame a GPU would not take away: App + Cull (ms)."""
    return phases.get("App", 0.0) + phases.get("Cull", 0.0)


if __name__ == "__main__":
    serve(Path(sys.argv[1]))
