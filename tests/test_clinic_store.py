"""The clinic store on SQLite and on a real PostgreSQL server: schema, patients, courses,
hierarchy versions, the session index rebuilt from recordings, questionnaires, notes."""

from __future__ import annotations

import hashlib
import os
import stat
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine

from vrexposure.clinic import StoreError, open_store
from vrexposure.clinic.index import reindex, sha256_of
from vrexposure.clinic.models import Base
from vrexposure.clinic.store import current_revision, database_url, head_revision, table_names
from vrexposure.config import load_config
from vrexposure.report import compute_report
from vrexposure.xdf import read_xdf

from .clinic_support import db_url, postgres_server  # noqa: F401  (fixtures)
from .test_report import rich_session, suds, write_session

TABLES = ["alembic_version", "hierarchy_versions", "patients", "questionnaire_results",
          "session_notes", "sessions", "treatment_courses"]


def test_migrations_build_exactly_the_models(db_url: str) -> None:  # noqa: F811
    store = open_store(db_url, migrate=True)
    try:
        assert table_names(store.engine) == TABLES
        assert current_revision(store.engine) == head_revision()
        with store.engine.connect() as connection:
            # Nothing for Alembic's autogenerate to add: migration and models agree.
            assert compare_metadata(MigrationContext.configure(connection),
                                    Base.metadata) == []
        open_store(db_url, migrate=True).close()  # upgrading again changes nothing
        assert current_revision(store.engine) == head_revision()
    finally:
        store.close()


def test_a_server_database_must_be_upgraded_first(postgres_server) -> None:  # noqa: F811
    url = postgres_server.new_database()
    with pytest.raises(StoreError, match="vrexposure db upgrade"):
        open_store(url)
    open_store(url, migrate=True).close()
    open_store(url).close()


def test_sqlite_appears_by_itself_owner_only(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VREXPOSURE_DATABASE_URL", raising=False)
    old = os.umask(0o022)  # the usual umask: the file would be 0644 without our care
    try:
        config = load_config(overrides={"session": {"recording_dir": str(tmp_path / "rec")}})
        url = database_url(config)
        assert url == f"sqlite:///{tmp_path / 'rec' / 'clinic.sqlite3'}"
        with open_store(url) as store:
            store.add_patient("P017")
    finally:
        os.umask(old)
    path = tmp_path / "rec" / "clinic.sqlite3"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    with open_store(url) as store:
        assert [p.id for p in store.patients()] == ["P017"]


def test_patients_courses_hierarchies_questionnaires_notes(db_url: str) -> None:  # noqa: F811
    with open_store(db_url, migrate=True) as store:
        store.add_patient("P017", notes="prefers morning sessions")
        with pytest.raises(StoreError, match="already exists"):
            store.add_patient("P017")
        for name in ("Jane Doe", "jane", "", "x" * 40):
            with pytest.raises(StoreError, match="pseudonymous"):
                store.add_patient(name)
        with pytest.raises(StoreError, match="no patient P099"):
            store.patient("P099")
        assert store.patient("P017").notes == "prefers morning sessions"

        store.start_course("P017", "arachnophobia", date(2026, 11, 2))
        with pytest.raises(StoreError, match="phase"):
            store.set_phase("P017", "finished")
        store.set_phase("P017", "treatment")
        (course,) = store.courses("P017")
        assert (course.target_phobia, course.start_date, course.phase) == (
            "arachnophobia", date(2026, 11, 2), "treatment")

        with pytest.raises(StoreError, match="no personalised hierarchy"):
            store.hierarchy("P017")
        assert store.save_hierarchy("P017", "id: a\n", "a", "from the template") == 1
        assert store.save_hierarchy("P017", "id: a\n# edited\n", "a") == 2
        assert store.save_hierarchy("P018", "id: b\n", "b") == 1  # per patient
        assert store.hierarchy("P017").version == 2
        assert store.hierarchy("P017").yaml_text.endswith("# edited\n")
        assert store.hierarchy("P017", 1).comment == "from the template"
        assert [v.version for v in store.hierarchy_versions("P017")] == [1, 2]

        when = datetime(2026, 11, 9, 10, 0, tzinfo=UTC)
        store.add_questionnaire("P017", "FSQ", when, {"total": 84, "items": [3, 4]},
                                "/rec/P017_x.xdf")
        (result,) = store.questionnaires("P017")
        assert (result.questionnaire_id, result.scores, result.source_recording) == (
            "FSQ", {"total": 84, "items": [3, 4]}, "/rec/P017_x.xdf")
        assert result.time_utc.replace(tzinfo=UTC) == when
        store.add_note("P017", "good habituation on step 2", session_id="abc")
        store.add_note("P017", "homework: photos of spiders")
        assert [n.text for n in store.notes("P017")] == [
            "good habituation on step 2", "homework: photos of spiders"]
        assert {p.id for p in store.patients()} == {"P017", "P018"}


def _second_session(path: Path) -> Path:
    events = [(0.0, "exposure_started", {"step_index": 2, "step_id": "x", "by": "t"}),
              suds(1.0, 2, 35), suds(3.0, 2, 55),
              (4.0, "step_changed", {"from": 2, "to": 3, "reason": "next", "by": "t"}),
              suds(5.0, 3, 40),
              (6.0, "stopped", {"reason": "STOP", "resume_to": "exposure", "by": "p"}),
              (7.0, "resumed", {"to": "exposure", "by": "t"}),
              (8.0, "stopped", {"reason": "STOP", "resume_to": "exposure", "by": "p"}),
              (9.0, "ended", {"reason": "done", "by": "t"})]
    hr = [(float(t), 80.0, "good") for t in range(10)]
    return write_session(path, patient="P042", started="2026-11-09T09:00:00+00:00",
                         events=events, hr=hr)


def test_reindex_builds_the_index_from_recordings(db_url: str, tmp_path: Path) -> None:  # noqa: F811
    folder = tmp_path / "sessions"
    (folder / "room2").mkdir(parents=True)
    first = rich_session(folder / "P042_a.xdf")
    second = _second_session(folder / "room2" / "P042_b.xdf")
    (folder / "broken.xdf").write_bytes(b"not an xdf file")
    with open_store(db_url, migrate=True) as store:
        result = reindex(store, folder)
        assert sorted(result.added) == sorted([str(first), str(second)])
        assert len(result.unreadable) == 1 and "broken.xdf" in result.unreadable[0]
        rows = store.sessions("P042")
        assert [r.recording_path for r in rows] == [str(first), str(second)]  # oldest first
        for row, path in zip(rows, (first, second), strict=True):
            report = compute_report(read_xdf(path), path)
            assert row.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
            assert row.size_bytes == path.stat().st_size
            assert row.highest_step == report.highest_step + 1  # 1-based
            assert row.stops == report.totals["stops"]
            assert [(s["step"], s["suds_peak"], s["suds_end"]) for s in row.steps] == [
                (s.step_index + 1, s.suds_peak, s.suds_end) for s in report.steps
                if not s.skipped]
        # Numbers checked by hand: the rich session reached step 2 with one STOP; the
        # second started at step 3, moved to 4, STOP twice.
        assert [(r.highest_step, r.stops) for r in rows] == [(2, 1), (4, 2)]
        assert rows[1].steps[0]["suds_peak"] == 55 and rows[1].steps[0]["suds_end"] == 55
        assert reindex(store, folder).unchanged == [str(first), str(second)]


def test_a_changed_recording_is_reported_not_reindexed(db_url: str, tmp_path: Path) -> None:  # noqa: F811
    folder = tmp_path / "sessions"
    folder.mkdir()
    path = rich_session(folder / "P042_a.xdf")
    with open_store(db_url, migrate=True) as store:
        reindex(store, folder)
        indexed = store.sessions("P042")[0].sha256
        with open(path, "ab") as handle:
            handle.write(b"\0tampered")
        result = reindex(store, folder)
        assert result.added == [] and result.unchanged == []
        assert len(result.changed) == 1 and str(path) in result.changed[0]
        assert "does not match" in result.changed[0]
        assert store.sessions("P042")[0].sha256 == indexed  # left as it was
        accepted = reindex(store, folder, accept_changed=True)
        assert accepted.accepted == [str(path)]
        assert store.sessions("P042")[0].sha256 == sha256_of(path) != indexed
        path.unlink()
        assert reindex(store, folder).missing == [str(path)]


def test_sqlite_engine_is_plain_sqlalchemy_readable(tmp_path: Path) -> None:
    """The file is an ordinary SQLite database other tools can read."""
    url = f"sqlite:///{tmp_path / 'c.sqlite3'}"
    with open_store(url) as store:
        store.add_patient("P001")
    engine = create_engine(url)
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT id FROM patients").scalars().all() == ["P001"]
    engine.dispose()


def test_questionnaires_of_sessions_and_between_sessions_fill_the_record(
        db_url: str, tmp_path: Path, demo_file: Path) -> None:  # noqa: F811
    """The SSQ the demo gave before and after, and a form given outside a session, land in
    the record's questionnaire table; indexing again does not double them."""
    import shutil

    from click.testing import CliRunner

    from vrexposure.cli import main

    folder = tmp_path / "sessions"
    folder.mkdir()
    shutil.copy(demo_file, folder / demo_file.name)
    answers = ",".join(["1"] * 16)
    config = tmp_path / "config.yaml"
    config.write_text(f"session:\n  recording_dir: {folder}\ndatabase:\n  url: {db_url}\n")
    with open_store(db_url, migrate=True) as store:
        reindex(store, folder)
        reindex(store, folder, accept_changed=True)
        given = store.questionnaires("DEMO01")
        assert [q.questionnaire_id for q in given] == ["ssq", "ssq"]
        assert all(q.scores["total"] is not None for q in given)
        assert all(q.source_recording == str(folder / demo_file.name) for q in given)
    done = CliRunner().invoke(main, ["questionnaire", "ssq", "--patient", "DEMO01",
                                     "--answers", answers, "--config", str(config)])
    assert done.exit_code == 0, done.output
    assert "indexed in the clinic database" in done.output
    with open_store(db_url) as store:
        given = store.questionnaires("DEMO01")
        # each symptom 1; 5 symptoms count in two subscales: (16 + 5) × 3.74
        assert len(given) == 3 and given[-1].scores["total"] == pytest.approx(21 * 3.74)
        reindex(store, folder)  # the stand-alone file again: still three rows
        assert len(store.questionnaires("DEMO01")) == 3
