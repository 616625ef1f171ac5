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


# --------------------------------------------------------------------------- acrophobia


@pytest.fixture(scope="module")
def sheet_checker() -> Iterator[Any]:
    """check-scenes' measures with the contact sheet's vertical field of view."""
    from vrexposure.scene_check import SceneChecker

    engine = shared_engine()
    vertical_deg = float(engine.base.camLens.getFov()[1])
    with SceneChecker(engine, size_px=128, fov_deg=vertical_deg, keep_images=True) as chk:
        yield chk
    engine.set_head_pose((0, 0, 0), (0, 0, 0))


def edge_row(mask: NDArray[np.bool_]) -> float:
    """Median over columns of the lowest stimulus pixel, as a share of the height."""
    lowest = [np.nonzero(col)[0].max() for col in mask.T if col.any()]
    return float(np.median(lowest)) / mask.shape[0] if lowest else 0.0


@pytest.mark.parametrize("level", [0.0, 1.0])
def test_top_step_stands_at_the_roof_edge_with_the_drop_beyond(sheet_checker: Any,
                                                               level: float) -> None:
    """'At the edge in strong wind': the roof under the feet fills the bottom of the view,
    the edge lies in its lower part and the drop fills everything beyond it (it was an
    aerial map: the drop down to the bottom row, no roof in view)."""
    m = headset_view(sheet_checker, "acrophobia", "no-railing-edge", level)
    mask = m.mask
    h = mask.shape[0]
    assert mask[: h // 2].mean() >= 0.9  # beyond the edge: the drop, not sky
    assert mask[round(0.92 * h):].mean() <= 0.1  # the roof (and the feet) at the bottom
    assert 0.6 <= edge_row(mask) <= 0.9  # the edge in the lower part of the view


def test_glass_floor_shows_the_street_through_tinted_framed_glass(checker: Any) -> None:
    """Standing on the glass at the edge (intensity 1): the drop is seen through the floor
    (and the glass balustrade), tinted and framed — not the dark bars of a railing."""
    m = headset_view(checker, "acrophobia", "glass-floor", 1.0)
    h = m.mask.shape[0]
    assert m.mask[h // 2:].mean() >= 0.6  # the stimulus mask sees the drop through the glass
    scene = checker.engine.current
    glass = [p for name in ("glass-floor", "glass-balustrade")
             for p in scene.root.findAllMatches(f"**/{name}")]
    assert len(glass) == 2
    for path in glass:
        path.hide()
    try:
        bare = checker._render()  # the same view with the glass taken away
    finally:
        for path in glass:
            path.show()
    with_glass, without = lum(m.image[h // 2:]), lum(bare[h // 2:])
    # The street below reads through the glass: the picture follows the one without it...
    assert np.corrcoef(with_glass.ravel(), without.ravel())[0, 1] >= 0.5
    # ...and the glass is there to see (tint, frame), not invisible.
    assert np.abs(m.image[h // 2:].astype(int) - bare[h // 2:]).mean() >= 5.0
    assert with_glass.mean() >= 90.0  # not a dark slab


# --------------------------------------------------------------------------- public speaking

#: Mean luminance (grey levels) of the audience in the check-scenes view at the lecture
#: hall steps: faces, arms and phones read (the audience was 20-38: lit from behind).
AUDIENCE_LUMINANCE_FLOOR = 45.0


@pytest.mark.parametrize("step_id", ["hall-40", "hall-60", "hall-60-critical",
                                     "hall-80-hostile", "hall-80-close"])
def test_lecture_hall_audience_is_lit_under_the_spotlight(checker: Any, step_id: str) -> None:
    for level in (0.0, 1.0):
        m = headset_view(checker, "public_speaking", step_id, level)
        audience = lum(m.image)[m.mask]
        assert audience.mean() >= AUDIENCE_LUMINANCE_FLOOR, (step_id, level, audience.mean())
        assert np.percentile(audience, 90) >= 90.0  # lit faces and shirts, not only dim ones


# --------------------------------------------------------------------------- flying


def test_flying_stimulus_grades_with_turbulence_and_the_filling_cabin(checker: Any) -> None:
    """The window was 19.7° at every step: now the stimulus is the view the windows (and
    the passengers) sweep as the cabin shakes, so turbulence, a storm and a full cabin
    show in the metric, and the harness sees the hierarchy's grading."""
    from vrexposure.scene_check import graded_findings

    def stimulus_deg(params: dict[str, Any]) -> float:
        base = {"flight_phase": "cruise", "cabin_occupancy": 0.0, "turbulence": 0.0,
                "storm": 0.0}
        return float(checker.measure("flying", {**base, **params}).stimulus_deg)

    calm = stimulus_deg({})
    rough = stimulus_deg({"turbulence": 1.0})
    storm = stimulus_deg({"turbulence": 1.0, "storm": 1.0})
    full = stimulus_deg({"cabin_occupancy": 1.0})
    assert rough >= calm * 1.1  # the shaking cabin sweeps the windows across the view
    assert storm > rough  # a thunderstorm shakes harder still
    assert full >= calm * 1.1  # the passengers who fill the cabin
    h = hierarchy("fear_of_flying")
    steps, _findings = checker.check_hierarchy(h, discover_scenes())
    top = [max(s.low.stimulus_deg, s.high.stimulus_deg) for s in steps]
    assert top[-1] == max(top)  # landing in a storm is the worst case
    assert top[-1] >= 1.5 * top[0]
    assert graded_findings(steps) == []  # no step shows less than an easier one
    assert min(s.low.stimulus_deg for s in steps[6:]) > max(s.high.stimulus_deg
                                                          for s in steps[:2])


# --------------------------------------------------------------------------- arachnophobia


def test_top_step_tarantula_walks_onto_the_patients_hand(checker: Any) -> None:
    """The classic top item: the nearest tarantula climbs the shoe, the shin and the knee
    and stands on the back of the hand resting there, seen from the patient's eye."""
    from panda3d.core import Point2, Point3

    h = hierarchy("arachnophobia")
    params = h.step_params(len(h.steps) - 1, 1.0, discover_scenes())
    assert params["on_hand"] is True
    engine = checker.engine
    module = __import__(type(engine.scene("spiders")).__module__, fromlist=["HAND_PATH_M"])
    hand = module.HAND_PATH_M[-1]
    early = checker.measure("spiders", params, settle_s=0.5)
    scene = engine.current
    on_the_way = scene._swarm.pos[0].copy()
    assert np.linalg.norm(on_the_way - hand) > 0.3  # it starts down at the feet
    assert early.largest_deg >= 5.0
    m = checker.measure("spiders", params, settle_s=6.0)
    scene = engine.current
    assert np.linalg.norm(scene._swarm.pos[0] - hand) < 0.02  # on the hand
    assert not scene.root.find("**/patient-hand").isHidden()
    # In the picture: the spider mask covers the hand's place in the view.
    render = engine.base.render
    point = checker.camera.getRelativePoint(render, Point3(*hand))
    screen = Point2()
    assert checker.lens.project(point, screen)
    size = m.mask.shape[0]
    col, row = round((screen.x + 1) / 2 * size), round((1 - screen.y) / 2 * size)
    assert m.mask[row - 3:row + 4, col - 3:col + 4].mean() >= 0.5
    assert m.largest_deg >= 10.0  # a big tarantula close to the eyes


def test_spider_legs_are_bristly_and_furred() -> None:
    """Hairs: bristles standing out of every leg part (silhouette) and a hair texture on
    the legs and body — in the legs' own shape and the batch, not extra draw calls."""
    import sys

    from vrexposure.render.engine import count_geometry

    engine = shared_engine()
    render_settled(engine, "spiders", {"count": 1, "size_cm": 15.0, "distance_m": 0.6,
                                       "species": "tarantula"}, settle_s=1.0)
    scene = engine.current
    module = sys.modules[type(scene).__module__]
    leg = module._spider_shapes()["leg"]
    rows, _tris = leg.arrays()
    radius = np.hypot(rows[:, 0], rows[:, 2])
    assert (radius > 1.5).sum() >= module.LEG_HAIRS  # bristle tips stand out of the tube
    bodies = scene.root.find("**/spider-bodies")
    assert bodies.hasTexture() or bodies.findTexture("*") is not None
    fuzz = module.fuzz_image()
    strands = fuzz[..., 0] > 180
    assert 0.05 < strands.mean() < 0.5  # light strands on a darker ground
    draws, _triangles = count_geometry(scene.root)
    assert draws <= 30
