"""The session index, rebuilt from recordings (the XDF files stay the source of truth).

The numbers come from :func:`vrexposure.report.compute_report`, the same function as
``vrexposure report``, so the index never disagrees with a report.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ..report import compute_report, recording_metadata
from ..xdf import read_xdf
from .store import ClinicStore, IndexedSession, StoreError

CHUNK_BYTES = 1 << 20


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _opt(value: Any, digits: int) -> Any:
    return None if value is None else round(float(value), digits)


def entry_from_recording(path: Path, sha256: str | None = None) -> IndexedSession:
    """The index row of one recording (raises ValueError/OSError for a file we cannot read)."""
    path = Path(path).absolute()
    checksum = sha256 or sha256_of(path)
    recording = read_xdf(path)
    meta = recording_metadata(recording.header)
    if not meta.get("session_id") or not meta.get("patient_id"):
        raise ValueError(f"{path}: not a vrexposure recording (no session metadata)")
    report = compute_report(recording, path)
    steps = [{"step": s.step_index + 1, "step_id": s.step_id,
              "expected_suds": s.expected_suds, "time_in_step_s": _opt(s.time_in_step_s, 2),
              "suds_start": s.suds_start, "suds_peak": s.suds_peak, "suds_end": s.suds_end,
              "hr_mean_bpm": _opt(s.hr_mean_bpm, 1), "stops": s.stops}
             for s in report.steps if not s.skipped]  # never shown: no numbers
    version = meta.get("hierarchy_version")
    base = report.baseline.get("mean_bpm")
    return IndexedSession(
        session_id=str(meta["session_id"]), patient_id=str(meta["patient_id"]),
        recording_path=str(path), sha256=checksum, started_utc=report.started_utc,
        hierarchy_id=report.hierarchy_id,
        hierarchy_version=int(version) if isinstance(version, int) else None,
        duration_s=round(report.duration_s, 2),
        highest_step=None if report.highest_step is None else report.highest_step + 1,
        stops=int(report.totals["stops"]), alerts=int(report.totals["alerts"]), steps=steps,
        size_bytes=path.stat().st_size, baseline_mean_bpm=_opt(base, 2),
        truncated=report.truncated)


@dataclass
class ReindexResult:
    added: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    #: Recordings whose bytes no longer match the indexed checksum (left as indexed).
    changed: list[str] = field(default_factory=list)
    #: Changed recordings re-indexed because the caller accepted them.
    accepted: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    #: Indexed recordings under the folder whose file is gone.
    missing: list[str] = field(default_factory=list)


def reindex(store: ClinicStore, folder: Path, *, accept_changed: bool = False,
            on_file: Callable[[Path], None] | None = None) -> ReindexResult:
    """Index every recording under ``folder``; report (not re-index) changed ones."""
    folder = Path(folder).absolute()
    if not folder.is_dir():
        raise StoreError(f"{folder}: not a folder")
    result = ReindexResult()
    for path in sorted(folder.rglob("*.xdf")):
        if on_file is not None:
            on_file(path)
        try:
            checksum = sha256_of(path)
        except OSError as exc:
            result.unreadable.append(f"{path}: {exc.strerror or exc}")
            continue
        known = store.session_by_path(str(path))
        if known is not None and known.sha256 == checksum:
            result.unchanged.append(str(path))
            continue
        if known is not None and not accept_changed:
            result.changed.append(f"{path}: checksum {checksum[:12]}… does not match the "
                                  f"indexed {known.sha256[:12]}… (not re-indexed)")
            continue
        try:
            entry = entry_from_recording(path, checksum)
        except (OSError, ValueError, KeyError) as exc:
            result.unreadable.append(f"{path}: {exc}")
            continue
        by_id = store.session_by_id(entry.session_id)
        if known is None and by_id is not None and by_id.recording_path != str(path) \
                and Path(by_id.recording_path).exists():
            # The same session in two files (a copy): index the first one only.
            result.unreadable.append(f"{path}: session {entry.session_id} is already indexed "
                                     f"from {by_id.recording_path}")
            continue
        store.index_session(entry)
        index_questionnaires(store, path)
        (result.accepted if known is not None else result.added).append(str(path))
    for path in sorted(folder.rglob("*.questionnaire.json")):  # forms given between sessions
        try:
            index_questionnaires(store, path)
        except (OSError, ValueError, KeyError) as exc:
            result.unreadable.append(f"{path}: {exc}")
    for row in store.sessions():
        if row.recording_path.startswith(str(folder)) and not Path(row.recording_path).exists():
            result.missing.append(row.recording_path)
    return result


def questionnaire_results(path: Path) -> list[tuple[str, str, datetime, dict[str, Any]]]:
    """(patient, questionnaire id, time, scores) of every form completed in ``path`` (a
    recording or a stand-alone questionnaire file), for the record's questionnaire table."""
    from ..questionnaires.records import read_any

    results = []
    for given in read_any(path):
        try:
            when = datetime.fromisoformat(given.completed_utc)
        except ValueError:
            continue
        results.append((given.patient_id, given.id, when,
                        {k: v.get("value") for k, v in given.scores.items()}))
    return results


def index_questionnaires(store: ClinicStore, path: Path) -> int:
    """Put the questionnaires of ``path`` in the record (replacing its earlier rows)."""
    results = questionnaire_results(path)
    store.replace_questionnaires(str(Path(path).absolute()), results)
    return len(results)
