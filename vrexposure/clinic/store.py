"""The clinic store: open (creating an SQLite file on first use), migrate, read and write.

Every write is one short transaction. On SQLite each transaction starts ``BEGIN IMMEDIATE``
with a busy timeout, so two treatment rooms writing at once queue instead of failing; on
PostgreSQL the unique constraints catch the only race (two new hierarchy versions at once)
and the write is retried with the next number.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, delete, event, func, inspect, select
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from ..host import HostError, check_patient_id
from .models import (
    PHASES,
    HierarchyVersion,
    Patient,
    QuestionnaireResult,
    SessionIndex,
    SessionNote,
    TreatmentCourse,
)

#: Overrides ``database.url`` (handy for a second treatment room or a test).
DATABASE_URL_ENV = "VREXPOSURE_DATABASE_URL"
#: The SQLite file's name inside the clinic's data folder (the recordings' folder).
SQLITE_FILE = "clinic.sqlite3"
SQLITE_BUSY_TIMEOUT_S = 60.0
MIGRATIONS_DIR = Path(__file__).parent / "migrations"

T = TypeVar("T")


class StoreError(Exception):
    """A clear, user-facing problem with the clinic database."""


def database_url(config: Mapping[str, Any]) -> str:
    """``$VREXPOSURE_DATABASE_URL``, else ``database.url``, else an SQLite file beside the
    recordings (``session.recording_dir``/clinic.sqlite3)."""
    url = os.environ.get(DATABASE_URL_ENV) or (config.get("database") or {}).get("url")
    if url:
        return str(url)
    folder = Path(config["session"]["recording_dir"]).expanduser().absolute()
    return f"sqlite:///{folder / SQLITE_FILE}"


def redacted(url: str) -> str:
    """The URL without its password, for messages."""
    return make_url(url).render_as_string(hide_password=True)


def database_exists(url: str) -> bool:
    """False only for an SQLite file not created yet (a server database is assumed there)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return True
    return bool(parsed.database) and parsed.database != ":memory:" and Path(
        str(parsed.database)).exists()


def _create_sqlite_file(path: Path) -> None:
    """The folder 0700 and the file 0600, before SQLite creates it with the umask's bits."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            _create_sqlite_file(Path(str(parsed.database)))
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})

        @event.listens_for(engine, "connect")
        def _connect(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy's "begin" event start transactions (pysqlite's own BEGIN is
            # deferred: two writers would then deadlock on the lock upgrade).
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(connection: Connection) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    try:
        return create_engine(url, pool_pre_ping=True)
    except (ImportError, SQLAlchemyError) as exc:
        raise StoreError(f"cannot use database {redacted(url)}: {exc} (for PostgreSQL "
                         "install the 'postgres' extra: pip install 'vrexposure[postgres]')"
                         ) from exc


def _alembic_config(connection: Connection) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    return head


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Run the Alembic migrations up to ``revision`` (shipped inside the package)."""
    from alembic import command

    with engine.begin() as connection:
        command.upgrade(_alembic_config(connection), revision)


@dataclass(frozen=True)
class IndexedSession:
    session_id: str
    patient_id: str
    recording_path: str
    sha256: str
    started_utc: str
    hierarchy_id: str
    hierarchy_version: int | None
    duration_s: float
    highest_step: int | None
    stops: int
    alerts: int
    steps: list[dict[str, Any]]
    size_bytes: int = 0
    baseline_mean_bpm: float | None = None
    truncated: bool = False


def _retry(action: Callable[[], T], attempts: int = 20) -> T:
    """Retry a write that lost a race (unique constraint, serialisation, SQLite busy)."""
    for attempt in range(attempts):
        try:
            return action()
        except (IntegrityError, OperationalError):
            if attempt == attempts - 1:
                raise
            # Jitter so two rooms that collided do not collide again in step.
            time.sleep(0.01 * (attempt + 1) * random.uniform(0.5, 1.5))
    raise AssertionError("unreachable")


class ClinicStore:
    """The clinic database. Create with :func:`open_store`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @property
    def url(self) -> str:
        return redacted(self.engine.url.render_as_string(hide_password=False))

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> ClinicStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @contextmanager
    def _tx(self) -> Iterator[Session]:
        with self._sessions.begin() as session:
            yield session

    # --- patients --------------------------------------------------------------------

    @staticmethod
    def _check_id(patient_id: str) -> str:
        try:
            return check_patient_id(patient_id)
        except HostError as exc:
            raise StoreError(str(exc)) from exc

    def add_patient(self, patient_id: str, notes: str | None = None) -> Patient:
        self._check_id(patient_id)
        try:
            with self._tx() as s:
                patient = Patient(id=patient_id, notes=notes)
                s.add(patient)
                s.flush()
                return patient
        except IntegrityError:
            raise StoreError(f"patient {patient_id} already exists") from None

    def ensure_patient(self, session: Session, patient_id: str) -> None:
        self._check_id(patient_id)
        if session.get(Patient, patient_id) is None:
            session.add(Patient(id=patient_id))
            session.flush()

    def patient(self, patient_id: str) -> Patient:
        with self._tx() as s:
            patient = s.get(Patient, patient_id)
            if patient is None:
                raise StoreError(f"no patient {patient_id} in the clinic database")
            return patient

    def patients(self) -> list[Patient]:
        with self._tx() as s:
            return list(s.scalars(select(Patient).order_by(Patient.id)))

    def set_notes(self, patient_id: str, notes: str | None) -> None:
        with self._tx() as s:
            patient = s.get(Patient, patient_id)
            if patient is None:
                raise StoreError(f"no patient {patient_id} in the clinic database")
            patient.notes = notes

    # --- treatment course ------------------------------------------------------------

    def start_course(self, patient_id: str, target_phobia: str, start: date,
                     phase: str = "assessment") -> TreatmentCourse:
        if phase not in PHASES:
            raise StoreError(f"phase '{phase}' is not one of {', '.join(PHASES)}")
        with self._tx() as s:
            self.ensure_patient(s, patient_id)
            course = TreatmentCourse(patient_id=patient_id, target_phobia=target_phobia,
                                     start_date=start, phase=phase)
            s.add(course)
            s.flush()
            return course

    def set_phase(self, patient_id: str, phase: str) -> TreatmentCourse:
        if phase not in PHASES:
            raise StoreError(f"phase '{phase}' is not one of {', '.join(PHASES)}")
        with self._tx() as s:
            course = s.scalars(select(TreatmentCourse).where(
                TreatmentCourse.patient_id == patient_id).order_by(
                TreatmentCourse.id.desc())).first()
            if course is None:
                raise StoreError(f"patient {patient_id} has no treatment course")
            course.phase = phase
            return course

    def courses(self, patient_id: str) -> list[TreatmentCourse]:
        with self._tx() as s:
            return list(s.scalars(select(TreatmentCourse).where(
                TreatmentCourse.patient_id == patient_id).order_by(TreatmentCourse.id)))

    # --- personalised hierarchies ----------------------------------------------------

    def save_hierarchy(self, patient_id: str, yaml_text: str, hierarchy_id: str,
                       comment: str | None = None) -> int:
        """Store a new version (never overwrites); returns its number (from 1)."""
        def attempt() -> int:
            with self._tx() as s:
                self.ensure_patient(s, patient_id)
                latest = s.scalar(select(func.max(HierarchyVersion.version)).where(
                    HierarchyVersion.patient_id == patient_id)) or 0
                s.add(HierarchyVersion(patient_id=patient_id, version=latest + 1,
                                       hierarchy_id=hierarchy_id, yaml_text=yaml_text,
                                       comment=comment))
                s.flush()
                return int(latest + 1)

        return _retry(attempt)

    def hierarchy(self, patient_id: str, version: int | None = None) -> HierarchyVersion:
        """The patient's hierarchy version ``version`` (default: the current, newest)."""
        with self._tx() as s:
            query = select(HierarchyVersion).where(HierarchyVersion.patient_id == patient_id)
            if version is not None:
                query = query.where(HierarchyVersion.version == version)
            row = s.scalars(query.order_by(HierarchyVersion.version.desc())).first()
            if row is None:
                which = "" if version is None else f" version {version}"
                raise StoreError(f"patient {patient_id} has no personalised hierarchy{which} "
                                 f"(save one: vrexposure hierarchy save --patient "
                                 f"{patient_id} FILE)")
            return row

    def hierarchy_versions(self, patient_id: str) -> list[HierarchyVersion]:
        with self._tx() as s:
            return list(s.scalars(select(HierarchyVersion).where(
                HierarchyVersion.patient_id == patient_id).order_by(HierarchyVersion.version)))

    # --- session index ---------------------------------------------------------------

    def index_session(self, entry: IndexedSession) -> None:
        """Add or replace the index row of one recording (by session id)."""
        def attempt() -> None:
            with self._tx() as s:
                self.ensure_patient(s, entry.patient_id)
                row = s.scalars(select(SessionIndex).where(
                    SessionIndex.session_id == entry.session_id)).first()
                if row is None:
                    row = SessionIndex(session_id=entry.session_id)
                    s.add(row)
                row.patient_id = entry.patient_id
                row.recording_path = entry.recording_path
                row.sha256 = entry.sha256
                row.size_bytes = entry.size_bytes
                row.started_utc = entry.started_utc
                row.hierarchy_id = entry.hierarchy_id
                row.hierarchy_version = entry.hierarchy_version
                row.duration_s = entry.duration_s
                row.highest_step = entry.highest_step
                row.stops = entry.stops
                row.alerts = entry.alerts
                row.baseline_mean_bpm = entry.baseline_mean_bpm
                row.truncated = entry.truncated
                row.steps = entry.steps
                row.indexed_utc = datetime.now(UTC)

        _retry(attempt)

    def sessions(self, patient_id: str | None = None) -> list[SessionIndex]:
        """Indexed sessions (of one patient), oldest first."""
        with self._tx() as s:
            query = select(SessionIndex)
            if patient_id is not None:
                query = query.where(SessionIndex.patient_id == patient_id)
            return list(s.scalars(query.order_by(SessionIndex.started_utc, SessionIndex.id)))

    def session_by_path(self, path: str) -> SessionIndex | None:
        with self._tx() as s:
            return s.scalars(select(SessionIndex).where(
                SessionIndex.recording_path == path)).first()

    def session_by_id(self, session_id: str) -> SessionIndex | None:
        with self._tx() as s:
            return s.scalars(select(SessionIndex).where(
                SessionIndex.session_id == session_id)).first()

    # --- questionnaires and notes ----------------------------------------------------

    def add_questionnaire(self, patient_id: str, questionnaire_id: str, time_utc: datetime,
                          scores: Mapping[str, Any], source_recording: str | None = None
                          ) -> None:
        with self._tx() as s:
            self.ensure_patient(s, patient_id)
            s.add(QuestionnaireResult(patient_id=patient_id, questionnaire_id=questionnaire_id,
                                      time_utc=time_utc, scores=dict(scores),
                                      source_recording=source_recording))

    def replace_questionnaires(self, source_recording: str,
                               results: Sequence[tuple[str, str, datetime, Mapping[str, Any]]]
                               ) -> None:
        """The questionnaire results of one file (patient, questionnaire, time, scores),
        replacing what was indexed from it before (re-indexing never doubles them)."""
        def attempt() -> None:
            with self._tx() as s:
                s.execute(delete(QuestionnaireResult).where(
                    QuestionnaireResult.source_recording == source_recording))
                for patient_id, questionnaire_id, time_utc, scores in results:
                    self.ensure_patient(s, patient_id)
                    s.add(QuestionnaireResult(
                        patient_id=patient_id, questionnaire_id=questionnaire_id,
                        time_utc=time_utc, scores=dict(scores),
                        source_recording=source_recording))
        _retry(attempt)

    def questionnaires(self, patient_id: str) -> list[QuestionnaireResult]:
        with self._tx() as s:
            return list(s.scalars(select(QuestionnaireResult).where(
                QuestionnaireResult.patient_id == patient_id).order_by(
                QuestionnaireResult.time_utc, QuestionnaireResult.id)))

    def add_note(self, patient_id: str, text: str, session_id: str | None = None) -> None:
        with self._tx() as s:
            self.ensure_patient(s, patient_id)
            s.add(SessionNote(patient_id=patient_id, text=text, session_id=session_id))

    def notes(self, patient_id: str) -> list[SessionNote]:
        with self._tx() as s:
            return list(s.scalars(select(SessionNote).where(
                SessionNote.patient_id == patient_id).order_by(SessionNote.time_utc,
                                                               SessionNote.id)))


def open_store(url: str, *, migrate: bool | None = None) -> ClinicStore:
    """Open the clinic database at ``url``.

    ``migrate`` None (default): an SQLite file is created and migrated on first use with no
    set-up; a server database must be at the newest revision (``vrexposure db upgrade``).
    """
    engine = make_engine(url)
    sqlite = engine.dialect.name == "sqlite"
    try:
        if migrate or (migrate is None and sqlite):
            upgrade(engine)
        else:
            current = current_revision(engine)
            if current != head_revision():
                engine.dispose()
                raise StoreError(
                    f"the clinic database {redacted(url)} is at revision {current or 'none'}, "
                    f"this version needs {head_revision()}: run 'vrexposure db upgrade'")
    except OperationalError as exc:
        engine.dispose()
        raise StoreError(f"cannot open the clinic database {redacted(url)}: "
                         f"{exc.orig or exc}") from exc
    return ClinicStore(engine)


def table_names(engine: Engine) -> list[str]:
    return sorted(inspect(engine).get_table_names())
