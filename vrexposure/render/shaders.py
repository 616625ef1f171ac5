"""Vertex animation in vertex shaders: the per-vertex work of moving parts leaves the CPU.

Swaying trees, bending grass, walking spider legs and the audience's heads are
many small parts in one Geom (one draw call). Moving them in numpy rewrites
every vertex every frame on the CPU, and the driver then uploads the whole
buffer again. Here the vertices stay put in a static buffer; each carries an
``anim`` column (its part, or its lift and gust offset), and a vertex shader
moves it with a few per-part numbers the CPU writes each frame:

- ``rigid``: one 4×4 row-vector matrix per part (:class:`~vrexposure.render.batch.RigidBatch`);
- ``sway``: one roll angle and position per part (:class:`~vrexposure.render.seated.SwayParts`);
- ``bend``: no per-part data at all, two numbers per frame (the gust wave of
  :func:`gust_shear`, for grass and flowers).

Per-part values live in a small float texture (:class:`PartTexture`, read with
``texelFetch``): any number of parts fits, where uniform arrays are limited to
a few hundred vectors on some drivers.

A shader replaces the whole fixed-function pipeline, so these shaders redo
what the parts used: vertex colour × colour scale, Gouraud lighting from
Panda3D's lights (ambient, directional, point and spot) with the colours a
material sets (specular included; the others follow the vertex colour), an
optional texture and fog (exponential, exponential-squared or linear, as the
scene's :class:`Fog`, by eye depth as fixed-function GL). Without shader
support (tinydisplay, or ``VREXPOSURE_CPU_ANIMATION=1``) the callers keep
their numpy path: :func:`available` tells which.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

log = logging.getLogger(__name__)

Mode = Literal["rigid", "sway", "bend"]
FogMode = Literal["none", "exp", "exp2", "linear"]
#: Most lights (besides the ambient sum) a shader looks at; a shader is made for
#: the number the part is lit by, so llvmpipe runs no loop for lights that are not there.
MAX_LIGHTS = 8
#: Set to 1 to keep the numpy vertex animation although shaders work (comparisons).
CPU_ENV = "VREXPOSURE_CPU_ANIMATION"

_available = False


def set_available(flag: bool) -> None:
    """Called by the render engine once it knows its graphics state guardian."""
    global _available
    _available = bool(flag) and os.environ.get(CPU_ENV, "") not in ("1", "true", "yes")
    log.info("render: vertex animation on the %s", "GPU (shaders)" if _available else "CPU")


def available() -> bool:
    """Whether scenes built now animate vertices in shaders (else numpy)."""
    return _available


def supports_shaders(gsg: Any) -> bool:
    """The GSG runs GLSL 1.30 (vertex texture fetch, integer ops); tinydisplay does not."""
    if gsg is None or not gsg.getSupportsBasicShaders() or not gsg.getSupportsGlsl():
        return False
    version = (gsg.getDriverShaderVersionMajor(), gsg.getDriverShaderVersionMinor())
    return version >= (1, 30)


# --------------------------------------------------------------------------- gust wave


def gust_shear(phase: float, bend: float, offset: ArrayLike) -> NDArray[np.float64]:
    """Sideways lean (m per m of height) of grass at ``offset`` (where the wave reaches it).

    The same formula as the ``bend`` shader (kept side by side so they agree).
    """
    o = np.asarray(offset, np.float64)
    gust = np.sin(phase * 2.0 - o) * 0.6 + np.sin(phase * 3.3 - o * 1.7) * 0.4
    return np.asarray(bend * (0.6 + 0.4 * gust) * 1.5, np.float64)


_GUST_GLSL = """
float gust_shear(float phase, float bend, float offset) {
    float gust = sin(phase * 2.0 - offset) * 0.6 + sin(phase * 3.3 - offset * 1.7) * 0.4;
    return bend * (0.6 + 0.4 * gust) * 1.5;
}
"""

# --------------------------------------------------------------------------- sources

_VERTEX = """#version 130
uniform mat4 p3d_ModelViewProjectionMatrix;
uniform mat4 p3d_ModelViewMatrix;
uniform mat3 p3d_NormalMatrix;
uniform vec4 p3d_ColorScale;
in vec4 p3d_Vertex;
in vec3 p3d_Normal;
in vec4 p3d_Color;
in vec2 p3d_MultiTexCoord0;
in vec4 anim;
out vec4 v_color;
out vec2 v_uv;
out float v_fog;
#if LIT
uniform struct p3d_LightModelParameters { vec4 ambient; } p3d_LightModel;
#if LIGHTS
uniform struct p3d_LightSourceParameters {
    vec4 color;
    vec4 specular;
    vec4 position;
    vec3 spotDirection;
    float spotCosCutoff;
    float spotExponent;
    vec3 attenuation;
} p3d_LightSource[LIGHTS];
#endif
#if MATERIAL
uniform struct p3d_MaterialParameters {
    vec4 ambient;
    vec4 diffuse;
    vec4 emission;
    vec3 specular;
    float shininess;
} p3d_Material;
#endif
#endif
#if FOG
uniform struct p3d_FogParameters { vec4 color; float density; float start; float end;
                                   float scale; } p3d_Fog;
#endif
#if MODE_RIGID || MODE_SWAY
uniform sampler2D parts;
#endif
#if MODE_BEND
uniform vec2 wind;  // gust phase (rad), bend (m per m at rest)
GUST
#endif

void main() {
    vec3 pos = p3d_Vertex.xyz;
    vec3 nrm = p3d_Normal;
#if MODE_RIGID
    int part = int(anim.x + 0.5);
    vec4 r0 = texelFetch(parts, ivec2(0, part), 0);
    vec4 r1 = texelFetch(parts, ivec2(1, part), 0);
    vec4 r2 = texelFetch(parts, ivec2(2, part), 0);
    vec4 r3 = texelFetch(parts, ivec2(3, part), 0);
    pos = pos.x * r0.xyz + pos.y * r1.xyz + pos.z * r2.xyz + r3.xyz;  // p @ M (row vectors)
    // Normals by the cofactor matrix (inverse transpose × det; zero for a hidden part).
    nrm = nrm.x * cross(r1.xyz, r2.xyz) + nrm.y * cross(r2.xyz, r0.xyz)
        + nrm.z * cross(r0.xyz, r1.xyz);
#endif
#if MODE_SWAY
    // anim = (cos heading, sin heading, part); the part's texel = (roll rad, x, y, z).
    vec4 part = texelFetch(parts, ivec2(0, int(anim.z + 0.5)), 0);
    float cr = cos(part.x), sr = sin(part.x);
    vec2 xz = vec2(pos.x * cr + pos.z * sr, pos.z * cr - pos.x * sr);  // roll first
    pos = vec3(xz.x * anim.x - pos.y * anim.y, xz.x * anim.y + pos.y * anim.x, xz.y) + part.yzw;
#if SWAY_NORMALS
    xz = vec2(nrm.x * cr + nrm.z * sr, nrm.z * cr - nrm.x * sr);
#else
    xz = nrm.xz;
#endif
    nrm = vec3(xz.x * anim.x - nrm.y * anim.y, xz.x * anim.y + nrm.y * anim.x, xz.y);
#endif
#if MODE_BEND
    // anim = (lift above the blade's root m, where the gust wave reaches the patch).
    pos.x += gust_shear(wind.x, wind.y, anim.y) * anim.x;
#endif
    vec4 world = vec4(pos, 1.0);
    gl_Position = p3d_ModelViewProjectionMatrix * world;
    vec3 eye = (p3d_ModelViewMatrix * world).xyz;
    vec4 color = p3d_Color;
#if LIT
    vec3 n = p3d_NormalMatrix * nrm;
    float len = length(n);
    n = len > 1e-20 ? n / len : n;
    // As fixed-function GL with Panda3D's material: a colour the material does not set
    // follows the vertex colour.
#if MAT_AMBIENT
    vec3 ambient_color = p3d_Material.ambient.rgb;
#else
    vec3 ambient_color = color.rgb;
#endif
#if MAT_DIFFUSE
    vec4 diffuse_color = p3d_Material.diffuse;
#else
    vec4 diffuse_color = color;
#endif
    vec3 lit = p3d_LightModel.ambient.rgb * ambient_color;
#if MAT_EMISSION
    lit += p3d_Material.emission.rgb;
#endif
#if MAT_SPECULAR
    vec3 to_eye = normalize(-eye);
#endif
#if LIGHTS
    for (int i = 0; i < LIGHTS; ++i) {
        vec4 lp = p3d_LightSource[i].position;
        vec3 l = lp.xyz - eye * lp.w;  // w = 0: a direction towards the light
        float dist = length(l);
        l = dist > 0.0 ? l / dist : l;
        float att = 1.0;
#if NEAR_LIGHTS
        if (lp.w != 0.0) {
            vec3 k = p3d_LightSource[i].attenuation;
            att = 1.0 / max(1e-6, k.x + k.y * dist + k.z * dist * dist);
#if SPOTS
            float c = dot(-l, normalize(p3d_LightSource[i].spotDirection));
            if (p3d_LightSource[i].spotCosCutoff > -1.0) {
                att *= c >= p3d_LightSource[i].spotCosCutoff
                    ? pow(max(c, 0.0), p3d_LightSource[i].spotExponent) : 0.0;
            }
#endif
        }
#endif
        float diffuse = max(dot(n, l), 0.0);
        lit += p3d_LightSource[i].color.rgb * diffuse_color.rgb * diffuse * att;
#if MAT_SPECULAR
        if (diffuse > 0.0) {
            float h = max(dot(n, normalize(l + to_eye)), 0.0);
            lit += p3d_LightSource[i].specular.rgb * p3d_Material.specular
                * pow(h, p3d_Material.shininess) * att;
        }
#endif
    }
#endif
    color = vec4(lit, diffuse_color.a);
#endif
    v_color = color * p3d_ColorScale;
    v_uv = p3d_MultiTexCoord0;
#if FOG_EXP
    v_fog = exp(-p3d_Fog.density * abs(eye.z));
#elif FOG_EXP2
    float fd = p3d_Fog.density * abs(eye.z);
    v_fog = exp(-fd * fd);
#elif FOG_LINEAR
    v_fog = (p3d_Fog.end - abs(eye.z)) * p3d_Fog.scale;
#else
    v_fog = 1.0;
#endif
}
"""

_FRAGMENT = """#version 130
in vec4 v_color;
in vec2 v_uv;
in float v_fog;
#if TEXTURED
uniform sampler2D p3d_Texture0;
#endif
#if FOG
uniform struct p3d_FogParameters { vec4 color; float density; float start; float end;
                                   float scale; } p3d_Fog;
#endif

void main() {
    vec4 color = v_color;
#if TEXTURED
    color *= texture(p3d_Texture0, v_uv);
#endif
#if FOG
    color.rgb = mix(p3d_Fog.color.rgb, color.rgb, clamp(v_fog, 0.0, 1.0));
#endif
    gl_FragColor = color;
}
"""


@dataclass(frozen=True)
class Lighting:
    """What a part is lit by (how many non-ambient lights, whether any is near) and which
    colours its material sets (the others follow the vertex colour)."""

    lights: int = 0  # directional, point and spot lights (the ambient ones are summed)
    near: bool = False  # a point or spot light (attenuation by distance)
    spots: bool = False  # a spot light (cone)
    ambient: bool = False  # the material's ambient colour
    diffuse: bool = False
    emission: bool = False
    specular: bool = False


def shader_sources(mode: Mode, lit: bool, textured: bool, fog: FogMode,
                   sway_normals: bool = True, lighting: Lighting = Lighting()
                   ) -> tuple[str, str]:
    """Vertex and fragment GLSL for one combination (pure; for tests and :func:`shader`)."""
    if mode not in ("rigid", "sway", "bend"):
        raise ValueError(f"unknown animation mode {mode!r}")
    if fog not in ("none", "exp", "exp2", "linear"):
        raise ValueError(f"unknown fog mode {fog!r}")
    if not 0 <= lighting.lights <= MAX_LIGHTS:
        raise ValueError(f"{lighting.lights} lights: at most {MAX_LIGHTS}")
    defines = {
        "MODE_RIGID": mode == "rigid", "MODE_SWAY": mode == "sway", "MODE_BEND": mode == "bend",
        "SWAY_NORMALS": sway_normals, "LIT": lit, "TEXTURED": textured, "FOG": fog != "none",
        "FOG_EXP": fog == "exp", "FOG_EXP2": fog == "exp2", "FOG_LINEAR": fog == "linear",
        "NEAR_LIGHTS": lighting.near or lighting.spots, "SPOTS": lighting.spots,
        "MATERIAL": lighting.ambient or lighting.diffuse or lighting.emission or lighting.specular,
        "MAT_AMBIENT": lighting.ambient, "MAT_DIFFUSE": lighting.diffuse,
        "MAT_EMISSION": lighting.emission, "MAT_SPECULAR": lighting.specular,
    }
    head = "".join(f"#define {k} {int(v)}\n" for k, v in defines.items())
    head += f"#define LIGHTS {lighting.lights}\n"

    def with_defines(source: str) -> str:
        version, rest = source.split("\n", 1)
        return f"{version}\n{head}{rest}"

    return with_defines(_VERTEX.replace("GUST", _GUST_GLSL)), with_defines(_FRAGMENT)


@cache
def shader(mode: Mode, lit: bool, textured: bool, fog: FogMode, sway_normals: bool = True,
           lighting: Lighting = Lighting()) -> Any:
    """The compiled-on-first-use Panda3D Shader for one combination."""
    from panda3d.core import Shader

    vertex, fragment = shader_sources(mode, lit, textured, fog, sway_normals, lighting)
    made = Shader.make(Shader.SL_GLSL, vertex, fragment)
    if made is None:
        raise RuntimeError(f"the {mode} animation shader did not compile")
    return made


def fog_mode(fog: Any) -> FogMode:
    """The shader fog mode of a Panda3D :class:`Fog` (None: no fog)."""
    if fog is None:
        return "none"
    from panda3d.core import Fog

    modes: dict[int, FogMode] = {Fog.M_linear: "linear", Fog.M_exponential: "exp",
                                 Fog.M_exponential_squared: "exp2"}
    return modes.get(fog.getMode(), "exp")


def lighting_of(light_attrib: Any, material_attrib: Any = None) -> Lighting:
    """The :class:`Lighting` of a ``LightAttrib`` and ``MaterialAttrib`` (None: none)."""
    from panda3d.core import DirectionalLight, PointLight, Spotlight

    material = None
    if material_attrib is not None and not material_attrib.isOff():
        material = material_attrib.getMaterial()
    colors = {} if material is None else {
        "ambient": material.hasAmbient(), "diffuse": material.hasDiffuse(),
        "emission": material.hasEmission(), "specular": material.hasSpecular()}
    if light_attrib is None:
        return Lighting(**colors)
    lights = near = spots = 0
    for i in range(light_attrib.getNumOnLights()):
        node = light_attrib.getOnLight(i).node()
        if isinstance(node, DirectionalLight | PointLight | Spotlight):
            lights += 1
            near += isinstance(node, PointLight | Spotlight)
            spots += isinstance(node, Spotlight)
    if lights > MAX_LIGHTS:
        log.warning("render: %d lights on an animated part; the shader uses %d",
                    lights, MAX_LIGHTS)
    return Lighting(min(lights, MAX_LIGHTS), near > 0, spots > 0, **colors)


class AnimatedShader:
    """The animation shader of one node, made for the lights, texture and fog it has.

    :meth:`refresh` (every frame, a few microseconds) puts a new one on when
    the node's lights, texture or fog changed: a scene may add a light or fog
    after building its parts. Lights add no cost where they are off (Panda3D
    then gives an ambient of white); a texture is read only where one is on.
    """

    def __init__(self, path: Any, mode: Mode, sway_normals: bool = True) -> None:
        self.path, self.mode, self.sway_normals = path, mode, sway_normals
        self._key: tuple[int, ...] | None = None
        self._held: tuple[Any, ...] = ()
        self.current: tuple[bool, FogMode, Lighting] | None = None  # textured, fog, lighting

    def refresh(self) -> None:
        from panda3d.core import FogAttrib, LightAttrib, MaterialAttrib, TextureAttrib

        state = self.path.getNetState()
        attribs = tuple(state.getAttrib(kind) for kind in
                        (TextureAttrib, FogAttrib, LightAttrib, MaterialAttrib))
        # Render attributes are unique objects: the same pointer means the same state (the
        # ones keyed are kept alive, so no other attribute can take their address).
        key = tuple(0 if a is None else int(a.this) for a in attribs)
        if key == self._key:
            return
        self._key, self._held = key, attribs
        texture, fog_attrib, light_attrib, material_attrib = attribs
        textured = texture is not None and texture.getNumOnStages() > 0
        fog = None if fog_attrib is None or fog_attrib.isOff() else fog_attrib.getFog()
        lighting = lighting_of(light_attrib, material_attrib)
        self.current = (textured, fog_mode(fog), lighting)
        self.path.setShader(shader(self.mode, True, textured, fog_mode(fog), self.sway_normals,
                                   lighting), 10)


# --------------------------------------------------------------------------- vertex data


@cache
def anim_format() -> Any:
    """The MeshBuilder layout (array 0) plus an ``anim`` vec4 column (array 1)."""
    from panda3d.core import Geom, GeomVertexArrayFormat, GeomVertexFormat, InternalName

    from .geometry import _vertex_format

    extra = GeomVertexArrayFormat()
    extra.addColumn(InternalName.make("anim"), 4, Geom.NT_float32, Geom.C_other)
    fmt = GeomVertexFormat(_vertex_format())
    fmt.addArray(extra)
    return GeomVertexFormat.registerFormat(fmt)


def add_anim_column(node: Any, values: ArrayLike) -> None:
    """Give the one-Geom ``node`` an ``anim`` column holding ``values`` (n, ≤4 floats)."""
    from panda3d.core import GeomVertexData

    vals = np.asarray(values, np.float32)
    vals = vals.reshape(len(vals), -1)
    geom = node.modifyGeom(0)
    old = geom.getVertexData()
    if vals.shape[0] != old.getNumRows() or vals.shape[1] > 4:
        raise ValueError(f"anim values {vals.shape} for {old.getNumRows()} vertices")
    rows = np.zeros((len(vals), 4), np.float32)
    rows[:, : vals.shape[1]] = vals
    vdata = GeomVertexData(old.getName(), anim_format(), old.getUsageHint())
    vdata.uncleanSetNumRows(len(rows))
    memoryview(vdata.modifyArray(0)).cast("B")[:] = memoryview(old.getArray(0)).cast("B")
    memoryview(vdata.modifyArray(1)).cast("B")[:] = rows.tobytes()
    geom.setVertexData(vdata)


class PartTexture:
    """``texels`` RGBA float values per part, one row per part, for ``texelFetch``.

    :meth:`write` takes (parts, texels, 4) float32 and marks the texture for
    upload (a few kilobytes a frame).
    """

    def __init__(self, name: str, parts: int, texels: int) -> None:
        from panda3d.core import SamplerState, Texture

        self.parts, self.texels = int(parts), int(texels)
        tex = Texture(name)
        tex.setup2dTexture(self.texels, max(1, self.parts), Texture.T_float, Texture.F_rgba32)
        tex.setMinfilter(SamplerState.FT_nearest)
        tex.setMagfilter(SamplerState.FT_nearest)
        tex.setWrapU(SamplerState.WM_clamp)
        tex.setWrapV(SamplerState.WM_clamp)
        tex.setKeepRamImage(True)
        tex.setRamImage(np.zeros(self.texels * max(1, self.parts) * 4, np.float32).tobytes())
        self.texture = tex

    def write(self, values: ArrayLike) -> None:
        vals = np.asarray(values, np.float32)
        if vals.shape != (self.parts, self.texels, 4):
            raise ValueError(f"part values {vals.shape}, expected ({self.parts}, {self.texels}, 4)")
        if not self.parts:
            return
        image = np.asarray(memoryview(self.texture.modifyRamImage())).view(np.float32)
        # Panda3D keeps colour textures in BGRA order in memory.
        image.reshape(self.parts, self.texels, 4)[:] = vals[..., [2, 1, 0, 3]]


__all__ = [
    "CPU_ENV",
    "AnimatedShader",
    "Lighting",
    "PartTexture",
    "add_anim_column",
    "anim_format",
    "available",
    "fog_mode",
    "gust_shear",
    "set_available",
    "shader",
    "shader_sources",
    "supports_shaders",
]
