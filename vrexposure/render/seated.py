"""Geometry for a seated patient: leave out what can never be seen, move parts cheaply.

The patient sits (or stands) in one place, so the far side of a tree crown, a
hill or a building never faces the eye; :func:`facing_only` drops those
triangles once at build time (exact for a convex region of eye positions), and
:func:`drop_buried` drops triangles hidden inside a mesh's own lumps. Parts
that only sway or slide (trees, clouds, cars) move together in one Geom with
:class:`SwayParts`, cheaper per frame than a general
:class:`~vrexposure.render.batch.RigidBatch`. On a software renderer every
vertex and every shaded pixel costs CPU time in the frame.
"""

from __future__ import annotations

import itertools
import math
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from panda3d.core import GeomNode, NodePath

    from vrexposure.render.geometry import MeshBuilder


def box_corners(lo: Any, hi: Any) -> Any:
    """The eight corners (8, 3) of the axis-aligned box ``lo``..``hi``."""
    import numpy as np

    return np.array(list(itertools.product(*zip(lo, hi, strict=True))), float)


def facing_only(builder: MeshBuilder, eyes: Any) -> MeshBuilder:
    """``builder`` without the triangles that face away from every eye position.

    ``eyes`` (m, 3): corners of the region the eye can be in, in the builder's
    frame. The patient sits still, so the far side of a tree crown or a hill is
    never seen, yet it would cost vertex work every frame. Whether a plane faces
    a point is linear in the point, so testing the corners of a convex region is
    exact. Degenerate triangles (sphere poles) go too.
    """
    import numpy as np

    from vrexposure.render import geometry as g

    rows, tris = builder.arrays()
    tri = tris.reshape(-1, 3)
    pos = rows[:, 0:3].astype(np.float64)
    a, b, c = pos[tri[:, 0]], pos[tri[:, 1]], pos[tri[:, 2]]
    normal = np.cross(b - a, c - a)
    length = np.linalg.norm(normal, axis=1)
    height = ((np.asarray(eyes)[None, :, :] - a[:, None, :]) * normal[:, None, :]).sum(axis=2)
    keep = (length > 1e-9) & (height.max(axis=1) > 0.0)
    used, remapped = np.unique(tri[keep], return_inverse=True)
    out = g.MeshBuilder()
    out.add_rows(rows[used], remapped.reshape(-1, 3))
    return out


def drop_buried(builder: MeshBuilder, blobs: list[tuple[Any, Any, int, int]]) -> MeshBuilder:
    """``builder`` without the triangles buried inside one of its ellipsoid ``blobs``.

    ``blobs``: (centre, radii, rings, segments) of the closed, opaque ellipsoids
    (``MeshBuilder.sphere``) the mesh is partly made of: a tree crown's lumps, a
    cloud's puffs. A triangle with all three corners inside one convex blob is
    inside it and never seen. A blob is a polygon inside its true surface, so a
    point counts as inside only within the polygon's inscribed ellipsoid.
    """
    import numpy as np

    from vrexposure.render import geometry as g

    rows, tris = builder.arrays()
    tri = tris.reshape(-1, 3)
    buried = np.zeros(len(tri), bool)
    for centre, radii, rings, segments in blobs:
        # Faces come closest to the centre halfway between rings and between segments.
        inscribed = 0.98 * math.cos(math.pi / (2 * rings)) * math.cos(math.pi / segments)
        scaled = (rows[:, 0:3] - np.asarray(centre)) / (np.asarray(radii) * inscribed)
        inside = (scaled**2).sum(axis=1) < 1.0
        buried |= inside[tri].all(axis=1)
    used, remapped = np.unique(tri[~buried], return_inverse=True)
    out = g.MeshBuilder()
    out.add_rows(rows[used], remapped.reshape(-1, 3))
    return out


def dynamic_node(builder: MeshBuilder, parent: NodePath, name: str) -> tuple[NodePath, GeomNode]:
    """``builder`` attached as a Geom whose vertices change every frame (never culled)."""
    from panda3d.core import Geom, OmniBoundingVolume

    node = builder.node(name, usage=Geom.UH_dynamic)
    node.setBounds(OmniBoundingVolume())  # no bounds to recompute as the vertices move
    node.setFinal(True)
    return parent.attachNewNode(node), node


class SwayParts:
    """Rigid parts that only tilt sideways (roll) and slide, all in one Geom.

    Each part sits at ``pos`` turned by ``heading_deg``; :meth:`update` rolls every
    part about its own forward (y) axis and may move it. That is all swaying
    trees and drifting clouds need, and it is a few vectorised multiply-adds over
    the vertices: :class:`~vrexposure.render.batch.RigidBatch` (general matrices)
    costs about 0.1 ms per distinct shape per frame. Where shaders run, the
    vertices stay in the parts' own frames and a vertex shader (``sway`` mode)
    rolls, turns and places them from one texel per part.
    """

    def __init__(self, name: str, roll_normals: bool = True) -> None:
        # roll_normals=False: normals stay upright, half the work per frame; a few degrees
        # of sway change the shading by a few per cent.
        self.name = name
        self.roll_normals = roll_normals
        self._parts: list[tuple[Any, Any, tuple[float, float, float], float]] = []
        self._upright: Any = None  # positions and normals at zero roll, before translation
        self._placed: Any = None  # the offsets last written, per vertex (3, n)
        self._parts_texture: Any = None  # set when the GPU moves the parts
        self._path: Any = None
        self._shader: Any = None
        self._roll_rad: Any = None  # (parts,) as last updated (GPU path)

    @property
    def on_gpu(self) -> bool:
        """Whether a vertex shader moves the parts (else numpy rewrites the vertices)."""
        return self._parts_texture is not None

    @property
    def num_parts(self) -> int:
        return len(self._parts)

    def add(self, part: MeshBuilder, pos: tuple[float, float, float],
            heading_deg: float = 0.0) -> int:
        """Add a part built in its own frame (origin = pivot); returns its index."""
        rows, tris = part.arrays()
        self._parts.append((rows, tris, pos, heading_deg))
        return len(self._parts) - 1

    def attach(self, parent: NodePath) -> NodePath:
        import numpy as np
        from panda3d.core import Geom, OmniBoundingVolume

        from vrexposure.render import geometry as g

        builder = g.MeshBuilder()
        owner: list[Any] = []
        for k, (rows, tris, _pos, _heading) in enumerate(self._parts):
            builder.add_rows(rows, tris)
            owner.append(np.full(len(rows), k))
        self._owner = np.concatenate(owner)
        rest = np.vstack([rows for rows, *_ in self._parts])
        # Positions then normals as contiguous coordinate rows (3, 2n): one pass turns both.
        self._rest = np.ascontiguousarray(np.hstack([rest[:, 0:3].T, rest[:, 3:6].T]))
        self._owner2 = np.concatenate([self._owner, self._owner])
        heading = np.radians([h for *_, h in self._parts]).astype(np.float32)[self._owner2]
        self._cos_h, self._sin_h = np.cos(heading), np.sin(heading)
        self._pos = np.array([pos for _, _, pos, _ in self._parts], np.float32)
        from vrexposure.render import shaders

        gpu = shaders.available()
        node = builder.node(self.name, usage=Geom.UH_static if gpu else Geom.UH_dynamic)
        node.setBounds(OmniBoundingVolume())  # parts move anywhere: never culled
        node.setFinal(True)
        path = parent.attachNewNode(node)
        self._node = node
        self._path = path
        if gpu:
            # The vertices keep the parts' own frames; the shader turns and places them.
            anim = np.stack([self._cos_h[: len(self._owner)], self._sin_h[: len(self._owner)],
                             self._owner.astype(np.float32)], axis=1)
            shaders.add_anim_column(node, anim)
            self._parts_texture = shaders.PartTexture(f"{self.name}-parts", self.num_parts, 1)
            path.setShaderInput("parts", self._parts_texture.texture)
            self._roll_rad = np.zeros(self.num_parts, np.float32)
            self._shader = shaders.AnimatedShader(path, "sway", self.roll_normals)
        self.update(None)
        return path

    def _turned(self, roll_rad: Any, normals: bool) -> tuple[Any, Any, Any]:
        """Rest positions (and normals) rolled about y, then turned by the heading (x, y, z)."""
        x, y, z = self._rest if normals else self._rest[:, : len(self._owner)]
        if roll_rad is not None:
            import numpy as np

            owner = self._owner2[: len(x)]
            cos_r, sin_r = np.cos(roll_rad)[owner], np.sin(roll_rad)[owner]
            x, z = x * cos_r + z * sin_r, z * cos_r - x * sin_r  # Panda3D: roll first
        cos_h, sin_h = self._cos_h[: len(x)], self._sin_h[: len(x)]
        return x * cos_h - y * sin_h, x * sin_h + y * cos_h, z

    def update(self, roll_deg: Any = None, pos: Any = None) -> None:
        """Roll part k by ``roll_deg[k]`` (None: all upright) and place it at ``pos[k]``."""
        import numpy as np

        if pos is not None:
            self._pos = np.asarray(pos, np.float32)
        if self._parts_texture is not None:
            self._update_gpu(roll_deg)
            return
        from vrexposure.render.geometry import vertex_rows

        view = vertex_rows(self._node)
        n = len(view)
        offset = self._pos[self._owner].T
        if roll_deg is None:
            if self._upright is None:
                self._upright = self._turned(None, normals=True)
                for axis in range(3):
                    view[:, 3 + axis] = self._upright[axis][n:]
                self._placed = None
            for axis in range(3):  # drifting clouds and cars move along one or two axes
                if self._placed is None or not np.array_equal(offset[axis], self._placed[axis]):
                    view[:, axis] = self._upright[axis][:n] + offset[axis]
            self._placed = offset
            return
        roll = np.radians(np.asarray(roll_deg, np.float32))
        turned = self._turned(roll, normals=self.roll_normals)
        for axis in range(3):
            view[:, axis] = turned[axis][:n] + offset[axis]
            if self.roll_normals:
                view[:, 3 + axis] = turned[axis][n:]
        self._upright = self._placed = None


    def placed_positions(self) -> Any:
        """(vertices, 3) where the last update put every vertex (what is drawn).

        On the GPU path the shader places them, so they are computed here: for
        checks, not per frame.
        """
        import numpy as np

        from vrexposure.render.geometry import vertex_rows

        if self._parts_texture is None:
            return vertex_rows(self._node)[:, 0:3].copy()
        roll = self._roll_rad if np.any(self._roll_rad) else None
        x, y, z = self._turned(roll, normals=False)
        offset = self._pos[self._owner]
        return np.stack([x, y, z], axis=1) + offset

    def _update_gpu(self, roll_deg: Any) -> None:
        import numpy as np


        self._shader.refresh()  # lights, fog or textures may have come since
        if roll_deg is None:
            self._roll_rad[:] = 0.0
        else:
            self._roll_rad[:] = np.radians(np.asarray(roll_deg, np.float32))
        values = np.empty((self.num_parts, 1, 4), np.float32)
        values[:, 0, 0] = self._roll_rad
        values[:, 0, 1:] = self._pos
        self._parts_texture.write(values)


def mip_nearest_sampler() -> Any:
    """Repeat, bilinear magnification, bilinear within the nearest mip level."""
    from panda3d.core import SamplerState

    sampler = SamplerState()
    sampler.setWrapU(SamplerState.WM_repeat)
    sampler.setWrapV(SamplerState.WM_repeat)
    sampler.setMagfilter(SamplerState.FT_linear)
    sampler.setMinfilter(SamplerState.FT_linear_mipmap_nearest)
    return sampler
