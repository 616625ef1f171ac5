"""Sensors that say what is wrong: real ptys, a real host, real log records.

Each failure of issue 14 gives the user a message (a WARNING log line, shown without
``-v``) and the therapist an alert (``sensor_lost.<src>`` on the host).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from vrexposure.cli_sensors import sensor_command
from vrexposure.host import SessionHost
from vrexposure.physio import Quality
from vrexposure.plugins import discover_sensors
from vrexposure.sensor_api import DriverSpec, Waveform
from vrexposure.sensor_runtime import HeartRateDeriver, SensorRuntime
from vrexposure.sim_device import SimDevice, default_recording

from .conftest import free_endpoints


def driver(name: str) -> DriverSpec:
    return discover_sensors()[name]


@pytest.fixture
def sims() -> Iterator[list[SimDevice]]:
    devices: list[SimDevice] = []
    yield devices
    for d in devices:
        d.close()


def wait_for(predicate: Any, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_missing_port_is_logged_and_raises_sensor_lost(
    host: SessionHost, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    runtime = SensorRuntime(driver("zephyr_hxm"), "/dev/does-not-exist-14", host.endpoints,
                            source_id="hxm", remind_s=0.6).start()
    try:
        assert wait_for(lambda: "sensor_lost.hxm" in host.state.alerts_active, 5.0)
        assert wait_for(lambda: sum("/dev/does-not-exist-14" in m
                                    for m in warnings_of(caplog)) >= 2, 5.0)
    finally:
        runtime.stop()
    first = next(m for m in warnings_of(caplog) if "does-not-exist-14" in m)
    assert first.startswith("cannot open /dev/does-not-exist-14 for zephyr_hxm")
    assert runtime.problem is not None and "retrying" in runtime.problem


def test_wrong_device_is_named(host: SessionHost, sims: list[SimDevice],
                               caplog: pytest.LogCaptureFixture) -> None:
    """A Zephyr HxM on the port, read with the Nonin DF2 driver: nothing valid decodes."""
    caplog.set_level(logging.WARNING)
    sim = SimDevice(driver("zephyr_hxm"), chunk_s=0.25).start()
    sims.append(sim)
    runtime = SensorRuntime(driver("nonin_df2"), sim.path, host.endpoints, source_id="ox",
                            no_frames_s=1.0, remind_s=10.0).start()
    try:
        expected = f"no valid nonin_df2 frames on {sim.path}: is it the right device?"
        assert wait_for(lambda: expected in warnings_of(caplog), 6.0), warnings_of(caplog)
        assert wait_for(lambda: "sensor_lost.ox" in host.state.alerts_active, 3.0)
        assert runtime.status_payload()["problem"] == expected
    finally:
        runtime.stop()


def test_right_device_raises_no_wrong_device_message(
    host: SessionHost, sims: list[SimDevice], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    sim = SimDevice(driver("zephyr_hxm"), chunk_s=0.25).start()
    sims.append(sim)
    runtime = SensorRuntime(driver("zephyr_hxm"), sim.path, host.endpoints, source_id="hxm2",
                            no_frames_s=1.0).start()
    try:
        assert wait_for(lambda: runtime.stats.frames_ok >= 4, 5.0)
        time.sleep(1.5)
    finally:
        runtime.stop()
    assert not any("right device" in m for m in warnings_of(caplog))
    assert "sensor_lost.hxm2" not in host.state.alerts_active


def test_no_host_is_retried_and_said(sims: list[SimDevice],
                                     caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    sim = SimDevice(driver("zephyr_hxm"), chunk_s=0.25).start()
    sims.append(sim)
    endpoints = free_endpoints()  # nobody listens there
    runtime = SensorRuntime(driver("zephyr_hxm"), sim.path, endpoints, source_id="hxm",
                            sync_timeout_s=0.2, remind_s=0.5).start()
    try:
        assert wait_for(lambda: sum("no session host" in m
                                    for m in warnings_of(caplog)) >= 3, 8.0)
        assert runtime.stats.frames_ok > 0  # reading goes on meanwhile
    finally:
        runtime.stop()
    assert not runtime.host_synced


def test_ble_without_bleak_is_a_message_and_an_exit_code(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "bleak", None)  # as if the extra were not installed
    result = CliRunner().invoke(sensor_command, ["--device", "ble_hrm",
                                                 "--port", "AA:BB:CC:DD:EE:FF"])
    assert result.exit_code == 1
    assert "vrexposure[ble]" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_windows_covering_an_outage_are_not_published_late() -> None:
    """After a reconnect, windows ending before it (they cover the outage) are dropped."""
    rec = default_recording(120.0, 72.0)
    rate = 250.0
    deriver = HeartRateDeriver()
    out = []
    for k in range(20):  # 20 s of signal, then the device is unplugged for 15 s
        x = rec.window(k, round(rate), rate)
        out += deriver.feed([Waveform("ecg", x.astype(np.float32), rate, "mV")], k + 1.0)
    reconnect_s = 35.0
    deriver.reset(reconnect_s)
    late = []
    for k in range(35, 60):
        x = rec.window(k, round(rate), rate)
        late += deriver.feed([Waveform("ecg", x.astype(np.float32), rate, "mV")], k + 1.0)
    hr = [m for m in late if m[0] == "hr"]
    assert hr, "heart rate resumes after the reconnect"
    assert all(t >= reconnect_s for _, _, t in hr)
    assert any(p["quality"] == Quality.GOOD.value for _, p, _ in hr)
