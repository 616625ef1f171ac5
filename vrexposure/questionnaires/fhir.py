"""FHIR R4 (4.0.1) mapping of questionnaires (needs the ``fhir`` extra: ``fhirclient``).

A definition becomes a ``Questionnaire``, a completed form a ``QuestionnaireResponse``
(unanswered items are absent, as FHIR expects; nothing is filled in), and each score an
``Observation`` derived from that response. They travel in one ``Bundle`` of type
``collection`` per exported file. The patient appears only as a pseudonymous identifier
(``urn:vrexposure:patient-id``), never as a name or a Patient resource.

Every resource is built as plain JSON, says it is R4 (``meta.profile`` is the core
StructureDefinition at version 4.0.1), and is validated by the SMART on FHIR ``fhirclient``
models, which are generated from FHIR 4.0.1 (their strict mode refuses a missing required
element, a wrong type, an unknown element or a malformed date), and by the checks of the
required code bindings and URIs that those models leave out (:func:`r4_problems`).
"""

from __future__ import annotations

import importlib
import re
import uuid
from collections.abc import Mapping, Sequence
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


FHIR_VERSION = "4.0.1"
CORE_PROFILE = "http://hl7.org/fhir/StructureDefinition/{}|" + FHIR_VERSION
#: R4 value sets with a *required* binding on the elements written here (fhirclient's
#: models type them as plain strings, so they are checked here).
R4_REQUIRED_CODES: dict[tuple[str, str], frozenset[str]] = {
    ("Questionnaire", "status"): frozenset({"draft", "active", "retired", "unknown"}),
    ("Questionnaire", "item.type"): frozenset({
        "group", "display", "boolean", "decimal", "integer", "date", "dateTime", "time",
        "string", "text", "url", "choice", "open-choice", "attachment", "reference",
        "quantity"}),
    ("QuestionnaireResponse", "status"): frozenset({
        "in-progress", "completed", "amended", "entered-in-error", "stopped"}),
    ("Observation", "status"): frozenset({
        "registered", "preliminary", "final", "amended", "corrected", "cancelled",
        "entered-in-error", "unknown"}),
    ("Bundle", "type"): frozenset({
        "document", "message", "transaction", "transaction-response", "batch",
        "batch-response", "history", "searchset", "collection"}),
}
#: Elements of type uri/canonical written here, and references (URLs: urn:uuid:…): R4
#: allows no whitespace in them.
URI_KEYS = frozenset({"url", "system", "questionnaire", "reference", "fullUrl", "profile"})
ID_RE = re.compile(r"[A-Za-z0-9\-.]{1,64}")


class FHIRExportError(ValueError):
    """A resource that is not valid FHIR R4; the message says which and why."""


def _models() -> Any:
    try:
        import fhirclient.models
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise RuntimeError("FHIR export needs the 'fhir' extra: pip install "
                           "'vrexposure[fhir]'") from exc
    return fhirclient.models


def fhir_id(text: str) -> str:
    """A valid FHIR resource id ([A-Za-z0-9-.]{1,64}) made from ``text``."""
    return re.sub(r"[^A-Za-z0-9.-]", "-", text)[:64] or "x"


def canonical(q: Questionnaire) -> str:
    return f"{CANONICAL_BASE}:{q.id}"


def business_version(q: Questionnaire) -> str:
    """The definition's version as FHIR ``Questionnaire.version``: it is also written after
    ``|`` in the responses' canonical reference, so it may hold no whitespace
    ("2001 (14 items, English)" → "2001-14-items-English")."""
    return re.sub(r"[^A-Za-z0-9.]+", "-", q.version).strip("-") or "1"


def _meta(resource_type: str) -> dict[str, Any]:
    return {"profile": [CORE_PROFILE.format(resource_type)]}


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
        "resourceType": "Questionnaire", "id": fhir_id(q.id),
        "meta": _meta("Questionnaire"), "url": canonical(q), "version": business_version(q),
        "name": re.sub(r"[^A-Za-z0-9_]", "_", q.id.upper()),
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
        "meta": _meta("QuestionnaireResponse"),
        "questionnaire": f"{canonical(q)}|{business_version(q)}", "status": "completed",
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
            "meta": _meta("Observation"), "status": "final",
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


def r4_problems(resource: Mapping[str, Any]) -> list[str]:
    """What the R4 models do not check: required code bindings, ids and whitespace in
    URIs, in ``resource`` and every resource it contains (a Bundle's entries)."""
    problems: list[str] = []
    kind = str(resource.get("resourceType", ""))

    def walk(value: Any, path: str) -> None:
        if isinstance(value, Mapping):
            if "resourceType" in value and path:
                problems.extend(f"{path}.{p}" for p in r4_problems(value))
                return
            for key, child in value.items():
                walk(child, f"{path}.{key}" if path else str(key))
        elif isinstance(value, list):
            for index, child in enumerate(value):
                walk(child, f"{path}[{index}]")
        elif isinstance(value, str):
            key = path.rsplit(".", 1)[-1].split("[", 1)[0]
            if key in URI_KEYS and (not value or re.search(r"\s", value)):
                problems.append(f"{kind}.{path}: {value!r} is not a valid uri")

    walk(resource, "")
    for (resource_type, element), codes in R4_REQUIRED_CODES.items():
        if resource_type != kind:
            continue
        for value in _values(resource, element.split(".")):
            if value not in codes:
                problems.append(f"{kind}.{element}: {value!r} is not one of the R4 codes "
                                f"({', '.join(sorted(codes))})")
    if "id" in resource and not ID_RE.fullmatch(str(resource["id"])):
        problems.append(f"{kind}.id: {resource['id']!r} is not a valid id")
    return problems


def _values(node: Any, path: list[str]) -> list[Any]:
    """Every value at a dotted ``path`` (lists flattened; ``item`` also nests)."""
    if isinstance(node, list):
        return [v for child in node for v in _values(child, path)]
    if not path:
        return [node]
    if not isinstance(node, Mapping):
        return []
    found = _values(node[path[0]], path[1:]) if path[0] in node else []
    if path[0] == "item" and "item" in node and len(path) > 1:
        found += [v for child in node["item"] for v in _values(child, path)]  # nested groups
    return found


def validated(resource_type: str, resource: dict[str, Any]) -> dict[str, Any]:
    """Validate ``resource`` as FHIR R4 (4.0.1) with ``fhirclient``'s strict models and
    :func:`r4_problems`; returns its JSON form. Raises :class:`FHIRExportError`."""
    models = _models()
    from fhirclient.models.fhirabstractbase import FHIRValidationError

    if resource.get("resourceType") != resource_type:
        raise FHIRExportError(f"expected a {resource_type}, got "
                              f"{resource.get('resourceType')!r}")
    module = importlib.import_module(f"{models.__name__}.{resource_type.lower()}")
    try:
        model = getattr(module, resource_type)(resource, strict=True)
        dumped: dict[str, Any] = model.as_json()
    except (FHIRValidationError, TypeError, ValueError) as exc:
        raise FHIRExportError(f"invalid FHIR R4 {resource_type}: {exc}") from exc
    problems = r4_problems(dumped)
    if problems:
        raise FHIRExportError(f"invalid FHIR R4 {resource_type}: " + "; ".join(problems))
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
    result = {"resourceType": "Bundle", "meta": _meta("Bundle"), "type": "collection",
              "timestamp": datetime.now(UTC).isoformat(), "entry": entries}
    return validated("Bundle", result)
