"""Public speaking: a hall with an audience watching the patient at a lectern."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, ClassVar

from vrexposure.render.scene_base import DEFAULT_EASE_TIME_S, SceneBase
from vrexposure.scene_api import SceneSpec, choice_param, float_param, int_param

if TYPE_CHECKING:
    from panda3d.core import NodePath

MAX_AUDIENCE = 80
STAGE_M = 0.3  # the speaker's platform; the eye is 1.2 m above it
SEAT_PITCH_X, ROW_PITCH_Y = 0.65, 1.05
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


def seat_order(seats_per_row: int, rows: int) -> list[tuple[int, int]]:
    """Seats filled front-centre first: (row, column) pairs ordered by distance from the middle."""
    centre = (seats_per_row - 1) / 2
    seats = [(r, c) for r in range(rows) for c in range(seats_per_row)]
    return sorted(seats, key=lambda rc: (rc[0] * 1.3 + abs(rc[1] - centre) * 0.55, rc[1]))


class _Person:
    def __init__(self, root: NodePath, index: int) -> None:
        self.index = index
        self.root = root
        self.torso = root.find("**/torso")
        self.head = root.find("**/head")
        self.arms = [root.find("**/arm-left"), root.find("**/arm-right")]
        self.fores = [root.find("**/fore-left"), root.find("**/fore-right")]
        self.phone = root.find("**/phone")
        h = (index * 0.618034) % 1.0
        self.attentive_rank = h
        self.hostile_rank = (index * 0.414214 + 0.3) % 1.0
        self.look = 0.0  # 0 away, 1 at the speaker (eased per person)
        self.hostile = 0.0
        self.away_h = ((index * 53) % 120) - 60.0
        self.phase = index * 1.7


class PublicSpeakingScene(SceneBase):
    """Seated audience figures in a meeting room, classroom or lecture hall."""

    sound_name = "murmur"
    sound_param = "murmur_volume"
    near_far = (0.05, 120.0)
    background_color = (0.05, 0.05, 0.06)
    channel_ease_s: ClassVar[dict[str, float]] = {"hall=meeting_room": 1.5, "hall=classroom": 1.5, "hall=lecture_hall": 1.5}

    def __init__(self, spec: SceneSpec | None = None, ease_time_s: float = DEFAULT_EASE_TIME_S):
        super().__init__(spec or SCENE, ease_time_s)
        self._halls: dict[str, tuple[NodePath, list[_Person], list[tuple[int, int]]]] = {}

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
        for name in HALLS:
            self._halls[name] = self._build_hall(parent, name)

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
        self._key = g.sun_light(parent, (0.6, 0.58, 0.55), (200, -50, 0))
        self._spot = g.spot_light(
            parent,
            (1.0, 0.95, 0.8),
            (0, 7.0, 4.6),
            (0, 0.3, STAGE_M),
            fov_deg=35,
            exponent=4,
            lit=self._stage,
        )

    def _build_hall(
        self, parent: NodePath, name: str
    ) -> tuple[NodePath, list[_Person], list[tuple[int, int]]]:
        import numpy as np

        from vrexposure.render import geometry as g

        half, depth, ceil, per_row, rise = HALLS[name]
        hall = parent.attachNewNode(name)
        room = g.MeshBuilder()
        wall = {
            "meeting_room": (0.82, 0.8, 0.74),
            "classroom": (0.85, 0.83, 0.7),
            "lecture_hall": (0.55, 0.42, 0.35),
        }[name]
        room.quad(
            [(-half, -2.5, 0), (half, -2.5, 0), (half, depth, 0), (-half, depth, 0)],
            (0.5, 0.5, 0.55, 1),
            uv_m=1.5,
            subdiv=(6, 8),
        )
        room.quad(
            [
                (-half, depth, 0),
                (half, depth, 0),
                (half, depth, ceil + depth * rise / 2),
                (-half, depth, ceil + depth * rise / 2),
            ],
            (*wall, 1),
            subdiv=(4, 2),
        )
        for side in (-1, 1):
            x = side * half
            top = ceil + depth * rise / 2
            corners = [(x, -2.5, 0), (x, depth, 0), (x, depth, top), (x, -2.5, top)]
            if side > 0:
                corners = [corners[1], corners[0], corners[3], corners[2]]
            room.quad(corners, g.shade((*wall, 1), 0.92), subdiv=(8, 2))
        room.quad(
            [
                (-half, -2.5, ceil + depth * rise / 2),
                (-half, depth, ceil + depth * rise / 2),
                (half, depth, ceil + depth * rise / 2),
                (half, -2.5, ceil + depth * rise / 2),
            ],
            (0.9, 0.9, 0.88, 1),
            normal=(0, 0, -1),
            subdiv=(4, 6),
        )
        room.quad(
            [(half, -2.5, 0), (-half, -2.5, 0), (-half, -2.5, 4), (half, -2.5, 4)], (*wall, 1)
        )
        top = ceil + depth * rise / 2
        for y in np.arange(2.0, depth, 3.0):
            room.box(
                (-half * 0.5, y, top - 0.05), (half * 0.5, y + 0.5, top - 0.02), (1.0, 1.0, 0.95, 1)
            )
        # Exit sign and door at the back, windows or panels on the side.
        room.box((half - 2.2, depth - 0.05, 0), (half - 1.2, depth, 2.1), (0.45, 0.3, 0.2, 1))
        room.box(
            (half - 2.0, depth - 0.08, 2.25), (half - 1.4, depth - 0.05, 2.45), (0.1, 0.7, 0.3, 1)
        )
        for y in np.arange(2.0, depth - 1.0, 2.5):
            room.box((-half, y, 1.0), (-half + 0.03, y + 1.4, 2.4), (0.55, 0.7, 0.85, 1), faces="X")
        hnode = room.attach(hall, "room")
        hnode.setTexture(g.noise_texture(51, (0.85, 0.85, 0.85), (1.0, 1.0, 1.0), 8, 128))

        rows = 1 + MAX_AUDIENCE // per_row
        order = seat_order(per_row, rows)
        seats = g.MeshBuilder()
        chair = (0.2, 0.22, 0.3, 1) if name != "classroom" else (0.3, 0.32, 0.36, 1)
        for r in range(rows):
            for c in range(per_row):
                x, y, z = (c - (per_row - 1) / 2) * SEAT_PITCH_X, r * ROW_PITCH_Y, r * rise
                seats.box((x - 0.25, y - 0.2, z + 0.42), (x + 0.25, y + 0.25, z + 0.48), chair)
                seats.box((x - 0.25, y + 0.25, z + 0.45), (x + 0.25, y + 0.32, z + 0.95), chair)
                seats.box(
                    (x - 0.03, y - 0.05, z), (x + 0.03, y + 0.1, z + 0.42), (0.1, 0.1, 0.1, 1)
                )
                if rise:
                    seats.box(
                        (x - SEAT_PITCH_X / 2, y - 0.55, 0),
                        (x + SEAT_PITCH_X / 2, y + 0.5, z),
                        (0.35, 0.3, 0.3, 1),
                    )
                if name == "classroom":
                    seats.box(
                        (x - 0.3, y - 0.6, z + 0.72),
                        (x + 0.3, y - 0.2, z + 0.75),
                        (0.7, 0.6, 0.45, 1),
                    )
        self_seats = seats.attach(hall, "seats")
        self_seats.setName("seats")

        people: list[_Person] = []
        rng = np.random.default_rng(17 + len(name))
        for i in range(MAX_AUDIENCE):
            r, c = order[i]
            x, y, z = (c - (per_row - 1) / 2) * SEAT_PITCH_X, r * ROW_PITCH_Y, r * rise
            root = self._person(hall, rng, i)
            root.setPos(x, y, z)
            people.append(_Person(root, i))
        return hall, people, order

    def _person(self, parent: NodePath, rng: Any, i: int) -> NodePath:
        from vrexposure.render import geometry as g

        skin = (*SKIN[int(rng.integers(0, len(SKIN)))], 1.0)
        hair = (*HAIR[int(rng.integers(0, len(HAIR)))], 1.0)
        shirt = (*CLOTHES[int(rng.integers(0, len(CLOTHES)))], 1.0)
        trousers = g.shade(CLOTHES[int(rng.integers(0, len(CLOTHES)))], 0.6)
        scale = float(rng.uniform(0.92, 1.08))
        root = parent.attachNewNode(f"person{i}")
        root.setScale(scale)
        legs = g.MeshBuilder()
        for sx in (-0.1, 0.1):
            legs.box((sx - 0.07, -0.35, 0.42), (sx + 0.07, 0.1, 0.56), trousers)
            legs.box((sx - 0.065, -0.42, 0.0), (sx + 0.065, -0.3, 0.5), trousers)
            legs.box((sx - 0.06, -0.5, 0.0), (sx + 0.06, -0.3, 0.08), (0.1, 0.08, 0.07, 1))
        legs.attach(root, "legs")
        torso_np = root.attachNewNode("torso")
        torso_np.setPos(0, 0.05, 0.5)
        torso = g.MeshBuilder()
        torso.box((-0.19, -0.1, 0.0), (0.19, 0.12, 0.55), shirt)
        torso.sphere((0.2, 0.12, 0.08), shirt, center=(0, 0.01, 0.52), rings=4, segments=10)
        torso.cylinder(0.05, 0.1, skin, g.transform((0, 0.01, 0.55)))
        torso.attach(torso_np, "torso-mesh")
        head_np = torso_np.attachNewNode("head")
        head_np.setPos(0, 0.01, 0.66)
        head = g.MeshBuilder()
        head.sphere((0.085, 0.1, 0.115), skin, center=(0, 0, 0.07), rings=7, segments=12)
        long_hair = rng.random() < 0.45
        head.sphere(
            (0.095, 0.105, 0.1 if not long_hair else 0.12),
            hair,
            center=(0, 0.025, 0.1 if not long_hair else 0.06),
            rings=6,
            segments=12,
        )
        for sx in (-0.035, 0.035):
            head.sphere(
                0.012, (0.95, 0.95, 0.95, 1), center=(sx, -0.09, 0.085), rings=3, segments=6
            )
            head.sphere(0.007, (0.1, 0.07, 0.05, 1), center=(sx, -0.1, 0.085), rings=3, segments=6)
        head.box((-0.015, -0.115, 0.04), (0.015, -0.095, 0.075), g.shade(skin, 0.9))
        head.box((-0.03, -0.1, 0.005), (0.03, -0.09, 0.015), (0.55, 0.3, 0.3, 1))
        head.attach(head_np, "head-mesh")
        for side, name in ((-1, "left"), (1, "right")):
            arm_np = torso_np.attachNewNode(f"arm-{name}")
            arm_np.setPos(side * 0.23, 0.01, 0.5)
            arm = g.MeshBuilder()
            arm.box((-0.05, -0.05, -0.3), (0.05, 0.05, 0.02), shirt)
            arm.attach(arm_np, "upper")
            fore_np = arm_np.attachNewNode(f"fore-{name}")
            fore_np.setPos(0, 0, -0.28)
            fore = g.MeshBuilder()
            fore.box((-0.045, -0.3, -0.045), (0.045, 0.0, 0.045), shirt)
            fore.sphere((0.04, 0.05, 0.03), skin, center=(0, -0.33, 0), rings=3, segments=6)
            fore.attach(fore_np, "lower")
        phone = g.MeshBuilder()
        phone.box((-0.035, -0.07, 0), (0.035, 0.07, 0.01), (0.05, 0.05, 0.06, 1))
        phone.box((-0.03, -0.06, 0.0105), (0.03, 0.06, 0.011), (0.6, 0.8, 1.0, 1), faces="Z")
        pnode = phone.attach(torso_np, "phone")
        pnode.setPos(0, -0.32, 0.28)
        pnode.setP(45)
        return root

    def animate(self, dt_s: float, time_s: float) -> None:
        from vrexposure.render import geometry as g
        from vrexposure.render.scene_base import ease_exponential

        size = max(0.0, self.v("audience_size"))
        attention = min(1.0, max(0.0, self.v("attention")))
        hostility = min(1.0, max(0.0, self.v("hostility")))
        front = max(0.5, self.v("front_row_distance_m"))
        spot = min(1.0, max(0.0, self.v("spotlight")))
        speaker = (0.0, 0.0, STAGE_M + 1.2)
        for name, (hall, people, _order) in self._halls.items():
            weight = self.v(f"hall={name}")
            if weight < 0.5:
                hall.hide()
                continue
            hall.show()
            hall.setPos(0, front, 0)
            for person in people:
                vis = min(1.0, max(0.0, size - person.index))
                if vis <= 0.0:
                    person.root.hide()
                    continue
                person.root.show()
                want_look = 1.0 if person.attentive_rank < attention else 0.0
                want_hostile = 1.0 if person.hostile_rank < hostility else 0.0
                person.look = ease_exponential(person.look, want_look, dt_s, 0.6)
                person.hostile = ease_exponential(person.hostile, want_hostile, dt_s, 0.8)
                pos = person.root.getPos(self.root)
                head_pos = (pos.x, pos.y, pos.z + 1.25)
                to_h = math.degrees(
                    math.atan2(-(speaker[0] - head_pos[0]), -(speaker[1] - head_pos[1]))
                )
                to_p = math.degrees(
                    math.atan2(
                        speaker[2] - head_pos[2],
                        math.hypot(speaker[0] - head_pos[0], speaker[1] - head_pos[1]),
                    )
                )
                t = time_s + person.phase
                fidget_h = 6 * math.sin(t * 0.37) + 3 * math.sin(t * 1.1)
                fidget_p = 3 * math.sin(t * 0.53)
                hostile = person.hostile
                phone_use = hostile if (person.index % 3 == 0) else 0.0
                crossed = hostile if (person.index % 3 != 0) else 0.0
                away_h = person.away_h + fidget_h
                away_p = -25.0 if phone_use > 0.5 else -8.0 + fidget_p
                look = person.look * (1 - phone_use)
                h = (to_h + fidget_h * 0.3) * look + away_h * (1 - look)
                p = (-to_p + fidget_p * 0.3) * look + away_p * (1 - look) - 35 * phone_use
                person.head.setHpr(max(-70, min(70, h)), max(-40, min(25, -p if look else p)), 0)
                lean = 8 * crossed * (1 if person.index % 2 else -1)
                slouch = -10 * crossed + 6 * phone_use + 1.5 * math.sin(t * 0.21)
                person.torso.setHpr(0, slouch, lean + 1.0 * math.sin(t * 0.3))
                for k, (arm, fore) in enumerate(zip(person.arms, person.fores, strict=True)):
                    side = -1 if k == 0 else 1
                    rest_p, rest_r = 20.0, 0.0
                    cross_p, cross_r = 55.0, -side * 35.0
                    phone_p = 60.0
                    arm.setHpr(
                        0,
                        rest_p * (1 - crossed - phone_use)
                        + cross_p * crossed
                        + phone_p * phone_use,
                        rest_r * (1 - crossed) + cross_r * crossed,
                    )
                    fore.setHpr(
                        side * 70 * crossed, -10 * (1 - crossed) - 30 * phone_use + 15 * crossed, 0
                    )
                if phone_use > 0.05:
                    person.phone.show()
                    person.phone.setAlphaScale(1.0)
                    person.phone.setScale(phone_use)
                else:
                    person.phone.hide()
        house = 1.0 - 0.55 * spot
        g.set_light_color(self._ambient, (0.45 * house, 0.45 * house, 0.47 * house, 1))
        g.set_light_color(self._key, (0.62 * house, 0.6 * house, 0.56 * house, 1))
        g.set_light_color(self._spot, (1.6 * spot, 1.5 * spot, 1.25 * spot, 1))
        self._pool.setAlphaScale(spot)
        self._beam.setAlphaScale(spot)
        self._pool.show() if spot > 0.01 else self._pool.hide()
        self._beam.show() if spot > 0.01 else self._beam.hide()

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

    def eye_position(self) -> tuple[float, float, float]:
        return (0.0, 0.0, STAGE_M + 1.2)

    def view_hpr(self) -> tuple[float, float, float]:
        return (0.0, -7.0, 0.0)


SCENE = SceneSpec(
    name="public_speaking",
    title="Speaking to an audience",
    params=(
        int_param("audience_size", 3, 0, 80, "people", "Number of people in the audience"),
        float_param("attention", 0.3, 0.0, 1.0, "", "Share of the audience looking at the speaker"),
        float_param("hostility", 0.0, 0.0, 1.0, "", "Frowns, crossed arms, whispering and phones"),
        float_param("front_row_distance_m", 4.0, 1.0, 10.0, "m", "Distance to the first row"),
        choice_param(
            "hall", "meeting_room", ("meeting_room", "classroom", "lecture_hall"), "Room size"
        ),
        float_param("murmur_volume", 0.2, 0.0, 1.0, "", "Crowd murmur volume"),
        float_param("spotlight", 0.0, 0.0, 1.0, "", "Stage light on the speaker (0 = none)"),
    ),
    factory=PublicSpeakingScene,
)
