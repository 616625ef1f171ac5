"""Every step of every shipped hierarchy renders, and the steps look different."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from vrexposure.hierarchy import load_hierarchy
from vrexposure.plugins import builtin_hierarchies, discover_scenes

from .render_fixtures import changed_fraction, engine, snap  # noqa: F401 - engine is a fixture

pytestmark = pytest.mark.render


@pytest.mark.parametrize("path", builtin_hierarchies(), ids=lambda p: p.stem)
def test_every_step_renders_at_both_ends_of_its_intensity_range(engine: Any,  # noqa: F811
                                                                 path: Any) -> None:
    hierarchy = load_hierarchy(path)
    scenes = discover_scenes()
    first = last = None
    for index, step in enumerate(hierarchy.steps):
        for intensity in (0.0, 1.0):
            pixels = snap(engine, hierarchy.scene,
                          hierarchy.step_params(index, intensity, scenes))
            # Something is drawn: not a uniform or black frame.
            assert pixels.std() > 4.0, (step.id, intensity)
            assert pixels.mean() > 10.0, (step.id, intensity)
            if index == 0 and intensity == 0.0:
                first = pixels
            last = pixels
    assert first is not None and last is not None
    # The top of the hierarchy does not look like its bottom.
    assert changed_fraction(first, last) > 0.05
    assert not np.array_equal(first, last)
