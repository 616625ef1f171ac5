"""The live ECG strip: one opaque widget that paints the trace as a polyline.

Redrawn with every ECG chunk (50 Hz), so it does the least it can: the samples are
reduced with numpy to the minimum and maximum of each device-pixel column (every R peak
stays visible), written straight into a ``QPolygonF``'s memory, and painted with one
``drawPolyline`` over a cached picture of the background, grid and millivolt scale. No
scene graph, no per-point Python objects; the cached picture is re-rendered only when the
widget's size or the shown millivolt range changes.

Values should be finite, but waveform chunks are float32 buffers nobody upstream checks
for NaN or infinity (a sensor's glitch): the strip drops non-finite samples (one
``isfinite`` pass, a few µs per frame) rather than let them poison the scale or reach Qt's
rasterizer as NaN coordinates.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import numpy.typing as npt
import shiboken6
from PySide6.QtCore import QEvent, QPointF, QRectF, QSize, Qt
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetrics,
    QGuiApplication,
    QPainter,
    QPaintEvent,
    QPen,
    QPixmap,
    QPolygonF,
    QResizeEvent,
)
from PySide6.QtWidgets import QSizePolicy, QWidget

TRACE_COLOR = "#263238"
TEXT_COLOR = "#455060"
AXIS_COLOR = "#9aa3ad"
GRID_COLOR = "#e6e9ed"
#: Least width of the millivolt scale left of the trace (label, tick text, tick marks);
#: wider when the font needs it (``_fit_scale_width``).
SCALE_WIDTH_PX = 40
#: The tick text the scale leaves room for (wider ones, rare, reach into the label's column).
WIDEST_TICK = "-0.5"
TICK_PX = 4
#: Space above and below the trace, so the top and bottom tick labels are not cut.
MARGIN_Y_PX = 7
MARGIN_RIGHT_PX = 4
MIN_HEIGHT_PX, MAX_HEIGHT_PX = 110, 170
#: Shown before any ECG arrives (a typical lead's R peak fits).
DEFAULT_RANGE_MV = (-0.5, 1.5)
#: Smallest margin above and below the trace, in mV.
MIN_MARGIN_MV = 0.1
#: No samples (times or values).
_EMPTY = np.empty(0, dtype=np.float64)

FloatArray = npt.NDArray[np.float64]
#: ``VoidPtr(address, size_bytes, writable)``: its stub lacks this form.
_void_ptr: Any = shiboken6.VoidPtr


def next_y_range(shown_mv: tuple[float, float], low_mv: float, high_mv: float
                 ) -> tuple[float, float]:
    """The millivolt range to show for a trace spanning ``low_mv``–``high_mv``: the shown
    one unless the trace leaves it or uses under half of it (so the scale does not jump
    with every beat), else the trace with a 10 % margin (at least 0.1 mV)."""
    margin = max(MIN_MARGIN_MV, 0.1 * (high_mv - low_mv))
    shown_low, shown_high = shown_mv
    if (low_mv < shown_low or high_mv > shown_high
            or (high_mv - low_mv + 2 * margin) < 0.5 * (shown_high - shown_low)):
        return (low_mv - margin, high_mv + margin)
    return shown_mv


def scale_ticks(low_mv: float, high_mv: float) -> list[float]:
    """Two to four round values (1, 2, 2.5 or 5 × 10ⁿ mV apart) inside the range."""
    span = high_mv - low_mv
    if not span > 0:
        return [low_mv]
    magnitude = 10.0 ** math.floor(math.log10(span / 4))
    # the smallest round step that gives at most four ticks; the steps grow by at most
    # ×2, so the one before gave five or more, and this one gives at least two
    for factor in (1.0, 2.0, 2.5, 5.0, 10.0, 20.0, 25.0, 50.0):
        step = factor * magnitude
        first = math.ceil(low_mv / step - 1e-9)
        last = math.floor(high_mv / step + 1e-9)
        if last - first + 1 <= 4:
            return [round(i * step, 9) + 0.0 for i in range(first, last + 1)]
    return [low_mv, high_mv]  # not reached: 50 × magnitude > span


def scale_font() -> QFont:
    """The application's font, not the panel's larger style-sheet one: the heart-rate
    plot beside the strip (pyqtgraph) draws its axes in it."""
    return QGuiApplication.font()


def tick_text(value_mv: float) -> str:
    return f"{value_mv:g}"  # a hyphen for minus, as the heart-rate plot's axis writes it


def column_min_max(x_frac: FloatArray, values: FloatArray, columns: int
                   ) -> tuple[npt.NDArray[np.intp], FloatArray, FloatArray]:
    """Per pixel column holding samples: its index and its two extremes, ordered as the
    signal met them (a falling edge draws max then min, so slopes stay clean lines).
    ``x_frac`` in [0, 1] and non-decreasing (samples in time order)."""
    column = np.minimum((x_frac * columns).astype(np.intp), columns - 1)
    starts = np.flatnonzero(np.diff(column, prepend=-1))
    low = np.minimum.reduceat(values, starts)
    high = np.maximum.reduceat(values, starts)
    ends = np.append(starts[1:], values.size) - 1
    falling = values[starts] > values[ends]
    first = np.where(falling, high, low)
    second = np.where(falling, low, high)
    return column[starts], first, second


class EcgStrip(QWidget):
    """The last ``window_s`` seconds of ECG, newest at the right edge, with a mV scale."""

    def __init__(self, window_s: float, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.window_s = window_s
        # every pixel is painted (the cached background covers the widget): Qt need not
        # clear or repaint what lies beneath
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
        self.setMinimumHeight(MIN_HEIGHT_PX)
        self.setMaximumHeight(MAX_HEIGHT_PX)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self._t_rel_s: FloatArray = _EMPTY
        self._values_mv: FloatArray = _EMPTY
        self._range_mv: tuple[float, float] = DEFAULT_RANGE_MV
        self._polygon = QPolygonF()
        self._polygon_stale = False
        self._background: QPixmap | None = None
        # 1 logical pixel: 2 device pixels on a HiDPI screen, like the other plots
        self._pen = QPen(QColor(TRACE_COLOR), 1.0)
        self._has_range = False
        #: ``time.monotonic_ns()`` when the last trace arrived (benchmarks, tests).
        self.last_set_ns = 0
        self._scale_width_px = self._fit_scale_width()
        #: How often the cached background was rendered (tests: only on size/range change).
        self.background_renders = 0

    # --- data -----------------------------------------------------------------------

    def set_trace(self, t_rel_s: FloatArray, values_mv: FloatArray) -> None:
        """The trace to show: times in seconds before the newest sample (≤ 0, increasing)
        and values in mV (non-finite ones are left out). Kept, not copied; mapped to pixels
        when painted, so a hidden strip costs nothing and chunks arriving between two
        paints are drawn once."""
        self.last_set_ns = time.monotonic_ns()
        t = np.asarray(t_rel_s, dtype=np.float64)
        v = np.asarray(values_mv, dtype=np.float64)
        finite = np.isfinite(v)
        if not finite.all():
            t, v = t[finite], v[finite]
        self._t_rel_s, self._values_mv = t, v
        if self._values_mv.size:
            # the first trace sets the range; later ones only by the hysteresis rule
            shown = next_y_range(self._range_mv if self._has_range else (math.inf, -math.inf),
                                 float(self._values_mv.min()), float(self._values_mv.max()))
            self._has_range = True
            if shown != self._range_mv:
                self._range_mv = shown
                self._background = None
        self._polygon_stale = True
        self.update()

    def clear(self) -> None:
        """No trace, and the default scale (a new session)."""
        self._range_mv = DEFAULT_RANGE_MV
        self._has_range = False
        self._background = None
        self.set_trace(_EMPTY, _EMPTY)

    def trace_points(self) -> tuple[FloatArray, FloatArray]:
        """The last trace set: (times s before the newest sample, values mV)."""
        return self._t_rel_s, self._values_mv

    def y_range_mv(self) -> tuple[float, float]:
        return self._range_mv

    def plot_rect(self) -> QRectF:
        """Where the trace is drawn, in widget (logical) pixels."""
        return QRectF(self._scale_width_px, MARGIN_Y_PX,
                      max(1.0, self.width() - self._scale_width_px - MARGIN_RIGHT_PX),
                      max(1.0, self.height() - 2 * MARGIN_Y_PX))

    def value_to_y(self, value_mv: float) -> float:
        """The widget y coordinate where ``value_mv`` is drawn."""
        rect = self.plot_rect()
        low, high = self._range_mv
        return rect.top() + (high - value_mv) / (high - low) * rect.height()

    def time_to_x(self, t_rel_s: float) -> float:
        """The widget x coordinate of a sample ``t_rel_s`` before the newest one."""
        rect = self.plot_rect()
        return rect.left() + (t_rel_s + self.window_s) / self.window_s * rect.width()

    # --- painting -------------------------------------------------------------------

    def sizeHint(self) -> QSize:
        return QSize(600, 140)

    def _fit_scale_width(self) -> int:
        """The unit label's line, the widest tick text and the tick marks side by side."""
        metrics = QFontMetrics(scale_font())
        return max(SCALE_WIDTH_PX, metrics.height() + metrics.horizontalAdvance(WIDEST_TICK)
                   + TICK_PX + 3)

    def changeEvent(self, event: QEvent) -> None:
        if event.type() == QEvent.Type.ApplicationFontChange:  # the scale's font
            self._scale_width_px = self._fit_scale_width()
            self._background = None
            self._polygon_stale = True
        super().changeEvent(event)

    def resizeEvent(self, event: QResizeEvent) -> None:
        self._background = None
        self._polygon_stale = True
        super().resizeEvent(event)

    def paintEvent(self, event: QPaintEvent) -> None:
        ratio = self.devicePixelRatioF()
        background = self._background
        if background is None or background.devicePixelRatioF() != ratio:
            background = self._background = self._render_background(ratio)
        if self._polygon_stale:
            self._build_polygon(ratio)
        painter = QPainter(self)
        painter.drawPixmap(0, 0, background)
        if self._polygon.size() > 1:
            # no clipping needed: the range always holds the trace (``next_y_range``)
            # and times are within the window
            painter.setPen(self._pen)
            painter.drawPolyline(self._polygon)
        painter.end()

    def _build_polygon(self, ratio: float) -> None:
        """The trace in widget coordinates: raw samples when there are few, else the
        extremes of each device-pixel column."""
        self._polygon_stale = False
        t, v = self._t_rel_s, self._values_mv
        rect = self.plot_rect()
        keep = t >= -self.window_s
        if not keep.all():
            t, v = t[keep], v[keep]
        if t.size < 2:
            self._polygon.clear()
            return
        x_frac = (t + self.window_s) / self.window_s
        columns = max(1, int(rect.width() * ratio))
        if t.size <= 2 * columns:
            x_px = rect.left() + x_frac * rect.width()
            ys: tuple[FloatArray, ...] = (v,)
            xs: tuple[FloatArray, ...] = (x_px,)
        else:
            column, first, second = column_min_max(x_frac, v, columns)
            x_px = np.asarray(rect.left() + (column + 0.5) / ratio, dtype=np.float64)
            ys, xs = (first, second), (x_px, x_px)
        low, high = self._range_mv
        scale = rect.height() / (high - low)
        points = self._points_view(sum(x.size for x in xs))
        n = len(ys)
        for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
            points[i::n, 0] = x
            points[i::n, 1] = rect.top() + (high - y) * scale

    def _points_view(self, size: int) -> FloatArray:
        """The polygon resized to ``size`` points, as a writable (size, 2) array over its
        memory (valid until the polygon is resized again)."""
        self._polygon.resize(size)
        memory = _void_ptr(self._polygon.data(), size * 2 * 8, True)
        return np.frombuffer(memory, dtype=np.float64).reshape(size, 2)

    def _render_background(self, ratio: float) -> QPixmap:
        """White, light grid lines at the ticks, the scale with its label and tick text."""
        self.background_renders += 1
        width, height = max(1, self.width()), max(1, self.height())
        pixmap = QPixmap(QSize(math.ceil(width * ratio), math.ceil(height * ratio)))
        pixmap.setDevicePixelRatio(ratio)
        pixmap.fill(QColor("white"))
        painter = QPainter(pixmap)
        rect = self.plot_rect()
        low, high = self._range_mv
        font = scale_font()
        metrics = QFontMetrics(font)
        painter.setFont(font)
        axis_x = rect.left() - 0.5
        for value in scale_ticks(low, high):
            y = round(self.value_to_y(value)) + 0.5
            painter.setPen(QPen(QColor(GRID_COLOR), 0))
            painter.drawLine(QPointF(rect.left(), y), QPointF(rect.right(), y))
            painter.setPen(QPen(QColor(AXIS_COLOR), 0))
            painter.drawLine(QPointF(axis_x - TICK_PX, y), QPointF(axis_x, y))
            painter.setPen(QColor(TEXT_COLOR))
            text_rect = QRectF(0, y - metrics.height() / 2, axis_x - TICK_PX - 1.5,
                               metrics.height())
            painter.drawText(text_rect, Qt.AlignmentFlag.AlignRight
                             | Qt.AlignmentFlag.AlignVCenter, tick_text(value))
        painter.setPen(QPen(QColor(AXIS_COLOR), 0))
        painter.drawLine(QPointF(axis_x, rect.top()), QPointF(axis_x, rect.bottom()))
        # the unit, turned like a y-axis label, at the strip's left edge
        painter.setPen(QColor(TEXT_COLOR))
        painter.translate(1, height / 2)
        painter.rotate(-90)
        painter.drawText(QRectF(-height / 2, 0, height, metrics.height()),
                         Qt.AlignmentFlag.AlignCenter, "mV")
        painter.end()
        return pixmap
