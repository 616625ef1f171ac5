"""ECG strip: GUI-thread CPU per frame of the panel's own strip against the pyqtgraph plot
it replaced, in the same process, alternating blocks.

Each frame is what the panel does per 20-sample ECG chunk (1 kHz): the newest
``--window`` seconds from a ring of synthetic ECG (``vrexposure.sim.EcgSynth``) handed to
the strip, then the event loop paints it (offscreen Qt platform, a top-level window the
strip's size). The peer is the plot of the panel before issue 19's own strip: a
``PlotWidget`` with a bare ``PlotCurveItem``, min/max peak decimation to ≤ 2 000 points,
axes cached as device pixmaps and an opaque viewport. Frames run back to back (CPU per
frame does not depend on the rate); paints are counted to show every frame was drawn.
Run: ``python bench/ecg_strip.py [--frames 500] [--blocks 4] [--width 1000]``. The last
line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pyqtgraph as pg  # noqa: E402
from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtGui import QPaintEvent  # noqa: E402
from PySide6.QtWidgets import QApplication, QGraphicsItem, QWidget  # noqa: E402

from vrexposure.panel.ecg_strip import EcgStrip  # noqa: E402
from vrexposure.sim import EcgSynth  # noqa: E402

FloatArray = npt.NDArray[np.float64]
RATE_HZ, CHUNK = 1000.0, 20
Draw = Callable[[FloatArray, FloatArray], None]


def peak_decimate(t: FloatArray, v: FloatArray, max_points: int) -> tuple[FloatArray, FloatArray]:
    """The replaced plot's decimation: min and max of each run of samples."""
    if v.size <= max_points:
        return t, v
    run = -(-v.size // (max_points // 2))
    start = v.size % run
    runs = v[start:].reshape(-1, run)
    return (np.repeat(t[start::run], 2),
            np.column_stack((runs.min(axis=1), runs.max(axis=1))).ravel())


class CountingStrip(EcgStrip):
    paints = 0

    def paintEvent(self, event: QPaintEvent) -> None:
        CountingStrip.paints += 1
        super().paintEvent(event)


class CountingCurve(pg.PlotCurveItem):  # type: ignore[misc]
    paints = 0

    def paint(self, *args: Any) -> None:
        CountingCurve.paints += 1
        super().paint(*args)


def own_strip(window_s: float) -> tuple[QWidget, Draw, Callable[[], int]]:
    strip = CountingStrip(window_s)
    return strip, strip.set_trace, lambda: CountingStrip.paints


def pyqtgraph_strip(window_s: float) -> tuple[QWidget, Draw, Callable[[], int]]:
    plot = pg.PlotWidget(background="w")
    plot.setMinimumHeight(110)
    plot.setMaximumHeight(170)
    item = plot.getPlotItem()
    item.setMenuEnabled(False)
    item.hideButtons()
    item.setMouseEnabled(x=False, y=False)
    item.hideAxis("bottom")
    item.setXRange(-window_s, 0.0, padding=0.0)
    item.getAxis("left").setWidth(40)
    item.setLabel("left", "mV")
    curve = CountingCurve(pen=pg.mkPen("#263238", width=1))
    item.addItem(curve)
    plot.viewport().setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)
    for axis in item.axes.values():
        axis["item"].setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
    plot.setYRange(-0.6, 1.4, padding=0)  # fixed: the hysteresis rarely changes it

    def draw(t: FloatArray, v: FloatArray) -> None:
        curve.setData(*peak_decimate(t, v, 2000), skipFiniteCheck=True)

    return plot, draw, lambda: CountingCurve.paints


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=500, help="frames per block")
    parser.add_argument("--blocks", type=int, default=4, help="blocks per strip, alternated")
    parser.add_argument("--width", type=int, default=1000, help="strip width, px")
    parser.add_argument("--window", type=float, default=5.0, help="seconds shown")
    args = parser.parse_args()

    app = QApplication(["bench-ecg-strip"])
    window_n = int(args.window * RATE_HZ)
    total = window_n + args.frames * args.blocks * 2 * CHUNK + CHUNK
    t_all = np.arange(total) / RATE_HZ
    v_all = EcgSynth().render(0.0, total, RATE_HZ, np.arange(0.3, total / RATE_HZ, 0.8)
                              ).astype(np.float64)
    strips = {"own": own_strip(args.window), "pyqtgraph": pyqtgraph_strip(args.window)}
    for widget, _, _ in strips.values():
        widget.resize(args.width, 140)
        widget.show()
    app.processEvents()
    cpu_ms: dict[str, list[float]] = {name: [] for name in strips}
    paints = {name: 0 for name in strips}
    end = window_n
    for block in range(args.blocks):
        order = list(strips) if block % 2 == 0 else list(strips)[::-1]
        for name in order:
            _, draw, painted = strips[name]
            before_paints = painted()
            start_cpu = time.thread_time()
            for _ in range(args.frames):
                end += CHUNK
                t = t_all[end - window_n:end]
                # a copy per frame, as the panel model's ring hands out
                draw(t - t[-1], v_all[end - window_n:end].copy())
                app.processEvents()
            cpu_ms[name].append(1e3 * (time.thread_time() - start_cpu) / args.frames)
            paints[name] += painted() - before_paints
    own, peer = float(np.median(cpu_ms["own"])), float(np.median(cpu_ms["pyqtgraph"]))
    frames = args.frames * args.blocks
    print(f"{args.width}×140 px strip, {args.window:.0f} s of 1 kHz ECG, {frames} frames "
          f"per strip in {args.blocks} alternated blocks; GUI-thread CPU per frame:")
    for name in strips:
        print(f"  {name:<10} median {np.median(cpu_ms[name]):.3f} ms  (blocks: "
              + " / ".join(f"{ms:.3f}" for ms in cpu_ms[name])
              + f"), {paints[name]} paints, {np.median(cpu_ms[name]) * 5:.1f} % of a core at 50 Hz")
    print(f"own / pyqtgraph: {own / peer:.2f}")
    print(json.dumps({"own_ms_per_frame": round(own, 3), "pyqtgraph_ms_per_frame": round(peer, 3),
                      "ratio_own_vs_pyqtgraph": round(own / peer, 3),
                      "own_paints": paints["own"], "pyqtgraph_paints": paints["pyqtgraph"],
                      "frames": frames, "width_px": args.width}))
    app.quit()


if __name__ == "__main__":
    main()
