"""The therapist's questionnaire box: give any questionnaire, follow it live, see the scores.

A self-contained ``QWidget``: the window hands it a ``send(name, args)`` callable (its
command sender) and calls :meth:`QuestionnaireWidget.update_state` with every new
state. It never blocks: commands go out through ``send`` and the result arrives as
the next state.

* **Give**: pick a questionnaire (those with item text; scoring-only instruments are
  listed with the reason they cannot be given) and press *Give*. The chooser starts on
  the one the session's hierarchy asks for next (e.g. SSQ before exposure, SSQ again
  after it), else on nothing with a prompt; a choice made by hand is kept. The patient answers
  in the headset, or aloud and the therapist enters each answer here.
* **Live**: the open form's progress (answered / visited / items), its current item,
  answer buttons for it, *Leave unanswered*, *Pause* / *Continue* and *Finish now*
  (the rest is recorded as unanswered).
* **Scores**: every questionnaire done this session with its published scores; SSQ
  before → after with the change; a cybersickness rise is a red banner that suggests
  ending the exposure, with a STOP button.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from PySide6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ..questionnaires import Questionnaire
from ..questionnaires.session import CYBERSICKNESS_ALERT, SSQ_ID, library

Send = Callable[[str, Mapping[str, Any]], object]
W = TypeVar("W", bound=QWidget)
MAX_BUTTONS = 11


def _named(widget: W, name: str) -> W:
    widget.setObjectName(name)
    return widget


def score_line(done: Mapping[str, Any]) -> str:
    """``"SSQ (before session): Nausea (N) 9.5 · ... "`` for one completed questionnaire."""
    parts = []
    for score in dict(done.get("scores", {})).values():
        value = score.get("value")
        parts.append(f"{score.get('title')} {'missing' if value is None else f'{value:g}'}")
    occasion = str(done.get("occasion", "")).replace("_", " ")
    return f"{done.get('title', done.get('id'))} ({occasion}): " + ", ".join(parts)


def suggested(state: Mapping[str, Any]) -> str | None:
    """The questionnaire the session's hierarchy asks for next: before exposure the first of
    its ``before`` list not given yet, once exposure has begun the first of its ``after``
    list not given after it; None when nothing is due."""
    plan = state.get("questionnaire_plan") or {}
    done = list(state.get("questionnaires_done", []) or [])
    before_exposure = not state.get("highest_step") and \
        state.get("phase") in ("idle", "baseline", None)
    if before_exposure:
        given = {d.get("id") for d in done}
        due = [q for q in plan.get("before", []) if q not in given]
    else:
        given = {d.get("id") for d in done if d.get("occasion") == "after_session"}
        due = [q for q in plan.get("after", []) if q not in given]
    return str(due[0]) if due else None


def ssq_change(done: Sequence[Mapping[str, Any]]) -> str:
    """``"SSQ total 11.2 → 78.5 (+67.3)"`` from the first and last SSQ, or ''."""
    totals = [d["scores"]["total"]["value"] for d in done
              if d.get("id") == SSQ_ID and d["scores"].get("total", {}).get("value") is not None]
    if len(totals) < 2:
        return ""
    change = totals[-1] - totals[0]
    return f"SSQ total {totals[0]:g} → {totals[-1]:g} ({change:+.1f})"


class QuestionnaireWidget(QWidget):
    def __init__(self, send: Send, definitions: Mapping[str, Questionnaire] | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("questionnaires")
        self._send = send
        self.definitions = dict(library(definitions))
        self.form: Mapping[str, Any] | None = None
        self._answer_item: str | None = None

        layout = QVBoxLayout(self)
        give_row = QHBoxLayout()
        self.choice = _named(QComboBox(), "q-choice")
        for q in sorted(self.definitions.values(), key=lambda q: q.title):
            self.choice.addItem(q.title if q.administrable else f"{q.title} (scoring only)",
                                q.id)
        # Long titles must not widen the panel past a laptop screen: the list shows them in
        # full when opened, the box shortens them.
        self.choice.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.choice.setMinimumContentsLength(18)
        self.choice.setPlaceholderText("Choose a questionnaire …")
        # What the chooser was last set to by the session's plan; a choice made since (by
        # the therapist) is kept until that questionnaire has been given.
        self._suggested: str | None = None
        self._by_hand = False
        self._defaulting = False
        self.choice.currentIndexChanged.connect(self._chosen)
        self.give_button = _named(QPushButton("Give"), "q-give")
        self.give_button.clicked.connect(self.give)
        give_row.addWidget(self.choice, 1)
        give_row.addWidget(self.give_button)
        layout.addLayout(give_row)
        self.due_label = _named(QLabel(""), "q-due")
        self.due_label.setWordWrap(True)
        layout.addWidget(self.due_label)
        self.note = _named(QLabel(""), "q-note")
        self.note.setWordWrap(True)
        layout.addWidget(self.note)

        self.live = _named(QGroupBox("Open questionnaire"), "q-live")
        live = QVBoxLayout(self.live)
        self.progress_label = _named(QLabel(""), "q-progress-label")
        self.progress = _named(QProgressBar(), "q-progress")
        self.item_label = _named(QLabel(""), "q-item")
        self.item_label.setWordWrap(True)
        self.item_label.setStyleSheet("font-size: 15px; font-weight: bold;")
        self.answers_box = _named(QWidget(), "q-answers")
        self.answers_grid = QGridLayout(self.answers_box)
        self.answers_grid.setContentsMargins(0, 0, 0, 0)
        self.spin = _named(QSpinBox(), "q-spin")
        self.spin_send = _named(QPushButton("Enter"), "q-spin-send")
        self.spin_send.clicked.connect(self._answer_spin)
        controls = QHBoxLayout()
        self.skip_button = _named(QPushButton("Leave unanswered"), "q-skip")
        self.skip_button.clicked.connect(lambda: self.answer(None))
        self.pause_button = _named(QPushButton("Pause"), "q-pause")
        self.pause_button.clicked.connect(self.toggle_pause)
        self.finish_button = _named(QPushButton("Finish now"), "q-finish")
        self.finish_button.setToolTip("Score it now; unanswered items are recorded as such")
        self.finish_button.clicked.connect(self.finish)
        for button in (self.skip_button, self.pause_button, self.finish_button):
            controls.addWidget(button)
        for widget in (self.progress_label, self.progress, self.item_label, self.answers_box):
            live.addWidget(widget)
        live.addLayout(controls)
        layout.addWidget(self.live)

        self.alert = _named(QLabel(""), "q-alert")
        self.alert.setWordWrap(True)
        self.alert.setStyleSheet("background: #b3261e; color: white; padding: 6px; "
                                 "font-weight: bold;")
        self.stop_button = _named(QPushButton("STOP: back to the calm scene"), "q-stop")
        self.stop_button.clicked.connect(
            lambda: self._send("stop", {"reason": "cybersickness (SSQ rise)"}))
        layout.addWidget(self.alert)
        layout.addWidget(self.stop_button)
        self.scores_label = _named(QLabel("No questionnaire given yet."), "q-scores")
        self.scores_label.setWordWrap(True)
        layout.addWidget(self.scores_label)
        self.change_label = _named(QLabel(""), "q-change")
        self.change_label.setStyleSheet("font-weight: bold;")
        layout.addWidget(self.change_label)
        layout.addStretch(1)
        self._suggest(None)
        self.update_state({})

    def reset(self) -> None:
        """A new session (maybe another patient): nothing of the last one is kept."""
        self.form = None
        self._answer_item = None
        self._by_hand = False
        self.note.setText("")
        self._suggest(None)

    def _chosen(self, _index: int) -> None:
        if not self._defaulting:
            self._by_hand = True

    def _suggest(self, qid: str | None) -> None:
        self._suggested = qid
        self._defaulting = True
        try:
            self.choice.setCurrentIndex(-1 if qid is None else self.choice.findData(qid))
        finally:
            self._defaulting = False

    # -- commands ----------------------------------------------------------------

    def give(self) -> None:
        qid = str(self.choice.currentData())
        definition = self.definitions.get(qid)
        if definition is None:
            self.note.setText("Choose a questionnaire first.")
            return
        if not definition.administrable:
            self.note.setText(f"{definition.title} ships as scoring only: its item text is "
                              "licensed. Add the clinic's licensed copy to the questionnaires "
                              "folder to give it.")
            return
        self.note.setText("")
        self._send("questionnaire_start", {"id": qid})

    def answer(self, response: int | None) -> None:
        if self.form is None or not self.form.get("next_item"):
            return
        self._send("questionnaire_answer", {"id": self.form["id"],
                                            "item": self.form["next_item"]["id"],
                                            "response": response})

    def _answer_spin(self) -> None:
        if self.spin.value() > self.spin.minimum():
            self.answer(self.spin.value())

    def toggle_pause(self) -> None:
        if self.form is not None:
            self._send("questionnaire_pause", {"id": self.form["id"],
                                               "paused": not self.form.get("paused")})

    def finish(self) -> None:
        if self.form is not None:
            self._send("questionnaire_finish", {"id": self.form["id"]})

    # -- state -------------------------------------------------------------------

    def update_state(self, state: Mapping[str, Any]) -> None:
        """Follow a new ``state`` message (the wire form of the session state)."""
        self.form = state.get("questionnaire")
        if self.form is not None:
            self._by_hand = False  # the chosen one is being given: next, the plan's again
        suggestion = suggested(state)
        if suggestion != self._suggested and not self._by_hand:
            self._suggest(suggestion)
        done = list(state.get("questionnaires_done", []) or [])
        plan = state.get("questionnaire_plan") or {}
        given = {d.get("id") for d in done}
        due = [q for q in plan.get("before", []) if q not in given] \
            if not state.get("highest_step") and state.get("phase") in ("idle", "baseline") \
            else []
        self.due_label.setText(f"Due before exposure: {', '.join(due)}" if due else "")
        self.due_label.setVisible(bool(due))
        self.give_button.setEnabled(self.form is None and state.get("phase") != "ended")
        self._show_form()
        alert = CYBERSICKNESS_ALERT in (state.get("alerts_active") or [])
        change = ssq_change(done)
        self.alert.setText(f"Cybersickness rose ({change}). Suggestion: end the exposure for "
                           "today and let the patient rest." if alert else "")
        self.alert.setVisible(alert)
        self.stop_button.setVisible(alert and state.get("phase") not in ("safe", "ended"))
        self.scores_label.setText("\n".join(score_line(d) for d in done)
                                  or "No questionnaire given yet.")
        self.change_label.setText(change)
        self.change_label.setVisible(bool(change))

    def _show_form(self) -> None:
        form = self.form
        self.live.setVisible(form is not None)
        if form is None:
            self._answer_item = None
            return
        total = int(form.get("n_items", 0))
        self.progress.setRange(0, max(1, total))
        self.progress.setValue(int(form.get("visited", 0)))
        self.progress_label.setText(
            f"{form.get('title')}: {form.get('answered', 0)} answered, "
            f"{int(form.get('visited', 0)) - int(form.get('answered', 0))} left unanswered, "
            f"{total} items" + ("  (paused)" if form.get("paused") else ""))
        self.pause_button.setText("Continue" if form.get("paused") else "Pause")
        item = form.get("next_item")
        self.item_label.setText("" if item is None else
                                f"{int(form.get('next_index', 0)) + 1}. {item['text']}")
        if item is not None and item["id"] != self._answer_item:
            self._answer_item = item["id"]
            self._build_answers(item)

    def _build_answers(self, item: Mapping[str, Any]) -> None:
        while self.answers_grid.count():
            child = self.answers_grid.takeAt(0)
            widget = child.widget() if child is not None else None
            if widget is not None and widget not in (self.spin, self.spin_send):
                widget.hide()
                widget.setObjectName("")  # gone at once for look-ups, deleted later
                widget.deleteLater()
        low, high, step = int(item["min"]), int(item["max"]), int(item.get("step", 1))
        anchors = {int(k): str(v) for k, v in dict(item.get("anchors", {})).items()}
        values = list(range(low, high + 1, step))
        if len(values) <= MAX_BUTTONS:
            self.spin.hide()
            self.spin_send.hide()
            for column, value in enumerate(values):
                label = f"{value}\n{anchors[value]}" if value in anchors else str(value)
                button = _named(QPushButton(label), f"q-answer-{value}")
                button.clicked.connect(lambda _=False, v=value: self.answer(v))
                self.answers_grid.addWidget(button, 0, column)
                button.show()
        else:
            # Nothing pre-selected: one step below the scale shows "—" and sends nothing.
            self.spin.setRange(low - step, high)
            self.spin.setSingleStep(step)
            self.spin.setSpecialValueText("—")
            self.spin.setValue(low - step)
            ends = f"{low} = {anchors.get(low, '')}, {high} = {anchors.get(high, '')}"
            hint = _named(QLabel(ends), "q-spin-hint")
            self.answers_grid.addWidget(hint, 0, 0, 1, 2)
            hint.show()
            self.answers_grid.addWidget(self.spin, 1, 0)
            self.answers_grid.addWidget(self.spin_send, 1, 1)
            self.spin.show()
            self.spin_send.show()
