"""Many moving rigid parts drawn as one Geom: per-part transforms applied with numpy.

A scene with hundreds of moving pieces (spider legs, audience heads) pays for
every Panda3D node twice a frame: once to cull it and once for its draw call.
On a software renderer a draw call costs tens of microseconds and the whole
frame budget at 90 Hz is 11.1 ms, so a scene with a thousand nodes cannot keep
up even before a pixel is filled. :class:`RigidBatch` keeps all the pieces in
one vertex buffer instead: each frame the caller computes one 4×4 matrix per
part (vectorised, :func:`pos_hpr_scale_mats` and :func:`compose`) and the batch
rewrites the vertices in a few numpy operations — one node, one draw call.

Where shaders run (:func:`vrexposure.render.shaders.available`) the vertices
stay in a static buffer and the matrices go to the GPU instead, one texture row
per part, and a vertex shader moves the vertices (``rigid`` mode): the CPU's
work per frame no longer grows with the vertex count.

Matrices follow Panda3D's row-vector convention (``p' = p @ M``), so
``compose(child, parent)`` is the child's transform in the parent's space,
exactly like a ``NodePath`` under another.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray
from panda3d.core import Geom, GeomNode, NodePath, OmniBoundingVolume

from . import shaders
from .geometry import MeshBuilder, vertex_rows

FloatArray = NDArray[np.float32]

#: Columns of a MeshBuilder vertex row: position 0:3, normal 3:6, colour 6:10, uv 10:12.
_POS, _NRM, _COL = slice(0, 3), slice(3, 6), slice(6, 10)


def hpr_mats(hpr_deg: ArrayLike) -> FloatArray:
    """Rotation matrices (…, 3, 3), row-vector, for Panda3D heading/pitch/roll in degrees.

    Panda3D applies roll (about Y), then pitch (about X), then heading (about Z).
    """
    hpr = np.radians(np.asarray(hpr_deg, np.float64))
    ch, sh = np.cos(hpr[..., 0]), np.sin(hpr[..., 0])
    cp, sp = np.cos(hpr[..., 1]), np.sin(hpr[..., 1])
    cr, sr = np.cos(hpr[..., 2]), np.sin(hpr[..., 2])
    m = np.empty((*hpr.shape[:-1], 3, 3), np.float64)
    m[..., 0, 0] = cr * ch - sr * sp * sh
    m[..., 0, 1] = cr * sh + sr * sp * ch
    m[..., 0, 2] = -sr * cp
    m[..., 1, 0] = -cp * sh
    m[..., 1, 1] = cp * ch
    m[..., 1, 2] = sp
    m[..., 2, 0] = sr * ch + cr * sp * sh
    m[..., 2, 1] = sr * sh - cr * sp * ch
    m[..., 2, 2] = cr * cp
    return m.astype(np.float32)


def pos_hpr_scale_mats(pos: ArrayLike, hpr_deg: ArrayLike, scale: ArrayLike = 1.0) -> FloatArray:
    """4×4 row-vector matrices (…, 4, 4) like ``NodePath.setPosHprScale`` (broadcasting)."""
    pos_a = np.asarray(pos, np.float32)
    rot = hpr_mats(hpr_deg)
    scale_a = np.asarray(scale, np.float32)
    if scale_a.ndim == 0 or scale_a.shape[-1] != 3:
        scale_a = np.repeat(scale_a[..., None], 3, axis=-1)
    shape = np.broadcast_shapes(pos_a.shape[:-1], rot.shape[:-2], scale_a.shape[:-1])
    m = np.zeros((*shape, 4, 4), np.float32)
    m[..., :3, :3] = rot * scale_a[..., :, None]
    m[..., 3, :3] = pos_a
    m[..., 3, 3] = 1.0
    return m


def compose(child: ArrayLike, parent: ArrayLike) -> FloatArray:
    """``child`` placed under ``parent``: the matrix product ``child @ parent`` (…, 4, 4)."""
    return np.matmul(np.asarray(child, np.float32), np.asarray(parent, np.float32))


@dataclass
class _Template:
    name: str
    rows: FloatArray  # (n, 12) MeshBuilder rows in the part's own space
    triangles: NDArray[np.uint32]  # (m,) indices into rows
    parts: list[int]  # part ids using this template, in vertex-buffer order


@dataclass
class _Block:
    """The vertices of every part of one template, contiguous in the buffer."""

    parts: NDArray[np.intp]  # part ids, in buffer order
    start: int  # first vertex row
    count: int  # parts
    rows: int  # vertices per part
    positions: FloatArray  # (rows, 3) in the part's own space
    normals: FloatArray
    colors: FloatArray  # (rows, 4)


def _cofactors(lin: FloatArray) -> FloatArray:
    """det(M) · inverse(M)ᵀ of each 3×3 ``lin`` (…, 3, 3): rows are cross products of rows."""
    # Written out: np.cross costs ~0.1 ms of Python overhead per call at these sizes.
    a0, a1, a2 = lin[..., 0, 0], lin[..., 0, 1], lin[..., 0, 2]
    b0, b1, b2 = lin[..., 1, 0], lin[..., 1, 1], lin[..., 1, 2]
    c0, c1, c2 = lin[..., 2, 0], lin[..., 2, 1], lin[..., 2, 2]
    out = np.empty_like(lin)
    out[..., 0, 0], out[..., 0, 1] = b1 * c2 - b2 * c1, b2 * c0 - b0 * c2
    out[..., 0, 2] = b0 * c1 - b1 * c0
    out[..., 1, 0], out[..., 1, 1] = c1 * a2 - c2 * a1, c2 * a0 - c0 * a2
    out[..., 1, 2] = c0 * a1 - c1 * a0
    out[..., 2, 0], out[..., 2, 1] = a1 * b2 - a2 * b1, a2 * b0 - a0 * b2
    out[..., 2, 2] = a0 * b1 - a1 * b0
    return out


class RigidBatch:
    """Rigid parts that share one vertex buffer and one draw call.

    Build: :meth:`add_template` once per shape, :meth:`add_part` once per moving
    piece, then :meth:`attach`. Each frame: :meth:`update` with one matrix per
    part (and optionally one RGBA multiplier per part). A part with a zero matrix
    collapses to a point and draws nothing, which is how parts are hidden.
    """

    def __init__(self, name: str = "batch") -> None:
        self.name = name
        self._templates: list[_Template] = []
        self._part_template: list[int] = []
        self._blocks: list[_Block] = []
        self._node: GeomNode | None = None
        self._positions = np.zeros((0, 3), np.float32)  # work buffers, one row per vertex
        self._normals = np.zeros((0, 3), np.float32)
        self._path: NodePath | None = None
        self._parts_texture: shaders.PartTexture | None = None  # set when the GPU moves parts
        self._shader: shaders.AnimatedShader | None = None
        self._mats = np.zeros((0, 4, 4), np.float32)  # as last updated (GPU path)

    @property
    def num_parts(self) -> int:
        return len(self._part_template)

    @property
    def num_vertices(self) -> int:
        return sum(len(t.rows) * len(t.parts) for t in self._templates)

    def add_template(self, builder: MeshBuilder, name: str = "part") -> int:
        """Register a shape (in its own space); returns its template id."""
        if self._node is not None:
            raise RuntimeError("RigidBatch: add templates before attach()")
        rows, triangles = builder.arrays()
        self._templates.append(_Template(name, rows, triangles, []))
        return len(self._templates) - 1

    def add_part(self, template: int) -> int:
        """A new moving piece with the shape of ``template``; returns its part id."""
        if self._node is not None:
            raise RuntimeError("RigidBatch: add parts before attach()")
        self._templates[template].parts.append(len(self._part_template))
        self._part_template.append(template)
        return len(self._part_template) - 1

    def attach(self, parent: NodePath) -> NodePath:
        """Build the single GeomNode (parts at the identity) and parent it."""
        if self._node is not None:
            raise RuntimeError("RigidBatch: already attached")
        builder = MeshBuilder()
        start = 0
        for template in self._templates:
            k, n = len(template.parts), len(template.rows)
            for _part in template.parts:
                builder.add_rows(template.rows, template.triangles)
            if k and n:
                rows = template.rows
                self._blocks.append(_Block(
                    np.asarray(template.parts, np.intp), start, k, n,
                    np.ascontiguousarray(rows[:, _POS]), np.ascontiguousarray(rows[:, _NRM]),
                    np.ascontiguousarray(rows[:, _COL])))
            start += k * n
        gpu = shaders.available()
        # On the GPU path the positions never change; only colours are rewritten, rarely.
        self._node = builder.node(self.name, usage=Geom.UH_static if gpu else Geom.UH_dynamic)
        self._positions = np.zeros((start, 3), np.float32)
        self._normals = np.zeros((start, 3), np.float32)
        # The parts move anywhere; one bound that never culls avoids recomputing it per frame.
        self._node.setBounds(OmniBoundingVolume())
        self._node.setFinal(True)
        path = parent.attachNewNode(self._node)
        self._path = path
        _BY_NODE[int(self._node.this)] = self
        self._mats = np.zeros((self.num_parts, 4, 4), np.float32)
        if gpu:
            part_of_vertex = np.zeros(start, np.float32)
            for block in self._blocks:
                part_of_vertex[block.start: block.start + block.count * block.rows] = np.repeat(
                    block.parts, block.rows)
            shaders.add_anim_column(self._node, part_of_vertex)
            self._parts_texture = shaders.PartTexture(f"{self.name}-parts", self.num_parts, 4)
            path.setShaderInput("parts", self._parts_texture.texture)
            # The parts at the identity, as on the CPU path.
            self._parts_texture.write(identity_mats(self.num_parts))
            self._shader = shaders.AnimatedShader(path, "rigid")
            self._shader.refresh()
        return path

    @property
    def on_gpu(self) -> bool:
        """Whether a vertex shader moves the parts (else numpy rewrites the vertices)."""
        return self._parts_texture is not None

    @staticmethod
    def of(path: NodePath) -> RigidBatch | None:
        """The batch drawn by the GeomNode at ``path`` (None: not a batch's), for checks."""
        return _BY_NODE.get(int(path.node().this))

    def update(self, mats: ArrayLike, colors: ArrayLike | None = None) -> None:
        """Move every part: ``mats`` (parts, 4, 4) row-vector; ``colors`` (parts, 4) multipliers.

        Without ``colors`` the vertices keep the colours of the last update that had
        them (at first the templates' own), so colours need only be sent when they change.
        """
        if self._node is None:
            raise RuntimeError("RigidBatch: attach() before update()")
        mats_a = np.asarray(mats, np.float32)
        if mats_a.shape != (self.num_parts, 4, 4):
            raise ValueError(f"RigidBatch.update: mats shape {mats_a.shape}, "
                             f"expected ({self.num_parts}, 4, 4)")
        colors_a = None if colors is None else np.asarray(colors, np.float32)
        if colors_a is not None and colors_a.shape != (self.num_parts, 4):
            raise ValueError(f"RigidBatch.update: colors shape {colors_a.shape}, "
                             f"expected ({self.num_parts}, 4)")
        self._mats = mats_a.copy()
        if self._parts_texture is not None:
            self._update_gpu(mats_a, colors_a)
            return
        rows = vertex_rows(self._node)
        for block in self._blocks:
            m = mats_a[block.parts]
            lin = m[:, :3, :3]
            span = slice(block.start, block.start + block.count * block.rows)
            positions = self._positions[span].reshape(block.count, block.rows, 3)
            np.matmul(block.positions, lin, out=positions)
            positions += m[:, None, 3, :3]
            # Normals take the inverse transpose; the cofactor matrix is that times the
            # determinant (which normalising removes) and is zero, not singular, for a
            # collapsed (hidden) part.
            normals = self._normals[span].reshape(block.count, block.rows, 3)
            np.matmul(block.normals, _cofactors(lin), out=normals)
            length = np.sqrt(np.maximum(np.einsum("kni,kni->kn", normals, normals), 1e-30))
            normals /= length[..., None]
            if colors_a is not None:
                tinted = block.colors[None] * colors_a[block.parts][:, None, :]
                rows[span, _COL] = tinted.reshape(-1, 4)
        rows[:, _POS] = self._positions
        rows[:, _NRM] = self._normals

    def _update_gpu(self, mats: FloatArray, colors: FloatArray | None) -> None:
        assert self._parts_texture is not None and self._shader is not None
        self._shader.refresh()  # lights, fog or textures may have come since
        self._parts_texture.write(mats)
        if colors is not None and self._node is not None:
            rows = vertex_rows(self._node)  # colours stay per vertex: they change rarely
            for block in self._blocks:
                span = slice(block.start, block.start + block.count * block.rows)
                tinted = block.colors[None] * colors[block.parts][:, None, :]
                rows[span, _COL] = tinted.reshape(-1, 4)

    def placed_positions(self) -> FloatArray:
        """(vertices, 3) where the last update put every vertex (what is drawn).

        On the GPU path the shader places them, so they are computed here from the
        last matrices: for checks, not per frame.
        """
        if self._parts_texture is not None:
            for block in self._blocks:
                span = slice(block.start, block.start + block.count * block.rows)
                m = self._mats[block.parts]
                positions = self._positions[span].reshape(block.count, block.rows, 3)
                np.matmul(block.positions, m[:, :3, :3], out=positions)
                positions += m[:, None, 3, :3]
        return self._positions.copy()

    def part_bounds(self) -> FloatArray:
        """(parts, 2, 3) low and high corners of each part as last updated (NaN: hidden).

        For checks (people must not pass through each other), not per frame.
        """
        out = np.full((self.num_parts, 2, 3), np.nan, np.float32)
        placed = self.placed_positions()
        for block in self._blocks:
            span = slice(block.start, block.start + block.count * block.rows)
            positions = placed[span].reshape(block.count, block.rows, 3)
            lo, hi = positions.min(axis=1), positions.max(axis=1)
            shown = (hi - lo).max(axis=1) > 1e-6  # a hidden part collapses to a point
            out[block.parts[shown], 0] = lo[shown]
            out[block.parts[shown], 1] = hi[shown]
        return out

    @staticmethod
    def hidden(count: int) -> FloatArray:
        """``count`` zero matrices (parts drawn as nothing)."""
        return np.zeros((count, 4, 4), np.float32)


#: Attached batches by their GeomNode (pointer), for :meth:`RigidBatch.of`.
_BY_NODE: weakref.WeakValueDictionary[int, RigidBatch] = weakref.WeakValueDictionary()


def identity_mats(count: int) -> FloatArray:
    """``count`` identity matrices (…, 4, 4)."""
    return np.repeat(np.eye(4, dtype=np.float32)[None], count, axis=0)


def mats_from_nodes(paths: Sequence[NodePath], relative_to: NodePath) -> FloatArray:
    """Matrices of existing nodes (for tests comparing against Panda3D's own transforms)."""
    out = np.empty((len(paths), 4, 4), np.float32)
    for i, path in enumerate(paths):
        mat = path.getMat(relative_to)
        for r in range(4):
            for c in range(4):
                out[i, r, c] = mat.getCell(r, c)
    return out


__all__ = [
    "RigidBatch",
    "compose",
    "hpr_mats",
    "identity_mats",
    "mats_from_nodes",
    "pos_hpr_scale_mats",
]
