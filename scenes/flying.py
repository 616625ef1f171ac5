"""Flying: a window seat in an airliner cabin, from boarding to turbulence and landing.

The patient sits by the window, over the wing, in a curved cabin (panel joints,
overhead bins, service units with seatbelt signs, cove lighting) behind rows of
seats and passengers. Outside: sky, a cloud deck, fields or the apron and terminal,
tilting with pitch and bank; daylight through the window follows the bank.

Cost per frame (Mesa llvmpipe, 2 × 1440 × 1600 stereo): the static cabin is one
Geom; only what moves, hides or changes colour has a node of its own (passengers,
the window shades that follow the patient's, light strips, seatbelt signs, wing,
flaps), a dozen draw calls per eye. The cabin is drawn first and writes depth.
The outside is drawn after it in the "fixed" bin without depth writes, clipped to
the wedges the windows can show (see ``_wedge_planes``): what is clipped never
reaches the rasteriser, so only the window band pays for sky, fog and textures,
and the far outside needs no depth precision (ground, apron and markings cannot
z-fight; apron markings are drawn in the order built).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from vrexposure.render.scene_base import DEFAULT_EASE_TIME_S, SceneBase
from vrexposure.scene_api import EventSpec, SceneSpec, bool_param, choice_param, float_param

if TYPE_CHECKING:
    from panda3d.core import Fog, GeomNode, GeomVertexArrayData, NodePath

    from vrexposure.render.geometry import MeshBuilder

FloatArray = NDArray[np.float64]
RGBA = tuple[float, float, float, float]
ColorArg = RGBA | Callable[[NDArray[np.float32]], NDArray[np.float32]]

# --------------------------------------------------------------------------- cabin layout
# Metres; x across the cabin (the patient's window wall on the left, -x), y forward, z up
# from the cabin floor.
AISLE_X = 1.55  # cabin centre line
WALL_X = -0.45  # the (vertical) window band of the left wall
ROW_PITCH_M = 0.81
ROWS_AHEAD = 13  # rows 1..13 in front of the patient; row 0 is theirs, row -1 behind
SEAT_Y0 = -0.42  # front face of the patient's seat back, at cushion height
SEAT_XS = (0.05, 0.55, 1.05, 2.05, 2.55, 3.05)
WIN_Y0 = 0.15  # the patient's window, a little ahead of their eyes as in a real seat
WIN_Z = 1.14
WIN_HALF = (0.12, 0.17)  # the clear opening: half width, half height
WIN_EXP = 3.6  # superellipse exponent of the opening (airliner windows are rounded)
BEZEL_HALF = (0.165, 0.235)  # where the bezel meets the wall panel
BEZEL_EXP = 3.0
RECESS_M = 0.07  # from the wall panel out to the window pane
BAND_Z = (0.76, 1.46)  # the vertical part of the wall that holds the windows
SEAM_M = 0.008  # panel joints
SHADE_TRAVEL_M = 2 * WIN_HALF[1] + 0.05  # a fully open shade hides behind the bezel
HEAD_MARGIN_M = 0.15  # how far the head may move and still see the whole view outside
Y_REAR = WIN_Y0 - 2.5 * ROW_PITCH_M
Y_FRONT = WIN_Y0 + (ROWS_AHEAD + 0.5) * ROW_PITCH_M
EYE = (0.07, -0.36, 1.2)
# Cross-section of the left half of the cabin (x, z); the right half is its mirror image.
LOWER_WALL = ((-0.30, 0.0), (-0.33, 0.26), (-0.40, 0.52), (WALL_X, BAND_Z[0]))
UPPER_WALL = ((WALL_X, BAND_Z[1]), (-0.42, 1.58), (-0.35, 1.69), (-0.24, 1.77))
BIN_BOTTOM = ((-0.24, 1.77), (0.12, 1.755), (0.50, 1.73))
BIN_DOOR = ((0.50, 1.73), (0.55, 1.80), (0.57, 1.91), (0.55, 2.01), (0.49, 2.09))
COVE = ((0.49, 2.09), (0.57, 2.14))
CEILING = ((0.57, 2.14), (0.80, 2.21), (1.15, 2.26), (AISLE_X, 2.28))

WALL_RGBA: RGBA = (0.86, 0.85, 0.81, 1.0)
SEAM_RGBA: RGBA = (0.52, 0.52, 0.5, 1.0)
BEZEL_RGBA: RGBA = (0.93, 0.92, 0.89, 1.0)
SHADE_RGBA: RGBA = (0.84, 0.83, 0.79, 1.0)
FABRIC_RGBA: RGBA = (0.15, 0.19, 0.3, 1.0)
SHELL_RGBA: RGBA = (0.34, 0.36, 0.4, 1.0)
COVER_RGBA: RGBA = (0.93, 0.93, 0.91, 1.0)
SKIN = ((0.96, 0.8, 0.68), (0.85, 0.65, 0.5), (0.55, 0.38, 0.26), (0.92, 0.74, 0.6))
HAIR = ((0.1, 0.08, 0.06), (0.36, 0.24, 0.13), (0.62, 0.5, 0.3), (0.55, 0.55, 0.54),
        (0.2, 0.14, 0.09), (0.05, 0.05, 0.05))

# --------------------------------------------------------------------------- outside
# phase -> (altitude m, pitch deg, ground speed m/s, bank deg (+ = left wing down), flaps deg)
PHASES = {
    "boarding": (0.0, 0.0, 0.0, 0.0, 0.0),
    "taxi": (0.0, 0.0, 8.0, 0.0, 10.0),
    "takeoff": (350.0, 12.0, 80.0, 10.0, 15.0),
    "cruise": (10000.0, 1.5, 230.0, 0.0, 0.0),
    "landing": (500.0, -3.0, 75.0, 5.0, 35.0),
}
GROUND_BELOW_FLOOR_M = 3.0  # cabin floor above the apron at the gate
# Nothing further than ~50 km: beyond it, with a 3 cm near plane, float32 clip maths pushes
# fragments past the far plane and the sky gets holes. Haze hides the edges.
GROUND_HALF_M = 40_000.0
GROUND_TEX_M = 4000.0  # metres per repeat of the fields texture
CLOUD_Z_M = 2400.0  # the cloud deck near the ground; at cruise it lies ~2 km below
CLOUD_TEX_M = 9000.0
SKY_RADIUS_M = 30_000.0
AIRPORT_TILE_M = 320.0  # the gates repeat every tile, so taxiing can scroll forever
AIRPORT_MAX_ALT_M = 300.0
#: How much harder a full storm shakes the cabin than turbulence alone (share).
STORM_BUFFET = 0.3
HAZE = np.array([0.80, 0.86, 0.93])
ZENITH = np.array([0.25, 0.45, 0.85])
# Wing (cabin coordinates of the root; the wing reaches out towards -x).
WING_ROOT = (-0.55, 0.0, -0.7)
WING_SPAN_M = 16.5
WING_LE_ROOT_Y = 5.4
WING_CHORDS_M = (6.0, 1.5)
WING_SWEEP_TAN = 0.51
WING_DIHEDRAL_TAN = math.tan(math.radians(5.0))
FLAP_CHORD = 0.78  # flaps from 78 % of the chord to the trailing edge…
FLAP_SPAN = 0.62  # …over the inner 62 % of the span


# --------------------------------------------------------------------------- mesh helpers


def lightning(time_s: float, storm: float) -> float:
    """Brightness (0..1) of lightning at ``time_s``: short double flashes, more in a storm.

    Deterministic (a hash of the 4-second slot) so that every renderer and every replay
    shows the same flashes.
    """
    if storm < 0.3:
        return 0.0
    slot = math.floor(time_s / 4.0)
    chance = (math.sin(slot * 12.9898) * 43758.5453) % 1.0
    if chance > 0.25 + 0.5 * storm:
        return 0.0
    start = 4.0 * slot + 3.0 * ((math.sin(slot * 78.233) * 12345.678) % 1.0)
    since = time_s - start
    if 0.0 <= since < 0.09 or 0.16 <= since < 0.24:
        return min(1.0, storm)
    return 0.0


def _rgba(color: ArrayLike, k: float = 1.0) -> RGBA:
    """Opaque RGBA of an RGB(A) colour with its RGB scaled by ``k`` (clipped to 1)."""
    c = np.minimum(1.0, np.asarray(color, np.float64)[:3] * k)
    return (float(c[0]), float(c[1]), float(c[2]), 1.0)


def _per_vertex(colors: FloatArray) -> Callable[[NDArray[np.float32]], NDArray[np.float32]]:
    """A MeshBuilder colour function returning fixed per-vertex RGBA rows."""
    rows = np.asarray(colors, np.float32)
    return lambda _p: rows


def _z_gradient(
    c0: Sequence[float], c1: Sequence[float], z0: float, z1: float
) -> Callable[[NDArray[np.float32]], NDArray[np.float32]]:
    """Colour from ``c0`` at height ``z0`` to ``c1`` at ``z1`` (baked light washes)."""
    a, b = np.asarray(_rgba(c0)), np.asarray(_rgba(c1))

    def fn(p: NDArray[np.float32]) -> NDArray[np.float32]:
        t = np.clip((p[:, 2:3] - z0) / (z1 - z0), 0.0, 1.0)
        return (a * (1 - t) + b * t).astype(np.float32)

    return fn


def _mesh(b: MeshBuilder, pos: FloatArray, nrm: FloatArray, tris: Any, color: ColorArg) -> None:
    """Add triangles, each wound so that it faces along its vertex normals (back faces cull)."""
    tri = np.asarray(tris, np.int64).reshape(-1, 3).copy()
    p = np.asarray(pos, np.float64)
    face = np.cross(p[tri[:, 1]] - p[tri[:, 0]], p[tri[:, 2]] - p[tri[:, 0]])
    want = np.asarray(nrm, np.float64)[tri].sum(axis=1)
    flip = (face * want).sum(axis=1) < 0
    tri[flip] = tri[flip][:, [0, 2, 1]]
    b.add(p, nrm, np.zeros((len(p), 2)), tri, color)


def _quad(b: MeshBuilder, corners: ArrayLike, color: ColorArg, facing: ArrayLike) -> None:
    """A planar quad (corners in order around it) facing ``facing``."""
    c = np.asarray(corners, np.float64)
    n = np.asarray(facing, np.float64)
    n = n / np.linalg.norm(n)
    if np.dot(np.cross(c[1] - c[0], c[3] - c[0]), n) < 0:
        c = c[::-1]
    b.quad(c.tolist(), color, normal=n.tolist())


def _mirror(p: FloatArray) -> FloatArray:
    out = np.array(p, np.float64)
    out[..., 0] = 2 * AISLE_X - out[..., 0]
    return out


def _section_normals(p: FloatArray) -> FloatArray:
    """Smooth unit normals of a cross-section polyline (x, z), pointing into the cabin."""
    d = np.diff(p, axis=0)
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    t = np.vstack([d[:1], d[:-1] + d[1:], d[-1:]])
    n = np.stack([-t[:, 1], t[:, 0]], axis=1)
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    inward = np.array([AISLE_X, 1.1]) - p
    n[(n * inward).sum(axis=1) < 0] *= -1
    return n


def _extrude(b: MeshBuilder, section: Sequence[Sequence[float]], y0: float, y1: float,
             color: ColorArg, mirror: bool = False) -> None:
    """A cross-section polyline swept along y from ``y0`` to ``y1`` (smooth across its points)."""
    p = np.asarray(section, np.float64)
    if mirror:
        p = _mirror(p)
    n2 = _section_normals(p)
    k = len(p)
    pos = np.zeros((2 * k, 3))
    nrm = np.zeros((2 * k, 3))
    for half, y in ((slice(0, k), y0), (slice(k, 2 * k), y1)):
        pos[half, 0], pos[half, 1], pos[half, 2] = p[:, 0], y, p[:, 1]
        nrm[half, 0], nrm[half, 2] = n2[:, 0], n2[:, 1]
    i = np.arange(k - 1)
    _mesh(b, pos, nrm, np.stack([i, i + 1, k + i + 1, i, k + i + 1, k + i], 1), color)


def _superellipse(theta: FloatArray, half: tuple[float, float], exp: float) -> FloatArray:
    """Points (u, v) of the superellipse |u/a|^n + |v/b|^n = 1 in the directions ``theta``."""
    c, s = np.cos(theta), np.sin(theta)
    r = (np.abs(c / half[0]) ** exp + np.abs(s / half[1]) ** exp) ** (-1.0 / exp)
    return np.stack([r * c, r * s], axis=1)


def _ring_tris(k: int, rows: int) -> NDArray[np.int64]:
    """Quads between consecutive rows of ``rows`` closed loops of ``k`` points."""
    out = []
    j = np.arange(k)
    j1 = (j + 1) % k
    for r in range(rows - 1):
        a, c = r * k, (r + 1) * k
        out.append(np.stack([a + j, a + j1, c + j1, a + j, c + j1, c + j], 1))
    return np.vstack(out).reshape(-1, 3)


# --------------------------------------------------------------------------- cabin parts


def _window_bay(b: MeshBuilder, shades: MeshBuilder, yc: float, right: bool, segments: int,
                lip: bool, shade_open: float | None) -> None:
    """One window panel: wall around a rounded opening, the recessed bezel, maybe its shade.

    ``shade_open`` None: the shade follows the patient's (built closed into ``shades``,
    which moves as a whole); otherwise the static openness (1 = not drawn).
    """
    side = -1.0 if right else 1.0  # the panel faces +x on the left wall, -x on the right

    def at(u: FloatArray, v: FloatArray, depth: float) -> FloatArray:
        x = WALL_X - depth if not right else 2 * AISLE_X - WALL_X + depth
        return np.stack([np.full_like(u, x), yc + u, WIN_Z + v], axis=1)

    hb = _panel_half_m(right)
    v0, v1 = BAND_Z[0] - WIN_Z, BAND_Z[1] - WIN_Z
    corners = np.arctan2([v1, v1, v0, v0], [hb, -hb, -hb, hb])
    uniform = np.linspace(-math.pi, math.pi, segments, endpoint=False)
    uniform = uniform[np.min(np.abs(uniform[:, None] - corners[None, :]), axis=1) > 0.05]
    theta = np.sort(np.concatenate([uniform, corners]))
    k = len(theta)
    c, s = np.cos(theta), np.sin(theta)
    with np.errstate(divide="ignore"):
        ru = np.where(np.abs(c) > 1e-9, hb / np.abs(c), np.inf)
        rv = np.where(s > 0, v1, -v0) / np.maximum(np.abs(s), 1e-9)
    r = np.minimum(ru, rv)
    rect = np.stack([r * c, r * s], axis=1)
    outer = _superellipse(theta, BEZEL_HALF, BEZEL_EXP)
    inner = _superellipse(theta, WIN_HALF, WIN_EXP)
    mid = outer * 0.55 + inner * 0.45

    # The wall panel around the bezel (flat: the window band is vertical).
    pos = np.vstack([at(outer[:, 0], outer[:, 1], 0.0), at(rect[:, 0], rect[:, 1], 0.0)])
    nrm = np.tile([side, 0.0, 0.0], (2 * k, 1))
    _mesh(b, pos, nrm, _ring_tris(k, 2), WALL_RGBA)
    # The bezel: near windows get a rounded lip that turns into a funnel down to the pane,
    # far ones a plain funnel.
    rows = [(outer, 0.0), (mid, 0.018), (inner, RECESS_M)]
    if not lip:
        rows = [rows[0], rows[2]]
    grid = np.stack([at(p[:, 0], p[:, 1], d) for p, d in rows])  # (rows, k, 3)
    along = np.roll(grid, -1, axis=1) - np.roll(grid, 1, axis=1)
    across = np.gradient(grid, axis=0)
    n = np.cross(along, across)
    n /= np.linalg.norm(n, axis=2, keepdims=True)
    if (n[..., 0] * side).mean() < 0:
        n = -n
    shading = [1.0, 0.96, 0.78] if lip else [1.0, 0.8]
    tone = np.array(shading)[:, None, None] * np.asarray(BEZEL_RGBA[:3])
    colors = np.concatenate([np.repeat(tone, k, axis=1), np.ones((len(rows), k, 1))], axis=2)
    _mesh(b, grid.reshape(-1, 3), n.reshape(-1, 3), _ring_tris(k, len(rows)),
          _per_vertex(colors.reshape(-1, 4)))

    if shade_open is not None and shade_open >= 0.99:
        return
    lift = 0.0 if shade_open is None else shade_open * SHADE_TRAVEL_M
    hu, hv = WIN_HALF[0] + 0.015, WIN_HALF[1] + 0.015
    x = WALL_X - RECESS_M + 0.004 if not right else 2 * AISLE_X - WALL_X + RECESS_M - 0.004
    grip = -hv + 0.025
    target = shades if shade_open is None else b
    for z0, z1, color in ((-hv, grip, _rgba(SHADE_RGBA, 0.75)), (grip, hv, SHADE_RGBA)):
        _quad(target, [(x, yc - hu, WIN_Z + z0 + lift), (x, yc + hu, WIN_Z + z0 + lift),
                       (x, yc + hu, WIN_Z + z1 + lift), (x, yc - hu, WIN_Z + z1 + lift)],
              color, (side, 0, 0))


def _panel_half_m(right: bool) -> float:
    """Half length of a wall panel: the left wall's panels leave room for joints; across
    the aisle a joint would be thinner than a pixel, so the right wall's panels touch."""
    return ROW_PITCH_M / 2 - (0.0 if right else SEAM_M / 2)


def _sidewall(b: MeshBuilder, bays: Sequence[float], right: bool) -> None:
    """Lower and upper wall panels of every bay, with dark joints between the panels."""
    lower = _z_gradient(_rgba(WALL_RGBA, 0.82), WALL_RGBA, 0.0, BAND_Z[0])
    upper = _z_gradient(WALL_RGBA, _rgba(WALL_RGBA, 1.08), BAND_Z[1], 1.77)
    whole = (*LOWER_WALL, *UPPER_WALL)
    hb = _panel_half_m(right)
    for yc in bays:
        _extrude(b, LOWER_WALL, yc - hb, yc + hb, lower, right)
        _extrude(b, UPPER_WALL, yc - hb, yc + hb, upper, right)
    for yc in [*bays, bays[-1] + ROW_PITCH_M] if not right else ():
        y = yc - ROW_PITCH_M / 2
        _extrude(b, whole, y - SEAM_M / 2, y + SEAM_M / 2, SEAM_RGBA, right)


def _overhead(b: MeshBuilder, strips: MeshBuilder, right: bool) -> None:
    """Bins (doors in pairs of bays, latches), their undersides with service units, ceiling."""
    m = _mirror if right else (lambda p: np.asarray(p, np.float64))
    door_len = 2 * ROW_PITCH_M
    y = Y_REAR
    while y < Y_FRONT - 0.1:
        y1 = min(Y_FRONT, y + door_len)
        # Joints between doors and ceiling panels, none against the bulkheads.
        ya = y + SEAM_M if y > Y_REAR else y
        yb = y1 - SEAM_M if y1 < Y_FRONT else y1
        _extrude(b, BIN_DOOR, ya, yb, (0.9, 0.9, 0.87, 1), right)
        _extrude(b, CEILING, ya, yb,
                 _z_gradient((0.97, 0.96, 0.93), (0.86, 0.86, 0.85), 2.14, 2.28), right)
        if y1 < Y_FRONT:
            _extrude(b, BIN_DOOR, yb, y1 + SEAM_M, SEAM_RGBA, right)
            _extrude(b, CEILING, yb, y1 + SEAM_M, _rgba(SEAM_RGBA, 1.3), right)
        latch_x = float(m(np.array([[0.578, 0.0]]))[0, 0])
        ym = (y + y1) / 2
        _quad(b, [(latch_x, ym - 0.09, 1.95), (latch_x, ym + 0.09, 1.95),
                  (latch_x, ym + 0.09, 1.99), (latch_x, ym - 0.09, 1.99)],
              (0.45, 0.46, 0.48, 1), (-1 if right else 1, 0, 0))
        y = y1
    # Bin undersides, per bay (edges shared with the doors': no cracks at T-junctions):
    # a plain strip by the wall and a passenger service unit over each row of seats.
    for k in range(round((Y_FRONT - Y_REAR) / ROW_PITCH_M)):
        ya = Y_REAR + k * ROW_PITCH_M
        yb = ya + ROW_PITCH_M
        _extrude(b, BIN_BOTTOM[:2], ya, yb, (0.82, 0.82, 0.8, 1), right)
        _extrude(b, BIN_BOTTOM[1:], ya, yb, (0.72, 0.73, 0.74, 1), right)
        for x in (0.05, 0.22, 0.39) if 1 <= k < 10 else ():  # reading lights (too small further)
            (x0, _), (x1, z) = m(np.array([[x - 0.03, 0.0], [x + 0.03, 1.735]]))
            yl = ya + 0.3
            _quad(b, [(x0, yl, z - 0.004), (x1, yl, z - 0.004), (x1, yl + 0.06, z - 0.004),
                      (x0, yl + 0.06, z - 0.004)], (0.3, 0.3, 0.32, 1), (0, 0, -1))
    # Indirect light: the cove above the bins (split where the ceiling panels are) and a
    # wash light under them, 2 mm below the bin's underside.
    for ya in np.arange(Y_REAR, Y_FRONT - 0.1, door_len):
        yb = min(Y_FRONT, ya + door_len)
        _extrude(strips, COVE, ya, yb, (1.0, 0.96, 0.88, 1), right)
        wash = ((-0.235, 1.7675), (-0.17, 1.7645))
        _extrude(strips, wash, ya, yb, (1.0, 0.96, 0.88, 1), right)


def _floor_and_ends(b: MeshBuilder, strips: MeshBuilder) -> None:
    x0, x1 = LOWER_WALL[0][0], 2 * AISLE_X - LOWER_WALL[0][0]
    carpet = (0.24, 0.26, 0.33, 1)
    runner = (0.3, 0.27, 0.3, 1)
    for xa, xb, col in ((x0, 1.3, carpet), (1.3, 1.8, runner), (1.8, x1, carpet)):
        _quad(b, [(xa, Y_REAR, 0), (xb, Y_REAR, 0), (xb, Y_FRONT, 0), (xa, Y_FRONT, 0)],
              col, (0, 0, 1))
    # Bulkheads: the whole cross-section, as a fan from its middle (it is star-shaped).
    left = np.array([*LOWER_WALL, *UPPER_WALL, *BIN_BOTTOM[1:], *BIN_DOOR[1:], *COVE[1:],
                     *CEILING[1:]], np.float64)
    loop = np.vstack([left, _mirror(left[::-1])[1:]])
    centre = np.array([[AISLE_X, 1.2]])
    for y, facing in ((Y_FRONT, -1.0), (Y_REAR, 1.0)):
        pts = np.vstack([centre, loop])
        pos = np.stack([pts[:, 0], np.full(len(pts), y), pts[:, 1]], axis=1)
        j = np.arange(1, len(loop) + 1)  # a closed fan: the last triangle spans the floor
        tris = np.stack([np.zeros_like(j), j, j % len(loop) + 1], 1)
        _mesh(b, pos, np.tile([0.0, facing, 0.0], (len(pts), 1)), tris, (0.8, 0.78, 0.74, 1))
    # Front: a curtain across the aisle, galley walls and an exit sign above.
    yf = Y_FRONT - 0.01
    _quad(b, [(1.1, yf, 0), (2.0, yf, 0), (2.0, yf, 2.0), (1.1, yf, 2.0)],
          (0.12, 0.16, 0.3, 1), (0, -1, 0))
    for xa in (1.1, 2.0):
        _quad(b, [(xa, yf, 0), (xa, yf - 0.6, 0), (xa, yf - 0.6, 2.05), (xa, yf, 2.05)],
              (0.74, 0.72, 0.69, 1), (1 if xa > 1.5 else -1, 0, 0))
    _quad(strips, [(1.4, yf - 0.02, 2.06), (1.7, yf - 0.02, 2.06), (1.7, yf - 0.02, 2.16),
                   (1.4, yf - 0.02, 2.16)], (0.2, 0.95, 0.45, 1), (0, -1, 0))


def _headrest(b: MeshBuilder, x: float, rear: Callable[[float], float],
              fore: Callable[[float], float], z_range: tuple[float, float], half_w: float,
              k: int, front: bool) -> None:
    """A rounded headrest: a rounded-rectangle outline swept from the back's rear to its front.

    Fabric, with the white cover showing over the top (blended towards the front).
    """
    zc, hz = (z_range[0] + z_range[1]) / 2, (z_range[1] - z_range[0]) / 2
    exp = 4.0
    theta = np.linspace(0.0, 2 * math.pi, k, endpoint=False)
    uv = _superellipse(theta, (half_w, hz), exp)
    grad = np.sign(uv) * np.abs(uv / (half_w, hz)) ** (exp - 1) / (half_w, hz)
    grad /= np.linalg.norm(grad, axis=1, keepdims=True)
    xs, zs = x + uv[:, 0], zc + uv[:, 1]
    y_rear = np.array([rear(float(z)) for z in zs]) - 0.008
    y_fore = np.array([fore(float(z)) for z in zs]) + 0.006
    ring_r = np.stack([xs, y_rear, zs], axis=1)
    ring_f = np.stack([xs, y_fore, zs], axis=1)
    side_n = np.stack([grad[:, 0], np.zeros(k), grad[:, 1]], axis=1)
    fabric, cover = np.asarray(FABRIC_RGBA), np.asarray(COVER_RGBA)
    front_col = np.where((uv[:, 1] > -0.02)[:, None], cover, fabric)
    colors = np.vstack([np.tile(fabric, (k, 1)), front_col])
    _mesh(b, np.vstack([ring_r, ring_f]), np.vstack([side_n, side_n]), _ring_tris(k, 2),
          _per_vertex(colors))
    caps = [(ring_r, (0.0, -1.0, -0.12), FABRIC_RGBA)]
    if front:
        caps.append((ring_f, (0.0, 1.0, 0.2), COVER_RGBA))
    for ring, normal, col in caps:
        centre = ring.mean(axis=0)
        j = np.arange(k)
        _mesh(b, np.vstack([centre, ring]), np.tile(normal, (k + 1, 1)),
              np.stack([np.zeros(k, np.int64), 1 + j, 1 + (j + 1) % k], 1), col)


def _seat(b: MeshBuilder, x: float, yr: float, lod: int, front: bool,
          ends: tuple[bool, bool]) -> None:
    """One economy seat; ``yr`` is the front of its back at cushion height.

    ``lod`` 0 (near) to 2 (far): fewer parts where nobody can see them. ``front``: the
    cushion and the front of the back (only rows the patient can see from the front).
    ``ends``: draw the left/right side of the back (the ends of a block of three).
    """
    hw, hr = 0.245, 0.175  # half widths of the back (the backs of a block touch), headrest
    z0, zb, zh, z1 = 0.45, 0.96, 0.93, 1.14  # back bottom, back top, headrest bottom, top

    def rear(z: float) -> float:  # the backs recline
        return yr - 0.12 - 0.125 * (z - z0)

    def fore(z: float) -> float:
        return yr - 0.2 * (z - z0)

    rear_n = (0.0, -1.0, -0.12)
    pocket, tray = (0.15, 0.16, 0.2, 1.0), (0.44, 0.45, 0.48, 1.0)
    # Far rows show only the top of their backs over the row in front.
    bands: list[tuple[float, float, RGBA | None]] = [(z0, 0.58, pocket)] if lod < 2 else []
    bands += [(0.58, 0.86, None), (0.86, zb, SHELL_RGBA)] if lod == 0 else [(0.58, zb, SHELL_RGBA)]
    for za, zz, col in bands:
        ya, yz = rear(za), rear(zz)
        if col is None:  # the tray table between two strips of shell, and its latch
            for xa, xb, c in ((-hw, -0.17, SHELL_RGBA), (-0.17, 0.17, tray),
                              (0.17, hw, SHELL_RGBA)):
                _quad(b, [(x + xa, ya, za), (x + xb, ya, za), (x + xb, yz, zz), (x + xa, yz, zz)],
                      c, rear_n)
            yl = rear(0.84) - 0.004
            _quad(b, [(x - 0.03, yl, 0.83), (x + 0.03, yl, 0.83), (x + 0.03, yl, 0.848),
                      (x - 0.03, yl, 0.848)], (0.2, 0.2, 0.22, 1), rear_n)
            continue
        _quad(b, [(x - hw, ya, za), (x + hw, ya, za), (x + hw, yz, zz), (x - hw, yz, zz)],
              col, rear_n)
    _quad(b, [(x - hw, rear(zb), zb), (x + hw, rear(zb), zb), (x + hw, fore(zb), zb),
              (x - hw, fore(zb), zb)], SHELL_RGBA, (0, 0, 1))
    for sx, drawn in ((-1.0, ends[0] or lod == 0), (1.0, ends[1] or lod == 0)):
        if drawn:
            xs = x + sx * hw
            _quad(b, [(xs, rear(z0), z0), (xs, fore(z0), z0), (xs, fore(zb), zb),
                      (xs, rear(zb), zb)], _rgba(FABRIC_RGBA, 0.9), (sx, 0, 0))
    # Headrest: narrower than the back, fabric, a white cover over its top and front.
    if lod < 2:
        _headrest(b, x, rear, fore, (zh, z1), hr, 12 if lod == 0 else 8, front)
    else:
        back_y, crest_y, fore_y = rear(1.1) - 0.008, (rear(z1) + fore(z1)) / 2, fore(1.1) + 0.006
        crest_z = z1 + 0.008
        _quad(b, [(x - hr, rear(zh) - 0.008, zh), (x + hr, rear(zh) - 0.008, zh),
                  (x + hr, back_y, 1.1), (x - hr, back_y, 1.1)], FABRIC_RGBA, rear_n)
        _quad(b, [(x - hr, back_y, 1.1), (x + hr, back_y, 1.1), (x + hr, crest_y, crest_z),
                  (x - hr, crest_y, crest_z)], _rgba(FABRIC_RGBA, 1.1), (0, -0.6, 0.8))
        _quad(b, [(x - hr, crest_y, crest_z), (x + hr, crest_y, crest_z), (x + hr, fore_y, 1.1),
                  (x - hr, fore_y, 1.1)], COVER_RGBA, (0, 0.5, 0.85))
    if not front:
        return
    _quad(b, [(x - hw, fore(z0), z0), (x + hw, fore(z0), z0), (x + hw, fore(zb), zb),
              (x - hw, fore(zb), zb)], FABRIC_RGBA, (0, 1, 0.2))
    cushion = _rgba(FABRIC_RGBA, 1.15)
    _quad(b, [(x - hw, yr, 0.47), (x + hw, yr, 0.47), (x + hw, yr + 0.48, 0.45),
              (x - hw, yr + 0.48, 0.45)], cushion, (0, 0, 1))
    _quad(b, [(x - hw, yr + 0.48, 0.3), (x + hw, yr + 0.48, 0.3), (x + hw, yr + 0.48, 0.45),
              (x - hw, yr + 0.48, 0.45)], FABRIC_RGBA, (0, 1, 0))


def _armrests(b: MeshBuilder, xs: Sequence[float], yr: float) -> None:
    for xa in (xs[0] - 0.25, xs[0] + 0.25, xs[1] + 0.25, xs[2] + 0.25):
        lo, hi = (xa - 0.025, yr - 0.05, 0.6), (xa + 0.025, yr + 0.42, 0.66)
        b.box(lo, hi, (0.3, 0.31, 0.34, 1), faces="xXYZ")


def _passenger(b: MeshBuilder, x: float, yr: float, row: int, aisle: bool,
               rng: np.random.Generator) -> None:
    """A seated passenger: body and a head (hair on top and at the back).

    ``aisle``: an aisle seat, whose body shows from the side across the aisle.
    """
    import vrexposure.render.geometry as g

    skin = np.asarray(SKIN[int(rng.integers(0, len(SKIN)))])
    hair = np.asarray(HAIR[int(rng.integers(0, len(HAIR)))])
    style = rng.random()  # < 0.12 bald, > 0.7 long hair
    shirt = (rng.uniform(0.15, 0.75), rng.uniform(0.15, 0.65), rng.uniform(0.15, 0.65), 1.0)
    lean = rng.uniform(-0.04, 0.04)
    hz = 1.19 + rng.uniform(-0.05, 0.04)
    centre = np.array([x + lean, yr - 0.05, hz])
    heading = float(rng.uniform(-25, 25))

    def head_color(p: NDArray[np.float32]) -> NDArray[np.float32]:
        d = p - centre.astype(np.float32)
        h = math.radians(heading)
        back = math.sin(h) * d[:, 0] - math.cos(h) * d[:, 1]  # towards the back of the head
        if style < 0.12:
            hairy = d[:, 2] > 0.06
        else:
            low = -0.12 if style > 0.7 else -0.05
            hairy = (d[:, 2] > 0.0) | ((back > 0.02) & (d[:, 2] > low))
        rgb = np.where(hairy[:, None], hair, skin)
        return np.hstack([rgb, np.ones((len(p), 1))]).astype(np.float32)

    # Heads of far rows show only above the seat backs: domes, and fewer facets.
    rings, segs, z_min = {1: (5, 10, -1.0), 0: (4, 8, -1.0), -1: (4, 8, -1.0)}.get(
        row, (3, 7, -0.35) if row <= 5 else (2, 5, -0.35))
    head_mat = g.transform(centre.tolist(), (heading, 0, 0))
    b.sphere((0.078, 0.098, 0.108), head_color, head_mat,
             rings=rings, segments=segs, z_min=z_min)
    if row == 1:  # right in front of the patient: ears
        for side in (-1.0, 1.0):
            b.sphere((0.014, 0.028, 0.034), _rgba(skin, 0.95), head_mat, rings=2, segments=4,
                     center=(side * 0.076, 0.0, -0.01))
    if row <= 1:
        neck = np.array([[0.0, 0.01, -0.17], [0.0, 0.01, -0.06]]) + centre
        b.tube(neck[0].tolist(), neck[1].tolist(), 0.045, 0.045,
               _rgba(skin, 0.92), 6, caps=False)
    # The body hides behind the seat backs; rows the patient sees past get its sides.
    faces = "xXZY" if row < 0 else "xXZ" if row <= 1 else "xX" if aisle else ""
    if faces:
        b.box((x - 0.19 + lean, yr - 0.09, 0.55), (x + 0.19 + lean, yr + 0.14, 0.97), shirt,
              faces=faces)
    if row == 1:  # rounded shoulders beside the headrest in front of the patient
        for side in (-1.0, 1.0):
            b.tube((x + lean + side * 0.06, yr - 0.02, 0.95),
                   (x + lean + side * 0.2, yr - 0.02, 0.95), 0.06, 0.055, shirt, 6, caps=False)


def _sign(b: MeshBuilder, x: float, y: float, right: bool) -> None:
    """A no-smoking / fasten-seat-belt sign under the bins, tilted to face the rows behind."""
    if right:
        x = 2 * AISLE_X - x
    a = math.radians(35.0)
    n = np.array([0.0, -math.cos(a), -math.sin(a)])
    ev = np.array([0.0, -math.sin(a), math.cos(a)])
    c = np.array([x, y, 1.70])

    def rect(u0: float, u1: float, v0: float, v1: float, lift: float, col: RGBA) -> None:
        pts = [c + n * lift + np.array([u, 0, 0]) + ev * v
               for u, v in ((u0, v0), (u1, v0), (u1, v1), (u0, v1))]
        _quad(b, pts, col, n)

    dark = (0.12, 0.1, 0.08, 1.0)
    rect(-0.09, 0.09, -0.032, 0.032, 0.0, (0.97, 0.95, 0.9, 1))
    # no-smoking: a cigarette in a square ring
    rect(-0.075, -0.025, -0.004, 0.004, 0.0015, dark)
    for u0, u1, v0, v1 in ((-0.082, -0.018, 0.02, 0.025), (-0.082, -0.018, -0.025, -0.02),
                           (-0.082, -0.077, -0.025, 0.025), (-0.023, -0.018, -0.025, 0.025)):
        rect(u0, u1, v0, v1, 0.0015, dark)
    # fasten seat belt: a seated figure with the belt across
    rect(0.044, 0.056, 0.012, 0.024, 0.0015, dark)
    rect(0.038, 0.062, -0.022, 0.008, 0.0015, dark)
    rect(0.028, 0.072, -0.01, -0.004, 0.0015, dark)


def _wing(wing: MeshBuilder, flaps: MeshBuilder) -> tuple[FloatArray, FloatArray]:
    """Upper surfaces of the left wing (root at the origin), engine, sharklet; the flaps apart.

    Unlit with baked shading (it is outside, in daylight). Returns the flap hinge (point,
    unit axis) in wing coordinates.
    """
    fs = np.array([0.0, 0.3, FLAP_SPAN, 1.0])

    def station(f: FloatArray, cf: FloatArray, lift: FloatArray) -> FloatArray:
        s = f * WING_SPAN_M
        chord = WING_CHORDS_M[0] + (WING_CHORDS_M[1] - WING_CHORDS_M[0]) * f
        le = WING_LE_ROOT_Y - s * WING_SWEEP_TAN
        half = 0.35 * (1 - f) + 0.08 * f
        return np.stack([-s, le - cf * chord, s * WING_DIHEDRAL_TAN + lift * half], axis=-1)

    def surface(b: MeshBuilder, f: FloatArray, cf: Sequence[float], lift: Sequence[float],
                tone: Sequence[float]) -> None:
        ff, cc = np.meshgrid(f, np.asarray(cf), indexing="ij")
        ll = np.broadcast_to(np.asarray(lift), ff.shape)
        pos = station(ff, cc, ll).reshape(-1, 3)
        k = len(cf)
        rows = []
        for i in range(len(f) - 1):
            j = np.arange(k - 1) + i * k
            rows.append(np.stack([j, j + 1, j + k + 1, j, j + k + 1, j + k], 1))
        base = np.array([0.74, 0.76, 0.79])
        col = np.broadcast_to(np.asarray(tone)[None, :, None] * base, (len(f), k, 3))
        col = np.concatenate([col, np.ones((len(f), k, 1))], axis=2).reshape(-1, 4)
        _mesh(b, pos, np.tile([0.0, 0.0, 1.0], (len(pos), 1)), np.vstack(rows),
              _per_vertex(col))

    cf = [0.0, 0.02, 0.08, 0.2, 0.4, 0.6, FLAP_CHORD]
    lift = [-0.3, 0.4, 0.75, 0.97, 1.0, 0.8, 0.55]
    tone = [1.08, 1.12, 1.08, 1.02, 1.0, 0.97, 0.95]
    surface(wing, fs, cf, lift, tone)
    surface(wing, fs[2:], [FLAP_CHORD, 1.0], [0.55, 0.1], [0.93, 0.9])  # ailerons
    surface(flaps, fs[:3], [FLAP_CHORD, 0.9, 1.0], [0.55, 0.3, 0.08], [0.9, 0.88, 0.86])

    def mark(f0: float, f1: float, c0: float, c1: float, color: RGBA) -> None:
        """A painted patch or panel line on the upper surface (raised 1 cm above it)."""
        ff = np.array([f0, f1, f1, f0])
        cc = np.array([c0, c0, c1, c1])
        pts = station(ff, cc, np.interp(cc, cf, lift)) + np.array([0.0, 0.0, 0.01])
        _quad(wing, pts, color, (0, 0, 1))

    line = (0.42, 0.44, 0.47, 1.0)
    mark(0.0, 1.0, 0.095, 0.105, line)  # slats end
    mark(0.12, FLAP_SPAN, 0.595, 0.605, line)  # spoilers start
    for f in np.linspace(0.12, FLAP_SPAN, 6):  # between spoiler panels
        mark(f - 0.003, f + 0.003, 0.6, FLAP_CHORD, line)
    mark(0.02, 0.1, 0.25, 0.27, (0.15, 0.15, 0.16, 1))  # walkway
    mark(0.02, 0.1, 0.55, 0.57, (0.15, 0.15, 0.16, 1))
    mark(0.02, 0.024, 0.25, 0.57, (0.15, 0.15, 0.16, 1))
    mark(0.096, 0.1, 0.25, 0.57, (0.15, 0.15, 0.16, 1))
    for f in (0.2, 0.4, FLAP_SPAN - 0.03, 0.78):  # flap track fairings behind the wing
        a = station(np.array([f]), np.array([0.85]), np.array([0.4]))[0]
        lo, hi = a + np.array([-0.18, -2.0, -0.45]), a + np.array([0.18, 0.0, 0.0])
        wing.box(lo.tolist(), hi.tolist(), (0.6, 0.62, 0.65, 1),
                 faces="xXyZ")
    # Engine under the wing, ahead of it.
    s_e = 0.25 * WING_SPAN_M
    le = WING_LE_ROOT_Y - s_e * WING_SWEEP_TAN
    zc = s_e * WING_DIHEDRAL_TAN - 1.3

    def nacelle(p: NDArray[np.float32]) -> NDArray[np.float32]:
        up = np.clip((p[:, 2] - zc) / 1.1, -1, 1)
        k = (0.62 + 0.3 * up)[:, None] * np.array([0.9, 0.9, 0.92])
        return np.hstack([k, np.ones((len(p), 1))]).astype(np.float32)

    wing.tube((-s_e, le - 2.4, zc), (-s_e, le + 1.8, zc), 1.0, 1.12, nacelle, 12, caps=False)
    wing.tube((-s_e, le + 1.78, zc), (-s_e, le + 1.8, zc), 0.95, 0.95, (0.1, 0.1, 0.12, 1),
              12, caps=True)
    wing.box((-s_e - 0.15, le - 2.0, zc + 0.9), (-s_e + 0.15, le + 0.3, zc + 1.4),
             (0.7, 0.71, 0.74, 1), faces="xXZ")
    # Sharklet at the tip, in the airline's colour, seen from both sides.
    tip = station(np.array([1.0]), np.array([0.0]), np.array([0.0]))[0]
    pts = tip + np.array([(0, 0, 0), (0, -1.5, 0), (-0.35, -1.3, 2.3), (-0.35, -0.6, 2.3)])
    for facing in ((1, 0, 0), (-1, 0, 0)):
        _quad(wing, pts, (0.12, 0.25, 0.55, 1), facing)
    a = station(np.array([0.0]), np.array([FLAP_CHORD]), np.array([0.55]))[0]
    b = station(np.array([FLAP_SPAN]), np.array([FLAP_CHORD]), np.array([0.55]))[0]
    return a, (b - a) / np.linalg.norm(b - a)


# --------------------------------------------------------------------------- outside parts


def _wedge_planes(right: bool) -> list[tuple[FloatArray, FloatArray]]:
    """Clip planes (normal towards the kept side, point) of what one wall's windows show.

    Rays from the eye through the openings lie between a plane through the openings'
    top edge and one through their bottom edge (both along y), beyond the wall. The
    planes pass through an eye moved by ``HEAD_MARGIN_M`` towards the wall and down
    (up) so that a head moving that far still sees a full view.
    """
    side = 1.0 if right else -1.0  # from the patient towards that wall
    pane_x = AISLE_X + side * (AISLE_X - WALL_X + RECESS_M)
    eye_x = EYE[0] + side * HEAD_MARGIN_M
    z_lo, z_hi = WIN_Z - WIN_HALF[1] - 0.01, WIN_Z + WIN_HALF[1] + 0.01
    inside = np.array([pane_x + side * 10.0, 0.0, WIN_Z])  # far out through the windows
    planes = []
    for edge_z, eye_z in ((z_hi, EYE[2] - HEAD_MARGIN_M), (z_lo, EYE[2] + HEAD_MARGIN_M)):
        edge = np.array([pane_x, 0.0, edge_z])
        normal = np.cross(edge - np.array([eye_x, 0.0, eye_z]), [0.0, 1.0, 0.0])
        normal /= np.linalg.norm(normal)
        if np.dot(normal, inside - edge) < 0:
            normal = -normal
        planes.append((normal, edge))
    planes.append((np.array([side, 0.0, 0.0]), np.array([pane_x, 0.0, 0.0])))
    return planes



def _fields_image(size: int = 512, seed: int = 11) -> NDArray[np.uint8]:
    """A tileable patchwork of fields, woods, hedges and roads seen from above."""
    import vrexposure.render.geometry as g

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    warp = g.value_noise(size, 3, seed, 2) - 0.5
    wx, wy = (x + 0.03 * warp) % 1.0, (y + 0.03 * np.roll(warp, size // 3, axis=0)) % 1.0
    cells_x, cells_y = 14, 10
    cx, cy = np.floor(wx * cells_x).astype(int), np.floor(wy * cells_y).astype(int)
    palette = np.array([(0.45, 0.55, 0.28), (0.36, 0.48, 0.24), (0.66, 0.6, 0.38),
                        (0.52, 0.47, 0.32), (0.58, 0.62, 0.35), (0.3, 0.42, 0.22)])
    pick = rng.integers(0, len(palette), (cells_y, cells_x))
    img = palette[pick[cy, cx]]
    fine = g.value_noise(size, 32, seed + 1, 2)
    img = img * (0.88 + 0.24 * fine)[..., None]
    woods = g.value_noise(size, 6, seed + 2, 3) > 0.6
    img[woods] = np.array([0.18, 0.28, 0.15]) * (0.8 + 0.4 * fine[woods])[:, None]
    hedge = ((wx * cells_x) % 1.0 < 0.035) | ((wy * cells_y) % 1.0 < 0.045)
    img[hedge] *= 0.7
    town = g.value_noise(size, 5, seed + 3, 3) > 0.68
    speck = g.value_noise(size, 96, seed + 4, 1) > 0.5
    img[town & speck] = (0.62, 0.58, 0.55)
    img[town & ~speck] = (0.45, 0.42, 0.4)
    for k in range(3):  # roads (straight across the tile, so the tile still repeats)
        p = rng.uniform(0, 1)
        img[np.abs((x if k % 2 else y) - p) < 0.7 / size] = (0.42, 0.42, 0.42)
    return (np.clip(img, 0, 1) * 255).astype(np.uint8)


def _clouds_image(size: int = 256, seed: int = 21) -> NDArray[np.uint8]:
    """Tileable broken cloud cover: white, shaded in its thicker parts, transparent gaps."""
    import vrexposure.render.geometry as g

    n = g.value_noise(size, 4, seed, 5, 0.55)
    alpha = np.clip((n - 0.47) / 0.15, 0.0, 1.0)
    shade = 0.82 + 0.18 * np.clip((n - 0.5) / 0.25, 0.0, 1.0)
    rgb = np.stack([shade, shade, shade * 1.02], axis=-1)
    return (np.clip(np.dstack([rgb, alpha]), 0, 1) * 255).astype(np.uint8)


def _airliner(b: MeshBuilder, x_nose: float, y: float, tail: RGBA) -> None:
    """A parked airliner, nose towards -x (the terminal)."""
    length, r, zc = 37.0, 2.0, 3.2
    white, grey = (0.93, 0.93, 0.95, 1.0), (0.68, 0.69, 0.72, 1.0)
    b.tube((x_nose + 2.5, y, zc), (x_nose + length - 5, y, zc), r, r, white, 8, caps=False)
    b.tube((x_nose, y, zc - 0.3), (x_nose + 2.5, y, zc), 0.6, r, white, 8, caps=False)  # nose
    b.tube((x_nose + length - 5, y, zc), (x_nose + length, y, zc + 1.2), r, 0.4, white, 8,
           caps=False)  # tail cone
    for sy in (-1, 1):  # wings, engines under them, tailplanes
        _quad(b, [(x_nose + 14, y + sy * 1.5, 1.8), (x_nose + 20, y + sy * 1.5, 1.8),
                  (x_nose + 25, y + sy * 17, 2.6), (x_nose + 23, y + sy * 17, 2.6)], grey,
              (0, 0, 1))
        b.tube((x_nose + 11, y + sy * 5.7, 1.0), (x_nose + 15, y + sy * 5.7, 1.0), 0.9, 0.9,
               (0.85, 0.85, 0.88, 1), 6, caps=True)
        _quad(b, [(x_nose + 31, y + sy * 1.0, 4.0), (x_nose + 34, y + sy * 1.0, 4.0),
                  (x_nose + 36, y + sy * 6.0, 4.3), (x_nose + 35, y + sy * 6.0, 4.3)], grey,
              (0, 0, 1))
    fin = [(x_nose + 30, y, 5.0), (x_nose + 36.5, y, 5.0), (x_nose + 37.5, y, 11.5),
           (x_nose + 34.5, y, 11.5)]
    for facing in ((0, 1, 0), (0, -1, 0)):
        _quad(b, fin, tail, facing)


def _airport(flat: MeshBuilder, solid: MeshBuilder, tile: int, rng: np.random.Generator) -> None:
    """One repeat of the apron: two gates with jet bridges and parked airliners.

    ``flat`` collects what lies on the ground (drawn in order, no depth writes),
    ``solid`` what stands on it (drawn with depth writes).
    """
    y0 = tile * AIRPORT_TILE_M
    y1 = y0 + AIRPORT_TILE_M
    facade_x = -85.0
    yellow, white = (0.85, 0.7, 0.18, 1.0), (0.9, 0.9, 0.88, 1.0)

    def ground(xa: float, xb: float, ya: float, yb: float, col: RGBA) -> None:
        _quad(flat, [(xa, ya, 0), (xb, ya, 0), (xb, yb, 0), (xa, yb, 0)], col, (0, 0, 1))

    ground(facade_x, 40, y0, y1, (0.6, 0.6, 0.58, 1))
    for x in np.arange(facade_x + 10, 40, 10.0):  # concrete slab joints
        ground(x - 0.08, x + 0.08, y0, y1, (0.52, 0.52, 0.51, 1))
    for y in np.arange(y0 + 10, y1, 10.0):
        ground(facade_x, 40, y - 0.08, y + 0.08, (0.52, 0.52, 0.51, 1))
    ground(-8.3, -8.0, y0, y1, yellow)  # taxi lane edge
    ground(0.1, 0.3, y0, y1, yellow)  # taxi lane centre line, under the aircraft
    # The terminal: concrete base, glazing with mullions, a light roof band; roof on top.
    solid.box((facade_x - 35, y0 + 3, 0), (facade_x, y1 - 3, 14), (0.56, 0.57, 0.6, 1), faces="Z")
    for za, zb, col in ((0, 3.5, (0.62, 0.6, 0.57, 1)), (3.5, 11.5, (0.27, 0.36, 0.44, 1)),
                        (11.5, 14, (0.8, 0.8, 0.79, 1))):
        _quad(solid, [(facade_x, y0 + 3, za), (facade_x, y1 - 3, za), (facade_x, y1 - 3, zb),
                      (facade_x, y0 + 3, zb)], col, (1, 0, 0))
    for y in np.arange(y0 + 9, y1 - 3, 9.0):
        _quad(solid, [(facade_x + 0.05, y - 0.15, 3.5), (facade_x + 0.05, y + 0.15, 3.5),
                      (facade_x + 0.05, y + 0.15, 11.5), (facade_x + 0.05, y - 0.15, 11.5)],
              (0.7, 0.71, 0.72, 1), (1, 0, 0))
    for y, facing in ((y0 + 3, -1), (y1 - 3, 1)):
        _quad(solid, [(facade_x - 35, y, 0), (facade_x, y, 0), (facade_x, y, 14),
                      (facade_x - 35, y, 14)], (0.5, 0.5, 0.52, 1), (0, facing, 0))
    for gate in (y0 + 0.25 * AIRPORT_TILE_M, y0 + 0.75 * AIRPORT_TILE_M):
        ground(facade_x, -10, gate - 0.15, gate + 0.15, yellow)  # lead-in line
        ground(-50, -49.7, gate - 8, gate + 8, (0.8, 0.2, 0.15, 1))  # stop bar
        tail = ((0.12, 0.25, 0.55, 1.0), (0.7, 0.12, 0.12, 1.0), (0.1, 0.45, 0.3, 1.0),
                white)[int(rng.integers(0, 4))]
        _airliner(solid, facade_x + 6, gate, tail)
        # jet bridge from the terminal to the front door, on a pillar
        solid.box((facade_x, gate - 5.5, 4.2), (facade_x + 12, gate - 2.5, 6.8),
                  (0.72, 0.72, 0.74, 1), faces="xXyYZ")
        solid.box((facade_x + 11, gate - 4.5, 0), (facade_x + 12, gate - 3.5, 4.2),
                  (0.4, 0.4, 0.42, 1), faces="xXyY")
        for k in range(3):  # tug, belt loader, catering truck
            xv, yv = -40.0 + 8 * k, gate + float(rng.uniform(-22, 22))
            col = ((0.95, 0.8, 0.15, 1), (0.92, 0.92, 0.92, 1), (0.2, 0.35, 0.7, 1))[k]
            solid.box((xv, yv, 0), (xv + 2.5, yv + 5, 2.0 + k), col, faces="xXyYZ")
    ground(-14, -13.6, y0, y1, (0.2, 0.3, 0.8, 1))  # edge lights (as a painted line from afar)
    for y in np.arange(y0 + 40, y1, 80.0):  # apron flood light masts
        solid.box((-30.3, y - 0.3, 0), (-29.7, y + 0.3, 22), (0.55, 0.55, 0.57, 1), faces="xXyY")
        solid.box((-31, y - 1.5, 22), (-29, y + 1.5, 23), (0.85, 0.85, 0.8, 1), faces="xXyYZz")


# --------------------------------------------------------------------------- the scene


class FlyingScene(SceneBase):
    """Window seat in a single-aisle cabin; the world outside follows the flight phase."""

    sound_name = "engine"
    sound_param = "engine_volume"
    #: check-scenes: the stimulus is what the windows sweep over as the cabin shakes.
    stimulus_sweep_s = 3.0
    event_sounds: ClassVar[dict[str, str]] = {"chime": "chime", "announcement": "announcement"}
    near_far = (0.03, 100_000.0)
    background_color = (0.6, 0.75, 0.9)
    channel_ease_s: ClassVar[dict[str, float]] = {
        "altitude_log": 5.0, "pitch_deg": 3.0, "ground_speed": 4.0, "bank_deg": 4.0,
        "flaps_deg": 4.0,
    }

    def __init__(self, spec: SceneSpec | None = None, ease_time_s: float = DEFAULT_EASE_TIME_S):
        super().__init__(spec or SCENE, ease_time_s)
        self._ground_offset_m = 0.0
        self._bank_now_deg = 0.0
        self._pax_ranks: list[float] = []
        self._pax_index_counts: list[int] = []  # indices of the first k passengers
        self._pax_shown = -1

    def channel_targets(self, params: Any) -> dict[str, float]:
        targets = super().channel_targets(params)
        altitude, pitch, speed, bank, flaps = PHASES[str(params["flight_phase"])]
        targets["altitude_log"] = math.log10(1.0 + altitude)
        targets["pitch_deg"] = pitch
        targets["ground_speed"] = speed
        targets["bank_deg"] = bank
        targets["flaps_deg"] = flaps
        return targets

    def reset_motion(self) -> None:
        self._ground_offset_m = 0.0

    def bank_deg(self) -> float:
        """The aircraft's bank shown in the last frame (degrees, + = left wing down)."""
        return self._bank_now_deg

    # -- build ------------------------------------------------------------------------

    def build(self, parent: NodePath) -> None:
        rng = np.random.default_rng(8)
        self._cabin = parent.attachNewNode("cabin")
        self._build_cabin(self._cabin, rng)
        self._build_rain(self._cabin)
        self._build_outside(parent, rng)
        self._build_lights()

    def _build_cabin(self, cabin: NodePath, rng: np.random.Generator) -> None:
        import vrexposure.render.geometry as g

        shell, shades, strips = g.MeshBuilder(), g.MeshBuilder(), g.MeshBuilder()
        # Near things first: inside one Geom triangles are drawn in order, and what is
        # drawn first hides (early depth test) what lies behind it.
        for r in range(-1, ROWS_AHEAD + 1):
            yr = SEAT_Y0 + r * ROW_PITCH_M
            lod = 0 if r == 1 else 1 if r <= 6 else 2  # detail where the patient looks
            for k, x in enumerate(SEAT_XS):
                if r == 0 and k == 0:
                    continue  # the patient's own seat back is behind their eyes
                _seat(shell, x, yr, lod, front=r <= 0, ends=(k % 3 == 0, k % 3 == 2))
            if r <= 1:
                _armrests(shell, SEAT_XS[:3], yr)
                _armrests(shell, SEAT_XS[3:], yr)
        bays = [WIN_Y0 + k * ROW_PITCH_M for k in range(-2, ROWS_AHEAD + 1)]
        for yc in sorted(bays, key=lambda y: abs(y - EYE[1])):
            for right in (False, True):
                near = abs(yc - WIN_Y0) < 1.0 and not right
                segments = 24 if near else 10
                mine = abs(yc - WIN_Y0) < 1e-6 and not right
                # Most shades follow the patient's; the others are open, shut or half open.
                follows = mine or rng.random() < 0.6
                state = None if follows else float(rng.choice([1.0, 1.0, 0.0, 0.5]))
                _window_bay(shell, shades, yc, right, segments, near, state)
        for right in (False, True):
            _sidewall(shell, bays, right)
            _overhead(shell, strips, right)
        _floor_and_ends(shell, strips)
        shell.attach(cabin, "shell")
        self._shades = shades.attach(cabin, "window-shades")
        self._strips = strips.attach(cabin, "light-strips")
        g.set_unlit(self._strips)

        signs = g.MeshBuilder()
        for r in range(1, ROWS_AHEAD + 1, 2):
            for right in (False, True):
                _sign(signs, 0.3, SEAT_Y0 + r * ROW_PITCH_M + 0.35, right)
        self._signs = signs.attach(cabin, "seatbelt-signs")
        g.set_unlit(self._signs)

        # Passengers: one Geom ordered by the occupancy rank at which each one appears,
        # so any occupancy is a prefix of the index buffer (no per-frame vertex work).
        seats = [(r, k) for r in range(-1, ROWS_AHEAD + 1) for k in range(6) if (r, k) != (0, 0)]
        ranks = rng.random(len(seats))
        order = np.argsort(ranks)
        people = g.MeshBuilder()
        counts = [0]
        for i in order:
            r, k = seats[int(i)]
            _passenger(people, SEAT_XS[k], SEAT_Y0 + r * ROW_PITCH_M, r, k in (2, 3), rng)
            counts.append(len(people.arrays()[1]))
        self._pax_ranks = [float(ranks[int(i)]) for i in order]
        self._pax_index_counts = counts
        node: GeomNode = people.node("passengers")
        self._pax_geom_node = node
        self._pax_indices: GeomVertexArrayData = node.getGeom(0).getPrimitive(0).getVertices()
        self._passengers = cabin.attachNewNode(node)
        # A filling cabin is part of what is feared (no way out): the boarding steps grade it.
        self._passengers.setTag("stimulus", "passengers")

        wing_b, flaps_b = g.MeshBuilder(), g.MeshBuilder()
        hinge_point, hinge_axis = _wing(wing_b, flaps_b)
        self._wing_root = cabin.attachNewNode("wing-root")
        self._wing_root.setPos(*WING_ROOT)
        self._wing = wing_b.attach(self._wing_root, "wing")
        self._wing_root.setTag("stimulus", "wing")
        self._flaps = flaps_b.attach(self._wing_root, "flaps")
        self._hinge = (hinge_point, hinge_axis)
        g.set_unlit(self._wing_root)

    def _build_outside(self, parent: NodePath, rng: np.random.Generator) -> None:
        """Sky, ground and clouds seen through each wall's windows; the airport on the left.

        Each wall's view is clipped to the wedge its windows show (clipped geometry
        never reaches the rasteriser; geometry merely hidden behind the cabin still
        costs every pixel a depth test, and a full-screen sky, ground and cloud layer
        cost a third of the frame). The far geometry is shared by both views
        (instanced: two draws per Geom); the airport lies left of the aircraft only.
        """
        from panda3d.core import (
            DepthTestAttrib,
            Fog,
            Plane,
            PlaneNode,
            Point3,
            RenderAttrib,
            TransparencyAttrib,
            Vec3,
        )

        import vrexposure.render.geometry as g

        self._attitudes: list[NodePath] = []  # pitch and bank, the same on both sides
        self._worlds: list[NodePath] = []  # the ground below, at the altitude
        self._fog: Fog = Fog("haze")
        self._fog.setMode(Fog.M_exponential_squared)  # clear nearby, thick towards 40 km
        for right in (False, True):
            view = parent.attachNewNode("outside-right" if right else "outside-left")
            view.setTag("stimulus", "outside")  # the flight as seen through the windows
            for normal, point in _wedge_planes(right):
                plane = Plane(Vec3(*normal), Point3(*point))
                clip = self._cabin.attachNewNode(PlaneNode("window-wedge", plane))
                view.setClipPlane(clip)
                if not right:
                    # The wing too is only seen through the left windows; after the cabin
                    # (and before the outside it hides), so that the walls hide it cheaply.
                    self._wing_root.setClipPlane(clip)
                    self._wing_root.setBin("fixed", -1)
            view.setLightOff(1)
            # Drawn after the cabin, without depth writes: only the windows pay for it.
            view.setDepthWrite(False)
            # Tens of kilometres away the depth of a fragment rounds to the cleared 1.0.
            view.setAttrib(DepthTestAttrib.make(RenderAttrib.M_less_equal))
            attitude = view.attachNewNode("attitude")
            world = attitude.attachNewNode("ground-world")
            world.setFog(self._fog)
            self._attitudes.append(attitude)
            self._worlds.append(world)

        def sky_color(p: NDArray[np.float32]) -> NDArray[np.float32]:
            e = np.clip(p[:, 2:3] / SKY_RADIUS_M, 0.0, 1.0) ** 0.45
            rgb = HAZE * (1 - e) + ZENITH * e
            return np.hstack([rgb, np.ones((len(p), 1))]).astype(np.float32)

        sky = g.MeshBuilder()
        sky.sphere(SKY_RADIUS_M, sky_color, rings=9, segments=16, inside=True, z_min=-0.45)
        self._sky = sky.attach(self._attitudes[0], "sky")
        self._sky.setBin("fixed", 0)
        self._sky.setFogOff(1)

        ground = g.MeshBuilder()
        h = GROUND_HALF_M
        ground.quad([(-h, -h, 0), (h, -h, 0), (h, h, 0), (-h, h, 0)], (1, 1, 1, 1),
                    uv_m=GROUND_TEX_M)
        self._ground = ground.attach(self._worlds[0], "ground")
        self._ground.setTexture(g.texture_from_array("fields", _fields_image()))
        self._ground.setBin("fixed", 1)

        flat, solid = g.MeshBuilder(), g.MeshBuilder()
        for tile in range(-1, 4):  # scrolled by up to one tile: y from -640 m to +1280 m
            _airport(flat, solid, tile, rng)
        self._airport = self._worlds[0].attachNewNode("airport")
        marks = flat.attach(self._airport, "apron")
        marks.setBin("fixed", 2)  # in the order built: markings over the concrete
        buildings = solid.attach(self._airport, "airport-buildings")
        buildings.setBin("fixed", 3)
        buildings.setDepthWrite(True)  # tens of metres away, depth is precise enough
        # Right of the aircraft only the apron's plain concrete (it does not need to scroll).
        right_apron = g.MeshBuilder()
        _quad(right_apron, [(4, -700, 0), (60, -700, 0), (60, 1400, 0), (4, 1400, 0)],
              (0.6, 0.6, 0.58, 1), (0, 0, 1))
        self._right_apron = right_apron.attach(self._worlds[1], "apron-right")
        self._right_apron.setBin("fixed", 2)

        clouds = g.MeshBuilder()
        clouds.quad([(-h, -h, CLOUD_Z_M), (h, -h, CLOUD_Z_M), (h, h, CLOUD_Z_M),
                     (-h, h, CLOUD_Z_M)], (1, 1, 1, 1), uv_m=CLOUD_TEX_M)
        # Seen from below as well as from above.
        clouds.quad([(-h, h, CLOUD_Z_M), (h, h, CLOUD_Z_M), (h, -h, CLOUD_Z_M),
                     (-h, -h, CLOUD_Z_M)], (1, 1, 1, 1), uv_m=CLOUD_TEX_M)
        self._clouds = clouds.attach(self._worlds[0], "clouds")
        self._clouds.setTexture(g.texture_from_array("clouds", _clouds_image()))
        self._clouds.setTransparency(TransparencyAttrib.M_alpha)
        self._clouds.setBin("fixed", 4)

        # The right-hand view shares the far geometry (the node state comes along).
        self._sky.instanceTo(self._attitudes[1])
        self._ground.instanceTo(self._worlds[1])
        self._clouds.instanceTo(self._worlds[1])

    def _build_lights(self) -> None:
        from panda3d.core import AmbientLight, DirectionalLight, PointLight, Vec3

        self._ambient = self._cabin.attachNewNode(AmbientLight("cabin-ambient"))
        self._fills = []
        # Light from the ceiling coves onto both walls and the seat backs ahead.
        for sx in (-1.0, 1.0):
            fill = self._cabin.attachNewNode(DirectionalLight("cove-fill"))
            fill.lookAt(sx * 0.45, 0.35, -0.8)
            self._fills.append(fill)
        # Sunlight through the windows: fixed in the world, so banking swings it round.
        self._sun = self._attitudes[0].attachNewNode(DirectionalLight("sun"))
        self._sun.lookAt(0.8, 0.2, -0.57)
        # Daylight from the patient's window: bright sky or darker ground, as the bank tilts it.
        self._window_light = self._cabin.attachNewNode(PointLight("window-light"))
        self._window_light.setPos(WALL_X + 0.3, WIN_Y0, WIN_Z)
        self._window_light.node().setAttenuation(Vec3(1.0, 0.0, 3.0))
        for light in (self._ambient, *self._fills, self._sun, self._window_light):
            self._cabin.setLight(light)

    # -- per frame --------------------------------------------------------------------

    def animate(self, dt_s: float, time_s: float) -> None:
        from panda3d.core import Mat4, TextureStage, Vec3, Vec4

        altitude = max(0.0, 10 ** self.v("altitude_log") - 1.0)
        pitch = self.v("pitch_deg")
        speed = max(0.0, self.v("ground_speed"))
        turb = min(1.0, max(0.0, self.v("turbulence")))
        occupancy = min(1.0, max(0.0, self.v("cabin_occupancy")))
        shade_open = min(1.0, max(0.0, self.v("window_shade_open")))
        belt = min(1.0, max(0.0, self.v("seatbelt_sign")))
        light = min(1.0, max(0.0, self.v("light_level")))

        t = time_s
        shake = math.sin(t * 7.3) * 0.6 + math.sin(t * 13.1 + 1) * 0.3 + math.sin(t * 2.1) * 0.8
        jolt = (math.sin(t * 1.7) * math.sin(t * 0.63)) ** 3
        # The "jolt" event: a sudden drop and shudder that dies away, felt through the view.
        jolt_p = self.event_progress("jolt")
        if jolt_p is not None:
            turb = max(turb, 1.0 - jolt_p)
            jolt += -2.5 * math.exp(-12.0 * jolt_p) * math.cos(jolt_p * 40.0)
        chime = self.event_progress("chime")
        if chime is not None:  # the seat-belt sign lights with its chime, blinking twice
            belt = 1.0 if chime > 0.3 or math.sin(chime * 60.0) > 0 else 0.0
        if self.event_progress("announcement") is not None:  # "... fasten your seat belts"
            belt = 1.0
        # A thunderstorm's updraughts shake the cabin harder than clear-air turbulence.
        buffet = turb * (1.0 + STORM_BUFFET * min(1.0, max(0.0, self.v("storm"))))
        self._cabin.setPos(0.008 * buffet * shake, 0, 0.02 * buffet * (shake + 3 * jolt))
        self._cabin.setHpr(0, 0.5 * buffet * shake, 0.8 * buffet * math.sin(t * 3.1 + 2))

        airborne = min(1.0, altitude / 50.0)
        bank = (self.v("bank_deg") + airborne * 1.2 * math.sin(t * 0.11)
                + 2.5 * turb * math.sin(t * 0.9) + 6 * turb * jolt)
        self._bank_now_deg = bank
        # The world turns the other way round the cabin: left wing down lifts the left horizon.
        for attitude in self._attitudes:
            attitude.setHpr(0, -pitch + 0.8 * turb * shake, bank)
        for world in self._worlds:
            world.setZ(-altitude - GROUND_BELOW_FLOOR_M - 4 * turb * jolt)
        self._ground_offset_m = (self._ground_offset_m + speed * dt_s) % (
            GROUND_TEX_M * CLOUD_TEX_M * AIRPORT_TILE_M)
        ts = TextureStage.getDefault()
        self._ground.setTexOffset(ts, 0, (self._ground_offset_m / GROUND_TEX_M) % 1.0)
        self._clouds.setTexOffset(ts, 0, (0.8 * self._ground_offset_m / CLOUD_TEX_M) % 1.0)
        if altitude < AIRPORT_MAX_ALT_M:
            self._airport.show()
            self._right_apron.show()
            self._airport.setY(-(self._ground_offset_m % AIRPORT_TILE_M))
        else:
            self._airport.hide()
            self._right_apron.hide()

        # Weather: turbulence brings grey skies; cruise altitude a deeper blue; a storm
        # darkens the sky, runs rain over the window and lights it with lightning.
        high = min(1.0, altitude / 8000.0)
        rain = min(1.0, max(0.0, self.v("storm")))
        storm = max(min(1.0, max(0.0, (turb - 0.2) / 0.8)), rain)
        tint = np.array([1.0 - 0.15 * high, 1.0 - 0.08 * high, 1.0])
        tint = tint * (1 - storm) + np.array([0.72, 0.75, 0.82]) * storm
        tint = tint * (1.0 - 0.55 * rain)
        flash = lightning(t, rain)
        tint = tint + flash * (np.array([1.9, 1.9, 2.1]) - tint)
        if rain > 0.01:
            self._rain.show()
            self._rain.setAlphaScale(min(1.0, 1.2 * rain))
            self._rain.setTexOffset(ts, 0.02 * math.sin(t * 0.7), -(t * 0.9) % 1.0)
        else:
            self._rain.hide()
        self._sky.setColorScale(Vec4(*tint.tolist(), 1.0))
        haze = HAZE * tint
        self._fog.setColor(*haze.tolist())
        self._fog.setExpDensity(4.5e-5 + 3e-5 * storm)
        # Climbing through the deck, then it stays ~2 km below as at cruise it would.
        deck_m = CLOUD_Z_M + max(0.0, altitude - CLOUD_Z_M - 600.0) * 0.8
        self._clouds.setZ(deck_m - CLOUD_Z_M)
        cloud = (0.82 if altitude < deck_m else 1.0) * (1.0 - 0.35 * storm)
        self._clouds.setColorScale(cloud, cloud, cloud * 1.02, 1.0)
        self._wing_root.setColorScale(*(0.85 + 0.15 * tint).tolist(), 1.0)

        self._show_passengers(bisect.bisect_left(self._pax_ranks, occupancy))
        if shade_open > 0.995:
            self._shades.hide()
        else:
            self._shades.show()
            self._shades.setZ(shade_open * SHADE_TRAVEL_M)

        level = 0.28 + 0.72 * belt
        dim = 0.45 + 0.55 * light
        self._signs.setColorScale(level * dim, level * (0.72 + 0.28 * belt) * dim,
                                  level * (0.55 + 0.45 * belt) * dim, 1)
        # Dimmed cabins switch to blue mood lighting.
        warm, mood = np.array([1.0, 0.97, 0.9]), np.array([0.45, 0.5, 0.95])
        cove = (warm * light + mood * (1 - light)) * (0.35 + 0.65 * light)
        self._strips.setColorScale(*cove.tolist(), 1.0)
        ambient = (np.array([0.62, 0.61, 0.58]) * light + np.array([0.1, 0.11, 0.18]) * (1 - light))
        self._ambient.node().setColor(Vec4(*ambient.tolist(), 1))
        for fill in self._fills:
            fill.node().setColor(Vec4(*(cove * 0.42).tolist(), 1))
        daylight = (1.0 - 0.6 * storm + 1.5 * flash) * (0.3 + 0.7 * shade_open)
        sun = 0.4 * daylight
        self._sun.node().setColor(Vec4(sun, sun * 0.97, sun * 0.9, 1))
        # What the window faces: banking left (+) turns it down to the ground.
        ground = min(1.0, max(0.0, 0.5 + (bank + pitch * 0.3) / 20.0)) * airborne
        window = (np.array([0.32, 0.35, 0.4]) * (1 - ground)
                  + np.array([0.15, 0.16, 0.14]) * ground) * daylight
        self._window_light.node().setColor(Vec4(*window.tolist(), 1))

        # The wing flexes with gusts; flaps run out for take-off and landing.
        flex = airborne * (0.4 + turb * (1.6 * math.sin(t * 2.3) + 2.5 * jolt))
        self._wing_root.setR(flex)
        point, axis = self._hinge
        p = Vec3(*point.tolist())
        self._flaps.setMat(Mat4.translateMat(-p) * Mat4.rotateMat(-self.v("flaps_deg"),
                                                                 Vec3(*axis.tolist()))
                           * Mat4.translateMat(p))

    def _build_rain(self, cabin: NodePath) -> None:
        """Rain running over the patient's window pane, shown as the storm rises."""
        from vrexposure.render import geometry as g

        rng = np.random.default_rng(11)
        h, w = 256, 96
        img = np.zeros((h, w, 4), np.uint8)
        img[..., :3] = (215, 222, 232)
        alpha = np.zeros((h, w))
        for _ in range(70):  # streaks, slanted by the airflow, and beads
            x0, y0 = rng.uniform(0, w), rng.uniform(0, h)
            length = rng.uniform(12, 60)
            for k in range(int(length)):
                x, y = int(x0 + 0.35 * k) % w, int(y0 + k) % h
                alpha[y, x] = max(alpha[y, x], 0.55 * (1 - k / length) + 0.2)
        for _ in range(120):
            x, y = int(rng.uniform(0, w - 2)), int(rng.uniform(0, h - 2))
            alpha[y:y + 2, x:x + 2] = np.maximum(alpha[y:y + 2, x:x + 2], 0.8)
        img[..., 3] = (np.clip(alpha, 0, 1) * 255).astype(np.uint8)
        pane_x = WALL_X - RECESS_M + 0.004  # just inside the pane, behind the bezel
        (hy, hz) = (WIN_HALF[0] + 0.02, WIN_HALF[1] + 0.02)
        rain = g.MeshBuilder()
        rain.quad([(pane_x, WIN_Y0 - hy, WIN_Z - hz), (pane_x, WIN_Y0 + hy, WIN_Z - hz),
                   (pane_x, WIN_Y0 + hy, WIN_Z + hz), (pane_x, WIN_Y0 - hy, WIN_Z + hz)],
                  (1, 1, 1, 1),
                  uv_rect=(0.0, 0.0, 1.0, 1.4))
        node = rain.attach(cabin, "rain-on-window")
        node.setTexture(g.texture_from_array("rain", img))
        g.set_transparent(node)
        g.set_unlit(node)
        node.setBin("fixed", 50)  # over the view outside, which is drawn after the cabin
        node.hide()
        self._rain = node

    def _show_passengers(self, count: int) -> None:
        """Draw the first ``count`` passengers (by rank): a shorter index range, no new data."""
        if count == self._pax_shown:
            return
        self._pax_shown = count
        if count == 0:
            self._passengers.hide()
            return
        self._passengers.show()
        prim = self._pax_geom_node.modifyGeom(0).modifyPrimitive(0)
        prim.setVertices(self._pax_indices, self._pax_index_counts[count])

    # -- what the engine asks ---------------------------------------------------------

    def stimulus_world_position(self) -> tuple[float, float, float] | None:
        return (WALL_X - RECESS_M, WIN_Y0, WIN_Z)

    def eye_position(self) -> tuple[float, float, float]:
        return EYE

    def view_hpr(self) -> tuple[float, float, float]:
        return (26.0, -3.0, 0.0)


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
        float_param("storm", 0.0, 0.0, 1.0, "",
                    "Storm outside: dark sky, rain on the window, lightning"),
        float_param("cabin_occupancy", 0.5, 0.0, 1.0, "", "Share of seats taken"),
        bool_param("window_shade_open", True, "The window next to the patient is open"),
        bool_param("seatbelt_sign", False, "Seatbelt sign lit (with chime)"),
        float_param("engine_volume", 0.4, 0.0, 1.0, "", "Engine hum volume"),
        float_param("light_level", 1.0, 0.2, 1.0, "", "Cabin light"),
    ),
    events=(
        EventSpec("jolt", "Turbulence jolt: a sudden drop and shudder", "j", 4.0),
        EventSpec("chime", "Seat-belt sign chimes on", "b", 3.0),
        EventSpec("announcement", "The captain's announcement (seat belts on)", "a", 7.0),
    ),
    factory=FlyingScene,
)
