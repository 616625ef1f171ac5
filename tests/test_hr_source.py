"""One heart-rate source for the headline, the baseline and the alert: chosen on the host,
shown by the panel (issue 13: with two sources the big number and the alert disagreed)."""

from __future__ import annotations

import time

from vrexposure.client import ControlClient, Publisher
from vrexposure.host import SessionHost
from vrexposure.monitor import PrimaryHrSource
from vrexposure.panel.model import PanelModel


def test_the_most_trusted_source_of_the_last_30_s_unless_one_is_chosen() -> None:
    chooser = PrimaryHrSource()
    for i in range(20):
        chooser.observe(float(i), "strap", "good")
        chooser.observe(i + 0.5, "oxi", "good" if i % 4 == 0 else "uncertain")
    assert chooser.primary(20.0) == "strap"
    chooser.chosen = "oxi"
    assert chooser.primary(20.0) == "oxi"
    chooser.chosen = "gone"  # a chosen source that does not send: the best one
    assert chooser.primary(20.0) == "strap"
    chooser.chosen = None
    for i in range(31):  # the strap is lost; the oximeter goes on
        chooser.observe(21.0 + i, "oxi", "good")
    assert chooser.primary(52.0) == "oxi"
    assert chooser.primary(200.0) is None  # nothing for 30 s


def test_ties_never_flip() -> None:
    chooser = PrimaryHrSource()
    for i in range(10):
        chooser.observe(float(i), "b", "good")
        chooser.observe(float(i), "a", "good")
        assert chooser.primary(float(i)) == "a"


def test_host_reads_one_source_and_the_therapist_can_switch_it(host: SessionHost) -> None:
    strap = Publisher(host.endpoints.publish, "strap", clock=host.clock.now)
    oxi = Publisher(host.endpoints.publish, "oxi", clock=host.clock.now)
    therapist = ControlClient(host.endpoints.control, "therapist", "panel")
    patient = ControlClient(host.endpoints.control, "patient", "remote")
    try:
        assert strap.wait_connected() and oxi.wait_connected()
        for i in range(12):
            strap.publish("hr", {"bpm": 106.0, "quality": "good"})
            oxi.publish("hr", {"bpm": 72.0, "quality": "good" if i % 4 == 0 else "uncertain"})
            time.sleep(0.03)
        deadline = time.monotonic() + 5.0
        while (therapist.state()["session"].get("hr_source") != "strap"
               and time.monotonic() < deadline):
            time.sleep(0.05)
        session = therapist.state()["session"]
        assert session["hr_source"] == "strap" and session["hr_source_chosen"] is None
        assert host.monitor.last_bpm == 106.0  # the alert reads the strap only
        assert not patient.request("set_hr_source", {"source": "oxi"}).ok
        reply = therapist.send("set_hr_source", {"source": "oxi"})
        assert reply.ok and reply.result["hr_source"] == "oxi"
        for _ in range(3):
            strap.publish("hr", {"bpm": 106.0, "quality": "good"})
            oxi.publish("hr", {"bpm": 73.0, "quality": "good"})
            time.sleep(0.05)
        time.sleep(0.3)
        assert host.monitor.last_bpm == 73.0
        assert therapist.state()["session"]["hr_source"] == "oxi"
        assert not therapist.request("set_hr_source", {"source": "../x"}).ok
    finally:
        for client in (strap, oxi, therapist, patient):
            client.close()


def test_the_panel_headline_follows_the_host_source_unless_the_therapist_chose() -> None:
    model = PanelModel()
    model.state = {"session": {"hr_source": "oxi"}}
    from vrexposure.panel.model import Ring

    for name in ("strap", "oxi"):
        model.hr[name] = Ring(16)
        model.hr[name].append(1.0, 80.0, 0)
    assert model.primary_hr_source() == "oxi"
    model.primary_hr_choice = "strap"
    assert model.primary_hr_source() == "strap"


def test_the_panel_shows_no_data_of_a_source_the_host_does_not_admit() -> None:
    from vrexposure import protocol

    model = PanelModel()
    model.state = {"session": {"pending_sources": {"polar": 3}, "rejected_sources": ["old"]}}
    for source in ("polar", "old", "strap"):
        raw = protocol.encode_data(f"hr.{source}", 0, 1.0, {"bpm": 100.0, "quality": "good"})
        model.ingest(protocol.decode_data(raw), 1.0)
    assert set(model.hr) == {"strap"} and model.not_admitted_messages == 2
