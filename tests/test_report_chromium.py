"""Both pages opened in a real browser: Debian's ``chromium`` headless takes screenshots of
the session report and the progress page, and the screenshots must show the page (text,
tiles, the embedded figures in their colours), not a blank or broken one.

CI installs chromium; without it this test fails with a message saying so (it never skips).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from vrexposure.report import write_progress, write_report

from .test_report_readable import _progress_folder

WIDTH_PX, HEIGHT_PX = 1280, 2600


def chromium() -> str:
    for name in (os.environ.get("VREXPOSURE_CHROMIUM", ""), "chromium", "chromium-browser"):
        if name and shutil.which(name):
            return str(shutil.which(name))
    raise AssertionError("chromium is not installed: the report pages are checked in a "
                         "real browser (Debian: apt-get install chromium; or set "
                         "VREXPOSURE_CHROMIUM to its path)")


def screenshot(page: Path, out: Path) -> np.ndarray:
    """The page as chromium draws it (RGB array), from a fresh profile, without network."""
    with tempfile.TemporaryDirectory(prefix="vrexposure-chromium-") as profile:
        result = subprocess.run(
            [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--hide-scrollbars",
             f"--user-data-dir={profile}", f"--screenshot={out}",
             f"--window-size={WIDTH_PX},{HEIGHT_PX}", page.resolve().as_uri()],
            capture_output=True, timeout=120, check=False)
    assert out.exists(), f"chromium wrote no screenshot: {result.stderr.decode()[-2000:]}"
    with Image.open(out) as image:
        return np.asarray(image.convert("RGB"))



def _near(pixels: np.ndarray, hex_colour: str, tolerance: int = 12) -> int:
    """How many pixels have (about) this colour."""
    rgb = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)])
    return int(np.sum(np.all(np.abs(pixels.astype(int) - rgb) <= tolerance, axis=2)))


def assert_a_page(pixels: np.ndarray) -> None:
    assert pixels.shape == (HEIGHT_PX, WIDTH_PX, 3)
    white = np.all(pixels > 245, axis=2)
    dark = np.all(pixels < 80, axis=2)  # text
    assert 0.04 < 1 - white.mean() < 0.9, "a page, neither blank nor a solid colour"
    assert dark[:200].mean() > 0.003, "the title and the first line are drawn at the top"
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 200, "figures, not only text"


def test_report_and_progress_pages_in_chromium(demo_file: Path, tmp_path: Path) -> None:
    report = write_report(demo_file, tmp_path / "report")
    pixels = screenshot(report.html, tmp_path / "report.png")
    assert_a_page(pixels)
    # the embedded figures drew: the heart-rate line and the first step's bars
    assert _near(pixels, "#c0392b", 30) > 150, "heart-rate line of the timeline"
    assert _near(pixels, "#4e79a7", 6) > 2000, "step 1's SUDS bar and look-away bar"

    folder = _progress_folder(tmp_path / "sessions")
    progress = write_progress(folder, "P042", tmp_path / "progress")
    pixels = screenshot(progress.html, tmp_path / "progress.png")
    assert_a_page(pixels)
    assert _near(pixels, "#4e79a7", 6) > 2000, "highest-step bars and step 1's line"
    assert _near(pixels, "#f28e2b", 6) > 100, "step 2's line"
