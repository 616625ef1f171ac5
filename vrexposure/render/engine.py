"""The render engine: one Panda3D ShowBase showing scene plugins offscreen or in a window.

Panda3D allows one ShowBase per process, so a process makes one
:class:`RenderEngine` (a context manager) and switches scenes inside it.
The caller owns the clock: :meth:`RenderEngine.step` takes the frame ``dt``
(or measures the real one) and renders exactly one frame.

Pipe choice (offscreen): ``pandagl`` first — with no X display it falls back
to EGL (Mesa llvmpipe on a machine without a GPU) — then ``p3tinydisplay``
(software, no shaders). The choice is logged and kept in :attr:`RenderEngine.pipe_name`.
Where the pipe runs GLSL, scenes move their animated parts in vertex shaders
(:mod:`vrexposure.render.shaders`; :attr:`RenderEngine.gpu_animation`), else in numpy.
"""

from __future__ import annotations

import io
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from vrexposure.plugins import discover_scenes
from vrexposure.scene_api import SceneSpec

from .scene_base import SceneBase, Vec3Tuple, look_at_angle_deg

log = logging.getLogger(__name__)

Backend = Literal["offscreen", "desktop"]
PipeChoice = Literal["auto", "pandagl", "p3tinydisplay"]

#: Frame budget of a 90 Hz headset.
BUDGET_90HZ_S = 1.0 / 90.0
#: Frame-time statistics cover this much wall-clock time.
STATS_WINDOW_S = 1.0
#: A real (measured) dt is clamped to this, so a stall never leaps the easing.
MAX_REAL_DT_S = 0.25
DEFAULT_FADE_S = 0.8
OFFSCREEN_PIPES: tuple[str, ...] = ("pandagl", "p3tinydisplay")


# --------------------------------------------------------------------------- pure helpers


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0–100) with linear interpolation; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = (len(ordered) - 1) * min(100.0, max(0.0, q)) / 100.0
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def recent_frames(
    samples: Iterable[tuple[float, float]], now_s: float, window_s: float = STATS_WINDOW_S
) -> list[float]:
    """Frame times of the (end_time, frame_time) ``samples`` that ended within ``window_s``."""
    return [frame for end, frame in samples if now_s - end <= window_s]


@dataclass(frozen=True)
class FrameStats:
    """Frame timing over the last second plus the size of what was drawn."""

    frames: int
    p50_ms: float
    p99_ms: float
    mean_ms: float
    over_budget: int
    over_budget_total: int
    budget_ms: float
    geoms: int
    triangles: int
    pipe: str

    def as_dict(self) -> dict[str, float | int | str]:
        return dict(self.__dict__)


def frame_stats_from(
    frame_times_s: Sequence[float],
    budget_s: float = BUDGET_90HZ_S,
    over_budget_total: int = 0,
    geoms: int = 0,
    triangles: int = 0,
    pipe: str = "",
) -> FrameStats:
    """Percentiles and budget overruns of ``frame_times_s`` (pure)."""
    ms = [t * 1000.0 for t in frame_times_s]
    return FrameStats(
        frames=len(ms),
        p50_ms=percentile(ms, 50),
        p99_ms=percentile(ms, 99),
        mean_ms=sum(ms) / len(ms) if ms else 0.0,
        over_budget=sum(1 for t in frame_times_s if t > budget_s),
        over_budget_total=over_budget_total,
        budget_ms=budget_s * 1000.0,
        geoms=geoms,
        triangles=triangles,
        pipe=pipe,
    )


def count_geometry(root: Any) -> tuple[int, int]:
    """Geoms (≈ draw calls per eye) and triangles under ``root`` that are not hidden."""
    geoms = tris = 0
    for path in root.findAllMatches("**/+GeomNode"):
        if path.isHidden():
            continue
        node = path.node()
        for i in range(node.getNumGeoms()):
            geom = node.getGeom(i)
            geoms += 1
            tris += sum(geom.getPrimitive(k).getNumFaces() for k in range(geom.getNumPrimitives()))
    return geoms, tris


def fade_alpha(phase: str, progress: float) -> float:
    """Black overlay opacity in a fade ``phase`` ("out" to black, "in" from black)."""
    p = min(1.0, max(0.0, progress))
    eased = p * p * (3.0 - 2.0 * p)
    return eased if phase == "out" else 1.0 - eased


def audio_output_available() -> bool:
    """Whether a sound server or playback device exists (Linux; elsewhere assume one).

    Without one OpenAL still opens and fills the log with ALSA errors; the renderer
    then runs silent instead.
    """
    import glob
    import os
    import sys

    if not sys.platform.startswith("linux"):
        return True
    if os.environ.get("PULSE_SERVER"):
        return True
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    if runtime and any(os.path.exists(os.path.join(runtime, name))
                       for name in ("pulse/native", "pipewire-0")):
        return True
    return bool(glob.glob("/dev/snd/pcmC*D*p"))


def prc_config(
    backend: Backend,
    pipe: str,
    width: int,
    height: int,
    audio: bool,
    multisamples: int,
    title: str = "vrexposure",
) -> str:
    """The ``.prc`` page the engine loads before opening its window."""
    lines = [
        f"load-display {pipe}",
        "window-type none",  # the engine opens its window itself, trying pipes in turn
        f"win-size {width} {height}",
        f"window-title {title}",
        f"sync-video {'true' if backend == 'desktop' else 'false'}",
        "print-pipe-types false",
        "notify-level-x11display fatal",
        "notify-level-egldisplay error",
        "notify-level-device fatal",
        "notify-level-glgsg error",
        "default-directnotify-level warning",
        "want-directtools false",
        "want-tk false",
        "textures-power-2 none",
        "text-minfilter linear_mipmap_linear",
        f"framebuffer-multisample {'true' if multisamples else 'false'}",
        f"multisamples {multisamples}",
    ]
    if not audio:
        lines.append("audio-library-name null")
    return "\n".join(lines) + "\n"


#: Display modules behind each pipe choice: pandagl's headless fallback is the
#: p3headlessgl module (EGL); tinydisplay has an offscreen pipe besides its X11 one.
_PIPE_MODULES: dict[str, tuple[str, ...]] = {
    "pandagl": ("pandagl", "p3headlessgl"),
    "p3tinydisplay": ("p3tinydisplay",),
}
_PIPE_FAMILIES: dict[str, tuple[str, ...]] = {
    "pandagl": ("glx", "egl", "wgl", "cocoa"),
    "p3tinydisplay": ("tinyx", "tinyoffscreen", "tinywin", "tinysdl", "tinyosx"),
}


def _module_pipes(selection: Any, choice: str) -> list[Any]:
    """Valid graphics pipes for a pipe ``choice``, in preference order."""
    pipes: list[Any] = []
    for module in _PIPE_MODULES.get(choice, (choice,)):
        pipe = selection.makeModulePipe(module)
        if pipe is not None and pipe.isValid():
            pipes.append(pipe)
    known = {p.getType() for p in pipes}
    for family in _PIPE_FAMILIES.get(choice, ()):
        for i in range(selection.getNumPipeTypes()):
            kind = selection.getPipeType(i)
            if kind in known or not kind.getName().lower().startswith(family):
                continue
            pipe = selection.makePipe(kind)
            known.add(kind)
            if pipe is not None and pipe.isValid():
                pipes.append(pipe)
    return pipes


# --------------------------------------------------------------------------- the engine


class RenderEngine:
    """Shows scene plugins with eased parameters, fades, head pose, pixels and statistics.

    ``backend``: ``"offscreen"`` (a buffer, no display needed) or ``"desktop"`` (a window).
    ``stereo``: side-by-side stereo; ``width`` is then the whole buffer (both eyes).
    ``fov_deg``: horizontal field of view of one eye (default 75 mono, 90 stereo).
    ``auto_frame``: turn the resting view towards what the scene wants seen (monitors
    and offscreen); a head-tracked backend sets this False and sends the head pose.
    """

    def __init__(
        self,
        backend: Backend = "offscreen",
        width: int = 1280,
        height: int = 720,
        stereo: bool = False,
        scene_dirs: Iterable[Path | str] = (),
        *,
        pipe: PipeChoice = "auto",
        fov_deg: float | None = None,
        ease_time_s: float = 1.0,
        audio: bool | None = None,
        multisamples: int = 0,
        interocular_m: float = 0.064,
        auto_frame: bool = True,
    ) -> None:
        if backend not in ("offscreen", "desktop"):
            raise ValueError(f"backend must be 'offscreen' or 'desktop', not {backend!r}")
        self.backend: Backend = backend
        self.width, self.height, self.stereo = int(width), int(height), bool(stereo)
        self.ease_time_s = ease_time_s
        self.auto_frame = auto_frame
        self.fov_deg = fov_deg if fov_deg is not None else (90.0 if stereo else 75.0)
        self.specs: dict[str, SceneSpec] = discover_scenes([Path(d) for d in scene_dirs])
        self.scenes: dict[str, SceneBase] = {}
        self.current: SceneBase | None = None
        self.time_s = 0.0
        self.head_pos: Vec3Tuple = (0.0, 0.0, 0.0)
        self.head_hpr: Vec3Tuple = (0.0, 0.0, 0.0)
        self._fade: tuple[str, float, float] | None = None  # (phase, elapsed, half duration)
        self._fade_next: tuple[str, dict[str, Any]] | None = None
        self._fade_alpha = 0.0
        #: Called with the fade's opacity each frame before drawing (views that do not
        #: draw render2d, such as a headset's eye buffers, show the fade themselves).
        self.fade_listeners: list[Callable[[float], None]] = []
        self._mirror: tuple[Any, Any, Any] | None = None  # (buffer, texture, camera)
        self._last_step_wall: float | None = None
        self._frames: deque[tuple[float, float]] = deque(maxlen=2000)
        self._over_budget_total = 0
        self._geom_counts: dict[str, tuple[float, int, int]] = {}
        self._sound: Any = None
        self._sound_name: str | None = None
        self._sounds: dict[str, Any] = {}
        #: The event sound started last (None: the last event had none); tests read it.
        self.last_event_sound: str | None = None
        self._closed = False
        use_audio = (backend == "desktop" and audio_output_available()) if audio is None else audio
        self._open(use_audio, pipe, multisamples, interocular_m)

    # -- setup -----------------------------------------------------------------------

    def _open(self, audio: bool, pipe: PipeChoice, multisamples: int, iod_m: float) -> None:
        from panda3d.core import (
            AntialiasAttrib,
            CardMaker,
            FrameBufferProperties,
            GraphicsPipeSelection,
            TransparencyAttrib,
            WindowProperties,
            loadPrcFileData,
        )

        candidates = OFFSCREEN_PIPES if pipe == "auto" else (pipe,)
        if self.backend == "desktop" and pipe == "auto":
            candidates = ("pandagl",)
        prc = prc_config(self.backend, candidates[0], self.width, self.height, audio, multisamples)
        loadPrcFileData("vrexposure-render", prc)
        log.debug("render prc:\n%s", prc)

        from direct.showbase.ShowBase import ShowBase

        self.base = base = ShowBase(windowType="none")
        selection = GraphicsPipeSelection.getGlobalPtr()
        fbprops = FrameBufferProperties()
        fbprops.setRgbColor(True)
        fbprops.setColorBits(24)
        fbprops.setAlphaBits(8)
        fbprops.setDepthBits(24)
        if multisamples:
            fbprops.setMultisamples(multisamples)
        props = WindowProperties.size(self.width, self.height)
        props.setTitle("vrexposure")
        errors: list[str] = []
        self.pipe_name = ""
        for name in candidates:
            pipes = _module_pipes(selection, name)
            if not pipes:
                errors.append(f"{name}: no valid pipe")
                log.info("render: pipe %s not available", name)
            for gpipe in pipes:
                base.pipe = gpipe
                base.pipeList.append(gpipe)
                try:
                    ok = base.openMainWindow(
                        type="offscreen" if self.backend == "offscreen" else "onscreen",
                        props=props,
                        fbprops=fbprops,
                        size=(self.width, self.height),
                    )
                except Exception as exc:  # Panda3D raises when require-window is set
                    ok = False
                    errors.append(f"{name}: {exc}")
                if ok and base.win is not None:
                    self.pipe_name = f"{name} ({gpipe.getType().getName()})"
                    break
                kind = gpipe.getType().getName()
                errors.append(f"{name}/{kind}: could not open a {self.backend} window")
                log.warning("render: pipe %s (%s) could not open a window", name, kind)
            if self.pipe_name:
                break
        if base.win is None or not self.pipe_name:
            base.destroy()
            raise RuntimeError("no graphics pipe could open a window: " + "; ".join(errors))
        gsg = base.win.getGsg()
        renderer = f"{gsg.getDriverVendor()} {gsg.getDriverRenderer()}".strip() if gsg else "?"
        log.info(
            "render: %s %dx%d%s on pipe %s [%s]",
            self.backend,
            self.width,
            self.height,
            " stereo" if self.stereo else "",
            self.pipe_name,
            renderer,
        )
        self.renderer_name = renderer
        from . import shaders

        # Moving parts are animated in vertex shaders where the pipe runs them.
        self.gpu_animation = shaders.supports_shaders(gsg)
        shaders.set_available(self.gpu_animation)
        self.gpu_animation = shaders.available()
        base.disableMouse()
        if multisamples:
            base.render.setAntialias(AntialiasAttrib.MMultisample)

        win = base.win
        lens = base.camLens
        lens.setFov(self.fov_deg)
        if self.stereo:
            win.setSideBySideStereo(True)
            mono = base.camNode.getDisplayRegion(0)
            win.removeDisplayRegion(mono)
            region = win.makeStereoDisplayRegion()
            region.setCamera(base.cam)
            region.setSort(0)
            lens.setInterocularDistance(iod_m)
            lens.setConvergenceDistance(1e4)
        self._fix_aspect()

        # The pose chain: world -> view (eye point, resting gaze) -> camera (head pose).
        self.world = base.render.attachNewNode("world")
        self.view = base.render.attachNewNode("view")
        base.camera.reparentTo(self.view)

        card = CardMaker("fade")
        card.setFrame(-1, 1, -1, 1)
        self._fade_card = base.render2d.attachNewNode(card.generate())
        self._fade_card.setColor(0, 0, 0, 1)
        self._fade_card.setTransparency(TransparencyAttrib.M_alpha)
        self._fade_card.setBin("fixed", 100)
        self._fade_card.hide()

    def _fix_aspect(self) -> None:
        eye_w = self.width / 2 if self.stereo else self.width
        aspect = eye_w / max(1, self.height)
        lens = self.base.camLens
        if abs(lens.getAspectRatio() - aspect) > 1e-6:
            lens.setFov(self.fov_deg)
            lens.setAspectRatio(aspect)

    # -- context manager ---------------------------------------------------------------

    def __enter__(self) -> RenderEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop sounds, destroy scenes and the ShowBase (the process cannot open another)."""
        if self._closed:
            return
        self._closed = True
        for sound in self._sounds.values():
            sound.stop()
        for scene in self.scenes.values():
            scene.destroy()
        self.scenes.clear()
        self.base.destroy()

    # -- scenes ------------------------------------------------------------------------

    @property
    def scene_names(self) -> list[str]:
        return sorted(self.specs)

    def scene(self, name: str) -> SceneBase:
        """The built scene ``name`` (built and attached, hidden, on first use)."""
        built = self.scenes.get(name)
        if built is not None:
            return built
        spec = self.specs.get(name)
        if spec is None:
            raise KeyError(f"unknown scene {name!r} (known: {', '.join(self.scene_names)})")
        if spec.factory is None:
            raise KeyError(f"scene {name!r} has no renderer (SceneSpec.factory is None)")
        started = time.perf_counter()
        scene = spec.factory(spec=spec, ease_time_s=self.ease_time_s)
        if not isinstance(scene, SceneBase):
            raise TypeError(f"scene {name!r}: factory returned {type(scene).__name__}")
        root = scene.attach(self.world)
        root.hide()
        self.scenes[name] = scene
        log.info("render: built scene %s in %.2f s", name, time.perf_counter() - started)
        return scene

    def show(self, scene_name: str, params: Mapping[str, Any] | None = None) -> None:
        """Show ``scene_name`` with ``params`` as targets (eased within a scene).

        Switching to another scene is a cut (parameters applied at once); use
        :meth:`fade_to` for a visible transition.
        """
        params = dict(params or {})
        if self.current is not None and self.current.name == scene_name:
            self.current.set_params(params)
            return
        self._switch(scene_name, params)

    def fade_to(
        self,
        scene_name: str,
        params: Mapping[str, Any] | None = None,
        duration_s: float = DEFAULT_FADE_S,
    ) -> None:
        """Fade to black, switch to ``scene_name`` (parameters applied at once), fade back in.

        Used for STOP and the fail-safe: the target scene is fully visible after
        ``duration_s`` of frame time. A fade to the scene already shown only eases
        its parameters.
        """
        params = dict(params or {})
        self.scene(scene_name)  # build now, not in the middle of the fade
        if self._fade is None and self.current is not None and self.current.name == scene_name:
            self.current.set_params(params)
            return
        half = max(1e-3, duration_s / 2.0)
        if self._fade is not None and self._fade[0] == "in":
            # Already fading in: go back to black from the current opacity.
            elapsed = (1.0 - self._fade_alpha) * half
        elif self._fade is not None:
            elapsed = self._fade[1] / self._fade[2] * half
        else:
            elapsed = 0.0
        self._fade = ("out", elapsed, half)
        self._fade_next = (scene_name, params)

    @property
    def fading(self) -> bool:
        return self._fade is not None

    def _switch(self, scene_name: str, params: Mapping[str, Any]) -> None:
        scene = self.scene(scene_name)
        scene.set_params(params, immediate=True)
        if self.current is not None and self.current is not scene and self.current.root is not None:
            self.current.root.hide()
        self.current = scene
        assert scene.root is not None
        scene.root.show()
        near, far = scene.near_far
        self.base.camLens.setNearFar(near, far)
        self.base.win.setClearColor((*scene.background_color, 1.0))
        scene.update(0.0, self.time_s)
        self._start_sound(scene)

    # -- sound -------------------------------------------------------------------------

    def _start_sound(self, scene: SceneBase) -> None:
        name = scene.sound_name
        if name == self._sound_name:
            return
        if self._sound is not None:
            self._sound.stop()
        self._sound, self._sound_name = None, name
        if name is None:
            return
        from .audio import sound_path

        # faded in by the frame loop
        self._sound = self._play_sound(name, "ambient", sound_path, loop=True, volume=0.0)

    def _play_sound(self, name: str, kind: str, path_of: Callable[[str], Path], loop: bool,
                    volume: float) -> Any:
        """Start the sound ``name`` of ``kind`` ("ambient"/"event"), loaded once; None (and a
        warning) when there is no audio device or the file is broken: the scene stays silent."""
        key = name if kind == "ambient" else f"{kind}:{name}"
        sound = self._sounds.get(key)
        if sound is None:
            from panda3d.core import Filename

            try:
                sound = self.base.loader.loadSfx(Filename.fromOsSpecific(str(path_of(name))))
            except Exception as exc:
                log.warning("render: %s sound %s unavailable: %s", kind, name, exc)
                return None
            self._sounds[key] = sound
        sound.setLoop(loop)
        sound.setVolume(volume)
        sound.play()
        return sound

    def play_event(self, name: str) -> bool:
        """Play the current scene's stimulus event ``name``; False if it has none by that name."""
        if self.current is None or not self.current.play_event(name):
            return False
        self._play_event_sound(self.current.event_sounds.get(name))
        return True

    def _play_event_sound(self, name: str | None) -> None:
        """Start the one-shot sound of an event (see ``SceneBase.event_sounds``), if any."""
        self.last_event_sound = name
        if name is None:
            return
        from .audio import event_sound_path

        self._play_sound(name, "event", event_sound_path, loop=False, volume=1.0)

    # -- head pose & gaze ----------------------------------------------------------------

    def set_head_pose(self, pos: Sequence[float], hpr: Sequence[float]) -> None:
        """Head position (metres, relative to the seated eye point) and orientation (degrees)."""
        self.head_pos = (float(pos[0]), float(pos[1]), float(pos[2]))
        self.head_hpr = (float(hpr[0]), float(hpr[1]), float(hpr[2]))
        self.base.camera.setPos(*self.head_pos)
        self.base.camera.setHpr(*self.head_hpr)

    def camera_pose(self) -> tuple[Vec3Tuple, Vec3Tuple]:
        """World position and unit forward vector of the (centre) camera."""
        cam = self.base.camera
        p = cam.getPos(self.base.render)
        f = cam.getQuat(self.base.render).getForward()
        return (p.x, p.y, p.z), (f.x, f.y, f.z)

    def look_at_angle_deg(self) -> float | None:
        """Angle between the gaze and the direction to the stimulus; None without a stimulus."""
        if self.current is None:
            return None
        target = self.current.stimulus_world_position()
        if target is None:
            return None
        eye, forward = self.camera_pose()
        return look_at_angle_deg(eye, forward, target)

    def looking_away(self, threshold_deg: float = 30.0) -> bool | None:
        """True when the stimulus is more than ``threshold_deg`` off the gaze; None without one."""
        angle = self.look_at_angle_deg()
        return None if angle is None else angle > threshold_deg

    # -- frames ------------------------------------------------------------------------

    def step(self, dt_s: float | None = None) -> float:
        """Advance easing, animation and fades by ``dt_s`` (None: measured) and render one frame.

        Returns the dt used.
        """
        started = time.perf_counter()
        if dt_s is None:
            last = self._last_step_wall
            dt_s = 0.0 if last is None else min(MAX_REAL_DT_S, started - last)
        dt_s = max(0.0, float(dt_s))
        self.time_s += dt_s
        self._advance_fade(dt_s)
        for listener in self.fade_listeners:
            listener(self._fade_alpha)
        scene = self.current
        if scene is not None:
            scene.update(dt_s, self.time_s)
            self._place_view(scene)
            if self._sound is not None:
                self._sound.setVolume(scene.sound_volume * (1.0 - self._fade_alpha))
        self._fix_aspect()
        if self.backend == "desktop":
            self.base.eventMgr.doEvents()  # window and input events (desktop only)
        self.base.graphicsEngine.renderFrame()
        ended = time.perf_counter()
        self._last_step_wall = ended
        frame = ended - started
        self._frames.append((ended, frame))
        if frame > BUDGET_90HZ_S:
            self._over_budget_total += 1
        return dt_s

    def _advance_fade(self, dt_s: float) -> None:
        if self._fade is None:
            self._fade_card.hide()
            self._fade_alpha = 0.0
            return
        phase, elapsed, half = self._fade
        elapsed += dt_s
        if phase == "out" and elapsed >= half:
            assert self._fade_next is not None
            name, params = self._fade_next
            self._fade_next = None
            self._switch(name, params)
            phase, elapsed = "in", elapsed - half
        if phase == "in" and elapsed >= half:
            self._fade = None
            self._fade_alpha = 0.0
            self._fade_card.hide()
            return
        self._fade = (phase, elapsed, half)
        self._fade_alpha = fade_alpha(phase, elapsed / half)
        self._fade_card.show()
        self._fade_card.setAlphaScale(self._fade_alpha)

    def _place_view(self, scene: SceneBase) -> None:
        self.view.setPos(*scene.eye_position())
        self.view.setHpr(*(scene.view_hpr() if self.auto_frame else (0.0, 0.0, 0.0)))

    # -- the therapist's mirror -----------------------------------------------------------

    def open_mirror(self, width_px: int, parent: Any = None) -> bool:
        """A small copy of the patient's view for the therapist, drawn only when asked.

        Reading back the full headset-size frame stalls the frame for 30–100 ms on
        a software renderer (a visible judder several times a second); a second
        camera on the same head drawing into a ``width_px``-wide buffer costs a few
        milliseconds, and only on the frames that make a preview. It shows the
        centre view (between the eyes) and the 2-D layer: the fade and a monitor's
        overlay. ``parent``: the head it follows (default: the engine's camera).
        Returns False when the pipe cannot make the buffer (then read the frame).
        """
        from panda3d.core import Texture

        self.close_mirror()
        eye_w = self.width / 2 if self.stereo else self.width
        height_px = max(1, round(width_px * self.height / eye_w))
        texture = Texture("mirror")
        buffer = self.base.win.makeTextureBuffer("mirror", int(width_px), height_px, texture, True)
        if buffer is None:
            log.warning("render: no mirror buffer on pipe %s; previews read the frame",
                        self.pipe_name)
            return False
        buffer.setClearColor(self.base.win.getClearColor())
        camera = self.base.makeCamera(buffer, lens=self.base.camLens, camName="mirror-cam")
        camera.reparentTo(parent if parent is not None else self.base.cam)
        overlay = buffer.makeDisplayRegion()
        overlay.setSort(20)
        overlay.setCamera(self.base.cam2d)
        buffer.setActive(False)
        self._mirror = (buffer, texture, camera)
        return True

    @property
    def mirror_open(self) -> bool:
        """Whether :meth:`open_mirror` made a mirror (previews come from it)."""
        return self._mirror is not None

    def mirror_next_frame(self) -> None:
        """Draw the mirror in the next :meth:`step` (read it with :meth:`mirror_pixels`)."""
        if self._mirror is not None:
            self._mirror[0].setActive(True)

    def mirror_pixels(self) -> NDArray[np.uint8] | None:
        """The mirror drawn by the last step as (H, W, 3) RGB, or None when none was drawn."""
        if self._mirror is None:
            return None
        buffer, texture, _camera = self._mirror
        if not buffer.isActive():
            return None
        buffer.setActive(False)
        if not texture.hasRamImage():
            return None
        data = bytes(texture.getRamImageAs("RGB"))
        image = np.frombuffer(data, np.uint8).reshape(texture.getYSize(), texture.getXSize(), 3)
        return np.ascontiguousarray(image[::-1])

    def close_mirror(self) -> None:
        if self._mirror is None:
            return
        buffer, _texture, camera = self._mirror
        self._mirror = None
        if camera in self.base.camList:
            self.base.camList.remove(camera)
        camera.removeNode()
        self.base.graphicsEngine.removeWindow(buffer)

    # -- pixels ------------------------------------------------------------------------

    def read_pixels(self, alpha: bool = False) -> NDArray[np.uint8]:
        """The last rendered frame as (H, W, 3) RGB (or (H, W, 4) RGBA), row 0 at the top."""
        tex = self.base.win.getScreenshot()
        if tex is None:
            raise RuntimeError("the frame buffer could not be read")
        fmt = "RGBA" if alpha else "RGB"
        data = bytes(tex.getRamImageAs(fmt))
        image = np.frombuffer(data, np.uint8).reshape(tex.getYSize(), tex.getXSize(), len(fmt))
        return np.ascontiguousarray(image[::-1])

    def jpeg_preview(self, max_width: int = 320, quality: int = 70) -> bytes:
        """A small JPEG of the last frame (the therapist's mirror of the patient's view)."""
        from PIL import Image

        image = Image.fromarray(self.read_pixels())
        if image.width > max_width:
            height = max(1, round(image.height * max_width / image.width))
            image = image.resize((max_width, height), Image.Resampling.BILINEAR)
        out = io.BytesIO()
        image.save(out, format="JPEG", quality=quality)
        return out.getvalue()

    def save_png(self, path: Path | str) -> Path:
        from PIL import Image

        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(self.read_pixels()).save(out, optimize=True)
        return out

    # -- statistics --------------------------------------------------------------------

    def frame_stats(self) -> FrameStats:
        """Frame times over the last second, 90 Hz budget overruns, geoms and triangles drawn."""
        now = time.perf_counter()
        geoms, tris = self._count_geometry(now)
        return frame_stats_from(
            recent_frames(self._frames, now),
            BUDGET_90HZ_S,
            self._over_budget_total,
            geoms,
            tris,
            self.pipe_name,
        )

    def _count_geometry(self, now: float) -> tuple[int, int]:
        """Visible Geoms (≈ draw calls) and triangles of the current scene, refreshed ≤ 1/s."""
        scene = self.current
        if scene is None or scene.root is None:
            return 0, 0
        cached = self._geom_counts.get(scene.name)
        if cached is not None and now - cached[0] < 1.0:
            return cached[1], cached[2]
        geoms, tris = count_geometry(scene.root)
        self._geom_counts[scene.name] = (now, geoms, tris)
        return geoms, tris
