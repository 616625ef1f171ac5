from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vrexposure.hierarchy import Hierarchy
from vrexposure.plugins import discover_scenes
from vrexposure.state import (
    Command,
    CommandError,
    Event,
    Phase,
    Role,
    SessionState,
    apply,
    initial_state,
    rebuild,
    scene_target,
    state_to_dict,
)

T = Role.THERAPIST


def run(state: SessionState, name: str, now: float, role: Role = T, **args: Any
        ) -> tuple[SessionState, list[Event]]:
    return apply(state, Command(name, args, role, "test"), now)


def in_exposure(hierarchy: Hierarchy, now: float = 10.0) -> SessionState:
    state = initial_state(hierarchy)
    state, _ = run(state, "start_baseline", 0.0)
    state, _ = run(state, "complete_baseline", 2.0, mean_bpm=70.0, sd_bpm=4.0, n_values=60)
    state, _ = run(state, "start_exposure", now)
    return state


def test_happy_path_phases_and_scene(hierarchy: Hierarchy) -> None:
    scenes = discover_scenes()
    state = initial_state(hierarchy)
    assert scene_target(state, scenes)[0] == "calm"
    state, events = run(state, "start_baseline", 0.0)
    assert state.phase == Phase.BASELINE and [e.kind for e in events] == ["baseline_started"]
    state, _ = run(state, "complete_baseline", 2.0, mean_bpm=70.0, sd_bpm=4.0, n_values=60)
    assert state.baseline is not None and state.baseline.mean_bpm == 70.0
    state, _ = run(state, "start_exposure", 3.0)
    assert state.phase == Phase.EXPOSURE and state.step_index == 0
    scene, params = scene_target(state, scenes)
    assert scene == "spiders" and params["distance_m"] == 2.0  # intensity 0 = range start
    state, _ = run(state, "intensity", 4.0, value=1.0)
    assert scene_target(state, scenes)[1]["distance_m"] == 1.5
    state, _ = run(state, "next", 5.0)
    assert state.step_index == 1 and state.intensity == 0.0 and state.step_since_s == 5.0
    state, _ = run(state, "previous", 6.0)
    state, _ = run(state, "jump", 7.0, step="approach")
    assert state.step_index == 7 and state.highest_step == 7
    state, _ = run(state, "pause", 8.0)
    assert state.phase == Phase.PAUSED and scene_target(state, scenes)[0] == "calm"
    state, _ = run(state, "resume", 9.0)
    assert state.phase == Phase.EXPOSURE
    state, _ = run(state, "end", 10.0)
    assert state.phase == Phase.ENDED
    with pytest.raises(CommandError, match="ended"):
        run(state, "next", 11.0)


@pytest.mark.parametrize("phase_setup", ["idle", "baseline", "exposure", "paused", "safe"])
@pytest.mark.parametrize("role", [Role.THERAPIST, Role.PATIENT])
def test_stop_works_from_every_phase_and_is_logged(hierarchy: Hierarchy, phase_setup: str,
                                                   role: Role) -> None:
    state = initial_state(hierarchy)
    if phase_setup != "idle":
        state, _ = run(state, "start_baseline", 0.0)
    if phase_setup in ("exposure", "paused", "safe"):
        state, _ = run(state, "start_exposure", 1.0)
    if phase_setup == "paused":
        state, _ = run(state, "pause", 2.0)
    if phase_setup == "safe":
        state, _ = run(state, "stop", 2.0)
    before = state.stop_count
    state, events = run(state, "stop", 3.0, role=role)
    assert state.phase == Phase.SAFE
    assert state.stop_count == before + 1
    assert [e.kind for e in events] == ["stopped"]
    assert events[0].data["by"] == f"{role.value}:test"
    assert scene_target(state, discover_scenes())[0] == "calm"


def test_safe_resumes_to_exposure_or_pause(hierarchy: Hierarchy) -> None:
    state = in_exposure(hierarchy)
    state, _ = run(state, "intensity", 11.0, value=0.5)
    safe, _ = run(state, "stop", 12.0, role=Role.PATIENT)
    with pytest.raises(CommandError, match="may not send 'resume'"):
        run(safe, "resume", 13.0, role=Role.PATIENT)
    resumed, _ = run(safe, "resume", 13.0)
    assert resumed.phase == Phase.EXPOSURE and resumed.step_index == 0
    assert resumed.intensity == 0.5
    paused, _ = run(safe, "pause", 13.0)
    assert paused.phase == Phase.PAUSED
    again, _ = run(paused, "resume", 14.0)
    assert again.phase == Phase.EXPOSURE


def test_resume_after_stop_can_go_a_step_down_at_a_chosen_intensity(
        hierarchy: Hierarchy) -> None:
    state = in_exposure(hierarchy)
    state, _ = run(state, "next", 11.0)
    state, _ = run(state, "intensity", 11.5, value=0.8)
    safe, _ = run(state, "stop", 12.0)
    down, events = run(safe, "resume", 13.0, step=0, intensity=0.0)
    assert [e.kind for e in events] == ["step_changed", "intensity_changed", "resumed"]
    assert events[0].data["reason"] == "resume"
    assert (down.phase, down.step_index, down.intensity) == (Phase.EXPOSURE, 0, 0.0)
    same, _ = run(safe, "resume", 13.0, intensity=0.0)
    assert (same.step_index, same.intensity) == (1, 0.0)
    with pytest.raises(CommandError, match="step 2 or below"):
        run(safe, "resume", 13.0, step=2)
    with pytest.raises(CommandError, match="'intensity' must be from 0"):
        run(safe, "resume", 13.0, intensity=1.5)
    baseline, _ = run(initial_state(hierarchy), "start_baseline", 1.0)
    stopped, _ = run(baseline, "stop", 2.0)
    with pytest.raises(CommandError, match="only apply when resuming exposure"):
        run(stopped, "resume", 3.0, step=0)


@pytest.mark.parametrize(("role", "allowed"), [
    (Role.PATIENT, {"pause", "stop", "suds"}),
    (Role.OBSERVER, set()),
    (Role.RENDERER, set()),
    (Role.SENSOR, set()),
])
def test_roles_limit_commands(hierarchy: Hierarchy, role: Role, allowed: set[str]) -> None:
    state = in_exposure(hierarchy)
    for name, args in [("next", {}), ("intensity", {"value": 0.5}), ("suds", {"value": 30}),
                       ("pause", {}), ("stop", {}), ("marker", {"text": "x"}), ("end", {})]:
        if name in allowed:
            apply(state, Command(name, args, role, "c"), 11.0)
        else:
            with pytest.raises(CommandError, match=f"role '{role.value}' may not send"):
                apply(state, Command(name, args, role, "c"), 11.0)
    apply(state, Command("get_state", {}, role, "c"), 11.0)  # read-only: everyone


@pytest.mark.parametrize(("name", "args", "message"), [
    ("suds", {"value": 101}, "'value' must be from 0 to 100"),
    ("suds", {"value": 4.5}, "'value' must be a whole number"),
    ("suds", {}, "needs the argument 'value'"),
    ("intensity", {"value": float("nan")}, "'value' must be a number"),
    ("intensity", {"value": 1.5}, "'value' must be from 0.0 to 1.0"),
    ("jump", {"step": "nope"}, "no step with id 'nope'"),
    ("marker", {"text": "x" * 501}, "longer than 500"),
    ("expectancy_outcome", {"happened": False}, "no open expectancy"),
    ("frobnicate", {}, "unknown command 'frobnicate'"),
    ("previous", {}, "already at the first step"),
    ("start_baseline", {}, "not possible while exposure"),
])
def test_bad_commands_are_refused_with_a_clear_error(hierarchy: Hierarchy, name: str,
                                                     args: dict[str, Any], message: str) -> None:
    state = in_exposure(hierarchy)
    with pytest.raises(CommandError, match=message.replace("(", r"\(")):
        apply(state, Command(name, args, T, "t"), 11.0)


def test_suds_drop_rule_waits_for_min_time_then_suggests(hierarchy: Hierarchy) -> None:
    min_time = hierarchy.advance_rule.min_time_in_step_s
    state = in_exposure(hierarchy, now=10.0)
    state, _ = run(state, "suds", 10.1, value=60)
    state, events = run(state, "suds", 10.2, value=25)
    assert "advance_suggested" not in [e.kind for e in events]  # too early
    state, events = run(state, "tick", 10.0 + min_time + 0.01, role=Role.HOST)
    suggestion = [e for e in events if e.kind == "advance_suggested"]
    assert len(suggestion) == 1
    assert suggestion[0].data["reason"] == "suds_drop"
    assert suggestion[0].data["detail"] == {"peak_suds": 60, "last_suds": 25, "drop_pct": 58.3}
    assert state.step_index == 0  # a suggestion never moves by itself
    state, events = run(state, "tick", 10.0 + min_time + 0.5, role=Role.HOST)
    assert events == []  # not suggested twice
    state, events = run(state, "accept_suggestion", 20.0)
    assert state.step_index == 1 and events[-1].data["reason"] == "accepted:suds_drop"


def test_drop_below_threshold_only_counts_this_visit(hierarchy: Hierarchy) -> None:
    state = in_exposure(hierarchy, now=10.0)
    state, _ = run(state, "suds", 10.1, value=60)
    state, _ = run(state, "repeat", 11.0)
    state, events = run(state, "suds", 12.0, value=25)  # only one rating in this visit
    assert not [e for e in events if e.kind == "advance_suggested"]


def test_time_cap_and_dismissal(hierarchy: Hierarchy) -> None:
    cap = hierarchy.advance_rule.max_time_in_step_s
    assert cap is not None
    state = in_exposure(hierarchy, now=10.0)
    state, events = run(state, "tick", 10.0 + cap + 0.01, role=Role.HOST)
    assert [e.data["reason"] for e in events if e.kind == "advance_suggested"] == ["time_cap"]
    state, _ = run(state, "dismiss_suggestion", 20.0)
    state, events = run(state, "tick", 21.0, role=Role.HOST)
    assert events == [] and state.suggestion is None


def test_expectancy_violation_suggests(hierarchy: Hierarchy) -> None:
    state = in_exposure(hierarchy, now=10.0)
    state, _ = run(state, "expectancy", 10.1, outcome="The spider will get out",
                   likelihood_pct=80)
    later = 10.0 + hierarchy.advance_rule.min_time_in_step_s + 1
    state, events = run(state, "expectancy_outcome", later, happened=False)
    kinds = [e.kind for e in events]
    assert kinds == ["expectancy_outcome", "advance_suggested"]
    assert events[1].data["reason"] == "expectancy_violated"
    assert state.expectancies[0].happened is False


def test_auto_advance_is_opt_in_and_logged(hierarchy: Hierarchy) -> None:
    state = in_exposure(hierarchy, now=10.0)
    state, _ = run(state, "auto_advance", 10.0, enabled=True)
    state, _ = run(state, "suds", 10.1, value=80)
    later = 10.0 + hierarchy.advance_rule.min_time_in_step_s + 0.1
    state, events = run(state, "suds", later, value=30)
    assert [e.kind for e in events] == ["suds_recorded", "advance_suggested", "auto_advanced",
                                        "step_changed"]
    assert state.step_index == 1
    assert events[-1].data["by"] == "host:auto_advance"


def test_last_step_suggestion_completes_the_hierarchy(hierarchy: Hierarchy) -> None:
    state = in_exposure(hierarchy)
    last = len(hierarchy.steps) - 1
    state, _ = run(state, "jump", 11.0, step=last)
    state, _ = run(state, "auto_advance", 11.0, enabled=True)
    cap = hierarchy.advance_rule.max_time_in_step_s or 0.0
    state, events = run(state, "tick", 11.0 + cap + 1, role=Role.HOST)
    assert events[-1].kind == "advance_suggested" and events[-1].data["hierarchy_complete"]
    assert state.step_index == last
    with pytest.raises(CommandError, match="last step is done"):
        run(state, "accept_suggestion", 5000.0)


def test_alerts_from_host_only(hierarchy: Hierarchy) -> None:
    state = in_exposure(hierarchy)
    with pytest.raises(CommandError):
        run(state, "alert", 11.0, alert="hr_above_baseline")
    state, events = run(state, "alert", 11.0, role=Role.HOST, alert="hr_above_baseline",
                        value_bpm=101.0)
    assert events[0].data["value_bpm"] == 101.0
    assert state.alerts_active == ("hr_above_baseline",) and state.phase == Phase.EXPOSURE
    state, _ = run(state, "alert_cleared", 12.0, role=Role.HOST, alert="hr_above_baseline")
    assert state.alerts_active == ()


def test_state_dict_is_complete(hierarchy: Hierarchy) -> None:
    state = in_exposure(hierarchy)
    payload = state_to_dict(state, 12.0, discover_scenes())
    assert payload["phase"] == "exposure" and payload["scene"] == "spiders"
    assert payload["time_in_step_s"] == 2.0 and payload["n_steps"] == len(hierarchy.steps)
    assert payload["baseline"] == {"mean_bpm": 70.0, "sd_bpm": 4.0, "n_values": 60,
                                   "threshold_bpm": 90.0}  # mean + max(20 bpm, 3 x 4 bpm)
    assert payload["exposure_started"] is True
    assert payload["steps"][1]["intensity"] == {"distance_m": [1.6, 0.9]}
    assert payload["baseline_duration_s"] == hierarchy.baseline.duration_s
    assert payload["step_min_s"] == hierarchy.advance_rule.min_time_in_step_s
    safe, _ = run(state, "stop", 13.0)
    assert state_to_dict(safe, 13.0, discover_scenes())["resume_to"] == "exposure"


COMMANDS = st.sampled_from([
    ("start_baseline", {}), ("complete_baseline", {"mean_bpm": 70.0, "sd_bpm": 3.0}),
    ("start_exposure", {}), ("pause", {}), ("resume", {}), ("stop", {}), ("next", {}),
    ("resume", {"step": 0, "intensity": 0.0}), ("note", {"text": "line 1\nline 2"}),
    ("previous", {}), ("repeat", {}), ("jump", {"step": 3}), ("intensity", {"value": 0.7}),
    ("suds", {"value": 70}), ("suds", {"value": 20}), ("request_suds", {}),
    ("expectancy", {"outcome": "o", "likelihood_pct": 50}),
    ("expectancy_outcome", {"happened": False}), ("marker", {"text": "m"}),
    ("accept_suggestion", {}), ("dismiss_suggestion", {}), ("auto_advance", {"enabled": True}),
    ("tick", {}), ("end", {}),
])


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fixture is immutable
@given(st.lists(st.tuples(COMMANDS, st.floats(0.0, 2.0), st.sampled_from(list(Role))),
                max_size=40))
def test_events_rebuild_the_state(hierarchy: Hierarchy,
                                  script: list[tuple[tuple[str, dict[str, Any]], float, Role]]
                                  ) -> None:
    state = initial_state(hierarchy)
    events: list[Event] = []
    now = 0.0
    for (name, args), dt, role in script:
        now += dt
        try:
            state, new_events = apply(state, Command(name, args, role, "h"), now)
        except CommandError:
            continue
        events.extend(new_events)
    round_tripped = [Event.from_dict(e.to_dict()) for e in events]
    assert rebuild(hierarchy, round_tripped) == state
    # Determinism: the same script gives the same state.
    assert state.seq == len(events)


def test_a_session_note_keeps_its_lines_and_is_checked(hierarchy: Hierarchy) -> None:
    state = in_exposure(hierarchy)
    _, events = run(state, "note", 11.0, text="Breathing fast.\n  Holds the rail.", note_id=3)
    assert [e.kind for e in events] == ["note"]
    assert events[0].data["text"] == "Breathing fast.\n  Holds the rail."  # as typed
    assert events[0].data["note_id"] == 3
    with pytest.raises(CommandError, match="longer than"):
        run(state, "note", 11.0, text="x" * 20_001)
    with pytest.raises(CommandError, match="may not send 'note'"):
        run(state, "note", 11.0, role=Role.PATIENT, text="hi")


def test_preview_step_shows_the_edited_step_before_the_session_and_stop_wins(
        hierarchy: Hierarchy) -> None:
    scenes = discover_scenes()
    state = initial_state(hierarchy)
    state, events = run(state, "preview_step", 1.0, step_id="close",
                        params={"count": 3, "distance_m": 0.8, "distanse_m": 9.0})
    assert [e.kind for e in events] == ["preview_shown"]
    assert events[0].data["params"]["count"] == 3  # recorded as sent
    scene, params = scene_target(state, scenes)
    # the step's scene with the previewed values; a misspelt name is ignored, not shown
    assert scene == "spiders" and params["count"] == 3 and params["distance_m"] == 0.8
    assert "distanse_m" not in params
    assert state_to_dict(state, 1.0, scenes)["preview"]["step_id"] == "close"
    # out of the scene's range: that value falls back to the scene's default
    ranged, _ = run(state, "preview_step", 1.5, params={"distance_m": -5.0})
    assert scene_target(ranged, scenes)[1]["distance_m"] == scenes["spiders"].defaults()[
        "distance_m"]
    # STOP wins: the calm scene at once, the preview is gone
    stopped, events = run(state, "stop", 2.0)
    assert stopped.phase == Phase.SAFE and stopped.preview is None
    assert scene_target(stopped, scenes)[0] == "calm"
    # ending it, or starting the session, returns to the session's own scenes
    ended, events = run(state, "preview_step", 3.0)
    assert [e.kind for e in events] == ["preview_ended"] and ended.preview is None
    assert scene_target(ended, scenes)[0] == "calm"
    started, _ = run(state, "start_baseline", 3.0)
    assert started.preview is None and scene_target(started, scenes)[0] != "spiders"
    # never during the session, never from the patient
    with pytest.raises(CommandError, match="not possible"):
        run(in_exposure(hierarchy), "preview_step", 12.0, params={"count": 1})
    with pytest.raises(CommandError, match="may not send"):
        run(initial_state(hierarchy), "preview_step", 1.0, role=Role.PATIENT, params={})
    for bad in ([1, 2], {"count": [1]}, {"": 1}, {f"p{i}": 1 for i in range(65)},
                {"count": float("nan")}, {"size_cm": float("inf")}, {"count": 2**70}):
        with pytest.raises(CommandError):
            run(initial_state(hierarchy), "preview_step", 1.0, params=bad)
    # the recorded events rebuild the same state
    assert rebuild(hierarchy, events_of(hierarchy)).preview == ("close", {"count": 2})


def events_of(hierarchy: Hierarchy) -> list[Event]:
    state = initial_state(hierarchy)
    _, shown = run(state, "preview_step", 1.0, step_id="close", params={"count": 2})
    return shown
