"""Clinical questionnaires: definitions (YAML in ``questionnaires/``), pure scoring,
administration state, and FHIR mapping (:mod:`.fhir`, needs the ``fhir`` extra)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ..plugins import questionnaire_files
from .model import (
    OCCASIONS,
    Cutoff,
    Item,
    NotAdministrable,
    Questionnaire,
    QuestionnaireError,
    ResponseScale,
    Score,
    is_questionnaire_document,
    load_questionnaire,
    parse_questionnaire,
    questionnaire_from_dict,
    questionnaire_to_dict,
    validate_questionnaire_file,
)
from .scoring import ResponseError, ScoreResult, band, check_response, score_responses


def discover_questionnaires(extra_dirs: Iterable[Path] = ()) -> dict[str, Questionnaire]:
    """All questionnaires by id; a clinic folder's file overrides a built-in of the same id.
    Raises :class:`QuestionnaireError` naming ``file:line`` if a file is invalid."""
    found: dict[str, Questionnaire] = {}
    for path in questionnaire_files(extra_dirs):
        q = load_questionnaire(path)
        found[q.id] = q
    return found


def find_questionnaire(name_or_path: str, extra_dirs: Iterable[Path] = ()) -> Questionnaire:
    """A questionnaire by id (built-in or clinic folder) or by file path."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") and path.exists():
        return load_questionnaire(path)
    known = discover_questionnaires(extra_dirs)
    if name_or_path not in known:
        raise KeyError(f"no questionnaire '{name_or_path}' (known: {', '.join(sorted(known))})")
    return known[name_or_path]


__all__ = [
    "OCCASIONS",
    "Cutoff",
    "Item",
    "NotAdministrable",
    "Questionnaire",
    "QuestionnaireError",
    "ResponseError",
    "ResponseScale",
    "Score",
    "ScoreResult",
    "band",
    "check_response",
    "discover_questionnaires",
    "find_questionnaire",
    "is_questionnaire_document",
    "load_questionnaire",
    "parse_questionnaire",
    "questionnaire_from_dict",
    "questionnaire_to_dict",
    "score_responses",
    "validate_questionnaire_file",
]
