"""Calm scene: a quiet lakeside meadow. Shown during baseline, pauses and after STOP."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, ClassVar

from vrexposure.render.scene_base import DEFAULT_EASE_TIME_S, SceneBase
from vrexposure.scene_api import SceneSpec, choice_param, float_param

if TYPE_CHECKING:
    from panda3d.core import NodePath

DAY_ZENITH, DAY_HORIZON = (0.28, 0.5, 0.86), (0.78, 0.87, 0.96)
DUSK_ZENITH, DUSK_HORIZON = (0.16, 0.18, 0.4), (0.98, 0.62, 0.38)
LAKE_Y = 14.0  # the shore line in front of the patient


def _terrain_height(x: Any, y: Any) -> Any:
    """Meadow heights (m): gentle undulation, a basin for the lake, hills far away."""
    import numpy as np

    meadow = 0.25 * np.sin(x * 0.21) * np.cos(y * 0.17) + 0.15 * np.sin(x * 0.5 + y * 0.3)
    shore = np.clip((y - LAKE_Y) / 4.0, 0.0, 1.0)
    far = np.clip((y - 105.0) / 25.0, 0.0, 1.0)
    ridge = np.clip((y - 170.0) / 90.0, 0.0, 1.0)
    hills = far * 1.5 + ridge * (22 + 14 * np.sin(x * 0.013 + 1.0) + 8 * np.sin(x * 0.031))
    side = np.clip((np.abs(x) - 90.0) / 60.0, 0.0, 1.0) * (8 + 5 * np.sin(y * 0.02))
    return meadow * (1 - shore) - 1.2 * shore * (1 - far) + hills + side


class CalmScene(SceneBase):
    """Meadow by a lake: sky dome, hills, trees, swaying grass, drifting clouds, birdsong."""

    sound_name = "birds"
    sound_param = "ambient_volume"
    near_far = (0.05, 1500.0)
    background_color = DAY_HORIZON
    channel_ease_s: ClassVar[dict[str, float]] = {"time_of_day=dusk": 3.0}

    def __init__(self, spec: SceneSpec | None = None, ease_time_s: float = DEFAULT_EASE_TIME_S):
        super().__init__(spec or SCENE, ease_time_s)
        self._grass: list[tuple[NodePath, float]] = []
        self._trees: list[tuple[NodePath, float]] = []
        self._clouds: list[tuple[NodePath, float, float]] = []
        self._wind_phase = 0.0
        self._water_offset = 0.0

    def build(self, parent: NodePath) -> None:
        import numpy as np
        from panda3d.core import Fog

        from vrexposure.render import geometry as g

        rng = np.random.default_rng(11)
        sky = parent.attachNewNode("sky")
        for name, zenith, horizon in (
            ("day", DAY_ZENITH, DAY_HORIZON),
            ("dusk", DUSK_ZENITH, DUSK_HORIZON),
        ):
            dome = g.MeshBuilder()

            def sky_color(p: Any, z: tuple = zenith, h: tuple = horizon) -> Any:
                t = np.clip(p[:, 2:3] / 900.0, 0.0, 1.0) ** 0.5
                rgb = np.asarray(h) * (1 - t) + np.asarray(z) * t
                return np.hstack([rgb, np.ones((len(p), 1))]).astype(np.float32)

            dome.sphere(900.0, sky_color, rings=16, segments=32, inside=True, z_min=-0.2)
            node = dome.attach(sky, name)
            g.set_unlit(node)
            node.setFogOff(1)
            node.setBin("background", 0)
            node.setDepthWrite(False)
        self._sky_day = sky.find("day")
        self._sky_dusk = sky.find("dusk")
        g.set_transparent(self._sky_dusk)
        self._sky_dusk.setBin("background", 1)
        self._sky = sky

        sun = g.MeshBuilder()
        sun.quad([(-1, 0, -1), (1, 0, -1), (1, 0, 1), (-1, 0, 1)], (1, 1, 1, 1))
        self._sun = sun.attach(parent, "sun-disc")
        self._sun.setTexture(g.radial_texture(64, 1.5))
        self._sun.setBillboardPointEye()
        g.set_additive(self._sun)
        self._sun.setFogOff(1)

        terrain = g.MeshBuilder()
        noise = g.value_noise(64, 4, 5)

        def ground_color(p: Any) -> Any:
            ix = (np.abs(p[:, 0] * 0.4).astype(int)) % 64
            iy = (np.abs(p[:, 1] * 0.4).astype(int)) % 64
            n = noise[iy, ix][:, None]
            grass = np.array([0.32, 0.5, 0.18]) * (0.8 + 0.4 * n)
            dry = np.array([0.55, 0.55, 0.3])
            sand = np.array([0.62, 0.57, 0.42])
            hill = np.array([0.3, 0.42, 0.25])
            y = p[:, 1:2]
            shore = np.clip(1 - np.abs(y - LAKE_Y - 1.0) / 2.5, 0, 1) + np.clip(
                1 - np.abs(y - 112.0) / 6.0, 0, 1
            )
            far = np.clip((y - 180) / 80, 0, 1)
            rgb = grass * (1 - 0.3 * n) + dry * 0.3 * n
            rgb = rgb * (1 - shore) + sand * shore
            rgb = rgb * (1 - far) + hill * far
            return np.hstack([rgb, np.ones((len(p), 1))]).astype(np.float32)

        terrain.grid((-30, 30), (-12, 40), (60, 52), _terrain_height, ground_color, uv_m=1.5)
        for xr, yr, cells in (
            ((-400, -30), (-100, 450), (30, 40)),
            ((30, 400), (-100, 450), (30, 40)),
            ((-30, 30), (40, 450), (8, 40)),
            ((-30, 30), (-100, -12), (6, 8)),
        ):
            terrain.grid(xr, yr, cells, _terrain_height, ground_color, uv_m=1.5)
        ground = terrain.attach(parent, "terrain")
        ground.setTexture(g.noise_texture(21, (0.75, 0.75, 0.75), (1.0, 1.0, 1.0), 16, 128))

        water = g.MeshBuilder()

        def water_color(p: Any) -> Any:
            d = np.clip((p[:, 1:2] - LAKE_Y) / 120.0, 0, 1) ** 0.6
            rgb = np.array([0.12, 0.27, 0.33]) * (1 - d) + np.array([0.55, 0.68, 0.8]) * d
            a = 0.85 + 0.15 * d
            return np.hstack([rgb, a]).astype(np.float32)

        water.grid((-250, 250), (LAKE_Y - 2, 135), (20, 30), None, water_color, uv_m=6.0)
        self._water = water.attach(parent, "lake")
        self._water.setZ(-0.25)
        self._water.setTexture(g.noise_texture(33, (0.8, 0.85, 0.9), (1.0, 1.0, 1.0), 16, 128))
        g.set_shiny(self._water, 0.8, 60)
        g.set_transparent(self._water, depth_write=True)

        reeds = g.MeshBuilder()
        for _ in range(140):
            x = rng.uniform(-25, 25)
            y = LAKE_Y + rng.uniform(-0.8, 1.5)
            if abs(x) < 2.5 and rng.random() < 0.8:
                continue
            for _blade in range(4):
                h = rng.uniform(0.8, 1.6)
                top = (x + rng.uniform(-0.2, 0.2), y + rng.uniform(-0.2, 0.2), h - 0.3)
                reeds.tube((x, y, -0.3), top, 0.012, 0.004, (0.35, 0.45, 0.2, 1), 4, caps=False)
            reeds.sphere(
                (0.03, 0.03, 0.12),
                (0.35, 0.22, 0.12, 1),
                rings=3,
                segments=5,
                center=(x, y, h - 0.3),
            )
        reeds.attach(parent, "reeds")

        self._build_trees(parent, rng)
        self._build_grass(parent, rng)
        self._build_clouds(parent, rng)

        self._ambient = g.ambient_light(parent, (0.4, 0.42, 0.48))
        self._sun_light = g.sun_light(parent, (1, 0.95, 0.85), (30, -40, 0))
        self._fog = Fog("haze")
        self._fog.setExpDensity(0.0035)
        parent.setFog(self._fog)

    def _build_trees(self, parent: NodePath, rng: Any) -> None:
        from vrexposure.render import geometry as g

        spots = [
            (-7.5, 9.0),
            (-11, 5),
            (-9, 12.5),
            (8.5, 10.5),
            (12, 6.5),
            (-16, 11),
            (17, 12),
            (-24, 7),
            (25, 9),
        ]
        spots += [(float(rng.uniform(-170, 170)), float(rng.uniform(122, 200))) for _ in range(40)]
        for i, (x, y) in enumerate(spots):
            tree = g.MeshBuilder()
            height = float(rng.uniform(6, 11)) * (1.5 if y > 100 else 1.0)
            conifer = rng.random() < (0.6 if y > 100 else 0.25)
            bark = (0.33, 0.24, 0.16, 1)
            leaf = g.shade((0.2, 0.42, 0.16), float(rng.uniform(0.75, 1.15)))
            if conifer:
                tree.cylinder(0.18, height * 0.3, bark, segments=7)
                for k in range(4):
                    z0 = height * (0.22 + 0.18 * k)
                    r = height * (0.28 - 0.055 * k)
                    tree.cylinder(
                        r,
                        height * 0.34,
                        g.shade(leaf, 0.8),
                        g.transform((0, 0, z0)),
                        segments=10,
                        top_radius=0.0,
                    )
            else:
                tree.cylinder(0.22, height * 0.55, bark, segments=8, top_radius=0.13)
                tree.tube((0, 0, height * 0.4), (0.9, 0.3, height * 0.7), 0.09, 0.05, bark, 5)
                tree.tube((0, 0, height * 0.45), (-0.8, -0.2, height * 0.72), 0.09, 0.05, bark, 5)
                for _blob in range(6):
                    c = (
                        rng.uniform(-1.3, 1.3),
                        rng.uniform(-1.3, 1.3),
                        height * rng.uniform(0.62, 0.85),
                    )
                    r = height * rng.uniform(0.17, 0.26)
                    tree.sphere(
                        (r, r, r * 0.85),
                        g.shade(leaf, rng.uniform(0.85, 1.1)),
                        rings=6,
                        segments=10,
                        center=c,
                    )
            node = tree.attach(parent, f"tree{i}")
            node.setPos(x, y, float(_terrain_height(x, y)) - 0.1)
            node.setH(float(rng.uniform(0, 360)))
            self._trees.append((node, float(rng.uniform(0, 6.28))))

    def _build_grass(self, parent: NodePath, rng: Any) -> None:
        import numpy as np

        from vrexposure.render import geometry as g

        flowers = [(0.95, 0.9, 0.3, 1), (0.95, 0.95, 0.95, 1), (0.7, 0.45, 0.85, 1)]
        for px in np.arange(-9.0, 9.0, 2.0):
            for py in np.arange(1.0, LAKE_Y - 1.0, 2.0):
                patch = g.MeshBuilder()
                for _ in range(110):
                    x, y = rng.uniform(0, 2), rng.uniform(0, 2)
                    wx, wy = px + x, py + y
                    z0 = float(_terrain_height(np.array(wx), np.array(wy)))
                    h = rng.uniform(0.15, 0.4)
                    lean = rng.uniform(-0.08, 0.08, 2)
                    w = rng.uniform(0.008, 0.018)
                    a = rng.uniform(0, math.pi)
                    dx, dy = w * math.cos(a), w * math.sin(a)
                    col = g.shade((0.27, 0.45, 0.15), rng.uniform(0.65, 1.1))
                    pos = np.array(
                        [
                            [x - dx, y - dy, z0],
                            [x + dx, y + dy, z0],
                            [x + lean[0], y + lean[1], z0 + h],
                        ]
                    )
                    patch.add(
                        pos,
                        np.tile([0.0, 0.0, 1.0], (3, 1)),
                        np.zeros((3, 2)),
                        np.array([[0, 1, 2]]),
                        col,
                    )
                    if rng.random() < 0.05:
                        patch.sphere(
                            0.02,
                            flowers[int(rng.integers(0, 3))],
                            rings=3,
                            segments=5,
                            center=(x + lean[0], y + lean[1], z0 + h),
                        )
                node = patch.attach(parent, "grass")
                node.setPos(px, py, 0)
                node.setTwoSided(True)
                self._grass.append((node, float(px * 0.35 + py * 0.5)))

    def _build_clouds(self, parent: NodePath, rng: Any) -> None:
        from vrexposure.render import geometry as g

        for i in range(9):
            cloud = g.MeshBuilder()
            for _ in range(6):
                c = (rng.uniform(-35, 35), rng.uniform(-10, 10), rng.uniform(-3, 5))
                r = rng.uniform(14, 26)
                cloud.sphere((r, r * 0.8, r * 0.45), (1, 1, 1, 1), rings=5, segments=10, center=c)
            node = cloud.attach(parent, f"cloud{i}")
            x, y, z = rng.uniform(-500, 500), rng.uniform(350, 750), rng.uniform(110, 190)
            node.setPos(x, y, z)
            node.setFogOff(1)
            node.setLightOff(1)
            self._clouds.append((node, float(x), float(rng.uniform(0.6, 1.4))))

    def animate(self, dt_s: float, time_s: float) -> None:
        from vrexposure.render import geometry as g

        light = self.v("light_level")
        dusk = min(1.0, max(0.0, self.v("time_of_day=dusk")))
        wind = max(0.0, self.v("wind_speed_m_s"))
        self._sky_dusk.setAlphaScale(dusk)
        self._sky.setColorScale(light, light, light, 1)
        horizon = g.mix(DAY_HORIZON, DUSK_HORIZON, dusk)
        self._fog.setColor(horizon[0] * light, horizon[1] * light, horizon[2] * light)

        elevation = math.radians(38 - 33 * dusk)
        azimuth = math.radians(-35 + 50 * dusk)
        dist = 800.0
        self._sun.setPos(
            dist * math.sin(-azimuth) * math.cos(elevation),
            dist * math.cos(azimuth) * math.cos(elevation),
            dist * math.sin(elevation),
        )
        self._sun.setScale(60 + 30 * dusk)
        sun_col = g.mix((1.0, 0.97, 0.85), (1.0, 0.55, 0.25), dusk)
        self._sun.setColorScale(*(c * light for c in sun_col[:3]), 1)
        self._sun_light.setHpr(math.degrees(azimuth) + 180, -math.degrees(elevation), 0)
        g.set_light_color(self._sun_light, g.shade(sun_col, light * (1.0 - 0.35 * dusk)))
        amb = g.mix((0.42, 0.45, 0.52), (0.32, 0.26, 0.34), dusk)
        g.set_light_color(self._ambient, g.shade(amb, light))
        for cloud, _x, _s in self._clouds:
            tint = g.mix((1.0, 1.0, 1.0), (1.0, 0.72, 0.6), dusk)
            cloud.setColorScale(tint[0] * light, tint[1] * light, tint[2] * light, 1)

        # Wind: a travelling gust wave bends the grass; trees sway; clouds drift.
        self._wind_phase += dt_s * (0.6 + 0.5 * wind)
        bend = 0.04 + 0.07 * wind
        for node, offset in self._grass:
            s = (
                math.sin(self._wind_phase * 2.0 - offset) * 0.6
                + math.sin(self._wind_phase * 3.3 - offset * 1.7) * 0.4
            )
            node.setShear(0, bend * (0.6 + 0.4 * s) * 1.5, 0)
        for node, phase in self._trees:
            node.setR(math.sin(time_s * 0.7 + phase) * (0.2 + 0.5 * wind))
        for cloud, x0, speed in self._clouds:
            x = (x0 + time_s * speed * (0.5 + wind) + 600) % 1200 - 600
            cloud.setX(x)
        self._water_offset += dt_s * (0.01 + 0.02 * wind)
        from panda3d.core import TextureStage

        self._water.setTexOffset(
            TextureStage.getDefault(), self._water_offset * 0.7, self._water_offset
        )

    def view_hpr(self) -> tuple[float, float, float]:
        return (0.0, -6.0, 0.0)


SCENE = SceneSpec(
    name="calm",
    title="Quiet lakeside meadow",
    has_stimulus=False,
    params=(
        choice_param("time_of_day", "day", ("day", "dusk"), "Sky colour and sun height"),
        float_param("light_level", 1.0, 0.3, 1.0, "", "Overall brightness (1 = full daylight)"),
        float_param("wind_speed_m_s", 1.0, 0.0, 5.0, "m/s", "Breeze moving grass and water"),
        float_param("ambient_volume", 0.4, 0.0, 1.0, "", "Birdsong and water sound volume"),
    ),
    factory=CalmScene,
)
