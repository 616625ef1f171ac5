"""Enclosed space: a small room whose walls, ceiling, light and door are controlled."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, ClassVar

from vrexposure.render.scene_base import DEFAULT_EASE_TIME_S, SceneBase
from vrexposure.scene_api import SceneSpec, choice_param, float_param

if TYPE_CHECKING:
    from panda3d.core import NodePath

MIN_WALL_M = 0.4
#: Walls return to the set distance at this speed once creeping stops.
CREEP_RETURN_M_S = 0.02
DOOR_W, DOOR_H = 0.9, 2.0


def crept_distance(set_distance_m: float, creep_m: float) -> float:
    """Wall distance after ``creep_m`` of creeping, never closer than :data:`MIN_WALL_M`."""
    return max(MIN_WALL_M, set_distance_m - creep_m)


class EnclosedSpaceScene(SceneBase):
    """A square room centred on the patient; walls and ceiling move, the door opens or locks."""

    sound_name = "ventilation"
    sound_param = "ventilation_volume"
    near_far = (0.03, 80.0)
    background_color = (0.0, 0.0, 0.0)
    channel_ease_s: ClassVar[dict[str, float]] = {"door=open": 1.5, "door=closed": 1.5, "door=locked": 1.5}

    def __init__(self, spec: SceneSpec | None = None, ease_time_s: float = DEFAULT_EASE_TIME_S):
        super().__init__(spec or SCENE, ease_time_s)
        self._creep_m = 0.0
        self._walls: list[tuple[NodePath, float]] = []

    def build(self, parent: NodePath) -> None:
        from vrexposure.render import geometry as g

        floor = g.MeshBuilder()
        floor.quad(
            [(-6, -6, 0), (6, -6, 0), (6, 6, 0), (-6, 6, 0)],
            (1, 1, 1, 1),
            uv_m=0.6,
            subdiv=(12, 12),
        )
        fnode = floor.attach(parent, "floor")
        fnode.setTexture(g.tiles_texture((0.55, 0.52, 0.48), (0.3, 0.29, 0.27), 2, 13))

        plaster = g.noise_texture(61, (0.82, 0.82, 0.82), (1.0, 1.0, 1.0), 8, 128)
        for k in range(4):
            wall_np = parent.attachNewNode(f"wall{k}")
            wall_np.setH(k * 90)
            panel = g.MeshBuilder()
            col = (0.78, 0.77, 0.72, 1)
            if k == 0:  # front wall with the door opening
                x0, x1 = -DOOR_W / 2, DOOR_W / 2
                panel.quad(
                    [(-6, 0, 0), (x0, 0, 0), (x0, 0, 6), (-6, 0, 6)], col, uv_m=1.0, subdiv=(4, 4)
                )
                panel.quad(
                    [(x1, 0, 0), (6, 0, 0), (6, 0, 6), (x1, 0, 6)], col, uv_m=1.0, subdiv=(4, 4)
                )
                panel.quad(
                    [(x0, 0, DOOR_H), (x1, 0, DOOR_H), (x1, 0, 6), (x0, 0, 6)], col, uv_m=1.0
                )
                trim = (0.35, 0.33, 0.3, 1)
                panel.box((x0 - 0.08, -0.04, 0), (x0, 0.02, DOOR_H + 0.08), trim)
                panel.box((x1, -0.04, 0), (x1 + 0.08, 0.02, DOOR_H + 0.08), trim)
                panel.box((x0, -0.04, DOOR_H), (x1, 0.02, DOOR_H + 0.08), trim)
                panel.box((x0, 0.0, 0), (x1, 0.15, 0.002), (0.3, 0.3, 0.3, 1), faces="Z")
                panel.box((x1 + 0.25, -0.03, 1.15), (x1 + 0.37, 0.0, 1.35), (0.85, 0.85, 0.82, 1))
            else:
                panel.quad(
                    [(-6, 0, 0), (6, 0, 0), (6, 0, 6), (-6, 0, 6)], col, uv_m=1.0, subdiv=(8, 6)
                )
            panel.box((-6, -0.02, 0), (6, 0.0, 0.1), (0.3, 0.28, 0.26, 1))
            if k == 1:
                panel.box((-0.3, -0.03, 1.9), (0.3, 0.0, 2.2), (0.6, 0.6, 0.6, 1))
                for j in range(6):
                    panel.box(
                        (-0.28, -0.035, 1.92 + j * 0.05),
                        (0.28, -0.03, 1.94 + j * 0.05),
                        (0.25, 0.25, 0.25, 1),
                    )
            if k == 3:
                panel.box((-0.45, -0.02, 1.2), (0.45, 0.0, 1.8), (0.9, 0.88, 0.8, 1))
                panel.box((-0.4, -0.025, 1.25), (0.4, -0.02, 1.75), (0.4, 0.55, 0.65, 1), faces="y")
            node = panel.attach(wall_np, "panel")
            node.setTexture(plaster)
            node.setTwoSided(False)
            self._walls.append((wall_np, k * 90.0))
        front = self._walls[0][0]
        # Beyond the door: a lit corridor.
        corridor = g.MeshBuilder()
        corridor.box((-1.0, 0.05, 0), (1.0, 6.0, 2.6), (0.9, 0.88, 0.8, 1), faces="xXYZz")
        corridor.quad(
            [(-1.0, 0.05, 0.001), (1.0, 0.05, 0.001), (1.0, 6.0, 0.001), (-1.0, 6.0, 0.001)],
            (0.6, 0.58, 0.55, 1),
        )
        cnode = corridor.attach(front, "corridor")
        cnode.setTwoSided(True)
        g.set_unlit(cnode)
        self._corridor = cnode
        hinge = front.attachNewNode("door-hinge")
        hinge.setPos(-DOOR_W / 2, 0.0, 0)
        door = g.MeshBuilder()
        door.box((0.0, -0.02, 0), (DOOR_W, 0.02, DOOR_H), (0.5, 0.36, 0.24, 1))
        door.box((DOOR_W - 0.12, -0.07, 0.98), (DOOR_W - 0.04, -0.02, 1.02), (0.8, 0.8, 0.78, 1))
        door.box((DOOR_W - 0.05, -0.07, 0.96), (DOOR_W - 0.04, -0.02, 1.04), (0.8, 0.8, 0.78, 1))
        door.attach(hinge, "door")
        self._door = hinge
        lock = g.MeshBuilder()
        lock.box((DOOR_W - 0.14, -0.06, 1.2), (DOOR_W - 0.02, -0.02, 1.36), (0.2, 0.2, 0.22, 1))
        lock.box((DOOR_W - 0.35, -0.08, 1.5), (DOOR_W + 0.12, -0.02, 1.56), (0.55, 0.55, 0.58, 1))
        self._lock = lock.attach(hinge, "lock")
        led = g.MeshBuilder()
        led.box((DOOR_W - 0.11, -0.066, 1.29), (DOOR_W - 0.05, -0.06, 1.33), (1.0, 0.12, 0.05, 1))
        led.sphere(
            0.012, (1.0, 0.2, 0.1, 1), center=(DOOR_W - 0.08, -0.07, 1.25), rings=3, segments=6
        )
        g.set_unlit(led.attach(self._lock, "led"))
        g.set_shiny(self._lock, 0.8, 50)

        ceiling = g.MeshBuilder()
        ceiling.quad(
            [(-6, -6, 0), (-6, 6, 0), (6, 6, 0), (6, -6, 0)],
            (0.9, 0.9, 0.88, 1),
            normal=(0, 0, -1),
            subdiv=(8, 8),
            uv_m=1.0,
        )
        self._ceiling = ceiling.attach(parent, "ceiling")
        self._ceiling.setTexture(plaster)
        lamp = g.MeshBuilder()
        lamp.box((-0.3, -0.3, -0.04), (0.3, 0.3, 0.0), (1.0, 0.98, 0.92, 1))
        self._lamp_panel = lamp.attach(self._ceiling, "lamp")
        g.set_unlit(self._lamp_panel)
        exit_sign = g.MeshBuilder()
        exit_sign.box((-0.18, -0.03, 0), (0.18, 0.0, 0.14), (0.1, 0.75, 0.3, 1))
        self._exit = exit_sign.attach(front, "exit-sign")
        self._exit.setPos(0, 0, DOOR_H + 0.15)
        g.set_unlit(self._exit)
        g.text_card(self._exit, "EXIT", 0.08, (1, 1, 1, 1), pos=(0, -0.035, 0.035))

        self._ambient = g.ambient_light(parent, (0.3, 0.3, 0.3))
        self._light = g.point_light(
            parent, (1, 0.97, 0.9), (0, 0, 2.5), (1.0, 0.0, 0.04), "ceiling-light"
        )

    def animate(self, dt_s: float, time_s: float) -> None:
        from vrexposure.render import geometry as g

        creep = max(0.0, self.v("wall_creep_cm_s")) / 100.0
        set_d = self.v("wall_distance_m")
        if creep > 1e-4:
            self._creep_m = min(max(0.0, set_d - MIN_WALL_M), self._creep_m + creep * dt_s)
        else:
            self._creep_m = max(0.0, self._creep_m - CREEP_RETURN_M_S * dt_s)
        dist = crept_distance(set_d, self._creep_m)
        ceiling = max(1.3, self.v("ceiling_height_m"))
        for wall, heading in self._walls:
            a = math.radians(heading)
            wall.setPos(-math.sin(a) * dist, math.cos(a) * dist, 0)
        self._ceiling.setZ(ceiling)
        self._light.setZ(ceiling - 0.3)
        open_ = min(1.0, max(0.0, self.v("door=open")))
        locked = min(1.0, max(0.0, self.v("door=locked")))
        self._door.setH(-100.0 * open_)
        self._lock.setAlphaScale(1.0)
        self._lock.show() if locked > 0.5 else self._lock.hide()
        self._corridor.show() if open_ > 0.01 else self._corridor.hide()
        # Perceived brightness: even the darkest setting leaves the walls faintly visible
        # (a black screen would show no room at all).
        light = self.v("light_level") ** 0.5
        g.set_light_color(self._ambient, g.shade((0.32, 0.32, 0.33), light))
        g.set_light_color(self._light, g.shade((1.0, 0.97, 0.9), light * 1.1))
        self._lamp_panel.setColorScale(light, light, light * 0.95, 1)
        glow = 0.15 + 0.85 * light
        self._corridor.setColorScale(glow * 0.95, glow * 0.93, glow * 0.85, 1)

    def reset_motion(self) -> None:
        self._creep_m = 0.0

    def current_wall_distance_m(self) -> float:
        return crept_distance(self.v("wall_distance_m"), self._creep_m)

    def stimulus_world_position(self) -> tuple[float, float, float] | None:
        return (0.0, self.current_wall_distance_m(), 1.2)

    def view_hpr(self) -> tuple[float, float, float]:
        return (0.0, 2.0, 0.0)


SCENE = SceneSpec(
    name="enclosed_space",
    title="Small room",
    params=(
        float_param(
            "wall_distance_m", 2.5, 0.4, 4.0, "m", "Distance from the patient to each wall"
        ),
        float_param("ceiling_height_m", 2.8, 1.4, 4.0, "m", "Ceiling height"),
        float_param("wall_creep_cm_s", 0.0, 0.0, 5.0, "cm/s", "Walls slowly move in (0 = still)"),
        choice_param("door", "open", ("open", "closed", "locked"), "Door state"),
        float_param("light_level", 1.0, 0.05, 1.0, "", "Room brightness"),
        float_param("ventilation_volume", 0.2, 0.0, 1.0, "", "Ventilation hum volume"),
    ),
    factory=EnclosedSpaceScene,
)
