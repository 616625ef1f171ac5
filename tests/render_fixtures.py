"""One offscreen render engine per test process (Panda3D allows a single ShowBase)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

WIDTH, HEIGHT = 320, 180
_ENGINE: Any = None


def shared_engine() -> Any:
    """The process-wide offscreen engine (opened on first use, closed at exit)."""
    global _ENGINE
    if _ENGINE is None:
        import atexit

        from vrexposure.render.engine import RenderEngine

        _ENGINE = RenderEngine("offscreen", WIDTH, HEIGHT, stereo=False)
        atexit.register(_ENGINE.close)
    return _ENGINE


@pytest.fixture(scope="module")
def engine() -> Iterator[Any]:
    eng = shared_engine()
    eng.set_head_pose((0, 0, 0), (0, 0, 0))
    yield eng


def settle(
    eng: Any, scene: str, params: Mapping[str, Any], seconds: float = 3.5, dt_s: float = 0.25
) -> NDArray[np.uint8]:
    """Show ``scene`` with ``params``, run ``seconds`` of frames, return the pixels."""
    eng.show(scene, params)
    for _ in range(round(seconds / dt_s)):
        eng.step(dt_s)
    return eng.read_pixels()


def snap(eng: Any, scene: str, params: Mapping[str, Any]) -> NDArray[np.uint8]:
    """Switch to ``scene`` with ``params`` applied at once (a cut) and render one frame."""
    eng.show("calm" if scene != "calm" else "spiders", {})
    eng.show(scene, params)
    eng.step(0.0)
    return eng.read_pixels()


def changed_fraction(a: NDArray[np.uint8], b: NDArray[np.uint8], threshold: int = 24) -> float:
    """Share of pixels whose colour differs by more than ``threshold`` (max over channels)."""
    diff = np.abs(a.astype(np.int16) - b.astype(np.int16)).max(axis=2)
    return float((diff > threshold).mean())


def luminance(img: NDArray[np.uint8]) -> float:
    return float((img[..., :3].astype(np.float64) @ [0.299, 0.587, 0.114]).mean())


def only(eng: Any, part: Any) -> NDArray[np.uint8]:
    """Render the current scene with only ``part`` shown (a NodePath, or the name of a node
    under the scene's root): a mask of its pixels."""
    root = eng.current.root
    if isinstance(part, str):
        name, part = part, root.find(f"**/{part}")
        assert not part.isEmpty(), name
    root.hide()
    part.showThrough()
    eng.step(0.0)
    img = eng.read_pixels()
    part.show()
    root.show()
    return img
