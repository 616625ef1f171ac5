"""Re-render the patient's view of a recorded session offscreen: numbered PNGs, or a video.

``vrexposure replay FILE --frames DIR [--fps N]`` and ``--video FILE.mp4``. The
recording holds no images (previews are not recorded); instead the view is drawn
again with the same render engine and scene plugins, from:

* the recorded ``state`` (scene and parameters), through the live renderer's own
  :class:`~vrexposure.render.process.Director` — so scene changes and STOP fade
  through black exactly as the patient saw them (the fail-safe is off: a
  recording's states are known to be complete);
* the recorded head pose: ``pose.head`` when the renderer's head was recorded
  (its world orientation is reproduced), else the simulated patient's
  ``pose.sim`` yaw/pitch relative to the scene's resting view, as the offscreen
  renderer does live. Without either, the resting view.

Frames are rendered at the frame times ``start, start + 1/fps, …`` of session
time with a simulated frame clock, so the output does not depend on the speed
of the machine. The patient overlay (SUDS prompt, status messages) is not drawn.
Panda3D allows one render engine per process: call :func:`render_frames` once
per process (the CLI does).
"""

from __future__ import annotations

import logging
import math
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .config import load_config
from .replay import ReplayError, parse_json_records
from .xdf import XdfFile, XdfStream, read_xdf

log = logging.getLogger(__name__)

FRAME_PATTERN = "frame_%06d.png"
DEFAULT_FPS = 10.0
DEFAULT_SIZE = (640, 360)


class VideoUnavailable(RuntimeError):
    """ffmpeg is not installed (or failed)."""


@dataclass
class FrameResult:
    out_dir: Path
    frames: list[Path] = field(default_factory=list)
    fps: float = DEFAULT_FPS
    start_s: float = 0.0
    end_s: float = 0.0
    pose_source: str | None = None
    pipe: str = ""


def frame_times(start_s: float, end_s: float, fps: float) -> npt.NDArray[np.float64]:
    """Session times of the frames: from ``start_s`` every 1/fps up to ``end_s``."""
    if fps <= 0 or not math.isfinite(fps):
        raise ValueError(f"--fps must be a positive number, not {fps}")
    n = math.floor((end_s - start_s) * fps + 1e-9) + 1
    return start_s + np.arange(max(n, 0)) / fps


def _pose(recording: XdfFile) -> XdfStream | None:
    poses = {s.name: s for s in recording.streams.values()
             if s.type == "HeadPose" and len(s.timestamps)}
    return poses.get("pose.head") or poses.get("pose.sim") or next(iter(poses.values()), None)


def ffmpeg_path() -> str | None:
    return shutil.which("ffmpeg")


def encode_video(frames_dir: Path, fps: float, out_file: Path) -> Path:
    """Encode ``frames_dir/frame_NNNNNN.png`` to an H.264 MP4 with ffmpeg."""
    ffmpeg = ffmpeg_path()
    if ffmpeg is None:
        raise VideoUnavailable(
            "ffmpeg is not installed, so no video can be encoded: install it (e.g. "
            "'apt install ffmpeg' or 'brew install ffmpeg'), or write PNG frames with "
            "--frames DIR")
    out_file = Path(out_file)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    command = [ffmpeg, "-y", "-loglevel", "error", "-framerate", f"{fps:g}",
               "-i", str(Path(frames_dir) / FRAME_PATTERN), "-c:v", "libx264",
               "-pix_fmt", "yuv420p", "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2", str(out_file)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise VideoUnavailable(f"ffmpeg failed ({done.returncode}): "
                               f"{done.stderr.strip()[-500:]}")
    out_file.chmod(0o600)
    return out_file


def render_frames(recording: Path | str | XdfFile, out_dir: Path | str, *,
                  fps: float = DEFAULT_FPS, width: int = DEFAULT_SIZE[0],
                  height: int = DEFAULT_SIZE[1], start_s: float | None = None,
                  end_s: float | None = None, config: Mapping[str, Any] | None = None,
                  on_frame: Callable[[int, int], None] | None = None) -> FrameResult:
    """Render the patient's view at ``fps`` to ``out_dir/frame_000001.png`` … .

    Existing ``frame_*.png`` files in ``out_dir`` are removed first so that a video
    made from the folder holds this render only. ``on_frame(done, total)`` reports
    progress.
    """
    from .render.engine import RenderEngine
    from .render.process import Director, sim_pose_to_hpr

    config = dict(config or load_config())
    rec = recording if isinstance(recording, XdfFile) else read_xdf(Path(recording))
    try:
        state_stream = rec.by_name("state")
    except KeyError as exc:
        raise ReplayError("the recording has no 'state' stream: nothing to render") from exc
    states = parse_json_records(state_stream)
    if not states:
        raise ReplayError("the recording has no readable state: nothing to render")
    last = max(float(s.timestamps[-1]) for s in rec.streams.values() if len(s.timestamps))
    lo = states[0][0] if start_s is None else float(start_s)
    hi = last if end_s is None else min(float(end_s), last)
    if hi < lo:
        raise ReplayError(f"nothing to render between {lo:g} s and {hi:g} s")
    times = frame_times(lo, hi, fps)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    for old in out.glob("frame_*.png"):
        old.unlink()

    pose = _pose(rec)
    head_tracked = pose is not None and pose.name == "pose.head"
    pose_t = pose.timestamps if pose is not None else np.empty(0)
    pose_v = np.asarray(pose.values, dtype=np.float64) if pose is not None else np.empty((0, 9))
    result = FrameResult(out, fps=fps, start_s=lo, end_s=hi,
                         pose_source=None if pose is None else pose.name)
    renderer_cfg = config.get("renderer", {})
    scene_dirs = config.get("plugins", {}).get("scene_dirs", [])
    with RenderEngine("offscreen", width, height, scene_dirs=scene_dirs,
                      auto_frame=not head_tracked) as engine:
        result.pipe = engine.pipe_name
        from panda3d.core import Quat

        director = Director(math.inf, float(renderer_cfg.get("stop_fade_s", 0.8)), lo)
        director.initial()
        k = 0
        while k + 1 < len(states) and states[k + 1][0] <= lo:
            k += 1
        director.on_state(states[k][1], lo)
        first = director.tick(lo)
        if first is not None:  # the view as it was at the start: no fade
            engine.show(first.scene, first.params)
        k += 1
        dt = 1.0 / fps
        for number, t in enumerate(times, start=1):
            while k < len(states) and states[k][0] <= t:
                director.on_state(states[k][1], float(t))
                k += 1
            directive = director.tick(float(t))
            if directive is not None:
                if directive.fade_s is None:
                    engine.show(directive.scene, directive.params)
                else:
                    engine.fade_to(directive.scene, directive.params, directive.fade_s)
            if len(pose_t):
                i = int(np.searchsorted(pose_t, t, side="right")) - 1
                if i >= 0:
                    row = pose_v[i]
                    if head_tracked:
                        hpr = Quat(*row[3:7]).getHpr()
                        engine.set_head_pose((0.0, 0.0, 0.0), (hpr[0], hpr[1], hpr[2]))
                    else:
                        engine.set_head_pose((0.0, 0.0, 0.0),
                                             sim_pose_to_hpr({"quat": list(row[3:7])}))
            engine.step(dt if number > 1 else 0.0)
            path = out / (FRAME_PATTERN % number)
            engine.save_png(path)
            path.chmod(0o600)
            result.frames.append(path)
            if on_frame is not None:
                on_frame(number, len(times))
    return result


__all__ = [
    "FRAME_PATTERN",
    "FrameResult",
    "VideoUnavailable",
    "encode_video",
    "ffmpeg_path",
    "frame_times",
    "render_frames",
]
