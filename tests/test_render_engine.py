"""The render engine: easing on screen, fades, gaze, previews, statistics, stereo."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.render_fixtures import changed_fraction, engine, luminance, settle, snap

pytestmark = pytest.mark.render
__all__ = ["engine"]

ROOT = Path(__file__).resolve().parents[1]


def test_pipe_is_chosen_and_logged(engine: Any) -> None:
    assert engine.pipe_name.split()[0] in ("pandagl", "p3tinydisplay")
    assert engine.scene_names[:2] == ["calm", "enclosed_space"]


def test_parameter_jump_is_eased(engine: Any) -> None:
    start = settle(engine, "enclosed_space", {"wall_distance_m": 3.5}, seconds=1.0)
    target_params = {"wall_distance_m": 0.6}
    engine.show("enclosed_space", target_params)
    engine.step(1 / 60)
    first = engine.read_pixels()
    for _ in range(45):
        engine.step(0.1)
    settled = engine.read_pixels()
    target = snap(engine, "enclosed_space", target_params)
    assert changed_fraction(start, first) < 0.01  # no jump on the first frame
    assert (
        changed_fraction(settled, target) < 0.02
    )  # matches the target after ~4.5 s (3 ease times)
    assert changed_fraction(start, target) > 0.2


def test_fade_to_calm_within_one_second(engine: Any) -> None:
    settle(engine, "spiders", {"count": 5, "size_cm": 10.0}, seconds=0.5)
    before = luminance(engine.read_pixels())
    engine.fade_to("calm", {}, duration_s=0.8)
    darkest = before
    elapsed = 0.0
    while elapsed < 1.0 - 1e-9:
        engine.step(1 / 30)
        elapsed += 1 / 30
        darkest = min(darkest, luminance(engine.read_pixels()))
    assert engine.current.name == "calm" and not engine.fading
    assert darkest < 0.2 * before  # it went through black
    calm = engine.read_pixels()
    assert changed_fraction(calm, snap(engine, "calm", {}), threshold=40) < 0.1


def test_look_at_angle_and_looking_away(engine: Any) -> None:
    settle(engine, "spiders", {"count": 1, "size_cm": 8.0, "distance_m": 1.5}, seconds=0.5)
    assert engine.look_at_angle_deg() < 12.0
    assert engine.looking_away(30.0) is False
    engine.set_head_pose((0, 0, 0), (120, 0, 0))
    engine.step(0.0)
    assert engine.look_at_angle_deg() > 90.0 and engine.looking_away(30.0) is True
    engine.set_head_pose((0, 0, 0), (0, 0, 0))
    engine.show("calm", {})
    engine.step(0.0)
    assert engine.look_at_angle_deg() is None and engine.looking_away() is None


def test_preview_stats_and_pixels(engine: Any) -> None:
    engine.show("heights", {})
    for _ in range(5):
        engine.step(None)
    jpeg = engine.jpeg_preview(max_width=96)
    assert jpeg[:2] == b"\xff\xd8" and len(jpeg) < 20_000
    stats = engine.frame_stats()
    assert stats.frames >= 1 and stats.p50_ms > 0 and stats.p99_ms >= stats.p50_ms
    assert stats.geoms > 5 and stats.triangles > 1000
    rgba = engine.read_pixels(alpha=True)
    assert rgba.shape == (180, 320, 4) and rgba.dtype == np.uint8


def test_unknown_scene_and_bad_params(engine: Any) -> None:
    with pytest.raises(KeyError):
        engine.show("volcano", {})
    engine.show("heights", {"height_m": "very", "railing": "glass", "nonsense": 1})
    engine.step(0.1)
    assert engine.current.params["railing"] == "full"


@pytest.mark.slow
def test_side_by_side_stereo_renders_two_different_eyes(tmp_path: Path) -> None:
    code = textwrap.dedent(
        f"""
        import numpy as np
        from vrexposure.render.snapshot import snapshot
        from vrexposure.render.engine import RenderEngine
        with RenderEngine("offscreen", 256, 96, stereo=True) as eng:
            eng.show("spiders", {{"count": 3, "size_cm": 12.0, "distance_m": 0.8}})
            eng.step(0.0)
            img = eng.read_pixels()
            left, right = img[:, :128].astype(int), img[:, 128:].astype(int)
            assert img.shape == (96, 256, 3), img.shape
            assert np.abs(left - right).mean() > 0.5, "eyes identical"
            assert np.abs(left - right).mean() < 40, "eyes unrelated"
            out = snapshot("calm", {{}}, r"{tmp_path / "calm.png"}", settle_s=0.2, engine=eng)
            print(out)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=90
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "calm.png").stat().st_size > 1000


def test_mirror_is_a_small_copy_of_the_view_drawn_only_when_asked(engine: Any) -> None:
    """The therapist's preview: the same view (fade included) from a small second buffer."""
    from PIL import Image

    eng = engine
    eng.show("calm", {})
    eng.step(0.0)
    assert eng.open_mirror(160)
    try:
        eng.mirror_next_frame()
        eng.step(0.0)
        mirror = eng.mirror_pixels()
        assert mirror is not None and mirror.shape == (90, 160, 3)
        full = np.asarray(Image.fromarray(eng.read_pixels()).resize((160, 90),
                                                                    Image.Resampling.BOX))
        assert np.abs(mirror.astype(int) - full.astype(int)).mean() < 12  # the same picture
        eng.step(0.0)
        assert eng.mirror_pixels() is None  # not drawn on frames without a preview

        eng.fade_to("spiders", {}, duration_s=1.0)
        eng.step(0.4)  # most of the way to black
        eng.mirror_next_frame()
        eng.step(0.0)
        faded = eng.mirror_pixels()
        assert faded is not None and faded.mean() < 0.5 * mirror.mean()  # the fade shows
        for _ in range(6):
            eng.step(0.25)
    finally:
        eng.close_mirror()
    assert eng.mirror_pixels() is None
