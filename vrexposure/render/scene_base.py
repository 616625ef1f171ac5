"""Base class for procedural Panda3D scenes, and the pure maths they share.

A scene owns a node graph under one root. The engine calls, in order:
``attach(parent)`` once (which calls :meth:`SceneBase.build`), then each frame
``update(dt_s, time_s)``; the session side calls :meth:`SceneBase.set_params`
whenever the step or the within-step intensity changes.

``set_params`` only sets *targets*. Every numeric parameter becomes an eased
*channel* that follows its target with a critically damped spring
(:func:`smooth_damp`): position and velocity are continuous, so a parameter
change never jumps (cybersickness) and reaches ~98 % of a step after three
``ease_time_s``. Booleans become 0/1 channels and choices one channel per
option (``"railing=full"`` …), so discrete changes cross-fade too.

This module imports no Panda3D at import time: scene plugins import it while
only their schema is needed (hierarchy validation).
"""

from __future__ import annotations

import logging
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from vrexposure.scene_api import ParamValue, SceneSpec

if TYPE_CHECKING:
    from panda3d.core import NodePath

log = logging.getLogger(__name__)

#: Eye height of a seated adult above the floor they sit on.
EYE_HEIGHT_SEATED_M = 1.2
#: Default time constant of parameter easing.
DEFAULT_EASE_TIME_S = 1.0

Vec3Tuple = tuple[float, float, float]


# --------------------------------------------------------------------------- pure maths


def smooth_damp(
    current: float, velocity: float, target: float, dt_s: float, ease_time_s: float
) -> tuple[float, float]:
    """One step of a critically damped spring from ``current`` towards ``target``.

    Exact solution of ``x'' = -2ωx' - ω²(x - target)`` with ``ω = 2 / ease_time_s``
    over ``dt_s``, so it is stable for any frame time. Returns (value, velocity).
    """
    if dt_s <= 0.0:
        return current, velocity
    if ease_time_s <= 0.0:
        return target, 0.0
    omega = 2.0 / ease_time_s
    offset = current - target
    decay = math.exp(-omega * dt_s)
    drive = velocity + omega * offset
    new_offset = (offset + drive * dt_s) * decay
    new_velocity = (velocity - omega * drive * dt_s) * decay
    return target + new_offset, new_velocity


def ease_exponential(current: float, target: float, dt_s: float, time_constant_s: float) -> float:
    """First-order easing: ``current`` covers ``1 - exp(-dt/τ)`` of the way to ``target``."""
    if dt_s <= 0.0:
        return current
    if time_constant_s <= 0.0:
        return target
    return target + (current - target) * math.exp(-dt_s / time_constant_s)


def forward_from_hpr(hpr: Sequence[float]) -> Vec3Tuple:
    """Unit forward vector of a Panda3D heading/pitch/roll in degrees (Z up, +Y forward)."""
    h, p = math.radians(hpr[0]), math.radians(hpr[1])
    return (-math.sin(h) * math.cos(p), math.cos(h) * math.cos(p), math.sin(p))


def angle_between_deg(a: Sequence[float], b: Sequence[float]) -> float:
    """Angle between two 3-vectors in degrees (0 when either is zero)."""
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(x * x for x in b))
    if na == 0.0 or nb == 0.0:
        return 0.0
    cos = sum(x * y for x, y in zip(a, b, strict=True)) / (na * nb)
    return math.degrees(math.acos(max(-1.0, min(1.0, cos))))


def look_at_angle_deg(
    eye: Sequence[float], forward: Sequence[float], target: Sequence[float]
) -> float:
    """Angle between the gaze direction ``forward`` and the direction from ``eye`` to ``target``."""
    to_target = [t - e for t, e in zip(target, eye, strict=True)]
    return angle_between_deg(forward, to_target)


def hpr_towards(eye: Sequence[float], target: Sequence[float]) -> tuple[float, float]:
    """Heading and pitch (degrees) that point the +Y axis from ``eye`` at ``target``."""
    dx, dy, dz = (t - e for t, e in zip(target, eye, strict=True))
    heading = math.degrees(math.atan2(-dx, dy))
    pitch = math.degrees(math.atan2(dz, math.hypot(dx, dy)))
    return heading, pitch


# --------------------------------------------------------------------------- eased channels


@dataclass
class Channel:
    """One eased value: current value, its velocity and its target."""

    value: float
    target: float
    velocity: float = 0.0
    ease_time_s: float = DEFAULT_EASE_TIME_S

    def step(self, dt_s: float) -> None:
        self.value, self.velocity = smooth_damp(
            self.value, self.velocity, self.target, dt_s, self.ease_time_s
        )

    def snap(self) -> None:
        self.value, self.velocity = self.target, 0.0


def coerce_param(spec: SceneSpec, name: str, value: object, previous: ParamValue) -> ParamValue:
    """``value`` made valid for the parameter ``name`` (clamped / previous value kept), logged."""
    pspec = spec.param(name)
    if pspec is None:
        return previous
    if pspec.check(value) is None:
        return value  # type: ignore[return-value]
    if (
        pspec.type in ("float", "int")
        and isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    ):
        low = pspec.minimum if pspec.minimum is not None else -math.inf
        high = pspec.maximum if pspec.maximum is not None else math.inf
        clamped: float | int = min(high, max(low, float(value)))
        if pspec.type == "int":
            clamped = round(clamped)
        log.warning("scene %s: %s=%r out of range, clamped to %s", spec.name, name, value, clamped)
        return clamped
    log.warning("scene %s: ignoring invalid %s=%r (%s)", spec.name, name, value, pspec.check(value))
    return previous


# --------------------------------------------------------------------------- base class


class SceneBase(ABC):
    """A procedural scene: build once, then eased parameters and animation every frame.

    Subclasses implement :meth:`build` and usually :meth:`animate`, read eased
    values with :meth:`v`, and may add derived channels in :meth:`channel_targets`.
    """

    #: Name of the procedural ambient sound (see :mod:`vrexposure.render.audio`), or None.
    sound_name: str | None = None
    #: Parameter whose (eased) value is the ambient sound volume.
    sound_param: str | None = None
    #: Camera near and far planes in metres.
    near_far: tuple[float, float] = (0.05, 500.0)
    #: Colour the frame is cleared to (behind everything).
    background_color: tuple[float, float, float] = (0.0, 0.0, 0.0)
    #: Per-channel easing time overrides, e.g. ``{"door=open": 1.5}``.
    channel_ease_s: ClassVar[Mapping[str, float]] = {}
    #: The one-shot sound each stimulus event plays as it starts (event name -> a name in
    #: :data:`vrexposure.render.audio.EVENT_SOUNDS`); events not named play silently.
    event_sounds: ClassVar[Mapping[str, str]] = {}

    def __init__(self, spec: SceneSpec, ease_time_s: float = DEFAULT_EASE_TIME_S) -> None:
        self.spec = spec
        self.ease_time_s = ease_time_s
        self.params: dict[str, ParamValue] = spec.defaults()
        self.root: NodePath | None = None
        self.time_s = 0.0
        self._channels: dict[str, Channel] = {}
        self._events: dict[str, tuple[float, float]] = {}  # name -> (start time, duration)
        self._retarget(immediate=True)

    # -- lifecycle -----------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.spec.name

    def attach(self, parent: NodePath) -> NodePath:
        """Create the scene root under ``parent``, build the node graph and pose it once."""
        self.root = parent.attachNewNode(f"scene-{self.spec.name}")
        self.build(self.root)
        self.update(0.0, self.time_s)
        return self.root

    @abstractmethod
    def build(self, parent: NodePath) -> None:
        """Build the node graph procedurally under ``parent``."""

    def destroy(self) -> None:
        if self.root is not None:
            self.root.removeNode()
            self.root = None

    # -- parameters ------------------------------------------------------------------

    def set_params(self, params: Mapping[str, Any], immediate: bool = False) -> None:
        """Set parameter targets (unknown names ignored, invalid values clamped or kept).

        Within a scene, parameters not named keep their current targets. With
        ``immediate`` (a scene switch, a first frame, behind a fade to black) the
        parameters start from the defaults, the eased values jump to the targets
        and :meth:`reset_motion` restarts accumulated motion.
        """
        merged = self.spec.defaults() if immediate else dict(self.params)
        for name, value in params.items():
            if name in merged:
                merged[name] = coerce_param(self.spec, name, value, merged[name])
        self.params = merged
        self._retarget(immediate)
        if immediate:
            self._events.clear()  # a cut into the scene ends what was playing
            self.reset_motion()

    def reset_motion(self) -> None:  # noqa: B027 - an optional hook, not abstract
        """Forget accumulated motion (creeping walls, walk phases); override as needed."""

    def channel_targets(self, params: Mapping[str, ParamValue]) -> dict[str, float]:
        """Numeric targets of every eased channel for ``params``.

        Default: numbers as they are, booleans as 0/1 and one 0/1 channel per
        choice option named ``"param=option"``. Override to add derived channels.
        """
        targets: dict[str, float] = {}
        for pspec in self.spec.params:
            value = params[pspec.name]
            if pspec.type == "choice":
                for option in pspec.choices:
                    targets[f"{pspec.name}={option}"] = 1.0 if value == option else 0.0
            else:
                targets[pspec.name] = float(value)
        return targets

    def _retarget(self, immediate: bool) -> None:
        for name, target in self.channel_targets(self.params).items():
            channel = self._channels.get(name)
            if channel is None:
                ease = self.channel_ease_s.get(name, self.ease_time_s)
                channel = self._channels[name] = Channel(target, target, 0.0, ease)
            channel.target = target
            if immediate:
                channel.snap()

    def v(self, name: str) -> float:
        """Current eased value of channel ``name``."""
        return self._channels[name].value

    def target(self, name: str) -> float:
        return self._channels[name].target

    def settled(self, tolerance: float = 1e-3) -> bool:
        """True when every channel is within ``tolerance`` (relative to its scale) of its target."""
        return all(
            abs(c.value - c.target) <= tolerance * max(1.0, abs(c.target))
            for c in self._channels.values()
        )

    # -- stimulus events ---------------------------------------------------------------

    def play_event(self, name: str) -> bool:
        """Start the stimulus event ``name`` (declared in the spec) now; False if unknown."""
        spec = self.spec.event(name)
        if spec is None:
            log.warning("scene %s: no event %r", self.spec.name, name)
            return False
        self._events[name] = (self.time_s, spec.duration_s)
        return True

    def event_progress(self, name: str) -> float | None:
        """How far the event ``name`` has played (0..1), or None when it is not playing."""
        started = self._events.get(name)
        if started is None:
            return None
        start, duration = started
        progress = (self.time_s - start) / max(1e-6, duration)
        if progress > 1.0:
            del self._events[name]
            return None
        return max(0.0, progress)

    # -- per frame -------------------------------------------------------------------

    def update(self, dt_s: float, time_s: float) -> None:
        """Advance the eased channels by ``dt_s`` and animate the scene at ``time_s``."""
        dt_s = max(0.0, dt_s)
        self.time_s = time_s
        for channel in self._channels.values():
            channel.step(dt_s)
        if self.root is not None:
            self.animate(dt_s, time_s)

    def animate(self, dt_s: float, time_s: float) -> None:  # noqa: B027 - optional hook
        """Apply eased values to the node graph and move what moves (override)."""

    # -- what the engine asks ----------------------------------------------------------

    def stimulus_world_position(self) -> Vec3Tuple | None:
        """World position of the feared stimulus (None for scenes without one)."""
        return None

    def stimulus_nodes(self) -> list[NodePath]:
        """The nodes that show the feared stimulus (tagged ``stimulus``; ``check-scenes``)."""
        if self.root is None:
            return []
        return list(self.root.findAllMatches("**/=stimulus"))

    #: Radius (m) around the eye point under which there must be ground (``check-scenes``).
    footprint_m: float = 0.3
    #: Seconds over which ``check-scenes`` takes the stimulus as the part of the view it
    #: sweeps (the union of its masks, sampled): for scenes whose motion around the
    #: patient is part of what is feared (turbulence shaking a cabin). 0: one moment.
    stimulus_sweep_s: float = 0.0

    def solid_boxes(self) -> list[tuple[str, Vec3Tuple, Vec3Tuple]]:
        """World bounding boxes (name, low, high) of people and props that must not overlap.

        Default: the visible nodes tagged ``solid``; scenes that draw people in batches
        override it with the boxes of their layout.
        """
        if self.root is None:
            return []
        boxes = []
        for path in self.root.findAllMatches("**/=solid"):
            if path.isHidden():
                continue
            bounds = path.getTightBounds(self.root.getParent())
            if bounds is None:
                continue
            lo, hi = bounds
            boxes.append((path.getName(), (lo.x, lo.y, lo.z), (hi.x, hi.y, hi.z)))
        return boxes

    def eye_position(self) -> Vec3Tuple:
        """Where the seated patient's eyes are, in world coordinates (metres, Z up)."""
        return (0.0, 0.0, EYE_HEIGHT_SEATED_M)

    def view_hpr(self) -> Vec3Tuple:
        """Resting gaze direction for a monitor (no head tracking); head pose adds to it."""
        return (0.0, 0.0, 0.0)

    @property
    def sound_volume(self) -> float:
        """Current ambient sound volume in [0, 1]."""
        if self.sound_param is None:
            return 0.0
        return min(1.0, max(0.0, self.v(self.sound_param)))
