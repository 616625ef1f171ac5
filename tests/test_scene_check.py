"""The scene validity harness: its measures, its findings, and every shipped step passing it."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from vrexposure.hierarchy import load_hierarchy, parse_hierarchy, validate_file
from vrexposure.plugins import builtin_hierarchies, discover_scenes
from vrexposure.scene_check import (
    CONTRAST_FLOOR,
    FrameMeasure,
    StepMeasure,
    box_overlaps,
    equivalent_diameter_deg,
    flicker_share,
    frame_findings,
    graded_findings,
    luminance_contrast,
    mask_measures,
    pixel_directions,
    pixel_solid_angles,
    report_lines,
    step_findings,
    stimulus_change,
)

from .render_fixtures import shared_engine

# --------------------------------------------------------------------------- pure measures


def test_pixel_solid_angles_add_up_to_the_frustum() -> None:
    weights = pixel_solid_angles(200, 100, 90.0, 60.0)
    # Solid angle of a rectangular pyramid: 4 asin(sin(a/2) sin(b/2)).
    exact = 4.0 * math.asin(math.sin(math.radians(45)) * math.sin(math.radians(30)))
    assert weights.sum() == pytest.approx(exact, rel=1e-3)
    assert weights[50, 100] > weights[0, 0]  # centre pixels cover more of the sphere


def test_equivalent_diameter_of_a_small_cone() -> None:
    half = math.radians(2.0)
    assert equivalent_diameter_deg(2 * math.pi * (1 - math.cos(half))) == pytest.approx(4.0)
    assert equivalent_diameter_deg(0.0) == 0.0


def test_mask_measures_a_square_of_known_angular_size() -> None:
    size, fov = 201, 100.0
    weights = pixel_solid_angles(size, size, fov, fov)
    directions = pixel_directions(size, size, fov, fov)
    mask = np.zeros((size, size), bool)
    mask[90:111, 90:111] = True  # 21 px at the centre
    total, share, widest = mask_measures(mask, weights, directions)
    pixel_deg = math.degrees(2 * math.tan(math.radians(fov / 2)) / size)
    # Across its diagonal: 20 px between the corner pixel centres plus one pixel.
    assert widest == pytest.approx(20 * math.sqrt(2) * pixel_deg + pixel_deg, rel=0.03)
    assert share == pytest.approx(total / weights.sum())
    two = mask.copy()
    two[10:13, 10:13] = True  # a second, smaller part does not make the widest part wider
    assert mask_measures(two, weights, directions)[2] == pytest.approx(widest)
    assert mask_measures(np.zeros_like(mask), weights, directions) == (0.0, 0.0, 0.0)


def test_contrast_flicker_and_overlaps() -> None:
    flat = np.full((50, 50, 3), 90, np.uint8)
    assert luminance_contrast(flat) == 0.0
    outline = flat.copy()
    outline[20:30, :] = 140  # a faint outline in the dark is enough
    assert luminance_contrast(outline) >= CONTRAST_FLOOR
    other = flat.copy()
    other[0, :5] = 200
    assert flicker_share(flat, other) == pytest.approx(5 / 2500)
    boxes = [("a", (0, 0, 0), (1, 1, 1)), ("b", (0.5, 0.5, 0.5), (2, 2, 2)),
             ("c", (0.995, 0, 0), (1.5, 0.4, 0.4))]
    assert box_overlaps(boxes) == ["a and b overlap"]  # a and c touch within the tolerance


def _frame(deg: float = 5.0, sr: float = 0.01, **kw: Any) -> FrameMeasure:
    values: dict[str, Any] = {"stimulus_sr": sr, "stimulus_share": 0.05, "stimulus_deg": deg,
                              "largest_deg": deg, "contrast": 80.0, "zfight_share": 0.0}
    values.update(kw)
    return FrameMeasure(**values)


def test_frame_findings_name_every_broken_thing() -> None:
    assert frame_findings("s1", 0.0, _frame(), 1.0, True) == []
    bad = _frame(0.4, contrast=1.0, zfight_share=0.05, camera_inside="inside a wall",
                 ground_gap="no ground", overlaps=["person 1 and person 2 overlap"])
    checks = {f.check for f in frame_findings("s1", 1.0, bad, 1.0, True)}
    assert checks == {"stimulus visible", "contrast", "z-fighting", "camera", "ground",
                      "interpenetration"}
    # A scene without a stimulus (calm) has no stimulus floor.
    assert frame_findings("s1", 0.0, _frame(0.0), 1.0, False) == []


def test_intensity_and_grading_findings() -> None:
    same = StepMeasure(0, "flat", "", 20, _frame(), _frame(), rmse=0.001, change=0.0)
    assert [f.check for f in step_findings(same, True)] == ["intensity"]
    moved = StepMeasure(0, "moved", "", 20, _frame(), _frame(), rmse=0.001, change=0.3)
    assert step_findings(moved, True) == []
    lit = StepMeasure(0, "lit", "", 20, _frame(), _frame(), rmse=0.05, change=0.0)
    assert step_findings(lit, True) == []
    small = StepMeasure(1, "later", "", 60, _frame(2.0, 0.001), _frame(2.0, 0.001), 0.1, 0.2)
    big = StepMeasure(0, "earlier", "", 30, _frame(9.0, 0.02), _frame(9.0, 0.02), 0.1, 0.2)
    warnings = graded_findings([big, small])
    assert [(w.severity, w.step) for w in warnings] == [("warning", "later")]
    # Ordered by expected SUDS, not by list position; a bigger harder step is fine.
    assert graded_findings([small, big]) == warnings
    bigger = StepMeasure(1, "later", "", 60, _frame(12.0, 0.03), _frame(12.0, 0.03), 0.1, 0.2)
    assert graded_findings([big, bigger]) == []
    assert "later" in "\n".join(report_lines([big, small]))


def test_a_step_that_grades_only_its_sound_changes_something() -> None:
    """Engines at take-off power: the same picture, a louder sound (not flagged)."""
    quiet, loud = _frame(sound_volume=0.7), _frame(sound_volume=1.0)
    engines = StepMeasure(0, "takeoff", "", 55, quiet, loud, rmse=0.0, change=0.0)
    assert engines.sound_change == pytest.approx(0.3)
    assert step_findings(engines, True) == []
    same = StepMeasure(0, "takeoff", "", 55, quiet, _frame(sound_volume=0.72), 0.0, 0.0)
    assert "sound 0.02" in str(step_findings(same, True)[0])


def test_stimulus_change_counts_size_or_shape() -> None:
    a = np.zeros((10, 10), bool)
    a[2:4, 2:4] = True
    b = np.zeros((10, 10), bool)
    b[6:8, 6:8] = True  # the same size, somewhere else: the spider walked
    assert stimulus_change(_frame(mask=a), _frame(mask=b)) == 1.0
    assert stimulus_change(_frame(mask=a), _frame(mask=a)) == 0.0
    assert stimulus_change(_frame(sr=0.01), _frame(sr=0.02)) == pytest.approx(0.5)


def test_validate_warns_when_a_steps_intensity_changes_nothing(tmp_path: Any) -> None:
    text = """
id: t
title: T
scene: spiders
steps:
  - id: still
    label: No slider
    expected_suds: 20
    params: {count: 1}
  - id: empty-range
    label: Both ends the same
    expected_suds: 30
    params: {count: 1}
    intensity: {distance_m: [2, 2]}
  - id: moving
    label: Closer
    expected_suds: 40
    params: {count: 1}
    intensity: {distance_m: [2, 1]}
"""
    path = tmp_path / "t.yaml"
    path.write_text(text)
    assert not [p for p in parse_hierarchy(text, "t.yaml")[1] if "intensity" in str(p)]
    hierarchy, problems = validate_file(path, intensity_checks=True)  # vrexposure validate
    assert hierarchy is not None
    flagged = [p for p in problems if "intensity changes nothing" in str(p)]
    assert len(flagged) == 2
    assert "'still'" in str(flagged[0]) and "'empty-range'" in str(flagged[1])
    assert all(p.severity == "warning" for p in flagged)
    assert "t.yaml:6:" in str(flagged[0])  # file:line of the step ("- id: still")


# --------------------------------------------------------------------------- rendered checks


@pytest.fixture(scope="module")
def checker() -> Iterator[Any]:
    from vrexposure.scene_check import SceneChecker

    engine = shared_engine()
    with SceneChecker(engine) as chk:
        yield chk
    engine.set_head_pose((0, 0, 0), (0, 0, 0))


@pytest.mark.render
@pytest.mark.parametrize("path", builtin_hierarchies(), ids=lambda p: p.stem)
def test_every_shipped_step_passes_the_harness(checker: Any, path: Any) -> None:
    """The CI gate: stimulus visible at every step and intensity, intensity changes it,
    no flat frame, camera in the open, ground underfoot, no overlaps, no z-fighting."""
    scenes = discover_scenes()
    hierarchy = load_hierarchy(path, scenes)
    steps, findings = checker.check_hierarchy(hierarchy, scenes)
    print("\n".join(report_lines(steps)))
    errors = [str(f) for f in findings if f.severity == "error"]
    assert errors == []
    assert len(steps) == len(hierarchy.steps)
    spec = scenes[hierarchy.scene]
    for s in steps:  # the floor, measured (not only the absence of findings)
        assert min(s.low.largest_deg, s.high.largest_deg) >= spec.stimulus_floor_deg, s.step_id


@pytest.mark.render
def test_the_harness_sees_what_is_broken(checker: Any) -> None:
    """Each check fails on a scene broken on purpose (so a pass means something)."""
    from panda3d.core import NodePath

    from vrexposure.render import geometry as g

    engine = checker.engine
    # No spider at all: below the stimulus floor.
    empty = checker.measure("spiders", {"count": 0})
    assert empty.largest_deg == 0.0
    assert any(f.check == "stimulus visible"
               for f in frame_findings("x", 0, empty, 1.0, True))
    visible = checker.measure("spiders", {"count": 1, "size_cm": 8, "distance_m": 1.0})
    assert visible.largest_deg >= 1.0

    scene = engine.current
    root: NodePath = scene.root
    extra = root.attachNewNode("broken-on-purpose")
    try:
        eye = engine.base.cam.getPos(root)
        # Two coplanar mats of different colours on the floor ahead, triangulated
        # differently (one turned a quarter): z-fighting.
        for turn, color in enumerate(((1, 0, 0, 1), (0, 0, 1, 1))):
            card = g.MeshBuilder()
            card.quad([(-2, -2, 0), (2, -2, 0), (2, 2, 0), (-2, 2, 0)], color)
            node = card.attach(extra, "mat")
            node.setPos(eye.x, eye.y + 2.5, 0.02)
            node.setH(90 * turn)
        # A closed box around the eye: the camera is inside geometry.
        box = g.MeshBuilder()
        box.box((-0.02, -0.02, -0.02), (0.02, 0.02, 0.02), (0.5, 0.5, 0.5, 1))
        box.attach(extra, "helmet").setPos(eye)
        # Two props in one place.
        for name in ("chair", "table"):
            prop = g.MeshBuilder()
            prop.box((0, 0, 0), (0.5, 0.5, 0.5), (0.3, 0.3, 0.3, 1))
            prop.attach(extra, name).setTag("solid", name)
        broken = checker.measure("spiders", {"count": 1, "size_cm": 8, "distance_m": 1.0})
    finally:
        extra.removeNode()
    assert broken.zfight_share > 0.002
    assert broken.camera_inside is not None and "helmet" in broken.camera_inside
    assert sorted(broken.overlaps) in (["chair and table overlap"], ["table and chair overlap"])

    # The floor taken away: no ground under the patient.
    floors = [p for p in root.findAllMatches("**/+GeomNode") if not p.isHidden()]
    for path in floors:
        path.hide()
    try:
        floating = checker.measure("spiders", {"count": 1})
    finally:
        for path in floors:
            path.show()
    assert floating.ground_gap is not None
    assert floating.contrast < CONTRAST_FLOOR  # and a frame with nothing in it is flat
