"""Export a recording for the tools researchers already use: CSV, or BIDS.

``csv`` (:func:`export_csv`): one CSV per recorded stream with a ``time_s``
column (session clock) and one column per channel, plus ``events.csv`` (every
event, command and clock record), ``state.csv`` (each state change) and
``session.json`` (the recording's metadata, including the whole hierarchy).
Nothing is resampled.

``bids`` (:func:`export_bids`): the session as a BIDS behavioural session with
physiological recordings::

    DIR/dataset_description.json, README, participants.tsv
    DIR/sub-<id>/sub-<id>_sessions.tsv
    DIR/sub-<id>/ses-<n>/beh/sub-<id>_ses-<n>_task-exposure_events.tsv (+ .json)
    DIR/sub-<id>/ses-<n>/beh/sub-<id>_ses-<n>_task-exposure_recording-<label>_physio.tsv.gz
                                                                           (+ .json)

Time zero of the BIDS files is the start of the session clock: ``onset`` in the
events file and ``StartTime`` of every physio file are session seconds.
Physio files have no header row; their sidecars give ``SamplingFrequency``,
``StartTime`` and ``Columns`` (BIDS "Physiological recordings"). Streams with a
nominal rate (ECG, PPG, EDA, respiration) are written at that rate with ``n/a``
rows over gaps. BIDS physio needs a constant rate, so irregular streams are
**resampled** onto a regular grid and the sidecar says so (``Resampled``):
heart rate, SpO2 and RR intervals at 4 Hz (linear; quality codes from the
nearest earlier value), head pose at its median rate (linear; quaternions
normalised; ``looking_away`` from the nearest earlier sample); values are
``n/a`` where the nearest original sample is further away than the stream's
gap limit. The original irregular samples are in the CSV export.

Files are created owner-only (0600) in directories created 0700: they hold
health data.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import logging
import os
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from . import __version__
from .recorder import EVENTS_STREAM, STATE_STREAM, WAVEFORM_TYPES
from .report import compute_report, find_sessions, recording_metadata
from .xdf import XdfFile, XdfStream, read_xdf

log = logging.getLogger(__name__)

FORMATS = ("csv", "bids", "fhir")
BIDS_VERSION = "1.10.0"
TASK = "exposure"
QUALITY_NAMES = {0.0: "good", 1.0: "uncertain", 2.0: "bad"}
#: Irregular streams resampled for BIDS: (rate Hz or None = median rate, gap limit s).
RESAMPLE: dict[str, tuple[float | None, float]] = {
    "hr": (4.0, 3.0), "spo2": (4.0, 3.0), "rr": (4.0, 3.0), "pose": (None, 0.25)}
BIDS_COLUMNS: dict[str, list[str]] = {
    "hr": ["heart_rate", "quality"],
    "spo2": ["spo2", "quality"],
    "rr": ["rr_interval"],
    "pose": ["x", "y", "z", "qw", "qx", "qy", "qz", "look_angle", "looking_away"],
}
COLUMN_INFO: dict[str, dict[str, str]] = {
    "heart_rate": {"Description": "Heart rate", "Units": "beats/min"},
    "spo2": {"Description": "Peripheral oxygen saturation", "Units": "%"},
    "quality": {"Description": "Signal quality of the value: 0 good, 1 uncertain, 2 bad "
                               "(nearest earlier original value)", "Units": "n/a"},
    "rr_interval": {"Description": "Interval between heart beats, interpolated linearly "
                                   "between beats (tachogram)", "Units": "ms"},
    "x": {"Description": "Head position, x (right)", "Units": "m"},
    "y": {"Description": "Head position, y (forward)", "Units": "m"},
    "z": {"Description": "Head position, z (up)", "Units": "m"},
    "qw": {"Description": "Head orientation quaternion, w", "Units": "n/a"},
    "qx": {"Description": "Head orientation quaternion, x", "Units": "n/a"},
    "qy": {"Description": "Head orientation quaternion, y", "Units": "n/a"},
    "qz": {"Description": "Head orientation quaternion, z", "Units": "n/a"},
    "look_angle": {"Description": "Angle between the gaze and the direction to the "
                                  "stimulus; n/a without a stimulus", "Units": "degrees"},
    "looking_away": {"Description": "1 when the look angle exceeded the look-away "
                                    "threshold, else 0", "Units": "n/a"},
}
Progress = Callable[[str], None]


@dataclass
class ExportResult:
    out_dir: Path
    files: list[Path] = field(default_factory=list)
    #: What a researcher must know: resampled streams, skipped streams, the session label.
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- file helpers


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


@contextmanager
def _private(path: Path, compress: bool = False) -> Iterator[IO[str]]:
    """A text file created owner-only (0600), optionally gzip-compressed."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with open(fd, "wb") as raw:
        if compress:
            with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz, \
                    io.TextIOWrapper(gz, encoding="utf-8", newline="") as text:
                yield text
        else:
            with io.TextIOWrapper(raw, encoding="utf-8", newline="") as text:
                yield text


def _write_json(path: Path, data: Any) -> Path:
    with _private(path) as handle:
        json.dump(data, handle, indent=2, ensure_ascii=False)
        handle.write("\n")
    return path


def _write_frame(path: Path, frame: Any, *, sep: str = ",", header: bool = True,
                 compress: bool = False, float_format: str | None = None) -> Path:
    with _private(path, compress) as handle:
        # TSV (BIDS): no quoting; values never hold tabs or line breaks
        frame.to_csv(handle, sep=sep, header=header, index=False,
                     na_rep="n/a" if sep == "\t" else "", float_format=float_format,
                     lineterminator="\n",
                     quoting=csv.QUOTE_NONE if sep == "\t" else csv.QUOTE_MINIMAL)
    return path


def _pandas() -> Any:
    try:
        import pandas
    except ImportError as exc:  # pragma: no cover - pandas is a test/analysis dependency
        raise RuntimeError("exporting needs pandas: pip install pandas") from exc
    return pandas


def _records(stream: XdfStream) -> list[tuple[float, dict[str, Any]]]:
    out = []
    for t, text in zip(stream.timestamps, stream.values, strict=False):
        try:
            record = json.loads(text)
        except (TypeError, json.JSONDecodeError):
            record = {"unreadable": str(text)}
        out.append((float(t), record if isinstance(record, dict) else {"value": record}))
    return out


def _kind(stream: XdfStream) -> str:
    return stream.name.split(".", 1)[0]


def _units(stream: XdfStream) -> list[str]:
    desc = stream.info.get("desc") or {}
    channels = desc.get("channels") if isinstance(desc, dict) else None
    items = channels.get("channel", []) if isinstance(channels, dict) else []
    if isinstance(items, dict):
        items = [items]
    return [str(c.get("unit", "")) if isinstance(c, dict) else "" for c in items]


def event_value(record: Mapping[str, Any]) -> Any:
    """The one value that says most about an event record (for a ``value`` column)."""
    kind = record.get("kind")
    key = {"suds_recorded": "value", "intensity_changed": "intensity", "alert": "alert",
           "alert_cleared": "alert", "marker": "text", "step_changed": "step_id",
           "exposure_started": "step_id", "expectancy_recorded": "likelihood_pct",
           "expectancy_outcome": "happened", "stopped": "reason", "paused": "reason",
           "resumed": "to", "advance_suggested": "reason", "baseline_completed": "mean_bpm",
           "auto_advance_set": "enabled", "ended": "reason"}.get(str(kind))
    value = record.get(key) if key else None
    if isinstance(value, bool):
        return int(value)
    return value


# --------------------------------------------------------------------------- CSV


def export_csv(path: Path, out_dir: Path, recording: XdfFile | None = None,
               progress: Progress | None = None) -> ExportResult:
    """One CSV per stream plus ``events.csv``, ``state.csv`` and ``session.json``."""
    pd = _pandas()
    step = progress or (lambda _: None)
    recording = recording if recording is not None else read_xdf(Path(path))
    out = _mkdir(Path(out_dir))
    result = ExportResult(out)
    result.files.append(_write_json(out / "session.json", {
        "recording": str(path), "cut_short": recording.truncated,
        "exported_by": f"vrexposure {__version__}",
        "time": "time_s: seconds on the session clock (0 = session start)",
        "metadata": recording_metadata(recording.header)}))
    for stream in recording.streams.values():
        step(stream.name)
        name = stream.name
        if name == EVENTS_STREAM:
            result.files.append(_events_csv(out / "events.csv", stream))
            continue
        if name == STATE_STREAM:
            result.files.append(_state_csv(out / "state.csv", stream))
            continue
        target = out / f"{_safe_name(name)}.csv"
        if stream.info.get("channel_format") == "string":
            frame = pd.DataFrame({"time_s": stream.timestamps,
                                  "json": [str(v) for v in stream.values]})
            result.files.append(_write_frame(target, frame, float_format="%.6f"))
            continue
        values = np.asarray(stream.values)
        labels = stream.channel_labels or [f"ch{i + 1}" for i in range(values.shape[1])]
        columns: dict[str, Any] = {"time_s": np.round(stream.timestamps, 6)}
        for i, label in enumerate(labels[:values.shape[1]]):
            column: Any = values[:, i]
            if label == "quality":
                column = [QUALITY_NAMES.get(float(v), "") for v in column]
            elif label == "looking_away":
                column = column.astype(np.int8)
            columns[label] = column
        frame = pd.DataFrame(columns)
        fmt = "%.7g" if stream.info.get("channel_format") == "float32" else "%.10g"
        frame["time_s"] = frame["time_s"].map("{:.6f}".format)
        result.files.append(_write_frame(target, frame, float_format=fmt))
    return result


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


def _events_csv(target: Path, stream: XdfStream) -> Path:
    columns = ["time_s", "type", "kind", "command", "step_index", "value", "by", "ok",
               "error", "record"]
    with _private(target) as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(columns)
        for t, r in _records(stream):
            rtype = r.get("type", "")
            by = r.get("by") or (f"{r.get('role')}:{r.get('client')}" if r.get("role") else "")
            writer.writerow([
                f"{t:.6f}", rtype, r.get("kind", ""), r.get("name", ""),
                "" if r.get("step_index") is None else r.get("step_index"),
                "" if (v := event_value(r) if rtype == "event" else None) is None else v,
                by, "" if r.get("ok") is None else int(bool(r.get("ok"))), r.get("error", ""),
                json.dumps(r, sort_keys=True, ensure_ascii=False)])
    return target


def _state_csv(target: Path, stream: XdfStream) -> Path:
    columns = ["time_s", "seq", "phase", "step_index", "step_id", "intensity", "scene",
               "params", "suds_count", "alerts_active", "stop_count", "state"]
    with _private(target) as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(columns)
        for t, s in _records(stream):
            writer.writerow([
                f"{t:.6f}", s.get("seq", ""), s.get("phase", ""), s.get("step_index", ""),
                s.get("step_id", ""), s.get("intensity", ""), s.get("scene", ""),
                json.dumps(s.get("params", {}), sort_keys=True),
                len(s.get("suds", []) or []), json.dumps(s.get("alerts_active", [])),
                s.get("stop_count", ""), json.dumps(s, sort_keys=True, ensure_ascii=False)])
    return target


# --------------------------------------------------------------------------- BIDS


def bids_label(text: str) -> str:
    """A BIDS label: letters and digits only."""
    label = re.sub(r"[^A-Za-z0-9]", "", text)
    if not label:
        raise ValueError(f"cannot make a BIDS label from {text!r}")
    return label


def recording_label(stream_name: str) -> str:
    """``ecg.sim`` → ``ecgSim``; ``hr.polar_1`` → ``hrPolar1`` (letters and digits only)."""
    kind, _, source = stream_name.partition(".")
    source = bids_label(source) if re.search(r"[A-Za-z0-9]", source) else ""
    return bids_label(kind) + (source[:1].upper() + source[1:])


def regular_grid(t: npt.NDArray[np.float64], values: npt.NDArray[Any], rate_hz: float
                 ) -> tuple[float, npt.NDArray[np.float64]]:
    """Samples of a nominal-rate stream placed on its grid; gaps are NaN rows."""
    t0 = float(t[0])
    index = np.rint((t - t0) * rate_hz).astype(np.int64)
    grid = np.full((int(index.max()) + 1, values.shape[1]), np.nan)
    grid[index] = values
    return t0, grid


def resample(t: npt.NDArray[np.float64], values: npt.NDArray[np.float64], rate_hz: float,
             max_gap_s: float, linear: Sequence[bool], quaternion: slice | None = None
             ) -> tuple[float, npt.NDArray[np.float64]]:
    """Resample an irregular stream onto ``rate_hz`` from its first sample.

    Columns with ``linear[i]`` are interpolated linearly, the others take the
    nearest earlier value; rows whose nearest original sample is more than
    ``max_gap_s`` away are NaN. ``quaternion``: columns normalised after interpolation.
    """
    order = np.argsort(t, kind="stable")
    t, values = t[order], values[order]
    t0 = float(t[0])
    n = int(np.floor((float(t[-1]) - t0) * rate_hz + 1e-9)) + 1
    grid_t = t0 + np.arange(n) / rate_hz
    out = np.empty((n, values.shape[1]))
    previous = np.clip(np.searchsorted(t, grid_t, side="right") - 1, 0, len(t) - 1)
    for i in range(values.shape[1]):
        column = values[:, i]
        if linear[i]:
            finite = np.isfinite(column)
            out[:, i] = np.interp(grid_t, t[finite], column[finite]) if finite.any() \
                else np.nan
            # keep NaN where the earlier sample had none (e.g. no stimulus in view)
            out[~np.isfinite(column[previous]), i] = np.nan
        else:
            out[:, i] = column[previous]
    if quaternion is not None:
        q = out[:, quaternion]
        norm = np.linalg.norm(q, axis=1, keepdims=True)
        out[:, quaternion] = q / np.where(norm > 0, norm, 1.0)
    nearest_after = np.clip(previous + 1, 0, len(t) - 1)
    distance = np.minimum(np.abs(grid_t - t[previous]), np.abs(t[nearest_after] - grid_t))
    out[distance > max_gap_s] = np.nan
    return t0, out


def _physio_table(stream: XdfStream) -> tuple[float, float, list[str], npt.NDArray[Any],
                                              dict[str, Any]]:
    """(rate, start, columns, data, extra sidecar fields) for one stream."""
    kind = _kind(stream)
    values = np.asarray(stream.values, dtype=np.float64)
    t = stream.timestamps
    units = _units(stream)
    if kind in WAVEFORM_TYPES:
        rate = float(stream.info.get("nominal_srate", 0.0))
        start, data = regular_grid(t, values, rate)
        n_channels = values.shape[1]
        base = {"ecg": "cardiac", "ppg": "cardiac", "resp": "respiratory",
                "eda": "eda"}.get(kind, kind)
        columns = [base] if n_channels == 1 else [f"{base}{i + 1}" for i in range(n_channels)]
        missing = int(np.isnan(data[:, 0]).sum())
        extra: dict[str, Any] = {
            c: {"Description": f"{WAVEFORM_TYPES[kind]} channel {i + 1} of source "
                               f"'{stream.name.partition('.')[2]}'",
                "Units": units[i] if i < len(units) and units[i] else "n/a"}
            for i, c in enumerate(columns)}
        if missing:
            extra["vrexposure:GapSamples"] = missing
        return rate, start, columns, data, extra
    fixed_rate, max_gap = RESAMPLE[kind]
    if fixed_rate is None:
        steps = np.diff(t)
        steps = steps[steps > 0]
        fixed_rate = float(round(1.0 / float(np.median(steps)))) if len(steps) else 1.0
    columns = BIDS_COLUMNS[kind]
    linear = [c not in ("quality", "looking_away") for c in columns]
    quaternion = slice(3, 7) if kind == "pose" else None
    start, data = resample(t, values[:, :len(columns)], fixed_rate, max_gap, linear,
                           quaternion)
    extra = {c: COLUMN_INFO[c] for c in columns if c in COLUMN_INFO}
    extra["Resampled"] = {
        "Description": f"irregular samples resampled to {fixed_rate:g} Hz from the first "
                       "sample: linear interpolation (quaternions normalised), quality and "
                       "looking_away from the nearest earlier sample; n/a where the nearest "
                       f"original sample is more than {max_gap:g} s away",
        "OriginalSamples": len(t), "MaxGapSeconds": max_gap}
    return fixed_rate, start, columns, data, extra


def session_label(path: Path, patient_id: str) -> str:
    """The session number: this recording's position among the patient's recordings in its
    folder, oldest first (1 when it cannot be told)."""
    try:
        found, _ = find_sessions(Path(path).parent, patient_id)
    except OSError:
        return "1"
    for number, (_, other, _) in enumerate(found, start=1):
        if other.resolve() == Path(path).resolve():
            return str(number)
    return "1"


def export_bids(path: Path, out_dir: Path, *, session: str | None = None,
                recording: XdfFile | None = None,
                progress: Progress | None = None) -> ExportResult:
    """Write the recording into the BIDS dataset at ``out_dir`` (created if needed)."""
    pd = _pandas()
    step = progress or (lambda _: None)
    path = Path(path)
    recording = recording if recording is not None else read_xdf(path)
    meta = recording_metadata(recording.header)
    patient = str(meta.get("patient_id") or "")
    if not patient:
        raise ValueError(f"{path}: no patient id in the recording header; not a vrexposure "
                         "recording?")
    sub = bids_label(patient)
    ses = bids_label(session) if session else session_label(path, patient)
    root = _mkdir(Path(out_dir))
    beh = _mkdir(root / f"sub-{sub}" / f"ses-{ses}" / "beh")
    prefix = f"sub-{sub}_ses-{ses}_task-{TASK}"
    result = ExportResult(root)
    result.notes.append(f"sub-{sub} ses-{ses}" + ("" if session else
                                                  " (session number from the patient's "
                                                  "recordings in the same folder)"))
    if sub != patient:
        result.notes.append(f"patient id {patient!r} written as the BIDS label {sub!r}")
    result.files += _dataset_files(root, sub, ses, meta)

    step("events")
    events_path = beh / f"{prefix}_events.tsv"
    events_frame = bids_events(recording)
    result.files.append(_write_frame(events_path, events_frame, sep="\t",
                                     float_format="%.6f"))
    result.files.append(_write_json(beh / f"{prefix}_events.json", _events_sidecar(meta)))

    for stream in recording.streams.values():
        kind = _kind(stream)
        if stream.name in (EVENTS_STREAM, STATE_STREAM):
            continue
        if stream.info.get("channel_format") == "string" or \
                (kind not in WAVEFORM_TYPES and kind not in RESAMPLE):
            result.notes.append(f"{stream.name}: not a physiological signal; in the CSV export "
                                "only")
            continue
        if len(stream.timestamps) < 2:
            result.notes.append(f"{stream.name}: fewer than two samples; skipped")
            continue
        step(stream.name)
        rate, start, columns, data, extra = _physio_table(stream)
        label = recording_label(stream.name)
        base = f"{prefix}_recording-{label}_physio"
        frame = pd.DataFrame(data, columns=columns)
        for column in columns:
            if column in ("quality", "looking_away"):
                frame[column] = frame[column].astype("Int64")
        result.files.append(_write_frame(beh / f"{base}.tsv.gz", frame, sep="\t",
                                         header=False, compress=True, float_format="%.7g"))
        sidecar = {"SamplingFrequency": rate, "StartTime": round(start, 6), "Columns": columns,
                   **extra,
                   "RecordingSource": stream.name,
                   "SoftwareVersions": f"vrexposure {__version__}",
                   "StartTimeReference": "session start (onset 0 of the events file)"}
        result.files.append(_write_json(beh / f"{base}.json", sidecar))
        if "Resampled" in extra:
            result.notes.append(f"{stream.name}: irregular, resampled to {rate:g} Hz "
                                f"(recording-{label}); original samples in the CSV export")
        else:
            result.notes.append(f"{stream.name}: {rate:g} Hz as recorded (recording-{label})"
                                + (f", {extra['vrexposure:GapSamples']} n/a samples over gaps"
                                   if "vrexposure:GapSamples" in extra else ""))
    return result


def _dataset_files(root: Path, sub: str, ses: str, meta: Mapping[str, Any]) -> list[Path]:
    files = []
    description = root / "dataset_description.json"
    if not description.exists():
        files.append(_write_json(description, {
            "Name": "vrexposure exposure therapy sessions",
            "BIDSVersion": BIDS_VERSION,
            "DatasetType": "raw",
            "GeneratedBy": [{"Name": "vrexposure", "Version": __version__,
                             "Description": "vrexposure export --format bids"}]}))
    readme = root / "README"
    if not readme.exists():
        with _private(readme) as handle:
            handle.write(
                "Virtual-reality exposure therapy sessions exported by vrexposure.\n\n"
                "Each session is behavioural data (beh/): an events file (therapy phases, "
                "steps of the fear hierarchy, SUDS ratings, expectancies, STOP uses, alerts, "
                "markers) and physiological recordings (_physio.tsv.gz). Time zero is the "
                "start of the session clock. Irregularly sampled streams (heart rate, RR "
                "intervals, head pose) were resampled onto a regular grid; see 'Resampled' "
                "in their sidecars.\n")
        files.append(readme)
    participants = root / "participants.tsv"
    rows = _read_tsv(participants)
    if not any(r.get("participant_id") == f"sub-{sub}" for r in rows):
        rows.append({"participant_id": f"sub-{sub}"})
        files.append(_write_tsv(participants, ["participant_id"], rows))
    sessions = root / f"sub-{sub}" / f"sub-{sub}_sessions.tsv"
    rows = [r for r in _read_tsv(sessions) if r.get("session_id") != f"ses-{ses}"]
    started = str(meta.get("started_utc", "n/a"))
    rows.append({"session_id": f"ses-{ses}", "acq_time": started.split("+")[0] or "n/a",
                 "hierarchy_id": str(meta.get("hierarchy_id", "n/a")),
                 "vrexposure_session_id": str(meta.get("session_id", "n/a"))})
    rows.sort(key=lambda r: r["session_id"])
    files.append(_write_tsv(sessions, ["session_id", "acq_time", "hierarchy_id",
                                       "vrexposure_session_id"], rows))
    return files


def _read_tsv(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def _write_tsv(path: Path, columns: list[str], rows: list[dict[str, str]]) -> Path:
    with _private(path) as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([row.get(c, "n/a") or "n/a" for c in columns])
    return path


def bids_events(recording: XdfFile) -> Any:
    """The BIDS events table: phase and step periods (with durations) and every
    state-machine event (duration 0), sorted by onset."""
    pd = _pandas()
    report = compute_report(recording)
    tl = report.timeline
    rows: list[dict[str, Any]] = []
    steps_meta = report.steps_meta
    for phase, trial_type in (("baseline", "baseline"), ("exposure", "exposure"),
                              ("paused", "paused"), ("safe", "safe_place"),
                              ("outage", "host_outage")):
        for a, b, s in tl.bands(phase):
            step_id = str(steps_meta[s].get("id", s)) if 0 <= s < len(steps_meta) else None
            rows.append({"onset": a, "duration": b - a, "trial_type": trial_type,
                         "value": step_id if phase == "exposure" else None,
                         "step_index": s if s >= 0 else None, "by": None, "detail": None})
    try:
        events = recording.by_name(EVENTS_STREAM)
    except KeyError:
        events = None
    if events is not None:
        for t, r in _records(events):
            if r.get("type") != "event":
                continue
            detail = {k: v for k, v in r.items() if k not in ("type", "kind", "t_s", "by")}
            rows.append({"onset": t, "duration": 0.0, "trial_type": r.get("kind"),
                         "value": event_value(r), "step_index": r.get("step_index"),
                         "by": r.get("by"),
                         "detail": json.dumps(detail, sort_keys=True, ensure_ascii=False)})
    frame = pd.DataFrame(rows, columns=["onset", "duration", "trial_type", "value",
                                        "step_index", "by", "detail"])
    frame = frame.sort_values(["onset", "duration"], ascending=[True, False], kind="stable")
    frame["step_index"] = frame["step_index"].astype("Int64")
    for column in ("value", "detail", "by"):
        frame[column] = frame[column].map(
            lambda v: None if v is None or (isinstance(v, float) and np.isnan(v))
            else " ".join(str(v).split("\t")).replace("\n", " ").replace("\r", " "))
    return frame.reset_index(drop=True)


def _events_sidecar(meta: Mapping[str, Any]) -> dict[str, Any]:
    hierarchy = meta.get("hierarchy") or {}
    steps = hierarchy.get("steps") or []
    return {
        "TaskName": TASK,
        "TaskDescription": f"Virtual-reality exposure therapy, hierarchy "
                           f"'{hierarchy.get('title') or meta.get('hierarchy_id', '')}' "
                           f"({len(steps)} steps)",
        "onset": {"Description": "Session time in seconds (0 = start of the session clock)",
                  "Units": "s"},
        "duration": {"Description": "Length of a period; 0 for instantaneous events",
                     "Units": "s"},
        "trial_type": {
            "Description": "What happened",
            "Levels": {
                "baseline": "resting baseline period",
                "exposure": "exposure at a hierarchy step (value: step id)",
                "paused": "exposure paused", "safe_place": "safe place after STOP",
                "host_outage": "the session host was down (recording resumed)",
                "suds_recorded": "SUDS rating (value: 0-100)",
                "stopped": "STOP used (value: reason)",
                "alert": "alert for the therapist (value: alert name)",
                "marker": "therapist's marker (value: text)",
                "intensity_changed": "intensity slider (value: 0-1)",
                "expectancy_recorded": "feared outcome predicted (value: likelihood %)",
                "expectancy_outcome": "whether the feared outcome happened (value: 1/0)",
                "step_changed": "moved to a step (value: step id)",
            }},
        "value": {"Description": "The event's main value (see trial_type)"},
        "step_index": {"Description": "Hierarchy step, counted from 0",
                       "Levels": {str(i): str(s.get("id", i)) for i, s in enumerate(steps)
                                  if isinstance(s, dict)}},
        "by": {"Description": "Who caused the event (role:client)"},
        "detail": {"Description": "All other fields of the recorded event (JSON)"},
    }


def export_fhir(path: Path, out_dir: Path) -> ExportResult:
    """Completed questionnaires of a recording (or a stand-alone questionnaire file) as one
    FHIR ``Bundle``: Questionnaire, QuestionnaireResponse and score Observations, each
    validated as FHIR R4 4.0.1 by ``fhirclient`` (the ``fhir`` extra). A questionnaire
    definition (``.yaml``) becomes a FHIR ``Questionnaire`` on its own."""
    from .questionnaires import load_questionnaire
    from .questionnaires.fhir import bundle, questionnaire_resource
    from .questionnaires.records import SUFFIX, read_any

    if Path(path).suffix in (".yaml", ".yml"):
        definition = load_questionnaire(Path(path))
        target = _write_json(_mkdir(out_dir) / f"{definition.id}.fhir.json",
                             questionnaire_resource(definition))
        return ExportResult(out_dir, [target], [f"questionnaire definition '{definition.id}'"])

    administrations = read_any(Path(path))
    if not administrations:
        raise ValueError(f"{path}: no completed questionnaire to export")
    stem = Path(path).name.removesuffix(SUFFIX).removesuffix(".xdf")
    target = _write_json(_mkdir(out_dir) / f"{stem}.fhir.json", bundle(administrations,
                                                                       str(path)))
    return ExportResult(out_dir, [target], [
        f"{len(administrations)} questionnaire(s): "
        + ", ".join(f"{a.id} ({a.occasion})" for a in administrations)])


def export(path: Path, fmt: str, out_dir: Path, *, session: str | None = None,
           progress: Progress | None = None) -> ExportResult:
    if fmt == "csv":
        return export_csv(path, out_dir, progress=progress)
    if fmt == "bids":
        return export_bids(path, out_dir, session=session, progress=progress)
    if fmt == "fhir":
        return export_fhir(path, out_dir)
    raise ValueError(f"unknown format {fmt!r} (use {' or '.join(FORMATS)})")


__all__ = [
    "FORMATS",
    "ExportResult",
    "bids_events",
    "bids_label",
    "export",
    "export_bids",
    "export_csv",
    "export_fhir",
    "recording_label",
    "regular_grid",
    "resample",
]
