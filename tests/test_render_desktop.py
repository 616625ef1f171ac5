"""The desktop back-end in a real X server (Xvfb): the patient's window, its keys, its pixels.

``vrexposure render --backend desktop`` runs as a subprocess on a private Xvfb
display with a real session host. The window is drawn through GLX (Mesa), its
frames come back as the preview the panel shows, and a key pressed in the
window (xdotool, a real X key event) reaches the host as the patient's pause.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from vrexposure.client import ControlClient, Subscriber
from vrexposure.config import Endpoints, write_config
from vrexposure.host import SessionHost
from vrexposure.protocol import DataMessage
from vrexposure.render.process import MOUSE_DEG_PER_PX
from vrexposure.state import Phase

from .panel_x import xdotool, xvfb

pytestmark = [pytest.mark.render, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def display() -> Iterator[str]:
    """A private Xvfb server; its DISPLAY name."""
    with xvfb(1280, 800) as name:
        yield name


def wait_for(sub: Subscriber, test: Callable[[DataMessage], bool],
             timeout_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        message = sub.recv(0.5)
        if message is not None and test(message):
            return dict(message.payload)
    raise AssertionError("timed out")


def test_desktop_window_draws_the_scene_and_takes_the_patients_keys(
        display: str, host: SessionHost, endpoints: Endpoints, tmp_path: Path) -> None:
    config = write_config(tmp_path / "config.yaml", endpoints,
                          renderer={"preview_rate_hz": 4, "preview_width_px": 320})
    env = {**os.environ, "DISPLAY": display,
           "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH"))
                                         if p)}
    sub = Subscriber(endpoints, topics=("render.main", "preview.main", "pose.head"))
    therapist = ControlClient(endpoints.control, "therapist", "t-desktop")
    renderer = subprocess.Popen(
        [sys.executable, "-m", "vrexposure", "render", "--backend", "desktop", "--config",
         str(config), "--width", "640", "--height", "360"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        stats = wait_for(sub, lambda m: m.topic == "render.main" and "pipe" in m.payload, 60)
        assert stats["backend"] == "desktop"
        assert "glx" in str(stats["pipe"]).lower()
        assert (stats["width_px"], stats["height_px"]) == (640, 360)

        reply = therapist.send("start_exposure", {"step": 6})
        shown = wait_for(sub, lambda m: m.payload.get("event") == "state_shown"
                         and m.payload["seq"] >= reply.state_seq, 20)
        # The fade from the calm scene takes under a second: take a preview made well after
        # it (frames are no clock: a fast window makes 30 of them in half a second).
        shown_at_s = time.monotonic()
        preview = wait_for(sub, lambda m: m.topic == "preview.main"
                           and int(m.payload["frame"]) > int(shown["frame"])
                           and time.monotonic() > shown_at_s + 1.5, 20)
        image = np.asarray(Image.open(io.BytesIO(bytes(preview["jpeg"]))).convert("RGB"))
        assert image.shape[1] == 320
        Image.fromarray(image).save(tmp_path / "desktop-preview.png")
        assert image.std() > 20  # a lit room with spiders, not a blank window

        window = xdotool(display, "search", "--sync", "--name", "vrexposure").split()[0]
        xdotool(display, "windowfocus", "--sync", window)

        # Mouse-look: the pointer is re-centred every frame; moving it right turns the head.
        def yaw_now() -> float:
            sub.drain()
            return float(wait_for(sub, lambda m: m.topic == "pose.head", 5)["yaw_deg"])

        before = yaw_now()
        xdotool(display, "mousemove", "--window", window, str(320 + 100), "180")
        deadline = time.monotonic() + 10
        while (turned := yaw_now() - before) > -5.0:
            assert time.monotonic() < deadline, f"yaw moved {turned:.1f}° after the mouse"
        assert turned == pytest.approx(-100 * MOUSE_DEG_PER_PX, abs=3.0)

        xdotool(display, "key", "--window", window, "space")
        deadline = time.monotonic() + 15
        while host.state.phase != Phase.PAUSED:
            assert time.monotonic() < deadline, f"phase {host.state.phase} after Space"
            time.sleep(0.05)
        assert host.state.phase == Phase.PAUSED
    finally:
        therapist.close()
        sub.close()
        renderer.send_signal(signal.SIGTERM)
        try:
            out, _ = renderer.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            renderer.kill()
            out, _ = renderer.communicate()
    assert "Traceback" not in out, out[-3000:]
    assert renderer.returncode in (0, -signal.SIGTERM), out[-3000:]
