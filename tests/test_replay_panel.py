"""The panel attaches to a replay unchanged and shows the session as it was recorded."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from pytestqt.qtbot import QtBot

from vrexposure.client import ControlClient
from vrexposure.hierarchy import Hierarchy
from vrexposure.host import SessionHost
from vrexposure.replay import Replayer

from .conftest import free_endpoints
from .test_panel_window import open_panel, wait_for


def record_session(hierarchy: Hierarchy, config: dict[str, Any], tmp_path: Path) -> Path:
    endpoints = free_endpoints()
    host = SessionHost(hierarchy, "P001", endpoints, config, recording_dir=tmp_path).start()
    ctl = ControlClient(endpoints.control, "therapist", "t")
    try:
        ctl.send("start_exposure")
        ctl.send("suds", {"value": 40})
        ctl.send("suds", {"value": 35})
        ctl.send("next")
        ctl.send("suds", {"value": 62})
        time.sleep(0.5)
    finally:
        ctl.close()
        host.close()
    return host.recording_path


def test_replayed_session_shows_its_suds_and_refuses_commands(
        qtbot: QtBot, hierarchy: Hierarchy, config: dict[str, Any], tmp_path: Path) -> None:
    recording = record_session(hierarchy, config, tmp_path)
    endpoints = free_endpoints()
    replay = Replayer(recording, endpoints, speed=1.0, hold=True).start()
    panel = open_panel(qtbot, endpoints)
    try:
        wait_for(qtbot, lambda: panel.model.state is not None
                 and panel.model.state["step_index"] == 1, 15.0)
        wait_for(qtbot, lambda: "40" in panel.table.item(0, 3).text()
                 and "35" in panel.table.item(0, 3).text())
        assert "62" in panel.table.item(1, 3).text()
        assert panel.table.item(1, 0).text().startswith("▶")
        # Read-only: the replay answers a command with a clear error, shown to the user.
        panel.next_button.click()
        wait_for(qtbot, lambda: "read-only replay" in panel.status_text())
    finally:
        panel.shutdown()
        replay.close()
