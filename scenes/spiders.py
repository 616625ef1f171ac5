"""Spiders: a living room where spiders sit, walk and approach the seated patient.

All spiders' moving parts (cephalothorax with eyes, abdomen, 8 legs of femur, tibia
and knee band) share one :class:`~vrexposure.render.batch.RigidBatch` and their soft
shadows another: two draw calls instead of ~28 Panda3D nodes per spider, each of
which cost cull time and a draw call on the software renderer. The walk and the gait
are computed for all spiders × legs at once with numpy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from vrexposure.render.scene_base import DEFAULT_EASE_TIME_S, SceneBase
from vrexposure.scene_api import (
    EventSpec,
    ParamValue,
    SceneSpec,
    bool_param,
    choice_param,
    float_param,
    int_param,
)

if TYPE_CHECKING:
    from panda3d.core import NodePath

    from vrexposure.render.geometry import MeshBuilder

Floats = NDArray[np.float64]

MAX_SPIDERS = 20
# Spiders per batch set (see _SpiderBatches): most steps show one spider, the top step 20.
BATCH_CAPACITIES = (1, 6, MAX_SPIDERS)
ROOM_X, ROOM_Y0, ROOM_Y1, ROOM_H = 2.6, -1.5, 6.0, 2.6
TANK_W, TANK_D, TANK_H = 0.7, 0.45, 0.42  # terrarium (m)
TANK_FLOOR_M = 0.08  # top of the substrate the contained spiders walk on
# Rug (m): spiders walk on it, not buried in it (a 3 cm spider is lower than the rug).
RUG_X, RUG_Y0, RUG_Y1, RUG_TOP_M = 1.1, 0.4, 3.2, 0.014
RUG_RAMP_M = 0.03  # a spider climbs onto the rug over this much of its path
# Approaching spiders (on the floor) walk loops reaching out 2 * APPROACH_OUT_M beyond
# their anchor and APPROACH_SIDE_M sideways; the group's spread shrinks by APPROACH_TIGHTEN.
APPROACH_OUT_M, APPROACH_SIDE_M, APPROACH_TIGHTEN = 0.35, 0.2, 0.8

# Spider model space: +Y forward, 1 unit = leg span (scaled by size_cm / 100 to metres).
# Leg base headings (degrees from forward) of the four legs on the left side.
LEG_ANGLES = (38.0, 72.0, 108.0, 148.0)
LEGS = 2 * len(LEG_ANGLES)
FEMUR_LEN, TIBIA_LEN = 0.3, 0.42  # the tibia and the knee band hang from the femur's end
HIP_Z = 0.07
HIP_PITCH_DEG, KNEE_PITCH_DEG = 38.0, -95.0  # resting pose: femur up, tibia down
SWING_DEG, LIFT_DEG = 14.0, 14.0  # gait: leg swing forward/back, lift while stepping
STRIDE = 0.45  # model units walked per gait cycle
BOB = 0.02  # body bob amplitude (model units)
_TIP_Z = (
    HIP_Z
    + FEMUR_LEN * math.sin(math.radians(HIP_PITCH_DEG))
    + TIBIA_LEN * math.sin(math.radians(HIP_PITCH_DEG + KNEE_PITCH_DEG))
)
# The body stands on its legs: resting leg tips on the floor, not 10 % of the span
# below it (which hid the tips and made the spider look smaller than its size).
BODY_LIFT = -_TIP_Z - 0.01

# species -> (leg radius, abdomen scale, cephalothorax scale, body rgb, leg rgb, band rgb)
SPECIES: dict[
    str,
    tuple[
        float,
        float,
        float,
        tuple[float, float, float],
        tuple[float, float, float],
        tuple[float, float, float],
    ],
] = {
    # Body and leg colours are multiplied by the hair texture (fuzz_image: ~0.45 ground,
    # light strands); the knee bands are not (plain).
    "house": (0.011, 0.85, 0.8, (0.72, 0.53, 0.34), (0.77, 0.58, 0.38), (0.3, 0.22, 0.14)),
    "wolf": (0.019, 1.05, 1.0, (0.51, 0.43, 0.32), (0.56, 0.46, 0.34), (0.2, 0.16, 0.12)),
    "tarantula": (0.03, 1.3, 1.15, (0.14, 0.12, 0.11), (0.2, 0.17, 0.15), (0.85, 0.45, 0.12)),
}


# The seated patient's right hand resting on the right knee (shown with "on_hand"), and
# the way the nearest spider walks onto it: over the floor, onto the shoe, up the shin,
# over the knee onto the back of the hand (x, y, z in m; the eye is above the origin).
HAND_PATH_M = np.array([
    (0.16, 0.80, RUG_TOP_M),
    (0.16, 0.66, RUG_TOP_M),
    (0.16, 0.60, 0.10),
    (0.16, 0.51, 0.10),
    (0.16, 0.51, 0.47),
    (0.155, 0.45, 0.615),
    (0.14, 0.30, 0.665),
])
HAND_PATH_LEN_M = np.concatenate(
    [[0.0], np.cumsum(np.linalg.norm(np.diff(HAND_PATH_M, axis=0), axis=1))])
#: On the way to the hand the spider walks no faster than this (m/s); then it sits and
#: turns. At the cut into the step it is already this far along (on the patient's shoe).
HAND_SPEED_M_S = 0.3
HAND_START_M = 0.2
#: Leg hairs: bristles per leg part (thin double-sided triangles, part of the leg shape).
LEG_HAIRS = 4
#: A texel of the hair texture that is plain white (parts that must keep their colour).
FUZZ_PLAIN_UV = (0.5 / 64, 1.0 - 0.5 / 64)


def hand_path_point(s_m: float) -> tuple[NDArray[np.float64], float]:
    """Where along HAND_PATH_M the spider stands ``s_m`` metres in, and its pitch (deg, up +)."""
    s_m = min(max(s_m, 0.0), float(HAND_PATH_LEN_M[-1]))
    found = int(np.searchsorted(HAND_PATH_LEN_M, s_m, "right")) - 1
    k = min(len(HAND_PATH_M) - 2, found)
    a, b = HAND_PATH_M[k], HAND_PATH_M[k + 1]
    t = (s_m - HAND_PATH_LEN_M[k]) / max(1e-9, HAND_PATH_LEN_M[k + 1] - HAND_PATH_LEN_M[k])
    d = b - a
    pitch = math.degrees(math.atan2(float(d[2]), float(math.hypot(d[0], d[1]))))
    return a + t * d, pitch


def _spider_layout(index: int) -> tuple[float, float, float, float]:
    """Deterministic per-spider (spread m, angle deg, loop phase, tank u/v mix) values."""
    golden = (index * 0.618034) % 1.0
    spread = 0.0 if index == 0 else 0.3 + 1.7 * ((index * 0.37) % 1.0)
    angle = 8.0 if index == 0 else (golden - 0.5) * 70.0
    return spread, angle, (index * 2.39996) % (2 * math.pi), golden


# Per-spider constants (arrays over spiders).
_INDEX = np.arange(MAX_SPIDERS)
_SPREAD_M, _ANGLE_DEG, _LOOP_PHASE, _TANK_MIX = np.array(
    [_spider_layout(i) for i in range(MAX_SPIDERS)]
).T
_VARIETY = np.where(_INDEX > 0, 0.75 + 0.5 * ((_INDEX * 0.53) % 1.0), 1.0)  # size factor
_REST_TURN_DEG = (_INDEX * 47 % 80 - 40).astype(np.float64)  # resting heading offset
_TANK_V_M = (((_INDEX * 0.41) % 1.0) - 0.5) * (TANK_D - 0.16)
# Per-leg constants (arrays over the 8 legs: one side front to back, then the other).
_LEG_SIDE = np.repeat([1.0, -1.0], len(LEG_ANGLES))
_LEG_ANGLE = np.radians(np.tile(LEG_ANGLES, 2))
_LEG_BASE_DEG = _LEG_SIDE * np.degrees(_LEG_ANGLE)
_HIP_POS = np.stack(
    [
        0.045 * _LEG_SIDE * np.sin(_LEG_ANGLE),
        0.05 + 0.045 * np.cos(_LEG_ANGLE),
        np.full(LEGS, HIP_Z),
    ],
    axis=1,
)
# Alternating tetrapod gait: neighbouring legs, and the two legs of a pair, step in
# opposite phase.
_LEG_PHASE = np.pi * ((np.tile(np.arange(len(LEG_ANGLES)), 2) + (_LEG_SIDE > 0)) % 2)


def _anchors(dist_m: float, contained: float, approach: float) -> tuple[Floats, Floats]:
    """Where each spider's walking loop is anchored (x, y in m), on the floor or in the tank."""
    # Approaching spiders close in on the patient: the group tightens around `dist_m`.
    r = dist_m + _SPREAD_M * (1.0 - APPROACH_TIGHTEN * approach)
    a = np.radians(_ANGLE_DEG * (0.6 + 0.4 / max(dist_m, 0.5)))
    fx, fy = r * np.sin(-a) + 0.12, r * np.cos(a)
    tx = np.where(_INDEX > 0, (_TANK_MIX - 0.5) * (TANK_W - 0.16), 0.0)
    ty = np.where(_INDEX > 0, dist_m + TANK_D / 2 + _TANK_V_M, dist_m + 0.12)
    return fx * (1 - contained) + tx * contained, fy * (1 - contained) + ty * contained


def _floor_height(x: Floats, y: Floats, contained: float) -> Floats:
    """Height (m) of what each spider stands on: floor, rug or the terrarium substrate."""
    inside_m = np.minimum(np.minimum(x + RUG_X, RUG_X - x), np.minimum(y - RUG_Y0, RUG_Y1 - y))
    rug = RUG_TOP_M * np.clip((inside_m + RUG_RAMP_M) / RUG_RAMP_M, 0.0, 1.0)
    return rug * (1 - contained) + TANK_FLOOR_M * contained


def _leg_angles(gait: Floats, walking: NDArray[np.bool_]) -> tuple[Floats, Floats, Floats]:
    """Hip heading, hip pitch and knee pitch (degrees, spiders × legs) for the gait phases."""
    phase = gait[:, None] + _LEG_PHASE[None, :]
    swing = np.sin(phase) * SWING_DEG
    lift = np.where(walking[:, None], np.maximum(0.0, np.cos(phase)) * LIFT_DEG, 0.0)
    return _LEG_BASE_DEG + swing, HIP_PITCH_DEG + lift, KNEE_PITCH_DEG - 0.6 * lift


@dataclass
class _Swarm:
    """Walking state of every spider (arrays over spiders)."""

    loop_phase: Floats  # rad, position along each spider's walking loop
    gait: Floats  # rad, leg cycle
    pos: Floats  # (spiders, 3) m, where the spider stands
    heading_deg: Floats
    placed: NDArray[np.bool_]  # has a position from a previous frame

    @classmethod
    def at_rest(cls, approach: float = 0.0) -> _Swarm:
        """Spiders at their starting points; approaching ones at the far end of their loop."""
        return cls(
            (_LOOP_PHASE + math.pi * approach) % (2 * math.pi),
            (_INDEX * 0.7).astype(np.float64),
            np.zeros((MAX_SPIDERS, 3)),
            np.full(MAX_SPIDERS, 180.0),
            np.zeros(MAX_SPIDERS, bool),
        )


def _scale_rows(mats: NDArray[np.float32], radius: float, length: float) -> NDArray[np.float32]:
    """``mats`` with a (radius, length, radius) scale applied first (a tube along +Y)."""
    out = mats.copy()
    out[..., 0, :] *= radius
    out[..., 1, :] *= length
    out[..., 2, :] *= radius
    return out


# Special cases of pos_hpr_scale_mats for the per-frame poses: ~6x cheaper than the
# general heading/pitch/roll path, which matters at 90 frames a second.
def _heading_mats(pos: Floats, heading_deg: Floats, scale: Floats) -> NDArray[np.float32]:
    """(n, 4, 4): uniform ``scale``, turn by ``heading_deg`` about Z, move to ``pos``."""
    h = np.radians(heading_deg)
    c, s = np.cos(h) * scale, np.sin(h) * scale
    m = np.zeros((len(h), 4, 4), np.float32)
    m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1] = c, s, -s, c
    m[:, 2, 2] = scale
    m[:, 3, :3] = pos
    m[:, 3, 3] = 1.0
    return m


def _knee_mats(pitch_deg: Floats) -> NDArray[np.float32]:
    """(…, 4, 4): a knee at the femur's end (+Y), bent by ``pitch_deg`` about X."""
    p = np.radians(pitch_deg)
    c, s = np.cos(p), np.sin(p)
    m = np.zeros((*p.shape, 4, 4), np.float32)
    m[..., 0, 0] = 1.0
    m[..., 1, 1], m[..., 1, 2], m[..., 2, 1], m[..., 2, 2] = c, s, -s, c
    m[..., 3, 1] = FEMUR_LEN
    m[..., 3, 3] = 1.0
    return m


def _pos_scale_mat(pos: tuple[float, float, float], scale: float) -> NDArray[np.float32]:
    """Row-vector matrix of a uniform ``scale`` then a move to ``pos`` (no rotation)."""
    m = np.diag(np.array([scale, scale, scale, 1.0], np.float32))
    m[3, :3] = pos
    return m


def _spider_shapes() -> dict[str, MeshBuilder]:
    """Spider part shapes in their own space, white (tinted per species by the batch)."""
    from vrexposure.render import geometry as g

    shapes = {name: g.MeshBuilder() for name in ("ceph", "abdomen", "leg", "band", "shadow")}
    shapes["ceph"].sphere((0.075, 0.09, 0.05), (1, 1, 1, 1), rings=6, segments=10)
    shapes["ceph"].sphere(
        (0.03, 0.03, 0.02), (1, 1, 1, 1), rings=3, segments=6, center=(0, 0.09, 0.0)
    )
    shapes["abdomen"].sphere((0.1, 0.14, 0.09), (1, 1, 1, 1), rings=7, segments=12)
    # Eyes ride on the cephalothorax: near-black vertices, tinted like it (as before).
    # Not shiny any more: a material needs a Geom of its own, and its batch update cost
    # ~0.4 ms a frame for specular highlights of a pixel or two. Few vertices: an eye
    # is a few pixels wide at most, and every vertex is rewritten every frame.
    for x, y, z, r in (
        (-0.022, 0.088, 0.025, 0.012),
        (0.022, 0.088, 0.025, 0.012),
        (-0.045, 0.07, 0.03, 0.008),
        (0.045, 0.07, 0.03, 0.008),
    ):
        shapes["ceph"].sphere(r, (0.02, 0.02, 0.02, 1), rings=2, segments=5, center=(x, y, z))
    # Femur and tibia: one unit tube along +Y (one template is cheaper to update than
    # two), scaled per part to its length and to the species' leg radius. No end caps
    # (half a tube's vertices): the ends sit in the body, in the knee band or on the floor.
    shapes["leg"].tube((0, 0, 0), (0, 1, 0), 1.0, 0.75, (1, 1, 1, 1), segments=6, caps=False)
    _add_leg_hairs(shapes["leg"])
    band = g.MeshBuilder()
    band.tube((0, -0.02, 0), (0, 0.05, 0), 1.25, 1.2, (1, 1, 1, 1), segments=6)
    rows, tris = band.arrays()
    rows[:, 10:12] = FUZZ_PLAIN_UV  # one plain white texel: the bands stay their colour
    shapes["band"].add_rows(rows, tris)
    shapes["shadow"].quad(
        [(-0.4, -0.45, 0.004), (0.4, -0.45, 0.004), (0.4, 0.35, 0.004), (-0.4, 0.35, 0.004)],
        (0.0, 0.0, 0.0, 0.55),
    )
    return shapes


def _add_leg_hairs(leg: MeshBuilder) -> None:
    """Bristles on the unit leg tube (radius 1 at y 0, 0.75 at y 1): thin triangles that
    stand out of it, slanted towards the tip, both sides drawn. A hairy silhouette; being
    part of the leg's shape they cost vertices, not draw calls."""
    rng = np.random.default_rng(23)
    pos, nrm, tris = [], [], []
    for k in range(LEG_HAIRS):
        a = rng.uniform(0, 2 * math.pi) if k else 0.0
        y = (k + 0.5) / LEG_HAIRS
        r = 1.0 - 0.25 * y
        out = np.array([math.cos(a), 0.0, math.sin(a)])
        side = np.array([-math.sin(a), 0.0, math.cos(a)])
        base = out * r + np.array([0.0, y, 0.0])
        tip = out * r * rng.uniform(2.0, 2.8) + np.array([0.0, y + 0.12, 0.0])
        pos += [base - 0.25 * side, base + 0.25 * side, tip]
        nrm += [out, out, out]
        i = 3 * k
        tris += [(i, i + 1, i + 2), (i, i + 2, i + 1)]
    leg.add(np.asarray(pos), np.asarray(nrm), np.zeros((len(pos), 2)), np.asarray(tris))


def fuzz_image(size: int = 64, seed: int = 29) -> NDArray[np.uint8]:
    """Hair over a spider's legs and body (white multiplier): short light strands along
    the legs (v) on a darker ground, so that a dark tarantula reads as hairy up close."""
    rng = np.random.default_rng(seed)
    gray = np.full((size, size), 0.45)
    for _ in range(220):
        x, y = rng.uniform(0, size), rng.uniform(0, size)
        dx, length = rng.uniform(-0.35, 0.35), rng.uniform(4, 10)
        level = rng.uniform(0.75, 1.0)
        for k in range(int(length)):
            gray[int(y + k) % size, int(x + dx * k) % size] = level
    gray[:2, :2] = 1.0  # plain white at FUZZ_PLAIN_UV (row 0 is the top: v = 1)
    img = (np.clip(gray, 0, 1) * 255).astype(np.uint8)
    return np.dstack([img, img, img])


class _SpiderBatches:
    """All moving parts of the first ``capacity`` spiders: two batches, two draw calls.

    A batch rewrites every vertex each frame, shown spiders or not, so the scene keeps
    sets for a few spiders and for all of them and draws the smallest that fits.
    """

    def __init__(self, parent: NodePath, shapes: dict[str, MeshBuilder], capacity: int) -> None:
        from vrexposure.render import geometry as g
        from vrexposure.render.batch import RigidBatch

        self.capacity = n = capacity
        self.node = parent.attachNewNode(f"spiders-{n}")
        # Part ids are handed out in order, so each block is one contiguous range of the
        # matrices passed to update(): ceph, abdomen, femurs, tibias, bands (spider-major).
        self.body = RigidBatch("spider-bodies")
        for name, parts in (
            ("ceph", n),
            ("abdomen", n),
            ("leg", 2 * n * LEGS),  # femurs then tibias
            ("band", n * LEGS),
        ):
            template = self.body.add_template(shapes[name], name)
            for _ in range(parts):
                self.body.add_part(template)
        self.body.attach(self.node).setTexture(
            g.texture_from_array("spider-fuzz", fuzz_image()))
        self.shadows = RigidBatch("spider-shadows")  # blended and unlit
        template = self.shadows.add_template(shapes["shadow"], "shadow")
        for _ in range(n):
            self.shadows.add_part(template)
        shadows = self.shadows.attach(self.node)
        shadows.setTexture(g.radial_texture(32, 1.2))
        g.set_transparent(shadows)
        g.set_unlit(shadows)
        self.colors_key: tuple[float, ...] | None = None  # species colours last written

    def update(
        self,
        body_mats: NDArray[np.float32],
        shadow_mats: NDArray[np.float32],
        rgb: tuple[tuple[float, float, float], ...],
    ) -> None:
        """Move every part; ``rgb`` = (body, abdomen, leg, band) colours."""
        n = self.capacity
        key = tuple(c for color in rgb for c in color)
        if key == self.colors_key:  # colours change only while the species cross-fades
            self.body.update(body_mats)
        else:
            self.colors_key = key
            body, abdomen, leg, band = ((*c, 1.0) for c in rgb)
            colors = np.concatenate(
                [
                    np.tile(body, (n, 1)),
                    np.tile(abdomen, (n, 1)),
                    np.tile(leg, (2 * n * LEGS, 1)),  # femur and tibia
                    np.tile(band, (n * LEGS, 1)),
                ]
            )
            self.body.update(body_mats, colors)
        self.shadows.update(shadow_mats)


class SpidersScene(SceneBase):
    """Living room; spiders on the floor or in a terrarium, walking with a tetrapod gait."""

    near_far = (0.02, 60.0)
    background_color = (0.1, 0.1, 0.1)

    def __init__(self, spec: SceneSpec | None = None, ease_time_s: float = DEFAULT_EASE_TIME_S):
        super().__init__(spec or SCENE, ease_time_s)
        self._swarm = _Swarm.at_rest()
        self._present_names = [f"present{i}" for i in range(MAX_SPIDERS)]
        self._nearest: tuple[float, float, float] | None = None
        self._hand_s_m = HAND_START_M  # how far the nearest spider walked towards the hand
        self._hand_pitch_deg = 0.0

    def channel_targets(self, params: Any) -> dict[str, float]:
        targets = super().channel_targets(params)
        leg_r, abd, ceph, body, leg, band = SPECIES[str(params["species"])]
        targets.update({"leg_r": leg_r, "abd": abd, "ceph": ceph})
        for i, c in enumerate("rgb"):
            targets[f"body_{c}"], targets[f"legc_{c}"], targets[f"band_{c}"] = (
                body[i],
                leg[i],
                band[i],
            )
        count = int(params["count"])
        for i in range(MAX_SPIDERS):
            targets[f"present{i}"] = 1.0 if i < count else 0.0
        return targets

    # -- building ------------------------------------------------------------------------

    def build(self, parent: NodePath) -> None:
        from vrexposure.render import geometry as g

        room = parent.attachNewNode("room")
        self._build_room(room)
        self._build_tank(parent)
        self._build_spiders(parent)
        self._build_patient(parent)

        self._ambient = g.ambient_light(parent, (0.4, 0.38, 0.36))
        self._sun = g.sun_light(parent, (0.9, 0.88, 0.8), (160, -35, 0))
        self._lamp = g.point_light(
            parent, (1.0, 0.8, 0.55), (1.9, 4.8, 1.55), (1.0, 0.0, 0.12), "floor-lamp"
        )

    def _build_room(self, room: NodePath) -> None:
        """Floor, rug, walls and furniture (flattened, never change) and the window."""
        from vrexposure.render import geometry as g

        static = room.attachNewNode("static")

        floor = g.MeshBuilder()
        floor.quad(
            [
                (-ROOM_X, ROOM_Y0, 0),
                (ROOM_X, ROOM_Y0, 0),
                (ROOM_X, ROOM_Y1, 0),
                (-ROOM_X, ROOM_Y1, 0),
            ],
            (1, 1, 1, 1),
            uv_m=0.8,
            subdiv=(10, 14),
        )
        node = floor.attach(static, "floor")
        node.setTexture(g.planks_texture((0.62, 0.45, 0.3)))
        rug = g.MeshBuilder()
        # A light field (dark spiders stand out on it) in a dark woven border.
        rug.box(
            (-RUG_X, RUG_Y0, 0.0), (RUG_X, RUG_Y1, RUG_TOP_M - 0.002), (0.5, 0.24, 0.2, 1), uv_m=0.6
        )
        rug.box(
            (-RUG_X + 0.12, RUG_Y0 + 0.12, 0.0),
            (RUG_X - 0.12, RUG_Y1 - 0.12, RUG_TOP_M),
            (1.0, 1.0, 1.0, 1),
            faces="Z",
            uv_m=0.55,
        )
        rug.attach(static, "rug").setTexture(
            g.rug_texture((0.88, 0.82, 0.7), (0.7, 0.48, 0.4), 9))

        walls = g.MeshBuilder()
        wall = (0.86, 0.8, 0.7, 1)
        walls.quad(
            [
                (-ROOM_X, ROOM_Y1, 0),
                (ROOM_X, ROOM_Y1, 0),
                (ROOM_X, ROOM_Y1, ROOM_H),
                (-ROOM_X, ROOM_Y1, ROOM_H),
            ],
            wall,
            uv_m=1.0,
            normal=(0, -1, 0),
            subdiv=(6, 3),
        )
        walls.quad(
            [
                (-ROOM_X, ROOM_Y0, 0),
                (-ROOM_X, ROOM_Y1, 0),
                (-ROOM_X, ROOM_Y1, ROOM_H),
                (-ROOM_X, ROOM_Y0, ROOM_H),
            ],
            g.shade(wall, 0.95),
            uv_m=1.0,
            subdiv=(8, 3),
        )
        walls.quad(
            [
                (ROOM_X, ROOM_Y1, 0),
                (ROOM_X, ROOM_Y0, 0),
                (ROOM_X, ROOM_Y0, ROOM_H),
                (ROOM_X, ROOM_Y1, ROOM_H),
            ],
            g.shade(wall, 0.95),
            uv_m=1.0,
            subdiv=(8, 3),
        )
        walls.quad(
            [
                (ROOM_X, ROOM_Y0, 0),
                (-ROOM_X, ROOM_Y0, 0),
                (-ROOM_X, ROOM_Y0, ROOM_H),
                (ROOM_X, ROOM_Y0, ROOM_H),
            ],
            wall,
            uv_m=1.0,
        )
        walls.quad(
            [
                (-ROOM_X, ROOM_Y0, ROOM_H),
                (-ROOM_X, ROOM_Y1, ROOM_H),
                (ROOM_X, ROOM_Y1, ROOM_H),
                (ROOM_X, ROOM_Y0, ROOM_H),
            ],
            (0.95, 0.94, 0.9, 1),
            uv_m=1.0,
            normal=(0, 0, -1),
            subdiv=(4, 6),
        )
        node = walls.attach(static, "walls")
        node.setTexture(g.noise_texture(41, (0.9, 0.9, 0.9), (1.0, 1.0, 1.0), 8, 128))

        wood = (0.35, 0.22, 0.13, 1)
        trim = g.MeshBuilder()
        white = (0.95, 0.94, 0.9, 1)
        trim.box((-ROOM_X, ROOM_Y1 - 0.02, 0), (ROOM_X, ROOM_Y1, 0.1), white)
        trim.box((-ROOM_X, ROOM_Y0, 0), (-ROOM_X + 0.02, ROOM_Y1, 0.1), white)
        trim.box((ROOM_X - 0.02, ROOM_Y0, 0), (ROOM_X, ROOM_Y1, 0.1), white)
        # Window in the back wall, with sky, frame and curtains.
        trim.box((-1.35, ROOM_Y1 - 0.06, 0.85), (0.35, ROOM_Y1 - 0.02, 2.25), white)
        for x in (-1.45, 0.35):
            trim.box(
                (x, ROOM_Y1 - 0.16, 0.7), (x + 0.28, ROOM_Y1 - 0.06, 2.4), (0.3, 0.42, 0.38, 1)
            )
        trim.box((-1.5, ROOM_Y1 - 0.1, 2.4), (0.7, ROOM_Y1 - 0.06, 2.45), wood)
        # Bookshelf right of the window.
        trim.box((1.0, ROOM_Y1 - 0.35, 0), (2.2, ROOM_Y1 - 0.02, 2.0), wood)
        rng = np.random.default_rng(3)
        for shelf in range(5):
            z = 0.08 + shelf * 0.38
            trim.box(
                (1.04, ROOM_Y1 - 0.36, z), (2.16, ROOM_Y1 - 0.34, z + 0.03), g.shade(wood, 1.2)
            )
            x = 1.07
            while x < 2.1:
                w = float(rng.uniform(0.03, 0.06))
                h = float(rng.uniform(0.22, 0.32))
                col = g.shade(
                    (
                        (0.6, 0.15, 0.12),
                        (0.15, 0.3, 0.5),
                        (0.2, 0.4, 0.25),
                        (0.8, 0.7, 0.5),
                        (0.3, 0.3, 0.3),
                    )[int(rng.integers(0, 5))],
                    float(rng.uniform(0.7, 1.1)),
                )
                trim.box(
                    (x, ROOM_Y1 - 0.32, z + 0.03), (min(x + w, 2.14), ROOM_Y1 - 0.1, z + h), col
                )
                x += w + 0.004
        # Sofa along the left wall.
        fabric = (0.28, 0.36, 0.46, 1)
        trim.box((-ROOM_X + 0.05, 1.2, 0.1), (-ROOM_X + 0.95, 3.6, 0.45), fabric)
        trim.box((-ROOM_X + 0.05, 1.2, 0.1), (-ROOM_X + 0.3, 3.6, 0.95), g.shade(fabric, 0.9))
        trim.box((-ROOM_X + 0.05, 1.0, 0.1), (-ROOM_X + 0.95, 1.2, 0.7), g.shade(fabric, 0.85))
        trim.box((-ROOM_X + 0.05, 3.6, 0.1), (-ROOM_X + 0.95, 3.8, 0.7), g.shade(fabric, 0.85))
        for y in (1.3, 2.45):
            trim.box(
                (-ROOM_X + 0.3, y, 0.45), (-ROOM_X + 0.93, y + 1.1, 0.56), g.shade(fabric, 1.1)
            )
        for y in (1.05, 3.75):
            trim.box((-ROOM_X + 0.1, y - 0.04, 0), (-ROOM_X + 0.16, y + 0.02, 0.1), wood)
        trim.sphere((0.07, 0.22, 0.2), (0.85, 0.65, 0.3, 1), center=(-ROOM_X + 0.42, 1.7, 0.68))
        # Sideboard on the right with a plant, floor lamp in the corner.
        trim.box((ROOM_X - 0.5, 1.6, 0.0), (ROOM_X - 0.02, 3.4, 0.8), g.shade(wood, 1.3))
        trim.box((ROOM_X - 0.52, 1.58, 0.8), (ROOM_X - 0.02, 3.42, 0.83), g.shade(wood, 1.1))
        for y in (2.05, 2.95):
            trim.box(
                (ROOM_X - 0.52, y - 0.01, 0.35), (ROOM_X - 0.5, y + 0.01, 0.55), (0.7, 0.6, 0.4, 1)
            )
        trim.cylinder(
            0.1, 0.22, (0.75, 0.4, 0.3, 1), g.transform((ROOM_X - 0.26, 3.0, 0.83)), top_radius=0.13
        )
        for k in range(7):
            a = k * 0.9
            trim.sphere(
                (0.09, 0.09, 0.16),
                (0.2, 0.45, 0.2, 1),
                rings=5,
                segments=8,
                center=(
                    ROOM_X - 0.26 + 0.1 * math.cos(a),
                    3.0 + 0.1 * math.sin(a),
                    1.15 + 0.05 * (k % 3),
                ),
            )
        trim.cylinder(0.15, 0.03, (0.2, 0.2, 0.2, 1), g.transform((1.9, 4.8, 0)))
        trim.cylinder(0.015, 1.45, (0.2, 0.2, 0.2, 1), g.transform((1.9, 4.8, 0)))
        # Frames on the left wall.
        frames: list[tuple[float, float, float, float, tuple[float, float, float]]] = [
            (2.0, 1.45, 0.6, 0.45, (0.5, 0.6, 0.75)),
            (3.0, 1.55, 0.4, 0.55, (0.75, 0.55, 0.4)),
        ]
        for y, z, w, h, tone in frames:
            trim.box(
                (-ROOM_X + 0.02, y - w / 2, z - h / 2),
                (-ROOM_X + 0.05, y + w / 2, z + h / 2),
                (0.15, 0.12, 0.1, 1),
            )
            trim.box(
                (-ROOM_X + 0.05, y - w / 2 + 0.05, z - h / 2 + 0.05),
                (-ROOM_X + 0.055, y + w / 2 - 0.05, z + h / 2 - 0.05),
                (tone[0], tone[1], tone[2], 1.0),
                faces="X",
            )
        trim.attach(static, "furniture")

        glow = g.MeshBuilder()
        glow.cylinder(
            0.22, 0.3, (1.0, 0.92, 0.75, 1), g.transform((1.9, 4.8, 1.4)), top_radius=0.15
        )
        g.set_unlit(glow.attach(static, "lamp-shade"))
        # One node with one Geom per render state (planks, fabric, walls, furniture, glow):
        # nothing under it moves or is recoloured, so culling and state sorting happen once.
        static.flattenStrong()
        sky = g.MeshBuilder()
        sky.quad(
            [
                (-1.3, ROOM_Y1 - 0.07, 0.9),
                (0.3, ROOM_Y1 - 0.07, 0.9),
                (0.3, ROOM_Y1 - 0.07, 2.2),
                (-1.3, ROOM_Y1 - 0.07, 2.2),
            ],
            lambda p: _sky_colors(p),
            normal=(0, -1, 0),
            subdiv=(1, 4),
        )
        sky.box((-0.52, ROOM_Y1 - 0.08, 0.9), (-0.48, ROOM_Y1 - 0.065, 2.2), (0.95, 0.95, 0.92, 1))
        sky.box((-1.3, ROOM_Y1 - 0.08, 1.53), (0.3, ROOM_Y1 - 0.065, 1.57), (0.95, 0.95, 0.92, 1))
        self._window = sky.attach(room, "window")  # recoloured with the light level
        g.set_unlit(self._window)

    def _build_tank(self, parent: NodePath) -> None:
        """The terrarium (frame, substrate, glass) at the origin; animate() places it."""
        from vrexposure.render import geometry as g

        tank = parent.attachNewNode("terrarium")
        frame = g.MeshBuilder()
        w, d, h = TANK_W / 2, TANK_D / 2, TANK_H
        dark = (0.08, 0.08, 0.09, 1)
        frame.box((-w - 0.03, -d - 0.03, 0), (w + 0.03, d + 0.03, 0.05), (0.25, 0.18, 0.12, 1))
        frame.box((-w, -d, 0.05), (w, d, 0.08), (0.42, 0.3, 0.18, 1))  # substrate
        for x in (-w, w - 0.015):
            for y in (-d, d - 0.015):
                frame.box((x, y, 0.05), (x + 0.015, y + 0.015, 0.05 + h), dark)
        for z in (0.05 + h - 0.015,):
            frame.box((-w, -d, z), (w, -d + 0.015, z + 0.015), dark)
            frame.box((-w, d - 0.015, z), (w, d, z + 0.015), dark)
            frame.box((-w, -d, z), (-w + 0.015, d, z + 0.015), dark)
            frame.box((w - 0.015, -d, z), (w, d, z + 0.015), dark)
        frame.box((-w, -d, 0.05 + h), (w, d, 0.06 + h), (0.15, 0.15, 0.15, 1), faces="Zz")
        frame.sphere((0.08, 0.06, 0.04), (0.45, 0.42, 0.38, 1), center=(0.18, 0.08, 0.08))
        frame.tube((-0.25, 0.12, 0.08), (-0.05, 0.05, 0.2), 0.015, 0.01, (0.35, 0.25, 0.15, 1))
        frame.attach(tank, "frame")
        glass = g.MeshBuilder()
        glass.box((-w, -d, 0.05), (w, d, 0.05 + h), (0.75, 0.88, 0.92, 0.22), faces="xXyY")
        gnode = glass.attach(tank, "glass")
        g.set_transparent(gnode)
        g.set_shiny(gnode, 0.9, 80)
        gnode.setTwoSided(True)
        tank.flattenStrong()  # frame + glass: one node, moved and faded as a whole
        self._tank = tank

    def _build_spiders(self, parent: NodePath) -> None:
        shapes = _spider_shapes()
        self._spiders = parent.attachNewNode("spiders")
        self._spiders.setTag("stimulus", "spiders")
        self._batch_sets = [_SpiderBatches(self._spiders, shapes, n) for n in BATCH_CAPACITIES]
        self._build_dropper(parent)

    def _build_patient(self, parent: NodePath) -> None:
        """The seated patient's legs, shoes and right forearm with the hand resting on the
        knee: what the spider of "on_hand" walks onto (shown only then: elsewhere the
        legs would hide spiders walking under the knees)."""
        from vrexposure.render import geometry as g

        trousers, shoe, sleeve = (0.22, 0.25, 0.33, 1), (0.12, 0.1, 0.09, 1), (0.5, 0.22, 0.2, 1)
        skin = (0.88, 0.7, 0.58, 1)
        body = g.MeshBuilder()
        for x in (-0.16, 0.16):
            body.box((x - 0.05, 0.37, RUG_TOP_M), (x + 0.05, 0.63, 0.09), shoe)
            body.tube((x, 0.45, 0.08), (x, 0.44, 0.5), 0.05, 0.055, trousers, segments=10)
            body.sphere(0.068, trousers, center=(x, 0.43, 0.53), rings=5, segments=10)
            body.tube((x, 0.43, 0.53), (x, -0.2, 0.55), 0.07, 0.08, trousers, segments=10)
        body.tube((0.27, -0.15, 0.69), (0.16, 0.2, 0.665), 0.042, 0.036, sleeve, segments=10)
        body.sphere((0.045, 0.085, 0.02), skin, center=(0.14, 0.27, 0.645), rings=4,
                    segments=10)
        for k, x in enumerate((0.113, 0.131, 0.149, 0.167)):  # fingers over the knee
            body.tube((x, 0.33, 0.648), (x, 0.4 - 0.01 * abs(k - 1.5), 0.612), 0.0095, 0.008,
                      skin, segments=6)
        body.tube((0.1, 0.24, 0.645), (0.083, 0.31, 0.63), 0.011, 0.009, skin, segments=6)
        self._patient = body.attach(parent, "patient-hand")
        self._patient.hide()

    def _walk_onto_hand(self, dt_s: float, time_s: float, size_m: Floats,
                        walking: NDArray[np.bool_], gait0: float) -> None:
        """The "on_hand" walk of spider 0 along HAND_PATH_M (after _walk moved the others)."""
        sw = self._swarm
        speed = min(HAND_SPEED_M_S, max(0.02, self.v("speed_cm_s") / 100.0))
        before = self._hand_s_m
        self._hand_s_m = min(float(HAND_PATH_LEN_M[-1]), before + speed * dt_s)
        point, pitch = hand_path_point(self._hand_s_m)
        moved = self._hand_s_m - before
        arrived = self._hand_s_m >= HAND_PATH_LEN_M[-1] - 1e-6
        self._hand_pitch_deg = 0.0 if arrived else pitch
        sw.pos[0] = point
        # Facing the patient on the way; on the hand it sits and slowly turns about.
        sw.heading_deg[0] = 180.0 + (25.0 * math.sin(0.4 * time_s) if arrived else 0.0)
        sw.gait[0] = gait0 + moved / max(0.002, STRIDE * size_m[0]) * 2 * math.pi
        walking[0] = moved > 1e-5

    def _build_dropper(self, parent: NodePath) -> None:
        """The spider of the "drop" event: hangs from the ceiling on its thread (hidden)."""
        from vrexposure.render import geometry as g

        body = (0.16, 0.12, 0.09, 1)
        spider = g.MeshBuilder()
        spider.sphere((0.022, 0.028, 0.02), body, center=(0, -0.012, 0.0), rings=5, segments=8)
        spider.sphere((0.015, 0.017, 0.013), body, center=(0, 0.022, 0.004), rings=4, segments=7)
        for side in (-1, 1):  # eight legs, bent down at the knee as a hanging spider's are
            for k, angle in enumerate(LEG_ANGLES):
                a = math.radians(angle)
                hip = (side * 0.01, 0.02 - 0.012 * k, 0.0)
                knee = (side * 0.045 * math.sin(a), 0.05 * math.cos(a), 0.025)
                tip = (side * 0.075 * math.sin(a), 0.085 * math.cos(a), -0.02)
                spider.tube(hip, knee, 0.0025, 0.002, body)
                spider.tube(knee, tip, 0.002, 0.0012, body)
        thread = g.MeshBuilder()
        thread.tube((0, 0, 0), (0, 0, 1.0), 0.0006, 0.0006, (0.85, 0.85, 0.82, 1))
        root = parent.attachNewNode("dropping-spider")
        self._drop_spider = spider.attach(root, "spider")
        self._drop_spider.setTag("stimulus", "dropping spider")
        self._drop_spider.setP(-80)  # head up the thread, belly to the patient
        self._drop_thread = thread.attach(root, "thread")
        g.set_unlit(self._drop_thread)
        root.hide()
        self._dropper = root

    # -- animation ----------------------------------------------------------------------------

    def reset_motion(self) -> None:
        """A cut into this scene starts every spider at its resting place in its walk."""
        # Approaching spiders start far and walk in first, not away from the patient.
        self._swarm = _Swarm.at_rest(min(1.0, max(0.0, self.v("approach"))))
        self._hand_s_m = HAND_START_M

    def animate(self, dt_s: float, time_s: float) -> None:
        from vrexposure.render import geometry as g

        dist = self.v("distance_m")
        contained = min(1.0, max(0.0, self.v("contained")))
        approach = min(1.0, max(0.0, self.v("approach")))
        light = self.v("light_level")
        on_hand = self.v("on_hand") > 0.5
        self._patient.show() if on_hand else self._patient.hide()
        if not on_hand:
            self._hand_s_m = HAND_START_M

        self._tank.setPos(0, dist + TANK_D / 2 - 0.05, 0)
        glass_alpha = contained
        self._tank.setAlphaScale(glass_alpha)
        if glass_alpha < 0.02:
            self._tank.hide()
        else:
            self._tank.show()
            self._tank.setTransparency(glass_alpha < 0.99)

        present = np.array([self.v(name) for name in self._present_names])
        shown = present >= 0.02
        used = int(np.flatnonzero(shown)[-1]) + 1 if shown.any() else 0
        chosen = (
            next((bs for bs in self._batch_sets if bs.capacity >= used), None) if used else None
        )
        for batch_set in self._batch_sets:
            if batch_set is not chosen:
                batch_set.node.hide()  # hidden: no draw call, and not updated
        if chosen is not None:
            chosen.node.show()
            size_m = max(0.004, self.v("size_cm") / 100.0) * _VARIETY * present
            gait0 = float(self._swarm.gait[0])
            walking = self._walk(dt_s, shown, size_m, dist, contained, approach)
            if on_hand and shown[0]:
                self._walk_onto_hand(dt_s, time_s, size_m, walking, gait0)
            else:
                self._hand_pitch_deg = 0.0
            self._pose(chosen, time_s, shown, walking, size_m)
            sw = self._swarm
            nearest = int(np.argmin(np.where(shown, np.hypot(sw.pos[:, 0], sw.pos[:, 1]), np.inf)))
            x, y, z = sw.pos[nearest]
            self._nearest = (float(x), float(y), float(z + (BODY_LIFT + 0.1) * size_m[nearest]))
        else:
            self._nearest = None

        self._animate_drop()
        g.set_light_color(self._ambient, g.shade((0.42, 0.4, 0.38), 0.35 + 0.65 * light))
        g.set_light_color(self._sun, g.shade((0.95, 0.92, 0.82), light))
        g.set_light_color(self._lamp, g.shade((1.0, 0.78, 0.5), 0.9 - 0.5 * light))
        self._window.setColorScale(0.3 + 0.7 * light, 0.3 + 0.7 * light, 0.35 + 0.65 * light, 1)

    def _walk(
        self,
        dt_s: float,
        shown: NDArray[np.bool_],
        size_m: Floats,
        dist_m: float,
        contained: float,
        approach: float,
    ) -> NDArray[np.bool_]:
        """Advance the shown spiders along their loops; returns which ones are walking."""
        sw = self._swarm
        speed_m_s = max(0.0, self.v("speed_cm_s")) / 100.0
        ax, ay = _anchors(dist_m, contained, approach)
        out = np.arctan2(ay, ax)
        ox, oy = np.cos(out), np.sin(out)
        # Each spider walks a loop: out along `out` by up to 2*a_len and sideways by b_len.
        wander = 0.3 * (1 - contained) + 0.08 * contained
        out_m = APPROACH_OUT_M * (1 - contained) + 0.12 * contained
        side_m = APPROACH_SIDE_M * (1 - contained) + 0.1 * contained
        a_len = wander * (1 - approach) + out_m * approach
        b_len = wander * (1 - approach) + side_m * approach
        radius = max(0.05, (a_len + b_len) / 2)
        # Approaching spiders hurry back out and walk in slowly: most of the time inwards.
        inward = sw.loop_phase % (2 * math.pi) > math.pi
        rate = speed_m_s / radius * np.where(inward, 1.0, 1.0 + 1.5 * approach)
        phase = np.where(shown, (sw.loop_phase + rate * dt_s) % (2 * math.pi), sw.loop_phase)
        radial = a_len * (1 - np.cos(phase))
        side = b_len * np.sin(phase)
        x = ax + ox * radial - oy * side
        y = ay + oy * radial + ox * side
        dx, dy = x - sw.pos[:, 0], y - sw.pos[:, 1]
        moved = np.where(sw.placed, np.hypot(dx, dy), 0.0)
        walking = shown & (moved > 1e-5)
        target_h = np.where(
            walking,
            np.degrees(np.arctan2(-dx, dy)),
            np.degrees(np.arctan2(x, -y)) + _REST_TURN_DEG,  # at rest: roughly facing you
        )
        turn = (target_h - sw.heading_deg + 180) % 360 - 180
        ease = np.where(sw.placed, min(1.0, dt_s * 6.0), 1.0)
        sw.heading_deg = np.where(shown, sw.heading_deg + turn * ease, sw.heading_deg)
        sw.gait = sw.gait + np.where(
            shown, moved / np.maximum(0.002, STRIDE * size_m) * 2 * math.pi, 0.0
        )
        sw.loop_phase = phase
        sw.pos = np.where(
            shown[:, None], np.stack([x, y, _floor_height(x, y, contained)], axis=1), sw.pos
        )
        sw.placed = sw.placed | shown
        return walking

    def _pose(
        self,
        batches: _SpiderBatches,
        time_s: float,
        shown: NDArray[np.bool_],
        walking: NDArray[np.bool_],
        size_m: Floats,
    ) -> None:
        """Every part's matrix (as the node tree was: root > body > hip > knee) into batches."""
        from vrexposure.render.batch import compose, pos_hpr_scale_mats

        sw = self._swarm
        n = batches.capacity  # the spiders beyond are all hidden
        # root: on the floor, turned and scaled to the leg span; shadows hang here.
        root = _heading_mats(sw.pos[:n], sw.heading_deg[:n], size_m[:n])
        root[~shown[:n]] = 0.0  # a zero matrix collapses every part of a hidden spider
        if self._hand_pitch_deg:  # climbing the patient's shoe and shin: nose up
            root[0] = compose(pos_hpr_scale_mats((0, 0, 0), (0, self._hand_pitch_deg, 0)),
                              root[0])
        # body: raised onto its legs and bobbing (root's Z row is the scaled up axis).
        lift = BODY_LIFT + BOB * np.sin(time_s * 1.3 + _INDEX[:n])
        body = root.copy()
        body[:, 3, :3] += lift[:, None] * root[:, 2, :3]

        abd, ceph_scale, leg_r = self.v("abd"), self.v("ceph"), self.v("leg_r")
        ceph = compose(_pos_scale_mat((0.0, 0.05, 0.075), ceph_scale), body)
        abdomen = compose(_pos_scale_mat((0.0, -0.16, 0.1 * abd), abd), body)
        hip_h, hip_p, knee_p = _leg_angles(sw.gait[:n], walking[:n])
        leg_zeros = np.zeros((n, LEGS))
        hip = compose(
            pos_hpr_scale_mats(_HIP_POS, np.stack([hip_h, hip_p, leg_zeros], -1)),
            body[:, None],
        )
        knee = compose(_knee_mats(knee_p), hip)
        legs = (
            _scale_rows(hip, leg_r, FEMUR_LEN),
            _scale_rows(knee, 0.85 * leg_r, TIBIA_LEN),  # the tibia is thinner
            _scale_rows(knee, leg_r, 1.0),  # knee band
        )
        body_rgb = (self.v("body_r"), self.v("body_g"), self.v("body_b"))
        batches.update(
            np.concatenate([ceph, abdomen, *(m.reshape(-1, 4, 4) for m in legs)]),
            root,
            (
                body_rgb,
                (
                    min(1.0, body_rgb[0] * 1.15),
                    min(1.0, body_rgb[1] * 1.15),
                    min(1.0, body_rgb[2] * 1.15),
                ),
                (self.v("legc_r"), self.v("legc_g"), self.v("legc_b")),
                (self.v("band_r"), self.v("band_g"), self.v("band_b")),
            ),
        )

    def _animate_drop(self) -> None:
        """The "drop" event: a spider lets itself down from the ceiling in front of the face."""
        progress = self.event_progress("drop")
        if progress is None:
            self._dropper.hide()
            return
        self._dropper.show()
        top, low = ROOM_H - 0.01, 0.8  # from the ceiling to the patient's lap height
        fall = min(1.0, progress / 0.3)
        z = top - (top - low) * fall * fall * (3 - 2 * fall)  # down fast, then it hangs
        if progress > 0.8:  # and climbs back up its thread
            back = (progress - 0.8) / 0.2
            z = low + (top - low) * back * back
        bob = 0.015 * math.sin(self.time_s * 5.0) * (1.0 - abs(2 * fall - 1))
        x, y = 0.12, 0.85
        self._drop_spider.setPos(x, y, z + bob)
        self._drop_spider.setH(20 * math.sin(self.time_s * 0.7))
        self._drop_thread.setPos(x, y, z + bob + 0.03)
        self._drop_thread.setSz(max(0.001, top - z - bob))

    # -- engine queries --------------------------------------------------------------------------

    def stimulus_world_position(self) -> tuple[float, float, float] | None:
        if self._nearest is None or self.root is None:
            return None
        return self._nearest

    def view_hpr(self) -> tuple[float, float, float]:
        # Look at where the spiders move (from the nearest distance outwards), not at the
        # nearest point alone: at 0.5 m that would be the patient's feet and miss the rest.
        dist = max(0.9, self.v("distance_m") + 0.4)
        down = math.degrees(math.atan2(1.15, dist))
        if self.v("on_hand") > 0.5:  # down at the hand on the knee, the spiders beyond it
            down = max(down, 62.0)
        return (0.0, -min(60.0, max(14.0, down * 0.92)), 0.0)


def _sky_colors(p: Any) -> Any:
    t = np.clip((p[:, 2:3] - 0.9) / 1.3, 0, 1)
    rgb = np.array([0.78, 0.86, 0.9]) * (1 - t) + np.array([0.55, 0.72, 0.92]) * t
    return np.hstack([rgb, np.ones((len(p), 1))]).astype(np.float32)


SCENE = SceneSpec(
    name="spiders",
    title="Living room with spiders",
    params=(
        int_param("count", 1, 0, 20, "spiders", "Number of spiders in the room"),
        float_param("size_cm", 3.0, 0.5, 15.0, "cm", "Leg span of each spider"),
        float_param(
            "distance_m", 3.0, 0.3, 5.0, "m", "Distance of the nearest spider from the patient"
        ),
        float_param("speed_cm_s", 0.0, 0.0, 30.0, "cm/s", "Walking speed (0 = motionless)"),
        bool_param("approach", False, "Spiders walk towards the patient instead of wandering"),
        bool_param("contained", False, "Spiders are inside a closed glass terrarium"),
        bool_param("on_hand", False,
                   "The nearest spider walks onto the patient's hand (resting on the knee)"),
        choice_param("species", "house", ("house", "wolf", "tarantula"), "Look of the spiders"),
        float_param("light_level", 1.0, 0.2, 1.0, "", "Room brightness"),
    ),
    events=(EventSpec("drop", "Spider drops from the ceiling on a thread", "d", 12.0),),
    factory=SpidersScene,
)

__all__ = ["SCENE", "ParamValue", "SpidersScene"]
