"""Heights: a rooftop terrace of a tall building, approaching the edge."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from vrexposure.render.scene_base import DEFAULT_EASE_TIME_S, SceneBase
from vrexposure.scene_api import SceneSpec, bool_param, choice_param, float_param

if TYPE_CHECKING:
    from panda3d.core import NodePath

BALCONY_M = 1.5  # the last metres before the edge overhang the facade (glass floor section)
RAIL_HEIGHT = {"full": 1.1, "low": 0.45, "none": 0.0}
STOREY_M = 3.2


class HeightsScene(SceneBase):
    """Rooftop terrace; the street and city lie ``height_m`` below, the edge ahead."""

    sound_name = "wind"
    sound_param = "wind_volume"
    near_far = (0.05, 2500.0)
    background_color = (0.75, 0.84, 0.93)

    def __init__(self, spec: SceneSpec | None = None, ease_time_s: float = DEFAULT_EASE_TIME_S):
        super().__init__(spec or SCENE, ease_time_s)
        self._cars: list[tuple[NodePath, bool, float, float, float]] = []
        self._sway = 0.0

    def channel_targets(self, params: Any) -> dict[str, float]:
        targets = super().channel_targets(params)
        targets["rail_height"] = RAIL_HEIGHT[str(params["railing"])]
        targets["rail_bars"] = 1.0 if params["railing"] == "full" else 0.0
        return targets

    def build(self, parent: NodePath) -> None:
        import numpy as np
        from panda3d.core import Fog

        from vrexposure.render import geometry as g

        rng = np.random.default_rng(5)
        self._world = parent.attachNewNode("sway")
        w = self._world

        sky = g.MeshBuilder()

        def sky_color(p: Any) -> Any:
            t = np.clip(p[:, 2:3] / 1500.0, 0.0, 1.0) ** 0.5
            rgb = np.array([0.8, 0.87, 0.94]) * (1 - t) + np.array([0.3, 0.52, 0.85]) * t
            return np.hstack([rgb, np.ones((len(p), 1))]).astype(np.float32)

        sky.sphere(2000.0, sky_color, rings=12, segments=24, inside=True, z_min=-0.6)
        dome = sky.attach(parent, "sky")
        g.set_unlit(dome)
        dome.setFogOff(1)
        dome.setBin("background", 0)
        dome.setDepthWrite(False)

        # The terrace (on the building) and the balcony slab that overhangs the facade.
        self._terrace = w.attachNewNode("terrace")
        roof = g.MeshBuilder()
        roof.quad(
            [(-10, -25, 0), (10, -25, 0), (10, 0, 0), (-10, 0, 0)],
            (1, 1, 1, 1),
            uv_m=1.2,
            subdiv=(4, 6),
        )
        roof.box((-10, -25, -0.3), (10, 0, 0), (0.6, 0.6, 0.6, 1), faces="xX")
        rnode = roof.attach(self._terrace, "roof")
        rnode.setTexture(g.tiles_texture((0.68, 0.66, 0.62), (0.45, 0.44, 0.42), 2, 7))
        props = g.MeshBuilder()
        for x, y in ((-7.5, -3.0), (6.5, -4.5), (-4.0, -9.0)):
            props.box((x - 0.5, y - 0.5, 0), (x + 0.5, y + 0.5, 0.6), (0.45, 0.42, 0.4, 1))
            props.box((x - 0.45, y - 0.45, 0.6), (x + 0.45, y + 0.45, 0.62), (0.3, 0.22, 0.15, 1))
        props.box((3.0, -12, 0), (8, -8, 2.2), (0.7, 0.72, 0.74, 1))  # plant room
        props.box((-9.5, -14, 0), (-6.5, -11, 1.4), (0.55, 0.57, 0.6, 1))  # HVAC
        for k in range(5):
            props.box(
                (-9.4, -13.9 + k * 0.6, 1.4), (-6.6, -13.7 + k * 0.6, 1.45), (0.3, 0.3, 0.3, 1)
            )
        props.cylinder(0.035, 6.0, (0.85, 0.85, 0.85, 1), g.transform((8.5, -2.0, 0)))
        props.attach(self._terrace, "props")
        self._plants: list[NodePath] = []
        for x, y in ((-7.5, -3.0), (6.5, -4.5), (-4.0, -9.0)):
            bush = g.MeshBuilder()
            for _ in range(6):
                c = (rng.uniform(-0.25, 0.25), rng.uniform(-0.25, 0.25), rng.uniform(0.15, 0.5))
                bush.sphere(
                    rng.uniform(0.2, 0.3),
                    g.shade((0.25, 0.48, 0.2), rng.uniform(0.8, 1.1)),
                    rings=5,
                    segments=8,
                    center=c,
                )
            node = bush.attach(self._terrace, "bush")
            node.setPos(x, y, 0.62)
            self._plants.append(node)
        flag = g.MeshBuilder()
        flag.quad(
            [(0, 0, 0), (1.2, 0, 0), (1.2, 0, 0.8), (0, 0, 0.8)],
            (0.15, 0.35, 0.7, 1),
            subdiv=(6, 1),
        )
        self._flag = flag.attach(self._terrace, "flag")
        self._flag.setPos(8.5, -2.0, 5.1)
        self._flag.setTwoSided(True)

        self._balcony = w.attachNewNode("balcony")
        slab = g.MeshBuilder()
        slab.box((-10, 0, -0.3), (10, 1, 0), (1, 1, 1, 1), uv_m=1.2, faces="zZxXY")
        self._slab = slab.attach(self._balcony, "slab")
        self._slab.setTexture(g.tiles_texture((0.68, 0.66, 0.62), (0.45, 0.44, 0.42), 2, 7))
        glass = g.MeshBuilder()
        glass.box((-10, 0, -0.04), (10, 1, 0), (0.7, 0.85, 0.9, 0.18), faces="zZ")
        for x in np.arange(-10, 10.01, 1.25):
            glass.box((x - 0.03, 0, -0.08), (x + 0.03, 1, 0.005), (0.25, 0.27, 0.3, 1))
        self._glass = glass.attach(self._balcony, "glass")
        g.set_transparent(self._glass)
        g.set_shiny(self._glass, 0.9, 80)
        kerb = g.MeshBuilder()
        kerb.box((-10, -0.12, 0), (10, 0.0, 0.07), (0.55, 0.55, 0.53, 1))
        self._kerb = kerb.attach(w, "kerb")

        rail = g.MeshBuilder()
        metal = (0.22, 0.24, 0.27, 1)
        for x in np.arange(-9.6, 9.61, 1.2):
            rail.box((x - 0.03, -0.09, 0), (x + 0.03, -0.03, 1.0), metal)
        rail.box((-9.7, -0.11, 0.97), (9.7, -0.01, 1.03), g.shade(metal, 1.3))
        rail.box((-9.7, -0.08, 0.5), (9.7, -0.04, 0.53), metal)
        self._rail = rail.attach(w, "railing")
        bars = g.MeshBuilder()
        for x in np.arange(-9.6, 9.6, 0.12):
            bars.box((x - 0.008, -0.07, 0.05), (x + 0.008, -0.05, 0.97), metal)
        bars.box((-9.7, -0.08, 0.04), (9.7, -0.04, 0.07), metal)
        self._bars = bars.attach(self._rail, "balusters")

        # The building below the terrace, and the city on the ground.
        facade = g.MeshBuilder()
        facade.box((-10, -60, -1), (10, 0, 0), (1, 1, 1, 1), uv_m=None, faces="xXY")
        self._facade = facade.attach(w, "facade")
        self._facade.setTexture(
            g.facade_texture((0.72, 0.7, 0.66), (0.25, 0.33, 0.42), 4, 4, 9, 0.1)
        )
        self._city = w.attachNewNode("city")
        self._build_city(self._city, rng)

        self._ambient = g.ambient_light(parent, (0.45, 0.47, 0.52))
        self._sun = g.sun_light(parent, (1.0, 0.96, 0.88), (150, -45, 0))
        fog = Fog("haze")
        fog.setColor(0.78, 0.85, 0.92)
        fog.setExpDensity(0.0009)
        w.setFog(fog)

    def _build_city(self, city: NodePath, rng: Any) -> None:
        from vrexposure.render import geometry as g

        ground = g.MeshBuilder()
        ground.quad(
            [(-1500, -800, 0), (1500, -800, 0), (1500, 1800, 0), (-1500, 1800, 0)],
            (0.38, 0.42, 0.3, 1),
            uv_m=40.0,
        )
        gnode = ground.attach(city, "ground")
        gnode.setTexture(g.noise_texture(71, (0.75, 0.75, 0.75), (1.0, 1.0, 1.0), 8, 128))
        streets = g.MeshBuilder()
        walls = g.MeshBuilder()
        roofs = g.MeshBuilder()
        trees = g.MeshBuilder()
        asphalt = (0.27, 0.27, 0.28, 1)
        pitch = 48.0
        self._street_lines: list[float] = []
        for k in range(-8, 9):
            c = k * pitch + 24.0
            self._street_lines.append(c)
            streets.quad(
                [(c - 7, -400, 0.05), (c + 7, -400, 0.05), (c + 7, 900, 0.05), (c - 7, 900, 0.05)],
                asphalt,
            )
            streets.quad(
                [(-400, c - 7, 0.06), (400, c - 7, 0.06), (400, c + 7, 0.06), (-400, c + 7, 0.06)],
                asphalt,
            )
            for d in (-1, 1):
                streets.quad(
                    [
                        (c + d * 7.5 - 0.1, -400, 0.07),
                        (c + d * 7.5 + 0.1, -400, 0.07),
                        (c + d * 7.5 + 0.1, 900, 0.07),
                        (c + d * 7.5 - 0.1, 900, 0.07),
                    ],
                    (0.75, 0.75, 0.72, 1),
                )
        streets.quad(
            [(-0.15, -400, 0.08), (0.15, -400, 0.08), (0.15, 900, 0.08), (-0.15, 900, 0.08)],
            (0.9, 0.85, 0.5, 1),
        )
        streets.attach(city, "streets")
        palette = [
            (0.75, 0.72, 0.66),
            (0.6, 0.62, 0.66),
            (0.82, 0.78, 0.7),
            (0.55, 0.5, 0.47),
            (0.7, 0.74, 0.78),
            (0.9, 0.88, 0.84),
        ]
        for bx in range(-8, 8):
            for by in range(-3, 12):
                x0, y0 = bx * pitch + 24 + 9, by * pitch + 24 + 9
                if x0 < 12 and x0 + 30 > -12 and y0 < 8 and y0 + 30 > -70:
                    continue  # our own block
                if rng.random() < 0.12:  # a park
                    for _ in range(10):
                        cx, cy = x0 + rng.uniform(2, 28), y0 + rng.uniform(2, 28)
                        trees.cylinder(0.3, 3.0, (0.35, 0.25, 0.15, 1), g.transform((cx, cy, 0)), 5)
                        trees.sphere(
                            rng.uniform(2.5, 4),
                            g.shade((0.25, 0.45, 0.2), rng.uniform(0.8, 1.1)),
                            rings=4,
                            segments=7,
                            center=(cx, cy, 5),
                        )
                    continue
                far = math.hypot(x0, y0)
                for part in range(int(rng.integers(1, 4))):
                    w = 30 / (1 + part % 2)
                    h = float(rng.choice([9, 12, 15, 21, 30, 45, 60, 90])) * (
                        1.0 if far > 80 else 0.6
                    )
                    lo = (x0 + (30 - w) * (part % 2), y0 + rng.uniform(0, 8), 0.0)
                    hi = (lo[0] + w, lo[1] + rng.uniform(14, 22), h)
                    col = (*palette[int(rng.integers(0, len(palette)))], 1.0)
                    walls.box(lo, hi, col, uv_m=12.0, faces="xXyY")
                    roofs.box(lo, hi, g.shade(col, 0.7), faces="Z")
                    roofs.box(
                        (lo[0] + 2, lo[1] + 2, h),
                        (lo[0] + 6, lo[1] + 5, h + 2.5),
                        (0.55, 0.55, 0.55, 1),
                    )
        wn = walls.attach(city, "buildings")
        wn.setTexture(g.facade_texture((0.95, 0.95, 0.95), (0.3, 0.38, 0.48), 4, 4, 12, 0.08))
        roofs.attach(city, "roofs")
        for x in (-16.0, 16.0):
            for y in range(-60, 200, 12):
                trees.cylinder(0.2, 3.0, (0.35, 0.25, 0.15, 1), g.transform((x, y, 0)), 5)
                trees.sphere(
                    (2.2, 2.2, 2.6),
                    g.shade((0.25, 0.45, 0.2), rng.uniform(0.8, 1.1)),
                    rings=4,
                    segments=7,
                    center=(x, y, 4.6),
                )
        trees.attach(city, "trees")
        colors = [
            (0.75, 0.1, 0.1),
            (0.9, 0.9, 0.9),
            (0.15, 0.2, 0.45),
            (0.1, 0.1, 0.1),
            (0.85, 0.7, 0.1),
        ]
        for i in range(36):
            car = g.MeshBuilder()
            col = (*colors[i % len(colors)], 1.0)
            car.box((-0.9, -2.2, 0.3), (0.9, 2.2, 1.0), col)
            car.box((-0.8, -1.2, 1.0), (0.8, 1.0, 1.45), (0.2, 0.25, 0.3, 1))
            node = car.attach(city, f"car{i}")
            along_y = i % 3 != 0
            street = (
                self._street_lines[int(rng.integers(5, 12))]
                if along_y
                else 24.0 + pitch * int(rng.integers(-1, 6))
            )
            lane = 3.5 if i % 2 else -3.5
            self._cars.append(
                (
                    node,
                    along_y,
                    street + lane,
                    float(rng.uniform(-300, 800)),
                    float(rng.uniform(6, 13)) * (1 if i % 2 else -1),
                )
            )
            node.setH(0 if along_y else 90)
        self._city_root = city

    def animate(self, dt_s: float, time_s: float) -> None:
        from panda3d.core import TextureStage

        height = max(0.5, self.v("height_m"))
        edge = max(0.0, self.v("edge_distance_m"))
        wind = max(0.0, self.v("wind_speed_m_s"))
        glass = min(1.0, max(0.0, self.v("glass_floor")))
        rail_h = max(0.0, self.v("rail_height"))
        bars = min(1.0, max(0.0, self.v("rail_bars")))

        facade_y = edge - BALCONY_M
        self._terrace.setPos(0, min(0.0, facade_y), 0)
        self._balcony.setPos(0, facade_y, 0)
        self._balcony.setSy(BALCONY_M)
        self._slab.setAlphaScale(1.0 - glass)
        if glass > 0.01:
            self._slab.setTransparency(True)
            self._slab.setDepthWrite(glass < 0.5)
            self._slab.setBin("transparent" if glass > 0.01 else "opaque", 5)
        else:
            self._slab.setTransparency(False)
            self._slab.setDepthWrite(True)
            self._slab.setBin("opaque", 0)
        self._slab.show() if glass < 0.99 else self._slab.hide()
        self._glass.show() if glass > 0.01 else self._glass.hide()
        self._glass.setAlphaScale(max(0.0, min(1.0, glass * 1.0)))
        self._kerb.setY(edge)
        self._rail.setY(edge)
        if rail_h < 0.01:
            self._rail.hide()
        else:
            self._rail.show()
            self._rail.setSz(rail_h / 1.0)
            self._bars.setSz(bars if bars > 0.01 else 0.001)
            self._bars.show() if bars > 0.01 else self._bars.hide()
        self._facade.setPos(0, facade_y, 0)
        self._facade.setSz(height)
        self._facade.setTexScale(
            TextureStage.getDefault(), 20 / 12.0, height / STOREY_M / 4.0 * 1.0
        )
        self._city.setZ(-height)

        # Wind: a slow, small sway of everything around the eye, flag and plants move.
        amp = 0.03 + 0.02 * wind
        self._sway += dt_s * (0.25 + 0.03 * wind)
        self._world.setHpr(
            0, math.sin(self._sway * 2.1) * amp * 0.3, math.sin(self._sway * 1.3) * amp
        )
        self._flag.setH(200 + math.sin(time_s * (1 + 0.3 * wind)) * (5 + 2.5 * wind))
        self._flag.setShear(0, 0, math.sin(time_s * (2 + 0.4 * wind)) * 0.05 * wind)
        self._flag.setSz(1.0 - min(0.5, 0.6 / (1 + wind)))
        for k, plant in enumerate(self._plants):
            plant.setR(math.sin(time_s * (1.5 + 0.2 * wind) + k) * (0.5 + 0.6 * wind))
        for node, along_y, street, start, speed in self._cars:
            s = (start + speed * time_s + 300) % 1100 - 300
            node.setPos((street, s, 0) if along_y else (s, street, 0))

    def stimulus_world_position(self) -> tuple[float, float, float] | None:
        return (0.0, max(0.0, self.v("edge_distance_m")), 0.0)

    def view_hpr(self) -> tuple[float, float, float]:
        edge = max(0.0, self.v("edge_distance_m"))
        down = math.degrees(math.atan2(1.2, edge + 0.4))
        return (0.0, -min(50.0, max(12.0, down * 0.75)), 0.0)


SCENE = SceneSpec(
    name="heights",
    title="Rooftop ledge",
    params=(
        float_param("height_m", 3.0, 1.0, 200.0, "m", "Height of the floor above the ground"),
        float_param("edge_distance_m", 3.0, 0.0, 6.0, "m", "Distance from the patient to the edge"),
        choice_param("railing", "full", ("full", "low", "none"), "Railing at the edge"),
        bool_param("glass_floor", False, "The floor near the edge is transparent"),
        float_param(
            "wind_speed_m_s", 1.0, 0.0, 15.0, "m/s", "Wind: sways flags, plants and the view"
        ),
        float_param("wind_volume", 0.3, 0.0, 1.0, "", "Wind sound volume"),
    ),
    factory=HeightsScene,
)
