"""The Panda3D renderer: scene base class, procedural geometry, the render engine, snapshots.

Importing this package does not import Panda3D: :mod:`scene_base` is pure Python
at import time so scene plugins stay importable without a window. The engine and
snapshot helpers are loaded on first attribute access.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .scene_base import (
    EYE_HEIGHT_SEATED_M,
    SceneBase,
    angle_between_deg,
    ease_exponential,
    forward_from_hpr,
    look_at_angle_deg,
    smooth_damp,
)

if TYPE_CHECKING:
    from .engine import FrameStats, RenderEngine
    from .snapshot import snapshot

__all__ = [
    "EYE_HEIGHT_SEATED_M",
    "FrameStats",
    "RenderEngine",
    "SceneBase",
    "angle_between_deg",
    "ease_exponential",
    "forward_from_hpr",
    "look_at_angle_deg",
    "smooth_damp",
    "snapshot",
]


def __getattr__(name: str) -> Any:
    if name in ("RenderEngine", "FrameStats"):
        from . import engine

        return getattr(engine, name)
    if name == "snapshot":
        from .snapshot import snapshot

        return snapshot
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
