"""``vrexposure export DIR --format parquet``: a partitioned dataset read back with DuckDB
(not our code) gives the same per-step numbers as ``vrexposure report``."""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path

import duckdb
import numpy as np
import pytest
from click.testing import CliRunner

from vrexposure.cli import main
from vrexposure.config import write_config
from vrexposure.report import read_header, recording_metadata, write_report
from vrexposure.xdf import read_xdf

from .conftest import free_endpoints
from .test_clinic_store import _second_session
from .test_report import rich_session

STEP_NUMBERS = ["step_index", "step_id", "expected_suds", "visits", "time_in_step_s",
                "suds_start", "suds_peak", "suds_end", "suds_drop_pct", "habituation_s",
                "hr_mean_bpm", "hr_peak_bpm", "hr_mean_vs_baseline_bpm",
                "hr_peak_vs_baseline_bpm", "look_away_share", "intensity_max", "stops"]


@pytest.fixture(autouse=True)
def _no_database_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VREXPOSURE_DATABASE_URL", raising=False)


def sql(query: str) -> list[tuple]:
    return duckdb.sql(query).fetchall()


def test_parquet_dataset_matches_the_reports(demo_file: Path, tmp_path: Path) -> None:
    folder = tmp_path / "clinic"
    (folder / "room2").mkdir(parents=True)
    recordings = [shutil.copy(demo_file, folder / demo_file.name),
                  rich_session(folder / "P042_a.xdf"),
                  _second_session(folder / "room2" / "P042_b.xdf")]
    recordings = [Path(p) for p in recordings]
    (folder / "junk.xdf").write_bytes(b"XDF:broken")
    out = tmp_path / "dataset"
    result = CliRunner().invoke(main, ["export", str(folder), "--format", "parquet",
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "3 session(s), 12 files" in result.output and "junk.xdf" in result.output

    for path in recordings:
        meta = recording_metadata(read_header(path))
        report = json.loads(write_report(path, tmp_path / "reports").json.read_text())
        where = (f"patient_id = '{meta['patient_id']}' AND "
                 f"session_id = '{meta['session_id']}'")
        rows = duckdb.sql(
            f"SELECT {', '.join(STEP_NUMBERS)}, step FROM read_parquet("
            f"'{out}/steps/**/*.parquet', hive_partitioning = true) WHERE {where} "
            "ORDER BY step_index").fetchall()
        expected = [(*(s[k] for k in STEP_NUMBERS), s["step_index"] + 1)
                    for s in report["steps"]]
        assert rows == expected and rows, path
        (session_row,) = sql(
            f"SELECT highest_step, stops, duration_s FROM read_parquet("
            f"'{out}/sessions/**/*.parquet', hive_partitioning = true) WHERE {where}")
        highest = report["session"]["highest_step_index"]
        assert session_row == (None if highest is None else highest + 1,
                               report["totals"]["stops"], report["session"]["duration_s"])

        recording = read_xdf(path)
        (n_events,) = sql(f"SELECT count(*) FROM read_parquet('{out}/events/**/*.parquet', "
                          f"hive_partitioning = true) WHERE {where}")[0]
        events = [json.loads(v) for v in recording.by_name("events").values]
        assert n_events == sum(e.get("type") == "event" for e in events) > 0
        numeric = {s.name: s for s in recording.streams.values()
                   if isinstance(s.values, np.ndarray) and s.values.size}
        counts = dict(sql(f"SELECT stream, count(*) FROM read_parquet("
                          f"'{out}/samples/**/*.parquet', hive_partitioning = true) "
                          f"WHERE {where} GROUP BY stream"))
        assert counts == {name: s.values.size for name, s in numeric.items()}
        # Values survive exactly: the mean heart rate of a stream, both ways.
        hr = next((s for s in numeric.values() if s.type == "HeartRate"), None)
        if hr is not None:
            label = hr.channel_labels[0] if hr.channel_labels else "0"
            (mean,) = sql(f"SELECT avg(value) FROM read_parquet("
                          f"'{out}/samples/**/*.parquet', hive_partitioning = true) "
                          f"WHERE {where} AND stream = '{hr.name}' AND channel = '{label}'")[0]
            assert mean == pytest.approx(float(hr.values[:, 0].mean()), rel=1e-12)

    # Partitioned by patient and session, owner-only like the recordings.
    patients = sorted(p.name for p in (out / "steps").iterdir())
    assert patients == sorted({f"patient_id={recording_metadata(read_header(p))['patient_id']}"
                               for p in recordings})
    for part in out.rglob("*.parquet"):
        assert stat.S_IMODE(part.stat().st_mode) == 0o600
    for folder in [out, *(p for p in out.rglob("*") if p.is_dir())]:
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    # The suds of the hand-checked session: peak 70 and end 45 on step 2.
    assert sql(f"SELECT suds_peak, suds_end FROM read_parquet('{out}/steps/**/*.parquet', "
               "hive_partitioning = true) WHERE patient_id = 'P042' AND step = 2 "
               "AND NOT skipped") == [
        (70, 45)]


def test_parquet_from_the_database_skips_changed_recordings(tmp_path: Path) -> None:
    folder = tmp_path / "sessions"
    folder.mkdir()
    first = rich_session(folder / "P042_a.xdf")
    second = _second_session(folder / "P042_b.xdf")
    config = str(write_config(tmp_path / "config.yaml", free_endpoints(),
                              session={"recording_dir": str(folder)}))
    runner = CliRunner()
    assert runner.invoke(main, ["db", "reindex", str(folder), "--config", config]).exit_code == 0
    with open(second, "ab") as handle:
        handle.write(b"\0")
    out = tmp_path / "dataset"
    result = runner.invoke(main, ["export", str(folder), "--format", "parquet", "--out",
                                  str(out), "--from-database", "--config", config])
    assert result.exit_code == 0, result.output
    assert "checksum does not match" in result.output and str(second) in result.output
    exported = sql(f"SELECT recording FROM read_parquet('{out}/sessions/**/*.parquet', "
                   "hive_partitioning = true)")
    assert exported == [(str(first),)]
