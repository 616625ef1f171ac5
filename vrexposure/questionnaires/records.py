"""Completed questionnaires as records: read from session recordings (XDF events) and from
stand-alone questionnaire files (pre-treatment, post-treatment, follow-up).

Stand-alone file format (``<patient>_<YYYYmmddTHHMMSS>_q-<id>.questionnaire.json``, written
next to the patient's session recordings, owner-only permissions)::

    {"schema": "vrexposure.questionnaire/1", "patient_id": "P017",
     "started_utc": "2026-12-07T09:30:00+00:00", "occasion": "before_treatment",
     "events": [{"kind": "questionnaire_started", "t_s": 0.0, "definition": {...}, ...},
                {"kind": "questionnaire_answer", "t_s": 0.0, "item": "...", "response": 2,
                 "answered": true, "by": "therapist:cli"}, ...,
                {"kind": "questionnaire_scored", "t_s": 0.0, "scores": {...}, ...}]}

The events are the very events a session records, so both kinds of record are read the
same way. ``t_s`` counts seconds from ``started_utc``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from .model import Questionnaire, questionnaire_from_dict
from .session import answer_event, finish_events, start_event

SCHEMA = "vrexposure.questionnaire/1"
SUFFIX = ".questionnaire.json"
PATIENT_ID_RE = re.compile(r"^(?=.*\d)[A-Za-z0-9_-]{2,32}$")
#: Treatment phases, in the order a progress page shows them.
PHASES = ("before_treatment", "session", "after_treatment", "follow_up")


@dataclass
class Administration:
    """One completed questionnaire: what was asked, every answer, and the scores."""

    patient_id: str
    questionnaire: Questionnaire
    occasion: str
    started_utc: str  # when the session (or the stand-alone form) started
    t_s: float  # when it was scored, seconds after ``started_utc``
    answers: list[dict[str, Any]] = field(default_factory=list)
    scores: dict[str, dict[str, Any]] = field(default_factory=dict)
    source: str = ""

    @property
    def id(self) -> str:
        return self.questionnaire.id

    @property
    def completed_utc(self) -> str:
        try:
            start = datetime.fromisoformat(self.started_utc)
        except ValueError:
            return self.started_utc
        return (start + timedelta(seconds=self.t_s)).isoformat()

    @property
    def phase(self) -> str:
        """Treatment phase for progress plots: in-session forms are 'session'."""
        return self.occasion if self.occasion in PHASES else "session"

    def final_answers(self) -> dict[str, int | None]:
        out: dict[str, int | None] = {}
        for record in self.answers:
            out[str(record["item"])] = record.get("response")
        return out

    def value(self, score_id: str) -> float | None:
        entry = self.scores.get(score_id) or {}
        value = entry.get("value")
        return None if value is None else float(value)


def from_events(events: Iterable[Mapping[str, Any]], patient_id: str, started_utc: str,
                source: str = "") -> list[Administration]:
    """Completed questionnaires in an event stream (records with ``kind`` and ``t_s``)."""
    done: list[Administration] = []
    current: Administration | None = None
    for event in events:
        kind = event.get("kind")
        if kind == "questionnaire_started":
            try:
                definition = questionnaire_from_dict(event["definition"], f"{source}:event")
            except Exception:  # an unreadable definition: the form cannot be interpreted
                current = None
                continue
            current = Administration(patient_id, definition, str(event.get("occasion", "")),
                                     started_utc, float(event.get("t_s", 0.0)), source=source)
        elif kind == "questionnaire_answer" and current is not None \
                and event.get("id") == current.id:
            current.answers.append({"item": event.get("item"), "response": event.get("response"),
                                    "answered": bool(event.get("answered")),
                                    "t_s": float(event.get("t_s", 0.0)),
                                    "by": str(event.get("by", ""))})
        elif kind == "questionnaire_scored" and current is not None \
                and event.get("id") == current.id:
            current.scores = {k: dict(v) for k, v in dict(event.get("scores", {})).items()}
            current.t_s = float(event.get("t_s", current.t_s))
            done.append(current)
            current = None
    return done


def from_recording(path: Path, recording: Any = None) -> list[Administration]:
    """Completed questionnaires of a session recording (``recording``: already read)."""
    from ..replay import parse_json_records
    from ..report import read_header, recording_metadata
    from ..xdf import read_xdf

    meta = recording_metadata(read_header(path))
    recording = recording if recording is not None else read_xdf(path)
    try:
        stream = recording.by_name("events")
    except KeyError:
        return []
    events = [{**record, "t_s": record.get("t_s", when)}
              for when, record in parse_json_records(stream) if record.get("type") == "event"]
    return from_events(events, str(meta.get("patient_id", "")),
                       str(meta.get("started_utc", "")), str(path))


def administer(definition: Questionnaire, responses: Mapping[str, int | None], occasion: str,
               by: str) -> list[dict[str, Any]]:
    """The events of a form answered all at once (outside a session): every item gets an
    answer event, a missing one as unanswered; then the scores. Raises ``ValueError``."""
    events: list[dict[str, Any]] = [
        {"kind": "questionnaire_started", "t_s": 0.0,
         **start_event(None, {definition.id: definition}, {"id": definition.id,
                                                          "occasion": occasion}, False, by)}]
    from .session import evolve_answer, evolve_started

    form = evolve_started(events[0], 0.0)
    for item in definition.items:
        if item.id in responses:
            data = answer_event(form, {"item": item.id, "response": responses[item.id]}, by)
            events.append({"kind": "questionnaire_answer", "t_s": 0.0, **data})
            form = evolve_answer(form, data) or form
    unknown = set(responses) - set(definition.item_ids)
    if unknown:
        raise ValueError(f"questionnaire '{definition.id}' has no item(s) "
                         f"{', '.join(sorted(unknown))}")
    for kind, data in finish_events(form, {}, (), None, by):
        events.append({"kind": kind, "t_s": 0.0, **data})
    return events


def standalone_name(patient_id: str, questionnaire_id: str, started: datetime) -> str:
    return f"{patient_id}_{started.strftime('%Y%m%dT%H%M%S')}_q-{questionnaire_id}{SUFFIX}"


def write_standalone(folder: Path, patient_id: str, occasion: str,
                     events: Sequence[Mapping[str, Any]], started: datetime | None = None
                     ) -> Path:
    """Write a stand-alone questionnaire record next to the patient's recordings."""
    if not PATIENT_ID_RE.match(patient_id):
        raise ValueError(f"patient id {patient_id!r} is not a pseudonymous id: use 2-32 "
                         "letters, digits, '-' or '_' including at least one digit; never a name")
    started = started or datetime.now(UTC)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    qid = str(events[0]["id"])
    path = folder / standalone_name(patient_id, qid, started)
    record = {"schema": SCHEMA, "patient_id": patient_id, "started_utc": started.isoformat(),
              "occasion": occasion, "events": list(events)}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(record, handle, indent=1, ensure_ascii=False)
    return path


def read_standalone(path: Path) -> list[Administration]:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise ValueError(f"{path}: not a vrexposure questionnaire file ({SCHEMA})")
    return from_events(data.get("events", []), str(data.get("patient_id", "")),
                       str(data.get("started_utc", "")), str(path))


def read_any(path: Path) -> list[Administration]:
    """Questionnaires of a session recording (``.xdf``) or a stand-alone file."""
    if str(path).endswith(SUFFIX) or path.suffix == ".json":
        return read_standalone(path)
    return from_recording(path)


def find_administrations(folder: Path, patient_id: str
                         ) -> tuple[list[Administration], list[str]]:
    """Every completed questionnaire of a patient in ``folder`` (recordings and stand-alone
    files, recursively), oldest first, and the files that could not be read."""
    found: list[Administration] = []
    skipped: list[str] = []
    paths = sorted([*Path(folder).rglob("*.xdf"), *Path(folder).rglob(f"*{SUFFIX}")])
    for path in paths:
        try:
            found.extend(a for a in read_any(path) if a.patient_id == patient_id)
        except (OSError, ValueError, KeyError) as exc:
            skipped.append(f"{path}: {exc}")
    found.sort(key=lambda a: a.completed_utc)
    return found, skipped
