"""A session summary computed from a recording alone (pure apart from reading the file)."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .host import events_from_recording
from .xdf import XdfFile, read_xdf


@dataclass
class StepSummary:
    step_index: int
    step_id: str
    expected_suds: int
    time_in_step_s: float = 0.0
    suds: list[int] = field(default_factory=list)
    hr_mean_bpm: float | None = None


@dataclass
class SessionSummary:
    path: str
    patient_id: str
    hierarchy_id: str
    duration_s: float
    baseline_mean_bpm: float | None
    baseline_sd_bpm: float | None
    steps: list[StepSummary]
    #: 0-based index of the highest step reached (``to_dict`` writes it 1-based).
    highest_step: int
    stops: int
    alerts: int
    samples: dict[str, int]
    truncated: bool
    #: The renderer's last frame statistics (None when no renderer took part).
    renderer: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path, "patient_id": self.patient_id, "hierarchy_id": self.hierarchy_id,
            "duration_s": round(self.duration_s, 2),
            "baseline_mean_bpm": self.baseline_mean_bpm, "baseline_sd_bpm": self.baseline_sd_bpm,
            # 1-based, as a person counts steps (the dataclass keeps the 0-based index)
            "highest_step": self.highest_step + 1, "stops": self.stops, "alerts": self.alerts,
            "samples": self.samples, "truncated": self.truncated, "renderer": self.renderer,
            "steps": [{"step_index": s.step_index, "step_id": s.step_id,
                       "expected_suds": s.expected_suds,
                       "time_in_step_s": round(s.time_in_step_s, 2), "suds": s.suds,
                       "hr_mean_bpm": None if s.hr_mean_bpm is None
                       else round(s.hr_mean_bpm, 1)} for s in self.steps],
        }

    def text(self) -> str:
        lines = [f"Session of patient {self.patient_id}, hierarchy {self.hierarchy_id}: "
                 f"{self.duration_s:.0f} s, highest step reached "
                 f"{self.highest_step + 1}, STOP used {self.stops}x, alerts {self.alerts}"]
        if self.baseline_mean_bpm is not None:
            lines.append(f"Baseline heart rate {self.baseline_mean_bpm:.1f} ± "
                         f"{self.baseline_sd_bpm or 0:.1f} bpm")
        else:
            lines.append("No baseline heart rate")
        lines.append(f"{'step':<24}{'exp.':>5}{'time s':>8}{'HR bpm':>8}{'vs base':>9}  SUDS")
        for s in self.steps:
            hr = "" if s.hr_mean_bpm is None else f"{s.hr_mean_bpm:.1f}"
            delta = ("" if s.hr_mean_bpm is None or self.baseline_mean_bpm is None
                     else f"{s.hr_mean_bpm - self.baseline_mean_bpm:+.1f}")
            lines.append(f"{s.step_index + 1:>2} {s.step_id:<21}{s.expected_suds:>5}"
                         f"{s.time_in_step_s:>8.1f}{hr:>8}{delta:>9}  "
                         f"{' '.join(map(str, s.suds))}")
        if self.renderer:
            lines.append(f"Renderer: {self.renderer.get('fps', 0):.0f} frames/s, frame time "
                         f"p50 {self.renderer.get('frame_ms_p50', 0):.1f} ms on "
                         f"{self.renderer.get('pipe', '?')}")
        lines.append("Samples: " + ", ".join(f"{k} {v}" for k, v in sorted(self.samples.items())))
        lines.append(f"Recording: {self.path}" + (" (cut short)" if self.truncated else ""))
        return "\n".join(lines)


def summarize(path: Path, recording: XdfFile | None = None) -> SessionSummary:
    recording = recording or read_xdf(path)
    metadata = json.loads(recording.header.get("vrexposure", "{}"))
    hierarchy = metadata.get("hierarchy", {})
    steps_meta = hierarchy.get("steps", [])
    events = events_from_recording(recording)
    end_t = max((float(s.timestamps[-1]) for s in recording.streams.values()
                 if len(s.timestamps)), default=0.0)
    # Intervals of exposure per step: [start, end) on the session clock.
    intervals: list[tuple[int, float, float]] = []
    current: tuple[int, float] | None = None
    in_exposure = False
    baseline_mean = baseline_sd = None
    suds: dict[int, list[int]] = defaultdict(list)
    stops = alerts = 0
    highest = 0
    for e in events:
        kind, t = e["kind"], float(e["t_s"])
        if kind == "baseline_completed":
            baseline_mean, baseline_sd = e.get("mean_bpm"), e.get("sd_bpm")
        elif kind == "exposure_started":
            current, in_exposure = (int(e["step_index"]), t), True
        elif kind == "step_changed" and current is not None:
            if in_exposure:
                intervals.append((current[0], current[1], t))
            current = (int(e["to"]), t)
        elif kind in ("paused", "stopped", "ended") and current is not None and in_exposure:
            intervals.append((current[0], current[1], t))
            in_exposure = False
        elif kind == "resumed" and current is not None and e.get("to") == "exposure":
            current, in_exposure = (current[0], t), True
        elif kind == "suds_recorded":
            suds[int(e["step_index"])].append(int(e["value"]))
        if kind == "stopped":
            stops += 1
        elif kind == "alert":
            alerts += 1
        if current is not None:
            highest = max(highest, current[0])
    if current is not None and in_exposure:
        intervals.append((current[0], current[1], end_t))
    hr_t = hr_v = None
    for stream in recording.streams.values():
        if stream.type == "HeartRate" and len(stream.timestamps):
            good = stream.values[:, 1] == 0
            hr_t, hr_v = stream.timestamps[good], stream.values[good, 0]
            break
    visited = sorted({i for i, _, _ in intervals} | set(suds))
    step_summaries = []
    for index in visited:
        meta = steps_meta[index] if index < len(steps_meta) else {}
        summary = StepSummary(index, str(meta.get("id", index)),
                              int(meta.get("expected_suds", 0)), suds=suds.get(index, []))
        spans = [(a, b) for i, a, b in intervals if i == index]
        summary.time_in_step_s = sum(b - a for a, b in spans)
        if hr_t is not None and hr_v is not None and spans:
            mask = np.zeros(len(hr_t), dtype=bool)
            for a, b in spans:
                mask |= (hr_t >= a) & (hr_t < b)
            if mask.any():
                summary.hr_mean_bpm = float(hr_v[mask].mean())
        step_summaries.append(summary)
    samples = {s.name: len(s.timestamps) for s in recording.streams.values()}
    renderer = None
    for stream in recording.streams.values():
        if stream.name.startswith("render.") and stream.values:
            stats = [json.loads(v) for v in stream.values]
            frames = [s for s in stats if "fps" in s]
            renderer = frames[-1] if frames else None
    return SessionSummary(str(path), str(metadata.get("patient_id", "")),
                          str(metadata.get("hierarchy_id", "")), end_t, baseline_mean,
                          baseline_sd, step_summaries, highest, stops, alerts, samples,
                          recording.truncated, renderer)
