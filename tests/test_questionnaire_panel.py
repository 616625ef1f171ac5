"""The therapist's questionnaire widget against a real session host (offscreen Qt)."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QPushButton
from pytestqt.qtbot import QtBot

from vrexposure.client import ControlClient
from vrexposure.config import Endpoints
from vrexposure.hierarchy import Hierarchy, QuestionnairePlan
from vrexposure.host import SessionHost
from vrexposure.panel.questionnaire_widget import QuestionnaireWidget, score_line, ssq_change


@pytest.fixture
def planned_host(hierarchy: Hierarchy, endpoints: Endpoints, config: dict[str, Any],
                 tmp_path: Path) -> Iterator[SessionHost]:
    planned = replace(hierarchy, questionnaires=QuestionnairePlan(("ssq",), ("ssq",), 10.0))
    host = SessionHost(planned, "P001", endpoints, config,
                       recording_dir=tmp_path / "sessions").start()
    yield host
    host.close()


class Harness:
    """The widget wired to a real therapist connection, refreshed from the host's state."""

    def __init__(self, qtbot: QtBot, host: SessionHost) -> None:
        self.qtbot = qtbot
        self.therapist = ControlClient(host.endpoints.control, "therapist", "panel")
        self.patient = ControlClient(host.endpoints.control, "patient", "remote")
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.widget = QuestionnaireWidget(self.send)
        qtbot.addWidget(self.widget)
        self.widget.resize(520, 640)
        self.widget.show()
        self.refresh()

    def send(self, name: str, args: Mapping[str, Any]) -> object:
        self.sent.append((name, dict(args)))
        reply = self.therapist.send(name, dict(args))
        self.refresh()
        return reply

    def refresh(self) -> dict[str, Any]:
        state = self.therapist.state()
        self.widget.update_state(state)
        return state

    def click(self, name: str) -> None:
        button = self.widget.findChild(QPushButton, name)
        assert button is not None and button.isVisible() and button.isEnabled(), name
        self.qtbot.mouseClick(button, Qt.MouseButton.LeftButton)

    def text(self, name: str) -> str:
        label = self.widget.findChild(QLabel, name)
        assert label is not None, name
        return label.text() if label.isVisible() else ""

    def close(self) -> None:
        self.therapist.close()
        self.patient.close()


def test_give_follow_live_score_and_cybersickness_alert(
        qtbot: QtBot, planned_host: SessionHost, tmp_path: Path) -> None:
    h = Harness(qtbot, planned_host)
    try:
        assert h.text("q-due") == "Due before exposure: ssq"
        h.widget.choice.setCurrentIndex(h.widget.choice.findData("ssq"))
        h.click("q-give")
        assert h.sent[-1] == ("questionnaire_start", {"id": "ssq"})
        assert h.widget.live.isVisible()
        assert h.text("q-item") == "1. General discomfort"
        # The therapist enters what the patient says: 'none' for every symptom.
        for _ in range(16):
            h.click("q-answer-0")
        assert not h.widget.live.isVisible()
        assert "Total score (TS) 0" in h.text("q-scores")
        h.therapist.send("start_exposure")
        h.send("questionnaire_start", {"id": "ssq"})
        # The patient answers in the headset; the widget follows live.
        ssq_items = planned_host.state.questionnaire.definition.item_ids  # type: ignore
        for item in ssq_items[:5]:
            assert h.patient.send("questionnaire_answer", {"id": "ssq", "item": item,
                                                           "response": 2}).ok
        h.refresh()
        assert h.text("q-progress-label").startswith("Simulator Sickness Questionnaire: "
                                                     "5 answered, 0 left unanswered, 16 items")
        assert h.widget.progress.value() == 5
        assert h.text("q-item") == "6. Increased salivation"
        h.click("q-pause")
        assert h.sent[-1] == ("questionnaire_pause", {"id": "ssq", "paused": True})
        assert "(paused)" in h.text("q-progress-label")
        h.click("q-pause")  # Continue
        for _ in range(11):
            h.click("q-answer-3")
        state = h.refresh()
        assert state["questionnaire"] is None and len(state["questionnaires_done"]) == 2
        assert "cybersickness" in state["alerts_active"]
        assert h.text("q-alert").startswith("Cybersickness rose (SSQ total 0 → ")
        assert "end the exposure" in h.text("q-alert")
        h.widget.grab().save(str(tmp_path / "questionnaire_widget.png"))
        h.click("q-stop")
        assert h.sent[-1][0] == "stop"
        assert h.refresh()["phase"] == "safe"
        assert not h.widget.stop_button.isVisible()
    finally:
        h.close()


def test_scoring_only_instrument_is_explained_not_given(qtbot: QtBot,
                                                         planned_host: SessionHost) -> None:
    h = Harness(qtbot, planned_host)
    try:
        h.widget.choice.setCurrentIndex(h.widget.choice.findData("fsq"))
        assert "scoring only" in h.widget.choice.currentText()
        h.click("q-give")
        assert h.sent == [] and "licensed" in h.text("q-note")
        h.widget.choice.setCurrentIndex(h.widget.choice.findData("ipq"))
        h.click("q-give")
        h.click("q-answer-5")
        h.click("q-skip")
        assert "1 answered, 1 left unanswered, 14 items" in h.text("q-progress-label")
        h.click("q-finish")
        assert not h.widget.live.isVisible()
        assert h.text("q-scores") == ("igroup Presence Questionnaire (before session): "
                                      "General presence (G) 5, Spatial presence (SP) missing, "
                                      "Involvement (INV) missing, Experienced realism (REAL) "
                                      "missing")
        h.widget.choice.setCurrentIndex(h.widget.choice.findData("suds"))
        h.click("q-give")
        spin_send = h.widget.findChild(QPushButton, "q-spin-send")
        assert spin_send is not None and spin_send.isVisible()
        h.click("q-spin-send")  # nothing chosen ('—'): nothing sent
        assert h.sent[-1] == ("questionnaire_start", {"id": "suds"})
        h.widget.spin.setValue(35)
        h.click("q-spin-send")
        assert h.sent[-1] == ("questionnaire_answer", {"id": "suds", "item": "suds",
                                                       "response": 35})
        time.sleep(0.05)
        assert "SUDS 35" in h.text("q-scores")
    finally:
        h.close()


def test_pure_helpers() -> None:
    done = [{"id": "ssq", "title": "SSQ", "occasion": "before_session",
             "scores": {"total": {"title": "Total", "value": 11.22}}},
            {"id": "ssq", "title": "SSQ", "occasion": "after_session",
             "scores": {"total": {"title": "Total", "value": 48.62}}}]
    assert ssq_change(done) == "SSQ total 11.22 → 48.62 (+37.4)"
    assert score_line(done[0]) == "SSQ (before session): Total 11.22"
    assert ssq_change(done[:1]) == ""
