"""Vertex animation in shaders: parts still move on screen, the CPU no longer moves vertices,
and the GPU path draws what the numpy path draws (and still runs where shaders do not)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from tests.render_fixtures import changed_fraction, engine, only, settle
from vrexposure.render import geometry as g
from vrexposure.render import shaders
from vrexposure.render.batch import RigidBatch, pos_hpr_scale_mats
from vrexposure.render.seated import SwayParts

pytestmark = pytest.mark.render
__all__ = ["engine"]
ROOT = Path(__file__).resolve().parents[1]


def buffer_bytes(node_path: Any) -> bytes:
    """The vertex rows (array 0: position, normal, colour, uv) of a one-Geom node."""
    return bytes(memoryview(node_path.node().getGeom(0).getVertexData().getArray(0)))


@pytest.fixture
def stage(engine: Any) -> Iterator[Any]:
    """An empty, lit, fogged stage in front of the calm scene's camera (scene hidden)."""
    from panda3d.core import Fog

    engine.show("calm", {})
    engine.step(0.0)
    engine.current.root.hide()
    node = engine.base.render.attachNewNode("shader-stage")
    cam = engine.base.camera
    node.setPos(cam.getPos(engine.base.render) + cam.getQuat(engine.base.render).getForward() * 6)
    g.ambient_light(node, (0.25, 0.25, 0.3))
    g.sun_light(node, (0.6, 0.55, 0.5), (30, -40, 0))
    g.point_light(node, (0.8, 0.7, 0.5), (1.5, -2.0, 1.0), (1.0, 0.0, 0.2))
    fog = Fog("test-haze")
    fog.setColor(0.5, 0.6, 0.7)
    fog.setExpDensity(0.05)
    node.setFog(fog)
    try:
        yield node
    finally:
        node.removeNode()
        engine.current.root.show()
        engine.show("calm", {})
        engine.step(0.0)


def _boxes() -> g.MeshBuilder:
    box = g.MeshBuilder()
    box.box((-0.5, -0.5, -0.5), (0.5, 0.5, 0.5), (0.9, 0.4, 0.2, 1))
    box.sphere(0.4, (0.3, 0.7, 0.9, 1), rings=6, segments=10, center=(0, 0, 0.8))
    return box


def _draw_both(eng: Any, stage: Any, build: Any, monkeypatch: pytest.MonkeyPatch
               ) -> tuple[Any, Any, NDArray[np.uint8], NDArray[np.uint8]]:
    """``build(stage)`` once on the numpy path and once on the GPU path; both frames."""
    eng.step(0.0)
    empty = eng.read_pixels()
    images = []
    made = []
    for gpu in (False, True):
        monkeypatch.setattr(shaders, "_available", gpu)
        obj, path = build(stage)
        made.append((obj, path))
    for k, (_obj, path) in enumerate(made):
        made[1 - k][1].hide()
        path.show()
        eng.step(0.0)
        images.append(eng.read_pixels())
    assert changed_fraction(empty, images[0]) > 0.03  # the parts are in view
    return made[0][0], made[1][0], images[0], images[1]


def test_the_test_engine_animates_on_the_gpu(engine: Any) -> None:
    """The tests and the bench render on pandagl (EGL, llvmpipe here), which runs GLSL."""
    assert engine.pipe_name.startswith("pandagl")
    assert engine.gpu_animation is True
    assert shaders.available()


def _material(kind: str) -> Any:
    from panda3d.core import Material, Vec4

    material = Material()
    if kind == "shiny":  # as geometry.set_shiny: specular only, colours from the vertices
        material.setSpecular(Vec4(0.8, 0.8, 0.8, 1))
        material.setShininess(30.0)
    else:  # every colour from the material
        material.setAmbient(Vec4(0.2, 0.3, 0.6, 1))
        material.setDiffuse(Vec4(0.3, 0.8, 0.4, 1))
        material.setEmission(Vec4(0.1, 0.0, 0.1, 1))
    return material


@pytest.mark.parametrize("material", ["none", "shiny", "coloured"])
def test_rigid_batch_on_the_gpu_draws_what_numpy_draws(
        engine: Any, stage: Any, monkeypatch: pytest.MonkeyPatch, material: str) -> None:
    poses = [((-1.4, 0, 0), (20, 30, 0), 0.8), ((0, 0.5, 0.3), (0, 0, 45), 0.6),
             ((1.4, 0, -0.2), (-30, 10, 5), (0.5, 1, 1.6)), ((0, 0, 0), (0, 0, 0), 0.0)]
    mats = np.stack([pos_hpr_scale_mats(p, h, s) for p, h, s in poses])  # the last one hidden
    colors = np.array([(1, 1, 1, 1), (1, 0.5, 0.5, 1), (0.5, 1, 0.5, 1), (1, 1, 1, 1)],
                      np.float32)

    def build(parent: Any) -> tuple[RigidBatch, Any]:
        batch = RigidBatch("boxes")
        template = batch.add_template(_boxes())
        for _ in poses:
            batch.add_part(template)
        path = batch.attach(parent)
        if material != "none":
            path.setMaterial(_material(material), 1)
        batch.update(mats, colors)
        return batch, path

    cpu, gpu, cpu_img, gpu_img = _draw_both(engine, stage, build, monkeypatch)
    assert not cpu.on_gpu and gpu.on_gpu
    assert changed_fraction(cpu_img, gpu_img, threshold=12) < 0.002
    np.testing.assert_allclose(gpu.placed_positions(), cpu.placed_positions(), atol=1e-5)
    np.testing.assert_array_equal(np.isnan(gpu.part_bounds()), np.isnan(cpu.part_bounds()))


def test_sway_parts_on_the_gpu_draw_what_numpy_draws(
        engine: Any, stage: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    roll_deg, moved = [12.0, -25.0], [(-1.0, 0.2, -0.4), (1.1, -0.3, -0.2)]

    def build(parent: Any) -> tuple[SwayParts, Any]:
        parts = SwayParts("swaying")
        parts.add(_boxes(), (-1.0, 0.0, -0.5), 30.0)
        parts.add(_boxes(), (1.0, 0.0, -0.5), 200.0)
        path = parts.attach(parent)
        parts.update(roll_deg, moved)
        return parts, path

    cpu, gpu, cpu_img, gpu_img = _draw_both(engine, stage, build, monkeypatch)
    assert not cpu.on_gpu and gpu.on_gpu
    # One face lit by the point light at a grazing angle differs by up to 22 levels.
    assert changed_fraction(cpu_img, gpu_img) < 0.002
    np.testing.assert_allclose(gpu.placed_positions(), cpu.placed_positions(), atol=1e-4)


def test_a_light_added_later_reaches_the_shader(engine: Any, stage: Any) -> None:
    """Scenes add lights and fog after building their parts: the shader follows."""
    batch = RigidBatch("late")
    batch.add_part(batch.add_template(_boxes()))
    batch.attach(stage)
    batch.update(pos_hpr_scale_mats([(0, 0, 0)], [(0, 0, 0)], 1.0))
    assert batch._shader is not None
    before = batch._shader.current
    engine.step(0.0)
    dim = engine.read_pixels()
    g.point_light(stage, (2.0, 2.0, 2.0), (0.0, -1.5, 0.5), (1.0, 0.0, 0.0))
    batch.update(pos_hpr_scale_mats([(0, 0, 0)], [(0, 0, 0)], 1.0))
    assert batch._shader.current != before
    assert batch._shader.current is not None and batch._shader.current[2].lights == 3
    engine.step(0.0)
    bright = engine.read_pixels()
    lit = np.abs(bright.astype(int) - dim.astype(int)).max(axis=2) > 24
    assert lit.mean() > 0.005  # the new light shows on the boxes
    assert bright[lit].astype(int).sum() > dim[lit].astype(int).sum()


def test_calm_grass_and_trees_move_on_screen_but_not_in_their_buffers(engine: Any) -> None:
    """The wind still moves them (pixels differ) and no vertex is rewritten by the CPU."""
    settle(engine, "calm", {"wind_speed_m_s": 5.0}, seconds=1.0)
    scene = engine.current
    for name in ("grass", "trees", "clouds"):
        part = scene.root.find(f"**/{name}")
        assert part.getShader() is not None, name
        before_px, before_buf = only(engine, part), buffer_bytes(part)
        engine.step(0.4)
        after_px, after_buf = only(engine, part), buffer_bytes(part)
        assert changed_fraction(before_px, after_px) > 0.001, f"{name} did not move"
        assert before_buf == after_buf, f"{name}: the CPU rewrote its vertices"
    grass = scene._bending[0]
    roots = grass.lift == 0.0
    a = grass.placed_positions()
    engine.step(0.5)
    b = grass.placed_positions()
    assert np.abs(b - a)[roots].max() < 1e-5 < np.abs(b - a)[~roots].max()


def test_walking_spider_legs_move_on_screen_but_not_in_the_buffer(engine: Any) -> None:
    close = {"count": 1, "size_cm": 15.0, "distance_m": 0.6, "species": "tarantula",
             "speed_cm_s": 8.0}
    engine.show("calm", {})
    settle(engine, "spiders", close, seconds=2.0)
    (batches,) = [b for b in engine.current._batch_sets if not b.node.isHidden()]
    body = batches.node.find("spider-bodies")
    assert batches.body.on_gpu and body.getShader() is not None
    before_px, before_buf = engine.read_pixels(), buffer_bytes(body)
    engine.step(0.08)
    assert changed_fraction(before_px, engine.read_pixels(), threshold=16) > 0.0005
    assert buffer_bytes(body) == before_buf
    engine.show("calm", {})
    engine.step(0.0)


def test_shader_sources_refuse_what_they_cannot_draw() -> None:
    with pytest.raises(ValueError, match="animation mode"):
        shaders.shader_sources("wobble", True, False, "none")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="fog mode"):
        shaders.shader_sources("rigid", True, False, "smog")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at most"):
        shaders.shader_sources("rigid", True, False, "none",
                               lighting=shaders.Lighting(shaders.MAX_LIGHTS + 1))
    vertex, fragment = shaders.shader_sources("bend", True, True, "exp2",
                                              lighting=shaders.Lighting(2, near=True))
    assert "#define LIGHTS 2" in vertex and "#define FOG_EXP2 1" in fragment
    texture = shaders.PartTexture("t", 3, 4)
    with pytest.raises(ValueError, match="part values"):
        texture.write(np.zeros((3, 2, 4)))


_RENDER_BOTH = """
import os, sys
import numpy as np
from vrexposure.render.engine import RenderEngine
from vrexposure.plugins import builtin_dir, discover_scenes
from vrexposure.hierarchy import load_hierarchy
specs = discover_scenes()
top = load_hierarchy(builtin_dir("hierarchies") / "arachnophobia.yaml")
scenes = {{"calm": dict(specs["calm"].defaults(), wind_speed_m_s=4.0),
           "spiders": top.step_params(len(top.steps) - 1, 1.0, specs)}}
with RenderEngine("offscreen", 320, 180, pipe={pipe!r}) as eng:
    print("gpu", eng.gpu_animation, flush=True)
    for name, params in scenes.items():
        eng.show(name, params)
        for _ in range(6):
            eng.step(0.5)
        eng.step(0.37)
        np.save(os.path.join(sys.argv[1], name + ".npy"), eng.read_pixels())
        eng.step(0.4)
        np.save(os.path.join(sys.argv[1], name + "_later.npy"), eng.read_pixels())
"""


def _render_child(out: Path, cpu: bool, pipe: str = "auto") -> str:
    import os

    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("DISPLAY", None)
    if cpu:
        env[shaders.CPU_ENV] = "1"
    else:
        env.pop(shaders.CPU_ENV, None)
    out.mkdir()
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(_RENDER_BOTH.format(pipe=pipe)),
                           str(out)], cwd=ROOT, capture_output=True, text=True, timeout=240,
                          env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.mark.slow
def test_scenes_look_the_same_with_animation_on_the_gpu_or_in_numpy(tmp_path: Path) -> None:
    """The calm meadow (grass, flowers, trees, clouds) and twenty walking spiders, after the
    same 3.4 s, drawn by the shaders and by the numpy path: the same picture."""
    assert "gpu True" in _render_child(tmp_path / "gpu", cpu=False)
    assert "gpu False" in _render_child(tmp_path / "cpu", cpu=True)
    for name in ("calm", "spiders"):
        gpu = np.load(tmp_path / "gpu" / f"{name}.npy")
        cpu = np.load(tmp_path / "cpu" / f"{name}.npy")
        assert gpu.std() > 10  # a picture, not a blank frame
        # Fog by eye depth in both; far trees differ by a few levels at most.
        assert changed_fraction(gpu, cpu, threshold=16) < 0.002, name


@pytest.mark.slow
def test_tinydisplay_keeps_the_numpy_animation(tmp_path: Path) -> None:
    """The software pipe without shaders: vertex animation falls back to numpy and shows."""
    out = _render_child(tmp_path / "tiny", cpu=False, pipe="p3tinydisplay")
    assert "gpu False" in out
    calm = np.load(tmp_path / "tiny" / "calm.npy")
    assert calm.std() > 10
    # The wind moved grass, trees and clouds within 0.4 s.
    assert changed_fraction(calm, np.load(tmp_path / "tiny" / "calm_later.npy")) > 0.002
