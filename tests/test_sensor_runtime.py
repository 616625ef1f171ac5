"""The sensor runtime end to end: simulated device → pty → runtime → host → subscriber.

Port loss: a pseudo-terminal's slave node disappears with its master, so the
same path cannot be reopened. The reconnect test therefore closes the first
device and hands the runtime a new one through ``port_resolver``.
"""

from __future__ import annotations

import dataclasses
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from vrexposure import protocol
from vrexposure.cli_sensors import sensor_command
from vrexposure.client import ControlClient, Subscriber
from vrexposure.host import SessionHost
from vrexposure.plugins import discover_sensors
from vrexposure.protocol import DataMessage
from vrexposure.sensor_api import (
    DriverSpec,
    HeartRate,
    OxygenSaturation,
    Quality,
    RRIntervals,
    SequenceGap,
    Waveform,
)
from vrexposure.sensor_runtime import SensorRuntime, samples_to_messages
from vrexposure.sim_device import SimDevice

from .conftest import needs_shared_data

# The simulated devices replay MIT-BIH 100 and the Nonin recording.
pytestmark = needs_shared_data("mitdb_100", "100.dat")

SERIAL_DEVICES = ["zephyr_hxm", "nonin_df2", "bitalino", "zephyr_bioharness", "nonin_ascii",
                  "contec_cms50d", "contec_cms50d_legacy", "pulsesensor"]
#: Devices that send only a waveform (heart rate comes from beat detection downstream).
ECG_ONLY = {"bitalino"}


def driver(name: str) -> DriverSpec:
    return discover_sensors()[name]


# --- pure conversion ---------------------------------------------------------------

def test_samples_to_messages_makes_valid_wire_payloads() -> None:
    wave = Waveform("ecg", np.array([0.1, 0.2, 0.3, 0.4], dtype=np.float32), 100.0, "mV",
                    Quality.UNCERTAIN)
    messages = samples_to_messages([
        HeartRate(72.0), HeartRate(0.0, Quality.BAD), HeartRate(float("nan")),
        RRIntervals((800.0, 0.0, 810.0)), RRIntervals(()), wave,
        Waveform("ppg", np.zeros(0, dtype=np.float32), 75.0, "counts"),
        OxygenSaturation(97.0), SequenceGap(3)], t_s=10.0)
    kinds = [m[0] for m in messages]
    assert kinds == ["hr", "hr", "rr", "ecg", "spo2", "sensor"]
    by_kind = {k: (p, t) for k, p, t in messages}
    assert messages[0][1] == {"bpm": 72.0, "quality": "good", "arrival_stamped": True}
    assert messages[1][1]["quality"] == "bad"
    assert by_kind["rr"][0]["rr_ms"] == [800.0, 810.0]
    payload, t0 = by_kind["ecg"]
    assert t0 == pytest.approx(10.0 - 3 / 100.0)  # the last sample arrived at t_s
    assert payload["quality"] == "uncertain" and payload["arrival_stamped"] is True
    np.testing.assert_allclose(protocol.chunk_values(payload)[:, 0], wave.values)
    assert by_kind["spo2"][0]["spo2_pct"] == 97.0
    assert by_kind["sensor"][0] == {"event": "gap", "missing": 3, "arrival_stamped": True}
    for kind, payload, t_s in messages:  # every payload passes the host's validation
        frames = protocol.encode_data(f"{kind}.dev", 0, t_s, payload)
        assert protocol.decode_data(frames).payload["arrival_stamped"] is True


# --- end to end --------------------------------------------------------------------

def collect(sub: Subscriber, seconds: float) -> list[DataMessage]:
    out: list[DataMessage] = []
    deadline = time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0:
        message = sub.recv(remaining)
        if message is not None:
            out.append(message)
    return out


def wait_message(sub: Subscriber, predicate: Any, timeout_s: float) -> DataMessage:
    deadline = time.monotonic() + timeout_s
    while (remaining := deadline - time.monotonic()) > 0:
        message = sub.recv(remaining)
        if message is not None and predicate(message):
            return message
    raise AssertionError("expected message not received")


def host_now(host: SessionHost) -> float:
    ctl = ControlClient(host.endpoints.control, "observer", "test")
    try:
        return time.monotonic() + ctl.sync_clock(rounds=3)
    finally:
        ctl.close()


def ecg_rate_bpm(values: np.ndarray, rate_hz: float) -> float:
    """Heart rate from R peaks of a clean ECG (threshold and 250 ms refractory)."""
    x = values - np.median(values)
    threshold = 0.6 * x.max()
    peaks: list[int] = []
    i = 0
    while i < x.size:
        if x[i] > threshold:
            end = min(x.size, i + int(0.1 * rate_hz))
            peaks.append(i + int(np.argmax(x[i:end])))
            i = peaks[-1] + int(0.25 * rate_hz)
        else:
            i += 1
    return float(60.0 * rate_hz / np.diff(peaks).mean())


@pytest.fixture
def sim_factory() -> Iterator[Any]:
    devices: list[SimDevice] = []

    def make(name: str, **kwargs: Any) -> SimDevice:
        device = SimDevice(driver(name), **kwargs)
        devices.append(device)
        return device

    yield make
    for device in devices:
        device.close()


@pytest.mark.parametrize("name", SERIAL_DEVICES)
def test_device_to_subscriber_over_a_pty(name: str, host: SessionHost, sim_factory: Any) -> None:
    sim = sim_factory(name).start()
    sub = Subscriber(host.endpoints, host=False)
    time.sleep(0.1)
    runtime = SensorRuntime(driver(name), sim.path, host.endpoints, source_id="dev").start()
    try:
        t_rec0 = sim.recording_time_s
        messages = collect(sub, 2.6)
        t_rec1 = sim.recording_time_s
        session_now = host_now(host)
    finally:
        runtime.stop()
    # Stamped on the session clock at arrival: the last stamps are recent session times.
    last = max(m.t_s for m in messages)
    assert session_now - 0.6 < last <= session_now + 0.05
    kinds = {m.kind for m in messages}
    # A device's own heart-rate figure is demoted to "<src>.device" once raw beats arrive.
    assert {m.source for m in messages} <= {"dev", "dev.device"}
    reference = sim.recording.reference_hr(t_rec0, t_rec1)
    waveform_kind = sim.encoder.waveform_kind
    if waveform_kind is not None:
        chunks = [m for m in messages if m.kind == waveform_kind]
        assert chunks and all(m.payload["arrival_stamped"] for m in chunks)
        rate = chunks[0].payload["rate_hz"]
        assert rate == sim.encoder.waveform_rate_hz
        values = np.concatenate([protocol.chunk_values(m.payload)[:, 0] for m in chunks])
        assert values.size >= 1.5 * rate  # most of the 2.6 s arrived
        if name in ECG_ONLY:
            assert ecg_rate_bpm(values, rate) == pytest.approx(reference, abs=6)
    if name not in ECG_ONLY:
        rates = [m.payload["bpm"] for m in messages if m.kind == "hr"
                 and m.payload["quality"] != "bad"]
        assert rates, f"no heart rate from {name}: {sorted(kinds)}"
        assert float(np.median(rates)) == pytest.approx(reference, abs=6)
    status = [m.payload for m in messages if m.kind == "sensor"]
    assert any(p["event"] == "connected" for p in status)
    stats = [p for p in status if p["event"] == "status"]
    assert len(stats) >= 2 and stats[-1]["frames_bad_checksum"] == 0
    sub.close()


def test_heart_rate_derived_from_ecg_matches_the_reference_beats(
        host: SessionHost, sim_factory: Any) -> None:
    """BITalino ECG (MIT-BIH 100) → pty → beat detection → trusted hr.ecg1 values."""
    sim = sim_factory("bitalino").start()
    sub = Subscriber(host.endpoints, topics=("hr.ecg1",), host=False)
    time.sleep(0.1)
    runtime = SensorRuntime(driver("bitalino"), sim.path, host.endpoints,
                            source_id="ecg1").start()
    try:
        t_rec0 = sim.recording_time_s
        messages = collect(sub, 15.0)
        t_rec1 = sim.recording_time_s
    finally:
        runtime.stop()
        sub.close()
    trusted = [m for m in messages if m.source == "ecg1" and m.payload["quality"] == "good"]
    assert trusted, [m.payload for m in messages][:3]
    assert all(m.payload["origin"] == "ecg" for m in trusted)
    reference = sim.recording.reference_hr(t_rec0, t_rec1)
    for message in trusted:
        assert message.payload["bpm"] == pytest.approx(reference, abs=3)
        assert message.payload["rmssd_ms"] > 0


def test_garbage_is_counted_and_decoding_goes_on(host: SessionHost, sim_factory: Any) -> None:
    sim = sim_factory("nonin_df2").start()
    sub = Subscriber(host.endpoints, host=False)
    time.sleep(0.1)
    runtime = SensorRuntime(driver("nonin_df2"), sim.path, host.endpoints, source_id="ox",
                            status_interval_s=0.3).start()
    try:
        wait_message(sub, lambda m: m.kind == "hr", 3.0)
        rng = np.random.default_rng(5)
        for _ in range(5):
            sim.write(rng.integers(0, 256, 300, dtype=np.uint8).tobytes())
            time.sleep(0.05)
        time.sleep(0.5)
        sub.drain()
        after = collect(sub, 1.2)
        assert runtime._thread is not None and runtime._thread.is_alive()
    finally:
        runtime.stop()
    assert any(m.kind == "hr" for m in after)
    status = [m.payload for m in after if m.kind == "sensor" and m.payload["event"] == "status"]
    assert status
    last = status[-1]
    assert last["bytes_discarded"] + last["frames_bad_checksum"] + last["frames_malformed"] > 0
    assert last["frames_ok"] > 0 and last["connected"]
    sub.close()


def test_start_command_and_keepalive_are_written(host: SessionHost, sim_factory: Any) -> None:
    spec = driver("zephyr_bioharness")
    assert spec.start_command and spec.keepalive
    fast = dataclasses.replace(spec, keepalive=(spec.keepalive[0], 0.2))
    sim = sim_factory("zephyr_bioharness").start()
    runtime = SensorRuntime(fast, sim.path, host.endpoints, source_id="bh",
                            clock=time.monotonic).start()
    try:
        time.sleep(1.3)
    finally:
        runtime.stop()
    sim.stop()
    received = bytes(sim.received)
    assert received.startswith(spec.start_command)
    assert received.count(spec.keepalive[0]) >= 3


def test_port_loss_is_reported_and_a_new_port_is_reopened(host: SessionHost,
                                                          sim_factory: Any) -> None:
    first = sim_factory("zephyr_hxm", chunk_s=0.5).start()
    port = {"path": first.path}
    sub = Subscriber(host.endpoints, host=False)
    time.sleep(0.1)
    runtime = SensorRuntime(driver("zephyr_hxm"), first.path, host.endpoints, source_id="hxm",
                            port_resolver=lambda: port["path"]).start()
    try:
        wait_message(sub, lambda m: m.kind == "hr", 3.0)
        first.close()  # unplugged: the pty and its path are gone
        lost = wait_message(sub, lambda m: m.kind == "sensor"
                            and m.payload["event"] == "disconnected", 2.0)
        assert lost.payload["port"] == first.path
        status = wait_message(sub, lambda m: m.kind == "sensor"
                              and m.payload["event"] == "status", 2.0)
        assert not status.payload["connected"]
        time.sleep(0.5)  # a few failed attempts at the vanished path
        second = sim_factory("zephyr_hxm", chunk_s=0.5).start()
        port["path"] = second.path
        back = wait_message(sub, lambda m: m.kind == "sensor"
                            and m.payload["event"] == "connected", 3.0)
        assert back.payload["port"] == second.path
        assert 0.4 < back.payload["gap_s"] < 3.0
        wait_message(sub, lambda m: m.kind == "hr", 3.0)
        assert runtime.disconnects == 1
    finally:
        runtime.stop()
    sub.close()


# --- command line ------------------------------------------------------------------

def test_sensor_list_and_usage() -> None:
    runner = CliRunner()
    listed = runner.invoke(sensor_command, ["--list"])
    assert listed.exit_code == 0
    assert "zephyr_hxm" in listed.output and "Zephyr HxM BT" in listed.output
    assert runner.invoke(sensor_command, ["--device", "zephyr_hxm"]).exit_code != 0
    unknown = runner.invoke(sensor_command, ["--device", "nope", "--port", "/dev/null"])
    assert unknown.exit_code != 0 and "no sensor driver 'nope'" in unknown.output


def test_sim_device_and_sensor_commands_end_to_end(host: SessionHost, tmp_path: Path) -> None:
    """`sim-device` prints its pty path; `sensor` reads it and publishes to the host."""
    net: dict[str, Any] = {"host": "127.0.0.1"}
    for key, url in (("publish_port", host.endpoints.publish), ("feed_port", host.endpoints.feed),
                     ("host_feed_port", host.endpoints.host_feed),
                     ("control_port", host.endpoints.control)):
        net[key] = int(url.rsplit(":", 1)[1])
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"network": net}))
    sub = Subscriber(host.endpoints, topics=("hr.cli",), host=False)
    run = "from vrexposure.cli_sensors import {0} as c; c()"
    sim = subprocess.Popen([sys.executable, "-c", run.format("sim_device_command"),
                            "nonin_df2"], stdout=subprocess.PIPE, text=True)
    sensor = None
    try:
        assert sim.stdout is not None
        path = sim.stdout.readline().strip()
        assert path.startswith("/dev/")
        sensor = subprocess.Popen([sys.executable, "-c", run.format("sensor_command"),
                                   "--device", "nonin_df2", "--port", path,
                                   "--source-id", "cli", "--config", str(config)])
        message = sub.recv(20.0)  # two Python start-ups on 2 busy cores
        assert message is not None and message.topic in ("hr.cli", "hr.cli.device")
        assert 40 < message.payload["bpm"] < 100
    finally:
        for process in (sensor, sim):
            if process is not None:
                process.send_signal(signal.SIGINT)
        for process in (sensor, sim):
            if process is not None:
                assert process.wait(5) == 0
        if sim.stdout is not None:
            sim.stdout.close()
    sub.close()
