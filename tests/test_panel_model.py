"""The panel's model, without Qt: ingest real message payloads, drive time explicitly."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from vrexposure import protocol
from vrexposure.hierarchy import Hierarchy, load_hierarchy
from vrexposure.panel.model import (
    BAD,
    GOOD,
    UNCERTAIN,
    Link,
    PanelModel,
    Ring,
    command_label,
    describe_event,
    describe_reason,
    format_bytes,
    format_duration,
    intensity_effect,
    rmssd_ms,
)
from vrexposure.plugins import discover_scenes
from vrexposure.protocol import DataMessage
from vrexposure.state import Command, Phase, SessionState, apply, initial_state, state_to_dict

from .conftest import HIERARCHIES

SCENES = discover_scenes()


@pytest.fixture(scope="module")
def hier() -> Hierarchy:
    return load_hierarchy(HIERARCHIES / "arachnophobia.yaml")


def state_message(state: SessionState, t_s: float, session_id: str = "s1",
                  **session: Any) -> DataMessage:
    """A ``state`` message exactly as the host publishes it (via the wire encoding)."""
    payload = state_to_dict(state, t_s, SCENES)
    payload["session"] = {"session_id": session_id, "patient_id": "P001", "t_s": t_s,
                          "recording": "/tmp/sessions/P001_x.xdf", "recording_bytes": 12_345,
                          "recording_error": None, "controller": "panel",
                          "controller_connected": True, "data_rejected": 0,
                          "commands_rejected": 0, **session}
    return protocol.decode_data(protocol.encode_data("state", 0, t_s, payload))


def data(topic: str, t_s: float, payload: dict[str, Any], seq: int = 0) -> DataMessage:
    return protocol.decode_data(protocol.encode_data(topic, seq, t_s, payload))


def run(state: SessionState, name: str, t_s: float, **args: Any) -> SessionState:
    return apply(state, Command(name, args), t_s)[0]


def exposure_state(hier: Hierarchy, t_s: float = 10.0) -> SessionState:
    return run(initial_state(hier), "start_exposure", t_s)


# --- ring buffers and helpers ----------------------------------------------------------

def test_ring_keeps_the_newest_samples_in_order() -> None:
    ring = Ring(5)
    assert len(ring) == 0 and ring.last() is None
    for i in range(3):
        ring.append(float(i), 10.0 * i, UNCERTAIN if i == 1 else GOOD)
    t, v, q = ring.arrays()
    assert t.tolist() == [0, 1, 2] and v.tolist() == [0, 10, 20] and q.tolist() == [0, 1, 0]
    ring.extend(np.arange(3, 9, dtype=float), np.arange(30, 90, 10, dtype=float))
    t, v, _ = ring.arrays()
    assert t.tolist() == [4, 5, 6, 7, 8] and v.tolist() == [40, 50, 60, 70, 80]
    assert ring.total == 9 and ring.last() == (8.0, 80.0, GOOD)
    assert ring.arrays(since_t_s=6.5)[0].tolist() == [7, 8]
    ring.extend(np.arange(100, 112, dtype=float), np.zeros(12))  # more than fits at once
    assert ring.arrays()[0].tolist() == [107, 108, 109, 110, 111] and ring.total == 21


def test_rmssd_matches_the_definition_and_leaves_out_artefacts() -> None:
    rr = [800.0, 810.0, 790.0, 805.0, 795.0]
    expected = float(np.sqrt(np.mean(np.diff(rr) ** 2)))
    assert rmssd_ms(rr) == pytest.approx(expected)
    # a missed beat (1600 ms) makes two jumps of about 100 %: both are left out
    assert rmssd_ms([*rr, 1600.0, 800.0, 810.0]) == pytest.approx(
        float(np.sqrt(np.mean(np.array([10, -20, 15, -10, 10]) ** 2))))
    assert rmssd_ms([800.0, 810.0]) is None


def test_formatting_for_the_screen() -> None:
    assert format_duration(75.4) == "1:15" and format_duration(3725) == "1:02:05"
    assert format_duration(None) == "–:––"
    assert format_bytes(950) == "950 B" and format_bytes(12_345_678) == "12.3 MB"
    assert command_label("intensity", {"value": 0.6}) == "intensity 60 %"
    assert command_label("jump", {"step": 4}) == "jump to step 5"
    assert command_label("stop", {}) == "STOP"


# --- state ------------------------------------------------------------------------------

def test_state_gives_the_hierarchy_suds_per_step_and_the_clock(hier: Hierarchy) -> None:
    model = PanelModel("panel")
    state = exposure_state(hier)
    state = run(state, "suds", 12.0, value=40)
    state = run(state, "next", 13.0)
    state = run(state, "suds", 14.0, value=55)
    state = run(state, "suds", 15.0, value=45)
    model.ingest(state_message(state, 20.0), now_s=100.0)
    assert "state" in model.take_dirty()
    steps = model.steps()
    assert len(steps) == 10 and steps[0]["label"] == hier.steps[0].label
    assert [s["expected_suds"] for s in steps] == [s.expected_suds for s in hier.steps]
    assert model.suds_by_step() == {0: [40], 1: [55, 45]}
    assert model.session_time(101.5) == pytest.approx(21.5)
    assert model.time_in_step(101.0) == pytest.approx(8.0)
    assert model.is_controller()
    assert model.host_link(102.9) == Link.OK
    assert model.host_link(103.1) == Link.LOST
    # once lost, the clock does not run on as if nothing happened
    assert model.session_time(200.0) == pytest.approx(23.0)
    assert any("Connected to session" in e.text for e in model.log)


def test_a_restarted_host_is_accepted_and_said(hier: Hierarchy) -> None:
    model = PanelModel("panel")
    later = run(run(exposure_state(hier), "next", 11.0), "next", 12.0)
    model.ingest(state_message(later, 30.0), 1.0)
    model.ingest(data("hr.sim", 29.0, {"bpm": 80.0, "quality": "good"}), 1.0)
    earlier = exposure_state(hier)
    assert earlier.seq < later.seq
    model.ingest(state_message(earlier, 31.0), 2.0)  # same session, seq went back (resumed host)
    assert model.state is not None and model.state["seq"] == earlier.seq
    assert model.state["step_index"] == 0 and model.host_restarts == 1
    assert any("sequence went back" in e.text for e in model.log)
    assert len(model.hr["sim"]) == 1  # same session: the plot is kept
    model.ingest(state_message(initial_state(hier), 0.5, session_id="s2"), 3.0)
    assert model.session_id == "s2" and model.host_restarts == 2
    assert model.state is not None and model.state["phase"] == "idle"
    assert model.hr == {}  # a new session's clock starts again: old samples are dropped
    assert any("new session" in e.text for e in model.log)


# --- data streams ---------------------------------------------------------------------

def test_heart_rate_with_quality_and_the_baseline_band(hier: Hierarchy) -> None:
    model = PanelModel()
    state = run(initial_state(hier), "start_baseline", 1.0)
    state = run(state, "complete_baseline", 5.0, mean_bpm=70.0, sd_bpm=4.0, n_values=60)
    model.ingest(state_message(state, 6.0), 1.0)
    for i, quality in enumerate(["good", "uncertain", "bad", "good"]):
        model.ingest(data("hr.polar1", 6.0 + i, {"bpm": 70.0 + i, "quality": quality}), 1.0)
    t, _, q = model.hr["polar1"].arrays()
    assert t.tolist() == [6, 7, 8, 9] and q.tolist() == [GOOD, UNCERTAIN, BAD, GOOD]
    assert model.latest_hr() == ("polar1", 9.0, 73.0, GOOD)
    # the host's state carries the hierarchy's threshold: max(20 bpm, 3 SD) above the mean
    assert model.baseline_band() == (70.0, 50.0, 90.0, True)
    model.ingest(data("alert", 10.0, {"kind": "alert", "t_s": 10.0, "alert": "hr_above_baseline",
                                      "value_bpm": 100.0, "threshold_bpm": 95.0,
                                      "sustained_s": 15.0}), 2.0)
    assert model.baseline_band() == (70.0, 45.0, 95.0, True)
    assert model.alerts[-1].text == ("Heart rate above the patient's baseline: 100 bpm > 95 bpm "
                                     "for 15 s")
    assert model.log[-1].level == "alert"


def test_rr_intervals_give_hrv(hier: Hierarchy) -> None:
    model = PanelModel()
    model.ingest(state_message(exposure_state(hier), 10.0), 1.0)
    rr = [800.0, 820.0, 790.0, 810.0, 805.0, 815.0]
    model.ingest(data("rr.sim", 10.0, {"rr_ms": rr[:3], "quality": "good"}), 1.0)
    model.ingest(data("rr.sim", 12.4, {"rr_ms": rr[3:], "quality": "good"}), 1.0)
    t, values, _ = model.rr["sim"].arrays()
    assert values.tolist() == rr
    assert t[-1] == pytest.approx(12.4) and t[-2] == pytest.approx(12.4 - 0.815)
    assert t[2] == pytest.approx(10.0)
    value, n = model.hrv()
    assert n == 6 and value == pytest.approx(rmssd_ms(rr))
    model.ingest(data("rr.sim", 13.0, {"rr_ms": [400.0], "quality": "bad"}), 1.0)
    assert len(model.rr["sim"]) == 6  # untrusted intervals stay out of HRV


def test_ecg_chunks_fill_a_ten_second_ring() -> None:
    model = PanelModel(ecg_seconds=10.0)
    for k in range(600):  # 12 s of 20-sample chunks at 1 kHz
        values = np.full(20, float(k), dtype=np.float32)
        model.ingest(data("ecg.sim", k * 0.02, protocol.chunk_payload(values, 1000.0, "mV")),
                     1.0)
    t, v, _ = model.ecg["sim"].arrays()
    assert t.size == 10_000
    assert t[-1] == pytest.approx(599 * 0.02 + 0.019) and v[-1] == 599.0
    assert np.all(np.diff(t) > 0)
    assert "ecg" in model.take_dirty()


def test_look_away_share_counts_exposure_time_per_step_visit(hier: Hierarchy) -> None:
    model = PanelModel()
    state = exposure_state(hier, 10.0)
    model.ingest(state_message(state, 10.0), 100.0)

    def pose(t: float, away: bool, source: str = "sim", now: float = 100.0) -> None:
        model.ingest(data(f"pose.{source}", t, {"pos": [0, 0, 1.2], "quat": [1, 0, 0, 0],
                                                "yaw_deg": 60.0 if away else 0.0,
                                                "look_angle_deg": 60.0 if away else 2.0,
                                                "looking_away": away}), now)

    for i in range(101):  # 10 s at 10 Hz, looking away for the 3 s in the middle
        pose(10.0 + i / 10, 13.0 <= 10.0 + i / 10 < 16.0)
    index, share = model.current_look_away() or (None, None)
    assert index == 0 and share is not None
    assert share.total_s == pytest.approx(10.0) and share.share == pytest.approx(0.3, abs=0.011)
    pose(40.0, True)  # after a gap of 20 s: not counted
    assert share.total_s == pytest.approx(10.0)
    # a new visit of the step starts again from zero
    model.ingest(data("event", 41.0, {"kind": "step_changed", "t_s": 41.0, "from": 0, "to": 1,
                                      "reason": "next", "by": "therapist:panel"}), 101.0)
    pose(41.1, True)
    pose(41.6, True)
    index, share = model.current_look_away() or (None, None)
    assert index == 1 and share is not None and share.share == pytest.approx(1.0)
    assert model.look_away[0].share == pytest.approx(0.3, abs=0.011)
    # not counted outside exposure (the patient sees the calm scene)
    state = run(run(state, "next", 41.0), "pause", 42.0)
    model.ingest(state_message(state, 42.0), 102.0)
    pose(42.1, False)
    pose(42.5, False)
    assert share.share == pytest.approx(1.0)
    # the headset's pose (from the renderer) counts rather than any other source
    pose(43.0, False, source="head", now=103.0)
    assert model.pose_source(103.5) == "head"
    pose(46.5, False, now=106.5)
    assert model.pose_source(107.0) == "sim"  # the head pose went silent


def test_sources_are_lost_after_three_silent_seconds(hier: Hierarchy) -> None:
    model = PanelModel()
    model.ingest(state_message(exposure_state(hier), 10.0), 100.0)
    assert model.renderer_link(100.0) == Link.NOT_SEEN
    model.ingest(data("preview.main", 10.0, {"jpeg": b"\xff\xd8jpeg", "width_px": 320,
                                             "height_px": 180, "frame": 7}), 100.0)
    model.ingest(data("render.main", 10.0, {"fps": 90.0, "frame_ms_p99": 12.0,
                                            "failsafe": True}), 100.0)
    model.ingest(data("sensor.polar1", 10.0, {"event": "status", "connected": True,
                                              "frames_ok": 10}), 100.0)
    model.ingest(data("hr.polar1", 10.0, {"bpm": 70.0}), 100.0)
    assert model.preview is not None and model.preview.frame == 7
    assert model.renderer_link(102.9) == Link.OK
    assert model.renderer_link(103.1) == Link.LOST
    sensor = model.sources["polar1"]
    assert sensor.role == "sensor" and sensor.counts == {"sensor": 1, "hr": 1}
    assert sensor.link(103.0) == Link.OK and sensor.link(103.1) == Link.LOST
    assert any("failsafe" in e.text for e in model.log)
    model.ingest(data("sensor.polar1", 11.0, {"event": "disconnected", "port": "/dev/rfcomm0"}),
                 101.0)
    assert sensor.link(101.0) == Link.DISCONNECTED
    assert model.log[-1].level == "error" and "disconnected" in model.log[-1].text
    model.ingest(data("sensor.polar1", 12.0, {"event": "connected"}), 105.0)
    assert sensor.link(105.0) == Link.OK
    assert "back after" in model.log[-2].text


def test_a_source_with_an_unsynchronised_clock_is_flagged(hier: Hierarchy) -> None:
    model = PanelModel()
    model.ingest(state_message(exposure_state(hier), 10.0), 100.0)
    model.ingest(data("hr.bad", 3000.0, {"bpm": 70.0}), 100.0)
    model.ingest(data("hr.fine", 10.2, {"bpm": 70.0}), 100.0)
    assert model.sources["bad"].clock_skew_s == pytest.approx(2990.0)
    assert model.sources["fine"].clock_skew_s == pytest.approx(0.2)


def test_malformed_payloads_are_counted_not_raised(hier: Hierarchy) -> None:
    model = PanelModel()
    model.ingest(data("preview.main", 1.0, {"width_px": 320}), 1.0)
    model.ingest(data("state", 1.0, {"phase": "exposure"}), 1.0)  # no seq
    assert model.rejected_messages == 2
    assert model.state is None and model.preview is None
    assert all(e.level == "warn" for e in model.log if "malformed" in e.text)


def test_expectancies_markers_and_the_timeline(hier: Hierarchy) -> None:
    model = PanelModel()
    state = exposure_state(hier)
    model.ingest(state_message(state, 10.0), 1.0)
    model.ingest(data("event", 11.0, {"kind": "expectancy_recorded", "t_s": 11.0,
                                      "step_index": 0, "outcome": "It gets out",
                                      "likelihood_pct": 70}), 1.0)
    assert model.open_expectancy() is not None
    model.ingest(data("event", 12.0, {"kind": "expectancy_outcome", "t_s": 12.0,
                                      "step_index": 0, "outcome": "It gets out",
                                      "happened": False, "expectancy_index": 0}), 1.0)
    assert model.open_expectancy() is None
    assert model.log[-1].text == "Outcome: “It gets out” did not happen"
    model.ingest(data("event", 13.0, {"kind": "marker", "t_s": 13.0, "text": "breathing fast",
                                      "by": "therapist:panel"}), 1.0)
    assert model.timeline[-1] == (13.0, "marker", "breathing fast")


# --- commands ---------------------------------------------------------------------------

def test_every_command_gets_its_answer_logged() -> None:
    model = PanelModel()
    model.command_sent("a", "next", {}, 1.0)
    assert model.pending("next")
    model.command_answered("a", True, "", 12, ["step_changed"], 1.02)
    assert model.log[-1].text == "✓ next step: acknowledged by the host (step changed)"
    model.command_sent("b", "previous", {}, 2.0)
    model.command_answered("b", False, "already at the first step", 12, [], 2.01)
    assert model.log[-1].level == "error"
    assert model.log[-1].text.endswith("refused by the host: already at the first step")
    model.command_sent("c", "suds", {"value": 40}, 3.0)
    model.command_unreachable("c", "no answer within 3 s", 6.0)
    assert "may not have been applied" in model.log[-1].text
    assert not model.pending("suds")


def test_stop_shows_waiting_then_acknowledged() -> None:
    model = PanelModel()
    assert model.stop_status() is None
    model.command_sent("s", "stop", {"reason": "STOP"}, 1.0)
    model.command_unreachable("s", "no acknowledgement after 1 s", 2.0, still_trying=True)
    record = model.stop_status()
    assert record is not None and record.status == "pending" and record.attempts_s == 1.0
    model.command_answered("s", True, "", 3, ["stopped"], 2.5)
    assert record.status == "ok" and record.answered_s == 2.5


def test_latency_probes_of_plotted_samples() -> None:
    model = PanelModel()
    model.ingest(data("hr.bench", 1.0, {"bpm": 70.0, "sent_ns": 5_000_000_000}), 5.004)
    model.ingest(data("pose.bench", 1.0, {"pos": [0, 0, 0], "quat": [1, 0, 0, 0],
                                          "sent_ns": 1}), 5.004)
    assert model.take_probes() == [5_000_000_000] and model.take_probes() == []
    assert list(model.ingest_latency_ms) == [pytest.approx(4.0)]


def test_descriptions_a_therapist_can_read(hier: Hierarchy) -> None:
    assert describe_reason({"reason": "suds_drop", "detail": {
        "peak_suds": 60, "last_suds": 25, "drop_pct": 58.3}}) == \
        "SUDS fell from a peak of 60 to 25 (58.3 % drop)"
    assert describe_reason({"reason": "time_cap", "detail": {
        "time_in_step_s": 905.0, "max_time_in_step_s": 900.0}}) == \
        "15:05 in this step (cap 15:00)"
    assert describe_event({"kind": "step_changed", "from": 2, "to": 3, "reason": "next",
                           "by": "therapist:panel"}) == "Step 3 → 4 (next) (therapist:panel)"
    assert describe_event({"kind": "stopped", "reason": "STOP"}) == "STOP: calm scene"
    state = replace(exposure_state(hier), phase=Phase.SAFE)
    assert state.phase == Phase.SAFE


# --- status lines that tell the host's truth (issue 13, item 6) --------------------------

def test_stop_line_says_when_and_who_from_the_event_and_clears_after_resume(
        hier: Hierarchy) -> None:
    model = PanelModel("panel")
    state = exposure_state(hier)
    model.ingest(state_message(state, 10.0), 100.0)
    assert model.stop_line(100.0) == ("not pressed this session", "idle")
    safe = run(state, "stop", 12.0)
    model.ingest(data("event", 12.0, {"kind": "stopped", "t_s": 12.0, "by": "patient:sim",
                                      "reason": "patient STOP", "already_safe": False}), 130.0)
    model.ingest(state_message(safe, 42.0), 130.0)
    # the STOP's own time (0:12), not the time the panel heard of it (0:42)
    assert model.stop_line(130.0) == ("✓ STOPPED at 0:12 by the patient", "ok")
    # a second STOP while safe keeps the first one's time
    model.ingest(data("event", 20.0, {"kind": "stopped", "t_s": 20.0, "by": "therapist:ctl",
                                      "already_safe": True}), 131.0)
    assert model.stop_line(131.0)[0] == "✓ STOPPED at 0:12 by the patient"
    model.ingest(data("event", 50.0, {"kind": "resumed", "t_s": 50.0, "to": "exposure",
                                      "by": "therapist:ctl"}), 140.0)
    model.ingest(state_message(run(safe, "resume", 50.0), 50.0), 140.0)
    assert model.stop_line(140.0) == ("last STOP at 0:12 by the patient, resumed at 0:50",
                                      "idle")  # no longer green
    command = model.command_sent("c1", "stop", {}, 141.0)
    assert model.stop_line(141.0)[1] == "pending"
    model.ingest(data("event", 55.0, {"kind": "stopped", "t_s": 55.0, "by": "therapist:panel",
                                      "already_safe": False}), 141.05)
    model.ingest(state_message(run(run(safe, "resume", 50.0), "stop", 55.0), 55.0), 141.05)
    model.command_answered(command.id, True, "", None, ["stopped"], 141.05)
    text, level = model.stop_line(141.1)
    assert text == "✓ STOPPED at 0:55 by this panel, acknowledged in 50 ms" and level == "ok"


def test_paused_says_why_and_who(hier: Hierarchy) -> None:
    model = PanelModel("panel")
    state = exposure_state(hier)
    model.ingest(state_message(state, 10.0), 100.0)
    assert model.pause_text() == ""
    model.ingest(data("event", 15.0, {"kind": "paused", "t_s": 15.0, "by": "host:host",
                                      "reason": "controller_lost"}), 105.0)
    model.ingest(state_message(run(state, "pause", 15.0), 15.0), 105.0)
    assert model.pause_text() == ("paused by the host at 0:15: the controlling panel fell "
                                  "silent")


def test_a_frozen_panel_blames_itself_not_the_host(hier: Hierarchy) -> None:
    model = PanelModel("panel")
    state = exposure_state(hier)
    model.ingest(state_message(state, 10.0), 100.0)
    model.panel_stalled(8.0, 108.0)  # the GUI thread did not run for 8 s
    model.ingest(state_message(state, 18.0), 108.1)
    texts = [e.text for e in model.log]
    assert any("This panel did not respond for 8.0 s" in t for t in texts)
    assert not any(t.startswith("Host back") for t in texts)
    model.ingest(state_message(state, 30.0), 120.0)  # a real host silence is still said
    assert model.log[-1].text.startswith("Host back after")


def test_headline_is_one_primary_source_not_whichever_sent_last(hier: Hierarchy) -> None:
    model = PanelModel()
    model.ingest(state_message(exposure_state(hier), 10.0), 1.0)
    # a chest strap (good) and an oximeter (mostly uncertain), sending in turn
    for i in range(20):
        model.ingest(data("hr.strap", 10.0 + i, {"bpm": 106.0, "quality": "good"}), 1.0)
        model.ingest(data("hr.oxi", 10.5 + i, {"bpm": 72.0, "quality":
                                              "good" if i % 4 == 0 else "uncertain"}), 1.0)
        assert model.latest_hr() is not None
        if i >= 2:
            assert model.latest_hr()[0] == "strap"  # type: ignore[index]
    assert model.hr_good_count("strap") > model.hr_good_count("oxi")
    model.primary_hr_choice = "oxi"  # the config or the therapist names it
    assert model.latest_hr() == ("oxi", 29.5, 72.0, UNCERTAIN)
    model.primary_hr_choice = "gone"  # a named source that is not there: the best one
    assert model.primary_hr_source() == "strap"
    # the strap is lost: after 30 s without values the oximeter is the better source
    for i in range(31):
        model.ingest(data("hr.oxi", 31.0 + i, {"bpm": 75.0, "quality": "good"}), 1.0)
    assert model.primary_hr_source() == "oxi"


def test_intensity_effect_from_the_hierarchy_and_a_reset_is_said(hier: Hierarchy) -> None:
    model = PanelModel()
    state = run(exposure_state(hier), "next", 11.0)
    state = run(state, "intensity", 12.0, value=0.5)
    model.ingest(state_message(state, 12.0), 1.0)
    step = model.steps()[1]
    assert intensity_effect(step) == "distance 1.6 → 0.9 m"
    assert intensity_effect(step, 0.5) == "distance 1.6 → 0.9 m (now 1.2 m)"
    assert intensity_effect({"intensity": {"speed_cm_s": [2, 6], "count": [1, 3]}}) == (
        "count 1 → 3; speed 2 → 6 cm/s")
    assert intensity_effect({"intensity": {}}) == "changes nothing at this step"
    model.ingest(data("event", 13.0, {"kind": "step_changed", "t_s": 13.0, "from": 1,
                                      "to": 2, "reason": "next"}), 1.1)
    assert any(e.text.startswith("Intensity reset to 0 % for step 3") for e in model.log)


def test_a_suds_reminder_after_the_hierarchys_interval(hier: Hierarchy) -> None:
    from dataclasses import replace as _replace

    timed = _replace(hier, advance_rule=_replace(hier.advance_rule, suds_interval_s=120.0))
    model = PanelModel()
    state = exposure_state(timed)  # exposure from t = 10 s
    model.ingest(state_message(state, 100.0), 1000.0)
    model.ingest(data("event", 10.0, {"kind": "exposure_started", "t_s": 10.0,
                                      "step_index": 0}), 1000.0)
    assert model.suds_reminder(1000.0) == ""  # 90 s in: not yet
    model.ingest(state_message(state, 140.0), 1040.0)
    assert model.suds_reminder(1040.0).startswith("No SUDS for 2:10 (the hierarchy asks "
                                                  "every 2:00)")
    model.ingest(data("event", 141.0, {"kind": "suds_requested", "t_s": 141.0,
                                       "step_index": 0}), 1041.0)
    assert model.suds_reminder(1041.0) == ""
