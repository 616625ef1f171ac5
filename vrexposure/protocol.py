"""Wire protocol: msgpack message bodies, validated on the way in (pure).

A data message is two ZeroMQ frames, ``[topic, body]``. The topic is ASCII
``<kind>.<source>``; the body is a msgpack map ``{"v", "seq", "t", "p"}``:
protocol version, the source's sequence number, the sample time on the session
clock (seconds) and the payload. High-rate signals travel as chunks
(:func:`chunk_payload`). Commands and replies are single msgpack frames over
DEALER/ROUTER. Every decoder raises :class:`ProtocolError` on bad input; no
input makes it raise anything else.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgpack
import numpy as np
import numpy.typing as npt

PROTOCOL_VERSION = 1
MAX_MESSAGE_BYTES = 1 << 20  # 1 MiB: a preview JPEG fits; anything larger is refused
MAX_TOPIC_BYTES = 128
#: Deepest nesting of maps and lists a message may have: real messages use 4 levels;
#: checked before anything recurses into a message (a 600-deep one crashed the host).
MAX_DEPTH = 16
#: Most items a single map or list may hold, checked by msgpack while it decodes.
MAX_CONTAINER_ITEMS = 100_000
TOPIC_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[A-Za-z0-9_\-]+)*$")

#: Kinds of data message producers may publish; the host forwards nothing else, so no
#: producer can impersonate the host's own ``state``/``event``/``alert`` topics.
DATA_KINDS = ("hr", "rr", "ecg", "ppg", "spo2", "eda", "resp", "pose", "gaze", "preview",
              "render", "sensor")

#: Topics the host itself publishes (on its own socket).
TOPIC_STATE = "state"
TOPIC_EVENT = "event"
TOPIC_ALERT = "alert"


class ProtocolError(ValueError):
    """A malformed, oversized or unknown-version message."""


@dataclass(frozen=True)
class DataMessage:
    topic: str
    seq: int
    t_s: float
    payload: Mapping[str, Any]
    #: The producer's binding tag (``a``): a MAC proving the source name is used by the
    #: client that was admitted under it (see :mod:`vrexposure.admission`); or None.
    auth: str | None = None

    @property
    def kind(self) -> str:
        return self.topic.split(".", 1)[0]

    @property
    def source(self) -> str:
        return self.topic.split(".", 1)[1] if "." in self.topic else ""


@dataclass(frozen=True)
class CommandMessage:
    id: str
    name: str
    args: Mapping[str, Any]
    role: str
    client: str


@dataclass(frozen=True)
class ReplyMessage:
    id: str
    ok: bool
    state_seq: int
    error: str
    result: Mapping[str, Any]


def _packb(obj: Any) -> bytes:
    return bytes(msgpack.packb(obj, use_bin_type=True))


def _unpackb(raw: bytes) -> Any:
    if len(raw) > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"message of {len(raw)} bytes exceeds {MAX_MESSAGE_BYTES}")
    try:
        value = msgpack.unpackb(raw, raw=False, strict_map_key=True,
                                max_str_len=MAX_MESSAGE_BYTES, max_bin_len=MAX_MESSAGE_BYTES,
                                max_array_len=MAX_CONTAINER_ITEMS,
                                max_map_len=MAX_CONTAINER_ITEMS, max_ext_len=0)
    except Exception as exc:  # msgpack raises several unrelated types
        raise ProtocolError(f"not valid msgpack: {type(exc).__name__}") from exc
    check_depth(value)
    return value


def check_depth(value: Any, max_depth: int = MAX_DEPTH) -> None:
    """Raise ProtocolError when maps/lists nest deeper than ``max_depth`` (iterative:
    the check itself must not recurse). Level by level, keeping only the containers of
    each level: a data message has two levels (body, payload) of a few items each."""
    level = [value] if type(value) in _CONTAINERS else []
    depth = 0
    while level:
        if depth >= max_depth:
            raise ProtocolError(f"message nested deeper than {max_depth} levels")
        level = [child for item in level
                 for child in (item.values() if type(item) is dict else item)
                 if type(child) in _CONTAINERS]
        depth += 1


#: What msgpack decodes maps and arrays to (exact types: nothing else comes out of it).
_CONTAINERS = (dict, list, tuple)


def _check_version(body: Mapping[str, Any]) -> None:
    version = body.get("v")
    if version != PROTOCOL_VERSION:
        raise ProtocolError(f"unknown protocol version {version!r} (expected {PROTOCOL_VERSION})")


def check_topic(topic: str) -> str:
    if len(topic.encode()) > MAX_TOPIC_BYTES or not TOPIC_RE.match(topic):
        raise ProtocolError(f"invalid topic {topic[:40]!r}")
    return topic


# --- data messages ---------------------------------------------------------

def encode_data(topic: str, seq: int, t_s: float, payload: Mapping[str, Any],
                auth: str | None = None) -> list[bytes]:
    body = {"v": PROTOCOL_VERSION, "seq": seq, "t": float(t_s), "p": dict(payload)}
    if auth is not None:
        body["a"] = auth
    return [topic.encode("ascii"), _packb(body)]


def decode_data(frames: list[bytes]) -> DataMessage:
    if len(frames) != 2:
        raise ProtocolError(f"a data message has 2 frames, not {len(frames)}")
    raw_topic, raw_body = frames
    try:
        topic = check_topic(bytes(raw_topic).decode("ascii"))
    except UnicodeDecodeError as exc:
        raise ProtocolError("topic is not ASCII") from exc
    body = _unpackb(bytes(raw_body))
    if not isinstance(body, dict):
        raise ProtocolError("body is not a map")
    _check_version(body)
    seq, t_s, payload = body.get("seq"), body.get("t"), body.get("p")
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
        raise ProtocolError(f"bad sequence number {seq!r}")
    if isinstance(t_s, bool) or not isinstance(t_s, int | float) or not math.isfinite(t_s):
        raise ProtocolError(f"bad timestamp {t_s!r}")
    if not isinstance(payload, dict):
        raise ProtocolError("payload is not a map")
    auth = body.get("a")
    if auth is not None and (not isinstance(auth, str) or len(auth) > 64):
        raise ProtocolError("bad binding tag")
    message = DataMessage(topic, seq, float(t_s), payload, auth)
    validator = PAYLOAD_VALIDATORS.get(message.kind)
    if validator is not None:
        validator(payload)
    return message


# --- chunks of regularly sampled signals ----------------------------------

def chunk_payload(values: npt.ArrayLike, rate_hz: float, unit: str,
                  quality: str = "good") -> dict[str, Any]:
    """Payload for a block of samples; the message time ``t`` is the first sample's."""
    array = np.ascontiguousarray(values, dtype="<f4")
    if array.ndim == 1:
        array = array[:, None]
    return {"rate_hz": float(rate_hz), "n_channels": int(array.shape[1]), "unit": unit,
            "quality": quality, "data": array.tobytes()}


def chunk_values(payload: Mapping[str, Any]) -> npt.NDArray[np.float32]:
    """Samples × channels array of a chunk payload (validated)."""
    _validate_chunk(payload)
    n_channels = int(payload["n_channels"])
    return np.frombuffer(payload["data"], dtype="<f4").reshape(-1, n_channels)


def _validate_chunk(p: Mapping[str, Any]) -> None:
    rate, n_ch, data = p.get("rate_hz"), p.get("n_channels"), p.get("data")
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 < rate <= 100_000:
        raise ProtocolError(f"chunk: bad rate_hz {rate!r}")
    if isinstance(n_ch, bool) or not isinstance(n_ch, int) or not 1 <= n_ch <= 64:
        raise ProtocolError(f"chunk: bad n_channels {n_ch!r}")
    if not isinstance(data, bytes) or len(data) % (4 * n_ch) != 0 or not data:
        raise ProtocolError("chunk: data is not whole float32 samples")


def _number(p: Mapping[str, Any], key: str, low: float, high: float, optional: bool = False
            ) -> None:
    value = p.get(key)
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or not low <= value <= high:
        raise ProtocolError(f"'{key}' must be a number in [{low}, {high}], not {value!r}")


def _quality(p: Mapping[str, Any]) -> None:
    if p.get("quality", "good") not in ("good", "uncertain", "bad"):
        raise ProtocolError(f"bad quality {p.get('quality')!r}")


def _validate_hr(p: Mapping[str, Any]) -> None:
    _number(p, "bpm", 0.0, 400.0)
    _quality(p)


def _validate_rr(p: Mapping[str, Any]) -> None:
    rr = p.get("rr_ms")
    if not isinstance(rr, list) or len(rr) > 1000 or not all(
            isinstance(v, int | float) and not isinstance(v, bool) and 0 < v < 10_000 for v in rr):
        raise ProtocolError("'rr_ms' must be a list of intervals in ms")
    _quality(p)


def _validate_pose(p: Mapping[str, Any]) -> None:
    for key, size in (("pos", 3), ("quat", 4)):
        value = p.get(key)
        if not isinstance(value, list) or len(value) != size or not all(
                isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                for v in value):
            raise ProtocolError(f"pose '{key}' must be {size} finite numbers")
    _number(p, "look_angle_deg", 0.0, 180.0, optional=True)


def _validate_wave(p: Mapping[str, Any]) -> None:
    _validate_chunk(p)
    _quality(p)
    unit = p.get("unit", "")
    if not isinstance(unit, str) or len(unit) > 32:
        raise ProtocolError("chunk: 'unit' must be short text")


def _validate_spo2(p: Mapping[str, Any]) -> None:
    _number(p, "spo2_pct", 0.0, 100.0)
    _quality(p)


def _short_field(p: Mapping[str, Any], key: str, max_len: int, optional: bool = True) -> None:
    value = p.get(key)
    if value is None and optional:
        return
    if not isinstance(value, str) or len(value) > max_len:
        raise ProtocolError(f"'{key}' must be text of at most {max_len} characters")


def _validate_sensor(p: Mapping[str, Any]) -> None:
    _validate_json_kind(p)
    _short_field(p, "event", 32, optional=False)
    for key in ("port", "device", "detail", "error"):
        _short_field(p, key, 256)


def _validate_json_kind(p: Mapping[str, Any]) -> None:
    # Kinds recorded as JSON text (gaze, render): nesting is capped at decode time;
    # here only the payload's width.
    if len(p) > 64:
        raise ProtocolError("payload has more than 64 fields")


#: Kinds whose payloads are regularly sampled chunks (channel count and rate are
#: fixed per stream by the recorder).
WAVEFORM_KINDS = frozenset({"ecg", "ppg", "eda", "resp"})

PAYLOAD_VALIDATORS = {
    "hr": _validate_hr,
    "rr": _validate_rr,
    "pose": _validate_pose,
    "spo2": _validate_spo2,
    "sensor": _validate_sensor,
    "gaze": _validate_json_kind,
    "render": _validate_json_kind,
    "preview": _validate_json_kind,  # forwarded, never recorded
    **{kind: _validate_wave for kind in WAVEFORM_KINDS},
}


# --- commands and replies --------------------------------------------------

def encode_command(command_id: str, name: str, args: Mapping[str, Any], role: str,
                   client: str) -> bytes:
    return _packb({"v": PROTOCOL_VERSION, "id": command_id, "cmd": name, "args": dict(args),
                   "role": role, "client": client})


def _short_text(body: Mapping[str, Any], key: str, max_len: int) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not 0 < len(value) <= max_len:
        raise ProtocolError(f"'{key}' must be text of 1-{max_len} characters")
    return value


def decode_command(raw: bytes) -> CommandMessage:
    body = _unpackb(bytes(raw))
    if not isinstance(body, dict):
        raise ProtocolError("command is not a map")
    _check_version(body)
    args = body.get("args", {})
    if not isinstance(args, dict):
        raise ProtocolError("'args' must be a map")
    return CommandMessage(_short_text(body, "id", 64), _short_text(body, "cmd", 64), args,
                          _short_text(body, "role", 32), _short_text(body, "client", 64))


def encode_reply(reply: ReplyMessage) -> bytes:
    return _packb({"v": PROTOCOL_VERSION, "id": reply.id, "ok": reply.ok,
                   "state_seq": reply.state_seq, "error": reply.error,
                   "result": dict(reply.result)})


def decode_reply(raw: bytes) -> ReplyMessage:
    body = _unpackb(bytes(raw))
    if not isinstance(body, dict):
        raise ProtocolError("reply is not a map")
    _check_version(body)
    ok, seq, error, result = body.get("ok"), body.get("state_seq"), body.get("error"), \
        body.get("result")
    if not isinstance(ok, bool) or not isinstance(seq, int) or not isinstance(error, str) \
            or not isinstance(result, dict):
        raise ProtocolError("malformed reply")
    reply_id = body.get("id")
    # '' answers an envelope so malformed that not even its id could be read
    if not isinstance(reply_id, str) or len(reply_id) > 64:
        raise ProtocolError("malformed reply id")
    return ReplyMessage(reply_id, ok, seq, error, result)
