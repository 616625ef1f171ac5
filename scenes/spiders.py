"""Spiders: a living room where spiders sit, walk and approach the seated patient."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from vrexposure.render.scene_base import DEFAULT_EASE_TIME_S, SceneBase
from vrexposure.scene_api import (
    ParamValue,
    SceneSpec,
    bool_param,
    choice_param,
    float_param,
    int_param,
)

if TYPE_CHECKING:
    from panda3d.core import NodePath

MAX_SPIDERS = 20
ROOM_X, ROOM_Y0, ROOM_Y1, ROOM_H = 2.6, -1.5, 6.0, 2.6
TANK_W, TANK_D, TANK_H = 0.7, 0.45, 0.42  # terrarium (m)
# Leg base headings (degrees from forward) of the four legs on the left side.
LEG_ANGLES = (38.0, 72.0, 108.0, 148.0)
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
    "house": (0.011, 0.85, 0.8, (0.42, 0.31, 0.2), (0.45, 0.34, 0.22), (0.3, 0.22, 0.14)),
    "wolf": (0.019, 1.05, 1.0, (0.3, 0.25, 0.19), (0.33, 0.27, 0.2), (0.2, 0.16, 0.12)),
    "tarantula": (0.03, 1.3, 1.15, (0.07, 0.06, 0.06), (0.09, 0.08, 0.08), (0.85, 0.45, 0.12)),
}


def _spider_layout(index: int) -> tuple[float, float, float, float]:
    """Deterministic per-spider (spread m, angle deg, loop phase, tank u/v mix) values."""
    golden = (index * 0.618034) % 1.0
    spread = 0.0 if index == 0 else 0.3 + 1.7 * ((index * 0.37) % 1.0)
    angle = 8.0 if index == 0 else (golden - 0.5) * 70.0
    return spread, angle, (index * 2.39996) % (2 * math.pi), golden


class _Spider:
    """One spider's nodes: body parts and 8 legs (hip -> femur -> knee -> tibia)."""

    def __init__(self, parent: NodePath, parts: dict[str, NodePath], index: int) -> None:
        self.index = index
        self.root = parent.attachNewNode(f"spider{index}")
        self.body = self.root.attachNewNode("body")
        self.ceph = parts["ceph"].copyTo(self.body)
        self.abdomen = parts["abdomen"].copyTo(self.body)
        self.eyes = parts["eyes"].copyTo(self.ceph)
        self.shadow = parts["shadow"].copyTo(self.root)
        self.legs: list[tuple[NodePath, NodePath, NodePath, NodePath, NodePath, float, int]] = []
        for side in (1, -1):
            for k, base in enumerate(LEG_ANGLES):
                hip = self.body.attachNewNode("hip")
                hip.setPos(
                    0.045 * side * math.sin(math.radians(base)),
                    0.05 + 0.045 * math.cos(math.radians(base)),
                    0.07,
                )
                femur = parts["femur"].copyTo(hip)
                knee = hip.attachNewNode("knee")
                knee.setY(0.3)
                tibia = parts["tibia"].copyTo(knee)
                band = parts["band"].copyTo(knee)
                self.legs.append((hip, femur, knee, tibia, band, side * base, (k + (side > 0)) % 2))
        self.phi = _spider_layout(index)[2]
        self.gait = index * 0.7
        self.pos = (0.0, 0.0, 0.0)
        self.heading = 180.0
        self.initialised = False


class SpidersScene(SceneBase):
    """Living room; spiders on the floor or in a terrarium, walking with a tetrapod gait."""

    near_far = (0.02, 60.0)
    background_color = (0.1, 0.1, 0.1)

    def __init__(self, spec: SceneSpec | None = None, ease_time_s: float = DEFAULT_EASE_TIME_S):
        super().__init__(spec or SCENE, ease_time_s)
        self._spiders: list[_Spider] = []
        self._nearest: tuple[float, float, float] | None = None

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
        parts = self._spider_parts(parent)
        swarm = parent.attachNewNode("spiders")
        self._spiders = [_Spider(swarm, parts, i) for i in range(MAX_SPIDERS)]
        for node in parts.values():
            node.removeNode()

        self._ambient = g.ambient_light(parent, (0.4, 0.38, 0.36))
        self._sun = g.sun_light(parent, (0.9, 0.88, 0.8), (160, -35, 0))
        self._lamp = g.point_light(
            parent, (1.0, 0.8, 0.55), (1.9, 4.8, 1.55), (1.0, 0.0, 0.12), "floor-lamp"
        )

    def _build_room(self, room: NodePath) -> None:
        from vrexposure.render import geometry as g

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
        node = floor.attach(room, "floor")
        node.setTexture(g.planks_texture((0.62, 0.45, 0.3)))
        rug = g.MeshBuilder()
        rug.box((-1.1, 1.6, 0.0), (1.1, 4.4, 0.012), (0.5, 0.56, 0.6, 1), uv_m=0.6)
        rug.box((-1.0, 1.7, 0.0), (1.0, 4.3, 0.014), (0.9, 0.87, 0.8, 1), faces="Z", uv_m=0.6)
        rug.attach(room, "rug").setTexture(g.fabric_texture((1.0, 1.0, 1.0), 9))

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
        node = walls.attach(room, "walls")
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
        import numpy as np

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
        trim.attach(room, "furniture")

        glow = g.MeshBuilder()
        glow.cylinder(
            0.22, 0.3, (1.0, 0.92, 0.75, 1), g.transform((1.9, 4.8, 1.4)), top_radius=0.15
        )
        self._lamp_shade = glow.attach(room, "lamp-shade")
        g.set_unlit(self._lamp_shade)
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
        self._window = sky.attach(room, "window")
        g.set_unlit(self._window)

    def _build_tank(self, parent: NodePath) -> None:
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
        self._tank = tank

    def _spider_parts(self, parent: NodePath) -> dict[str, NodePath]:
        """Unit-leg-span spider parts (white, tinted per species with colour scales)."""
        from vrexposure.render import geometry as g

        parts: dict[str, NodePath] = {}
        builder = g.MeshBuilder()
        builder.sphere((0.075, 0.09, 0.05), (1, 1, 1, 1), rings=6, segments=10)
        builder.sphere((0.03, 0.03, 0.02), (1, 1, 1, 1), rings=3, segments=6, center=(0, 0.09, 0.0))
        parts["ceph"] = builder.attach(parent, "ceph")
        parts["ceph"].setPos(0, 0.05, 0.075)
        builder = g.MeshBuilder()
        builder.sphere((0.1, 0.14, 0.09), (1, 1, 1, 1), rings=7, segments=12)
        parts["abdomen"] = builder.attach(parent, "abdomen")
        parts["abdomen"].setPos(0, -0.16, 0.1)
        builder = g.MeshBuilder()
        for x, y, z, r in (
            (-0.022, 0.088, 0.025, 0.012),
            (0.022, 0.088, 0.025, 0.012),
            (-0.045, 0.07, 0.03, 0.008),
            (0.045, 0.07, 0.03, 0.008),
        ):
            builder.sphere(r, (0.02, 0.02, 0.02, 1), rings=3, segments=6, center=(x, y, z))
        parts["eyes"] = builder.attach(parent, "eyes")
        g.set_shiny(parts["eyes"], 1.0, 90)
        for name, length in (("femur", 0.3), ("tibia", 0.42)):
            builder = g.MeshBuilder()
            builder.tube((0, 0, 0), (0, length, 0), 1.0, 0.75, (1, 1, 1, 1), segments=6)
            parts[name] = builder.attach(parent, name)
        builder = g.MeshBuilder()
        builder.tube((0, -0.02, 0), (0, 0.05, 0), 1.25, 1.2, (1, 1, 1, 1), segments=6)
        parts["band"] = builder.attach(parent, "band")
        builder = g.MeshBuilder()
        builder.quad(
            [(-0.4, -0.45, 0.004), (0.4, -0.45, 0.004), (0.4, 0.35, 0.004), (-0.4, 0.35, 0.004)],
            (0.0, 0.0, 0.0, 0.55),
        )
        parts["shadow"] = builder.attach(parent, "shadow")
        parts["shadow"].setTexture(g.radial_texture(32, 1.2))
        g.set_transparent(parts["shadow"])
        g.set_unlit(parts["shadow"])
        return parts

    # -- animation ----------------------------------------------------------------------------

    def reset_motion(self) -> None:
        """A cut into this scene starts every spider at its resting place in its walk."""
        for spider in self._spiders:
            spider.phi = _spider_layout(spider.index)[2]
            spider.gait = spider.index * 0.7
            spider.initialised = False

    def _anchor(self, i: int, dist: float, contained: float, approach: float = 0.0
                ) -> tuple[float, float]:
        spread, angle, _phase, mix = _spider_layout(i)
        # Approaching spiders close in on the patient: the group tightens around `dist`.
        r = dist + spread * (1.0 - 0.6 * approach)
        a = math.radians(angle * (0.6 + 0.4 / max(dist, 0.5)))
        fx, fy = r * math.sin(-a) + 0.12, r * math.cos(a)
        tx = (mix - 0.5) * (TANK_W - 0.16) if i else 0.0
        ty = dist + TANK_D / 2 + (((i * 0.41) % 1.0) - 0.5) * (TANK_D - 0.16) if i else dist + 0.12
        return fx * (1 - contained) + tx * contained, fy * (1 - contained) + ty * contained

    def animate(self, dt_s: float, time_s: float) -> None:
        from vrexposure.render import geometry as g

        dist = self.v("distance_m")
        contained = min(1.0, max(0.0, self.v("contained")))
        approach = min(1.0, max(0.0, self.v("approach")))
        speed = max(0.0, self.v("speed_cm_s")) / 100.0
        size = max(0.004, self.v("size_cm") / 100.0)
        light = self.v("light_level")

        self._tank.setPos(0, dist + TANK_D / 2 - 0.05, 0)
        glass_alpha = contained
        self._tank.setAlphaScale(glass_alpha)
        if glass_alpha < 0.02:
            self._tank.hide()
        else:
            self._tank.show()
            self._tank.setTransparency(glass_alpha < 0.99)

        body = (self.v("body_r"), self.v("body_g"), self.v("body_b"))
        leg = (self.v("legc_r"), self.v("legc_g"), self.v("legc_b"))
        band = (self.v("band_r"), self.v("band_g"), self.v("band_b"))
        leg_r, abd, ceph = self.v("leg_r"), self.v("abd"), self.v("ceph")

        nearest: tuple[float, tuple[float, float, float]] | None = None
        for spider in self._spiders:
            i = spider.index
            present = self.v(f"present{i}")
            if present < 0.02:
                spider.root.hide()
                continue
            spider.root.show()
            ax, ay = self._anchor(i, dist, contained, approach)
            out = math.atan2(ay, ax)
            ox, oy = math.cos(out), math.sin(out)
            wander = 0.3 * (1 - contained) + 0.08 * contained
            a_len = wander * (1 - approach) + (0.6 * (1 - contained) + 0.12 * contained) * approach
            b_len = wander * (1 - approach) + (0.3 * (1 - contained) + 0.1 * contained) * approach
            radius = max(0.05, (a_len + b_len) / 2)
            inward = math.pi < spider.phi % (2 * math.pi)
            rate = speed / radius * (1.0 if inward else 1.0 + 1.5 * approach)
            spider.phi = (spider.phi + rate * dt_s) % (2 * math.pi)
            radial = a_len * (1 - math.cos(spider.phi))
            side = b_len * math.sin(spider.phi)
            floor_z = 0.08 * contained
            x = ax + ox * radial - oy * side
            y = ay + oy * radial + ox * side
            px, py, _pz = spider.pos
            moved = math.hypot(x - px, y - py) if spider.initialised else 0.0
            if moved > 1e-5 and spider.initialised:
                target_h = math.degrees(math.atan2(-(x - px), y - py))
            else:
                target_h = math.degrees(math.atan2(x, -y)) + (i * 47 % 80 - 40)
            turn = (target_h - spider.heading + 180) % 360 - 180
            spider.heading += turn * min(1.0, dt_s * 6.0) if spider.initialised else turn
            spider.pos = (x, y, floor_z)
            spider.initialised = True
            variety = 0.75 + 0.5 * ((i * 0.53) % 1.0) if i else 1.0
            s = size * variety * present
            spider.root.setPos(x, y, floor_z)
            spider.root.setH(spider.heading)
            spider.root.setScale(s)
            spider.gait += moved / max(0.002, 0.45 * s) * 2 * math.pi
            spider.ceph.setScale(ceph)
            spider.abdomen.setScale(abd)
            spider.abdomen.setZ(0.1 * abd)
            spider.body.setZ(0.02 * math.sin(time_s * 1.3 + i))
            spider.ceph.setColorScale(*body, 1)
            spider.abdomen.setColorScale(*g.shade(body, 1.15)[:3], 1)
            for hip, femur, knee, tibia, knee_band, base, group in spider.legs:
                phase = spider.gait + (math.pi if group else 0.0)
                swing = math.sin(phase) * 14.0
                lift = max(0.0, math.cos(phase)) * 14.0 if moved > 1e-5 else 0.0
                hip.setH(base + swing)
                hip.setP(38.0 + lift)
                knee.setP(-95.0 - lift * 0.6)
                femur.setScale(leg_r, 1.0, leg_r)
                tibia.setScale(leg_r * 0.85, 1.0, leg_r * 0.85)
                knee_band.setScale(leg_r, 1.0, leg_r)
                femur.setColorScale(*leg, 1)
                tibia.setColorScale(*leg, 1)
                knee_band.setColorScale(*band, 1)
            d = math.hypot(x, y)
            if nearest is None or d < nearest[0]:
                nearest = (d, (x, y, floor_z + 0.05 * s))
        self._nearest = nearest[1] if nearest else None

        g.set_light_color(self._ambient, g.shade((0.42, 0.4, 0.38), 0.35 + 0.65 * light))
        g.set_light_color(self._sun, g.shade((0.95, 0.92, 0.82), light))
        g.set_light_color(self._lamp, g.shade((1.0, 0.78, 0.5), 0.9 - 0.5 * light))
        self._window.setColorScale(0.3 + 0.7 * light, 0.3 + 0.7 * light, 0.35 + 0.65 * light, 1)

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
        return (0.0, -min(60.0, max(14.0, down * 0.92)), 0.0)


def _sky_colors(p: Any) -> Any:
    import numpy as np

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
        choice_param("species", "house", ("house", "wolf", "tarantula"), "Look of the spiders"),
        float_param("light_level", 1.0, 0.2, 1.0, "", "Room brightness"),
    ),
    factory=SpidersScene,
)

__all__ = ["SCENE", "ParamValue", "SpidersScene"]
