"""Exports (CSV, BIDS) read back with pandas and compared with pyxdf's reading of the file."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import pyxdf
from click.testing import CliRunner

from vrexposure.export import (
    bids_label,
    export_bids,
    export_csv,
    recording_label,
    regular_grid,
    resample,
)
from vrexposure.report import compute_report
from vrexposure.xdf import read_xdf


@pytest.fixture(scope="module")
def by_pyxdf(demo_file: Path) -> dict[str, dict[str, Any]]:
    """The demo as pyxdf reads it (raw time stamps), by stream name."""
    streams, _ = pyxdf.load_xdf(str(demo_file), dejitter_timestamps=False)
    return {s["info"]["name"][0]: s for s in streams}


def read_physio(path: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    sidecar = json.loads(Path(str(path).replace(".tsv.gz", ".json")).read_text())
    frame = pd.read_csv(path, sep="\t", header=None, na_values="n/a",
                        quoting=csv.QUOTE_NONE, names=sidecar["Columns"])
    return frame, sidecar


# --------------------------------------------------------------------------- pure


def test_regular_grid_fills_gaps_with_nan() -> None:
    t = np.concatenate([10 + np.arange(5) / 100, 10.1 + np.arange(3) / 100])
    start, grid = regular_grid(t, np.arange(8.0)[:, None], 100.0)
    assert start == 10.0 and grid.shape == (13, 1)
    assert np.isnan(grid[5:10, 0]).all()
    assert grid[[0, 4, 10, 12], 0].tolist() == [0.0, 4.0, 5.0, 7.0]


def test_resample_interpolates_and_leaves_gaps_empty() -> None:
    t = np.array([1.0, 2.0, 3.0, 10.0, 11.0])
    values = np.array([[60, 0], [70, 1], [80, 0], [90, 0], [100, 2]], dtype=float)
    start, out = resample(t, values, 2.0, max_gap_s=1.5, linear=[True, False])
    assert start == 1.0 and len(out) == 21
    assert out[:5, 0].tolist() == [60.0, 65.0, 70.0, 75.0, 80.0]
    assert out[:5, 1].tolist() == [0.0, 0.0, 1.0, 1.0, 0.0]  # nearest earlier quality
    assert np.isnan(out[8:15]).all() and not np.isnan(out[[7, 15]]).any()  # > 1.5 s away
    assert out[-1].tolist() == [100.0, 2.0]


def test_bids_labels() -> None:
    assert bids_label("P_017-a") == "P017a"
    assert recording_label("ecg.bitalino_1") == "ecgBitalino1"
    assert recording_label("hr.sim") == "hrSim"
    with pytest.raises(ValueError):
        bids_label("--")


# --------------------------------------------------------------------------- CSV


def test_csv_export_matches_pyxdf(demo_file: Path, by_pyxdf: dict[str, dict[str, Any]],
                                  tmp_path: Path) -> None:
    out = tmp_path / "csv"
    result = export_csv(demo_file, out)
    names = {p.name for p in result.files}
    assert {"session.json", "events.csv", "state.csv", "hr.sim.csv", "ecg.sim.csv",
            "pose.sim.csv", "rr.sim.csv"} <= names
    for path in result.files:
        assert (path.stat().st_mode & 0o777) == 0o600
    assert (out.stat().st_mode & 0o777) == 0o700

    hr = pd.read_csv(out / "hr.sim.csv")
    ref = by_pyxdf["hr.sim"]
    assert list(hr.columns) == ["time_s", "bpm", "quality"]
    assert np.allclose(hr["time_s"], ref["time_stamps"], atol=1e-6, rtol=0)
    assert np.allclose(hr["bpm"], ref["time_series"][:, 0], atol=1e-9, rtol=0)
    assert set(hr["quality"]) <= {"good", "uncertain", "bad"}
    assert (hr["quality"] == "good").tolist() == (ref["time_series"][:, 1] == 0).tolist()

    ecg = pd.read_csv(out / "ecg.sim.csv")
    ref = by_pyxdf["ecg.sim"]
    assert len(ecg) == len(ref["time_stamps"]) > 10_000
    assert np.allclose(ecg["time_s"], ref["time_stamps"], atol=1e-6, rtol=0)
    assert np.allclose(ecg["ecg1"], ref["time_series"][:, 0], rtol=1e-6, atol=1e-9)

    pose = pd.read_csv(out / "pose.sim.csv")
    ref = by_pyxdf["pose.sim"]
    assert list(pose.columns) == ["time_s", "x", "y", "z", "qw", "qx", "qy", "qz",
                                  "look_angle_deg", "looking_away"]
    assert np.allclose(pose.iloc[:, 1:].to_numpy(), ref["time_series"], rtol=1e-9,
                       atol=1e-9, equal_nan=True)

    events = pd.read_csv(out / "events.csv")
    ref = by_pyxdf["events"]
    assert len(events) == len(ref["time_series"])
    records = [json.loads(row[0]) for row in ref["time_series"]]
    assert events["type"].tolist() == [r["type"] for r in records]
    assert [json.loads(r) for r in events["record"]] == records
    suds = events[events["kind"] == "suds_recorded"]
    assert suds["value"].astype(int).tolist() == \
        [r["value"] for r in records if r.get("kind") == "suds_recorded"]

    states = pd.read_csv(out / "state.csv")
    assert len(states) == len(by_pyxdf["state"]["time_series"])
    assert states["phase"].iloc[-1] == "ended"
    meta = json.loads((out / "session.json").read_text())
    assert meta["metadata"]["patient_id"] == "DEMO01" and meta["cut_short"] is False


# --------------------------------------------------------------------------- BIDS


def test_bids_export_matches_pyxdf(demo_file: Path, by_pyxdf: dict[str, dict[str, Any]],
                                   tmp_path: Path) -> None:
    root = tmp_path / "bids"
    result = export_bids(demo_file, root)
    beh = root / "sub-DEMO01" / "ses-1" / "beh"
    prefix = "sub-DEMO01_ses-1_task-exposure"
    physio = sorted(p.name for p in beh.glob("*_physio.tsv.gz"))
    assert f"{prefix}_recording-ecgSim_physio.tsv.gz" in physio
    assert f"{prefix}_recording-hrSim_physio.tsv.gz" in physio
    for name in physio:
        assert re.fullmatch(r"sub-DEMO01_ses-1_task-exposure_recording-[A-Za-z0-9]+"
                            r"_physio\.tsv\.gz", name), name
        assert (beh / name.replace(".tsv.gz", ".json")).exists()
    description = json.loads((root / "dataset_description.json").read_text())
    assert description["BIDSVersion"] and description["Name"] and \
        description["DatasetType"] == "raw"
    assert pd.read_csv(root / "participants.tsv", sep="\t")["participant_id"].tolist() == \
        ["sub-DEMO01"]

    # ECG: at its nominal rate from the first sample, exactly the recorded values
    ecg, sidecar = read_physio(beh / f"{prefix}_recording-ecgSim_physio.tsv.gz")
    ref = by_pyxdf["ecg.sim"]
    assert sidecar["SamplingFrequency"] == 1000.0 and sidecar["Columns"] == ["cardiac"]
    assert sidecar["StartTime"] == pytest.approx(ref["time_stamps"][0], abs=1e-6)
    assert sidecar["cardiac"]["Units"] == "mV"
    index = np.rint((ref["time_stamps"] - ref["time_stamps"][0]) * 1000).astype(int)
    assert len(ecg) == index[-1] + 1
    assert np.allclose(ecg["cardiac"].to_numpy()[index], ref["time_series"][:, 0],
                       rtol=1e-6, atol=1e-9)
    assert ecg["cardiac"].isna().sum() == len(ecg) - len(index)

    # heart rate: irregular, resampled at 4 Hz by linear interpolation, and it says so
    hr, sidecar = read_physio(beh / f"{prefix}_recording-hrSim_physio.tsv.gz")
    ref = by_pyxdf["hr.sim"]
    assert sidecar["SamplingFrequency"] == 4.0 and "Resampled" in sidecar
    assert sidecar["Columns"] == ["heart_rate", "quality"]
    grid_t = sidecar["StartTime"] + np.arange(len(hr)) / 4.0
    assert grid_t[-1] <= ref["time_stamps"][-1] + 1e-6
    expected = np.interp(grid_t, ref["time_stamps"], ref["time_series"][:, 0])
    assert np.allclose(hr["heart_rate"], expected, rtol=1e-6)
    assert any("hr.sim: irregular, resampled to 4 Hz" in note for note in result.notes)

    # events: periods with durations, and every state-machine event at its onset
    events = pd.read_csv(beh / f"{prefix}_events.tsv", sep="\t", na_values="n/a",
                         quoting=csv.QUOTE_NONE)
    assert list(events.columns[:4]) == ["onset", "duration", "trial_type", "value"]
    assert events["onset"].is_monotonic_increasing
    records = [json.loads(r[0]) for r in by_pyxdf["events"]["time_series"]]
    ref_suds = [(r["t_s"], r["value"]) for r in records if r.get("kind") == "suds_recorded"]
    got = events[events["trial_type"] == "suds_recorded"]
    assert np.allclose(got["onset"], [t for t, _ in ref_suds], atol=1e-6)
    assert got["value"].astype(int).tolist() == [v for _, v in ref_suds]
    exposure = events[events["trial_type"] == "exposure"]
    report = compute_report(read_xdf(demo_file))
    assert exposure["duration"].sum() == pytest.approx(
        sum(s.time_in_step_s for s in report.steps), abs=1e-5)
    assert exposure["value"].tolist()[0] == "jar-far"
    baseline = events[events["trial_type"] == "baseline"]
    assert len(baseline) == 1 and baseline["duration"].iloc[0] > 9
    sidecar = json.loads((beh / f"{prefix}_events.json").read_text())
    assert sidecar["TaskName"] == "exposure" and "Levels" in sidecar["trial_type"]

    # a second session of the same patient: one participant, two sessions
    export_bids(demo_file, root, session="2")
    assert len(pd.read_csv(root / "participants.tsv", sep="\t")) == 1
    sessions = pd.read_csv(root / "sub-DEMO01" / "sub-DEMO01_sessions.tsv", sep="\t")
    assert sessions["session_id"].tolist() == ["ses-1", "ses-2"]


def test_export_command(demo_file: Path, tmp_path: Path) -> None:
    from vrexposure.cli_research import export_command

    result = CliRunner().invoke(export_command, [str(demo_file), "--format", "bids",
                                                 "--out", str(tmp_path / "b")])
    assert result.exit_code == 0, result.output
    assert "resampled to 4 Hz" in result.output and "1000 Hz as recorded" in result.output
    result = CliRunner().invoke(export_command, [str(demo_file), "--format", "csv",
                                                 "--out", str(tmp_path / "c")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "c" / "events.csv").exists()
