"""The heart-rate area with two sources: one headline source, stable colours, stale values."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from pytestqt.qtbot import QtBot

from vrexposure.config import Endpoints
from vrexposure.hierarchy import load_hierarchy
from vrexposure.panel.window import PanelWindow

from .conftest import HIERARCHIES, free_endpoints
from .test_panel_model import data, exposure_state, state_message


@pytest.fixture
def window(qtbot: QtBot) -> Iterator[PanelWindow]:
    endpoints: Endpoints = free_endpoints()  # nothing listens: the model is fed directly
    panel = PanelWindow(endpoints, "hr-panel", start=False)
    qtbot.addWidget(panel)
    panel.show()
    yield panel
    panel.shutdown()


def test_two_sources_one_headline_stable_colours_and_stale_shown(
        qtbot: QtBot, window: PanelWindow) -> None:
    model = window.model
    now = time.monotonic()
    hier = load_hierarchy(HIERARCHIES / "arachnophobia.yaml")
    model.ingest(state_message(exposure_state(hier), 10.0), now)
    for i in range(6):
        model.ingest(data("hr.strap", 5.0 + i, {"bpm": 106.0, "quality": "good"}), now)
        model.ingest(data("hr.oxi", 5.5 + i, {"bpm": 72.0, "quality": "uncertain"}), now)
        window._refresh()
        assert window.hr_value.text() == "106 bpm"  # never flips to the last sender
    strap_color = window.hr_area.source_color("strap")
    assert f"color:{strap_color}'>●</span>&nbsp;<b>strap</b>" in window.legend.text()
    # a third source sorting first does not repaint the others
    model.ingest(data("hr.aaa", 10.0, {"bpm": 80.0, "quality": "uncertain"}), now)
    window._refresh()
    assert window.hr_area.source_color("strap") == strap_color
    pen = window._hr_items["strap"][0].opts["pen"]
    assert pen.color().name() == strap_color  # the trace matches its legend entry
    # the therapist switches the headline to the oximeter
    window.source_combo.setCurrentIndex(window.source_combo.findData("oxi"))
    assert window.hr_value.text() == "72 bpm" and window.hr_detail.text().startswith("oxi,")
    # no fresh value for 12 s: the number is greyed and says how old it is
    window.hr_area.update_numbers(now + 12.0)
    assert window.hr_detail.text().startswith("oxi: stale, ")
    assert "a6adb5" in window.hr_value.styleSheet()


def test_the_ecg_strip_shows_the_stream_and_a_new_session_clears_it(
        qtbot: QtBot, window: PanelWindow) -> None:
    import itertools

    import numpy as np

    from vrexposure import protocol

    model, strip = window.model, window.ecg_strip
    now = time.monotonic()
    hier = load_hierarchy(HIERARCHIES / "arachnophobia.yaml")
    model.ingest(state_message(exposure_state(hier), 10.0), now)
    window._refresh()
    assert strip.isHidden() and window.ecg_title.text() == "ECG: no ECG stream"
    # 5 s of 1 kHz ECG in 20-sample chunks: a flat line with a 1 mV beat every 0.8 s
    values = np.zeros(5000, np.float32)
    values[100::800] = 1.0
    for i in range(0, 5000, 20):
        model.ingest(data("ecg.strap", 5.0 + i / 1000, protocol.chunk_payload(
            values[i:i + 20], 1000.0, "mV"), seq=i // 20), now)
    window._refresh(plots_only=True)
    assert strip.isVisible()
    t, v = strip.trace_points()
    assert t[-1] == 0.0 and t[0] >= -5.0 and np.array_equal(v, values[-t.size:])
    assert window.ecg_title.text() == "ECG (strap, 1000 Hz) — last 5 s"
    qtbot.wait(10)
    image = strip.grab().toImage()
    tall = [x for x in range(int(strip.plot_rect().left()) + 1, image.width())
            if sum(image.pixelColor(x, y).value() < 100
                   for y in range(0, round(strip.value_to_y(0.6)))) > 0]
    beats = 1 + sum(1 for a, b in itertools.pairwise(tall) if b - a > 1)
    assert tall and beats == 7  # every beat drawn
    # a new session: no trace, hidden, the title as at the start
    model.ingest(state_message(exposure_state(hier), 11.0, session_id="s2"), now)
    window._refresh()
    assert strip.isHidden() and strip.trace_points()[0].size == 0
    assert window.ecg_title.text() == "ECG: no ECG stream"
