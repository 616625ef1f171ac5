"""The therapist panel in a real X server: Xvfb, the ``vrexposure panel`` process, xdotool.

Shared by the X-server panel tests and by ``python -m tests.panel_x`` (which saves the
README screenshots). The panel runs as its own process (the tests' own Qt is offscreen);
the host and the simulated patient run in the caller's process on loopback sockets.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from PIL import Image, ImageGrab

from vrexposure.config import Endpoints, write_config

ROOT = Path(__file__).resolve().parents[1]
XVFB = shutil.which("Xvfb")
XDOTOOL = shutil.which("xdotool")


@contextmanager
def xvfb(width_px: int, height_px: int) -> Iterator[str]:
    """A private Xvfb server of this size; its DISPLAY name."""
    # They exist on every Debian machine (scripts/test installs them): fail, never skip.
    assert XVFB is not None and XDOTOOL is not None, (
        "Xvfb and xdotool are needed: apt-get install xvfb xdotool (scripts/test does)")
    number = next(n for n in range(190, 290) if not Path(f"/tmp/.X11-unix/X{n}").exists()
                  and not Path(f"/tmp/.X{n}-lock").exists())
    server = subprocess.Popen([XVFB, f":{number}", "-screen", "0",
                               f"{width_px}x{height_px}x24", "-nolisten", "tcp"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not Path(f"/tmp/.X11-unix/X{number}").exists():
        assert server.poll() is None, "Xvfb exited"
        assert time.monotonic() < deadline, "Xvfb did not start"
        time.sleep(0.05)
    try:
        yield f":{number}"
    finally:
        server.terminate()
        server.wait(10)


def xdotool(display: str, *args: str) -> str:
    assert XDOTOOL is not None
    done = subprocess.run([XDOTOOL, *args], capture_output=True, text=True, timeout=30,
                          env={**os.environ, "DISPLAY": display})
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def screenshot(display: str) -> Image.Image:
    """The whole X screen, as a person in front of it would see it."""
    return ImageGrab.grab(xdisplay=display).convert("RGB")


@contextmanager
def panel_process(display: str, endpoints: Endpoints, tmp_path: Path,
                  extra_args: tuple[str, ...] = (), **config: Any
                  ) -> Iterator[subprocess.Popen[str]]:
    """``vrexposure panel`` on ``display``; stopped with SIGTERM afterwards."""
    config_file = write_config(tmp_path / "panel-config.yaml", endpoints, **config)
    env = {**os.environ, "DISPLAY": display, "QT_QPA_PLATFORM": "xcb",
           "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH"))
                                         if p)}
    process = subprocess.Popen(
        [sys.executable, "-m", "vrexposure", "panel", "--config", str(config_file),
         "--client-id", "x-panel", *extra_args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.communicate(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()


def panel_window(display: str, timeout_s: float = 60.0) -> str:
    """The X id of the panel's main window, once it is mapped."""
    deadline = time.monotonic() + timeout_s
    while True:
        done = subprocess.run([str(XDOTOOL), "search", "--onlyvisible", "--name",
                               "therapist panel"], capture_output=True, text=True,
                              timeout=30, env={**os.environ, "DISPLAY": display})
        if done.returncode == 0 and done.stdout.split():
            return done.stdout.split()[0]
        assert time.monotonic() < deadline, "the panel window did not appear"
        time.sleep(0.2)


def window_geometry(display: str, window: str) -> tuple[int, int, int, int]:
    """x, y, width, height of an X window."""
    values = dict(line.split("=", 1) for line in
                  xdotool(display, "getwindowgeometry", "--shell", window).splitlines())
    return int(values["X"]), int(values["Y"]), int(values["WIDTH"]), int(values["HEIGHT"])


def save_screenshot(width_px: int, height_px: int, out: Path, settle_s: float = 25.0) -> None:
    """A realistic session on screen (simulated patient in exposure), saved as PNG."""
    import tempfile

    from vrexposure.client import ControlClient
    from vrexposure.config import load_config
    from vrexposure.hierarchy import load_hierarchy
    from vrexposure.host import SessionHost
    from vrexposure.sim import SimSettings, SimulatedPatient

    from .conftest import HIERARCHIES, free_endpoints

    endpoints = free_endpoints()
    config = load_config()
    hierarchy = load_hierarchy(HIERARCHIES / "acrophobia.yaml").with_scaled_times(1 / 20)
    with tempfile.TemporaryDirectory() as tmp, xvfb(width_px, height_px) as display:
        host = SessionHost(hierarchy, "P007", endpoints, config,
                           recording_dir=Path(tmp) / "sessions").start()
        patient = SimulatedPatient(endpoints, SimSettings.from_config(config, ecg=True)).start()
        try:
            with panel_process(display, endpoints, Path(tmp)):
                panel_window(display)
                drive = ControlClient(endpoints.control, "therapist", "shot-ctl")
                try:
                    drive.send("start_baseline")
                    time.sleep(settle_s / 2)
                    drive.send("start_exposure", {"step": 3})
                    drive.send("intensity", {"value": 0.6})
                    drive.send("suds", {"value": 45})
                    time.sleep(settle_s / 2)
                    screenshot(display).save(out)
                finally:
                    drive.close()
        finally:
            patient.stop()
            host.close()


if __name__ == "__main__":
    size = sys.argv[1] if len(sys.argv) > 1 else "1366x768"
    w, h = (int(v) for v in size.split("x"))
    save_screenshot(w, h, Path(sys.argv[2] if len(sys.argv) > 2 else f"/tmp/panel-{size}.png"))
