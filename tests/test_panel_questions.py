"""Questions the panel asks inline (never a modal dialog) and ratings never invented."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from vrexposure.host import SessionHost
from vrexposure.panel.window import LIKELIHOOD_UNSET, PanelWindow
from vrexposure.state import Phase

from .test_panel_window import click, running_panel, wait_for


@pytest.fixture
def panel(qtbot: QtBot, host: SessionHost) -> Iterator[PanelWindow]:
    yield from running_panel(qtbot, host.endpoints)


def test_no_likelihood_no_prediction_and_leaving_asks_for_the_outcome(
        qtbot: QtBot, panel: PanelWindow, host: SessionHost) -> None:
    panel.send("start_exposure")
    wait_for(qtbot, lambda: host.state.phase == Phase.EXPOSURE)
    wait_for(qtbot, lambda: panel.phase_label.text() == "EXPOSURE")
    assert panel.likelihood.value() == LIKELIHOOD_UNSET
    assert panel.likelihood.text() == "likely? %"  # shown as unset, not as a number
    panel.expect_edit.setText("The spider jumps on me")
    qtbot.keyClick(panel.expect_edit, Qt.Key.Key_Return)  # Enter without a likelihood
    qtbot.wait(500)
    assert host.state.expectancies == () and "nothing recorded" in panel.status_text()
    panel.likelihood.setValue(40)
    click(qtbot, panel.predict_button)
    wait_for(qtbot, lambda: len(host.state.expectancies) == 1)
    assert host.state.expectancies[0].likelihood_pct == 40
    assert panel.likelihood.value() == LIKELIHOOD_UNSET  # the next one is asked anew
    wait_for(qtbot, lambda: panel.model.open_expectancy() is not None)

    # Next step with the prediction open: asked inline first; nothing sent yet
    click(qtbot, panel.next_button)
    assert panel.question.is_open and "did the predicted" in panel.question.label.text()
    qtbot.wait(300)
    assert host.state.step_index == 0
    click(qtbot, panel.question.choice("Did not happen"))
    wait_for(qtbot, lambda: host.state.step_index == 1)
    assert host.state.expectancies[0].happened is False
    assert not panel.question.is_open


def test_resume_after_stop_asks_where_and_the_header_tells_what_is_seen(
        qtbot: QtBot, panel: PanelWindow, host: SessionHost) -> None:
    panel.send("start_exposure", {"step": 2})
    wait_for(qtbot, lambda: host.state.phase == Phase.EXPOSURE)
    panel.send("intensity", {"value": 0.8})
    wait_for(qtbot, lambda: "patient sees <b>80 %</b>" in panel.clock_label.text())
    wait_for(qtbot, lambda: "(now " in panel.intensity_effect.text())
    (low, high), = host.hierarchy.steps[2].intensity.values()  # step 3: one range
    now_cm = low + 0.8 * (high - low)
    assert panel.intensity_effect.text() == (
        f"Intensity here: size {low:g} → {high:g} cm (now {now_cm:.1f} cm)")
    qtbot.keyClick(panel, Qt.Key.Key_F12)
    wait_for(qtbot, lambda: host.state.phase == Phase.SAFE)
    wait_for(qtbot, lambda: "the calm scene" in panel.clock_label.text())
    assert "80 %" not in panel.clock_label.text()

    click(qtbot, panel.resume_button)
    assert panel.question.is_open
    assert host.state.phase == Phase.SAFE  # one keypress does not go straight back
    qtbot.keyClick(panel, Qt.Key.Key_Escape)  # cancel: stays calm
    assert not panel.question.is_open
    qtbot.keyClick(panel, Qt.Key.Key_P, Qt.KeyboardModifier.ControlModifier
                   | Qt.KeyboardModifier.ShiftModifier)
    assert panel.question.is_open
    click(qtbot, panel.question.choice("One step down"))
    wait_for(qtbot, lambda: host.state.phase == Phase.EXPOSURE)
    assert (host.state.step_index, host.state.intensity) == (1, 0.0)
    wait_for(qtbot, lambda: "patient sees <b>0 %</b>" in panel.clock_label.text())


def test_end_and_jump_ask_inline_and_cancel_sends_nothing(
        qtbot: QtBot, panel: PanelWindow, host: SessionHost) -> None:
    panel.send("start_exposure")
    wait_for(qtbot, lambda: host.state.phase == Phase.EXPOSURE)
    qtbot.keyClick(panel, Qt.Key.Key_E, Qt.KeyboardModifier.ControlModifier
                   | Qt.KeyboardModifier.ShiftModifier)
    assert panel.question.is_open and "End the session" in panel.question.label.text()
    click(qtbot, panel.question.cancel_button)
    assert "End cancelled" in panel.status_text()
    qtbot.wait(300)
    assert host.state.phase == Phase.EXPOSURE
    panel.table.selectRow(6)
    click(qtbot, panel.jump_button)
    assert "skipping 5 step(s)" in panel.question.label.text()
    click(qtbot, panel.question.choice("Jump to step 7"))
    wait_for(qtbot, lambda: host.state.step_index == 6)


def test_baseline_counts_down_then_says_the_next_action_and_end_offers_the_report(
        qtbot: QtBot, panel: PanelWindow, host: SessionHost) -> None:
    from vrexposure.panel.header import baseline_badge

    # the countdown itself (pure): the host's planned length minus the time in the phase
    assert "1:30 left of 2:00" in baseline_badge({"baseline_duration_s": 120.0}, 30.0)
    qtbot.keyClick(panel, Qt.Key.Key_B, Qt.KeyboardModifier.ControlModifier)
    wait_for(qtbot, lambda: host.state.phase == Phase.BASELINE)
    wait_for(qtbot, lambda: host.state.baseline_done, timeout_s=8)
    wait_for(qtbot, lambda: "start exposure (Ctrl+E)" in panel.phase_label.text())
    qtbot.keyClick(panel, Qt.Key.Key_E, Qt.KeyboardModifier.ControlModifier)
    wait_for(qtbot, lambda: host.state.phase == Phase.EXPOSURE)
    wait_for(qtbot, lambda: " of min " in panel.clock_label.text())  # the step timer

    qtbot.keyClick(panel, Qt.Key.Key_E, Qt.KeyboardModifier.ControlModifier
                   | Qt.KeyboardModifier.ShiftModifier)
    click(qtbot, panel.question.choice("End the session"))
    wait_for(qtbot, lambda: host.state.phase == Phase.ENDED)
    wait_for(qtbot, lambda: panel.question.is_open and "report" in panel.question.label.text())
    assert not panel._tick_timer.isActive()  # the clocks stop
    assert "recording closed" in panel.recording_label.text()
    assert "REC" not in panel.recording_label.text()
    click(qtbot, panel.question.choice("Write the session report"))
    wait_for(qtbot, lambda: panel.report_path is not None, timeout_s=120)
    assert panel.report_path is not None and panel.report_path.is_file()
    assert "Session report written" in panel.status_text()


def test_session_notes_are_saved_as_typed_with_their_lines_and_a_larger_view(
        qtbot: QtBot, panel: PanelWindow, host: SessionHost) -> None:
    from vrexposure.client import Subscriber

    events = Subscriber(host.endpoints, topics=("event",), data=False)
    try:
        panel.send("start_exposure")
        wait_for(qtbot, lambda: panel.notes.edit.isEnabled())
        panel.notes.edit.setFocus()
        qtbot.keyClicks(panel.notes.edit, "Breathing fast")
        qtbot.keyClick(panel.notes.edit, Qt.Key.Key_Return)
        qtbot.keyClicks(panel.notes.edit, "  holds the rail")
        wait_for(qtbot, lambda: panel.notes.status.text().startswith("✓ saved at"))
        notes: list[str] = []

        def got_note() -> bool:
            for message in events.drain(100):
                if message.payload.get("kind") == "note":
                    notes.append(str(message.payload["text"]))
            return bool(notes)

        wait_for(qtbot, got_note)
        assert notes[-1] == "Breathing fast\n  holds the rail"  # as typed, lines kept
        assert "Waiting" not in panel.status_text() and "note" not in panel.status_text()
    finally:
        events.close()
    click(qtbot, panel.large_button)
    assert panel.large_view is not None and panel.large_view.isVisible()
    assert panel.large_view.mirror.width() > panel.mirror.width()
    # STOP from the larger view's window: F12 is an application shortcut
    qtbot.keyClick(panel.large_view, Qt.Key.Key_F12)
    wait_for(qtbot, lambda: host.state.phase == Phase.SAFE)


def test_other_areas_have_a_place_in_the_window(qtbot: QtBot, panel: PanelWindow) -> None:
    from PySide6.QtWidgets import QGroupBox, QWidget

    events = QGroupBox("Stimulus events")
    questionnaire = QGroupBox("Questionnaire")
    panel.add_area(events, "left")
    panel.add_area(questionnaire, "right")
    qtbot.wait(50)
    assert events.isVisible() and questionnaire.isVisible()
    def top(widget: QWidget) -> int:
        return widget.mapToGlobal(widget.rect().topLeft()).y()

    def bottom(widget: QWidget) -> int:
        return widget.mapToGlobal(widget.rect().bottomLeft()).y()

    exposure = panel.pause_button.parentWidget()
    assert events.parentWidget() is exposure.parentWidget()  # next to exposure controls
    assert top(events) > bottom(exposure)
    assert top(questionnaire) > bottom(panel.likelihood.parentWidget())  # under the ratings
