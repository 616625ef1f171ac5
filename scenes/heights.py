"""Heights: a rooftop terrace of a tall building, approaching the edge."""

from __future__ import annotations

import itertools
import math
from typing import TYPE_CHECKING, Any, ClassVar

from vrexposure.render.scene_base import DEFAULT_EASE_TIME_S, SceneBase
from vrexposure.render.seated import SwayParts, box_corners, facing_only
from vrexposure.scene_api import EventSpec, SceneSpec, bool_param, choice_param, float_param

if TYPE_CHECKING:
    from panda3d.core import NodePath

    from vrexposure.render.geometry import MeshBuilder

BALCONY_M = 1.5  # the last metres before the edge overhang the facade (glass floor section)
RAIL_HEIGHT = {"full": 1.1, "low": 0.45, "none": 0.0}
STOREY_M = 3.2
#: Streets run along both axes every STREET_PITCH_M; each is STREET_HALF_W_M either side.
STREET_PITCH_M = 48.0
STREET_HALF_W_M = 7.0
#: City trees closer than this (horizontal metres from the eye) keep round canopies.
NEAR_TREE_M = 80.0
#: Metres per repeat of the ground texture.
GROUND_TEX_M = 40.0
#: Draw order ("fixed" bin) after the terrace and our building (opaque bin): nearest and
#: tallest first, so the ground hidden behind buildings and the sky behind everything are
#: rejected by the depth test instead of shaded (llvmpipe pays for every shaded pixel).
#: The see-through floor comes last: it blends over whatever lies below it.
#: Glass floor: pane colour (a faint green-blue tint, mostly see-through) and pane width.
GLASS_TINT = (0.55, 0.78, 0.8, 0.3)
GLASS_PANE_M = 1.25
#: The resting view looks down so that the edge lies this far below its centre (degrees):
#: the roof under the feet in the lower part of the view, the drop beyond it.
EDGE_BELOW_CENTRE_DEG = 12.0
#: Depth of the kerb (coping) along the roof edge.
KERB_M = 0.12
DRAW_ORDER = ("buildings", "roofs", "trees", "cars", "ground", "streets", "sky", "slab", "glass")


def _icosahedron() -> tuple[Any, Any]:
    """Unit icosahedron: 12 vertices and 20 outward-facing (counter-clockwise) triangles."""
    import numpy as np

    t = (1 + 5**0.5) / 2
    verts = np.array(
        [(-1, t, 0), (1, t, 0), (-1, -t, 0), (1, -t, 0), (0, -1, t), (0, 1, t),
         (0, -1, -t), (0, 1, -t), (t, 0, -1), (t, 0, 1), (-t, 0, -1), (-t, 0, 1)],
        float,
    )
    verts /= np.linalg.norm(verts, axis=1, keepdims=True)
    faces = np.array(
        [(0, 11, 5), (0, 5, 1), (0, 1, 7), (0, 7, 10), (0, 10, 11), (1, 5, 9), (5, 11, 4),
         (11, 10, 2), (10, 7, 6), (7, 1, 8), (3, 9, 4), (3, 4, 2), (3, 2, 6), (3, 6, 8),
         (3, 8, 9), (4, 9, 5), (2, 4, 11), (6, 2, 10), (8, 6, 7), (9, 8, 1)]
    )
    a, b, c = verts[faces[:, 0]], verts[faces[:, 1]], verts[faces[:, 2]]
    inward = (np.cross(b - a, c - a) * (a + b + c)).sum(axis=1) < 0
    faces[inward] = faces[inward][:, ::-1]
    return verts, faces


def add_blob(
    builder: MeshBuilder, radius_m: tuple[float, float, float], color: Any, center: Any
) -> None:
    """A 20-triangle ellipsoid (icosahedron, smooth normals): a tree crown seen from afar."""
    import numpy as np

    unit, faces = _icosahedron()
    radii = np.asarray(radius_m, float)
    normals = unit / radii
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    builder.add(unit * radii + np.asarray(center, float), normals, np.zeros((12, 2)), faces, color)


def add_ground(builder: MeshBuilder, half_x_m: float, y_range_m: tuple[float, float],
               streets_x: list[float], streets_y: list[float],
               street_extent: tuple[float, float, float, float]) -> None:
    """The ground as rectangles around the streets (not under them: no pixel drawn twice).

    ``streets_x``: centre lines of streets along y (spanning street_extent y0..y1);
    ``streets_y``: centre lines of streets along x (spanning x0..x1). Uvs are world
    metres / GROUND_TEX_M so the texture runs on across the gaps.
    """
    x0s, x1s, y0s, y1s = street_extent
    w = STREET_HALF_W_M
    xs = sorted({-half_x_m, half_x_m, x0s, x1s, *(c + d for c in streets_x for d in (-w, w))})
    ys = sorted({*y_range_m, y0s, y1s, *(c + d for c in streets_y for d in (-w, w))})
    for ya, yb in itertools.pairwise(ys):
        cy = (ya + yb) / 2
        run_start: float | None = None
        for xa, xb in itertools.pairwise(xs):
            cx = (xa + xb) / 2
            street = (y0s < cy < y1s and any(abs(cx - c) < w for c in streets_x)) or (
                x0s < cx < x1s and any(abs(cy - c) < w for c in streets_y)
            )
            if not street and run_start is None:
                run_start = xa
            if street and run_start is not None:
                _ground_quad(builder, run_start, xa, ya, yb)
                run_start = None
        if run_start is not None:
            _ground_quad(builder, run_start, xs[-1], ya, yb)


def _ground_quad(builder: MeshBuilder, xa: float, xb: float, ya: float, yb: float) -> None:
    import numpy as np

    pos = np.array([(xa, ya, 0.0), (xb, ya, 0.0), (xb, yb, 0.0), (xa, yb, 0.0)])
    builder.add(pos, np.tile([0.0, 0.0, 1.0], (4, 1)), pos[:, :2] / GROUND_TEX_M,
                np.array([[0, 1, 2], [0, 2, 3]]), (0.38, 0.42, 0.3, 1))


class HeightsScene(SceneBase):
    """Rooftop terrace; the street and city lie ``height_m`` below, the edge ahead."""

    sound_name = "wind"
    sound_param = "wind_volume"
    event_sounds: ClassVar[dict[str, str]] = {"gust": "gust"}
    near_far = (0.05, 2500.0)
    #: Standing at the edge: the toes may be 0.1 m from it (check-scenes ground test).
    footprint_m = 0.1
    background_color = (0.75, 0.84, 0.93)

    def __init__(self, spec: SceneSpec | None = None, ease_time_s: float = DEFAULT_EASE_TIME_S):
        super().__init__(spec or SCENE, ease_time_s)
        self._sway = 0.0
        self._gust = 0.0

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

        # Down to 17° below the horizon: the ground's far edge at 200 m up, looking back.
        sky.sphere(2000.0, sky_color, rings=10, segments=24, inside=True, z_min=-0.3)
        dome = sky.attach(parent, "sky")
        g.set_unlit(dome)
        dome.setFogOff(1)
        dome.setBin("fixed", DRAW_ORDER.index("sky"))
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
        # The potted bushes sway on their own: three parts of one Geom (one draw call).
        self._plants = SwayParts("bushes")
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
            self._plants.add(bush, (x, y, 0.62))
        self._plants.attach(self._terrace)
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
        # Tinted panes (the street shows through them, a little green-blue) in a steel
        # frame: mullions across, a beam along the facade and the edge and one between.
        glass = g.MeshBuilder()
        glass.box((-10, 0, -0.04), (10, 1, 0), GLASS_TINT, faces="Z")
        frame = g.MeshBuilder()
        steel = (0.3, 0.32, 0.35, 1)
        for x in np.arange(-10 + GLASS_PANE_M / 2, 10, GLASS_PANE_M):  # a pane under the feet
            frame.box((x - 0.04, 0, -0.1), (x + 0.04, 1, 0.004), steel)
        for y0, y1 in ((0.0, 0.05), (0.48, 0.52), (0.95, 1.0)):  # scaled by the balcony depth
            frame.box((-10, y0, -0.12), (10, y1, 0.006), steel, faces="xXyYZ")
        self._glass = self._balcony.attachNewNode("glass-floor")
        panes = glass.attach(self._glass, "glass")
        g.set_transparent(panes)
        panes.setTwoSided(True)
        g.set_shiny(panes, 0.9, 80)
        panes.setBin("fixed", DRAW_ORDER.index("glass"))
        frame.attach(self._glass, "glass-frame")
        # The patient's shoes, toes a few centimetres behind the eye point: looking down
        # at the edge shows the feet, the roof under them and the drop beyond.
        shoes = g.MeshBuilder()
        for x in (-0.13, 0.13):
            shoes.box((x - 0.055, -0.2, 0.008), (x + 0.055, 0.08, 0.07), (0.12, 0.11, 0.1, 1))
            shoes.box((x - 0.05, -0.22, 0.07), (x + 0.05, -0.04, 0.12), (0.15, 0.16, 0.2, 1))
        self._shoes = shoes.attach(parent, "shoes")
        kerb = g.MeshBuilder()
        kerb.box((-10, -KERB_M, 0), (10, 0.0, 0.07), (0.55, 0.55, 0.53, 1))
        self._kerb = kerb.attach(w, "kerb")

        rail = g.MeshBuilder()
        metal = (0.22, 0.24, 0.27, 1)
        for x in np.arange(-9.0, 9.01, 1.2):  # no post straight ahead of the patient
            rail.box((x - 0.03, -0.09, 0), (x + 0.03, -0.03, 1.0), metal)
        rail.box((-9.7, -0.11, 0.97), (9.7, -0.01, 1.03), g.shade(metal, 1.3))
        rail.box((-9.7, -0.08, 0.5), (9.7, -0.04, 0.53), metal)
        self._rail = rail.attach(w, "railing")
        bars = g.MeshBuilder()
        for x in np.arange(-9.6, 9.6, 0.12):
            bars.box((x - 0.008, -0.07, 0.05), (x + 0.008, -0.05, 0.97), metal)
        bars.box((-9.7, -0.08, 0.04), (9.7, -0.04, 0.07), metal)
        self._bars = bars.attach(self._rail, "balusters")
        # With a glass floor the railing is glass too (a skywalk): posts and a top rail
        # hold a tinted pane instead of bars, and the drop shows through both.
        pane = g.MeshBuilder()
        pane.box((-9.7, -0.065, 0.06), (9.7, -0.055, 0.97), GLASS_TINT, faces="yY")
        self._rail_glass = pane.attach(self._rail, "glass-balustrade")
        g.set_transparent(self._rail_glass)
        g.set_shiny(self._rail_glass, 0.9, 80)
        self._rail_glass.setBin("fixed", DRAW_ORDER.index("glass"))

        # The building below the terrace, and the city on the ground.
        facade = g.MeshBuilder()
        facade.box((-10, -60, -1), (10, 0, 0), (1, 1, 1, 1), uv_m=None, faces="xXY")
        self._facade = facade.attach(w, "facade")
        self._facade.setTexture(
            g.facade_texture((0.72, 0.7, 0.66), (0.25, 0.33, 0.42), 4, 4, 9, 0.1)
        )
        self._city = w.attachNewNode("city")
        # The stimulus is the edge and the drop below it (check-scenes measures it).
        for part in (self._kerb, self._facade, self._city):
            part.setTag("stimulus", "drop")
        self._build_city(self._city, rng)

        self._ambient = g.ambient_light(parent, (0.45, 0.47, 0.52))
        self._sun = g.sun_light(parent, (1.0, 0.96, 0.88), (150, -45, 0))
        fog = Fog("haze")
        fog.setColor(0.78, 0.85, 0.92)
        fog.setExpDensity(0.0009)
        # Haze only where it shows: under 30 m (the terrace) it would add < 3 % per pixel.
        self._city.setFog(fog)
        self._facade.setFog(fog)

    def _build_city(self, city: NodePath, rng: Any) -> None:
        import numpy as np
        from panda3d.core import SamplerState

        from vrexposure.render import geometry as g

        # Far surfaces are minified: bilinear within the nearest mip level costs half of
        # trilinear on llvmpipe and shows no seams on these soft textures.
        far_sampler = SamplerState()
        far_sampler.setWrapU(SamplerState.WM_repeat)
        far_sampler.setWrapV(SamplerState.WM_repeat)
        far_sampler.setMagfilter(SamplerState.FT_linear)
        far_sampler.setMinfilter(SamplerState.FT_linear_mipmap_nearest)

        pitch = STREET_PITCH_M
        self._street_lines: list[float] = [k * pitch + 24.0 for k in range(-8, 9)]
        ground = g.MeshBuilder()
        add_ground(ground, 1500.0, (-800.0, 1800.0), self._street_lines, self._street_lines,
                   (-400.0, 400.0, -400.0, 900.0))
        gnode = ground.attach(city, "ground")
        gnode.setBin("fixed", DRAW_ORDER.index("ground"))
        ground_tex = g.noise_texture(71, (0.75, 0.75, 0.75), (1.0, 1.0, 1.0), 8, 128)
        gnode.setTexture(ground_tex, far_sampler)
        streets = g.MeshBuilder()
        walls = g.MeshBuilder()
        roofs = g.MeshBuilder()
        trees = g.MeshBuilder()
        asphalt = (0.27, 0.27, 0.28, 1)
        for c in self._street_lines:
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
        # Yellow centre lines on every street (they were one line at x = 0, across blocks
        # and roofs); the cross streets' lines a layer higher than the others'.
        for c in self._street_lines:
            streets.quad([(c - 0.15, -400, 0.08), (c + 0.15, -400, 0.08), (c + 0.15, 900, 0.08),
                          (c - 0.15, 900, 0.08)], (0.9, 0.85, 0.5, 1))
            streets.quad([(-400, c - 0.15, 0.09), (400, c - 0.15, 0.09), (400, c + 0.15, 0.09),
                          (-400, c + 0.15, 0.09)], (0.9, 0.85, 0.5, 1))
        self._streets = streets.attach(city, "streets")
        self._streets.setBin("fixed", DRAW_ORDER.index("streets"))
        palette = [
            (0.75, 0.72, 0.66),
            (0.6, 0.62, 0.66),
            (0.82, 0.78, 0.7),
            (0.55, 0.5, 0.47),
            (0.7, 0.74, 0.78),
            (0.9, 0.88, 0.84),
        ]
        bark = (0.35, 0.25, 0.15, 1)
        for bx in range(-8, 8):
            for by in range(-3, 12):
                x0, y0 = bx * pitch + 24 + 9, by * pitch + 24 + 9
                if x0 < 12 and x0 + 30 > -12 and y0 < 8 and y0 + 30 > -70:
                    continue  # our own block
                if rng.random() < 0.12:  # a park: trees far below, a few pixels each
                    for _ in range(10):
                        cx, cy = x0 + rng.uniform(2, 28), y0 + rng.uniform(2, 28)
                        # A three-sided trunk under the crown; its ends never show.
                        trees.cylinder(0.3, 3.0, bark, g.transform((cx, cy, 0)), 3, caps=False)
                        r = rng.uniform(2.5, 4)
                        leaf = g.shade((0.25, 0.45, 0.2), rng.uniform(0.8, 1.1))
                        if math.hypot(cx, cy) < NEAR_TREE_M:
                            trees.sphere(r, leaf, rings=4, segments=7, center=(cx, cy, 5))
                        else:
                            add_blob(trees, (r, r, r), leaf, (cx, cy, 5))
                    continue
                far = math.hypot(x0, y0)
                for part in range(int(rng.integers(1, 4))):
                    w = 30 / (1 + part % 2)
                    h = float(rng.choice([9, 12, 15, 21, 30, 45, 60, 90])) * (
                        1.0 if far > 80 else 0.6
                    )
                    # Each further part is inset and a little taller: no two parts of a
                    # block share a wall or roof plane (coplanar faces z-fight).
                    lo = (x0 + (30 - w) * (part % 2) + 0.5 * part, y0 + rng.uniform(0, 8), 0.0)
                    hi = (lo[0] + w - 1.0 * part, lo[1] + rng.uniform(14, 22), h + 0.4 * part)
                    col = (*palette[int(rng.integers(0, len(palette)))], 1.0)
                    walls.box(lo, hi, col, uv_m=12.0, faces="xXyY")
                    roofs.box(lo, hi, g.shade(col, 0.7), faces="Z")
                    roofs.box(  # a stair housing; its floor lies on the roof
                        (lo[0] + 2, lo[1] + 2, h),
                        (lo[0] + 6, lo[1] + 5, h + 2.5),
                        (0.55, 0.55, 0.55, 1),
                        faces="xXyYZ",
                    )
        # In the city's frame the eye is above (0, 0): from 0.5 m + eye height to 200 m up.
        eyes = box_corners((-2.0, -2.0, 0.5), (2.0, 2.0, 203.0))
        walls = facing_only(walls, eyes)
        roofs = facing_only(roofs, eyes)
        wn = walls.attach(city, "buildings")
        wn.setBin("fixed", DRAW_ORDER.index("buildings"))
        wn.setTexture(
            g.facade_texture((0.95, 0.95, 0.95), (0.3, 0.38, 0.48), 4, 4, 12, 0.08), far_sampler
        )
        roofs.attach(city, "roofs").setBin("fixed", DRAW_ORDER.index("roofs"))
        for x in (-16.0, 16.0):
            for y in range(-60, 200, 12):
                leaf = g.shade((0.25, 0.45, 0.2), rng.uniform(0.8, 1.1))
                if math.hypot(x, y) < NEAR_TREE_M:  # beside our building: as before
                    trees.cylinder(0.2, 3.0, bark, g.transform((x, y, 0)), 5, caps=False)
                    trees.sphere((2.2, 2.2, 2.6), leaf, rings=4, segments=7, center=(x, y, 4.6))
                else:
                    trees.cylinder(0.2, 3.0, bark, g.transform((x, y, 0)), 3, caps=False)
                    add_blob(trees, (2.2, 2.2, 2.6), leaf, (x, y, 4.6))
        facing_only(trees, eyes).attach(city, "trees").setBin("fixed", DRAW_ORDER.index("trees"))

        # Cars: parts of one Geom (one draw call) that slide along their streets.
        colors = [
            (0.75, 0.1, 0.1),
            (0.9, 0.9, 0.9),
            (0.15, 0.2, 0.45),
            (0.1, 0.1, 0.1),
            (0.85, 0.7, 0.1),
        ]
        self._cars = SwayParts("cars")
        along: list[bool] = []
        lanes: list[float] = []
        starts: list[float] = []
        speeds: list[float] = []
        for i in range(36):
            car = g.MeshBuilder()  # no floors: cars are only seen from above
            car.box((-0.9, -2.2, 0.3), (0.9, 2.2, 1.0), (*colors[i % len(colors)], 1.0),
                    faces="xXyYZ")
            car.box((-0.8, -1.2, 1.0), (0.8, 1.0, 1.45), (0.2, 0.25, 0.3, 1), faces="xXyYZ")
            along_y = i % 3 != 0
            self._cars.add(car, (0.0, 0.0, 0.0), 0.0 if along_y else 90.0)
            street = (
                self._street_lines[int(rng.integers(5, 12))]
                if along_y
                else 24.0 + pitch * int(rng.integers(-1, 6))
            )
            along.append(along_y)
            lanes.append(street + (3.5 if i % 2 else -3.5))
            starts.append(float(rng.uniform(-300, 800)))
            speeds.append(float(rng.uniform(6, 13)) * (1 if i % 2 else -1))
        self._cars_np = self._cars.attach(city)
        self._cars_np.setBin("fixed", DRAW_ORDER.index("cars"))
        self._car_along_y = np.array(along)
        self._car_lane_m = np.array(lanes)
        self._car_start_m = np.array(starts)
        self._car_speed_m_s = np.array(speeds)
        self._city_root = city

    def animate(self, dt_s: float, time_s: float) -> None:
        import numpy as np
        from panda3d.core import TextureStage

        height = max(0.5, self.v("height_m"))
        edge = max(0.0, self.v("edge_distance_m"))
        wind = max(0.0, self.v("wind_speed_m_s"))
        glass = min(1.0, max(0.0, self.v("glass_floor")))
        rail_h = max(0.0, self.v("rail_height"))
        bars = min(1.0, max(0.0, self.v("rail_bars")))

        facade_y = edge - BALCONY_M
        # The roof runs on to the balcony at any edge distance (no gap to float over).
        self._terrace.setPos(0, facade_y, 0)
        self._balcony.setPos(0, facade_y, 0)
        self._balcony.setSy(BALCONY_M)
        self._slab.setAlphaScale(1.0 - glass)
        if glass > 0.01:
            self._slab.setTransparency(True)
            self._slab.setDepthWrite(glass < 0.5)
            self._slab.setBin("fixed", DRAW_ORDER.index("slab"))
        else:
            self._slab.setTransparency(False)
            self._slab.setDepthWrite(True)
            self._slab.setBin("opaque", 0)
        self._slab.show() if glass < 0.99 else self._slab.hide()
        self._glass.show() if glass > 0.01 else self._glass.hide()
        self._glass.setAlphaScale(max(0.0, min(1.0, glass * 1.0)))
        self._kerb.setY(edge)
        # Toes (0.08 m ahead of the eye point) stop just behind the kerb.
        self._shoes.setY(min(0.0, edge - KERB_M - 0.1))
        self._rail.setY(edge)
        if rail_h < 0.01:
            self._rail.hide()
        else:
            self._rail.show()
            self._rail.setSz(rail_h / 1.0)
            bars *= 1.0 - glass  # a glass floor's railing is a glass pane
            self._bars.setSz(bars if bars > 0.01 else 0.001)
            self._bars.show() if bars > 0.01 else self._bars.hide()
            self._rail_glass.show() if glass > 0.01 else self._rail_glass.hide()
            self._rail_glass.setAlphaScale(glass)
        self._facade.setPos(0, facade_y, 0)
        self._facade.setSz(height)
        self._facade.setTexScale(
            TextureStage.getDefault(), 20 / 12.0, height / STOREY_M / 4.0 * 1.0
        )
        self._city.setZ(-height)
        # Street layers lie centimetres apart; from high up the depth buffer cannot tell
        # them apart (z-fighting), so their spacing grows with the height.
        layers = max(1.0, height / 20.0)
        self._streets.setSz(layers)
        self._cars_np.setZ(0.08 * (layers - 1.0))

        # The "gust" event: the wind rises to a strong gust and falls again, the view sways.
        gust_p = self.event_progress("gust")
        gust = 0.0 if gust_p is None else math.sin(math.pi * gust_p) ** 2
        self._gust = gust
        wind = wind + 12.0 * gust
        # Wind: a slow, small sway of everything around the eye, flag and plants move.
        amp = 0.03 + 0.02 * wind + 0.6 * gust
        self._sway += dt_s * (0.25 + 0.03 * wind)
        self._world.setHpr(
            0, math.sin(self._sway * 2.1) * amp * 0.3, math.sin(self._sway * 1.3) * amp
        )
        self._flag.setH(200 + math.sin(time_s * (1 + 0.3 * wind)) * (5 + 2.5 * wind))
        self._flag.setShear(0, 0, math.sin(time_s * (2 + 0.4 * wind)) * 0.05 * wind)
        self._flag.setSz(1.0 - min(0.5, 0.6 / (1 + wind)))
        self._plants.update(np.sin(time_s * (1.5 + 0.2 * wind) + np.arange(3)) * (0.5 + 0.6 * wind))
        along = (self._car_start_m + self._car_speed_m_s * time_s + 300) % 1100 - 300
        pos = np.zeros((len(along), 3))
        pos[:, 0] = np.where(self._car_along_y, self._car_lane_m, along)
        pos[:, 1] = np.where(self._car_along_y, along, self._car_lane_m)
        self._cars.update(None, pos)

    def stimulus_world_position(self) -> tuple[float, float, float] | None:
        return (0.0, max(0.0, self.v("edge_distance_m")), 0.0)

    @property
    def sound_volume(self) -> float:
        """The wind, louder in a gust."""
        return min(1.0, super().sound_volume + 0.5 * self._gust)

    def view_hpr(self) -> tuple[float, float, float]:
        edge = max(0.0, self.v("edge_distance_m"))
        down = 0.75 * math.degrees(math.atan2(1.2, edge + 0.4))
        # Close to the edge: look down over it, the edge (the kerb's roof side) below the
        # centre of the view: the roof and the feet beneath it, the drop beyond.
        over = 0.0
        if self.v("rail_height") < 0.2:  # (behind a railing the old framing shows it best)
            over = math.degrees(math.atan2(1.2, edge - KERB_M)) - EDGE_BELOW_CENTRE_DEG
        if self.v("glass_floor") > 0.5 and edge < BALCONY_M:
            # Standing on the glass: look down through it, at the feet and the street below.
            over = max(over, 55.0 + 25.0 * (1.0 - edge / BALCONY_M))
        return (0.0, -min(80.0, max(12.0, down, over)), 0.0)


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
    events=(EventSpec("gust", "A strong gust: the view sways at the edge", "g", 5.0),),
    factory=HeightsScene,
)
