"""Top steps a clinician would sign off, measured in rendered pixels from the patient's eye.

Each test renders a shipped hierarchy step the way ``check-scenes`` does (headset field
of view, seated eye, settled) or the way the contact sheet does (the engine's desktop
view), and measures what the feared situation needs to show: the close walls of a dark
crawlspace, the street through a glass floor, a lit audience, a graded storm.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from vrexposure.hierarchy import Hierarchy, load_hierarchy
from vrexposure.plugins import builtin_dir, discover_scenes
from vrexposure.render.snapshot import render_settled

from .render_fixtures import shared_engine

pytestmark = pytest.mark.render


def lum(image: NDArray[np.uint8]) -> NDArray[np.float64]:
    return image[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def spread(values: NDArray[np.float64]) -> float:
    """5th to 95th percentile range (grey levels): how much can be told apart."""
    low, high = np.percentile(values, [5.0, 95.0])
    return float(high - low)


def hierarchy(name: str) -> Hierarchy:
    return load_hierarchy(builtin_dir("hierarchies") / f"{name}.yaml", discover_scenes())


def step_index(h: Hierarchy, step_id: str) -> int:
    return next(i for i, s in enumerate(h.steps) if s.id == step_id)


@pytest.fixture(scope="module")
def checker() -> Iterator[Any]:
    from vrexposure.scene_check import SceneChecker

    engine = shared_engine()
    with SceneChecker(engine, keep_images=True) as chk:
        yield chk
    engine.set_head_pose((0, 0, 0), (0, 0, 0))


def headset_view(checker: Any, name: str, step_id: str, level: float) -> Any:
    """The check-scenes measure (image and stimulus mask) of one step at ``level``."""
    h = hierarchy(name)
    return checker.measure(h.scene, h.step_params(step_index(h, step_id), level,
                                                  discover_scenes()))


def sheet_view(name: str, step_id: str, level: float) -> NDArray[np.uint8]:
    """The contact sheet's picture of one step (the engine's desktop view, 3 s settled)."""
    engine = shared_engine()
    h = hierarchy(name)
    engine.set_head_pose((0, 0, 0), (0, 0, 0))
    render_settled(engine, h.scene, h.step_params(step_index(h, step_id), level,
                                                  discover_scenes()))
    image: NDArray[np.uint8] = engine.read_pixels()
    return image


def centre(image: NDArray[Any], share: float = 0.5) -> NDArray[Any]:
    """The middle ``share`` of the picture in each direction (the central view)."""
    h, w = image.shape[:2]
    dh, dw = round(h * (1 - share) / 2), round(w * (1 - share) / 2)
    return image[dh:h - dh, dw:w - dw]


# --------------------------------------------------------------------------- claustrophobia


@pytest.mark.parametrize("step_id", ["crawlspace", "closet-dark"])
def test_dark_closed_in_steps_show_the_close_walls_by_torchlight(checker: Any,
                                                                 step_id: str) -> None:
    """Dark, but not a headset that switched off: a torch's pool on the close door and
    walls, their boards and seams readable, real contrast in the central view."""
    m = headset_view(checker, "claustrophobia", step_id, 1.0)
    assert m.mask is not None
    stimulus = lum(m.image)[m.mask]
    assert spread(stimulus) >= 50.0  # was 37 (walls and door one dim brown)
    central = lum(centre(m.image))
    assert spread(central) >= 60.0  # was 1-4 grey levels
    assert np.percentile(central, 95) >= 100.0  # the pool is lit, not a dim smudge (was 19-28)
    assert np.median(lum(m.image)) < 40.0  # and the place stays dark
    thumb = lum(sheet_view("claustrophobia", step_id, 1.0))
    assert thumb.std() >= 20.0  # the sheet's thumbnail was near-uniform (std 0.4-7)
    assert spread(centre(thumb)) >= 60.0  # was 0-2
