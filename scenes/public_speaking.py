"""Public speaking: a hall with an audience watching the patient at a lectern.

Performance: a software renderer pays per node (cull) and per draw call, and a
90 Hz headset leaves 11.1 ms per frame. So the audience is drawn by a few
:class:`~vrexposure.render.batch.RigidBatch` meshes per hall (one draw call
each) whose part matrices are computed for everybody at once with numpy, and the
static room, seats and stage are flattened into a few Geoms.

Rewriting a batch costs CPU (a fixed part per call and template, and a part per
vertex), so:

* the people are split into chunks of :data:`CHUNK_SIZE` in seat order (front
  first), each with a heads batch and a bodies batch; legs never move and live in
  one more batch that is only rewritten when someone arrives or leaves;
* a batch is rewritten when its refresh time is up (:data:`HEAD_REFRESH_S`,
  :data:`BODY_REFRESH_S`): often while someone in it turns, crosses arms or takes
  out a phone, seldom while they only fidget and sway (steps under a pixel), and
  at most one batch per 1/90 s of frame time, so no frame pays for several. A cut
  (``dt = 0``), a hall coming into view or a chunk becoming visible rewrites
  everything at once;
* round parts have few vertices, and chunks farther back fewer still; colours are
  written once, at build time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import numpy as np
from numpy.typing import NDArray

from vrexposure.render.scene_base import DEFAULT_EASE_TIME_S, SceneBase
from vrexposure.scene_api import EventSpec, SceneSpec, choice_param, float_param, int_param

if TYPE_CHECKING:
    from panda3d.core import NodePath, Texture

    from vrexposure.render.batch import RigidBatch
    from vrexposure.render.geometry import MeshBuilder

FloatArray = NDArray[np.float32]
Color4 = tuple[float, float, float, float]

MAX_AUDIENCE = 80
STAGE_M = 0.3  # the speaker's platform; the eye is 1.2 m above it
SPEAKER_EYE_M = (0.0, 0.0, STAGE_M + 1.2)
SEAT_PITCH_X, ROW_PITCH_Y = 0.65, 1.05
#: The hall moves with the front row; its back wall stays this far behind the front row,
#: so it is behind the speaker at every front-row distance (not through their head).
BACK_WALL_M = 12.0
#: Closest front row: nearer, the front row's knees would be in the lectern and stage.
MIN_FRONT_ROW_M = 1.5
# hall -> (half width, depth, ceiling height, seats per row, rise per row)
HALLS = {
    "meeting_room": (4.0, 9.0, 2.7, 8, 0.0),
    "classroom": (6.0, 13.0, 3.0, 10, 0.0),
    "lecture_hall": (9.5, 20.0, 5.0, 14, 0.22),
}
SKIN = [
    (0.96, 0.8, 0.68),
    (0.85, 0.65, 0.5),
    (0.65, 0.45, 0.32),
    (0.45, 0.3, 0.2),
    (0.92, 0.74, 0.6),
]
HAIR = [
    (0.1, 0.08, 0.06),
    (0.35, 0.22, 0.12),
    (0.6, 0.45, 0.25),
    (0.75, 0.72, 0.7),
    (0.2, 0.15, 0.1),
]
CLOTHES = [
    (0.2, 0.3, 0.5),
    (0.55, 0.15, 0.15),
    (0.25, 0.25, 0.27),
    (0.85, 0.85, 0.8),
    (0.3, 0.45, 0.3),
    (0.6, 0.5, 0.35),
    (0.15, 0.15, 0.2),
    (0.5, 0.55, 0.65),
]
WHITE: Color4 = (1.0, 1.0, 1.0, 1.0)  # batch templates are white: part colours multiply them
SHOE: Color4 = (0.1, 0.08, 0.07, 1.0)
EYE_WHITE: Color4 = (0.95, 0.95, 0.95, 1.0)
PUPIL: Color4 = (0.1, 0.07, 0.05, 1.0)
LIPS: Color4 = (0.42, 0.16, 0.16, 1.0)
PHONE_CASE: Color4 = (0.05, 0.05, 0.06, 1.0)
PHONE_SCREEN: Color4 = (0.6, 0.8, 1.0, 1.0)

#: People per chunk (a heads batch and a bodies batch), in seat order.
CHUNK_SIZE = 27
#: Frame time that pays for one batch rewrite (at most one per frame at 90 Hz).
BATCH_SLOT_S = 1.0 / 90.0
#: Time between rewrites of a batch (moving, settled). Moving: someone in it turns
#: (attention), crosses arms, takes out a phone or arrives. Settled heads only fidget
#: (< 6 °/s: steps < 0.6 °, under a pixel at the front row) and settled bodies only
#: sway (< 0.6 °/s).
HEAD_REFRESH_S = (1 / 30, 1 / 10)
BODY_REFRESH_S = (1 / 15, 1 / 6)
#: Easing closer than this to its target is snapped to it (0.3 ° of a 60 ° turn), so
#: people settle for good: their limbs are cached and their batches refresh slower.
SETTLED = 5e-3
#: The house light on the audience: from the stage (travelling +Y), from the speaker's
#: left and above; the share of it a full spotlight takes away.
AUDIENCE_LIGHT_HPR = (-20.0, -35.0, 0.0)
AUDIENCE_LIGHT_DIM = 0.2
#: Head centre above the seat, for aiming the gaze (metres).
HEAD_HEIGHT_M = 1.25
LOOK_EASE_S, HOSTILE_EASE_S = 0.6, 0.8
HEAD_HEADING_LIMIT_DEG = 70.0
HEAD_PITCH_RANGE_DEG = (-40.0, 25.0)  # negative pitch lifts the face (it looks along -Y)

# Joints in their parent's space (metres), a seated figure facing -Y (the stage).
TORSO_POS_M = (0.0, 0.05, 0.5)
HEAD_POS_M = (0.0, 0.01, 0.66)
ELBOW_POS_M = (0.0, 0.0, -0.28)
PHONE_POS_M, PHONE_TILT_DEG = (0.0, -0.32, 0.28), 45.0

#: (rings, segments) of head and hair per level of detail = chunk: front rows first.
HEAD_LOD = ((5, 9), (4, 6), (3, 6))
HAIR_LOD = ((4, 9), (3, 6), (3, 6))
HAIR_CUT_Z = -0.6  # hair ends this far down its ellipsoid (unit radius): at the ears


def seat_order(seats_per_row: int, rows: int) -> list[tuple[int, int]]:
    """Seats filled front-centre first: (row, column) pairs ordered by distance from the middle."""
    centre = (seats_per_row - 1) / 2
    seats = [(r, c) for r in range(rows) for c in range(seats_per_row)]
    return sorted(seats, key=lambda rc: (rc[0] * 1.3 + abs(rc[1] - centre) * 0.55, rc[1]))


def box_mat(lo: Sequence[float], hi: Sequence[float]) -> FloatArray:
    """Row-vector matrix mapping the unit cube (-0.5..0.5) onto the box ``lo``..``hi``."""
    lo_a, hi_a = np.asarray(lo, np.float32), np.asarray(hi, np.float32)
    mat = np.diag([*(hi_a - lo_a), 1.0]).astype(np.float32)
    mat[3, :3] = (lo_a + hi_a) / 2
    return mat


def ellipsoid_mat(center: Sequence[float], radii: Sequence[float]) -> FloatArray:
    """Row-vector matrix mapping the unit sphere onto an axis-aligned ellipsoid."""
    mat = np.diag([*radii, 1.0]).astype(np.float32)
    mat[3, :3] = center
    return mat


_TORSO = box_mat((-0.19, -0.1, 0.0), (0.19, 0.12, 0.55))
_SHOULDERS = ellipsoid_mat((0.0, 0.01, 0.52), (0.2, 0.12, 0.08))
_UPPER_ARM = box_mat((-0.05, -0.05, -0.3), (0.05, 0.05, 0.02))
_FOREARM = box_mat((-0.045, -0.3, -0.045), (0.045, 0.0, 0.045))
_HAND = ellipsoid_mat((0.0, -0.33, 0.0), (0.04, 0.05, 0.03))
#: A person's body parts in batch order: (template, unit shape -> part in its joint's
#: space), on the joints torso, torso, left/right upper arm, forearm, forearm (hands).
BODY_PARTS = (
    ("box", _TORSO),
    ("dome", _SHOULDERS),
    ("box", _UPPER_ARM),
    ("box", _UPPER_ARM),
    ("box", _FOREARM),
    ("box", _FOREARM),
    ("dome", _HAND),
    ("dome", _HAND),
)
BODY_PART_LOCALS = np.stack([mat for _template, mat in BODY_PARTS])
#: A phone user's phone: case and screen (boxes) in the phone's space.
PHONE_LOCALS = np.stack(
    [box_mat((-0.035, -0.07, 0.0), (0.035, 0.07, 0.01)),
     box_mat((-0.03, -0.06, 0.0105), (0.03, 0.06, 0.011))]
)
SIDES = np.array([-1.0, 1.0])  # left, right
# Eyebrows in head space (the face looks along -Y; the eyes are at z 0.085).
BROW_X_M, BROW_Y_M, BROW_Z_M, BROW_FROWN_DEG = 0.032, -0.098, 0.112, 24.0
# The mouth: two halves in head space whose outer corners turn down with hostility (a
# sulk that reads from the stage) and up a little without it (a polite smile).
MOUTH_X_M, MOUTH_Y_M, MOUTH_Z_M = 0.015, -0.094, 0.012
MOUTH_FROWN_DEG, MOUTH_SMILE_DEG = 30.0, 10.0
SHOULDERS_M = np.array([(side * 0.23, 0.01, 0.5) for side in SIDES])
SHORT_HAIR = ellipsoid_mat((0.0, 0.025, 0.1), (0.095, 0.105, 0.1))
LONG_HAIR = ellipsoid_mat((0.0, 0.025, 0.06), (0.095, 0.105, 0.12))

#: Angular frequencies (rad/s) of torso pitch and roll sway, head fidget (heading, 2) and pitch.
WAVE_RAD_S = np.array([0.21, 0.3, 0.37, 1.1, 0.53])

# Per person (index = seat-order position): who looks, who turns hostile, and how.
_INDEX = np.arange(MAX_AUDIENCE)
ATTENTIVE_RANK = (_INDEX * 0.618034) % 1.0
HOSTILE_RANK = (_INDEX * 0.414214 + 0.3) % 1.0
AWAY_HEADING_DEG = ((_INDEX * 53) % 120) - 60.0
PHASE_S = _INDEX * 1.7
PHONE_USER = _INDEX % 3 == 0  # the others cross their arms when hostile
# Who plays the stimulus events (seat-order positions: all in the front row).
COUGHER, YAWNER, PHONER, LEAVER = 1, 2, 3, 5
LEAN_SIGN = np.where(_INDEX % 2 == 1, 1.0, -1.0)


@dataclass(eq=False)  # compared by identity in the rewrite cycle
class _Chunk:
    """Up to CHUNK_SIZE people: one batch for their heads, one for their bodies."""

    members: NDArray[np.intp]  # person indices (consecutive)
    phone_members: NDArray[np.intp]  # positions in ``members`` of the phone users
    heads: RigidBatch
    heads_np: NodePath
    bodies: RigidBatch
    bodies_np: NodePath
    shown: bool = False
    heads_moving: bool = False  # someone in it is turning (easing), see HEAD_REFRESH_S
    bodies_moving: bool = False
    heads_written_s: float = -math.inf  # scene time of the last rewrite
    bodies_written_s: float = -math.inf
    drawn_head_mats: FloatArray | None = None  # (k, 4, 4) hall space, as last written
    _gaze: tuple[float, NDArray[np.float64], NDArray[np.float64]] | None = None
    _limbs: tuple[bytes, FloatArray] | None = None  # hostility -> parts in torso space

    @property
    def span(self) -> slice:
        return slice(int(self.members[0]), int(self.members[-1]) + 1)

    def urgency(self, heads: bool, time_s: float) -> float:
        """Time since the batch was written, in units of its wanted refresh time."""
        if heads:
            period = HEAD_REFRESH_S[0 if self.heads_moving else 1]
            return (time_s - self.heads_written_s) / period
        period = BODY_REFRESH_S[0 if self.bodies_moving else 1]
        return (time_s - self.bodies_written_s) / period

    def gaze_at_speaker(
        self, seat_m: NDArray[np.float64], front_m: float
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Heading and elevation (degrees) from each member's head to the speaker's eyes."""
        if self._gaze is None or self._gaze[0] != front_m:  # only changes with the distance
            head_m = seat_m[self.span] + (0.0, front_m, HEAD_HEIGHT_M)
            dx, dy, dz = (np.asarray(SPEAKER_EYE_M) - head_m).T
            # The face looks along -Y: the heading that turns it to (dx, dy) is atan2(dx, -dy).
            heading = np.degrees(np.arctan2(dx, -dy))
            self._gaze = (front_m, heading, np.degrees(np.arctan2(dz, np.hypot(dx, dy))))
        return self._gaze[1], self._gaze[2]


@dataclass(eq=False)
class _Crowd:
    """One hall: its node, its seated people and their eased state."""

    hall: NodePath
    seat_m: NDArray[np.float64]  # (N, 3) seats in the hall's space
    root_mats: FloatArray  # (N, 4, 4) person at its seat, scaled
    hair_mats: FloatArray  # (N, 4, 4) hair ellipsoid in head space (short or long)
    legs: RigidBatch
    chunks: list[_Chunk]
    look: NDArray[np.float64]  # 0 away, 1 at the speaker (eased per person)
    hostile: NDArray[np.float64]
    visible: NDArray[np.bool_]
    stale: bool = True  # not drawn since built or hidden: rewrite everything
    #: Extra head pitch per person (degrees, + bows the face) for a cough or a yawn.
    nod_deg: NDArray[np.float64] = field(default_factory=lambda: np.zeros(MAX_AUDIENCE))


class PublicSpeakingScene(SceneBase):
    """Seated audience figures in a meeting room, classroom or lecture hall."""

    sound_name = "murmur"
    sound_param = "murmur_volume"
    near_far = (0.05, 120.0)
    background_color = (0.05, 0.05, 0.06)
    channel_ease_s: ClassVar[dict[str, float]] = {"hall=meeting_room": 1.5, "hall=classroom": 1.5, "hall=lecture_hall": 1.5}
    event_sounds: ClassVar[dict[str, str]] = {"cough": "cough", "yawn": "yawn",
                                              "phone": "phone_ping"}

    def __init__(self, spec: SceneSpec | None = None, ease_time_s: float = DEFAULT_EASE_TIME_S):
        super().__init__(spec or SCENE, ease_time_s)
        self._halls: dict[str, _Crowd] = {}
        self._snap_motion = True  # next frame: per-person easing jumps to its targets
        self._nodded = False  # a cough or yawn moved a head last frame
        self._lit_spot = math.nan  # spotlight value the lights were last set for

    def reset_motion(self) -> None:
        # A cut: the audience already looks (or not) when the scene appears.
        self._snap_motion = True

    # -- build -------------------------------------------------------------------------

    def build(self, parent: NodePath) -> None:
        from vrexposure.render import geometry as g

        self._stage = parent.attachNewNode("stage")
        st = g.MeshBuilder()
        st.box((-3.0, -2.0, 0), (3.0, 0.6, STAGE_M), (1, 1, 1, 1), uv_m=1.0)
        lec = STAGE_M + 0.78
        st.box((-0.32, 0.3, STAGE_M), (0.32, 0.7, lec), (0.4, 0.26, 0.16, 1))
        st.box((-0.38, 0.22, lec), (0.38, 0.75, lec + 0.04), (0.3, 0.2, 0.12, 1))
        st.box((-0.21, 0.3, lec + 0.04), (0.09, 0.52, lec + 0.045), (0.95, 0.95, 0.92, 1))
        st.box((-0.19, 0.32, lec + 0.045), (0.11, 0.54, lec + 0.05), (0.98, 0.98, 0.96, 1))
        st.tube(
            (0.28, 0.65, lec + 0.04), (0.24, 0.55, lec + 0.25), 0.006, 0.006, (0.1, 0.1, 0.1, 1)
        )
        st.sphere((0.018, 0.018, 0.03), (0.12, 0.12, 0.12, 1), center=(0.235, 0.53, lec + 0.27))
        node = st.attach(self._stage, "stage")
        node.setTexture(g.planks_texture((0.55, 0.4, 0.28), 4))
        templates = _Templates.make()
        self._build_walker(parent)
        for name in HALLS:
            self._halls[name] = self._build_hall(parent, name, templates)

        pool = g.MeshBuilder()
        pool.quad(
            [
                (-1.2, -0.6, STAGE_M + 0.005),
                (1.2, -0.6, STAGE_M + 0.005),
                (1.2, 1.8, STAGE_M + 0.005),
                (-1.2, 1.8, STAGE_M + 0.005),
            ],
            (1, 0.95, 0.8, 0.8),
        )
        self._pool = pool.attach(parent, "light-pool")
        self._pool.setTexture(g.radial_texture(64, 1.3))
        g.set_additive(self._pool)
        glare = g.MeshBuilder()
        glare.quad([(-1, 0, -1), (1, 0, -1), (1, 0, 1), (-1, 0, 1)], (1.0, 0.96, 0.85, 1))
        self._beam = glare.attach(parent, "spot-glare")
        self._beam.setTexture(g.radial_texture(64, 2.5))
        self._beam.setPos(0, 7.0, 4.6)
        self._beam.setScale(1.4)
        self._beam.setBillboardPointEye()
        g.set_additive(self._beam)
        lamp = g.MeshBuilder()
        lamp.cylinder(
            0.16, 0.35, (0.1, 0.1, 0.1, 1), g.transform((0, 7.1, 4.45), (0, 35, 0)), top_radius=0.2
        )
        lamp.attach(parent, "spot-lamp")
        self._ambient = g.ambient_light(parent, (0.45, 0.45, 0.45))
        # The house lights wash the audience from the stage side (from the speaker's left,
        # above): faces, arms and phones read from the lectern. (From behind them, as
        # before, the audience showed its lit backs and dark faces.)
        self._key = g.sun_light(parent, (0.6, 0.58, 0.55), AUDIENCE_LIGHT_HPR)
        self._spot = g.spot_light(
            parent,
            (1.0, 0.95, 0.8),
            (0, 7.0, 4.6),
            (0, 0.3, STAGE_M),
            fov_deg=35,
            exponent=4,
            lit=self._stage,
        )

    def _build_hall(self, parent: NodePath, name: str, templates: _Templates) -> _Crowd:
        from vrexposure.render.batch import pos_hpr_scale_mats

        half, depth, ceil, per_row, rise = HALLS[name]
        hall = parent.attachNewNode(name)
        static = hall.attachNewNode("static")
        _room(name, half, depth, ceil, rise).attach(static, "room").setTexture(_room_texture())
        rows = 1 + MAX_AUDIENCE // per_row
        # The seats are the audience's place: stimulus even while empty (first step). Their
        # own node (not flattened into the room's) so that they can be told apart.
        seats = _seats(name, per_row, rows, rise, depth).attach(hall, "seats")
        seats.setTag("stimulus", "audience")
        seats.flattenStrong()
        static.flattenStrong()  # room and seats never move: one node, a Geom per state

        order = seat_order(per_row, rows)[:MAX_AUDIENCE]
        seat_m = np.array(
            [((c - (per_row - 1) / 2) * SEAT_PITCH_X, r * ROW_PITCH_Y, r * rise) for r, c in order]
        )
        looks = _Looks.draw(np.random.default_rng(17 + len(name)))
        # Explicit xyz scales: a bare per-person scale would be ambiguous for 3 people.
        scale_xyz = np.repeat(looks.scale[:, None], 3, axis=1)
        root_mats = pos_hpr_scale_mats(seat_m, (0.0, 0.0, 0.0), scale_xyz)
        hair_mats = np.where(looks.long_hair[:, None, None], LONG_HAIR, SHORT_HAIR)

        legs = templates.legs_batch(MAX_AUDIENCE)
        legs.attach(hall).setTag("stimulus", "audience")
        _paint(legs, np.stack([looks.trousers, np.tile(SHOE, (MAX_AUDIENCE, 1))], axis=1))
        chunks = [
            templates.chunk(hall, np.arange(start, min(MAX_AUDIENCE, start + CHUNK_SIZE)), looks)
            for start in range(0, MAX_AUDIENCE, CHUNK_SIZE)
        ]
        return _Crowd(
            hall=hall,
            seat_m=seat_m,
            root_mats=root_mats,
            hair_mats=hair_mats.astype(np.float32),
            legs=legs,
            chunks=chunks,
            look=np.zeros(MAX_AUDIENCE),
            hostile=np.zeros(MAX_AUDIENCE),
            visible=np.zeros(MAX_AUDIENCE, bool),
        )

    # -- per frame ---------------------------------------------------------------------

    def animate(self, dt_s: float, time_s: float) -> None:
        from vrexposure.render import geometry as g

        spot = min(1.0, max(0.0, self.v("spotlight")))
        cut = dt_s <= 0.0 or self._snap_motion
        for name, crowd in self._halls.items():
            if self.v(f"hall={name}") < 0.5:
                crowd.hall.hide()
                crowd.stale = True
                continue
            crowd.hall.show()
            front_m = max(MIN_FRONT_ROW_M, self.v("front_row_distance_m"))
            if front_m != crowd.hall.getY():
                crowd.hall.setY(front_m)
            self._animate_crowd(crowd, dt_s, time_s, cut)
        self._snap_motion = False
        if spot != self._lit_spot:  # the lights only change while the spotlight eases
            self._lit_spot = spot
            # The spotlight dims the house, but the audience stays lit: dim surroundings,
            # faces that still read (AUDIENCE_LIGHT_DIM of the key light goes).
            house = 1.0 - 0.55 * spot
            key = 1.0 - AUDIENCE_LIGHT_DIM * spot
            g.set_light_color(self._ambient, (0.45 * house, 0.45 * house, 0.47 * house, 1))
            g.set_light_color(self._key, (0.8 * key, 0.77 * key, 0.7 * key, 1))
            g.set_light_color(self._spot, (1.6 * spot, 1.5 * spot, 1.25 * spot, 1))
            self._pool.setAlphaScale(spot)
            self._beam.setAlphaScale(spot)
            self._pool.show() if spot > 0.01 else self._pool.hide()
            self._beam.show() if spot > 0.01 else self._beam.hide()

    def _animate_crowd(self, crowd: _Crowd, dt_s: float, time_s: float, cut: bool) -> None:
        size = max(0.0, self.v("audience_size"))
        attention = min(1.0, max(0.0, self.v("attention")))
        hostility = min(1.0, max(0.0, self.v("hostility")))
        visible = size - _INDEX > 0.0  # people arrive one by one as the size eases up
        want_look = (attention > ATTENTIVE_RANK).astype(np.float64)
        want_hostile = (hostility > HOSTILE_RANK).astype(np.float64)
        if self.event_progress("phone") is not None:  # takes out the phone, eyes down
            want_hostile[PHONER], want_look[PHONER] = 1.0, 0.0
        leaving = self._animate_walker(crowd, visible)
        if leaving:
            visible = visible.copy()
            visible[LEAVER] = False
        settled = np.array_equal(crowd.look, want_look) and np.array_equal(
            crowd.hostile, want_hostile
        )
        if self._snap_motion:
            crowd.look, crowd.hostile = want_look, want_hostile
        elif dt_s > 0.0 and not settled:
            # Each person in the room eases on their own; anyone else is ready as they come.
            look = want_look + (crowd.look - want_look) * math.exp(-dt_s / LOOK_EASE_S)
            hostile = want_hostile + (crowd.hostile - want_hostile) * math.exp(
                -dt_s / HOSTILE_EASE_S
            )
            look = np.where(np.abs(look - want_look) < SETTLED, want_look, look)
            hostile = np.where(np.abs(hostile - want_hostile) < SETTLED, want_hostile, hostile)
            crowd.look = np.where(visible, look, want_look)
            crowd.hostile = np.where(visible, hostile, want_hostile)

        refresh_all = cut or crowd.stale
        arrived = visible != crowd.visible
        anyone_arrived = bool(arrived.any())
        if refresh_all or anyone_arrived:
            legs = np.where(visible[:, None, None], crowd.root_mats, 0.0)
            crowd.legs.update(np.repeat(legs, 2, axis=0))
        crowd.visible = visible
        crowd.stale = False
        due: list[tuple[_Chunk, bool]] = []  # (chunk, heads?) to rewrite this frame
        if refresh_all or anyone_arrived or not settled:  # else the chunks' flags still hold
            due = self._update_chunk_flags(crowd, arrived, want_look, want_hostile, refresh_all)
        if not refresh_all:
            # Only batches whose refresh time is up, most overdue first, at most one per
            # BATCH_SLOT_S of frame time: the cost per frame stays flat at any frame rate.
            slots = max(1, round(dt_s / BATCH_SLOT_S))
            waiting = [c for c in crowd.chunks if (c, True) not in due]
            due += _most_urgent(waiting, time_s, slots - len(due))
        if self._event_nods(crowd):  # a cough or yawn: that person's head moves every frame
            chunk = crowd.chunks[0]
            if (chunk, True) not in due:
                due.append((chunk, True))
        front_m = crowd.hall.getY()
        for chunk, heads in due:
            pose = _Pose(crowd, chunk, time_s)
            if heads:
                chunk.drawn_head_mats = pose.head(front_m)
                chunk.heads.update(pose.head_part_mats(chunk.drawn_head_mats))
                chunk.heads_written_s = time_s
            else:
                chunk.bodies.update(pose.body_part_mats())
                chunk.bodies_written_s = time_s

    def _animate_walker(self, crowd: _Crowd, visible: NDArray[np.bool_]) -> bool:
        """The "walk_out" event: a front-row listener stands up and walks out at the side.

        Returns True while they are out of their seat (the seated figure is hidden).
        """
        progress = self.event_progress("walk_out")
        walker = self._walker
        if progress is None or not visible[LEAVER]:
            walker.hide()
            return False
        walker.reparentTo(crowd.hall)
        walker.show()
        seat = crowd.seat_m[LEAVER]
        half = HALLS[next(n for n, c in self._halls.items() if c is crowd)][0]
        side = -1.0 if seat[0] >= 0 else 1.0  # out at the far side: across the front
        aisle_x = side * (half - 0.6)
        stand = min(1.0, progress / 0.12)
        walk = min(1.0, max(0.0, (progress - 0.12) / 0.6))
        out = min(1.0, max(0.0, (progress - 0.72) / 0.2))
        x = seat[0] + (aisle_x - seat[0]) * walk
        y = seat[1] - 0.45 * stand + 4.0 * out  # in front of the row, then up the side
        walker.setPos(x, y, seat[2])
        walker.setH(0.0 if walk <= 0.0 or walk >= 1.0 else -90.0 * side)
        if out > 0.0:
            walker.setH(180.0)
        walker.setSz(0.75 + 0.25 * stand)  # from sitting height to standing
        bob = 0.02 * abs(math.sin(self.time_s * 6.0)) * (0.0 < walk < 1.0)
        walker.setZ(seat[2] + bob)
        walker.setAlphaScale(1.0 - max(0.0, (progress - 0.9) / 0.1))
        return True

    def _event_nods(self, crowd: _Crowd) -> bool:
        """Head motion of the "cough" (a front-row listener) and "yawn" events; True if any."""
        crowd.nod_deg[:] = 0.0
        moving = False
        cough = self.event_progress("cough")
        if cough is not None and crowd.visible[COUGHER]:
            # Three coughs: the head jerks forward and back, then settles.
            crowd.nod_deg[COUGHER] = 16.0 * max(0.0, math.sin(cough * math.pi * 6)) * (1 - cough)
            moving = True
        yawn = self.event_progress("yawn")
        if yawn is not None and crowd.visible[YAWNER]:
            crowd.nod_deg[YAWNER] = -28.0 * math.sin(math.pi * yawn) ** 2  # the head tips back
            moving = True
        was, self._nodded = self._nodded, moving
        return moving or was  # one more frame after: the head back to where it was

    @staticmethod
    def _update_chunk_flags(
        crowd: _Crowd,
        arrived: NDArray[np.bool_],
        want_look: NDArray[np.float64],
        want_hostile: NDArray[np.float64],
        refresh_all: bool,
    ) -> list[tuple[_Chunk, bool]]:
        """Show/hide chunks, mark who is moving; returns batches to rewrite right now."""
        due: list[tuple[_Chunk, bool]] = []
        starts = np.arange(0, MAX_AUDIENCE, CHUNK_SIZE)
        visible = crowd.visible
        shown_now = np.add.reduceat(visible, starts) > 0
        arrived_in = np.add.reduceat(arrived, starts) > 0
        hostile_easing = crowd.hostile != want_hostile
        bodies_moving = np.add.reduceat(hostile_easing, starts) > 0
        heads_moving = np.add.reduceat(hostile_easing | (crowd.look != want_look), starts) > 0
        for chunk, shown, came, body_moves, head_moves in zip(
            crowd.chunks,
            shown_now.tolist(),
            arrived_in.tolist(),
            bodies_moving.tolist(),
            heads_moving.tolist(),
            strict=True,
        ):
            if shown and (refresh_all or not chunk.shown):
                due += [(chunk, True), (chunk, False)]  # out of date: rewrite before drawing
            elif came:
                chunk.heads_written_s = chunk.bodies_written_s = -math.inf  # next in line
            if shown != chunk.shown:
                chunk.heads_np.show() if shown else chunk.heads_np.hide()
                chunk.bodies_np.show() if shown else chunk.bodies_np.hide()
            chunk.shown, chunk.heads_moving, chunk.bodies_moving = shown, head_moves, body_moves
        return due

    # -- what the engine asks ----------------------------------------------------------

    def stimulus_world_position(self) -> tuple[float, float, float] | None:
        _half, _depth, _ceil, _per_row, rise = HALLS[str(self.params["hall"])]
        size = int(self.params["audience_size"])
        rows = max(1, math.ceil(size / max(1, HALLS[str(self.params["hall"])][3]) if size else 1))
        centre_row = (rows - 1) / 2
        return (
            0.0,
            self.v("front_row_distance_m") + centre_row * ROW_PITCH_Y,
            1.2 + centre_row * rise,
        )

    def _build_walker(self, parent: NodePath) -> None:
        """A standing figure for the "walk_out" event (hidden until it plays)."""
        from vrexposure.render import geometry as g

        coat, trousers, skin = (0.35, 0.38, 0.45, 1), (0.2, 0.2, 0.24, 1), (0.85, 0.68, 0.55, 1)
        body = g.MeshBuilder()
        for side in (-1, 1):
            body.box((side * 0.1 - 0.07, -0.08, 0.0), (side * 0.1 + 0.07, 0.08, 0.85), trousers)
        body.box((-0.2, -0.11, 0.85), (0.2, 0.12, 1.45), coat)
        for side in (-1, 1):
            body.box((side * 0.25 - 0.05, -0.05, 0.9), (side * 0.25 + 0.05, 0.05, 1.42), coat)
        body.sphere((0.1, 0.11, 0.13), skin, center=(0, 0, 1.6), rings=5, segments=9)
        body.sphere((0.105, 0.115, 0.09), (0.2, 0.14, 0.1, 1), center=(0, 0.02, 1.67),
                    rings=4, segments=9)
        self._walker = body.attach(parent, "walker")
        self._walker.setTag("stimulus", "audience")
        self._walker.setTransparency(True)
        self._walker.hide()

    def eye_position(self) -> tuple[float, float, float]:
        return SPEAKER_EYE_M

    def solid_boxes(self) -> list[tuple[str, tuple[float, float, float], tuple[float, float, float]]]:
        """The lectern and every seated person's upper body (as last drawn), world metres."""
        lec = STAGE_M + 0.78
        boxes = [("lectern", (-0.38, 0.22, STAGE_M), (0.38, 0.75, lec + 0.3))]
        for name, crowd in self._halls.items():
            if crowd.hall.isHidden() or self.v(f"hall={name}") < 0.5:
                continue
            offset = np.array([0.0, crowd.hall.getY(), 0.0])
            for chunk in crowd.chunks:
                if chunk.bodies_np.isHidden():
                    continue
                heads = chunk.heads.part_bounds().reshape(len(chunk.members), -1, 2, 3)
                people = len(chunk.members) * len(BODY_PARTS)
                bodies = chunk.bodies.part_bounds()[:people].reshape(len(chunk.members), -1, 2, 3)
                parts = np.concatenate([heads, bodies], axis=1)
                for member, person in zip(chunk.members, parts, strict=True):
                    if np.isnan(person).all():
                        continue
                    lo = np.nanmin(person[:, 0], axis=0) + offset
                    hi = np.nanmax(person[:, 1], axis=0) + offset
                    boxes.append((f"person {member}", tuple(lo), tuple(hi)))
        return boxes

    def view_hpr(self) -> tuple[float, float, float]:
        return (0.0, -7.0, 0.0)

    # -- inspection (tests) -------------------------------------------------------------

    def drawn_head_mats(self) -> FloatArray:
        """(N, 4, 4) head matrices in the scene root's space as last drawn; zero: absent."""
        crowd = self._halls[str(self.params["hall"])]
        to_root = np.eye(4, dtype=np.float32)
        to_root[3, :3] = (0.0, crowd.hall.getY(), 0.0)
        out = np.zeros((MAX_AUDIENCE, 4, 4), np.float32)
        for chunk in crowd.chunks:
            if chunk.shown and chunk.drawn_head_mats is not None:
                out[chunk.members] = chunk.drawn_head_mats @ to_root
        return np.where(crowd.visible[:, None, None], out, 0.0).astype(np.float32)


def _heading_pitch_mats(
    pos: Sequence[float], heading_deg: NDArray[np.float64], pitch_deg: NDArray[np.float64]
) -> FloatArray:
    """(k, 4, 4) like ``pos_hpr_scale_mats(pos, (h, p, 0))``, in a third of the time."""
    h, p = np.radians(heading_deg), np.radians(pitch_deg)
    ch, sh, cp, sp = np.cos(h), np.sin(h), np.cos(p), np.sin(p)
    m = np.zeros((len(h), 4, 4), np.float32)
    m[:, 0, 0], m[:, 0, 1] = ch, sh
    m[:, 1, 0], m[:, 1, 1], m[:, 1, 2] = -cp * sh, cp * ch, sp
    m[:, 2, 0], m[:, 2, 1], m[:, 2, 2] = sp * sh, -sp * ch, cp
    m[:, 3, :3], m[:, 3, 3] = pos, 1.0
    return m


def _pitch_roll_mats(
    pos: Sequence[float], pitch_deg: NDArray[np.float64], roll_deg: NDArray[np.float64]
) -> FloatArray:
    """(k, 4, 4) like ``pos_hpr_scale_mats(pos, (0, p, r))``, in a third of the time."""
    p, r = np.radians(pitch_deg), np.radians(roll_deg)
    cp, sp, cr, sr = np.cos(p), np.sin(p), np.cos(r), np.sin(r)
    m = np.zeros((len(p), 4, 4), np.float32)
    m[:, 0, 0], m[:, 0, 1], m[:, 0, 2] = cr, sr * sp, -sr * cp
    m[:, 1, 1], m[:, 1, 2] = cp, sp
    m[:, 2, 0], m[:, 2, 1], m[:, 2, 2] = sr, -cr * sp, cr * cp
    m[:, 3, :3], m[:, 3, 3] = pos, 1.0
    return m


def _most_urgent(chunks: list[_Chunk], time_s: float, count: int) -> list[tuple[_Chunk, bool]]:
    """Up to ``count`` batches of shown chunks that are due, longest overdue first
    (relative to their refresh time)."""
    urgent = [
        (urgency, i, (chunk, heads))
        for i, (chunk, heads) in enumerate((c, h) for c in chunks if c.shown for h in (True, False))
        if (urgency := chunk.urgency(heads, time_s)) >= 1.0
    ]
    urgent.sort(key=lambda u: (-u[0], u[1]))
    return [batch for _urgency, _i, batch in urgent[: max(0, count)]]


@dataclass
class _Looks:
    """What each person looks like (drawn in the order the scene always drew them)."""

    skin: FloatArray
    hair: FloatArray
    shirt: FloatArray
    trousers: FloatArray
    scale: FloatArray
    long_hair: NDArray[np.bool_]

    @staticmethod
    def draw(rng: np.random.Generator) -> _Looks:
        skin, hair, shirt, trousers, scale, long_hair = [], [], [], [], [], []
        for _ in range(MAX_AUDIENCE):
            skin.append((*SKIN[int(rng.integers(0, len(SKIN)))], 1.0))
            hair.append((*HAIR[int(rng.integers(0, len(HAIR)))], 1.0))
            shirt.append((*CLOTHES[int(rng.integers(0, len(CLOTHES)))], 1.0))
            trousers.append((*(0.6 * c for c in CLOTHES[int(rng.integers(0, len(CLOTHES)))]), 1.0))
            scale.append(float(rng.uniform(0.92, 1.08)))
            long_hair.append(bool(rng.random() < 0.45))

        def arr(rows: Sequence[tuple[float, ...]]) -> FloatArray:
            return np.asarray(rows, np.float32)

        return _Looks(
            arr(skin),
            arr(hair),
            arr(shirt),
            arr(trousers),
            np.asarray(scale, np.float32),
            np.asarray(long_hair, bool),
        )


class _Pose:
    """Joint matrices (k, 4, 4) in the hall's space of one chunk's people, now."""

    def __init__(self, crowd: _Crowd, chunk: _Chunk, time_s: float) -> None:
        from vrexposure.render.batch import compose

        span = chunk.span  # a slice: views, no copies
        self.crowd, self.chunk = crowd, chunk
        self.visible = crowd.visible[span]
        # One sine call for every slow wave: sway (2), fidget (3).
        waves = np.sin((time_s + PHASE_S[span])[:, None] * WAVE_RAD_S)
        self.waves = waves
        hostile = crowd.hostile[span]
        self.phone_use = hostile * PHONE_USER[span]
        self.crossed = hostile - self.phone_use
        # Slow shifting in the seat; slouching and leaning when hostile.
        self.slouch_deg = -10 * self.crossed + 6 * self.phone_use + 1.5 * waves[:, 0]
        lean_deg = 5 * self.crossed * LEAN_SIGN[span] + waves[:, 1]  # clear of neighbours
        self.torso = compose(_pitch_roll_mats(TORSO_POS_M, self.slouch_deg, lean_deg),
                             crowd.root_mats[span])

    def head(self, front_m: float) -> FloatArray:
        """Heads: towards the speaker's eyes when looking, at notes or phones otherwise."""
        from vrexposure.render.batch import compose

        span, waves = self.chunk.span, self.waves
        to_h, to_elev = self.chunk.gaze_at_speaker(self.crowd.seat_m, front_m)
        fidget_h = 6 * waves[:, 2] + 3 * waves[:, 3]
        fidget_p = 3 * waves[:, 4]
        look = self.crowd.look[span] * (1 - self.phone_use)
        away_h = AWAY_HEADING_DEG[span] + fidget_h
        away_elev = np.where(self.phone_use > 0.5, -25.0, -8.0 + fidget_p)  # phone, or notes
        heading = (to_h + fidget_h * 0.3) * look + away_h * (1 - look)
        elev = (to_elev + fidget_p * 0.3) * look + away_elev * (1 - look) - 35 * self.phone_use
        # Pitch lifts +Y, so the face (-Y) goes down; a gaze at the speaker undoes the slouch.
        pitch = -elev - self.slouch_deg * look + self.crowd.nod_deg[span]
        return compose(
            _heading_pitch_mats(
                HEAD_POS_M,
                np.clip(heading, -HEAD_HEADING_LIMIT_DEG, HEAD_HEADING_LIMIT_DEG),
                np.clip(pitch, *HEAD_PITCH_RANGE_DEG),
            ),
            self.torso,
        )

    def head_part_mats(self, head: FloatArray) -> FloatArray:
        """Matrices of the heads batch: skin, hair, face, left and right brow, left and
        right half of the mouth per person."""
        from vrexposure.render.batch import compose, pos_hpr_scale_mats

        hair = compose(self.crowd.hair_mats[self.chunk.span], head)
        # A frown that reads from the stage: the inner ends of the brows pull down (a
        # positive roll lowers a brow's +x end), the brows drop a little, with hostility.
        hostile = self.crowd.hostile[self.chunk.span]
        brows = []
        for side in SIDES:
            pos = np.zeros((len(hostile), 3))
            pos[:, 0] = side * BROW_X_M
            pos[:, 1] = BROW_Y_M
            pos[:, 2] = BROW_Z_M - 0.006 * hostile
            hpr = np.zeros((len(hostile), 3))
            hpr[:, 2] = -side * BROW_FROWN_DEG * hostile
            brows.append(compose(pos_hpr_scale_mats(pos, hpr), head))
        mouth = []
        for side in SIDES:  # a positive roll lowers the +x end: the right half's outer corner
            pos = np.zeros((len(hostile), 3))
            pos[:, 0] = side * MOUTH_X_M
            pos[:, 1] = MOUTH_Y_M
            pos[:, 2] = MOUTH_Z_M
            hpr = np.zeros((len(hostile), 3))
            hpr[:, 2] = side * (MOUTH_FROWN_DEG * hostile - MOUTH_SMILE_DEG * (1 - hostile))
            mouth.append(compose(pos_hpr_scale_mats(pos, hpr), head))
        return self._hide(np.stack([head, hair, head, *brows, *mouth], axis=1))

    def body_part_mats(self) -> FloatArray:
        """Matrices of the bodies batch: BODY_PARTS per person, then 2 per phone user."""
        from vrexposure.render.batch import compose, pos_hpr_scale_mats

        mats = self._hide(compose(self._limbs_in_torso(), self.torso[:, None]))
        users = self.chunk.phone_members
        if not len(users):
            return mats
        # The phone grows as it is taken out and is gone while (nearly) put away.
        use = self.phone_use[users]
        scale = np.where((use > 0.05) & self.visible[users], use, 0.0)
        phone = compose(
            pos_hpr_scale_mats(
                PHONE_POS_M, (0.0, PHONE_TILT_DEG, 0.0), np.repeat(scale[:, None], 3, axis=1)
            ),
            self.torso[users],
        )
        phone_parts = compose(PHONE_LOCALS, phone[:, None])
        return np.concatenate([mats, phone_parts.reshape(-1, 4, 4)])

    def _limbs_in_torso(self) -> FloatArray:
        """(k, parts, 4, 4): the body parts in torso space; they only move with hostility."""
        from vrexposure.render.batch import compose, pos_hpr_scale_mats

        key = self.crowd.hostile[self.chunk.span].tobytes()
        if self.chunk._limbs is not None and self.chunk._limbs[0] == key:
            return self.chunk._limbs[1]
        crossed, phone_use, k = self.crossed, self.phone_use, len(self.chunk.members)
        # Both arms at once: axis 0 is the side (left, right).
        arm_hpr = np.zeros((2, k, 3))
        # Crossed arms: elbows forward of the chest (negative pitch brings them to -Y, the
        # front), forearms turned inwards across it, one above the other. (Rolled outwards
        # and turned out, as before, the arms stuck out sideways into the neighbours.)
        arm_hpr[:, :, 1] = 20.0 * (1 - crossed - phone_use) - 35.0 * crossed + 60.0 * phone_use
        arms = pos_hpr_scale_mats(SHOULDERS_M[:, None], arm_hpr)
        fore_hpr = np.zeros((2, k, 3))
        fore_hpr[:, :, 0] = -SIDES[:, None] * 75 * crossed
        fore_hpr[:, :, 1] = -10 * (1 - crossed) - 30 * phone_use + 8 * SIDES[:, None] * crossed
        fores = compose(pos_hpr_scale_mats(ELBOW_POS_M, fore_hpr), arms)
        torso = np.broadcast_to(np.eye(4, dtype=np.float32), (k, 4, 4))
        joints = (torso, torso, arms[0], arms[1], fores[0], fores[1], fores[0], fores[1])
        limbs = compose(BODY_PART_LOCALS, np.stack(joints, axis=1))
        self.chunk._limbs = (key, limbs)
        return limbs

    def _hide(self, mats: FloatArray) -> FloatArray:
        """(k, parts, 4, 4) -> (k * parts, 4, 4), zero for people not in the room."""
        return np.where(self.visible[:, None, None, None], mats, 0.0).reshape(-1, 4, 4)


def _ellipsoid(
    builder: MeshBuilder,
    rings: int,
    segments: int,
    color: Color4 = WHITE,
    radii: Sequence[float] = (1.0, 1.0, 1.0),
    center: Sequence[float] = (0.0, 0.0, 0.0),
    z_min: float = -1.0,
    forward: bool = False,
) -> None:
    """An ellipsoid with single-vertex poles (no degenerate triangles, no seam vertices).

    ``z_min`` > -1 cuts the bottom off (open); ``forward`` turns its +Z pole to -Y
    (eyes looking out of a face). Smooth normals, no texture coordinates needed.
    """
    bottom = math.asin(max(-1.0, z_min))
    closed = z_min <= -1.0
    thetas = np.linspace(bottom, math.pi / 2, rings + 1)[1 if closed else 0 : -1]
    phi = np.linspace(0.0, 2 * math.pi, segments, endpoint=False)
    tt, pp = np.meshgrid(thetas, phi, indexing="ij")
    ring = np.stack([np.cos(tt) * np.cos(pp), np.cos(tt) * np.sin(pp), np.sin(tt)], -1)
    poles = [(0.0, 0.0, 1.0), (0.0, 0.0, -1.0)] if closed else [(0.0, 0.0, 1.0)]
    unit = np.vstack([ring.reshape(-1, 3), poles])
    top, low = len(unit) - 1 - int(closed), len(unit) - 1
    tris: list[tuple[int, int, int]] = []
    for j in range(len(thetas) - 1):
        for i in range(segments):
            a, b = j * segments + i, j * segments + (i + 1) % segments
            tris += [(a, b, b + segments), (a, b + segments, a + segments)]
    last = (len(thetas) - 1) * segments
    for i in range(segments):
        tris.append((last + i, last + (i + 1) % segments, top))
        if closed:
            tris.append((low, (i + 1) % segments, i))
    pos = unit * np.asarray(radii)
    nrm = unit / np.asarray(radii)
    nrm /= np.linalg.norm(nrm, axis=1, keepdims=True)
    if forward:  # x stays, +Z -> -Y, +Y -> +Z (a rotation)
        pos, nrm = pos[:, [0, 2, 1]] * (1, -1, 1), nrm[:, [0, 2, 1]] * (1, -1, 1)
    pos = pos + np.asarray(center)
    builder.add(pos, nrm, np.zeros((len(pos), 2)), np.asarray(tris), color)


@dataclass
class _Templates:
    """The shapes the audience is made of, each in the space of its joint."""

    heads: list[tuple[MeshBuilder, MeshBuilder, MeshBuilder]]  # (skin, hair, face) per LOD
    box: MeshBuilder  # unit cube without back and bottom: torso, arms, phone
    dome: MeshBuilder  # upper half of the unit sphere: shoulders, hands
    legs: MeshBuilder  # both legs in the person's space (times the trousers colour)
    shoes: MeshBuilder
    brow: MeshBuilder  # one eyebrow (times the hair colour): they frown when hostile
    lip: MeshBuilder  # half a mouth (times LIPS): its corner turns down when hostile

    @staticmethod
    def make() -> _Templates:
        from vrexposure.render import geometry as g

        heads = []
        for lod, ((head_rings, head_segs), (hair_rings, hair_segs)) in enumerate(
            zip(HEAD_LOD, HAIR_LOD, strict=True)
        ):
            skin = g.MeshBuilder()  # times the skin colour
            _ellipsoid(skin, head_rings, head_segs, radii=(0.085, 0.1, 0.115), center=(0, 0, 0.07))
            # Nose: a small pyramid out of the face, a shade darker. Neck: its ends are
            # inside head and chest.
            _ellipsoid(skin, 1, 4, (0.9, 0.9, 0.9, 1), (0.015, 0.0175, 0.02), (0, -0.095, 0.0575),
                       z_min=0.0, forward=True)
            skin.cylinder(0.05, 0.1, WHITE, g.transform((0, 0, -0.11)), segments=4, caps=False)
            hair = g.MeshBuilder()  # unit sphere, times the hair colour, shaped per person
            _ellipsoid(hair, hair_rings, hair_segs, z_min=HAIR_CUT_Z)
            face = g.MeshBuilder()  # own colours
            for sx in (-0.035, 0.035):
                if lod == 0:
                    _ellipsoid(face, 1, 6, EYE_WHITE, (0.012,) * 3, (sx, -0.09, 0.085),
                               z_min=0.0, forward=True)
                    _ellipsoid(face, 1, 4, PUPIL, (0.007,) * 3, (sx, -0.1, 0.085),
                               z_min=0.0, forward=True)
                else:  # a few pixels from the back rows: flat
                    face.box((sx - 0.011, -0.1, 0.074), (sx + 0.011, -0.1, 0.096), EYE_WHITE,
                             faces="y")
                    face.box((sx - 0.006, -0.102, 0.079), (sx + 0.006, -0.102, 0.091), PUPIL,
                             faces="y")
            heads.append((skin, hair, face))  # the mouth: two parts of their own (a frown)
        box = g.MeshBuilder()
        box.box((-0.5, -0.5, -0.5), (0.5, 0.5, 0.5), WHITE, faces="xXyZ")
        dome = g.MeshBuilder()
        _ellipsoid(dome, 2, 6, z_min=0.0)
        # Legs never move and are only seen from the stage: no backs (+Y), no hidden ends,
        # no inner sides (6 cm apart, facing each other).
        legs, shoes = g.MeshBuilder(), g.MeshBuilder()
        for sx, outer in ((-0.1, "x"), (0.1, "X")):
            legs.box((sx - 0.07, -0.35, 0.42), (sx + 0.07, 0.1, 0.56), WHITE, faces="yZ" + outer)
            legs.box((sx - 0.065, -0.42, 0.0), (sx + 0.065, -0.3, 0.5), WHITE, faces="y" + outer)
            shoes.box((sx - 0.06, -0.5, 0.0), (sx + 0.06, -0.3, 0.08), WHITE, faces="yZ" + outer)
        brow = g.MeshBuilder()
        brow.box((-0.017, -0.004, -0.004), (0.017, 0.0, 0.004), (0.55, 0.55, 0.55, 1),
                 faces="yZz")
        lip = g.MeshBuilder()  # only its front: seen from the stage, 2 triangles
        lip.box((-0.017, -0.003, -0.005), (0.017, 0.0, 0.005), WHITE, faces="y")
        return _Templates(heads, box, dome, legs, shoes, brow, lip)

    def legs_batch(self, people: int) -> RigidBatch:
        from vrexposure.render.batch import RigidBatch

        batch = RigidBatch("audience-legs")
        legs, shoes = batch.add_template(self.legs, "legs"), batch.add_template(self.shoes, "shoes")
        for _ in range(people):
            batch.add_part(legs)
            batch.add_part(shoes)
        return batch

    def chunk(self, hall: NodePath, members: NDArray[np.intp], looks: _Looks) -> _Chunk:
        """Batches for ``members``: parts added person by person, in _Pose's order."""
        from vrexposure.render.batch import RigidBatch

        lod = min(int(members[0]) // CHUNK_SIZE, len(self.heads) - 1)
        skin_t, hair_t, face_t = self.heads[lod]
        heads = RigidBatch(f"audience-heads-{members[0]}")
        head_parts = (
            heads.add_template(skin_t, "head"),
            heads.add_template(hair_t, "hair"),
            heads.add_template(face_t, "face"),
            heads.add_template(self.brow, "brow"),
            heads.add_template(self.brow, "brow"),
            heads.add_template(self.lip, "lip"),
            heads.add_template(self.lip, "lip"),
        )
        bodies = RigidBatch(f"audience-bodies-{members[0]}")
        box, dome = bodies.add_template(self.box, "box"), bodies.add_template(self.dome, "dome")
        body_parts = [{"box": box, "dome": dome}[template] for template, _mat in BODY_PARTS]
        for _ in members:
            for template in head_parts:
                heads.add_part(template)
            for template in body_parts:
                bodies.add_part(template)
        phone_members = np.flatnonzero(PHONE_USER[members])
        for _ in phone_members:
            bodies.add_part(box)  # case
            bodies.add_part(box)  # screen
        ones = np.ones((len(members), 4), np.float32)
        skin, shirt = looks.skin[members], looks.shirt[members]
        hair = looks.hair[members]
        lips = np.tile(np.asarray(LIPS, np.float32), (len(members), 1))
        head_colors = np.stack([skin, hair, ones, hair, hair, lips, lips], axis=1).reshape(-1, 4)
        body_colors = np.stack([shirt] * 6 + [skin] * 2, axis=1).reshape(-1, 4)
        phone_colors = np.tile(np.asarray([PHONE_CASE, PHONE_SCREEN], np.float32),
                               (len(phone_members), 1))
        chunk = _Chunk(
            members, phone_members, heads, heads.attach(hall), bodies, bodies.attach(hall)
        )
        chunk.heads_np.setTag("stimulus", "audience")
        chunk.bodies_np.setTag("stimulus", "audience")
        _paint(heads, head_colors)
        _paint(bodies, np.concatenate([body_colors, phone_colors]))
        chunk.heads_np.hide()  # as chunk.shown says, until someone sits in it
        chunk.bodies_np.hide()
        return chunk


def _paint(batch: RigidBatch, colors: NDArray[np.floating]) -> None:
    """Give every part its colour once (parts hidden until the first frame poses them).

    Later updates pass no colours and RigidBatch keeps the last ones it was given:
    recolouring every frame would cost a multiply per vertex for colours that never change.
    """
    from vrexposure.render.batch import RigidBatch

    colors = np.asarray(colors, np.float32).reshape(-1, 4)
    batch.update(RigidBatch.hidden(batch.num_parts), colors)


def _room_texture() -> Texture:
    from vrexposure.render import geometry as g

    return g.noise_texture(51, (0.85, 0.85, 0.85), (1.0, 1.0, 1.0), 8, 128)


def _room(name: str, half: float, depth: float, ceil: float, rise: float) -> MeshBuilder:
    """Floor, walls, ceiling, lights, door, exit sign and windows of one hall."""
    from vrexposure.render import geometry as g

    room = g.MeshBuilder()
    wall = {
        "meeting_room": (0.82, 0.8, 0.74),
        "classroom": (0.85, 0.83, 0.7),
        "lecture_hall": (0.55, 0.42, 0.35),
    }[name]
    top = ceil + depth * rise / 2
    room.quad(
        [(-half, -BACK_WALL_M, 0), (half, -BACK_WALL_M, 0), (half, depth, 0), (-half, depth, 0)],
        (0.5, 0.5, 0.55, 1),
        uv_m=1.5,
        subdiv=(6, 8),
    )
    room.quad(
        [(-half, depth, 0), (half, depth, 0), (half, depth, top), (-half, depth, top)],
        (*wall, 1),
        subdiv=(4, 2),
    )
    for side in (-1, 1):
        x = side * half
        corners = [(x, -BACK_WALL_M, 0), (x, depth, 0), (x, depth, top), (x, -BACK_WALL_M, top)]
        if side > 0:
            corners = [corners[1], corners[0], corners[3], corners[2]]
        room.quad(corners, g.shade((*wall, 1), 0.92), subdiv=(8, 2))
    room.quad(
        [(-half, -BACK_WALL_M, top), (-half, depth, top), (half, depth, top), (half, -BACK_WALL_M, top)],
        (0.9, 0.9, 0.88, 1),
        normal=(0, 0, -1),
        subdiv=(4, 6),
    )
    back = -BACK_WALL_M
    room.quad([(half, back, 0), (-half, back, 0), (-half, back, top), (half, back, top)], (*wall, 1))
    for y in np.arange(2.0, depth, 3.0):
        # Ceiling lights: their tops touch the ceiling.
        room.box(
            (-half * 0.5, y, top - 0.05),
            (half * 0.5, y + 0.5, top - 0.02),
            (1.0, 1.0, 0.95, 1),
            faces="xXyYz",
        )
    # Door and exit sign on the back wall (their backs are in it), windows on the side.
    room.box(
        (half - 2.2, depth - 0.05, 0), (half - 1.2, depth, 2.1), (0.45, 0.3, 0.2, 1), faces="yxXZ"
    )
    room.box(
        (half - 2.0, depth - 0.08, 2.25),
        (half - 1.4, depth - 0.05, 2.45),
        (0.1, 0.7, 0.3, 1),
        faces="yxXzZ",
    )
    for y in np.arange(2.0, depth - 1.0, 2.5):
        room.box((-half, y, 1.0), (-half + 0.03, y + 1.4, 2.4), (0.55, 0.7, 0.85, 1), faces="X")
    return room


def _seats(name: str, per_row: int, rows: int, rise: float, depth: float) -> MeshBuilder:
    """Chairs (desks in the classroom, steps in the lecture hall) of every seat, one mesh.

    The speaker always sees them from the front: faces pointing away (+Y) or hidden
    under the seat are left out, the steps are one box per row, and rows behind the
    back wall are not built.
    """
    from vrexposure.render import geometry as g

    seats = g.MeshBuilder()
    chair = (0.2, 0.22, 0.3, 1) if name != "classroom" else (0.3, 0.32, 0.36, 1)
    row_half_m = per_row * SEAT_PITCH_X / 2
    for r in range(rows):
        y, z = r * ROW_PITCH_Y, r * rise
        if y - 0.2 > depth:
            break
        if rise and r > 0:  # the front row stands on the floor (a flat step would z-fight)
            seats.box(
                (-row_half_m, y - 0.55, 0), (row_half_m, y + 0.5, z), (0.35, 0.3, 0.3, 1),
                faces="yxXZ",
            )
        for c in range(per_row):
            x = (c - (per_row - 1) / 2) * SEAT_PITCH_X
            seats.box(
                (x - 0.25, y - 0.2, z + 0.42), (x + 0.25, y + 0.25, z + 0.48), chair, faces="yxXZ"
            )
            seats.box(
                (x - 0.25, y + 0.25, z + 0.45), (x + 0.25, y + 0.32, z + 0.95), chair, faces="yxXZ"
            )
            seats.box(
                (x - 0.03, y - 0.05, z), (x + 0.03, y + 0.1, z + 0.42), (0.1, 0.1, 0.1, 1),
                faces="yxX",
            )
            if name == "classroom":
                seats.box(
                    (x - 0.3, y - 0.6, z + 0.72),
                    (x + 0.3, y - 0.2, z + 0.75),
                    (0.7, 0.6, 0.45, 1),
                    faces="yxXzZ",
                )
    return seats


SCENE = SceneSpec(
    name="public_speaking",
    title="Speaking to an audience",
    params=(
        int_param("audience_size", 3, 0, 80, "people", "Number of people in the audience"),
        float_param("attention", 0.3, 0.0, 1.0, "", "Share of the audience looking at the speaker"),
        float_param("hostility", 0.0, 0.0, 1.0, "", "Frowns, crossed arms, whispering and phones"),
        float_param("front_row_distance_m", 4.0, MIN_FRONT_ROW_M, 10.0, "m",
                    "Distance to the first row"),
        choice_param(
            "hall", "meeting_room", ("meeting_room", "classroom", "lecture_hall"), "Room size"
        ),
        float_param("murmur_volume", 0.2, 0.0, 1.0, "", "Crowd murmur volume"),
        float_param("spotlight", 0.0, 0.0, 1.0, "", "Stage light on the speaker (0 = none)"),
    ),
    events=(
        EventSpec("cough", "A listener in the front row coughs", "c", 3.0),
        EventSpec("yawn", "A listener in the front row yawns", "y", 4.0),
        EventSpec("phone", "A listener takes out a phone and looks at it", "p", 15.0),
        EventSpec("walk_out", "A listener gets up and walks out", "w", 14.0),
    ),
    factory=PublicSpeakingScene,
)
