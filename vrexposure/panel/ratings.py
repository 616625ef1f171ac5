"""The ratings area: SUDS (quick buttons, typed value, asking the patient) and the
expectancy (the patient's prediction before a step, its outcome after).

No rating has a default: the likelihood starts unset and nothing is recorded until a
value is chosen (a rating invented by a default would be a lie in the recording).
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from typing import Any

from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QIntValidator, QKeyEvent
from PySide6.QtWidgets import (
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from .look import named, set_text
from .model import PanelModel, format_duration

SUDS_COLORS = ["#e8f5e9", "#eef6e4", "#f3f6df", "#f8f5da", "#fcf2d6", "#fdecd2",
               "#fde4cd", "#fcdac8", "#fbd0c4", "#f9c6c0", "#f7bcbc"]

#: The likelihood spin box's "nothing chosen yet" value.
LIKELIHOOD_UNSET = -1


class DigitEdit(QLineEdit):
    """A number field that takes digits but lets letter shortcuts (P, A, …) through."""

    PASS_KEYS = frozenset({Qt.Key.Key_Backspace, Qt.Key.Key_Delete, Qt.Key.Key_Left,
                           Qt.Key.Key_Right, Qt.Key.Key_Home, Qt.Key.Key_End})

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ShortcutOverride and isinstance(event, QKeyEvent):
            key = Qt.Key(event.key())
            if not (event.text().isdigit() or key in self.PASS_KEYS):
                event.ignore()
                return False
        return super().event(event)


class RatingsArea(QWidget):
    """SUDS and expectancy; commands go through ``send``, messages to ``status``."""

    def __init__(self, model: PanelModel,
                 send: Callable[[str, Mapping[str, Any] | None], str | None],
                 status: Callable[[str, str], None], done: Callable[[], None],
                 make_button: Callable[[str, str, str, Callable[[], object]], QPushButton],
                 read_only: bool = False) -> None:
        super().__init__()
        self.model = model
        self.send = send
        self._set_status = status
        self._done = done
        self._button = make_button
        self.read_only = read_only
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        suds = QGroupBox("SUDS — distress 0–100")
        suds_box = QVBoxLayout(suds)
        quick = QGridLayout()
        quick.setSpacing(3)
        self.suds_buttons: dict[int, QPushButton] = {}
        for i, value in enumerate(range(0, 101, 10)):
            button = named(QPushButton(str(value)), "suds")
            button.setStyleSheet(f"background: {SUDS_COLORS[i]};")
            button.setToolTip(f"Record SUDS {value} now (or type the number and press Enter)")
            button.clicked.connect(lambda _c=False, v=value: self.send_suds(v))
            quick.addWidget(button, i // 6, i % 6)  # two rows: fits a narrow column
            self.suds_buttons[value] = button
        suds_box.addLayout(quick)
        entry = QHBoxLayout()
        self.suds_edit = DigitEdit()
        self.suds_edit.setValidator(QIntValidator(0, 100, self))
        self.suds_edit.setPlaceholderText("type 0–100, Enter")
        self.suds_edit.setMaximumWidth(130)
        self.suds_edit.setToolTip("Digit keys anywhere type here; Enter records the value")
        self.suds_edit.returnPressed.connect(self._record_typed_suds)
        record = QPushButton("Record  [Enter]")
        record.clicked.connect(self._record_typed_suds)
        self.suds_record_button = record
        self.ask_button = self._button("Ask patient", "A",
                                       "Show the SUDS prompt to the patient",
                                       lambda: self.send("request_suds", None))
        entry.addWidget(self.suds_edit)
        entry.addWidget(record)
        quick.addWidget(self.ask_button, 1, 5)
        suds_box.addLayout(entry)
        self.suds_status = named(QLabel("No SUDS yet"), "muted")
        suds_box.addWidget(self.suds_status)
        layout.addWidget(suds)

        expectancy = QGroupBox("Expectancy — before the step, then after")
        exp_box = QGridLayout(expectancy)
        self.expect_edit = QLineEdit()
        self.expect_edit.setPlaceholderText("What does the patient fear will happen?  [E]")
        self.expect_edit.setToolTip("E: type the predicted outcome; Enter records it")
        self.expect_edit.returnPressed.connect(self.send_expectancy)
        self.likelihood = QSpinBox()
        # below 0 is "not chosen": shown as "likely? %" and refused by Record
        self.likelihood.setRange(LIKELIHOOD_UNSET, 100)
        self.likelihood.setSpecialValueText("likely? %")
        self.likelihood.setValue(LIKELIHOOD_UNSET)
        self.likelihood.setSuffix(" %")
        self.likelihood.setToolTip("How likely the patient thinks it is (0–100 %)")
        self.likelihood.lineEdit().returnPressed.connect(self.send_expectancy)
        predict = QPushButton("Record  [Enter]")
        predict.clicked.connect(self.send_expectancy)
        self.predict_button = predict
        self.open_expectancy = named(QLabel("No open prediction for this step"), "muted")
        self.open_expectancy.setWordWrap(True)
        self.open_expectancy.setMinimumWidth(200)
        self.happened_button = self._button("Happened", "Ctrl+Y",
                                            "The predicted outcome happened",
                                            lambda: self.send_outcome(True))
        self.not_happened_button = self._button("Did not happen", "Ctrl+N",
                                                "The predicted outcome did not happen",
                                                lambda: self.send_outcome(False))
        exp_box.addWidget(self.expect_edit, 0, 0, 1, 2)
        exp_box.addWidget(self.likelihood, 0, 2)
        exp_box.addWidget(predict, 0, 3)
        exp_box.addWidget(self.open_expectancy, 1, 0, 1, 4)
        exp_box.addWidget(self.happened_button, 2, 0, 1, 2)
        exp_box.addWidget(self.not_happened_button, 2, 2, 1, 2)
        layout.addWidget(expectancy)
    def send_suds(self, value: int) -> None:
        self.send("suds", {"value": int(value)})

    def _record_typed_suds(self) -> None:
        text = self.suds_edit.text().strip()
        if not text:
            self._set_status("Type a SUDS value 0–100 first", "error")
            return
        value = int(text)
        if not 0 <= value <= 100:
            self._set_status(f"SUDS {value} is outside 0–100: not sent", "error")
            return
        self.suds_edit.clear()
        self.send_suds(value)
        self._done()

    def type_suds_digit(self, digit: int) -> None:
        if not self.suds_edit.hasFocus():
            self.suds_edit.setFocus()
            self.suds_edit.selectAll()
        self.suds_edit.insert(str(digit))

    def send_expectancy(self) -> None:
        outcome = self.expect_edit.text().strip()
        if not outcome:
            self._set_status("Type the predicted outcome first", "error")
            return
        if self.likelihood.value() < 0:  # unset: a rating is never invented by a default
            self._set_status("Choose how likely the patient thinks it is (0–100 %): nothing "
                             "recorded yet", "error")
            self.likelihood.setFocus()
            return
        self.send("expectancy", {"outcome": outcome, "likelihood_pct": self.likelihood.value()})
        self.likelihood.setValue(LIKELIHOOD_UNSET)
        self._done()

    def send_outcome(self, happened: bool) -> None:
        self.send("expectancy_outcome", {"happened": happened})

    def update_suds_status(self, state: Mapping[str, Any]) -> None:
        last = self.model.last_suds
        suds = state.get("suds") or []
        if last is None and suds:
            t_s, step, value = suds[-1]
            last = (float(t_s), int(step), int(value), "")
        text = "No SUDS yet this session"
        if last is not None:
            by = f" by {last[3].split(':')[0]}" if last[3] else ""
            text = (f"Last: <b>{last[2]}</b> at step {last[1] + 1}, "
                    f"{format_duration(last[0])}{html.escape(by)}")
        if state.get("suds_requested"):
            text = "<b style='color:#1565c0'>Waiting for the patient's rating…</b>  " + text
        self.suds_status.setTextFormat(Qt.TextFormat.RichText)
        set_text(self.suds_status, text)

    def update_expectancy(self) -> None:
        exp = self.model.open_expectancy()
        if exp is None:
            set_text(self.open_expectancy, "No open prediction for this step")
            self.happened_button.setEnabled(False)
            self.not_happened_button.setEnabled(False)
        else:
            set_text(self.open_expectancy,
                      f"Open prediction: “{exp.get('outcome')}” ({exp.get('likelihood_pct')} %)"
                      " — after the step, did it happen?")
            enabled = not self.read_only
            self.happened_button.setEnabled(enabled)
            self.not_happened_button.setEnabled(enabled)

