"""Render benchmark: stereo frame time per scene and command-to-photon latency.

Every scene at its hierarchy's highest step (intensity 1; calm at its defaults),
side-by-side stereo 2 × 1440 × 1600 offscreen on EGL (Mesa llvmpipe when there
is no GPU). Each frame is forced to completion with Panda3D's ``gl-finish``
(``glFinish()`` at the end of every frame), so a frame time is the time until the
pixels exist, not until the commands are queued. Frame time = wall time of
``RenderEngine.step`` (scene update + cull + draw + finish).

Draw calls and triangles: the Geoms of the scene that pass view-frustum culling
against the camera lens, counted once per eye.

The peer, measured in the same run (in a child process, because Panda3D allows
one window system per process): the same scenes rendered mono 1280 × 720; the
ratio stereo / mono is printed per scene (the stereo frame has 5× the pixels).

Command-to-photon: a session host in a subprocess, the renderer
(:class:`RendererProcess`, same stereo engine) in this process, a therapist
thread sending ``intensity`` commands; latency = ``shown_monotonic_s`` of the
first ``state_shown`` whose seq is ≥ the reply's ``state_seq`` minus the
monotonic time just before the command was sent.

Run: ``python bench/render.py [--frames 30] [--commands 30]``. The last line is
one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

os.environ.pop("DISPLAY", None)  # no X display: pandagl falls back to EGL

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import free_endpoints  # noqa: E402
from vrexposure.client import ControlClient, Subscriber  # noqa: E402
from vrexposure.config import Endpoints, load_config  # noqa: E402
from vrexposure.hierarchy import load_hierarchy  # noqa: E402
from vrexposure.plugins import builtin_dir, discover_scenes  # noqa: E402

HIERARCHIES = {
    "spiders": "arachnophobia",
    "heights": "acrophobia",
    "public_speaking": "public_speaking",
    "enclosed_space": "claustrophobia",
    "flying": "fear_of_flying",
    "calm": None,
}
STEREO_SIZE = (2880, 1600)
MONO_SIZE = (1280, 720)
DT_S = 1.0 / 90.0


def child_env() -> dict[str, str]:
    """This checkout first on the path of child processes (whatever is pip-installed)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def load_text() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min)"


def scene_params() -> dict[str, dict[str, Any]]:
    """Each scene's parameters at its hierarchy's highest step, intensity 1."""
    specs = discover_scenes()
    out: dict[str, dict[str, Any]] = {}
    for scene, name in HIERARCHIES.items():
        if name is None:
            out[scene] = specs[scene].defaults()
            continue
        hierarchy = load_hierarchy(builtin_dir("hierarchies") / f"{name}.yaml")
        assert hierarchy.scene == scene, (name, hierarchy.scene)
        out[scene] = hierarchy.step_params(len(hierarchy.steps) - 1, 1.0, specs)
    return out


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def drawn(engine: Any) -> tuple[int, int]:
    """Geoms and triangles of the current scene inside the view frustum, summed over eyes."""
    from panda3d.core import BoundingVolume

    scene = engine.current
    cam = engine.base.cam
    frustum = engine.base.camLens.makeBounds()
    geoms = tris = 0
    for path in scene.root.findAllMatches("**/+GeomNode"):
        if path.isHidden():
            continue
        node = path.node()
        to_cam = path.getMat(cam)
        for i in range(node.getNumGeoms()):
            geom = node.getGeom(i)
            bounds = geom.getBounds().makeCopy()
            bounds.xform(to_cam)
            if frustum.contains(bounds) == BoundingVolume.IF_no_intersection:
                continue
            geoms += 1
            for k in range(geom.getNumPrimitives()):
                tris += geom.getPrimitive(k).getNumFaces()
    eyes = 2 if engine.stereo else 1
    return geoms * eyes, tris * eyes


def measure_scenes(engine: Any, frames: int) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    for scene, params in scene_params().items():
        engine.show(scene, params)
        for _ in range(4):  # settle the easing (4 s of scene time) and warm up
            engine.step(1.0)
        times: list[float] = []
        for _ in range(frames):
            started = time.perf_counter()
            engine.step(DT_S)
            times.append((time.perf_counter() - started) * 1000.0)
        calls, tris = drawn(engine)
        results[scene] = {"frame_ms_p50": round(pct(times, 50), 2),
                          "frame_ms_p99": round(pct(times, 99), 2),
                          "draw_calls": calls, "triangles": tris}
    return results


def open_engine(width: int, height: int, stereo: bool) -> Any:
    from vrexposure.render.engine import RenderEngine
    from vrexposure.render.process import set_gl_finish

    engine = RenderEngine("offscreen", width, height, stereo=stereo)
    set_gl_finish(True)
    return engine


def mono_peer(frames: int) -> None:
    """Child process: the same scenes mono 1280 × 720; prints one JSON line."""
    engine = open_engine(*MONO_SIZE, stereo=False)
    try:
        print(json.dumps(measure_scenes(engine, frames)))
    finally:
        engine.close()


def port_config(directory: Path, endpoints: Endpoints) -> Path:
    def port(endpoint: str) -> int:
        return int(endpoint.rsplit(":", 1)[1])

    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump({
        "network": {"publish_port": port(endpoints.publish), "feed_port": port(endpoints.feed),
                    "host_feed_port": port(endpoints.host_feed),
                    "control_port": port(endpoints.control)},
        "session": {"recording_dir": str(directory / "sessions")},
        "renderer": {"preview_rate_hz": 4}}))
    return path


def command_to_photon(engine: Any, commands: int) -> tuple[list[float], list[float]]:
    """Latencies (ms) from an ``intensity`` command to the frame that shows it; frame times."""
    from vrexposure.render.process import RendererProcess

    endpoints = free_endpoints()
    with tempfile.TemporaryDirectory() as tmp:
        config_path = port_config(Path(tmp), endpoints)
        host = subprocess.Popen(
            [sys.executable, "-m", "vrexposure", "session", "--config", str(config_path),
             "--hierarchy", "arachnophobia", "--patient", "B001"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=child_env())
        assert host.stdout is not None
        host.stdout.readline()
        renderer = RendererProcess(endpoints, load_config(config_path), engine=engine,
                                   source="bench", finish_frames=True,
                                   patient_controls=False)
        latencies: list[float] = []
        done = threading.Event()

        def therapist() -> None:
            client = ControlClient(endpoints.control, "therapist", "bench")
            sub = Subscriber(endpoints, topics=("render.bench",), data=True, host=False)
            try:
                time.sleep(0.5)
                client.send("start_exposure", {"step": 9})
                time.sleep(2.0)
                rng = random.Random(7)
                for i in range(commands):
                    sub.drain()
                    sent = time.monotonic()
                    reply = client.send("intensity", {"value": 1.0 if i % 2 else 0.0})
                    deadline = sent + 10.0
                    while time.monotonic() < deadline:
                        message = sub.recv(1.0)
                        if (message is not None and message.payload.get("event") == "state_shown"
                                and message.payload["seq"] >= reply.state_seq):
                            latencies.append((message.payload["shown_monotonic_s"] - sent) * 1e3)
                            break
                    time.sleep(rng.uniform(0.05, 0.3))  # land anywhere in a frame
            finally:
                sub.close()
                client.close()
                done.set()

        worker = threading.Thread(target=therapist, daemon=True)
        frame_times: list[float] = []
        try:
            worker.start()
            while not done.is_set():
                started = time.perf_counter()
                renderer.step_frame()
                frame_times.append((time.perf_counter() - started) * 1000.0)
        finally:
            worker.join(5)
            renderer.close()
            host.send_signal(signal.SIGTERM)
            host.wait(10)
            host.stdout.close()
    return latencies, frame_times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20, help="measured frames per scene")
    parser.add_argument("--commands", type=int, default=20, help="intensity commands sent")
    parser.add_argument("--mono-peer", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mono_peer:
        mono_peer(args.frames)
        return

    engine = open_engine(*STEREO_SIZE, stereo=True)
    print(f"pipe {engine.pipe_name}: {engine.renderer_name}; {os.cpu_count()} CPUs; "
          f"stereo {STEREO_SIZE[0]}x{STEREO_SIZE[1]}, frames forced to completion (gl-finish); "
          f"{load_text()}", flush=True)
    try:
        stereo = measure_scenes(engine, args.frames)
        latencies, frame_times = command_to_photon(engine, args.commands)
    finally:
        engine.close()
    peer = subprocess.run([sys.executable, __file__, "--mono-peer", "--frames",
                           str(args.frames)], capture_output=True, text=True, timeout=600,
                          env=child_env())
    if peer.returncode != 0:
        raise SystemExit(f"mono peer failed:\n{peer.stderr}")
    mono = json.loads(peer.stdout.strip().splitlines()[-1])
    print(f"finished with {load_text()}")

    print(f"{'scene':<16} {'p50 ms':>8} {'p99 ms':>8} {'draws':>6} {'triangles':>10}"
          f" | {'mono p50':>8} {'mono p99':>8} {'ratio p50':>9}")
    for name, row in stereo.items():
        peer_row = mono[name]
        ratio = row["frame_ms_p50"] / max(1e-9, peer_row["frame_ms_p50"])
        print(f"{name:<16} {row['frame_ms_p50']:>8.1f} {row['frame_ms_p99']:>8.1f} "
              f"{row['draw_calls']:>6} {row['triangles']:>10} | {peer_row['frame_ms_p50']:>8.1f} "
              f"{peer_row['frame_ms_p99']:>8.1f} {ratio:>9.2f}")
    over = [n for n, r in stereo.items() if r["frame_ms_p99"] > 1000 / 90]
    verdict = "met" if not over else "NOT met for " + ", ".join(over)
    print(f"goal 11.1 ms per stereo frame (p99): {verdict}")
    c2p50, c2p99 = pct(latencies, 50), pct(latencies, 99)
    frame50 = pct(frame_times, 50)
    print(f"command-to-photon over {len(latencies)} commands: p50 {c2p50:.1f} ms, "
          f"p99 {c2p99:.1f} ms; renderer frame p50 {frame50:.1f} ms "
          f"(p50 latency = {c2p50 / max(1e-9, frame50):.2f} frames; goal: one frame + 2 ms "
          f"= {frame50 + 2:.1f} ms: {'met' if c2p99 <= frame50 + 2 else 'not met'})")
    print(json.dumps({"scenes": stereo,
                      "command_to_photon_ms_p50": round(c2p50, 2),
                      "command_to_photon_ms_p99": round(c2p99, 2)}))


if __name__ == "__main__":
    main()
