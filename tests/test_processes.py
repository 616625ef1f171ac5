"""Several real processes on one machine: session host, simulator, ctl, kill and resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vrexposure.client import ControlClient, Subscriber
from vrexposure.config import Endpoints, write_config
from vrexposure.xdf import read_xdf

from .conftest import free_endpoints


def port_config(tmp_path: Path, endpoints: Endpoints) -> Path:
    return write_config(tmp_path / "config.yaml", endpoints,
                        session={"recording_dir": str(tmp_path / "sessions")})


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "vrexposure", *args]


@pytest.fixture
def session_files(tmp_path: Path) -> Iterator[tuple[Endpoints, Path, Path]]:
    endpoints = free_endpoints()
    config = port_config(tmp_path, endpoints)
    hierarchy = tmp_path / "short.yaml"
    text = (Path(__file__).parents[1] / "hierarchies" / "acrophobia.yaml").read_text()
    hierarchy.write_text(text.replace("duration_s: 120", "duration_s: 6"))
    yield endpoints, config, hierarchy


def start_host(config: Path, *args: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(cli("session", "--config", str(config), *args),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert "recording" in line, line + (proc.stderr.read() if proc.stderr else "")
    return proc


def ctl(config: Path, *words: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cli("ctl", "--config", str(config), *words), capture_output=True,
                          text=True, timeout=60)


def stop_process(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def recording_of(tmp_path: Path) -> Path:
    files = list((tmp_path / "sessions").glob("P042_*.xdf"))
    assert len(files) == 1
    return files[0]


@pytest.mark.slow
def test_sim_host_subscriber_and_ctl_as_processes(session_files: tuple[Endpoints, Path, Path],
                                                  tmp_path: Path) -> None:
    endpoints, config, hierarchy = session_files
    host = start_host(config, "--hierarchy", str(hierarchy), "--patient", "P042")
    sim = subprocess.Popen(cli("sim", "--config", str(config), "--duration", "30"),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    sub = Subscriber(endpoints, topics=("hr.sim", "ecg.sim", "pose.sim", "state"))
    try:
        seen: dict[str, int] = {}
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and min(seen.get(k, 0) for k in
                                                  ("hr", "ecg", "pose", "state")) < 3:
            message = sub.recv(0.5)
            if message is not None:
                seen[message.kind] = seen.get(message.kind, 0) + 1
        assert min(seen.get(k, 0) for k in ("hr", "ecg", "pose", "state")) >= 3, seen
        assert "ok start-baseline" in ctl(config, "start-baseline").stdout
        time.sleep(7.0)  # baseline of 6 s with the simulated heart rate (1 Hz)
        assert ctl(config, "start-exposure").returncode == 0
        assert ctl(config, "intensity", "0.6").returncode == 0
        assert ctl(config, "next").returncode == 0
        assert ctl(config, "suds", "45").returncode == 0
        refused = ctl(config, "suds", "450")
        assert refused.returncode == 1 and "'value' must be from 0 to 100" in refused.stderr
        stop = ctl(config, "stop")
        assert stop.returncode == 0 and "stopped" in stop.stdout
        state = json.loads(ctl(config, "state").stdout)
        assert state["phase"] == "safe" and state["step_index"] == 1
        assert state["baseline"] is not None and 60 < state["baseline"]["mean_bpm"] < 85
    finally:
        sub.close()
        stop_process(sim)  # type: ignore[arg-type]
        stop_process(host)
    recording = read_xdf(recording_of(tmp_path))
    assert not recording.truncated
    assert len(recording.by_name("ecg.sim").timestamps) > 1000
    assert len(recording.by_name("pose.sim").timestamps) > 100


@pytest.mark.slow
def test_killed_host_leaves_a_readable_file_and_resumes(
        session_files: tuple[Endpoints, Path, Path], tmp_path: Path) -> None:
    endpoints, config, hierarchy = session_files
    host = start_host(config, "--hierarchy", str(hierarchy), "--patient", "P042")
    ctl_client = ControlClient(endpoints.control, "therapist", "t")
    try:
        ctl_client.send("start_exposure")
        ctl_client.send("jump", {"step": 3})
        ctl_client.send("intensity", {"value": 0.4})
        ctl_client.send("suds", {"value": 55})
        ctl_client.send("marker", {"text": "patient looked down over the edge"})
        time.sleep(1.5)  # at least one fsync after the last command
        host.send_signal(signal.SIGKILL)
        host.wait()
    finally:
        stop_process(host)
    path = recording_of(tmp_path)
    assert os.stat(path).st_mode & 0o777 == 0o600
    recording = read_xdf(path)
    kinds = [json.loads(v).get("kind") for v in recording.by_name("events").values]
    assert "marker" in kinds and "suds_recorded" in kinds
    assert recording.by_name("events").footer is None  # no clean close happened
    resumed = start_host(config, "--resume", str(path))
    try:
        state = ctl_client.state(timeout_s=10)
        assert (state["phase"], state["step_index"], state["intensity"]) == ("exposure", 3, 0.4)
        assert state["suds"][-1][2] == 55
        ctl_client.send("next")
        assert ctl_client.state()["step_index"] == 4
    finally:
        ctl_client.close()
        stop_process(resumed)
    recording = read_xdf(path)
    records = [json.loads(v) for v in recording.by_name("events").values]
    kinds = [r.get("kind") for r in records]
    assert "session_resumed" in kinds and kinds.index("session_resumed") < len(kinds) - 1
    times = [r["t_s"] for r in records]
    assert times == sorted(times)  # one clock across the outage


def test_demo_command_runs_headless(tmp_path: Path) -> None:
    endpoints = free_endpoints()
    base = int(endpoints.publish.rsplit(":", 1)[1])
    result = subprocess.run(cli("demo", "--duration", "25", "--out", str(tmp_path),
                                "--base-port", str(base)),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    summary_file = next(tmp_path.glob("DEMO01_*.summary.json"))
    summary: dict[str, Any] = json.loads(summary_file.read_text())
    assert summary["baseline_mean_bpm"] is not None
    assert summary["highest_step"] >= 2  # advanced on suggestions
    assert all(step["suds"] for step in summary["steps"])
    first, last = summary["steps"][0], summary["steps"][-1]
    assert last["hr_mean_bpm"] > first["hr_mean_bpm"]  # heart rate follows exposure
    assert "Baseline heart rate" in result.stdout and str(summary_file) in result.stdout
    recording = read_xdf(Path(summary["path"]))
    assert recording.by_name("ecg.sim").values.shape[0] > 15_000  # 1 kHz for > 15 s
    # The offscreen renderer took part: it followed the session and published the head.
    assert summary["renderer"] is not None and summary["renderer"]["fps"] > 0
    assert len(recording.by_name("pose.head").timestamps) > 20
    assert "Renderer:" in result.stdout
