"""Giving a questionnaire inside a session (pure; the state machine calls these).

Commands ``questionnaire_start {id, occasion?}``, ``questionnaire_answer {id, item,
response|null}``, ``questionnaire_pause {id, paused}`` and ``questionnaire_finish {id}``
become events:

* ``questionnaire_started``: carries the whole definition, so a recording is
  self-contained and the state rebuilds without the YAML files;
* ``questionnaire_answer``: item id, response or ``null`` with ``answered: false``
  (skipped, or left open when the form was finished early: never a default), who entered it;
* ``questionnaire_scored``: every published score, the answers, what was unanswered;
* ``alert`` ``cybersickness`` when the SSQ total rose by more than the hierarchy's
  ``questionnaires.ssq_rise_alert`` since the session's first SSQ.

The form is scored by itself once every item has been answered or skipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any

from .model import (
    Item,
    NotAdministrable,
    Questionnaire,
    questionnaire_from_dict,
    questionnaire_to_dict,
)
from .scoring import ResponseError, check_response, results_to_dict, score_responses

#: What a questionnaire can be given as, besides the definition's own ``when`` list.
SESSION_OCCASIONS = ("before_session", "during_session", "after_session", "before_treatment",
                     "after_treatment", "follow_up")

SSQ_ID = "ssq"
CYBERSICKNESS_ALERT = "cybersickness"


class QuestionnaireCommandError(ValueError):
    """A questionnaire command that cannot be carried out now."""


@dataclass(frozen=True)
class OpenQuestionnaire:
    definition: Questionnaire
    occasion: str
    started_s: float
    by: str
    answers: Mapping[str, int | None] = field(default_factory=dict)
    paused: bool = False

    @property
    def id(self) -> str:
        return self.definition.id

    @property
    def next_item(self) -> Item | None:
        """The first item not yet answered or skipped (``None`` = the form is complete)."""
        for item in self.definition.items:
            if item.id not in self.answers:
                return item
        return None

    @property
    def answered_count(self) -> int:
        return sum(v is not None for v in self.answers.values())

    @property
    def visited_count(self) -> int:
        return len(self.answers)

    def to_dict(self) -> dict[str, Any]:
        """Wire form for the panel and the renderer (the state message)."""
        nxt = self.next_item
        items = self.definition.items
        return {
            "id": self.id, "title": self.definition.title, "occasion": self.occasion,
            "instructions": self.definition.instructions,
            "n_items": len(items), "answered": self.answered_count,
            "visited": self.visited_count, "paused": self.paused,
            "next_index": None if nxt is None else items.index(nxt),
            "next_item": None if nxt is None else {
                "id": nxt.id, "text": nxt.text, "min": nxt.scale.min, "max": nxt.scale.max,
                "step": nxt.scale.step,
                "anchors": {str(k): v for k, v in sorted(nxt.scale.anchors.items())}},
            "answers": dict(self.answers),
        }


@dataclass(frozen=True)
class CompletedQuestionnaire:
    id: str
    title: str
    occasion: str
    t_s: float
    scores: Mapping[str, Mapping[str, Any]]
    answers: Mapping[str, int | None]

    def value(self, score_id: str) -> float | None:
        entry = self.scores.get(score_id)
        return None if entry is None else entry.get("value")

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "occasion": self.occasion, "t_s": self.t_s,
                "scores": {k: dict(v) for k, v in self.scores.items()},
                "answers": dict(self.answers)}


@cache
def _builtin_library() -> dict[str, Questionnaire]:
    from . import discover_questionnaires

    return discover_questionnaires()


def library(overrides: Mapping[str, Questionnaire] | None) -> Mapping[str, Questionnaire]:
    return _builtin_library() if overrides is None else overrides


# --- decide -----------------------------------------------------------------

def start_event(current: OpenQuestionnaire | None, definitions: Mapping[str, Questionnaire],
                args: Mapping[str, Any], exposure_started: bool, by: str) -> dict[str, Any]:
    if current is not None:
        raise QuestionnaireCommandError(f"questionnaire '{current.id}' is still open: finish it "
                                        "first")
    qid = args.get("id")
    if not isinstance(qid, str) or qid not in definitions:
        raise QuestionnaireCommandError(f"no questionnaire {qid!r} (known: "
                                        f"{', '.join(sorted(definitions))})")
    definition = definitions[qid]
    try:
        definition.require_text()
    except NotAdministrable as exc:
        raise QuestionnaireCommandError(str(exc)) from None
    occasion = args.get("occasion") or ("after_session" if exposure_started
                                        else "before_session")
    if occasion not in SESSION_OCCASIONS:
        raise QuestionnaireCommandError(f"'occasion' must be one of "
                                        f"{', '.join(SESSION_OCCASIONS)}, not {occasion!r}")
    return {"id": qid, "title": definition.title, "occasion": occasion,
            "n_items": len(definition.items), "by": by,
            "definition": questionnaire_to_dict(definition)}


def _require_open(current: OpenQuestionnaire | None, args: Mapping[str, Any]
                  ) -> OpenQuestionnaire:
    if current is None:
        raise QuestionnaireCommandError("no questionnaire is open")
    if args.get("id", current.id) != current.id:
        raise QuestionnaireCommandError(f"the open questionnaire is '{current.id}', not "
                                        f"{args.get('id')!r}")
    return current


def answer_event(current: OpenQuestionnaire | None, args: Mapping[str, Any], by: str
                 ) -> dict[str, Any]:
    form = _require_open(current, args)
    item_id = args.get("item")
    if item_id is None and form.next_item is not None:
        item_id = form.next_item.id
    if "response" not in args:
        raise QuestionnaireCommandError("'questionnaire_answer' needs 'response' (a value on "
                                        "the item's scale, or null to leave it unanswered)")
    try:
        response = check_response(form.definition, str(item_id), args["response"])
    except ResponseError as exc:
        raise QuestionnaireCommandError(str(exc)) from None
    index = form.definition.item_ids.index(str(item_id))
    return {"id": form.id, "item": str(item_id), "item_index": index, "response": response,
            "answered": response is not None, "by": by,
            "revised": str(item_id) in form.answers}


def pause_event(current: OpenQuestionnaire | None, args: Mapping[str, Any], by: str
                ) -> dict[str, Any]:
    form = _require_open(current, args)
    paused = args.get("paused", not form.paused)
    if not isinstance(paused, bool):
        raise QuestionnaireCommandError("'paused' must be true or false")
    return {"id": form.id, "paused": paused, "by": by}


def finish_events(current: OpenQuestionnaire | None, args: Mapping[str, Any],
                  done: tuple[CompletedQuestionnaire, ...], ssq_rise_alert: float | None,
                  by: str) -> list[tuple[str, dict[str, Any]]]:
    """Unanswered items (recorded as such), the score, and the SSQ rise alert if due."""
    form = _require_open(current, args)
    events: list[tuple[str, dict[str, Any]]] = []
    answers = dict(form.answers)
    for index, item in enumerate(form.definition.items):
        if item.id not in answers:
            answers[item.id] = None
            events.append(("questionnaire_answer", {
                "id": form.id, "item": item.id, "item_index": index, "response": None,
                "answered": False, "by": by, "reason": "finished before it was answered"}))
    results = score_responses(form.definition, answers)
    scores = results_to_dict(results)
    events.append(("questionnaire_scored", {
        "id": form.id, "title": form.definition.title, "occasion": form.occasion,
        "scores": scores, "answers": answers,
        "n_answered": sum(v is not None for v in answers.values()),
        "unanswered": [k for k, v in answers.items() if v is None], "by": by}))
    if form.id == SSQ_ID and ssq_rise_alert is not None:
        first = next((c for c in done if c.id == SSQ_ID and c.value("total") is not None), None)
        now_total = results["total"].value
        if first is not None and now_total is not None:
            before = first.value("total")
            assert before is not None
            rise = round(now_total - before, 2)
            if rise > ssq_rise_alert:
                events.append(("alert", {
                    "alert": CYBERSICKNESS_ALERT, "ssq_before": before, "ssq_after": now_total,
                    "rise": rise, "threshold": ssq_rise_alert,
                    "suggestion": "Cybersickness rose: end the exposure for today and let the "
                                  "patient rest before leaving."}))
    return events


def auto_finish(form: OpenQuestionnaire | None) -> bool:
    """Whether the form is complete and should be scored now."""
    return form is not None and form.next_item is None


# --- evolve -----------------------------------------------------------------

def evolve_started(data: Mapping[str, Any], t_s: float) -> OpenQuestionnaire:
    definition = questionnaire_from_dict(data["definition"], f"<recording:{data['id']}>")
    return OpenQuestionnaire(definition, str(data["occasion"]), t_s, str(data.get("by", "")))


def evolve_answer(form: OpenQuestionnaire | None, data: Mapping[str, Any]
                  ) -> OpenQuestionnaire | None:
    if form is None or form.id != data["id"]:
        return form
    response = data.get("response")
    return replace(form, answers={**form.answers,
                                  str(data["item"]): None if response is None else int(response)})


def evolve_paused(form: OpenQuestionnaire | None, data: Mapping[str, Any]
                  ) -> OpenQuestionnaire | None:
    if form is None or form.id != data["id"]:
        return form
    return replace(form, paused=bool(data["paused"]))


def evolve_scored(data: Mapping[str, Any], t_s: float) -> CompletedQuestionnaire:
    return CompletedQuestionnaire(str(data["id"]), str(data.get("title", data["id"])),
                                  str(data.get("occasion", "")), t_s,
                                  dict(data.get("scores", {})), dict(data.get("answers", {})))
