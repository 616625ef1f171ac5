"""Giving questionnaires in a session: commands, roles, events, state, SSQ rise alert."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from vrexposure.hierarchy import Hierarchy, QuestionnairePlan, parse_hierarchy
from vrexposure.plugins import builtin_dir, discover_scenes
from vrexposure.state import (
    Command,
    CommandError,
    Event,
    Role,
    SessionState,
    apply,
    initial_state,
    rebuild,
    scene_target,
    state_to_dict,
)

T, P = Role.THERAPIST, Role.PATIENT
SSQ_ITEMS = ["general_discomfort", "fatigue", "headache", "eyestrain", "difficulty_focusing",
             "increased_salivation", "sweating", "nausea", "difficulty_concentrating",
             "fullness_of_head", "blurred_vision", "dizzy_eyes_open", "dizzy_eyes_closed",
             "vertigo", "stomach_awareness", "burping"]


def run(state: SessionState, name: str, now: float, role: Role = T, **args: Any
        ) -> tuple[SessionState, list[Event]]:
    return apply(state, Command(name, args, role, "test"), now)


@pytest.fixture
def planned(hierarchy: Hierarchy) -> Hierarchy:
    return replace(hierarchy, questionnaires=QuestionnairePlan(("ssq",), ("ssq", "ipq"), 20.0))


def answer_all(state: SessionState, value: int, t0: float, role: Role = P
               ) -> tuple[SessionState, list[Event]]:
    events: list[Event] = []
    for index, item in enumerate(SSQ_ITEMS):
        state, new = run(state, "questionnaire_answer", t0 + index, role, id="ssq", item=item,
                         response=value)
        events.extend(new)
    return state, events


def test_patient_answers_ssq_every_answer_is_an_event_and_it_scores_itself(
        planned: Hierarchy) -> None:
    scenes = discover_scenes()
    state = initial_state(planned)
    state, events = run(state, "questionnaire_start", 1.0, id="ssq")
    assert events[0].kind == "questionnaire_started" and events[0].data["occasion"] == \
        "before_session"
    wire = state_to_dict(state, 1.0, scenes)["questionnaire"]
    assert wire["next_item"]["id"] == "general_discomfort" and wire["answered"] == 0
    assert wire["next_item"]["anchors"] == {"0": "None", "1": "Slight", "2": "Moderate",
                                            "3": "Severe"}
    state, events = answer_all(state, 1, 2.0)
    answers = [e for e in events if e.kind == "questionnaire_answer"]
    assert [e.data["item"] for e in answers] == SSQ_ITEMS
    assert all(e.data["by"] == "patient:test" and e.data["response"] == 1 for e in answers)
    scored = [e for e in events if e.kind == "questionnaire_scored"]
    assert len(scored) == 1 and scored[0].t_s == 2.0 + 15
    assert scored[0].data["scores"]["total"]["value"] == pytest.approx(21 * 3.74)
    assert state.questionnaire is None and state.questionnaires_done[0].id == "ssq"


def test_calm_scene_while_open_and_progress_follows(planned: Hierarchy) -> None:
    scenes = discover_scenes()
    state = initial_state(planned)
    state, _ = run(state, "start_baseline", 0.0)
    state, _ = run(state, "start_exposure", 1.0)
    assert scene_target(state, scenes)[0] == "spiders"
    state, events = run(state, "questionnaire_start", 2.0, id="ipq")
    assert events[0].data["occasion"] == "after_session"
    assert scene_target(state, scenes)[0] == "calm"
    state, _ = run(state, "questionnaire_answer", 3.0, P, id="ipq", item="G1", response=4)
    state, _ = run(state, "questionnaire_answer", 3.5, P, id="ipq", item="SP1", response=None)
    wire = state_to_dict(state, 4.0, scenes)["questionnaire"]
    assert (wire["answered"], wire["visited"], wire["next_item"]["id"]) == (1, 2, "SP2")
    state, _ = run(state, "questionnaire_pause", 4.0, P, id="ipq", paused=True)
    assert state_to_dict(state, 4.0, scenes)["questionnaire"]["paused"] is True


def test_finish_early_records_the_rest_as_unanswered_never_a_default(
        planned: Hierarchy) -> None:
    state = initial_state(planned)
    state, _ = run(state, "questionnaire_start", 1.0, id="ssq")
    state, _ = run(state, "questionnaire_answer", 2.0, P, id="ssq", item="nausea", response=2)
    state, events = run(state, "questionnaire_finish", 3.0, id="ssq")
    unanswered = [e for e in events if e.kind == "questionnaire_answer"]
    assert len(unanswered) == 15
    assert all(e.data["response"] is None and e.data["answered"] is False for e in unanswered)
    scored = events[-1]
    assert scored.kind == "questionnaire_scored"
    assert scored.data["scores"]["total"]["value"] is None
    assert scored.data["n_answered"] == 1 and len(scored.data["unanswered"]) == 15


def test_roles_and_bad_input(planned: Hierarchy) -> None:
    state = initial_state(planned)
    with pytest.raises(CommandError, match="may not send"):
        run(state, "questionnaire_start", 1.0, P, id="ssq")
    with pytest.raises(CommandError, match="no questionnaire is open"):
        run(state, "questionnaire_answer", 1.0, P, id="ssq", item="nausea", response=1)
    with pytest.raises(CommandError, match="no questionnaire 'nope'"):
        run(state, "questionnaire_start", 1.0, id="nope")
    with pytest.raises(CommandError, match="scoring only"):
        run(state, "questionnaire_start", 1.0, id="fsq")
    state, _ = run(state, "questionnaire_start", 1.0, id="ssq")
    with pytest.raises(CommandError, match="still open"):
        run(state, "questionnaire_start", 1.0, id="ipq")
    with pytest.raises(CommandError, match="not on the scale"):
        run(state, "questionnaire_answer", 2.0, P, id="ssq", item="nausea", response=7)
    with pytest.raises(CommandError, match="needs 'response'"):
        run(state, "questionnaire_answer", 2.0, P, id="ssq", item="nausea")
    with pytest.raises(CommandError, match="may not send"):
        run(state, "questionnaire_finish", 2.0, P, id="ssq")
    with pytest.raises(CommandError, match="may not send"):
        run(state, "questionnaire_answer", 2.0, Role.OBSERVER, id="ssq", item="nausea",
            response=1)


def test_ssq_rise_above_threshold_is_a_cybersickness_alert(planned: Hierarchy) -> None:
    state = initial_state(planned)
    state, _ = run(state, "questionnaire_start", 1.0, id="ssq")
    state, _ = answer_all(state, 0, 2.0)
    state, _ = run(state, "start_baseline", 20.0)
    state, _ = run(state, "start_exposure", 21.0)
    state, _ = run(state, "questionnaire_start", 30.0, id="ssq")
    state, events = answer_all(state, 1, 31.0)  # total 21 × 3.74 = 78.54 > 20
    alert = [e for e in events if e.kind == "alert"]
    assert len(alert) == 1 and alert[0].data["alert"] == "cybersickness"
    assert alert[0].data["rise"] == pytest.approx(78.54)
    assert "end the exposure" in alert[0].data["suggestion"]
    assert "cybersickness" in state.alerts_active
    # A rise below the threshold is no alert.
    calm = replace(planned, questionnaires=QuestionnairePlan(("ssq",), ("ssq",), 100.0))
    s2 = initial_state(calm)
    s2, _ = run(s2, "questionnaire_start", 1.0, id="ssq")
    s2, _ = answer_all(s2, 0, 2.0)
    s2, _ = run(s2, "questionnaire_start", 30.0, id="ssq")
    s2, events = answer_all(s2, 1, 31.0)
    assert not [e for e in events if e.kind == "alert"]


def test_ending_the_session_scores_the_open_form(planned: Hierarchy) -> None:
    state = initial_state(planned)
    state, _ = run(state, "questionnaire_start", 1.0, id="ipq")
    state, _ = run(state, "questionnaire_answer", 2.0, P, id="ipq", item="G1", response=5)
    state, events = run(state, "end", 3.0)
    assert [e.kind for e in events][-2:] == ["questionnaire_scored", "ended"]
    assert sum(e.kind == "questionnaire_answer" for e in events) == 13
    assert state.questionnaire is None and state.questionnaires_done[-1].value("general") == 5


def test_state_rebuilds_from_the_recorded_events(planned: Hierarchy) -> None:
    state = initial_state(planned)
    log: list[Event] = []
    for name, role, args in [("questionnaire_start", T, {"id": "ssq"}),
                             ("questionnaire_answer", P, {"item": "nausea", "response": 2}),
                             ("questionnaire_answer", T, {"item": "vertigo", "response": 1})]:
        state, events = run(state, name, 1.0, role, **args)
        log.extend(events)
    again = rebuild(planned, [Event.from_dict(e.to_dict()) for e in log])
    assert again.questionnaire is not None
    assert dict(again.questionnaire.answers) == {"nausea": 2, "vertigo": 1}
    assert again.questionnaire.definition == state.questionnaire.definition  # type: ignore


HIER = (builtin_dir("hierarchies") / "arachnophobia.yaml").read_text()


def test_hierarchy_questionnaire_plan_is_validated_with_lines() -> None:
    good, problems = parse_hierarchy(
        HIER + "questionnaires: {before: [ssq], after: [ssq, ipq], ssq_rise_alert: 25}\n",
        "h.yaml")
    assert good is not None, problems
    assert good.questionnaires == QuestionnairePlan(("ssq",), ("ssq", "ipq"), 25.0)
    n = HIER.count("\n")
    bad_text = HIER + ("questionnaires:\n  before: [sqq]\n  after: [fsq]\n"
                       "  ssq_rise_alert: 30\n  every: 2\n")
    bad, problems = parse_hierarchy(bad_text, "h.yaml")
    assert bad is None
    text = "\n".join(str(p) for p in problems)
    assert f"h.yaml:{n + 2}: error: no questionnaire 'sqq' (did you mean 'ssq'?)" in text
    assert f"h.yaml:{n + 3}: warning: questionnaire 'fsq' ships as scoring only" in text
    assert f"h.yaml:{n + 4}: error: 'ssq_rise_alert' compares the SSQ" in text
    assert f"h.yaml:{n + 5}: error: unknown field 'every'" in text


def test_host_gives_the_clinic_licensed_copy(hierarchy: Hierarchy, tmp_path: Any) -> None:
    import re
    import time as _time

    from vrexposure.client import ControlClient
    from vrexposure.config import load_config
    from vrexposure.host import HostError, SessionHost
    from vrexposure.plugins import builtin_dir as _builtin_dir

    from .conftest import free_endpoints

    clinic = tmp_path / "clinic"
    clinic.mkdir()
    text = (_builtin_dir("questionnaires") / "fsq.yaml").read_text()
    text = text.replace("item_text: licensed", "item_text: included").replace(
        "scale: {min: 0, max: 6}", "scale: {min: 0, max: 6, anchors: {0: low, 6: high}}")
    (clinic / "fsq.yaml").write_text(re.sub(r"\{id: (fsq\d\d)\}", r"{id: \1, text: 'text \1'}",
                                            text))
    config = load_config(overrides={"questionnaires": {"dirs": [str(clinic)]}})
    host = SessionHost(hierarchy, "P001", free_endpoints(), config,
                       recording_dir=tmp_path / "s").start()
    try:
        therapist = ControlClient(host.endpoints.control, "therapist", "panel")
        _time.sleep(0.1)
        reply = therapist.send("questionnaire_start", {"id": "fsq"})
        assert reply.ok and therapist.state()["questionnaire"]["next_item"]["text"] == \
            "text fsq01"
        therapist.close()
    finally:
        host.close()
    (clinic / "broken.yaml").write_text("id: x\nitems: 3\n")
    with pytest.raises(HostError, match=r"broken.yaml:\d+: error"):
        SessionHost(hierarchy, "P001", free_endpoints(), config, recording_dir=tmp_path / "s2")
    assert not (tmp_path / "s2").exists()  # refused before any recording was made


def test_every_questionnaire_event_reaches_consumers_intact(host: Any) -> None:
    """Consumers decode maps with text keys only: the started event's definition (anchors
    keyed by response value) once reached no panel (found in the demo's log)."""
    import time as _time

    from vrexposure.client import ControlClient, Subscriber

    sub = Subscriber(host.endpoints, topics=("event",), data=False)
    therapist = ControlClient(host.endpoints.control, "therapist", "panel")
    try:
        _time.sleep(0.3)  # the subscription reaches the host
        assert therapist.send("questionnaire_start", {"id": "ssq"}).ok
        kinds = []
        deadline = _time.monotonic() + 5.0
        while "questionnaire_started" not in kinds and _time.monotonic() < deadline:
            message = sub.recv(0.2)
            if message is not None:
                kinds.append(message.payload.get("kind"))
        assert "questionnaire_started" in kinds
        assert not sub.rejected, dict(sub.rejected)
    finally:
        sub.close()
        therapist.close()
