"""The panel at the start of a patient's session, in the real window against real hosts
(offscreen Qt): the history's sessions table readable at 1280×720, the questionnaire
chooser starting on what the session's hierarchy asks for, and every patient area
following the session's pseudonymous patient id when another patient's session starts."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QColor, QImage, QPainter
from pytestqt.qtbot import QtBot

from vrexposure.cli_panel import clinic_editor
from vrexposure.clinic import open_store
from vrexposure.clinic.history import LastStep, PatientHistory, SessionLine
from vrexposure.config import Endpoints
from vrexposure.hierarchy import Hierarchy, QuestionnairePlan
from vrexposure.host import SessionHost, events_from_recording
from vrexposure.panel.hierarchy_area import LAST_COLUMN
from vrexposure.panel.questionnaire_widget import suggested
from vrexposure.panel.window import PanelWindow
from vrexposure.xdf import read_xdf

from .test_panel_window import click, open_panel, running_panel, wait_for
from .test_questionnaire_panel import Harness, planned_host  # noqa: F401  (fixture)

# --------------------------------------------------------------------- history at 1280×720

LONG_IDS = ("arachnophobia-standard", "public-speaking-standard")


def _history(patient_id: str) -> PatientHistory:
    return PatientHistory(
        patient_id=patient_id, course="arachnophobia, treatment",
        sessions=[SessionLine(n, f"2026-11-{n + 20:02d}", LONG_IDS[n % 2], 10 + n, n + 2,
                              n % 2, 1500.0) for n in range(1, 4)],
        last_steps=[LastStep(4, "free-moving", 55, 30)],
        open_expectancies=[], last_notes=[], questionnaires={})


def _ink(image: QImage) -> np.ndarray:
    """True where text is drawn (dark on the light cell)."""
    image = image.convertToFormat(QImage.Format.Format_RGB32)
    pixels = np.frombuffer(image.constBits(), np.uint8).reshape(
        image.height(), image.bytesPerLine() // 4, 4)[:, :image.width(), :3]
    return pixels.min(axis=2) < 140


def _bands(rows: np.ndarray) -> int:
    """Runs of inked pixel rows: the lines of text."""
    return int(np.sum(rows[1:] & ~rows[:-1]) + rows[0])


def test_history_hierarchy_is_whole_at_1280x720(qtbot: QtBot, host: SessionHost,
                                                tmp_path: Path) -> None:
    window = open_panel(qtbot, host.endpoints, history=_history)
    try:
        window.resize(1280, 720)
        wait_for(qtbot, lambda: window.history.isVisible()
                 and window.history.sessions_table.rowCount() == 3)
        qtbot.wait(300)  # the layout settles at the new size
        assert window.width() <= 1280
        table = window.history.sessions_table
        assert table.horizontalScrollBar().maximum() == 0  # nothing off to the side
        fm = table.fontMetrics()
        for row in range(table.rowCount()):
            item = table.item(row, 1)
            text = item.text()
            assert any(i in text for i in LONG_IDS) and item.toolTip() == text
            rect = table.visualItemRect(item)
            assert table.viewport().rect().contains(rect)
            cell = table.viewport().grab(rect).toImage()
            assert cell.save(str(tmp_path / f"history-cell-{row}.png"))
            # Reference: the same text drawn whole (wrapped, never elided) in the same font
            # and width; the cell must show as many lines and as wide a text.
            margin = table.style().pixelMetric(table.style().PixelMetric.PM_FocusFrameHMargin,
                                               None, table) + 1
            flags = int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter
                        | Qt.TextFlag.TextWordWrap)
            whole = fm.boundingRect(QRect(0, 0, rect.width() - 2 * margin, 10_000), flags,
                                    text)
            # (the row is sized by Qt from whole line heights: 1-2 px of rounding)
            assert whole.height() <= rect.height() + 2, (text, whole, rect)
            assert whole.width() <= rect.width() - 2 * margin
            reference = QImage(rect.size(), QImage.Format.Format_RGB32)
            reference.fill(QColor("white"))
            painter = QPainter(reference)
            painter.setFont(table.font())
            painter.setPen(QColor("black"))
            painter.drawText(QRect(margin, 0, rect.width() - 2 * margin, rect.height()),
                             flags, text)
            painter.end()
            shown, drawn = _ink(cell), _ink(reference)
            shown_cols, drawn_cols = np.flatnonzero(shown.any(axis=0)), \
                np.flatnonzero(drawn.any(axis=0))
            lines = round(whole.height() / fm.lineSpacing())
            assert lines >= 2  # the date, then the hierarchy (wrapped at its hyphens)
            assert _bands(shown.any(axis=1)) == _bands(drawn.any(axis=1)) == lines
            shown_width = shown_cols[-1] - shown_cols[0]
            drawn_width = drawn_cols[-1] - drawn_cols[0]
            assert abs(shown_width - drawn_width) <= 3, (text, shown_width, drawn_width)
            assert "…" not in text
        assert window.grab().save(str(tmp_path / "panel-1280x720.png"))
    finally:
        window.shutdown()


# ------------------------------------------------------------- the questionnaire chooser

def test_suggestion_follows_the_plan_before_and_after_exposure() -> None:
    plan = {"before": ["ssq"], "after": ["ssq", "ipq"]}
    idle = {"phase": "idle", "questionnaire_plan": plan, "questionnaires_done": []}
    assert suggested(idle) == "ssq"
    before = [{"id": "ssq", "occasion": "before_session"}]
    assert suggested({**idle, "questionnaires_done": before}) is None
    exposure = {"phase": "exposure", "highest_step": 2, "questionnaire_plan": plan,
                "questionnaires_done": before}
    assert suggested(exposure) == "ssq"  # the SSQ before does not count for after
    after = [*before, {"id": "ssq", "occasion": "after_session"}]
    assert suggested({**exposure, "questionnaires_done": after}) == "ipq"
    assert suggested({"phase": "idle", "questionnaire_plan": {"before": [], "after": []}}) \
        is None
    assert suggested({}) is None


def test_chooser_starts_on_the_planned_ssq_and_again_after_exposure(
        qtbot: QtBot, planned_host: SessionHost) -> None:  # noqa: F811
    h = Harness(qtbot, planned_host)
    try:
        choice = h.widget.choice
        assert choice.itemData(0) != "ssq"  # alphabetically first is another one
        assert choice.currentData() == "ssq"
        assert choice.currentText() == h.widget.definitions["ssq"].title
        h.click("q-give")
        assert planned_host.state.questionnaire is not None
        assert planned_host.state.questionnaire.id == "ssq"
        h.click("q-finish")
        state = h.refresh()
        assert [d["id"] for d in state["questionnaires_done"]] == ["ssq"]
        # Nothing more is due before exposure: no selection, a prompt.
        assert choice.currentIndex() == -1 and choice.currentText() == ""
        assert choice.placeholderText().startswith("Choose a questionnaire")
        assert _ink(choice.grab().toImage()).sum() > 100  # the prompt is drawn in the box
        sent = len(h.sent)
        h.click("q-give")
        assert len(h.sent) == sent and h.text("q-note") == "Choose a questionnaire first."
        # Exposure begins: the SSQ after is what the hierarchy asks for next.
        h.send("start_exposure", {})
        wait_for(qtbot, lambda: h.refresh().get("phase") == "exposure")
        assert choice.currentData() == "ssq"
        # A choice made by hand is kept while the state goes on.
        choice.setCurrentIndex(choice.findData("ipq"))
        for _ in range(3):
            h.refresh()
        assert choice.currentData() == "ipq"
    finally:
        h.close()


def test_chooser_without_a_plan_prompts(qtbot: QtBot, host: SessionHost) -> None:
    assert not host.hierarchy.questionnaires.before
    h = Harness(qtbot, host)
    try:
        assert h.widget.choice.currentIndex() == -1
        h.click("q-give")
        assert h.sent == [] and host.state.questionnaire is None
        assert h.text("q-note") == "Choose a questionnaire first."
    finally:
        h.close()


# ------------------------------------------------------ another patient's session starts

@pytest.fixture
def clinic_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'clinic.sqlite3'}"
    with open_store(url) as store:
        store.add_patient("P001")
        store.add_patient("P002")
    return url


def _course(patient_id: str) -> PatientHistory:
    if patient_id == "P001":
        return PatientHistory("P001", "arachnophobia, treatment",
                              [SessionLine(1, "2026-11-30", "arachnophobia-standard", 1, 4, 0,
                                           1500.0)],
                              [LastStep(2, "jar-near", 55, 30)], ["It will bite"],
                              ["Avoided the jar"], {})
    return PatientHistory(patient_id, None, [], [], [], [], {})  # first session: no course


@pytest.fixture
def panel(qtbot: QtBot, host: SessionHost, clinic_url: str) -> Iterator[PanelWindow]:
    yield from running_panel(qtbot, host.endpoints, history=_course,
                             editor=clinic_editor({"database": {"url": clinic_url}}))


def test_patient_areas_follow_the_next_patients_session(
        qtbot: QtBot, panel: PanelWindow, host: SessionHost, hierarchy: Hierarchy,
        endpoints: Endpoints, config: dict[str, Any], tmp_path: Path) -> None:
    # Patient P001: their course, last SUDS, editor, a note and a questionnaire chosen.
    wait_for(qtbot, lambda: "P001" in panel.history.title.text())
    wait_for(qtbot, lambda: not panel.table.isColumnHidden(LAST_COLUMN))
    panel.send("start_exposure")
    wait_for(qtbot, panel.notes.edit.isEnabled)
    qtbot.keyClick(panel, Qt.Key.Key_H, Qt.KeyboardModifier.ControlModifier)
    wait_for(qtbot, lambda: panel.editor_window is not None
             and panel.editor_window.isVisible())
    first_editor = panel.editor_window
    assert first_editor is not None and "P001" in first_editor.windowTitle()
    panel.notes.edit.setFocus()
    qtbot.keyClicks(panel.notes.edit, "Avoided the jar again")
    wait_for(qtbot, lambda: panel.notes.status.text().startswith("✓ saved at"))
    panel.questionnaires.choice.setCurrentIndex(panel.questionnaires.choice.findData("ipq"))

    # P001's session ends; P002's starts on the same endpoints (SSQ before, as planned).
    host.close()
    planned = replace(hierarchy, questionnaires=QuestionnairePlan(("ssq",), ("ssq",), 10.0))
    second = SessionHost(planned, "P002", endpoints, config,
                         recording_dir=tmp_path / "second").start()
    try:
        wait_for(qtbot, lambda: panel.session_label.text().startswith("Patient P002"),
                 timeout_s=8)
        wait_for(qtbot, lambda: "P002" in panel.history.title.text())
        # Nothing of P001 is left in the patient areas.
        assert not first_editor.isVisible() and panel.editor_window is None
        assert panel.notes.edit.toPlainText() == ""
        assert "P001" not in panel.history.title.text()
        assert "Avoided the jar" not in panel.history.details.text()
        assert panel.table.isColumnHidden(LAST_COLUMN)  # P002 has no last session
        assert panel.questionnaires.choice.currentData() == "ssq"  # P002's plan, not IPQ
        assert any("patient P001's editor and notes closed" in e.text
                   for e in panel.model.log)
        # The editor now opens for P002.
        wait_for(qtbot, panel.edit_button.isEnabled)
        click(qtbot, panel.edit_button)
        wait_for(qtbot, lambda: panel.editor_window is not None
                 and panel.editor_window.isVisible())
        assert panel.editor_window is not None
        assert "P002" in panel.editor_window.windowTitle()
        assert panel.editor_window.editor.patient_id == "P002"
        panel.editor_window.close()
        # A note typed now reaches P002's recording with nothing of P001's.
        panel.send("start_exposure")
        wait_for(qtbot, panel.notes.edit.isEnabled)
        panel.notes.edit.setFocus()
        qtbot.keyClicks(panel.notes.edit, "Calm today")
        wait_for(qtbot, lambda: panel.notes.status.text().startswith("✓ saved at"))
    finally:
        second.close()
    notes = [e["text"] for e in events_from_recording(read_xdf(second.recording_path))
             if e.get("kind") == "note"]
    assert notes and notes[-1] == "Calm today"
    assert not any("jar" in n for n in notes)
