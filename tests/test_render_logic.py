"""Pure renderer logic: easing, gaze maths, frame statistics, fades, layouts (no window)."""

from __future__ import annotations

import itertools
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from vrexposure.render.engine import (
    fade_alpha,
    frame_stats_from,
    percentile,
    prc_config,
    recent_frames,
)
from vrexposure.render.scene_base import (
    Channel,
    angle_between_deg,
    coerce_param,
    ease_exponential,
    forward_from_hpr,
    hpr_towards,
    look_at_angle_deg,
    smooth_damp,
)
from vrexposure.scene_api import SceneSpec, float_param, int_param

ROOT = Path(__file__).resolve().parents[1]


def run_channel(target: float, seconds: float, dt: float, ease: float = 1.0) -> list[float]:
    x, v, out = 0.0, 0.0, []
    for _ in range(round(seconds / dt)):
        x, v = smooth_damp(x, v, target, dt, ease)
        out.append(x)
    return out


def test_smooth_damp_starts_gently_and_settles_in_three_time_constants() -> None:
    values = run_channel(1.0, 3.0, 1 / 90)
    assert values[0] < 0.001  # no jump on the first frame
    assert 0.97 < values[-1] <= 1.0
    assert all(b >= a for a, b in itertools.pairwise(values))  # no overshoot


def test_smooth_damp_is_frame_rate_independent_and_stable() -> None:
    fine = run_channel(2.0, 2.0, 1 / 120)[-1]
    coarse = run_channel(2.0, 2.0, 0.5)[-1]
    assert coarse == pytest.approx(fine, rel=1e-6)
    x, v = smooth_damp(0.0, 0.0, 1.0, 100.0, 1.0)
    assert x == pytest.approx(1.0) and abs(v) < 1e-9
    assert smooth_damp(0.3, 0.1, 1.0, 0.0, 1.0) == (0.3, 0.1)


def test_ease_exponential() -> None:
    assert ease_exponential(0.0, 1.0, 1.0, 1.0) == pytest.approx(1 - math.exp(-1))
    assert ease_exponential(0.0, 1.0, 0.0, 1.0) == 0.0
    assert ease_exponential(0.0, 1.0, 0.1, 0.0) == 1.0


def test_channel_snap() -> None:
    c = Channel(0.0, 5.0)
    c.step(0.5)
    assert 0.0 < c.value < 5.0
    c.snap()
    assert (c.value, c.velocity) == (5.0, 0.0)


def test_forward_from_hpr_matches_panda3d() -> None:
    from panda3d.core import Quat, Vec3

    for hpr in [(0, 0, 0), (90, 0, 0), (-30, 20, 5), (170, -60, 0)]:
        q = Quat()
        q.setHpr(Vec3(*hpr))
        f = q.getForward()
        assert forward_from_hpr(hpr) == pytest.approx((f.x, f.y, f.z), abs=1e-6)


def test_look_at_angles() -> None:
    eye = (0.0, 0.0, 1.2)
    assert look_at_angle_deg(eye, (0, 1, 0), (0, 5, 1.2)) == pytest.approx(0.0, abs=1e-9)
    assert look_at_angle_deg(eye, (0, 1, 0), (5, 0, 1.2)) == pytest.approx(90.0)
    assert look_at_angle_deg(eye, (0, -1, 0), (0, 5, 1.2)) == pytest.approx(180.0)
    assert angle_between_deg((0, 0, 0), (1, 0, 0)) == 0.0
    h, p = hpr_towards(eye, (0, 3, 0))
    assert h == pytest.approx(0.0) and p == pytest.approx(-math.degrees(math.atan2(1.2, 3)))
    assert look_at_angle_deg(eye, forward_from_hpr((h, p, 0)), (0, 3, 0)) == pytest.approx(
        0, abs=1e-6
    )


def test_percentiles_and_frame_stats() -> None:
    assert percentile([], 50) == 0.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == pytest.approx(2.5)
    assert percentile(list(range(101)), 99) == pytest.approx(99.0)
    times = [0.008] * 98 + [0.02, 0.03]
    stats = frame_stats_from(times, 1 / 90, over_budget_total=7, geoms=3, triangles=12, pipe="x")
    assert stats.frames == 100 and stats.over_budget == 2 and stats.over_budget_total == 7
    assert stats.p50_ms == pytest.approx(8.0) and stats.p99_ms > 19.0
    assert stats.as_dict()["pipe"] == "x"
    assert recent_frames([(0.0, 0.1), (1.5, 0.2), (2.0, 0.3)], now_s=2.0) == [0.2, 0.3]


def test_fade_alpha_is_monotonic_and_complete() -> None:
    outs = [fade_alpha("out", p / 10) for p in range(11)]
    ins = [fade_alpha("in", p / 10) for p in range(11)]
    assert outs[0] == 0.0 and outs[-1] == 1.0 and outs == sorted(outs)
    assert ins[0] == 1.0 and ins[-1] == 0.0 and ins == sorted(ins, reverse=True)


def test_prc_config_headless_is_silent() -> None:
    prc = prc_config("offscreen", "pandagl", 640, 360, audio=False, multisamples=0)
    assert "load-display pandagl" in prc and "audio-library-name null" in prc
    assert "audio-library-name" not in prc_config("desktop", "pandagl", 640, 360, True, 4)


def test_coerce_param_clamps_and_keeps() -> None:
    spec = SceneSpec(
        "s", "S", (float_param("d", 1.0, 0.0, 2.0, "m", ""), int_param("n", 1, 0, 5, "", ""))
    )
    assert coerce_param(spec, "d", 5.0, 1.0) == 2.0
    assert coerce_param(spec, "n", 7.4, 1) == 5
    assert coerce_param(spec, "d", "far", 1.0) == 1.0
    assert coerce_param(spec, "d", 0.5, 1.0) == 0.5


def test_scene_channels_follow_params_without_a_window() -> None:
    from vrexposure.plugins import discover_scenes

    specs = discover_scenes()
    assert set(specs) >= {
        "calm",
        "spiders",
        "heights",
        "public_speaking",
        "enclosed_space",
        "flying",
    }
    for spec in specs.values():
        assert spec.factory is not None
        scene = spec.factory(spec=spec)
        assert scene.root is None  # nothing built, no window needed
        for pspec in spec.params:
            if pspec.type == "choice":
                assert scene.v(f"{pspec.name}={pspec.default}") == 1.0
            else:
                assert scene.v(pspec.name) == float(pspec.default)
    heights = specs["heights"].factory(spec=specs["heights"])
    heights.set_params({"railing": "none", "height_m": 500.0})
    assert heights.params["height_m"] == 200.0  # clamped
    heights.update(0.5, 0.5)
    assert 0.0 < heights.v("railing=none") < 1.0 and 3.0 < heights.v("height_m") < 200.0
    heights.update(10.0, 10.5)
    assert heights.settled()


def test_layout_helpers() -> None:
    from vrexposure.plugins import load_module

    speaking = load_module(ROOT / "scenes" / "public_speaking.py", "scenes")
    order = speaking.seat_order(5, 3)
    assert order[0] == (0, 2) and len(set(order)) == 15
    enclosed = load_module(ROOT / "scenes" / "enclosed_space.py", "scenes")
    assert enclosed.crept_distance(2.0, 0.5) == 1.5
    assert enclosed.crept_distance(0.6, 1.0) == enclosed.MIN_WALL_M


def test_schemas_import_without_panda3d() -> None:
    code = textwrap.dedent(
        """
        import sys
        for name in ("panda3d", "panda3d.core", "direct"):
            sys.modules[name] = None
        from vrexposure.plugins import discover_scenes
        specs = discover_scenes()
        assert all(s.factory is not None for s in specs.values()), specs
        print(len(specs))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert int(out.stdout.strip()) >= 6


def test_ambient_sounds_loop_and_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import wave

    from vrexposure.render import audio

    monkeypatch.setenv("VREXPOSURE_CACHE_DIR", str(tmp_path))
    samples = audio.synthesize("wind", seconds=1.0)
    assert len(samples) == audio.SAMPLE_RATE_HZ and samples.dtype.name == "int16"
    assert abs(int(samples[0]) - int(samples[-1])) < 6000  # cross-faded loop point
    path = audio.sound_path("birds")
    assert path.is_relative_to(tmp_path)
    with wave.open(str(path)) as wav:
        assert wav.getframerate() == audio.SAMPLE_RATE_HZ and wav.getnframes() > 0
    with pytest.raises(KeyError):
        audio.sound_path("thunder")


def test_audio_output_available_follows_sound_servers_and_devices(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import glob

    from vrexposure.render.engine import audio_output_available

    monkeypatch.delenv("PULSE_SERVER", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    monkeypatch.setattr(glob, "glob", lambda pattern: [])
    assert audio_output_available() is False  # no server, no device: run silent
    (tmp_path / "pulse").mkdir()
    (tmp_path / "pulse" / "native").touch()
    assert audio_output_available() is True
    (tmp_path / "pulse" / "native").unlink()
    monkeypatch.setattr(glob, "glob", lambda pattern: ["/dev/snd/pcmC0D0p"])
    assert audio_output_available() is True
    monkeypatch.setattr(glob, "glob", lambda pattern: [])
    monkeypatch.setenv("PULSE_SERVER", "unix:/run/pulse")
    assert audio_output_available() is True
