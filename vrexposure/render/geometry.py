"""Procedural geometry, textures and lights for the scenes (Panda3D, numpy).

:class:`MeshBuilder` collects coloured, lit, textured primitives (boxes,
cylinders, spheres, height-field grids, quads) under transforms and turns them
into one ``GeomNode``: many static pieces become one draw call. Helpers below
make textures from numpy arrays (planks, tiles, noise, facades …), text cards
and lights.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import cache

import numpy as np
from numpy.typing import NDArray
from panda3d.core import (
    AmbientLight,
    ColorBlendAttrib,
    DirectionalLight,
    Geom,
    GeomNode,
    GeomTriangles,
    GeomVertexArrayFormat,
    GeomVertexData,
    GeomVertexFormat,
    Material,
    NodePath,
    PointLight,
    SamplerState,
    Spotlight,
    TextNode,
    Texture,
    TransformState,
    TransparencyAttrib,
    Vec3,
    Vec4,
)

Color = tuple[float, float, float] | tuple[float, float, float, float]
FloatArray = NDArray[np.float32]
ColorFn = Callable[[FloatArray], FloatArray]


def rgba(color: Color) -> tuple[float, float, float, float]:
    if len(color) == 4:
        return (color[0], color[1], color[2], color[3])
    return (color[0], color[1], color[2], 1.0)


def shade(color: Color, factor: float) -> tuple[float, float, float, float]:
    """``color`` with RGB multiplied by ``factor`` (alpha kept)."""
    r, g, b, a = rgba(color)
    return (min(1.0, r * factor), min(1.0, g * factor), min(1.0, b * factor), a)


def mix(a: Color, b: Color, t: float) -> tuple[float, float, float, float]:
    ca, cb = rgba(a), rgba(b)
    return (
        ca[0] + (cb[0] - ca[0]) * t,
        ca[1] + (cb[1] - ca[1]) * t,
        ca[2] + (cb[2] - ca[2]) * t,
        ca[3] + (cb[3] - ca[3]) * t,
    )


@cache
def _vertex_format() -> GeomVertexFormat:
    array = GeomVertexArrayFormat()
    array.addColumn("vertex", 3, Geom.NT_float32, Geom.C_point)
    array.addColumn("normal", 3, Geom.NT_float32, Geom.C_normal)
    array.addColumn("color", 4, Geom.NT_float32, Geom.C_color)
    array.addColumn("texcoord", 2, Geom.NT_float32, Geom.C_texcoord)
    return GeomVertexFormat.registerFormat(GeomVertexFormat(array))


def transform(
    pos: Sequence[float] = (0.0, 0.0, 0.0),
    hpr: Sequence[float] = (0.0, 0.0, 0.0),
    scale: float | Sequence[float] = 1.0,
) -> NDArray[np.float64]:
    """A 4×4 row-vector matrix (``p @ M``) in Panda3D's position/HPR/scale convention."""
    s = (scale, scale, scale) if isinstance(scale, int | float) else tuple(scale)
    mat = TransformState.makePosHprScale(Vec3(*pos), Vec3(*hpr), Vec3(*s)).getMat()
    return np.array([[mat.getCell(r, c) for c in range(4)] for r in range(4)], dtype=np.float64)


def segment_transform(p0: Sequence[float], p1: Sequence[float]) -> NDArray[np.float64]:
    """Matrix mapping the unit Z axis (0,0,0)-(0,0,1) onto the segment p0-p1."""
    a, b = np.asarray(p0, float), np.asarray(p1, float)
    d = b - a
    length = float(np.linalg.norm(d))
    if length < 1e-9:
        return transform(tuple(a.tolist()), scale=(1.0, 1.0, 1e-6))
    z = d / length
    helper = np.array([0.0, 0.0, 1.0]) if abs(z[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    x = np.cross(helper, z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    m = np.eye(4)
    m[0, :3], m[1, :3], m[2, :3], m[3, :3] = x, y, z * length, a
    return m


class MeshBuilder:
    """Accumulates triangles (position, normal, colour, uv) and builds one GeomNode."""

    def __init__(self) -> None:
        self._verts: list[NDArray[np.float32]] = []
        self._tris: list[NDArray[np.uint32]] = []
        self._count = 0

    @property
    def empty(self) -> bool:
        return self._count == 0

    def add(
        self,
        positions: NDArray[np.floating],
        normals: NDArray[np.floating],
        uvs: NDArray[np.floating],
        triangles: NDArray[np.integer],
        color: Color | ColorFn = (1.0, 1.0, 1.0, 1.0),
        mat: NDArray[np.float64] | None = None,
    ) -> None:
        """Add raw vertices (local space) under the optional row-vector matrix ``mat``."""
        pos = np.asarray(positions, np.float64)
        nrm = np.asarray(normals, np.float64)
        if mat is not None:
            pos = pos @ mat[:3, :3] + mat[3, :3]
            inv_t = np.linalg.inv(mat[:3, :3]).T
            nrm = nrm @ inv_t
            lengths = np.linalg.norm(nrm, axis=1, keepdims=True)
            nrm = nrm / np.maximum(lengths, 1e-12)
        n = len(pos)
        data = np.empty((n, 12), np.float32)
        data[:, 0:3] = pos
        data[:, 3:6] = nrm
        if callable(color):
            data[:, 6:10] = color(pos.astype(np.float32))
        else:
            data[:, 6:10] = rgba(color)
        data[:, 10:12] = uvs
        self._verts.append(data)
        self._tris.append(np.asarray(triangles, np.uint32).reshape(-1) + self._count)
        self._count += n

    # -- primitives ------------------------------------------------------------------

    def box(
        self,
        lo: Sequence[float],
        hi: Sequence[float],
        color: Color | ColorFn = (1, 1, 1, 1),
        mat: NDArray[np.float64] | None = None,
        uv_m: float | None = None,
        faces: str = "xXyYzZ",
    ) -> None:
        """Axis-aligned box from ``lo`` to ``hi`` (before ``mat``).

        ``uv_m``: metres per texture repeat (world-scaled uvs); None maps 0..1 on each face.
        ``faces`` selects sides: x/X = -x/+x, y/Y, z/Z.
        """
        x0, y0, z0 = lo
        x1, y1, z1 = hi
        quads = {
            "x": ((x0, y1, z0), (x0, y0, z0), (x0, y0, z1), (x0, y1, z1), (-1, 0, 0)),
            "X": ((x1, y0, z0), (x1, y1, z0), (x1, y1, z1), (x1, y0, z1), (1, 0, 0)),
            "y": ((x0, y0, z0), (x1, y0, z0), (x1, y0, z1), (x0, y0, z1), (0, -1, 0)),
            "Y": ((x1, y1, z0), (x0, y1, z0), (x0, y1, z1), (x1, y1, z1), (0, 1, 0)),
            "z": ((x0, y1, z0), (x1, y1, z0), (x1, y0, z0), (x0, y0, z0), (0, 0, -1)),
            "Z": ((x0, y0, z1), (x1, y0, z1), (x1, y1, z1), (x0, y1, z1), (0, 0, 1)),
        }
        for face in faces:
            *corners, normal = quads[face]
            self.quad(corners, color, mat, uv_m=uv_m, normal=normal)

    def quad(
        self,
        corners: Sequence[Sequence[float]],
        color: Color | ColorFn = (1, 1, 1, 1),
        mat: NDArray[np.float64] | None = None,
        uv_m: float | None = None,
        normal: Sequence[float] | None = None,
        subdiv: tuple[int, int] = (1, 1),
        uv_rect: tuple[float, float, float, float] = (0.0, 0.0, 1.0, 1.0),
    ) -> None:
        """A planar quad, corners counter-clockwise seen from the front, optionally subdivided."""
        c = np.asarray(corners, np.float64)
        if normal is None:
            nrm = np.cross(c[1] - c[0], c[3] - c[0])
            nrm = nrm / max(float(np.linalg.norm(nrm)), 1e-12)
        else:
            nrm = np.asarray(normal, np.float64)
        nu, nv = subdiv
        s = np.linspace(0.0, 1.0, nu + 1)
        t = np.linspace(0.0, 1.0, nv + 1)
        ss, tt = np.meshgrid(s, t)
        ss, tt = ss.reshape(-1, 1), tt.reshape(-1, 1)
        pos = (
            c[0] * (1 - ss) * (1 - tt)
            + c[1] * ss * (1 - tt)
            + c[2] * ss * tt
            + c[3] * (1 - ss) * tt
        )
        if uv_m:
            width = float(np.linalg.norm(c[1] - c[0]))
            height = float(np.linalg.norm(c[3] - c[0]))
            uvs = np.hstack([ss * width / uv_m, tt * height / uv_m])
        else:
            u0, v0, u1, v1 = uv_rect
            uvs = np.hstack([u0 + ss * (u1 - u0), v0 + tt * (v1 - v0)])
        self.add(pos, np.tile(nrm, (len(pos), 1)), uvs, _grid_triangles(nu, nv), color, mat)

    def grid(
        self,
        x_range: tuple[float, float],
        y_range: tuple[float, float],
        cells: tuple[int, int],
        height: Callable[[NDArray[np.float64], NDArray[np.float64]], NDArray[np.float64]]
        | None = None,
        color: Color | ColorFn = (1, 1, 1, 1),
        uv_m: float = 1.0,
        mat: NDArray[np.float64] | None = None,
    ) -> None:
        """A height field z = height(x, y) over a rectangle, facing +Z, with smooth normals."""
        nx, ny = cells
        xs = np.linspace(x_range[0], x_range[1], nx + 1)
        ys = np.linspace(y_range[0], y_range[1], ny + 1)
        gx, gy = np.meshgrid(xs, ys)
        gz = height(gx, gy) if height is not None else np.zeros_like(gx)
        dzdy, dzdx = np.gradient(gz, ys, xs)
        nrm = np.dstack([-dzdx, -dzdy, np.ones_like(gz)])
        nrm /= np.linalg.norm(nrm, axis=2, keepdims=True)
        pos = np.dstack([gx, gy, gz]).reshape(-1, 3)
        uvs = np.dstack([gx / uv_m, gy / uv_m]).reshape(-1, 2)
        self.add(pos, nrm.reshape(-1, 3), uvs, _grid_triangles(nx, ny), color, mat)

    def cylinder(
        self,
        radius: float,
        height: float,
        color: Color | ColorFn = (1, 1, 1, 1),
        mat: NDArray[np.float64] | None = None,
        segments: int = 12,
        top_radius: float | None = None,
        caps: bool = True,
        uv_m: float | None = None,
    ) -> None:
        """A (tapered) cylinder along +Z from 0 to ``height``."""
        r1 = radius if top_radius is None else top_radius
        a = np.linspace(0.0, 2 * math.pi, segments + 1)
        ca, sa = np.cos(a), np.sin(a)
        slope = (radius - r1) / max(height, 1e-9)
        ring_n = np.stack([ca, sa, np.full_like(a, slope)], axis=1)
        ring_n /= np.linalg.norm(ring_n, axis=1, keepdims=True)
        bottom = np.stack([radius * ca, radius * sa, np.zeros_like(a)], axis=1)
        top = np.stack([r1 * ca, r1 * sa, np.full_like(a, height)], axis=1)
        pos = np.vstack([bottom, top])
        nrm = np.vstack([ring_n, ring_n])
        u = a / (2 * math.pi) * (2 * math.pi * radius / uv_m if uv_m else 1.0)
        v1 = height / uv_m if uv_m else 1.0
        uvs = np.vstack([np.stack([u, np.zeros_like(u)], 1), np.stack([u, np.full_like(u, v1)], 1)])
        k = segments + 1
        idx = np.arange(segments)
        tris = np.stack([idx, idx + 1, idx + 1 + k, idx, idx + 1 + k, idx + k], axis=1)
        self.add(pos, nrm, uvs, tris, color, mat)
        if caps:
            for z, r, up in ((height, r1, True), (0.0, radius, False)):
                if r <= 0:
                    continue
                ring = np.stack([r * ca[:-1], r * sa[:-1], np.full(segments, z)], axis=1)
                cpos = np.vstack([[0.0, 0.0, z], ring])
                cn = np.tile([0.0, 0.0, 1.0 if up else -1.0], (segments + 1, 1))
                cuv = np.vstack([[0.5, 0.5], 0.5 + 0.5 * np.stack([ca[:-1], sa[:-1]], 1)])
                j = np.arange(segments)
                if up:
                    ctris = np.stack([np.zeros(segments, int), 1 + j, 1 + (j + 1) % segments], 1)
                else:
                    ctris = np.stack([np.zeros(segments, int), 1 + (j + 1) % segments, 1 + j], 1)
                self.add(cpos, cn, cuv, ctris, color, mat)

    def tube(
        self,
        p0: Sequence[float],
        p1: Sequence[float],
        r0: float,
        r1: float | None = None,
        color: Color | ColorFn = (1, 1, 1, 1),
        segments: int = 8,
        caps: bool = True,
    ) -> None:
        """A tapered cylinder between two points."""
        self.cylinder(
            r0, 1.0, color, segment_transform(p0, p1), segments, r0 if r1 is None else r1, caps
        )

    def sphere(
        self,
        radius: float | Sequence[float],
        color: Color | ColorFn = (1, 1, 1, 1),
        mat: NDArray[np.float64] | None = None,
        rings: int = 8,
        segments: int = 12,
        center: Sequence[float] = (0.0, 0.0, 0.0),
        inside: bool = False,
        z_min: float = -1.0,
    ) -> None:
        """A sphere or ellipsoid (``radius`` = (rx, ry, rz)); ``inside`` faces inwards (sky domes).

        ``z_min`` in [-1, 1] cuts the bottom off (a dome for 0).
        """
        rx, ry, rz = (radius,) * 3 if isinstance(radius, int | float) else tuple(radius)
        theta = np.linspace(math.asin(max(-1.0, z_min)), math.pi / 2, rings + 1)
        phi = np.linspace(0.0, 2 * math.pi, segments + 1)
        tt, pp = np.meshgrid(theta, phi, indexing="ij")
        unit = np.stack([np.cos(tt) * np.cos(pp), np.cos(tt) * np.sin(pp), np.sin(tt)], axis=-1)
        unit = unit.reshape(-1, 3)
        pos = unit * [rx, ry, rz] + np.asarray(center, float)
        nrm = unit / [rx, ry, rz]
        nrm /= np.linalg.norm(nrm, axis=1, keepdims=True)
        uvs = np.stack(
            [pp.reshape(-1) / (2 * math.pi), (tt.reshape(-1) + math.pi / 2) / math.pi], 1
        )
        tris = _grid_triangles(segments, rings)
        if inside:
            tris = tris[:, [0, 2, 1]]
            nrm = -nrm
        self.add(pos, nrm, uvs, tris, color, mat)

    def add_rows(self, rows: NDArray[np.float32], triangles: NDArray[np.integer]) -> None:
        """Add vertex rows already in this builder's layout (see :meth:`arrays`)."""
        self._verts.append(np.asarray(rows, np.float32).reshape(-1, 12))
        self._tris.append(np.asarray(triangles, np.uint32).reshape(-1) + self._count)
        self._count += len(self._verts[-1])

    # -- output ----------------------------------------------------------------------

    def arrays(self) -> tuple[NDArray[np.float32], NDArray[np.uint32]]:
        """The vertex rows (n, 12: position, normal, RGBA, uv) and the triangle indices."""
        if self.empty:
            return np.zeros((0, 12), np.float32), np.zeros(0, np.uint32)
        return np.vstack(self._verts).astype(np.float32), np.concatenate(self._tris)

    def node(self, name: str = "mesh", usage: int = Geom.UH_static) -> GeomNode:
        """One GeomNode holding every triangle added (``usage``: a ``Geom.UH_*`` hint)."""
        node = GeomNode(name)
        if self.empty:
            return node
        verts, tris = self.arrays()
        vdata = GeomVertexData(name, _vertex_format(), usage)
        vdata.uncleanSetNumRows(len(verts))
        memoryview(vdata.modifyArray(0)).cast("B")[:] = verts.astype(np.float32).tobytes()
        prim = GeomTriangles(Geom.UH_static)  # the triangles never change, only vertices
        prim.setIndexType(Geom.NT_uint32)
        handle = prim.modifyVertices()
        handle.uncleanSetNumRows(len(tris))
        memoryview(handle).cast("B")[:] = tris.astype(np.uint32).tobytes()
        geom = Geom(vdata)
        geom.addPrimitive(prim)
        node.addGeom(geom)
        return node

    def attach(self, parent: NodePath, name: str = "mesh") -> NodePath:
        """Build the GeomNode and parent it; an empty builder gives an empty node."""
        return parent.attachNewNode(self.node(name))


def vertex_rows(node: GeomNode) -> NDArray[np.float32]:
    """The writable vertex rows (n, 12 float32: position, normal, RGBA, uv) of a one-Geom node."""
    vdata = node.modifyGeom(0).modifyVertexData()
    # Through a byte view: numpy reads Panda3D's per-row struct format slowly.
    raw = memoryview(vdata.modifyArray(0)).cast("B")
    return np.frombuffer(raw, np.float32).reshape(-1, 12)


def _grid_triangles(nu: int, nv: int) -> NDArray[np.int64]:
    """Triangles of a (nu+1)×(nv+1) vertex grid stored row by row (v rows of u)."""
    i, j = np.meshgrid(np.arange(nu), np.arange(nv))
    a = (j * (nu + 1) + i).reshape(-1)
    b, c, d = a + 1, a + nu + 2, a + nu + 1
    return np.stack([a, b, c, a, c, d], axis=1).reshape(-1, 3)


# --------------------------------------------------------------------------- textures


def texture_from_array(
    name: str, image: NDArray[np.uint8], repeat: bool = True, mipmap: bool = True
) -> Texture:
    """A Panda3D texture from an (H, W, 3|4) uint8 image whose row 0 is the top."""
    height, width, comps = image.shape
    tex = Texture(name)
    fmt = Texture.F_rgba if comps == 4 else Texture.F_rgb
    tex.setup2dTexture(width, height, Texture.T_unsigned_byte, fmt)
    # Panda3D stores rows bottom-up in BGR(A) order.
    flipped = np.ascontiguousarray(image[::-1, :, [2, 1, 0, 3] if comps == 4 else [2, 1, 0]])
    tex.setRamImage(flipped.tobytes())
    wrap = SamplerState.WM_repeat if repeat else SamplerState.WM_clamp
    tex.setWrapU(wrap)
    tex.setWrapV(wrap)
    tex.setMagfilter(SamplerState.FT_linear)
    tex.setMinfilter(SamplerState.FT_linear_mipmap_linear if mipmap else SamplerState.FT_linear)
    return tex


def value_noise(
    size: int, cells: int, seed: int, octaves: int = 4, persistence: float = 0.5
) -> NDArray[np.float64]:
    """Tileable fractal value noise in [0, 1], shape (size, size)."""
    rng = np.random.default_rng(seed)
    out = np.zeros((size, size))
    amp, total = 1.0, 0.0
    for octave in range(octaves):
        n = cells * 2**octave
        lattice = rng.random((n, n))
        coords = np.arange(size) * n / size
        i0 = np.floor(coords).astype(int)
        f = coords - i0
        f = f * f * (3 - 2 * f)
        i1 = (i0 + 1) % n
        rows = lattice[i0][:, i0] * (1 - f)[None, :] + lattice[i0][:, i1] * f[None, :]
        rows1 = lattice[i1][:, i0] * (1 - f)[None, :] + lattice[i1][:, i1] * f[None, :]
        out += amp * (rows * (1 - f)[:, None] + rows1 * f[:, None])
        total += amp
        amp *= persistence
    return out / total


def tint(gray: NDArray[np.float64], dark: Color, light: Color) -> NDArray[np.uint8]:
    """Map a [0, 1] image onto a colour ramp from ``dark`` to ``light`` (RGB uint8)."""
    d = np.asarray(rgba(dark)[:3])
    li = np.asarray(rgba(light)[:3])
    img = d + (li - d) * np.clip(gray, 0.0, 1.0)[..., None]
    return (np.clip(img, 0.0, 1.0) * 255).astype(np.uint8)


@cache
def noise_texture(seed: int, dark: Color, light: Color, cells: int = 4, size: int = 128) -> Texture:
    return texture_from_array(f"noise{seed}", tint(value_noise(size, cells, seed), dark, light))


@cache
def planks_texture(base: Color = (0.55, 0.36, 0.2), seed: int = 1) -> Texture:
    """Wooden floor boards: 4 boards across, staggered joints, grain."""
    size = 256
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    board = np.floor(x * 4).astype(int)
    grain = value_noise(size, 2, seed, 3)
    streak = 0.5 + 0.5 * np.sin((y * 40 + grain * 6) * math.pi)
    tone = rng.uniform(0.8, 1.15, 4)[board]
    offset = rng.random(4)[board]
    joint = (np.abs(((y + offset) % 0.5) - 0.0) < 0.006) | (np.abs((x * 4) % 1.0) < 0.02)
    g = (0.8 + 0.08 * streak + 0.2 * grain) * tone
    g = np.where(joint, 0.45, g)
    img = np.asarray(rgba(base)[:3]) * g[..., None]
    return texture_from_array(f"planks{seed}", (np.clip(img, 0, 1) * 255).astype(np.uint8))


@cache
def tiles_texture(
    base: Color = (0.6, 0.6, 0.58), grout: Color = (0.35, 0.35, 0.33), n: int = 2, seed: int = 2
) -> Texture:
    """Square tiles (``n`` per texture side) with grout lines and mottling."""
    size = 256
    y, x = np.mgrid[0:size, 0:size] / size
    mott = value_noise(size, 8, seed, 3)
    rng = np.random.default_rng(seed)
    tone = rng.uniform(0.9, 1.08, (n, n))[np.floor(y * n).astype(int), np.floor(x * n).astype(int)]
    g = (0.85 + 0.25 * mott) * tone
    img = np.asarray(rgba(base)[:3]) * g[..., None]
    line = (np.abs(((x * n) % 1.0) - 0.5) > 0.485) | (np.abs(((y * n) % 1.0) - 0.5) > 0.485)
    img[line] = rgba(grout)[:3]
    return texture_from_array(f"tiles{seed}", (np.clip(img, 0, 1) * 255).astype(np.uint8))


@cache
def fabric_texture(base: Color, seed: int = 3) -> Texture:
    size = 64
    y, x = np.mgrid[0:size, 0:size]
    weave = 0.92 + 0.08 * ((x + y) % 2)
    g = weave * (0.85 + 0.3 * value_noise(size, 4, seed, 2))
    img = np.asarray(rgba(base)[:3]) * g[..., None]
    return texture_from_array(f"fabric{seed}", (np.clip(img, 0, 1) * 255).astype(np.uint8))


@cache
def rug_texture(field: Color, trellis: Color, seed: int = 5) -> Texture:
    """A tileable woven rug: a diamond trellis of thin lines on a mottled field."""
    size = 128
    y, x = (np.mgrid[0:size, 0:size] + 0.5) / size
    diamond = np.abs(x - 0.5) + np.abs(y - 0.5)  # 0 at the tile centre, 0.5 on the trellis
    line = np.clip(1.0 - np.abs(diamond - 0.5) * 24.0, 0.0, 1.0)
    motif = np.clip(1.0 - np.abs(diamond - 0.16) * 30.0, 0.0, 1.0) * 0.7  # a small inner diamond
    weave = 0.94 + 0.06 * ((np.mgrid[0:size, 0:size].sum(axis=0)) % 2)
    mottle = 0.9 + 0.2 * value_noise(size, 4, seed, 2)
    mix_t = np.maximum(line, motif)[..., None]
    img = (np.asarray(rgba(field)[:3]) * (1 - mix_t) + np.asarray(rgba(trellis)[:3]) * mix_t)
    img = img * (weave * mottle)[..., None]
    return texture_from_array(f"rug{seed}", (np.clip(img, 0, 1) * 255).astype(np.uint8))


@cache
def facade_texture(
    wall: Color, glass: Color, cols: int = 4, rows: int = 4, seed: int = 4, lit: float = 0.15
) -> Texture:
    """A building facade: ``cols``×``rows`` windows per texture, some lit."""
    size = 256
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    fx, fy = (x * cols) % 1.0, (y * rows) % 1.0
    window = (fx > 0.18) & (fx < 0.82) & (fy > 0.25) & (fy < 0.85)
    ci, ri = np.floor(x * cols).astype(int), np.floor(y * rows).astype(int)
    glow = rng.random((rows, cols)) < lit
    base = np.asarray(rgba(wall)[:3]) * (0.9 + 0.15 * value_noise(size, 8, seed, 2))[..., None]
    g = np.asarray(rgba(glass)[:3]) * (0.8 + 0.4 * (1 - fy))[..., None]
    g = np.where(glow[ri, ci][..., None], np.array([1.0, 0.85, 0.55]) * 0.9, g)
    img = np.where(window[..., None], g, base)
    sill = (fy > 0.2) & (fy < 0.25) & (fx > 0.15) & (fx < 0.85)
    img[sill] = np.asarray(rgba(wall)[:3]) * 1.15
    return texture_from_array(f"facade{seed}", (np.clip(img, 0, 1) * 255).astype(np.uint8))


@cache
def radial_texture(size: int = 64, power: float = 2.0) -> Texture:
    """A white disc fading to transparent at the rim (glows, soft shadows, light pools)."""
    y, x = np.mgrid[0:size, 0:size]
    r = np.hypot(x - (size - 1) / 2, y - (size - 1) / 2) / (size / 2)
    alpha = np.clip(1 - r, 0, 1) ** power
    img = np.dstack(
        [np.full_like(alpha, 255), np.full_like(alpha, 255), np.full_like(alpha, 255), alpha * 255]
    ).astype(np.uint8)
    return texture_from_array(f"radial{size}_{power}", img, repeat=False)


# --------------------------------------------------------------------------- node helpers


def set_unlit(np_: NodePath) -> NodePath:
    np_.setLightOff(1)
    return np_


def set_transparent(
    np_: NodePath, alpha: float | None = None, depth_write: bool = False
) -> NodePath:
    np_.setTransparency(TransparencyAttrib.M_alpha)
    if alpha is not None:
        np_.setAlphaScale(alpha)
    np_.setDepthWrite(depth_write)
    np_.setBin("transparent", 10)
    return np_


def set_additive(np_: NodePath) -> NodePath:
    """Additive blending (light cones, glows): never darkens what is behind."""
    np_.setAttrib(
        ColorBlendAttrib.make(
            ColorBlendAttrib.M_add, ColorBlendAttrib.O_incoming_alpha, ColorBlendAttrib.O_one
        )
    )
    np_.setDepthWrite(False)
    np_.setBin("fixed", 20)
    np_.setLightOff(1)
    return np_


def set_shiny(np_: NodePath, specular: float = 0.6, shininess: float = 40.0) -> NodePath:
    mat = Material()
    mat.setSpecular(Vec4(specular, specular, specular, 1))
    mat.setShininess(shininess)
    np_.setMaterial(mat, 1)
    return np_


def text_card(
    parent: NodePath,
    text: str,
    height_m: float,
    color: Color = (1, 1, 1, 1),
    pos: Sequence[float] = (0.0, 0.0, 0.0),
    hpr: Sequence[float] = (0.0, 0.0, 0.0),
    align: str = "center",
    card: Color | None = None,
    unlit: bool = True,
) -> NodePath:
    """A line of 3-D text facing -Y (readable from the front), ``height_m`` tall capitals."""
    node = TextNode(f"text-{text[:16]}")
    node.setText(text)
    node.setAlign(
        {"center": TextNode.A_center, "left": TextNode.A_left, "right": TextNode.A_right}[align]
    )
    node.setTextColor(*rgba(color))
    if card is not None:
        node.setCardColor(*rgba(card))
        node.setCardAsMargin(0.3, 0.3, 0.2, 0.2)
        node.setCardDecal(True)
    tnp = parent.attachNewNode(node)
    tnp.setScale(height_m / 0.7)
    tnp.setPos(*pos)
    tnp.setHpr(*hpr)
    if unlit:
        tnp.setLightOff(1)
    return tnp


# --------------------------------------------------------------------------- lights


def ambient_light(parent: NodePath, color: Color, name: str = "ambient") -> NodePath:
    light = parent.attachNewNode(AmbientLight(name))
    light.node().setColor(Vec4(*rgba(color)))
    parent.setLight(light)
    return light


def sun_light(parent: NodePath, color: Color, hpr: Sequence[float], name: str = "sun") -> NodePath:
    light = parent.attachNewNode(DirectionalLight(name))
    light.node().setColor(Vec4(*rgba(color)))
    light.setHpr(*hpr)
    parent.setLight(light)
    return light


def point_light(
    parent: NodePath,
    color: Color,
    pos: Sequence[float],
    attenuation: Sequence[float] = (1.0, 0.0, 0.15),
    name: str = "lamp",
    lit: NodePath | None = None,
) -> NodePath:
    light = parent.attachNewNode(PointLight(name))
    light.node().setColor(Vec4(*rgba(color)))
    light.node().setAttenuation(Vec3(*attenuation))
    light.setPos(*pos)
    (lit or parent).setLight(light)
    return light


def spot_light(
    parent: NodePath,
    color: Color,
    pos: Sequence[float],
    look_at: Sequence[float],
    fov_deg: float = 40.0,
    exponent: float = 8.0,
    name: str = "spot",
    lit: NodePath | None = None,
) -> NodePath:
    light = parent.attachNewNode(Spotlight(name))
    light.node().setColor(Vec4(*rgba(color)))
    light.node().getLens().setFov(fov_deg)
    light.node().setExponent(exponent)
    light.setPos(*pos)
    light.lookAt(Vec3(*look_at))
    (lit or parent).setLight(light)
    return light


def set_light_color(light: NodePath, color: Color) -> None:
    light.node().setColor(Vec4(*rgba(color)))
