"""The exposure controls: the within-step intensity (with what it changes at this step,
from the hierarchy), baseline / exposure / pause / resume / end, auto-advance.

The slider sends its value once the keys or the mouse stop (300 ms), and follows the
host's value otherwise: it never shows an intensity the patient does not see.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QCheckBox,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QVBoxLayout,
)

from .look import named, set_text
from .model import PanelModel, intensity_effect


class ExposureArea(QGroupBox):
    """The "Exposure" group; ``actions`` names what its buttons do (baseline, exposure,
    pause, resume, end)."""

    def __init__(self, model: PanelModel,
                 send: Callable[[str, Mapping[str, Any] | None], str | None],
                 make_button: Callable[[str, str, str, Callable[[], object]], QPushButton],
                 actions: Mapping[str, Callable[[], object]]) -> None:
        super().__init__("Exposure")
        self.model = model
        self.send = send
        self._button = make_button
        self.intensity_timer = QTimer(self)
        self.intensity_timer.setSingleShot(True)
        self.intensity_timer.setInterval(300)
        self.intensity_timer.timeout.connect(self._send_intensity)
        grid = QGridLayout(self)
        intensity_row = QHBoxLayout()
        self.intensity_title = QLabel("Intensity")
        self.intensity_title.setStyleSheet("font-weight: 600;")
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(0, 100)
        self.slider.setSingleStep(5)
        self.slider.setPageStep(10)
        self.slider.setTickInterval(10)
        self.slider.setTickPosition(QSlider.TickPosition.TicksBelow)
        self.slider.setMinimumHeight(30)
        self.slider.setToolTip("Within-step intensity (the renderer eases to it). "
                               "Ctrl+Up / Ctrl+Down: ±10 %; arrows when focused: ±5 %")
        self.slider.valueChanged.connect(self._on_slider_value)
        self.slider.sliderReleased.connect(self._send_intensity)
        self.intensity_value = QLabel("–")
        self.intensity_value.setMinimumWidth(150)
        self.intensity_value.setStyleSheet("font-size: 12pt; font-weight: 600;")
        intensity_row.addWidget(self.intensity_title)
        intensity_row.addWidget(self.slider, 1)
        intensity_row.addWidget(self.intensity_value)
        intensity_box = QVBoxLayout()
        intensity_box.setSpacing(1)
        intensity_box.addLayout(intensity_row)
        self.intensity_effect = named(QLabel("Intensity: –"), "muted")
        self.intensity_effect.setWordWrap(True)
        self.intensity_effect.setMinimumWidth(240)
        self.intensity_effect.setToolTip("What the intensity slider changes at this step, "
                                         "from the hierarchy (0 % → 100 %)")
        intensity_box.addWidget(self.intensity_effect)
        grid.addLayout(intensity_box, 0, 0, 1, 3)
        self.baseline_button = self._button("Start baseline", "Ctrl+B",
                                            "Record the resting heart rate in the calm scene",
                                            actions["baseline"])
        self.exposure_button = self._button("Start exposure", "Ctrl+E",
                                            "Start exposure at the step chosen in the list",
                                            actions["exposure"])
        self.pause_button = self._button("Pause", "P", "Pause exposure (calm scene)",
                                         actions["pause"])
        self.resume_button = self._button("Resume", "Ctrl+Shift+P",
                                          "Resume where the session was paused; after a STOP "
                                          "asks at which step and intensity",
                                          actions["resume"])
        self.end_button = self._button("End session…", "Ctrl+Shift+E",
                                       "End the session (asks first)", actions["end"])
        self.auto_check = QCheckBox("Auto-advance when the rule suggests it")
        self.auto_check.setToolTip("When on, the host moves to the next step by itself "
                                   "when it suggests advancing (logged)")
        self.auto_check.clicked.connect(
            lambda checked: self.send("auto_advance", {"enabled": bool(checked)}))
        grid.addWidget(self.baseline_button, 1, 0)
        grid.addWidget(self.exposure_button, 1, 1)
        grid.addWidget(self.end_button, 1, 2)
        grid.addWidget(self.pause_button, 2, 0)
        grid.addWidget(self.resume_button, 2, 1, 1, 2)
        grid.addWidget(self.auto_check, 3, 0, 1, 3)

    def update_state(self, state: Mapping[str, Any]) -> None:
        """The host's state: the slider, what the intensity changes here, auto-advance."""
        self.sync_slider()
        steps = self.model.steps()
        index = int(state.get("step_index", 0))
        if 0 <= index < len(steps):
            set_text(self.intensity_effect, "Intensity here: " + intensity_effect(
                steps[index], float(state.get("intensity", 0.0))))
        self.auto_check.blockSignals(True)
        self.auto_check.setChecked(bool(state.get("auto_advance")))
        self.auto_check.blockSignals(False)

    def nudge_intensity(self, delta_pct: int) -> None:
        self.slider.setValue(max(0, min(100, self.slider.value() + delta_pct)))
        self.intensity_timer.start()

    def _on_slider_value(self, value: int) -> None:
        if self._updating_slider:
            return
        self._set_intensity_label(f"→ {value} %")
        if not self.slider.isSliderDown():
            self.intensity_timer.start()

    _updating_slider = False

    def _send_intensity(self) -> None:
        self.intensity_timer.stop()
        value = self.slider.value()
        self.send("intensity", {"value": round(value / 100, 2)})
        self._set_intensity_label(f"→ {value} % sending…")

    def _set_intensity_label(self, text: str) -> None:
        set_text(self.intensity_value, text)

    def sync_slider(self, force: bool = False) -> None:
        state = self.model.state
        if state is None:
            return
        host_pct = round(100 * float(state.get("intensity", 0.0)))
        busy = (self.slider.isSliderDown() or self.intensity_timer.isActive()
                or self.model.pending("intensity"))
        if force or not busy:
            if self.slider.value() != host_pct:
                self._updating_slider = True
                self.slider.setValue(host_pct)
                self._updating_slider = False
            self._set_intensity_label(f"{host_pct} %")

