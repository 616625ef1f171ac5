"""What the patient reads in the scene: command acknowledgements and the SUDS scale.

Two parts, as everywhere in the renderer:

* pure logic — :class:`SudsInput` (number keys, left/right, Enter → a 0–100
  rating) and :class:`StatusLine` (a message that expires), tested directly;
* :class:`PatientOverlay` — the Panda3D node graph that shows them: large text on
  dark cards. On a monitor it lives on ``aspect2d`` (drawn above the scene and
  above the fade card, so "STOP sent…" stays visible while the view fades).
  For side-by-side stereo and a headset it is a head-locked panel 1.4 m in front
  of the eyes, drawn last without depth test, so both eyes see it at a
  comfortable vergence and a headset resolves it (the title is ~2° tall).

Only the default Panda3D font is used (no downloaded assets); glyphs it lacks
(arrows, middle dot) are avoided in the texts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from panda3d.core import NodePath, TextFont, TextNode

SUDS_MIN, SUDS_MAX = 0, 100
#: Left/right moves the selection by this much.
SUDS_STEP = 5
#: A second digit typed within this time extends the number ("4", "5" → 45).
DIGIT_COMPOSE_S = 1.5
#: A head-locked overlay (stereo, headset) sits this far in front of the eyes …
HEAD_LOCKED_DISTANCE_M = 1.4
#: … with one overlay unit (aspect2d's half height) this many metres.
HEAD_LOCKED_UNIT_M = 0.55

#: Text sizes in overlay units. The default font's digits are only ~0.55 of the scale
#: tall, so scale labels sit at 0.09: about 1° on a 1440 px-wide, 90° headset eye
#: (the smallest a rating scale should be; tests/test_render_legibility.py measures it).
LABEL_TEXT_SCALE = 0.09
SMALL_TEXT_SCALE = 0.074

StatusKind = Literal["info", "pending", "ok", "error"]

STATUS_COLORS: dict[str, tuple[float, float, float, float]] = {
    "info": (0.92, 0.94, 0.98, 1.0),
    "pending": (1.0, 0.82, 0.35, 1.0),
    "ok": (0.55, 0.95, 0.6, 1.0),
    "error": (1.0, 0.5, 0.45, 1.0),
}

SUDS_TITLE = "How anxious are you right now?"
SUDS_SUBTITLE = "0 = completely calm        100 = the most anxious you can imagine"
SUDS_HINT = "Left / Right arrows or number keys to choose, Enter to send"


# --------------------------------------------------------------------------- pure logic


def clamp_suds(value: float) -> int:
    """A rating rounded and clamped to 0–100."""
    return int(min(SUDS_MAX, max(SUDS_MIN, round(value))))


class SudsInput:
    """The patient's SUDS selection: number keys, left/right steps, Enter to confirm.

    Digits typed in quick succession compose a number ("4" then "5" → 45,
    "1", "0", "0" → 100); a lone digit ``d`` selects ``10·d``, so a single key
    press is enough for a coarse answer. It starts unset (``None``): a rating is never
    invented by a default; the first arrow press selects the middle of the scale.
    """

    def __init__(self, initial: int | None = None, step: int = SUDS_STEP,
                 compose_s: float = DIGIT_COMPOSE_S) -> None:
        self.value: int | None = None if initial is None else clamp_suds(initial)
        self.step = step
        self.compose_s = compose_s
        self._digits = ""
        self._last_digit_s = -1e9

    def reset(self, initial: int | None = None) -> None:
        self.value = None if initial is None else clamp_suds(initial)
        self._digits = ""

    def digit(self, d: int, now_s: float) -> int:
        """A number key; returns the new selection."""
        if not 0 <= d <= 9:
            raise ValueError(f"not a digit: {d}")
        composing = self._digits and now_s - self._last_digit_s <= self.compose_s
        candidate = (self._digits + str(d)) if composing else str(d)
        if int(candidate) > SUDS_MAX or len(candidate) > 3:
            candidate = str(d)
        self._digits = candidate
        self._last_digit_s = now_s
        self.value = clamp_suds(int(candidate) * (10 if len(candidate) == 1 else 1))
        return self.value

    def left(self) -> int:
        self._digits = ""
        self.value = SUDS_MAX // 2 if self.value is None else clamp_suds(self.value - self.step)
        return self.value

    def right(self) -> int:
        self._digits = ""
        self.value = SUDS_MAX // 2 if self.value is None else clamp_suds(self.value + self.step)
        return self.value

    def enter(self) -> int | None:
        """Confirm: the rating to send (None: nothing chosen yet, nothing to send)."""
        self._digits = ""
        return self.value


@dataclass
class StatusLine:
    """A message shown until ``until_s`` (None: until replaced)."""

    text: str = ""
    kind: StatusKind = "info"
    until_s: float | None = None

    def set(self, text: str, kind: StatusKind, now_s: float, hold_s: float | None) -> None:
        self.text, self.kind = text, kind
        self.until_s = None if hold_s is None else now_s + hold_s

    def visible(self, now_s: float) -> bool:
        return bool(self.text) and (self.until_s is None or now_s < self.until_s)


def suds_marker_x(value: float, half_width: float) -> float:
    """Horizontal position of a rating on a bar spanning ±``half_width``."""
    return -half_width + 2.0 * half_width * clamp_suds(value) / SUDS_MAX


# --------------------------------------------------------------------------- Panda3D overlay


def _gradient_bar(name: str, x0: float, x1: float, z0: float, z1: float,
                  stops: Sequence[tuple[float, float, float]]) -> NodePath:
    """A horizontal bar whose colour runs through ``stops`` from left to right."""
    from panda3d.core import (
        Geom,
        GeomNode,
        GeomTriangles,
        GeomVertexData,
        GeomVertexFormat,
        GeomVertexWriter,
        NodePath,
    )

    data = GeomVertexData(name, GeomVertexFormat.getV3c4(), Geom.UHStatic)
    vertex = GeomVertexWriter(data, "vertex")
    color = GeomVertexWriter(data, "color")
    n = len(stops)
    for i, rgb in enumerate(stops):
        x = x0 + (x1 - x0) * i / (n - 1)
        for z in (z0, z1):
            vertex.addData3(x, 0.0, z)
            color.addData4(*rgb, 1.0)
    tris = GeomTriangles(Geom.UHStatic)
    for i in range(n - 1):
        a, b, c, d = 2 * i, 2 * i + 1, 2 * i + 2, 2 * i + 3
        tris.addVertices(a, c, d)
        tris.addVertices(a, d, b)
    geom = Geom(data)
    geom.addPrimitive(tris)
    node = GeomNode(name)
    node.addGeom(geom)
    return NodePath(node)


class PatientOverlay:
    """Status line and SUDS scale, on ``aspect2d`` (mono) or head-locked under ``head``.

    ``head``: the camera (stereo) or the headset anchor (OpenVR); None for mono.
    Call :meth:`update` once a frame.
    """

    def __init__(self, aspect2d: NodePath, head: NodePath | None = None,
                 aspect_ratio: float = 16 / 9) -> None:
        from panda3d.core import TransparencyAttrib

        if head is None:
            self.root = aspect2d.attachNewNode("patient-overlay")
            self.head_locked = False
        else:
            self.root = head.attachNewNode("patient-overlay")
            self.root.setPos(0.0, HEAD_LOCKED_DISTANCE_M, 0.0)
            self.root.setScale(HEAD_LOCKED_UNIT_M)
            self.root.setDepthTest(False)
            self.root.setDepthWrite(False)
            self.root.setLightOff(1000)
            self.root.setFogOff(1000)
            self.root.setShaderOff(1000)
            self.head_locked = True
        self.root.setBin("fixed", 110)
        self.root.setTransparency(TransparencyAttrib.M_alpha)
        self.half_width = min(1.25, 0.92 * aspect_ratio) if not self.head_locked else 1.25
        self.font = self._font()
        self.status = StatusLine()
        self.suds = SudsInput()
        self.suds_visible = False
        self._build_status()
        self._build_suds()
        self._shown_status: tuple[str, str] | None = None
        self.update(0.0)

    # -- building ------------------------------------------------------------------

    @staticmethod
    def _font() -> TextFont:
        from panda3d.core import DynamicTextFont, TextNode

        font = TextNode.getDefaultFont()
        if isinstance(font, DynamicTextFont):
            font = font.makeCopy()
            assert isinstance(font, DynamicTextFont)
            font.setPixelsPerUnit(96)  # crisp at the sizes used here
        return font

    def text_node(self, parent: NodePath, name: str, scale: float, pos: tuple[float, float],
              color: tuple[float, float, float, float] = (1, 1, 1, 1), text: str = "",
              ) -> TextNode:
        from panda3d.core import TextNode

        node = TextNode(name)
        node.setFont(self.font)
        node.setText(text)
        node.setAlign(TextNode.ACenter)
        node.setTextColor(*color)
        node.setShadow(0.05, 0.05)
        node.setShadowColor(0, 0, 0, 0.9)
        path = parent.attachNewNode(node)
        path.setScale(scale)
        path.setPos(pos[0], -0.01, pos[1])
        return node

    @staticmethod
    def card(parent: NodePath, name: str, frame: tuple[float, float, float, float],
              color: tuple[float, float, float, float]) -> NodePath:
        from panda3d.core import CardMaker

        maker = CardMaker(name)
        maker.setFrame(*frame)
        card = parent.attachNewNode(maker.generate())
        card.setColor(*color)
        return card

    def _build_status(self) -> None:
        self.status_root = self.root.attachNewNode("status")
        self.status_root.setPos(0, 0, 0.62)
        self._status_card = self.card(self.status_root, "status-card",
                                       (-1.0, 1.0, -0.11, 0.16), (0.02, 0.03, 0.06, 0.78))
        self.status_text = self.text_node(self.status_root, "status-text", 0.1, (0.0, -0.01))
        self.status_root.hide()

    def _build_suds(self) -> None:
        hw = self.half_width
        bar = 0.92 * hw
        self.suds_root = self.root.attachNewNode("suds")
        self.suds_root.setPos(0, 0, -0.12)
        self.card(self.suds_root, "suds-card", (-hw, hw, -0.62, 0.5), (0.02, 0.03, 0.06, 0.85))
        self.text_node(self.suds_root, "suds-title", 0.1, (0.0, 0.34), text=SUDS_TITLE)
        self.text_node(self.suds_root, "suds-subtitle", SMALL_TEXT_SCALE, (0.0, 0.21),
                   (0.85, 0.88, 0.95, 1), SUDS_SUBTITLE)
        stops = [(0.3, 0.75, 0.4), (0.95, 0.85, 0.3), (0.95, 0.5, 0.25), (0.85, 0.22, 0.2)]
        _gradient_bar("suds-bar", -bar, bar, -0.04, 0.04, stops).reparentTo(self.suds_root)
        for tick in range(SUDS_MIN, SUDS_MAX + 1, 10):
            x = suds_marker_x(tick, bar)
            self.card(self.suds_root, f"tick-{tick}", (x - 0.006, x + 0.006, -0.07, 0.07),
                       (0.95, 0.95, 0.95, 1))
            self.text_node(self.suds_root, f"label-{tick}", LABEL_TEXT_SCALE, (x, -0.17),
                       text=str(tick))
        self._bar_half = bar
        self._marker = self.suds_root.attachNewNode("marker")
        self.card(self._marker, "marker-stem", (-0.012, 0.012, -0.09, 0.11), (1, 1, 1, 1))
        self.card(self._marker, "marker-head", (-0.045, 0.045, 0.11, 0.17), (1, 1, 1, 1))
        self.suds_value_text = self.text_node(self.suds_root, "suds-value", 0.15, (0.0, -0.36))
        self.suds_hint_text = self.text_node(self.suds_root, "suds-hint", SMALL_TEXT_SCALE,
                                         (0.0, -0.53), (0.8, 0.84, 0.92, 1), SUDS_HINT)
        self.suds_root.hide()

    # -- state -----------------------------------------------------------------------

    def set_status(self, text: str, kind: StatusKind, now_s: float,
                   hold_s: float | None = None) -> None:
        self.status.set(text, kind, now_s, hold_s)

    def show_suds(self, initial: int | None = None) -> None:
        if not self.suds_visible:
            self.suds.reset(initial)
        self.suds_visible = True

    def hide_suds(self) -> None:
        self.suds_visible = False

    @property
    def status_shown(self) -> str:
        """The status text currently on screen ("" when none)."""
        return self._shown_status[0] if self._shown_status else ""

    def update(self, now_s: float) -> None:
        """Apply the status and SUDS selection to the node graph."""
        if self.status.visible(now_s):
            key = (self.status.text, self.status.kind)
            if key != self._shown_status:
                self.status_text.setText(self.status.text)
                self.status_text.setTextColor(*STATUS_COLORS[self.status.kind])
                self._shown_status = key
            self.status_root.show()
        else:
            self._shown_status = None
            self.status_root.hide()
        if self.suds_visible:
            if self.suds.value is None:  # nothing chosen: no marker, no number
                self._marker.hide()
                self.suds_value_text.setText("Choose a number")
            else:
                self._marker.show()
                self._marker.setX(suds_marker_x(self.suds.value, self._bar_half))
                self.suds_value_text.setText(f"Your rating: {self.suds.value}")
            self.suds_root.show()
        else:
            self.suds_root.hide()

    def destroy(self) -> None:
        self.root.removeNode()
