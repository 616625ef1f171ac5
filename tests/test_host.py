"""The session host with real ZeroMQ sockets on loopback."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import zmq

from vrexposure import protocol
from vrexposure.client import ControlClient, Publisher, Subscriber
from vrexposure.config import Endpoints
from vrexposure.hierarchy import Hierarchy
from vrexposure.host import HostError, SessionHost, poll_timeout_ms
from vrexposure.xdf import read_xdf


def wait_for(predicate: Any, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("condition not reached in time")


def events_in(path: Path) -> list[dict[str, Any]]:
    return [json.loads(v) for v in read_xdf(path).by_name("events").values]


def test_commands_change_state_and_are_published_and_recorded(host: SessionHost) -> None:
    sub = Subscriber(host.endpoints, topics=("state", "event"), data=False)
    ctl = ControlClient(host.endpoints.control, "therapist", "panel")
    time.sleep(0.2)
    reply = ctl.send("start_exposure")
    assert reply.ok and reply.result["events"] == ["baseline_completed", "exposure_started"]
    ctl.send("intensity", {"value": 0.6})
    ctl.send("suds", {"value": 45})
    refused = ctl.request("jump", {"step": 42})
    assert not refused.ok and "index from 0 to 9" in refused.error
    state = ctl.state()
    assert (state["phase"], state["intensity"], state["suds"][-1][2]) == ("exposure", 0.6, 45)
    assert state["scene"] == "spiders"
    messages = [m for m in (sub.recv(1.0) for _ in range(40)) if m is not None]
    kinds = [m.payload["kind"] for m in messages if m.topic == "event"]
    assert kinds[:3] == ["baseline_completed", "exposure_started", "intensity_changed"]
    host.close()
    recorded = events_in(host.recording_path)
    commands = [(r["name"], r["ok"]) for r in recorded if r["type"] == "command"]
    assert ("jump", False) in commands and ("suds", True) in commands
    assert next(r for r in recorded if r["type"] == "command" and r["name"] == "jump")["error"]
    sub.close()
    ctl.close()


def test_state_is_published_at_least_10_hz(host: SessionHost) -> None:
    sub = Subscriber(host.endpoints, topics=("state",), data=False)
    time.sleep(0.3)
    sub.drain()
    start = time.monotonic()
    received = 0
    while time.monotonic() - start < 1.0:
        if sub.recv(0.2) is not None:
            received += 1
    assert received >= 9  # 10 Hz, allowing for the edges of the window
    sub.close()


def test_retried_command_id_is_applied_once(host: SessionHost) -> None:
    ctl = ControlClient(host.endpoints.control, "therapist", "t")
    ctl.send("start_exposure")
    first = ctl.request("suds", {"value": 30}, command_id="same-id")
    again = ctl.request("suds", {"value": 30}, command_id="same-id")
    assert first == again
    assert len(ctl.state()["suds"]) == 1
    ctl.close()


def test_roles_are_enforced_over_the_wire(host: SessionHost) -> None:
    patient = ControlClient(host.endpoints.control, "patient", "remote")
    observer = ControlClient(host.endpoints.control, "observer", "obs")
    spoof = ControlClient(host.endpoints.control, "host", "evil")
    assert not observer.request("stop").ok
    assert "may not send 'next'" in patient.request("next").error
    assert "reserved" in spoof.request("end").error
    assert patient.request("stop").ok
    assert observer.state()["phase"] == "safe"
    for client in (patient, observer, spoof):
        client.close()


def test_stop_is_retried_until_the_host_answers(hierarchy: Hierarchy, endpoints: Endpoints,
                                                config: dict[str, Any], tmp_path: Path) -> None:
    """STOP sent while the host is down is delivered once the host comes up."""
    import threading

    ctl = ControlClient(endpoints.control, "patient", "remote", reply_timeout_s=0.2)
    result: dict[str, Any] = {}
    sender = threading.Thread(target=lambda: result.setdefault("reply", ctl.stop()))
    sender.start()
    time.sleep(1.0)
    late_host = SessionHost(hierarchy, "P001", endpoints, config,
                            recording_dir=tmp_path).start()
    try:
        sender.join(timeout=10)
        assert result["reply"].ok
        assert late_host.state.phase.value == "safe" and late_host.state.stop_count == 1
    finally:
        late_host.close()
        ctl.close()
    stops = [r for r in events_in(late_host.recording_path) if r.get("kind") == "stopped"]
    assert len(stops) == 1 and stops[0]["by"] == "patient:remote"


def test_data_is_forwarded_and_recorded(host: SessionHost) -> None:
    sub = Subscriber(host.endpoints, topics=("hr.", "ecg.", "pose."), host=False)
    pub = Publisher(host.endpoints.publish, "dev1", clock=host.clock.now)
    assert pub.wait_connected()
    time.sleep(0.2)
    ecg = np.arange(200, dtype=np.float32) / 100
    for i in range(10):
        pub.publish_chunk("ecg", ecg[i * 20:(i + 1) * 20], 1000.0, "mV", 1.0 + i * 0.02)
        pub.publish("hr", {"bpm": 70.0 + i, "quality": "uncertain" if i == 3 else "good"},
                    1.0 + i)
        pub.publish("pose", {"pos": [0, 0, 1.2], "quat": [1, 0, 0, 0], "look_angle_deg": 5.0,
                             "looking_away": False}, 1.0 + i)
    received = [m for m in (sub.recv(1.0) for _ in range(30)) if m is not None]
    assert len(received) == 30
    assert [m.seq for m in received if m.kind == "hr"] == list(range(10))
    wait_for(lambda: host.recorder.samples_recorded >= 220)
    host.close()
    recording = read_xdf(host.recording_path)
    stream = recording.by_name("ecg.dev1")
    np.testing.assert_allclose(stream.values[:, 0], ecg, rtol=1e-6)
    np.testing.assert_allclose(stream.timestamps[[0, 199]], [1.0, 1.199])
    hr = recording.by_name("hr.dev1")
    assert hr.values[:, 0].tolist() == [70.0 + i for i in range(10)]
    assert hr.values[3, 1] == 1.0  # uncertain kept as uncertain
    assert recording.by_name("pose.dev1").values.shape == (10, 9)
    pub.close()
    sub.close()


def test_malformed_traffic_is_counted_and_the_host_survives(host: SessionHost) -> None:
    pub = Publisher(host.endpoints.publish, "bad", clock=host.clock.now)
    assert pub.wait_connected()
    ctx = zmq.Context.instance()
    dealer = ctx.socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    dealer.connect(host.endpoints.control)
    garbage = [b"\xc1", b"", b"\x00" * 100, protocol.encode_command("x", "next", {}, "therapist",
                                                                  "c")[:-3]]
    for raw in garbage:
        pub.send_raw([b"hr.bad", raw])
        dealer.send(raw)
    pub.send_raw([b"state", b"spoofed state"])  # not a data kind: never forwarded
    pub.send_raw([b"hr.bad", protocol.encode_data("hr.bad", 0, 1.0, {"bpm": 1e9})[1]])
    wait_for(lambda: host.counters["data_rejected"] == 5)
    wait_for(lambda: host.counters["commands_malformed"] == 4)
    ctl = ControlClient(host.endpoints.control, "therapist", "t")
    assert ctl.send("start_exposure").ok  # still alive and answering
    assert ctl.state()["session"]["data_rejected"] == 5
    ctl.close()
    dealer.close()
    pub.close()


def test_lost_panel_heartbeat_pauses_exposure(hierarchy: Hierarchy, endpoints: Endpoints,
                                              config: dict[str, Any], tmp_path: Path) -> None:
    config = {**config, "session": {**config["session"], "panel_heartbeat_timeout_s": 0.5}}
    host = SessionHost(hierarchy, "P001", endpoints, config, recording_dir=tmp_path).start()
    try:
        panel = ControlClient(endpoints.control, "therapist", "panel")
        panel.send("heartbeat", {"controlling": True})
        panel.send("start_exposure")
        for _ in range(5):
            time.sleep(0.2)
            panel.send("heartbeat", {"controlling": True})
        assert host.state.phase.value == "exposure"
        wait_for(lambda: host.state.phase.value == "paused", timeout_s=3.0)
        assert panel.state()["session"]["controller_connected"] is False
        panel.send("heartbeat", {"controlling": True})
        assert panel.state()["session"]["controller_connected"] is True
        assert panel.send("resume").ok
        panel.close()
    finally:
        host.close()
    recorded = events_in(host.recording_path)
    paused = [r for r in recorded if r.get("kind") == "paused"]
    assert paused and paused[0]["reason"] == "panel_heartbeat_lost"
    assert any(r.get("kind") == "controller_lost" for r in recorded)


def test_baseline_and_relative_alert(hierarchy: Hierarchy, endpoints: Endpoints,
                                     config: dict[str, Any], tmp_path: Path) -> None:
    host = SessionHost(hierarchy, "P001", endpoints, config, recording_dir=tmp_path).start()
    try:
        sub = Subscriber(endpoints, topics=("alert",), data=False)
        pub = Publisher(endpoints.publish, "hrm", clock=host.clock.now)
        assert pub.wait_connected()
        ctl = ControlClient(endpoints.control, "therapist", "t")
        ctl.send("start_baseline")
        for i in range(8):
            pub.publish("hr", {"bpm": 70.0 + (i % 2), "quality": "good"})
            time.sleep(0.1)
        wait_for(lambda: host.state.baseline_done, timeout_s=3.0)
        assert host.state.baseline is not None
        assert 70.0 <= host.state.baseline.mean_bpm <= 71.0
        ctl.send("start_exposure")
        # 25 bpm above a baseline of ~70.5 (SD ~0.5): above rise_bpm=20 for > sustain_s.
        sustain = hierarchy.alerts.sustain_s
        deadline = time.monotonic() + sustain + 1.0
        while time.monotonic() < deadline:
            pub.publish("hr", {"bpm": 96.0, "quality": "good"})
            time.sleep(0.02)
        alert = sub.recv(2.0)
        assert alert is not None and alert.payload["alert"] == "hr_above_baseline"
        assert alert.payload["value_bpm"] == 96.0
        assert host.state.phase.value == "exposure"  # alerts never change the scene
        for client in (sub, pub, ctl):
            client.close()
    finally:
        host.close()


def test_refuses_non_loopback_and_names_in_patient_id(hierarchy: Hierarchy,
                                                      config: dict[str, Any],
                                                      tmp_path: Path) -> None:
    with pytest.raises(HostError, match="off loopback every socket needs CurveZMQ"):
        SessionHost(hierarchy, "P001", Endpoints("tcp://0.0.0.0:1", "tcp://0.0.0.0:2",
                                                 "tcp://0.0.0.0:3", "tcp://0.0.0.0:4"),
                    config, recording_dir=tmp_path)
    from .conftest import free_endpoints
    with pytest.raises(HostError, match="not a pseudonymous id"):
        SessionHost(hierarchy, "JaneDoe", free_endpoints(), config, recording_dir=tmp_path)


def test_the_loop_never_polls_zero_before_a_deadline() -> None:
    # a wait under 1 ms must sleep 1 ms, not return at once: truncating it to poll(0)
    # spun the host's loop ~140 000 times in 11 s of a session
    assert poll_timeout_ms(0.0004) == 1
    assert poll_timeout_ms(0.0201) == 21
    assert poll_timeout_ms(0.0) == 0 and poll_timeout_ms(-0.5) == 0
