"""``vrexposure db|patient|hierarchy`` and the clinic database seen from ``session`` and
``progress``, on the command line (real processes, real files, SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from vrexposure.cli import main
from vrexposure.clinic import open_store
from vrexposure.config import write_config
from vrexposure.report import read_header, recording_metadata

from .clinic_support import db_url, postgres_server  # noqa: F401  (fixtures)
from .conftest import free_endpoints
from .test_processes import cli, ctl, start_host, stop_process
from .test_report import rich_session


@pytest.fixture(autouse=True)
def _no_database_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VREXPOSURE_DATABASE_URL", raising=False)


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def config_file(tmp_path: Path, url: str | None = None) -> Path:
    sections = {"session": {"recording_dir": str(tmp_path / "sessions")}}
    if url is not None:
        sections["database"] = {"url": url}
    return write_config(tmp_path / "config.yaml", free_endpoints(), **sections)


def test_patients_from_the_command_line_with_no_set_up(tmp_path: Path) -> None:
    config = str(config_file(tmp_path))
    code, out = run("patient", "list", "--config", config)
    assert code == 0 and "no patients" in out
    database = tmp_path / "sessions" / "clinic.sqlite3"
    assert stat.S_IMODE(database.stat().st_mode) == 0o600  # appeared by itself
    code, out = run("patient", "add", "P017", "--phobia", "arachnophobia", "--phase",
                    "treatment", "--start", "2026-11-02", "--config", config)
    assert code == 0, out
    code, out = run("patient", "add", "Jane Doe", "--config", config)
    assert code == 1 and "not a pseudonymous id" in out
    code, out = run("patient", "add", "P017", "--config", config)
    assert code == 1 and "already exists" in out
    code, out = run("patient", "note", "P017", "first", "session", "went", "well",
                    "--config", config)
    assert code == 0, out
    code, out = run("patient", "phase", "P017", "follow-up", "--config", config)
    assert code == 0 and "arachnophobia course now in follow-up" in out
    code, out = run("patient", "list", "--config", config)
    assert code == 0 and out.split() == ["P017", "0", "session(s)", "hierarchy", "—",
                                         "follow-up"]
    code, out = run("patient", "show", "P017", "--config", config)
    assert code == 0
    assert "course: arachnophobia, from 2026-11-02, phase follow-up" in out
    assert "first session went well" in out
    code, out = run("patient", "show", "P099", "--config", config)
    assert code == 1 and "no patient P099" in out


def test_hierarchy_versions_export_and_validate(db_url: str, tmp_path: Path) -> None:  # noqa: F811
    config = str(config_file(tmp_path, db_url))
    assert run("db", "upgrade", "--config", config)[0] == 0
    assert run("patient", "add", "P017", "--config", config)[0] == 0
    code, out = run("hierarchy", "save", "arachnophobia", "--patient", "P017",
                    "--comment", "template", "--config", config)
    assert code == 0 and "version 1" in out, out
    exported = tmp_path / "p017.yaml"
    code, out = run("hierarchy", "export", "--patient", "P017", "--out", str(exported),
                    "--config", config)
    assert code == 0, out
    code, out = run("validate", "--strict", str(exported))
    assert code == 0 and "1 file(s): 0 error(s), 0 warning(s)" in out, out

    # Built with the patient: their own expected SUDS on the first step, saved again.
    data = yaml.safe_load(exported.read_text())
    data["steps"][0]["expected_suds"] = 15
    exported.write_text(exported.read_text().splitlines()[0] + "\n"
                        + yaml.safe_dump(data, sort_keys=False))
    code, out = run("hierarchy", "save", str(exported), "--patient", "P017", "--config",
                    config)
    assert code == 0 and "version 2" in out, out
    code, out = run("hierarchy", "export", "--patient", "P017", "--config", config)
    assert code == 0
    assert out.startswith("# Personalised hierarchy of patient P017, version 2")
    assert out.count("# Personalised hierarchy") == 1
    assert yaml.safe_load(out)["steps"][0]["expected_suds"] == 15
    code, out = run("hierarchy", "export", "--patient", "P017", "--version", "1",
                    "--config", config)
    assert yaml.safe_load(out)["steps"][0]["expected_suds"] != 15
    code, out = run("hierarchy", "versions", "--patient", "P017", "--config", config)
    assert [line.split()[0] for line in out.splitlines()] == ["v1", "v2"]

    broken = tmp_path / "broken.yaml"
    broken.write_text(exported.read_text().replace("steps:", "stepz:"))
    code, out = run("hierarchy", "save", str(broken), "--patient", "P017", "--config", config)
    assert code == 1 and "not saved" in out
    with open_store(db_url) as store:
        assert store.hierarchy("P017").version == 2


def test_reindex_command_reports_a_changed_recording(tmp_path: Path) -> None:
    config = str(config_file(tmp_path))
    folder = tmp_path / "sessions"
    folder.mkdir()
    path = rich_session(folder / "P042_a.xdf")
    code, out = run("db", "reindex", str(folder), "--config", config)
    assert code == 0 and f"indexed: {path}" in out and "1 added" in out
    with open(path, "ab") as handle:
        handle.write(b"\0")
    code, out = run("db", "reindex", str(folder), "--config", config)
    assert code == 1
    assert "CHANGED" in out and "not re-indexed" in out and "1 changed" in out
    code, out = run("db", "reindex", str(folder), "--accept-changed", "--config", config)
    assert code == 0 and "1 re-indexed" in out


def test_session_for_a_patient_uses_and_records_their_hierarchy(tmp_path: Path) -> None:
    config = config_file(tmp_path)
    # No database yet: a new session still needs --hierarchy, and says so.
    done = subprocess.run(cli("session", "--config", str(config), "--patient", "P017"),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--hierarchy" in done.stderr
    assert not (tmp_path / "sessions" / "clinic.sqlite3").exists()

    short = tmp_path / "short.yaml"
    text = (Path(__file__).parents[1] / "hierarchies" / "acrophobia.yaml").read_text()
    short.write_text(text.replace("duration_s: 120", "duration_s: 6"))
    assert run("hierarchy", "save", "acrophobia", "--patient", "P017", "--config",
               str(config))[0] == 0
    assert run("hierarchy", "save", str(short), "--patient", "P017", "--config",
               str(config))[0] == 0
    host = start_host(config, "--patient", "P017")
    try:
        assert ctl(config, "start-exposure", "--skip-baseline").returncode == 0
        assert ctl(config, "next").returncode == 0
        assert ctl(config, "stop").returncode == 0
        assert ctl(config, "end").returncode == 0
        assert host.wait(timeout=60) == 0
        assert host.stdout is not None and host.stderr is not None
        out, err = host.stdout.read(), host.stderr.read()
    finally:
        stop_process(host)
    assert "personalised hierarchy 'acrophobia-standard' version 2" in err
    assert "indexed in the clinic database" in out, out + err
    (recording,) = (tmp_path / "sessions").glob("P017_*.xdf")
    meta = recording_metadata(read_header(recording))
    assert meta["hierarchy_version"] == 2
    assert "database" not in meta["config"]
    with open_store(f"sqlite:///{tmp_path / 'sessions' / 'clinic.sqlite3'}") as store:
        (row,) = store.sessions("P017")
    assert (row.recording_path, row.hierarchy_version, row.highest_step, row.stops) == (
        str(recording), 2, 2, 1)

    code, out = run("patient", "show", "P017", "--config", str(config))
    assert "acrophobia-standard v2  highest step 2  STOP 1x" in out
    # progress without a folder: the recordings the database indexes.
    code, out = run("progress", "--patient", "P017", "--config", str(config),
                    "--out", str(tmp_path / "progress"))
    assert code == 0, out
    summary = json.loads((tmp_path / "progress" / "P017.progress.json").read_text())
    assert [s["path"] for s in summary["sessions"]] == [str(recording)]
    # ... and still from a folder, without a database.
    code, out = run("progress", str(tmp_path / "sessions"), "--patient", "P017",
                    "--out", str(tmp_path / "progress2"))
    assert code == 0, out
    assert (tmp_path / "progress2" / "P017.progress.json").exists()
