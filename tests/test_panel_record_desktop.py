"""The patient record in the panel, in a real X server (Xvfb): ``vrexposure panel`` with a
clinic database shows the patient's history, opens the hierarchy editor in its own window
(Ctrl+H), the headset shows the step chosen there, the edit is saved as a new version in the
database, and F12 stops the session with the editor in front. Keys are real X key events
(xdotool); screenshots are read from the X server and saved for the docs.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vrexposure.client import ControlClient
from vrexposure.config import Endpoints, load_config
from vrexposure.hierarchy import load_hierarchy
from vrexposure.host import SessionHost
from vrexposure.state import Phase

from .conftest import HIERARCHIES
from .panel_x import ROOT, XDOTOOL, panel_process, panel_window, screenshot, xdotool, xvfb
from .test_clinic_history import _store_with_two_sessions

pytestmark = [pytest.mark.slow]

#: With this set (to 1), the screenshots also replace the docs' (docs/images), which a person
#: looks at before committing them; otherwise they stay in the test's folder.
SAVE_DOCS_ENV = "VREXPOSURE_SAVE_DOC_IMAGES"


def save_shot(image: Image.Image, name: str, tmp_path: Path) -> None:
    image.save(tmp_path / name)
    if os.environ.get(SAVE_DOCS_ENV) == "1":
        image.save(ROOT / "docs" / "images" / name)


def wait_until(test: Callable[[], object], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not test():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def find_window(display: str, name: str) -> str | None:
    done = subprocess.run([str(XDOTOOL), "search", "--onlyvisible", "--name", name],
                          capture_output=True, text=True, timeout=30,
                          env={**os.environ, "DISPLAY": display})
    ids = done.stdout.split()
    return ids[0] if done.returncode == 0 and ids else None


def test_history_and_editor_in_the_panel_on_a_real_x_server(endpoints: Endpoints,
                                                            tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'clinic.sqlite3'}"
    _store_with_two_sessions(url, tmp_path / "earlier").close()  # patient P042, two sessions
    hierarchy = load_hierarchy(HIERARCHIES / "arachnophobia.yaml").with_scaled_times(1 / 240)
    host = SessionHost(hierarchy, "P042", endpoints, load_config(),
                       recording_dir=tmp_path / "sessions").start()
    ctl = ControlClient(endpoints.control, "therapist", "t-ctl")
    try:
        with xvfb(1920, 1080) as display, panel_process(
                display, endpoints, tmp_path, database={"url": url}) as panel:
            window = panel_window(display)
            xdotool(display, "windowfocus", "--sync", window)
            wait_until(lambda: host.controller == "x-panel", 30, "the panel never took control")
            time.sleep(2.0)  # the state, and the history read from the database, on screen
            shot = screenshot(display)
            save_shot(shot, "panel-history.png", tmp_path)
            assert np.asarray(shot).std() > 10

            # Ctrl+H: the editor for this session's patient, in a window of its own
            xdotool(display, "key", "--window", window, "ctrl+h")
            wait_until(lambda: find_window(display, "hierarchy of patient P042"), 20,
                       "the editor window did not appear")
            editor = find_window(display, "hierarchy of patient P042")
            assert editor is not None and editor != window
            xdotool(display, "windowmove", "--sync", editor, "470", "150")  # STOP in view
            xdotool(display, "windowfocus", "--sync", editor)
            # ↓ ↓: step 2 chosen; the headset shows it (the host's state says so)
            xdotool(display, "key", "Down", "Down")
            wait_until(lambda: host.state.preview is not None
                       and host.state.preview[0] == "jar-near", 10, "no preview of step 2")
            assert host.state.phase == Phase.IDLE
            assert host.state_payload(host.clock.now())["scene"] == hierarchy.scene
            # the patient rates step 2 at 25: typed into its SUDS cell, Ctrl+S saves
            xdotool(display, "key", "Right", "Right", "Right")
            xdotool(display, "type", "25")
            xdotool(display, "key", "Return")
            time.sleep(0.5)
            editor_shot = screenshot(display)
            save_shot(editor_shot, "hierarchy-editor.png", tmp_path)
            xdotool(display, "key", "ctrl+s")

            def saved_versions() -> list[str]:
                from vrexposure.clinic import open_store

                with open_store(url) as store:
                    return [v.yaml_text for v in store.hierarchy_versions("P042")]

            wait_until(lambda: len(saved_versions()) == 1, 10, "no version saved")
            text = saved_versions()[0]
            assert "id: jar-near" in text
            step2 = text[text.index("id: jar-near"):text.index("id: free-far")]
            assert "expected_suds: 25" in step2

            # F12 with the editor in front: STOP reaches the host, the preview ends
            started = time.monotonic()
            xdotool(display, "key", "F12")
            wait_until(lambda: host.state.phase == Phase.SAFE, 10,
                       "F12 in the editor did not STOP")
            print(f"F12 in the editor window: host safe after "
                  f"{1000 * (time.monotonic() - started):.0f} ms")
            assert host.state.preview is None
            assert host.state_payload(host.clock.now())["scene"] == hierarchy.calm_scene
            assert panel.poll() is None
    finally:
        ctl.close()
        host.close()
