"""The therapist panel: one Qt window that runs, steers and stops the session.

The window owns a :class:`~vrexposure.panel.model.PanelModel` (what is known) and
a :class:`~vrexposure.panel.bridge.Bridge` (the ZeroMQ threads). Messages arrive
in batches; the model ingests them and marks what changed; the window redraws
only the changed parts: the plots as their data lands (at most every
``plot_refresh_s``), the rest at most every ``min_refresh_s``. A 4 Hz tick updates the
clocks and the connection states (a source silent for 3 s shows as lost).

Every control sends a command; the status line and the log show the host's
answer (acknowledged, or its error text). The keyboard alone runs the session
(see :data:`SHORTCUTS`, shown on the buttons, in tooltips and with F1).

Layout: the header with STOP, the inline question and the status line are pinned at
the top; below, three columns that scroll on their own (hierarchy and exposure
controls; heart rate; patient's view and ratings) over the log, so the window fits
a 1280×720 screen. Nothing here opens a modal dialog: questions are asked inline
(:mod:`.ask`) and F12 is an application-wide shortcut, so STOP always works. Each
area is its own module (see the package docstring); :meth:`PanelWindow.add_area`
places more (the stimulus events bar, questionnaires).
"""

from __future__ import annotations

import html
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import QEvent, QObject, QProcess, QSize, Qt, QTimer
from PySide6.QtGui import (
    QCloseEvent,
    QKeySequence,
    QShortcut,
    QShowEvent,
)
from PySide6.QtWidgets import (
    QApplication,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from ..clinic.draft import preview_params
from ..config import Endpoints
from .ask import InlineQuestion
from .bridge import Bridge, CommandOutcome
from .editor_window import EditorWindow
from .events_bar import EventsBar
from .exposure_area import ExposureArea
from .header import HeaderArea
from .heart_rate import HeartRateArea
from .hierarchy_area import HierarchyArea
from .history import HistoryWidget
from .log_area import LogArea
from .look import AMBER, BLUE, GREY, INK, LINE, PAPER, RED
from .look import colored as _colored
from .look import named as _named
from .look import set_style as _set_style
from .look import set_text as _set_text
from .model import (
    PLOT_KINDS,
    Link,
    PanelModel,
    command_label,
    describe_reason,
    format_bytes,
    format_duration,
)
from .notes import SessionNotes
from .patient_view import HeadCompass, LargePatientView, MirrorView, PatientViewArea
from .questionnaire_widget import QuestionnaireWidget
from .ratings import LIKELIHOOD_UNSET, RatingsArea
from .sources_bar import SourcesBar

# --- look ------------------------------------------------------------------------------

STYLE = f"""
QMainWindow, QWidget#central {{ background: {PAPER}; }}
QWidget {{ color: {INK}; font-size: 10.5pt; }}
QGroupBox {{ background: white; border: 1px solid {LINE}; border-radius: 6px;
             margin-top: 14px; padding: 8px 6px 6px 6px; font-weight: 600; }}
QGroupBox::title {{ subcontrol-origin: margin; left: 8px; padding: 0 4px; color: #455060; }}
QPushButton {{ background: #ffffff; border: 1px solid #b8c0ca; border-radius: 4px;
               padding: 5px 9px; }}
QPushButton:hover {{ background: #eef3f8; }}
QPushButton:focus {{ border: 2px solid {BLUE}; }}
QPushButton:disabled {{ color: #a6adb5; border-color: #dde1e6; background: #f7f8f9; }}
QPushButton#stop {{ background: #d32f2f; color: white; font-size: 22pt; font-weight: 800;
                    border: 3px solid #8e0000; border-radius: 8px; padding: 4px 18px; }}
QPushButton#stop:hover {{ background: #e53935; }}
QPushButton#stop:focus {{ border: 3px solid #ffeb3b; }}
QPushButton#stop[acked="true"] {{ border: 4px solid #2e7d32; }}
QPushButton#stop[waiting="true"] {{ border: 4px solid #ffb300; }}
QPushButton#suds {{ font-weight: 600; padding: 6px 0; min-width: 30px; }}
QLabel#phase {{ color: white; font-size: 17pt; font-weight: 800; border-radius: 6px;
                padding: 6px 14px; }}
QLabel#big {{ font-size: 26pt; font-weight: 700; }}
QLabel#muted {{ color: #5f6b7a; }}
QLabel#banner {{ color: white; font-size: 12pt; font-weight: 700; border-radius: 5px;
                 padding: 6px 10px; }}
QLabel#status {{ font-size: 11.5pt; font-weight: 600; border-radius: 4px; padding: 5px 8px; }}
QTableWidget {{ background: white; gridline-color: #eceff2; border: none;
                selection-background-color: #cfe3fb; selection-color: {INK}; }}
QHeaderView::section {{ background: #eef1f4; border: none; border-bottom: 1px solid {LINE};
                        padding: 4px; font-weight: 600; }}
QListWidget {{ background: white; border: 1px solid {LINE}; font-size: 10pt; }}
QSlider::groove:horizontal {{ height: 8px; background: #dfe4ea; border-radius: 4px; }}
QSlider::sub-page:horizontal {{ background: #ef6c00; border-radius: 4px; }}
QSlider::handle:horizontal {{ background: white; border: 2px solid #ef6c00; width: 20px;
                              margin: -8px 0; border-radius: 11px; }}
QSlider:focus {{ background: #eef3f8; }}
"""

#: Every keyboard shortcut: (keys, what it does). Shown with F1 and in the footer.
SHORTCUTS: list[tuple[str, str]] = [
    ("F12", "STOP: calm scene at once (resent until the host acknowledges)"),
    ("P", "Pause"),
    ("Ctrl+Shift+P", "Resume"),
    ("Ctrl+PgDown", "Next step"),
    ("Ctrl+PgUp", "Previous step"),
    ("Ctrl+R", "Repeat the current step"),
    ("Ctrl+L, ↑/↓", "Go to the hierarchy list and choose a step"),
    ("Ctrl+J", "Jump to the step chosen in the list"),
    ("Ctrl+Up / Ctrl+Down", "Intensity +10 % / −10 %"),
    ("0–9 … Enter", "Type a SUDS value (0–100) and record it"),
    ("A", "Ask the patient for a SUDS rating"),
    ("E", "Type the patient's prediction (expectancy); Enter records it"),
    ("Ctrl+Y / Ctrl+N", "The predicted outcome happened / did not happen"),
    ("M", "Type a marker; Enter records it"),
    ("Ctrl+G / Ctrl+D", "Accept / dismiss the advance suggestion"),
    ("Ctrl+B / Ctrl+E", "Start baseline / start exposure"),
    ("Ctrl+Shift+E", "End the session (asks first)"),
    ("Ctrl+H", "Edit the patient's hierarchy (its own window; the headset shows the step)"),
    ("F1", "This list"),
]


#: A 4 Hz tick this late means the panel itself froze (logged as such, not as the host).
STALL_S = 2.0
#: The 4 Hz tick draws a frame itself only after this long without a full one.
TICK_REFRESH_AFTER_S = 0.2




#: The short version of :data:`SHORTCUTS` always shown at the bottom of the window.
FOOTER_KEYS = [("F12", "STOP"), ("P", "pause"), ("Ctrl+Shift+P", "resume"),
               ("Ctrl+PgDn / PgUp", "next / previous step"), ("Ctrl+R", "repeat"),
               ("Ctrl+↑ / ↓", "intensity"), ("0–9 Enter", "SUDS"), ("A", "ask SUDS"),
               ("E", "prediction"), ("M", "marker"), ("Ctrl+G / D", "accept / dismiss"),
               ("F1", "all keys")]


def _clock_text(seconds: float | None) -> str:
    return format_duration(seconds)


class ColumnScroll(QScrollArea):
    """A column that scrolls up and down, never narrower than its widgets need (narrower,
    they would overlap: the splitter honours this minimum)."""

    def setWidget(self, widget: QWidget) -> None:
        super().setWidget(widget)
        widget.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        # the column's needs changed (new text, a banner): tell the splitter
        if event.type() == QEvent.Type.LayoutRequest and watched is self.widget():
            self.updateGeometry()
        return super().eventFilter(watched, event)

    def minimumSizeHint(self) -> QSize:
        column = self.widget()
        if column is None:
            return super().minimumSizeHint()
        scrollbar = self.verticalScrollBar().sizeHint().width()
        width = max(column.minimumWidth(), column.minimumSizeHint().width())
        return QSize(width + scrollbar + 2, 80)


# --- the window --------------------------------------------------------------------

class PanelWindow(QMainWindow):
    """The therapist's control panel for one session host."""

    def __init__(self, endpoints: Endpoints, client_id: str = "panel", *,
                 read_only: bool = False, min_refresh_s: float = 0.1,
                 plot_refresh_s: float = 0.015,
                 hr_window_s: float = 300.0, ecg_window_s: float = 5.0,
                 primary_hr_source: str | None = None,
                 history: Callable[[str], Any] | None = None,
                 editor: Callable[[str, str], tuple[Any, Any]] | None = None,
                 start: bool = True) -> None:
        """``history``: the patient's course from the clinic record (a ``PatientHistory``,
        or None when there is no record of this patient). ``editor``: (patient id, session's
        hierarchy id) → (an open ``ClinicStore``, the ``HierarchyDraft`` to start from), for
        the hierarchy editor (Ctrl+H); None: no clinic record, no editor."""
        super().__init__()
        self.endpoints = endpoints
        self.read_only = read_only
        self.min_refresh_s = min_refresh_s
        self.plot_refresh_s = plot_refresh_s
        self.hr_window_s = hr_window_s
        self.ecg_window_s = ecg_window_s
        self.model = PanelModel(client_id)
        self.model.primary_hr_choice = primary_hr_source  # config panel.primary_hr_source
        self.bridge = Bridge(endpoints, client_id, role="observer" if read_only else "therapist",
                             controlling=not read_only)
        self.bridge.min_gap_s = plot_refresh_s
        self.bridge.prompt_kinds = PLOT_KINDS  # drawn as they land (see _schedule_refresh)
        self.bridge.signals.messages_ready.connect(self._on_messages)
        self.bridge.signals.command_done.connect(self._on_command_done)
        self.bridge.signals.heartbeat_done.connect(self._on_heartbeat)
        #: publication → plot latency of samples carrying ``sent_ns`` (benchmarks only)
        self.display_latency_ms: deque[float] = deque(maxlen=100_000)
        self._last_refresh = self._last_full_refresh = 0.0
        self._dirty_pending: set[str] = set()
        self._log_shown = 0
        self._area_slots: dict[str, tuple[QVBoxLayout, int]] = {}
        self._session_shown: str | None = None
        self._prompt_for_step: int | None = None
        self._closed = False
        self._close_confirmed = False
        self._editor_source = editor
        self.editor_window: EditorWindow | None = None

        self.setWindowTitle("vrexposure — therapist panel")
        self.setStyleSheet(STYLE)
        self.fit_to_screen()
        central = _named(QWidget(), "central")
        self.setCentralWidget(central)
        root = QVBoxLayout(central)
        root.setContentsMargins(8, 6, 8, 4)
        root.setSpacing(4)
        # Pinned at the top, whatever the window's size: the header with STOP, the inline
        # question (never a modal dialog: STOP stays live) and the host's last answer.
        self.header = HeaderArea(self.model, self.read_only, self.do_stop)
        root.addWidget(self.header)
        h = self.header  # its parts, by their old names (tests, the state's update)
        self.phase_label, self.session_label, self.step_label = (
            h.phase_label, h.session_label, h.step_label)
        self.clock_label, self.links_label, self.sensors_label = (
            h.clock_label, h.links_label, h.sensors_label)
        self.recording_label, self.stop_button, self.stop_status = (
            h.recording_label, h.stop_button, h.stop_status)
        self.question = InlineQuestion()
        root.addWidget(self.question)
        self.status_line = _named(QLabel(""), "status")
        self.status_line.setWordWrap(True)
        self.status_line.setMinimumWidth(300)
        self._set_status("Connecting to the session host …", "pending")
        root.addWidget(self.status_line)
        self.banners = QVBoxLayout()  # placed above the heart-rate plot (it stretches)
        self.banners.setSpacing(4)
        self._build_banners()
        # Below: the three columns scroll on their own when the screen is small.
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.setChildrenCollapsible(False)
        splitter.addWidget(self._scrolling(self._build_left()))
        splitter.addWidget(self._scrolling(self._build_center()))
        self.right_column = self._scrolling(self._build_right())
        splitter.addWidget(self.right_column)
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setStretchFactor(2, 0)
        splitter.setSizes([460, 640, 400])
        self.body = QSplitter(Qt.Orientation.Vertical)
        self.body.setChildrenCollapsible(False)
        self.body.addWidget(splitter)
        self.body.addWidget(self._build_log())
        self.body.setStretchFactor(0, 1)
        self.body.setStretchFactor(1, 0)
        self.body.setSizes([850, 120])  # the log: an eighth of the height, drag for more
        root.addWidget(self.body, 1)
        root.addWidget(self._build_footer())
        self._build_shortcuts()

        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.timeout.connect(self._schedule_refresh)
        self._tick_timer = QTimer(self)
        self._tick_timer.setInterval(250)
        self._tick_timer.timeout.connect(self._tick)
        self._update_controls()
        self._update_expectancy()
        self._tick()
        # Areas of their own modules over the same state: the scene's stimulus events,
        # questionnaires, and the patient's history from the clinic record.
        self.sources_bar = SourcesBar(self.send, read_only=self.read_only)
        self.add_area(self.sources_bar, "left")
        self.events_bar = EventsBar(self.send)
        self.add_area(self.events_bar, "left")
        self.questionnaires = QuestionnaireWidget(self._send_from_area)
        self.add_area(self.questionnaires, "right")
        self.history = HistoryWidget()
        self.history.setVisible(False)
        self.add_area(self.history, "right")
        self._history_loader = history
        self._history_for: str | None = None
        self._patient_shown: str | None = None  # whose session the areas show
        if read_only:
            self._set_status("Read-only: this panel observes the session and sends nothing",
                             "info")
        if start:
            self.start()

    def add_area(self, widget: QWidget, column: str = "left") -> None:
        """Add an area to the window: ``left`` goes under the exposure controls (e.g. the
        stimulus events bar), ``right`` under the ratings (e.g. questionnaires). The
        columns scroll, so an added area never pushes STOP off the screen."""
        layout, index = self._area_slots[column]
        layout.insertWidget(index, widget)
        self._area_slots[column] = (layout, index + 1)

    def fit_to_screen(self) -> None:
        """Take the screen's available area (a clinic laptop may have 1280×720)."""
        screen = self.screen() or QApplication.primaryScreen()
        if screen is not None:
            self.setGeometry(screen.availableGeometry())

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if not self._fitted:
            # once more when the style sheet has settled the widgets' minimum sizes
            # (before it, they are wider and would leave the window wider than the screen)
            self._fitted = True
            QTimer.singleShot(0, self.fit_to_screen)

    _fitted = False

    def _scrolling(self, column: QWidget) -> QScrollArea:
        area = ColumnScroll()
        area.setWidget(column)
        area.setWidgetResizable(True)
        area.setFrameShape(QFrame.Shape.NoFrame)
        area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scrollbar = area.verticalScrollBar().sizeHint().width()
        if column.maximumWidth() < 10_000:
            area.setMaximumWidth(column.maximumWidth() + scrollbar + 2)
        return area

    def start(self) -> None:
        self.bridge.start()
        self._tick_timer.start()
        self.table.setFocus()

    # --- building -----------------------------------------------------------------

    def _build_banners(self) -> None:
        self.host_banner = self._banner(RED)
        self.control_banner = self._banner(AMBER)
        self.alert_banner = self._banner(RED)
        self.recording_banner = self._banner(RED)
        self.suds_banner = self._banner(AMBER)
        self.suggestion_box = QFrame()
        self.suggestion_box.setStyleSheet(
            "QFrame { background: #e3f0fd; border: 2px solid #1565c0; border-radius: 6px; }"
            " QLabel { border: none; background: transparent; }")
        column = QVBoxLayout(self.suggestion_box)
        column.setContentsMargins(10, 4, 10, 4)
        row = QHBoxLayout()
        self.suggestion_label = QLabel("")
        self.suggestion_label.setStyleSheet("font-size: 12pt; font-weight: 600;")
        self.suggestion_label.setWordWrap(True)
        self.suggestion_label.setMinimumWidth(240)
        self.accept_button = QPushButton("Accept  [Ctrl+G]")
        self.accept_button.setToolTip("Accept the suggestion and go to the next step (Ctrl+G)")
        self.accept_button.clicked.connect(lambda: self.do_step("accept_suggestion"))
        self.dismiss_button = QPushButton("Dismiss  [Ctrl+D]")
        self.dismiss_button.setToolTip("Dismiss the suggestion and stay in this step (Ctrl+D)")
        self.dismiss_button.clicked.connect(lambda: self.send("dismiss_suggestion"))
        # the text above its buttons: the heart-rate column stays narrow enough for 1280 px
        column.addWidget(self.suggestion_label)
        row.addStretch(1)
        row.addWidget(self.accept_button)
        row.addWidget(self.dismiss_button)
        column.addLayout(row)
        self.suggestion_box.hide()
        self.banners.addWidget(self.suggestion_box)

    def _banner(self, color: str) -> QLabel:
        label = _named(QLabel(""), "banner")
        label.setStyleSheet(f"background: {color};")
        label.setWordWrap(True)
        label.setMinimumWidth(300)  # wrapped text must not widen the window
        label.hide()
        self.banners.addWidget(label)
        return label

    def _build_left(self) -> QWidget:
        column = QWidget()
        column.setMinimumWidth(400)
        layout = QVBoxLayout(column)
        layout.setContentsMargins(0, 0, 0, 0)
        self.hierarchy = HierarchyArea(self.model, self._button, {
            "previous": lambda: self.do_step("previous"), "repeat": lambda: self.do_step("repeat"),
            "next": lambda: self.do_step("next"), "jump": self.do_jump})
        layout.addWidget(self.hierarchy, 1)
        self.edit_button = QPushButton("✎ Edit the patient's hierarchy  [Ctrl+H]")
        self.edit_button.setToolTip("Build the patient's own hierarchy in a window of its own "
                                    "(the headset shows the step chosen there); saves a new "
                                    "version to the clinic record (Ctrl+H)")
        self.edit_button.clicked.connect(lambda _checked=False: self.open_editor())
        layout.addWidget(self.edit_button)
        a = self.hierarchy  # its parts, by their old names (tests, shortcuts, controls)
        self.table, self.prev_button, self.repeat_button = a.table, a.prev_button, a.repeat_button
        self.next_button, self.jump_button = a.next_button, a.jump_button

        self.exposure = ExposureArea(self.model, self.send, self._button, {
            "baseline": lambda: self.send("start_baseline"), "exposure": self.do_start_exposure,
            "pause": lambda: self.send("pause"), "resume": self.do_resume, "end": self.do_end})
        layout.addWidget(self.exposure)
        e = self.exposure  # its parts, by their old names (tests, shortcuts, controls)
        self.slider, self.intensity_value, self.intensity_effect = (
            e.slider, e.intensity_value, e.intensity_effect)
        self.baseline_button, self.exposure_button, self.pause_button = (
            e.baseline_button, e.exposure_button, e.pause_button)
        self.resume_button, self.end_button, self.auto_check = (
            e.resume_button, e.end_button, e.auto_check)
        self._intensity_timer = e.intensity_timer
        # slot for more areas next to the exposure controls (issue 15's stimulus events bar)
        self._area_slots["left"] = (layout, layout.count())
        marker = QGroupBox("Marker")
        marker_box = QHBoxLayout(marker)
        self.marker_edit = QLineEdit()
        self.marker_edit.setPlaceholderText("Note for the recording  [M]")
        self.marker_edit.setToolTip("M: type a marker; Enter records it with the time")
        self.marker_edit.returnPressed.connect(self.send_marker)
        add = QPushButton("Add  [Enter]")
        add.clicked.connect(self.send_marker)
        self.marker_button = add
        marker_box.addWidget(self.marker_edit, 1)
        marker_box.addWidget(add)
        layout.addWidget(marker)
        self.notes = SessionNotes(self._send_note)
        layout.addWidget(self.notes)
        return column

    def _button(self, text: str, keys: str, tip: str, slot: Callable[[], object]
                ) -> QPushButton:
        button = QPushButton(f"{text}\n{keys}")
        button.setToolTip(f"{tip} ({keys})")
        button.clicked.connect(lambda _checked=False: slot())
        return button

    def _build_center(self) -> QWidget:
        column = QWidget()
        layout = QVBoxLayout(column)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(self.banners)
        self.hr_area = HeartRateArea(
            self.model, self.hr_window_s, self.ecg_window_s,
            on_source_chosen=lambda source: self.send("set_hr_source", {"source": source}))
        layout.addWidget(self.hr_area, 1)
        # the area's parts, by their old names (tests, benchmarks)
        area = self.hr_area
        self.hr_plot, self.hr_value, self.hr_detail = area.hr_plot, area.hr_value, area.hr_detail
        self.band, self.band_label, self.legend = area.band, area.band_label, area.legend
        self.ecg_strip, self.ecg_title = area.ecg_strip, area.ecg_title
        self.hrv_value, self.window_combo = area.hrv_value, area.window_combo
        self.source_combo, self._hr_items = area.source_combo, area._hr_items
        return column

    def _build_right(self) -> QWidget:
        column = QWidget()
        column.setMinimumWidth(360)
        column.setMaximumWidth(440)
        layout = QVBoxLayout(column)
        layout.setContentsMargins(0, 0, 0, 0)

        self.patient_view = PatientViewArea(self.model)
        layout.addWidget(self.patient_view)
        v = self.patient_view  # its parts, by their old names (tests)
        self.mirror, self.compass, self.large_button = v.mirror, v.compass, v.large_button
        self.gaze_now, self.gaze_share, self.render_label = v.gaze_now, v.gaze_share, v.render_label

        self.ratings = RatingsArea(self.model, self.send, self._set_status,
                                   lambda: self.table.setFocus(), self._button, self.read_only)
        layout.addWidget(self.ratings)
        r = self.ratings  # its parts, by their old names (tests, the controls' enabling)
        self.suds_buttons, self.suds_edit = r.suds_buttons, r.suds_edit
        self.suds_record_button, self.ask_button, self.suds_status = (
            r.suds_record_button, r.ask_button, r.suds_status)
        self.expect_edit, self.likelihood, self.predict_button = (
            r.expect_edit, r.likelihood, r.predict_button)
        self.open_expectancy = r.open_expectancy
        self.happened_button, self.not_happened_button = r.happened_button, r.not_happened_button
        # slot for more rating areas (issue 16's questionnaires), above the stretch
        self._area_slots["right"] = (layout, layout.count())

        layout.addStretch(1)
        return column

    def _build_log(self) -> QWidget:
        self.log_area = LogArea()
        self.log_list = self.log_area.list
        return self.log_area

    def _build_footer(self) -> QWidget:
        footer = QWidget()
        layout = QVBoxLayout(footer)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(3)
        keys = QLabel("   ".join(f"<b>{html.escape(k)}</b>&nbsp;{html.escape(v)}"
                                   for k, v in FOOTER_KEYS))
        keys.setWordWrap(True)
        keys.setObjectName("muted")
        keys.setTextFormat(Qt.TextFormat.RichText)
        layout.addWidget(keys)
        return footer

    def _build_shortcuts(self) -> None:
        bindings: list[tuple[str, Callable[[], object]]] = [
            ("F12", self.do_stop),
            ("P", lambda: self.send("pause")),
            ("Ctrl+Shift+P", self.do_resume),
            ("Ctrl+PgDown", lambda: self.do_step("next")),
            ("Ctrl+PgUp", lambda: self.do_step("previous")),
            ("Ctrl+R", lambda: self.do_step("repeat")),
            ("Ctrl+J", self.do_jump),
            ("Ctrl+L", lambda: self.table.setFocus()),
            ("Ctrl+Up", lambda: self.nudge_intensity(+10)),
            ("Ctrl+Down", lambda: self.nudge_intensity(-10)),
            ("A", lambda: self.send("request_suds")),
            ("E", lambda: self.expect_edit.setFocus()),
            ("M", lambda: self.marker_edit.setFocus()),
            ("Ctrl+Y", lambda: self.send_outcome(True)),
            ("Ctrl+N", lambda: self.send_outcome(False)),
            ("Ctrl+G", lambda: self.do_step("accept_suggestion")),
            ("Ctrl+D", lambda: self.send("dismiss_suggestion")),
            ("Ctrl+B", lambda: self.send("start_baseline")),
            ("Ctrl+E", self.do_start_exposure),
            ("Ctrl+Shift+E", self.do_end),
            ("F1", self.show_shortcuts),
            ("Ctrl+H", self.open_editor),
            ("Esc", self._escape),
        ]
        for digit in range(10):
            bindings.append((str(digit), self._digit_slot(digit)))
            bindings.append((f"Num+{digit}", self._digit_slot(digit)))
        self.shortcuts: dict[str, QShortcut] = {}
        for keys, slot in bindings:
            shortcut = QShortcut(QKeySequence(keys), self)
            # STOP works whatever has the focus, in any window of the panel (issue 13)
            shortcut.setContext(Qt.ShortcutContext.ApplicationShortcut if keys == "F12"
                                else Qt.ShortcutContext.WindowShortcut)
            shortcut.activated.connect(slot)
            self.shortcuts[keys] = shortcut

    # --- actions --------------------------------------------------------------------

    def send(self, name: str, args: Mapping[str, Any] | None = None) -> str | None:
        """Send a command; its answer appears in the status line and the log."""
        label = command_label(name, args or {})
        if self.read_only:
            self._set_status(f"✗ {label}: this panel is read-only", "error")
            return None
        command_id = self.bridge.send(name, args)
        self.model.command_sent(command_id, name, args or {}, time.monotonic())
        self._set_status(f"… {label}: sent, waiting for the host", "pending")
        return command_id

    def _send_from_area(self, name: str, args: Mapping[str, Any] | None = None) -> Any:
        """Commands from an added area; a STOP there is the same retried STOP as F12."""
        if name == "stop":
            self.do_stop()
            return None
        return self.send(name, args)

    def _show_history(self, patient_id: str) -> None:
        """The patient's course, once per patient, when a clinic record has it."""
        if self._history_loader is None or patient_id == self._history_for:
            return
        self._history_for = patient_id
        try:
            history = self._history_loader(patient_id)
        except Exception as exc:  # the record is a help, never a reason to lose the panel
            self._set_status(f"Patient history not available: {exc}", "info")
            history = None
        self.history.setVisible(history is not None)
        # another patient's session: nothing of the last patient's course stays on show
        self.hierarchy.set_last_suds({} if history is None else history.last_suds())
        if history is not None:
            self.history.set_history(history)
            # at session start the course is what the therapist reads: scroll to it
            QTimer.singleShot(0, lambda: self.right_column.ensureWidgetVisible(
                self.history, 0, 0))

    def _follow_patient(self, patient_id: str) -> None:
        """Another patient's session: what belonged to the previous patient goes. Their
        hierarchy editor is closed (its preview ended) before it can preview or save for
        this one, and their session notes leave the box (typing on would send them into
        this patient's recording)."""
        previous, self._patient_shown = self._patient_shown, patient_id
        if previous is None or previous == patient_id:
            return
        window, self.editor_window = self.editor_window, None
        if window is not None and window.isVisible():
            window.close()
        unsaved = self.notes.reset()
        text = (f"Patient {patient_id}'s session: patient {previous}'s editor and notes closed"
                + (" (the last words typed had not reached a host)" if unsaved else ""))
        self._set_status(text, "info")
        self.model.add_log("info", text, time.monotonic())

    def open_editor(self) -> None:
        """The hierarchy editor for the session's patient, in its own non-modal window."""
        if self.editor_window is not None and self.editor_window.isVisible():
            self.editor_window.raise_()
            self.editor_window.activateWindow()
            return
        if self._editor_source is None or self.read_only:
            self._set_status("✗ Edit hierarchy: no clinic record on this panel (read-only, or "
                             "no database)", "error")
            return
        state, session = self.model.state or {}, self.model.session
        patient_id = str(session.get("patient_id") or "")
        if not patient_id:
            self._set_status("✗ Edit hierarchy: no session (patient) yet", "error")
            return
        try:
            store, draft = self._editor_source(patient_id, str(state.get("hierarchy_id", "")))
        except Exception as exc:  # the record is a help, never a reason to lose the panel
            self._set_status(f"✗ Edit hierarchy: {exc}", "error")
            return
        window = EditorWindow(store, patient_id, draft, on_step=self._preview_step)
        window.editor.saved.connect(lambda version: self._hierarchy_saved(patient_id, version))
        self.editor_window = window
        window.show()
        shown = ("the headset shows the step chosen there" if state.get("phase") == "idle"
                 else "the headset keeps the session's scene: steps are shown only before "
                 "the baseline")
        self._set_status(f"Editing the hierarchy of patient {patient_id} in its own window; "
                         f"{shown} (F12 STOP works there too)", "info")

    def _preview_step(self, step: Mapping[str, Any] | None) -> None:
        """The step chosen in the editor, shown in the headset (None: the calm scene again)."""
        phase = (self.model.state or {}).get("phase")
        if phase != "idle" or self.read_only:
            return  # previews only before the session's baseline; the host refuses otherwise
        if step is None:
            self.send("preview_step", {})
            return
        self.send("preview_step", {"step_id": str(step.get("id", "")),
                                   "params": preview_params(dict(step))})

    def _hierarchy_saved(self, patient_id: str, version: int) -> None:
        text = (f"Saved hierarchy version {version} for patient {patient_id} "
                "(used from the next session)")
        self._set_status(f"✓ {text}", "ok")
        self.model.add_log("ok", text, time.monotonic())
        self._update_log()

    def do_stop(self) -> None:
        if self.read_only:
            self._set_status("✗ STOP: this panel is read-only (observer)", "error")
            return
        command_id = self.bridge.stop("STOP (panel)")
        self.model.command_sent(command_id, "stop", {"reason": "STOP (panel)"},
                                time.monotonic())
        self._set_status("… STOP sent — waiting for the host's acknowledgement", "pending")
        self.header.update_stop_status(time.monotonic())

    def _digit_slot(self, digit: int) -> Callable[[], None]:
        return lambda: self._type_suds_digit(digit)

    def _clear_entry(self) -> None:
        self.suds_edit.clear()
        self.table.setFocus()

    def send_suds(self, value: int) -> None:
        self.ratings.send_suds(value)

    def send_expectancy(self) -> None:
        self.ratings.send_expectancy()

    def send_outcome(self, happened: bool) -> None:
        self.ratings.send_outcome(happened)

    def _type_suds_digit(self, digit: int) -> None:
        self.ratings.type_suds_digit(digit)

    def _update_suds_status(self, state: Mapping[str, Any]) -> None:
        self.ratings.update_suds_status(state)

    def _update_expectancy(self) -> None:
        self.ratings.update_expectancy()

    def _escape(self) -> None:
        """Esc: cancel the open question, else clear the SUDS field."""
        if self.question.is_open:
            self.question.cancel()
        else:
            self._clear_entry()

    def _send_note(self, text: str, note_id: int) -> str | None:
        """A session note as typed so far (its answer shows under the notes, not in the
        status line: typing must not hide the host's other answers)."""
        if self.read_only:
            return None
        command_id = self.bridge.send("note", {"text": text, "note_id": note_id})
        self.model.command_sent(command_id, "note", {"note_id": note_id}, time.monotonic())
        return command_id

    @property
    def large_view(self) -> LargePatientView | None:
        return self.patient_view.large_view

    def _show_look_away(self) -> None:
        """This step's look-away share in the hierarchy table too."""
        state = self.model.state
        if state is not None:
            row = int(state.get("step_index", 0))
            look = self.model.look_away.get(row)
            if look is not None and look.share is not None:
                self.hierarchy.show_away(row, f"{100 * look.share:.0f} %")

    def send_marker(self) -> None:
        text = self.marker_edit.text().strip()
        if not text:
            self._set_status("Type the marker text first", "error")
            return
        self.marker_edit.clear()
        self.send("marker", {"text": text})
        self.table.setFocus()

    def chosen_step(self) -> int | None:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() \
            else []
        return rows[0].row() if rows else None

    def _sync_model(self) -> None:
        """Before a decision that reads the session's state: take in what the bridge holds
        (the widgets follow at the next frame). Frames are coalesced to 10 Hz, so without
        this a Resume pressed right after STOP could still see the exposure."""
        self.model.ingest_many(self.bridge.take_messages())
        self._schedule_refresh()

    def do_jump(self) -> None:
        self._sync_model()
        target = self.chosen_step()
        state = self.model.state
        if target is None or state is None:
            self._set_status("Choose a step in the list first (Ctrl+L, ↑/↓)", "error")
            return
        current = int(state.get("step_index", 0))
        if target == current:
            self._set_status(f"Step {current + 1} is the current step: choose another one "
                             "(↑/↓) or use Repeat (Ctrl+R)", "info")
            return
        def jump() -> None:
            self.leave_step(lambda: self.send("jump", {"step": target}), f"jump to step "
                                                                          f"{target + 1}")

        if target > current + 1:
            self.question.ask(f"Jump from step {current + 1} to step {target + 1}, skipping "
                              f"{target - current - 1} step(s)?",
                              [(f"Jump to step {target + 1}  [Enter]", jump)],
                              lambda: self._set_status("Jump cancelled", "info"))
            return
        jump()

    def leave_step(self, action: Callable[[], object], what: str) -> None:
        """Do ``action`` (a step change); with a prediction open, ask for its outcome first."""
        self._sync_model()
        exp = self.model.open_expectancy()
        if exp is None or self.read_only:
            action()
            return

        def answered(happened: bool) -> Callable[[], None]:
            def run() -> None:
                # the same socket keeps the order: the outcome lands before the step change
                self.send_outcome(happened)
                action()
            return run

        self.question.ask(f"Before you {what}: did the predicted “{exp.get('outcome')}” "
                          "happen?", [("Did not happen  [Enter]", answered(False)),
                                      ("Happened", answered(True))],
                          lambda: self._set_status(f"Stayed in this step ({what} cancelled)",
                                                   "info"))

    def do_step(self, name: str) -> None:
        """Next, previous or repeat (asking for an open prediction's outcome first)."""
        what = {"next": "go to the next step", "previous": "go back a step",
                "repeat": "repeat this step", "accept_suggestion": "advance"}[name]
        self.leave_step(lambda: self.send(name), what)

    def do_resume(self) -> None:
        """Resume: after a STOP, a deliberate choice of step, at the step's low end."""
        self._sync_model()
        state = self.model.state or {}
        if state.get("phase") != "safe" or state.get("resume_to") != "exposure" \
                or not state.get("exposure_started"):
            self.send("resume")
            return
        index = int(state.get("step_index", 0))
        choices = [(f"Resume at step {index + 1}, intensity 0 %  [Enter]",
                    lambda: self.send("resume", {"step": index, "intensity": 0.0}))]
        if index > 0:
            choices.append((f"One step down (step {index})",
                            lambda: self.send("resume", {"step": index - 1, "intensity": 0.0})))
        shown = round(100 * float(state.get("intensity", 0.0)))
        choices.append((f"Step {index + 1} at {shown} % as before",
                        lambda: self.send("resume")))
        self.question.ask("Resume after STOP: where does the patient go back in?", choices,
                          lambda: self._set_status("Resume cancelled: the calm scene stays",
                                                   "info"))

    def do_start_exposure(self) -> None:
        target = self.chosen_step()
        self.send("start_exposure", {"step": target} if target else {})

    def do_end(self) -> None:
        self.question.ask("End the session now? This cannot be undone; the recording is "
                          "closed.", [("End the session", lambda: self.send(
                              "end", {"reason": "ended from the panel"}))],
                          lambda: self._set_status("End cancelled", "info"))

    def nudge_intensity(self, delta_pct: int) -> None:
        self.exposure.nudge_intensity(delta_pct)

    def show_shortcuts(self) -> None:
        rows = "".join(f"<tr><td><b>{html.escape(k)}</b>&nbsp;&nbsp;</td>"
                       f"<td>{html.escape(v)}</td></tr>" for k, v in SHORTCUTS)
        box = QMessageBox(self)
        box.setWindowTitle("Keyboard shortcuts")
        box.setTextFormat(Qt.TextFormat.RichText)
        box.setText(f"<table>{rows}</table>")
        box.setModal(False)
        box.show()

    # --- incoming -----------------------------------------------------------------

    def _on_messages(self) -> None:
        # The messages stay queued in the bridge until the next refresh takes them all:
        # one wake-up of the GUI thread per frame, not one per message.
        self._schedule_refresh()

    def _schedule_refresh(self) -> None:
        # Two frame rates. The plots are drawn as their data lands (the bridge says when
        # plotted data is waiting), at most every plot_refresh_s: an ECG chunk is on screen
        # a wake-up after it arrives, not up to a frame later. Everything else (labels, the
        # compass, the header) at most every min_refresh_s, coalesced: redrawing the whole
        # panel at the plots' 50 Hz cost more than all else.
        now = time.monotonic()
        full_wait = self.min_refresh_s - (now - self._last_full_refresh)
        plot_wait = self.plot_refresh_s - (now - self._last_refresh)
        if full_wait <= 0:
            self._refresh_timer.stop()
            self._refresh()
        elif self.bridge.plots_pending and plot_wait <= 0:
            self._refresh_timer.stop()
            self._refresh(plots_only=True)
            if self._dirty_pending:  # e.g. a STOP's new state: its frame even if no data follows
                self._refresh_timer.start(max(1, int(full_wait * 1000)))
        else:
            wait = min(full_wait, plot_wait) if self.bridge.plots_pending else full_wait
            if not self._refresh_timer.isActive() \
                    or self._refresh_timer.remainingTime() > wait * 1000:
                self._refresh_timer.start(max(1, int(wait * 1000)))

    def _on_command_done(self, outcome: CommandOutcome) -> None:
        now = time.monotonic()
        if outcome.unreachable:
            record = self.model.command_unreachable(outcome.id, outcome.error, now,
                                                    still_trying=outcome.still_trying)
        else:
            record = self.model.command_answered(
                outcome.id, outcome.ok, outcome.error, outcome.state_seq,
                [str(e) for e in outcome.result.get("events", [])], now)
        if record is None:
            return
        if record.name == "note":
            when = format_duration(self.model.session_time(now))
            self.notes.saved(record.status == "ok", when, record.error)
            return
        label = command_label(record.name, record.args)
        if record.status == "ok":
            what = ", ".join(e.replace("_", " ") for e in record.events) or "no change"
            self._set_status(f"✓ {label} — acknowledged by the host ({what})", "ok")
        elif record.status == "refused":
            self._set_status(f"✗ {label} — refused by the host: {record.error}", "error")
        elif record.status == "unreachable":
            self._set_status(f"✗ {label} — no answer from the host ({record.error}); "
                             "it may not have been applied", "error")
        elif record.name == "stop":
            self._set_status(f"… STOP not acknowledged yet — resending "
                             f"({record.attempts_s:.0f} s)", "pending")
        if record.name == "intensity" and record.done:
            # refused or unanswered: back to the host's value; acknowledged: show it
            self.exposure.sync_slider(force=record.status != "ok")
        self._schedule_refresh()
        self.header.update_stop_status(now)

    def _on_heartbeat(self, ok: bool, _rtt_s: float) -> None:
        self.model.heartbeat_result(ok, time.monotonic())

    # --- drawing --------------------------------------------------------------------

    def _refresh(self, plots_only: bool = False) -> None:
        """Take the bridge's messages and redraw what they changed; with ``plots_only``
        the heart-rate and ECG plots only (the rest waits for the next full frame)."""
        now = time.monotonic()
        self._last_refresh = now
        self.model.ingest_many(self.bridge.take_messages())
        dirty = self.model.take_dirty() | self._dirty_pending
        if self.model.session_id != self._session_shown:
            self._reset_session_view()
            dirty |= {"state", "hr", "ecg", "rr", "pose", "preview", "events"}
        # the plots first (they read the model, not the widgets the state updates)
        if dirty & ({"hr"} if plots_only else {"hr", "state", "alerts"}):
            self.hr_area.update_plot(now)
        if "ecg" in dirty:
            self.hr_area.update_ecg()
        probes = self.model.take_probes()
        if probes:
            stamp = time.monotonic_ns()
            self.display_latency_ms.extend((stamp - p) / 1e6 for p in probes)
        if plots_only:
            self._dirty_pending = dirty - {"ecg"}  # "hr": its numbers, at the next full frame
            return
        self._dirty_pending = set()
        self._last_full_refresh = now
        if "state" in dirty:
            self._update_state(now)
        if dirty & {"hr", "rr"}:
            self.hr_area.update_numbers(time.monotonic())
        if dirty & {"pose", "state"}:
            self.patient_view.update_pose(now)
        if "preview" in dirty:
            self.patient_view.update_preview(now)
        if "events" in dirty:
            self.hr_area.update_timeline()
            self._update_expectancy()
        if "log" in dirty:
            self._update_log()
        if dirty & {"sources", "state"}:
            self.header.update_links(now)
            self._update_banners(now)
        if "commands" in dirty:
            self.header.update_stop_status(now)

    def _tick(self) -> None:
        now = time.monotonic()
        if self._last_tick_s is not None and now - self._last_tick_s > STALL_S:
            self.model.panel_stalled(now - self._last_tick_s, now)
        self._last_tick_s = now
        # Only when no data has drawn a frame lately: a frame here, between two chunks,
        # would make the next chunk wait for the one after it.
        if now - self._last_full_refresh >= TICK_REFRESH_AFTER_S:
            self._refresh()
        self.header.update_clock(now)
        self.header.update_links(now)
        self._update_banners(now)
        self.header.update_stop_status(now)
        self.patient_view.update_preview(now, overlay_only=True)
        self.patient_view.update_pose_text()
        self._show_look_away()
        self.header.update_phase_badge(now)
        self.hr_area.update_numbers(now)
        session = self.model.session
        if session:
            self._update_recording(session)
        self._ticks += 1
        if self._ticks % 4 == 0:  # once a second: the heart-rate plot moves on
            self.hr_area.scroll_to(now)

    _ticks = 0
    _last_tick_s: float | None = None

    def _reset_session_view(self) -> None:
        self._session_shown = self.model.session_id
        self.hr_area.reset()
        self.hierarchy.reset()
        self.patient_view.reset()
        self.questionnaires.reset()

    def _update_state(self, now: float) -> None:
        state = self.model.state
        if state is None:
            return
        if self.status_line.text().startswith("Connecting"):  # the host answered: say so
            self._set_status(f"Connected to the session host (session "
                             f"{str(self.model.session_id or '')[:8]})", "ok")
        session = self.model.session
        self.events_bar.set_events(state.get("scene_events") or [])
        self.events_bar.set_active(state.get("phase") == "exposure" and not self.read_only)
        self.questionnaires.update_state(state)
        self.sources_bar.update_state(state)
        if session.get("patient_id"):
            self._follow_patient(str(session["patient_id"]))
            self._show_history(str(session["patient_id"]))
        self.header.update_phase_badge(now)
        _set_text(self.session_label,
                  f"Patient {session.get('patient_id', '?')} · {state.get('hierarchy_id', '')}")
        self.session_label.setToolTip(f"session {session.get('session_id', '')}")
        index = int(state.get("step_index", 0))
        n_steps = int(state.get("n_steps", 0) or 0)
        _set_text(self.step_label, f"Step {index + 1} of {n_steps}: {state.get('step_label', '')}"
                                   f"  (expected SUDS {state.get('step_expected_suds', '–')})")
        self.hierarchy.update_table(state)
        self.exposure.sync_slider()
        self.exposure.update_state(state)
        self._update_suds_status(state)
        self._update_suggestion(state)
        self._update_controls()
        self._update_expectancy()
        prompt = state.get("step_expectancy_prompt")
        if self._prompt_for_step != index:
            self._prompt_for_step = index
            if not self.expect_edit.hasFocus():
                self.expect_edit.setText(str(prompt) if prompt else "")
                self.expect_edit.setCursorPosition(0)
                self.likelihood.setValue(LIKELIHOOD_UNSET)  # each prediction is asked anew
        self._update_recording(session)
        self.header.update_clock(now)
        if state.get("phase") == "ended":
            self._on_ended()

    def _on_ended(self) -> None:
        """The session ended: clocks stop, REC goes off, the report is offered."""
        if self._ended:
            return
        self._ended = True
        self._tick_timer.stop()
        self._intensity_timer.stop()
        self._update_recording(self.model.session)
        if not self.read_only:
            self.question.ask("The session has ended and its recording is closed. Write the "
                              "session report now?",
                              [("Write the session report  [Enter]", self.make_report)])

    _ended = False

    def make_report(self) -> None:
        """Run ``vrexposure report`` on the recording, in the background."""
        recording = Path(str(self.model.session.get("recording") or ""))
        if not recording.is_file():
            self._set_status(f"The recording {recording} is not on this computer: run "
                             f"'vrexposure report {recording}' where the host ran", "error")
            return
        process = QProcess(self)
        process.setProgram(sys.executable)
        process.setArguments(["-m", "vrexposure", "report", str(recording)])
        html_path = recording.with_name(f"{recording.stem}.report.html")

        def finished(code: int, _status: QProcess.ExitStatus) -> None:
            if code == 0 and html_path.is_file():
                self.report_path = html_path
                self._set_status(f"✓ Session report written: {html_path}", "ok")
                self.model.add_log("ok", f"Session report written: {html_path}",
                                   time.monotonic())
                self._update_log()
            else:
                error = bytes(process.readAllStandardError().data()).decode(errors="replace")
                self._set_status(f"✗ The session report failed: {error.strip()[-300:]}",
                                 "error")

        process.finished.connect(finished)
        self.report_process = process
        self._set_status(f"… Writing the session report for {recording.name}", "pending")
        process.start()

    report_path: Path | None = None
    report_process: QProcess | None = None

    def _update_suggestion(self, state: Mapping[str, Any]) -> None:
        suggestion = state.get("suggestion")
        if not suggestion or suggestion.get("step_index") != state.get("step_index"):
            self.suggestion_box.hide()
            return
        n_steps = int(state.get("n_steps", 0) or 0)
        index = int(state.get("step_index", 0))
        last = index >= n_steps - 1
        target = "the hierarchy is complete" if last else f"go to step {index + 2}"
        _set_text(self.suggestion_label,
                  f"Advance suggested ({target}): {describe_reason(suggestion)}")
        self.accept_button.setEnabled(not last and not self.read_only)
        self.suggestion_box.show()

    def _update_controls(self) -> None:
        state = self.model.state
        phase = None if state is None else str(state.get("phase"))
        live = phase not in (None, "ended") and not self.read_only
        moving = phase in ("exposure", "paused", "safe") and not self.read_only
        index = 0 if state is None else int(state.get("step_index", 0))
        n_steps = 0 if state is None else int(state.get("n_steps", 0) or 0)
        self.baseline_button.setEnabled(phase == "idle" and not self.read_only)
        self.exposure_button.setEnabled(phase in ("idle", "baseline") and not self.read_only)
        self.pause_button.setEnabled(phase in ("baseline", "exposure", "safe")
                                     and not self.read_only)
        self.resume_button.setEnabled(phase in ("paused", "safe") and not self.read_only)
        self.end_button.setEnabled(live)
        self.prev_button.setEnabled(moving and index > 0)
        self.next_button.setEnabled(moving and index < n_steps - 1)
        self.repeat_button.setEnabled(moving)
        self.jump_button.setEnabled(moving)
        self.slider.setEnabled(moving)
        self.auto_check.setEnabled(live)
        for widget in (*self.suds_buttons.values(), self.ask_button, self.suds_edit,
                       self.suds_record_button):
            widget.setEnabled(phase in ("baseline", "exposure", "paused", "safe")
                              and not self.read_only)
        for widget in (self.expect_edit, self.likelihood, self.marker_edit, self.notes.edit,
                       self.predict_button, self.marker_button):
            widget.setEnabled(live)
        self.stop_button.setEnabled(not self.read_only)
        self.edit_button.setEnabled(self._editor_source is not None and not self.read_only
                                    and phase not in (None, "ended"))

    def _update_recording(self, session: Mapping[str, Any]) -> None:
        path = str(session.get("recording") or "")
        name = path.rsplit("/", 1)[-1] if path else "–"
        error = session.get("recording_error")
        size = format_bytes(session.get("recording_bytes"))
        metrics = self.recording_label.fontMetrics()
        name = metrics.elidedText(name, Qt.TextElideMode.ElideMiddle, 220)  # full on hover
        error_text = metrics.elidedText(str(error or ""), Qt.TextElideMode.ElideRight, 300)
        if (self.model.state or {}).get("phase") == "ended":
            text = _colored("■ recording closed ", GREY) + html.escape(f"{name}  ({size})")
            self.recording_banner.hide()
        elif error:
            text = _colored(f"● Recording ERROR: {error_text}", RED)
            self.recording_banner.setText(f"Recording error: {error} — the session is not being "
                                          "saved correctly")
            self.recording_banner.show()
        else:
            text = _colored("● REC ", RED) + html.escape(f"{name}  ({size})")
            self.recording_banner.hide()
        _set_text(self.recording_label, text)
        self.recording_label.setToolTip(path)

    def _update_banners(self, now: float) -> None:
        model = self.model
        host = model.host_link(now)
        if host == Link.LOST:
            self.host_banner.setText(
                f"Session host not responding for {model.host_silent_s(now) or 0:.0f} s — "
                "reconnecting by itself. Commands get an answer or an error; STOP is resent "
                "until acknowledged.")
            self.host_banner.show()
        elif host == Link.NOT_SEEN:
            self.host_banner.setText(f"No session host at {self.endpoints.host_feed} yet — "
                                     "waiting for it (start it with 'vrexposure session').")
            self.host_banner.show()
        else:
            self.host_banner.hide()
        controller = model.session.get("controller")
        if self.read_only or host != Link.OK:
            self.control_banner.hide()
        elif controller and controller != model.client_id and model.session.get(
                "controller_connected"):
            self.control_banner.setText(f"Another panel ('{controller}') controls this "
                                        "session; this panel's heartbeat takes over.")
            self.control_banner.show()
        elif not self.bridge.heartbeat_enabled:
            self.control_banner.setText("This panel's heartbeat is off: the host will pause "
                                        "exposure.")
            self.control_banner.show()
        else:
            self.control_banner.hide()
        alerts = (model.state or {}).get("alerts_active") or []
        if alerts:
            texts = []
            for name in alerts:
                record = next((a for a in reversed(model.alerts) if a.alert == name), None)
                texts.append(record.text + f" (since {format_duration(record.t_s)})"
                             if record else str(name).replace("_", " "))
            self.alert_banner.setText("⚠ " + "; ".join(texts))
            self.alert_banner.show()
        else:
            self.alert_banner.hide()
        reminder = model.suds_reminder(now)
        if reminder:
            _set_text(self.suds_banner, reminder)
        self.suds_banner.setVisible(bool(reminder))

    def _update_log(self) -> None:
        new = [e for e in self.model.log if e.number > self._log_shown]
        if new:
            self.log_area.add(new)
            self._log_shown = new[-1].number

    def _set_status(self, text: str, level: str) -> None:
        styles = {"ok": "background: #e3f4e8; color: #14532d;",
                  "error": "background: #fde2e2; color: #8e0000;",
                  "pending": "background: #fff4d6; color: #6b4a00;",
                  "info": "background: #e8eef5; color: #24405e;"}
        _set_text(self.status_line, text)
        _set_style(self.status_line, styles.get(level, styles["info"]))

    def status_text(self) -> str:
        return self.status_line.text()

    # --- closing --------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:
        phase = (self.model.state or {}).get("phase")
        if (not self._closed and not self._close_confirmed and not self.read_only
                and phase in ("baseline", "exposure")):
            event.ignore()  # asked inline: a modal dialog would block STOP (and SIGTERM)
            self.question.ask("Exposure is running. Closing the panel pauses it (the host "
                              "loses this panel's heartbeat). Close?",
                              [("Close the panel", self.close_now)])
            return
        self.shutdown()
        event.accept()

    def close_now(self) -> None:
        """Close without asking (the question was answered, or Ctrl-C / SIGTERM)."""
        self._close_confirmed = True
        self.close()

    def shutdown(self) -> None:
        """Stop the timers and the I/O threads (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._tick_timer.stop()
        self._refresh_timer.stop()
        self._intensity_timer.stop()
        self.notes.save_now()  # the last words typed reach the recording
        if self.large_view is not None:
            self.large_view.close()
        if self.editor_window is not None:
            self.editor_window.close()
        self.bridge.close()


def run_panel(endpoints: Endpoints, client_id: str, *, read_only: bool = False,
              argv: Sequence[str] | None = None, primary_hr_source: str | None = None,
              history: Callable[[str], Any] | None = None,
              editor: Callable[[str, str], tuple[Any, Any]] | None = None) -> int:
    """Open the panel and run the Qt event loop until it is closed; returns the exit code."""
    app = QApplication.instance() or QApplication(list(argv or ["vrexposure-panel"]))
    pg.setConfigOptions(antialias=False, foreground="#455060")
    window = PanelWindow(endpoints, client_id, read_only=read_only,
                         primary_hr_source=primary_hr_source, history=history, editor=editor)
    window.fit_to_screen()
    window.show()
    # Ctrl-C or SIGTERM closes the window at once (never asks: nobody may see it). Python only
    # runs signal handlers between bytecodes, so a timer lets the interpreter run now and then.
    previous = {sig: signal.signal(sig, lambda *_: window.close_now())
                for sig in (signal.SIGINT, signal.SIGTERM)}
    wake = QTimer()
    wake.timeout.connect(lambda: None)
    wake.start(200)
    try:
        code = app.exec()
    finally:
        wake.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        window.shutdown()
    return int(code)


__all__ = ["SHORTCUTS", "HeadCompass", "MirrorView", "PanelWindow", "run_panel"]
