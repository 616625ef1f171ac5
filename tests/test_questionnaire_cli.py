"""``vrexposure questionnaire`` outside a session: stored next to the patient's recordings."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from vrexposure.cli import main
from vrexposure.questionnaires.records import find_administrations, read_standalone


def test_ssq_from_paper_answers_is_scored_and_stored(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["questionnaire", "ssq", "--patient", "P017", "--out",
                                  str(tmp_path), "--answers",
                                  "1,0,0,0,0,0,0,1,0,0,2,0,0,0,0,-"])
    assert result.exit_code == 0, result.output
    assert "Nausea (N): missing" in result.output  # burping left unanswered
    assert "Disorientation (D): 41.76" in result.output
    assert "unanswered: burping" in result.output
    files = list(tmp_path.glob("P017_*_q-ssq.questionnaire.json"))
    assert len(files) == 1
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    record = json.loads(files[0].read_text())
    assert record["schema"] == "vrexposure.questionnaire/1"
    assert record["occasion"] == "before_treatment"
    answers = [e for e in record["events"] if e["kind"] == "questionnaire_answer"]
    assert len(answers) == 16 and answers[-1] == {**answers[-1], "item": "burping",
                                                  "response": None, "answered": False}
    (admin,) = read_standalone(files[0])
    assert admin.patient_id == "P017" and admin.value("oculomotor") == pytest.approx(22.74)
    found, skipped = find_administrations(tmp_path, "P017")
    assert [a.id for a in found] == ["ssq"] and not skipped
    assert find_administrations(tmp_path, "P018")[0] == []


def test_interactive_named_and_refused(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["questionnaire", "suds", "--patient", "P017", "--out",
                                  str(tmp_path), "--occasion", "follow_up"], input="42\n45\n")
    assert result.exit_code == 0, result.output
    assert "steps of 5" in result.output and "SUDS: 45" in result.output
    result = runner.invoke(main, ["questionnaire", "ipq", "--patient", "P017", "--out",
                                  str(tmp_path), "--answers", "G1=6,REAL1=6"])
    assert result.exit_code == 0 and "General presence (G): 6" in result.output
    assert "Experienced realism (REAL): missing" in result.output
    result = runner.invoke(main, ["questionnaire", "fsq", "--patient", "P017", "--out",
                                  str(tmp_path), "--answers", "1"])
    assert result.exit_code == 1 and "clinic's questionnaires folder" in result.output
    result = runner.invoke(main, ["questionnaire", "ssq", "--patient", "Jane Doe", "--out",
                                  str(tmp_path), "--answers", "nausea=1"])
    assert result.exit_code == 1 and "not a pseudonymous id" in result.output
    result = runner.invoke(main, ["questionnaire", "ssq", "--patient", "P017", "--out",
                                  str(tmp_path), "--answers", "nausea=9"])
    assert result.exit_code == 1 and "not on the scale" in result.output
    assert len(list(tmp_path.glob("*.json"))) == 2


def test_clinic_licensed_copy_overrides_the_scoring_only_builtin(tmp_path: Path) -> None:
    from vrexposure.plugins import builtin_dir

    clinic = tmp_path / "clinic_q"
    clinic.mkdir()
    text = (builtin_dir("questionnaires") / "clq.yaml").read_text()
    text = text.replace("item_text: licensed", "item_text: included")
    text = text.replace("scale: {min: 0, max: 4}",
                        "scale: {min: 0, max: 4, anchors: {0: low, 4: high}}")
    import re

    text = re.sub(r"\{id: (clq\d\d)\}", r"{id: \1, text: 'licensed text of \1'}", text)
    (clinic / "clq.yaml").write_text(text)
    config = tmp_path / "c.yaml"
    config.write_text(f"questionnaires:\n  dirs: [{clinic}]\n")
    result = CliRunner().invoke(main, ["questionnaire", "clq", "--patient", "P017", "--out",
                                       str(tmp_path), "--config", str(config),
                                       "--answers", ",".join(["2"] * 26)])
    assert result.exit_code == 0, result.output
    assert "CLQ total: 52" in result.output


def test_ctl_words_for_questionnaires() -> None:
    from vrexposure.cli import _ctl_command

    assert _ctl_command(("questionnaire-start", "ssq")) == ("questionnaire_start", {"id": "ssq"})
    assert _ctl_command(("questionnaire-answer", "nausea", "2")) == (
        "questionnaire_answer", {"item": "nausea", "response": 2})
    assert _ctl_command(("questionnaire-answer", "nausea", "-")) == (
        "questionnaire_answer", {"item": "nausea", "response": None})
    assert _ctl_command(("questionnaire-pause", "off")) == ("questionnaire_pause",
                                                            {"paused": False})
    assert _ctl_command(("questionnaire-finish",)) == ("questionnaire_finish", {})
