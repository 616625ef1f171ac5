"""The header: the phase badge, the session and step with their clocks, the links
(host, control, renderer, sensors), the recording, and STOP, pinned at the top.

Everything it says comes from the host's state and events (via the model): the STOP
line tells when the STOP happened and who pressed it, the clock line what the patient
actually sees, the badge the baseline's countdown and the next action.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from typing import Any

from PySide6.QtCore import QSize, Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QVBoxLayout

from .look import AMBER, GREEN, GREY, LINE, RED, colored, named, set_style, set_text
from .model import MAX_CLOCK_SKEW_S, Link, PanelModel, format_duration

PHASE_LOOK = {  # phase: (text, background)
    "idle": ("IDLE", "#607d8b"),
    "baseline": ("BASELINE", "#1565c0"),
    "exposure": ("EXPOSURE", "#2e7d32"),
    "paused": ("PAUSED", "#c77700"),
    "safe": ("STOPPED\ncalm scene", "#b71c1c"),
    "ended": ("ENDED", "#37474f"),
}
LINK_COLOR = {Link.OK: GREEN, Link.LOST: RED, Link.DISCONNECTED: RED, Link.NOT_SEEN: GREY}


def seen_text(state: Mapping[str, Any]) -> str:
    """What the patient sees now: the intensity in exposure, else the calm scene."""
    pct = round(100 * float(state.get("intensity", 0.0)))
    if state.get("phase") == "exposure":
        return f"patient sees <b>{pct} %</b>"
    preview = state.get("preview")
    if state.get("phase") == "idle" and isinstance(preview, Mapping):
        # the hierarchy editor's step (preview_step): not the calm scene
        return f"patient sees <b>step {html.escape(str(preview.get('step_id')))} (editing)</b>"
    return "patient sees <b>the calm scene</b>"


def baseline_badge(state: Mapping[str, Any], in_phase_s: float | None) -> str:
    """The baseline badge: a countdown to its planned length, then the next action."""
    small = "<br><span style='font-size:10.5pt; font-weight:600'>{}</span>"
    if state.get("baseline_done"):
        return "BASELINE ✓" + small.format("complete — start exposure (Ctrl+E)")
    planned = state.get("baseline_duration_s")
    if planned is None or in_phase_s is None:
        return "BASELINE"
    left = max(0.0, float(planned) - in_phase_s)
    return "BASELINE" + small.format(f"{format_duration(left)} left of "
                                     f"{format_duration(float(planned))}")


def step_timer_text(in_step_s: float | None, state: Mapping[str, Any]) -> str:
    """Time in the step against the advance rule: "2:31 of min 2:00 / max 15:00"."""
    text = f"in step <b>{format_duration(in_step_s)}</b>"
    low, high = state.get("step_min_s"), state.get("step_max_s")
    limits = [f"min {format_duration(float(low))}" if low else "",
              f"max {format_duration(float(high))}" if high else ""]
    limits = [part for part in limits if part]
    return text + (f" of {' / '.join(limits)}" if limits else "")


def _clock_text(seconds: float | None) -> str:
    return format_duration(seconds)


class HeaderArea(QFrame):
    """The header bar with STOP; ``on_stop`` is what STOP does."""

    def __init__(self, model: PanelModel, read_only: bool, on_stop: Callable[[], None]
                 ) -> None:
        super().__init__()
        self.model = model
        self.read_only = read_only
        self.setStyleSheet(f"QFrame#header {{ background: white; border: 1px solid {LINE};"
                          " border-radius: 6px; }")
        self.setObjectName("header")
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 10, 6)
        layout.setSpacing(14)
        self.phase_label = named(QLabel("NO HOST"), "phase")
        self.phase_label.setFixedWidth(190)
        self.phase_label.setWordWrap(True)
        self.phase_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(self.phase_label)

        info = QVBoxLayout()
        info.setSpacing(2)
        self.session_label = QLabel("Waiting for the session host …")
        self.session_label.setStyleSheet("font-size: 12pt; font-weight: 600;")
        self.step_label = QLabel("")
        self.step_label.setStyleSheet("font-size: 12pt;")
        self.step_label.setWordWrap(True)
        self.step_label.setMinimumWidth(300)
        self.clock_label = QLabel("")
        self.clock_label.setWordWrap(True)
        self.clock_label.setMinimumWidth(300)
        self.clock_label.setStyleSheet("font-size: 12pt;")
        info.addWidget(self.session_label)
        info.addWidget(self.step_label)
        info.addWidget(self.clock_label)
        layout.addLayout(info, 1)

        status = QVBoxLayout()
        status.setSpacing(2)
        self.links_label = _status_label()
        self.links_label.setToolTip("Connection of the session host, this panel's control, "
                                    "the renderer and each sensor; lost = silent for 3 s")
        self.sensors_label = _status_label()
        self.recording_label = _status_label()
        status.addWidget(self.links_label)
        status.addWidget(self.sensors_label)
        status.addWidget(self.recording_label)
        layout.addLayout(status, 1)

        stop_box = QVBoxLayout()
        stop_box.setSpacing(2)
        self.stop_button = named(QPushButton("STOP   [F12]"), "stop")
        self.stop_button.setMinimumSize(QSize(250, 72))
        self.stop_button.setToolTip("STOP (F12): the patient sees the calm scene at once. "
                                    "Resent until the host acknowledges it.")
        self.stop_button.clicked.connect(on_stop)
        # F12 is its key; never focused, so a stray Space or Enter cannot press it
        self.stop_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.stop_status = named(QLabel("not pressed this session"), "muted")
        self.stop_status.setAlignment(Qt.AlignmentFlag.AlignCenter)
        stop_box.addWidget(self.stop_button)
        stop_box.addWidget(self.stop_status)
        layout.addLayout(stop_box)


    def update_phase_badge(self, now: float) -> None:
        """The phase in its colour; grey with "last known" while the host is silent."""
        state = self.model.state
        if state is None:
            set_text(self.phase_label, "NO HOST")
            set_style(self.phase_label, f"background: {GREY};")
            return
        phase = str(state.get("phase", "idle"))
        text, color = PHASE_LOOK.get(phase, (phase.upper(), GREY))
        if self.model.host_link(now) != Link.OK:
            text, color = f"{text.splitlines()[0]}?\nlast known", GREY
        elif phase == "baseline":
            text = baseline_badge(state, self.model.time_in_phase(now))
        set_text(self.phase_label, text)
        set_style(self.phase_label, f"background: {color};")

    def update_clock(self, now: float) -> None:
        state = self.model.state
        if state is None:
            return
        phase = str(state.get("phase"))
        session_t = self.model.session_time(now)
        parts = [f"Session <b>{_clock_text(session_t)}</b>",
                 step_timer_text(self.model.time_in_step(now), state)
                 if phase in ("exposure", "paused", "safe")
                 else f"in step <b>{_clock_text(self.model.time_in_step(now))}</b>"]
        if phase in ("paused", "safe", "baseline"):
            parts.append(f"{phase} for <b>{_clock_text(self.model.time_in_phase(now))}</b>")
        why = self.model.pause_text()
        if why:  # PAUSED says why (the reason was only in the log)
            parts.append(html.escape(why))
        parts.append(seen_text(state))
        self.clock_label.setTextFormat(Qt.TextFormat.RichText)
        set_text(self.clock_label, "  ·  ".join(parts))

    def update_links(self, now: float) -> None:
        model = self.model
        host = model.host_link(now)
        silent = model.host_silent_s(now)
        host_text = {Link.OK: "Host ●", Link.LOST: f"Host LOST ({silent or 0:.0f} s)",
                     Link.NOT_SEEN: "Host: not connected"}.get(host, "Host")
        chips = [colored(host_text, LINK_COLOR[host])]
        if self.read_only:
            chips.append(colored("read-only", GREY))
        elif host != Link.OK:
            chips.append(colored("Control: unknown", GREY))
        elif model.is_controller():
            chips.append(colored("In control ●", GREEN))
        else:
            controller = model.session.get("controller")
            if controller and controller != model.client_id:
                chips.append(colored(f"Control: {controller}", AMBER))
            else:
                chips.append(colored("Not in control", AMBER if host == Link.OK else GREY))
        renderer = model.renderer_link(now)
        renderer_text = {Link.OK: "Renderer ●", Link.NOT_SEEN: "Renderer: not seen",
                         Link.LOST: "Renderer LOST", Link.DISCONNECTED: "Renderer LOST"}
        chips.append(colored(renderer_text[renderer], LINK_COLOR[renderer]))
        set_text(self.links_label, "&nbsp;&nbsp;&nbsp;".join(chips))
        sensors = []
        for source in sorted(model.sensor_sources(), key=lambda s: s.name):
            link = source.link(now, model.lost_after_s)
            kinds = "/".join(k for k in ("hr", "rr", "ecg", "ppg", "spo2", "pose")
                             if k in source.counts)
            label = f"{source.name} ({kinds})" if kinds else source.name
            skew = source.clock_skew_s
            if link == Link.LOST:
                label += f" LOST {source.silent_s(now):.0f} s"
            elif link == Link.DISCONNECTED:
                label += " device disconnected"
            elif skew is not None and abs(skew) > MAX_CLOCK_SKEW_S:
                label += f" ● clock off by {format_duration(abs(skew))}"
                link = Link.DISCONNECTED  # drawn red: its samples fall outside the plot
            else:
                label += " ●"
            sensors.append(colored(label, LINK_COLOR[link]))
        set_text(self.sensors_label, "Sensors: " + ("&nbsp;&nbsp;&nbsp;".join(sensors)
                                                     or colored("none seen", GREY)))

    def update_stop_status(self, now: float) -> None:
        text, level = self.model.stop_line(now)
        acked, waiting = level == "ok", level == "pending"
        color = {"ok": GREEN, "pending": AMBER, "error": RED}.get(level, GREY)
        set_style(self.stop_status, f"color: {color}; font-weight: 600;")
        set_text(self.stop_status, text)
        self.stop_status.setToolTip(text)
        for name, value in (("acked", acked), ("waiting", waiting)):
            if bool(self.stop_button.property(name)) != value:
                self.stop_button.setProperty(name, value)
                self.stop_button.style().unpolish(self.stop_button)
                self.stop_button.style().polish(self.stop_button)


def _status_label() -> QLabel:
    """A rich-text status line of the header; it wraps (a long sensor or file name must not
    widen the window)."""
    label = QLabel("")
    label.setTextFormat(Qt.TextFormat.RichText)
    label.setWordWrap(True)
    label.setMinimumWidth(260)
    return label
