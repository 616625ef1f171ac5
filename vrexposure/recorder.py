"""The session recorder: data messages, events, commands and state changes into one XDF file.

One XDF stream per source topic (created when its first message arrives), a
JSON marker stream ``events`` for events, commands, replies and clock reports,
and a JSON marker stream ``state`` for each new state. Numeric payloads are
written as numeric channels so that pyxdf, MNE and EEGLAB read them directly.
Samples are buffered briefly and the file is flushed and fsynced at least every
``sync_interval_s``. If the disk refuses a write, everything stays buffered in
memory and is written when the disk accepts it again.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import protocol
from .protocol import DataMessage
from .xdf import StreamInfo, XdfWriter, read_xdf

log = logging.getLogger(__name__)

EVENTS_STREAM = "events"
STATE_STREAM = "state"
QUALITY_CODE = {"good": 0.0, "uncertain": 1.0, "bad": 2.0}

#: Topics never recorded (DESIGN §9: replay re-renders the view instead).
UNRECORDED_KINDS = frozenset({"preview"})


@dataclass(frozen=True)
class Layout:
    """How a payload kind maps onto numeric XDF channels."""

    xdf_type: str
    labels: tuple[str, ...]
    units: tuple[str, ...]


NUMERIC_LAYOUTS: dict[str, Layout] = {
    "hr": Layout("HeartRate", ("bpm", "quality"), ("bpm", "0=good,1=uncertain,2=bad")),
    "rr": Layout("RR", ("rr_ms",), ("ms",)),
    "spo2": Layout("SpO2", ("spo2_pct", "quality"), ("%", "0=good,1=uncertain,2=bad")),
    "pose": Layout("HeadPose",
                   ("x", "y", "z", "qw", "qx", "qy", "qz", "look_angle_deg", "looking_away"),
                   ("m", "m", "m", "", "", "", "", "deg", "bool")),
}
WAVEFORM_TYPES = {"ecg": "ECG", "ppg": "PPG", "eda": "EDA", "resp": "Respiration"}


def pose_row(payload: Mapping[str, Any]) -> list[float]:
    look = payload.get("look_angle_deg")
    return [*map(float, payload["pos"]), *map(float, payload["quat"]),
            float("nan") if look is None else float(look),
            1.0 if payload.get("looking_away") else 0.0]


@dataclass
class _Pending:
    stamps: list[float] = field(default_factory=list)
    rows: list[Any] = field(default_factory=list)


class Recorder:
    """Writes a session to ``path``. Not thread-safe: owned by the host's main loop."""

    def __init__(self, path: Path, metadata: Mapping[str, Any], *,
                 sync_interval_s: float = 1.0, resume: bool = False) -> None:
        self.path = Path(path)
        self.sync_interval_s = sync_interval_s
        self.rejected = 0
        self.write_error: str | None = None
        self._stream_ids: dict[str, int] = {}
        self._pending: dict[int, _Pending] = {}
        self._chunk_queue: list[tuple[int, float, np.ndarray]] = []
        self._last_sync_s = -math.inf
        self.samples_recorded = 0
        if resume:
            existing = read_xdf(self.path)
            with open(self.path, "r+b") as handle:  # drop a cut-off last chunk
                handle.truncate(existing.end_of_valid_data)
            self._writer = XdfWriter(self.path, {}, append=True)
            for stream in existing.streams.values():
                info = stream.info
                labels = tuple(stream.channel_labels)
                self._writer.add_stream(StreamInfo(
                    stream.stream_id, str(info.get("name")), str(info.get("type")),
                    int(info.get("channel_count", 1)), float(info.get("nominal_srate", 0)),
                    info.get("channel_format", "float32"),
                    str(info.get("source_id", "")), labels), write_header=False)
                self._stream_ids[str(info.get("name"))] = stream.stream_id
                self._pending[stream.stream_id] = _Pending()
            self._writer.write_boundary()
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            header = {"vrexposure": json.dumps(dict(metadata), sort_keys=True)}
            header.update({k: str(v) for k, v in metadata.items()
                           if isinstance(v, str | int | float)})
            self._writer = XdfWriter(self.path, header)
        if EVENTS_STREAM not in self._stream_ids:
            self._add_stream(StreamInfo(0, EVENTS_STREAM, "Markers", 1, 0.0, "string", "host",
                                        ("event",)))
        if STATE_STREAM not in self._stream_ids:
            self._add_stream(StreamInfo(0, STATE_STREAM, "Markers", 1, 0.0, "string", "host",
                                        ("state",)))

    @property
    def bytes_written(self) -> int:
        return self._writer.bytes_written

    def _add_stream(self, info: StreamInfo) -> int:
        info.stream_id = len(self._stream_ids) + 1
        self._writer.add_stream(info)
        self._stream_ids[info.name] = info.stream_id
        self._pending[info.stream_id] = _Pending()
        return info.stream_id

    def _stream_for(self, message: DataMessage) -> int:
        stream_id = self._stream_ids.get(message.topic)
        if stream_id is not None:
            return stream_id
        kind, payload = message.kind, message.payload
        if kind in WAVEFORM_TYPES:
            n_channels = int(payload["n_channels"])
            info = StreamInfo(0, message.topic, WAVEFORM_TYPES[kind], n_channels,
                              float(payload["rate_hz"]), "float32", message.source,
                              tuple(f"{kind}{i + 1}" for i in range(n_channels)),
                              (str(payload.get("unit", "")),) * n_channels)
        elif kind in NUMERIC_LAYOUTS:
            layout = NUMERIC_LAYOUTS[kind]
            info = StreamInfo(0, message.topic, layout.xdf_type, len(layout.labels), 0.0,
                              "double64", message.source, layout.labels, layout.units)
        else:
            info = StreamInfo(0, message.topic, "JSON", 1, 0.0, "string", message.source,
                              (kind,))
        return self._add_stream(info)

    def record_raw(self, frames: list[bytes]) -> DataMessage | None:
        """Decode and record forwarded frames; returns the message, or None when it was
        malformed (counted, not recorded)."""
        try:
            message = protocol.decode_data(frames)
        except protocol.ProtocolError as exc:
            self.rejected += 1
            log.warning("recorder rejected a malformed message: %s", exc)
            return None
        if not self.record(message) and message.kind not in UNRECORDED_KINDS:
            return None
        return message

    def record(self, message: DataMessage) -> bool:
        if message.kind in UNRECORDED_KINDS:
            return False
        try:
            stream_id = self._stream_for(message)
            pending = self._pending[stream_id]
            kind, payload = message.kind, message.payload
            if kind in WAVEFORM_TYPES:
                values = protocol.chunk_values(payload)
                info = self._writer.streams[stream_id]
                # A stream's channel count and rate are fixed by its first chunk: a chunk
                # that differs would be written as wrong samples (or break the file).
                if values.shape[1] != info.channel_count:
                    raise ValueError(f"{values.shape[1]} channels in a stream of "
                                     f"{info.channel_count}")
                if float(payload["rate_hz"]) != info.nominal_srate:
                    raise ValueError(f"rate {payload['rate_hz']} Hz in a stream of "
                                     f"{info.nominal_srate} Hz")
                self._chunk_queue.append((stream_id, message.t_s, values.copy()))
                self.samples_recorded += len(values)
                return True
            rows: list[Any]
            if kind == "hr":
                rows = [[float(payload["bpm"]), QUALITY_CODE[payload.get("quality", "good")]]]
                stamps = [message.t_s]
            elif kind == "rr":
                rr = [float(v) for v in payload["rr_ms"]]
                # each interval ends at a beat; the last beat is at the message time, and
                # interval i ends before it by the sum of the intervals after i
                ends_ms = np.cumsum(rr[::-1])[::-1] - np.asarray(rr) if rr else np.empty(0)
                stamps = [message.t_s - float(e) / 1000.0 for e in ends_ms]
                rows = [[v] for v in rr]
            elif kind == "spo2":
                rows = [[float(payload["spo2_pct"]),
                         QUALITY_CODE[payload.get("quality", "good")]]]
                stamps = [message.t_s]
            elif kind == "pose":
                rows, stamps = [pose_row(payload)], [message.t_s]
            else:
                rows = [json.dumps(jsonable(payload), sort_keys=True)]
                stamps = [message.t_s]
        except (KeyError, TypeError, ValueError, protocol.ProtocolError) as exc:
            self.rejected += 1
            # Counted (the host reports it); not logged at warning level: a flood of bad
            # chunks must not become a flood of log lines.
            log.debug("recorder rejected %s: %s", message.topic, exc)
            return False
        pending.stamps.extend(stamps)
        pending.rows.extend(rows)
        self.samples_recorded += len(rows)
        return True

    def record_event(self, t_s: float, record: Mapping[str, Any]) -> None:
        """An event, command, reply or clock report, as one JSON marker."""
        pending = self._pending[self._stream_ids[EVENTS_STREAM]]
        pending.stamps.append(t_s)
        pending.rows.append(json.dumps(jsonable(record), sort_keys=True))

    def record_state(self, t_s: float, state: Mapping[str, Any]) -> None:
        pending = self._pending[self._stream_ids[STATE_STREAM]]
        pending.stamps.append(t_s)
        pending.rows.append(json.dumps(jsonable(state), sort_keys=True))

    def flush(self, now_s: float, force: bool = False) -> None:
        """Write buffered samples; fsync when ``sync_interval_s`` has passed (or ``force``)."""
        try:
            self._write_pending()
            self._writer.flush()
            if force or now_s - self._last_sync_s >= self.sync_interval_s:
                self._writer.sync()
                self._last_sync_s = now_s
            if self.write_error is not None:
                log.warning("recording writes again after: %s", self.write_error)
            self.write_error = None
        except OSError as exc:
            # Disk full or unwritable: keep everything in memory and try again later.
            self.write_error = f"{exc.strerror or exc}"
            log.error("cannot write the recording %s: %s", self.path, self.write_error)

    def _write_pending(self) -> None:
        """Compose buffered samples into XDF chunks (in memory; the writer puts them on disk)."""
        # Waveform blocks that continue the same stream without a gap become one XDF chunk:
        # fewer, larger chunks make files smaller and much faster to read.
        latest: dict[int, tuple[float, list[np.ndarray], float]] = {}  # stream -> t0, blocks, end
        runs: list[tuple[int, float, list[np.ndarray]]] = []
        for stream_id, t0, values in self._chunk_queue:
            rate_hz = self._writer.streams[stream_id].nominal_srate
            period = 1.0 / rate_hz if rate_hz > 0 else math.inf
            run = latest.get(stream_id)
            if run is not None and abs(t0 - run[2]) < period / 2:
                run[1].append(values)
                latest[stream_id] = (run[0], run[1], run[2] + len(values) * period)
            else:
                blocks = [values]
                runs.append((stream_id, t0, blocks))
                latest[stream_id] = (t0, blocks, t0 + len(values) * period)
        self._chunk_queue.clear()
        for stream_id, t0, blocks in runs:
            self._writer.write_numeric(stream_id, [t0], np.concatenate(blocks),
                                       first_stamp_only=True)
        for stream_id, pending in self._pending.items():
            if not pending.rows:
                continue
            info = self._writer.streams[stream_id]
            if info.channel_format == "string":
                self._writer.write_strings(stream_id, pending.stamps, pending.rows)
            else:
                self._writer.write_numeric(stream_id, pending.stamps, pending.rows)
            pending.stamps.clear()
            pending.rows.clear()

    @property
    def unwritten_bytes(self) -> int:
        """Recorded data held in memory because the disk has not accepted it yet."""
        return self._writer.unwritten_bytes

    def close(self, now_s: float) -> None:
        if self._writer.closed:
            return
        self.flush(now_s, force=True)
        if self.write_error is None:
            self._writer.close()


#: Nesting kept by :func:`jsonable`; anything deeper is summarised (a hostile message
#: must not make the recorder recurse until Python gives up).
JSONABLE_MAX_DEPTH = 24


def jsonable(value: Any, _depth: int = 0) -> Any:
    """``value`` made JSON-safe: bytes summarised, non-finite floats as null, nesting
    deeper than :data:`JSONABLE_MAX_DEPTH` replaced by a note."""
    if isinstance(value, Mapping | list | tuple) and _depth >= JSONABLE_MAX_DEPTH:
        return "<nested too deep>"
    if isinstance(value, Mapping):
        return {str(k): jsonable(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v, _depth + 1) for v in value]
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value
