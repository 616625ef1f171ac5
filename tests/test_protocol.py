from __future__ import annotations

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vrexposure import protocol
from vrexposure.protocol import ProtocolError


def test_data_round_trip_and_chunks() -> None:
    frames = protocol.encode_data("hr.polar1", 7, 12.5, {"bpm": 71.5, "quality": "good"})
    message = protocol.decode_data(frames)
    assert (message.topic, message.kind, message.source, message.seq, message.t_s) == \
        ("hr.polar1", "hr", "polar1", 7, 12.5)
    values = np.sin(np.arange(40, dtype=np.float32)).reshape(20, 2)
    chunk = protocol.decode_data(protocol.encode_data(
        "ecg.bitalino1", 0, 1.0, protocol.chunk_payload(values, 1000.0, "mV")))
    np.testing.assert_array_equal(protocol.chunk_values(chunk.payload), values)


def test_command_and_reply_round_trip() -> None:
    raw = protocol.encode_command("abc", "suds", {"value": 40}, "patient", "remote1")
    command = protocol.decode_command(raw)
    assert (command.id, command.name, dict(command.args), command.role, command.client) == \
        ("abc", "suds", {"value": 40}, "patient", "remote1")
    reply = protocol.ReplyMessage("abc", False, 3, "nope", {})
    assert protocol.decode_reply(protocol.encode_reply(reply)) == reply


@pytest.mark.parametrize(("frames", "message"), [
    ([b"hr.x"], "2 frames"),
    ([b"HR.x", msgpack.packb({"v": 1, "seq": 0, "t": 0.0, "p": {}})], "invalid topic"),
    ([b"hr.x", b"\xc1"], "not valid msgpack"),
    ([b"hr.x", msgpack.packb({"v": 2, "seq": 0, "t": 0.0, "p": {}})],
     "unknown protocol version"),
    ([b"hr.x", msgpack.packb({"v": 1, "seq": -1, "t": 0.0, "p": {}})], "bad sequence"),
    ([b"hr.x", msgpack.packb({"v": 1, "seq": 0, "t": float("inf"), "p": {}})], "bad timestamp"),
    ([b"hr.x", msgpack.packb({"v": 1, "seq": 0, "t": 0.0, "p": {"bpm": 900}})], "'bpm'"),
    ([b"hr.x", b"\x00" * (protocol.MAX_MESSAGE_BYTES + 1)], "exceeds"),
    ([b"ecg.x", msgpack.packb({"v": 1, "seq": 0, "t": 0.0, "p": {
        "rate_hz": 1000, "n_channels": 2, "data": b"\x00" * 6}})], "whole float32"),
    ([b"pose.x", msgpack.packb({"v": 1, "seq": 0, "t": 0.0, "p": {
        "pos": [0, 0], "quat": [1, 0, 0, 0]}})], "pose 'pos'"),
])
def test_malformed_data_is_rejected(frames: list[bytes], message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        protocol.decode_data(frames)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.binary(max_size=300), min_size=0, max_size=3))
def test_any_bytes_never_crash_the_data_decoder(frames: list[bytes]) -> None:
    try:
        protocol.decode_data(frames)
    except ProtocolError:
        pass


json_like = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats()
    | st.text(max_size=20) | st.binary(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(["v", "seq", "t", "p", "id", "cmd", "args", "role",
                                        "client", "x"]), json_like, max_size=7),
       st.sampled_from([b"hr.a", b"rr.a", b"pose.a", b"ecg.a", b"state", b"x.y"]))
def test_structured_garbage_never_crashes_decoders(body: dict[str, object], topic: bytes
                                                   ) -> None:
    raw = msgpack.packb(body, use_bin_type=True)
    for decode in (lambda: protocol.decode_data([topic, raw]),
                   lambda: protocol.decode_command(raw), lambda: protocol.decode_reply(raw)):
        try:
            decode()
        except ProtocolError:
            pass


def _nested(levels: int, kind: str) -> object:
    value: object = 1
    for _ in range(levels):
        value = [value] if kind == "list" else {"k": value}
    return value


@pytest.mark.parametrize("kind", ["list", "map"])
def test_depth_check_refuses_exactly_what_nests_too_deep(kind: str) -> None:
    # max_depth containers deep is the most allowed; one more is refused
    protocol.check_depth(_nested(protocol.MAX_DEPTH, kind))
    with pytest.raises(protocol.ProtocolError, match="nested deeper"):
        protocol.check_depth(_nested(protocol.MAX_DEPTH + 1, kind))
    with pytest.raises(protocol.ProtocolError, match="nested deeper"):
        protocol.check_depth(_nested(5000, kind))  # no recursion: a deep one is refused too
    # a wide, shallow message (a real payload) passes; the deep branch of a wide one fails
    protocol.check_depth({"p": {"x": list(range(1000)), "y": [[1, 2]] * 100}})
    with pytest.raises(protocol.ProtocolError):
        protocol.check_depth({"p": {"x": list(range(10)), "deep": _nested(20, kind)}})


# --- the msgspec data codec ------------------------------------------------------------

def test_payload_fields_beyond_the_schema_are_kept() -> None:
    # a derived heart rate carries more than the schema checks; the recording keeps it all
    payload = {"bpm": 72.5, "quality": "uncertain", "origin": "ecg", "n_beats": 9,
               "reasons": ["ectopic", "possible_missed_beat"], "quality_reason": "ectopic",
               "rmssd_ms": 41.0, "window_s": 8.0, "arrival_stamped": True,
               "extra_map": {"a": [1, 2], "b": None}}
    message = protocol.decode_data(protocol.encode_data("hr.strap", 3, 5.0, payload, "ab" * 16))
    assert message.payload == payload and message.auth == "ab" * 16


def test_wire_format_is_the_documented_msgpack_map() -> None:
    # what other producers and tools read and write: a plain msgpack map {v, seq, t, p, a}
    frames = protocol.encode_data("pose.head", 2, 1.5, {"pos": [0, 0, 1.2],
                                                         "quat": [1.0, 0, 0, 0]})
    assert msgpack.unpackb(frames[1]) == {"v": 1, "seq": 2, "t": 1.5,
                                          "p": {"pos": [0, 0, 1.2], "quat": [1.0, 0, 0, 0]}}
    body = msgpack.packb({"v": 1, "seq": 4, "t": 2.0, "p": {"bpm": 60}, "a": "f" * 32},
                         use_bin_type=True)
    message = protocol.decode_data([b"hr.other", body])
    assert (message.seq, message.t_s, dict(message.payload), message.auth) == \
        (4, 2.0, {"bpm": 60}, "f" * 32)


def test_numpy_scalars_travel_as_numbers() -> None:
    payload = {"bpm": np.float64(71.25), "n_beats": np.int64(9), "x": np.float32(0.5)}
    message = protocol.decode_data(protocol.encode_data("hr.sim", 0, 1.0, payload))
    assert message.payload == {"bpm": 71.25, "n_beats": 9, "x": 0.5}
    assert type(message.payload["n_beats"]) is int


@pytest.mark.parametrize(("topic", "payload", "message"), [
    (b"hr.x", {"bpm": float("nan")}, "'bpm'"),
    (b"hr.x", {"bpm": True}, "'bpm'"),
    (b"hr.x", {"bpm": 70, "quality": "great"}, "bad quality"),
    (b"rr.x", {"rr_ms": [800, 0]}, "'rr_ms'"),
    (b"rr.x", {"rr_ms": [800] * 1001}, "'rr_ms'"),
    (b"pose.x", {"pos": [0, 0, 0], "quat": [1, 0, 0]}, "pose 'quat'"),
    (b"pose.x", {"pos": [0, 0, float("inf")], "quat": [1, 0, 0, 0]}, "pose 'pos'"),
    (b"pose.x", {"pos": [0, 0, 0], "quat": [1, 0, 0, 0], "look_angle_deg": 190},
     "'look_angle_deg'"),
    (b"spo2.x", {"spo2_pct": 101}, "'spo2_pct'"),
    (b"ecg.x", {"rate_hz": 0, "n_channels": 1, "data": b"\0" * 4}, "bad rate_hz"),
    (b"ppg.x", {"rate_hz": 100, "n_channels": 65, "data": b"\0" * 260}, "bad n_channels"),
    (b"eda.x", {"rate_hz": 100, "n_channels": 1, "data": b""}, "whole float32"),
    (b"resp.x", {"rate_hz": 100, "n_channels": 1, "data": b"\0" * 4, "unit": "u" * 33},
     "'unit'"),
    (b"sensor.x", {"event": "e" * 33}, "'event'"),
    (b"sensor.x", {"event": "ok", "port": 5}, "'port'"),
    (b"sensor.x", {"event": "ok", **{f"k{i}": i for i in range(64)}}, "64 fields"),
    (b"gaze.x", {f"k{i}": i for i in range(65)}, "64 fields"),
    (b"gaze.x", {"x": {1: 2}}, "keys in a payload must be text"),
    (b"gaze.x", {"x": [{"y": msgpack.Timestamp(5)}]}, "unsupported values"),
    (b"render.x", {"x": msgpack.ExtType(3, b"ab")}, "extension types"),
])
def test_each_kind_checks_its_schema_and_names_the_field(topic: bytes, payload: dict[str, object],
                                                          message: str) -> None:
    body = msgpack.packb({"v": 1, "seq": 0, "t": 0.0, "p": payload}, use_bin_type=True)
    with pytest.raises(ProtocolError, match=message):
        protocol.decode_data([topic, body])


def test_payload_nesting_counts_the_body_as_the_first_level() -> None:
    # MAX_DEPTH containers in all: the body, the payload and MAX_DEPTH - 2 more
    fits = protocol.encode_data("gaze.x", 0, 1.0, {"deep": _nested(protocol.MAX_DEPTH - 2,
                                                                   "list")})
    assert protocol.decode_data(fits).payload["deep"] == _nested(protocol.MAX_DEPTH - 2, "list")
    too_deep = protocol.encode_data("gaze.x", 0, 1.0, {"deep": _nested(protocol.MAX_DEPTH - 1,
                                                                       "map")})
    with pytest.raises(ProtocolError, match="nested deeper"):
        protocol.decode_data(too_deep)
