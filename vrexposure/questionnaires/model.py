"""Questionnaire definitions: the YAML model and its validation (pure).

A definition names its items (text, response scale with anchors, reverse
keying), the published scores (which items or scores, sum or mean, weight) and
when it is given. ``validate_questionnaire_file`` returns every problem as
``file:line: message``; ``load_questionnaire`` raises :class:`QuestionnaireError`.

Instruments whose item text may not be redistributed ship as *scoring only*
(``item_text: licensed``): the clinic copies the file into its own
questionnaires folder and fills in each item's ``text`` from its licensed copy;
until then the questionnaire can be scored from entered answers but not shown.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..hierarchy import FieldChecker, Problem, did_you_mean, load_yaml_checked
from ..yamlsrc import PathKey, SourceMap, YamlSyntaxError, load_yaml_file, load_yaml_text

#: When a questionnaire is meant to be given (the definition's ``when`` list).
OCCASIONS = ("before_session", "after_session", "before_treatment", "after_treatment",
             "follow_up", "any")

ItemText = Literal["included", "licensed"]
Method = Literal["sum", "mean"]


class QuestionnaireError(Exception):
    """A questionnaire file has errors; ``problems`` lists every one of them."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class NotAdministrable(Exception):
    """The definition carries no item text (licensed instrument): it cannot be shown."""


@dataclass(frozen=True)
class ResponseScale:
    """Whole-number responses from ``min`` to ``max`` in ``step``s, with labelled anchors."""

    min: int
    max: int
    step: int = 1
    anchors: Mapping[int, str] = field(default_factory=dict)

    def values(self) -> list[int]:
        return list(range(self.min, self.max + 1, self.step))

    def valid(self, value: object) -> bool:
        return (isinstance(value, int) and not isinstance(value, bool)
                and self.min <= value <= self.max and (value - self.min) % self.step == 0)

    def reverse(self, value: int) -> int:
        return self.max + self.min - value


@dataclass(frozen=True)
class Item:
    id: str
    text: str
    scale: ResponseScale
    reverse: bool = False


@dataclass(frozen=True)
class Cutoff:
    value: float
    label: str


@dataclass(frozen=True)
class Score:
    """A published score: items (reverse-corrected) or other scores' raw values, combined
    by ``method``, times ``weight``. ``max_missing`` unanswered items are tolerated (a sum is
    then prorated from the mean of the answered ones); more make the score missing."""

    id: str
    title: str
    method: Method
    items: tuple[str, ...] = ()
    of_scores: tuple[str, ...] = ()
    weight: float = 1.0
    max_missing: int = 0
    cutoffs: tuple[Cutoff, ...] = ()
    higher_is: str = "worse"


@dataclass(frozen=True)
class Questionnaire:
    id: str
    title: str
    version: str
    citation: str
    licence: str
    item_text: ItemText
    instructions: str
    items: tuple[Item, ...]
    scores: tuple[Score, ...]
    when: tuple[str, ...] = ("any",)
    every_n_sessions: int | None = None
    licensed_text_note: str = ""
    source_path: str = ""

    @property
    def administrable(self) -> bool:
        return self.item_text == "included"

    def item(self, item_id: str) -> Item:
        for item in self.items:
            if item.id == item_id:
                return item
        raise KeyError(item_id)

    @property
    def item_ids(self) -> tuple[str, ...]:
        return tuple(i.id for i in self.items)

    def score(self, score_id: str) -> Score:
        for score in self.scores:
            if score.id == score_id:
                return score
        raise KeyError(score_id)

    def require_text(self) -> None:
        """Raise :class:`NotAdministrable` with where the clinic's licensed text goes."""
        if not self.administrable:
            raise NotAdministrable(
                f"questionnaire '{self.id}' ships as scoring only: its item text is "
                f"copyrighted ({self.licence}). Copy {self.source_path or self.id + '.yaml'} "
                "into your clinic's questionnaires folder (config 'questionnaires.dirs'), set "
                "'item_text: included' and fill in every item's 'text' from your licensed copy. "
                + self.licensed_text_note)


# ---------------------------------------------------------------------------
# Validation


class _Checker(FieldChecker):
    """The hierarchy's field checker; a questionnaire's text fields are stripped, and a
    numeric ``version`` is read as text."""

    def text(self, data: Mapping[str, Any], key: str, key_path: PathKey, required: bool = True,
             default: str = "") -> str:
        value = data.get(key)
        if key == "version" and isinstance(value, int | float) and not isinstance(value, bool):
            data = {**data, key: str(value)}  # "version: 1.0" in YAML is a number
        return super().text(data, key, key_path, required, default).strip()

    def integer(self, data: Mapping[str, Any], key: str, key_path: PathKey,
                default: int | None, required: bool = False) -> int | None:
        if key not in data:
            if required:
                self.report(key_path, f"missing required field '{key}'")
            return default
        value = data[key]
        if isinstance(value, bool) or not isinstance(value, int):
            self.report((*key_path, key), f"'{key}' must be a whole number, not {value!r}")
            return default
        return value


_TOP_KEYS = ("id", "title", "version", "citation", "licence", "item_text", "licensed_text_note",
             "instructions", "when", "every_n_sessions", "scale", "items", "scores")
_SCALE_KEYS = ("min", "max", "step", "anchors")
_ITEM_KEYS = ("id", "text", "scale", "reverse")
_SCORE_KEYS = ("id", "title", "method", "items", "of_scores", "weight", "max_missing",
               "cutoffs", "higher_is")


def _scale(check: _Checker, raw: object, where: PathKey, need_anchors: bool = True
           ) -> ResponseScale | None:
    if not isinstance(raw, Mapping):
        check.report(where, "'scale' must be a mapping with min, max and anchors")
        return None
    check.unknown_keys(raw, _SCALE_KEYS, where)
    low = check.integer(raw, "min", where, None, required=True)
    high = check.integer(raw, "max", where, None, required=True)
    step = check.integer(raw, "step", where, 1) or 1
    if low is None or high is None:
        return None
    if high <= low:
        check.report((*where, "max"), f"'max' ({high}) must be above 'min' ({low})")
        return None
    if step < 1 or (high - low) % step:
        check.report((*where, "step"), f"'step' must divide max - min ({high - low})")
        return None
    anchors: dict[int, str] = {}
    raw_anchors = raw.get("anchors", {})
    if not isinstance(raw_anchors, Mapping):
        check.report((*where, "anchors"), "'anchors' must map response values to labels")
    else:
        for key, label in raw_anchors.items():
            at = (*where, "anchors", key)
            # JSON (recordings, FHIR round trips) turns the numeric keys into text.
            value = int(key) if isinstance(key, str) and key.lstrip("-").isdigit() else key
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                check.report(at, f"anchor {value!r} is not a response value from {low} to {high}")
            elif not isinstance(label, str) or not label.strip():
                check.report(at, f"anchor {value} needs a label, not {label!r}")
            else:
                anchors[value] = label.strip()
    if need_anchors and (low not in anchors or high not in anchors):
        check.report((*where, "anchors"), f"label both ends of the scale ({low} and {high}) so "
                                           "the patient knows what they mean")
    return ResponseScale(low, high, step, anchors)


def _id_list(check: _Checker, raw: object, where: PathKey, known: Sequence[str],
             what: str) -> tuple[str, ...]:
    if not isinstance(raw, list) or not raw:
        check.report(where, f"'{where[-1]}' must be a non-empty list of {what} ids")
        return ()
    good: list[str] = []
    for index, ref in enumerate(raw):
        if ref not in known:
            check.report((*where, index), f"no {what} '{ref}'{did_you_mean(str(ref), known)}")
        else:
            good.append(str(ref))
    return tuple(good)


def _build(data: object, source: SourceMap) -> tuple[Questionnaire | None, list[Problem]]:
    check = _Checker(source)
    if not isinstance(data, Mapping):
        check.report((), "a questionnaire file must be a mapping of names to values")
        return None, check.problems
    top = data
    check.unknown_keys(top, _TOP_KEYS, ())
    qid = check.text(top, "id", ())
    title = check.text(top, "title", ())
    version = check.text(top, "version", ())
    citation = check.text(top, "citation", ())
    licence = check.text(top, "licence", ())
    instructions = check.text(top, "instructions", (), required=False)
    note = check.text(top, "licensed_text_note", (), required=False)
    item_text = check.text(top, "item_text", (), required=False, default="included")
    if item_text not in ("included", "licensed"):
        check.report(("item_text",), f"'item_text' must be 'included' or 'licensed', "
                                     f"not {item_text!r}")
        item_text = "included"

    when: list[str] = []
    raw_when = top.get("when", ["any"])
    if not isinstance(raw_when, list) or not raw_when:
        check.report(("when",), f"'when' must be a list of: {', '.join(OCCASIONS)}")
    else:
        for index, occasion in enumerate(raw_when):
            if occasion not in OCCASIONS:
                check.report(("when", index), f"unknown occasion {occasion!r}"
                                              f"{did_you_mean(str(occasion), OCCASIONS)}; "
                                              f"use one of: {', '.join(OCCASIONS)}")
            else:
                when.append(occasion)
    every_n = check.integer(top, "every_n_sessions", (), None)
    if every_n is not None and every_n < 1:
        check.report(("every_n_sessions",), "'every_n_sessions' must be 1 or more")

    need_anchors = item_text == "included"  # a licensed copy brings its own anchors
    default_scale = (_scale(check, top["scale"], ("scale",), need_anchors) if "scale" in top
                     else None)

    items: list[Item] = []
    raw_items = top.get("items")
    if not isinstance(raw_items, list) or not raw_items:
        check.report(("items",) if "items" in top else (),
                     "'items' must be a non-empty list of items")
        raw_items = []
    seen: dict[str, int] = {}
    for index, raw_item in enumerate(raw_items):
        where: PathKey = ("items", index)
        if not isinstance(raw_item, Mapping):
            check.report(where, f"item {index + 1} must be a mapping with id and text")
            continue
        check.unknown_keys(raw_item, _ITEM_KEYS, where)
        iid = check.unique_id(raw_item, where, seen, "item", index)
        if item_text == "included":
            text = check.text(raw_item, "text", where)
        else:
            text = ""
            if "text" in raw_item:
                check.report((*where, "text"), "this file says 'item_text: licensed' but gives "
                                               "item text: set 'item_text: included'")
        scale = (_scale(check, raw_item["scale"], (*where, "scale"), need_anchors)
                 if "scale" in raw_item
                 else default_scale)
        if scale is None:
            if "scale" not in raw_item and default_scale is None and "scale" not in top:
                check.report(where, f"item '{iid}' has no response scale (give 'scale' here "
                                    "or at the top of the file)")
            continue
        reverse = raw_item.get("reverse", False)
        if not isinstance(reverse, bool):
            check.report((*where, "reverse"), f"'reverse' must be true or false, not {reverse!r}")
            reverse = False
        items.append(Item(iid, text, scale, reverse))

    scores: list[Score] = []
    raw_scores = top.get("scores")
    if not isinstance(raw_scores, list) or not raw_scores:
        check.report(("scores",) if "scores" in top else (),
                     "'scores' must be a non-empty list (the published scoring rule)")
        raw_scores = []
    item_ids = [i.id for i in items]
    score_ids: list[str] = []
    for index, raw_score in enumerate(raw_scores):
        where = ("scores", index)
        if not isinstance(raw_score, Mapping):
            check.report(where, f"score {index + 1} must be a mapping")
            continue
        check.unknown_keys(raw_score, _SCORE_KEYS, where)
        sid = check.text(raw_score, "id", where, default=f"score{index + 1}")
        if sid in score_ids:
            check.report((*where, "id"), f"score id '{sid}' is used twice")
        stitle = check.text(raw_score, "title", where, default=sid)
        method = raw_score.get("method", "sum")
        if method not in ("sum", "mean"):
            check.report((*where, "method"), f"'method' must be 'sum' or 'mean', not {method!r}")
            method = "sum"
        has_items, has_scores = "items" in raw_score, "of_scores" in raw_score
        if has_items == has_scores:
            check.report(where, f"score '{sid}' needs exactly one of 'items' or 'of_scores'")
        refs_items = (_id_list(check, raw_score["items"], (*where, "items"), item_ids, "item")
                      if has_items else ())
        refs_scores = (_id_list(check, raw_score["of_scores"], (*where, "of_scores"),
                                score_ids, "earlier score") if has_scores else ())
        weight = raw_score.get("weight", 1.0)
        if isinstance(weight, bool) or not isinstance(weight, int | float) or weight <= 0:
            check.report((*where, "weight"), f"'weight' must be a positive number, not "
                                             f"{weight!r}")
            weight = 1.0
        max_missing = check.integer(raw_score, "max_missing", where, 0) or 0
        if max_missing < 0 or (refs_items and max_missing >= len(refs_items)):
            check.report((*where, "max_missing"), f"'max_missing' must be from 0 to "
                                                  f"{max(0, len(refs_items) - 1)}")
            max_missing = 0
        cutoffs: list[Cutoff] = []
        for cindex, raw_cut in enumerate(raw_score.get("cutoffs", []) or []):
            at = (*where, "cutoffs", cindex)
            if (not isinstance(raw_cut, Mapping) or isinstance(raw_cut.get("value"), bool)
                    or not isinstance(raw_cut.get("value"), int | float)
                    or not isinstance(raw_cut.get("label"), str)):
                check.report(at, "a cut-off needs a numeric 'value' and a 'label'")
                continue
            cutoffs.append(Cutoff(float(raw_cut["value"]), str(raw_cut["label"])))
        higher_is = raw_score.get("higher_is", "worse")
        if higher_is not in ("worse", "better"):
            check.report((*where, "higher_is"), "'higher_is' must be 'worse' or 'better'")
            higher_is = "worse"
        score_ids.append(sid)
        scores.append(Score(sid, stitle, method, refs_items, refs_scores, float(weight),
                            max_missing, tuple(cutoffs), higher_is))

    if any(p.severity == "error" for p in check.problems):
        return None, check.problems
    return (Questionnaire(qid, title, version, citation, licence,
                          "licensed" if item_text == "licensed" else "included", instructions,
                          tuple(items), tuple(scores), tuple(when), every_n, note, source.path),
            check.problems)


def parse_questionnaire(text: str, path: str = "<string>"
                        ) -> tuple[Questionnaire | None, list[Problem]]:
    try:
        data, source = load_yaml_text(text, path)
    except YamlSyntaxError as exc:
        return None, [Problem(exc.path, exc.line, "error", exc.message)]
    return _build(data, source)


def validate_questionnaire_file(path: Path) -> tuple[Questionnaire | None, list[Problem]]:
    loaded = load_yaml_checked(path)
    if isinstance(loaded, list):
        return None, loaded
    return _build(*loaded)


def load_questionnaire(path: Path) -> Questionnaire:
    questionnaire, problems = validate_questionnaire_file(Path(path))
    if questionnaire is None:
        raise QuestionnaireError([p for p in problems if p.severity == "error"] or problems)
    return questionnaire


def is_questionnaire_document(path: Path) -> bool:
    """Whether a YAML file is a questionnaire (it has ``items`` and ``scores``) rather than
    a hierarchy; used by ``vrexposure validate`` to pick the validator."""
    try:
        data, _ = load_yaml_file(path)
    except (YamlSyntaxError, OSError):
        return path.parent.name == "questionnaires"
    if isinstance(data, Mapping):
        return "items" in data and "scores" in data and "steps" not in data
    return path.parent.name == "questionnaires"


def questionnaire_to_dict(q: Questionnaire) -> dict[str, Any]:
    """Plain data (recorded in the XDF header so a recording is self-contained)."""
    return {
        "id": q.id, "title": q.title, "version": q.version, "citation": q.citation,
        "licence": q.licence, "item_text": q.item_text,
        **({"instructions": q.instructions} if q.instructions else {}),
        **({"licensed_text_note": q.licensed_text_note} if q.licensed_text_note else {}),
        "when": list(q.when),
        **({"every_n_sessions": q.every_n_sessions} if q.every_n_sessions else {}),
        "items": [{"id": i.id, **({"text": i.text} if q.administrable else {}),
                   "scale": {"min": i.scale.min, "max": i.scale.max, "step": i.scale.step,
                             # text keys: consumers decode maps with text keys only
                             "anchors": {str(k): v for k, v in i.scale.anchors.items()}},
                   "reverse": i.reverse} for i in q.items],
        "scores": [{"id": s.id, "title": s.title, "method": s.method,
                    **({"items": list(s.items)} if s.items else {"of_scores": list(s.of_scores)}),
                    "weight": s.weight, "max_missing": s.max_missing,
                    "cutoffs": [{"value": c.value, "label": c.label} for c in s.cutoffs],
                    "higher_is": s.higher_is} for s in q.scores],
    }


def questionnaire_from_dict(data: Mapping[str, Any], origin: str = "<recording>"
                            ) -> Questionnaire:
    import yaml

    q, problems = parse_questionnaire(yaml.safe_dump(dict(data), sort_keys=False), origin)
    if q is None:
        raise QuestionnaireError(problems)
    return q
