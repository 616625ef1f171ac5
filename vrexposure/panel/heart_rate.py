"""The heart-rate area: the headline number from one primary source, HRV, the plot with
the baseline band, step and marker lines, and the live ECG.

Drawn from the :class:`~vrexposure.panel.model.PanelModel` only; the window calls
``update_plot``, ``update_numbers``, ``update_ecg``, ``update_timeline`` and ``scroll_to``
when the model says those parts changed (or on its 4 Hz tick).
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QGraphicsItem,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QVBoxLayout,
)

from .ecg_strip import EcgStrip
from .look import INK, RED, colored, colored_tail, named, set_style, set_text
from .model import BAD, GOOD, UNCERTAIN, PanelModel, format_duration

#: Trusted heart-rate values further apart than this are not joined by the line.
HR_GAP_S = 5.0
LEGEND_TAIL = (f"{colored_tail('○', '#8a8f98')}&nbsp;uncertain&nbsp;&nbsp; "
               f"{colored_tail('×', '#b0b5bb')}&nbsp;bad")
SOURCE_PENS = ["#c62828", "#1565c0", "#6a1b9a", "#00838f", "#ef6c00"]


def label_row(last_t_s: list[float], t_s: float, min_gap_s: float) -> int:
    """The row for a plot label at ``t_s``: the first row whose last label is at least
    ``min_gap_s`` earlier, else the row with the oldest label. Updates ``last_t_s``."""
    free = [row for row, last in enumerate(last_t_s) if t_s - last >= min_gap_s]
    row = free[0] if free else min(range(len(last_t_s)), key=last_t_s.__getitem__)
    last_t_s[row] = t_s
    return row



class SessionTimeAxis(pg.AxisItem):
    """Ticks on the session clock as m:ss."""

    def tickStrings(self, values: Sequence[float], scale: float, spacing: float
                    ) -> list[str]:
        return [format_duration(v) if v >= 0 else "" for v in values]



class HeartRateArea(QGroupBox):
    """The "Heart rate" group of the panel."""

    def __init__(self, model: PanelModel, hr_window_s: float, ecg_window_s: float,
                 on_source_chosen: Callable[[str | None], object] | None = None) -> None:
        super().__init__("Heart rate")
        self.model = model
        #: Tells the host: its baseline and alert read the source the headline shows.
        self._tell_host = on_source_chosen
        self.hr_window_s = hr_window_s
        self.ecg_window_s = ecg_window_s
        self._hr_items: dict[str, tuple[Any, Any, Any, Any]] = {}
        self._source_colors: dict[str, str] = {}
        self._label_rows: dict[str, list[float]] = {}
        self._timeline_shown = 0
        self._timeline_items: list[pg.InfiniteLine] = []
        box = QVBoxLayout(self)
        numbers = QHBoxLayout()
        self.hr_value = named(QLabel("–"), "big")
        self.hr_value.setMinimumWidth(150)
        self.hr_detail = named(QLabel("no heart rate yet"), "muted")
        self.hr_detail.setWordWrap(True)  # "oxi: stale, 12 s ago" must not widen the column
        self.hr_detail.setMinimumWidth(140)
        self.hrv_value = QLabel("HRV –")
        self.hrv_value.setStyleSheet("font-size: 15pt; font-weight: 600;")
        self.hrv_value.setToolTip("RMSSD of the RR intervals over the last 60 s "
                                  "(artefacts over 20 % left out)")
        self.band_label = named(QLabel("baseline: not yet"), "muted")
        self.band_label.setWordWrap(True)
        self.band_label.setMinimumWidth(100)
        hr_col = QVBoxLayout()
        hr_col.setSpacing(0)
        hr_col.addWidget(self.hr_value)
        hr_col.addWidget(self.hr_detail)
        hrv_col = QVBoxLayout()
        hrv_col.setSpacing(0)
        hrv_col.addWidget(self.hrv_value)
        hrv_col.addWidget(self.band_label)
        numbers.addLayout(hr_col)
        numbers.addSpacing(8)
        numbers.addLayout(hrv_col, 1)
        window_col = QVBoxLayout()
        self.window_combo = QComboBox()
        for minutes in (2, 5, 10, 30, 120):
            self.window_combo.addItem(f"{minutes} min", minutes * 60.0)
        self.window_combo.setCurrentIndex(1)
        self.window_combo.setToolTip("How much of the session the heart-rate plot shows")
        self.window_combo.currentIndexChanged.connect(self._on_window_changed)
        self.legend = QLabel(LEGEND_TAIL)
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.legend.setWordWrap(True)
        self.legend.setMinimumWidth(240)
        self.legend.setToolTip("Filled points and the line: trusted values; hollow grey: "
                               "uncertain; grey ×: bad (the line skips both)")
        window_col.addWidget(self.window_combo)
        self.source_combo = QComboBox()
        self.source_combo.addItem("big number: best", None)
        self.source_combo.setToolTip("Which heart-rate source the big number shows (automatic: "
                                     "the most trusted values over the last 30 s)")
        self.source_combo.currentIndexChanged.connect(self._on_source_chosen)
        window_col.addStretch(1)
        numbers.addLayout(window_col)
        box.addLayout(numbers)
        legend_row = QHBoxLayout()  # its own line: one entry per source, wrapped
        legend_row.addWidget(self.legend, 1)
        legend_row.addWidget(self.source_combo)
        box.addLayout(legend_row)

        self.hr_plot = pg.PlotWidget(background="w",
                                     axisItems={"bottom": SessionTimeAxis("bottom")})
        self.hr_plot.setMinimumHeight(240)
        item = self.hr_plot.getPlotItem()
        item.setMenuEnabled(False)
        item.hideButtons()
        item.setMouseEnabled(x=False, y=False)
        item.showGrid(x=True, y=True, alpha=0.18)
        item.setLabel("left", "bpm")
        item.setLabel("bottom", "session time")
        for axis in ("left", "bottom"):
            item.getAxis(axis).setTextPen(pg.mkPen("#455060"))
            item.getAxis(axis).setPen(pg.mkPen("#9aa3ad"))
        self.band = pg.LinearRegionItem(orientation="horizontal", movable=False,
                                        brush=pg.mkBrush(46, 125, 50, 38),
                                        pen=pg.mkPen(None))
        self.band.setZValue(-10)
        self.mean_line = pg.InfiniteLine(angle=0, movable=False,
                                         pen=pg.mkPen("#2e7d32", width=1,
                                                      style=Qt.PenStyle.DashLine))
        self.threshold_line = pg.InfiniteLine(
            angle=0, movable=False, pen=pg.mkPen("#c62828", width=1.5,
                                                 style=Qt.PenStyle.DashLine),
            label="alert above {value:.0f} bpm",
            labelOpts={"position": 0.02, "color": "#c62828", "anchors": [(0, 1), (0, 1)]})
        for band_item in (self.band, self.mean_line, self.threshold_line):
            band_item.hide()
            self.hr_plot.addItem(band_item)
        self.hr_plot.setYRange(50, 120)
        box.addWidget(self.hr_plot, 3)

        self.ecg_title = named(QLabel("ECG: no ECG stream"), "muted")
        box.addWidget(self.ecg_title)
        # our own widget, not a pyqtgraph plot: redrawn with every chunk (50 Hz), where the
        # scene graph's bookkeeping and repaints cost more than drawing the trace
        self.ecg_strip = EcgStrip(self.ecg_window_s)
        box.addWidget(self.ecg_strip, 1)
        self.ecg_strip.hide()  # until an ECG stream arrives
        self.hr_plot.setXRange(0.0, hr_window_s, padding=0.0)
        # Axes (and the grid they draw) as cached pictures: a repaint region touching an
        # axis re-laid its tick text every time; an axis re-renders only when its range or
        # labels change.
        for axis in self.hr_plot.getPlotItem().axes.values():
            axis["item"].setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)

    def reset(self) -> None:
        """A new session: no traces, no lines, no ECG."""
        for items in self._hr_items.values():
            for item in items:
                self.hr_plot.removeItem(item)
        self._hr_items.clear()
        for line in self._timeline_items:
            self.hr_plot.removeItem(line)
        self._timeline_items.clear()
        self._timeline_shown = 0
        self._label_rows = {}
        self.ecg_strip.clear()
        self.ecg_strip.hide()
        self.ecg_title.setText("ECG: no ECG stream")

    def update_plot(self, now: float) -> None:
        model = self.model
        t_now = model.session_time(now)
        since = None if t_now is None else t_now - self.hr_window_s
        lows: list[float] = []
        highs: list[float] = []
        for source, ring in sorted(model.hr.items()):
            items = self._hr_items.get(source)
            if items is None:
                color = self.source_color(source)
                line = pg.PlotDataItem(pen=pg.mkPen(color, width=2), connect="finite",
                                       antialias=True)
                good = pg.ScatterPlotItem(size=6, pen=pg.mkPen(None), brush=pg.mkBrush(color))
                unsure = pg.ScatterPlotItem(size=8, pen=pg.mkPen("#8a8f98", width=1.5),
                                            brush=pg.mkBrush(None))
                bad = pg.ScatterPlotItem(size=7, symbol="x", pen=pg.mkPen("#b0b5bb"),
                                         brush=pg.mkBrush("#b0b5bb"))
                items = (line, good, unsure, bad)
                for item in items:
                    self.hr_plot.addItem(item)
                self._hr_items[source] = items
            t, bpm, quality = ring.arrays(since)
            line_item, good_item, unsure_item, bad_item = items
            is_good = quality == GOOD
            line_t, line_v = t[is_good], bpm[is_good]
            gaps = np.flatnonzero(np.diff(line_t) > HR_GAP_S) + 1  # lost data: break the line
            line_item.setData(np.insert(line_t, gaps, np.nan), np.insert(line_v, gaps, np.nan))
            good_item.setData(t[is_good], bpm[is_good])
            unsure_item.setData(t[quality == UNCERTAIN], bpm[quality == UNCERTAIN])
            bad_item.setData(t[quality == BAD], bpm[quality == BAD])
            if bpm.size:
                lows.append(float(bpm.min()))
                highs.append(float(bpm.max()))
        primary = model.primary_hr_source()
        legend = "&nbsp;&nbsp; ".join(
            colored("●", self.source_color(name)) + "&nbsp;"
            + (f"<b>{html.escape(name)}</b>" if name == primary else html.escape(name))
            for name in sorted(model.hr))
        self._update_source_choice()
        set_text(self.legend, (legend + "&nbsp;&nbsp; " if legend else "") + LEGEND_TAIL)
        band = model.baseline_band()
        if band is None:
            for item in (self.band, self.mean_line, self.threshold_line):
                item.hide()
            set_text(self.band_label, "baseline: not yet" if not (model.state or {}).get(
                "baseline_done") else "baseline: none (no trustworthy heart rate)")
        else:
            mean, low, high, known = band
            self.band.setRegion((low, high))
            self.mean_line.setValue(mean)
            self.threshold_line.setValue(high)
            self.threshold_line.label.setFormat(f"alert above {high:.0f} bpm")
            for item in (self.band, self.mean_line, self.threshold_line):
                item.show()
            lows.append(low)
            highs.append(high)
            set_text(self.band_label,
                      f"baseline {mean:.0f} bpm, band ± {high - mean:.0f}"
                      + ("" if known else " (default rule)"))
        if lows:
            low_y = 10 * np.floor((min(lows) - 5) / 10)
            high_y = 10 * np.ceil((max(highs) + 5) / 10)
            self.hr_plot.setYRange(low_y, high_y, padding=0)
        self.scroll_to(now)

    def scroll_to(self, now: float) -> None:
        t_now = self.model.session_time(now)
        if t_now is None:
            return
        self.hr_plot.setXRange(max(0.0, t_now - self.hr_window_s),
                               max(t_now, self.hr_window_s * 0.05), padding=0.01)

    def source_color(self, source: str) -> str:
        """A trace's colour: given when the source first appears, never changed after."""
        color = self._source_colors.get(source)
        if color is None:
            color = SOURCE_PENS[len(self._source_colors) % len(SOURCE_PENS)]
            self._source_colors[source] = color
        return color

    def _update_source_choice(self) -> None:
        """The headline-source menu: automatic plus one entry per heart-rate source."""
        names = sorted(self.model.hr)
        shown = [self.source_combo.itemData(i) for i in range(1, self.source_combo.count())]
        if names != shown:
            self.source_combo.blockSignals(True)
            while self.source_combo.count() > 1:
                self.source_combo.removeItem(1)
            for name in names:
                self.source_combo.addItem(f"big number: {name}", name)
            choice = self.model.primary_hr_choice
            self.source_combo.setCurrentIndex(max(0, self.source_combo.findData(choice))
                                              if choice else 0)
            self.source_combo.blockSignals(False)

    def _on_source_chosen(self) -> None:
        self.model.primary_hr_choice = self.source_combo.currentData()
        if self._tell_host is not None:
            self._tell_host(self.model.primary_hr_choice)
        self.update_plot(time.monotonic())
        self.update_numbers(time.monotonic())

    def _on_window_changed(self) -> None:
        self.hr_window_s = float(self.window_combo.currentData())
        self.update_plot(time.monotonic())

    def update_ecg(self) -> None:
        source = self.model.primary_source(self.model.ecg)
        if source is None:
            return
        self.ecg_strip.show()
        ring = self.model.ecg[source]
        last = ring.last_t()
        assert last is not None
        t, v, _ = ring.arrays(last - self.ecg_window_s)
        # against time before the newest sample: the scale stays still, the trace moves
        self.ecg_strip.set_trace(t - last, v)
        rate = self.model.ecg_rate_hz.get(source, 0.0)
        self.ecg_title.setTextFormat(Qt.TextFormat.PlainText)
        set_text(self.ecg_title, f"ECG ({source}, {rate:.0f} Hz) — last "
                                  f"{self.ecg_window_s:.0f} s")

    def update_numbers(self, now: float) -> None:
        """The headline from the primary source; grey and "stale, N s ago" once it has sent
        no fresh value (never shown as current and good); the ECG title likewise."""
        latest = self.model.latest_hr()
        if latest is not None:
            source, t_s, bpm, quality = latest
            status = self.model.sources.get(source)
            silent = status.silent_s(now) if status is not None else 0.0
            session_now = self.model.session_time(now)
            age = max(silent, (session_now - t_s) if session_now is not None else 0.0)
            chosen = "" if self.model.primary_hr_choice == source else " (best signal)"
            set_text(self.hr_value, f"{bpm:.0f} bpm")
            if age > self.model.lost_after_s:
                set_style(self.hr_value, "color: #a6adb5;")
                set_text(self.hr_detail, f"{source}: stale, {age:.0f} s ago")
            else:
                quality_text = {GOOD: "good", UNCERTAIN: "uncertain", BAD: "bad"}[quality]
                set_style(self.hr_value, f"color: {INK if quality == GOOD else '#8a8f98'};")
                set_text(self.hr_detail, f"{source}{chosen}, {quality_text}, at "
                                          f"{format_duration(t_s)}")
        ecg_source = self.model.primary_source(self.model.ecg)
        if ecg_source is not None:
            status = self.model.sources.get(ecg_source)
            silent = status.silent_s(now) if status is not None else 0.0
            rate = self.model.ecg_rate_hz.get(ecg_source, 0.0)
            if silent > self.model.lost_after_s:
                self.ecg_title.setTextFormat(Qt.TextFormat.RichText)
                set_text(self.ecg_title, colored(f"ECG ({ecg_source}): no signal for "
                                                   f"{silent:.0f} s", RED))
            else:
                set_text(self.ecg_title, f"ECG ({ecg_source}, {rate:.0f} Hz) — last "
                                          f"{self.ecg_window_s:.0f} s")
        rmssd, n = self.model.hrv()
        if rmssd is not None:
            set_text(self.hrv_value, f"HRV {rmssd:.0f} ms")
            self.hrv_value.setToolTip(f"RMSSD over the last {self.model.rr_window_s:.0f} s "
                                      f"({n} RR intervals)")
        elif n:
            set_text(self.hrv_value, "HRV –")
            self.hrv_value.setToolTip(f"RMSSD needs more clean RR intervals ({n} so far)")

    def update_timeline(self) -> None:
        timeline = self.model.timeline
        # labels closer than a tenth of the plot's span go on another row: no overprint
        min_gap_s = self.hr_window_s / 10
        for t_s, kind, label in timeline[self._timeline_shown:]:
            color = "#78909c" if kind == "step" else "#6a1b9a"
            row = label_row(self._label_rows.setdefault(kind, [-1e9] * 3), t_s, min_gap_s)
            position = 0.96 - 0.08 * row if kind == "step" else 0.06 + 0.08 * row
            line = pg.InfiniteLine(
                pos=t_s, angle=90, movable=False,
                pen=pg.mkPen(color, width=1, style=Qt.PenStyle.DotLine),
                label=label, labelOpts={"position": position,
                                        "color": color, "rotateAxis": None})
            self.hr_plot.addItem(line)
            self._timeline_items.append(line)
        self._timeline_shown = len(timeline)

