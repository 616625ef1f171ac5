"""Flying: a seat in an aircraft cabin, from boarding to turbulence and landing."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, ClassVar

from vrexposure.render.scene_base import DEFAULT_EASE_TIME_S, SceneBase
from vrexposure.scene_api import SceneSpec, bool_param, choice_param, float_param

if TYPE_CHECKING:
    from panda3d.core import NodePath

WALL_X = -0.45  # the cabin wall beside the patient's window seat
ROW_PITCH = 0.82
ROWS = 16
WIN_Z0, WIN_Z1, WIN_HALF_W = 0.88, 1.28, 0.13
SEAT_XS = (0.05, 0.55, 1.05, 2.05, 2.55, 3.05)
# phase -> (altitude m, aircraft pitch deg, ground speed m/s)
PHASES = {
    "boarding": (0.0, 0.0, 0.0),
    "taxi": (0.0, 0.0, 8.0),
    "takeoff": (350.0, 12.0, 80.0),
    "cruise": (10000.0, 1.5, 230.0),
    "landing": (500.0, -3.0, 75.0),
}
SKIN = [(0.96, 0.8, 0.68), (0.85, 0.65, 0.5), (0.55, 0.38, 0.26), (0.92, 0.74, 0.6)]
HAIR = [(0.1, 0.08, 0.06), (0.4, 0.26, 0.14), (0.7, 0.6, 0.4), (0.8, 0.8, 0.78)]


class FlyingScene(SceneBase):
    """Window seat in a single-aisle cabin; the world outside follows the flight phase."""

    sound_name = "engine"
    sound_param = "engine_volume"
    near_far = (0.03, 60000.0)
    background_color = (0.6, 0.75, 0.9)
    channel_ease_s: ClassVar[dict[str, float]] = {"altitude_log": 5.0, "pitch_deg": 3.0, "ground_speed": 4.0}

    def __init__(self, spec: SceneSpec | None = None, ease_time_s: float = DEFAULT_EASE_TIME_S):
        super().__init__(spec or SCENE, ease_time_s)
        self._passengers: list[tuple[NodePath, float]] = []
        self._shades: list[tuple[NodePath, bool]] = []
        self._ground_offset = 0.0

    def channel_targets(self, params: Any) -> dict[str, float]:
        targets = super().channel_targets(params)
        altitude, pitch, speed = PHASES[str(params["flight_phase"])]
        targets["altitude_log"] = math.log10(1.0 + altitude)
        targets["pitch_deg"] = pitch
        targets["ground_speed"] = speed
        return targets

    def build(self, parent: NodePath) -> None:
        import numpy as np
        from panda3d.core import Fog

        from vrexposure.render import geometry as g

        rng = np.random.default_rng(8)
        self._outside = parent.attachNewNode("outside")
        sky = g.MeshBuilder()

        def sky_color(p: Any) -> Any:
            t = np.clip(p[:, 2:3] / 30000.0, 0.0, 1.0) ** 0.5
            rgb = np.array([0.82, 0.88, 0.95]) * (1 - t) + np.array([0.22, 0.42, 0.8]) * t
            return np.hstack([rgb, np.ones((len(p), 1))]).astype(np.float32)

        sky.sphere(40000.0, sky_color, rings=12, segments=24, inside=True, z_min=-0.5)
        dome = sky.attach(self._outside, "sky")
        g.set_unlit(dome)
        dome.setBin("background", 0)
        dome.setDepthWrite(False)
        dome.setFogOff(1)
        self._world = self._outside.attachNewNode("ground-world")
        ground = g.MeshBuilder()
        ground.quad(
            [(-30000, -30000, 0), (30000, -30000, 0), (30000, 30000, 0), (-30000, 30000, 0)],
            (0.42, 0.5, 0.32, 1),
            uv_m=400.0,
        )
        self._ground = ground.attach(self._world, "ground")
        self._ground.setTexture(g.noise_texture(81, (0.6, 0.62, 0.5), (1.0, 1.0, 0.9), 8, 128))
        apron = g.MeshBuilder()
        apron.quad(
            [(-400, -3000, 0.05), (60, -3000, 0.05), (60, 3000, 0.05), (-400, 3000, 0.05)],
            (0.45, 0.45, 0.46, 1),
        )
        for y in range(-3000, 3000, 30):
            apron.quad(
                [(-42, y, 0.1), (-40, y, 0.1), (-40, y + 15, 0.1), (-42, y + 15, 0.1)],
                (0.95, 0.9, 0.4, 1),
            )
        apron.box((-140, -200, 0), (-90, 260, 14), (0.75, 0.78, 0.8, 1))
        apron.box((-141, -200, 5), (-139, 260, 13), (0.3, 0.45, 0.6, 1), faces="X")
        apron.box((-100, 300, 0), (-80, 320, 35), (0.8, 0.8, 0.8, 1))
        apron.box((-104, 296, 35), (-76, 324, 40), (0.35, 0.5, 0.6, 1))
        for k in range(3):
            y = -120 + k * 130
            apron.cylinder(
                2.0, 30, (0.93, 0.93, 0.95, 1), g.transform((-70, y - 15, 4), (0, -90, 0))
            )
            apron.box((-85, y, 3.5), (-55, y + 4, 4.5), (0.9, 0.9, 0.92, 1))
            apron.box((-71, y - 15, 6), (-69, y - 10, 11), (0.2, 0.3, 0.6, 1))
        self._airport = apron.attach(self._world, "airport")
        fields = g.MeshBuilder()
        for _ in range(140):
            cx, cy = rng.uniform(-8000, 8000), rng.uniform(-8000, 8000)
            w, h = rng.uniform(150, 600), rng.uniform(150, 600)
            col = ((0.55, 0.6, 0.3), (0.35, 0.5, 0.25), (0.65, 0.58, 0.4), (0.3, 0.4, 0.25))[
                int(rng.integers(0, 4))
            ]
            fields.quad(
                [(cx, cy, 0.2), (cx + w, cy, 0.2), (cx + w, cy + h, 0.2), (cx, cy + h, 0.2)],
                (*col, 1),
            )
        fields.attach(self._world, "fields")
        clouds = g.MeshBuilder()
        for _ in range(70):
            c = (rng.uniform(-20000, 20000), rng.uniform(-20000, 20000), rng.uniform(-150, 150))
            r = rng.uniform(500, 1400)
            clouds.sphere((r, r * 0.8, r * 0.3), (1, 1, 1, 1), rings=4, segments=8, center=c)
        self._clouds = clouds.attach(self._world, "clouds")
        self._clouds.setZ(2200)
        g.set_unlit(self._clouds)
        self._fog = Fog("haze")
        self._fog.setColor(0.78, 0.85, 0.93)
        self._world.setFog(self._fog)
        self._outside_light = g.ambient_light(self._world, (0.75, 0.75, 0.75))
        g.sun_light(self._world, (0.6, 0.58, 0.5), (30, -50, 0))

        self._cabin = parent.attachNewNode("cabin")
        self._build_cabin(self._cabin, rng)

    def _build_cabin(self, cabin: NodePath, rng: Any) -> None:
        from vrexposure.render import geometry as g

        shell = g.MeshBuilder()
        wall = (0.9, 0.9, 0.87, 1)
        y0, y1 = -1.2, ROWS * ROW_PITCH + 1.0
        ys = [k * ROW_PITCH + 0.05 for k in range(-1, ROWS)]
        # Left wall: panels between windows, below and above them; upper part leans in.
        prev = y0
        for wy in ys:
            a, b = wy - WIN_HALF_W, wy + WIN_HALF_W
            shell.quad(
                [
                    (WALL_X, prev, WIN_Z0),
                    (WALL_X, a, WIN_Z0),
                    (WALL_X, a, WIN_Z1),
                    (WALL_X, prev, WIN_Z1),
                ],
                wall,
            )
            # window reveal (the thick frame around the hole)
            shell.box(
                (WALL_X - 0.08, a - 0.02, WIN_Z0 - 0.03),
                (WALL_X, b + 0.02, WIN_Z0),
                wall,
                faces="Z",
            )
            shell.box(
                (WALL_X - 0.08, a - 0.02, WIN_Z1),
                (WALL_X, b + 0.02, WIN_Z1 + 0.03),
                wall,
                faces="z",
            )
            shell.box((WALL_X - 0.08, a - 0.02, WIN_Z0), (WALL_X, a, WIN_Z1), wall, faces="Y")
            shell.box((WALL_X - 0.08, b, WIN_Z0), (WALL_X, b + 0.02, WIN_Z1), wall, faces="y")
            prev = b
        shell.quad(
            [
                (WALL_X, prev, WIN_Z0),
                (WALL_X, y1, WIN_Z0),
                (WALL_X, y1, WIN_Z1),
                (WALL_X, prev, WIN_Z1),
            ],
            wall,
        )
        shell.quad(
            [(WALL_X, y0, 0), (WALL_X, y1, 0), (WALL_X, y1, WIN_Z0), (WALL_X, y0, WIN_Z0)],
            wall,
            subdiv=(8, 1),
        )
        shell.quad(
            [
                (WALL_X, y0, WIN_Z1),
                (WALL_X, y1, WIN_Z1),
                (WALL_X + 0.25, y1, 1.75),
                (WALL_X + 0.25, y0, 1.75),
            ],
            wall,
            subdiv=(8, 1),
        )
        right = 3.55
        shell.quad(
            [(right, y1, 0), (right, y0, 0), (right, y0, 1.75), (right, y1, 1.75)],
            g.shade(wall, 0.95),
            subdiv=(8, 1),
        )
        carpet = (0.25, 0.28, 0.38, 1)
        shell.quad(
            [(WALL_X, y0, 0), (right, y0, 0), (right, y1, 0), (WALL_X, y1, 0)],
            carpet,
            subdiv=(4, 10),
        )
        # Overhead bins and ceiling.
        bin_col = (0.93, 0.93, 0.9, 1)
        shell.box((WALL_X + 0.25, y0, 1.75), (0.95, y1, 2.1), bin_col, faces="zX")
        shell.box((2.15, y0, 1.75), (right, y1, 2.1), bin_col, faces="zx")
        for k in range(ROWS):
            y = k * ROW_PITCH * 2 + 0.4
            shell.box((0.93, y, 1.8), (0.96, y + 0.02, 2.05), (0.6, 0.6, 0.6, 1))
            shell.box((2.14, y, 1.8), (2.17, y + 0.02, 2.05), (0.6, 0.6, 0.6, 1))
        shell.quad(
            [(0.95, y0, 2.25), (0.95, y1, 2.25), (2.15, y1, 2.25), (2.15, y0, 2.25)],
            (0.95, 0.95, 0.93, 1),
            normal=(0, 0, -1),
        )
        shell.quad([(0.95, y0, 2.1), (0.95, y1, 2.1), (0.95, y1, 2.25), (0.95, y0, 2.25)], bin_col)
        shell.quad([(2.15, y1, 2.1), (2.15, y0, 2.1), (2.15, y0, 2.25), (2.15, y1, 2.25)], bin_col)
        shell.quad(
            [(WALL_X, y1, 0), (right, y1, 0), (right, y1, 2.3), (WALL_X, y1, 2.3)],
            (0.75, 0.72, 0.68, 1),
        )
        shell.box((1.2, y1 - 0.05, 0), (1.9, y1, 2.0), (0.6, 0.6, 0.62, 1))
        shell.attach(cabin, "shell")

        seats = g.MeshBuilder()
        fabric = (0.2, 0.27, 0.45, 1)
        for r in range(ROWS):
            y = r * ROW_PITCH + 0.05 + 0.38
            for x in SEAT_XS:
                seats.box((x - 0.23, y - 0.05, 0.4), (x + 0.23, y + 0.12, 1.12), fabric)
                seats.box((x - 0.2, y - 0.07, 0.88), (x + 0.2, y - 0.05, 1.1), (0.92, 0.92, 0.9, 1))
                seats.box(
                    (x - 0.23, y + 0.12, 0.4), (x + 0.23, y + 0.55, 0.52), g.shade(fabric, 1.1)
                )
                seats.box(
                    (x - 0.17, y - 0.08, 0.55), (x + 0.17, y - 0.05, 0.8), (0.55, 0.55, 0.57, 1)
                )
                seats.box((x - 0.03, y + 0.2, 0), (x + 0.03, y + 0.3, 0.4), (0.3, 0.3, 0.32, 1))
            for x in (SEAT_XS[0] - 0.25, SEAT_XS[2] + 0.25, SEAT_XS[3] - 0.25):
                seats.box(
                    (x - 0.03, y + 0.05, 0.55), (x + 0.03, y + 0.5, 0.62), (0.4, 0.4, 0.42, 1)
                )
        seats.attach(cabin, "seats")

        for r in range(ROWS):
            y = r * ROW_PITCH + 0.05 + 0.6
            for k, x in enumerate(SEAT_XS):
                if r == 0 and k == 0:
                    continue
                person = g.MeshBuilder()
                skin = (*SKIN[int(rng.integers(0, len(SKIN)))], 1.0)
                hair = (*HAIR[int(rng.integers(0, len(HAIR)))], 1.0)
                shirt = g.shade(
                    (rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.7), rng.uniform(0.2, 0.7)), 1
                )
                person.box((-0.19, -0.1, 0.55), (0.19, 0.12, 1.05), shirt)
                person.sphere((0.085, 0.1, 0.115), skin, center=(0, 0, 1.2), rings=6, segments=10)
                person.sphere((0.095, 0.1, 0.1), hair, center=(0, 0.03, 1.23), rings=5, segments=10)
                node = person.attach(cabin, "passenger")
                node.setPos(x, y, 0)
                node.setH(float(rng.uniform(-15, 15)))
                self._passengers.append((node, float(rng.random())))

        for k, wy in enumerate(ys):
            shade = g.MeshBuilder()
            shade.quad(
                [
                    (WALL_X - 0.04, wy - WIN_HALF_W, 0),
                    (WALL_X - 0.04, wy + WIN_HALF_W, 0),
                    (WALL_X - 0.04, wy + WIN_HALF_W, WIN_Z1 - WIN_Z0),
                    (WALL_X - 0.04, wy - WIN_HALF_W, WIN_Z1 - WIN_Z0),
                ],
                (0.85, 0.85, 0.82, 1),
            )
            node = shade.attach(cabin, f"shade{k}")
            node.setZ(WIN_Z0)
            mine = abs(wy - 0.05) < 0.01
            self._shades.append((node, mine or rng.random() < 0.7))

        lights = g.MeshBuilder()
        lights.box(
            (WALL_X + 0.27, y0, 1.72), (WALL_X + 0.35, y1, 1.75), (1.0, 0.97, 0.9, 1), faces="z"
        )
        lights.box((1.0, y0, 2.24), (2.1, y1, 2.245), (1.0, 0.98, 0.94, 1), faces="z")
        self._strip = lights.attach(cabin, "light-strips")
        g.set_unlit(self._strip)
        self._signs: list[NodePath] = []
        for y in (0.75, 2.4, 4.05, 5.7):
            panel = g.MeshBuilder()
            panel.box((-0.2, 0.0, -0.05), (0.2, 0.03, 0.05), (0.75, 0.75, 0.74, 1))
            pnode = panel.attach(cabin, "service-unit")
            pnode.setPos(0.45, y, 1.68)
            sign = g.MeshBuilder()
            sign.box((-0.12, -0.005, -0.035), (0.12, 0.0, 0.035), (1.0, 0.78, 0.25, 1), faces="y")
            snode = sign.attach(pnode, "seatbelt-sign")
            g.set_unlit(snode)
            g.text_card(
                snode, "FASTEN SEAT BELT", 0.022, (0.15, 0.1, 0.0, 1), pos=(0, -0.008, -0.01)
            )
            self._signs.append(snode)
        self._ambient = g.ambient_light(cabin, (0.62, 0.62, 0.62))
        self._light = g.sun_light(cabin, (0.55, 0.55, 0.52), (-60, -60, 0))

    def animate(self, dt_s: float, time_s: float) -> None:
        from panda3d.core import TextureStage

        from vrexposure.render import geometry as g

        altitude = max(0.0, 10 ** self.v("altitude_log") - 1.0)
        pitch = self.v("pitch_deg")
        speed = max(0.0, self.v("ground_speed"))
        turb = min(1.0, max(0.0, self.v("turbulence")))
        occupancy = min(1.0, max(0.0, self.v("cabin_occupancy")))
        shade_open = min(1.0, max(0.0, self.v("window_shade_open")))
        belt = min(1.0, max(0.0, self.v("seatbelt_sign")))
        light = self.v("light_level")

        t = time_s
        shake = math.sin(t * 7.3) * 0.6 + math.sin(t * 13.1 + 1) * 0.3 + math.sin(t * 2.1) * 0.8
        jolt = (math.sin(t * 1.7) * math.sin(t * 0.63)) ** 3
        self._cabin.setPos(0.008 * turb * shake, 0, 0.02 * turb * (shake + 3 * jolt))
        self._cabin.setHpr(0, 0.5 * turb * shake, 0.8 * turb * math.sin(t * 3.1 + 2))
        bank = 2.5 * turb * math.sin(t * 0.9) + 6 * turb * jolt
        self._outside.setHpr(0, -pitch + 0.8 * turb * shake, -bank)
        self._world.setZ(-altitude - 1.7 - 4 * turb * jolt)
        self._world.setX(9.0)
        self._ground_offset = (self._ground_offset + speed * dt_s) % 4000.0
        self._ground.setTexOffset(TextureStage.getDefault(), 0, self._ground_offset / 400.0)
        near_ground = max(0.0, 1.0 - altitude / 80.0)
        self._airport.setY(-self._ground_offset * near_ground)
        self._airport.show() if altitude < 600 else self._airport.hide()
        self._fog.setExpDensity(0.00004 + 0.00003 * min(1.0, altitude / 5000.0))
        for node, rank in self._passengers:
            node.show() if rank < occupancy else node.hide()
        for k, (node, follows) in enumerate(self._shades):
            openness = shade_open if follows else (1.0 if k % 3 else 0.0)
            node.setSz(max(0.001, 1.0 - openness))
            node.setZ(WIN_Z1 - (WIN_Z1 - WIN_Z0) * (1.0 - openness))
            node.show() if openness < 0.99 else node.hide()
        for sign in self._signs:
            level = 0.25 + 0.75 * belt
            sign.setColorScale(level, level * (0.5 + 0.5 * belt), level * (0.4 + 0.6 * belt), 1)
        g.set_light_color(self._ambient, g.shade((0.62, 0.62, 0.64), 0.25 + 0.75 * light))
        g.set_light_color(self._light, g.shade((0.6, 0.6, 0.58), light))
        self._strip.setColorScale(0.3 + 0.7 * light, 0.3 + 0.7 * light, 0.3 + 0.7 * light, 1)

    def stimulus_world_position(self) -> tuple[float, float, float] | None:
        return (WALL_X - 0.05, 0.05, (WIN_Z0 + WIN_Z1) / 2)

    def eye_position(self) -> tuple[float, float, float]:
        return (0.15, -0.3, 1.2)

    def view_hpr(self) -> tuple[float, float, float]:
        return (24.0, -4.0, 0.0)


SCENE = SceneSpec(
    name="flying",
    title="Aircraft cabin",
    params=(
        choice_param(
            "flight_phase",
            "boarding",
            ("boarding", "taxi", "takeoff", "cruise", "landing"),
            "Phase of the flight: changes the view, pitch and sounds",
        ),
        float_param("turbulence", 0.0, 0.0, 1.0, "", "Cabin shaking strength"),
        float_param("cabin_occupancy", 0.5, 0.0, 1.0, "", "Share of seats taken"),
        bool_param("window_shade_open", True, "The window next to the patient is open"),
        bool_param("seatbelt_sign", False, "Seatbelt sign lit (with chime)"),
        float_param("engine_volume", 0.4, 0.0, 1.0, "", "Engine hum volume"),
        float_param("light_level", 1.0, 0.2, 1.0, "", "Cabin light"),
    ),
    factory=FlyingScene,
)
