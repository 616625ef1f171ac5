"""Session reports and progress across sessions, computed from recordings alone.

:func:`compute_report` folds a recording's event records into a timeline
(phase, step and intensity over session time) and derives, per hierarchy step:
time in step (exposure only), SUDS peak/end/% drop and time to habituation,
heart rate mean/peak against the baseline, expectancy and outcome, alerts, STOP
uses, intensity and the look-away share from the head pose. :func:`write_report`
writes a self-contained HTML page (matplotlib figures embedded as PNG) and a
JSON file with the same numbers. :func:`progress_report` does the same across a
patient's sessions in a folder.

Definitions (also printed in the HTML):

* time in step: session time in phase ``exposure`` at that step (pauses, the safe
  place after STOP and any recording outage excluded), summed over visits;
* session length: from the start to the ``ended`` record (sensors may record on);
* SUDS: ratings given while at the step, outside the baseline; peak = highest,
  end = last, drop = (peak − end) / peak, with at least two ratings;
* habituation: exposure time at the step until a rating fell to (1 − N %) of the
  visit's peak so far, with at least two ratings (N: the hierarchy's advance rule,
  50 % when it has none) — the rule the session host uses to suggest advancing;
* heart rate: good-quality values of the heart-rate stream the host monitored
  (the derived one rather than a device's own figure), during exposure at the step;
* look-away share: share of head-pose samples during exposure at the step that
  were flagged ``looking_away`` (samples without a stimulus angle are left out);
  ``pose.head`` (the renderer's head) is used when recorded, else ``pose.sim``;
* trusted heart rate: share of the heart-rate values (one per analysis window) during
  exposure at the step whose quality was good;
* baseline band: mean ± the alert margin max(rise_bpm, rise_sd × SD), its top the alert
  line — the band the therapist panel draws;
* skipped step: below the highest step reached and never shown.

Step numbers a person reads (HTML, log, ``highest_step``, ``step``) are 1-based; fields
named ``*_index`` are 0-based. The log shows every event as a sentence.
"""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import math
import os
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from . import __version__
from .replay import parse_json_records
from .xdf import XdfFile, XdfStream, read_xdf

log = logging.getLogger(__name__)

SCHEMA = "vrexposure-report/1"
PROGRESS_SCHEMA = "vrexposure-progress/1"
PHASES = ("idle", "baseline", "exposure", "paused", "safe", "ended", "outage")
DEFAULT_DROP_PCT = 50.0
Progress = Callable[[str], None]


# --------------------------------------------------------------------------- reading


def _xml_dict(element: ET.Element) -> Any:
    children = list(element)
    if not children:
        return element.text or ""
    out: dict[str, Any] = {}
    for child in children:
        out[child.tag] = _xml_dict(child)
    return out


def read_header(path: Path) -> dict[str, Any]:
    """The file header of an XDF file (its first chunk) without reading the rest."""
    with open(path, "rb") as handle:
        head = handle.read(4 + 9 + 2)
        if head[:4] != b"XDF:":
            raise ValueError(f"{path}: not an XDF file")
        width = head[4]
        if width not in (1, 4, 8):
            raise ValueError(f"{path}: damaged file header")
        length = int.from_bytes(head[5:5 + width], "little")
        handle.seek(4 + 1 + width)
        raw = handle.read(length)
    if len(raw) < length or int.from_bytes(raw[:2], "little") != 1:
        raise ValueError(f"{path}: damaged file header")
    try:
        parsed = _xml_dict(ET.fromstring(raw[2:].decode("utf-8")))
    except (ET.ParseError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: damaged file header") from exc
    return parsed if isinstance(parsed, dict) else {}


def recording_metadata(header: Mapping[str, Any]) -> dict[str, Any]:
    try:
        meta = json.loads(str(header.get("vrexposure", "{}")))
    except json.JSONDecodeError:
        return {}
    return meta if isinstance(meta, dict) else {}


def json_records(stream: XdfStream) -> list[dict[str, Any]]:
    """The JSON records of a marker stream, each with its time as ``t_s`` if it has none."""
    records = []
    for when, record in parse_json_records(stream):
        record.setdefault("t_s", when)
        records.append(record)
    return records


def _stream(recording: XdfFile, name: str) -> XdfStream | None:
    try:
        return recording.by_name(name)
    except KeyError:
        return None


def heart_rate_stream(recording: XdfFile) -> XdfStream | None:
    """The heart-rate stream the host monitored: not a device's own figure, most good values."""
    candidates = [s for s in recording.streams.values()
                  if s.type == "HeartRate" and len(s.timestamps)
                  and s.info.get("channel_format") != "string"]
    if not candidates:
        return None
    preferred = [s for s in candidates if not s.name.endswith(".device")] or candidates
    return max(preferred, key=lambda s: int(np.sum(np.asarray(s.values)[:, 1] == 0)))


def pose_stream(recording: XdfFile) -> XdfStream | None:
    """``pose.head`` when recorded (the renderer's head), else ``pose.sim``, else any pose."""
    poses = {s.name: s for s in recording.streams.values()
             if s.type == "HeadPose" and len(s.timestamps)}
    for name in ("pose.head", "pose.sim"):
        if name in poses:
            return poses[name]
    return next(iter(poses.values()), None)


# --------------------------------------------------------------------------- the timeline


@dataclass
class Timeline:
    """Phase, step and intensity over session time: contiguous segments."""

    starts: npt.NDArray[np.float64]
    ends: npt.NDArray[np.float64]
    phases: list[str]
    steps: npt.NDArray[np.int64]  # -1 before the first exposure
    intensity: npt.NDArray[np.float64]
    #: (step, start) of each visit to a step: exposure_started, step_changed
    visits: list[tuple[int, float]]
    end_s: float

    def segment_of(self, t: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
        """Index of the segment holding each time (-1 before the first)."""
        index = np.searchsorted(self.starts, t, side="right") - 1
        return np.asarray(index, dtype=np.int64)

    def mask(self, t: npt.NDArray[np.float64], phase: str,
             step: int | None = None) -> npt.NDArray[np.bool_]:
        """Samples at times ``t`` that fall in ``phase`` (and at ``step``)."""
        seg = self.segment_of(t)
        valid = (seg >= 0) & (t < self.end_s + 1e-9)
        seg = np.where(valid, seg, 0)
        phase_ok = np.array([p == phase for p in self.phases], dtype=bool)
        out = valid & phase_ok[seg] if len(self.phases) else np.zeros(len(t), bool)
        if step is not None and len(self.phases):
            out &= self.steps[seg] == step
        return out

    def duration(self, phase: str, step: int | None = None, start: float = -math.inf,
                 end: float = math.inf) -> float:
        """Time in ``phase`` (at ``step``) within [start, end)."""
        total = 0.0
        for a, b, p, s in zip(self.starts, self.ends, self.phases, self.steps, strict=True):
            if p != phase or (step is not None and s != step):
                continue
            total += max(0.0, min(b, end) - max(a, start))
        return total

    def bands(self, phase: str) -> list[tuple[float, float, int]]:
        """Merged (start, end, step) runs of ``phase``."""
        out: list[tuple[float, float, int]] = []
        for a, b, p, s in zip(self.starts, self.ends, self.phases, self.steps, strict=True):
            if p != phase:
                continue
            if out and out[-1][2] == s and abs(out[-1][1] - a) < 1e-9:
                out[-1] = (out[-1][0], float(b), int(s))
            else:
                out.append((float(a), float(b), int(s)))
        return out


def fold_timeline(events: Sequence[Mapping[str, Any]], end_s: float,
                  outages: Sequence[tuple[float, float]] = ()) -> Timeline:
    """The timeline of the state-machine ``events`` (in order) up to ``end_s``.

    ``outages``: (from, to) periods when the host was down (recording resumed).
    """
    phase, step, started, intensity = "idle", 0, False, 0.0
    cur = 0.0
    rows: list[tuple[float, float, str, int, float]] = []
    visits: list[tuple[int, float]] = []
    pending_outages = sorted(outages)

    def cut(t: float) -> None:
        nonlocal cur
        t = min(t, end_s)
        if t > cur:
            rows.append((cur, t, phase, step if started else -1, intensity))
            cur = t

    for event in events:
        kind, t = str(event.get("kind")), float(event.get("t_s", 0.0))
        while pending_outages and pending_outages[0][1] <= t:
            a, b = pending_outages.pop(0)
            cut(a)
            saved, phase = phase, "outage"
            cut(b)
            phase = saved
        if kind not in ("baseline_started", "exposure_started", "step_changed",
                        "intensity_changed", "paused", "resumed", "stopped", "ended"):
            continue
        cut(t)
        if kind == "baseline_started":
            phase = "baseline"
        elif kind == "exposure_started":
            phase, step, started, intensity = "exposure", int(event["step_index"]), True, 0.0
            visits.append((step, t))
        elif kind == "step_changed":
            step, intensity = int(event["to"]), 0.0
            visits.append((step, t))
        elif kind == "intensity_changed":
            intensity = float(event["intensity"])
        elif kind == "paused":
            phase = "paused"
        elif kind == "resumed":
            phase = str(event.get("to", "exposure"))
        elif kind == "stopped":
            phase = "safe"
        elif kind == "ended":
            phase = "ended"
    for a, b in pending_outages:
        cut(a)
        saved, phase = phase, "outage"
        cut(b)
        phase = saved
    cut(end_s)
    if not rows:
        rows.append((0.0, max(end_s, 0.0), phase, -1, 0.0))
    return Timeline(np.array([r[0] for r in rows]), np.array([r[1] for r in rows]),
                    [r[2] for r in rows], np.array([r[3] for r in rows], dtype=np.int64),
                    np.array([r[4] for r in rows]), visits, end_s)


# --------------------------------------------------------------------------- numbers


@dataclass
class Expectancy:
    t_s: float
    outcome: str
    likelihood_pct: int
    happened: bool | None = None


@dataclass
class StepReport:
    step_index: int
    step_id: str
    label: str
    expected_suds: int | None
    visits: int = 0
    time_in_step_s: float = 0.0
    suds: list[tuple[float, int]] = field(default_factory=list)
    suds_start: int | None = None
    suds_peak: int | None = None
    suds_end: int | None = None
    suds_drop_pct: float | None = None
    habituation_s: float | None = None
    hr_mean_bpm: float | None = None
    hr_peak_bpm: float | None = None
    hr_mean_vs_baseline_bpm: float | None = None
    hr_peak_vs_baseline_bpm: float | None = None
    hr_values: int = 0
    look_away_share: float | None = None
    pose_samples: int = 0
    intensity_max: float | None = None
    expectancies: list[Expectancy] = field(default_factory=list)
    alerts: list[str] = field(default_factory=list)
    stops: int = 0
    pauses: int = 0
    #: Never visited although a later step was reached (a jump over it).
    skipped: bool = False
    #: Exposure time at each intensity (intensity → seconds), for dose analyses.
    intensity_time_s: dict[float, float] = field(default_factory=dict)
    #: Heart-rate values (one per analysis window) during exposure at the step, any quality.
    hr_windows: int = 0
    #: Share of those windows whose heart rate was trusted (quality good).
    hr_trusted_share: float | None = None


@dataclass
class SessionReport:
    path: str
    truncated: bool
    session_id: str
    patient_id: str
    hierarchy_id: str
    hierarchy_title: str
    started_utc: str
    software: str
    duration_s: float
    baseline: dict[str, Any]
    steps: list[StepReport]
    n_steps: int
    highest_step: int | None
    ended: bool
    hierarchy_complete: bool
    totals: dict[str, Any]
    log: list[dict[str, Any]]
    streams: dict[str, int]
    hr_stream: str | None
    pose_stream: str | None
    drop_pct_rule: float
    timeline: Timeline
    hr_t: npt.NDArray[np.float64]
    hr_bpm: npt.NDArray[np.float64]
    hr_quality: npt.NDArray[np.float64]
    suds_all: list[tuple[float, int, int, str]]  # t, step (-1 baseline), value, phase
    steps_meta: list[dict[str, Any]]
    #: Time of the ``ended`` record, None when the session has none.
    ended_s: float | None = None
    #: Last sample of the recording (may follow the end: sensors keep streaming).
    recorded_s: float = 0.0
    #: Recording sources admitted/rejected by the host and data gaps it counted.
    sources: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON summary: the same numbers as the HTML report."""
        steps = []
        for s in self.steps:
            d = {"step": s.step_index + 1, **asdict(s)}
            d["suds"] = [{"t_s": _r(t, 3), "value": v} for t, v in s.suds]
            for key in ("time_in_step_s", "habituation_s", "hr_mean_bpm", "hr_peak_bpm",
                        "hr_mean_vs_baseline_bpm", "hr_peak_vs_baseline_bpm", "suds_drop_pct",
                        "look_away_share", "intensity_max", "hr_trusted_share"):
                d[key] = _r(d[key], 4 if key.endswith("share") else 2)
            d["suds_drop_note"] = _drop_note(s)
            d["habituation_note"] = _habituation_note(s, self.drop_pct_rule)
            d["intensity_time_s"] = [{"intensity": _r(k, 3), "time_s": _r(v, 2)}
                                     for k, v in sorted(s.intensity_time_s.items())]
            d["expectancies"] = [{"t_s": _r(e.t_s, 3), "outcome": e.outcome,
                                  "likelihood_pct": e.likelihood_pct, "happened": e.happened}
                                 for e in s.expectancies]
            steps.append(d)
        return {
            "schema": SCHEMA,
            "generated_by": f"vrexposure {__version__}",
            "recording": {"path": self.path, "cut_short": self.truncated,
                          "streams": self.streams, "hr_stream": self.hr_stream,
                          "pose_stream": self.pose_stream},
            "session": {"session_id": self.session_id, "patient_id": self.patient_id,
                        "hierarchy_id": self.hierarchy_id,
                        "hierarchy_title": self.hierarchy_title,
                        "started_utc": self.started_utc, "software": self.software,
                        "duration_s": _r(self.duration_s, 2),
                        "ended_s": _r(self.ended_s, 2), "recorded_s": _r(self.recorded_s, 2),
                        "n_steps": self.n_steps,
                        # 1-based, as a person counts steps (highest_step_index: 0-based)
                        "highest_step": None if self.highest_step is None
                        else self.highest_step + 1,
                        "highest_step_index": self.highest_step,
                        "highest_step_id": None if self.highest_step is None
                        else self._step_id(self.highest_step),
                        "skipped_steps": [s.step_index + 1 for s in self.steps if s.skipped],
                        "ended": self.ended, "hierarchy_complete": self.hierarchy_complete,
                        "habituation_drop_pct": self.drop_pct_rule},
            "baseline": self.baseline,
            "totals": self.totals,
            "steps": steps,
            "sources": self.sources,
            "log": self.log,
        }

    def _step_id(self, index: int) -> str:
        if 0 <= index < len(self.steps_meta):
            return str(self.steps_meta[index].get("id", index))
        return str(index)

    def text(self) -> str:
        """A short plain-text summary for the terminal."""
        lines = [f"Patient {self.patient_id}, {self.hierarchy_title or self.hierarchy_id}, "
                 f"{_clock(self.duration_s)}"
                 + (" — recording cut short" if self.truncated else "")]
        base = self.baseline
        if base.get("mean_bpm") is not None:
            lines.append(f"Baseline heart rate {base['mean_bpm']:.1f} ± "
                         f"{base.get('sd_bpm') or 0:.1f} bpm")
        else:
            lines.append("No baseline heart rate")
        lines.append(f"{'step':<22}{'time':>7}{'SUDS peak→end':>15}{'drop':>7}"
                     f"{'HR mean':>9}{'Δbase':>7}{'away':>6}{'STOP':>5}")
        for s in self.steps:
            if s.skipped:
                lines.append(f"{s.step_index + 1:>2} {s.step_id[:19]:<19}  skipped")
                continue
            suds = "—" if s.suds_peak is None else f"{s.suds_peak}→{s.suds_end}"
            lines.append(
                f"{s.step_index + 1:>2} {s.step_id[:19]:<19}{_clock(s.time_in_step_s):>7}"
                f"{suds:>15}{_fmt(s.suds_drop_pct, '{:.0f}%') if len(s.suds) > 1 else 'n/a':>7}"
                f"{_fmt(s.hr_mean_bpm, '{:.1f}'):>9}"
                f"{_fmt(s.hr_mean_vs_baseline_bpm, '{:+.1f}'):>7}"
                f"{_fmt(_pct(s.look_away_share), '{:.0f}%'):>6}"
                f"{s.stops:>5}")
        t = self.totals
        highest = "—" if self.highest_step is None else str(self.highest_step + 1)
        lines.append(f"Highest step {highest} of {self.n_steps}; STOP used {t['stops']}×; "
                     f"alerts {t['alerts']}; "
                     f"pauses {t['pauses']}")
        return "\n".join(lines)


def _r(value: Any, digits: int) -> Any:
    if value is None or not isinstance(value, int | float) or isinstance(value, bool):
        return value
    if not math.isfinite(value):
        return None
    return round(float(value), digits)


def _pct(share: float | None) -> float | None:
    return None if share is None else 100.0 * share


def _fmt(value: float | None, pattern: str) -> str:
    return "—" if value is None else pattern.format(value)


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = max(0.0, float(seconds))
    if seconds >= 3600:
        return f"{int(seconds // 3600)}:{int(seconds % 3600 // 60):02d}:{int(seconds % 60):02d}"
    return f"{int(seconds // 60)}:{seconds % 60:04.1f}" if seconds < 60 else \
        f"{int(seconds // 60)}:{int(seconds % 60):02d}"


def _outages(recording: XdfFile, events: Sequence[Mapping[str, Any]]
             ) -> list[tuple[float, float]]:
    """(last data before, resume time) for each ``session_resumed`` record."""
    out = []
    for event in events:
        if event.get("kind") != "session_resumed":
            continue
        t = float(event.get("t_s", 0.0))
        before = [float(s.timestamps[s.timestamps < t][-1]) for s in recording.streams.values()
                  if len(s.timestamps) and s.timestamps[0] < t]
        if before and max(before) < t:
            out.append((max(before), t))
    return out


def compute_report(recording: XdfFile, path: Path | str = "") -> SessionReport:
    """Every number of the session report, from the recording alone."""
    meta = recording_metadata(recording.header)
    hierarchy = meta.get("hierarchy") or {}
    steps_meta: list[dict[str, Any]] = [s for s in hierarchy.get("steps", [])
                                        if isinstance(s, dict)]
    rule = hierarchy.get("advance_rule") or {}
    drop_pct = rule.get("suds_drop_pct")
    drop_pct = float(drop_pct) if isinstance(drop_pct, int | float) else DEFAULT_DROP_PCT
    alerts_cfg = hierarchy.get("alerts") or {}
    end_s = max((float(s.timestamps[-1]) for s in recording.streams.values()
                 if len(s.timestamps)), default=0.0)

    events_stream = _stream(recording, "events")
    records = json_records(events_stream) if events_stream is not None else []
    # Events, plus the host's admission and data-gap records (read as events of that kind).
    events = [r if r.get("type") == "event" else {**r, "kind": r.get("kind") or r["type"]}
              for r in records if r.get("type") in ("event", "admission", "data_gap")]
    timeline = fold_timeline(events, end_s, _outages(recording, events))

    # --- walk the events once for everything attributed to a step --------------------
    n_steps = len(steps_meta)
    step_reports: dict[int, StepReport] = {}

    def step_report(index: int) -> StepReport:
        if index not in step_reports:
            m = steps_meta[index] if 0 <= index < n_steps else {}
            expected = m.get("expected_suds")
            step_reports[index] = StepReport(index, str(m.get("id", index)),
                                             str(m.get("label", "")),
                                             int(expected) if isinstance(expected, int | float)
                                             else None)
        return step_reports[index]

    expectancies: list[tuple[int, Expectancy]] = []
    baseline: dict[str, Any] = {"mean_bpm": None, "sd_bpm": None, "n_values": 0,
                                "threshold_bpm": None, "duration_s": None, "warning": None,
                                "suds": [], "alerts": [], "stops": 0, "source": None}
    log_rows: list[dict[str, Any]] = []
    suds_all: list[tuple[float, int, int, str]] = []
    phase, step, started = "idle", 0, False
    ended = complete = False
    ended_s: float | None = None
    sources: dict[str, Any] = {"admitted": [], "rejected": [], "gaps": []}
    highest: int | None = None
    counts: dict[str, Any] = {"stops": 0, "alerts": 0, "pauses": 0, "markers": 0,
                              "controller_lost": 0, "suggestions": 0, "suds": 0,
                              "resumed_after_crash": 0}
    for e in events:
        kind, t = str(e.get("kind")), float(e.get("t_s", 0.0))
        where = step if started else None
        if kind == "baseline_started":
            phase = "baseline"
        elif kind == "baseline_completed":
            baseline.update({"mean_bpm": e.get("mean_bpm"), "sd_bpm": e.get("sd_bpm"),
                             "n_values": int(e.get("n_values") or 0),
                             "warning": e.get("warning"), "source": "session host"})
        elif kind == "exposure_started":
            phase, step, started = "exposure", int(e["step_index"]), True
            step_report(step).visits += 1
        elif kind == "step_changed":
            step = int(e["to"])
            step_report(step).visits += 1
        elif kind == "paused":
            phase = "paused"
            counts["pauses"] += 1
            if where is not None:
                step_report(where).pauses += 1
        elif kind == "resumed":
            phase = str(e.get("to", "exposure"))
        elif kind == "stopped":
            counts["stops"] += 1
            if where is not None:
                step_report(where).stops += 1
            else:
                baseline["stops"] += 1
            phase = "safe"
        elif kind == "ended":
            ended, phase = True, "ended"
            ended_s = t if ended_s is None else ended_s
        elif kind in ("source_admitted", "source_rejected"):
            entry = {k: v for k, v in e.items() if k not in ("type", "kind")}
            entry["t_s"] = _r(t, 3)
            sources["admitted" if kind == "source_admitted" else "rejected"].append(entry)
        elif kind == "data_gap":
            sources["gaps"].append({"t_s": _r(t, 3), "source": str(e.get("source", "")),
                                    "count": _int_or_none(e.get("count")),
                                    "from_seq": _int_or_none(e.get("from_seq")),
                                    "to_seq": _int_or_none(e.get("to_seq"))})
        elif kind == "suds_recorded":
            counts["suds"] += 1
            value, rated_phase = int(e["value"]), str(e.get("phase", phase))
            index = int(e.get("step_index", step))
            if rated_phase == "baseline" or not started:
                baseline["suds"].append({"t_s": _r(t, 3), "value": value})
                suds_all.append((t, -1, value, rated_phase))
            else:
                step_report(index).suds.append((t, value))
                suds_all.append((t, index, value, rated_phase))
        elif kind == "expectancy_recorded":
            index = int(e.get("step_index", step))
            expectancy = Expectancy(t, str(e.get("outcome", "")),
                                    int(e.get("likelihood_pct", 0)))
            expectancies.append((index, expectancy))
            step_report(index).expectancies.append(expectancy)
        elif kind == "expectancy_outcome":
            position = int(e.get("expectancy_index", -1))
            if 0 <= position < len(expectancies):
                expectancies[position][1].happened = bool(e.get("happened"))
        elif kind == "alert":
            counts["alerts"] += 1
            name = str(e.get("alert", "alert"))
            if str(e.get("phase")) == "baseline" or not started:
                baseline["alerts"].append(name)
            else:
                step_report(int(e.get("step_index", step))).alerts.append(name)
        elif kind == "marker":
            counts["markers"] += 1
        elif kind == "controller_lost":
            counts["controller_lost"] += 1
        elif kind == "advance_suggested":
            counts["suggestions"] += 1
            complete = complete or bool(e.get("hierarchy_complete"))
        elif kind == "session_resumed":
            counts["resumed_after_crash"] += 1
        if started:
            highest = step if highest is None else max(highest, step)
        # every event is logged (one this version does not know, in words)
        log_rows.append(_log_row(e, step if started else None, steps_meta, alerts_cfg))
    log_rows = _fold_suds_requests(log_rows)
    # a step below the highest one that was never visited was jumped over
    for index in range(highest or 0):
        if index not in step_reports or (step_reports[index].visits == 0
                                          and not step_reports[index].suds):
            step_report(index).skipped = True

    # --- baseline --------------------------------------------------------------------
    hr = heart_rate_stream(recording)
    if hr is not None:
        hr_values = np.asarray(hr.values, dtype=np.float64)
        hr_t, hr_bpm, hr_q = hr.timestamps, hr_values[:, 0], hr_values[:, 1]
    else:
        hr_t = hr_bpm = hr_q = np.empty(0)
    good = hr_q == 0
    baseline_s = timeline.duration("baseline")
    baseline["duration_s"] = _r(baseline_s, 2) if baseline_s > 0 else None
    if baseline["mean_bpm"] is None and baseline["source"] is None and len(hr_t):
        in_baseline = timeline.mask(hr_t, "baseline") & good
        if in_baseline.sum() >= 2:  # cut short during the baseline: compute it ourselves
            baseline.update({"mean_bpm": float(hr_bpm[in_baseline].mean()),
                             "sd_bpm": float(hr_bpm[in_baseline].std(ddof=1)),
                             "n_values": int(in_baseline.sum()),
                             "source": "computed from the recording (baseline not completed)"})
    base_mean = baseline["mean_bpm"]
    if base_mean is not None:
        sd = float(baseline.get("sd_bpm") or 0.0)
        threshold = alert_line_bpm(float(base_mean), sd, alerts_cfg)
        baseline["threshold_bpm"] = _r(threshold, 2)
        # the band drawn around the baseline, the same on the panel: mean ± the alert margin
        baseline["band_bpm"] = [_r(2 * float(base_mean) - threshold, 2), _r(threshold, 2)]
        baseline["mean_bpm"] = _r(float(base_mean), 2)
        baseline["sd_bpm"] = _r(sd, 2)

    # --- per step numbers from the timeline and the samples ---------------------------
    pose = pose_stream(recording)
    if pose is not None:
        pose_values = np.asarray(pose.values, dtype=np.float64)
        pose_t, look_angle, away = pose.timestamps, pose_values[:, 7], pose_values[:, 8]
    else:
        pose_t = look_angle = away = np.empty(0)
    for a, b, p, s in zip(timeline.starts, timeline.ends, timeline.phases, timeline.steps,
                          strict=True):
        if p == "exposure" and s >= 0 and b > a:
            step_report(int(s))
    for index, report in step_reports.items():
        report.time_in_step_s = timeline.duration("exposure", index)
        seg_mask = [(p == "exposure" and s == index)
                    for p, s in zip(timeline.phases, timeline.steps, strict=True)]
        intensities = timeline.intensity[np.array(seg_mask, dtype=bool)] \
            if len(seg_mask) else np.empty(0)
        report.intensity_max = float(intensities.max()) if len(intensities) else None
        for a, b, p, s, level in zip(timeline.starts, timeline.ends, timeline.phases,
                                     timeline.steps, timeline.intensity, strict=True):
            if p == "exposure" and s == index and b > a:
                key = round(float(level), 3)
                report.intensity_time_s[key] = report.intensity_time_s.get(key, 0.0) \
                    + float(b - a)
        if report.suds:
            values = [v for _, v in report.suds]
            report.suds_start, report.suds_peak, report.suds_end = \
                values[0], max(values), values[-1]
            if report.suds_peak > 0 and len(values) > 1:  # one rating has no drop
                report.suds_drop_pct = 100.0 * (report.suds_peak - report.suds_end) \
                    / report.suds_peak
        report.habituation_s = _habituation(timeline, index, report.suds, drop_pct)
        if len(hr_t):
            in_step = timeline.mask(hr_t, "exposure", index)
            report.hr_windows = int(in_step.sum())
            if report.hr_windows:
                report.hr_trusted_share = float(good[in_step].mean())
            m = in_step & good
            report.hr_values = int(m.sum())
            if m.any():
                report.hr_mean_bpm = float(hr_bpm[m].mean())
                report.hr_peak_bpm = float(hr_bpm[m].max())
                if base_mean is not None:
                    report.hr_mean_vs_baseline_bpm = report.hr_mean_bpm - float(base_mean)
                    report.hr_peak_vs_baseline_bpm = report.hr_peak_bpm - float(base_mean)
        if len(pose_t):
            m = timeline.mask(pose_t, "exposure", index) & np.isfinite(look_angle)
            report.pose_samples = int(m.sum())
            if m.any():
                report.look_away_share = float(np.mean(away[m] > 0.5))
    counts["exposure_s"] = _r(timeline.duration("exposure"), 2)
    counts["paused_s"] = _r(timeline.duration("paused"), 2)
    counts["safe_s"] = _r(timeline.duration("safe"), 2)
    counts["outage_s"] = _r(timeline.duration("outage"), 2)
    counts["hr_good_share"] = _r(float(good.mean()), 4) if len(hr_q) else None
    streams = {s.name: len(s.timestamps) for s in recording.streams.values()}
    return SessionReport(
        path=str(path), truncated=recording.truncated,
        session_id=str(meta.get("session_id", "")), patient_id=str(meta.get("patient_id", "")),
        hierarchy_id=str(meta.get("hierarchy_id", hierarchy.get("id", ""))),
        hierarchy_title=str(hierarchy.get("title", "")),
        started_utc=str(meta.get("started_utc", "")), software=str(meta.get("software", "")),
        duration_s=ended_s if ended_s is not None else end_s, baseline=baseline,
        steps=[step_reports[i] for i in sorted(step_reports)], n_steps=n_steps,
        highest_step=highest, ended=ended, hierarchy_complete=complete, totals=counts,
        log=log_rows, streams=streams, hr_stream=None if hr is None else hr.name,
        pose_stream=None if pose is None else pose.name, drop_pct_rule=drop_pct,
        timeline=timeline, hr_t=hr_t, hr_bpm=hr_bpm, hr_quality=hr_q, suds_all=suds_all,
        steps_meta=steps_meta, ended_s=ended_s, recorded_s=end_s, sources=sources)


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _drop_note(s: StepReport) -> str | None:
    """Why a step has no SUDS drop, in words (None when it has one)."""
    if s.skipped:
        return "skipped"
    if not s.suds:
        return "no rating"
    if len(s.suds) == 1:
        return "n/a: one rating"
    if not s.suds_peak:
        return "n/a: peak 0"
    return None


def _habituation_note(s: StepReport, drop_pct: float) -> str | None:
    """Why a step has no time to habituation, in words (None when it has one)."""
    if s.habituation_s is not None:
        return None
    return _drop_note(s) or f"never fell to {_level(drop_pct)} the peak"


def _level(drop_pct: float) -> str:
    """The habituation level in words: "half", "30 % of"."""
    return "half" if abs(drop_pct - 50.0) < 1e-9 else f"{100 - drop_pct:.0f} % of"


def _habituation(timeline: Timeline, index: int, suds: Sequence[tuple[float, int]],
                 drop_pct: float) -> float | None:
    """Exposure time at the step until a rating fell to (1 − drop) of its visit's peak."""
    visits = [t for s, t in timeline.visits if s == index]
    if not visits:
        return None
    boundaries = [*sorted(t for _, t in timeline.visits), math.inf]
    for visit_start in visits:
        visit_end = min(t for t in boundaries if t > visit_start)
        peak = 0
        ratings = [(t, value) for t, value in suds if visit_start <= t < visit_end]
        for n, (t, value) in enumerate(ratings):
            peak = max(peak, value)
            if n >= 1 and peak > 0 and value <= peak * (1 - drop_pct / 100.0):
                return timeline.duration("exposure", index, visits[0], t)
    return None


_PAUSE_REASONS = {
    "panel_heartbeat_lost": "the therapist panel stopped responding",
    "patient": "the patient asked",
    "command": "",
    "recording_failed": "the recording could not be written",
}
_ADVANCE_REASONS = {
    "suds_drop": "SUDS fell",
    "time_cap": "the step's time limit was reached",
    "expectancy_violated": "the prediction did not come true",
}
_STEP_MOVES = {"next": "moved on to", "previous": "moved back to", "repeat": "repeated",
               "jump": "jumped to"}


def alert_line_bpm(mean_bpm: float, sd_bpm: float, alerts_cfg: Mapping[str, Any]) -> float:
    """The heart-rate alert line: baseline mean + max(rise_bpm, rise_sd × SD), as the host."""
    rise = float(alerts_cfg.get("rise_bpm", 20.0))
    rise_sd = float(alerts_cfg.get("rise_sd", 3.0))
    return mean_bpm + max(rise, rise_sd * sd_bpm)


def _duration(seconds: float) -> str:
    """A planned length in words: "10 s", "3 min"."""
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


def who(by: str) -> str:
    """``role:client`` as a person reads it: "patient (remote)", "session host"."""
    if not by:
        return ""
    role, _, client = by.partition(":")
    if role == "host":
        return "session host" + (" (automatic)" if client == "auto_advance" else "")
    return f"{role} ({client})" if client else role


def _step_name(index: Any, steps_meta: Sequence[Mapping[str, Any]],
               step_id: Any = None) -> str:
    try:
        number = int(index)
    except (TypeError, ValueError):
        return "an unknown step"
    if step_id is None and 0 <= number < len(steps_meta):
        step_id = steps_meta[number].get("id")
    return f"step {number + 1}" + (f" ({step_id})" if step_id else "")


def _words(name: str) -> str:
    return name.replace("_", " ").replace(".", " ").strip()


def _bpm(value: Any) -> str:
    try:
        return f"{float(value):.0f} bpm"
    except (TypeError, ValueError):
        return "? bpm"


def alert_name(name: str) -> str:
    """An alert's name in words: "heart rate high", "sensor hr.polar lost"."""
    if name == "hr_above_baseline":
        return "heart rate high"
    if name.startswith("sensor_lost"):
        return f"sensor {name.partition('.')[2] or '?'} lost"
    if name == "recording_failed":
        return "recording failed"
    return _words(name)


def _alert_text(e: Mapping[str, Any], alerts_cfg: Mapping[str, Any]) -> str:
    name = str(e.get("alert", ""))
    if name == "hr_above_baseline":
        sustained = e.get("sustained_s", alerts_cfg.get("sustain_s"))
        text = f"Heart rate {_bpm(e.get('value_bpm'))}"
        if e.get("threshold_bpm") is not None:
            text += f", above the alert line of {_bpm(e.get('threshold_bpm'))}"
        if isinstance(sustained, int | float):
            text += f" for {float(sustained):.0f} s"
        if e.get("baseline_mean_bpm") is not None:
            text += f" (baseline {_bpm(e.get('baseline_mean_bpm'))})"
        return text
    if name.startswith("sensor_lost"):
        return f"Sensor {e.get('source') or name.partition('.')[2] or '?'} lost its connection"
    if name == "recording_failed":
        detail = e.get("error") or e.get("message")
        return "The recording could not be written to disk" + (f": {detail}" if detail else "")
    return f"Alert: {_words(name)}" + _details(e, ("alert", "step_index", "phase"))


def _alert_cleared_text(e: Mapping[str, Any]) -> str:
    name = str(e.get("alert", ""))
    if name == "hr_above_baseline":
        return "Heart rate back below the alert line"
    if name.startswith("sensor_lost"):
        return f"Sensor {name.partition('.')[2] or '?'} connected again"
    if name == "recording_failed":
        return "The recording is written to disk again"
    return f"Alert over: {_words(name)}"


#: Kinds a client causes; the host's own events have no ``by``.
_FROM_CLIENTS = frozenset({"controller_connected", "stimulus_event"})

_SKIP_FIELDS = frozenset({"type", "kind", "t_s", "by"})


def _details(e: Mapping[str, Any], skip: Sequence[str] = ()) -> str:
    """The remaining fields of an event in words: " (source hr.sim, count 3)"."""
    parts = []
    for key, value in e.items():
        if key in _SKIP_FIELDS or key in skip or value is None or value == "":
            continue
        shown = json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) \
            else str(value)
        parts.append(f"{_words(key)} {shown}")
    return f" ({', '.join(parts)})" if parts else ""


def log_text(e: Mapping[str, Any], steps_meta: Sequence[Mapping[str, Any]] = (),
             alerts_cfg: Mapping[str, Any] | None = None) -> str:
    """One event as a sentence a therapist reads without a glossary."""
    kind = str(e.get("kind"))
    cfg = alerts_cfg or {}
    if kind == "baseline_started":
        planned = e.get("duration_s")
        return "Baseline started" + (f" ({_duration(float(planned))} planned)"
                                     if isinstance(planned, int | float) else "")
    if kind == "baseline_completed":
        if e.get("mean_bpm") is None:
            return "Baseline without heart rate" + (f": {e['warning']}" if e.get("warning")
                                                    else "")
        sd = float(e.get("sd_bpm") or 0.0)
        line = alert_line_bpm(float(e["mean_bpm"]), sd, cfg)
        return (f"Baseline heart rate {float(e['mean_bpm']):.1f} ± {sd:.1f} bpm (SD) "
                f"from {e.get('n_values') or 0} values; alert line {line:.0f} bpm")
    if kind == "exposure_started":
        start = _step_name(e.get("step_index"), steps_meta, e.get("step_id"))
        return f"Exposure started at {start}"
    if kind == "step_changed":
        reason = str(e.get("reason", ""))
        target = _step_name(e.get("to"), steps_meta, e.get("step_id"))
        if reason.startswith("accepted:"):
            why = _ADVANCE_REASONS.get(reason.partition(":")[2], _words(reason.partition(":")[2]))
            return f"Moved on to {target}: suggestion accepted ({why})"
        if reason.startswith("auto:"):
            why = _ADVANCE_REASONS.get(reason.partition(":")[2], _words(reason.partition(":")[2]))
            return f"Moved on to {target} automatically ({why})"
        if reason == "jump":
            return f"Jumped from {_step_name(e.get('from'), steps_meta)} to {target}"
        move = _STEP_MOVES.get(reason)
        return f"{move.capitalize()} {target}" if move else \
            f"Step changed to {target}" + (f" ({_words(reason)})" if reason else "")
    if kind == "intensity_changed":
        try:
            return f"Intensity set to {100 * float(e['intensity']):.0f} %"
        except (KeyError, TypeError, ValueError):
            return "Intensity changed" + _details(e, ("step_index",))
    if kind == "paused":
        reason = str(e.get("reason", ""))
        why = _PAUSE_REASONS.get(reason, _words(reason))
        return "Paused" + (f": {why}" if why else "")
    if kind == "resumed":
        return f"Resumed {_words(str(e.get('to', '')))}".strip()
    if kind == "stopped":
        reason = str(e.get("reason", "STOP"))
        text = f"STOP pressed by the {who(str(e.get('by', ''))) or 'unknown sender'}"
        if reason not in ("STOP", ""):
            text += f": {reason}"
        return text + (" (already in the safe place)" if e.get("already_safe") else
                       "; safe place shown")
    if kind == "suds_recorded":
        during = str(e.get("phase", ""))
        return f"SUDS {e.get('value')}" + (" (baseline)" if during == "baseline" else
                                           f" ({during})" if during in ("paused", "safe")
                                           else "")
    if kind == "suds_requested":
        return "SUDS asked, no rating given"
    if kind == "expectancy_recorded":
        return (f"Prediction: “{e.get('outcome', '')}”, "
                f"{e.get('likelihood_pct')} % likely")
    if kind == "expectancy_outcome":
        return (f"Outcome: “{e.get('outcome', '')}” "
                + ("happened" if e.get("happened") else "did not happen"))
    if kind == "marker":
        return f"Note: {e.get('text', '')}"
    if kind == "advance_suggested":
        reason = str(e.get("reason", ""))
        detail = e.get("detail") if isinstance(e.get("detail"), Mapping) else {}
        why = _ADVANCE_REASONS.get(reason, _words(reason))
        if reason == "suds_drop" and detail:
            why = (f"SUDS fell {float(detail.get('drop_pct', 0)):.0f} % "
                   f"({detail.get('peak_suds')} → {detail.get('last_suds')})")
        return ("Last step done" if e.get("hierarchy_complete") else
                "Suggested moving on") + f": {why}"
    if kind == "suggestion_accepted":
        return "Suggestion accepted"
    if kind == "suggestion_dismissed":
        return "Suggestion dismissed: stayed at the step"
    if kind == "auto_advance_set":
        return "Automatic advancing " + ("on" if e.get("enabled") else "off")
    if kind == "auto_advanced":
        return "Advanced automatically"
    if kind == "alert":
        return _alert_text(e, cfg)
    if kind == "alert_cleared":
        return _alert_cleared_text(e)
    if kind == "controller_connected":
        return f"Therapist panel connected ({e.get('client', '?')})"
    if kind == "controller_lost":
        return f"Therapist panel stopped responding ({e.get('client', '?')})"
    if kind == "session_resumed":
        return "The session host restarted and the session continued"
    if kind == "ended":
        reason = str(e.get("reason", ""))
        return "Session ended" + (f": {reason}" if reason not in ("", "command") else "")
    if kind == "stimulus_event":
        return f"Scene event: {e.get('label') or _words(str(e.get('name', '')))}"
    if kind == "data_gap":
        return (f"Data gap: {e.get('count', '?')} samples of {e.get('source', '?')} missing"
                + (f" (numbers {e['from_seq']}–{e['to_seq']})"
                   if e.get("from_seq") is not None and e.get("to_seq") is not None else ""))
    if kind == "source_admitted":
        return f"Source {e.get('source', '?')} recorded"
    if kind == "source_rejected":
        return f"Source {e.get('source', '?')} refused" + _details(e, ("source",))
    if kind.startswith("questionnaire_"):
        return _questionnaire_text(e)
    # an event this version does not know: its name and fields in words, never dropped
    return _words(kind).capitalize() + _details(e, ("step_index",))


def _questionnaire_text(e: Mapping[str, Any]) -> str:
    """Questionnaire events in words (the started event's definition is not repeated)."""
    kind = str(e.get("kind"))
    name = str(e.get("title") or e.get("id") or "questionnaire")
    if kind == "questionnaire_started":
        return (f"Questionnaire started: {name} ({_words(str(e.get('occasion', '')))}, "
                f"{e.get('n_items', '?')} items)")
    if kind == "questionnaire_answer":
        item = f"{e.get('id', '?')} item {e.get('item', '?')}"
        if e.get("response") is None:
            reason = str(e.get("reason", ""))
            return f"{item}: left unanswered" + (f" ({reason})" if reason else "")
        return f"{item}: {e.get('response')}" + (" (changed)" if e.get("revised") else "")
    if kind == "questionnaire_paused":
        return f"Questionnaire {'paused' if e.get('paused', True) else 'resumed'}"
    if kind == "questionnaire_scored":
        scores = e.get("scores") or {}
        values = ", ".join(
            f"{_words(str(key))} {value.get('value') if isinstance(value, Mapping) else value}"
            for key, value in scores.items())
        unanswered = e.get("unanswered") or []
        return (f"{name} scored: {values or 'no score'}"
                + (f"; {len(unanswered)} item(s) unanswered" if unanswered else ""))
    return _words(kind).capitalize() + _details(e, ("definition", "answers"))


def _log_row(e: Mapping[str, Any], where: int | None,
             steps_meta: Sequence[Mapping[str, Any]],
             alerts_cfg: Mapping[str, Any] | None = None) -> dict[str, Any]:
    kind = str(e.get("kind"))
    by = str(e.get("by", ""))
    step_id = None
    if where is not None and 0 <= where < len(steps_meta):
        step_id = str(steps_meta[where].get("id", where))
    row = {"t_s": _r(float(e.get("t_s", 0.0)), 3), "kind": kind, "step_index": where,
           "step": None if where is None else where + 1, "step_id": step_id,
           "text": log_text(e, steps_meta, alerts_cfg), "by": by,
           # events without a sender come from the host itself (monitor, rules, timers)
           "who": who(by) if by or kind in _FROM_CLIENTS else "session host"}
    if kind == "marker":
        row["note"] = str(e.get("text", ""))
    elif kind == "stimulus_event":
        row["label"] = str(e.get("label") or _words(str(e.get("name", ""))))
        row["name"] = str(e.get("name", ""))
    return row


def _fold_suds_requests(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A SUDS request answered by a rating becomes part of it ("SUDS 40, asked")."""
    out: list[dict[str, Any]] = []
    open_request: dict[str, Any] | None = None
    for row in rows:
        if row["kind"] == "suds_requested":
            if open_request is not None:
                out.append(open_request)  # asked again before an answer
            open_request = row
            continue
        if row["kind"] == "suds_recorded" and open_request is not None:
            row = {**row, "text": row["text"] + " (prompted)",
                   "asked_t_s": open_request["t_s"]}
            open_request = None
        out.append(row)
    if open_request is not None:
        out.append(open_request)
    return sorted(out, key=lambda r: r["t_s"])


# --------------------------------------------------------------------------- figures


_STEP_COLOURS = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948",
                 "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"]


def _step_colour(index: int) -> str:
    return _STEP_COLOURS[index % len(_STEP_COLOURS)]


def _png(fig: Any) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _time_axis(duration_s: float) -> tuple[float, str]:
    """(scale, label) of the time axis: seconds, labelled m:ss as on the panel and the log."""
    return 1.0, "session time (m:ss)"


def mss(seconds: float) -> str:
    """A tick label: m:ss (h:mm:ss from an hour), as the panel shows session time."""
    sign, seconds = ("−", -seconds) if seconds < 0 else ("", seconds)
    total = round(seconds)
    if total >= 3600:
        return f"{sign}{total // 3600}:{total % 3600 // 60:02d}:{total % 60:02d}"
    return f"{sign}{total // 60}:{total % 60:02d}"


def _mss_axis(ax: Any, duration_s: float) -> None:
    from matplotlib.ticker import FuncFormatter, MultipleLocator

    step = next((s for s in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600)
                 if duration_s / s <= 12), 7200)
    ax.xaxis.set_major_locator(MultipleLocator(step))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: mss(x)))


def timeline_figure(report: SessionReport) -> Any:
    """Heart rate with step bands and the baseline band, SUDS ratings and intensity."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    scale, xlabel = _time_axis(report.duration_s)
    fig = Figure(figsize=(11, 7.8), layout="constrained")
    ax_hr, ax_suds, ax_int = fig.subplots(3, 1, sharex=True,
                                          gridspec_kw={"height_ratios": [3, 2, 1.1]})
    tl = report.timeline
    exposure_bands = tl.bands("exposure")
    for ax in (ax_hr, ax_suds, ax_int):
        for a, b, s in exposure_bands:
            ax.axvspan(a / scale, b / scale, color=_step_colour(s), alpha=0.13, lw=0)
        for a, b, _ in tl.bands("baseline"):
            ax.axvspan(a / scale, b / scale, color="#999999", alpha=0.12, lw=0)
        for phase, hatch in (("paused", "//"), ("safe", "xx"), ("outage", "..")):
            for a, b, _ in tl.bands(phase):
                ax.axvspan(a / scale, b / scale, facecolor="none", edgecolor="#888888",
                           hatch=hatch, lw=0)
        ax.grid(True, axis="y", alpha=0.3)
    # step numbers along the top of the heart-rate panel: one per visit to a step
    visit_starts = [t for _, t in tl.visits] + [tl.end_s]
    for n, (step, start) in enumerate(tl.visits):
        end = visit_starts[n + 1]
        spans = [(max(a, start), min(b, end)) for a, b, s in exposure_bands
                 if s == step and b > start and a < end]
        if not spans:
            continue
        middle = (spans[0][0] + spans[-1][1]) / 2
        ax_hr.text(middle / scale, 1.01, f"step {step + 1}" if n == 0 else str(step + 1),
                   transform=ax_hr.get_xaxis_transform(), ha="center", va="bottom",
                   fontsize=8, color=_step_colour(step))
    # heart rate
    base = report.baseline
    good = report.hr_quality == 0
    if len(report.hr_t):
        ax_hr.plot(report.hr_t[good] / scale, report.hr_bpm[good], color="#c0392b", lw=1.2,
                   label=f"heart rate ({report.hr_stream})")
        if (~good).any():
            ax_hr.plot(report.hr_t[~good] / scale, report.hr_bpm[~good], ".", color="#999999",
                       ms=3, label="uncertain / bad quality")
    if base.get("mean_bpm") is not None and base.get("threshold_bpm") is not None:
        # the panel's band: baseline mean ± the alert margin, its top the alert line
        mean, line = float(base["mean_bpm"]), float(base["threshold_bpm"])
        ax_hr.axhspan(2 * mean - line, line, color="#2c7fb8", alpha=0.14, lw=0,
                      label=f"baseline {mean:.0f} bpm ± {line - mean:.0f} (alert margin)")
        ax_hr.axhline(mean, color="#2c7fb8", lw=1, ls="--")
        ax_hr.axhline(line, color="#e31a1c", lw=1, ls=":",
                      label=f"alert line {line:.0f} bpm")
    for row in report.log:
        if row["kind"] == "stopped":
            for ax in (ax_hr, ax_suds, ax_int):
                ax.axvline(row["t_s"] / scale, color="#e31a1c", lw=1.5)
        elif row["kind"] == "alert":
            ax_hr.plot([row["t_s"] / scale], [0.97], marker="v", color="#e31a1c", ms=8,
                       transform=ax_hr.get_xaxis_transform(), clip_on=False)
    # the therapist's notes (numbered as in the list under the figure) and scene events
    for number, row in enumerate(_notes(report), start=1):
        for ax in (ax_hr, ax_suds, ax_int):
            ax.axvline(row["t_s"] / scale, color="#1b7837", lw=1, ls="--")
        ax_suds.text(row["t_s"] / scale, 1.0, f" ✎{number}", color="#1b7837", fontsize=8,
                     transform=ax_suds.get_xaxis_transform(), ha="left", va="top",
                     fontweight="bold")
    for gap in report.sources.get("gaps", []):
        ax_hr.plot([float(gap["t_s"]) / scale], [0.03], marker="x", color="#555555", ms=7,
                   mew=1.5, transform=ax_hr.get_xaxis_transform(), clip_on=False)
    for row in report.log:
        if row["kind"] == "stimulus_event":
            ax_int.plot([row["t_s"] / scale], [0.5], marker="D", color="#6a3d9a", ms=6,
                        transform=ax_int.get_xaxis_transform(), clip_on=False)
            ax_int.annotate(row["label"], (row["t_s"] / scale, 0.5),
                            xycoords=("data", "axes fraction"), xytext=(4, 4),
                            textcoords="offset points", fontsize=7, color="#6a3d9a")
    ax_hr.set_ylabel("heart rate (bpm)")
    if not len(report.hr_t):
        ax_hr.text(0.5, 0.5, "no heart rate recorded", transform=ax_hr.transAxes,
                   ha="center", va="center", color="#666666")
    from matplotlib.lines import Line2D

    handles, labels = ax_hr.get_legend_handles_labels()
    extra = [(Patch(facecolor="#999999", alpha=0.3), "baseline period"),
             (Patch(facecolor=_step_colour(0), alpha=0.3), "exposure (colour per step)"),
             (Line2D([], [], color="#555555", ls=":", lw=1.2), "expected SUDS of the step")]
    if tl.bands("paused"):
        extra.append((Patch(facecolor="none", edgecolor="#888888", hatch="//"), "paused"))
    if tl.bands("safe"):
        extra.append((Patch(facecolor="none", edgecolor="#888888", hatch="xx"),
                      "safe place (after STOP)"))
    if tl.bands("outage"):
        extra.append((Patch(facecolor="none", edgecolor="#888888", hatch=".."),
                      "host outage"))
    if any(row["kind"] == "stopped" for row in report.log):
        extra.append((Line2D([], [], color="#e31a1c", lw=1.5), "STOP"))
    if any(row["kind"] == "alert" for row in report.log):
        extra.append((Line2D([], [], color="#e31a1c", marker="v", ls="none", ms=7), "alert"))
    if _notes(report):
        extra.append((Line2D([], [], color="#1b7837", ls="--", lw=1), "therapist's note (✎)"))
    if report.sources.get("gaps"):
        extra.append((Line2D([], [], color="#555555", marker="x", ls="none", ms=7, mew=1.5),
                      "data gap (samples missing)"))
    if any(row["kind"] == "stimulus_event" for row in report.log):
        extra.append((Line2D([], [], color="#6a3d9a", marker="D", ls="none", ms=6),
                      "scene event"))
    for handle, label in extra:
        handles.append(handle)
        labels.append(label)
    fig.legend(handles, labels, loc="outside lower center", ncol=4, fontsize=8,
               frameon=False)
    # SUDS
    for index in sorted({s for _, s, _, _ in report.suds_all}):
        pts = [(t, v) for t, s, v, _ in report.suds_all if s == index]
        colour = "#555555" if index < 0 else _step_colour(index)
        ax_suds.plot([t / scale for t, _ in pts], [v for _, v in pts], "o-", color=colour,
                     ms=4, lw=1)
    for a, b, s in exposure_bands:
        if 0 <= s < len(report.steps_meta):
            expected = report.steps_meta[s].get("expected_suds")
            if isinstance(expected, int | float):
                ax_suds.hlines(expected, a / scale, b / scale, colors=_step_colour(s),
                               linestyles=":", lw=1.2)
    ax_suds.set_ylim(-3, 103)
    ax_suds.set_ylabel("SUDS (0–100)")
    # intensity
    xs: list[float] = []
    ys: list[float] = []
    for a, b, p, value in zip(tl.starts, tl.ends, tl.phases, tl.intensity, strict=True):
        y = float(value) if p == "exposure" else math.nan
        xs += [a / scale, b / scale]
        ys += [y, y]
    ax_int.plot(xs, ys, color="#6a3d9a", lw=1.5)
    ax_int.set_ylim(-0.05, 1.05)
    ax_int.set_yticks([0, 0.5, 1])
    ax_int.set_ylabel("intensity")
    ax_int.set_xlabel(xlabel)
    ax_int.set_xlim(0, max(report.duration_s, 1e-3) / scale)
    _mss_axis(ax_int, report.duration_s)
    return fig


def _notes(report: SessionReport) -> list[dict[str, Any]]:
    """The therapist's notes (markers) in the log, in time order."""
    return [row for row in report.log if row["kind"] == "marker"]


def steps_figure(report: SessionReport) -> Any:
    """Per step: SUDS peak and end against the expected SUDS; look-away share."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 3.6), layout="constrained")
    ax_suds, ax_away = fig.subplots(1, 2)
    steps = report.steps
    x = np.arange(len(steps))
    many = len(steps) > 6
    names = [f"{s.step_index + 1}" + (f" {s.step_id[:11]}" if many else f"\n{s.step_id[:14]}")
             for s in steps]
    peak = [np.nan if s.suds_peak is None else s.suds_peak for s in steps]
    end = [np.nan if s.suds_end is None else s.suds_end for s in steps]
    colours = [_step_colour(s.step_index) for s in steps]
    bars_peak = ax_suds.bar(x - 0.2, peak, 0.4, color=colours, label="peak")
    bars_end = ax_suds.bar(x + 0.2, end, 0.4, color=colours, alpha=0.45, label="end")
    for bars in (bars_peak, bars_end):
        ax_suds.bar_label(bars, fmt="%.0f", fontsize=7, padding=1)
    expected = [np.nan if s.expected_suds is None else s.expected_suds for s in steps]
    ax_suds.plot(x, expected, "k_", ms=22, mew=2, label="expected")
    ax_suds.set_xticks(x, names, fontsize=8, rotation=35 if many else 0,
                       ha="right" if many else "center", rotation_mode="anchor")
    ax_suds.set_ylim(0, 105)
    ax_suds.set_ylabel("SUDS")
    ax_suds.set_title("SUDS per step: peak (solid), end (light)", fontsize=10)
    ax_suds.legend(fontsize=8, loc="upper left")
    share = [np.nan if s.look_away_share is None else 100 * s.look_away_share for s in steps]
    ax_away.bar(x, share, 0.6, color=colours)
    for xi, value, s in zip(x, share, steps, strict=True):
        label = "skipped" if s.skipped else "no pose" if math.isnan(value) else (
            f"{value:.1f}%" if 0 < value < 9.95 else f"{value:.0f}%")
        ax_away.text(xi, 0 if math.isnan(value) else value, label, ha="center",
                     va="bottom", fontsize=8, rotation=90 if many and label != "0%" else 0)
        if s.skipped:
            ax_suds.text(xi, 1, "skipped", ha="center", va="bottom", fontsize=8,
                         rotation=90, color="#777777")
    ax_away.set_xticks(x, names, fontsize=8, rotation=35 if many else 0,
                       ha="right" if many else "center", rotation_mode="anchor")
    top = np.nanmax(share) if len(share) and not np.all(np.isnan(share)) else 10.0
    ax_away.set_ylim(0, max(10.0, float(top) * 1.2))
    ax_away.set_ylabel("looking away (% of time)")
    ax_away.set_title(f"Look-away share per step ({report.pose_stream or 'no pose'})",
                      fontsize=10)
    for ax in (ax_suds, ax_away):
        ax.grid(True, axis="y", alpha=0.3)
    return fig


# --------------------------------------------------------------------------- HTML

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px auto;
max-width:1180px;color:#222;line-height:1.4;padding:0 16px}
h1{font-size:1.5em;margin-bottom:0}h2{font-size:1.15em;margin-top:1.6em;
border-bottom:1px solid #ddd;padding-bottom:4px}
.sub{color:#555;margin-top:4px}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:16px 0}
.card{border:1px solid #ddd;border-radius:6px;padding:8px 14px;min-width:120px}
.card b{display:block;font-size:1.3em}.card span{color:#666;font-size:.85em}
.warn{background:#fff4e5;border:1px solid #f0b35b;border-radius:6px;padding:8px 12px;
margin:8px 0}
table{border-collapse:collapse;width:100%;font-size:.88em}
th,td{border-bottom:1px solid #e3e3e3;padding:4px 6px;text-align:right;vertical-align:top}
th{background:#f6f6f6;position:sticky;top:0}
td.l,th.l{text-align:left}td.l div{text-align:left}
td.step{min-width:170px}td.exp{min-width:190px}td.suds,td.nw{white-space:nowrap}
tr.skipped td{color:#777;background:#fafafa;font-style:italic}
table.narrow{width:auto}h3{font-size:1em;margin-top:1.2em}
th{font-weight:600;vertical-align:bottom}
img{max-width:100%}
.swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:4px}
.note{color:#555;font-size:.85em}
footer{color:#777;font-size:.8em;margin-top:2em}
td.muted{color:#888;font-style:italic}
"""


def _e(value: Any) -> str:
    return html.escape("—" if value is None else str(value))


def _num(value: float | None, pattern: str = "{:.1f}") -> str:
    return "—" if value is None else html.escape(pattern.format(value))


def _card(value: str, label: str) -> str:
    return f'<div class="card"><b>{value}</b><span>{html.escape(label)}</span></div>'


def _step_cell(s: StepReport) -> str:
    return (f'<td class="l step"><span class="swatch" '
            f'style="background:{_step_colour(s.step_index)}"></span>'
            f"<b>{s.step_index + 1}. {html.escape(s.step_id)}</b>"
            f'<div class="note">{html.escape(s.label)}</div></td>')


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _intensity_times(s: StepReport) -> str:
    return " · ".join(f"{100 * level:.0f} %: {_clock(seconds)}"
                      for level, seconds in sorted(s.intensity_time_s.items())) or "—"


def _sources_html(r: SessionReport) -> str:
    """Sources admitted to and refused from the recording, and the data gaps counted."""
    src = r.sources
    admitted = sorted({str(x.get("source", "?")) for x in src.get("admitted", [])})
    rejected = src.get("rejected", [])
    gaps = src.get("gaps", [])
    parts = []
    if admitted or rejected:
        parts.append("<p>Recorded sources: "
                     + (html.escape(", ".join(admitted)) if admitted else "none") + "</p>")
        parts.append("<p>Refused sources: " + ("; ".join(
            html.escape(str(x.get("source", "?")) + _details(x, ("source", "t_s")))
            + f" at {_clock(x.get('t_s'))}" for x in rejected) if rejected else "none") + "</p>")
    else:
        parts.append("<p>The recording lists no admitted or refused sources (recorded before "
                     "the session host logged them); its streams are listed below.</p>")
    if gaps:
        rows = "".join(
            f"<tr><td>{_e(_clock(g.get('t_s')))}</td><td class='l'>"
            f"{html.escape(str(g.get('source')))}</td><td>{_e(g.get('count'))}</td>"
            f"<td>{_e(g.get('from_seq'))}–{_e(g.get('to_seq'))}</td></tr>" for g in gaps)
        total = sum(int(g.get("count") or 0) for g in gaps)
        parts.append(f"<p>Data gaps: {_plural(len(gaps), 'gap')}, {total} samples missing.</p>"
                     "<table class='narrow'><tr><th>time</th><th class='l'>source</th>"
                     f"<th>samples missing</th><th>sample numbers</th></tr>{rows}</table>")
    else:
        parts.append("<p>Data gaps: none recorded.</p>")
    return "".join(parts)


def render_html(report: SessionReport, figures: Mapping[str, str]) -> str:
    """The self-contained report page; ``figures``: name → base64 PNG."""
    r = report
    started = local_time(r.started_utc)
    base = r.baseline
    notices = []
    if r.truncated or not r.ended:
        notices.append("The recording was cut short (the session host stopped without closing "
                       "it): everything up to the last complete data block is shown; the "
                       "session's end is the last recorded sample."
                       if r.truncated else "The session has no 'ended' record: the host was "
                       "stopped or the recording is still being written.")
    if base.get("mean_bpm") is None:
        notices.append("No baseline heart rate: heart-rate alerts were off and heart rate is "
                       "shown without a baseline." + (f" ({base['warning']})"
                                                       if base.get("warning") else ""))
    elif base.get("source") and base["source"] != "session host":
        notices.append(f"Baseline heart rate {base['source']}.")
    if r.totals.get("resumed_after_crash"):
        notices.append(f"The session host stopped and the session was resumed "
                       f"{r.totals['resumed_after_crash']}×; the outage is hatched (dots) and "
                       "not counted as exposure.")
    skipped = [s.step_index + 1 for s in r.steps if s.skipped]
    highest = "—" if r.highest_step is None else f"{r.highest_step + 1} of {r.n_steps}"
    highest_label = "highest step reached" + (
        f" ({', '.join(map(str, skipped))} skipped)" if skipped else "")
    line = base.get("threshold_bpm")
    cards = "".join([
        _card(_e(_clock(r.duration_s)), "session length (start to end)"),
        _card(_e(_clock(r.totals.get("exposure_s"))), "in exposure"),
        _card(_e(highest), highest_label),
        _card(_num(base.get("mean_bpm")) + (f" ± {float(base.get('sd_bpm') or 0):.1f}"
                                            if base.get("mean_bpm") is not None else ""),
              "baseline heart rate (bpm, ± SD)"),
        _card(_e(r.totals["stops"]), "STOP uses"),
        _card(_e(r.totals["alerts"]), "alerts"),
        _card(_e(r.totals["pauses"]), "pauses"),
        _card(_e(r.totals["markers"]), "notes"),
    ])
    show_intensity = any((s.intensity_max or 0) > 0 for s in r.steps)
    head = ["<th class='l'>step</th>", "<th>expected<br>SUDS</th>", "<th>time in<br>step</th>",
            "<th>SUDS<br>peak → end</th>", "<th>drop</th>", "<th>habituation</th>",
            "<th>HR mean<div class='note'>vs baseline</div></th>",
            "<th>HR peak<div class='note'>vs baseline</div></th>", "<th>looking<br>away</th>"]
    if show_intensity:
        head.append("<th>intensity<br>max</th>")
    head += ["<th class='l'>prediction → outcome</th>", "<th>alerts</th>", "<th>STOP</th>"]
    table_head = "<tr>" + "".join(head) + "</tr>"
    rows = []
    for s in r.steps:
        if s.skipped:
            rows.append(f'<tr class="skipped">{_step_cell(s)}<td>{_e(s.expected_suds)}</td>'
                        f'<td colspan="{len(head) - 2}" class="l">skipped: not shown in '
                        "this session (a later step was reached)</td></tr>")
            continue
        exp = "<br>".join(
            f"“{html.escape(e.outcome)}” {e.likelihood_pct} % → "
            + ("<b>happened</b>" if e.happened else "did not happen" if e.happened is False
               else "no outcome recorded") for e in s.expectancies) or "—"
        suds = "—" if s.suds_peak is None else f"{s.suds_peak} → {s.suds_end}"
        drop = _drop_note(s)
        habituation = _habituation_note(s, r.drop_pct_rule)
        cells = [
            _step_cell(s),
            f"<td>{_e(s.expected_suds)}</td>",
            f"<td>{_e(_clock(s.time_in_step_s))}"
            + (f"<div class='note'>{s.visits} visits</div>" if s.visits > 1 else "") + "</td>",
            f"<td class='suds'>{html.escape(suds)}"
            + (f"<div class='note'>{_plural(len(s.suds), 'rating')}</div>" if s.suds else "")
            + "</td>",
            f"<td class='nw'>{html.escape(drop) if drop else _num(s.suds_drop_pct, '{:.0f} %')}"
            "</td>",
            "<td class='nw'>" + (_e(_clock(s.habituation_s)) if habituation is None
                      else html.escape(habituation)) + "</td>",
            f"<td>{_num(s.hr_mean_bpm)}<div class='note'>"
            f"{_num(s.hr_mean_vs_baseline_bpm, '{:+.1f}')}</div></td>",
            f"<td>{_num(s.hr_peak_bpm)}<div class='note'>"
            f"{_num(s.hr_peak_vs_baseline_bpm, '{:+.1f}')}</div></td>",
            f"<td>{_num(_pct(s.look_away_share), '{:.0f} %')}</td>"]
        if show_intensity:
            cells.append(f"<td>{_num(_pct(s.intensity_max), '{:.0f} %')}</td>")
        cells += [f'<td class="l exp">{exp}</td>',
                  f"<td>{len(s.alerts)}" + (f"<div class='note'>"
                                            f"{html.escape(', '.join(map(alert_name, s.alerts)))}"
                                            "</div>" if s.alerts else "") + "</td>",
                  f"<td>{s.stops}</td>"]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    if base.get("suds") or base.get("alerts") or base.get("stops") or base.get("duration_s"):
        suds = ", ".join(str(x["value"]) for x in base["suds"]) or "—"
        middle = len(head) - 5
        rows.insert(0, f'<tr><td class="l step"><b>baseline</b></td><td>—</td>'
                       f'<td>{_e(_clock(base.get("duration_s")))}</td>'
                       f'<td colspan="{middle}" class="l">SUDS ratings: {html.escape(suds)}'
                       + (f" · heart rate {float(base['mean_bpm']):.1f} ± "
                          f"{float(base.get('sd_bpm') or 0):.1f} bpm (SD) from "
                          f"{base.get('n_values') or 0} values"
                          if base.get("mean_bpm") is not None else " · no baseline heart rate")
                       + "</td>"
                       f"<td>{len(base['alerts'])}</td><td>{base['stops']}</td></tr>")
    research_rows = "".join(
        f"<tr>{_step_cell(s)}<td>{'skipped' if s.skipped else _e(_clock(s.time_in_step_s))}</td>"
        f"<td class='l'>{_intensity_times(s)}</td>"
        f"<td>{_num(_pct(s.hr_trusted_share), '{:.0f} %')}<div class='note'>"
        f"{s.hr_values} of {_plural(s.hr_windows, 'window')}</div></td>"
        f"<td>{s.pose_samples}</td></tr>" for s in r.steps)
    log_rows = "".join(
        f"<tr><td>{_e(_clock(row['t_s']))}</td>"
        f"<td>{'—' if row['step_index'] is None else row['step_index'] + 1}</td>"
        f'<td class="l">{html.escape(row["text"])}</td>'
        f'<td class="l note">{html.escape(row["who"])}</td></tr>'
        for row in r.log)
    notes = _notes(r)
    notes_html = ("<p class='note'>Notes on the timeline: " + "; ".join(
        f"<b>✎{n}</b> {_clock(row['t_s'])} {html.escape(row['note'])}"
        for n, row in enumerate(notes, start=1)) + "</p>") if notes else ""
    streams = ", ".join(f"{html.escape(k)} {v:,}" for k, v in sorted(r.streams.items()))
    band = ""
    if base.get("mean_bpm") is not None and line is not None:
        band = (f"Blue band: the baseline heart rate {float(base['mean_bpm']):.0f} bpm ± the "
                f"alert margin {float(line) - float(base['mean_bpm']):.0f} bpm (the larger of "
                "the hierarchy's rise in bpm and its rise in SDs); its top is the alert line "
                f"{float(line):.0f} bpm, above which a sustained heart rate raises an alert. "
                "The therapist panel draws the same band.")
    after_end = r.recorded_s - r.duration_s
    figures_html = "".join(
        f'<h2>{html.escape(title)}</h2><img alt="{html.escape(title)}" '
        f'src="data:image/png;base64,{figures[key]}">'
        for key, title in (("timeline", "Session timeline"), ("steps", "Per step"))
        if key in figures)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Session report {html.escape(r.patient_id)} {html.escape(started)}</title>
<style>{_CSS}</style></head><body>
<h1>Exposure session report</h1>
<p class="sub">Patient <b>{html.escape(r.patient_id)}</b> · {html.escape(started)} ·
{html.escape(r.hierarchy_title or r.hierarchy_id)} ({r.n_steps} steps)</p>
{''.join(f'<div class="warn">{html.escape(n)}</div>' for n in notices)}
<div class="cards">{cards}</div>
{figures_html.split('<h2>Per step</h2>')[0]}
{notes_html}
<p class="note">Coloured bands: exposure at each step (numbered at the top); grey: baseline;
hatched: paused (//), safe place after STOP (xx), host outage (..). Red lines: STOP; red
triangles: heart-rate and other alerts; green dashed lines: the therapist's notes (✎);
grey crosses: data gaps (listed under "For research").
{band}</p>
<h2>Steps</h2>
<table>{table_head}{''.join(rows)}</table>
<p class="note">Time in step counts exposure only (not pauses or the safe place).
Drop: (peak − end) / peak of the step's SUDS ratings; it needs two ratings.
Habituation: exposure time at the step until SUDS fell to {_level(r.drop_pct_rule)} the
visit's peak (the hierarchy's advance rule, a drop of {r.drop_pct_rule:.0f} %), with at least
two ratings. Heart rate: good-quality values of {html.escape(r.hr_stream or 'no stream')}
during exposure, against the baseline mean. Looking away: share of head-pose samples
({html.escape(r.pose_stream or 'none recorded')}) flagged as looking away from the stimulus.
Skipped: a step below the highest one reached that was never shown.</p>
{('<h2>Per step</h2>' + figures_html.split('<h2>Per step</h2>')[1])
 if '<h2>Per step</h2>' in figures_html else ''}
<h2>Session log</h2>
<table><tr><th>time</th><th>step</th><th class="l">what happened</th><th class="l">by</th></tr>
{log_rows}</table>
<h2>For research</h2>
<table><tr><th class="l">step</th><th>time in step</th>
<th class="l">time at each intensity</th><th>trusted heart rate<div class="note">share of
windows</div></th><th>head-pose samples</th></tr>{research_rows}</table>
<p class="note">Time at each intensity: exposure time at the step per intensity setting.
Trusted heart rate: share of the heart-rate windows (values of
{html.escape(r.hr_stream or 'no stream')}) during exposure at the step whose quality was good;
only those enter the heart-rate numbers.</p>
<h3>Sources and data gaps</h3>
{_sources_html(r)}
<h2>Recording</h2>
<p class="note">{html.escape(r.path)}{' (cut short)' if r.truncated else ''}<br>
Samples: {streams}<br>Heart-rate values of good quality:
{_num(_pct(r.totals.get('hr_good_share')), '{:.1f} %')}
{f' · recorded {after_end:.1f} s past the end of the session (not counted in its length)'
   if after_end > 0.05 else ''}
· session {html.escape(r.session_id)} · recorded with {html.escape(r.software)}</p>
<footer>Computed from the recording alone by vrexposure {html.escape(__version__)}.
The same numbers are in the JSON summary beside this file.</footer>
</body></html>
"""


def local_time(iso_utc: str) -> str:
    """An ISO UTC time as local date and time ("2026-11-01 11:00 CET"); as is if unreadable."""
    try:
        when = datetime.fromisoformat(iso_utc)
    except ValueError:
        return iso_utc
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    local = when.astimezone()
    return local.strftime("%Y-%m-%d %H:%M ") + (local.tzname() or "")



# --------------------------------------------------------------------------- files


@dataclass
class ReportFiles:
    html: Path
    json: Path
    report: SessionReport


def _write_private(path: Path, data: str | bytes) -> None:
    """Write a file readable by its owner only (health data)."""
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        view = memoryview(raw)
        while view:
            written = os.write(fd, view)
            view = view[written:]
    finally:
        os.close(fd)


def _out_dir(out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    return out_dir


def write_report(path: Path, out_dir: Path | None = None,
                 progress: Progress | None = None,
                 recording: XdfFile | None = None) -> ReportFiles:
    """Read ``path`` and write ``<name>.report.html`` and ``<name>.report.json``."""
    step = progress or (lambda _: None)
    path = Path(path)
    step("reading the recording")
    recording = recording if recording is not None else read_xdf(path)
    step("computing the numbers")
    report = compute_report(recording, path)
    step("drawing the figures")
    figures = {"timeline": _png(timeline_figure(report))}
    if report.steps:
        figures["steps"] = _png(steps_figure(report))
    step("writing the report")
    directory = _out_dir(Path(out_dir) if out_dir is not None else path.parent)
    html_path = directory / f"{path.stem}.report.html"
    json_path = directory / f"{path.stem}.report.json"
    from .report_questionnaires import for_recording

    forms_html, forms_json = for_recording(path, recording)
    page = render_html(report, figures)
    if forms_html:  # the questionnaires given in the session, before its log
        page = page.replace("<h2>Session log</h2>", forms_html + "\n<h2>Session log</h2>", 1)
    _write_private(html_path, page)
    _write_private(json_path, json.dumps({**report.to_dict(), "questionnaires": forms_json},
                                         indent=2, ensure_ascii=False))
    return ReportFiles(html_path, json_path, report)


# --------------------------------------------------------------------------- progress


@dataclass
class SessionProgress:
    path: str
    started_utc: str
    hierarchy_id: str
    duration_s: float
    #: 0-based index of the highest step reached (the JSON adds the 1-based ``highest_step``)
    highest_step: int | None
    highest_step_id: str | None
    cut_short: bool
    peak_suds: dict[str, int]
    habituation_s: dict[str, float]
    baseline_bpm: float | None
    stops: int
    alerts: int
    #: First SUDS rating of each step (with the peak: between-session habituation).
    first_suds: dict[str, int] = field(default_factory=dict)
    time_in_step_s: dict[str, float] = field(default_factory=dict)
    #: Time to habituation as a share of the time in the step.
    habituation_share: dict[str, float] = field(default_factory=dict)
    #: Steps shown in the session, and steps jumped over.
    reached: list[str] = field(default_factory=list)
    skipped_steps: list[str] = field(default_factory=list)
    #: Predictions: {step, outcome, likelihood_pct, happened (None: no outcome)}.
    predictions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def started_local(self) -> str:
        return local_time(self.started_utc)

    def step_status(self, key: str) -> str:
        """What happened at a step, in words: "habituated", "never fell to half" ..."""
        if key in self.skipped_steps:
            return "skipped"
        if key not in self.reached:
            return "not reached"
        if key in self.habituation_s:
            return "habituated"
        return "no habituation"


@dataclass
class PatientProgress:
    patient_id: str
    sessions: list[SessionProgress]
    step_order: list[str]
    skipped: list[str]
    drop_pct_rule: float = DEFAULT_DROP_PCT

    def predictions_summary(self) -> dict[str, Any]:
        """Predictions across sessions: how many came true, did not, or have no outcome."""
        all_predictions = [p for s in self.sessions for p in s.predictions]
        failed = [p for p in all_predictions if p["happened"] is False]
        return {
            "recorded": len(all_predictions),
            "did_not_happen": len(failed),
            "happened": sum(p["happened"] is True for p in all_predictions),
            "no_outcome": sum(p["happened"] is None for p in all_predictions),
            "mean_likelihood_pct_of_those_that_did_not_happen":
                _r(float(np.mean([p["likelihood_pct"] for p in failed])), 1) if failed
                else None,
        }

    def to_dict(self) -> dict[str, Any]:
        sessions = []
        for number, s in enumerate(self.sessions, start=1):
            d = asdict(s)
            d.update({
                "session": number, "started_local": s.started_local,
                "duration_s": _r(s.duration_s, 2),
                # 1-based, as a person counts steps (highest_step_index: 0-based)
                "highest_step": None if s.highest_step is None else s.highest_step + 1,
                "highest_step_index": s.highest_step,
                "habituation_s": {k: _r(v, 2) for k, v in s.habituation_s.items()},
                "time_in_step_s": {k: _r(v, 2) for k, v in s.time_in_step_s.items()},
                "habituation_share": {k: _r(v, 4) for k, v in s.habituation_share.items()},
                "step_status": {k: s.step_status(k) for k in self.step_order},
            })
            sessions.append(d)
        return {"schema": PROGRESS_SCHEMA, "generated_by": f"vrexposure {__version__}",
                "patient_id": self.patient_id, "step_order": self.step_order,
                "habituation_drop_pct": self.drop_pct_rule,
                "skipped": self.skipped, "predictions": self.predictions_summary(),
                "sessions": sessions}


def find_sessions(folder: Path, patient_id: str
                  ) -> tuple[list[tuple[str, Path, str]], list[str]]:
    """(started_utc, path, hierarchy id) of the patient's recordings in ``folder``
    (recursively), oldest first, and the files that could not be read."""
    return sessions_of(sorted(Path(folder).rglob("*.xdf")), patient_id)


def sessions_of(files: Sequence[Path], patient_id: str
                ) -> tuple[list[tuple[str, Path, str]], list[str]]:
    """:func:`find_sessions` for a list of recordings."""
    found: list[tuple[str, Path, str]] = []
    skipped: list[str] = []
    for path in files:
        try:
            meta = recording_metadata(read_header(Path(path)))
        except (OSError, ValueError) as exc:
            skipped.append(f"{path}: {exc}")
            continue
        if str(meta.get("patient_id")) == patient_id:
            found.append((str(meta.get("started_utc", "")), Path(path),
                          str(meta.get("hierarchy_id", ""))))
    found.sort()
    return found, skipped


def session_progress(report: SessionReport, prefix: str = "") -> SessionProgress:
    """One session's line of the progress page, from its report."""
    steps = [s for s in report.steps if not s.skipped]
    base = report.baseline.get("mean_bpm")
    share = {prefix + s.step_id: s.habituation_s / s.time_in_step_s for s in steps
             if s.habituation_s is not None and s.time_in_step_s > 0}
    predictions = [{"step": s.step_index + 1, "step_id": prefix + s.step_id,
                    "outcome": e.outcome, "likelihood_pct": e.likelihood_pct,
                    "happened": e.happened} for s in steps for e in s.expectancies]
    return SessionProgress(
        report.path, report.started_utc, report.hierarchy_id, report.duration_s,
        report.highest_step,
        None if report.highest_step is None else report._step_id(report.highest_step),
        report.truncated,
        {prefix + s.step_id: int(s.suds_peak) for s in steps if s.suds_peak is not None},
        {prefix + s.step_id: float(s.habituation_s) for s in steps
         if s.habituation_s is not None},
        None if base is None else float(base), int(report.totals["stops"]),
        int(report.totals["alerts"]),
        first_suds={prefix + s.step_id: int(s.suds[0][1]) for s in steps if s.suds},
        time_in_step_s={prefix + s.step_id: s.time_in_step_s for s in steps},
        habituation_share=share,
        reached=[prefix + s.step_id for s in steps],
        skipped_steps=[prefix + s.step_id for s in report.steps if s.skipped],
        predictions=predictions)


def compute_progress(folder: Path, patient_id: str,
                     on_file: Callable[[Path], None] | None = None,
                     files: Sequence[Path] | None = None) -> PatientProgress:
    """``files``: these recordings (e.g. from the clinic index) instead of ``folder``'s."""
    if files is None:
        sessions_found, skipped = find_sessions(folder, patient_id)
    else:
        sessions_found, skipped = sessions_of(files, patient_id)
    sessions: list[SessionProgress] = []
    order: list[str] = []
    rules: list[float] = []
    multiple = len({hierarchy for _, _, hierarchy in sessions_found}) > 1
    for _, path, _ in sessions_found:
        if on_file is not None:
            on_file(path)
        try:
            report = compute_report(read_xdf(path), path)
        except (OSError, ValueError) as exc:
            skipped.append(f"{path}: {exc}")
            continue
        prefix = f"{report.hierarchy_id}:" if multiple else ""
        for m in report.steps_meta:
            key = prefix + str(m.get("id"))
            if key not in order:
                order.append(key)
        rules.append(report.drop_pct_rule)
        sessions.append(session_progress(report, prefix))
    rule = rules[-1] if rules else DEFAULT_DROP_PCT
    return PatientProgress(patient_id, sessions, order, skipped, rule)


def _session_label(session: SessionProgress, number: int) -> str:
    return f"{number}\n{session.started_local[:10]}"


def progress_figure(progress: PatientProgress) -> Any:
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(11, 9.5), layout="constrained")
    ax_peak, ax_high, ax_hab = fig.subplots(3, 1)
    sessions = progress.sessions
    x = np.arange(1, len(sessions) + 1)
    labels = [_session_label(s, i + 1) for i, s in enumerate(sessions)]
    used = [k for k in progress.step_order
            if any(k in s.peak_suds or k in s.habituation_s for s in sessions)]
    spread = min(0.3, 0.6 / max(1, len(used)))
    for n, key in enumerate(used):
        colour = _step_colour(progress.step_order.index(key))
        offset = (n - (len(used) - 1) / 2) * spread / max(1, len(used) - 1) if len(used) > 1 \
            else 0.0
        # the first rating as a ring under the peak's dot: a ring around it when equal
        firsts = [s.first_suds.get(key, np.nan) for s in sessions]
        ax_peak.plot(x + offset, firsts, "o", mfc="white", mec=colour, ms=9, mew=1.5,
                     ls="none")
        ys = [s.peak_suds.get(key, np.nan) for s in sessions]
        ax_peak.plot(x + offset, ys, "o-", color=colour, ms=5,
                     label=f"{progress.step_order.index(key) + 1}. {key}")
        hs = [100 * s.habituation_share.get(key, np.nan) for s in sessions]
        ax_hab.plot(x + offset, hs, "s-", color=colour, ms=5)
    ax_peak.set_ylim(0, 105)
    ax_peak.set_ylabel("SUDS")
    ax_peak.set_title("SUDS per step, session by session: peak (dot, joined) and first "
                      "rating (ring)", fontsize=10)
    if used:
        fig.legend(*ax_peak.get_legend_handles_labels(), loc="outside lower center",
                   ncol=min(5, len(used)), fontsize=8, frameon=False, title="steps",
                   title_fontsize=8)
    highs = [np.nan if s.highest_step is None else s.highest_step + 1 for s in sessions]
    ax_high.bar(x, highs, color="#4e79a7", width=0.6)
    for xi, s in zip(x, sessions, strict=True):
        if s.highest_step_id:
            ax_high.text(xi, (s.highest_step or 0) + 1, s.highest_step_id
                         + (f" ({len(s.skipped_steps)} skipped)" if s.skipped_steps else ""),
                         ha="center", va="bottom", fontsize=7)
    n_steps = max([len(progress.step_order)] + [int(h) for h in highs if not math.isnan(h)])
    ax_high.set_ylim(0, n_steps + 1.2)
    ax_high.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax_high.set_ylabel("highest step")
    ax_high.set_title("Highest step reached", fontsize=10)
    ax_hab.set_ylabel("% of time in step")
    ax_hab.set_ylim(0, 105)
    ax_hab.set_title(f"Time to habituation as a share of the time in the step: exposure time "
                     f"until SUDS fell to {_level(progress.drop_pct_rule)} the peak "
                     "(no point: it did not)", fontsize=10)
    if len(sessions) < 2:
        ax_hab.text(0.5, 0.5, "needs two sessions", transform=ax_hab.transAxes, ha="center",
                    va="center", fontsize=14, color="#666666")
    elif not any(s.habituation_share for s in sessions):
        ax_hab.text(0.5, 0.5, f"SUDS never fell to {_level(progress.drop_pct_rule)} the peak",
                    transform=ax_hab.transAxes, ha="center", va="center", fontsize=12,
                    color="#666666")
    for ax in (ax_peak, ax_high, ax_hab):
        ax.set_xticks(x, labels, fontsize=8)
        ax.set_xlim(0.5, len(sessions) + 0.5)
        ax.grid(True, axis="y", alpha=0.3)
    ax_hab.set_xlabel("session")
    return fig


def _progress_cell(s: SessionProgress, key: str, drop_pct: float) -> str:
    status = s.step_status(key)
    if status in ("not reached", "skipped"):
        return f"<td class='muted'>{status}</td>"
    first, peak = s.first_suds.get(key), s.peak_suds.get(key)
    suds = "no rating" if peak is None else f"{first} → {peak}"
    if status == "habituated":
        note = (f"habituated in {_clock(s.habituation_s[key])}"
                + (f" ({100 * s.habituation_share[key]:.0f} % of "
                   f"{_clock(s.time_in_step_s.get(key))})" if key in s.habituation_share
                   else ""))
    elif peak is None:
        note = f"no rating in {_clock(s.time_in_step_s.get(key))}"
    else:
        note = f"never fell to {_level(drop_pct)} the peak in {_clock(s.time_in_step_s.get(key))}"
    return f"<td class='suds'>{html.escape(suds)}<div class='note'>{html.escape(note)}</div></td>"


def render_progress_html(progress: PatientProgress, figure_png: str | None) -> str:
    sessions = progress.sessions
    zone = sessions[0].started_local.rsplit(" ", 1)[-1] if sessions else ""
    head = "".join(f"<th>{i + 1}<div class='note'>{html.escape(s.started_local[:10])}</div></th>"
                   for i, s in enumerate(sessions))
    rows = []
    for key in progress.step_order:
        if not any(key in s.reached for s in sessions):
            continue
        cells = "".join(_progress_cell(s, key, progress.drop_pct_rule) for s in sessions)
        rows.append(f'<tr><td class="l">{progress.step_order.index(key) + 1}. '
                    f"{html.escape(key)}</td>{cells}</tr>")
    summary = "".join(
        f"<tr><td>{i + 1}</td><td class='l'>{html.escape(s.started_local)}</td>"
        f"<td class='l'>{html.escape(s.hierarchy_id)}</td><td>{_clock(s.duration_s)}</td>"
        f"<td>{'—' if s.highest_step is None else s.highest_step + 1}"
        f" {html.escape(s.highest_step_id or '')}"
        + (f"<div class='note'>{len(s.skipped_steps)} skipped</div>" if s.skipped_steps else "")
        + f"</td><td>{_num(s.baseline_bpm)}</td>"
        f"<td>{s.stops}</td><td>{s.alerts}</td>"
        f"<td class='l note'>{html.escape(Path(s.path).name)}"
        f"{' (cut short)' if s.cut_short else ''}</td></tr>"
        for i, s in enumerate(sessions))
    figure = (f'<img alt="progress" src="data:image/png;base64,{figure_png}">'
              if figure_png else "")
    skipped = "".join(f'<div class="warn">Not read: {html.escape(s)}</div>'
                      for s in progress.skipped)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Progress {html.escape(progress.patient_id)}</title><style>{_CSS}</style></head><body>
<h1>Progress across sessions</h1>
<p class="sub">Patient <b>{html.escape(progress.patient_id)}</b> · {len(sessions)} session(s)
{'· habituation across sessions needs two sessions' if len(sessions) < 2 else ''}</p>
{skipped}
{figure}
<h2>Sessions</h2>
<table><tr><th>#</th>
<th class="l">started (local time{', ' + html.escape(zone) if zone else ''})</th>
<th class="l">hierarchy</th><th>length</th><th>highest step</th><th>baseline HR</th>
<th>STOP</th><th>alerts</th><th class="l">file</th></tr>{summary}</table>
<h2>SUDS per step, session by session: first rating → peak</h2>
<table><tr><th class="l">step</th>{head}</tr>{''.join(rows)}</table>
<p class="note">First → peak: the step's first SUDS rating and its highest, session over
session (between-session habituation: both fall when fear habituates across sessions).
Habituated in: exposure time at the step until a SUDS rating fell to
{_level(progress.drop_pct_rule)} the visit's peak (the hierarchy's advance rule), with at
least two ratings, and its share of the time in the step, so that a longer session does not
look worse. "Not reached": the session ended before the step; "skipped": a later step was
reached without it; "never fell to {_level(progress.drop_pct_rule)} the peak": the step was
shown but SUDS did not fall that far.</p>
<h2>Predictions that did not come true</h2>
{_predictions_html(progress)}
<footer>Computed from the recordings alone by vrexposure {html.escape(__version__)}.
The same numbers are in the JSON summary beside this file.</footer>
</body></html>
"""


def _outcome_words(happened: bool | None) -> str:
    return "did not happen" if happened is False else "<b>happened</b>" if happened \
        else "no outcome recorded"


def _predictions_html(progress: PatientProgress) -> str:
    """Expectancy violation across sessions: each prediction and whether it came true."""
    summary = progress.predictions_summary()
    if not summary["recorded"]:
        return "<p class='note'>No predictions were recorded in these sessions.</p>"
    mean = summary["mean_likelihood_pct_of_those_that_did_not_happen"]
    text = (f"<p>{summary['did_not_happen']} of {summary['recorded']} predictions did not "
            f"come true" + (f" (predicted as {mean:.0f} % likely on average)"
                            if mean is not None else "")
            + f"; {summary['happened']} came true; {summary['no_outcome']} without an "
            "outcome.</p>")
    rows = "".join(
        f"<tr><td>{number}</td><td class='l'>{html.escape(s.started_local[:10])}</td>"
        f"<td class='l'>{p['step']}. {html.escape(p['step_id'])}</td>"
        f"<td class='l'>“{html.escape(p['outcome'])}”</td><td>{p['likelihood_pct']} %</td>"
        f"<td class='l'>{_outcome_words(p['happened'])}</td></tr>"
        for number, s in enumerate(progress.sessions, start=1) for p in s.predictions)
    return (text + "<table><tr><th>session</th><th class='l'>date</th><th class='l'>step</th>"
            "<th class='l'>prediction</th><th>likelihood</th><th class='l'>outcome</th></tr>"
            f"{rows}</table>")


@dataclass
class ProgressFiles:
    html: Path
    json: Path
    progress: PatientProgress



def write_progress(folder: Path, patient_id: str, out_dir: Path | None = None,
                   on_file: Callable[[Path], None] | None = None,
                   files: Sequence[Path] | None = None) -> ProgressFiles:
    progress = compute_progress(Path(folder), patient_id, on_file, files)
    if not progress.sessions:
        raise ValueError(f"no recordings of patient {patient_id} in {folder}")
    figure = _png(progress_figure(progress))
    directory = _out_dir(Path(out_dir) if out_dir is not None else Path(folder))
    html_path = directory / f"{patient_id}.progress.html"
    json_path = directory / f"{patient_id}.progress.json"
    from .report_questionnaires import for_patient

    forms_html, forms_json, _ = for_patient(Path(folder), patient_id)
    page = render_progress_html(progress, figure)
    if forms_html:  # measures across treatment, before the predictions
        page = page.replace("<h2>Predictions that did not come true</h2>",
                            forms_html + "\n<h2>Predictions that did not come true</h2>", 1)
    _write_private(html_path, page)
    _write_private(json_path, json.dumps({**progress.to_dict(), "questionnaires": forms_json},
                                         indent=2, ensure_ascii=False))
    return ProgressFiles(html_path, json_path, progress)


__all__ = [
    "PatientProgress",
    "ReportFiles",
    "SessionReport",
    "StepReport",
    "Timeline",
    "compute_progress",
    "compute_report",
    "fold_timeline",
    "read_header",
    "render_html",
    "write_progress",
    "write_report",
]
