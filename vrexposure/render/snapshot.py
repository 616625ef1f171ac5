"""Render one scene offscreen, let its easing settle, and write a PNG."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .engine import RenderEngine

#: Simulated frame time while settling (the easing uses it, not the wall clock).
SETTLE_DT_S = 1.0 / 30.0


def render_settled(
    engine: RenderEngine,
    scene_name: str,
    params: Mapping[str, Any],
    settle_s: float = 3.0,
    dt_s: float = SETTLE_DT_S,
) -> None:
    """Show ``scene_name`` with ``params`` in ``engine`` and run ``settle_s`` of frames."""
    engine.show(scene_name, params)
    frames = max(1, round(settle_s / dt_s))
    for _ in range(frames):
        engine.step(dt_s)


def snapshot(
    scene_name: str,
    params: Mapping[str, Any],
    out_path: Path | str,
    width: int = 1280,
    height: int = 720,
    settle_s: float = 3.0,
    *,
    stereo: bool = False,
    scene_dirs: Sequence[Path | str] = (),
    engine: RenderEngine | None = None,
    head_hpr: Sequence[float] = (0.0, 0.0, 0.0),
) -> Path:
    """Render ``scene_name`` with ``params`` offscreen after ``settle_s`` and write a PNG.

    Panda3D allows one window system per process: pass ``engine`` to reuse an
    open offscreen engine (its size is then used); otherwise one is opened and closed.
    """
    if engine is not None:
        engine.set_head_pose((0.0, 0.0, 0.0), head_hpr)
        render_settled(engine, scene_name, params, settle_s)
        return engine.save_png(out_path)
    with RenderEngine(
        "offscreen", width, height, stereo=stereo, scene_dirs=scene_dirs, multisamples=0
    ) as own:
        own.set_head_pose((0.0, 0.0, 0.0), head_hpr)
        render_settled(own, scene_name, params, settle_s)
        return own.save_png(out_path)
