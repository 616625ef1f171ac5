"""The panel's own ECG strip, looked at: its pixels, grabbed on the offscreen Qt platform."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from PySide6.QtGui import QImage
from pytestqt.qtbot import QtBot

from vrexposure.panel.ecg_strip import (
    DEFAULT_RANGE_MV,
    MARGIN_Y_PX,
    EcgStrip,
    column_min_max,
    next_y_range,
    scale_ticks,
    tick_text,
)

WINDOW_S = 5.0
WIDTH_PX, HEIGHT_PX = 840, 150
#: Darker than this (sum of R, G, B) is the trace or text; the grid is light (≈ 690).
DARK = 300
PEAK_EVERY_S = 0.8


def as_array(image: QImage) -> np.ndarray:
    image = image.convertToFormat(QImage.Format.Format_RGB888)
    rows = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(),
                                                               image.bytesPerLine())
    return rows[:, :image.width() * 3].reshape(image.height(), image.width(), 3).copy()


def grab(qtbot: QtBot, strip: EcgStrip) -> np.ndarray:
    qtbot.wait(10)  # let the update() be processed
    return as_array(strip.grab().toImage())


def dark(pixels: np.ndarray) -> np.ndarray:
    return pixels.astype(int).sum(axis=-1) < DARK


def spiky_ecg(rate_hz: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A flat line at 0 mV with one-sample 1 mV spikes every 0.8 s (the newest 0.1 s
    before the end); times before the newest sample. Returns (t, v, spike times)."""
    n = int(WINDOW_S * rate_hz)
    t = (np.arange(n) - (n - 1)) / rate_hz
    v = np.zeros(n)
    spikes = np.arange(-0.1, -WINDOW_S + 0.05, -PEAK_EVERY_S)
    index = np.round((spikes - t[0]) * rate_hz).astype(int)
    v[index] = 1.0
    return t, v, t[index]


@pytest.fixture
def strip(qtbot: QtBot) -> EcgStrip:
    widget = EcgStrip(WINDOW_S)
    qtbot.addWidget(widget)
    widget.resize(WIDTH_PX, HEIGHT_PX)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def peak_columns(pixels: np.ndarray, strip: EcgStrip) -> list[float]:
    """Centres of the runs of plot columns drawn above 0.6 mV (the spikes reach 1 mV, the
    line between them is at 0 mV)."""
    rect = strip.plot_rect()
    left = int(rect.left()) + 1
    above = dark(pixels[int(rect.top()):round(strip.value_to_y(0.6)), left:]).any(axis=0)
    columns = np.flatnonzero(above)
    if not columns.size:
        return []
    runs = np.split(columns, np.flatnonzero(np.diff(columns) > 1) + 1)
    return [left + float(run.mean()) for run in runs]


@pytest.mark.parametrize("rate_hz", [1000.0, 130.0])  # decimated per column / drawn raw
def test_r_peaks_are_tall_dark_columns_at_their_times(qtbot: QtBot, strip: EcgStrip,
                                                      rate_hz: float) -> None:
    t, v, spike_t = spiky_ecg(rate_hz)
    strip.set_trace(t, v)
    pixels = grab(qtbot, strip)
    assert dark(pixels).any()
    found = peak_columns(pixels, strip)
    expected = [strip.time_to_x(s) for s in sorted(spike_t)]
    # every one-sample spike is drawn (a decimation that drops a column's maximum, or
    # keeps every n-th sample, loses most of them), each where its time says
    assert len(found) == len(expected), (found, expected)
    assert np.allclose(found, expected, atol=2.0), (found, expected)
    px_per_s = strip.plot_rect().width() / WINDOW_S
    assert np.allclose(np.diff(found), PEAK_EVERY_S * px_per_s, atol=2.0)
    # the newest spike is 0.1 s from the right edge: the strip ends at the newest sample
    assert abs(found[-1] - (strip.plot_rect().right() - 0.1 * px_per_s)) < 2.0


def test_a_flat_line_sits_at_the_height_of_its_value(qtbot: QtBot, strip: EcgStrip) -> None:
    t = np.linspace(-WINDOW_S, 0.0, 5001)
    v = np.where(t < -3.0, -0.6, 0.3)  # older: -0.6 mV; newer: 0.3 mV
    v[100] = 1.0  # one beat sets the top of the range
    strip.set_trace(t, v)
    low, high = strip.y_range_mv()
    assert (low, high) == pytest.approx((-0.76, 1.16))  # the trace plus 10 % of its span
    pixels = grab(qtbot, strip)
    rect = strip.plot_rect()
    height = HEIGHT_PX - 2 * MARGIN_Y_PX
    for value_mv, x_px in ((0.3, strip.time_to_x(-1.0)), (-0.6, strip.time_to_x(-4.0))):
        rows = np.flatnonzero(dark(pixels[:, int(x_px)]))
        expected_y = MARGIN_Y_PX + (high - value_mv) / (high - low) * height
        assert rows.size and abs(rows.mean() - expected_y) <= 1.0, (value_mv, rows)
        assert rows.size <= 2  # a thin line, not a smear
    assert rect.top() == MARGIN_Y_PX


def test_the_scale_has_tick_text_and_grid_lines_at_its_ticks(qtbot: QtBot,
                                                            strip: EcgStrip) -> None:
    t, v, _ = spiky_ecg(1000.0)
    strip.set_trace(t, v)
    pixels = grab(qtbot, strip)
    rect = strip.plot_rect()
    ticks = scale_ticks(*strip.y_range_mv())
    assert 2 <= len(ticks) <= 4 and tick_text(0.5) == "0.5"
    for value in ticks:
        y = round(strip.value_to_y(value))
        # tick text left of the axis, around the tick's height
        text = dark(pixels[y - 6:y + 7, 16:int(rect.left()) - 6])
        assert text.sum() >= 4, value
        # a light grid line across the plot at that height (between the spikes)
        row = pixels[y, int(strip.time_to_x(-0.5)):int(strip.time_to_x(-0.2))].astype(int)
        assert np.all((row.sum(axis=1) > 600) & (row.sum(axis=1) < 3 * 255)), value
    # the unit, turned, in the scale's leftmost column of text
    assert dark(pixels[:, :16]).sum() >= 10


def test_an_empty_strip_paints_background_and_scale_only(qtbot: QtBot,
                                                          strip: EcgStrip) -> None:
    t, v, _ = spiky_ecg(1000.0)
    strip.set_trace(t, v)
    grab(qtbot, strip)
    strip.clear()
    assert strip.trace_points()[0].size == 0 and strip.y_range_mv() == DEFAULT_RANGE_MV
    pixels = grab(qtbot, strip)
    rect = strip.plot_rect()
    plot = pixels[:, int(rect.left()) + 1:]
    assert not dark(plot).any()  # no trace
    assert (plot.astype(int).sum(axis=2) == 3 * 255).mean() > 0.9  # white, a few grid lines
    assert dark(pixels[:, :int(rect.left())]).sum() >= 20  # the scale's text
    # a single sample is no line either
    strip.set_trace(np.array([0.0]), np.array([0.4]))
    assert not dark(grab(qtbot, strip)[:, int(rect.left()) + 1:]).any()


def test_the_range_changes_only_when_the_trace_leaves_it_or_uses_under_half(
        qtbot: QtBot, strip: EcgStrip) -> None:
    # the rule itself
    assert next_y_range((-0.2, 1.2), 0.0, 1.0) == (-0.2, 1.2)  # inside: kept
    assert next_y_range((-0.2, 1.2), 0.0, 1.5) == pytest.approx((-0.15, 1.65))  # leaves it
    assert next_y_range((-0.2, 1.2), 0.0, 0.3) == pytest.approx((-0.1, 0.4))  # under half
    assert next_y_range((-0.2, 1.2), 0.1, 0.6) == (-0.2, 1.2)  # half or more: kept
    # on the widget: the scale is re-rendered only when the range changes
    t, v, _ = spiky_ecg(1000.0)
    strip.set_trace(t, v)
    grab(qtbot, strip)
    first = strip.y_range_mv()
    renders = strip.background_renders
    for scale in (0.95, 0.9, 1.0, 0.8):  # beats of varying height, all inside the range
        strip.set_trace(t, v * scale)
        grab(qtbot, strip)
    assert strip.y_range_mv() == first and strip.background_renders == renders
    strip.set_trace(t, v * 2.0)  # a taller beat leaves the range
    assert strip.y_range_mv() == pytest.approx((-0.2, 2.2))
    assert abs(peak_top(grab(qtbot, strip), strip) - strip.value_to_y(2.0)) <= 1.0
    assert strip.background_renders == renders + 1
    strip.set_trace(t, v * 0.5)  # now it uses under half of it: the range shrinks
    assert strip.y_range_mv() == pytest.approx((-0.1, 0.6))
    # the trace is drawn against the new range (the top of the beat near the top)
    assert abs(peak_top(grab(qtbot, strip), strip) - strip.value_to_y(0.5)) <= 1.0
    assert strip.background_renders == renders + 2


def peak_top(pixels: np.ndarray, strip: EcgStrip) -> int:
    rect = strip.plot_rect()
    return int(np.flatnonzero(dark(pixels[:, int(rect.left()) + 1:]).any(axis=1))[0])


def test_a_resize_redraws_the_scale_and_refits_the_trace(qtbot: QtBot,
                                                         strip: EcgStrip) -> None:
    t, v, spike_t = spiky_ecg(1000.0)
    strip.set_trace(t, v)
    grab(qtbot, strip)
    renders = strip.background_renders
    strip.resize(600, 110)
    pixels = grab(qtbot, strip)
    assert pixels.shape[:2] == (110, 600)
    assert strip.background_renders == renders + 1
    # the ticks' text and grid lines moved to the new heights
    rect = strip.plot_rect()
    assert rect.bottom() == 110 - MARGIN_Y_PX
    for value in scale_ticks(*strip.y_range_mv()):
        y = round(strip.value_to_y(value))
        assert dark(pixels[y - 6:y + 7, 16:int(rect.left()) - 6]).sum() >= 4, value
        row = pixels[y, int(strip.time_to_x(-0.5)):int(strip.time_to_x(-0.2))].astype(int)
        assert np.all(row.sum(axis=1) < 3 * 255), value
    # the trace spans the new width: spikes where their times say
    found = peak_columns(pixels, strip)
    assert np.allclose(found, [strip.time_to_x(s) for s in sorted(spike_t)], atol=2.0)


def test_a_hidden_strip_keeps_the_newest_trace_for_when_it_shows(qtbot: QtBot,
                                                                 strip: EcgStrip) -> None:
    strip.hide()
    t, v, spike_t = spiky_ecg(1000.0)
    strip.set_trace(t, v * 0.1)
    before_ns = time.monotonic_ns()
    strip.set_trace(t, v)  # only the newest counts
    # when it got the data (the panel's latency is measured to this moment)
    assert before_ns <= strip.last_set_ns <= time.monotonic_ns()
    strip.show()
    qtbot.waitExposed(strip)
    found = peak_columns(grab(qtbot, strip), strip)
    assert len(found) == len(spike_t)


def test_non_finite_samples_are_left_out_not_drawn_or_scaled(qtbot: QtBot,
                                                           strip: EcgStrip) -> None:
    t, v, spike_t = spiky_ecg(1000.0)
    v[[10, 2000, 4000]] = (np.nan, np.inf, -np.inf)  # a sensor glitch in a float32 chunk
    strip.set_trace(t, v)
    low, high = strip.y_range_mv()
    assert (low, high) == pytest.approx((-0.1, 1.1))  # the finite samples' range
    assert np.isfinite(strip.trace_points()[1]).all() and strip.trace_points()[1].size == 4997
    found = peak_columns(grab(qtbot, strip), strip)
    assert np.allclose(found, [strip.time_to_x(s) for s in sorted(spike_t)], atol=2.0)


def test_column_extremes_keep_every_peak_and_the_newest_sample() -> None:
    t = np.arange(5001) / 1000.0
    v = np.sin(2 * np.pi * t)
    v[[7, 2345, 5000]] = (-3.0, 5.0, 4.0)  # a trough, an R peak, the newest sample
    x_frac = (t - t[0]) / (t[-1] - t[0])
    column, first, second = column_min_max(x_frac, v, 800)
    assert column.size == 800 and np.array_equal(column, np.arange(800))
    both = np.concatenate((first, second))
    assert both.max() == 5.0 and both.min() == -3.0
    assert 4.0 in (first[-1], second[-1])  # the newest sample's column ends with it
    # ordered as met: where the sine falls the maximum comes first, else the minimum
    slope = np.cos(2 * np.pi * (column + 0.5) / 800 * 5.0)
    plain = np.ones(800, dtype=bool)
    plain[[1, 375, 799]] = False  # the columns of the trough, the peak, the newest sample
    assert np.all((first > second)[plain & (slope < -0.2)])
    assert np.all((first < second)[plain & (slope > 0.2)])


def test_scale_ticks_are_two_to_four_round_values_inside_the_range() -> None:
    for low, high in ((-0.2, 1.2), (-0.155, 1.105), (-0.5, 1.5), (0.2, 0.4), (-3.0, 9.0),
                      (-0.013, 0.021), (0.9, 1.1), (-1.2, 1.2)):
        ticks = scale_ticks(low, high)
        assert 2 <= len(ticks) <= 4, (low, high, ticks)
        assert all(low <= tick <= high for tick in ticks)
        step = np.diff(ticks)
        assert np.allclose(step, step[0])


HIDPI_SCRIPT = textwrap.dedent("""
    import numpy as np
    from PySide6.QtWidgets import QApplication
    from vrexposure.panel.ecg_strip import EcgStrip
    from tests.test_panel_ecg_strip import as_array, dark, peak_columns, spiky_ecg

    app = QApplication([])
    strip = EcgStrip(5.0)
    strip.resize(420, 140)
    strip.show()
    t, v, spike_t = spiky_ecg(1000.0)
    strip.set_trace(t, v)
    app.processEvents()
    pixmap = strip.grab()
    assert strip.devicePixelRatioF() == 2.0 and pixmap.devicePixelRatioF() == 2.0
    pixels = as_array(pixmap.toImage())
    assert pixels.shape[:2] == (280, 840), pixels.shape
    # the spikes at twice their logical x (the same columns, device pixels)
    rect = strip.plot_rect()
    left = int(rect.left() * 2) + 2
    area = dark(pixels[int(rect.top() * 2):int(rect.bottom() * 2), left:])
    columns = np.flatnonzero(area.sum(axis=0) > 0.6 * area.shape[0])
    runs = np.split(columns, np.flatnonzero(np.diff(columns) > 1) + 1)
    found = [left + run.mean() for run in runs]
    expected = [2 * strip.time_to_x(s) for s in sorted(spike_t)]
    assert len(found) == len(expected) and np.allclose(found, expected, atol=3), found
    # the scale rendered at device resolution: a grid line is one device pixel thick
    # (a 1x picture scaled up would make it two)
    x = int(2 * strip.time_to_x(-0.5))
    column = pixels[:, x].astype(int).sum(axis=1)
    grid = np.flatnonzero((column > 600) & (column < 3 * 255))
    assert grid.size >= 2 and np.all(np.diff(grid) > 1), grid
    print("ok")
""")


def test_hidpi_draws_at_device_resolution() -> None:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "QT_SCALE_FACTOR": "2",
           "PYTHONPATH": root}
    done = subprocess.run([sys.executable, "-c", HIDPI_SCRIPT], env=env, cwd=root,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
