"""The demo gives the SSQ before and after the session (simulated patient, autopilot)."""

from __future__ import annotations

import json
from pathlib import Path

from vrexposure.questionnaires.records import from_recording
from vrexposure.sim import questionnaire_response
from vrexposure.xdf import read_xdf


def test_demo_gives_ssq_before_and_after(demo_file: Path) -> None:
    given = from_recording(demo_file)
    assert [(a.id, a.occasion) for a in given] == [("ssq", "before_session"),
                                                   ("ssq", "after_session")]
    before, after = given
    assert all(r["by"].startswith("patient:") for a in given for r in a.answers)
    assert len(before.answers) == len(after.answers) == 16
    assert before.value("total") == 0 and after.value("total") is not None
    assert after.value("total") > before.value("total")  # a little eyestrain and fatigue
    events = [json.loads(v) for v in read_xdf(demo_file).by_name("events").values]
    kinds = [e.get("kind") for e in events if e.get("type") == "event"]
    assert kinds.index("questionnaire_scored") < kinds.index("baseline_started")
    last_scored = len(kinds) - 1 - kinds[::-1].index("questionnaire_scored")
    assert kinds.index("exposure_started") < last_scored < kinds.index("ended")


def test_simulated_answers() -> None:
    item = {"id": "eyestrain", "min": 0, "max": 3, "step": 1}
    assert questionnaire_response({"id": "ssq", "occasion": "before_session",
                                   "next_item": item}, 50) == 0
    assert questionnaire_response({"id": "ssq", "occasion": "after_session",
                                   "next_item": item}, 50) == 1
    suds = {"id": "suds", "min": 0, "max": 100, "step": 5}
    assert questionnaire_response({"id": "suds", "next_item": suds}, 42) == 40
    ipq = {"id": "SP1", "min": 0, "max": 6, "step": 1}
    assert questionnaire_response({"id": "ipq", "next_item": ipq}, 42) == 3
