"""FHIR export of questionnaires: every resource validated by fhir.resources."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.questionnaire import Questionnaire
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from pydantic import ValidationError

from vrexposure.cli import main
from vrexposure.client import ControlClient
from vrexposure.host import SessionHost
from vrexposure.questionnaires import discover_questionnaires
from vrexposure.questionnaires.fhir import PATIENT_ID_SYSTEM, questionnaire_resource, validated
from vrexposure.questionnaires.records import administer, from_recording, write_standalone

MODELS = {"Questionnaire": Questionnaire, "QuestionnaireResponse": QuestionnaireResponse,
          "Observation": Observation}


def check_bundle(path: Path) -> dict[str, list[dict]]:
    data = json.loads(path.read_text())
    Bundle.model_validate(data)
    by_type: dict[str, list[dict]] = {}
    for entry in data["entry"]:
        resource = entry["resource"]
        MODELS[resource["resourceType"]].model_validate(resource)  # each one on its own too
        by_type.setdefault(resource["resourceType"], []).append(resource)
        if "subject" in resource:
            assert resource["subject"] == {"identifier": {"system": PATIENT_ID_SYSTEM,
                                                          "value": resource["subject"]
                                                          ["identifier"]["value"]}}
    return by_type


def test_every_definition_maps_to_a_valid_questionnaire() -> None:
    for q in discover_questionnaires().values():
        resource = questionnaire_resource(q)
        Questionnaire.model_validate(resource)
        linked = [i["linkId"] for i in resource["item"] if i["type"] != "display"]
        assert linked == list(q.item_ids)
        assert resource["copyright"] and resource["description"]
        if not q.administrable:  # licensed text is never exported
            assert all("text" not in i for i in resource["item"] if i["type"] != "display")
    ipq = questionnaire_resource(discover_questionnaires()["ipq"])
    sp2 = next(i for i in ipq["item"] if i["linkId"] == "SP2")
    ordinals = [o["valueCoding"]["extension"][0]["valueDecimal"] for o in sp2["answerOption"]]
    assert ordinals == [6, 5, 4, 3, 2, 1, 0]  # reverse-keyed: scored value per answer


def test_invalid_resource_is_refused_by_the_library() -> None:
    with pytest.raises(ValidationError):
        validated("Observation", {"resourceType": "Observation", "status": "final",
                                  "code": {"text": "x"}, "valueQuantity": {"value": "lots"}})


def test_standalone_form_exports_response_and_score_observations(tmp_path: Path) -> None:
    ssq = discover_questionnaires()["ssq"]
    answers = {i: 0 for i in ssq.item_ids} | {"nausea": 1, "blurred_vision": 2,
                                               "burping": None}
    path = write_standalone(tmp_path, "P017", "before_treatment",
                            administer(ssq, answers, "before_treatment", "therapist:test"))
    result = CliRunner().invoke(main, ["export", str(path), "--format", "fhir", "--out",
                                       str(tmp_path / "fhir")])
    assert result.exit_code == 0, result.output
    (out,) = (tmp_path / "fhir").glob("*.fhir.json")
    by_type = check_bundle(out)
    (response,) = by_type["QuestionnaireResponse"]
    assert response["questionnaire"] == "urn:vrexposure:questionnaire:ssq|1993"
    items = {i["linkId"]: i["answer"][0]["valueCoding"] for i in response["item"]}
    assert "burping" not in items  # unanswered stays absent
    assert items["blurred_vision"]["code"] == "2" and items["blurred_vision"]["display"] == \
        "Moderate"
    obs = {o["code"]["coding"][0]["code"]: o for o in by_type["Observation"]}
    assert obs["disorientation"]["valueQuantity"]["value"] == pytest.approx(41.76)
    assert obs["nausea"]["dataAbsentReason"]["coding"][0]["code"] == "unknown"
    assert all(o["derivedFrom"][0]["reference"].startswith("urn:uuid:")
               for o in obs.values())
    assert "P017" in out.read_text() and "name" not in json.dumps(response["subject"])


def test_session_recording_holds_every_answer_and_exports(host: SessionHost) -> None:
    therapist = ControlClient(host.endpoints.control, "therapist", "panel")
    patient = ControlClient(host.endpoints.control, "patient", "remote")
    time.sleep(0.2)
    assert therapist.send("questionnaire_start", {"id": "ssq"}).ok
    ssq = discover_questionnaires()["ssq"]
    for index, item in enumerate(ssq.item_ids[:-1]):
        reply = patient.send("questionnaire_answer", {"id": "ssq", "item": item,
                                                      "response": index % 4})
        assert reply.ok, reply.error
    state = therapist.state()
    assert state["questionnaire"]["answered"] == 15 and state["scene"] == "calm"
    reply = therapist.send("questionnaire_finish", {"id": "ssq"})
    assert reply.ok and reply.result["events"][-1] == "questionnaire_scored"
    therapist.close()
    patient.close()
    host.close()
    (admin,) = from_recording(host.recording_path)
    assert admin.patient_id == "P001" and len(admin.answers) == 16
    assert [a["by"] for a in admin.answers[:2]] == ["patient:remote"] * 2
    assert admin.answers[-1]["response"] is None and admin.answers[-1]["by"] == \
        "therapist:panel"
    out = host.recording_path.parent / "fhir"
    result = CliRunner().invoke(main, ["export", str(host.recording_path), "--format", "fhir",
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    by_type = check_bundle(next(out.glob("*.fhir.json")))
    assert len(by_type["QuestionnaireResponse"][0]["item"]) == 15
    assert len(by_type["Observation"]) == 4


def test_definition_file_exports_as_a_questionnaire(tmp_path: Path) -> None:
    from vrexposure.plugins import builtin_dir

    runner = CliRunner()
    result = runner.invoke(main, ["export", str(builtin_dir("questionnaires") / "ipq.yaml"),
                                  "--format", "fhir", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    resource = json.loads((tmp_path / "ipq.fhir.json").read_text())
    Questionnaire.model_validate(resource)
    assert resource["url"] == "urn:vrexposure:questionnaire:ipq" and len(resource["item"]) == 15
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: x\nitems: 3\n")
    result = runner.invoke(main, ["export", str(bad), "--format", "fhir", "--out",
                                  str(tmp_path)])
    assert result.exit_code == 1 and "bad.yaml:" in result.output
