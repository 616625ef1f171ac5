"""Readability: the log in time order, filterable, clinical events set apart; plot labels
that do not overprint."""

from __future__ import annotations

from pytestqt.qtbot import QtBot

from vrexposure.panel.heart_rate import label_row
from vrexposure.panel.log_area import LogArea
from vrexposure.panel.model import PanelModel

from .test_panel_model import data


def test_plot_labels_close_in_time_go_on_other_rows() -> None:
    rows = [-1e9] * 3
    got = [label_row(rows, t, 30.0) for t in (0.0, 5.0, 10.0, 40.0, 41.0, 100.0)]
    assert got == [0, 1, 2, 0, 1, 0]
    full = [0.0, 1.0, 2.0]  # every row taken recently: the oldest one is reused
    assert label_row(full, 3.0, 30.0) == 0


def test_log_is_in_session_time_order_filterable_and_marks_clinical_events(
        qtbot: QtBot) -> None:
    model = PanelModel("panel")
    area = LogArea()
    qtbot.addWidget(area)
    area.show()
    # heard out of order: the acknowledgement (0:12) before the SUDS event (0:11)
    model.add_log("ok", "✓ SUDS 40: acknowledged", 1.0, 12.0)
    model.ingest(data("event", 11.0, {"kind": "suds_recorded", "t_s": 11.0, "value": 40,
                                      "step_index": 0, "by": "therapist:panel"}), 1.1)
    model.ingest(data("event", 5.0, {"kind": "stopped", "t_s": 5.0, "by": "patient:sim",
                                     "reason": "patient STOP"}), 1.2)
    model.add_log("ok", "Connected to session abc", 1.3, 2.0)
    area.add(model.log)
    texts = area.texts()
    assert [t.split()[0] for t in texts] == ["0:02", "0:05", "0:11", "0:12"]
    assert "◆" in texts[1] and "◆" in texts[2]  # STOP and SUDS: clinical
    assert "◆" not in texts[0] and "◆" not in texts[3]  # connection, acknowledgement
    assert area.list.item(2).font().bold() and not area.list.item(3).font().bold()
    area.kind.setCurrentIndex(area.kind.findData("clinical"))
    assert [t.split()[0] for t in area.texts()] == ["0:05", "0:11"]
    area.kind.setCurrentIndex(area.kind.findData("all"))
    area.filter.setText("suds")
    assert len(area.texts()) == 2 and all("SUDS" in t for t in area.texts())
    long_text = "Marker: " + "the patient describes the view in detail " * 5
    model.add_log("event", long_text, 2.0, 20.0, clinical=True)
    area.filter.clear()
    area.add([model.log[-1]])
    assert area.list.item(area.count() - 1).toolTip() == long_text  # readable in full
    assert area.list.wordWrap()
