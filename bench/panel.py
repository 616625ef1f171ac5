"""Therapist panel: time from a sample's publication to the plot, and the panel's CPU share.

Processes, as in a session on one machine:

* the session host (``vrexposure session``);
* the simulated patient (1 kHz ECG in 20-sample chunks, 90 Hz head pose, 1 Hz heart
  rate and RR), each message stamped with its CLOCK_MONOTONIC send time
  (``sent_ns``, shared by all processes on Linux);
* a stand-in renderer: a 320-px JPEG preview at 4 Hz (a scene picture with a moving
  mark, so every frame differs; encoded by Qt) and render stats at 1 Hz;
* the panel (``PanelWindow``, shown on the offscreen Qt platform, so it lays out
  and paints as on a screen) in its own process: latency = the time its plot items
  received the data (``setData`` of the heart-rate curves, ``set_trace`` of the ECG
  strip; stamped by the window right after both) minus ``sent_ns``;
* the peer, in the same run: a bare SUB receiving the same streams and decoding each
  message; latency at receipt.

CPU share = process CPU time (all threads) / wall time over the measured window.
``--hog N`` runs N busy processes beside it for the whole run (the renderer of a
one-PC clinic, another job), as ``bench/soak.py`` does.
Run: ``python bench/panel.py [--seconds 20] [--hog 2]``. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import queue
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.soak import hog  # noqa: E402
from tests.conftest import free_endpoints  # noqa: E402
from vrexposure.client import ControlClient, Publisher, Subscriber  # noqa: E402
from vrexposure.config import Endpoints, write_config  # noqa: E402

WARMUP_S = 3.0
PLOTTED = ("hr.", "ecg.")


def _stamp_sends() -> None:
    """Make every Publisher in this process add its send time to the payload."""
    original = Publisher.publish

    def publish(self: Publisher, kind: str, payload: Any, t_s: float | None = None) -> None:
        original(self, kind, {**payload, "sent_ns": time.monotonic_ns()}, t_s)

    Publisher.publish = publish  # type: ignore[method-assign]


def _patient(endpoints: Endpoints, seconds: float) -> None:
    from vrexposure.sim import SimSettings, SimulatedPatient

    _stamp_sends()
    patient = SimulatedPatient(endpoints, SimSettings(pose_rate_hz=90.0, ecg_rate_hz=1000.0,
                                                      ecg_chunk_samples=20)).start()
    time.sleep(seconds)
    patient.stop()


def _renderer(endpoints: Endpoints, seconds: float) -> None:
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt
    from PySide6.QtGui import QColor, QImage, QPainter

    control = ControlClient(endpoints.control, "renderer", "bench-renderer")
    offset = control.sync_clock(rounds=4)
    control.close()
    publisher = Publisher(endpoints.publish, "main", clock=lambda: time.monotonic() + offset,
                          control=endpoints.control)
    publisher.wait_connected()
    base = QImage(str(ROOT / "docs" / "images" / "spiders.png")).scaledToWidth(
        320, Qt.TransformationMode.SmoothTransformation)
    end = time.monotonic() + seconds
    frame = 0
    next_frame = time.monotonic()
    while time.monotonic() < end:
        image = base.copy()
        painter = QPainter(image)
        painter.setBrush(QColor(230, 80, 40))
        painter.drawEllipse(20 + (frame * 7) % 280, 60, 24, 24)
        painter.end()
        data = QByteArray()
        buffer = QBuffer(data)
        buffer.open(QIODevice.OpenModeFlag.WriteOnly)
        image.save(buffer, "JPG", 70)
        publisher.publish("preview", {"jpeg": bytes(data.data()), "width_px": image.width(),
                                      "height_px": image.height(), "frame": frame})
        if frame % 4 == 0:
            publisher.publish("render", {"frame_ms_p50": 8.0, "frame_ms_p99": 11.5, "fps": 90.0,
                                         "scene": "spiders", "phase": "exposure",
                                         "failsafe": False})
        frame += 1
        next_frame += 0.25
        time.sleep(max(0.0, next_frame - time.monotonic()))
    publisher.close()


def _thread_cpu_s() -> dict[str, float]:
    """CPU seconds per thread name of this process (Linux /proc; empty elsewhere)."""
    import threading

    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    names = {t.native_id: t.name for t in threading.enumerate()}
    names[threading.main_thread().native_id] = "GUI"
    usage: dict[str, float] = {}
    for task in Path("/proc/self/task").glob("*"):
        try:
            name = names.get(int(task.name)) or (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        usage[name] = usage.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / ticks
    return usage


def _panel(endpoints: Endpoints, seconds: float, results: Any, profile: str | None = None
           ) -> None:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from vrexposure.panel.window import PanelWindow

    app = QApplication(["bench-panel"])
    window = PanelWindow(endpoints, "bench-panel")
    window._fitted = True  # measured at a 1080p laptop's 1600×1000, not the offscreen screen
    window.resize(1600, 1000)
    window.show()
    marks: dict[str, float] = {}
    threads: dict[str, float] = {}
    import cProfile

    profiler = cProfile.Profile() if profile else None  # the GUI thread only

    def begin() -> None:
        window.display_latency_ms.clear()
        window.model.ingest_latency_ms.clear()
        marks["wall"], marks["cpu"] = time.monotonic(), time.process_time()
        threads.update(_thread_cpu_s())
        if profiler is not None:
            profiler.enable()

    def finish() -> None:
        if profiler is not None and profile:
            profiler.disable()
            profiler.dump_stats(profile)
        wall = time.monotonic() - marks["wall"]
        cpu = time.process_time() - marks["cpu"]
        per_thread = {name: round(100.0 * (cpu_s - threads.get(name, 0.0)) / wall, 1)
                      for name, cpu_s in _thread_cpu_s().items()}
        results.put({"who": "panel", "latency_ms": list(window.display_latency_ms),
                     "threads": {k: v for k, v in per_thread.items() if v >= 0.5},
                     "ingest_ms": list(window.model.ingest_latency_ms),
                     "cpu_pct": 100.0 * cpu / wall, "wall_s": wall,
                     "dropped": window.bridge.dropped_messages})
        window.shutdown()
        app.quit()

    QTimer.singleShot(int(WARMUP_S * 1000), begin)
    QTimer.singleShot(int((WARMUP_S + seconds) * 1000), finish)
    app.exec()


def _peer(endpoints: Endpoints, seconds: float, results: Any) -> None:
    subscriber = Subscriber(endpoints, topics=("",))
    latencies: list[float] = []
    counts = 0
    start = time.monotonic()
    while time.monotonic() - start < WARMUP_S:
        subscriber.recv(0.1)
    wall0, cpu0 = time.monotonic(), time.process_time()
    while time.monotonic() - wall0 < seconds:
        message = subscriber.recv(0.1)
        if message is None:
            continue
        counts += 1
        sent = message.payload.get("sent_ns")
        if isinstance(sent, int) and message.topic.startswith(PLOTTED):
            latencies.append((time.monotonic_ns() - sent) / 1e6)
    wall = time.monotonic() - wall0
    results.put({"who": "peer", "latency_ms": latencies, "messages": counts,
                 "cpu_pct": 100.0 * (time.process_time() - cpu0) / wall, "wall_s": wall})
    subscriber.close()


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--hog", type=int, default=0, metavar="N",
                        help="busy processes running beside the session")
    parser.add_argument("--profile", metavar="FILE",
                        help="write a cProfile of the panel's GUI thread (slows it down)")
    args = parser.parse_args()

    endpoints = free_endpoints()
    workdir = Path(tempfile.mkdtemp(prefix="vrexposure-bench-panel-"))
    config = write_config(workdir / "config.yaml", endpoints,
                          session={"recording_dir": str(workdir)})
    host = subprocess.Popen([sys.executable, "-m", "vrexposure", "session", "--config",
                             str(config), "--hierarchy", "arachnophobia", "--patient", "B001"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert host.stdout is not None
    host.stdout.readline()
    ctx = mp.get_context("spawn")
    results: Any = ctx.Queue()
    total = WARMUP_S + args.seconds
    consumers = [ctx.Process(target=_panel, args=(endpoints, args.seconds, results,
                                                  args.profile)),
                 ctx.Process(target=_peer, args=(endpoints, args.seconds, results))]
    producers = [ctx.Process(target=_patient, args=(endpoints, total + 2)),
                 ctx.Process(target=_renderer, args=(endpoints, total + 2))]
    hogs = [ctx.Process(target=hog, args=(time.monotonic() + total + 40.0,), daemon=True)
            for _ in range(args.hog)]
    outcome: dict[str, dict[str, Any]] = {}
    try:
        for process in hogs:
            process.start()
        for process in consumers:
            process.start()
        time.sleep(2.0)  # the panel is up and subscribed before data flows
        control = ControlClient(endpoints.control, "therapist", "bench-panel")
        control.send("start_exposure")
        control.send("intensity", {"value": 0.5})
        control.close()
        for process in producers:
            process.start()
        deadline = time.monotonic() + total + 30
        while len(outcome) < 2 and time.monotonic() < deadline:
            try:
                item = results.get(timeout=1.0)
            except queue.Empty:
                continue
            outcome[item["who"]] = item
        for process in consumers + producers:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()
    finally:
        for process in hogs:
            process.terminate()
            process.join()
        host.send_signal(signal.SIGTERM)
        host.wait(timeout=20)
        host.stdout.close()
    panel, peer = outcome["panel"], outcome["peer"]
    lat, ingest, peer_lat = panel["latency_ms"], panel["ingest_ms"], peer["latency_ms"]
    print(f"machine: {os.cpu_count()} cores; {args.seconds:.0f} s measured after "
          f"{WARMUP_S:.0f} s warm-up; {peer['messages'] / peer['wall_s']:.0f} msg/s "
          "(1 kHz ECG in 20-sample chunks, 90 Hz pose, 1 Hz HR/RR, 10 Hz state, "
          f"4 Hz preview JPEG); {args.hog} busy processes beside it")
    print(f"{'path (publication → …)':<40}{'n':>7}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}"
          f"{'CPU %':>8}")
    rows = [("panel: plot data (setData/set_trace)", lat, panel["cpu_pct"]),
            ("panel: received by its I/O thread", ingest, None),
            ("peer: bare SUB, decoded", peer_lat, peer["cpu_pct"])]
    for name, values, cpu in rows:
        cpu_text = f"{cpu:>8.1f}" if cpu is not None else f"{'':>8}"
        print(f"{name:<40}{len(values):>7}{pct(values, 50):>9.2f}{pct(values, 99):>9.2f}"
              f"{(max(values) if values else float('nan')):>9.2f}{cpu_text}")
    print("panel CPU % by thread: " + ", ".join(f"{name} {pct_:.1f}" for name, pct_ in
                                               sorted(panel["threads"].items(),
                                                      key=lambda kv: -kv[1])))
    print(f"goal: p99 ≤ 35 ms and the panel ≤ 10 % of one core, also with --hog 2; "
          f"messages dropped by "
          f"the panel: {panel['dropped']}")
    print(json.dumps({
        "latency_ms_p50": round(pct(lat, 50), 2), "latency_ms_p99": round(pct(lat, 99), 2),
        "cpu_pct": round(panel["cpu_pct"], 1), "n": len(lat),
        "ingest_ms_p50": round(pct(ingest, 50), 2), "ingest_ms_p99": round(pct(ingest, 99), 2),
        "peer_latency_ms_p50": round(pct(peer_lat, 50), 3),
        "peer_latency_ms_p99": round(pct(peer_lat, 99), 3),
        "peer_cpu_pct": round(peer["cpu_pct"], 1), "hog_processes": args.hog,
        "panel_threads_cpu_pct": panel["threads"]}))


if __name__ == "__main__":
    main()
