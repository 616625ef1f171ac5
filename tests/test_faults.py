"""Fault tolerance with real parts: a full disk (tmpfs), an unplugged sensor, a lost panel."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vrexposure.client import ControlClient, Publisher, Subscriber
from vrexposure.config import Endpoints
from vrexposure.hierarchy import Hierarchy
from vrexposure.host import SessionHost
from vrexposure.panel.model import Link, PanelModel
from vrexposure.plugins import discover_sensors
from vrexposure.sensor_runtime import SensorRuntime
from vrexposure.sim_device import SimDevice
from vrexposure.xdf import read_xdf

from .test_host import wait_for


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 4 MiB filesystem (tmpfs), so that 'disk full' is the kernel's ENOSPC."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount_point)],
                            capture_output=True, text=True)
    assert result.returncode == 0, f"these tests need root to mount a tmpfs: {result.stderr}"
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(directory: Path) -> Path:
    filler = directory / "filler"
    with open(filler, "wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        except OSError:
            pass
    return filler


def test_full_disk_is_reported_at_once_and_loses_nothing(
        hierarchy: Hierarchy, endpoints: Endpoints, config: dict[str, Any],
        small_disk: Path) -> None:
    host = SessionHost(hierarchy, "P001", endpoints, config,
                       recording_dir=small_disk / "sessions").start()
    alerts = Subscriber(endpoints, topics=("alert",), data=False)
    pub = Publisher(endpoints.publish, "dev", clock=host.clock.now)
    ctl = ControlClient(endpoints.control, "therapist", "panel")
    try:
        assert pub.wait_connected()
        ctl.send("start_exposure")
        filler = fill(small_disk)
        values = np.arange(4000, dtype=np.float32)
        for i in range(200):  # 4000 ECG samples and 200 heart-rate values while full
            pub.publish_chunk("ecg", values[i * 20:(i + 1) * 20], 1000.0, "mV",
                              1.0 + i * 0.02)
            pub.publish("hr", {"bpm": 60.0 + i % 40, "quality": "good"}, 1.0 + i * 0.02)
            time.sleep(0.002)
        ctl.send("suds", {"value": 40})
        alert = alerts.recv(3.0)
        assert alert is not None and alert.payload["alert"] == "recording_failed"
        assert "No space left" in alert.payload["error"]
        state = ctl.state()
        assert state["session"]["recording_error"]
        assert state["session"]["recording_unwritten_bytes"] > 16_000
        assert "recording_failed" in state["alerts_active"]
        filler.unlink()  # space again: everything kept in memory is written
        wait_for(lambda: "recording_failed" not in ctl.state()["alerts_active"], 5.0)
        assert ctl.state()["session"]["recording_unwritten_bytes"] == 0
    finally:
        for client in (alerts, pub, ctl):
            client.close()
        host.close()
    recording = read_xdf(host.recording_path)
    assert not recording.truncated
    np.testing.assert_array_equal(recording.by_name("ecg.dev").values[:, 0], values)
    assert len(recording.by_name("hr.dev").timestamps) == 200
    kinds = [json.loads(v).get("kind") for v in recording.by_name("events").values]
    assert "suds_recorded" in kinds and "alert" in kinds and "alert_cleared" in kinds


def test_unplugged_sensor_alerts_the_therapist_and_records_the_gap(
        host: SessionHost) -> None:
    driver = discover_sensors()["zephyr_hxm"]
    devices = [SimDevice(driver).start()]
    alerts = Subscriber(host.endpoints, topics=("alert", "event"), data=False)
    runtime = SensorRuntime(driver, devices[0].path, host.endpoints, "hxm1",
                            port_resolver=lambda: devices[-1].path).start()
    try:
        wait_for(lambda: host.recorder.samples_recorded > 2, 10.0)
        devices[0].close()  # unplugged
        wait_for(lambda: "sensor_lost.hxm1" in host.state.alerts_active, 5.0)
        assert host.state.phase.value == "idle"  # an alert never changes the scene
        devices.append(SimDevice(driver).start())  # plugged back in (a new pty path)
        wait_for(lambda: "sensor_lost.hxm1" not in host.state.alerts_active, 10.0)
        kinds: list[Any] = []
        # The event may arrive a moment after the state changed: collect until it does.
        wait_for(lambda: kinds.extend(m.payload.get("kind") for m in alerts.drain())
                 or "alert_cleared" in kinds, 3.0)
        assert "alert" in kinds and "alert_cleared" in kinds
    finally:
        runtime.stop()
        for device in devices:
            device.stop()
        alerts.close()
    host.close()
    records = [json.loads(v) for v in read_xdf(host.recording_path).by_name("sensor.hxm1").values]
    events = [r.get("event") for r in records]
    assert "disconnected" in events
    reconnect = next(r for r in records if r.get("event") == "connected" and "gap_s" in r)
    assert reconnect["gap_s"] > 0.1


def test_killed_panel_pauses_and_a_restarted_panel_regains_control(
        hierarchy: Hierarchy, endpoints: Endpoints, config: dict[str, Any],
        tmp_path: Path) -> None:
    config = {**config, "session": {**config["session"], "panel_heartbeat_timeout_s": 0.6}}
    host = SessionHost(hierarchy, "P001", endpoints, config, recording_dir=tmp_path).start()
    script = (
        "import sys, time\n"
        "from vrexposure.client import ControlClient\n"
        f"c = ControlClient({endpoints.control!r}, 'therapist', 'panel')\n"
        "c.send('start_exposure')\n"
        "print('ready', flush=True)\n"
        "while True:\n"
        "    c.send('heartbeat', {'controlling': True}); time.sleep(0.2)\n")
    panel = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                             text=True)
    try:
        assert panel.stdout is not None and panel.stdout.readline().strip() == "ready"
        time.sleep(1.0)
        assert host.state.phase.value == "exposure"
        panel.kill()
        panel.wait()
        wait_for(lambda: host.state.phase.value == "paused", 3.0)
        restarted = ControlClient(endpoints.control, "therapist", "panel-2")
        restarted.send("heartbeat", {"controlling": True})
        assert restarted.state()["session"]["controller"] == "panel-2"
        assert restarted.send("resume").ok
        assert host.state.phase.value == "exposure"
        restarted.close()
    finally:
        if panel.poll() is None:
            panel.kill()
            panel.wait()
        if panel.stdout is not None:
            panel.stdout.close()
        host.close()


def test_killed_renderer_is_seen_and_a_restarted_one_joins_the_current_step(
        host: SessionHost, tmp_path: Path) -> None:
    from vrexposure.config import write_config

    config_file = write_config(tmp_path / "render.yaml", host.endpoints)
    stats = Subscriber(host.endpoints, topics=("render.",), host=False)
    ctl = ControlClient(host.endpoints.control, "therapist", "panel")
    ctl.send("start_exposure")
    ctl.send("jump", {"step": 3})
    ctl.send("intensity", {"value": 0.5})

    def start_renderer() -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "vrexposure", "render", "--backend",
                                 "offscreen", "--width", "320", "--height", "180",
                                 "--config", str(config_file), "--duration", "60"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    panel = PanelModel()  # what the therapist's panel makes of the renderer's messages

    def shown_seq(timeout_s: float) -> int:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            message = stats.recv(0.5)
            if message is not None:
                panel.ingest(message, time.monotonic())
            if (message is not None and message.payload.get("phase") == "exposure"
                    and message.payload.get("scene") == "spiders"
                    and message.payload.get("shown_seq") == host.state.seq):
                return int(message.payload["shown_seq"])
        raise AssertionError("the renderer did not show the current state")

    first = start_renderer()
    try:
        assert shown_seq(40.0) == host.state.seq
        assert panel.renderer_link(time.monotonic()) == Link.OK
        first.kill()
        killed_at = time.monotonic()
        first.wait()
        for message in stats.drain():
            panel.ingest(message, killed_at)
        assert stats.recv(2.0) is None  # it is gone: nothing more arrives
        # The panel shows it lost within its 3 s window of silence.
        assert panel.renderer_link(killed_at + panel.lost_after_s + 0.1) == Link.LOST
        ctl.send("intensity", {"value": 0.7})  # the session moves on meanwhile
        second = start_renderer()
        try:
            assert shown_seq(40.0) == host.state.seq  # joins at the current step and intensity
        finally:
            second.terminate()
            second.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
        stats.close()
        ctl.close()


def test_unwritable_recording_directory_is_a_clear_error(
        hierarchy: Hierarchy, endpoints: Endpoints, config: dict[str, Any], tmp_path: Path
        ) -> None:
    from vrexposure.host import HostError

    read_only = tmp_path / "ro"
    read_only.mkdir()
    # A read-only filesystem refuses even root (chmod would not: tests run as root in CI).
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs",
                             str(read_only)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    try:
        with pytest.raises(HostError, match=r"cannot create the recording in .*ro/sessions: "
                                            r"Read-only file system"):
            SessionHost(hierarchy, "P001", endpoints, config,
                        recording_dir=read_only / "sessions")
    finally:
        subprocess.run(["umount", "-l", str(read_only)], check=False)
