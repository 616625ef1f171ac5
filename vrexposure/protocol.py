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

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import msgpack
import msgspec
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


class DataMessage(msgspec.Struct, frozen=True):
    """One decoded data message (a frozen msgspec Struct: built for every message, at a
    fifth of a frozen dataclass's cost)."""
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
#
# The data plane is the hot path (hundreds of messages a second through the host, the
# recorder and every consumer), so its bodies are encoded and decoded by msgspec: the
# envelope is decoded and checked in one C pass, and each known kind's payload is
# checked against its schema (:data:`PAYLOAD_SCHEMAS`) in another, instead of msgpack
# plus hand-written checks in Python. The wire format is the same msgpack map.

#: A finite float (msgspec refuses NaN and infinities against these bounds).
Finite = Annotated[float, msgspec.Meta(ge=-1.7976931348623157e308, le=1.7976931348623157e308)]


class _Body(msgspec.Struct, omit_defaults=True):
    """A data message body as encoded (``a`` left out when None)."""
    v: int
    seq: int
    t: float
    p: dict[str, Any]
    a: str | None = None


class _Envelope(msgspec.Struct):
    """A data message body as decoded: the envelope checked, the payload a plain map
    (its kind's schema is checked next, from the decoded map)."""
    v: int
    seq: Annotated[int, msgspec.Meta(ge=0)]
    t: Finite
    p: dict[str, Any]
    a: Annotated[str, msgspec.Meta(max_length=64)] | None = None


def _encode_numpy_scalar(value: Any) -> Any:
    # numpy scalars (np.float64 from a mean, np.int64 from a count) travel as numbers
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot encode {type(value).__name__} in a message")


_ENCODER = msgspec.msgpack.Encoder(enc_hook=_encode_numpy_scalar)


def _refuse_ext(code: int, data: memoryview) -> Any:
    raise ProtocolError("msgpack extension types are not allowed")


_ENVELOPE_DECODER = msgspec.msgpack.Decoder(_Envelope, ext_hook=_refuse_ext)
#: Topics already checked, with their kind's schema (bounded: cleared when full).
_TOPICS: dict[bytes, tuple[str, PayloadSchema | None]] = {}
_TOPICS_KEPT = 4096
_ENVELOPE_FIELDS = {"v": "unknown protocol version", "seq": "bad sequence number",
                    "t": "bad timestamp", "p": "payload is not a map", "a": "bad binding tag"}


def encode_data(topic: str, seq: int, t_s: float, payload: Mapping[str, Any],
                auth: str | None = None) -> list[bytes]:
    return [topic.encode("ascii"),
            _ENCODER.encode(_Body(PROTOCOL_VERSION, seq, float(t_s),
                                  payload if type(payload) is dict else dict(payload), auth))]


def _learn_topic(raw_topic: bytes) -> tuple[str, PayloadSchema | None]:
    """A topic seen for the first time: checked, and kept with its kind's schema."""
    try:
        topic = check_topic(raw_topic.decode("ascii"))
    except UnicodeDecodeError as exc:
        raise ProtocolError("topic is not ASCII") from exc
    if len(_TOPICS) >= _TOPICS_KEPT:
        _TOPICS.clear()
    known = _TOPICS[raw_topic] = (topic, PAYLOAD_SCHEMAS.get(topic.partition(".")[0]))
    return known


def _field_of(error: msgspec.ValidationError) -> str:
    """The top-level field a msgspec validation error is about ('' for the whole)."""
    text = str(error)
    if "missing required field `" in text:
        return text.split("missing required field `", 1)[1].split("`", 1)[0]
    path = text.rsplit(" - at `$", 1)[1] if " - at `$" in text else ""
    return path.lstrip(".").split(".", 1)[0].split("[", 1)[0].rstrip("`")


def decode_data(frames: list[bytes]) -> DataMessage:
    if len(frames) != 2:
        raise ProtocolError(f"a data message has 2 frames, not {len(frames)}")
    raw_topic, raw_body = frames
    # one dict lookup for a known topic (the hot path runs after a sleep: every call counts)
    known = _TOPICS.get(raw_topic) if type(raw_topic) is bytes else None
    topic, schema = known if known is not None else _learn_topic(bytes(raw_topic))
    if len(raw_body) > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"message of {len(raw_body)} bytes exceeds {MAX_MESSAGE_BYTES}")
    try:
        body = _ENVELOPE_DECODER.decode(raw_body)
    except ProtocolError:
        raise
    except msgspec.ValidationError as exc:
        reason = _ENVELOPE_FIELDS.get(_field_of(exc), "body is not a map")
        raise ProtocolError(f"{reason}: {exc}") from exc
    except Exception as exc:  # malformed msgpack (msgspec.DecodeError), too deep, …
        raise ProtocolError(f"not valid msgpack: {type(exc).__name__}") from exc
    if body.v != PROTOCOL_VERSION:
        raise ProtocolError(f"unknown protocol version {body.v!r} (expected {PROTOCOL_VERSION})")
    payload = body.p
    check_payload_values(payload)
    if schema is not None:
        _check_schema(schema, payload)
    return DataMessage(topic, body.seq, body.t, payload, body.a)


def _check_schema(schema: PayloadSchema, payload: Mapping[str, Any]) -> None:
    """Raise ProtocolError, naming the field, unless ``payload`` fits ``schema``."""
    try:
        checked = msgspec.convert(payload, schema.type)
    except msgspec.ValidationError as exc:
        name = _field_of(exc)
        raise ProtocolError(f"{schema.errors.get(name, repr(name))} "
                            f"({str(exc).split(' - at ', 1)[0]})") from exc
    if schema.check is not None:
        schema.check(checked, payload)


_SCALARS = frozenset({str, int, float, bool, type(None), bytes})
_PLAIN = _SCALARS | {list, dict}
_SCALARS_AND_LIST = _SCALARS | {list}


def check_payload_values(payload: dict[str, Any], max_depth: int = MAX_DEPTH - 1) -> None:
    """Raise ProtocolError unless ``payload`` holds only what JSON and the recorder take:
    text keys, plain values (no msgpack timestamps), at most ``max_depth`` levels of maps
    and lists (the body is the first of MAX_DEPTH) of at most MAX_CONTAINER_ITEMS items.
    Level by level, never recursing; a real payload (scalars and flat lists) is checked
    by set operations in C."""
    kinds = set(map(type, payload.values()))  # its keys are text: decoded as dict[str, Any]
    if kinds <= _SCALARS or (kinds <= _SCALARS_AND_LIST and all(
            len(v) <= MAX_CONTAINER_ITEMS and _SCALARS.issuperset(map(type, v))
            for v in payload.values() if type(v) is list)):
        return  # the shape of every real payload, without the general walk
    level: list[Any] = [payload]
    depth = 0
    while level:
        if depth >= max_depth:
            raise ProtocolError(f"message nested deeper than {max_depth + 1} levels")
        children: list[Any] = []
        for container in level:
            if len(container) > MAX_CONTAINER_ITEMS:
                raise ProtocolError(f"a map or list of over {MAX_CONTAINER_ITEMS} items")
            if type(container) is dict:
                if not _TEXT.issuperset(map(type, container)):
                    raise ProtocolError("map keys in a payload must be text")
                values = container.values()
            else:
                values = container
            kinds = set(map(type, values))
            if kinds <= _SCALARS:
                continue
            if not kinds <= _PLAIN:
                raise ProtocolError(f"payload holds unsupported values: "
                                    f"{sorted(k.__name__ for k in kinds - _PLAIN)}")
            children.extend(v for v in values if type(v) is list or type(v) is dict)
        level = children
        depth += 1


_TEXT = frozenset({str})


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
    _check_schema(_CHUNK, payload)
    n_channels = int(payload["n_channels"])
    return np.frombuffer(payload["data"], dtype="<f4").reshape(-1, n_channels)


Quality = Literal["good", "uncertain", "bad"]
Bpm = Annotated[float, msgspec.Meta(ge=0.0, le=400.0)]
AngleDeg = Annotated[float, msgspec.Meta(ge=0.0, le=180.0)]
Percent = Annotated[float, msgspec.Meta(ge=0.0, le=100.0)]


class _HeartRate(msgspec.Struct):
    bpm: Bpm
    quality: Quality = "good"


class _RRIntervals(msgspec.Struct):
    rr_ms: Annotated[list[Annotated[float, msgspec.Meta(gt=0.0, lt=10_000.0)]],
                     msgspec.Meta(max_length=1000)]
    quality: Quality = "good"


class _Pose(msgspec.Struct):
    pos: Annotated[list[Finite], msgspec.Meta(min_length=3, max_length=3)]
    quat: Annotated[list[Finite], msgspec.Meta(min_length=4, max_length=4)]
    look_angle_deg: AngleDeg | None = None


class _Chunk(msgspec.Struct):
    rate_hz: Annotated[float, msgspec.Meta(gt=0.0, le=100_000.0)]
    n_channels: Annotated[int, msgspec.Meta(ge=1, le=64)]
    data: Annotated[bytes, msgspec.Meta(min_length=1)]
    quality: Quality = "good"
    unit: Annotated[str, msgspec.Meta(max_length=32)] = ""


class _OxygenSaturation(msgspec.Struct):
    spo2_pct: Percent
    quality: Quality = "good"


_Detail = Annotated[str, msgspec.Meta(max_length=256)] | None


class _SensorStatus(msgspec.Struct):
    event: Annotated[str, msgspec.Meta(max_length=32)]
    port: _Detail = None
    device: _Detail = None
    detail: _Detail = None
    error: _Detail = None


def _check_whole_samples(chunk: Any, payload: Mapping[str, Any]) -> None:
    if len(chunk.data) % (4 * chunk.n_channels):
        raise ProtocolError("chunk: data is not whole float32 samples")


def _check_width(checked: Any, payload: Mapping[str, Any]) -> None:
    if len(payload) > 64:
        raise ProtocolError("payload has more than 64 fields")


@dataclass(frozen=True)
class PayloadSchema:
    """What a kind's payload must hold: a msgspec type its decoded map is converted to
    (other fields are allowed and kept), a check msgspec cannot express, and the error
    to give per field."""
    type: Any
    check: Callable[[Any, Mapping[str, Any]], None] | None = None
    errors: Mapping[str, str] = field(default_factory=dict)


def _schema(kind_type: Any, check: Callable[[Any, Mapping[str, Any]], None] | None = None,
            **errors: str) -> PayloadSchema:
    return PayloadSchema(kind_type, check, errors)


_QUALITY_ERROR = "bad quality: one of good, uncertain, bad"
_CHUNK = _schema(_Chunk, _check_whole_samples, rate_hz="chunk: bad rate_hz",
                 n_channels="chunk: bad n_channels",
                 data="chunk: data is not whole float32 samples",
                 quality=_QUALITY_ERROR, unit="chunk: 'unit' must be short text")
#: Kinds recorded as JSON text (gaze, render, preview): nesting is capped at decode
#: time; here only the payload's width.
_JSON_KIND = _schema(dict[str, Any], _check_width)

#: Kinds whose payloads are regularly sampled chunks (channel count and rate are
#: fixed per stream by the recorder).
WAVEFORM_KINDS = frozenset({"ecg", "ppg", "eda", "resp"})

#: Each data kind's payload schema, checked on decoding (one C pass per payload).
PAYLOAD_SCHEMAS: dict[str, PayloadSchema] = {
    "hr": _schema(_HeartRate, bpm="'bpm' must be a number in [0.0, 400.0]",
                  quality=_QUALITY_ERROR),
    "rr": _schema(_RRIntervals, rr_ms="'rr_ms' must be a list of intervals in ms",
                  quality=_QUALITY_ERROR),
    "pose": _schema(_Pose, pos="pose 'pos' must be 3 finite numbers",
                    quat="pose 'quat' must be 4 finite numbers",
                    look_angle_deg="'look_angle_deg' must be a number in [0.0, 180.0]"),
    "spo2": _schema(_OxygenSaturation, spo2_pct="'spo2_pct' must be a number in [0.0, 100.0]",
                    quality=_QUALITY_ERROR),
    "sensor": _schema(_SensorStatus, _check_width,
                      event="'event' must be text of at most 32 characters",
                      port="'port' must be text of at most 256 characters",
                      device="'device' must be text of at most 256 characters",
                      detail="'detail' must be text of at most 256 characters",
                      error="'error' must be text of at most 256 characters"),
    "gaze": _JSON_KIND,
    "render": _JSON_KIND,
    "preview": _JSON_KIND,  # forwarded, never recorded
    **dict.fromkeys(WAVEFORM_KINDS, _CHUNK),
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
