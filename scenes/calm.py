"""Calm scene: a quiet lakeside meadow. Shown during baseline, pauses and after STOP.

Drawn with few draw calls: every static part is one Geom, and the parts that
move (trees, clouds, grass, flowers) are one Geom each whose vertices a vertex
shader moves (numpy where shaders do not run). The patient sits still, so triangles that can never face the eye are
left out, and the sky is drawn last so only the pixels the land leaves free
are shaded (llvmpipe pays for every pixel it fills).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, ClassVar

from vrexposure.render.scene_base import DEFAULT_EASE_TIME_S, SceneBase
from vrexposure.render.seated import (
    SwayParts,
    box_corners,
    drop_buried,
    dynamic_node,
    facing_only,
    mip_nearest_sampler,
)
from vrexposure.scene_api import SceneSpec, choice_param, float_param

if TYPE_CHECKING:
    from panda3d.core import NodePath

    from vrexposure.render.geometry import MeshBuilder

DAY_ZENITH, DAY_HORIZON = (0.28, 0.5, 0.86), (0.78, 0.87, 0.96)
DUSK_ZENITH, DUSK_HORIZON = (0.16, 0.18, 0.4), (0.98, 0.62, 0.38)
LAKE_Y = 14.0  # the shore line in front of the patient
SKY_RADIUS_M = 900.0
#: Where the eye can be: the seated eye point (0, 0, 1.2), a head leaning a metre or standing.
EYE_LO, EYE_HI = (-1.0, -1.0, 0.4), (1.0, 1.0, 2.2)
#: The strongest wind tilts a tree by 0.047 rad: seen from the tree, the eye then moves by
#: that much per metre of distance. Culling widens the eye's box by this share of it.
SWAY_SLACK = 0.06
#: Trees farther than this (metres) are built with fewer segments.
FAR_TREE_M = 60.0


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


# --------------------------------------------------------------------------- static geometry


def add_spindle(builder: MeshBuilder, radius_m: Any, color: Any, center: Any) -> None:
    """An ellipsoid as an octahedron (8 triangles, smooth normals): a cattail head."""
    import numpy as np

    unit = np.array([(1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0), (0, 0, 1), (0, 0, -1)], float)
    faces = np.array([(i, j, k) for i in (0, 1) for j in (2, 3) for k in (4, 5)])
    a, b, c = unit[faces[:, 0]], unit[faces[:, 1]], unit[faces[:, 2]]
    inward = (np.cross(b - a, c - a) * (a + b + c)).sum(axis=1) < 0
    faces[inward] = faces[inward][:, ::-1]  # counter-clockwise seen from outside
    radii = np.asarray(radius_m, float)
    normals = unit / radii
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    builder.add(unit * radii + np.asarray(center, float), normals, np.zeros((6, 2)), faces, color)


def add_height_field(builder: MeshBuilder, xs: Any, ys: Any, color: Any, uv_m: float,
                     edges: dict[str, Any] | None = None) -> None:
    """Terrain over the grid ``xs`` × ``ys`` (metres, any spacing), facing +Z.

    ``edges`` ("x0", "x1", "y0", "y1" → the neighbour's sample coordinates along
    that edge): a finer patch puts its border vertices on the coarser
    neighbour's edge, so the patches meet without cracks.
    """
    import numpy as np

    gx, gy = np.meshgrid(np.asarray(xs, float), np.asarray(ys, float))
    gz = _terrain_height(gx, gy)
    for edge, samples in (edges or {}).items():
        coords = np.asarray(samples, float)
        if edge in ("x0", "x1"):
            col = 0 if edge == "x0" else -1
            gz[:, col] = np.interp(gy[:, col], coords, _terrain_height(gx[0, col], coords))
        else:
            row = 0 if edge == "y0" else -1
            gz[row, :] = np.interp(gx[row, :], coords, _terrain_height(coords, gy[row, 0]))
    # Analytic slopes (the same on both sides of a patch border: no lighting seams).
    step = 1.0
    dzdx = (_terrain_height(gx + step, gy) - _terrain_height(gx - step, gy)) / (2 * step)
    dzdy = (_terrain_height(gx, gy + step) - _terrain_height(gx, gy - step)) / (2 * step)
    nrm = np.dstack([-dzdx, -dzdy, np.ones_like(gz)])
    nrm /= np.linalg.norm(nrm, axis=2, keepdims=True)
    pos = np.dstack([gx, gy, gz]).reshape(-1, 3)
    nx, ny = len(xs) - 1, len(ys) - 1
    i, j = np.meshgrid(np.arange(nx), np.arange(ny))
    a = (j * (nx + 1) + i).reshape(-1)
    tris = np.stack([a, a + 1, a + nx + 2, a, a + nx + 2, a + nx + 1], axis=1).reshape(-1, 3)
    builder.add(pos, nrm.reshape(-1, 3), pos[:, :2] / uv_m, tris, color)


# --------------------------------------------------------------------------- moving geometry


class BendingField:
    """Grass-like pieces in one Geom that the wind bends along x, patch by patch.

    Each vertex leans by ``shear[patch] × lift``: ``lift`` is its height above its
    blade's root, so roots stay put and tips swing. One multiply-add over the x
    column per frame instead of a sheared node (and a draw call) per patch; where
    shaders run, a vertex shader does it from the gust's phase and strength.
    """

    def __init__(self, name: str) -> None:
        from vrexposure.render import geometry as g

        self.name = name
        self.builder = g.MeshBuilder()
        self._lift: list[Any] = []
        self._patch: list[Any] = []
        self._gpu_offsets: Any = None  # where the gust reaches each patch, once on the GPU

    def add(self, piece: MeshBuilder, patch: int, lift_m: Any) -> None:
        """Add ``piece`` (world coordinates) bending with ``patch``; ``lift_m`` per vertex."""
        import numpy as np

        rows, tris = piece.arrays()
        self.builder.add_rows(rows, tris)
        self._lift.append(np.broadcast_to(np.asarray(lift_m, np.float32), (len(rows),)))
        self._patch.append(np.full(len(rows), patch))

    def attach(self, parent: NodePath) -> NodePath:
        import numpy as np

        self.lift = np.concatenate(self._lift)
        self.patch = np.concatenate(self._patch)
        self._rest_x = self.builder.arrays()[0][:, 0].copy()
        path, self._node = dynamic_node(self.builder, parent, self.name)
        self._path = path
        return path

    def blow(self, phase: float, bend: float, patch_offset: Any) -> None:
        """Bend by the gust wave (:func:`~vrexposure.render.shaders.gust_shear`) at ``phase``."""
        import numpy as np

        from vrexposure.render import shaders

        self._gust = (phase, bend, patch_offset)
        if not shaders.available():
            self.bend(shaders.gust_shear(phase, bend, patch_offset))
            return
        if self._gpu_offsets is None:  # first frame: where the gust reaches each vertex
            self._gpu_offsets = np.asarray(patch_offset, np.float32)
            shaders.add_anim_column(self._node, np.stack(
                [self.lift, self._gpu_offsets[self.patch]], axis=1))
            self._shader = shaders.AnimatedShader(self._path, "bend")
        self._shader.refresh()
        self._path.setShaderInput("wind", (phase, bend))

    def placed_positions(self) -> Any:
        """(vertices, 3) as the last frame drew them (computed here on the GPU path)."""
        from vrexposure.render import shaders
        from vrexposure.render.geometry import vertex_rows

        rows = vertex_rows(self._node)[:, 0:3].copy()
        if self._gpu_offsets is not None:
            rows[:, 0] = self._rest_x + shaders.gust_shear(*self._gust)[self.patch] * self.lift
        return rows

    def bend(self, shear: Any) -> None:
        """Lean every patch: ``shear[patch]`` metres along x per metre of height."""
        from vrexposure.render.geometry import vertex_rows

        vertex_rows(self._node)[:, 0] = self._rest_x + shear[self.patch] * self.lift


# --------------------------------------------------------------------------- the scene


class CalmScene(SceneBase):
    """Meadow by a lake: sky dome, hills, trees, swaying grass, drifting clouds, birdsong."""

    sound_name = "birds"
    sound_param = "ambient_volume"
    near_far = (0.05, 1500.0)
    background_color = DAY_HORIZON
    channel_ease_s: ClassVar[dict[str, float]] = {"time_of_day=dusk": 3.0}

    def __init__(self, spec: SceneSpec | None = None, ease_time_s: float = DEFAULT_EASE_TIME_S):
        super().__init__(spec or SCENE, ease_time_s)
        self._wind_phase = 0.0
        self._water_offset = 0.0
        self._grass_offset: list[float] = []  # per grass patch: where the gust wave reaches it
        self._sky_dusk_shown = -1.0

    def build(self, parent: NodePath) -> None:
        import numpy as np
        from panda3d.core import Fog

        from vrexposure.render import geometry as g

        rng = np.random.default_rng(11)
        eyes = box_corners(EYE_LO, EYE_HI)
        self._build_sky(parent)

        sun = g.MeshBuilder()
        sun.quad([(-1, 0, -1), (1, 0, -1), (1, 0, 1), (-1, 0, 1)], (1, 1, 1, 1))
        self._sun = sun.attach(parent, "sun-disc")
        self._sun.setTexture(g.radial_texture(64, 1.5))
        self._sun.setBillboardPointEye()
        g.set_additive(self._sun)
        self._sun.setFogOff(1)

        ground = self._build_terrain(parent, eyes)
        # Bilinear within the nearest mip level: half the texture reads of trilinear on the
        # largest surface, and on this soft noise the switch between levels does not show.
        ground.setTexture(
            g.noise_texture(21, (0.75, 0.75, 0.75), (1.0, 1.0, 1.0), 16, 128), mip_nearest_sampler()
        )

        water = g.MeshBuilder()

        def water_color(p: Any) -> Any:
            d = np.clip((p[:, 1:2] - LAKE_Y) / 120.0, 0, 1) ** 0.6
            rgb = np.array([0.12, 0.27, 0.33]) * (1 - d) + np.array([0.55, 0.68, 0.8]) * d
            a = 0.85 + 0.15 * d
            return np.hstack([rgb, a]).astype(np.float32)

        # Beyond |x| = 140 m the side hills rise above the water: no lake hidden under them.
        water.grid((-140, 140), (LAKE_Y - 2, 135), (12, 30), None, water_color, uv_m=6.0)
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
                # 1 cm stems: three sides look round; open ends never show.
                reeds.tube((x, y, -0.3), top, 0.012, 0.004, (0.35, 0.45, 0.2, 1), 3, caps=False)
            # A cattail head: a few pixels wide from 12 m away.
            add_spindle(reeds, (0.03, 0.03, 0.12), (0.35, 0.22, 0.12, 1), (x, y, h - 0.3))
        facing_only(reeds, eyes).attach(parent, "reeds")

        self._build_trees(parent, rng)
        self._build_grass(parent, rng, eyes)
        self._build_clouds(parent, rng)

        self._ambient = g.ambient_light(parent, (0.4, 0.42, 0.48))
        self._sun_light = g.sun_light(parent, (1, 0.95, 0.85), (30, -40, 0))
        self._fog = Fog("haze")
        self._fog.setExpDensity(0.0035)
        parent.setFog(self._fog)

    def _build_sky(self, parent: NodePath) -> None:
        """One dome whose vertex colours blend day and dusk (not two domes, one over the other)."""
        import numpy as np

        from vrexposure.render import geometry as g

        dome = g.MeshBuilder()
        # The colour depends on height only: rings matter, segments barely (16, not 32).
        dome.sphere(SKY_RADIUS_M, (1, 1, 1, 1), rings=16, segments=16, inside=True, z_min=-0.2)
        rows, _ = dome.arrays()
        t = np.clip(rows[:, 2:3] / SKY_RADIUS_M, 0.0, 1.0) ** 0.5
        self._sky_day = np.asarray(DAY_HORIZON) * (1 - t) + np.asarray(DAY_ZENITH) * t
        self._sky_dusk = np.asarray(DUSK_HORIZON) * (1 - t) + np.asarray(DUSK_ZENITH) * t
        self._sky, self._sky_node = dynamic_node(dome, parent, "sky")
        g.set_unlit(self._sky)
        self._sky.setFogOff(1)
        # Drawn after the land, depth-tested: pixels behind hills and trees cost nothing.
        self._sky.setBin("fixed", 0)
        self._sky.setDepthWrite(False)

    def _build_terrain(self, parent: NodePath, eyes: Any) -> NodePath:
        """Meadow, lake basin and hills: fine near the eye, coarse far away, without cracks."""
        import numpy as np

        from vrexposure.render import geometry as g

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

        # Near the eye every 2 m (1 m across the shore); the rest as coarse as its shape allows.
        near_x = np.arange(-30.0, 30.01, 2.0)
        near_y = np.concatenate([np.arange(-12.0, 12.0, 2.0), np.arange(12.0, 20.0, 1.0),
                                 np.arange(20.0, 40.01, 2.0)])
        side_x = np.array([30, 40, 52, 66, 82, 100, 120, 145, 175, 210, 250, 300, 350, 400.0])
        # Rows on the shore ramps' ends (the water line falls between them): the sand bands
        # show in front of the eye, not as stripes up the side hills.
        side_y = np.array([-100, -75, -52, -32, -12, 0, 12, 20, 30, 40, 50, 62, 76, 90, 105, 130,
                           145, 160, 170, 180, 190, 200, 210, 220, 230, 240, 250, 260, 285, 315,
                           350, 400, 450.0])
        mid_x = np.arange(-30.0, 30.01, 12.0)
        mid_y = np.union1d(side_y[side_y >= 40], [112.0, 120.0])  # the far beach
        terrain = g.MeshBuilder()
        add_height_field(terrain, near_x, near_y, ground_color, 1.5,
                         edges={"x0": side_y, "x1": side_y, "y0": mid_x, "y1": mid_x})
        add_height_field(terrain, side_x, side_y, ground_color, 1.5)
        add_height_field(terrain, -side_x[::-1], side_y, ground_color, 1.5)
        add_height_field(terrain, mid_x, mid_y, ground_color, 1.5,
                         edges={"x0": side_y, "x1": side_y})
        add_height_field(terrain, mid_x, side_y[side_y <= -12], ground_color, 1.5)
        return facing_only(terrain, eyes).attach(parent, "terrain")

    def _build_trees(self, parent: NodePath, rng: Any) -> None:
        import numpy as np

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
        self._trees = SwayParts("trees", roll_normals=False)  # a degree or two of sway
        self._tree_phase: list[float] = []
        world_eyes = box_corners(EYE_LO, EYE_HI)
        for x, y in spots:
            tree = g.MeshBuilder()
            crown: list[tuple[Any, Any, int, int]] = []  # the lumps of a deciduous crown
            near = math.hypot(x, y) < FAR_TREE_M
            height = float(rng.uniform(6, 11)) * (1.5 if y > 100 else 1.0)
            conifer = rng.random() < (0.6 if y > 100 else 0.25)
            bark = (0.33, 0.24, 0.16, 1)
            leaf = g.shade((0.2, 0.42, 0.16), float(rng.uniform(0.75, 1.15)))
            # Trunk ends lie in the ground or inside the crown: no caps.
            if conifer:
                tree.cylinder(0.18, height * 0.3, bark, segments=7 if near else 5, caps=False)
                for k in range(4):
                    z0 = height * (0.22 + 0.18 * k)
                    r = height * (0.28 - 0.055 * k)
                    tree.cylinder(
                        r,
                        height * 0.34,
                        g.shade(leaf, 0.8),
                        g.transform((0, 0, z0)),
                        segments=10 if near else 6,
                        top_radius=0.0,
                    )
            else:
                tree.cylinder(0.22, height * 0.55, bark, segments=8 if near else 5,
                              top_radius=0.13, caps=False)
                tree.tube((0, 0, height * 0.4), (0.9, 0.3, height * 0.7), 0.09, 0.05, bark, 5,
                          caps=False)
                tree.tube((0, 0, height * 0.45), (-0.8, -0.2, height * 0.72), 0.09, 0.05, bark,
                          5, caps=False)
                for _blob in range(6):
                    c = (
                        rng.uniform(-1.3, 1.3),
                        rng.uniform(-1.3, 1.3),
                        height * rng.uniform(0.62, 0.85),
                    )
                    r = height * rng.uniform(0.17, 0.26)
                    color = g.shade(leaf, rng.uniform(0.85, 1.1))
                    # 130 m and more away a crown blob is a few dozen pixels across.
                    rings, segments = (6, 10) if near else (4, 8)
                    tree.sphere((r, r, r * 0.85), color, rings=rings, segments=segments, center=c)
                    crown.append((c, (r, r, r * 0.85), rings, segments))
            base = (x, y, float(_terrain_height(x, y)) - 0.1)
            heading = float(rng.uniform(0, 360))
            # The eye in the tree's own frame, widened by how far the sway can tilt it.
            turn = g.transform(hpr=(heading, 0.0, 0.0))[:3, :3]
            local = (world_eyes - np.asarray(base)) @ turn.T
            slack = SWAY_SLACK * math.hypot(x, y)
            eyes = box_corners(local.min(axis=0) - slack, local.max(axis=0) + slack)
            self._trees.add(facing_only(drop_buried(tree, crown), eyes), base, heading)
            self._tree_phase.append(float(rng.uniform(0, 6.28)))
        self._trees.attach(parent)

    def _build_grass(self, parent: NodePath, rng: Any, eyes: Any) -> None:
        """Grass blades (one Geom) and flowers (another); animate() bends each 2 m patch."""
        import numpy as np

        from vrexposure.render import geometry as g

        flowers = [(0.95, 0.9, 0.3, 1), (0.95, 0.95, 0.95, 1), (0.7, 0.45, 0.85, 1)]
        blades, heads = BendingField("grass"), BendingField("flowers")
        patch = 0
        for px in np.arange(-9.0, 9.0, 2.0):
            for py in np.arange(1.0, LAKE_Y - 1.0, 2.0):
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
                    blade = g.MeshBuilder()
                    blade.add(
                        np.array(
                            [
                                [wx - dx, wy - dy, z0],
                                [wx + dx, wy + dy, z0],
                                [wx + lean[0], wy + lean[1], z0 + h],
                            ]
                        ),
                        np.tile([0.0, 0.0, 1.0], (3, 1)),
                        np.zeros((3, 2)),
                        np.array([[0, 1, 2]]),
                        col,
                    )
                    blades.add(blade, patch, [0.0, 0.0, h])
                    if rng.random() < 0.05:
                        head = g.MeshBuilder()
                        head.sphere(
                            0.02,
                            flowers[int(rng.integers(0, 3))],
                            rings=3,
                            segments=5,
                            center=(wx + lean[0], wy + lean[1], z0 + h),
                        )
                        head = facing_only(head, eyes)  # seen from above: no underside
                        heads.add(head, patch, h)
                self._grass_offset.append(float(px * 0.35 + py * 0.5))
                patch += 1
        self._grass = blades.attach(parent)
        self._grass.setTwoSided(True)
        self._grass.setLightOff(1)  # lit in animate(): every blade normal points up
        heads.attach(parent)
        self._bending = (blades, heads)

    def _build_clouds(self, parent: NodePath, rng: Any) -> None:
        import numpy as np

        from vrexposure.render import geometry as g

        self._clouds = SwayParts("clouds")
        places: list[tuple[float, float, float]] = []
        speeds: list[float] = []
        for _ in range(9):
            cloud = g.MeshBuilder()
            puffs: list[tuple[Any, Any, int, int]] = []
            for _ in range(6):
                c = (rng.uniform(-35, 35), rng.uniform(-10, 10), rng.uniform(-3, 5))
                r = rng.uniform(14, 26)
                cloud.sphere((r, r * 0.8, r * 0.45), (1, 1, 1, 1), rings=5, segments=10, center=c)
                puffs.append((c, (r, r * 0.8, r * 0.45), 5, 10))
            cloud = drop_buried(cloud, puffs)
            x, y, z = rng.uniform(-500, 500), rng.uniform(350, 750), rng.uniform(110, 190)
            # Clouds drift anywhere along x: the eye, seen from the cloud, stays in this box.
            eye_lo = np.array([-640.0, 0.0, 0.0]) + np.asarray(EYE_LO) - (0.0, y, z)
            eye_hi = np.array([640.0, 0.0, 0.0]) + np.asarray(EYE_HI) - (0.0, y, z)
            self._clouds.add(facing_only(cloud, box_corners(eye_lo, eye_hi)), (x, y, z))
            places.append((float(x), float(y), float(z)))
            speeds.append(float(rng.uniform(0.6, 1.4)))
        self._cloud_pos = np.array(places)
        self._cloud_start_x = self._cloud_pos[:, 0].copy()
        self._cloud_speed = np.asarray(speeds)
        clouds = self._clouds.attach(parent)
        clouds.setFogOff(1)
        clouds.setLightOff(1)
        self._cloud_node = clouds

    def animate(self, dt_s: float, time_s: float) -> None:
        import numpy as np

        from vrexposure.render import geometry as g

        light = self.v("light_level")
        dusk = min(1.0, max(0.0, self.v("time_of_day=dusk")))
        wind = max(0.0, self.v("wind_speed_m_s"))
        if abs(dusk - self._sky_dusk_shown) > 1e-3:  # only while day turns to dusk
            self._sky_dusk_shown = dusk
            sky = self._sky_day * (1 - dusk) + self._sky_dusk * dusk
            from vrexposure.render.geometry import vertex_rows

            vertex_rows(self._sky_node)[:, 6:9] = sky
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
        sun_rgb = g.shade(sun_col, light * (1.0 - 0.35 * dusk))
        g.set_light_color(self._sun_light, sun_rgb)
        amb = g.mix((0.42, 0.45, 0.52), (0.32, 0.26, 0.34), dusk)
        amb_rgb = g.shade(amb, light)
        g.set_light_color(self._ambient, amb_rgb)
        # The grass is lit by hand: all its normals point up, so the per-vertex lighting
        # of ~20 000 vertices is one colour, ambient + sun · sin(elevation).
        up = max(0.0, math.sin(elevation))
        lit = [a + s * up for a, s in zip(amb_rgb[:3], sun_rgb[:3], strict=True)]
        self._grass.setColorScale(lit[0], lit[1], lit[2], 1)
        tint = g.mix((1.0, 1.0, 1.0), (1.0, 0.72, 0.6), dusk)
        self._cloud_node.setColorScale(tint[0] * light, tint[1] * light, tint[2] * light, 1)

        # Wind: a travelling gust wave bends the grass; trees sway; clouds drift.
        self._wind_phase += dt_s * (0.6 + 0.5 * wind)
        bend = 0.04 + 0.07 * wind
        for field in self._bending:
            field.blow(self._wind_phase, bend, self._grass_offset)
        sway_deg = np.sin(time_s * 0.7 + np.asarray(self._tree_phase)) * (0.2 + 0.5 * wind)
        self._trees.update(sway_deg)
        self._cloud_pos[:, 0] = (
            self._cloud_start_x + time_s * self._cloud_speed * (0.5 + wind) + 600
        ) % 1200 - 600
        self._clouds.update(None, self._cloud_pos)
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
