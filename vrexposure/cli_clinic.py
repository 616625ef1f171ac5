"""``vrexposure db|patient|hierarchy``: the clinic record from the command line.

Standalone click groups; ``vrexposure/cli.py`` registers them. The database is the config's
``database.url`` (or ``$VREXPOSURE_DATABASE_URL``); by default an SQLite file beside the
recordings, created on first use.
"""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from typing import Any

import click

from .cli_common import config_or_exit, hierarchy_path

#: First line of an exported hierarchy (replaced, not stacked, when it is saved again).
EXPORT_HEADER = "# Personalised hierarchy of patient"

_config_option = click.option("--config", "config_path", type=click.Path(exists=True),
                              help="Settings file (database.url).")


def _open_url_or_exit(url: str, *, migrate: bool | None = None) -> Any:
    from .clinic import StoreError, open_store

    try:
        return open_store(url, migrate=migrate)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from exc


def open_store_or_exit(config_path: str | None, *, migrate: bool | None = None) -> Any:
    """The clinic database of the config (an SQLite one is created on first use)."""
    from .clinic import database_url

    return _open_url_or_exit(database_url(config_or_exit(config_path)), migrate=migrate)


def _store_call(action: Any) -> Any:
    from .clinic import StoreError

    try:
        return action()
    except StoreError as exc:
        raise click.ClickException(str(exc)) from exc


# --------------------------------------------------------------------------- db


@click.group("db")
def db_command() -> None:
    """The clinic database: migrations and the session index."""


@db_command.command("upgrade")
@_config_option
def db_upgrade(config_path: str | None) -> None:
    """Create or migrate the clinic database to this version's schema (Alembic)."""
    from .clinic.store import current_revision

    with open_store_or_exit(config_path, migrate=True) as store:
        click.echo(f"clinic database {store.url}: revision {current_revision(store.engine)}")


@db_command.command("reindex")
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@_config_option
@click.option("--accept-changed", is_flag=True,
              help="Re-index recordings whose checksum changed (default: only report them).")
def db_reindex(folder: Path, config_path: str | None, accept_changed: bool) -> None:
    """Index every recording under FOLDER; a recording whose checksum no longer matches its
    index entry is reported, not silently re-indexed (exit status 1)."""
    from .clinic.index import reindex

    with open_store_or_exit(config_path) as store:
        result = _store_call(lambda: reindex(store, folder, accept_changed=accept_changed))
    for path in result.added:
        click.echo(f"indexed: {path}")
    for path in result.accepted:
        click.echo(f"re-indexed (changed, accepted): {path}")
    for line in result.changed:
        click.echo(f"CHANGED: {line}", err=True)
    for line in result.unreadable:
        click.echo(f"not read: {line}", err=True)
    for path in result.missing:
        click.echo(f"missing: {path} (indexed, file gone)", err=True)
    click.echo(f"{len(result.added)} added, {len(result.unchanged)} unchanged, "
               f"{len(result.changed)} changed, {len(result.accepted)} re-indexed, "
               f"{len(result.unreadable)} not read, {len(result.missing)} missing")
    if result.changed:
        sys.exit(1)


# --------------------------------------------------------------------------- patient


@click.group("patient")
def patient_command() -> None:
    """Patients of the clinic record (pseudonymous ids only, never a name)."""


@patient_command.command("list")
@_config_option
def patient_list(config_path: str | None) -> None:
    """Every patient with their number of sessions and current hierarchy version."""
    with open_store_or_exit(config_path) as store:
        patients = store.patients()
        if not patients:
            click.echo(f"no patients in {store.url}")
        for patient in patients:
            sessions = store.sessions(patient.id)
            versions = store.hierarchy_versions(patient.id)
            courses = store.courses(patient.id)
            phase = courses[-1].phase if courses else "—"
            click.echo(f"{patient.id:<12} {len(sessions):>3} session(s)  hierarchy "
                       f"{'v' + str(versions[-1].version) if versions else '—':<5} {phase}")


@patient_command.command("add")
@click.argument("patient_id")
@_config_option
@click.option("--notes", default=None, help="Clinical notes (the clinic's responsibility; "
                                            "never a name).")
@click.option("--phobia", default=None, help="Start a treatment course for this target phobia.")
@click.option("--start", "start_text", default=None,
              help="Course start date YYYY-MM-DD (default: today).")
@click.option("--phase", default="assessment", show_default=True,
              type=click.Choice(["assessment", "treatment", "follow-up"]),
              help="Phase of the treatment course (with --phobia).")
def patient_add(patient_id: str, config_path: str | None, notes: str | None,
                phobia: str | None, start_text: str | None, phase: str) -> None:
    """Add a patient (ID: 2-32 letters, digits, '-' or '_' with a digit, e.g. P017)."""
    try:
        start = date.fromisoformat(start_text) if start_text else date.today()
    except ValueError:
        raise click.BadParameter(f"'{start_text}' is not YYYY-MM-DD",
                                 param_hint="--start") from None
    with open_store_or_exit(config_path) as store:
        _store_call(lambda: store.add_patient(patient_id, notes))
        if phobia:
            _store_call(lambda: store.start_course(patient_id, phobia, start, phase))
        click.echo(f"added patient {patient_id} to {store.url}")


@patient_command.command("show")
@click.argument("patient_id")
@_config_option
def patient_show(patient_id: str, config_path: str | None) -> None:
    """A patient's course, hierarchy versions, sessions, questionnaires and notes."""
    with open_store_or_exit(config_path) as store:
        patient = _store_call(lambda: store.patient(patient_id))
        click.echo(f"patient {patient.id} (since {patient.created_utc:%Y-%m-%d})")
        if patient.notes:
            click.echo(f"notes: {patient.notes}")
        for course in store.courses(patient_id):
            click.echo(f"course: {course.target_phobia}, from {course.start_date}, "
                       f"phase {course.phase}")
        for version in store.hierarchy_versions(patient_id):
            click.echo(f"hierarchy v{version.version}: '{version.hierarchy_id}' saved "
                       f"{version.created_utc:%Y-%m-%d %H:%M}"
                       + (f" ({version.comment})" if version.comment else ""))
        sessions = store.sessions(patient_id)
        click.echo(f"{len(sessions)} session(s)")
        for number, s in enumerate(sessions, start=1):
            used = f" v{s.hierarchy_version}" if s.hierarchy_version is not None else ""
            highest = "—" if s.highest_step is None else str(s.highest_step)
            peaks = " ".join(f"{st['step']}:{st['suds_peak']}→{st['suds_end']}"
                             for st in s.steps if st.get("suds_peak") is not None)
            click.echo(f"{number:>3}  {s.started_utc[:16]}  {s.hierarchy_id}{used}  "
                       f"highest step {highest}  STOP {s.stops}x  {s.duration_s:.0f} s"
                       + (f"  SUDS peak→end {peaks}" if peaks else ""))
        for q in store.questionnaires(patient_id):
            click.echo(f"questionnaire {q.questionnaire_id} {q.time_utc:%Y-%m-%d}: {q.scores}")
        for note in store.notes(patient_id):
            click.echo(f"note {note.time_utc:%Y-%m-%d %H:%M}: {note.text}")


@patient_command.command("phase")
@click.argument("patient_id")
@click.argument("phase", type=click.Choice(["assessment", "treatment", "follow-up"]))
@_config_option
def patient_phase(patient_id: str, phase: str, config_path: str | None) -> None:
    """Move the patient's current treatment course to PHASE."""
    with open_store_or_exit(config_path) as store:
        course = _store_call(lambda: store.set_phase(patient_id, phase))
        click.echo(f"{patient_id}: {course.target_phobia} course now in {phase}")


@patient_command.command("note")
@click.argument("patient_id")
@click.argument("text", nargs=-1, required=True)
@_config_option
@click.option("--session", "session_id", default=None, help="The session the note is about.")
def patient_note(patient_id: str, text: tuple[str, ...], config_path: str | None,
                 session_id: str | None) -> None:
    """Add a session note to a patient's record."""
    with open_store_or_exit(config_path) as store:
        _store_call(lambda: store.patient(patient_id))
        store.add_note(patient_id, " ".join(text), session_id)
        click.echo(f"note added for {patient_id}")


# --------------------------------------------------------------------------- hierarchy


@click.group("hierarchy")
def hierarchy_command() -> None:
    """A patient's personalised hierarchies (every save is a new version)."""


@hierarchy_command.command("save")
@click.argument("source")
@click.option("--patient", "patient_id", required=True, help="Pseudonymous patient id.")
@click.option("--comment", default=None, help="What changed in this version.")
@_config_option
def hierarchy_save(source: str, patient_id: str, comment: str | None,
                   config_path: str | None) -> None:
    """Save SOURCE (a hierarchy file or built-in name) as the patient's next version.

    It must pass `vrexposure validate` (warnings are shown, errors refuse the save)."""
    from .hierarchy import validate_file

    path = hierarchy_path(source)
    hierarchy, problems = validate_file(path)
    for problem in problems:
        click.echo(str(problem), err=True)
    if hierarchy is None or any(p.severity == "error" for p in problems):
        raise click.ClickException(f"{path}: not saved (fix the errors above)")
    text = path.read_text(encoding="utf-8")
    with open_store_or_exit(config_path) as store:
        version = _store_call(lambda: store.save_hierarchy(patient_id, text, hierarchy.id,
                                                           comment))
    click.echo(f"saved '{hierarchy.id}' as version {version} of patient {patient_id}")


@hierarchy_command.command("export")
@click.option("--patient", "patient_id", required=True, help="Pseudonymous patient id.")
@click.option("--version", "version", type=int, default=None,
              help="Version number (default: the current one).")
@click.option("--out", "out_file", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Write to this file (default: standard output).")
@_config_option
def hierarchy_export(patient_id: str, version: int | None, out_file: Path | None,
                     config_path: str | None) -> None:
    """Write the patient's hierarchy as YAML that `vrexposure validate` accepts."""
    with open_store_or_exit(config_path) as store:
        row = _store_call(lambda: store.hierarchy(patient_id, version))
    header = (f"{EXPORT_HEADER} {patient_id}, version {row.version} "
              f"(vrexposure clinic record)\n")
    body = row.yaml_text
    if body.startswith(EXPORT_HEADER):  # saved from an earlier export: a fresh header
        body = body.split("\n", 1)[1] if "\n" in body else ""
    text = header + body
    if out_file is None:
        click.echo(text, nl=not text.endswith("\n"))
    else:
        out_file.write_text(text, encoding="utf-8")
        click.echo(f"version {row.version} of patient {patient_id}: {out_file}")


@hierarchy_command.command("versions")
@click.option("--patient", "patient_id", required=True, help="Pseudonymous patient id.")
@_config_option
def hierarchy_versions(patient_id: str, config_path: str | None) -> None:
    """List the patient's hierarchy versions, oldest first."""
    with open_store_or_exit(config_path) as store:
        versions = store.hierarchy_versions(patient_id)
    if not versions:
        raise click.ClickException(f"patient {patient_id} has no personalised hierarchy")
    for row in versions:
        click.echo(f"v{row.version}  {row.created_utc:%Y-%m-%d %H:%M}  {row.hierarchy_id}"
                   + (f"  {row.comment}" if row.comment else ""))


__all__ = ["db_command", "hierarchy_command", "open_store_or_exit", "patient_command"]


# --------------------------------------------------------------------------- for `session`


def patient_hierarchy_or_exit(config: dict[str, Any], patient_id: str) -> tuple[Any, int]:
    """The patient's current personalised hierarchy and its version (``session --patient``
    without ``--hierarchy``)."""
    from .clinic import StoreError, database_exists, database_url, open_store
    from .hierarchy import parse_hierarchy

    url = database_url(config)
    if not database_exists(url):
        raise click.UsageError(f"no --hierarchy, and no clinic database yet to find patient "
                               f"{patient_id}'s own: give --hierarchy NAME|FILE")
    try:
        with open_store(url) as store:
            row = store.hierarchy(patient_id)
    except StoreError as exc:
        raise click.ClickException(f"{exc}; or give --hierarchy NAME|FILE") from exc
    hierarchy, problems = parse_hierarchy(row.yaml_text,
                                          f"<patient {patient_id} hierarchy v{row.version}>")
    if hierarchy is None or any(p.severity == "error" for p in problems):
        raise click.ClickException("the patient's hierarchy no longer validates:\n"
                                   + "\n".join(str(p) for p in problems))
    click.echo(f"patient {patient_id}: personalised hierarchy '{hierarchy.id}' "
               f"version {row.version}", err=True)
    return hierarchy, row.version


def index_after_session(config: dict[str, Any], recording: Path) -> None:
    """Add a finished session to the clinic index when there is a database (never fails the
    session: the recording is already safe)."""
    from sqlalchemy.exc import SQLAlchemyError

    from .clinic import StoreError, database_exists, database_url, open_store
    from .clinic.index import entry_from_recording, index_questionnaires

    url = database_url(config)
    if not database_exists(url) or not recording.exists():
        return
    try:
        with open_store(url) as store:
            if recording.suffix == ".xdf":
                store.index_session(entry_from_recording(recording))
            index_questionnaires(store, recording)
        click.echo(f"indexed in the clinic database: {recording.name}")
    except (StoreError, SQLAlchemyError, OSError, ValueError) as exc:
        click.echo(f"not indexed in the clinic database ({exc}); run "
                   f"'vrexposure db reindex {recording.parent}'", err=True)


def indexed_recordings_or_exit(config: dict[str, Any], patient_id: str
                               ) -> tuple[list[Path], Path]:
    """The patient's indexed recordings that still exist, and the folder of the newest
    (``progress --patient`` without a folder)."""
    from .clinic import database_exists, database_url

    url = database_url(config)
    if not database_exists(url):
        raise click.UsageError("no clinic database yet: give the folder of the recordings "
                               "(vrexposure progress FOLDER --patient ID)")
    with _open_url_or_exit(url) as store:
        rows = store.sessions(patient_id)
    files = [Path(r.recording_path) for r in rows if Path(r.recording_path).exists()]
    if not files:
        raise click.ClickException(f"no indexed recordings of patient {patient_id} "
                                   "(vrexposure db reindex DIR)")
    return files, files[-1].parent


# --------------------------------------------------------------------------- export parquet


def export_parquet_command(source: Path, out_dir: Path, from_database: bool,
                           config: dict[str, Any]) -> None:
    """``vrexposure export SOURCE --format parquet`` (registered in cli_research's export)."""
    from .clinic.index import sha256_of
    from .export_parquet import export_parquet

    source = source.absolute()
    skipped: list[str] = []
    if from_database:
        from .clinic import database_exists, database_url

        url = database_url(config)
        if not database_exists(url):
            raise click.UsageError("--from-database: there is no clinic database yet")
        with _open_url_or_exit(url) as store:
            rows = [r for r in store.sessions()
                    if Path(r.recording_path).is_relative_to(source)]
        recordings = []
        for row in rows:
            path = Path(row.recording_path)
            if not path.exists():
                skipped.append(f"{path}: indexed, file gone")
            elif sha256_of(path) != row.sha256:
                skipped.append(f"{path}: checksum does not match the index (not exported)")
            else:
                recordings.append(path)
    else:
        recordings = sorted(source.rglob("*.xdf")) if source.is_dir() else [source]
    if not recordings:
        raise click.ClickException(f"no recordings to export under {source}")
    try:
        result = export_parquet(recordings, out_dir)
    except RuntimeError as exc:
        raise click.ClickException(str(exc)) from exc
    for line in skipped + result.skipped:
        click.echo(f"not exported: {line}", err=True)
    click.echo(f"{len(result.sessions)} session(s), {len(result.files)} files in {out_dir} "
               "(tables sessions, steps, events, samples; partitioned by patient_id and "
               "session_id)")
