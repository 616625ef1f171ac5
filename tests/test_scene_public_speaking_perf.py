"""Public speaking: the batched audience stays cheap to draw and still behaves like an audience.

Budgets are counted like ``bench/render.py`` ``drawn()`` (Geoms and triangles of
non-hidden GeomNodes under the scene root), per eye: the benchmark doubles them
for stereo. Geometry is read back from the Geoms the renderer draws, so the
checks see what is on screen, not what the scene meant to draw.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from tests.render_fixtures import changed_fraction, engine, settle, snap
from vrexposure.hierarchy import load_hierarchy
from vrexposure.plugins import builtin_dir, discover_scenes
from vrexposure.render.engine import count_geometry

pytestmark = [pytest.mark.render, pytest.mark.slow]
__all__ = ["engine"]

SCENE = "public_speaking"
#: Before batching: 449 Geoms and 53,466 triangles per eye at the top step.
MAX_DRAW_CALLS_PER_EYE = 30  # 60 in stereo
MAX_TRIANGLES_PER_EYE = 24_000  # 45 % of before


def full(params: dict[str, Any]) -> dict[str, Any]:
    """Every parameter (defaults for the rest): ``settle`` keeps earlier tests' targets."""
    return dict(discover_scenes()[SCENE].resolve(params))


def top_step_params() -> dict[str, Any]:
    hierarchy = load_hierarchy(builtin_dir("hierarchies") / "public_speaking.yaml")
    return hierarchy.step_params(len(hierarchy.steps) - 1, 1.0, discover_scenes())


def audience_triangles(eng: Any) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Triangles (n, 3, 3) in the scene root's space that the audience batches really draw
    (non-hidden, not collapsed to a point), and their vertex colours (n, 3, 4)."""
    from panda3d.core import GeomVertexReader

    from vrexposure.render.batch import RigidBatch

    root = eng.current.root
    corners, colours = [], []
    for path in root.findAllMatches("**/audience-*"):
        if path.isHidden() or not path.node().isGeomNode():
            continue
        mat = path.getMat(root)
        to_root = np.array([[mat.getCell(r, c) for c in range(4)] for r in range(4)])
        for i in range(path.node().getNumGeoms()):
            geom = path.node().getGeom(i)
            vdata = geom.getVertexData()
            pos_reader = GeomVertexReader(vdata, "vertex")
            col_reader = GeomVertexReader(vdata, "color")
            pos = np.array([tuple(pos_reader.getData3()) for _ in range(vdata.getNumRows())])
            col = np.array([tuple(col_reader.getData4()) for _ in range(vdata.getNumRows())])
            batch = RigidBatch.of(path)
            if batch is not None:  # placed by a vertex shader: where the last frame put them
                pos = batch.placed_positions().astype(np.float64)
            pos = pos @ to_root[:3, :3] + to_root[3, :3]
            for k in range(geom.getNumPrimitives()):
                prim = geom.getPrimitive(k).decompose()
                index = np.array([prim.getVertex(j) for j in range(prim.getNumVertices())])
                corners.append(pos[index].reshape(-1, 3, 3))
                colours.append(col[index].reshape(-1, 3, 4))
    if not corners:
        return np.zeros((0, 3, 3)), np.zeros((0, 3, 4))
    tris, cols = np.concatenate(corners), np.concatenate(colours)
    area = np.linalg.norm(np.cross(tris[:, 1] - tris[:, 0], tris[:, 2] - tris[:, 0]), axis=1)
    drawn = area > 1e-10
    return tris[drawn], cols[drawn]


def seats_in_root(scene: Any, hall: str, people: int) -> NDArray[np.float64]:
    """(people, 2) x, y of the first ``people`` seats (seat order) in the scene root's space."""
    module = __import__(type(scene).__module__, fromlist=["seat_order"])
    _half, _depth, _ceil, per_row, _rise = module.HALLS[hall]
    order = module.seat_order(per_row, 1 + module.MAX_AUDIENCE // per_row)[:people]
    front_m = scene.v("front_row_distance_m")
    return np.array(
        [((c - (per_row - 1) / 2) * module.SEAT_PITCH_X, front_m + r * module.ROW_PITCH_Y)
         for r, c in order]
    )


def gaze_error_deg(scene: Any) -> NDArray[np.float64]:
    """Per person in the room: angle between the face's direction and the way to the speaker."""
    mats = scene.drawn_head_mats().astype(np.float64)
    present = np.abs(mats).sum(axis=(1, 2)) > 0
    face = -mats[present, 1, :3]  # heads look along their -Y
    to_speaker = np.asarray(scene.eye_position()) - mats[present, 3, :3]
    cos = (face * to_speaker).sum(1) / np.linalg.norm(face, axis=1) / np.linalg.norm(
        to_speaker, axis=1
    )
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def eyes_off_speaker_deg(eng: Any) -> NDArray[np.float64]:
    """Per person: horizontal angle between (head -> their drawn eye whites) and (head ->
    speaker), from the triangles on screen rather than from the scene's own matrices."""
    scene = eng.current
    mats = scene.drawn_head_mats().astype(np.float64)
    heads = mats[np.abs(mats).sum(axis=(1, 2)) > 0, 3, :3]
    tris, colours = audience_triangles(eng)
    whites = np.all(np.abs(colours[:, :, :3] - 0.95) < 0.01, axis=(1, 2))
    centres = tris[whites].mean(axis=1)
    owner = np.linalg.norm(centres[:, None] - heads[None], axis=2).argmin(axis=1)
    angles = []
    for i, head in enumerate(heads):
        face = centres[owner == i].mean(axis=0)[:2] - head[:2]
        to_speaker = np.asarray(scene.eye_position())[:2] - head[:2]
        cos = face @ to_speaker / np.linalg.norm(face) / np.linalg.norm(to_speaker)
        angles.append(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))
    return np.asarray(angles)


def test_top_step_fits_the_draw_call_and_triangle_budget(engine: Any) -> None:
    settle(engine, SCENE, full(top_step_params()), seconds=2.0)
    geoms, tris = count_geometry(engine.current.root)
    assert geoms <= MAX_DRAW_CALLS_PER_EYE, geoms
    assert tris <= MAX_TRIANGLES_PER_EYE, tris
    # The budget holds with everybody there: 80 people, all of them drawn.
    scene = engine.current
    assert len(gaze_error_deg(scene)) == 80


def test_a_small_audience_costs_fewer_draw_calls_and_triangles(engine: Any) -> None:
    snap(engine, SCENE, {"audience_size": 3})
    few = count_geometry(engine.current.root)
    snap(engine, SCENE, {"audience_size": 80})
    full = count_geometry(engine.current.root)
    assert few[0] < full[0] and few[1] < full[1] * 0.7, (few, full)


@pytest.mark.parametrize("hall", ["meeting_room", "lecture_hall"])
def test_attentive_heads_turn_to_the_speaker(engine: Any, hall: str) -> None:
    params = {"audience_size": 24, "front_row_distance_m": 1.5, "hall": hall}
    snap(engine, SCENE, dict(params, attention=0.0))
    away, eyes_away = gaze_error_deg(engine.current), eyes_off_speaker_deg(engine)
    # Attention rises: the heads turn (eased) until everybody looks at the speaker.
    settle(engine, SCENE, {"attention": 1.0}, seconds=6.0)
    looking, eyes_looking = gaze_error_deg(engine.current), eyes_off_speaker_deg(engine)
    assert len(looking) == len(away) == len(eyes_looking) == 24
    # Everybody looks at the speaker's eyes (fidget and slouch leave a few degrees)…
    assert looking.max() < 12.0, np.round(looking)
    assert eyes_looking.max() < 15.0, np.round(eyes_looking)
    # …and with no attention, most look elsewhere (notes, the room): at any moment of
    # their fidgeting at most 6 of 24 faces (11 by the eyes' bearing alone) point at him.
    assert (away < 15.0).sum() <= 8, np.round(away)
    assert (eyes_away < 15.0).sum() <= 12, np.round(eyes_away)


def test_attention_changes_the_rendered_faces(engine: Any) -> None:
    params = {"audience_size": 12, "front_row_distance_m": 1.5}
    away = snap(engine, SCENE, dict(params, attention=0.0))
    looking = snap(engine, SCENE, dict(params, attention=1.0))
    assert changed_fraction(away, looking) > 0.005


def test_more_audience_covers_more_of_the_hall(engine: Any) -> None:
    params = {"hall": "lecture_hall", "front_row_distance_m": 3.0}
    empty = snap(engine, SCENE, dict(params, audience_size=0))
    covered = [
        changed_fraction(empty, snap(engine, SCENE, dict(params, audience_size=n)))
        for n in (3, 15, 40, 80)
    ]
    assert 0.0 < covered[0] < covered[1] < covered[2] < covered[3], covered


def test_absent_members_draw_nothing(engine: Any) -> None:
    snap(engine, SCENE, {"audience_size": 0, "hall": "lecture_hall"})
    tris, _colours = audience_triangles(engine)
    assert len(tris) == 0, "an empty hall draws audience triangles"

    people = 5
    snap(engine, SCENE, {"audience_size": people, "hall": "lecture_hall"})
    tris, colours = audience_triangles(engine)
    assert len(tris) > 0
    # Every triangle drawn belongs to one of the five people present: within a person's
    # reach (arms, knees, feet) of their seat.
    seats = seats_in_root(engine.current, "lecture_hall", people)
    centres = tris.mean(axis=1)[:, :2]
    nearest_m = np.linalg.norm(centres[:, None] - seats[None], axis=2).min(axis=1)
    assert nearest_m.max() < 0.8, nearest_m.max()
    # Every one of them is drawn, with their own colours (written once at build time).
    near_each = np.linalg.norm(centres[:, None] - seats[None], axis=2).argmin(axis=1)
    assert set(near_each.tolist()) == set(range(people))
    assert len({tuple(c) for c in np.round(colours.reshape(-1, 4), 2)}) >= 6


def test_the_audience_keeps_its_colours_while_animating(engine: Any) -> None:
    """Batches are recoloured only when built: many rewrites later the colours are intact."""
    snap(engine, SCENE, {"audience_size": 20, "hall": "classroom"})
    _tris, before = audience_triangles(engine)
    for _ in range(60):
        engine.step(1 / 90)
    _tris, after = audience_triangles(engine)
    palette = {tuple(c) for c in np.round(before.reshape(-1, 4), 3)}
    assert {tuple(c) for c in np.round(after.reshape(-1, 4), 3)} == palette
    assert len(palette) >= 8
