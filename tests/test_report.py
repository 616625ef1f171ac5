"""Session report and progress: numbers checked against the raw recording and by hand."""

from __future__ import annotations

import base64
import json
import re
import signal
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from vrexposure.client import ControlClient
from vrexposure.hierarchy import hierarchy_to_dict, load_hierarchy
from vrexposure.protocol import DataMessage
from vrexposure.recorder import Recorder
from vrexposure.report import (
    compute_progress,
    compute_report,
    fold_timeline,
    read_header,
    write_progress,
    write_report,
)
from vrexposure.sim import SimSettings, SimulatedPatient
from vrexposure.xdf import XdfFile, read_xdf

from .conftest import HIERARCHIES, free_endpoints
from .test_processes import port_config, start_host, stop_process
from .test_replay import events_of

HIERARCHY = load_hierarchy(HIERARCHIES / "arachnophobia.yaml")


# --------------------------------------------------------------------------- synthetic


def write_session(path: Path, *, patient: str, started: str,
                  events: list[tuple[float, str, dict[str, Any]]],
                  hr: list[tuple[float, float, str]],
                  pose: Sequence[tuple[float, bool, float | None]] = (),
                  end_s: float | None = None) -> Path:
    """A recording written with the real recorder, from explicit events and samples."""
    meta = {"session_id": uuid.uuid4().hex, "patient_id": patient,
            "hierarchy_id": HIERARCHY.id, "hierarchy": hierarchy_to_dict(HIERARCHY),
            "started_utc": started, "started_wall_s": 0.0, "software": "test",
            "clock": "session clock", "config": {}}
    recorder = Recorder(path, meta)
    for i, (t, bpm, quality) in enumerate(hr):
        recorder.record(DataMessage("hr.sim", i, t, {"bpm": bpm, "quality": quality}))
    for i, (t, away, angle) in enumerate(pose):
        payload: dict[str, Any] = {"pos": [0.0, 0.0, 1.2], "quat": [1.0, 0.0, 0.0, 0.0]}
        if angle is not None:
            payload.update(look_angle_deg=angle, looking_away=away)
        recorder.record(DataMessage("pose.head", i, t, payload))
    for seq, (t, kind, data) in enumerate(events, start=1):
        recorder.record_event(t, {"type": "event", "kind": kind, "t_s": t, **data})
        recorder.record_state(t, {"seq": seq, "phase": "exposure", "scene": "calm",
                                  "params": {}, "suds": []})
    last = max([t for t, _, _ in events] + [t for t, _, _ in hr])
    recorder.close(end_s if end_s is not None else last)
    return path


def suds(t: float, step: int, value: int, phase: str = "exposure"
         ) -> tuple[float, str, dict[str, Any]]:
    return (t, "suds_recorded", {"value": value, "step_index": step, "phase": phase,
                                 "by": "patient:remote", "prompted": True})


RICH_EVENTS: list[tuple[float, str, dict[str, Any]]] = [
    (0.0, "baseline_started", {"by": "therapist:panel", "duration_s": 10}),
    suds(5.0, 0, 10, phase="baseline"),
    (10.0, "baseline_completed", {"mean_bpm": 70.0, "sd_bpm": 1.0, "n_values": 9,
                                  "by": "host:host"}),
    (10.0, "exposure_started", {"step_index": 0, "step_id": "jar-far",
                                "by": "therapist:panel"}),
    (10.5, "expectancy_recorded", {"step_index": 0, "outcome": "It escapes",
                                   "likelihood_pct": 60, "by": "therapist:panel"}),
    suds(12.0, 0, 40), suds(14.0, 0, 50),
    (15.0, "paused", {"reason": "patient", "resume_to": "exposure", "by": "patient:remote"}),
    (16.0, "resumed", {"to": "exposure", "by": "therapist:panel"}),
    suds(16.0, 0, 30),
    (17.0, "intensity_changed", {"intensity": 0.5, "step_index": 0, "by": "therapist:panel"}),
    suds(18.0, 0, 20),
    (19.0, "expectancy_outcome", {"expectancy_index": 0, "step_index": 0, "happened": True,
                                  "outcome": "It escapes", "by": "therapist:panel"}),
    (19.5, "marker", {"text": "patient laughed", "step_index": 0, "by": "therapist:panel"}),
    (20.0, "step_changed", {"from": 0, "to": 1, "step_id": "jar-near", "reason": "next",
                            "by": "therapist:panel"}),
    suds(21.0, 1, 60),
    (22.0, "alert", {"alert": "hr_above_baseline", "value_bpm": 92.0, "threshold_bpm": 90.0,
                     "step_index": 1, "phase": "exposure"}),
    (23.0, "stopped", {"reason": "STOP", "resume_to": "exposure", "already_safe": False,
                       "by": "patient:remote"}),
    (26.0, "resumed", {"to": "exposure", "by": "therapist:panel"}),
    suds(27.0, 1, 70), suds(29.0, 1, 30),
    (30.0, "step_changed", {"from": 1, "to": 1, "step_id": "jar-near", "reason": "repeat",
                            "by": "therapist:panel"}),
    suds(31.0, 1, 45),
    (33.0, "ended", {"reason": "done", "by": "therapist:panel"}),
]


def rich_session(path: Path) -> Path:
    hr = [(float(t), 69.0 if t % 2 else 71.0, "good") for t in range(1, 10)]
    hr += [(float(t), 80.0 + (t - 10), "good") for t in range(10, 34)]
    hr.append((12.5, 150.0, "uncertain"))
    hr.sort()
    pose = []
    for k in range(336):
        t = k / 10
        away = 12 <= t < 13 or 27 <= t < 29
        pose.append((t, away, None if t < 10 else (45.0 if away else 5.0)))
    return write_session(path, patient="P042", started="2026-11-02T09:00:00+00:00",
                         events=RICH_EVENTS, hr=hr, pose=pose)


# --------------------------------------------------------------------------- the demo


def independent_numbers(recording: XdfFile) -> dict[int, dict[str, Any]]:
    """Per-step numbers straight from the raw streams (the demo has no pauses or STOPs)."""
    events = events_of(recording)
    assert not any(e["kind"] in ("paused", "stopped", "resumed") for e in events)
    end = max(float(s.timestamps[-1]) for s in recording.streams.values())
    spans: dict[int, list[tuple[float, float]]] = {}
    current: tuple[int, float] | None = None
    for e in events:
        if e["kind"] in ("exposure_started", "step_changed", "ended") and current is not None:
            spans.setdefault(current[0], []).append((current[1], e["t_s"]))
            current = None
        if e["kind"] == "exposure_started":
            current = (e["step_index"], e["t_s"])
        elif e["kind"] == "step_changed":
            current = (e["to"], e["t_s"])
    if current is not None:
        spans.setdefault(current[0], []).append((current[1], end))
    baseline = next(e for e in events if e["kind"] == "baseline_completed")["mean_bpm"]
    names = {s.name for s in recording.streams.values()}
    hr = recording.by_name("hr.sim")
    # the renderer's head when the demo ran one (its look angle is the real one), else the sim
    pose = recording.by_name("pose.head" if "pose.head" in names else "pose.sim")
    out: dict[int, dict[str, Any]] = {}
    for step, step_spans in spans.items():
        ratings = [(e["t_s"], e["value"]) for e in events if e["kind"] == "suds_recorded"
                   and e["step_index"] == step and e["phase"] != "baseline"]
        values = [v for _, v in ratings]

        def inside(t: np.ndarray, step_spans: list[tuple[float, float]] = step_spans
                   ) -> np.ndarray:
            return np.any([(t >= a) & (t < b) for a, b in step_spans], axis=0)

        m = inside(hr.timestamps) & (hr.values[:, 1] == 0)
        p = inside(pose.timestamps) & np.isfinite(pose.values[:, 7])
        habituation = None
        peak = 0
        for n, (t, v) in enumerate(ratings):
            peak = max(peak, v)
            if n >= 1 and peak > 0 and v <= peak * 0.5:
                habituation = t - step_spans[0][0]
                break
        expectancies = [(e["outcome"], e["likelihood_pct"]) for e in events
                        if e["kind"] == "expectancy_recorded" and e["step_index"] == step]
        bpm = hr.values[m, 0]
        out[step] = {
            "time_in_step_s": sum(b - a for a, b in step_spans),
            "suds_peak": max(values) if values else None,
            "suds_end": values[-1] if values else None,
            "suds_drop_pct": 100 * (max(values) - values[-1]) / max(values)
            if len(values) >= 2 and max(values) else None,  # a drop needs two ratings
            "hr_mean_bpm": float(bpm.mean()) if len(bpm) else None,
            "hr_peak_bpm": float(bpm.max()) if len(bpm) else None,
            "hr_mean_vs_baseline_bpm": float(bpm.mean()) - baseline if len(bpm) else None,
            "hr_peak_vs_baseline_bpm": float(bpm.max()) - baseline if len(bpm) else None,
            "look_away_share": float(pose.values[p, 8].mean()) if p.any() else None,
            "habituation_s": habituation,
            "expectancies": expectancies,
        }
    return out


def test_report_numbers_match_the_raw_recording(demo_file: Path, demo: XdfFile,
                                                tmp_path: Path) -> None:
    files = write_report(demo_file, tmp_path / "out")
    summary = json.loads(files.json.read_text())
    expected = independent_numbers(demo)
    steps = {s["step_index"]: s for s in summary["steps"]}
    assert set(steps) == set(expected) and len(steps) >= 3
    for index, numbers in expected.items():
        got = steps[index]
        for key, value in numbers.items():
            if key == "expectancies":
                assert [(e["outcome"], e["likelihood_pct"]) for e in got[key]] == value
            elif value is None:
                assert got[key] is None, (index, key)
            else:
                places = 4 if key == "look_away_share" else 2
                assert got[key] == pytest.approx(value, abs=0.6 * 10 ** -places), (index, key)
    # expectancies of the demo were followed by "did not happen" before advancing
    assert any(e["happened"] is False for s in summary["steps"] for e in s["expectancies"])
    events = events_of(demo)
    assert summary["session"]["highest_step_index"] == max(expected)
    assert summary["totals"]["stops"] == sum(e["kind"] == "stopped" for e in events) == 0
    assert summary["totals"]["suds"] == sum(e["kind"] == "suds_recorded" for e in events)
    assert summary["baseline"]["mean_bpm"] == pytest.approx(
        next(e["mean_bpm"] for e in events if e["kind"] == "baseline_completed"), abs=0.01)
    assert summary["session"]["patient_id"] == "DEMO01"
    assert summary["recording"]["cut_short"] is False
    # the HTML page: self-contained, with the figures and the table
    page = files.html.read_text()
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(images) == 2
    assert all(base64.b64decode(i).startswith(b"\x89PNG") for i in images)
    assert "http://" not in page and "https://" not in page and "<script" not in page
    assert "DEMO01" in page and "jar-far" in page and "Session log" in page
    assert (files.html.stat().st_mode & 0o777) == 0o600


def test_report_of_a_session_with_pause_stop_alert_and_repeat(tmp_path: Path) -> None:
    report = compute_report(read_xdf(rich_session(tmp_path / "rich.xdf"))).to_dict()
    step0, step1 = report["steps"]
    assert step0 | {"suds": None, "expectancies": None, "label": None} == {
        "step": 1, "step_index": 0, "step_id": "jar-far", "label": None, "expected_suds": 20,
        "visits": 1, "time_in_step_s": 9.0,  # 10-20 s minus the 1 s pause
        "suds": None, "suds_start": 40, "suds_peak": 50, "suds_end": 20, "suds_drop_pct": 60.0,
        "habituation_s": 7.0,  # 20 ≤ 50 % of 50 at 18 s: 8 s minus the pause
        "hr_mean_bpm": 84.44, "hr_peak_bpm": 89.0,  # 80..89 without 85 (paused)
        "hr_mean_vs_baseline_bpm": 14.44, "hr_peak_vs_baseline_bpm": 19.0, "hr_values": 9,
        "look_away_share": 0.1111, "pose_samples": 90, "intensity_max": 0.5,
        "expectancies": None, "alerts": [], "stops": 0, "pauses": 1, "skipped": False,
        # 10-15 and 16-17 s at intensity 0, 17-20 s at 0.5
        "intensity_time_s": [{"intensity": 0.0, "time_s": 6.0},
                             {"intensity": 0.5, "time_s": 3.0}],
        "hr_windows": 10, "hr_trusted_share": 0.9,  # the uncertain 150 bpm at 12.5 s
        "suds_drop_note": None, "habituation_note": None}
    assert step0["suds"] == [{"t_s": t, "value": v} for t, v in
                             ((12.0, 40), (14.0, 50), (16.0, 30), (18.0, 20))]
    assert step0["expectancies"] == [{"t_s": 10.5, "outcome": "It escapes",
                                      "likelihood_pct": 60, "happened": True}]
    assert step1 | {"suds": None, "expectancies": None, "label": None} == {
        "step": 2, "step_index": 1, "step_id": "jar-near", "label": None, "expected_suds": 30,
        "visits": 2, "time_in_step_s": 10.0,  # 20-23 and 26-33 (safe place 23-26 excluded)
        "suds": None, "suds_start": 60, "suds_peak": 70, "suds_end": 45,
        "suds_drop_pct": 35.71, "habituation_s": 6.0,  # 30 ≤ 35 at 29 s: 9 s minus 3 s safe
        "hr_mean_bpm": 96.6, "hr_peak_bpm": 102.0, "hr_mean_vs_baseline_bpm": 26.6,
        "hr_peak_vs_baseline_bpm": 32.0, "hr_values": 10, "look_away_share": 0.2,
        "pose_samples": 100, "intensity_max": 0.0, "expectancies": None,
        "alerts": ["hr_above_baseline"], "stops": 1, "pauses": 0, "skipped": False,
        "intensity_time_s": [{"intensity": 0.0, "time_s": 10.0}],
        "hr_windows": 10, "hr_trusted_share": 1.0,
        "suds_drop_note": None, "habituation_note": None}
    assert report["baseline"] | {"suds": None} == {
        "mean_bpm": 70.0, "sd_bpm": 1.0, "n_values": 9, "threshold_bpm": 90.0,
        "band_bpm": [50.0, 90.0],
        "duration_s": 10.0, "warning": None, "suds": None, "alerts": [], "stops": 0,
        "source": "session host"}
    assert report["baseline"]["suds"] == [{"t_s": 5.0, "value": 10}]
    totals = report["totals"]
    assert (totals["stops"], totals["alerts"], totals["pauses"], totals["markers"]) == \
        (1, 1, 1, 1)
    assert (totals["exposure_s"], totals["paused_s"], totals["safe_s"]) == (19.0, 1.0, 3.0)
    assert totals["hr_good_share"] == pytest.approx(33 / 34, abs=1e-4)
    assert report["session"]["highest_step_index"] == 1 and report["session"]["ended"]
    assert report["session"]["highest_step"] == 2  # 1-based, as a person counts
    assert report["recording"]["pose_stream"] == "pose.head"
    texts = [row["text"] for row in report["log"]]
    assert "Note: patient laughed" in texts
    assert "STOP pressed by the patient (remote); safe place shown" in texts
    # the alert names no duration: the hierarchy's sustain time is how long it took
    assert "Heart rate 92 bpm, above the alert line of 90 bpm for 15 s" in texts


def test_timeline_leaves_out_a_host_outage() -> None:
    events = [{"kind": "baseline_started", "t_s": 0.0},
              {"kind": "exposure_started", "t_s": 2.0, "step_index": 3},
              {"kind": "session_resumed", "t_s": 8.0}]
    timeline = fold_timeline(events, 10.0, outages=[(5.0, 8.0)])
    assert timeline.duration("baseline") == 2.0
    assert timeline.duration("exposure", 3) == 5.0
    assert timeline.duration("outage") == 3.0
    assert timeline.bands("exposure") == [(2.0, 5.0, 3), (8.0, 10.0, 3)]


def test_report_for_a_recording_whose_writer_was_killed(demo_file: Path, demo: XdfFile,
                                                        tmp_path: Path) -> None:
    raw = demo_file.read_bytes()
    exposure = next(e["t_s"] for e in events_of(demo) if e["kind"] == "exposure_started")
    for fraction in (0.75, 0.999):  # mid-recording, and inside the last chunk
        cut = tmp_path / f"cut{fraction}.xdf"
        cut.write_bytes(raw[: int(len(raw) * fraction)])
        files = write_report(cut, tmp_path / "out")
        summary = json.loads(files.json.read_text())
        recording = read_xdf(cut)
        assert recording.truncated and summary["recording"]["cut_short"] is True
        end = max(float(s.timestamps[-1]) for s in recording.streams.values())
        # the session's length ends at its 'ended' record when that survived the cut
        ended = [e["t_s"] for e in events_of(recording) if e["kind"] == "ended"]
        assert summary["session"]["duration_s"] == pytest.approx(
            ended[0] if ended else end, abs=0.01)
        assert summary["session"]["recorded_s"] == pytest.approx(end, abs=0.01)
        assert summary["session"]["duration_s"] > exposure
        assert summary["steps"], "the steps before the cut are reported"
        page = files.html.read_text()
        assert "cut short" in page and page.count("data:image/png;base64,") == 2


@pytest.mark.slow
def test_report_after_the_session_host_was_killed(tmp_path: Path) -> None:
    """SIGKILL a real ``vrexposure session`` mid-exposure; the report renders what it wrote."""
    endpoints = free_endpoints()
    config = port_config(tmp_path, endpoints)
    hierarchy = tmp_path / "short.yaml"
    hierarchy.write_text((HIERARCHIES / "arachnophobia.yaml").read_text())
    host = start_host(config, "--hierarchy", str(hierarchy), "--patient", "P077")
    patient = SimulatedPatient(endpoints, SimSettings(ecg=False)).start()
    therapist = ControlClient(endpoints.control, "therapist", "panel")
    try:
        therapist.send("start_exposure")
        therapist.send("suds", {"value": 60})
        therapist.send("next")
        therapist.send("intensity", {"value": 0.7})
        therapist.send("suds", {"value": 70})
        therapist.stop("too much")
        time.sleep(2.5)  # heart rate and pose for a while, and at least one fsync
        host.send_signal(signal.SIGKILL)
        host.wait()
    finally:
        therapist.close()
        patient.stop()
        stop_process(host)
    path = next((tmp_path / "sessions").glob("P077_*.xdf"))
    recording = read_xdf(path)
    assert recording.by_name("events").footer is None  # killed: no clean close
    files = write_report(path, tmp_path / "out")
    summary = json.loads(files.json.read_text())
    assert [s["suds_peak"] for s in summary["steps"]] == [60, 70]
    assert summary["steps"][1]["stops"] == 1 and summary["steps"][1]["intensity_max"] == 0.7
    assert summary["session"]["ended"] is False
    page = files.html.read_text()
    assert "no &#x27;ended&#x27; record" in page or "cut short" in page
    assert page.count("data:image/png;base64,") == 2


def test_progress_across_a_patients_sessions(demo_file: Path, tmp_path: Path) -> None:
    folder = tmp_path / "sessions"
    folder.mkdir()
    plans = [[[60, 50, 25], [80, 70]], [[40, 15], [60, 25], [50]],
             [[20, 5], [30, 10], [40, 15], [50]]]
    expected_habituation: list[dict[str, float]] = []
    for day, plan in enumerate(plans, start=1):
        events: list[tuple[float, str, dict[str, Any]]] = [
            (0.0, "baseline_started", {}),
            (5.0, "baseline_completed", {"mean_bpm": 70.0, "sd_bpm": 2.0, "n_values": 5}),
            (5.0, "exposure_started", {"step_index": 0, "step_id": "jar-far"})]
        t, habituation = 5.0, {}
        for step, ratings in enumerate(plan):
            if step:
                events.append((t, "step_changed", {"from": step - 1, "to": step,
                                                   "step_id": HIERARCHY.steps[step].id}))
            start, peak = t, 0
            for n, value in enumerate(ratings):
                t += 2.0
                events.append(suds(t, step, value))
                peak = max(peak, value)
                if n and value <= peak / 2 and HIERARCHY.steps[step].id not in habituation:
                    habituation[HIERARCHY.steps[step].id] = t - start
            t += 1.0
        events.append((t, "ended", {}))
        expected_habituation.append(habituation)
        # written in reverse order of date: progress sorts by the recorded start
        write_session(folder / f"P042_{4 - day}.xdf", patient="P042",
                      started=f"2026-11-0{day}T10:00:00+00:00", events=events,
                      hr=[(float(s), 75.0, "good") for s in range(int(t))])
    (folder / "other.xdf").write_bytes(demo_file.read_bytes())  # another patient
    (folder / "broken.xdf").write_bytes(b"not an xdf file")
    assert read_header(folder / "other.xdf")["version"] == "1.0"

    progress = compute_progress(folder, "P042")
    assert [s.started_utc[:10] for s in progress.sessions] == \
        ["2026-11-01", "2026-11-02", "2026-11-03"]
    assert [s.highest_step for s in progress.sessions] == [1, 2, 3]
    assert [s.peak_suds for s in progress.sessions] == [
        {"jar-far": 60, "jar-near": 80}, {"jar-far": 40, "jar-near": 60, "free-far": 50},
        {"jar-far": 20, "jar-near": 30, "free-far": 40, "free-moving": 50}]
    for session, habituation in zip(progress.sessions, expected_habituation, strict=True):
        assert session.habituation_s == pytest.approx(habituation)
    assert len(progress.skipped) == 1 and "broken.xdf" in progress.skipped[0]

    files = write_progress(folder, "P042", tmp_path / "out")
    page = files.html.read_text()
    assert page.count("data:image/png;base64,") == 1 and "P042" in page
    assert json.loads(files.json.read_text())["sessions"][2]["peak_suds"]["free-moving"] == 50
    with pytest.raises(ValueError, match="no recordings"):
        write_progress(folder, "P999", tmp_path / "out")


def test_report_and_progress_commands(tmp_path: Path) -> None:
    from vrexposure.cli_research import progress_command, report_command

    path = rich_session(tmp_path / "P042_rich.xdf")
    result = CliRunner().invoke(report_command, [str(path), "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    assert "jar-near" in result.output and "STOP used 1×" in result.output
    assert (tmp_path / "r" / "P042_rich.report.html").exists()
    result = CliRunner().invoke(progress_command, [str(tmp_path), "--patient", "P042"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "P042.progress.html").exists()
    result = CliRunner().invoke(progress_command, [str(tmp_path), "--patient", "P7"])
    assert result.exit_code != 0 and "no recordings of patient P7" in result.output
