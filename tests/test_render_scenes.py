"""Each scene renders offscreen, and its parameters change the pixels in the expected direction."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.render_fixtures import changed_fraction, engine, luminance, settle, snap
from vrexposure.plugins import discover_scenes
from vrexposure.scene_api import ParamSpec

pytestmark = [pytest.mark.render, pytest.mark.slow]
__all__ = ["engine"]

SCENES = ["calm", "spiders", "heights", "public_speaking", "enclosed_space", "flying"]
#: A starting point where every parameter's effect is large enough to see at test resolution.
BASE: dict[str, dict[str, Any]] = {
    "calm": {},
    "spiders": {"count": 4, "size_cm": 12.0, "distance_m": 1.0, "speed_cm_s": 8.0},
    "heights": {"height_m": 30.0, "edge_distance_m": 1.0},
    "public_speaking": {"audience_size": 24, "front_row_distance_m": 2.0, "attention": 0.5},
    "enclosed_space": {"wall_distance_m": 1.5},
    "flying": {"flight_phase": "takeoff"},
}


def other_value(pspec: ParamSpec, current: Any) -> Any:
    """A clearly different valid value for a parameter."""
    if pspec.type == "bool":
        return not current
    if pspec.type == "choice":
        return [c for c in pspec.choices if c != current][-1]
    lo, hi = float(pspec.minimum or 0.0), float(pspec.maximum or 1.0)
    value = hi if float(current) - lo < (hi - lo) / 2 else lo
    return round(value) if pspec.type == "int" else value


def visible_params() -> list[tuple[str, str]]:
    specs = discover_scenes()
    cases = []
    for name in SCENES:
        scene_cls = specs[name].factory
        sound = getattr(scene_cls, "sound_param", None)
        cases += [(name, p.name) for p in specs[name].params if p.name != sound]
    return cases


@pytest.mark.parametrize("scene", SCENES)
def test_scene_renders_with_defaults(engine: Any, scene: str) -> None:
    img = snap(engine, scene, {})
    assert img.shape == (180, 320, 3)
    assert img.std() > 12, "a uniform image: nothing drawn"
    assert 15 < luminance(img) < 240


@pytest.mark.parametrize(("scene", "param"), visible_params())
def test_every_parameter_changes_the_image(engine: Any, scene: str, param: str) -> None:
    spec = discover_scenes()[scene]
    base = spec.resolve(BASE[scene])
    changed = dict(base, **{param: other_value(spec.param(param), base[param])})  # type: ignore[arg-type]
    a = settle(engine, scene, base, seconds=2.0)
    engine.show("calm" if scene != "calm" else "spiders", {})
    b = settle(engine, scene, changed, seconds=2.0)
    engine.show("calm" if scene != "calm" else "spiders", {})
    assert changed_fraction(a, b, threshold=12) > 0.0008, f"{scene}.{param} changed nothing"


def stimulus_pixels(eng: Any, params: dict[str, Any]) -> int:
    with_spiders = snap(eng, "spiders", params)
    without = snap(eng, "spiders", dict(params, count=0))
    return int((np.abs(with_spiders.astype(int) - without.astype(int)).max(axis=2) > 20).sum())


def test_spiders_closer_larger_and_more_cover_more_pixels(engine: Any) -> None:
    # 1.5 m rather than farther: a small spider must cover whole pixels at the test's
    # 320x180, or sub-pixel animation decides the count.
    far_small = stimulus_pixels(engine, {"count": 1, "size_cm": 8.0, "distance_m": 1.5})
    far_large = stimulus_pixels(engine, {"count": 1, "size_cm": 15.0, "distance_m": 1.5})
    near_large = stimulus_pixels(engine, {"count": 1, "size_cm": 15.0, "distance_m": 0.5})
    many = stimulus_pixels(engine, {"count": 10, "size_cm": 15.0, "distance_m": 0.5})
    assert 0 < far_small < far_large < near_large < many


def test_spider_species_and_terrarium(engine: Any) -> None:
    house = snap(engine, "spiders", {"count": 1, "size_cm": 15.0, "distance_m": 0.6})
    tarantula = snap(
        engine, "spiders", {"count": 1, "size_cm": 15.0, "distance_m": 0.6, "species": "tarantula"}
    )
    assert luminance(tarantula) < luminance(house)  # black, thick-legged
    tank = snap(
        engine, "spiders", {"count": 1, "size_cm": 15.0, "distance_m": 0.6, "contained": True}
    )
    assert changed_fraction(house, tank) > 0.05


@pytest.mark.parametrize(
    ("scene", "param", "low"),
    [
        ("spiders", "light_level", 0.2),
        ("enclosed_space", "light_level", 0.05),
        ("calm", "light_level", 0.3),
        ("flying", "light_level", 0.2),
    ],
)
def test_lower_light_is_darker(engine: Any, scene: str, param: str, low: float) -> None:
    bright = snap(engine, scene, {param: 1.0})
    dark = snap(engine, scene, {param: low})
    assert luminance(dark) < luminance(bright) * 0.85


def test_more_audience_covers_more_of_the_hall(engine: Any) -> None:
    empty = snap(engine, "public_speaking", {"audience_size": 0, "hall": "lecture_hall"})
    few = snap(engine, "public_speaking", {"audience_size": 5, "hall": "lecture_hall"})
    many = snap(engine, "public_speaking", {"audience_size": 80, "hall": "lecture_hall"})
    assert 0.0 < changed_fraction(empty, few) < changed_fraction(empty, many)


def test_audience_attention_turns_heads(engine: Any) -> None:
    params = {"audience_size": 12, "front_row_distance_m": 1.5}
    away = settle(engine, "public_speaking", dict(params, attention=0.0))
    looking = settle(engine, "public_speaking", dict(params, attention=1.0))
    assert changed_fraction(away, looking) > 0.005


def door_pixels(eng: Any, distance_m: float) -> float:
    """Share of the view covered by the door in the front wall (rendered alone: a mask)."""
    snap(eng, "enclosed_space", {"wall_distance_m": distance_m, "door": "closed"})
    root = eng.current.root
    door = root.find("**/door-hinge")
    root.hide()
    door.showThrough()
    eng.step(0.0)
    img = eng.read_pixels()
    door.show()
    root.show()
    return float((img.max(axis=2) > 8).mean())


def test_closer_walls_fill_more_of_the_view(engine: Any) -> None:
    far, mid, near = (door_pixels(engine, d) for d in (4.0, 2.0, 0.6))
    assert 0.0 < far < mid < near


def test_creeping_walls_move_in_over_time(engine: Any) -> None:
    engine.show("calm", {})
    engine.show("enclosed_space", {"wall_distance_m": 2.0, "wall_creep_cm_s": 5.0})
    scene = engine.current
    engine.step(0.1)
    start = scene.current_wall_distance_m()
    for _ in range(10):
        engine.step(0.5)
    assert scene.current_wall_distance_m() < start - 0.15
    engine.show("calm", {})


def test_railing_none_shows_fewer_railing_pixels(engine: Any) -> None:
    params = {"edge_distance_m": 1.5, "height_m": 40.0}
    none = snap(engine, "heights", dict(params, railing="none"))
    low = snap(engine, "heights", dict(params, railing="low"))
    full = snap(engine, "heights", dict(params, railing="full"))
    assert 0.0 < changed_fraction(none, low) < changed_fraction(none, full)


def test_flight_phases_show_different_views_and_turbulence_shakes(engine: Any) -> None:
    views = [snap(engine, "flying", {"flight_phase": p}) for p in ("boarding", "takeoff", "cruise")]
    assert changed_fraction(views[0], views[2]) > 0.02
    assert changed_fraction(views[1], views[2]) > 0.02

    def motion(turbulence: float) -> float:
        # A cut (parameters at once) and the same scene time for both: the view outside
        # moves the same, so only the shake differs (the engine's time is shared by tests).
        snap(engine, "flying", {"flight_phase": "cruise", "turbulence": turbulence})
        engine.time_s = 40.0
        for _ in range(8):
            engine.step(0.25)
        a = engine.read_pixels()
        engine.step(0.13)
        return changed_fraction(a, engine.read_pixels())

    assert motion(1.0) > 2 * motion(0.0) + 0.004
