"""Replay, report and file opening on a generated 60-minute session, against pyxdf.

Generates a 60-minute session file with the real recorder (1 kHz ECG in
20-sample chunks, 90 Hz head pose, 1 Hz heart rate with RR intervals, events
every few seconds, a state on each change), then times, in the same run:

* ``open_s``: :func:`vrexposure.xdf.read_xdf` of the file;
* ``pyxdf_load_s``: ``pyxdf.load_xdf`` of the same file (default options);
* ``replay_samples_per_s``: samples replayed as fast as possible to a subscriber in
  another process (every message received and decoded; lossless pacing), from the
  replay's start to the last message received;
* ``report_s``: the session report (numbers, figures, HTML and JSON) from the opened file.

Goal: open + report under 10 s, and opening no slower than pyxdf.
Run: ``python bench/replay.py [--minutes 60] [--keep DIR]``. The last line is one JSON
object.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import free_endpoints  # noqa: E402
from vrexposure.config import Endpoints  # noqa: E402
from vrexposure.hierarchy import hierarchy_to_dict, load_hierarchy  # noqa: E402
from vrexposure.protocol import DataMessage, chunk_payload  # noqa: E402
from vrexposure.recorder import Recorder  # noqa: E402

ECG_RATE, ECG_CHUNK, POSE_RATE = 1000.0, 20, 90.0


def generate(path: Path, minutes: float) -> dict[str, int]:
    """A realistic long session: baseline, ten steps with SUDS, a pause, a STOP, alerts."""
    hierarchy = load_hierarchy(ROOT / "hierarchies" / "arachnophobia.yaml")
    meta = {"session_id": "bench", "patient_id": "P001", "hierarchy_id": hierarchy.id,
            "hierarchy": hierarchy_to_dict(hierarchy), "started_utc":
            "2026-11-25T10:00:00+00:00", "started_wall_s": 0.0, "software": "bench",
            "clock": "session clock", "config": {}}
    recorder = Recorder(path, meta, sync_interval_s=1e9)
    duration = minutes * 60.0
    rng = np.random.default_rng(1)
    n_steps = len(hierarchy.steps)
    baseline_s = 120.0
    step_s = (duration - baseline_s) / n_steps
    counts = {"ecg": 0, "pose": 0, "hr": 0, "rr": 0, "events": 0, "states": 0}
    seq = {"state": 0}

    def event(t: float, kind: str, **data: Any) -> None:
        recorder.record_event(t, {"type": "event", "kind": kind, "t_s": t, **data})
        counts["events"] += 1
        seq["state"] += 1
        recorder.record_state(t, {"seq": seq["state"], "phase": phase, "step_index": step,
                                  "scene": "spiders" if phase == "exposure" else "calm",
                                  "params": {}, "suds": [], "intensity": 0.0})
        counts["states"] += 1

    phase, step = "baseline", 0
    event(0.0, "baseline_started", duration_s=baseline_s)
    # scheduled therapy events, every few seconds
    schedule: list[tuple[float, str, dict[str, Any]]] = [
        (baseline_s, "baseline_completed", {"mean_bpm": 72.0, "sd_bpm": 2.0, "n_values": 120}),
        (baseline_s, "exposure_started", {"step_index": 0, "step_id": hierarchy.steps[0].id})]
    for k in range(n_steps):
        start = baseline_s + k * step_s
        if k:
            schedule.append((start, "step_changed", {"from": k - 1, "to": k,
                                                     "step_id": hierarchy.steps[k].id}))
        for j, t in enumerate(np.arange(start + 5.0, start + step_s - 1.0, 5.0)):
            if j % 6 == 0:
                peak = 30 + 6 * k
                value = max(0, int(peak * np.exp(-(t - start) / (step_s / 2))))
                schedule.append((float(t), "suds_recorded", {"value": value, "step_index": k,
                                                             "phase": "exposure"}))
            elif j % 6 == 3:
                schedule.append((float(t), "intensity_changed",
                                 {"intensity": round(float(rng.uniform(0, 1)), 2),
                                  "step_index": k}))
            else:
                schedule.append((float(t), "suds_requested", {"step_index": k}))
    mid = baseline_s + 4.5 * step_s
    schedule += [(mid, "paused", {"reason": "patient", "resume_to": "exposure"}),
                 (mid + 20, "resumed", {"to": "exposure"}),
                 (mid + 60, "alert", {"alert": "hr_above_baseline", "step_index": 4,
                                      "phase": "exposure"}),
                 (mid + 90, "stopped", {"reason": "STOP", "resume_to": "exposure"}),
                 (mid + 120, "resumed", {"to": "exposure"}),
                 (duration - 0.5, "ended", {"reason": "bench"})]
    schedule.sort(key=lambda e: e[0])
    next_event = 0
    pose_period = 1.0 / POSE_RATE
    chunk_s = ECG_CHUNK / ECG_RATE
    beat_phase = np.linspace(0, 2 * np.pi, ECG_CHUNK, endpoint=False)
    n_chunks = int(duration / chunk_s)
    next_pose, next_hr, last_beat = 0.0, 1.0, 0.0
    for c in range(n_chunks):
        t = c * chunk_s
        values = (np.sin(beat_phase + t) * 0.5 + rng.normal(0, 0.02, ECG_CHUNK))
        recorder.record(DataMessage("ecg.sim", c, t, chunk_payload(values, ECG_RATE, "mV")))
        counts["ecg"] += ECG_CHUNK
        while next_pose <= t + chunk_s:
            yaw = float(rng.normal(0, 10))
            recorder.record(DataMessage("pose.sim", counts["pose"], next_pose, {
                "pos": [0.0, 0.0, 1.2], "quat": [1.0, 0.0, 0.0, float(np.radians(yaw) / 2)],
                "look_angle_deg": abs(yaw), "looking_away": abs(yaw) > 30}))
            counts["pose"] += 1
            next_pose += pose_period
        if t >= next_hr:
            bpm = 72.0 + 10 * float(np.sin(t / 300))
            recorder.record(DataMessage("hr.sim", counts["hr"], t,
                                        {"bpm": round(bpm, 2), "quality": "good"}))
            rr = [60_000 / bpm] * round((t - last_beat) * bpm / 60) or [60_000 / bpm]
            recorder.record(DataMessage("rr.sim", counts["hr"], t, {"rr_ms": rr,
                                                                    "quality": "good"}))
            counts["hr"] += 1
            counts["rr"] += len(rr)
            last_beat = t
            next_hr += 1.0
        while next_event < len(schedule) and schedule[next_event][0] <= t:
            when, kind, data = schedule[next_event]
            if kind in ("exposure_started", "resumed"):
                phase = "exposure"
            elif kind == "paused":
                phase = "paused"
            elif kind == "stopped":
                phase = "safe"
            elif kind == "ended":
                phase = "ended"
            if kind in ("exposure_started", "step_changed"):
                step = int(data.get("step_index", data.get("to", 0)))
            event(when, kind, **data)
            next_event += 1
        if c % 500 == 0:
            recorder.flush(t)
    recorder.close(duration)
    return counts


def _subscribe(endpoints: Endpoints, expected: int, ready: Any, result: Any) -> None:
    """Child process: receive (and decode) everything; report count and last arrival time."""
    sys.path.insert(0, str(ROOT))
    from vrexposure.client import Subscriber

    sub = Subscriber(endpoints)
    ready.set()
    received = 0
    last = time.monotonic()
    while received < expected:
        message = sub.recv(5.0)
        if message is None:
            break
        received += 1
        last = time.monotonic()
    sub.close()
    result.put((received, last))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--keep", type=Path, default=None,
                        help="Keep the generated file and the report in this folder.")
    args = parser.parse_args()

    import pyxdf

    from vrexposure.replay import Replayer
    from vrexposure.report import write_report
    from vrexposure.xdf import read_xdf

    with tempfile.TemporaryDirectory(prefix="bench-replay-") as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"P001_bench_{args.minutes:g}min.xdf"
        path.unlink(missing_ok=True)
        started = time.perf_counter()
        counts = generate(path, args.minutes)
        size_mb = path.stat().st_size / 1e6
        print(f"generated {args.minutes:g} min in {time.perf_counter() - started:.1f} s: "
              f"{size_mb:.1f} MB, {counts}")

        started = time.perf_counter()
        recording = read_xdf(path)
        open_s = time.perf_counter() - started
        started = time.perf_counter()
        pyxdf.load_xdf(str(path))
        pyxdf_s = time.perf_counter() - started
        print(f"open: read_xdf {open_s:.2f} s, pyxdf.load_xdf {pyxdf_s:.2f} s "
              f"(ratio {open_s / pyxdf_s:.2f})")

        started = time.perf_counter()
        files = write_report(path, folder, recording=recording)
        report_s = time.perf_counter() - started
        print(f"report: {report_s:.2f} s ({files.html.stat().st_size / 1e3:.0f} kB HTML)")

        endpoints = free_endpoints()
        started = time.perf_counter()
        replayer = Replayer(recording, endpoints, as_fast_as_possible=True,
                            wait_for_subscriber=True, wait_timeout_s=30)
        setup_s = time.perf_counter() - started
        expected = replayer.schedule.n_messages
        samples = replayer.schedule.sample_count()
        ctx = mp.get_context("spawn")
        ready, result = ctx.Event(), ctx.Queue()
        child = ctx.Process(target=_subscribe, args=(endpoints, expected, ready, result))
        child.start()
        ready.wait(30)
        replayer.start()
        received, last = result.get(timeout=600)
        child.join(30)
        replayer.wait(30)
        replayer.close()
        assert replayer.started_at is not None
        replay_s = last - replayer.started_at
        per_s = samples / replay_s
        print(f"replay: {expected:,} messages ({samples:,} samples) in {replay_s:.2f} s "
              f"after {setup_s:.2f} s to set up; received {received:,} "
              f"({'none lost' if received >= expected else 'LOST MESSAGES'}); "
              f"{per_s:,.0f} samples/s, {expected / replay_s:,.0f} messages/s "
              "(state heartbeats not counted)")
        print(f"open + report: {open_s + report_s:.2f} s (goal < 10 s); open vs pyxdf: "
              f"{open_s / pyxdf_s:.2f}× (goal ≤ 1)")
    print(json.dumps({"open_s": round(open_s, 3), "replay_samples_per_s": round(per_s),
                      "report_s": round(report_s, 3), "pyxdf_load_s": round(pyxdf_s, 3)}))


if __name__ == "__main__":
    main()
