"""A patient's course as the panel shows it at session start (pure apart from the store and
the last recording, which it reads for open expectancies)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .store import ClinicStore


@dataclass(frozen=True)
class SessionLine:
    number: int
    date: str
    hierarchy_id: str
    hierarchy_version: int | None
    #: Numbered from 1 (None: no exposure).
    highest_step: int | None
    stops: int
    duration_s: float


@dataclass(frozen=True)
class LastStep:
    step: int
    step_id: str
    suds_peak: int | None
    suds_end: int | None


@dataclass
class PatientHistory:
    patient_id: str
    course: str | None
    sessions: list[SessionLine]
    last_steps: list[LastStep]
    open_expectancies: list[str]
    last_notes: list[str]
    #: Questionnaire id → [(date, total score)], oldest first.
    questionnaires: dict[str, list[tuple[str, float]]] = field(default_factory=dict)

    def last_suds(self) -> dict[str, tuple[int | None, int | None]]:
        """Step id → (peak, end) SUDS last session: shown beside today's in the hierarchy."""
        return {s.step_id: (s.suds_peak, s.suds_end) for s in self.last_steps}

    def questionnaire_trends(self) -> list[str]:
        return [f"{qid}: " + " → ".join(f"{value:g}" for _, value in points)
                for qid, points in sorted(self.questionnaires.items())]


def _total(scores: dict[str, Any]) -> float | None:
    value = scores.get("total")
    return float(value) if isinstance(value, int | float) else None


def _open_expectancies(recording: Path) -> list[str]:
    from ..report import compute_report
    from ..xdf import read_xdf

    report = compute_report(read_xdf(recording), recording)
    return [f"step {s.step_index + 1}: “{e.outcome}” ({e.likelihood_pct} %)"
            for s in report.steps for e in s.expectancies if e.happened is None]


def patient_history(store: ClinicStore, patient_id: str) -> PatientHistory:
    store.patient(patient_id)  # a clear error for an unknown patient
    rows = store.sessions(patient_id)
    sessions = [SessionLine(number, r.started_utc[:10], r.hierarchy_id, r.hierarchy_version,
                            r.highest_step, r.stops, r.duration_s)
                for number, r in enumerate(rows, start=1)]
    last = rows[-1] if rows else None
    last_steps = [] if last is None else [
        LastStep(int(s["step"]), str(s["step_id"]), s.get("suds_peak"), s.get("suds_end"))
        for s in last.steps]
    open_expectancies: list[str] = []
    if last is not None and Path(last.recording_path).exists():
        try:
            open_expectancies = _open_expectancies(Path(last.recording_path))
        except (OSError, ValueError) as exc:
            open_expectancies = [f"(last recording not readable: {exc})"]
    notes = store.notes(patient_id)
    last_notes = [n.text for n in notes if last is not None and n.session_id == last.session_id]
    if not last_notes:
        last_notes = [n.text for n in notes[-3:]]
    courses = store.courses(patient_id)
    course = None if not courses else (
        f"{courses[-1].target_phobia}, {courses[-1].phase} since {courses[-1].start_date}")
    trends: dict[str, list[tuple[str, float]]] = {}
    for q in store.questionnaires(patient_id):
        total = _total(q.scores)
        if total is not None:
            trends.setdefault(q.questionnaire_id, []).append((f"{q.time_utc:%Y-%m-%d}", total))
    return PatientHistory(patient_id, course, sessions, last_steps, open_expectancies,
                          last_notes, trends)
