"""The areas other features add to the panel, in the real window against a real host: the
scene's stimulus events, questionnaires, and the patient's history from the clinic record."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QLabel
from pytestqt.qtbot import QtBot

from vrexposure.clinic.history import LastStep, PatientHistory, SessionLine
from vrexposure.host import SessionHost
from vrexposure.panel.window import PanelWindow
from vrexposure.state import Phase

from .test_panel_window import click, open_panel, wait_for


def _history(patient_id: str) -> PatientHistory:
    return PatientHistory(
        patient_id=patient_id, course="arachnophobia, treatment",
        sessions=[SessionLine(1, "2026-11-30", "arachnophobia-standard", 1, 4, 0, 1500.0)],
        last_steps=[LastStep(4, "free-moving", 55, 30)],
        open_expectancies=["The spider will run at me"], last_notes=["Avoided looking"],
        questionnaires={"fsq": [("2026-11-30", 84.0)]})


@pytest.fixture
def panel(qtbot: QtBot, host: SessionHost) -> Iterator[PanelWindow]:
    asked: list[str] = []

    def load(patient_id: str) -> Any:
        asked.append(patient_id)
        return _history(patient_id)

    window = open_panel(qtbot, host.endpoints, history=load)
    window.history_asked = asked  # type: ignore[attr-defined]
    qtbot.waitUntil(lambda: window.model.state is not None, timeout=5000)
    yield window
    window.shutdown()


def test_stimulus_event_buttons_trigger_the_scene_event(qtbot: QtBot, panel: PanelWindow,
                                                        host: SessionHost) -> None:
    expected = {e.name for e in host.hierarchy.scene_events}
    assert expected, "the spider scene declares stimulus events"
    wait_for(qtbot, lambda: set(panel.events_bar.buttons) == expected)
    button = next(iter(panel.events_bar.buttons.values()))
    assert not button.isEnabled()  # nothing to trigger before exposure
    panel.send("start_exposure")
    wait_for(qtbot, lambda: host.state.phase == Phase.EXPOSURE)
    wait_for(qtbot, button.isEnabled)
    name = next(iter(panel.events_bar.buttons))
    click(qtbot, panel.events_bar.buttons[name])
    wait_for(qtbot, lambda: host.state.stimulus_event is not None)
    assert host.state.stimulus_event is not None and host.state.stimulus_event[0] == name


def test_questionnaire_area_gives_a_questionnaire(qtbot: QtBot, panel: PanelWindow,
                                                  host: SessionHost) -> None:
    assert panel.questionnaires.isVisibleTo(panel)
    panel.send("questionnaire_start", {"id": "ssq"})
    wait_for(qtbot, lambda: host.state.questionnaire is not None)
    wait_for(qtbot, lambda: panel.questionnaires.form is not None)
    assert panel.questionnaires.form is not None and panel.questionnaires.form["id"] == "ssq"


def test_history_of_the_patient_is_shown_once(qtbot: QtBot, panel: PanelWindow,
                                              host: SessionHost, tmp_path: Path) -> None:
    wait_for(qtbot, lambda: panel.history.isVisibleTo(panel))
    assert panel.history_asked == [host.patient_id]  # type: ignore[attr-defined]
    assert host.patient_id in panel.history.title.text()
    assert "The spider will run at me" in panel.history.details.text()
    qtbot.wait(500)
    assert panel.history_asked == [host.patient_id]  # type: ignore[attr-defined]
    path = tmp_path / "panel.png"
    assert panel.grab().save(str(path)) and path.stat().st_size > 10_000


def test_an_unknown_source_is_admitted_or_rejected_from_the_panel(
        qtbot: QtBot, panel: PanelWindow, host: SessionHost) -> None:
    from vrexposure import protocol
    from vrexposure.client import Publisher

    foreign = Publisher(host.endpoints.publish, "polar", clock=host.clock.now)
    try:
        assert foreign.wait_connected()
        for i in range(20):
            foreign.send_raw(protocol.encode_data("hr.polar", i, host.clock.now(),
                                                  {"bpm": 120.0}))
            qtbot.wait(20)
        wait_for(qtbot, lambda: ("polar", "reject") in panel.sources_bar.buttons)
        assert panel.sources_bar.isVisibleTo(panel)
        assert "Unknown source 'polar'" in panel.sources_bar.rows["polar"].findChild(
            QLabel).text()
        click(qtbot, panel.sources_bar.buttons[("polar", "reject")])
        wait_for(qtbot, lambda: "polar" in host.state_payload(host.clock.now())["session"]
                 ["rejected_sources"])
        wait_for(qtbot, lambda: "polar" not in panel.sources_bar.rows)
    finally:
        foreign.close()
