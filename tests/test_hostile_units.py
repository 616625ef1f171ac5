"""Each hostile case of issue 12, one at a time, against the real parts in-process:
the strict argument parser, decode-time caps, validators, the recorder's fixed stream
layouts, YAML and id hardening, endpoint parsing, the reply cache and STOP."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import pytest
import zmq

from vrexposure import admission, args, protocol
from vrexposure.client import ControlClient, Publisher
from vrexposure.config import Endpoints
from vrexposure.hierarchy import Hierarchy, parse_hierarchy
from vrexposure.host import HostError, SessionHost, check_patient_id, is_loopback, parse_endpoint
from vrexposure.plugins import discover_scenes
from vrexposure.recorder import Recorder, jsonable
from vrexposure.state import (
    SUDS_KEPT_PER_STEP,
    Command,
    CommandError,
    Role,
    apply,
    initial_state,
    state_to_dict,
)
from vrexposure.xdf import read_xdf
from vrexposure.yamlsrc import YamlSyntaxError, load_yaml_file, load_yaml_text

from .conftest import HIERARCHIES


def nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = {"a": value}
    return value


def events_in(path: Path) -> list[dict[str, Any]]:
    return [json.loads(v) for v in read_xdf(path).by_name("events").values]


# --- the strict parser -------------------------------------------------------------

@pytest.mark.parametrize("text", ["²", "٣", "1.5", "", " 1", "1e3", "0x10", "many", "1_000"])
def test_integers_are_ascii_digits_only(text: str) -> None:
    with pytest.raises(args.ArgError):
        args.to_int(text, "step", 0, 10_000)


def test_parser_accepts_plain_values_and_bounds_them() -> None:
    assert args.to_int("7", "n", 0, 9) == 7 and args.to_int(7.0, "n", 0, 9) == 7
    assert args.to_float("0.25", "x", 0, 1) == 0.25
    for bad in (float("nan"), float("inf"), "nan", True, [1], {"a": 1}):
        with pytest.raises(args.ArgError):
            args.to_float(bad, "x", 0, 1)
    with pytest.raises(args.ArgError, match="longer than 5"):
        args.to_str("abcdefg", "t", 5)
    assert args.parse_choice({"k": "a"}, "k", {"a", "b"}) == "a"
    assert args.parse_int({}, "n", 0, 9, default=None) is None


def test_state_machine_refuses_bad_numbers_instead_of_crashing(hierarchy: Hierarchy) -> None:
    state = initial_state(hierarchy)
    for name, cmd_args in (("start_exposure", {"step": "²"}), ("jump", {"step": "²"}),
                           ("start_exposure", {"step": nested(600)})):
        with pytest.raises(CommandError):
            apply(state, Command(name, cmd_args), 1.0)
    state, _ = apply(state, Command("start_baseline"), 1.0)
    with pytest.raises(CommandError, match="whole number"):
        apply(state, Command("complete_baseline", {"n_values": "many"}), 2.0)


def test_stop_and_pause_with_a_nested_reason_still_work(hierarchy: Hierarchy) -> None:
    state, _ = apply(initial_state(hierarchy), Command("start_exposure"), 1.0)
    state, events = apply(state, Command("stop", {"reason": nested(600)}, Role.PATIENT, "r"),
                          2.0)
    assert state.phase.value == "safe" and events[0].data["reason"] == "STOP"
    state, _ = apply(state, Command("resume"), 3.0)
    state, events = apply(state, Command("pause", {"reason": nested(600)}, Role.PATIENT, "r"),
                          4.0)
    assert state.phase.value == "paused" and events[0].data["reason"] == "command"


def test_state_size_is_bounded_whatever_the_patient_sends(hierarchy: Hierarchy) -> None:
    state, _ = apply(initial_state(hierarchy), Command("start_exposure"), 0.0)
    for i in range(2000):
        state, _ = apply(state, Command("suds", {"value": 90 if i == 0 else 10},
                                        Role.PATIENT, "remote"), 1.0 + i * 0.001)
    payload = state_to_dict(state, 3.0, discover_scenes([]))
    assert len(payload["suds"]) == SUDS_KEPT_PER_STEP
    assert payload["step_suds_count"] == 2000 and state.step_suds_peak == 90
    assert len(json.dumps(payload)) < 64_000


# --- decoding ------------------------------------------------------------------------

def test_nesting_is_capped_at_decode_time() -> None:
    raw = msgpack.packb({"v": 1, "id": "a", "cmd": "clock_report", "args": nested(600),
                         "role": "observer", "client": "o"})
    with pytest.raises(protocol.ProtocolError, match="nested deeper"):
        protocol.decode_command(raw)
    frames = protocol.encode_data("gaze.x", 0, 1.0, {"deep": nested(600)})
    with pytest.raises(protocol.ProtocolError, match="nested deeper"):
        protocol.decode_data(frames)
    assert jsonable(nested(5000)) is not None  # the recorder's helper never recurses unbounded


@pytest.mark.parametrize("kind", ["ecg", "ppg", "eda", "resp"])
def test_every_waveform_kind_is_validated(kind: str) -> None:
    good = protocol.chunk_payload(np.zeros(10), 100.0, "uS")
    protocol.decode_data(protocol.encode_data(f"{kind}.x", 0, 1.0, good))
    for bad in ({**good, "rate_hz": 0}, {**good, "rate_hz": -5.0}, {**good, "n_channels": 0},
                {**good, "data": b"abc"}, {**good, "unit": nested(3)}):
        with pytest.raises(protocol.ProtocolError):
            protocol.decode_data(protocol.encode_data(f"{kind}.x", 0, 1.0, bad))


def test_spo2_and_sensor_status_are_validated() -> None:
    with pytest.raises(protocol.ProtocolError):
        protocol.decode_data(protocol.encode_data("spo2.x", 0, 1.0, {"spo2_pct": 300}))
    with pytest.raises(protocol.ProtocolError):
        protocol.decode_data(protocol.encode_data("sensor.x", 0, 1.0, {"event": "x" * 1000}))


def test_recorder_keeps_a_streams_channel_count_and_rate(tmp_path: Path) -> None:
    path = tmp_path / "r.xdf"
    recorder = Recorder(path, {"session_id": "s"})

    def chunk(values: Any, rate: float, t: float) -> bool:
        return recorder.record(protocol.decode_data(protocol.encode_data(
            "eda.x", 0, t, protocol.chunk_payload(values, rate, "uS"))))

    assert chunk(np.zeros(10), 10.0, 0.0)
    assert not chunk(np.zeros((10, 2)), 10.0, 1.0)   # 2 channels in a 1-channel stream
    assert not chunk(np.zeros(10), 20.0, 1.0)        # another rate
    assert chunk(np.ones(10), 10.0, 1.0)
    recorder.flush(2.0)
    recorder.close(2.0)
    stream = read_xdf(path).by_name("eda.x")
    assert np.asarray(stream.values).shape == (20, 1)
    assert recorder.rejected == 2


# --- files, ids and endpoints ---------------------------------------------------------

@pytest.mark.parametrize("text, message", [
    ("a: &x [1, 2]\nb: *x\n", "anchors and aliases"),
    ("a: &x\n  - *x\n", "anchors and aliases"),
    ("a: 1\nb: 2\na: 3\n", "duplicate key 'a'"),
    ("a: " + "[" * 20_000 + "]" * 20_000 + "\n", "nested deeper"),
])
def test_yaml_refuses_aliases_duplicates_and_deep_nesting(text: str, message: str) -> None:
    with pytest.raises(YamlSyntaxError, match=message) as info:
        load_yaml_text(text, "h.yaml")
    assert str(info.value).startswith("h.yaml:")


def test_yaml_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    started = time.monotonic()
    with pytest.raises(YamlSyntaxError, match=r"bomb\.yaml:1: anchors"):
        load_yaml_file(path)
    assert time.monotonic() - started < 5.0  # generous: it stops at the first anchor


def test_oversized_yaml_file_is_refused_without_parsing(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("a: " + "x" * (2 << 20) + "\n")
    with pytest.raises(YamlSyntaxError, match="larger than"):
        load_yaml_file(path)


def test_hierarchy_id_must_be_a_slug() -> None:
    text = (HIERARCHIES / "arachnophobia.yaml").read_text()
    escaped = text.replace("id: arachnophobia-standard", "id: ../../../tmp/ESCAPED", 1)
    hierarchy, problems = parse_hierarchy(escaped, "h.yaml")
    assert hierarchy is None
    assert any("'id' must be a slug" in p.message and p.path == "h.yaml" for p in problems)


@pytest.mark.parametrize("patient_id", ["P001\n", "JaneDoe1985", "Smith_J_1970", "P 01", "",
                                        "../P01", "P017\x00", "Ｐ017"])
def test_names_and_padded_ids_are_not_pseudonymous(patient_id: str) -> None:
    with pytest.raises(HostError, match="pseudonymous"):
        check_patient_id(patient_id)


def test_clinic_sets_its_own_patient_id_pattern() -> None:
    assert check_patient_id("P017") == "P017" and check_patient_id("DEMO01") == "DEMO01"
    assert check_patient_id("KL-2024-007", r"KL-[0-9]{4}-[0-9]{3}") == "KL-2024-007"
    with pytest.raises(HostError):
        check_patient_id("P017", r"KL-[0-9]{4}-[0-9]{3}")


@pytest.mark.parametrize("endpoint, loopback", [
    ("tcp://127.0.0.1:5560", True), ("tcp://localhost:5560", True), ("tcp://[::1]:5560", True),
    ("tcp://127.0.0.1:0;0.0.0.0:5560", False), ("tcp://127.evil.example:5560", False),
    ("tcp://0.0.0.0:5560", False), ("tcp://*:5560", False), ("ipc:///tmp/x", False),
    ("tcp://127.0.0.1:5560 ", False),
])
def test_only_one_well_formed_loopback_address_counts_as_loopback(endpoint: str,
                                                                  loopback: bool) -> None:
    assert is_loopback(endpoint) is loopback


def test_host_refuses_a_compound_bind_without_keys(hierarchy: Hierarchy, config: dict[str, Any],
                                                   tmp_path: Path) -> None:
    endpoints = Endpoints.from_config(config, "127.0.0.1:0;0.0.0.0")
    with pytest.raises(HostError, match="single tcp://HOST:PORT"):
        parse_endpoint(endpoints.publish)
    with pytest.raises(HostError):
        SessionHost(hierarchy, "P001", endpoints, config, recording_dir=tmp_path)
    assert not list(tmp_path.iterdir())  # refused before any recording was made


# --- the running host -----------------------------------------------------------------

def _raw_dealer(endpoints: Endpoints) -> zmq.Socket[Any]:
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(endpoints.control)
    return sock


def test_malformed_envelopes_are_answered(host: SessionHost) -> None:
    sock = _raw_dealer(host.endpoints)
    try:
        bodies = [
            msgpack.packb({"v": 1, "id": "m1", "cmd": "ping"}),  # no role/client
            msgpack.packb({"v": 1, "id": "m2", "cmd": "clock_report", "args": nested(600),
                           "role": "observer", "client": "o"}),
            b"\xc1garbage",
        ]
        for body in bodies:
            sock.send(body)
            assert sock.poll(3000), f"no answer to {body[:20]!r}"
            reply = protocol.decode_reply(sock.recv())
            assert not reply.ok and reply.error
        assert host.counters["commands_malformed"] == 3
        # A STOP with a reason nested too deep still stops, without the reason.
        sock.send(msgpack.packb({"v": 1, "id": "s1", "cmd": "stop", "args": {
            "reason": nested(600)}, "role": "patient", "client": "remote"}))
        assert sock.poll(3000)
        reply = protocol.decode_reply(sock.recv())
        assert reply.ok and reply.id == "s1" and host.state.phase.value == "safe"
    finally:
        sock.close()


def test_patient_stop_reusing_a_therapist_id_is_executed(host: SessionHost) -> None:
    therapist = ControlClient(host.endpoints.control, "therapist", "panel")
    patient = ControlClient(host.endpoints.control, "patient", "remote")
    try:
        therapist.send("start_exposure")
        marker = therapist.request("marker", {"text": "t"}, command_id="shared-id")
        assert marker.ok and marker.result["events"] == ["marker"]
        stop = patient.request("stop", {"reason": nested(10)}, command_id="shared-id")
        assert stop.ok and stop.result["events"] == ["stopped"]
        assert host.state.phase.value == "safe"
        again = patient.request("stop", {}, command_id="shared-id")  # a retried STOP runs again
        assert again.ok and again.result["events"] == ["stopped"] and host.state.stop_count == 2
    finally:
        therapist.close()
        patient.close()


def test_refused_commands_are_recorded_without_their_arguments(host: SessionHost) -> None:
    observer = ControlClient(host.endpoints.control, "observer", "o")
    try:
        for i in range(20):
            reply = observer.request(f"bogus{i}", {"blob": "x" * 500_000})
            assert not reply.ok
        assert observer.request("get_state").ok
    finally:
        observer.close()
    host.close()
    refused = [r for r in events_in(host.recording_path)
               if r["type"] == "command" and not r["ok"]]
    assert len(refused) == 20 and all("args" not in r and r["error"] for r in refused)
    assert host.recording_path.stat().st_size < 200_000


def test_bad_chunks_forged_times_and_status_floods_do_not_reach_the_recording(
        host: SessionHost) -> None:
    pub = Publisher(host.endpoints.publish, "strap", clock=host.clock.now)
    assert pub.wait_connected()
    t = host.clock.now()
    zero = {**protocol.chunk_payload(np.zeros(10), 100.0, "mV"), "rate_hz": 0}
    pub.send_raw(protocol.encode_data("ecg.strap", 0, t, zero))
    pub.publish_chunk("ecg", np.zeros(10), 100.0, "mV", t)
    pub.publish_chunk("ecg", np.zeros((10, 2)), 100.0, "mV", t + 0.1)   # 2 channels: refused
    pub.publish("hr", {"bpm": 70.0}, 1e300)
    pub.publish("hr", {"bpm": 70.0}, -1e12)
    pub.publish("hr", {"bpm": 70.0}, t)
    for i in range(300):  # a flood from sources that never proved the session: pending
        pub.send_raw(protocol.encode_data(f"sensor.fake{i}", 0, t,
                                          {"event": "disconnected", "port": "x"}))
    for i in range(20):  # admitted sources, each losing its port: alerts collapse after 8
        pub.publish("sensor", {"event": "disconnected", "port": "x"}, t, source=f"own{i}")
    deadline = time.monotonic() + 5.0
    while host.counters["data_messages"] < 326 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert host.counters["data_messages"] >= 326
    assert host.counters["data_rejected_time"] == 2
    lost = [a for a in host.state.alerts_active if a.startswith("sensor_lost")]
    assert all(a.startswith("sensor_lost.own") for a in lost)
    assert len(lost) == 8 and host.counters["sensor_alerts_collapsed"] == 12
    session = host.state_payload(host.clock.now())
    assert len(session["session"]["pending_sources"]) == 32
    assert host.counters["pending_sources_overflow"] == 300 - 32
    pub.close()
    host.close()
    recording = read_xdf(host.recording_path)
    assert np.asarray(recording.by_name("ecg.strap").values).shape == (10, 1)
    stamps = recording.by_name("hr.strap").timestamps
    assert len(stamps) == 1 and abs(float(stamps[0]) - t) < 1e-6


# --- admission ---------------------------------------------------------------------------

def test_only_sources_that_prove_the_session_are_recorded(host: SessionHost) -> None:
    ticket_file = admission.ticket_path(host.endpoints.publish)
    assert ticket_file.stat().st_mode & 0o777 == 0o600
    assert ticket_file.parent.stat().st_mode & 0o777 == 0o700
    own = Publisher(host.endpoints.publish, "strap", clock=host.clock.now)
    # Another session's sensor on the same ports: no ticket of this session.
    foreign = Publisher(host.endpoints.publish, "polar", clock=host.clock.now)
    assert own.wait_connected() and foreign.wait_connected()
    for i in range(5):
        own.publish("hr", {"bpm": 70.0 + i})
        foreign.send_raw(protocol.encode_data("hr.polar", i, host.clock.now(), {"bpm": 120.0}))
        time.sleep(0.02)
    deadline = time.monotonic() + 5.0
    while host.pending_sources["polar"] < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    therapist = ControlClient(host.endpoints.control, "therapist", "panel")
    observer = ControlClient(host.endpoints.control, "observer", "o")
    try:
        session = therapist.state()["session"]
        assert session["pending_sources"] == {"polar": 5}
        assert list(session["admitted_sources"]) == ["strap"]
        forged = observer.request("hello", {"source": "polar", "nonce": "n", "proof": "0" * 64})
        assert not forged.ok and "proof does not match" in forged.error
        assert not observer.request("admit_source", {"source": "polar"}).ok
        assert therapist.send("reject_source", {"source": "polar"}).result["admitted"] is False
        foreign.send_raw(protocol.encode_data("hr.polar", 9, host.clock.now(), {"bpm": 120.0}))
        assert therapist.send("admit_source", {"source": "later"}).ok
        foreign.send_raw(protocol.encode_data("hr.later", 0, host.clock.now(), {"bpm": 80.0}))
        time.sleep(0.3)
        assert therapist.state()["session"]["rejected_sources"] == ["polar"]
    finally:
        for client in (own, foreign, therapist, observer):
            client.close()
    host.close()
    assert not ticket_file.exists()
    recording = read_xdf(host.recording_path)
    names = {s.info["name"] for s in recording.streams.values()}
    assert "hr.strap" in names and "hr.later" in names and "hr.polar" not in names
    admissions = [r for r in events_in(host.recording_path) if r["type"] == "admission"]
    assert [(r["source"], r["kind"], r["how"]) for r in admissions] == [
        ("strap", "source_admitted", "session_secret"),
        ("polar", "source_rejected", "therapist"),
        ("later", "source_admitted", "therapist")]
    assert all(isinstance(r["t_s"], float) for r in admissions)


def test_a_second_host_on_the_same_ports_names_the_session(host: SessionHost,
                                                           hierarchy: Hierarchy,
                                                           config: dict[str, Any],
                                                           tmp_path: Path) -> None:
    with pytest.raises(HostError, match=f"held by session {host.session_id}"):
        SessionHost(hierarchy, "P002", host.endpoints, config, recording_dir=tmp_path / "b")
    assert not list((tmp_path / "b").glob("*.xdf"))  # no empty recording left behind
    # The first session's ticket is still its own.
    ticket = admission.read_ticket(host.endpoints.publish)
    assert ticket is not None and ticket["session_id"] == host.session_id


def test_a_command_flood_is_rate_limited_but_stop_always_runs(host: SessionHost) -> None:
    sock = _raw_dealer(host.endpoints)
    therapist = ControlClient(host.endpoints.control, "therapist", "panel")
    try:
        therapist.send("start_exposure")
        n = 3000
        started = time.monotonic()
        for i in range(n):
            sock.send(protocol.encode_command(f"f{i}", "bogus", {}, "observer", "flood"))
        sock.send(protocol.encode_command("the-stop", "stop", {}, "patient", "flood"))
        replies = []
        while len(replies) < n + 1 and sock.poll(5000):
            replies.append(protocol.decode_reply(sock.recv()))
        elapsed_s = time.monotonic() - started
        assert len(replies) == n + 1  # every envelope answered
        limited = [r for r in replies if r.error.startswith("rate limited")]
        # the burst of 1000, plus 100 a second refilled while the flood was handled
        assert 1000 <= n - len(limited) <= 1000 + 100 * elapsed_s + 1
        assert limited
        stop = next(r for r in replies if r.id == "the-stop")
        assert stop.ok and host.state.phase.value == "safe"
        assert therapist.state()["session"]["commands_rate_limited"] == len(limited)
    finally:
        sock.close()
        therapist.close()
    host.close()
    refused = [r for r in events_in(host.recording_path) if r.get("name") == "bogus"]
    assert len(refused) == n - len(limited)


def test_every_data_kind_has_a_validator() -> None:
    assert set(protocol.DATA_KINDS) <= set(protocol.PAYLOAD_SCHEMAS)


def test_forged_stamps_do_not_fake_a_sustained_heart_rate_rise(
        hierarchy: Hierarchy, endpoints: Endpoints, config: dict[str, Any],
        tmp_path: Path) -> None:
    # The clinical sustain time (10 s), with the test hierarchy's short baseline.
    hierarchy = dataclasses.replace(
        hierarchy, alerts=dataclasses.replace(hierarchy.alerts, sustain_s=10.0))
    host = SessionHost(hierarchy, "P001", endpoints, config, recording_dir=tmp_path).start()
    ctl = ControlClient(host.endpoints.control, "therapist", "panel")
    pub = Publisher(host.endpoints.publish, "sim", clock=host.clock.now)
    try:
        assert pub.wait_connected()
        ctl.send("start_baseline")
        for i in range(8):
            pub.publish("hr", {"bpm": 70.0 + (i % 2)})
            time.sleep(0.05)
        deadline = time.monotonic() + 5.0
        while not host.state.baseline_done and time.monotonic() < deadline:
            time.sleep(0.02)
        ctl.send("start_exposure")
        sustain_s = host.hierarchy.alerts.sustain_s
        now = host.clock.now()
        # Two samples half a second apart, stamped as if the rise had lasted sustain_s.
        pub.publish("hr", {"bpm": 150.0}, now - sustain_s - 1.0)
        time.sleep(0.5)
        pub.publish("hr", {"bpm": 150.0}, host.clock.now())
        time.sleep(0.3)
        assert host.state.baseline is not None
        assert "hr_above_baseline" not in host.state.alerts_active
    finally:
        ctl.close()
        pub.close()
        host.close()


def test_a_data_flood_from_one_source_is_capped_per_second(host: SessionHost) -> None:
    pub = Publisher(host.endpoints.publish, "strap", clock=host.clock.now)
    assert pub.wait_connected()
    n = 12_000  # sent within about a second: more than 5 000 in some one-second window
    started = time.monotonic()
    for _ in range(n):
        pub.publish("hr", {"bpm": 70.0})
    sent_in_s = time.monotonic() - started
    deadline = time.monotonic() + 10.0
    while host.counters["data_messages"] < n and time.monotonic() < deadline:
        time.sleep(0.05)
    pub.close()
    host.close()
    recorded = len(read_xdf(host.recording_path).by_name("hr.strap").timestamps)
    assert host.counters["data_rejected_rate"] == n - recorded
    if sent_in_s < 2.0:
        assert recorded <= 2 * 5_000 + 5_000 * sent_in_s
        assert host.counters["data_rejected_rate"] > 0


def test_a_proven_source_name_is_bound_to_its_client(host: SessionHost) -> None:
    own = Publisher(host.endpoints.publish, "strap", clock=host.clock.now)
    # A sensor left running from the previous patient, under the same source name.
    leftover = Publisher(host.endpoints.publish, "strap", clock=host.clock.now)
    assert own.wait_connected() and leftover.wait_connected()
    for i in range(5):
        own.publish("hr", {"bpm": 70.0 + i})
        leftover.send_raw(protocol.encode_data("hr.strap", 100 + i, host.clock.now(),
                                               {"bpm": 130.0}))
        time.sleep(0.02)
    # A captured message sent again (same sequence number, same MAC): refused.
    tag = own._tags["strap"]
    t = host.clock.now()
    leftover.send_raw(protocol.encode_data("hr.strap", 4, t, {"bpm": 140.0},
                                           admission.binding(tag, "hr.strap", 4, t)))
    time.sleep(0.3)
    assert host.counters["data_rejected_unbound_source"] == 5
    assert host.counters["data_rejected_replayed"] == 1
    own.close()
    leftover.close()
    host.close()
    bpm = [row[0] for row in read_xdf(host.recording_path).by_name("hr.strap").values]
    assert bpm == [70.0, 71.0, 72.0, 73.0, 74.0]
