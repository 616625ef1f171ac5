"""The patient's course for the panel: the data from the clinic database, and the widget
seen on screen (offscreen Qt, grabbed)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from PySide6.QtGui import QImage
from pytestqt.qtbot import QtBot

from vrexposure.clinic import ClinicStore, open_store
from vrexposure.clinic.history import patient_history
from vrexposure.clinic.index import reindex
from vrexposure.panel.history import HistoryWidget

from .clinic_support import db_url, postgres_server  # noqa: F401  (fixtures)
from .test_clinic_store import _second_session
from .test_report import RICH_EVENTS, write_session


def _store_with_two_sessions(url: str, folder: Path) -> ClinicStore:
    folder.mkdir(parents=True, exist_ok=True)
    # The first session leaves an expectancy without its outcome (still open).
    events = [e for e in RICH_EVENTS if e[1] != "expectancy_outcome"]
    hr = [(float(t), 80.0, "good") for t in range(34)]
    write_session(folder / "P042_1.xdf", patient="P042", started="2026-11-02T09:00:00+00:00",
                  events=events, hr=hr)
    second = _second_session(folder / "P042_2.xdf")
    store = open_store(url, migrate=True)
    store.start_course("P042", "arachnophobia", datetime(2026, 11, 1).date(), "treatment")
    reindex(store, folder)
    last_id = store.sessions("P042")[-1].session_id
    store.add_note("P042", "first session: anxious but stayed", session_id="older")
    store.add_note("P042", "two STOPs at step 4; try step 3 again", session_id=last_id)
    for day, total in ((2, 84), (9, 71), (16, 60)):
        store.add_questionnaire("P042", "FSQ", datetime(2026, 11, day, tzinfo=UTC),
                                {"total": total})
    assert second.exists()
    return store


def test_history_from_the_database(db_url: str, tmp_path: Path) -> None:  # noqa: F811
    with _store_with_two_sessions(db_url, tmp_path / "sessions") as store:
        history = patient_history(store, "P042")
    assert history.course == "arachnophobia, treatment since 2026-11-01"
    assert [(s.number, s.date, s.highest_step, s.stops) for s in history.sessions] == [
        (1, "2026-11-02", 2, 1), (2, "2026-11-09", 4, 2)]
    # Last session (the second): steps 3 and 4, SUDS 35→55 then 40.
    assert [(s.step, s.suds_peak, s.suds_end) for s in history.last_steps] == [
        (3, 55, 55), (4, 40, 40)]
    assert history.last_suds() == {"free-far": (55, 55), "free-moving": (40, 40)}
    assert history.last_notes == ["two STOPs at step 4; try step 3 again"]
    assert history.questionnaire_trends() == ["FSQ: 84 → 71 → 60"]
    assert history.open_expectancies == []  # the second session recorded none


def test_open_expectancies_come_from_the_last_recording(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.sqlite3'}"
    folder = tmp_path / "sessions"
    folder.mkdir()
    events = [e for e in RICH_EVENTS if e[1] != "expectancy_outcome"]
    write_session(folder / "P042_1.xdf", patient="P042", started="2026-11-02T09:00:00+00:00",
                  events=events, hr=[(float(t), 80.0, "good") for t in range(34)])
    with open_store(url) as store:
        reindex(store, folder)
        history = patient_history(store, "P042")
    assert history.open_expectancies == ["step 1: “It escapes” (60 %)"]


def test_history_widget_shows_the_course(qtbot: QtBot, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.sqlite3'}"
    with _store_with_two_sessions(url, tmp_path / "sessions") as store:
        history = patient_history(store, "P042")
    widget = HistoryWidget()
    qtbot.addWidget(widget)
    widget.resize(900, 520)
    widget.set_history(history)
    widget.show()
    qtbot.waitExposed(widget)

    table = widget.sessions_table
    assert [[table.item(r, c).text() for c in range(4)] for r in range(table.rowCount())] == [
        ["1", "2026-11-02\narachnophobia-standard", "2", "1"],
        ["2", "2026-11-09\narachnophobia-standard", "4", "2"]]
    last = widget.last_table
    assert [[last.item(r, c).text() for c in (0, 2, 3)] for r in range(last.rowCount())] == [
        ["3", "55", "55"], ["4", "40", "40"]]
    assert "two STOPs at step 4" in widget.details.text()
    assert "FSQ: 84 → 71 → 60" in widget.details.text()
    assert "Patient P042 — 2 session(s) — arachnophobia" in widget.title.text()

    # What the therapist sees: a grabbed image with the tables drawn (not a blank widget),
    # and the rows visible inside the sessions table.
    image = widget.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
    path = tmp_path / "history.png"
    assert image.save(str(path))
    pixels = np.frombuffer(image.constBits(), np.uint8).reshape(
        image.height(), image.bytesPerLine() // 4, 4)[:, :image.width(), :3]
    assert pixels.std() > 10
    rect = table.visualItemRect(table.item(1, 1))
    assert rect.isValid() and table.viewport().rect().contains(rect)
    cell = table.viewport().grab(rect).toImage().convertToFormat(QImage.Format.Format_RGB32)
    cell_pixels = np.frombuffer(cell.constBits(), np.uint8).reshape(
        cell.height(), cell.bytesPerLine() // 4, 4)[:, :cell.width(), :3]
    assert (cell_pixels.min(axis=2) < 128).sum() > 20  # dark text drawn in the date cell
