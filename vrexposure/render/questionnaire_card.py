"""The questionnaire in the headset: one item at a time, nothing pre-selected.

Two parts, as in :mod:`.overlay`:

* pure logic: :class:`QuestionnaireInput` (left/right, number keys, Enter, skip) for the
  item on screen, and :func:`card_text` (what the card says for a state);
* :class:`QuestionnaireCard`: the Panda3D nodes, on the patient overlay's root, so it is
  head-locked in stereo and in the headset like the SUDS scale, with text at least 1°.

The renderer follows the host's state (``state["questionnaire"]``): the card shows the
next item, the patient's answer goes to the host as ``questionnaire_answer`` and the
next state brings the next item. Until the patient chooses, nothing is selected and
Enter sends nothing; Delete leaves the item unanswered (recorded as such).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .overlay import LABEL_TEXT_SCALE, SMALL_TEXT_SCALE, PatientOverlay

if TYPE_CHECKING:
    from panda3d.core import NodePath, TextNode


#: Scales with more points than this are drawn as a bar with a marker, not as boxes.
MAX_BOXES = 11
DIGIT_COMPOSE_S = 1.5
ITEM_TEXT_SCALE = 0.1
#: Card geometry in overlay units: top edge, height for a one-line question, centre offset,
#: and how far each further line of the question pushes the answers down.
CARD_TOP, CARD_HEIGHT, CARD_Z = 0.6, 1.38, -0.05
LINE_STEP = 0.12
HINT_LINES = ("Left / Right or number keys to choose, Enter to answer",
              "Delete = leave unanswered      P = pause")
PAUSED_TEXT = "Questionnaire paused"
PAUSED_HINT = "Press P (or the menu button) to continue"


# --------------------------------------------------------------------------- pure logic


class QuestionnaireInput:
    """The patient's choice for the item on screen; ``selected`` is None until they choose."""

    def __init__(self, compose_s: float = DIGIT_COMPOSE_S) -> None:
        self.values: list[int] = []
        self.selected: int | None = None
        self.item_key: tuple[str, str] | None = None
        self.compose_s = compose_s
        self._digits = ""
        self._last_digit_s = -1e9

    def load(self, key: tuple[str, str], values: Sequence[int]) -> None:
        """A new item (questionnaire id, item id): the selection starts empty."""
        if key != self.item_key:
            self.item_key = key
            self.values = list(values)
            self.selected = None
            self._digits = ""

    def _index(self) -> int | None:
        return None if self.selected is None else self.values.index(self.selected)

    def left(self) -> int | None:
        index = self._index()
        self._digits = ""
        if self.values:
            self.selected = self.values[len(self.values) // 2 if index is None
                                        else max(0, index - 1)]
        return self.selected

    def right(self) -> int | None:
        index = self._index()
        self._digits = ""
        if self.values:
            self.selected = self.values[len(self.values) // 2 if index is None
                                        else min(len(self.values) - 1, index + 1)]
        return self.selected

    def digit(self, d: int, now_s: float) -> int | None:
        """A number key: the value itself on short scales; composed digits on long ones."""
        if not self.values:
            return self.selected
        composing = self._digits and now_s - self._last_digit_s <= self.compose_s
        candidate = (self._digits + str(d)) if composing else str(d)
        if int(candidate) > self.values[-1]:
            candidate = str(d)
        self._digits, self._last_digit_s = candidate, now_s
        wanted = int(candidate)
        if self.values[-1] > 9 and len(candidate) == 1:
            wanted *= 10  # one key is enough for a coarse answer on 0–100 (as SUDS)
        if wanted in self.values:
            self.selected = wanted
        else:  # nearest point of a stepped scale
            self.selected = min(self.values, key=lambda v: (abs(v - wanted), v))
        return self.selected

    def enter(self) -> int | None:
        """The answer to send, or None when nothing has been chosen (nothing is sent)."""
        self._digits = ""
        return self.selected


@dataclass(frozen=True)
class CardText:
    header: str
    item: str
    answer: str
    progress: float  # share of items answered or skipped


def card_text(form: Mapping[str, Any], selected: int | None) -> CardText:
    """What the card says for the state's open questionnaire ``form``."""
    item = form.get("next_item") or {}
    index = form.get("next_index")
    total = int(form.get("n_items", 0)) or 1
    number = total if index is None else int(index) + 1
    header = f"{form.get('title', '')}: question {number} of {total}"
    anchors = {int(k): v for k, v in dict(item.get("anchors", {})).items()}
    if selected is None:
        answer = "Choose an answer"
    else:
        label = anchors.get(selected)
        answer = f"Your answer: {selected}" + (f" ({label})" if label else "")
    return CardText(header, str(item.get("text", "")), answer,
                    min(1.0, int(form.get("visited", 0)) / total))


def box_layout(n: int, half_width: float) -> list[tuple[float, float]]:
    """Centre x and width of ``n`` answer boxes spread over ±``half_width``."""
    width = min(0.42, 2 * half_width / n)
    gap = 0.03 if n > 1 else 0.0
    step = width
    first = -step * (n - 1) / 2
    return [(first + i * step, width - gap) for i in range(n)]


# --------------------------------------------------------------------------- Panda3D card


class QuestionnaireCard:
    """The card on the patient overlay; call :meth:`show_form` each frame with the state."""

    def __init__(self, overlay: PatientOverlay) -> None:
        self.overlay = overlay
        self.input = QuestionnaireInput()
        self.form: Mapping[str, Any] | None = None
        #: The item whose answer was sent and not yet confirmed by a new state.
        self.pending_item: str | None = None
        hw = overlay.half_width
        self.half_width = hw
        self.root = overlay.root.attachNewNode("questionnaire")
        self.root.setPos(0, 0, CARD_Z)
        # A card whose height follows the question's length (see _layout).
        self.card = self._card(self.root, "q-card", (-hw, hw, -1.0, 0.0),
                               (0.02, 0.03, 0.06, 0.9))
        self.card.setZ(CARD_TOP)
        self.header = self._text(self.root, "q-header", SMALL_TEXT_SCALE, (0, 0.49),
                                 (0.85, 0.88, 0.95, 1))
        bar = 0.92 * hw
        self._bar = bar
        self._card(self.root, "q-progress-bg", (-bar, bar, 0.4, 0.43), (0.25, 0.27, 0.32, 1))
        self.progress_fill = self._card(self.root, "q-progress", (0, 1, 0.4, 0.43),
                                        (0.45, 0.75, 0.95, 1))
        self.item_text = self._text(self.root, "q-item", ITEM_TEXT_SCALE, (0, 0.26))
        self.item_text.setWordwrap(2 * bar / ITEM_TEXT_SCALE)
        # Everything under the question moves down when the question wraps.
        self.lower = self.root.attachNewNode("q-lower")
        self.answer_text = self._text(self.lower, "q-answer", ITEM_TEXT_SCALE, (0, -0.5))
        self.hints = [self._text(self.lower, f"q-hint-{i}", SMALL_TEXT_SCALE,
                                 (0, -0.63 - 0.09 * i), (0.8, 0.84, 0.92, 1), line)
                      for i, line in enumerate(HINT_LINES)]
        self.paused_root = self.root.attachNewNode("q-paused")
        self._text(self.paused_root, "q-paused-title", 0.12, (0, 0.0), text=PAUSED_TEXT)
        self._text(self.paused_root, "q-paused-hint", SMALL_TEXT_SCALE, (0, -0.18),
                   (0.8, 0.84, 0.92, 1), PAUSED_HINT)
        self.options_root: NodePath | None = None
        self._boxes: dict[int, NodePath] = {}
        self._marker: NodePath | None = None
        self._shown_key: tuple[Any, ...] | None = None
        self.root.hide()

    # -- helpers -------------------------------------------------------------------

    def _text(self, parent: NodePath, name: str, scale: float, pos: tuple[float, float],
              color: tuple[float, float, float, float] = (1, 1, 1, 1), text: str = ""
              ) -> TextNode:
        """Text in the overlay's font and look (the SUDS scale's)."""
        return self.overlay.text_node(parent, name, scale, pos, color, text)

    _card = staticmethod(PatientOverlay.card)

    def _build_options(self, item: Mapping[str, Any]) -> None:
        if self.options_root is not None:
            self.options_root.removeNode()
        self.options_root = self.lower.attachNewNode("q-options")
        self._boxes, self._marker = {}, None
        low, high, step = int(item["min"]), int(item["max"]), int(item.get("step", 1))
        values = list(range(low, high + 1, step))
        anchors = {int(k): str(v) for k, v in dict(item.get("anchors", {})).items()}
        if len(values) <= MAX_BOXES:
            for value, (x, width) in zip(values, box_layout(len(values), self._bar),
                                         strict=True):
                box = self._card(self.options_root, f"q-box-{value}",
                                 (x - width / 2, x + width / 2, -0.12, 0.06),
                                 (0.2, 0.22, 0.28, 1))
                self._boxes[value] = box
                self._text(self.options_root, f"q-value-{value}", ITEM_TEXT_SCALE,
                           (x, -0.06), text=str(value))
                if value in anchors:
                    from panda3d.core import TextNode

                    # End labels hang inwards from the outer boxes' edges (stay on the card).
                    at, align, wrap = x, TextNode.ACenter, max(width, 0.62)
                    if value == low and len(values) > 4:
                        at, align, wrap = x - width / 2, TextNode.ALeft, max(width, 0.95)
                    elif value == high and len(values) > 4:
                        at, align, wrap = x + width / 2, TextNode.ARight, max(width, 0.95)
                    label = self._text(self.options_root, f"q-anchor-{value}",
                                       LABEL_TEXT_SCALE, (at, -0.21), (0.9, 0.92, 0.96, 1),
                                       anchors[value])
                    label.setAlign(align)
                    label.setWordwrap(wrap / LABEL_TEXT_SCALE)
        else:
            from .overlay import _gradient_bar

            stops = [(0.3, 0.75, 0.4), (0.95, 0.85, 0.3), (0.95, 0.5, 0.25), (0.85, 0.22, 0.2)]
            _gradient_bar("q-bar", -self._bar, self._bar, -0.04, 0.04,
                          stops).reparentTo(self.options_root)
            for value in range(low, high + 1, max(step, (high - low) // 10)):
                x = self._x(value, low, high)
                self._card(self.options_root, f"q-tick-{value}",
                           (x - 0.006, x + 0.006, -0.07, 0.07), (0.95, 0.95, 0.95, 1))
                self._text(self.options_root, f"q-value-{value}", LABEL_TEXT_SCALE,
                           (x, -0.17), text=str(value))
            from panda3d.core import TextNode

            for value, label_text in anchors.items():
                # The end labels are aligned to the bar's ends so they stay on the card.
                x, align = self._x(value, low, high), TextNode.ACenter
                if value == low:
                    x, align = -self._bar, TextNode.ALeft
                elif value == high:
                    x, align = self._bar, TextNode.ARight
                label = self._text(self.options_root, f"q-anchor-{value}", LABEL_TEXT_SCALE,
                                   (x, -0.29), (0.9, 0.92, 0.96, 1), label_text)
                label.setAlign(align)
                end = value in (low, high)
                label.setWordwrap((0.8 if end else 0.55) / LABEL_TEXT_SCALE)
            self._marker = self.options_root.attachNewNode("q-marker")
            self._card(self._marker, "q-marker-stem", (-0.012, 0.012, -0.09, 0.07),
                       (1, 1, 1, 1))
            self._card(self._marker, "q-marker-head", (-0.045, 0.045, 0.07, 0.12),
                       (1, 1, 1, 1))
        self.input.load((str(self.form.get("id", "")) if self.form else "", str(item["id"])),
                        values)

    def _layout(self, rows: int) -> None:
        """Room for a question of ``rows`` lines: the lower part and the card grow down,
        and the whole card moves up by half of it so it stays centred."""
        extra = LINE_STEP * max(0, rows - 1)
        self.lower.setZ(-extra)
        self.card.setSz(CARD_HEIGHT + extra)
        self.root.setZ(CARD_Z + extra / 2)

    def _x(self, value: int, low: int, high: int) -> float:
        return -self._bar + 2 * self._bar * (value - low) / max(1, high - low)

    # -- per frame -----------------------------------------------------------------

    @property
    def active(self) -> bool:
        return self.form is not None

    @property
    def paused(self) -> bool:
        return bool(self.form and self.form.get("paused"))

    def show_form(self, form: Mapping[str, Any] | None) -> None:
        """Follow the state's open questionnaire (None: hide the card)."""
        self.form = form
        if form is None or form.get("next_item") is None:
            self.form = form if form is not None and form.get("next_item") else None
            self.pending_item = None
            self.root.hide()
            self._shown_key = None
            return
        item = form["next_item"]
        if self.pending_item is not None and self.pending_item != item["id"]:
            self.pending_item = None  # the host took the answer: a new item is on
        key = (form.get("id"), item["id"], form.get("visited"))
        if key != self._shown_key:
            self._shown_key = key
            self._build_options(item)
            self.item_text.setText(str(item.get("text", "")))
            self._layout(self.item_text.getNumRows())
        self.root.show()
        self.update()

    def update(self) -> None:
        if self.form is None:
            return
        text = card_text(self.form, self.input.selected)
        paused = self.paused
        for part in (self.item_text, self.answer_text):
            part_path = self.root.find(f"**/{part.getName()}")
            part_path.hide() if paused else part_path.show()
        if self.options_root is not None:
            self.options_root.hide() if paused else self.options_root.show()
        self.paused_root.show() if paused else self.paused_root.hide()
        self.header.setText(text.header)
        self.item_text.setText(text.item)
        self.answer_text.setText("Sending…" if self.pending_item else text.answer)
        fill = max(0.001, text.progress)
        self.progress_fill.setSx(2 * self._bar * fill)
        self.progress_fill.setX(-self._bar)
        for value, box in self._boxes.items():
            chosen = value == self.input.selected
            box.setColor(*((0.45, 0.75, 0.95, 1) if chosen else (0.2, 0.22, 0.28, 1)))
        if self._marker is not None and self.form.get("next_item"):
            item = self.form["next_item"]
            if self.input.selected is None:
                self._marker.hide()
            else:
                self._marker.show()
                self._marker.setX(self._x(self.input.selected, int(item["min"]),
                                          int(item["max"])))

    def destroy(self) -> None:
        self.root.removeNode()
