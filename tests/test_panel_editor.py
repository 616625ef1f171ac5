"""The patient record in the panel, in the real window against a real host (offscreen Qt):
the hierarchy editor opened for the session's patient (its own non-modal window, STOP live),
the headset showing the step being edited, and last session's SUDS beside today's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from vrexposure.cli_panel import clinic_editor
from vrexposure.clinic import open_store
from vrexposure.clinic.history import LastStep, PatientHistory
from vrexposure.host import SessionHost
from vrexposure.panel.hierarchy_area import LAST_COLUMN
from vrexposure.panel.hierarchy_editor import SUDS_COLUMN
from vrexposure.panel.window import PanelWindow
from vrexposure.state import Phase

from .test_panel_window import click, open_panel, running_panel, wait_for


@pytest.fixture
def clinic_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'clinic.sqlite3'}"
    with open_store(url) as store:
        store.add_patient("P001")  # the host fixture's patient
    return url


def _history(patient_id: str) -> PatientHistory:
    return PatientHistory(patient_id, None, [], [LastStep(2, "jar-near", 55, 30),
                                                 LastStep(3, "free-far", 40, None)], [], [])


@pytest.fixture
def panel(qtbot: QtBot, host: SessionHost, clinic_url: str) -> Iterator[PanelWindow]:
    yield from running_panel(qtbot, host.endpoints, history=_history,
                             editor=clinic_editor({"database": {"url": clinic_url}}))


def test_editor_opens_for_the_patient_previews_saves_and_stop_stays_live(
        qtbot: QtBot, panel: PanelWindow, host: SessionHost, clinic_url: str) -> None:
    wait_for(qtbot, panel.edit_button.isEnabled)
    qtbot.keyClick(panel, Qt.Key.Key_H, Qt.KeyboardModifier.ControlModifier)
    wait_for(qtbot, lambda: panel.editor_window is not None
             and panel.editor_window.isVisible())
    window = panel.editor_window
    assert window is not None
    assert window.isWindow() and not window.isModal()
    assert QApplication.activeModalWidget() is None  # nothing blocks the panel
    assert "P001" in window.windowTitle()
    editor = window.editor
    # no version of their own yet: the session's template, by its id
    ids = [editor.table.item(r, 1).text() for r in range(editor.table.rowCount())]
    assert ids[:2] == ["jar-far", "jar-near"]

    # the step chosen in the editor is what the headset shows (and the panel's state says)
    editor.table.selectRow(3)
    step_id = editor.table.item(3, 1).text()
    wait_for(qtbot, lambda: host.state.preview is not None
             and host.state.preview[0] == step_id)
    wait_for(qtbot, lambda: (panel.model.state or {}).get("scene") == host.hierarchy.scene)
    assert (panel.model.state or {}).get("preview", {}).get("step_id") == step_id
    wait_for(qtbot, lambda: f"step {step_id} (editing)" in panel.clock_label.text())
    # as exposure starts the step: the intensity range's first value, not the step's own
    start = host.hierarchy.steps[3].intensity
    assert start
    for name, (low, _high) in start.items():
        assert host.state.preview[1][name] == pytest.approx(low)

    # the patient rates a step; saved as a new version of their record
    editor.table.item(0, SUDS_COLUMN).setText("15")
    click(qtbot, editor.buttons["save"])
    with open_store(clinic_url) as store:
        versions = store.hierarchy_versions("P001")
        assert [v.version for v in versions] == [1]
        assert "expected_suds: 15" in versions[0].yaml_text
    wait_for(qtbot, lambda: "Saved hierarchy version 1" in panel.status_text())

    # F12 with the editor in front: STOP, the calm scene, the preview gone
    window.activateWindow()
    qtbot.keyClick(editor.table, Qt.Key.Key_F12)
    wait_for(qtbot, lambda: host.state.phase == Phase.SAFE)
    assert host.state.preview is None
    wait_for(qtbot, lambda: (panel.model.state or {}).get("scene") == host.hierarchy.calm_scene)


def test_closing_the_editor_ends_the_preview(qtbot: QtBot, panel: PanelWindow,
                                             host: SessionHost) -> None:
    wait_for(qtbot, panel.edit_button.isEnabled)
    click(qtbot, panel.edit_button)
    window = panel.editor_window
    assert window is not None
    window.editor.table.selectRow(1)
    wait_for(qtbot, lambda: host.state.preview is not None)
    window.close()
    wait_for(qtbot, lambda: host.state.preview is None)
    assert host.state.phase == Phase.IDLE


def test_last_sessions_suds_beside_todays(qtbot: QtBot, panel: PanelWindow) -> None:
    table = panel.table
    wait_for(qtbot, lambda: table.rowCount() > 3 and table.item(1, LAST_COLUMN) is not None
             and table.item(1, LAST_COLUMN).text() == "55→30")
    assert table.item(2, LAST_COLUMN).text() == "40→?"
    assert table.item(0, LAST_COLUMN).text() == "–"
    header = table.horizontalHeaderItem(LAST_COLUMN)
    assert header is not None and header.text() == "Last"
    assert not table.isColumnHidden(LAST_COLUMN)


def test_no_clinic_record_no_editor(qtbot: QtBot, host: SessionHost) -> None:
    window = open_panel(qtbot, host.endpoints)
    try:
        qtbot.waitUntil(lambda: window.model.state is not None, timeout=5000)
        assert not window.edit_button.isEnabled()
        assert window.table.isColumnHidden(LAST_COLUMN)  # no record: no room taken
        window.open_editor()
        assert window.editor_window is None and "no clinic record" in window.status_text()
    finally:
        window.shutdown()



def test_a_record_that_cannot_be_written_keeps_the_draft(qtbot: QtBot, clinic_url: str) -> None:
    from sqlalchemy import create_engine

    from vrexposure.clinic.draft import HierarchyDraft
    from vrexposure.clinic.store import ClinicStore
    from vrexposure.panel.hierarchy_editor import HierarchyEditor

    from .conftest import HIERARCHIES

    # the same database, opened read-only by SQLite itself: every write is refused
    path = clinic_url.removeprefix("sqlite:///")
    store = ClinicStore(create_engine(f"sqlite:///file:{path}?mode=ro&uri=true"))
    editor = HierarchyEditor(store, "P001",
                             HierarchyDraft((HIERARCHIES / "arachnophobia.yaml").read_text()))
    qtbot.addWidget(editor)
    editor.draft.set_expected_suds(0, 15)
    try:
        assert editor.save() is None
    finally:
        store.close()
    assert editor.status.text().startswith("Not saved: the clinic record answered")
    assert "readonly" in editor.status.text().replace(" ", "").lower()
    assert editor.draft.steps[0]["expected_suds"] == 15  # the work is still there
    with open_store(clinic_url) as check:
        assert check.hierarchy_versions("P001") == []
