"""`vrexposure sim-device` injects the faults of issue 14; the runtime copes over a real pty."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from typing import Any

import numpy as np
import pytest

from vrexposure.client import Subscriber
from vrexposure.host import SessionHost
from vrexposure.plugins import discover_sensors
from vrexposure.protocol import DataMessage
from vrexposure.sensor_runtime import SensorRuntime
from vrexposure.sim_device import Fault, SimDevice

from .conftest import needs_shared_data

needs_data = needs_shared_data("mitdb_100", "100.dat")


def collect(sub: Subscriber, seconds: float) -> list[DataMessage]:
    out: list[DataMessage] = []
    deadline = time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0:
        m = sub.recv(remaining)
        if m is not None:
            out.append(m)
    return out


def test_fault_syntax() -> None:
    assert Fault.parse("garbage@10:500") == Fault("garbage", 10.0, 500.0)
    assert Fault.parse("unplug") == Fault("unplug", 5.0, None)
    with pytest.raises(ValueError, match="unknown fault 'nope'"):
        Fault.parse("nope@3")
    with pytest.raises(ValueError, match="KIND"):
        Fault.parse("garbage@x")


@needs_data
def test_displaced_beat_moves_one_beat_of_the_recording() -> None:
    sim = SimDevice(discover_sensors()["bitalino"], faults=[Fault("displaced", 4.0, 0.224)])
    try:
        plain = SimDevice(discover_sensors()["bitalino"])
        try:
            moved = np.flatnonzero(sim.recording.beats_s != plain.recording.beats_s)
            assert moved.size == 1
            k = int(moved[0])
            assert sim.recording.beats_s[k] - plain.recording.beats_s[k] == pytest.approx(0.224)
            # The waveform's R peak moved with it (the complex keeps its shape).
            b = float(plain.recording.beats_s[k])
            fs = 1000.0
            a = plain.recording.window(b - 0.1, 200, fs)
            c = sim.recording.window(b + 0.224 - 0.1, 200, fs)
            np.testing.assert_allclose(a, c, atol=0.05 * float(np.ptp(a)))
        finally:
            plain.close()
    finally:
        sim.close()


@needs_data
def test_garbage_bursts_and_an_unplug_over_a_pty(host: SessionHost) -> None:
    """Zephyr HxM: garbage twice, then unplugged for 1.5 s and back on a new path."""
    spec = discover_sensors()["zephyr_hxm"]
    sim = SimDevice(spec, chunk_s=0.25, faults=[Fault("garbage", 0.5, 400),
                                                Fault("garbage", 1.0, 400),
                                                Fault("unplug", 2.0, 1.5)])
    port = {"path": sim.path}
    sim.on_new_path = lambda p: port.update(path=p)
    sub = Subscriber(host.endpoints, host=False)
    time.sleep(0.1)
    runtime = SensorRuntime(spec, sim.path, host.endpoints, source_id="hxm",
                            port_resolver=lambda: port["path"]).start()
    sim.start()
    try:
        messages = collect(sub, 6.5)
    finally:
        runtime.stop()
        sim.close()
        sub.close()
    events = [m.payload["event"] for m in messages if m.kind == "sensor"]
    assert "disconnected" in events
    assert events.index("disconnected") < len(events) - 1 - events[::-1].index("connected")
    assert runtime.stats.bytes_discarded + runtime.stats.frames_bad_checksum > 0
    after = [m for m in messages if m.kind == "hr" and m.t_s > messages[-1].t_s - 2.0]
    assert after, "heart rate resumes on the new path"
    assert all(40 < m.payload["bpm"] < 110 for m in after)


@needs_data
def test_sim_device_wrong_device_is_named_by_the_sensor(host: SessionHost,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    run = "from vrexposure.cli_sensors import sim_device_command as c; c()"
    sim = subprocess.Popen([sys.executable, "-c", run, "nonin_df2", "--fault", "wrong-device"],
                           stdout=subprocess.PIPE, text=True)
    runtime: Any = None
    try:
        assert sim.stdout is not None
        path = sim.stdout.readline().strip()
        assert path.startswith("/dev/")
        runtime = SensorRuntime(discover_sensors()["nonin_df2"], path, host.endpoints,
                                source_id="ox", no_frames_s=1.5).start()
        expected = f"no valid nonin_df2 frames on {path}: is it the right device?"
        deadline = time.monotonic() + 6.0
        while time.monotonic() < deadline and runtime.problem != expected:
            time.sleep(0.1)
        assert runtime.problem == expected
        assert any(r.getMessage() == expected for r in caplog.records)
    finally:
        if runtime is not None:
            runtime.stop()
        sim.terminate()
        sim.wait(5)
        if sim.stdout is not None:
            sim.stdout.close()
