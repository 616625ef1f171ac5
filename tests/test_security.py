"""CurveZMQ with an allow-list and a role per key, with real sockets."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from vrexposure import admission, protocol, security
from vrexposure.cli import main
from vrexposure.client import ControlClient, HostUnreachable, Publisher, Subscriber
from vrexposure.config import Endpoints
from vrexposure.hierarchy import Hierarchy
from vrexposure.host import HostError, SessionHost
from vrexposure.xdf import read_xdf

from .conftest import free_endpoints


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    directory = tmp_path / "keys"
    security.init_keys(directory)
    for name, role in (("panel", "therapist"), ("remote", "patient"), ("watcher", "observer"),
                       ("hrm", "sensor"), ("old", "therapist")):
        security.add_client(directory, name, role)
    return directory


@pytest.fixture
def secure_host(hierarchy: Hierarchy, config: dict[str, Any], keys: Path, tmp_path: Path
                ) -> Any:
    # 0.0.0.0 is not loopback: allowed only because keys are given. Clients use 127.0.0.1.
    endpoints = free_endpoints()
    wildcard = Endpoints(*(e.replace("127.0.0.1", "0.0.0.0") for e in (
        endpoints.publish, endpoints.feed, endpoints.host_feed, endpoints.control)))
    host = SessionHost(hierarchy, "P001", wildcard, config, recording_dir=tmp_path / "s",
                       keys_dir=keys).start()
    yield host, endpoints
    host.close()


def test_key_files_are_private(keys: Path) -> None:
    assert os.stat(keys).st_mode & 0o777 == 0o700
    assert os.stat(keys / "host.key_secret").st_mode & 0o777 == 0o600
    assert os.stat(keys / "clients" / "panel.key_secret").st_mode & 0o777 == 0o600
    assert os.stat(keys / "authorized.yaml").st_mode & 0o777 == 0o600
    listed = security.load_allow_list(keys)
    assert listed["remote"].role == "patient" and not listed["remote"].revoked


def test_refuses_non_loopback_without_keys(hierarchy: Hierarchy, config: dict[str, Any],
                                           tmp_path: Path) -> None:
    endpoints = Endpoints("tcp://0.0.0.0:1", "tcp://0.0.0.0:2", "tcp://0.0.0.0:3",
                          "tcp://0.0.0.0:4")
    with pytest.raises(HostError, match="needs CurveZMQ keys"):
        SessionHost(hierarchy, "P001", endpoints, config, recording_dir=tmp_path)
    result = CliRunner().invoke(main, ["session", "--hierarchy", "arachnophobia", "--patient",
                                       "P001", "--bind", "0.0.0.0"])
    assert result.exit_code != 0 and "needs CurveZMQ keys" in result.output


def test_authorised_clients_work_and_roles_come_from_keys(secure_host: Any, keys: Path) -> None:
    host, endpoints = secure_host
    panel = ControlClient(endpoints.control, "therapist", "panel",
                          curve=security.client_credentials(keys, "panel"))
    assert panel.send("start_exposure").ok
    # The patient's key cannot claim the therapist role.
    remote_as_therapist = ControlClient(endpoints.control, "therapist", "remote",
                                        curve=security.client_credentials(keys, "remote"))
    refused = remote_as_therapist.request("next")
    assert not refused.ok and "key is for the role 'patient'" in refused.error
    remote = ControlClient(endpoints.control, "patient", "remote",
                           curve=security.client_credentials(keys, "remote"))
    assert not remote.request("next").ok
    assert remote.stop().ok
    watcher = ControlClient(endpoints.control, "observer", "watcher",
                            curve=security.client_credentials(keys, "watcher"))
    assert "may not send 'resume'" in watcher.request("resume").error
    sensor = ControlClient(endpoints.control, "sensor", "hrm",
                           curve=security.client_credentials(keys, "hrm"))
    assert "may not send 'pause'" in sensor.request("pause").error
    assert host.state.phase.value == "safe"
    for client in (panel, remote_as_therapist, remote, watcher, sensor):
        client.close()
    assert host.counters["commands_rejected"] == 4  # each refusal is counted and recorded


def test_data_flows_only_between_authorised_keys(secure_host: Any, keys: Path) -> None:
    host, endpoints = secure_host
    good_sub = Subscriber(endpoints, topics=("hr.", "state"),
                          curve=security.client_credentials(keys, "watcher"))
    plain_sub = Subscriber(endpoints, topics=("",))  # no CURVE at all
    stranger = security.CurveClient(*_stranger_keys(), server_key=host.security.public_key)
    stranger_sub = Subscriber(endpoints, topics=("",), curve=stranger)
    pub = Publisher(endpoints.publish, "hrm", curve=security.client_credentials(keys, "hrm"))
    assert pub.wait_connected()
    rogue = Publisher(endpoints.publish, "rogue", curve=stranger)
    assert not rogue.wait_connected(timeout_s=1.0)  # the handshake is refused
    assert not rogue.admit(timeout_s=0.5)  # its key cannot reach control either
    time.sleep(0.3)
    for i in range(5):
        pub.publish("hr", {"bpm": 70.0 + i, "quality": "good"}, float(i))
        rogue.publish("hr", {"bpm": 200.0, "quality": "good"}, float(i))
    received = []
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        if (message := good_sub.recv(0.1)) is not None:
            received.append(message)
    hr = [m.payload["bpm"] for m in received if m.kind == "hr"]
    assert hr == [70.0, 71.0, 72.0, 73.0, 74.0]  # nothing from the rogue
    assert any(m.topic == "state" for m in received)
    assert plain_sub.recv(0.5) is None and stranger_sub.recv(0.5) is None
    unknown = ControlClient(endpoints.control, "therapist", "x", curve=stranger)
    with pytest.raises(HostUnreachable):
        unknown.request("stop", timeout_s=1.0)
    assert host.security.allow_list.refused >= 3
    for client in (good_sub, plain_sub, stranger_sub, pub, rogue, unknown):
        client.close()


def test_revoked_key_is_refused(secure_host: Any, keys: Path) -> None:
    host, endpoints = secure_host
    refused_before = host.security.allow_list.refused
    old = ControlClient(endpoints.control, "therapist", "old",
                        curve=security.client_credentials(keys, "old"))
    assert old.send("marker", {"text": "before revocation"}).ok
    old.close()
    result = CliRunner().invoke(main, ["keys", "revoke", "old", "--dir", str(keys)])
    assert result.exit_code == 0, result.output
    again = ControlClient(endpoints.control, "therapist", "old",
                          curve=security.client_credentials(keys, "old"))
    with pytest.raises(HostUnreachable):
        again.request("marker", {"text": "after"}, timeout_s=1.0)
    again.close()
    assert host.security.allow_list.refused > refused_before


def test_revocation_cuts_open_connections_within_a_second(secure_host: Any, keys: Path) -> None:
    host, endpoints = secure_host
    security.add_client(keys, "spy", "observer")
    security.add_client(keys, "fakehr", "sensor")
    time.sleep(0.1)
    spy = Subscriber(endpoints, topics=("state",), curve=security.client_credentials(keys, "spy"))
    kept = Subscriber(endpoints, topics=("state",),
                      curve=security.client_credentials(keys, "watcher"))
    bad_pub = Publisher(endpoints.publish, "fakehr",
                        curve=security.client_credentials(keys, "fakehr"))
    assert bad_pub.wait_connected()
    assert spy.recv(2.0) is not None and kept.recv(2.0) is not None
    bad_pub.publish("hr", {"bpm": 80.0}, host.clock.now())
    revoked_at = time.monotonic()
    security.revoke_client(keys, "spy")
    security.revoke_client(keys, "fakehr")
    while host.counters["keys_revoked"] < 2 and time.monotonic() - revoked_at < 2.0:
        time.sleep(0.02)
    assert time.monotonic() - revoked_at < 1.0 and host.counters["keys_revoked"] == 2
    spy.drain()
    time.sleep(0.3)  # anything already in flight arrives; nothing new may
    spy.drain()
    kept.drain()
    for _ in range(20):
        bad_pub.publish("hr", {"bpm": 200.0}, host.clock.now())
        time.sleep(0.02)
    assert spy.recv(1.0) is None           # its subscription is gone
    assert kept.recv(2.0) is not None      # the others reconnected by themselves
    for client in (spy, kept, bad_pub):
        client.close()
    host.close()
    from vrexposure.xdf import read_xdf
    bpm = [row[0] for row in read_xdf(host.recording_path).by_name("hr.fakehr").values]
    assert bpm == [80.0]  # the data sent after revocation was not recorded


def test_keys_command(tmp_path: Path) -> None:
    runner = CliRunner()
    directory = tmp_path / "k"
    assert runner.invoke(main, ["keys", "init", "--dir", str(directory)]).exit_code == 0
    added = runner.invoke(main, ["keys", "add", "tablet1", "--role", "patient",
                                 "--dir", str(directory)])
    assert added.exit_code == 0 and "tablet1.key_secret" in added.output
    bad = runner.invoke(main, ["keys", "add", "x y", "--role", "patient", "--dir",
                               str(directory)])
    assert bad.exit_code != 0 and "client name" in bad.output
    listing = runner.invoke(main, ["keys", "list", "--dir", str(directory)])
    assert "tablet1" in listing.output and "patient" in listing.output
    assert runner.invoke(main, ["keys", "init", "--dir", str(directory)]).exit_code != 0


def _stranger_keys() -> tuple[bytes, bytes]:
    import zmq

    return zmq.curve_keypair()


def test_a_source_name_is_bound_to_the_key_that_proved_it(secure_host: Any, keys: Path
                                                          ) -> None:
    """CurveZMQ: a publisher proves its source over ``control`` with its key and MACs its
    data; another key (or no proof) under the same name is counted, not recorded."""
    host, endpoints = secure_host
    security.add_client(keys, "hrm2", "sensor")
    # A remote publisher has no session ticket: it learns the control endpoint directly.
    admission.ticket_path(endpoints.publish).unlink()
    own = Publisher(endpoints.publish, "strap", clock=host.clock.now,
                    curve=security.client_credentials(keys, "hrm"), control=endpoints.control)
    other = Publisher(endpoints.publish, "strap", clock=host.clock.now,
                      curve=security.client_credentials(keys, "hrm2"),
                      control=endpoints.control)
    assert own.wait_connected() and other.wait_connected()
    assert own.admit() and "strap" in own._tags
    assert not other.admit()  # the name belongs to the other key
    watcher = ControlClient(endpoints.control, "observer", "w",
                            curve=security.client_credentials(keys, "watcher"))
    assert "may not publish" in watcher.request("hello", {"source": "x"}).error
    # A simulator configured with the therapist's key proves its source all the same.
    sim = Publisher(endpoints.publish, "sim", clock=host.clock.now,
                    curve=security.client_credentials(keys, "panel"), control=endpoints.control)
    assert sim.admit()
    sim.close()
    for i in range(5):
        own.publish("hr", {"bpm": 70.0 + i})
        other.publish("hr", {"bpm": 150.0})  # no MAC: the hello was refused
        other.send_raw(protocol.encode_data("hr.ghost", i, host.clock.now(), {"bpm": 99.0}))
        time.sleep(0.02)
    deadline = time.monotonic() + 3.0
    while host.counters["data_rejected_unbound_source"] < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert host.counters["data_rejected_unbound_source"] == 5
    assert host.pending_sources["ghost"] == 5  # never proven: shown, not recorded
    session = watcher.state()["session"]
    assert list(session["admitted_sources"]) == ["strap", "sim"]
    for client in (own, other, watcher):
        client.close()
    host.close()
    recording = read_xdf(host.recording_path)
    assert [row[0] for row in recording.by_name("hr.strap").values] == [
        70.0, 71.0, 72.0, 73.0, 74.0]
    assert all(s.name != "hr.ghost" for s in recording.streams.values())
    events = [json.loads(v) for v in recording.by_name("events").values]
    admitted = [e for e in events if e["type"] == "admission"]
    assert [(e["source"], e["how"], e.get("key")) for e in admitted] == [("strap", "key", "hrm"),
                                                                        ("sim", "key", "panel")]
    refused = [e for e in events if e["type"] == "command" and not e["ok"]
               and e["name"] == "hello"]
    assert any("bound to another key" in e["error"] for e in refused)


def test_a_revoked_keys_source_can_be_proven_by_another_key(secure_host: Any, keys: Path
                                                             ) -> None:
    host, endpoints = secure_host
    security.add_client(keys, "old-hrm", "sensor")
    old = Publisher(endpoints.publish, "strap", clock=host.clock.now,
                    curve=security.client_credentials(keys, "old-hrm"), control=endpoints.control)
    assert old.wait_connected() and old.admit()
    old.close()
    new = Publisher(endpoints.publish, "strap", clock=host.clock.now,
                    curve=security.client_credentials(keys, "hrm"), control=endpoints.control)
    assert new.wait_connected()
    assert not new.admit(timeout_s=1.0)  # bound to the other key while it is allowed
    security.revoke_client(keys, "old-hrm")
    new._admitted.clear()
    assert new.admit(timeout_s=2.0)
    new.close()
    host.close()
    events = [json.loads(v) for v in read_xdf(host.recording_path).by_name("events").values]
    assert [(e["source"], e["key"]) for e in events if e["type"] == "admission"] == [
        ("strap", "old-hrm"), ("strap", "hrm")]
