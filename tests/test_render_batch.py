"""RigidBatch: numpy-moved parts in one Geom match what Panda3D's node transforms draw."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from panda3d.core import NodePath

from tests.render_fixtures import HEIGHT, WIDTH, engine  # noqa: F401
from vrexposure.render import geometry as g
from vrexposure.render.batch import (
    RigidBatch,
    compose,
    hpr_mats,
    identity_mats,
    mats_from_nodes,
    pos_hpr_scale_mats,
)

angles = st.floats(-360.0, 360.0, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(h=angles, p=angles, r=angles,
       pos=st.tuples(*[st.floats(-5, 5, allow_nan=False)] * 3),
       scale=st.tuples(*[st.floats(0.1, 3, allow_nan=False)] * 3))
def test_pos_hpr_scale_matches_panda3d(h: float, p: float, r: float,
                                       pos: tuple[float, float, float],
                                       scale: tuple[float, float, float]) -> None:
    node = NodePath("n")
    node.setPosHprScale(*pos, h, p, r, *scale)
    expected = mats_from_nodes([node], NodePath("root"))[0]
    got = pos_hpr_scale_mats(pos, (h, p, r), scale)
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_compose_is_a_child_under_its_parent() -> None:
    root = NodePath("root")
    parent = root.attachNewNode("parent")
    parent.setPosHpr(1, 2, 3, 30, -20, 10)
    child = parent.attachNewNode("child")
    child.setPosHprScale(0.5, 0, -1, 45, 80, 0, 2, 1, 1)
    parent_m = pos_hpr_scale_mats((1, 2, 3), (30, -20, 10))
    child_m = pos_hpr_scale_mats((0.5, 0, -1), (45, 80, 0), (2, 1, 1))
    np.testing.assert_allclose(compose(child_m, parent_m),
                               mats_from_nodes([child], root)[0], atol=1e-5)
    assert hpr_mats(np.zeros((4, 7, 3))).shape == (4, 7, 3, 3)


def _box_batch(count: int) -> tuple[RigidBatch, g.MeshBuilder]:
    box = g.MeshBuilder()
    box.box((-0.5, -0.5, -0.5), (0.5, 0.5, 0.5), (1, 1, 1, 1))
    batch = RigidBatch("boxes")
    template = batch.add_template(box, "box")
    for _ in range(count):
        batch.add_part(template)
    return batch, box


def test_update_moves_vertices_and_tints_colours(monkeypatch: pytest.MonkeyPatch) -> None:
    from vrexposure.render import shaders

    monkeypatch.setattr(shaders, "_available", False)  # the numpy path (no shaders)
    batch, box = _box_batch(3)
    path = batch.attach(NodePath("root"))
    assert path.node().getNumGeoms() == 1
    mats = pos_hpr_scale_mats([(0, 0, 0), (10, 0, 0), (0, 0, 0)], [(0, 0, 0)] * 3, 1.0)
    mats[2] = 0.0  # hidden
    colors = np.array([(1, 0, 0, 1), (0, 1, 0, 1), (1, 1, 1, 1)], np.float32)
    batch.update(mats, colors)
    vdata = path.node().getGeom(0).getVertexData()
    rows = np.asarray(memoryview(vdata.getArray(0))).view(np.float32).reshape(-1, 12)
    n = len(box.arrays()[0])
    assert rows.shape == (3 * n, 12)
    np.testing.assert_allclose(rows[n:2 * n, 0].mean(), 10.0, atol=1e-5)
    assert np.all(rows[2 * n:, 0:3] == 0.0)  # collapsed to a point
    np.testing.assert_allclose(rows[:n, 6:10], np.tile((1, 0, 0, 1), (n, 1)))
    np.testing.assert_allclose(np.linalg.norm(rows[:2 * n, 3:6], axis=1), 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="mats shape"):
        batch.update(identity_mats(2))
    with pytest.raises(RuntimeError, match="already attached"):
        batch.attach(NodePath("other"))


def test_batch_draws_the_same_pixels_as_separate_nodes(engine) -> None:  # noqa: F811
    """Three boxes drawn by a batch and by three ordinary nodes look the same."""
    eng = engine
    eng.show("calm", {})
    eng.step(0.0)  # the calm scene's eye point and gaze are applied by a frame
    stage = eng.base.render.attachNewNode("batch-test")
    stage.setLightOff(1)
    stage.setFogOff(1)
    stage.setBin("fixed", 50)
    cam_pos = eng.base.camera.getPos(eng.base.render)
    anchor = eng.base.camera.getQuat(eng.base.render).getForward() * 6 + cam_pos
    poses = [((-1.2, 0, 0), (20, 30, 0), 0.8), ((0, 0, 0.3), (0, 0, 45), 0.6),
             ((1.3, 0, -0.2), (-30, 10, 5), (0.5, 1, 1.2))]
    try:
        nodes = stage.attachNewNode("nodes")
        nodes.setPos(anchor)
        box = g.MeshBuilder()
        box.box((-0.5, -0.5, -0.5), (0.5, 0.5, 0.5), (0.9, 0.3, 0.1, 1))
        for pos, hpr, scale in poses:
            part = box.attach(nodes, "box")
            part.setPos(*pos)
            part.setHpr(*hpr)
            part.setScale(scale)
        eng.step(0.0)
        reference = eng.read_pixels()
        nodes.removeNode()

        batch = RigidBatch("boxes")
        template = batch.add_template(box, "box")
        for _ in poses:
            batch.add_part(template)
        path = batch.attach(stage)
        path.setPos(anchor)
        mats = np.stack([pos_hpr_scale_mats(p, h, s) for p, h, s in poses])
        batch.update(mats)
        eng.step(0.0)
        batched = eng.read_pixels()
        assert batched.shape == (HEIGHT, WIDTH, 3)
        orange = (reference[..., 0] > 150) & (reference[..., 2] < 80)
        assert orange.mean() > 0.02  # the boxes are in view
        differs = np.abs(reference.astype(int) - batched.astype(int)).max(axis=2) > 24
        assert differs.mean() < 0.002
    finally:
        stage.removeNode()
