"""The patient's SUDS scale is readable at headset resolution (pixels read back).

A child process (Panda3D allows one window per process) renders the head-locked
overlay side-by-side at 2 × 1440 × 1600, 90° per eye — a typical headset — with
the scene hidden, shows one text line at a time and measures its rendered height
in the left eye. Near the centre of a 90° lens 1440 px wide, one degree is
720 px / 57.3° ≈ 12.6 px, the coarsest part of the image.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EYE_W, EYE_H, FOV_DEG = 1440, 1600, 90.0
PX_PER_DEG_CENTRE = (EYE_W / 2) / math.tan(math.radians(FOV_DEG / 2)) * math.pi / 180

MEASURE = r"""
import json, os, sys
import numpy as np
from vrexposure.render.engine import RenderEngine
from vrexposure.render.overlay import PatientOverlay
W, H, FOV = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
eng = RenderEngine("offscreen", W, H, stereo=True, fov_deg=FOV)
eng.show("calm", {})
overlay = PatientOverlay(eng.base.aspect2d, eng.base.camera, aspect_ratio=(W / 2) / H)
overlay.show_suds()
overlay.suds.right()  # a rating chosen (it starts unset): "Your rating: 50"
overlay.update(0.0)
eng.world.hide()
eng.base.win.setClearColor((0, 0, 0, 1))
parts = overlay.suds_root.getChildren()
card = overlay.suds_root.find("**/suds-card")
out = {}
for name in ("suds-card", "suds-title", "suds-subtitle", "label-100", "label-50",
             "suds-value", "suds-hint"):
    for part in parts:
        part.hide()
    overlay.suds_root.find("**/" + name).show()
    eng.step(0.0)
    eye = eng.read_pixels()[:, : W // 2].max(axis=2)
    lit = eye > (8 if name == "suds-card" else 128)
    rows, cols = np.nonzero(lit.any(axis=1))[0], np.nonzero(lit.any(axis=0))[0]
    out[name] = [int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])] if len(rows) else None
eng.close()
print(json.dumps(out))
"""


def measure_extents(script: str, timeout_s: float = 120.0) -> dict[str, list[int] | None]:
    """Run a measuring ``script`` (argv: width, height, fov) in its own offscreen process at
    headset size; its last line is JSON: name → [top, bottom, left, right] px or None."""
    env = dict(os.environ)
    env.pop("DISPLAY", None)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    done = subprocess.run([sys.executable, "-c", script, str(2 * EYE_W), str(EYE_H),
                           str(FOV_DEG)], capture_output=True, text=True, timeout=timeout_s,
                          env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, list[int] | None] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.fixture(scope="module")
def extents() -> dict[str, list[int] | None]:
    return measure_extents(MEASURE)


def height_deg(box: list[int] | None) -> float:
    assert box is not None, "nothing was drawn"
    return (box[1] - box[0] + 1) / PX_PER_DEG_CENTRE


def test_scale_numbers_are_at_least_one_degree_tall(extents: dict[str, list[int] | None]) -> None:
    # Digits of the default font: a "1.0°" digit is ~13 px in the eye image.
    assert height_deg(extents["label-50"]) >= 1.0
    assert height_deg(extents["label-100"]) >= 1.0


def test_question_and_rating_are_large(extents: dict[str, list[int] | None]) -> None:
    assert height_deg(extents["suds-title"]) >= 2.0
    assert height_deg(extents["suds-value"]) >= 3.0
    for line in ("suds-subtitle", "suds-hint"):
        assert height_deg(extents[line]) >= 1.4, line


def test_every_line_fits_on_its_card(extents: dict[str, list[int] | None]) -> None:
    card = extents["suds-card"]
    assert card is not None
    for name in ("suds-title", "suds-subtitle", "label-100", "suds-value", "suds-hint"):
        box = extents[name]
        assert box is not None, name
        assert card[2] <= box[2] and box[3] <= card[3], (name, box, card)
        assert card[0] <= box[0] and box[1] <= card[1], (name, box, card)
