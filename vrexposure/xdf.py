"""XDF (Extensible Data Format, the Lab Streaming Layer file format): writer and reader.

The writer appends chunks as the session runs, so a file is valid up to its
last complete chunk at every moment; footers are only written on a clean
close. The reader tolerates a missing footer and a chunk cut short (a writer
killed with SIGKILL) and returns everything before the cut. Format reference:
https://github.com/sccn/xdf/wiki/Specifications (chunk tags 1–6).
"""

from __future__ import annotations

import os
import struct
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from xml.sax.saxutils import escape

import numpy as np
import numpy.typing as npt

MAGIC = b"XDF:"
TAG_FILE_HEADER = 1
TAG_STREAM_HEADER = 2
TAG_SAMPLES = 3
TAG_CLOCK_OFFSET = 4
TAG_BOUNDARY = 5
TAG_STREAM_FOOTER = 6
ChannelFormat = Literal["float32", "double64", "int32", "int16", "string"]

_NUMPY_FORMAT: dict[str, str] = {"float32": "<f4", "double64": "<f8", "int32": "<i4",
                                 "int16": "<i2"}

# The boundary chunk's fixed UUID from the XDF specification.
_BOUNDARY = bytes([0x43, 0xA5, 0x46, 0xDC, 0xCB, 0xF5, 0x41, 0x0F,
                   0xB3, 0x0E, 0xD5, 0x46, 0x73, 0x83, 0xCB, 0xE4])


def _varlen(n: int) -> bytes:
    if n < 256:
        return struct.pack("<BB", 1, n)
    if n < 1 << 32:
        return struct.pack("<BI", 4, n)
    return struct.pack("<BQ", 8, n)


def _chunk(tag: int, content: bytes) -> bytes:
    return _varlen(len(content) + 2) + struct.pack("<H", tag) + content


def _xml_element(tag: str, value: Any) -> str:
    if isinstance(value, Mapping):
        inner = "".join(_xml_element(k, v) for k, v in value.items())
        return f"<{tag}>{inner}</{tag}>"
    if isinstance(value, list | tuple):
        return "".join(_xml_element(tag, v) for v in value)
    return f"<{tag}>{escape(str(value))}</{tag}>"


@dataclass
class StreamInfo:
    stream_id: int
    name: str
    type: str
    channel_count: int
    nominal_srate: float
    channel_format: ChannelFormat
    source_id: str = ""
    channel_labels: Sequence[str] = ()
    channel_units: Sequence[str] = ()
    desc: Mapping[str, Any] = field(default_factory=dict)

    def header_xml(self) -> str:
        channels = "".join(
            "<channel>" + _xml_element("label", label)
            + (_xml_element("unit", self.channel_units[i]) if i < len(self.channel_units) else "")
            + "</channel>"
            for i, label in enumerate(self.channel_labels))
        desc = "".join(_xml_element(k, v) for k, v in self.desc.items())
        return (
            '<?xml version="1.0"?><info>'
            + _xml_element("name", self.name) + _xml_element("type", self.type)
            + _xml_element("channel_count", self.channel_count)
            + _xml_element("nominal_srate", repr(float(self.nominal_srate)))
            + _xml_element("channel_format", self.channel_format)
            + _xml_element("source_id", self.source_id)
            + _xml_element("created_at", 0) + _xml_element("uid", uuid.uuid4())
            + f"<desc><channels>{channels}</channels>{desc}</desc></info>"
        )


@dataclass
class _StreamTally:
    first_t: float | None = None
    last_t: float | None = None
    count: int = 0


class XdfWriter:
    """Append-only XDF writer. Files are created owner-only (0600)."""

    def __init__(self, path: Path, header: Mapping[str, Any], *, append: bool = False) -> None:
        self.path = Path(path)
        self._streams: dict[int, StreamInfo] = {}
        self._tally: dict[int, _StreamTally] = {}
        #: Bytes on disk; the file always ends on a whole chunk (unless killed mid-write).
        self.bytes_written = 0
        #: Chunks composed but not yet on disk (kept while the disk refuses writes).
        self._unwritten: list[bytes] = []
        self._closed = False
        if append:
            self._fd = os.open(self.path, os.O_WRONLY)
            self.bytes_written = os.lseek(self._fd, 0, os.SEEK_END)
        else:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            body = "".join(_xml_element(k, v) for k, v in header.items())
            self._write(MAGIC)
            self._write(_chunk(TAG_FILE_HEADER,
                               f'<?xml version="1.0"?><info><version>1.0</version>{body}</info>'
                               .encode()))

    def _write(self, data: bytes) -> None:
        self._unwritten.append(data)

    @property
    def unwritten_bytes(self) -> int:
        return sum(len(chunk) for chunk in self._unwritten)

    def flush(self) -> None:
        """Write every composed chunk. On an error (disk full, I/O error) the file is cut
        back to its last whole chunk, the rest stays in memory, and the error is raised."""
        while self._unwritten:
            chunk = self._unwritten[0]
            written = 0
            try:
                while written < len(chunk):
                    written += os.write(self._fd, chunk[written:])
            except OSError:
                if written:
                    os.ftruncate(self._fd, self.bytes_written)
                    os.lseek(self._fd, self.bytes_written, os.SEEK_SET)
                raise
            self.bytes_written += len(chunk)
            self._unwritten.pop(0)

    @property
    def streams(self) -> Mapping[int, StreamInfo]:
        return self._streams

    def add_stream(self, info: StreamInfo, *, write_header: bool = True) -> None:
        if info.stream_id in self._streams:
            raise ValueError(f"stream {info.stream_id} already exists")
        self._streams[info.stream_id] = info
        self._tally[info.stream_id] = _StreamTally()
        if write_header:
            self._write(_chunk(TAG_STREAM_HEADER,
                               struct.pack("<I", info.stream_id) + info.header_xml().encode()))

    def write_numeric(self, stream_id: int, timestamps: npt.ArrayLike, values: npt.ArrayLike,
                      *, first_stamp_only: bool = False) -> None:
        """Write samples × channels; with ``first_stamp_only`` the reader deduces the rest."""
        info = self._streams[stream_id]
        stamps = np.asarray(timestamps, dtype="<f8").reshape(-1)
        data = np.asarray(values, dtype=_NUMPY_FORMAT[info.channel_format])
        data = data.reshape(len(stamps) if not first_stamp_only else -1, info.channel_count)
        n = data.shape[0]
        if n == 0:
            return
        value_dtype = (_NUMPY_FORMAT[info.channel_format], (info.channel_count,))
        if first_stamp_only:
            head = np.zeros(1, dtype=[("b", "u1"), ("t", "<f8"), ("v", value_dtype)])
            head["b"], head["t"], head["v"] = 8, stamps[0], data[:1]
            rest = np.zeros(n - 1, dtype=[("b", "u1"), ("v", value_dtype)])
            rest["v"] = data[1:]
            payload = head.tobytes() + rest.tobytes()
            period = 1.0 / info.nominal_srate if info.nominal_srate > 0 else 0.0
            first_t, last_t = float(stamps[0]), float(stamps[0]) + (n - 1) * period
        else:
            records = np.zeros(n, dtype=[("b", "u1"), ("t", "<f8"), ("v", value_dtype)])
            records["b"], records["t"], records["v"] = 8, stamps, data
            payload = records.tobytes()
            first_t, last_t = float(stamps[0]), float(stamps[-1])
        self._write(_chunk(TAG_SAMPLES, struct.pack("<I", stream_id) + _varlen(n) + payload))
        self._count(stream_id, n, first_t, last_t)

    def write_strings(self, stream_id: int, timestamps: Sequence[float],
                      values: Sequence[str]) -> None:
        if not values:
            return
        parts = [struct.pack("<I", stream_id), _varlen(len(values))]
        for t, text in zip(timestamps, values, strict=True):
            raw = text.encode("utf-8")
            parts.append(struct.pack("<Bd", 8, t) + _varlen(len(raw)) + raw)
        self._write(_chunk(TAG_SAMPLES, b"".join(parts)))
        self._count(stream_id, len(values), float(timestamps[0]), float(timestamps[-1]))

    def _count(self, stream_id: int, n: int, first_t: float, last_t: float) -> None:
        tally = self._tally[stream_id]
        if tally.first_t is None:
            tally.first_t = first_t
        tally.last_t = last_t
        tally.count += n

    def write_clock_offset(self, stream_id: int, collection_time_s: float,
                           offset_s: float) -> None:
        self._write(_chunk(TAG_CLOCK_OFFSET,
                           struct.pack("<Idd", stream_id, collection_time_s, offset_s)))

    def write_boundary(self) -> None:
        self._write(_chunk(TAG_BOUNDARY, _BOUNDARY))

    def sync(self) -> None:
        """Flush Python's buffer and the OS cache to disk."""
        self.flush()
        os.fsync(self._fd)

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        if self._closed:
            return
        for stream_id, tally in self._tally.items():
            footer = (
                '<?xml version="1.0"?><info>'
                + _xml_element("first_timestamp", repr(tally.first_t or 0.0))
                + _xml_element("last_timestamp", repr(tally.last_t or 0.0))
                + _xml_element("sample_count", tally.count)
                + "<clock_offsets></clock_offsets></info>")
            self._write(_chunk(TAG_STREAM_FOOTER,
                               struct.pack("<I", stream_id) + footer.encode()))
        self.sync()
        os.close(self._fd)
        self._closed = True


# ---------------------------------------------------------------------------
# Reader


@dataclass
class XdfStream:
    info: dict[str, Any]
    stream_id: int
    timestamps: npt.NDArray[np.float64]
    values: Any  # (n, channels) ndarray, or list[str] for string streams
    footer: dict[str, Any] | None = None
    clock_offsets: list[tuple[float, float]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.info.get("name", ""))

    @property
    def type(self) -> str:
        return str(self.info.get("type", ""))

    @property
    def channel_labels(self) -> list[str]:
        channels = self.info.get("desc", {}).get("channels", {}) or {}
        items = channels.get("channel", [])
        if isinstance(items, dict):
            items = [items]
        return [str(c.get("label", "")) for c in items]


@dataclass
class XdfFile:
    header: dict[str, Any]
    streams: dict[int, XdfStream]
    truncated: bool = False
    #: Byte offset just past the last complete chunk (where an appending writer resumes).
    end_of_valid_data: int = 0

    def by_name(self, name: str) -> XdfStream:
        for stream in self.streams.values():
            if stream.name == name:
                return stream
        raise KeyError(name)


def _xml_to_dict(element: ET.Element) -> Any:
    children = list(element)
    if not children:
        return element.text or ""
    result: dict[str, Any] = {}
    for child in children:
        value = _xml_to_dict(child)
        if child.tag in result:
            if not isinstance(result[child.tag], list):
                result[child.tag] = [result[child.tag]]
            result[child.tag].append(value)
        else:
            result[child.tag] = value
    return result


def _parse_xml(raw: bytes) -> dict[str, Any]:
    try:
        parsed = _xml_to_dict(ET.fromstring(raw.decode("utf-8")))
    except (ET.ParseError, UnicodeDecodeError):
        return {}
    return parsed if isinstance(parsed, dict) else {}


class _Cut(Exception):
    """The data ends inside a chunk."""


def _read_varlen(buf: memoryview, pos: int) -> tuple[int, int]:
    if pos >= len(buf):
        raise _Cut
    width = buf[pos]
    if width not in (1, 4, 8) or pos + 1 + width > len(buf):
        raise _Cut
    return int.from_bytes(buf[pos + 1:pos + 1 + width], "little"), pos + 1 + width


@dataclass
class _Accumulator:
    info: dict[str, Any]
    fmt: str
    n_channels: int
    srate: float
    stamps: list[npt.NDArray[np.float64]] = field(default_factory=list)
    values: list[Any] = field(default_factory=list)
    last_t: float = 0.0
    footer: dict[str, Any] | None = None
    offsets: list[tuple[float, float]] = field(default_factory=list)


def _decode_numeric(acc: _Accumulator, body: memoryview, n: int) -> None:
    item = np.dtype(_NUMPY_FORMAT[acc.fmt]).itemsize * acc.n_channels
    size = len(body)
    value_dtype = (_NUMPY_FORMAT[acc.fmt], (acc.n_channels,))
    period = 1.0 / acc.srate if acc.srate > 0 else 0.0
    if size == n * (9 + item):  # every sample stamped: fast path
        rec = np.frombuffer(body, dtype=[("b", "u1"), ("t", "<f8"), ("v", value_dtype)])
        stamps = rec["t"].astype(np.float64)
        values = rec["v"].reshape(n, acc.n_channels)
    elif n >= 1 and size == 9 + item + (n - 1) * (1 + item) and body[0] == 8:
        head = np.frombuffer(body[:9 + item], dtype=[("b", "u1"), ("t", "<f8"),
                                                     ("v", value_dtype)])
        rest = np.frombuffer(body[9 + item:], dtype=[("b", "u1"), ("v", value_dtype)])
        t0 = float(head["t"][0])
        stamps = t0 + np.arange(n, dtype=np.float64) * period
        values = np.concatenate([head["v"].reshape(1, acc.n_channels),
                                 rest["v"].reshape(n - 1, acc.n_channels)])
    else:  # general case: walk sample by sample
        stamps = np.empty(n, dtype=np.float64)
        rows = []
        pos = 0
        t = acc.last_t
        for i in range(n):
            if body[pos] == 8:
                t = struct.unpack_from("<d", body, pos + 1)[0]
                pos += 9
            else:
                t = t + period
                pos += 1
            stamps[i] = t
            rows.append(np.frombuffer(body[pos:pos + item], dtype=_NUMPY_FORMAT[acc.fmt]))
            pos += item
        values = np.vstack(rows) if rows else np.empty((0, acc.n_channels))
    if n:
        acc.last_t = float(stamps[-1])
    acc.stamps.append(stamps)
    acc.values.append(values)


def _decode_strings(acc: _Accumulator, body: memoryview, n: int) -> None:
    stamps = np.empty(n, dtype=np.float64)
    texts: list[str] = []
    pos = 0
    t = acc.last_t
    period = 1.0 / acc.srate if acc.srate > 0 else 0.0
    for i in range(n):
        if body[pos] == 8:
            t = struct.unpack_from("<d", body, pos + 1)[0]
            pos += 9
        else:
            t += period
            pos += 1
        length, pos = _read_varlen(body, pos)
        texts.append(bytes(body[pos:pos + length]).decode("utf-8", errors="replace"))
        pos += length
        stamps[i] = t
    if n:
        acc.last_t = float(stamps[-1])
    acc.stamps.append(stamps)
    acc.values.append(texts)


def read_xdf(path: Path) -> XdfFile:
    """Read an XDF file, tolerating a missing footer and a last chunk cut short."""
    raw = Path(path).read_bytes()
    buf = memoryview(raw)
    if raw[:4] != MAGIC:
        raise ValueError(f"{path}: not an XDF file (no 'XDF:' magic)")
    header: dict[str, Any] = {}
    accs: dict[int, _Accumulator] = {}
    pos = 4
    truncated = False
    while pos < len(buf):
        chunk_start = pos
        try:
            length, pos = _read_varlen(buf, pos)
            if length < 2 or pos + length > len(buf):
                raise _Cut
        except _Cut:
            truncated = True
            pos = chunk_start
            break
        tag = int.from_bytes(buf[pos:pos + 2], "little")
        body = buf[pos + 2:pos + length]
        pos += length
        try:
            if tag == TAG_FILE_HEADER:
                header = _parse_xml(bytes(body))
            elif tag == TAG_STREAM_HEADER:
                stream_id = int.from_bytes(body[:4], "little")
                info = _parse_xml(bytes(body[4:]))
                fmt = str(info.get("channel_format", "float32"))
                accs[stream_id] = _Accumulator(info, fmt, int(info.get("channel_count", 1)),
                                               float(info.get("nominal_srate", 0.0)))
            elif tag == TAG_SAMPLES:
                stream_id = int.from_bytes(body[:4], "little")
                acc = accs.get(stream_id)
                if acc is None:
                    continue
                n, start = _read_varlen(body, 4)
                if acc.fmt == "string":
                    _decode_strings(acc, body[start:], n)
                else:
                    _decode_numeric(acc, body[start:], n)
            elif tag == TAG_CLOCK_OFFSET:
                stream_id, collected, offset = struct.unpack_from("<Idd", body, 0)
                if stream_id in accs:
                    accs[stream_id].offsets.append((collected, offset))
            elif tag == TAG_STREAM_FOOTER:
                stream_id = int.from_bytes(body[:4], "little")
                if stream_id in accs:
                    accs[stream_id].footer = _parse_xml(bytes(body[4:]))
        except (_Cut, struct.error, ValueError, IndexError):
            # A chunk whose length was intact but whose content is damaged: skip it.
            continue
    streams: dict[int, XdfStream] = {}
    for stream_id, acc in accs.items():
        stamps = np.concatenate(acc.stamps) if acc.stamps else np.empty(0)
        if acc.fmt == "string":
            values: Any = [text for block in acc.values for text in block]
        elif acc.values:
            values = np.concatenate(acc.values)
        else:
            values = np.empty((0, acc.n_channels), dtype=_NUMPY_FORMAT.get(acc.fmt, "<f4"))
        streams[stream_id] = XdfStream(acc.info, stream_id, stamps, values, acc.footer,
                                       acc.offsets)
    return XdfFile(header, streams, truncated, pos)
