"""Scene validity harness: does every hierarchy step show its stimulus, graded, unbroken?

Measured, not eyeballed, from the seated patient's eye with a headset's field of
view, at within-step intensity 0 and 1:

* the stimulus is visible: the scene marks its stimulus nodes (``SceneBase.stimulus_nodes``);
  a mask render (stimulus flat magenta, everything else black, occlusion kept) gives its
  solid angle, share of the view and equivalent angular diameter, checked against the
  floor the scene declares (``SceneSpec.stimulus_floor_deg``); a scene whose motion is
  feared declares a sweep (``SceneBase.stimulus_sweep_s``): the stimulus is then the view
  it sweeps over that time (the union of its masks);
* intensity changes the stimulus (metric or picture);
* the hierarchy is graded (warning when a later step shows less);
* no flat frame (luminance contrast floor unless the stimulus is plainly visible), no
  camera inside geometry, ground under the patient, no interpenetrating people or props
  (bounding boxes the scene declares), no z-fighting (a render with the near plane moved a
  little must not flicker: coplanar surfaces resolve by depth precision).

The pure part (metrics, findings) is apart from the rendering part (``SceneChecker``).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

#: Headset field of view per eye (a Quest-2-class headset is about 97° × 93°).
HEADSET_FOV_DEG = 100.0
#: Harness render size: modest for CI, the measures are angular so they do not depend on it.
CHECK_SIZE_PX = 256
#: Luminance spread (99th - 1st percentile, grey levels) below which a frame is flat. A
#: dark frame passes while something in it stays visible (a torch, a faint outline).
CONTRAST_FLOOR = 12.0
#: Relative change of the stimulus solid angle that counts as "intensity changes it".
INTENSITY_METRIC_MIN = 0.05
#: Picture RMSE (share of full scale) that counts as "intensity changes it".
INTENSITY_RMSE_MIN = 0.02
#: Change of the ambient sound volume (0..1) that counts as "intensity changes it": a step
#: may grade only its sound (engines at take-off power), which the pictures cannot show.
INTENSITY_SOUND_MIN = 0.05
#: Share of pixels that may flicker when the near plane moves before it is z-fighting.
ZFIGHT_MAX_SHARE = 0.002
#: Overlap (metres, on every axis) two bounding boxes may have before they interpenetrate.
OVERLAP_TOLERANCE_M = 0.01
#: How far below the eye the ground must be found (a seated or standing patient).
GROUND_MAX_DROP_M = 2.5
#: Scene time at which every measure starts (then it settles and, if swept, sweeps).
MEASURE_START_S = 0.0
#: Time between the stimulus masks of a swept stimulus (``SceneBase.stimulus_sweep_s``):
#: 10 Hz samples a 2 Hz shake without aliasing it away.
SWEEP_DT_S = 0.1

Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Finding:
    """One problem found: where (hierarchy step, intensity), which check, what."""

    severity: Severity
    step: str
    check: str
    message: str
    intensity: float | None = None

    def __str__(self) -> str:
        at = "" if self.intensity is None else f" @ intensity {self.intensity:g}"
        return f"{self.severity}: step {self.step}{at}: {self.check}: {self.message}"


@dataclass
class FrameMeasure:
    """What one render of one step at one intensity showed."""

    stimulus_sr: float  # solid angle of the visible stimulus, steradians
    stimulus_share: float  # of the view's solid angle
    stimulus_deg: float  # equivalent diameter of the visible stimulus, degrees
    largest_deg: float  # angular extent (across) of the largest connected stimulus part
    contrast: float  # luminance spread (99th - 1st percentile), grey levels
    zfight_share: float
    camera_inside: str | None = None
    ground_gap: str | None = None
    sound_volume: float = 0.0  # the scene's ambient sound volume (0..1)
    overlaps: list[str] = field(default_factory=list)
    image: NDArray[np.uint8] | None = field(default=None, repr=False)
    mask: NDArray[np.bool_] | None = field(default=None, repr=False)


@dataclass
class StepMeasure:
    """Intensity 0 and 1 of one hierarchy step."""

    index: int
    step_id: str
    label: str
    expected_suds: int
    low: FrameMeasure
    high: FrameMeasure
    rmse: float  # picture difference between intensity 0 and 1, share of full scale
    #: How much the stimulus changed from intensity 0 to 1: the larger of the relative
    #: change of its solid angle and of its shape (pixels in one mask only / in either).
    change: float = 0.0

    @property
    def sound_change(self) -> float:
        """Change of the ambient sound volume from intensity 0 to 1."""
        return abs(self.high.sound_volume - self.low.sound_volume)


# --------------------------------------------------------------------------- pure maths


def pixel_solid_angles(width: int, height: int, fov_h_deg: float, fov_v_deg: float) -> NDArray[Any]:
    """Solid angle (sr) of every pixel of a perspective image (H, W)."""
    half_w = math.tan(math.radians(fov_h_deg) / 2.0)
    half_h = math.tan(math.radians(fov_v_deg) / 2.0)
    xs = (np.arange(width) + 0.5) / width * 2.0 * half_w - half_w
    ys = (np.arange(height) + 0.5) / height * 2.0 * half_h - half_h
    x, y = np.meshgrid(xs, ys)
    pixel_area = (2.0 * half_w / width) * (2.0 * half_h / height)
    return pixel_area / (1.0 + x * x + y * y) ** 1.5


def equivalent_diameter_deg(solid_angle_sr: float) -> float:
    """Apex angle (degrees) of the cone with the given solid angle."""
    cos_half = 1.0 - min(max(solid_angle_sr, 0.0), 4.0 * math.pi) / (2.0 * math.pi)
    return 2.0 * math.degrees(math.acos(max(-1.0, min(1.0, cos_half))))


def magenta_mask(image: NDArray[np.uint8]) -> NDArray[np.bool_]:
    """Pixels of the mask render that show the stimulus (flat magenta)."""
    r, g, b = (image[..., k].astype(np.int16) for k in range(3))
    return (r > 160) & (b > 160) & (g < 80)


def pixel_directions(width: int, height: int, fov_h_deg: float, fov_v_deg: float) -> NDArray[Any]:
    """Unit view direction (H, W, 3) through every pixel centre (x right, y up, z forward)."""
    half_w = math.tan(math.radians(fov_h_deg) / 2.0)
    half_h = math.tan(math.radians(fov_v_deg) / 2.0)
    xs = (np.arange(width) + 0.5) / width * 2.0 * half_w - half_w
    ys = half_h - (np.arange(height) + 0.5) / height * 2.0 * half_h
    x, y = np.meshgrid(xs, ys)
    d = np.stack([x, y, np.ones_like(x)], axis=2)
    return d / np.linalg.norm(d, axis=2, keepdims=True)


def mask_measures(mask: NDArray[np.bool_], weights: NDArray[Any], directions: NDArray[Any]
                  ) -> tuple[float, float, float]:
    """(solid angle, share of the view, angular extent in degrees of the widest part).

    A part is a connected region of the mask (8-neighbours: a spider's thin legs hold
    on to its body); its extent is the angle across its pixel bounding box, plus one
    pixel (a part one pixel wide is that wide, not zero).
    """
    from scipy import ndimage

    total = float(weights[mask].sum())
    share = total / float(weights.sum())
    widest = 0.0
    if mask.any():
        labels, _count = ndimage.label(mask, structure=np.ones((3, 3), bool))
        pixel_deg = math.degrees(math.sqrt(float(weights.max())))
        for box in ndimage.find_objects(labels):
            rows, cols = box
            corners = directions[[rows.start, rows.start, rows.stop - 1, rows.stop - 1],
                                 [cols.start, cols.stop - 1, cols.start, cols.stop - 1]]
            cos = np.clip([corners[0] @ corners[3], corners[1] @ corners[2]], -1.0, 1.0)
            widest = max(widest, math.degrees(float(np.arccos(cos).max())) + pixel_deg)
    return total, share, widest


def luminance_contrast(image: NDArray[np.uint8]) -> float:
    """Luminance spread in grey levels: 99th minus 1st percentile (robust to a few pixels)."""
    lum = image[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    low, high = np.percentile(lum, [1.0, 99.0])
    return float(high - low)


def picture_rmse(a: NDArray[np.uint8], b: NDArray[np.uint8]) -> float:
    """Root-mean-square difference of two pictures, share of full scale."""
    diff = a[..., :3].astype(np.float64) - b[..., :3].astype(np.float64)
    return float(np.sqrt((diff * diff).mean()) / 255.0)


def flicker_share(a: NDArray[np.uint8], b: NDArray[np.uint8], threshold: int = 40) -> float:
    """Share of pixels that changed by more than ``threshold`` (any channel)."""
    diff = np.abs(a[..., :3].astype(np.int16) - b[..., :3].astype(np.int16)).max(axis=2)
    return float((diff > threshold).mean())


Box = tuple[str, tuple[float, float, float], tuple[float, float, float]]


def box_overlaps(boxes: Sequence[Box], tolerance_m: float = OVERLAP_TOLERANCE_M) -> list[str]:
    """Pairs of named axis-aligned boxes that overlap by more than ``tolerance_m`` on every axis."""
    if len(boxes) < 2:
        return []
    lo = np.array([b[1] for b in boxes], float)
    hi = np.array([b[2] for b in boxes], float)
    depth = np.minimum(hi[:, None, :], hi[None, :, :]) - np.maximum(lo[:, None, :], lo[None, :, :])
    hits = (depth > tolerance_m).all(axis=2)
    found = []
    for i, j in zip(*np.nonzero(np.triu(hits, 1)), strict=True):
        found.append(f"{boxes[i][0]} and {boxes[j][0]} overlap")
    return found


def stimulus_change(low: FrameMeasure, high: FrameMeasure) -> float:
    """Relative change of the stimulus between two frames: its size or its shape."""
    a, b = low.stimulus_sr, high.stimulus_sr
    size = abs(b - a) / max(a, b, 1e-12)
    shape = 0.0
    if low.mask is not None and high.mask is not None:
        union = int((low.mask | high.mask).sum())
        shape = int((low.mask ^ high.mask).sum()) / union if union else 0.0
    return max(size, shape)


def frame_findings(
    step: str, intensity: float, m: FrameMeasure, floor_deg: float, has_stimulus: bool
) -> list[Finding]:
    """Errors of one frame: stimulus below the floor, flat, camera inside, no ground, overlaps."""
    out: list[Finding] = []

    def err(check: str, message: str) -> None:
        out.append(Finding("error", step, check, message, intensity))

    if has_stimulus and m.largest_deg < floor_deg:
        err("stimulus visible", f"widest stimulus part {m.largest_deg:.2f}° across < floor "
                                f"{floor_deg}°")
    if m.contrast < CONTRAST_FLOOR:
        err("contrast", f"flat frame: luminance spread {m.contrast:.1f} < {CONTRAST_FLOOR} "
                        "grey levels (nothing can be made out)")
    if m.camera_inside:
        err("camera", m.camera_inside)
    if m.ground_gap:
        err("ground", m.ground_gap)
    for overlap in m.overlaps:
        err("interpenetration", overlap)
    if m.zfight_share > ZFIGHT_MAX_SHARE:
        err("z-fighting", f"{100 * m.zfight_share:.2f} % of pixels flicker with the near plane")
    return out


def step_findings(s: StepMeasure, has_stimulus: bool) -> list[Finding]:
    """An error when intensity 0 and 1 look and sound the same (neither stimulus, picture
    nor ambient sound changes)."""
    if (s.change >= INTENSITY_METRIC_MIN or s.rmse >= INTENSITY_RMSE_MIN
            or s.sound_change >= INTENSITY_SOUND_MIN):
        return []
    return [Finding("error", s.step_id, "intensity",
                    f"intensity 0→1 changes nothing measurable (stimulus {100 * s.change:.1f} %, "
                    f"picture RMSE {s.rmse:.3f}, sound {s.sound_change:.2f})")]


def graded_findings(steps: Sequence[StepMeasure]) -> list[Finding]:
    """Warnings where a step with higher expected SUDS shows a smaller stimulus at both ends."""
    out: list[Finding] = []
    ordered = sorted(steps, key=lambda s: (s.expected_suds, s.index))
    for prev, cur in itertools.pairwise(ordered):
        if cur.expected_suds <= prev.expected_suds:
            continue
        if max(cur.low.stimulus_sr, cur.high.stimulus_sr) < 0.8 * max(
            prev.low.stimulus_sr, prev.high.stimulus_sr
        ):
            out.append(Finding(
                "warning", cur.step_id, "graded",
                f"shows less stimulus ({cur.high.stimulus_deg:.1f}°) than the easier step "
                f"{prev.step_id} ({prev.high.stimulus_deg:.1f}°)"))
    return out


def report_lines(steps: Sequence[StepMeasure]) -> list[str]:
    """A table: per step the stimulus size at intensity 0 and 1."""
    lines = [f"{'step':<18} {'SUDS':>4} {'stim0 °':>8} {'stim1 °':>8} {'share0':>7} "
             f"{'share1':>7} {'part0 °':>7} {'part1 °':>7} {'change':>7} {'rmse':>6} "
             f"{'sound':>5}"]
    for s in steps:
        lines.append(
            f"{s.step_id:<18} {s.expected_suds:>4} {s.low.stimulus_deg:>8.1f} "
            f"{s.high.stimulus_deg:>8.1f} {100 * s.low.stimulus_share:>6.1f}% "
            f"{100 * s.high.stimulus_share:>6.1f}% {s.low.largest_deg:>7.2f} "
            f"{s.high.largest_deg:>7.2f} {100 * s.change:>6.0f}% {s.rmse:>6.3f} "
            f"{s.sound_change:>5.2f}")
    return lines


# --------------------------------------------------------------------------- rendering


class SceneChecker:
    """Renders hierarchy steps from the patient's eye into its own square buffer.

    Uses an open :class:`~vrexposure.render.engine.RenderEngine` (one per process):
    a texture buffer with a headset-FOV camera on the engine's head, so the engine's
    own window size does not matter.
    """

    def __init__(self, engine: Any, size_px: int = CHECK_SIZE_PX,
                 fov_deg: float = HEADSET_FOV_DEG, keep_images: bool = False) -> None:
        from panda3d.core import FrameBufferProperties, PerspectiveLens, Texture

        self.engine = engine
        self.size_px = size_px
        self.fov_deg = fov_deg
        self.keep_images = keep_images
        self.weights = pixel_solid_angles(size_px, size_px, fov_deg, fov_deg)
        self.directions = pixel_directions(size_px, size_px, fov_deg, fov_deg)
        self.texture = Texture("scene-check")
        base = engine.base
        fbprops = FrameBufferProperties()
        fbprops.setRgbColor(True)
        fbprops.setColorBits(24)
        fbprops.setDepthBits(24)  # as the headset's buffers: z-fighting is judged on it
        buffer = base.win.makeTextureBuffer("scene-check", size_px, size_px, self.texture, True,
                                            fbprops)
        if buffer is None:
            raise RuntimeError(f"no offscreen buffer on pipe {engine.pipe_name}")
        self.buffer = buffer
        self.lens = PerspectiveLens()
        self.lens.setFov(fov_deg, fov_deg)
        self.camera = base.makeCamera(buffer, lens=self.lens, camName="scene-check-cam")
        self.camera.reparentTo(base.cam)

    def close(self) -> None:
        base = self.engine.base
        if self.camera in base.camList:
            base.camList.remove(self.camera)
        self.camera.removeNode()
        base.graphicsEngine.removeWindow(self.buffer)

    def __enter__(self) -> SceneChecker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- one frame -----------------------------------------------------------------------

    def _render(self) -> NDArray[np.uint8]:
        base = self.engine.base
        main_active = base.win.isActive()
        base.win.setActive(False)  # only the check buffer draws
        try:
            base.graphicsEngine.renderFrame()
            base.graphicsEngine.renderFrame()  # the texture is in RAM after the next frame
        finally:
            base.win.setActive(main_active)
        data = bytes(self.texture.getRamImageAs("RGB"))
        image = np.frombuffer(data, np.uint8).reshape(self.texture.getYSize(),
                                                      self.texture.getXSize(), 3)
        return np.ascontiguousarray(image[::-1])

    def _mask_render(self, scene: Any) -> NDArray[np.uint8]:
        """Stimulus flat magenta, the rest black (occlusion kept), see-through parts left out."""
        from panda3d.core import TransparencyAttrib

        root = scene.root
        saved_root = root.getState()
        stimuli = list(scene.stimulus_nodes())
        saved = [(n, n.getState()) for n in stimuli]
        hidden = []

        def see_through(state: Any) -> bool:
            attrib = state.getAttrib(TransparencyAttrib)
            return attrib is not None and attrib.getMode() != TransparencyAttrib.M_none

        # Glass and haze show what is behind them: left out of the mask (a flattened
        # node with glass in it goes as a whole, a little generous to the stimulus).
        for path in root.findAllMatches("**/+GeomNode"):
            if path.isHidden() or any(n.isAncestorOf(path) or n == path for n in stimuli):
                continue
            node = path.node()
            if see_through(path.getNetState()) or any(
                    see_through(node.getGeomState(i)) for i in range(node.getNumGeoms())):
                path.hide()
                hidden.append(path)
        clear = self.buffer.getClearColor()
        try:
            for node, prio in [(root, 900)] + [(n, 1000) for n in stimuli]:
                color = (0, 0, 0, 1) if node is root else (1, 0, 1, 1)
                node.setLightOff(prio)
                node.setTextureOff(prio)
                node.setFogOff(prio)
                node.setMaterialOff(prio)
                node.setColorScaleOff(prio)
                node.setColor(*color, prio)
                node.setTransparency(TransparencyAttrib.M_none, prio)
            self.buffer.setClearColor((0, 0, 0, 1))
            return self._render()
        finally:
            self.buffer.setClearColor(clear)
            for path in hidden:
                path.show()
            for node, state in saved:
                node.setState(state)
            root.setState(saved_root)

    def _rays(self, scene: Any) -> tuple[str | None, str | None]:
        """(camera inside geometry?, gap in the ground under the patient?) by ray casts."""
        from panda3d.core import (
            CollisionHandlerQueue,
            CollisionNode,
            CollisionRay,
            CollisionTraverser,
            GeomNode,
            Vec3,
        )

        render = self.engine.base.render
        eye = self.engine.base.cam.getPos(render)
        directions = [Vec3(x, y, z) for x in (-1, 0, 1) for y in (-1, 0, 1) for z in (-1, 0, 1)
                      if (x, y, z) != (0, 0, 0)]
        origins = [(eye, d) for d in directions]
        footprint = scene.footprint_m
        feet = [Vec3(eye.x + dx, eye.y + dy, eye.z) for dx, dy in
                [(0, 0), (footprint, 0), (-footprint, 0), (0, footprint), (0, -footprint)]]
        origins += [(p, Vec3(0, 0, -1)) for p in feet]
        holder = render.attachNewNode("scene-check-rays")
        queues = []
        traverser = CollisionTraverser("scene-check")
        try:
            for origin, direction in origins:
                node = CollisionNode("ray")
                node.addSolid(CollisionRay(origin, direction))
                node.setFromCollideMask(GeomNode.getDefaultCollideMask())
                node.setIntoCollideMask(0)
                queue = CollisionHandlerQueue()
                traverser.addCollider(holder.attachNewNode(node), queue)
                queues.append((origin, direction, queue))
            traverser.traverse(scene.root)
            inside = None
            ground = None
            for k, (origin, direction, queue) in enumerate(queues):
                queue.sortEntries()
                entry = None
                for i in range(queue.getNumEntries()):
                    candidate = queue.getEntry(i)
                    if not candidate.getIntoNodePath().isHidden():
                        entry = candidate
                        break
                if k < len(directions):
                    if entry is None:
                        continue
                    normal = entry.getSurfaceNormal(render)
                    hit = entry.getSurfacePoint(render)
                    dist = (hit - origin).length()
                    facing = normal.dot(direction.normalized())
                    if dist < 0.05 or (facing > 0.5 and dist < 0.3):
                        inside = (f"the eye is inside {entry.getIntoNodePath().getName()} "
                                  f"({dist:.2f} m, looking {tuple(direction)})")
                elif ground is None:
                    drop = (origin.z - entry.getSurfacePoint(render).z) if entry else None
                    if drop is None or drop > GROUND_MAX_DROP_M:
                        where = f"{origin.x - eye.x:+.2f}, {origin.y - eye.y:+.2f} m"
                        ground = (f"no ground within {GROUND_MAX_DROP_M} m below the patient "
                                  f"at {where}" + ("" if drop is None else f" ({drop:.1f} m)"))
            return inside, ground
        finally:
            holder.removeNode()

    def measure(self, scene_name: str, params: Mapping[str, Any],
                settle_s: float = 2.0, dt_s: float = 0.25) -> FrameMeasure:
        """Show ``scene_name`` with ``params`` (a cut), let it move ``settle_s``, then measure."""
        engine = self.engine
        other = "calm" if scene_name != "calm" else next(n for n in engine.specs if n != "calm")
        # Every measure starts at the same scene time: animation (a shake, a walk) is in
        # the same phase for every step, so steps compare fairly and measures repeat.
        engine.time_s = MEASURE_START_S
        engine.show(other, {})
        engine.show(scene_name, params)
        engine.set_head_pose((0.0, 0.0, 0.0), (0.0, 0.0, 0.0))
        for _ in range(max(1, round(settle_s / dt_s))):
            engine.step(dt_s)
        scene = engine.current
        self.buffer.setClearColor((*scene.background_color, 1.0))
        near, far = scene.near_far
        self.lens.setNearFar(near, far)
        image = self._render()
        self.lens.setNearFar(near * 1.01, far)
        moved = self._render()
        self.lens.setNearFar(near, far)
        mask = magenta_mask(self._mask_render(scene)) if scene.spec.has_stimulus else None
        if mask is not None and scene.stimulus_sweep_s > 0.0:
            # The view the stimulus sweeps as the scene moves around the patient: a cabin
            # shaking in turbulence moves its windows (and the world in them) across it.
            for _ in range(max(1, round(scene.stimulus_sweep_s / SWEEP_DT_S))):
                engine.step(SWEEP_DT_S)
                mask |= magenta_mask(self._mask_render(scene))
        if mask is None:
            total = share = largest = 0.0
        else:
            total, share, largest = mask_measures(mask, self.weights, self.directions)
        inside, ground = self._rays(scene)
        return FrameMeasure(
            stimulus_sr=total,
            stimulus_share=share,
            stimulus_deg=equivalent_diameter_deg(total),
            largest_deg=largest,
            contrast=luminance_contrast(image),
            zfight_share=flicker_share(image, moved),
            camera_inside=inside,
            ground_gap=ground,
            overlaps=box_overlaps(scene.solid_boxes()),
            sound_volume=scene.sound_volume,
            image=image,
            mask=mask,
        )

    def check_hierarchy(self, hierarchy: Any, scenes: Mapping[str, Any]
                        ) -> tuple[list[StepMeasure], list[Finding]]:
        """Measure every step at intensity 0 and 1; findings sorted errors first."""
        spec = scenes[hierarchy.scene]
        steps: list[StepMeasure] = []
        findings: list[Finding] = []
        for index, step in enumerate(hierarchy.steps):
            ends = []
            for level in (0.0, 1.0):
                m = self.measure(hierarchy.scene, hierarchy.step_params(index, level, scenes))
                findings += frame_findings(step.id, level, m, spec.stimulus_floor_deg,
                                           spec.has_stimulus)
                ends.append(m)
            low, high = ends
            assert low.image is not None and high.image is not None
            measure = StepMeasure(index, step.id, step.label, step.expected_suds, low, high,
                                  picture_rmse(low.image, high.image), stimulus_change(low, high))
            if not self.keep_images:
                low.image = high.image = low.mask = high.mask = None
            findings += step_findings(measure, spec.has_stimulus)
            steps.append(measure)
        if spec.has_stimulus:
            findings += graded_findings(steps)
        findings.sort(key=lambda f: f.severity != "error")
        return steps, findings
