"""Calm, heights and the enclosed room stay cheap to draw and still look and move as they should.

Budgets are counted like ``drawn()`` in ``bench/render.py``: Geoms (draw calls)
and triangles of the shown scene at its hierarchy's top step, times two eyes.
Every Geom is counted whether or not it is in view, so the budgets hold for any
head direction.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from tests.render_fixtures import changed_fraction, engine, only, settle, snap
from vrexposure.hierarchy import load_hierarchy
from vrexposure.plugins import builtin_dir, discover_scenes
from vrexposure.render import seated
from vrexposure.render.engine import count_geometry

pytestmark = pytest.mark.render
__all__ = ["engine"]

EYES = 2
#: Scene → (hierarchy whose top step is measured or None for the defaults,
#: most draw calls, fewest triangles that is too many), both eyes.
BUDGETS: dict[str, tuple[str | None, int, int]] = {
    "calm": (None, 60, 50_000),
    "heights": ("acrophobia", 40, 40_000),
    "enclosed_space": ("claustrophobia", 24, 6_000),
}


def top_step_params(scene: str) -> dict[str, Any]:
    hierarchy_name = BUDGETS[scene][0]
    specs = discover_scenes()
    if hierarchy_name is None:
        return specs[scene].defaults()
    hierarchy = load_hierarchy(builtin_dir("hierarchies") / f"{hierarchy_name}.yaml")
    return hierarchy.step_params(len(hierarchy.steps) - 1, 1.0, specs)


def show_settled(eng: Any, scene: str, params: dict[str, Any]) -> Any:
    """Show ``scene`` with ``params`` after a cut, with the easing settled (as bench/render.py)."""
    eng.show("calm" if scene != "calm" else "spiders", {})
    eng.show(scene, params)
    for _ in range(4):
        eng.step(1.0)
    return eng.current


def drawn_geometry(scene: Any) -> tuple[int, int]:
    """Geoms and triangles under the scene root that are not hidden, for both eyes."""
    geoms, tris = count_geometry(scene.root)
    return geoms * EYES, tris * EYES


def scene_module(scene: str) -> ModuleType:
    factory = discover_scenes()[scene].factory
    assert factory is not None
    return sys.modules[factory.__module__]


def vertex_positions(path: Any) -> NDArray[np.float32]:
    """Positions (n, 3) of the first Geom of the GeomNode at ``path``.

    Animated parts (``placed_positions()``: SwayParts, the grass) give where the last
    frame put their vertices; a vertex shader may place them, not the buffer.
    """
    from panda3d.core import GeomVertexReader

    if hasattr(path, "placed_positions"):
        return np.asarray(path.placed_positions(), np.float32)

    reader = GeomVertexReader(path.node().getGeom(0).getVertexData(), "vertex")
    out = []
    while not reader.isAtEnd():
        v = reader.getData3()
        out.append((v.x, v.y, v.z))
    return np.asarray(out, np.float32)


# --------------------------------------------------------------------------- budgets


@pytest.mark.parametrize("scene", sorted(BUDGETS))
def test_top_step_draw_call_and_triangle_budget(engine: Any, scene: str) -> None:
    shown = show_settled(engine, scene, top_step_params(scene))
    calls, tris = drawn_geometry(shown)
    _, max_calls, max_tris = BUDGETS[scene]
    assert calls <= max_calls, f"{scene}: {calls} draw calls (budget {max_calls})"
    assert tris < max_tris, f"{scene}: {tris} triangles (budget < {max_tris})"


def test_budgets_hold_at_every_heights_step(engine: Any) -> None:
    """The railing, balusters and glass floor come and go: no step exceeds the top step's budget."""
    specs = discover_scenes()
    hierarchy = load_hierarchy(builtin_dir("hierarchies") / "acrophobia.yaml")
    _, max_calls, max_tris = BUDGETS["heights"]
    for index in range(len(hierarchy.steps)):
        shown = show_settled(engine, "heights", hierarchy.step_params(index, 1.0, specs))
        calls, tris = drawn_geometry(shown)
        assert calls <= max_calls and tris < max_tris, (index, calls, tris)


# --------------------------------------------------------------------------- motion


def test_calm_wind_bends_grass_sways_trees_and_drifts_clouds(engine: Any) -> None:
    settle(engine, "calm", {"wind_speed_m_s": 5.0}, seconds=1.0)
    before = {name: only(engine, name) for name in ("grass", "trees", "clouds")}
    engine.step(0.4)
    after = {name: only(engine, name) for name in ("grass", "trees", "clouds")}
    for name in before:
        assert changed_fraction(before[name], after[name]) > 0.001, f"{name} did not move"
    engine.show("calm", {"wind_speed_m_s": 1.0})


def test_stronger_wind_moves_the_grass_more(engine: Any) -> None:
    def grass_motion(wind_m_s: float) -> float:
        engine.show("spiders", {})
        settle(engine, "calm", {"wind_speed_m_s": wind_m_s}, seconds=1.0)
        a = only(engine, "grass")
        engine.step(0.3)
        return changed_fraction(a, only(engine, "grass"))

    strong = grass_motion(5.0)
    assert strong > 0.001 and strong > grass_motion(0.0)


def test_grass_bends_at_the_tips_while_the_roots_stay_put(engine: Any) -> None:
    scene = show_settled(engine, "calm", {"wind_speed_m_s": 5.0})
    grass = scene._bending[0]
    a = vertex_positions(grass)
    engine.step(0.5)
    b = vertex_positions(grass)
    moved = np.abs(b - a).max(axis=1)
    roots = scene._bending[0].lift == 0.0
    assert moved[roots].max() < 1e-5
    assert moved[~roots].max() > 0.01
    np.testing.assert_allclose(a[:, 1:], b[:, 1:])  # the wind bends along x only


@pytest.mark.parametrize("time_of_day", ["day", "dusk"])
def test_grass_lit_by_hand_matches_panda3d_lighting(engine: Any, time_of_day: str) -> None:
    """Grass normals all point up, so the scene lights it with one colour scale."""
    scene = show_settled(engine, "calm", {"time_of_day": time_of_day, "light_level": 0.7})
    grass = scene.root.find("**/grass")
    reference = grass.copyTo(grass.getParent())  # lit by Panda3D's lights like the meadow
    reference.setName("grass-lit-by-panda3d")
    reference.clearLight()
    reference.clearColorScale()
    if reference.getShader() is not None:  # bent on the GPU: a shader for the lights it now has
        from vrexposure.render import shaders

        shaders.AnimatedShader(reference, "bend").refresh()
    reference.hide()
    try:
        by_hand = only(engine, "grass")
        by_panda = only(engine, "grass-lit-by-panda3d")
    finally:
        reference.removeNode()
    assert by_hand.max(axis=2).min() < 150  # the grass was in view
    assert changed_fraction(by_hand, by_panda, threshold=6) < 0.002


def test_heights_view_sways_and_cars_drive(engine: Any) -> None:
    params = top_step_params("heights")
    scene = show_settled(engine, "heights", params)
    first = engine.read_pixels()
    cars, bushes = scene._cars, scene._plants
    cars_a, bushes_a = vertex_positions(cars), vertex_positions(bushes)
    engine.step(0.5)
    assert changed_fraction(first, engine.read_pixels()) > 0.005  # the whole view sways
    cars_b, bushes_b = vertex_positions(cars), vertex_positions(bushes)
    # Each car slides along its street at 6 to 13 m/s (or wraps round to the far end).
    shift = np.linalg.norm(cars_b - cars_a, axis=1)
    assert np.all((shift > 2.5) & ((shift < 7.0) | (np.abs(shift - 1100.0) < 10.0)))
    assert np.abs(bushes_b - bushes_a).max() > 1e-3  # the potted bushes sway


def test_sway_parts_match_panda3d_transforms() -> None:
    from panda3d.core import NodePath, Point3

    from vrexposure.render import geometry as g

    sway_parts = seated.SwayParts
    rng = np.random.default_rng(3)
    places = [((1.0, 2.0, 0.5), 30.0), ((-4.0, 0.0, 2.0), 200.0)]
    parts = sway_parts("test")
    shapes = []
    for (pos, heading), radius in zip(places, (0.5, 1.5), strict=True):
        shape = g.MeshBuilder()
        shape.box((-radius, -0.2, 0.0), (radius, 0.3, 2.0), (1, 1, 1, 1))
        shapes.append(shape.arrays()[0][:, 0:3])
        parts.add(shape, pos, heading)
    root = NodePath("root")
    parts.attach(root)
    for roll in ([0.0, 0.0], rng.uniform(-20, 20, 2).tolist()):
        moved = [(p[0] + 1.0, p[1] - 2.0, p[2]) for p, _ in places]
        parts.update(roll, moved)
        expected = []
        for k, rest in enumerate(shapes):
            node = NodePath("part")
            node.setPosHpr(*moved[k], places[k][1], 0.0, roll[k])
            mat = node.getMat()
            expected += [tuple(mat.xformPoint(Point3(*map(float, v)))) for v in rest]
        np.testing.assert_allclose(vertex_positions(parts), np.asarray(expected), atol=1e-4)


# --------------------------------------------------------------------------- what was removed


def test_facing_only_keeps_every_triangle_an_eye_in_the_box_can_see() -> None:
    from vrexposure.render import geometry as g

    module = seated
    mesh = g.MeshBuilder()
    mesh.sphere((2.0, 1.5, 1.0), (1, 1, 1, 1), rings=8, segments=12, center=(3.0, 5.0, 1.0))
    mesh.box((-1.0, 8.0, 0.0), (1.0, 9.0, 4.0), (1, 1, 1, 1))
    lo, hi = (-0.5, -0.5, 0.5), (0.5, 0.5, 2.0)
    kept = module.facing_only(mesh, module.box_corners(lo, hi))

    def faces(builder: Any) -> set[tuple[float, ...]]:
        rows, tris = builder.arrays()
        return {tuple(np.round(rows[t, 0:3].ravel(), 4)) for t in tris.reshape(-1, 3)}

    all_faces, kept_faces = faces(mesh), faces(kept)
    assert kept_faces < all_faces  # something went
    rng = np.random.default_rng(0)
    for eye in rng.uniform(lo, hi, (50, 3)):
        for face in all_faces:
            a, b, c = np.reshape(face, (3, 3))
            normal = np.cross(b - a, c - a)
            if np.linalg.norm(normal) > 1e-9 and np.dot(eye - a, normal) > 1e-6:
                assert face in kept_faces


def test_dropping_buried_triangles_changes_no_pixel(engine: Any) -> None:
    """Lumps of different colours: a wrongly dropped triangle would show a hole or a colour."""
    from vrexposure.render import geometry as g

    module = seated
    rng = np.random.default_rng(7)
    crown = g.MeshBuilder()
    blobs = []
    for k in range(6):
        centre = tuple(rng.uniform(-0.6, 0.6, 3))
        radii = tuple(rng.uniform(0.5, 1.0) * np.array([1.0, 1.0, 0.85]))
        rings, segments = (4, 8) if k % 2 else (6, 10)
        crown.sphere(radii, g.shade((0.3, 0.6, 0.2), 0.6 + 0.1 * k), rings=rings,
                     segments=segments, center=centre)
        blobs.append((centre, radii, rings, segments))
    crown.cylinder(0.15, 1.0, (0.4, 0.3, 0.2, 1), g.transform((0, 0, -1.2)), 8)
    kept = module.drop_buried(crown, blobs)
    assert 0 < len(kept.arrays()[1]) < 0.8 * len(crown.arrays()[1])

    engine.show("calm", {})
    engine.current.root.hide()
    engine.auto_frame = False
    engine.set_head_pose((0, 0, 0), (0, 0, 0))
    holder = engine.base.render.attachNewNode("drop-buried-test")
    holder.setPos(0, 5, 1.2)
    holder.setLightOff(1)
    try:
        for hpr in ((0, 0, 0), (90, 30, 0), (200, -40, 0), (300, 70, 0)):
            holder.setHpr(*hpr)
            images = []
            for mesh in (crown, kept):
                node = mesh.attach(holder, "crown")
                engine.step(0.0)
                images.append(engine.read_pixels())
                node.removeNode()
            assert images[0].std() > 10  # the crown is in view
            np.testing.assert_array_equal(images[0], images[1])
    finally:
        holder.removeNode()
        engine.auto_frame = True
        engine.current.root.show()


def test_calm_ground_has_no_cracks(engine: Any) -> None:
    """With the sky and lake hidden, the background never shows below the horizon."""
    scene = show_settled(engine, "calm", {})
    win = engine.base.win
    scene.root.find("**/sky").hide()
    scene.root.find("**/lake").hide()
    win.setClearColor((1.0, 0.0, 1.0, 1.0))
    engine.auto_frame = False  # the head pose alone aims the camera
    try:
        for heading in (0.0, 60.0, 120.0, 180.0, -120.0, -60.0):
            engine.set_head_pose((0, 0, 0), (heading, -14.0, 0))
            engine.step(0.0)
            img = engine.read_pixels().astype(int)
            # The horizon is 14° above the image centre: 40 rows above it, all is ground.
            below = img[img.shape[0] // 2 - 40:]
            magenta = (below[..., 0] > 200) & (below[..., 1] < 60) & (below[..., 2] > 200)
            assert magenta.sum() == 0, f"looking {heading}°: {magenta.sum()} crack pixels"
    finally:
        engine.auto_frame = True
        engine.set_head_pose((0, 0, 0), (0, 0, 0))
        scene.root.find("**/sky").show()
        scene.root.find("**/lake").show()
        win.setClearColor((*scene.background_color, 1.0))


def test_heights_ground_leaves_the_streets_to_the_asphalt(engine: Any) -> None:
    scene = show_settled(engine, "heights", top_step_params("heights"))
    pos = vertex_positions(scene.root.find("**/ground"))
    node = scene.root.find("**/ground").node()
    prim = node.getGeom(0).getPrimitive(0)
    tris = np.asarray([prim.getVertex(i) for i in range(prim.getNumVertices())]).reshape(-1, 3)
    centres = pos[tris].mean(axis=1)
    streets = np.asarray(scene._street_lines)
    in_city = (np.abs(centres[:, 0]) < 400) & (centres[:, 1] > -400) & (centres[:, 1] < 900)
    on_street = np.abs(centres[:, 0, None] - streets).min(axis=1) < 7.0
    on_cross_street = np.abs(centres[:, 1, None] - streets).min(axis=1) < 7.0
    assert not np.any(in_city & (on_street | on_cross_street))


# --------------------------------------------------------------------------- the room


@pytest.mark.parametrize(("distance_m", "ceiling_m"), [(0.4, 1.5), (1.2, 2.4), (4.0, 4.0)])
def test_room_is_drawn_exactly_as_large_as_it_is(
    engine: Any, distance_m: float, ceiling_m: float
) -> None:
    """Floor, walls and ceiling end where they meet (overlapping by a seam of 1 cm)."""
    seam_m = scene_module("enclosed_space").SEAM_M
    scene = show_settled(
        engine, "enclosed_space",
        {"wall_distance_m": distance_m, "ceiling_height_m": ceiling_m, "door": "closed"},
    )
    floor = vertex_positions(scene.root.find("**/floor"))
    assert np.abs(floor[:, :2]).max() == pytest.approx(distance_m + seam_m, abs=1e-4)
    walls = vertex_positions(scene.root.find("**/walls"))
    ceiling = np.isclose(walls[:, 2], ceiling_m, atol=1e-4)
    assert ceiling.sum() >= 81  # the 8×8 ceiling grid
    assert np.abs(walls[ceiling, :2]).max() == pytest.approx(distance_m + seam_m, abs=1e-4)
    assert walls[:, 2].max() <= max(ceiling_m + seam_m, 2.2) + 1e-4  # the vent: 1.9-2.2 m
    if distance_m >= 0.9:  # else the doorway's trim and the switch stand beyond the side walls
        # Fixtures stand out a few centimetres, the doorway's threshold 15 cm.
        assert np.abs(walls[:, :2]).max() < distance_m + 0.16


def test_room_surfaces_keep_their_texture_in_place_as_walls_move(engine: Any) -> None:
    """Uvs are world-anchored: a wall sliding in does not drag the floor tiles along."""
    from panda3d.core import GeomVertexReader

    def floor_uv(distance_m: float) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        scene = show_settled(engine, "enclosed_space", {"wall_distance_m": distance_m})
        vdata = scene.root.find("**/floor").node().getGeom(0).getVertexData()
        reader = GeomVertexReader(vdata, "texcoord")
        uvs = []
        while not reader.isAtEnd():
            uv = reader.getData2()
            uvs.append((uv.x, uv.y))
        return vertex_positions(scene.root.find("**/floor")), np.asarray(uvs, np.float32)

    module = scene_module("enclosed_space")
    for distance_m in (0.6, 3.0):
        pos, uv = floor_uv(distance_m)
        np.testing.assert_allclose(uv, pos[:, :2] / module.FLOOR_TEX_M, atol=1e-4)


@pytest.mark.parametrize("distance_m", [0.4, 1.0, 2.5, 4.0])
def test_room_has_no_gaps_between_walls_floor_and_ceiling(engine: Any, distance_m: float) -> None:
    """The background is black: a black pixel in a lit, closed room is a hole in it."""
    params = {"wall_distance_m": distance_m, "door": "closed", "light_level": 1.0}
    try:
        for hpr in ((0, 0, 0), (45, 30, 0), (135, -40, 0), (-90, 50, 0), (-45, -60, 0)):
            engine.set_head_pose((0, 0, 0), hpr)
            img = snap(engine, "enclosed_space", params)
            assert (img.max(axis=2) < 4).sum() == 0, (distance_m, hpr)
    finally:
        engine.set_head_pose((0, 0, 0), (0, 0, 0))
