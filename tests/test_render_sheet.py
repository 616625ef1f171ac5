"""The clinician's contact sheet: every step at intensity 0 and 1 with label and SUDS."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vrexposure.hierarchy import parse_hierarchy
from vrexposure.plugins import discover_scenes
from vrexposure.render.snapshot import SHEET_HEADER_H, SHEET_PAD, SHEET_TEXT_W, contact_sheet

from .render_fixtures import HEIGHT, WIDTH, shared_engine

TWO_STEPS = """
id: t
title: Two steps
scene: spiders
steps:
  - id: far
    label: A spider in a terrarium
    expected_suds: 20
    params: {count: 1, size_cm: 7, contained: true}
    intensity: {distance_m: [2.0, 1.0]}
  - id: near
    label: Spiders at the feet
    expected_suds: 90
    params: {count: 8, size_cm: 12, species: tarantula, approach: true}
    intensity: {distance_m: [0.8, 0.3]}
"""


@pytest.mark.render
def test_contact_sheet_shows_every_step_at_both_intensities(tmp_path: Path) -> None:
    hierarchy, _ = parse_hierarchy(TWO_STEPS, "t.yaml")
    assert hierarchy is not None
    out = contact_sheet(hierarchy, discover_scenes(), tmp_path / "sheet.png",
                        settle_s=1.0, engine=shared_engine())
    sheet = np.asarray(Image.open(out).convert("RGB")).astype(int)
    assert sheet.shape[1] == SHEET_TEXT_W + 2 * (WIDTH + SHEET_PAD) + SHEET_PAD
    assert sheet.shape[0] == SHEET_HEADER_H + 2 * (HEIGHT + SHEET_PAD) + SHEET_PAD
    for row in range(2):
        y = SHEET_HEADER_H + row * (HEIGHT + SHEET_PAD)
        low = sheet[y:y + HEIGHT, SHEET_TEXT_W + SHEET_PAD:][:, :WIDTH]
        high = sheet[y:y + HEIGHT, SHEET_TEXT_W + 2 * SHEET_PAD + WIDTH:][:, :WIDTH]
        assert low.std() > 10 and high.std() > 10  # pictures, not blank cells
        assert np.abs(low - high).max(axis=2).mean() > 2  # intensity shows
        text = sheet[y:y + HEIGHT, :SHEET_TEXT_W]
        assert (text.sum(axis=2) < 300).sum() > 200  # the label and SUDS are written
        red = (text[..., 0] > 120) & (text[..., 1] < 80)  # "expected SUDS" in red
        assert red.sum() > 20
    first = sheet[SHEET_HEADER_H:SHEET_HEADER_H + HEIGHT, SHEET_TEXT_W + SHEET_PAD:][:, :WIDTH]
    last_y = SHEET_HEADER_H + HEIGHT + SHEET_PAD
    last = sheet[last_y:last_y + HEIGHT, SHEET_TEXT_W + SHEET_PAD:][:, :WIDTH]
    assert np.abs(first - last).max(axis=2).mean() > 5  # the steps differ
