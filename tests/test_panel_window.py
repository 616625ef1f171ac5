"""The therapist panel against a real session host on loopback (pytest-qt, offscreen)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PySide6.QtCore import QBuffer, QByteArray, QIODevice, QRect, Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QWidget
from pytestqt.qtbot import QtBot

from vrexposure.client import ControlClient, Publisher
from vrexposure.config import Endpoints, load_config
from vrexposure.hierarchy import Hierarchy, load_hierarchy
from vrexposure.host import SessionHost
from vrexposure.panel.window import PanelWindow
from vrexposure.sim import SimSettings, SimulatedPatient
from vrexposure.state import Phase

from .conftest import HIERARCHIES, ROOT

CLIENT = "test-panel"


def open_panel(qtbot: QtBot, endpoints: Endpoints, **kwargs: Any) -> PanelWindow:
    window = PanelWindow(endpoints, CLIENT, **kwargs)
    qtbot.addWidget(window)
    window.show()
    window.activateWindow()
    qtbot.waitExposed(window)
    return window


def running_panel(qtbot: QtBot, endpoints: Endpoints, **kwargs: Any) -> Iterator[PanelWindow]:
    """For a fixture: a panel that has seen the host's state, shut down after the test."""
    window = open_panel(qtbot, endpoints, **kwargs)
    qtbot.waitUntil(lambda: window.model.state is not None, timeout=5000)
    yield window
    window.shutdown()


@pytest.fixture
def panel(qtbot: QtBot, host: SessionHost) -> Iterator[PanelWindow]:
    yield from running_panel(qtbot, host.endpoints)


def click(qtbot: QtBot, widget: QWidget) -> None:
    assert widget.isEnabled(), f"{widget} is disabled"
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton)


def wait_for(qtbot: QtBot, predicate: Callable[[], bool], timeout_s: float = 5.0) -> None:
    qtbot.waitUntil(predicate, timeout=int(timeout_s * 1000))


def test_buttons_slider_and_keys_reach_the_host(qtbot: QtBot, panel: PanelWindow,
                                                host: SessionHost) -> None:
    wait_for(qtbot, lambda: panel.exposure_button.isEnabled())
    click(qtbot, panel.exposure_button)
    wait_for(qtbot, lambda: host.state.phase == Phase.EXPOSURE)
    wait_for(qtbot, lambda: "start exposure — acknowledged by the host" in panel.status_text())
    wait_for(qtbot, lambda: panel.phase_label.text() == "EXPOSURE")

    # the slider, from the keyboard: six page steps of 10 % (sent once the keys stop)
    panel.slider.setFocus()
    for _ in range(6):
        qtbot.keyClick(panel.slider, Qt.Key.Key_PageUp)
    wait_for(qtbot, lambda: host.state.intensity == pytest.approx(0.6))
    wait_for(qtbot, lambda: panel.intensity_value.text() == "60 %")
    qtbot.keyClick(panel, Qt.Key.Key_Up, Qt.KeyboardModifier.ControlModifier)  # Ctrl+Up: +10 %
    wait_for(qtbot, lambda: host.state.intensity == pytest.approx(0.7))

    click(qtbot, panel.next_button)
    wait_for(qtbot, lambda: host.state.step_index == 1)
    wait_for(qtbot, lambda: panel.table.item(1, 0).text().startswith("▶"))
    click(qtbot, panel.prev_button)
    wait_for(qtbot, lambda: host.state.step_index == 0)
    qtbot.keyClick(panel, Qt.Key.Key_PageDown, Qt.KeyboardModifier.ControlModifier)
    wait_for(qtbot, lambda: host.state.step_index == 1)
    assert host.state.intensity == 0.0  # a step change starts the step at intensity 0 ...
    wait_for(qtbot, lambda: panel.slider.value() == 0)  # ... and the slider follows the host

    click(qtbot, panel.suds_buttons[40])
    wait_for(qtbot, lambda: bool(host.state.suds) and host.state.suds[-1].value == 40)
    wait_for(qtbot, lambda: panel.table.item(1, 3).text() == "40")
    # digits anywhere go to the SUDS field; Enter records the value typed
    panel.table.setFocus()
    qtbot.keyClicks(panel.table, "55")
    assert panel.suds_edit.text() == "55"
    qtbot.keyClick(panel.suds_edit, Qt.Key.Key_Return)
    wait_for(qtbot, lambda: host.state.suds[-1].value == 55)
    wait_for(qtbot, lambda: panel.table.item(1, 3).text() == "40 · 55")

    # a letter shortcut still works while the SUDS field has the focus
    qtbot.keyClicks(panel.table, "7")
    qtbot.keyClick(panel.suds_edit, Qt.Key.Key_P)
    wait_for(qtbot, lambda: host.state.phase == Phase.PAUSED)
    assert panel.suds_edit.text() == "7"
    qtbot.keyClick(panel, Qt.Key.Key_P, Qt.KeyboardModifier.ControlModifier
                   | Qt.KeyboardModifier.ShiftModifier)
    wait_for(qtbot, lambda: host.state.phase == Phase.EXPOSURE)


def test_refusals_show_the_host_error(qtbot: QtBot, panel: PanelWindow,
                                      host: SessionHost) -> None:
    panel.send("previous")  # idle: not possible
    wait_for(qtbot, lambda: "refused by the host" in panel.status_text())
    assert "'previous' is not possible while idle" in panel.status_text()
    assert any(e.level == "error" and "previous step" in e.text for e in panel.model.log)
    wait_for(qtbot, lambda: "refused by the host" in
             panel.log_list.item(panel.log_list.count() - 1).text())


def test_stop_is_acknowledged_on_screen(qtbot: QtBot, panel: PanelWindow,
                                        host: SessionHost) -> None:
    panel.send("start_exposure")
    wait_for(qtbot, lambda: host.state.phase == Phase.EXPOSURE)
    assert panel.stop_button.text() == "STOP   [F12]"
    click(qtbot, panel.stop_button)
    wait_for(qtbot, lambda: host.state.phase == Phase.SAFE)
    wait_for(qtbot, lambda: panel.stop_status.text().startswith("✓ STOPPED at ")
             and "by this panel, acknowledged in" in panel.stop_status.text())
    wait_for(qtbot, lambda: panel.phase_label.text() == "STOPPED\ncalm scene")
    assert panel.stop_button.property("acked") is True
    qtbot.keyClick(panel, Qt.Key.Key_F12)  # from the keyboard, again
    wait_for(qtbot, lambda: host.state.stop_count == 2)
    assert panel.resume_button.isEnabled()


def test_simulated_patient_samples_reach_the_plots_and_a_lost_sensor_shows(
        qtbot: QtBot, panel: PanelWindow, host: SessionHost) -> None:
    patient = SimulatedPatient(host.endpoints, SimSettings(answer_suds=True)).start()
    try:
        panel.send("start_exposure")
        wait_for(qtbot, lambda: len(panel.model.hr.get("sim", [])) >= 2, timeout_s=8)
        wait_for(qtbot, lambda: len(panel.model.ecg.get("sim", [])) >= 500)
        wait_for(qtbot, lambda: len(panel.model.rr.get("sim", [])) >= 2)
        line = panel._hr_items["sim"][0]  # what the heart-rate plot draws
        wait_for(qtbot, lambda: line.getData()[1] is not None
                 and np.isfinite(line.getData()[1]).sum() >= 2)
        assert 40 < np.nanmean(line.getData()[1]) < 140
        wait_for(qtbot, lambda: len(panel.ecg_strip.trace_points()[0]) >= 500)
        assert panel.ecg_strip.trace_points()[1].max() > 0.5  # R peaks
        wait_for(qtbot, lambda: "sim (hr/rr/ecg/pose) ●" in panel.sensors_label.text())
        assert panel.hr_value.text().endswith("bpm")
        # pose: the head direction and the look-away share of this step
        wait_for(qtbot, lambda: panel.compass.yaw_deg is not None)
        wait_for(qtbot, lambda: (panel.model.current_look_away() or (0, None))[1] is not None
                 and panel.model.look_away[0].total_s > 0.5)
        assert "Looking away in step 1:" in panel.gaze_share.text()
        # the simulated patient answers a SUDS prompt; the panel shows it
        click(qtbot, panel.ask_button)
        wait_for(qtbot, lambda: bool(host.state.suds))
        wait_for(qtbot, lambda: "by patient" in panel.suds_status.text())
    finally:
        patient.stop()
    started = time.monotonic()
    wait_for(qtbot, lambda: "sim (hr/rr/ecg/pose) LOST" in panel.sensors_label.text())
    assert time.monotonic() - started < 4.0  # silent for 3 s = lost, shown at once


def test_panel_reconnects_after_the_host_restarts(qtbot: QtBot, panel: PanelWindow,
                                                  host: SessionHost, hierarchy: Hierarchy,
                                                  config: dict[str, Any],
                                                  tmp_path: Path) -> None:
    panel.send("start_exposure")
    wait_for(qtbot, lambda: panel.phase_label.text() == "EXPOSURE")
    first_session = panel.model.session_id
    host.close()
    wait_for(qtbot, lambda: panel.host_banner.isVisible()
             and "not responding" in panel.host_banner.text(), timeout_s=5)
    assert "LOST" in panel.links_label.text()
    # STOP while the host is away: it is resent until a host acknowledges it
    qtbot.keyClick(panel, Qt.Key.Key_F12)
    wait_for(qtbot, lambda: "waiting for the host" in panel.stop_status.text())
    second = SessionHost(hierarchy, "P002", host.endpoints, config,
                         recording_dir=tmp_path / "second").start()
    try:
        wait_for(qtbot, lambda: panel.model.session_id == second.session_id, timeout_s=8)
        assert panel.model.session_id != first_session
        wait_for(qtbot, lambda: panel.session_label.text().startswith("Patient P002"))
        wait_for(qtbot, lambda: second.state.phase == Phase.SAFE)
        wait_for(qtbot, lambda: panel.stop_status.text().startswith("✓ STOPPED"))
        wait_for(qtbot, lambda: panel.phase_label.text() == "STOPPED\ncalm scene")
        wait_for(qtbot, lambda: not panel.host_banner.isVisible())
        assert any("Host restarted" in e.text for e in panel.model.log)
        panel.marker_edit.setFocus()
        qtbot.keyClicks(panel.marker_edit, "host came back")
        qtbot.keyClick(panel.marker_edit, Qt.Key.Key_Return)  # commands reach the new host
        wait_for(qtbot, lambda: "marker “host came back”: acknowledged" in
                 " ".join(e.text for e in panel.model.log))
        wait_for(qtbot, lambda: second.controller == CLIENT)  # the heartbeat came back too
    finally:
        second.close()


def test_losing_the_panel_pauses_exposure(qtbot: QtBot, hierarchy: Hierarchy,
                                          endpoints: Endpoints, tmp_path: Path) -> None:
    config = load_config(overrides={"session": {"panel_heartbeat_timeout_s": 1.0}})
    host = SessionHost(hierarchy, "P003", endpoints, config, recording_dir=tmp_path).start()
    panel = open_panel(qtbot, endpoints)
    try:
        wait_for(qtbot, lambda: host.controller == CLIENT)
        wait_for(qtbot, lambda: "In control" in panel.links_label.text())
        panel.send("start_exposure")
        wait_for(qtbot, lambda: host.state.phase == Phase.EXPOSURE)
        panel.bridge.set_heartbeat(False)  # as if the panel had hung or crashed
        wait_for(qtbot, lambda: host.state.phase == Phase.PAUSED, timeout_s=4)
        wait_for(qtbot, lambda: panel.phase_label.text() == "PAUSED")
        wait_for(qtbot, lambda: any("Controlling panel lost" in e.text
                                    for e in panel.model.log))
        panel.bridge.set_heartbeat(True)
        wait_for(qtbot, lambda: "In control" in panel.links_label.text())
        assert host.state.phase == Phase.PAUSED  # it does not resume by itself
    finally:
        panel.shutdown()
        host.close()


def test_read_only_panel_sends_nothing(qtbot: QtBot, host: SessionHost) -> None:
    panel = open_panel(qtbot, host.endpoints, read_only=True)
    try:
        wait_for(qtbot, lambda: panel.model.state is not None)
        assert not panel.stop_button.isEnabled() and not panel.next_button.isEnabled()
        assert panel.send("next") is None and "read-only" in panel.status_text()
        time.sleep(0.8)
        assert host.controller is None
    finally:
        panel.shutdown()


# --- how it looks ------------------------------------------------------------------------

def _publish_renderer_and_sensor(endpoints: Endpoints, stop: threading.Event,
                                 host: SessionHost) -> None:
    """A renderer preview (a scene picture at 4 Hz) and a chest strap with uncertain values."""
    control = ControlClient(endpoints.control, "sensor", "polar1")
    offset = control.sync_clock(rounds=3)
    control.close()
    clock = lambda: time.monotonic() + offset  # noqa: E731
    renderer = Publisher(endpoints.publish, "main", clock=clock)
    strap = Publisher(endpoints.publish, "polar1", clock=clock)
    renderer.wait_connected()
    strap.wait_connected()
    base = QImage(str(ROOT / "docs" / "images" / "spiders.png")).scaledToWidth(
        320, Qt.TransformationMode.SmoothTransformation)
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    assert base.save(buffer, "JPG", 70)
    jpeg = bytes(data.data())
    bpm, frame = 68.0, 0
    while not stop.is_set():
        renderer.publish("preview", {"jpeg": jpeg, "width_px": base.width(),
                                     "height_px": base.height(), "frame": frame})
        if frame % 4 == 0:
            renderer.publish("render", {"fps": 90.0, "frame_ms_p50": 7.9, "frame_ms_p99": 11.6,
                                        "scene": "spiders", "phase": "exposure",
                                        "failsafe": False})
            strap.publish("sensor", {"event": "status", "connected": True, "frames_ok": frame})
        target = 104.0 if host.state.phase == Phase.EXPOSURE else 68.0
        bpm += (target - bpm) * 0.12
        quality = "uncertain" if frame % 6 == 5 else "good"
        strap.publish("hr", {"bpm": round(bpm + (6.0 if quality != "good" else 0.0), 1),
                             "quality": quality})
        frame += 1
        stop.wait(0.25)
    renderer.close()
    strap.close()


def _region(image: QImage, window: PanelWindow, widget: QWidget) -> np.ndarray:
    top_left = widget.mapTo(window, widget.rect().topLeft())
    rect = QRect(top_left, widget.size())
    crop = image.copy(rect).convertToFormat(QImage.Format.Format_RGB888)
    bits = crop.constBits()
    array = np.frombuffer(bits, np.uint8).reshape(crop.height(), crop.bytesPerLine())
    return array[:, :crop.width() * 3].reshape(crop.height(), crop.width(), 3)


def test_grabbed_panel_shows_every_part_with_content(qtbot: QtBot, endpoints: Endpoints,
                                                     config: dict[str, Any],
                                                     tmp_path: Path) -> None:
    hierarchy = load_hierarchy(HIERARCHIES / "arachnophobia.yaml").with_scaled_times(1 / 60)
    host = SessionHost(hierarchy, "P017", endpoints, config, recording_dir=tmp_path).start()
    stop = threading.Event()
    feeder = threading.Thread(target=_publish_renderer_and_sensor, args=(endpoints, stop, host),
                              daemon=True)
    feeder.start()
    patient = SimulatedPatient(endpoints, SimSettings(answer_suds=True)).start()
    panel = open_panel(qtbot, endpoints)
    try:
        panel.send("start_baseline")
        wait_for(qtbot, lambda: host.state.baseline_done, timeout_s=6)
        panel.send("start_exposure")
        panel.send("expectancy", {"outcome": hierarchy.steps[0].expectancy_prompt,
                                  "likelihood_pct": 70})
        wait_for(qtbot, lambda: host.state.phase == Phase.EXPOSURE)
        panel.send("intensity", {"value": 0.6})
        panel.send("suds", {"value": 60})
        panel.send("marker", {"text": "holds breath"})
        qtbot.wait(3500)
        panel.send("suds", {"value": 25})
        wait_for(qtbot, lambda: panel.suggestion_box.isVisible())
        wait_for(qtbot, lambda: panel.mirror.pixmap is not None)
        wait_for(qtbot, lambda: panel.band.isVisible())
        panel.resize(1600, 1000)  # a 1080p screen (the X-server tests try laptop sizes)
        qtbot.wait(600)
        image = panel.grab().toImage()
        image.save(str(tmp_path / "panel.png"))
        image.save("/tmp/vrexposure-panel.png")
        assert image.width() == 1600 and image.height() == 1000  # fits a 1080p screen
        for widget in (panel.hr_plot, panel.ecg_strip, panel.table, panel.mirror,
                       panel.stop_button, panel.log_list):
            pixels = _region(image, panel, widget).reshape(-1, 3)
            colours, counts = np.unique(pixels, axis=0, return_counts=True)
            drawn = 1.0 - counts.max() / counts.sum()  # share of pixels not the background
            assert len(colours) > 20 and drawn > 0.02, f"{widget.objectName()} looks empty"
        # what the parts say
        assert panel.table.rowCount() == 10
        assert panel.table.item(0, 0).text() == "▶ 1"
        assert "60 · 25" in panel.table.item(0, 3).text()
        assert panel.suggestion_label.text().startswith("Advance suggested (go to step 2)")
        assert panel.open_expectancy.text().startswith("Open prediction:")
        assert "baseline" in panel.band_label.text()
        assert "polar1 (hr) ●" in panel.sensors_label.text()
        assert "Renderer ●" in panel.links_label.text()
        _, _, unsure, _ = panel._hr_items["polar1"]
        assert len(unsure.data) >= 1  # uncertain values are drawn, as hollow grey points
    finally:
        stop.set()
        patient.stop()
        panel.shutdown()
        feeder.join(timeout=5)
        host.close()
