"""FHIR export of questionnaires: every resource validated as FHIR R4 (4.0.1) by the
SMART on FHIR ``fhirclient`` models (strict), and for a second opinion by fhir.resources'
R4B models."""

from __future__ import annotations

import copy
import inspect
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fhirclient.models.bundle as r4_bundle
import fhirclient.models.observation as r4_observation
import fhirclient.models.questionnaire as r4_questionnaire
import fhirclient.models.questionnaireresponse as r4_response
import pytest
from click.testing import CliRunner
from fhir.resources.R4B.bundle import Bundle as R4BBundle
from fhir.resources.R4B.observation import Observation as R4BObservation
from fhir.resources.R4B.questionnaire import Questionnaire as R4BQuestionnaire
from fhir.resources.R4B.questionnaireresponse import (
    QuestionnaireResponse as R4BQuestionnaireResponse,
)
from fhirclient.models.fhirabstractbase import FHIRValidationError

from vrexposure.cli import main
from vrexposure.client import ControlClient
from vrexposure.host import SessionHost
from vrexposure.questionnaires import discover_questionnaires
from vrexposure.questionnaires.fhir import (
    PATIENT_ID_SYSTEM,
    FHIRExportError,
    bundle,
    questionnaire_resource,
    r4_problems,
    validated,
)
from vrexposure.questionnaires.records import (
    administer,
    from_recording,
    read_any,
    write_standalone,
)

#: FHIR R4 (4.0.1) models: the validation that counts.
R4_MODELS: dict[str, Any] = {
    "Questionnaire": r4_questionnaire.Questionnaire,
    "QuestionnaireResponse": r4_response.QuestionnaireResponse,
    "Observation": r4_observation.Observation, "Bundle": r4_bundle.Bundle}
#: fhir.resources ships R4B (4.3) only: a second opinion, the elements used being the same.
R4B_MODELS: dict[str, Any] = {
    "Questionnaire": R4BQuestionnaire, "QuestionnaireResponse": R4BQuestionnaireResponse,
    "Observation": R4BObservation, "Bundle": R4BBundle}
#: Elements that would describe a person; none may appear (Questionnaire.name is the
#: form's computer name and is allowed there only).
PERSON_KEYS = {"name", "given", "family", "telecom", "birthDate", "address", "gender"}


def check_r4(resource: dict[str, Any]) -> None:
    """``resource`` is valid FHIR R4 4.0.1 (and R4B), says so, and names no person."""
    kind = resource["resourceType"]
    R4_MODELS[kind](resource, strict=True)  # raises FHIRValidationError
    assert r4_problems(resource) == []
    R4B_MODELS[kind].model_validate(resource)
    assert resource["meta"]["profile"] == [
        f"http://hl7.org/fhir/StructureDefinition/{kind}|4.0.1"]
    assert_no_person(resource, top=True)


def assert_no_person(node: Any, top: bool = False) -> None:
    if isinstance(node, dict):
        if node.get("resourceType") == "Questionnaire" and top:
            node = {k: v for k, v in node.items() if k != "name"}
        assert not PERSON_KEYS & node.keys(), node.keys()
        assert node.get("resourceType") != "Patient"
        for key, value in node.items():
            if key == "resource":
                check_r4(value)
            else:
                assert_no_person(value)
    elif isinstance(node, list):
        for value in node:
            assert_no_person(value)


def check_bundle(path: Path) -> dict[str, list[dict]]:
    data = json.loads(path.read_text())
    check_r4(data)  # the Bundle, and through it every entry on its own
    by_type: dict[str, list[dict]] = {}
    for entry in data["entry"]:
        resource = entry["resource"]
        by_type.setdefault(resource["resourceType"], []).append(resource)
        if "subject" in resource:  # the pseudonymous id only, as an identifier
            assert resource["subject"] == {"identifier": {"system": PATIENT_ID_SYSTEM,
                                                          "value": resource["subject"]
                                                          ["identifier"]["value"]}}
    return by_type


def test_validating_models_are_fhir_r4_4_0_1() -> None:
    """fhirclient's models are generated from the R4 specification (a newer fhirclient
    moving to R5 must fail here rather than silently change what the export is)."""
    for model in R4_MODELS.values():
        source = inspect.getsource(inspect.getmodule(model))  # type: ignore[arg-type]
        header = next(line for line in source.splitlines() if "Generated from" in line)
        assert header.startswith("# Generated from FHIR 4.0.1"), header


def test_every_definition_maps_to_a_valid_questionnaire() -> None:
    for q in discover_questionnaires().values():
        resource = questionnaire_resource(q)
        check_r4(resource)
        linked = [i["linkId"] for i in resource["item"] if i["type"] != "display"]
        assert linked == list(q.item_ids)
        assert resource["copyright"] and resource["description"]
        if not q.administrable:  # licensed text is never exported
            assert all("text" not in i for i in resource["item"] if i["type"] != "display")
    ipq = questionnaire_resource(discover_questionnaires()["ipq"])
    sp2 = next(i for i in ipq["item"] if i["linkId"] == "SP2")
    ordinals = [o["valueCoding"]["extension"][0]["valueDecimal"] for o in sp2["answerOption"]]
    assert ordinals == [6, 5, 4, 3, 2, 1, 0]  # reverse-keyed: scored value per answer


@pytest.fixture(scope="module")
def r4_bundle_json(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A Bundle with every administrable questionnaire answered (built and validated)."""
    folder = tmp_path_factory.mktemp("forms")
    administrations = []
    for q in discover_questionnaires().values():
        if q.administrable:
            answers = {i.id: i.scale.min for i in q.items}
            administrations += read_any(write_standalone(
                folder, "P023", "before_session",
                administer(q, answers, "before_session", "therapist:test")))
    return bundle(administrations)


def test_every_administrable_form_exports_as_valid_r4(r4_bundle_json: dict[str, Any]) -> None:
    check_r4(r4_bundle_json)
    kinds = [e["resource"]["resourceType"] for e in r4_bundle_json["entry"]]
    assert {"Questionnaire", "QuestionnaireResponse", "Observation"} <= set(kinds)
    definitions = {e["resource"]["url"]: e["resource"] for e in r4_bundle_json["entry"]
                   if e["resource"]["resourceType"] == "Questionnaire"}
    for entry in r4_bundle_json["entry"]:
        response = entry["resource"]
        if response["resourceType"] == "QuestionnaireResponse":  # the canonical resolves
            url, version = response["questionnaire"].split("|")
            assert definitions[url]["version"] == version
    ipq = definitions["urn:vrexposure:questionnaire:ipq"]
    assert ipq["version"] == "2001-14-items-English"  # "2001 (14 items, English)": no spaces


def _first(bundle_json: dict[str, Any], kind: str) -> dict[str, Any]:
    return copy.deepcopy(next(e["resource"] for e in bundle_json["entry"]
                              if e["resource"]["resourceType"] == kind))


def _del(key: str) -> Callable[[dict[str, Any]], None]:
    return lambda r: r.pop(key)


def _set(key: str, value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda r: r.__setitem__(key, value)


MUTATIONS: list[tuple[str, str, Callable[[dict[str, Any]], None], str]] = [
    ("missing required status", "QuestionnaireResponse", _del("status"), "status"),
    ("missing required status", "Observation", _del("status"), "status"),
    ("missing required code", "Observation", _del("code"), "code"),
    ("status outside the R4 value set", "QuestionnaireResponse", _set("status", "done"),
     "status"),
    ("status outside the R4 value set", "Questionnaire", _set("status", "published"),
     "status"),
    ("item type outside the R4 value set", "Questionnaire",
     lambda r: r["item"][1].__setitem__("type", "coding"), "item.type"),
    ("wrong type of a value", "Observation",
     lambda r: r["valueQuantity"].__setitem__("value", "lots"), "value"),
    ("wrong type of a value", "QuestionnaireResponse",
     lambda r: r["item"][0]["answer"][0].__setitem__("valueCoding", "2"), "valueCoding"),
    ("malformed dateTime", "QuestionnaireResponse", _set("authored", "07/12/2026 10:00"),
     "authored"),
    ("element that R4 does not have (R5)", "Questionnaire",
     _set("versionAlgorithmString", "semver"), "versionAlgorithmString"),
    ("whitespace in a canonical", "QuestionnaireResponse",
     _set("questionnaire", "urn:vrexposure:questionnaire:ipq|2001 (14 items)"),
     "questionnaire"),
    ("malformed id", "Observation", _set("id", "P023 ssq/1"), "id"),
    ("a list where one value is allowed", "QuestionnaireResponse",
     lambda r: r.__setitem__("subject", [r["subject"]]), "subject"),
]


@pytest.mark.parametrize(("why", "kind", "mutate", "element"), MUTATIONS,
                         ids=[f"{m[1]}-{m[0]}" for m in MUTATIONS])
def test_invalid_resource_is_refused(r4_bundle_json: dict[str, Any], why: str, kind: str,
                                     mutate: Callable[[dict[str, Any]], None],
                                     element: str) -> None:
    resource = _first(r4_bundle_json, kind)
    validated(kind, copy.deepcopy(resource))  # valid before the mutation
    mutate(resource)
    with pytest.raises(FHIRExportError, match=element) as caught:
        validated(kind, resource)
    assert f"invalid FHIR R4 {kind}" in str(caught.value)
    # The same mutation inside a Bundle is refused too.
    broken = copy.deepcopy(r4_bundle_json)
    index = next(i for i, e in enumerate(broken["entry"])
                 if e["resource"]["resourceType"] == kind)
    broken["entry"][index]["resource"] = resource
    with pytest.raises(FHIRExportError):
        validated("Bundle", broken)


def test_fhirclient_alone_refuses_structural_errors(r4_bundle_json: dict[str, Any]) -> None:
    """The library itself (not only our added checks) refuses a missing status."""
    resource = _first(r4_bundle_json, "QuestionnaireResponse")
    del resource["status"]
    with pytest.raises(FHIRValidationError, match="status"):
        r4_response.QuestionnaireResponse(resource, strict=True)


def test_cli_reports_an_invalid_export_clearly(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A resource the library refuses stops the export with a message, not a traceback,
    and writes no file."""
    ssq = discover_questionnaires()["ssq"]
    path = write_standalone(tmp_path, "P017", "before_session",
                            administer(ssq, dict.fromkeys(ssq.item_ids, 1), "before_session",
                                       "therapist:test"))
    import vrexposure.questionnaires.fhir as fhir_module

    monkeypatch.setattr(fhir_module, "_authored", lambda a: "yesterday")
    result = CliRunner().invoke(main, ["export", str(path), "--format", "fhir", "--out",
                                       str(tmp_path / "fhir")])
    assert result.exit_code == 1
    assert "invalid FHIR R4 QuestionnaireResponse" in result.output and "authored" in \
        result.output
    assert not list((tmp_path / "fhir").glob("*.json"))


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
    check_r4(resource)
    assert resource["url"] == "urn:vrexposure:questionnaire:ipq" and len(resource["item"]) == 15
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: x\nitems: 3\n")
    result = runner.invoke(main, ["export", str(bad), "--format", "fhir", "--out",
                                  str(tmp_path)])
    assert result.exit_code == 1 and "bad.yaml:" in result.output
