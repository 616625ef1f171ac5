"""Enclosed space: a small room whose walls, ceiling, light and door are controlled.

The room is drawn exactly as large as it is: floor, walls and ceiling are
meshes whose vertices follow the wall distance and ceiling height
(:class:`RoomMesh`). Fixed panels as large as the largest room would be mostly
hidden behind each other, and a software rasteriser (llvmpipe) pays for hidden
pixels too: in a small room that is about three screens of them per frame.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

from vrexposure.render.scene_base import DEFAULT_EASE_TIME_S, SceneBase
from vrexposure.scene_api import EventSpec, SceneSpec, choice_param, float_param

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray
    from panda3d.core import GeomNode, NodePath, Texture, TextureStage

    from vrexposure.render.geometry import Color, MeshBuilder

MIN_WALL_M = 0.4
#: Walls return to the set distance at this speed once creeping stops.
CREEP_RETURN_M_S = 0.02
DOOR_W, DOOR_H = 0.9, 2.0
#: Floor tiles: metres per texture repeat (two tiles); plaster: metres per repeat.
FLOOR_TEX_M = 0.6
PLASTER_TEX_M = 1.0
WALL_COLOR = (0.78, 0.77, 0.72, 1.0)
#: Floor, walls and ceiling reach this far past each other: their seams cannot crack open.
SEAM_M = 0.01
#: Room sizes (wall distance, ceiling height in metres) the room meshes are probed at.
PROBE_WALL_M = (1.0, 2.0)
PROBE_CEILING_M = (2.0, 3.0)
#: Below this room brightness the patient's torch is on: a dark room is never a black screen,
#: the close walls show their plaster and seams in its pool of light.
TORCH_BELOW_LIGHT = 0.2
#: Torch beam: cone (degrees) and how much brighter its centre makes a surface (the
#: texture stage's scale: 1, 2 or 4) while the rim darkens what lies outside the pool.
TORCH_FOV_DEG = 42.0
TORCH_GAIN = 4
#: Room brightness (as ``light_level ** 0.5``) the ambient light keeps while the torch is on.
TORCH_AMBIENT = 0.7
#: The patient's torch at head height, a little to the right, shining ahead at the door
#: (room coordinates): its pool sits in the middle of the view at every wall distance.
TORCH_POS_M = (0.1, 0.0, 1.26)
TORCH_AIM_M = (0.0, 1.0, 1.22)


def plaster_image(size: int = 128, seed: int = 61) -> NDArray[np.uint8]:
    """Plaster board: mottled, with a dark seam along its sides (one board per repeat).

    Seams every :data:`PLASTER_TEX_M` on walls and ceiling give close surfaces something
    to see (distance, texture) when the room is dark and only a torch lights them.
    """
    import numpy as np

    from vrexposure.render import geometry as g

    x = (np.arange(size)[None, :] + 0.5) / size
    gray = 0.62 + 0.38 * g.value_noise(size, 8, seed, 4)
    edge = np.minimum(x, 1 - x)  # boards stand upright (on the ceiling: run one way)
    gray *= np.clip(edge / 0.01, 0.7, 1.0)  # the seam, about 2 cm wide at 1 m a repeat
    return g.tint(gray, (0.45, 0.45, 0.44), (1.0, 1.0, 0.98))


def torch_pool_image(size: int = 64) -> NDArray[np.uint8]:
    """The torch's pool of light: a warm hot centre, a soft rim, dim outside (the edge value)."""
    import numpy as np

    y, x = (np.mgrid[0:size, 0:size] + 0.5) / size - 0.5
    r = np.hypot(x, y) / 0.5
    beam = np.clip((1.0 - r) / 0.45, 0.0, 1.0) ** 1.3  # a bright disc with a soft rim
    hot = np.clip(1.0 - r / 0.35, 0.0, 1.0)  # and a hotter centre
    level = 0.12 + 0.73 * beam + 0.15 * hot  # times TORCH_GAIN: ~0.5 outside, 4 at the centre
    warm = np.array([1.0, 0.94, 0.82])
    return (np.clip(level[..., None] * warm, 0.0, 1.0) * 255).astype(np.uint8)


def crept_distance(set_distance_m: float, creep_m: float) -> float:
    """Wall distance after ``creep_m`` of creeping, never closer than :data:`MIN_WALL_M`."""
    return max(MIN_WALL_M, set_distance_m - creep_m)


class RoomMesh:
    """One Geom whose vertices follow the room size, moved with numpy.

    ``build(wall_m, ceiling_m)`` must make the same triangles for every size with
    positions and uvs affine in both (walls slide, their far edges stretch). Three
    builds at probe sizes then give ``rows = base + wall_m * per_wall_m +
    ceiling_m * per_ceiling_m`` for every vertex, evaluated when the size changes.
    Scaling nodes instead would stretch the textures as the walls move.
    """

    def __init__(self, name: str, build: Callable[[float, float], MeshBuilder]) -> None:
        import numpy as np

        (d0, d1), (c0, c1) = PROBE_WALL_M, PROBE_CEILING_M
        rows00, tris = build(d0, c0).arrays()
        rows10, tris10 = build(d1, c0).arrays()
        rows01, tris01 = build(d0, c1).arrays()
        if not (np.array_equal(tris, tris10) and np.array_equal(tris, tris01)):
            raise ValueError(f"RoomMesh {name}: the triangles depend on the room size")
        at00, at10, at01 = (r.astype(np.float64) for r in (rows00, rows10, rows01))
        self._per_wall_m = (at10 - at00) / (d1 - d0)
        self._per_ceiling_m = (at01 - at00) / (c1 - c0)
        self._base = at00 - d0 * self._per_wall_m - c0 * self._per_ceiling_m
        self._name = name
        self._tris = tris
        self._rows = rows00.astype(np.float32)
        self._size: tuple[float, float] = (d0, c0)
        self._node: GeomNode | None = None

    def attach(self, parent: NodePath) -> NodePath:
        from panda3d.core import Geom, OmniBoundingVolume

        from vrexposure.render import geometry as g

        builder = g.MeshBuilder()
        builder.add_rows(self._rows, self._tris)
        self._node = builder.node(self._name, usage=Geom.UH_dynamic)
        # The room surrounds the eye: never culled, and no bounds to recompute as it moves.
        self._node.setBounds(OmniBoundingVolume())
        self._node.setFinal(True)
        return parent.attachNewNode(self._node)

    def rows(self, wall_m: float, ceiling_m: float) -> NDArray[np.float32]:
        """Vertex rows (MeshBuilder layout) of the room at this size."""
        rows = self._base + wall_m * self._per_wall_m + ceiling_m * self._per_ceiling_m
        return rows.astype("float32")

    def update(self, wall_m: float, ceiling_m: float) -> None:
        """Move the vertices to a room ``wall_m`` from the eye with a ``ceiling_m`` ceiling."""
        import numpy as np

        if self._node is None or (wall_m, ceiling_m) == self._size:
            return
        self._size = (wall_m, ceiling_m)
        vdata = self._node.modifyGeom(0).modifyVertexData()
        # Through a byte view: numpy reads Panda3D's per-row struct format slowly.
        raw = memoryview(vdata.modifyArray(0)).cast("B")
        np.frombuffer(raw, np.float32).reshape(-1, 12)[:] = self.rows(wall_m, ceiling_m)


def _plane(
    dest: MeshBuilder,
    corners: list[tuple[float, float, float]],
    color: Color,
    subdiv: tuple[int, int],
    uv_axes: tuple[int, int],
    uv_m: float,
    normal: tuple[float, float, float] | None = None,
) -> None:
    """A quad whose uvs are its own coordinates (axes ``uv_axes``) / ``uv_m``.

    Textures stay put in space while a wall slides or stretches, instead of
    being anchored at a moving corner.
    """
    from vrexposure.render import geometry as g

    quad = g.MeshBuilder()
    quad.quad(corners, color, normal=normal, subdiv=subdiv)
    rows, tris = quad.arrays()
    rows[:, 10] = rows[:, uv_axes[0]] / uv_m
    rows[:, 11] = rows[:, uv_axes[1]] / uv_m
    dest.add_rows(rows, tris)


def floor_mesh(wall_m: float, ceiling_m: float) -> MeshBuilder:
    """The floor between the walls (subdivided: the lamp lights it per vertex)."""
    from vrexposure.render import geometry as g

    d = wall_m + SEAM_M  # under the walls' feet
    floor = g.MeshBuilder()
    _plane(floor, [(-d, -d, 0), (d, -d, 0), (d, d, 0), (-d, d, 0)], (1, 1, 1, 1), (12, 12),
           (0, 1), FLOOR_TEX_M)
    return floor


def _wall(k: int, d: float, c: float) -> MeshBuilder:
    """Wall ``k`` (heading k·90°) in its own frame: plane y = 0 facing -y, x across, z up.

    ``d``: the wall distance; ``c``: the ceiling height. The plaster reaches SEAM_M
    into the neighbouring walls and above the ceiling.
    """
    from vrexposure.render import geometry as g

    panel = g.MeshBuilder()
    skirting = d  # the skirting board stops at the corner
    d, c = d + SEAM_M, c + SEAM_M
    col = WALL_COLOR
    if k == 0:  # front wall with the door opening
        x0, x1 = -DOOR_W / 2, DOOR_W / 2
        _plane(panel, [(-d, 0, 0), (x0, 0, 0), (x0, 0, c), (-d, 0, c)], col, (4, 4), (0, 2),
               PLASTER_TEX_M)
        _plane(panel, [(x1, 0, 0), (d, 0, 0), (d, 0, c), (x1, 0, c)], col, (4, 4), (0, 2),
               PLASTER_TEX_M)
        _plane(panel, [(x0, 0, DOOR_H), (x1, 0, DOOR_H), (x1, 0, c), (x0, 0, c)], col, (1, 1),
               (0, 2), PLASTER_TEX_M)
        trim = (0.35, 0.33, 0.3, 1)
        panel.box((x0 - 0.08, -0.04, 0), (x0, 0.02, DOOR_H + 0.08), trim)
        panel.box((x1, -0.04, 0), (x1 + 0.08, 0.02, DOOR_H + 0.08), trim)
        panel.box((x0, -0.04, DOOR_H), (x1, 0.02, DOOR_H + 0.08), trim)
        panel.box((x0, 0.0, 0), (x1, 0.15, 0.002), (0.3, 0.3, 0.3, 1), faces="Z")
        panel.box((x1 + 0.25, -0.03, 1.15), (x1 + 0.37, 0.0, 1.35), (0.85, 0.85, 0.82, 1))
    else:
        _plane(panel, [(-d, 0, 0), (d, 0, 0), (d, 0, c), (-d, 0, c)], col, (8, 6), (0, 2),
               PLASTER_TEX_M)
    skirt = (0.3, 0.28, 0.26, 1)
    if k == 0:  # not across the doorway: its face would be coplanar with the door's
        panel.box((-skirting, -0.02, 0), (-DOOR_W / 2 - 0.08, 0.0, 0.1), skirt)
        panel.box((DOOR_W / 2 + 0.08, -0.02, 0), (skirting, 0.0, 0.1), skirt)
    else:
        panel.box((-skirting, -0.02, 0), (skirting, 0.0, 0.1), skirt)
    if k == 1:  # ventilation grille
        panel.box((-0.3, -0.03, 1.9), (0.3, 0.0, 2.2), (0.6, 0.6, 0.6, 1))
        for j in range(6):
            panel.box(
                (-0.28, -0.035, 1.92 + j * 0.05),
                (0.28, -0.03, 1.94 + j * 0.05),
                (0.25, 0.25, 0.25, 1),
            )
    if k == 3:  # a framed picture
        panel.box((-0.45, -0.02, 1.2), (0.45, 0.0, 1.8), (0.9, 0.88, 0.8, 1))
        panel.box((-0.4, -0.025, 1.25), (0.4, -0.02, 1.75), (0.4, 0.55, 0.65, 1), faces="y")
    return panel


def walls_mesh(wall_m: float, ceiling_m: float) -> MeshBuilder:
    """The four walls (with their fixtures) and the ceiling: all plaster, one Geom."""
    import numpy as np

    from vrexposure.render import geometry as g

    d, c = wall_m, ceiling_m
    room = g.MeshBuilder()
    for k in range(4):
        rows, tris = _wall(k, d, c).arrays()
        # Into the room: out to the wall distance, then turned to face the centre.
        rot = g.transform(hpr=(k * 90.0, 0.0, 0.0))[:3, :3]
        rows[:, 0:3] = (rows[:, 0:3] + np.array([0.0, d, 0.0])) @ rot
        rows[:, 3:6] = rows[:, 3:6] @ rot
        room.add_rows(rows, tris)
    e = d + SEAM_M  # over the walls' tops
    _plane(room, [(-e, -e, c), (-e, e, c), (e, e, c), (e, -e, c)], (0.9, 0.9, 0.88, 1), (8, 8),
           (1, 0), PLASTER_TEX_M, normal=(0, 0, -1))
    return room


class EnclosedSpaceScene(SceneBase):
    """A square room centred on the patient; walls and ceiling move, the door opens or locks."""

    sound_name = "ventilation"
    sound_param = "ventilation_volume"
    near_far = (0.03, 80.0)
    background_color = (0.0, 0.0, 0.0)
    event_sounds: ClassVar[dict[str, str]] = {"door_closes": "door_slam"}
    channel_ease_s: ClassVar[dict[str, float]] = {
        "door=open": 1.5,
        "door=closed": 1.5,
        "door=locked": 1.5,
    }

    def __init__(self, spec: SceneSpec | None = None, ease_time_s: float = DEFAULT_EASE_TIME_S):
        super().__init__(spec or SCENE, ease_time_s)
        self._creep_m = 0.0

    def build(self, parent: NodePath) -> None:
        from vrexposure.render import geometry as g

        self._floor = RoomMesh("floor", floor_mesh)
        floor = self._floor.attach(parent)
        floor.setTexture(g.tiles_texture((0.55, 0.52, 0.48), (0.3, 0.29, 0.27), 2, 13))
        self._room = RoomMesh("walls", walls_mesh)
        walls = self._room.attach(parent)
        plaster = g.texture_from_array("plaster-board", plaster_image())
        walls.setTexture(plaster)
        walls.setTag("stimulus", "walls")  # walls and ceiling, closing in (check-scenes)

        # The door, its sign and the corridor beyond move with the front wall.
        front = self._front = parent.attachNewNode("front-wall")
        front.setTag("stimulus", "door")
        corridor = g.MeshBuilder()
        corridor.box((-1.0, 0.05, 0), (1.0, 6.0, 2.6), (0.9, 0.88, 0.8, 1), faces="xXYZz")
        corridor.quad(
            [(-1.0, 0.05, 0.001), (1.0, 0.05, 0.001), (1.0, 6.0, 0.001), (-1.0, 6.0, 0.001)],
            (0.6, 0.58, 0.55, 1),
        )
        cnode = corridor.attach(front, "corridor")
        cnode.setTwoSided(True)
        g.set_unlit(cnode)
        # Drawn after the room: only the pixels seen through the doorway are shaded.
        cnode.setBin("fixed", 0)
        self._corridor = cnode
        hinge = front.attachNewNode("door-hinge")
        hinge.setPos(-DOOR_W / 2, 0.0, 0)
        leaf = g.MeshBuilder()  # boards with grain and joints: a close door is not a flat slab
        leaf.box((0.0, -0.02, 0), (DOOR_W, 0.02, DOOR_H), (1.0, 1.0, 1.0, 1))
        leaf.attach(hinge, "door-leaf").setTexture(g.planks_texture((0.56, 0.4, 0.27), 17))
        door = g.MeshBuilder()
        door.box((DOOR_W - 0.12, -0.07, 0.98), (DOOR_W - 0.04, -0.02, 1.02), (0.8, 0.8, 0.78, 1))
        door.box((DOOR_W - 0.05, -0.07, 0.96), (DOOR_W - 0.04, -0.02, 1.04), (0.8, 0.8, 0.78, 1))
        door.attach(hinge, "door")
        self._door = hinge
        lock = g.MeshBuilder()
        lock.box((DOOR_W - 0.14, -0.06, 1.2), (DOOR_W - 0.02, -0.02, 1.36), (0.2, 0.2, 0.22, 1))
        # The bolt bar sits clear of 1.5 m, a ceiling height the hierarchy uses (z-fighting).
        lock.box((DOOR_W - 0.35, -0.08, 1.51), (DOOR_W + 0.12, -0.02, 1.57), (0.55, 0.55, 0.58, 1))
        self._lock = lock.attach(hinge, "lock")
        led = g.MeshBuilder()
        led.box((DOOR_W - 0.11, -0.066, 1.29), (DOOR_W - 0.05, -0.06, 1.33), (1.0, 0.12, 0.05, 1))
        led.sphere(
            0.012, (1.0, 0.2, 0.1, 1), center=(DOOR_W - 0.08, -0.07, 1.25), rings=3, segments=6
        )
        g.set_shiny(self._lock, 0.8, 50)

        lamp = g.MeshBuilder()
        lamp.box((-0.3, -0.3, -0.04), (0.3, 0.3, 0.0), (1.0, 0.98, 0.92, 1))
        self._lamp_panel = lamp.attach(parent, "lamp")
        self._lamp_panel.setTexture(plaster)  # a diffuser with the ceiling's texture, as before
        g.set_unlit(self._lamp_panel)
        exit_sign = g.MeshBuilder()
        exit_sign.box((-0.18, -0.03, 0), (0.18, 0.0, 0.14), (0.1, 0.75, 0.3, 1))
        self._exit = exit_sign.attach(front, "exit-sign")
        self._exit.setPos(0, 0, DOOR_H + 0.15)
        g.set_unlit(self._exit)
        g.text_card(self._exit, "EXIT", 0.08, (1, 1, 1, 1), pos=(0, -0.035, 0.035))

        self._torch_stage, self._torch_texture, self._torch = self._make_torch(parent)
        self._torch_on = False
        for glowing in (self._exit, self._lamp_panel, self._corridor):  # their own light
            glowing.setTextureOff(self._torch_stage)
        g.set_unlit(led.attach(self._lock, "led")).setTextureOff(self._torch_stage)

        self._ambient = g.ambient_light(parent, (0.3, 0.3, 0.3))
        self._light = g.point_light(
            parent, (1, 0.97, 0.9), (0, 0, 2.5), (1.0, 0.0, 0.04), "ceiling-light"
        )

    @staticmethod
    def _make_torch(parent: NodePath) -> tuple[TextureStage, Texture, NodePath]:
        """A projector whose texture multiplies the lit colour of whatever it falls on.

        Fixed-function lighting is per vertex: a spotlight on a 4-vertex door would
        light it evenly. A projected texture draws the pool per pixel at no extra
        draw call (an extra texture stage on the room's Geoms).
        """
        from panda3d.core import LensNode, PerspectiveLens, TextureStage

        from vrexposure.render import geometry as g

        lens = PerspectiveLens()
        lens.setFov(TORCH_FOV_DEG)
        lens.setNearFar(0.05, 20.0)
        torch = parent.attachNewNode(LensNode("torch", lens))
        torch.setPos(*TORCH_POS_M)
        torch.lookAt(*TORCH_AIM_M)
        stage = TextureStage("torch-pool")
        stage.setSort(50)
        stage.setCombineRgb(TextureStage.CM_modulate, TextureStage.CS_previous,
                            TextureStage.CO_src_color, TextureStage.CS_texture,
                            TextureStage.CO_src_color)
        stage.setCombineAlpha(TextureStage.CM_replace, TextureStage.CS_previous,
                              TextureStage.CO_src_alpha)
        stage.setRgbScale(TORCH_GAIN)
        texture = g.texture_from_array("torch-pool", torch_pool_image(), repeat=False,
                                       mipmap=False)
        return stage, texture, torch

    def _set_torch(self, on: bool) -> None:
        if on == self._torch_on or self.root is None:
            return
        self._torch_on = on
        if on:
            self.root.projectTexture(self._torch_stage, self._torch_texture, self._torch)
        else:
            self.root.clearProjectTexture(self._torch_stage)

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
        self._floor.update(dist, ceiling)
        self._room.update(dist, ceiling)
        self._front.setY(dist)
        self._lamp_panel.setZ(ceiling)
        self._light.setZ(ceiling - 0.3)
        open_ = min(1.0, max(0.0, self.v("door=open")))
        closing = self.event_progress("door_closes")
        if closing is not None:  # the door swings shut (fast), stays shut, then reopens
            shut = min(1.0, closing / 0.08) if closing < 0.9 else 1.0 - (closing - 0.9) / 0.1
            open_ *= 1.0 - shut
        locked = min(1.0, max(0.0, self.v("door=locked")))
        self._door.setH(-100.0 * open_)
        self._lock.setAlphaScale(1.0)
        self._lock.show() if locked > 0.5 else self._lock.hide()
        self._corridor.show() if open_ > 0.01 else self._corridor.hide()
        # Perceived brightness: even the darkest setting leaves the walls faintly visible
        # (a black screen would show no room at all).
        self._set_torch(self.v("light_level") < TORCH_BELOW_LIGHT)
        light = self.v("light_level") ** 0.5
        failing = self.event_progress("light_fails")
        if failing is not None:  # flickers, goes out (the exit sign and corridor still glow)
            t = failing * 8.0
            flicker = 0.5 + 0.5 * math.sin(t * 37.0) * math.sin(t * 11.0)
            light *= flicker if failing < 0.15 or failing > 0.9 else 0.12
        # The torch's own light scattered back from the close walls (its pool multiplies it).
        ambient = max(light, TORCH_AMBIENT) if self._torch_on else light
        g.set_light_color(self._ambient, g.shade((0.32, 0.32, 0.33), ambient))
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
    events=(
        EventSpec("door_closes", "The door swings shut", "c", 20.0),
        EventSpec("light_fails", "The light flickers and fails", "l", 10.0),
    ),
    factory=EnclosedSpaceScene,
)
