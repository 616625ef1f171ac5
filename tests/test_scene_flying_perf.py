"""The flying scene: draw-call and triangle budgets, and what the window shows.

Budgets are counted like ``drawn()`` in bench/render.py (non-hidden Geoms under the
scene root and their triangles, once per eye of the stereo renderer) but without its
view-frustum test, so they are an upper bound of what the benchmark reports.
"""

from __future__ import annotations

import sys
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

STEREO_EYES = 2
#: The old cabin drew 188 Geoms and 62 k triangles (stereo) at the top step.
MAX_DRAW_CALLS_STEREO = 40
MAX_TRIANGLES_STEREO = 25_000
# Every weather parameter named: within a scene, unnamed parameters keep their targets.
CRUISE = {"flight_phase": "cruise", "turbulence": 0.0, "window_shade_open": True, "storm": 0.0}


def step_params(index: int) -> dict[str, Any]:
    """Parameters of step ``index`` (negative from the end) of the fear-of-flying hierarchy."""
    hierarchy = load_hierarchy(builtin_dir("hierarchies") / "fear_of_flying.yaml")
    return dict(hierarchy.step_params(index % len(hierarchy.steps), 1.0, discover_scenes()))


@pytest.mark.parametrize("step", [0, -1], ids=["boarding", "top-step"])
def test_draw_calls_and_triangles_fit_the_budget(engine: Any, step: int) -> None:
    snap(engine, "flying", step_params(step))
    settle(engine, "flying", step_params(step), seconds=2.0, dt_s=0.5)
    geoms, triangles = count_geometry(engine.current.root)
    assert geoms * STEREO_EYES <= MAX_DRAW_CALLS_STEREO, geoms
    assert triangles * STEREO_EYES <= MAX_TRIANGLES_STEREO, triangles
    # No TextNodes (they draw but are not GeomNodes, so no count would see them).
    assert engine.current.root.findAllMatches("**/+TextNode").getNumPaths() == 0


def to_pixel(eng: Any, point: tuple[float, float, float], shape: tuple[int, ...]) -> NDArray[Any]:
    """Pixel (column, row) of a scene point in the last frame's camera."""
    from panda3d.core import Point2, Point3

    cam = eng.base.cam
    local = cam.getRelativePoint(eng.base.render, Point3(*point))
    film = Point2()
    assert eng.base.camLens.project(local, film), f"{point} is not in view"
    height, width = shape[:2]
    return np.array([(film.x + 1) / 2 * width, (1 - film.y) / 2 * height])


def window_box(eng: Any, shape: tuple[int, ...]) -> tuple[slice, slice]:
    """Rows and columns of the upper inner part of the patient's window opening."""
    fl = sys.modules[type(eng.current).__module__]  # the loaded scene plugin's constants
    x = fl.WALL_X - fl.RECESS_M
    half_w, half_h = fl.WIN_HALF
    corners = [to_pixel(eng, (x, fl.WIN_Y0 + du * half_w * 0.6, fl.WIN_Z + dv * half_h), shape)
               for du in (-1, 1) for dv in (0.4, 0.85)]
    cols = [c[0] for c in corners]
    rows = [c[1] for c in corners]
    return (slice(int(min(rows)), int(max(rows)) + 1), slice(int(min(cols)), int(max(cols)) + 1))


def sky_fraction(img: NDArray[np.uint8]) -> float:
    """Share of clearly blue, bright pixels (sky; the cabin's navy fabric is too dark)."""
    rgb = img[..., :3].astype(np.int16)
    sky = (rgb[..., 2] > rgb[..., 0] + 25) & (rgb[..., 2] > 130) & (rgb[..., 1] > rgb[..., 0])
    return float(sky.mean()) if sky.size else 0.0


def test_the_window_shows_the_sky_and_the_cabin_hides_it_elsewhere(engine: Any) -> None:
    img = settle(engine, "flying", CRUISE, seconds=3.0)
    rows, cols = window_box(engine, img.shape)
    assert rows.stop - rows.start >= 4 and cols.stop - cols.start >= 4, (rows, cols)
    assert sky_fraction(img[rows, cols]) > 0.6
    # Right of the window (wall, seats, the cabin ahead) the outside is hidden.
    assert sky_fraction(img[:, int(img.shape[1] * 0.6):]) < 0.02
    assert sky_fraction(img) < 0.25
    # With the shade down no sky shows through the window.
    shut = settle(engine, "flying", dict(CRUISE, window_shade_open=False), seconds=4.0)
    assert sky_fraction(shut[rows, cols]) < 0.05


def test_the_view_through_the_window_follows_the_flight_phase(engine: Any) -> None:
    views = {phase: snap(engine, "flying", dict(CRUISE, flight_phase=phase))
             for phase in ("boarding", "takeoff", "cruise")}
    rows, cols = window_box(engine, views["cruise"].shape)
    for a, b in (("boarding", "cruise"), ("takeoff", "cruise"), ("boarding", "takeoff")):
        assert changed_fraction(views[a][rows, cols], views[b][rows, cols]) > 0.2, (a, b)


def motion(eng: Any, turbulence: float) -> float:
    eng.show("flying", dict(CRUISE, turbulence=turbulence))
    for _ in range(8):
        eng.step(0.25)
    before = eng.read_pixels()
    eng.step(0.1)
    return changed_fraction(before, eng.read_pixels())


def test_turbulence_shakes_the_cabin(engine: Any) -> None:
    snap(engine, "flying", CRUISE)
    calm, rough = motion(engine, 0.0), motion(engine, 1.0)
    assert rough > 0.02
    assert rough > 4 * calm


def horizon_tilt_deg(img: NDArray[np.uint8]) -> float:
    """Slope of the sky/ground boundary, from a line fit of the lowest sky row per column."""
    rgb = img[..., :3].astype(np.int16)
    sky = (rgb[..., 2] > rgb[..., 0] + 25) & (rgb[..., 2] > 130)
    cols, rows = [], []
    for c in range(0, img.shape[1], 4):
        ground = np.flatnonzero(~sky[:, c])
        if 0 < len(ground) < img.shape[0] and ground[0] > 0:
            cols.append(c)
            rows.append(ground[0])
    assert len(cols) > img.shape[1] // 8, "no horizon in view"
    slope = np.polyfit(cols, rows, 1)[0]
    return float(np.degrees(np.arctan(slope)))


def test_banking_tilts_the_horizon(engine: Any) -> None:
    tilts = []
    for bank_deg in (-10.0, 10.0):
        snap(engine, "flying", dict(CRUISE, flight_phase="landing"))
        scene = engine.current
        # Hold the eased bank channel (a test of the picture, not of the phases' banks).
        channel = scene._channels["bank_deg"]
        channel.value = channel.target = bank_deg
        cabin = scene.root.find("**/cabin")
        cabin.hide()  # the outside alone: the horizon runs across the whole frame
        engine.step(0.0)
        tilts.append(horizon_tilt_deg(engine.read_pixels()))
        cabin.show()
        assert abs(scene.bank_deg() - bank_deg) < 1.5
    engine.show("calm", {})
    assert abs(tilts[1] - tilts[0]) > 8.0, tilts
