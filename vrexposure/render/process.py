"""The renderer as a live process attached to the session host.

:class:`RendererProcess` owns one :class:`~vrexposure.render.engine.RenderEngine`
and runs a per-frame task (:meth:`RendererProcess.step_frame`):

1. read input (desktop: keys and mouse-look; OpenVR: headset pose and controller
   buttons; offscreen: the simulated head from ``pose.<sim source>``);
2. drain the subscriber (``state``, ``event``, ``pose.<sim source>``) and let the
   pure :class:`Director` decide what to show: the same scene eases to new
   parameters, a scene change or STOP (phase ``safe``) fades through black, and
   when no ``state`` has arrived for ``failsafe_timeout_s`` it fades to the calm
   scene on its own and follows the host again when state returns;
3. render one frame, then publish ``render.<source>`` ``state_shown`` for a new
   state ``seq``, ``pose.head`` every frame (the camera in scene coordinates: ``pos``
   in metres, ``quat`` (w, x, y, z), ``yaw_deg``/``pitch_deg``, and when the scene
   has a stimulus ``look_angle_deg``/``looking_away``), frame statistics
   (``render.<source>``) once a second and a JPEG preview (``preview.<source>``, the
   left eye when stereo) at ``preview_rate_hz``.

The patient's own controls (pause, STOP, SUDS answer) go to the host as role
``patient`` from a worker thread (:class:`PatientRemote`), so a STOP retried
until acknowledged never stalls rendering. A patient STOP also fades to the calm
scene at once, locally, and holds it until the host's state has caught up.

Input handlers only write state; the per-frame task reads it.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import os
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.typing import NDArray

from vrexposure.client import HostUnreachable, Publisher, Subscriber
from vrexposure.clock import OffsetEstimator
from vrexposure.config import Endpoints
from vrexposure.protocol import DataMessage

from .overlay import PatientOverlay, StatusKind, clamp_suds
from .questionnaire_card import QuestionnaireCard
from .scene_base import look_at_angle_deg

if TYPE_CHECKING:
    import zmq
    from panda3d.core import NodePath

    from .engine import RenderEngine

log = logging.getLogger(__name__)

Backend = Literal["offscreen", "desktop", "openvr"]
BACKENDS: tuple[str, ...] = ("offscreen", "desktop", "openvr")

DEFAULT_SOURCE = "main"
DEFAULT_SIM_SOURCE = "sim"
#: The head pose topic every renderer publishes (``pose.head``).
HEAD_SOURCE = "head"
LOOK_AWAY_THRESHOLD_DEG = 30.0
STATS_INTERVAL_S = 1.0
#: A stimulus event older than this when its state arrives (a renderer that joined or
#: stalled) is not played: a spider dropping out of context would be worse than none.
STIMULUS_EVENT_MAX_LATE_S = 3.0
#: Acknowledgements stay on screen this long.
STATUS_HOLD_S = 4.0
#: One STOP attempt lasts this long before it is resent on a fresh socket.
STOP_ATTEMPT_S = 2.0
COMMAND_TIMEOUT_S = 5.0
#: The simulated patient's head (vrexposure.sim.HeadModel) looks at its stimulus at
#: this yaw/pitch; the renderer maps that direction onto the scene's resting view.
SIM_STIMULUS_YAW_DEG = 0.0
SIM_STIMULUS_PITCH_DEG = -15.0
MOUSE_DEG_PER_PX = 0.12
CALM_SCENE = "calm"


class OpenVRUnavailable(RuntimeError):
    """The OpenVR back-end cannot run here (package or runtime missing); one-line message."""


# --------------------------------------------------------------------------- pure helpers


@dataclass(frozen=True)
class Directive:
    """What the engine should do: show ``scene`` with ``params``, eased or through a fade."""

    scene: str
    params: dict[str, Any]
    fade_s: float | None  # None: engine.show (eased within a scene); else engine.fade_to
    reason: str


class Director:
    """Decides, from the host's ``state`` messages and the time, what the patient sees (pure).

    Call :meth:`on_state` for each state message and :meth:`tick` once a frame;
    apply the returned :class:`Directive` (if any) to the engine.
    """

    def __init__(self, failsafe_timeout_s: float, fade_s: float, now_s: float,
                 calm_scene: str = CALM_SCENE) -> None:
        self.failsafe_timeout_s = float(failsafe_timeout_s)
        self.fade_s = float(fade_s)
        self.calm_scene = calm_scene
        self.failsafe = False
        self.state: dict[str, Any] | None = None  # the latest state received
        self.state_received_s = now_s  # (start time until the first state arrives)
        self.shown_scene: str | None = None
        self.applied_seq: int | None = None  # seq of the last state put on screen
        self.session_id: str | None = None
        self._pending: dict[str, Any] | None = None
        self._applied: tuple[str, Any, str] | None = None  # (scene, params, phase)
        self._phase: str | None = None
        self._hold: bool = False  # a local (patient) STOP holds the calm scene …
        self._hold_seq: int | None = None  # … until a state with this seq (or safe) arrives

    def initial(self) -> Directive:
        """The first thing to show: the calm scene at its defaults."""
        self.shown_scene = self.calm_scene
        return Directive(self.calm_scene, {}, None, "start")

    def on_state(self, payload: Mapping[str, Any], now_s: float) -> None:
        self._pending = dict(payload)
        self.state = self._pending
        self.state_received_s = now_s
        session = payload.get("session")
        if isinstance(session, Mapping) and session.get("session_id"):
            self.session_id = str(session["session_id"])

    def seconds_since_state(self, now_s: float) -> float:
        return now_s - self.state_received_s

    def local_stop(self) -> Directive:
        """The patient pressed STOP: fade to calm now and hold it until the host agrees."""
        self._hold, self._hold_seq = True, None
        self._applied = None
        return self._go(self._calm_target(), "local_stop", fade=True)

    def stop_acknowledged(self, state_seq: int) -> None:
        """The host acknowledged the patient's STOP with ``state_seq``."""
        if self._hold:
            self._hold_seq = state_seq

    @property
    def holding(self) -> bool:
        return self._hold

    def _calm_target(self) -> tuple[str, dict[str, Any]]:
        state = self.state
        # a previewed step (idle, editing the hierarchy) is no calm scene
        if state is not None and state.get("phase") not in ("exposure", None) \
                and not state.get("preview"):
            return str(state["scene"]), dict(state.get("params") or {})
        return self.calm_scene, {}

    def _go(self, target: tuple[str, dict[str, Any]], reason: str, fade: bool) -> Directive:
        scene, params = target
        self.shown_scene = scene
        return Directive(scene, params, self.fade_s if fade else None, reason)

    def tick(self, now_s: float) -> Directive | None:
        """What to change this frame (None: nothing)."""
        state, self._pending = self._pending, None
        if state is None:
            if not self.failsafe and self.seconds_since_state(now_s) > self.failsafe_timeout_s:
                self.failsafe = True
                self._applied = None
                return self._go(self._calm_target(), "failsafe", fade=True)
            return None
        recovering, self.failsafe = self.failsafe, False
        phase = str(state.get("phase", ""))
        scene = str(state.get("scene") or self.calm_scene)
        params = dict(state.get("params") or {})
        if phase in ("safe", "paused", "idle", "ended") and not state.get("preview"):
            self.calm_scene = scene
        if self._hold:
            seq = state.get("seq")
            if phase == "safe" or (self._hold_seq is not None and isinstance(seq, int)
                                   and seq >= self._hold_seq):
                self._hold, self._hold_seq = False, None
            else:
                return None  # keep the calm scene the patient asked for
        previous_phase, self._phase = self._phase, phase
        self.applied_seq = state.get("seq") if isinstance(state.get("seq"), int) else None
        key = (scene, params, phase)
        if key == self._applied and not recovering:
            return None
        self._applied = key
        if scene != self.shown_scene:
            reason = "stop" if phase == "safe" else ("recover" if recovering else "scene_change")
            return self._go((scene, params), reason, fade=True)
        if phase == "safe" and previous_phase != "safe":
            return self._go((scene, params), "stop", fade=True)
        return self._go((scene, params), "recover" if recovering else "follow", fade=False)


def quat_to_yaw_pitch(quat: Sequence[float]) -> tuple[float, float]:
    """Heading and pitch (degrees) of the +Y axis rotated by ``quat`` (w, x, y, z), Z up."""
    w, x, y, z = (float(v) for v in quat)
    fx = 2.0 * (x * y - w * z)
    fy = 1.0 - 2.0 * (x * x + z * z)
    fz = 2.0 * (y * z + w * x)
    return math.degrees(math.atan2(-fx, fy)), math.degrees(math.asin(max(-1.0, min(1.0, fz))))


def sim_pose_to_hpr(payload: Mapping[str, Any]) -> tuple[float, float, float]:
    """Camera hpr (relative to the scene's resting view) from a simulated ``pose`` payload.

    The simulated head looks at its stimulus at (SIM_STIMULUS_YAW_DEG,
    SIM_STIMULUS_PITCH_DEG); the scene's resting view already points at the
    stimulus, so the head's rotation is taken relative to that direction.
    """
    if "yaw_deg" in payload and "pitch_deg" in payload:
        yaw, pitch = float(payload["yaw_deg"]), float(payload["pitch_deg"])
    else:
        yaw, pitch = quat_to_yaw_pitch(payload["quat"])
    return (yaw - SIM_STIMULUS_YAW_DEG, pitch - SIM_STIMULUS_PITCH_DEG, 0.0)


def pose_payload(pos: Sequence[float], quat: Sequence[float], hpr: Sequence[float],
                 look_angle_deg: float | None,
                 threshold_deg: float = LOOK_AWAY_THRESHOLD_DEG) -> dict[str, Any]:
    """The ``pose.head`` payload; look fields only when the scene has a stimulus."""
    payload: dict[str, Any] = {
        "pos": [float(v) for v in pos],
        "quat": [float(v) for v in quat],
        "yaw_deg": float(hpr[0]),
        "pitch_deg": float(hpr[1]),
    }
    if look_angle_deg is not None:
        angle = min(180.0, max(0.0, float(look_angle_deg)))
        payload["look_angle_deg"] = angle
        payload["looking_away"] = angle > threshold_deg
    return payload


def preview_jpeg(pixels: NDArray[np.uint8], stereo: bool, max_width: int,
                 quality: int = 70) -> tuple[bytes, int, int]:
    """A JPEG of the patient's view (the left eye when stereo), at most ``max_width`` wide."""
    from PIL import Image

    if stereo:
        pixels = pixels[:, : pixels.shape[1] // 2]
    image = Image.fromarray(np.ascontiguousarray(pixels))
    if image.width > max_width:
        height = max(1, round(image.height * max_width / image.width))
        image = image.resize((max_width, height), Image.Resampling.BILINEAR)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality)
    return out.getvalue(), image.width, image.height


def set_gl_finish(enabled: bool) -> bool:
    """End every frame with ``glFinish()`` (Panda3D ``gl-finish``, read each frame); returns
    the previous setting."""
    from panda3d.core import ConfigVariableBool

    variable = ConfigVariableBool("gl-finish")
    previous = bool(variable.getValue())
    variable.setValue(enabled)
    return previous


def frame_interval(rate_hz: float | None) -> float:
    return 0.0 if not rate_hz or rate_hz <= 0 else 1.0 / rate_hz


# --------------------------------------------------------------------------- patient remote


@dataclass(frozen=True)
class Notice:
    """What became of a patient command: ``retrying`` (STOP only), then ``ok``, ``refused``
    (the host said no) or ``failed`` (no answer)."""

    name: str
    status: Literal["retrying", "ok", "refused", "failed"]
    args: Mapping[str, Any] = field(default_factory=dict)
    state_seq: int = -1
    error: str = ""


class PatientRemote:
    """Sends the patient's commands (role ``patient``) and syncs the clock, in a worker thread.

    STOP is resent (same command id, fresh socket each attempt) until the host
    acknowledges it. Results come back as :class:`Notice` objects from :meth:`notices`.
    """

    def __init__(self, endpoint: str, client_id: str,
                 on_offset: Callable[[float], None] | None = None,
                 context: zmq.Context[Any] | None = None) -> None:
        self.endpoint = endpoint
        self.client_id = client_id
        self.on_offset = on_offset
        self._context = context
        self._commands: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self._notices: queue.Queue[Notice] = queue.Queue()
        self._closed = threading.Event()
        self._sync_wanted = threading.Event()
        self._thread: threading.Thread | None = None
        self.offset_s: float | None = None

    def start(self) -> PatientRemote:
        self._sync_wanted.set()
        self._thread = threading.Thread(target=self._run, name="patient-remote", daemon=True)
        self._thread.start()
        return self

    def submit(self, name: str, args: Mapping[str, Any] | None = None) -> None:
        self._commands.put((name, dict(args or {})))

    def request_sync(self) -> None:
        self._sync_wanted.set()

    def notices(self) -> list[Notice]:
        out: list[Notice] = []
        while True:
            try:
                out.append(self._notices.get_nowait())
            except queue.Empty:
                return out

    def close(self, timeout_s: float = 3.0) -> None:
        self._closed.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    # -- the worker ------------------------------------------------------------------

    def _run(self) -> None:
        from vrexposure.client import ControlClient

        client = ControlClient(self.endpoint, "patient", self.client_id, context=self._context)
        next_sync_s = 0.0
        try:
            while not self._closed.is_set():
                try:
                    name, args = self._commands.get(timeout=0.05)
                except queue.Empty:
                    if self._sync_wanted.is_set() and time.monotonic() >= next_sync_s:
                        if self._sync(client):
                            self._sync_wanted.clear()
                        else:
                            next_sync_s = time.monotonic() + 2.0
                    continue
                if name == "stop":
                    self._stop(client, args)
                else:
                    self._command(client, name, args)
        finally:
            client.close()

    def _command(self, client: Any, name: str, args: dict[str, Any]) -> None:
        try:
            reply = client.request(name, args, timeout_s=COMMAND_TIMEOUT_S)
        except HostUnreachable as exc:
            self._notices.put(Notice(name, "failed", args, error=str(exc)))
            return
        status: Literal["ok", "refused"] = "ok" if reply.ok else "refused"
        self._notices.put(Notice(name, status, args, reply.state_seq, reply.error))

    def _stop(self, client: Any, args: dict[str, Any]) -> None:
        command_id = uuid.uuid4().hex
        while not self._closed.is_set():
            try:
                reply = client.request("stop", args, timeout_s=STOP_ATTEMPT_S,
                                       command_id=command_id)
            except HostUnreachable as exc:
                self._notices.put(Notice("stop", "retrying", args, error=str(exc)))
                continue
            status: Literal["ok", "refused"] = "ok" if reply.ok else "refused"
            self._notices.put(Notice("stop", status, args, reply.state_seq, reply.error))
            return

    def _sync(self, client: Any, rounds: int = 6) -> bool:
        """NTP-style offset to the session clock; gives way to a waiting command."""
        estimator = OffsetEstimator()
        for _ in range(rounds):
            if not self._commands.empty() or self._closed.is_set():
                return False
            t0 = time.monotonic()
            try:
                reply = client.request("ping", timeout_s=0.5)
            except HostUnreachable:
                return False
            t1 = time.monotonic()
            if reply.ok:
                estimator.add(t0, float(reply.result["t_s"]), t1)
        if not estimator.ready:
            return False
        self.offset_s = estimator.offset_s()
        if self.on_offset is not None:
            self.on_offset(self.offset_s)
        with contextlib.suppress(HostUnreachable):
            client.request("clock_report", {"offset_s": self.offset_s,
                                            "error_bound_s": estimator.error_bound_s()},
                           timeout_s=0.5)
        return True


# --------------------------------------------------------------------------- OpenVR


@contextlib.contextmanager
def _quiet_fds() -> Iterator[None]:
    """Silence C-level stdout/stderr (the OpenVR loader prints to them)."""
    saved = [os.dup(1), os.dup(2)]
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, devnull):
            os.close(fd)


def probe_openvr() -> Any:
    """The ``openvr`` module when a runtime and a headset are present.

    Raises :class:`OpenVRUnavailable` (a one-line reason) otherwise.
    """
    try:
        import openvr
        import p3dopenvr.p3dopenvr  # noqa: F401
    except ImportError as exc:
        raise OpenVRUnavailable(
            f"the openvr back-end needs the optional extra ({exc.name} is not installed): "
            "pip install 'vrexposure[openvr]'") from None
    with _quiet_fds():
        try:
            installed = bool(openvr.isRuntimeInstalled())
            present = installed and bool(openvr.isHmdPresent())
            if present:
                openvr.init(openvr.VRApplication_Utility)
                openvr.shutdown()
            error = ""
        except Exception as exc:  # openvr.error_code.InitError and friends
            error = f"{type(exc).__name__} {exc}".strip()
            installed = present = True
    if not installed:
        raise OpenVRUnavailable("no OpenVR runtime installed (start SteamVR, or use "
                                "--backend desktop or offscreen)")
    if not present:
        raise OpenVRUnavailable("no VR headset found by the OpenVR runtime (connect one, or use "
                                "--backend desktop or offscreen)")
    if error:
        raise OpenVRUnavailable(f"the OpenVR runtime could not start: {error}")
    return openvr


class _Task:
    cont = 1


class OpenVRHead:
    """The headset through panda3d-openvr: eye buffers, pose each frame, controller buttons.

    Buttons (legacy SteamVR input): menu = pause, grip = STOP, trigger = send
    the SUDS rating, touchpad/joystick press left/right = lower/raise it.
    """

    def __init__(self, engine: RenderEngine, on_button: Callable[[str], None], *,
                 openvr_module: Any = None, p3d_openvr: Callable[..., Any] | None = None
                 ) -> None:
        """``openvr_module``/``p3d_openvr``: the ``openvr`` module and the ``P3DOpenVR``
        class (default: imported); tests pass stand-ins, as no headset exists there."""
        from panda3d.core import CardMaker, TransparencyAttrib

        if openvr_module is None:
            import openvr as real_openvr

            openvr_module = real_openvr
        if p3d_openvr is None:
            from p3dopenvr.p3dopenvr import P3DOpenVR

            p3d_openvr = P3DOpenVR
        openvr = openvr_module
        self._openvr = openvr
        self.engine = engine
        self.on_button = on_button
        self.ovr = p3d_openvr(base=engine.base, verbose=False)
        try:
            self.ovr.init(near=0.05, far=1500.0, root=engine.view, msaa=0,
                          replicate=1 if engine.backend == "desktop" else 0)
        except Exception as exc:
            raise OpenVRUnavailable(f"OpenVR could not start: {type(exc).__name__} {exc}") from exc
        self.ovr.compositor.setTrackingSpace(openvr.TrackingUniverseSeated)
        self.ovr.register_event_handler(self._event)
        self.head: NodePath = self.ovr.hmd_anchor
        # The engine's fade card lives on render2d, which the eye buffers do not draw.
        card = CardMaker("vr-fade")
        card.setFrame(-1, 1, -1, 1)
        self.fade = self.head.attachNewNode(card.generate())
        self.fade.setPos(0, 0.12, 0)
        self.fade.setColor(0, 0, 0, 1)
        self.fade.setTransparency(TransparencyAttrib.M_alpha)
        self.fade.setBin("fixed", 105)
        self.fade.setDepthTest(False)
        self.fade.setDepthWrite(False)
        self.fade.setLightOff(1000)
        self.fade.setFogOff(1000)
        self.fade.hide()
        engine.fade_listeners.append(self._show_fade)

    def update(self) -> None:
        """Wait for the compositor, read poses and button events (before rendering)."""
        self.ovr.update_poses_task(_Task)

    def _show_fade(self, alpha: float) -> None:
        """The engine's fade opacity of this frame, on the card in front of the eyes."""
        if alpha > 0.0:
            self.fade.show()
            self.fade.setAlphaScale(alpha)
        else:
            self.fade.hide()

    def close(self) -> None:
        """Remove the fade card and let go of the runtime (the headset shows its own home)."""
        if self._show_fade in self.engine.fade_listeners:
            self.engine.fade_listeners.remove(self._show_fade)
        self.fade.removeNode()
        shutdown = getattr(self._openvr, "shutdown", None)
        if shutdown is not None:
            try:
                shutdown()
            except Exception as exc:  # closing must not fail on a runtime that is already gone
                log.warning("openvr: shutdown failed: %s", exc)

    def _event(self, event: Any) -> None:
        vr = self._openvr
        if event.eventType != vr.VREvent_ButtonPress:
            return
        button = event.data.controller.button
        if button == vr.k_EButton_ApplicationMenu:
            self.on_button("pause")
        elif button == vr.k_EButton_Grip:
            self.on_button("stop")
        elif button == vr.k_EButton_SteamVR_Trigger:
            self.on_button("enter")
        elif button == vr.k_EButton_SteamVR_Touchpad:
            try:
                result = self.ovr.vr_system.getControllerState(event.trackedDeviceIndex)
                state = result[1] if isinstance(result, tuple) else result
                x = float(state.rAxis[0].x)
            except Exception as exc:
                log.warning("openvr: controller state unavailable: %s", exc)
                return
            self.on_button("left" if x < 0 else "right")


# --------------------------------------------------------------------------- the process


class RendererProcess:
    """The patient's renderer attached to a session host.

    ``endpoints``/``config``: the host's sockets and the settings (``renderer``
    section: ``failsafe_timeout_s``, ``stop_fade_s``, ``preview_rate_hz``,
    ``preview_width_px``). ``backend``: ``offscreen`` (head from
    ``pose.<sim_source>``), ``desktop`` (a window, keys and mouse-look) or
    ``openvr``. ``clock``: local monotonic seconds; it times the frames (the
    engine's ``dt``), the fail-safe and the publication schedule. ``engine``: an
    already open engine to use (then not closed here; one ShowBase per process).
    ``frame_rate_hz``: cap for :meth:`run` (None: as fast as the back-end allows).
    ``finish_frames``: end every frame with ``glFinish`` (Panda3D's ``gl-finish``), so
    frame times and ``state_shown`` mean "drawn", not "queued"; default: offscreen only
    (a window's buffer swap already waits for the frame). ``headset``: makes the
    :class:`OpenVRHead` of the ``openvr`` back-end (default: the real one, after
    :func:`probe_openvr`).
    """

    def __init__(
        self,
        endpoints: Endpoints,
        config: Mapping[str, Any],
        *,
        backend: Backend = "offscreen",
        stereo: bool = False,
        width: int = 1280,
        height: int = 720,
        source: str = DEFAULT_SOURCE,
        sim_source: str = DEFAULT_SIM_SOURCE,
        clock: Callable[[], float] = time.monotonic,
        engine: RenderEngine | None = None,
        frame_rate_hz: float | None = None,
        finish_frames: bool | None = None,
        patient_controls: bool = True,
        context: zmq.Context[Any] | None = None,
        headset: Callable[[RenderEngine, Callable[[str], None]], OpenVRHead] | None = None,
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
        renderer_cfg = config["renderer"]
        self.endpoints = endpoints
        self.config = config
        self.backend: Backend = backend
        self.source = source
        self.sim_source = sim_source
        self.clock = clock
        self.failsafe_timeout_s = float(renderer_cfg["failsafe_timeout_s"])
        self.stop_fade_s = float(renderer_cfg["stop_fade_s"])
        self.preview_interval_s = frame_interval(float(renderer_cfg["preview_rate_hz"]))
        self.preview_width_px = int(renderer_cfg["preview_width_px"])
        self.frame_interval_s = frame_interval(frame_rate_hz)
        self.finish_frames = backend == "offscreen" if finish_frames is None else finish_frames
        if backend == "openvr" and headset is None:
            probe_openvr()  # a clear OpenVRUnavailable before any window opens
        self._offset_s = 0.0
        self._own_engine = engine is None
        if engine is None:
            engine = self._open_engine(backend, width, height, stereo, config)
        self.engine = engine
        self.stereo = engine.stereo
        self._gl_finish_before: bool | None = None
        if self.finish_frames:
            self._gl_finish_before = set_gl_finish(True)
        self.frame = 0
        self.shown_seq: int | None = None
        self.counters: dict[str, int] = {"states": 0, "events": 0, "sim_poses": 0,
                                         "previews": 0, "stats": 0, "state_shown": 0,
                                         "stimulus_events": 0}
        self.last_stats: dict[str, Any] = {}
        self.last_pose: dict[str, Any] = {}
        self.head_hpr: tuple[float, float, float] = (0.0, 0.0, 0.0)
        self._closed = False
        self._quit = False
        self._last_frame_s: float | None = None
        now = clock()
        self._next_stats_s = now + STATS_INTERVAL_S
        self._next_preview_s = now
        self._buttons: list[str] = []
        self._early: list[DataMessage] = []  # read while idling between frames
        self._played_event_id = 0  # the last stimulus event id seen in a state
        self._mouse_ready = False
        self._sub = Subscriber(endpoints, topics=("state", "event", f"pose.{sim_source}"),
                               context=context)
        stamp = self._session_time
        self._pose_pub = Publisher(endpoints.publish, HEAD_SOURCE, clock=stamp, context=context,
                                   control=endpoints.control, role="renderer")
        self._pub = Publisher(endpoints.publish, source, clock=stamp, context=context,
                              control=endpoints.control, role="renderer")
        self.director = Director(self.failsafe_timeout_s, self.stop_fade_s, now)
        self._session_id: str | None = None
        self.remote: PatientRemote | None = None
        if patient_controls:
            self.remote = PatientRemote(endpoints.control, f"renderer-{source}",
                                        on_offset=self._set_offset, context=context).start()
        self.vr: OpenVRHead | None = None
        if backend == "openvr":
            self.vr = (headset or OpenVRHead)(engine, self._buttons.append)
        head = self.vr.head if self.vr is not None else (
            engine.base.camera if self.stereo else None)
        eye_w = engine.width / 2 if self.stereo else engine.width
        self.overlay = PatientOverlay(engine.base.aspect2d, head,
                                      aspect_ratio=eye_w / max(1, engine.height))
        self.questionnaire = QuestionnaireCard(self.overlay)
        # The therapist's preview comes from a small mirror camera on the patient's head.
        if self.preview_interval_s:
            engine.open_mirror(self.preview_width_px,
                               parent=self.vr.head if self.vr is not None else None)
        self._bind_keys()
        if backend == "desktop":
            self._setup_desktop()
        self._apply(self.director.initial())

    # -- set-up ----------------------------------------------------------------------

    @staticmethod
    def _open_engine(backend: Backend, width: int, height: int, stereo: bool,
                     config: Mapping[str, Any]) -> RenderEngine:
        from .engine import RenderEngine

        scene_dirs = config.get("plugins", {}).get("scene_dirs", [])
        if backend == "openvr":
            # The headset gets its own eye buffers; the main window only mirrors the left eye.
            engine_backend = "desktop" if os.environ.get("DISPLAY") else "offscreen"
            return RenderEngine(engine_backend, width, height, stereo=False,  # type: ignore[arg-type]
                                scene_dirs=scene_dirs, auto_frame=False)
        return RenderEngine(backend, width, height, stereo=stereo, scene_dirs=scene_dirs)

    def _set_offset(self, offset_s: float) -> None:
        self._offset_s = offset_s  # written by the worker thread; a float store is atomic

    def _session_time(self) -> float:
        return self.clock() + self._offset_s

    def _bind_keys(self) -> None:
        base = self.engine.base
        base.accept("space", self._buttons.append, ["pause"])
        for key in ("escape", "s"):
            base.accept(key, self._buttons.append, ["stop"])
        base.accept("arrow_left", self._buttons.append, ["left"])
        base.accept("arrow_right", self._buttons.append, ["right"])
        base.accept("enter", self._buttons.append, ["enter"])
        for digit in range(10):
            base.accept(str(digit), self._buttons.append, [f"digit{digit}"])
        for key in ("delete", "backspace"):
            base.accept(key, self._buttons.append, ["skip"])
        base.accept("p", self._buttons.append, ["qpause"])

    def _setup_desktop(self) -> None:
        from panda3d.core import WindowProperties

        props = WindowProperties()
        props.setCursorHidden(True)
        props.setMouseMode(WindowProperties.M_confined)
        base = self.engine.base
        base.win.requestProperties(props)

    # -- patient controls --------------------------------------------------------------

    def patient_pause(self) -> None:
        """The patient asks for a pause (Space, controller menu button)."""
        self._status("Pause sent…", "pending", None)
        if self.remote is not None:
            self.remote.submit("pause", {"reason": "patient"})

    def patient_stop(self) -> None:
        """The patient's STOP (Escape / S, controller grip): calm now, sent until acknowledged."""
        self._status("STOP sent…", "pending", None)
        self._apply(self.director.local_stop())
        if self.remote is not None:
            self.remote.submit("stop", {"reason": "patient STOP"})

    def answer_suds(self, value: float) -> int:
        """Send the patient's SUDS rating (0–100); returns the value sent."""
        rating = clamp_suds(value)
        self.overlay.hide_suds()
        self._suds_answered = True
        self._status(f"Rating {rating} sent…", "pending", None)
        if self.remote is not None:
            self.remote.submit("suds", {"value": rating})
        return rating

    _suds_answered = False

    def _status(self, text: str, kind: StatusKind, hold_s: float | None) -> None:
        self.overlay.set_status(text, kind, self.clock(), hold_s)

    def _handle_buttons(self) -> None:
        buttons, self._buttons[:] = list(self._buttons), []
        now = self.clock()
        for button in buttons:
            if self.questionnaire.active and button != "stop":
                self._questionnaire_button(button, now)
            elif button == "pause":
                self.patient_pause()
            elif button == "stop":
                self.patient_stop()
            elif not self.overlay.suds_visible:
                continue
            elif button == "left":
                self.overlay.suds.left()
            elif button == "right":
                self.overlay.suds.right()
            elif button == "enter":
                chosen = self.overlay.suds.enter()
                if chosen is None:  # Enter before choosing: nothing is sent
                    self._status("Choose a number first", "info", 3.0)
                else:
                    self.answer_suds(chosen)
            elif button.startswith("digit"):
                self.overlay.suds.digit(int(button[5:]), now)

    def _questionnaire_button(self, button: str, now: float) -> None:
        """Keys and controller buttons while a questionnaire is open (STOP is not here)."""
        card = self.questionnaire
        form = card.form
        if form is None:
            return
        if button in ("pause", "qpause"):
            if self.remote is not None:
                self.remote.submit("questionnaire_pause", {"id": form["id"],
                                                           "paused": not card.paused})
            return
        if card.paused or card.pending_item is not None or not form.get("next_item"):
            return
        item_id = str(form["next_item"]["id"])
        if button == "left":
            card.input.left()
        elif button == "right":
            card.input.right()
        elif button.startswith("digit"):
            card.input.digit(int(button[5:]), now)
        elif button in ("enter", "skip"):
            response = None if button == "skip" else card.input.enter()
            if button == "enter" and response is None:
                self._status("Choose an answer first (or Delete to leave it)", "info",
                             STATUS_HOLD_S)
                return
            card.pending_item = item_id
            if self.remote is not None:
                self.remote.submit("questionnaire_answer", {"id": form["id"], "item": item_id,
                                                            "response": response})

    def _handle_notices(self) -> None:
        if self.remote is None:
            return
        for notice in self.remote.notices():
            if notice.name == "stop":
                if notice.status == "ok":
                    self.director.stop_acknowledged(notice.state_seq)
                    self._status("Stopped — acknowledged", "ok", STATUS_HOLD_S)
                elif notice.status == "retrying":
                    self._status("STOP sent… retrying (no answer yet)", "pending", None)
                else:
                    self._status(f"STOP refused: {notice.error}", "error", STATUS_HOLD_S)
            elif notice.name == "pause":
                if notice.status == "ok":
                    self._status("Paused — acknowledged", "ok", STATUS_HOLD_S)
                elif notice.status == "refused":
                    self._status(f"Pause: {notice.error}", "info", STATUS_HOLD_S)
                else:
                    self._status("Pause not delivered: no answer", "error", STATUS_HOLD_S)
            elif notice.name.startswith("questionnaire_") and notice.status != "ok":
                self.questionnaire.pending_item = None  # let the patient answer again
                self._status(f"Answer not delivered: {notice.error or 'no answer'}", "error",
                             STATUS_HOLD_S)
            elif notice.name == "suds":
                value = notice.args.get("value")
                if notice.status == "ok":
                    self._status(f"Rating {value} received — thank you", "ok", STATUS_HOLD_S)
                else:
                    self._suds_answered = False  # ask again
                    self._status(f"Rating not delivered: {notice.error or 'no answer'}",
                                 "error", STATUS_HOLD_S)

    # -- the per-frame task ----------------------------------------------------------------

    def step_frame(self) -> None:
        """Read input, follow the host, render one frame and publish what it shows."""
        now = self.clock()
        dt = 0.0 if self._last_frame_s is None else min(0.25, max(0.0, now - self._last_frame_s))
        self._last_frame_s = now
        self._read_input()
        self._handle_buttons()
        self._handle_notices()
        self._drain(now)
        directive = self.director.tick(now)
        if directive is not None:
            self._apply(directive)
        self._update_suds_prompt()
        state = self.director.state
        self.questionnaire.show_form(None if not state or self.director.failsafe
                                     else state.get("questionnaire"))
        if self.questionnaire.active:
            self.overlay.hide_suds()  # one question at a time: the form has the keys
        self.overlay.update(now)
        preview_due = bool(self.preview_interval_s) and now >= self._next_preview_s
        if preview_due and self.mirror_preview:
            self.engine.mirror_next_frame()
        self.engine.step(dt)
        self.frame += 1
        seq = self.director.applied_seq
        if seq is not None and seq != self.shown_seq:
            self.shown_seq = seq
            self._pub.publish("render", {"event": "state_shown", "seq": seq,
                                         "shown_monotonic_s": time.monotonic(),
                                         "frame": self.frame})
            self.counters["state_shown"] += 1
        self._publish_pose()
        if now >= self._next_stats_s:
            self._next_stats_s = max(self._next_stats_s + STATS_INTERVAL_S, now)
            self._publish_stats()
        if preview_due:
            self._next_preview_s = max(self._next_preview_s + self.preview_interval_s, now)
            self._publish_preview()
        if self.director.session_id != self._session_id:
            self._session_id = self.director.session_id
            if self.remote is not None and self._session_id is not None:
                self.remote.request_sync()  # a new (restarted) host has a new session clock

    def _read_input(self) -> None:
        base = self.engine.base
        if self.backend == "desktop":
            base.dgTrav.traverse(base.dataRootNode)
            base.eventMgr.doEvents()
            self._mouse_look()
        elif self.vr is not None:
            self.vr.update()

    def _mouse_look(self) -> None:
        win = self.engine.base.win
        props = win.getProperties()
        if not props.getForeground():
            self._mouse_ready = False
            return
        cx, cy = win.getXSize() // 2, win.getYSize() // 2
        pointer = win.getPointer(0)
        if self._mouse_ready and pointer.getInWindow():
            h, p, _ = self.head_hpr
            h -= (pointer.getX() - cx) * MOUSE_DEG_PER_PX
            p = min(85.0, max(-85.0, p - (pointer.getY() - cy) * MOUSE_DEG_PER_PX))
            self.head_hpr = (h, p, 0.0)
            self.engine.set_head_pose((0.0, 0.0, 0.0), self.head_hpr)
        self._mouse_ready = bool(win.movePointer(0, cx, cy))

    def _drain(self, now: float) -> None:
        latest_pose: Mapping[str, Any] | None = None
        early, self._early = self._early, []
        for message in [*early, *self._sub.drain()]:
            if message.topic == "state":
                self.counters["states"] += 1
                self.director.on_state(message.payload, now)
                self._play_stimulus_event(message.payload)
            elif message.topic == "event":
                self.counters["events"] += 1
                if message.payload.get("kind") == "suds_recorded":
                    self.overlay.hide_suds()
            elif message.kind == "pose":
                self.counters["sim_poses"] += 1
                latest_pose = message.payload
        if latest_pose is not None and self.backend == "offscreen":
            try:
                self.head_hpr = sim_pose_to_hpr(latest_pose)
            except (KeyError, TypeError, ValueError) as exc:
                log.warning("ignoring a simulated pose: %s", exc)
            else:
                self.engine.set_head_pose((0.0, 0.0, 0.0), self.head_hpr)

    def _play_stimulus_event(self, state: Mapping[str, Any]) -> None:
        """Play each stimulus event of the state once, if it is recent and its scene is shown."""
        event = state.get("stimulus_event")
        if not isinstance(event, Mapping):
            return
        event_id = int(event.get("id", 0))
        if event_id <= self._played_event_id:
            return
        self._played_event_id = event_id
        late_s = self._session_time() - float(event.get("t_s", 0.0))
        current = self.engine.current
        if (late_s > STIMULUS_EVENT_MAX_LATE_S or self.director.failsafe
                or current is None or current.name != state.get("scene")):
            return  # joined late, or STOP / the calm scene: not played
        if self.engine.play_event(str(event.get("name"))):
            self.counters["stimulus_events"] += 1

    def _update_suds_prompt(self) -> None:
        state = self.director.state
        requested = bool(state and state.get("suds_requested")) and not self.director.failsafe
        if requested and not self._suds_answered:
            self.overlay.show_suds()
        elif not requested:
            self._suds_answered = False
            self.overlay.hide_suds()

    def _apply(self, directive: Directive) -> None:
        log.info("render: %s → %s%s", directive.reason, directive.scene,
                 "" if directive.fade_s is None else f" (fade {directive.fade_s:.2f} s)")
        if directive.fade_s is None:
            self.engine.show(directive.scene, directive.params)
        else:
            self.engine.fade_to(directive.scene, directive.params, directive.fade_s)

    # -- publishing ------------------------------------------------------------------------

    def _gaze(self) -> tuple[Any, Any, Any, float | None]:
        """World position, quaternion and hpr of the head, and the look-at angle."""
        base = self.engine.base
        if self.vr is not None:
            head = self.vr.head
            pos, quat, hpr = (head.getPos(base.render), head.getQuat(base.render),
                              head.getHpr(base.render))
            scene = self.engine.current
            target = scene.stimulus_world_position() if scene is not None else None
            angle = None if target is None else look_at_angle_deg(
                (pos.x, pos.y, pos.z), tuple(quat.getForward()), target)
            return pos, quat, hpr, angle
        cam = base.camera
        return (cam.getPos(base.render), cam.getQuat(base.render), cam.getHpr(base.render),
                self.engine.look_at_angle_deg())

    def _publish_pose(self) -> None:
        pos, quat, hpr, angle = self._gaze()
        payload = pose_payload((pos.x, pos.y, pos.z),
                               (quat.getR(), quat.getI(), quat.getJ(), quat.getK()),
                               (hpr.x, hpr.y, hpr.z), angle)
        self.last_pose = payload
        self._pose_pub.publish("pose", payload)

    @property
    def mirror_preview(self) -> bool:
        """Previews come from the engine's small mirror camera (not a full read-back)."""
        return self.engine.mirror_open

    def stats_payload(self) -> dict[str, Any]:
        stats = self.engine.frame_stats()
        state = self.director.state or {}
        scene = self.engine.current
        return {
            "frame_ms_p50": round(stats.p50_ms, 3),
            "frame_ms_p99": round(stats.p99_ms, 3),
            "frames_over_budget": stats.over_budget,
            "frames_over_budget_total": stats.over_budget_total,
            "budget_ms": round(stats.budget_ms, 3),
            "fps": stats.frames,
            "scene": scene.name if scene is not None else None,
            "phase": state.get("phase"),
            "pipe": stats.pipe,
            "failsafe": self.director.failsafe,
            "shown_seq": self.shown_seq,
            "draw_calls": stats.geoms,
            "triangles": stats.triangles,
            "backend": self.backend,
            "stereo": self.stereo,
            "width_px": self.engine.width,
            "height_px": self.engine.height,
            "frame": self.frame,
        }

    def _publish_stats(self) -> None:
        self.last_stats = self.stats_payload()
        self._pub.publish("render", self.last_stats)
        self.counters["stats"] += 1

    def _publish_preview(self) -> None:
        mirrored = self.engine.mirror_pixels() if self.mirror_preview else None
        if mirrored is not None:
            jpeg, width, height = preview_jpeg(mirrored, False, self.preview_width_px)
        else:
            jpeg, width, height = preview_jpeg(self.engine.read_pixels(), self.stereo,
                                               self.preview_width_px)
        self._pub.publish("preview", {"jpeg": jpeg, "width_px": width, "height_px": height,
                                      "frame": self.frame})
        self.counters["previews"] += 1

    # -- running ---------------------------------------------------------------------------

    def request_quit(self) -> None:
        self._quit = True

    def run(self, duration_s: float | None = None) -> None:
        """Run frames until ``duration_s`` passes, :meth:`request_quit` or the window closes."""
        started = self.clock()
        next_frame = started
        while not self._quit and (duration_s is None or self.clock() - started < duration_s):
            self.step_frame()
            if self.backend == "desktop" and not self.engine.base.win.getProperties().getOpen():
                break
            if self.frame_interval_s:
                next_frame = max(next_frame + self.frame_interval_s,
                                 self.clock() - self.frame_interval_s)
                if self.wait_for_frame(next_frame):
                    next_frame = self.clock()  # drawn early: the next slot counts from now

    def wait_for_frame(self, until_s: float) -> bool:
        """Idle until ``until_s`` (renderer clock), or until a changed state arrives.

        A command the therapist sends while the renderer idles between paced
        frames is drawn at once instead of at the next frame slot, so the patient
        sees it one frame after it arrives, not up to two. Returns True when woken
        early. Messages read while waiting are kept for the next frame.
        """
        socket = self._sub.socket
        while (remaining_s := until_s - self.clock()) > 0:
            if not socket.poll(max(1, round(remaining_s * 1000))):
                continue  # poll rounds to whole ms: re-check the clock
            messages = self._sub.drain()
            self._early.extend(messages)
            if any(m.topic == "state" and m.payload.get("seq") != self.director.applied_seq
                   for m in messages):
                return True
        return False

    def close(self) -> None:
        """Stop the worker, close the sockets and (if opened here) the engine. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self.remote is not None:
            self.remote.close()
        if self.vr is not None:
            self.vr.close()
        self.engine.close_mirror()
        for name in ("space", "escape", "s", "arrow_left", "arrow_right", "enter",
                     *(str(d) for d in range(10))):
            self.engine.base.ignore(name)
        self.questionnaire.destroy()
        self.overlay.destroy()
        if self._gl_finish_before is not None:
            set_gl_finish(self._gl_finish_before)
        self._sub.close()
        self._pose_pub.close()
        self._pub.close()
        if self._own_engine:
            self.engine.close()

    def __enter__(self) -> RendererProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = [
    "BACKENDS",
    "Directive",
    "Director",
    "Notice",
    "OpenVRHead",
    "OpenVRUnavailable",
    "PatientRemote",
    "RendererProcess",
    "pose_payload",
    "preview_jpeg",
    "probe_openvr",
    "quat_to_yaw_pitch",
    "sim_pose_to_hpr",
]
