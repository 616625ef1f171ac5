"""Stimulus events: declared by scenes, validated in hierarchies, recorded by the host,
played by the renderer, triggered from the panel's events bar."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMainWindow
from pytestqt.qtbot import QtBot

from vrexposure.hierarchy import load_hierarchy, parse_hierarchy
from vrexposure.panel.events_bar import EventsBar, shortcut_text
from vrexposure.plugins import builtin_hierarchies, discover_scenes
from vrexposure.state import (
    Command,
    CommandError,
    Role,
    apply,
    initial_state,
    rebuild,
    state_to_dict,
)

from .render_fixtures import changed_fraction, shared_engine

SPIDER_STEPS = """
id: t
title: T
scene: spiders
steps:
  - id: one
    label: One spider
    expected_suds: 20
    params: {count: 1}
    intensity: {distance_m: [2, 1]}
    events:
      - {name: drop, at_s: 30}
      - {name: drop, at_s: 5}
  - id: two
    label: Two spiders
    expected_suds: 30
    params: {count: 2}
    intensity: {distance_m: [2, 1]}
"""


def test_every_scene_with_a_stimulus_declares_events_with_distinct_keys() -> None:
    scenes = discover_scenes()
    for name, spec in scenes.items():
        if not spec.has_stimulus:
            continue
        assert spec.events, name
        names = [e.name for e in spec.events]
        keys = [e.key for e in spec.events]
        assert len(set(names)) == len(names) and len(set(keys)) == len(keys), name
        for event in spec.events:
            assert event.duration_s > 0 and event.label and shortcut_text(event.key), event
            assert spec.event(event.name) is event
    assert scenes["spiders"].event("nothing") is None


def test_hierarchy_step_events_are_checked_against_the_scene() -> None:
    hierarchy, problems = parse_hierarchy(SPIDER_STEPS, "t.yaml")
    assert hierarchy is not None and not [p for p in problems if p.severity == "error"]
    assert hierarchy.steps[0].events == (("drop", 5.0), ("drop", 30.0))  # in time order
    assert [e.name for e in hierarchy.scene_events] == ["drop"]
    bad = SPIDER_STEPS.replace("{name: drop, at_s: 5}", "{name: dorp, at_s: -1}")
    hierarchy, problems = parse_hierarchy(bad, "t.yaml")
    assert hierarchy is None
    text = "\n".join(str(p) for p in problems)
    assert "t.yaml:" in text and "no event 'dorp'" in text and "did you mean" in text.lower()
    bad = SPIDER_STEPS.replace("{name: drop, at_s: 5}", "{name: drop, at_s: soon}")
    _, problems = parse_hierarchy(bad, "t.yaml")
    assert any("'at_s' must be seconds" in str(p) for p in problems)


def _exposing(text: str = SPIDER_STEPS) -> Any:
    hierarchy, _ = parse_hierarchy(text, "t.yaml")
    state = initial_state(hierarchy)
    state, _ = apply(state, Command("start_exposure", {}), 10.0)
    return state


def test_trigger_event_is_recorded_and_carried_in_the_state() -> None:
    state = _exposing()
    state, events = apply(state, Command("trigger_event", {"name": "drop"}, Role.THERAPIST,
                                         "panel1"), 12.0)
    assert [e.kind for e in events] == ["stimulus_event"]
    assert events[0].data["name"] == "drop" and events[0].data["by"] == "therapist:panel1"
    assert events[0].data["label"].startswith("Spider drops")
    payload = state_to_dict(state, 12.5, discover_scenes())
    assert payload["stimulus_event"] == {"name": "drop", "id": 1, "t_s": 12.0}
    assert payload["scene_events"][0]["key"] == "d"
    state, _ = apply(state, Command("trigger_event", {"name": "drop"}), 14.0)
    assert state.stimulus_event == ("drop", 2, 14.0)  # the same event again: a new id
    with pytest.raises(CommandError, match="no event 'gust'"):
        apply(state, Command("trigger_event", {"name": "gust"}), 15.0)
    with pytest.raises(CommandError):  # the patient's remote cannot trigger a spider
        apply(state, Command("trigger_event", {"name": "drop"}, Role.PATIENT), 15.0)
    state, _ = apply(state, Command("stop", {}), 16.0)
    with pytest.raises(CommandError):  # not in the safe place after STOP
        apply(state, Command("trigger_event", {"name": "drop"}), 17.0)


def test_step_events_play_automatically_once_per_visit() -> None:
    state = _exposing()
    state, events = apply(state, Command("tick", {}, Role.HOST), 14.0)  # 4 s in: not yet
    assert not [e for e in events if e.kind == "stimulus_event"]
    state, events = apply(state, Command("tick", {}, Role.HOST), 15.5)
    fired = [e for e in events if e.kind == "stimulus_event"]
    assert [(e.data["name"], e.data["by"], e.data["auto_index"]) for e in fired] == [
        ("drop", "host:auto", 0)]
    state, events = apply(state, Command("tick", {}, Role.HOST), 16.0)
    assert not [e for e in events if e.kind == "stimulus_event"]  # once
    state, events = apply(state, Command("tick", {}, Role.HOST), 45.0)
    assert [e.data["auto_index"] for e in events if e.kind == "stimulus_event"] == [1]
    # Away and back: a new visit plays the step's events again.
    state, _ = apply(state, Command("next", {}), 50.0)
    state, _ = apply(state, Command("previous", {}), 51.0)
    state, events = apply(state, Command("tick", {}, Role.HOST), 57.0)
    assert [e.data["auto_index"] for e in events if e.kind == "stimulus_event"] == [0]
    # Rebuilding from the recorded events gives the same state (resume after a crash).
    hierarchy = state.hierarchy
    log: list[Any] = []
    replay = initial_state(hierarchy)
    for cmd, t in [(Command("start_exposure", {}), 10.0), (Command("tick", {}, Role.HOST), 15.5)]:
        replay, evs = apply(replay, cmd, t)
        log += evs
    assert rebuild(hierarchy, log).stimulus_event == replay.stimulus_event == ("drop", 1, 15.5)


@pytest.mark.render
def test_the_renderer_plays_every_declared_event() -> None:
    """Each event of each shipped scene visibly changes the patient's view while it plays."""
    engine = shared_engine()
    engine.set_head_pose((0, 0, 0), (0, 0, 0))
    scenes = discover_scenes()
    steps = {load_hierarchy(p).scene: (load_hierarchy(p), p) for p in builtin_hierarchies()}
    for scene_name, (hierarchy, _path) in sorted(steps.items()):
        spec = scenes[scene_name]
        # A middle step (people in the room, the door open where it matters).
        index = len(hierarchy.steps) // 2
        params = hierarchy.step_params(index, 1.0, scenes)
        if scene_name == "enclosed_space":
            params = dict(params, door="open", light_level=1.0)
        for event in spec.events:
            pictures = []
            for play in (False, True):
                engine.show("calm", {})
                engine.show(scene_name, params)
                engine.step(0.0)
                if play:
                    assert engine.play_event(event.name)
                for _ in range(8):  # into the event, the same frame times both times
                    engine.step(event.duration_s * 0.4 / 8)
                pictures.append(engine.read_pixels())
            share = changed_fraction(pictures[0], pictures[1], threshold=16)
            assert share > 0.0005, (scene_name, event.name, share)
    assert not engine.play_event("no-such-event")


def test_events_bar_buttons_and_shortcuts_send_trigger_event(qtbot: QtBot) -> None:
    sent: list[tuple[str, dict[str, Any]]] = []
    window = QMainWindow()
    bar = EventsBar(lambda name, args: sent.append((name, dict(args))))
    window.setCentralWidget(bar)
    qtbot.addWidget(window)
    bar.set_events(discover_scenes()["public_speaking"].events)
    window.show()
    qtbot.waitExposed(window)
    assert list(bar.buttons) == ["cough", "yawn", "phone", "walk_out"]
    assert "[Shift+P]" in bar.buttons["phone"].text()
    qtbot.mouseClick(bar.buttons["cough"], Qt.MouseButton.LeftButton)
    window.activateWindow()
    bar.shortcuts["walk_out"].activated.emit()  # what the key press does
    assert sent == [("trigger_event", {"name": "cough"}), ("trigger_event", {"name": "walk_out"})]
    # The state's scene_events (dicts) work as well; outside exposure the bar is grey.
    bar.set_events([{"name": "drop", "label": "Spider drops", "key": "d", "duration_s": 12}])
    assert list(bar.buttons) == ["drop"] and bar.empty.isHidden()
    bar.set_active(False)
    assert not bar.buttons["drop"].isEnabled()
    bar.trigger("drop")
    assert len(sent) == 2
    bar.set_active(True)
    qtbot.mouseClick(bar.buttons["drop"], Qt.MouseButton.LeftButton)
    assert sent[-1] == ("trigger_event", {"name": "drop"})
    # What the therapist sees: the buttons are drawn (a grab is not blank).
    image = bar.grab().toImage()
    pixels = np.array([image.pixelColor(x, image.height() // 2).lightness()
                       for x in range(0, image.width(), 3)])
    assert pixels.std() > 10
    bar.set_events([])
    assert not bar.buttons and bar.empty.isVisibleTo(bar)
