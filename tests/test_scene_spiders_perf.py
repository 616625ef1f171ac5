"""Spider scene: few draw calls at the top step, legs that walk, hidden spiders draw nothing.

The spiders' moving parts live in shared RigidBatches (see scenes/spiders.py); these
tests check what that must keep: a small, count-independent number of Geoms, real
leg motion, collapsed hidden spiders, and every parameter still changing the image.
No timing assertions: timings on a shared machine are noise.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from tests.render_fixtures import changed_fraction, engine, settle, snap
from vrexposure.hierarchy import load_hierarchy
from vrexposure.plugins import builtin_dir, discover_scenes
from vrexposure.render.engine import count_geometry

pytestmark = pytest.mark.render
__all__ = ["engine"]

#: bench/render.py counts draw calls per eye × 2 (stereo); the budget there is 60.
DRAW_CALLS_PER_EYE_BUDGET = 30
#: A big spider close by: legs cover many pixels at the test resolution.
CLOSE = {"count": 1, "size_cm": 15.0, "distance_m": 0.6, "species": "tarantula"}


@pytest.fixture(autouse=True, scope="module")
def _leave_the_calm_scene(engine: Any) -> Iterator[None]:
    """Tests sharing the engine after these find the calm scene's view, not a spider view."""
    yield
    engine.show("calm", {})
    engine.step(0.0)


def top_step_params() -> dict[str, Any]:
    """The arachnophobia hierarchy's last step at full intensity (20 approaching spiders)."""
    specs = discover_scenes()
    hierarchy = load_hierarchy(builtin_dir("hierarchies") / "arachnophobia.yaml")
    return hierarchy.step_params(len(hierarchy.steps) - 1, 1.0, specs)


def spiders_module() -> ModuleType:
    return sys.modules[discover_scenes()["spiders"].factory.__module__]


def collapsed_rows(batch: Any) -> tuple[int, int]:
    """(vertices at exactly the origin, all vertices) of a RigidBatch as last placed.

    A part given a zero matrix (a hidden spider's) collapses to the origin.
    """
    rows = batch.placed_positions()
    return int(np.all(rows == 0.0, axis=1).sum()), len(rows)


def test_top_step_fits_the_draw_call_budget(engine: Any) -> None:
    params = top_step_params()
    assert params["count"] == 20  # the step this budget is about
    settle(engine, "spiders", params, seconds=1.0)
    many = count_geometry(engine.current.root)[0]
    assert many <= DRAW_CALLS_PER_EYE_BUDGET, f"{many} Geoms drawn per eye"
    # Batching: the number of draw calls does not grow with the number of spiders.
    settle(engine, "spiders", dict(params, count=1), seconds=4.0)
    assert count_geometry(engine.current.root)[0] == many


def test_no_spiders_draw_no_spider_geoms(engine: Any) -> None:
    engine.show("calm", {})
    settle(engine, "spiders", dict(top_step_params(), count=0), seconds=0.5)
    scene = engine.current
    assert all(batches.node.isHidden() for batches in scene._batch_sets)
    assert scene.stimulus_world_position() is None
    with_one = snap(engine, "spiders", dict(top_step_params(), count=1))
    none = snap(engine, "spiders", dict(top_step_params(), count=0))
    assert changed_fraction(with_one, none) * with_one.shape[0] * with_one.shape[1] >= 5


def test_hidden_spiders_collapse_to_nothing(engine: Any) -> None:
    """Spiders faded out (present < 0.02) draw nothing: zero-size parts, then no batch."""
    params = dict(top_step_params(), count=5)
    engine.show("calm", {})
    settle(engine, "spiders", params, seconds=0.5)
    settle(engine, "spiders", dict(params, count=2), seconds=6.0)  # 3 spiders fade out
    scene = engine.current
    shown = [b for b in scene._batch_sets if not b.node.isHidden()]
    assert len(shown) == 1
    batches = shown[0]
    assert batches.capacity >= 5  # the set that held five spiders
    for name, batch in (("spider-bodies", batches.body), ("spider-shadows", batches.shadows)):
        collapsed, total = collapsed_rows(batch)
        # Every part of each spider beyond the first two, and nothing else, is collapsed.
        assert collapsed == total // batches.capacity * (batches.capacity - 2), name
    # Down to one spider: a set for one is drawn and the larger one not at all.
    settle(engine, "spiders", dict(params, count=1), seconds=6.0)
    assert batches.node.isHidden()
    assert [b.capacity for b in scene._batch_sets if not b.node.isHidden()] == [1]


def body_vertices(eng: Any) -> Any:
    """Vertex positions of the spider body batch being drawn (n, 3)."""
    (batches,) = [b for b in eng.current._batch_sets if not b.node.isHidden()]
    return batches.body.placed_positions().astype(np.float64)


def test_legs_swing_while_walking(engine: Any) -> None:
    """A walking spider changes shape between two frames (legs move against the body).

    Pairwise vertex distances ignore where the spider is and which way it faces, so
    they change only when parts move relative to each other. The rendered frames
    differ too, far more than a standing spider's (which only breathes/bobs).
    """

    def motion(speed_cm_s: float) -> tuple[float, float]:
        engine.show("calm", {})
        settle(engine, "spiders", dict(CLOSE, speed_cm_s=speed_cm_s), seconds=2.0)
        before, shape_before = engine.read_pixels(), body_vertices(engine)[::7]
        engine.step(0.08)
        after, shape_after = engine.read_pixels(), body_vertices(engine)[::7]

        def dists(p: Any) -> Any:
            return np.linalg.norm(p[:, None, :] - p[None, :, :], axis=-1)

        reshaped_m = float(np.abs(dists(shape_after) - dists(shape_before)).max())
        return changed_fraction(before, after, threshold=16), reshaped_m

    (walk_px, walk_m), (still_px, still_m) = motion(8.0), motion(0.0)
    assert walk_m > 0.003  # leg parts of a 15 cm spider moved by millimetres at least
    assert still_m < 1e-4
    assert walk_px > 0.0005
    assert walk_px > 3 * still_px


def test_gait_moves_the_legs_relative_to_the_body() -> None:
    spiders = spiders_module()
    gait = np.array([0.0, 1.0])
    walking = np.array([True, True])
    hip_h0, hip_p0, knee_p0 = spiders._leg_angles(gait, walking)
    hip_h1, hip_p1, knee_p1 = spiders._leg_angles(gait + 0.6, walking)
    assert hip_h0.shape == (2, spiders.LEGS)
    assert np.abs(hip_h1 - hip_h0).max() > 5.0  # swing (degrees)
    assert np.abs(hip_p1 - hip_p0).max() > 3.0  # lift
    assert np.abs(knee_p1 - knee_p0).max() > 2.0  # the knee bends with the lift
    # Alternate legs are in opposite phase (tetrapod gait): not all swing the same way.
    swing = hip_h0[1] - spiders._LEG_BASE_DEG
    assert swing.min() < 0.0 < swing.max()
    # A spider standing still lifts no leg.
    _, hip_p_still, knee_p_still = spiders._leg_angles(gait, np.array([False, False]))
    assert np.all(hip_p_still == spiders.HIP_PITCH_DEG)
    assert np.all(knee_p_still == spiders.KNEE_PITCH_DEG)


def test_pose_shortcuts_match_pos_hpr_scale_mats() -> None:
    from vrexposure.render.batch import pos_hpr_scale_mats

    spiders = spiders_module()
    rng = np.random.default_rng(7)
    pos, heading, scale = (
        rng.normal(size=(5, 3)),
        rng.uniform(-360, 360, 5),
        rng.uniform(0.01, 1, 5),
    )
    zeros = np.zeros(5)
    np.testing.assert_allclose(
        spiders._heading_mats(pos, heading, scale),
        pos_hpr_scale_mats(pos, np.stack([heading, zeros, zeros], 1), scale),
        atol=1e-6,
    )
    pitch = rng.uniform(-120, 0, (5, 8))
    flat = np.zeros_like(pitch)
    np.testing.assert_allclose(
        spiders._knee_mats(pitch),
        pos_hpr_scale_mats((0.0, spiders.FEMUR_LEN, 0.0), np.stack([flat, pitch, flat], -1)),
        atol=1e-6,
    )


def test_spiders_stand_on_the_rug_not_in_it() -> None:
    spiders = spiders_module()
    x = np.array([0.0, 0.0, 2.0])
    y = np.array([(spiders.RUG_Y0 + spiders.RUG_Y1) / 2, spiders.RUG_Y0 - 0.5, 1.0])
    z = spiders._floor_height(x, y, 0.0)
    np.testing.assert_allclose(z, [spiders.RUG_TOP_M, 0.0, 0.0])
    np.testing.assert_allclose(spiders._floor_height(x, y, 1.0), spiders.TANK_FLOOR_M)


def test_approaching_spiders_come_close(engine: Any) -> None:
    """With `approach`, the nearest spider is mostly within half a metre of `distance_m`."""
    params = top_step_params()
    engine.show("calm", {})
    engine.show("spiders", params)
    scene = engine.current
    dist_m = float(params["distance_m"])
    nearest = []
    for frame in range(400):  # 40 s of scene time, animation only (no rendering)
        scene.update(0.1, 100.0 + frame * 0.1)
        pos = scene.stimulus_world_position()
        assert pos is not None
        nearest.append(float(np.hypot(pos[0], pos[1])))
    near = np.asarray(nearest)
    assert near.min() == pytest.approx(dist_m, abs=0.1)
    assert np.mean(near < dist_m + 0.5) > 0.5


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("count", 8),
        ("size_cm", 15.0),
        ("distance_m", 2.0),
        ("speed_cm_s", 0.0),
        ("approach", False),
        ("contained", True),
        ("species", "wolf"),
        ("light_level", 0.3),
    ],
)
def test_every_parameter_changes_the_top_step(engine: Any, param: str, value: Any) -> None:
    """The batched drawing of 20 spiders still responds to every parameter."""
    params = top_step_params()
    assert params[param] != value
    base = settle(engine, "spiders", params, seconds=2.0)
    engine.show("calm", {})
    changed = settle(engine, "spiders", dict(params, **{param: value}), seconds=2.0)
    engine.show("calm", {})
    assert changed_fraction(base, changed, threshold=12) > 0.001, param


def test_species_colours_reach_the_batch(engine: Any) -> None:
    """The tarantula's orange knee bands show: per-part colours are applied to the batch."""

    def orange(img: Any) -> int:
        r, g, b = (img[..., i].astype(int) for i in range(3))
        return int(((r > 120) & (r > 1.6 * g) & (g > b + 20)).sum())

    tarantula = snap(engine, "spiders", CLOSE)
    wolf = snap(engine, "spiders", dict(CLOSE, species="wolf"))
    assert orange(tarantula) > orange(wolf) + 10
