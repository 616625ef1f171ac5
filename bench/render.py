"""Render benchmark: stereo frame time per scene and command-to-photon latency.

Every scene at its hierarchy's highest step (intensity 1; calm at its defaults),
side-by-side stereo 2 × 1440 × 1600 offscreen on EGL (Mesa llvmpipe when there
is no GPU). Each frame is forced to completion with Panda3D's ``gl-finish``
(``glFinish()`` at the end of every frame), so a frame time is the time until the
pixels exist, not until the commands are queued. Frame time = wall time of
``RenderEngine.step`` (scene update + cull + draw + finish).

CPU side of a frame (what a GPU would not take away): Panda3D's own PStats
collectors, read in-process by :class:`vrexposure.render.pstats.PStatsRecorder`
(a loopback PStats server), per frame ``App`` (the Python scene update between
frames and ``render_frame``'s own work) + ``Cull`` (the scene-graph traversal);
``Draw`` — on llvmpipe the vertex and pixel work too — is reported apart. Goal:
``cpu_ms_p99`` ≤ 4 ms per scene. It is measured over ``--cpu-frames`` frames in the
96 × 54 child (App and Cull do not depend on the size of the frame; many frames
make a p99) and over the ``--frames`` frames at headset size as a cross-check.
On a shared machine other processes preempt some frames: each step's run-queue
wait (Linux ``/proc/thread-self/schedstat``) marks them, and the p99 over the
frames nobody preempted is printed beside the p99 over all.

Draw calls and triangles: the Geoms of the scene that pass view-frustum culling
against the camera lens, counted once per eye.

The floor, in the same engine: a frame with the scene hidden (clear and finish
only) and one with a single opaque full-screen card — no scene can cost less.

Peers, measured in the same run (child processes: Panda3D allows one window
system per process): the same scenes mono 1280 × 720 (ratio stereo / mono; the
stereo frame has 5× the pixels), and the same scenes stereo at 96 × 54 ("no
fill": scene update, culling, draw calls and vertex work without filling
pixels — what a frame costs the CPU even on a real GPU).

Command-to-photon: a session host and a therapist in subprocesses, the renderer
(:meth:`RendererProcess.run`, paced at 90 Hz, woken early by a changed state)
in this process; the therapist sends ``intensity`` commands at random moments;
latency = ``shown_monotonic_s`` of the first ``state_shown`` whose seq is ≥ the
reply's ``state_seq`` minus CLOCK_MONOTONIC just before the command was sent.
Measured at 2880 × 1600 and again at 96 × 54.

Run: ``python bench/render.py [--frames 30] [--commands 30]``. The last line is
one JSON object: the issue's keys (``scenes``, ``command_to_photon_ms_p50/p99``,
``cpu_ms_p99`` and ``cpu_ms_p50`` per scene) plus ``floor_ms_p50``, ``no_fill``,
``mono_frame_ms_p50`` and ``cpu_breakdown_ms`` (the collectors that cost most, mean ms).
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import free_endpoints  # noqa: E402
from vrexposure.client import ControlClient, Subscriber  # noqa: E402
from vrexposure.config import Endpoints, load_config, write_config  # noqa: E402
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
#: Small enough that filling pixels costs nothing: what is left is the scene update,
#: culling, draw calls and vertex work — what a frame costs the CPU on any GPU.
NO_FILL_SIZE = (96, 54)
DT_S = 1.0 / 90.0
#: App + Cull per frame (p99): a 120 Hz headset leaves 8.3 ms; compositor and driver need the rest.
CPU_GOAL_MS = 4.0
#: A step during which the OS kept the renderer's thread waiting this long for a core
#: (another process ran) is "preempted": its App + Cull may hold that wait.
PREEMPTED_MS = 0.2


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


def measure_scenes(engine: Any, frames: int, recorder: Any = None, cpu_frames: int = 0
                   ) -> dict[str, dict[str, Any]]:
    """Frame wall times per scene; with a PStats ``recorder`` also App + Cull per frame.

    ``cpu_frames`` (more than ``frames``): the frames the CPU figures are taken over.
    """
    results: dict[str, dict[str, Any]] = {}
    for scene, params in scene_params().items():
        engine.show(scene, params)
        for _ in range(4):  # settle the easing (4 s of scene time) and warm up
            engine.step(1.0)
        if recorder is not None:
            recorder.clear()
        waits: list[float] = []
        times = timed_steps(engine, max(frames, cpu_frames), waits)
        calls, tris = drawn(engine)
        results[scene] = {"frame_ms_p50": round(pct(times, 50), 2),
                          "frame_ms_p99": round(pct(times, 99), 2),
                          "draw_calls": calls, "triangles": tris}
        if recorder is not None:
            results[scene].update(cpu_figures(recorder, waits))
    return results


def cpu_figures(recorder: Any, waits: list[float]) -> dict[str, Any]:
    """App + Cull per frame from the PStats frames received since the last clear().

    ``waits``: per timed step, how long the OS kept the thread waiting for a core
    while App + Cull ran (ms): on this shared 2-core machine other processes
    preempt frames, and the p99 without those frames is reported as well.
    """
    from vrexposure.render.pstats import cpu_ms

    time.sleep(0.2)  # the client sends a frame at the end of it; let the last arrive
    # PStats frames end where steps end; the first after clear() also holds the pause
    # before the first step, so the last len - 1 frames are steps 2..n.
    count = len(waits) - 1
    breakdown = recorder.breakdown()[-count:]
    phases = recorder.phases()[-count:]
    cpu = [cpu_ms(p) for p in phases]
    known = bool(waits) and not any(np.isnan(waits))
    waited = waits[-len(cpu):] if known else []
    quiet = [c for c, w in zip(cpu, waited, strict=True) if w < PREEMPTED_MS]
    mean = {name: float(np.mean([b.get(name, 0.0) for b in breakdown]))
            for name in {k for b in breakdown for k in b}}
    top = sorted(((n, v) for n, v in mean.items() if not n.startswith(("Draw", "Wait"))),
                 key=lambda item: -item[1])[:5]
    return {"cpu_frames": len(cpu),
            "cpu_ms_p50": round(pct(cpu, 50), 3), "cpu_ms_p99": round(pct(cpu, 99), 3),
            "preempted_frames": len(cpu) - len(quiet) if waited else None,
            "cpu_ms_p99_not_preempted": round(pct(quiet, 99), 3) if waited else None,
            "app_ms_p50": round(pct([p["App"] for p in phases], 50), 3),
            "app_ms_p99": round(pct([p["App"] for p in phases], 99), 3),
            "cull_ms_p50": round(pct([p["Cull"] for p in phases], 50), 3),
            "cull_ms_p99": round(pct([p["Cull"] for p in phases], 99), 3),
            "draw_ms_p50": round(pct([p["Draw"] for p in phases], 50), 3),
            "cpu_breakdown_ms": {n: round(v, 3) for n, v in top}}


def open_engine(width: int, height: int, stereo: bool) -> Any:
    from vrexposure.render.engine import RenderEngine
    from vrexposure.render.process import set_gl_finish

    engine = RenderEngine("offscreen", width, height, stereo=stereo)
    set_gl_finish(True)
    return engine


def floors(engine: Any, frames: int) -> dict[str, float]:
    """What any frame costs at this size before a scene adds anything (p50 ms).

    ``clear``: the scene hidden, so the frame only clears colour and depth and
    finishes. ``one_layer``: plus one opaque, unlit, untextured card covering both
    eyes — the least any scene that fills the view can cost.
    """
    from panda3d.core import CardMaker

    engine.show("calm", {})
    engine.step(0.0)
    out: dict[str, float] = {}
    engine.world.hide()
    try:
        out["clear"] = round(pct(timed_steps(engine, frames), 50), 2)
        maker = CardMaker("floor-layer")
        maker.setFrame(-50, 50, -50, 50)
        card = engine.base.camera.attachNewNode(maker.generate())
        card.setY(5.0)
        card.setColor(0.4, 0.5, 0.6, 1)
        card.setLightOff(1)
        try:
            out["one_layer"] = round(pct(timed_steps(engine, frames), 50), 2)
        finally:
            card.removeNode()
    finally:
        engine.world.show()
    return out


def run_queue_wait_ms() -> float:
    """Time this thread has waited for a core so far (Linux schedstat; NaN elsewhere)."""
    try:
        with open("/proc/thread-self/schedstat") as f:
            return int(f.read().split()[1]) / 1e6
    except (OSError, IndexError, ValueError):
        return float("nan")


class CullEndProbe:
    """Run-queue wait between the start of a step and the end of its culling.

    Single-threaded, Panda3D culls every display region before drawing any, so
    the first draw callback of a frame marks the end of App + Cull: a wait in
    that window is another process (or our own renderer threads) holding the
    cores while the frame's CPU side ran.
    """

    def __init__(self, engine: Any) -> None:
        from panda3d.core import PythonCallbackObject

        self._win = engine.base.win
        self._regions = [self._win.getDisplayRegion(i)
                         for i in range(self._win.getNumDisplayRegions())]
        self._mark: float | None = None
        callback = PythonCallbackObject(self._on_draw)
        for region in self._regions:
            region.setDrawCallback(callback)

    def _on_draw(self, data: Any) -> None:
        if self._mark is None:
            self._mark = run_queue_wait_ms()
        data.upcall()  # draw the region as usual

    def start(self) -> float:
        self._mark = None
        return run_queue_wait_ms()

    def waited(self, started: float) -> float:
        return float("nan") if self._mark is None else self._mark - started

    def remove(self) -> None:
        for region in self._regions:
            region.clearDrawCallback()


def timed_steps(engine: Any, frames: int, waits: list[float] | None = None) -> list[float]:
    """Wall ms of ``frames`` steps; ``waits`` gets each step's run-queue wait (ms) while
    its App + Cull ran."""
    times: list[float] = []
    probe = CullEndProbe(engine) if waits is not None else None
    try:
        for _ in range(frames):
            waited = probe.start() if probe is not None else 0.0
            started = time.perf_counter()
            engine.step(DT_S)
            times.append((time.perf_counter() - started) * 1000.0)
            if probe is not None and waits is not None:
                waits.append(probe.waited(waited))
    finally:
        if probe is not None:
            probe.remove()
    return times


def command_to_photon(engine: Any, commands: int, rate_hz: float = 90.0
                      ) -> tuple[list[float], list[float]]:
    """Latencies (ms) from an ``intensity`` command to the frame that shows it; frame times.

    The renderer runs as in a session: :meth:`RendererProcess.run`, frames paced
    at ``rate_hz`` (a 90 Hz headset), woken early when the host's state changes.
    """
    from vrexposure.render.process import RendererProcess

    frame_times: list[float] = []

    class TimedRenderer(RendererProcess):
        def step_frame(self) -> None:
            started = time.perf_counter()
            super().step_frame()
            frame_times.append((time.perf_counter() - started) * 1000.0)

    endpoints = free_endpoints()
    with tempfile.TemporaryDirectory() as tmp:
        config_path = write_config(
            Path(tmp) / "config.yaml", endpoints,
            session={"recording_dir": str(Path(tmp) / "sessions")},
            renderer={"preview_rate_hz": 4})
        host = subprocess.Popen(
            [sys.executable, "-m", "vrexposure", "session", "--config", str(config_path),
             "--hierarchy", "arachnophobia", "--patient", "B001"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=child_env())
        assert host.stdout is not None
        host.stdout.readline()
        renderer = TimedRenderer(endpoints, load_config(config_path), engine=engine,
                                 source="bench", finish_frames=True, patient_controls=False,
                                 frame_rate_hz=rate_hz)
        # The therapist is another process, as the panel is: in this one it would share
        # the interpreter lock with the renderer and wait for its frames.
        therapist = subprocess.Popen(
            [sys.executable, __file__, "--therapist", str(config_path), "--commands",
             str(commands)], stdout=subprocess.PIPE, text=True, env=child_env())
        def quit_when_done() -> None:
            therapist.wait()
            renderer.request_quit()

        watcher = threading.Thread(target=quit_when_done, daemon=True)
        try:
            watcher.start()
            renderer.run()
            assert therapist.stdout is not None
            out = therapist.stdout.read()
        finally:
            if therapist.poll() is None:
                therapist.kill()
            therapist.wait(10)
            renderer.close()
            host.send_signal(signal.SIGTERM)
            host.wait(10)
            host.stdout.close()
        if therapist.returncode != 0:
            raise SystemExit(f"the therapist process failed ({therapist.returncode})")
        measured = json.loads(out.strip().splitlines()[-1])
        latencies: list[float] = measured["latencies_ms"]
        print(f"  host reply p50 {pct(measured['reply_ms'], 50):.1f} ms of the latency",
              file=sys.stderr, flush=True)
    return latencies, frame_times


def therapist_main(config_path: Path, commands: int) -> None:
    """Child process: send ``intensity`` commands at random moments; print the latencies."""
    endpoints = Endpoints.from_config(load_config(config_path))
    client = ControlClient(endpoints.control, "therapist", "bench")
    sub = Subscriber(endpoints, topics=("render.bench",), data=True, host=False)
    latencies: list[float] = []
    replied_ms: list[float] = []  # the host's reply: how much of the latency is the host
    try:
        time.sleep(0.5)
        client.send("start_exposure", {"step": 9})
        time.sleep(2.0)
        rng = random.Random(7)
        for i in range(commands):
            sub.drain()
            sent = time.monotonic()  # CLOCK_MONOTONIC: the same clock in every process
            reply = client.send("intensity", {"value": 1.0 if i % 2 else 0.0})
            replied_ms.append((time.monotonic() - sent) * 1e3)
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
    print(json.dumps({"latencies_ms": latencies, "reply_ms": replied_ms}), flush=True)


def run_peer(mode: str, frames: int, commands: int, cpu_frames: int = 0) -> dict[str, Any]:
    """Run this script in a child process (one window system per process); its JSON line."""
    done = subprocess.run([sys.executable, __file__, "--peer", mode, "--frames", str(frames),
                           "--commands", str(commands), "--cpu-frames", str(cpu_frames)],
                          capture_output=True, text=True, timeout=900, env=child_env())
    if done.returncode != 0:
        raise SystemExit(f"{mode} peer failed:\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def peer(mode: str, frames: int, commands: int, cpu_frames: int) -> None:
    """Child process: ``mono`` (1280 × 720 scenes) or ``no-fill`` (96 × 54 stereo scenes and
    command-to-photon: every cost of a frame but filling pixels). Prints one JSON line."""
    if mode == "mono":
        engine = open_engine(*MONO_SIZE, stereo=False)
        try:
            print(json.dumps({"scenes": measure_scenes(engine, frames)}))
        finally:
            engine.close()
        return
    from vrexposure.render.pstats import PStatsRecorder

    engine = open_engine(*NO_FILL_SIZE, stereo=True)
    try:
        with PStatsRecorder() as recorder:
            scenes = measure_scenes(engine, frames, recorder, cpu_frames)
        latencies, frame_times = command_to_photon(engine, commands)
    finally:
        engine.close()
    print(json.dumps({"scenes": scenes, "latencies_ms": latencies,
                      "frame_times_ms": frame_times}))


def latency_line(label: str, latencies: list[float], frame_times: list[float]) -> str:
    c2p50, c2p99 = pct(latencies, 50), pct(latencies, 99)
    frame50 = pct(frame_times, 50)
    goal_ms = max(frame50, 1000 / 90) + 2
    return (f"command-to-photon {label} over {len(latencies)} commands: p50 {c2p50:.1f} ms, "
            f"p99 {c2p99:.1f} ms; renderer frame p50 {frame50:.1f} ms (p50 latency = "
            f"{c2p50 / max(1e-9, frame50):.2f} frames); goal p99 <= one frame + 2 ms = "
            f"{goal_ms:.1f} ms: {'met' if c2p99 <= goal_ms else 'NOT met'}")


def cpu_only(cpu_frames: int) -> None:
    """``--cpu-only``: the App + Cull table alone, in this process; one JSON line."""
    from vrexposure.render.pstats import PStatsRecorder

    engine = open_engine(*NO_FILL_SIZE, stereo=True)
    print(f"pipe {engine.pipe_name}: {engine.renderer_name}; vertex animation on the "
          f"{'GPU' if engine.gpu_animation else 'CPU'}; {load_text()}", flush=True)
    try:
        with PStatsRecorder() as recorder:
            rows = measure_scenes(engine, 0, recorder, cpu_frames)
    finally:
        engine.close()
    print_cpu_table(rows, None, 0)
    print(json.dumps({"cpu_ms_p99": {n: r["cpu_ms_p99"] for n, r in rows.items()},
                      "cpu_ms_p50": {n: r["cpu_ms_p50"] for n, r in rows.items()},
                      "cpu_ms_p99_not_preempted": {n: r["cpu_ms_p99_not_preempted"]
                                                   for n, r in rows.items()},
                      "cpu_preempted_frames": {n: r["preempted_frames"] for n, r in rows.items()},
                      "cpu_breakdown_ms": {n: r["cpu_breakdown_ms"] for n, r in rows.items()},
                      "gpu_animation": engine.gpu_animation}))


def print_cpu_table(cpu_rows: dict[str, Any], headset: dict[str, Any] | None,
                    headset_frames: int) -> None:
    """The per-scene App + Cull table (96 x 54 rows; headset-size p50/p99 beside them)."""
    first = cpu_rows[next(iter(cpu_rows))]
    print(f"CPU side per frame (PStats App + Cull), {first['cpu_frames']} frames per scene at "
          f"{NO_FILL_SIZE[0]}x{NO_FILL_SIZE[1]}"
          + (f", {headset_frames} at {STEREO_SIZE[0]}x{STEREO_SIZE[1]}" if headset else "")
          + f"; {load_text()}:")
    print(f"{'scene':<16} {'cpu p50':>8} {'cpu p99':>8} {'app p50':>8} {'app p99':>8} "
          f"{'cull p50':>8} {'cull p99':>8} {'draw p50':>8} | {'preempted':>9} {'p99 rest':>8} | "
          f"{'headset p50':>11} {'p99':>6}  most costly (mean ms)")
    for name, row in cpu_rows.items():
        big = headset[name] if headset else {"cpu_ms_p50": float("nan"),
                                             "cpu_ms_p99": float("nan")}
        costly = ", ".join(f"{k} {v:.2f}" for k, v in list(row["cpu_breakdown_ms"].items())[:3])
        print(f"{name:<16} {row['cpu_ms_p50']:>8.2f} {row['cpu_ms_p99']:>8.2f} "
              f"{row['app_ms_p50']:>8.2f} {row['app_ms_p99']:>8.2f} {row['cull_ms_p50']:>8.2f} "
              f"{row['cull_ms_p99']:>8.2f} {row['draw_ms_p50']:>8.2f} | "
              f"{row['preempted_frames']!s:>9} {row['cpu_ms_p99_not_preempted']!s:>8} | "
              f"{big['cpu_ms_p50']:>11.2f} {big['cpu_ms_p99']:>6.2f}  {costly}")
    over_cpu = [n for n, r in cpu_rows.items() if r["cpu_ms_p99"] > CPU_GOAL_MS]
    print(f"goal App + Cull p99 <= {CPU_GOAL_MS:.0f} ms per scene: "
          f"{'met' if not over_cpu else 'NOT met for ' + ', '.join(over_cpu)}")
    over_quiet = [n for n, r in cpu_rows.items()
                  if (r["cpu_ms_p99_not_preempted"] or 0.0) > CPU_GOAL_MS]
    print(f"  over the frames no other process preempted (run-queue wait < {PREEMPTED_MS} ms): "
          f"{'met' if not over_quiet else 'NOT met for ' + ', '.join(over_quiet)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20, help="measured frames per scene")
    parser.add_argument("--commands", type=int, default=20, help="intensity commands sent")
    parser.add_argument("--cpu-frames", type=int, default=300,
                        help="frames per scene for App + Cull (96 x 54 child)")
    parser.add_argument("--cpu-only", action="store_true",
                        help="only App + Cull per scene at 96 x 54 (about a minute)")
    parser.add_argument("--peer", choices=("mono", "no-fill"), help=argparse.SUPPRESS)
    parser.add_argument("--therapist", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.therapist:
        therapist_main(args.therapist, args.commands)
        return
    if args.peer:
        peer(args.peer, args.frames, args.commands, args.cpu_frames)
        return
    if args.cpu_only:
        cpu_only(args.cpu_frames)
        return

    from vrexposure.render.pstats import PStatsRecorder

    engine = open_engine(*STEREO_SIZE, stereo=True)
    print(f"pipe {engine.pipe_name}: {engine.renderer_name}; vertex animation on the "
          f"{'GPU' if engine.gpu_animation else 'CPU'}; {os.cpu_count()} CPUs; "
          f"stereo {STEREO_SIZE[0]}x{STEREO_SIZE[1]}, frames forced to completion (gl-finish); "
          f"{load_text()}", flush=True)
    try:
        floor = floors(engine, args.frames)
        with PStatsRecorder() as recorder:
            stereo = measure_scenes(engine, args.frames, recorder)
        latencies, frame_times = command_to_photon(engine, args.commands)
    finally:
        engine.close()
    mono = run_peer("mono", args.frames, args.commands)["scenes"]
    no_fill = run_peer("no-fill", args.frames, args.commands, args.cpu_frames)
    print(f"finished with {load_text()}")

    print(f"floor at {STEREO_SIZE[0]}x{STEREO_SIZE[1]}: clear only {floor['clear']:.1f} ms, "
          f"+ one full-screen opaque layer {floor['one_layer']:.1f} ms (p50)")
    print(f"{'scene':<16} {'p50 ms':>8} {'p99 ms':>8} {'draws':>6} {'triangles':>10}"
          f" | {'mono p50':>8} {'ratio':>6} | {'no-fill p50':>11} {'p99':>6}")
    for name, row in stereo.items():
        mono_row, bare = mono[name], no_fill["scenes"][name]
        ratio = row["frame_ms_p50"] / max(1e-9, mono_row["frame_ms_p50"])
        print(f"{name:<16} {row['frame_ms_p50']:>8.1f} {row['frame_ms_p99']:>8.1f} "
              f"{row['draw_calls']:>6} {row['triangles']:>10} | {mono_row['frame_ms_p50']:>8.1f} "
              f"{ratio:>6.2f} | {bare['frame_ms_p50']:>11.1f} {bare['frame_ms_p99']:>6.1f}")
    budget = 1000 / 90
    over = [n for n, r in stereo.items() if r["frame_ms_p99"] > budget]
    print(f"goal 11.1 ms per stereo frame (p99): "
          f"{'met' if not over else 'NOT met for ' + ', '.join(over)}"
          f"{' (below the floor of this machine)' if floor['one_layer'] > budget else ''}")
    over_bare = [n for n, r in no_fill["scenes"].items() if r["frame_ms_p99"] > budget]
    print(f"without pixel fill (96x54 stereo): "
          f"{'met' if not over_bare else 'NOT met for ' + ', '.join(over_bare)}")
    print(latency_line(f"at {STEREO_SIZE[0]}x{STEREO_SIZE[1]}", latencies, frame_times))
    bare_lat, bare_frames = no_fill["latencies_ms"], no_fill["frame_times_ms"]
    print(latency_line(f"at {NO_FILL_SIZE[0]}x{NO_FILL_SIZE[1]}", bare_lat, bare_frames))
    cpu_rows = no_fill["scenes"]
    print_cpu_table(cpu_rows, stereo, args.frames)
    print(json.dumps({
        "scenes": stereo,
        "command_to_photon_ms_p50": round(pct(latencies, 50), 2),
        "command_to_photon_ms_p99": round(pct(latencies, 99), 2),
        "floor_ms_p50": floor,
        "no_fill": {
            "size": list(NO_FILL_SIZE),
            "frame_ms_p50": {n: r["frame_ms_p50"] for n, r in no_fill["scenes"].items()},
            "frame_ms_p99": {n: r["frame_ms_p99"] for n, r in no_fill["scenes"].items()},
            "command_to_photon_ms_p50": round(pct(bare_lat, 50), 2),
            "command_to_photon_ms_p99": round(pct(bare_lat, 99), 2)},
        "mono_frame_ms_p50": {n: r["frame_ms_p50"] for n, r in mono.items()},
        "cpu_ms_p99": {n: r["cpu_ms_p99"] for n, r in cpu_rows.items()},
        "cpu_ms_p50": {n: r["cpu_ms_p50"] for n, r in cpu_rows.items()},
        "cpu_ms_p99_not_preempted": {n: r["cpu_ms_p99_not_preempted"]
                                     for n, r in cpu_rows.items()},
        "cpu_preempted_frames": {n: r["preempted_frames"] for n, r in cpu_rows.items()},
        "cpu_ms_p99_headset": {n: r["cpu_ms_p99"] for n, r in stereo.items()},
        "cpu_goal_ms": CPU_GOAL_MS,
        "cpu_breakdown_ms": {n: r["cpu_breakdown_ms"] for n, r in cpu_rows.items()},
    }))


if __name__ == "__main__":
    main()
