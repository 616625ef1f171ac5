"""``vrexposure export DIR --format parquet``: many sessions as one partitioned Parquet dataset.

Readable without our code (DuckDB, pandas, Spark, Dask). Hive-style partitions by patient and
session under four tables::

    OUT/sessions/patient_id=P017/session_id=…/part-0.parquet   one row per session
    OUT/steps/…      per-step numbers, the same as ``vrexposure report``'s JSON
    OUT/events/…     every event (time, kind, 1-based step, value, the record as JSON)
    OUT/samples/…    every numeric sample in long form (stream, type, channel, t_s, value)

e.g. ``SELECT * FROM read_parquet('OUT/steps/**/*.parquet', hive_partitioning = true)``.
Files are owner-only (0600) like the recordings they come from.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .export import event_value
from .report import SessionReport, compute_report, json_records, recording_metadata
from .xdf import XdfFile, read_xdf

TABLES = ("sessions", "steps", "events", "samples")


def _pa() -> Any:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:  # an optional extra
        raise RuntimeError("Parquet export needs pyarrow: pip install 'vrexposure[parquet]'"
                           ) from exc
    return pa, pq


def _schemas(pa: Any) -> dict[str, Any]:
    f64, i64, text = pa.float64(), pa.int64(), pa.string()
    return {
        "sessions": pa.schema([
            ("recording", text), ("started_utc", text), ("hierarchy_id", text),
            ("hierarchy_version", i64), ("duration_s", f64), ("n_steps", i64),
            ("highest_step", i64), ("highest_step_id", text), ("stops", i64),
            ("alerts", i64), ("pauses", i64), ("baseline_mean_bpm", f64),
            ("baseline_sd_bpm", f64), ("ended", pa.bool_()), ("cut_short", pa.bool_()),
            ("software", text)]),
        "steps": pa.schema([
            ("step", i64), ("step_index", i64), ("step_id", text), ("label", text),
            ("expected_suds", i64), ("visits", i64), ("time_in_step_s", f64),
            ("n_suds", i64), ("suds_start", i64), ("suds_peak", i64), ("suds_end", i64),
            ("suds_drop_pct", f64), ("habituation_s", f64), ("hr_mean_bpm", f64),
            ("hr_peak_bpm", f64), ("hr_mean_vs_baseline_bpm", f64),
            ("hr_peak_vs_baseline_bpm", f64), ("hr_values", i64), ("look_away_share", f64),
            ("pose_samples", i64), ("intensity_max", f64), ("n_expectancies", i64),
            ("alerts", i64), ("stops", i64), ("pauses", i64), ("skipped", pa.bool_())]),
        "events": pa.schema([
            ("t_s", f64), ("kind", text), ("step", i64), ("by", text), ("value", text),
            ("record", text)]),
        "samples": pa.schema([
            ("stream", pa.dictionary(pa.int32(), text)), ("type", pa.dictionary(pa.int32(), text)),
            ("channel", pa.dictionary(pa.int32(), text)), ("t_s", f64), ("value", f64)]),
    }


@dataclass
class ParquetResult:
    out_dir: Path
    sessions: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _session_row(report: SessionReport, meta: dict[str, Any]) -> dict[str, Any]:
    d = report.to_dict()
    session, totals, baseline = d["session"], d["totals"], d["baseline"]
    version = meta.get("hierarchy_version")
    return {"recording": report.path, "started_utc": report.started_utc,
            "hierarchy_id": report.hierarchy_id,
            "hierarchy_version": version if isinstance(version, int) else None,
            "duration_s": session["duration_s"], "n_steps": report.n_steps,
            "highest_step": None if report.highest_step is None else report.highest_step + 1,
            "highest_step_id": session["highest_step_id"], "stops": totals.get("stops"),
            "alerts": totals.get("alerts"), "pauses": totals.get("pauses"),
            "baseline_mean_bpm": baseline.get("mean_bpm"),
            "baseline_sd_bpm": baseline.get("sd_bpm"), "ended": report.ended,
            "cut_short": report.truncated, "software": report.software}


def step_rows(report: SessionReport) -> list[dict[str, Any]]:
    """Per-step rows with exactly the numbers of the report's JSON summary."""
    rows = []
    for s in report.to_dict()["steps"]:
        rows.append({**{k: s[k] for k in (
            "step_index", "step_id", "label", "expected_suds", "visits", "time_in_step_s",
            "suds_start", "suds_peak", "suds_end", "suds_drop_pct", "habituation_s",
            "hr_mean_bpm", "hr_peak_bpm", "hr_mean_vs_baseline_bpm", "hr_peak_vs_baseline_bpm",
            "hr_values", "look_away_share", "pose_samples", "intensity_max", "stops",
            "pauses", "skipped")},
            "step": s["step_index"] + 1, "n_suds": len(s["suds"]),
            "n_expectancies": len(s["expectancies"]), "alerts": len(s["alerts"])})
    return rows


def _event_rows(recording: XdfFile) -> list[dict[str, Any]]:
    try:
        stream = recording.by_name("events")
    except KeyError:
        stream = None
    rows = []
    for record in json_records(stream) if stream is not None else []:
        if record.get("type") != "event":
            continue
        step = record.get("step_index")
        value = event_value(record)
        rows.append({"t_s": float(record.get("t_s", 0.0)), "kind": str(record.get("kind")),
                     "step": step + 1 if isinstance(step, int) else None,
                     "by": None if record.get("by") is None else str(record["by"]),
                     "value": None if value is None else str(value),
                     "record": json.dumps(record, sort_keys=True, default=str)})
    return rows


def _samples_table(pa: Any, schema: Any, recording: XdfFile) -> Any:
    """Every numeric stream in long form (one row per sample and channel)."""
    parts = []
    for stream in recording.streams.values():
        values = stream.values
        if not isinstance(values, np.ndarray) or values.size == 0:
            continue
        values = values.reshape(len(values), -1).astype(np.float64, copy=False)
        n, channels = values.shape
        labels = stream.channel_labels
        labels = labels if len(labels) == channels else [str(c) for c in range(channels)]
        t = np.repeat(np.asarray(stream.timestamps, dtype=np.float64), channels)
        channel_codes = np.tile(np.arange(channels, dtype=np.int32), n)
        parts.append(pa.table({
            "stream": pa.DictionaryArray.from_arrays(
                np.zeros(n * channels, dtype=np.int32), pa.array([stream.name])),
            "type": pa.DictionaryArray.from_arrays(
                np.zeros(n * channels, dtype=np.int32), pa.array([stream.type])),
            "channel": pa.DictionaryArray.from_arrays(channel_codes, pa.array(labels)),
            "t_s": pa.array(t), "value": pa.array(values.reshape(-1))}, schema=schema))
    if not parts:
        return schema.empty_table()
    return pa.concat_tables(parts, promote_options="permissive").cast(schema)


def _private_dirs(path: Path) -> None:
    """Every missing folder of ``path`` created 0700 (``mkdir(parents=True)`` would give the
    parents the umask's bits)."""
    missing = []
    while not path.exists():
        missing.append(path)
        path = path.parent
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)


def _write(pq: Any, table: Any, target: Path) -> Path:
    _private_dirs(target)
    path = target / "part-0.parquet"
    # Created owner-only before anything is written into it.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with open(fd, "wb") as handle:
        pq.write_table(table, handle, compression="zstd")
    return path


def export_parquet(recordings: Sequence[Path], out_dir: Path,
                   on_file: Callable[[Path], None] | None = None) -> ParquetResult:
    """Write every recording into the partitioned dataset at ``out_dir`` (a session already
    there is replaced)."""
    pa, pq = _pa()
    schemas = _schemas(pa)
    out_dir = Path(out_dir)
    _private_dirs(out_dir)
    result = ParquetResult(out_dir)
    for path in recordings:
        if on_file is not None:
            on_file(path)
        try:
            recording = read_xdf(path)
            meta = recording_metadata(recording.header)
            if not meta.get("patient_id") or not meta.get("session_id"):
                raise ValueError("not a vrexposure recording (no session metadata)")
            report = compute_report(recording, path)
        except (OSError, ValueError, KeyError) as exc:
            result.skipped.append(f"{path}: {exc}")
            continue
        partition = Path(f"patient_id={meta['patient_id']}") / f"session_id={meta['session_id']}"
        tables = {
            "sessions": pa.Table.from_pylist([_session_row(report, meta)],
                                             schema=schemas["sessions"]),
            "steps": pa.Table.from_pylist(step_rows(report), schema=schemas["steps"]),
            "events": pa.Table.from_pylist(_event_rows(recording), schema=schemas["events"]),
            "samples": _samples_table(pa, schemas["samples"], recording),
        }
        for name in TABLES:
            result.files.append(_write(pq, tables[name], out_dir / name / partition))
        result.sessions.append(str(meta["session_id"]))
    return result


__all__ = ["TABLES", "ParquetResult", "export_parquet", "step_rows"]
