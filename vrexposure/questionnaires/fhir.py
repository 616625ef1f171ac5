"""FHIR mapping of questionnaires (needs the ``fhir`` extra: ``fhir.resources``).

A definition becomes a ``Questionnaire``, a completed form a ``QuestionnaireResponse``
(unanswered items are absent, as FHIR expects; nothing is filled in), and each score an
``Observation`` derived from that response. They travel in one ``Bundle`` of type
``collection`` per exported file. The patient appears only as a pseudonymous identifier
(``urn:vrexposure:patient-id``), never as a name or a Patient resource.

The models are the ``fhir.resources.R4B`` ones (FHIR 4.3): the Questionnaire,
QuestionnaireResponse, Observation and Bundle elements used here are the same in R4 (4.0.1).
Every resource is built as plain JSON and then validated by the library's model.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from .model import Item, Questionnaire
from .records import Administration

PATIENT_ID_SYSTEM = "urn:vrexposure:patient-id"
CANONICAL_BASE = "urn:vrexposure:questionnaire"
ORDINAL_VALUE_URL = "http://hl7.org/fhir/StructureDefinition/ordinalValue"
MIN_VALUE_URL = "http://hl7.org/fhir/StructureDefinition/minValue"
MAX_VALUE_URL = "http://hl7.org/fhir/StructureDefinition/maxValue"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
DATA_ABSENT = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
#: A scale with more points than this is an integer item rather than a list of choices.
MAX_CHOICES = 11
_NAMESPACE = uuid.UUID("9d3c1a7e-5b0f-4f43-9a61-1f2b7f5e0c11")


def _models() -> Any:
    try:
        from fhir.resources import R4B
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise RuntimeError("FHIR export needs the 'fhir' extra: pip install "
                           "'vrexposure[fhir]'") from exc
    return R4B


def fhir_id(text: str) -> str:
    """A valid FHIR resource id ([A-Za-z0-9-.]{1,64}) made from ``text``."""
    return re.sub(r"[^A-Za-z0-9.-]", "-", text)[:64] or "x"


def canonical(q: Questionnaire) -> str:
    return f"{CANONICAL_BASE}:{q.id}"


def scale_system(q: Questionnaire, item: Item) -> str:
    return f"{canonical(q)}:scale:{item.scale.min}-{item.scale.max}"


def _is_choice(item: Item) -> bool:
    return len(item.scale.values()) <= MAX_CHOICES


def _coding(q: Questionnaire, item: Item, value: int) -> dict[str, Any]:
    return {"system": scale_system(q, item), "code": str(value),
            "display": item.scale.anchors.get(value, str(value))}


def questionnaire_resource(q: Questionnaire) -> dict[str, Any]:
    """The definition as a FHIR ``Questionnaire`` (JSON form, validated)."""
    items: list[dict[str, Any]] = []
    if q.instructions:
        items.append({"linkId": "instructions", "type": "display", "text": q.instructions})
    for item in q.items:
        entry: dict[str, Any] = {"linkId": item.id, "required": False}
        if q.administrable:
            entry["text"] = item.text
        if _is_choice(item):
            entry["type"] = "choice"
            entry["answerOption"] = [
                {"valueCoding": {**_coding(q, item, v), "extension": [
                    {"url": ORDINAL_VALUE_URL,
                     "valueDecimal": item.scale.reverse(v) if item.reverse else v}]}}
                for v in item.scale.values()]
        else:
            entry["type"] = "integer"
            entry["extension"] = [{"url": MIN_VALUE_URL, "valueInteger": item.scale.min},
                                  {"url": MAX_VALUE_URL, "valueInteger": item.scale.max}]
        items.append(entry)
    resource = {
        "resourceType": "Questionnaire", "id": fhir_id(q.id), "url": canonical(q),
        "version": q.version, "name": re.sub(r"[^A-Za-z0-9_]", "_", q.id.upper()),
        "title": q.title, "status": "active", "description": q.citation.strip(),
        "copyright": q.licence.strip(), "subjectType": ["Patient"], "item": items,
    }
    return validated("Questionnaire", resource)


def _reference(full_url: str) -> dict[str, Any]:
    return {"reference": full_url}


def _subject(patient_id: str) -> dict[str, Any]:
    return {"identifier": {"system": PATIENT_ID_SYSTEM, "value": patient_id}}


def _authored(a: Administration) -> str:
    try:
        return datetime.fromisoformat(a.completed_utc).isoformat()
    except ValueError:
        return datetime.now(UTC).isoformat()


def response_resource(a: Administration, resource_id: str) -> dict[str, Any]:
    """A completed form as a FHIR ``QuestionnaireResponse`` (validated)."""
    q = a.questionnaire
    items: list[dict[str, Any]] = []
    answers = a.final_answers()
    for item in q.items:
        value = answers.get(item.id)
        if value is None:
            continue  # unanswered: absent, never a default
        answer = ({"valueCoding": _coding(q, item, value)} if _is_choice(item)
                  else {"valueInteger": value})
        entry: dict[str, Any] = {"linkId": item.id, "answer": [answer]}
        if q.administrable:
            entry["text"] = item.text
        items.append(entry)
    resource = {
        "resourceType": "QuestionnaireResponse", "id": resource_id,
        "questionnaire": f"{canonical(q)}|{q.version}", "status": "completed",
        "subject": _subject(a.patient_id), "authored": _authored(a),
        "source": _subject(a.patient_id), "item": items,
    }
    return validated("QuestionnaireResponse", resource)


def observation_resources(a: Administration, response_url: str, base_id: str
                          ) -> list[dict[str, Any]]:
    """One ``Observation`` per published score, derived from the response."""
    q = a.questionnaire
    out = []
    for score in q.scores:
        entry = a.scores.get(score.id, {})
        value = entry.get("value")
        resource: dict[str, Any] = {
            "resourceType": "Observation", "id": fhir_id(f"{base_id}-{score.id}"),
            "status": "final",
            "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": "survey",
                                      "display": "Survey"}]}],
            "code": {"coding": [{"system": f"{canonical(q)}:score", "code": score.id,
                                 "display": score.title}],
                     "text": f"{q.title}: {score.title}"},
            "subject": _subject(a.patient_id), "effectiveDateTime": _authored(a),
            "derivedFrom": [_reference(response_url)],
        }
        if value is None:
            resource["dataAbsentReason"] = {"coding": [{"system": DATA_ABSENT,
                                                        "code": "unknown"}],
                                            "text": "too many items unanswered to score"}
        else:
            resource["valueQuantity"] = {"value": float(value), "unit": "score",
                                         "system": "http://unitsofmeasure.org",
                                         "code": "{score}"}
        out.append(validated("Observation", resource))
    return out


def validated(resource_type: str, resource: dict[str, Any]) -> dict[str, Any]:
    """Validate ``resource`` with the FHIR model library; returns its JSON form."""
    models = _models()
    module = __import__(f"{models.__name__}.{resource_type.lower()}",
                        fromlist=[resource_type])
    model = getattr(module, resource_type).model_validate(resource)
    dumped: dict[str, Any] = model.model_dump(mode="json", exclude_none=True)
    return dumped


def bundle(administrations: Sequence[Administration], source: str = "") -> dict[str, Any]:
    """A ``collection`` Bundle: each questionnaire definition once, every completed form
    and its score observations."""
    entries: list[dict[str, Any]] = []
    seen: set[str] = set()
    for index, a in enumerate(administrations):
        if a.questionnaire.id not in seen:
            seen.add(a.questionnaire.id)
            entries.append({"fullUrl": canonical(a.questionnaire),
                            "resource": questionnaire_resource(a.questionnaire)})
        key = f"{source}|{index}|{a.id}|{a.started_utc}|{a.t_s}"
        response_url = f"urn:uuid:{uuid.uuid5(_NAMESPACE, key)}"
        base_id = fhir_id(f"{a.patient_id}-{a.id}-{index + 1}")
        entries.append({"fullUrl": response_url, "resource": response_resource(a, base_id)})
        for obs in observation_resources(a, response_url, base_id):
            entries.append({"fullUrl": f"urn:uuid:{uuid.uuid5(_NAMESPACE, key + obs['id'])}",
                            "resource": obs})
    result = {"resourceType": "Bundle", "type": "collection",
              "timestamp": datetime.now(UTC).isoformat(), "entry": entries}
    return validated("Bundle", result)
