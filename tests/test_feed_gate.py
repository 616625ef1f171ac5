"""The feed gate: consumers (the therapist's panel) receive only data of admitted sources,
over real sockets. Data the recorder refuses must not reach the therapist either."""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

from vrexposure import protocol
from vrexposure.client import ControlClient, Publisher, Subscriber
from vrexposure.config import Endpoints
from vrexposure.hierarchy import Hierarchy
from vrexposure.host import SessionHost
from vrexposure.protocol import DataMessage


def _collect(sub: Subscriber, seconds: float) -> list[DataMessage]:
    received = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if (message := sub.recv(0.05)) is not None:
            received.append(message)
    return received


def _send_foreign(pub: Publisher, host: SessionHost, first_seq: int, count: int) -> None:
    # Raw frames: this sensor never proves the session (another session's, or a leftover).
    for i in range(count):
        pub.send_raw(protocol.encode_data("hr.polar", first_seq + i, host.clock.now(),
                                          {"bpm": 120.0 + i}))
        time.sleep(0.01)


def test_consumers_see_only_admitted_sources(host: SessionHost) -> None:
    sub = Subscriber(host.endpoints, topics=("hr.",), host=False)
    own = Publisher(host.endpoints.publish, "strap", clock=host.clock.now)
    foreign = Publisher(host.endpoints.publish, "polar", clock=host.clock.now)
    therapist = ControlClient(host.endpoints.control, "therapist", "panel")
    assert own.wait_connected() and foreign.wait_connected()
    time.sleep(0.3)  # the subscriber's subscription reaches the host
    for i in range(5):
        own.publish("hr", {"bpm": 70.0 + i})
    _send_foreign(foreign, host, 0, 5)
    seen = _collect(sub, 1.0)
    assert [m.payload["bpm"] for m in seen if m.source == "strap"] == [
        70.0, 71.0, 72.0, 73.0, 74.0]
    assert [m for m in seen if m.source == "polar"] == []  # refused, and not shown
    assert host.pending_sources["polar"] == 5  # still counted for the therapist to decide

    # Admitted by the therapist: from now on it reaches consumers (and the recording).
    assert therapist.send("admit_source", {"source": "polar"}).ok
    _send_foreign(foreign, host, 5, 3)
    assert [m.payload["bpm"] for m in _collect(sub, 1.0)] == [120.0, 121.0, 122.0]

    # Rejected again: nothing more reaches consumers.
    assert therapist.send("reject_source", {"source": "polar"}).ok
    _send_foreign(foreign, host, 8, 3)
    own.publish("hr", {"bpm": 75.0})
    assert [(m.source, m.payload["bpm"]) for m in _collect(sub, 1.0)] == [("strap", 75.0)]
    for client in (sub, own, foreign, therapist):
        client.close()


def test_without_admission_every_source_reaches_consumers(
        hierarchy: Hierarchy, endpoints: Endpoints, config: dict[str, Any],
        tmp_path: Path) -> None:
    relaxed = copy.deepcopy(config)
    relaxed["session"]["source_admission"] = False
    host = SessionHost(hierarchy, "P001", endpoints, relaxed,
                       recording_dir=tmp_path / "sessions").start()
    sub = Subscriber(host.endpoints, topics=("hr.",), host=False)
    foreign = Publisher(host.endpoints.publish, "polar", clock=host.clock.now)
    assert foreign.wait_connected()
    time.sleep(0.3)
    _send_foreign(foreign, host, 0, 3)
    assert [m.payload["bpm"] for m in _collect(sub, 1.0)] == [120.0, 121.0, 122.0]
    sub.close()
    foreign.close()
    host.close()
