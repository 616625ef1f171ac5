"""The clinic database's tables (SQLAlchemy 2 declarative models).

The XDF recordings stay the source of truth for a session: ``sessions`` only indexes them
(path, checksum, summary numbers) and can be rebuilt from them. Patients are pseudonymous ids
only, checked with the session host's rule; nothing here may hold a name.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

#: Phases of a treatment course.
PHASES = ("assessment", "treatment", "follow-up")

# Stable constraint names: migrations and both back-ends agree on them.
NAMING = {"ix": "ix_%(column_0_label)s", "uq": "uq_%(table_name)s_%(column_0_name)s",
          "ck": "ck_%(table_name)s_%(constraint_name)s",
          "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
          "pk": "pk_%(table_name)s"}


def utc_now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Patient(Base):
    __tablename__ = "patients"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_utc: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    #: Free-text clinical notes: the clinic's responsibility (never a name).
    notes: Mapped[str | None] = mapped_column(Text, default=None)


class TreatmentCourse(Base):
    __tablename__ = "treatment_courses"
    __table_args__ = (CheckConstraint(
        "phase IN ('assessment', 'treatment', 'follow-up')", name="phase"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"), index=True)
    target_phobia: Mapped[str] = mapped_column(String(64))
    start_date: Mapped[date] = mapped_column(Date)
    phase: Mapped[str] = mapped_column(String(16), default="assessment")
    created_utc: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class HierarchyVersion(Base):
    """A patient's personalised hierarchy: saving one adds a version, never overwrites."""

    __tablename__ = "hierarchy_versions"
    __table_args__ = (UniqueConstraint("patient_id", "version", name="uq_hierarchy_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    hierarchy_id: Mapped[str] = mapped_column(String(64))
    yaml_text: Mapped[str] = mapped_column(Text)
    created_utc: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    comment: Mapped[str | None] = mapped_column(Text, default=None)


class SessionIndex(Base):
    """One recording: where it is, its checksum and the numbers of its report."""

    __tablename__ = "sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(String(64), unique=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"), index=True)
    recording_path: Mapped[str] = mapped_column(String(1024), unique=True)
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(Integer)
    started_utc: Mapped[str] = mapped_column(String(40))
    hierarchy_id: Mapped[str] = mapped_column(String(64))
    #: The personalised hierarchy version the session used (None: a template file).
    hierarchy_version: Mapped[int | None] = mapped_column(Integer, default=None)
    duration_s: Mapped[float] = mapped_column(Float)
    #: Highest step reached, numbered from 1 as in the panel and reports (None: no exposure).
    highest_step: Mapped[int | None] = mapped_column(Integer, default=None)
    stops: Mapped[int] = mapped_column(Integer, default=0)
    alerts: Mapped[int] = mapped_column(Integer, default=0)
    baseline_mean_bpm: Mapped[float | None] = mapped_column(Float, default=None)
    truncated: Mapped[bool] = mapped_column(Boolean, default=False)
    #: Per-step numbers (step 1-based, id, expected, time, SUDS start/peak/end, HR mean).
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    indexed_utc: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


class QuestionnaireResult(Base):
    __tablename__ = "questionnaire_results"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"), index=True)
    questionnaire_id: Mapped[str] = mapped_column(String(64))
    time_utc: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    scores: Mapped[dict[str, Any]] = mapped_column(JSON)
    source_recording: Mapped[str | None] = mapped_column(String(1024), default=None)


class SessionNote(Base):
    __tablename__ = "session_notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    patient_id: Mapped[str] = mapped_column(ForeignKey("patients.id"), index=True)
    session_id: Mapped[str | None] = mapped_column(String(64), default=None)
    time_utc: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    text: Mapped[str] = mapped_column(Text)
