"""The renderer attached to a real session host: follow, STOP, fail-safe, streams, patient.

Real offscreen rendering in this process (the one shared engine, Panda3D allows a
single ShowBase), a real host (in-process, or a subprocess that is SIGKILLed),
and the command line in subprocesses.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.render_fixtures import changed_fraction, shared_engine, snap
from vrexposure.client import ControlClient, Publisher, Subscriber
from vrexposure.config import Endpoints, load_config, write_config
from vrexposure.host import SessionHost
from vrexposure.render.overlay import StatusLine, SudsInput, suds_marker_x
from vrexposure.render.process import (
    Director,
    RendererProcess,
    pose_payload,
    preview_jpeg,
    quat_to_yaw_pitch,
    sim_pose_to_hpr,
)
from vrexposure.sim import HeadModel, yaw_pitch_to_quat
from vrexposure.state import Phase

from .conftest import free_endpoints

pytestmark = pytest.mark.render

ROOT = Path(__file__).resolve().parents[1]
FAILSAFE_S = 1.0
FADE_S = 0.8


# --------------------------------------------------------------------------- helpers


def renderer_config(preview_width_px: int = 160) -> dict[str, Any]:
    return load_config(overrides={"renderer": {
        "failsafe_timeout_s": FAILSAFE_S, "stop_fade_s": FADE_S, "preview_rate_hz": 5,
        "preview_width_px": preview_width_px}})


def config_file(tmp_path: Path, endpoints: Endpoints) -> Path:
    return write_config(tmp_path / "config.yaml", endpoints,
                        session={"recording_dir": str(tmp_path / "sessions")},
                        renderer={"failsafe_timeout_s": FAILSAFE_S, "stop_fade_s": FADE_S})


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "vrexposure", *args]


def child_env() -> dict[str, str]:
    """This checkout first on a child's path, whichever copy is pip-installed."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return env


def run_until(renderer: RendererProcess, done: Callable[[], bool], timeout_s: float,
              frame_s: float = 1 / 60) -> float:
    """Render frames until ``done()``; returns the seconds it took (fails on timeout)."""
    started = time.monotonic()
    while not done():
        assert time.monotonic() - started < timeout_s, "timed out"
        renderer.step_frame()
        time.sleep(frame_s)
    return time.monotonic() - started


def shown(renderer: RendererProcess) -> str:
    """Name of the scene on screen."""
    scene = renderer.engine.current
    assert scene is not None
    return scene.name


def run_for(renderer: RendererProcess, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        renderer.step_frame()
        time.sleep(1 / 60)


def settled_view(renderer: RendererProcess, seq: int, seconds: float = 2.5) -> Any:
    """Wait until state ``seq`` is on screen and no fade runs, let easing settle, read pixels."""
    run_until(renderer, lambda: renderer.shown_seq is not None and renderer.shown_seq >= seq
              and not renderer.engine.fading, 10)
    run_for(renderer, seconds)
    return renderer.engine.read_pixels()


@contextlib.contextmanager
def borrowed_engine() -> Iterator[Any]:
    """The shared engine, handed back as found: scene time and head pose restored.

    (The scene tests' pixel counts depend on the animation time; real-time frames
    here would otherwise move it by an arbitrary amount.)
    """
    engine = shared_engine()
    time_s = engine.time_s
    engine.set_head_pose((0, 0, 0), (0, 0, 0))
    try:
        yield engine
    finally:
        for _ in range(100):  # a fade the renderer started ends here, not in the next test
            if not engine.fading:
                break
            engine.step(0.1)
        engine.set_head_pose((0, 0, 0), (0, 0, 0))
        engine.time_s = time_s


@pytest.fixture(name="renderer")  # imported by other modules under this function name
def renderer_fixture(endpoints: Endpoints) -> Iterator[RendererProcess]:
    with borrowed_engine() as engine:
        process = RendererProcess(endpoints, renderer_config(), engine=engine)
        yield process
        process.close()


@pytest.fixture
def therapist(endpoints: Endpoints) -> Iterator[ControlClient]:
    client = ControlClient(endpoints.control, "therapist", "t1")
    yield client
    client.close()


# --------------------------------------------------------------------------- pure logic


def _state(seq: int, phase: str, scene: str, **params: Any) -> dict[str, Any]:
    return {"seq": seq, "phase": phase, "scene": scene, "params": params,
            "suds_requested": False, "session": {"session_id": "s1"}}


def test_director_eases_within_a_scene_and_fades_on_scene_change_and_stop() -> None:
    d = Director(failsafe_timeout_s=2.0, fade_s=0.8, now_s=0.0)
    assert d.initial().scene == "calm"
    d.on_state(_state(1, "idle", "calm"), 0.1)
    first = d.tick(0.1)
    assert first is not None and first.fade_s is None  # the calm scene already: eased
    assert d.tick(0.15) is None
    d.on_state(_state(2, "exposure", "spiders", count=1), 0.2)
    change = d.tick(0.2)
    assert change is not None and (change.scene, change.fade_s, change.reason) == (
        "spiders", 0.8, "scene_change")
    d.on_state(_state(2, "exposure", "spiders", count=1), 0.3)
    assert d.tick(0.3) is None  # the same state again: nothing to do
    d.on_state(_state(3, "exposure", "spiders", count=4), 0.4)
    eased = d.tick(0.4)
    assert eased is not None and eased.fade_s is None and eased.params == {"count": 4}
    d.on_state(_state(4, "safe", "calm"), 0.5)
    stop = d.tick(0.5)
    assert stop is not None and (stop.scene, stop.fade_s, stop.reason) == ("calm", 0.8, "stop")
    assert d.applied_seq == 4 and d.session_id == "s1"


def test_director_failsafe_fades_to_calm_and_recovers() -> None:
    d = Director(failsafe_timeout_s=2.0, fade_s=0.8, now_s=0.0)
    d.initial()
    d.on_state(_state(1, "paused", "beach"), 0.0)  # the hierarchy's calm scene is "beach"
    d.tick(0.0)
    d.on_state(_state(2, "exposure", "heights", edge_distance_m=1.0), 0.5)
    d.tick(0.5)
    assert d.tick(2.4) is None and not d.failsafe
    safe = d.tick(2.6)
    assert safe is not None and d.failsafe
    assert (safe.scene, safe.params, safe.fade_s, safe.reason) == ("beach", {}, 0.8, "failsafe")
    assert d.tick(5.0) is None  # once
    d.on_state(_state(0, "idle", "beach"), 6.0)  # a restarted host: a new session
    back = d.tick(6.0)
    assert back is not None and not d.failsafe and back.scene == "beach"
    d.on_state(_state(1, "exposure", "heights", edge_distance_m=1.0), 6.1)
    follow = d.tick(6.1)
    assert follow is not None and follow.scene == "heights" and follow.fade_s == 0.8
    # Not in exposure when the host went silent: the last state's scene and parameters.
    d2 = Director(failsafe_timeout_s=1.0, fade_s=0.5, now_s=0.0)
    d2.on_state(_state(1, "baseline", "calm", time_of_day="dusk"), 0.0)
    d2.tick(0.0)
    late = d2.tick(1.5)
    assert late is not None and (late.scene, late.params) == ("calm", {"time_of_day": "dusk"})


def test_director_patient_stop_holds_calm_until_the_host_agrees() -> None:
    d = Director(failsafe_timeout_s=2.0, fade_s=0.8, now_s=0.0)
    d.initial()
    d.on_state(_state(5, "exposure", "spiders", count=3), 0.0)
    d.tick(0.0)
    local = d.local_stop()
    assert (local.scene, local.fade_s, local.reason) == ("calm", 0.8, "local_stop")
    d.on_state(_state(6, "exposure", "spiders", count=4), 0.1)  # sent before the STOP landed
    assert d.tick(0.1) is None and d.holding
    d.stop_acknowledged(7)
    d.on_state(_state(7, "safe", "calm"), 0.2)
    assert d.tick(0.2) is not None and not d.holding and d.applied_seq == 7


def test_suds_input_keys_and_status_line() -> None:
    suds = SudsInput(initial=50)
    assert suds.digit(4, 0.0) == 40 and suds.digit(5, 0.5) == 45  # composed
    assert suds.digit(7, 5.0) == 70  # too late to compose: a new number
    assert [suds.digit(d, 10.0 + i * 0.1) for i, d in enumerate((1, 0, 0))] == [10, 10, 100]
    assert suds.right() == 100 and suds.left() == 95 and suds.enter() == 95
    suds.reset(0)
    assert suds.left() == 0
    unset = SudsInput()  # no default rating: Enter before a choice sends nothing
    assert unset.value is None and unset.enter() is None
    assert unset.right() == 50
    assert suds_marker_x(0, 1.0) == -1.0 and suds_marker_x(100, 1.0) == 1.0
    line = StatusLine()
    line.set("Stopped", "ok", 10.0, 4.0)
    assert line.visible(13.9) and not line.visible(14.1)


def test_pose_conversions_and_payload() -> None:
    for yaw, pitch in ((0.0, 0.0), (35.0, -20.0), (-120.0, 40.0)):
        got = quat_to_yaw_pitch(yaw_pitch_to_quat(yaw, pitch))
        assert got == pytest.approx((yaw, pitch), abs=1e-6)
    looking = HeadModel().update(0.0, 0.01, 0.0)
    assert sim_pose_to_hpr(looking)[:2] == pytest.approx((0.0, 0.0), abs=1.0)
    assert sim_pose_to_hpr({"quat": yaw_pitch_to_quat(60.0, -15.0)}) == pytest.approx(
        (60.0, 0.0, 0.0))
    calm = pose_payload((0, 0, 1.2), (1, 0, 0, 0), (10, -5, 0), None)
    assert "look_angle_deg" not in calm and "looking_away" not in calm
    away = pose_payload((0, 0, 1.2), (1, 0, 0, 0), (10, -5, 0), 42.0)
    assert away["looking_away"] is True and away["look_angle_deg"] == 42.0


def test_preview_is_the_left_eye_scaled() -> None:
    pixels = np.zeros((100, 400, 3), np.uint8)
    pixels[:, 200:] = 255  # the right eye is white
    jpeg, width, height = preview_jpeg(pixels, stereo=True, max_width=100)
    image = Image.open(io.BytesIO(jpeg))
    assert image.size == (width, height) == (100, 50)
    assert np.asarray(image).mean() < 10


# --------------------------------------------------------------------------- with a host


@pytest.mark.slow
def test_renderer_follows_jump_and_intensity(host: SessionHost, renderer: RendererProcess,
                                             therapist: ControlClient) -> None:
    start = therapist.send("start_exposure")
    first = settled_view(renderer, start.state_seq, 1.5)
    assert shown(renderer) == "spiders"
    jump = therapist.send("jump", {"step": 8})  # the tarantula, 0.6 m away
    near = settled_view(renderer, jump.state_seq)
    assert changed_fraction(first, near) > 0.05
    more = therapist.send("intensity", {"value": 1.0})  # 15 cm, 0.3 m away
    nearer = settled_view(renderer, more.state_seq)
    assert changed_fraction(near, nearer) > 0.05
    scene = renderer.engine.current
    assert scene is not None and scene.params["size_cm"] == pytest.approx(15.0)


@pytest.mark.slow
def test_stop_reaches_the_calm_scene_within_one_second(
        host: SessionHost, renderer: RendererProcess, therapist: ControlClient) -> None:
    settled_view(renderer, therapist.send("start_exposure", {"step": 9}).state_seq, 0.3)
    sent = time.monotonic()
    reply = therapist.stop()
    engine = renderer.engine
    run_until(renderer, lambda: shown(renderer) == "calm" and not engine.fading
              and renderer.shown_seq is not None and renderer.shown_seq >= reply.state_seq, 3.0)
    took = time.monotonic() - sent
    assert took <= 1.0, f"calm after {took:.2f} s"
    calm = engine.read_pixels()
    assert changed_fraction(calm, snap(engine, "calm", {}), threshold=40) < 0.1


@pytest.mark.slow
def test_a_paced_renderer_draws_a_command_at_once_not_at_its_next_slot(
        host: SessionHost, renderer: RendererProcess, therapist: ControlClient,
        endpoints: Endpoints) -> None:
    """Frames capped at 1 Hz; a command 0.3 s into a slot is on screen long before the next."""
    settled_view(renderer, therapist.send("start_exposure", {"step": 2}).state_seq, 0.2)
    renderer.frame_interval_s = 1.0
    sub = Subscriber(endpoints, topics=("render.main",))
    sent: list[tuple[float, int]] = []

    def send_mid_slot() -> None:
        time.sleep(1.3)
        started = time.monotonic()
        sent.append((started, therapist.send("intensity", {"value": 0.9}).state_seq))

    worker = threading.Thread(target=send_mid_slot)
    try:
        time.sleep(0.3)  # the subscription reaches the host
        worker.start()
        frames_before = renderer.frame
        renderer.run(duration_s=2.6)
        worker.join(5)
        assert sent, "the command was not sent"
        sent_s, seq = sent[0]
        shown_s = None
        while (message := sub.recv(1.0)) is not None:
            payload = message.payload
            if payload.get("event") == "state_shown" and payload["seq"] >= seq:
                shown_s = payload["shown_monotonic_s"]
                break
        assert shown_s is not None, "the command never reached the screen"
        # Without waking it would wait for the slot at 2.0 s: 0.7 s after the command.
        assert shown_s - sent_s < 0.5
        assert renderer.frame - frames_before <= 5  # still paced: 3 slots + the early frame
    finally:
        sub.close()


@pytest.mark.slow
def test_pose_stats_preview_and_state_shown_are_published(
        host: SessionHost, renderer: RendererProcess, therapist: ControlClient,
        endpoints: Endpoints) -> None:
    sub = Subscriber(endpoints, topics=("pose.head", "render.main", "preview.main"))
    sim = Publisher(endpoints.publish, "sim")
    try:
        sim.wait_connected()
        reply = therapist.send("start_exposure", {"step": 5})
        settled_view(renderer, reply.state_seq, 0.5)
        away = {"pos": [0.0, 0.0, 1.2], "quat": yaw_pitch_to_quat(70.0, 0.0),
                "yaw_deg": 70.0, "pitch_deg": 0.0}
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            sim.publish("pose", away)
            renderer.step_frame()
            time.sleep(1 / 60)
        messages = sub.drain()
    finally:
        sim.close()
        sub.close()
    poses = [m.payload for m in messages if m.topic == "pose.head"]
    assert len(poses) > 20
    assert renderer.head_hpr == pytest.approx((70.0, 15.0, 0.0))  # relative to the view
    assert 55 < poses[-1]["yaw_deg"] < 75  # in the scene (the view looks down at the floor)
    assert poses[-1]["looking_away"] is True and poses[-1]["look_angle_deg"] > 45
    assert len(poses[-1]["quat"]) == 4 and len(poses[-1]["pos"]) == 3
    renders = [m.payload for m in messages if m.topic == "render.main"]
    shown = [r for r in renders if r.get("event") == "state_shown"]
    assert any(r["seq"] == reply.state_seq for r in shown)
    assert all(r["shown_monotonic_s"] <= time.monotonic() for r in shown)
    stats = [r for r in renders if "fps" in r]
    assert stats and stats[-1]["scene"] == "spiders" and stats[-1]["phase"] == "exposure"
    assert stats[-1]["fps"] > 0 and stats[-1]["frame_ms_p99"] >= stats[-1]["frame_ms_p50"] > 0
    assert stats[-1]["failsafe"] is False and stats[-1]["shown_seq"] == reply.state_seq
    previews = [m.payload for m in messages if m.topic == "preview.main"]
    assert renderer.mirror_preview  # from the small mirror camera, not a full read-back
    assert len(previews) >= 3
    image = Image.open(io.BytesIO(previews[-1]["jpeg"]))
    assert image.format == "JPEG" and image.size == (160, 90)
    assert (previews[-1]["width_px"], previews[-1]["height_px"]) == (160, 90)


@pytest.mark.slow
def test_patient_stop_pause_and_suds_reach_the_host(
        host: SessionHost, renderer: RendererProcess, therapist: ControlClient) -> None:
    settled_view(renderer, therapist.send("start_exposure", {"step": 3}).state_seq, 0.2)
    messenger = renderer.engine.base.messenger
    messenger.send("escape")  # STOP key: read by the next frame
    renderer.step_frame()
    assert renderer.overlay.status.text in ("STOP sent…", "Stopped — acknowledged")
    assert renderer.engine.fading  # the local fade to calm started at once
    run_until(renderer, lambda: renderer.overlay.status_shown == "Stopped — acknowledged", 5)
    assert host.state.phase == Phase.SAFE and host.state.stop_count == 1
    run_until(renderer, lambda: shown(renderer) == "calm" and not renderer.engine.fading, 2)
    messenger.send("space")  # pause: allowed while safe
    run_until(renderer, lambda: renderer.overlay.status_shown == "Paused — acknowledged", 5)
    assert host.state.phase == Phase.PAUSED
    therapist.send("request_suds")
    run_until(renderer, lambda: renderer.overlay.suds_visible, 5)
    # Enter before a choice sends nothing (no default rating): the first rating is 70
    for key in ("enter", "6", "5", "arrow_right", "enter"):
        messenger.send(key)
        renderer.step_frame()
    run_until(renderer, lambda: bool(host.state.suds), 5)
    rating = host.state.suds[-1]
    assert rating.value == 70 and rating.by.startswith("patient:")
    run_until(renderer, lambda: not renderer.overlay.suds_visible
              and "received" in renderer.overlay.status_shown, 5)
    therapist.send("request_suds")
    run_until(renderer, lambda: renderer.overlay.suds_visible, 5)
    assert renderer.answer_suds(33) == 33
    run_until(renderer, lambda: len(host.state.suds) == 2, 5)
    assert host.state.suds[-1].value == 33


@pytest.mark.slow
def test_failsafe_when_the_host_is_killed_and_recovery(tmp_path: Path) -> None:
    endpoints = free_endpoints()
    config = config_file(tmp_path, endpoints)

    def start_host() -> subprocess.Popen[str]:
        proc = subprocess.Popen(cli("session", "--config", str(config), "--hierarchy",
                                    "arachnophobia", "--patient", "P001"),
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                env=child_env())
        assert proc.stdout is not None and "recording" in proc.stdout.readline()
        return proc

    with borrowed_engine() as engine:
        run_failsafe_and_recovery(engine, endpoints, start_host, load_config(config))


def run_failsafe_and_recovery(engine: Any, endpoints: Endpoints,
                              start_host: Callable[[], subprocess.Popen[str]],
                              config: dict[str, Any]) -> None:
    host = start_host()
    renderer = RendererProcess(endpoints, config, engine=engine)
    therapist = ControlClient(endpoints.control, "therapist", "t1")
    try:
        settled_view(renderer, therapist.send("start_exposure", {"step": 9}).state_seq, 0.3)
        assert engine.current.name == "spiders" and not renderer.director.failsafe
        host.send_signal(signal.SIGKILL)
        host.wait()
        killed = time.monotonic()
        assert host.stdout is not None
        host.stdout.close()
        run_until(renderer, lambda: renderer.director.failsafe and engine.current.name == "calm"
                  and not engine.fading, FAILSAFE_S + FADE_S + 2.0)
        took = time.monotonic() - killed
        assert took <= FAILSAFE_S + FADE_S + 0.3, f"calm {took:.2f} s after the host died"
        assert renderer.stats_payload()["failsafe"] is True
        host = start_host()
        reply = therapist.send("start_exposure", {"step": 2}, timeout_s=10)
        run_until(renderer, lambda: engine.current.name == "spiders" and not engine.fading
                  and not renderer.director.failsafe, 5)
        assert renderer.director.state is not None
        assert renderer.director.state["seq"] == reply.state_seq
    finally:
        therapist.close()
        renderer.close()
        if host.poll() is None:
            host.send_signal(signal.SIGTERM)
            host.wait(10)
        assert host.stdout is not None
        host.stdout.close()


# --------------------------------------------------------------------------- the command line


def test_openvr_without_runtime_exits_with_one_line(tmp_path: Path) -> None:
    config = config_file(tmp_path, free_endpoints())
    done = subprocess.run([sys.executable, "-m", "vrexposure.cli_render", "render",
                           "--backend", "openvr", "--config", str(config)],
                          capture_output=True, text=True, timeout=60, env=child_env())
    assert done.returncode != 0
    assert "Traceback" not in done.stderr + done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: openvr back-end unavailable: ")


@pytest.mark.slow
def test_render_and_snapshot_commands(host: SessionHost, endpoints: Endpoints,
                                      tmp_path: Path) -> None:
    config = config_file(tmp_path, endpoints)
    sub = Subscriber(endpoints, topics=("render.cli", "pose.head"))
    try:
        done = subprocess.run([sys.executable, "-m", "vrexposure.cli_render", "render",
                               "--backend", "offscreen", "--config", str(config), "--source",
                               "cli", "--width", "160", "--height", "90", "--duration", "2.5"],
                              capture_output=True, text=True, timeout=60, env=child_env())
        messages = sub.drain()
    finally:
        sub.close()
    assert done.returncode == 0, done.stderr
    assert "renderer stopped after" in done.stdout
    stats = [m.payload for m in messages if m.topic == "render.cli" and "fps" in m.payload]
    assert stats and stats[-1]["width_px"] == 160 and stats[-1]["phase"] == "idle"
    assert sum(m.topic == "pose.head" for m in messages) > 10
    out = tmp_path / "step3.png"
    snap_done = subprocess.run([sys.executable, "-m", "vrexposure.cli_render", "snapshot",
                                "acrophobia", "--step", "3", "--intensity", "1", "--out",
                                str(out), "--width", "200", "--height", "120"],
                               capture_output=True, text=True, timeout=60, env=child_env())
    assert snap_done.returncode == 0, snap_done.stderr
    with Image.open(out) as image:
        assert image.size == (200, 120)
        assert float(np.asarray(image).std()) > 10  # a scene, not a blank frame
    bad = subprocess.run([sys.executable, "-m", "vrexposure.cli_render", "snapshot",
                          "acrophobia", "--step", "0", "--out", str(out)],
                         capture_output=True, text=True, timeout=60, env=child_env())
    assert bad.returncode == 2 and "--step" in bad.stderr


def test_director_shows_a_previewed_step_but_never_takes_it_for_the_calm_scene() -> None:
    d = Director(failsafe_timeout_s=1.0, fade_s=0.5, now_s=0.0)
    d.initial()
    d.on_state(_state(1, "idle", "beach"), 0.0)
    d.tick(0.0)
    preview = {**_state(2, "idle", "spiders", count=3), "preview": {"step_id": "s"}}
    d.on_state(preview, 0.2)
    shown = d.tick(0.2)
    assert shown is not None and (shown.scene, shown.params) == ("spiders", {"count": 3})
    late = d.tick(1.5)  # the host went silent while the patient looked at a spider
    assert late is not None and (late.scene, late.reason) == ("beach", "failsafe")


def test_renderer_shows_the_step_being_edited_and_stop_wins(
        host: SessionHost, renderer: RendererProcess, therapist: ControlClient,
        endpoints: Endpoints) -> None:
    """``preview_step`` before the baseline: the headset shows the step being edited (and
    its mirror, which the panel shows, follows); STOP brings the calm scene back."""
    calm = settled_view(renderer, therapist.send("get_state").state_seq, 0.5)
    assert shown(renderer) == "calm"
    sub = Subscriber(endpoints, topics=("preview.main",))
    try:
        params = dict(host.hierarchy.steps[8].params)  # the tarantula, as being edited
        params["size_cm"] = 12.0
        reply = therapist.send("preview_step", {"step_id": "tarantula", "params": params})
        view = settled_view(renderer, reply.state_seq, 1.0)
        scene = renderer.engine.current
        assert scene is not None and scene.name == "spiders"
        assert scene.params["size_cm"] == pytest.approx(12.0)
        assert changed_fraction(calm, view) > 0.05
        assert host.state.phase == Phase.IDLE  # not exposure: nothing is counted
        mirrored = [m for m in sub.drain() if m.topic == "preview.main"]
        assert mirrored, "the patient's view (mirrored in the panel) was not published"
        sent = time.monotonic()
        stop = therapist.stop()
        run_until(renderer, lambda: shown(renderer) == "calm" and not renderer.engine.fading
                  and renderer.shown_seq is not None and renderer.shown_seq >= stop.state_seq,
                  3.0)
        assert time.monotonic() - sent <= 1.0
        assert host.state.preview is None
    finally:
        sub.close()
