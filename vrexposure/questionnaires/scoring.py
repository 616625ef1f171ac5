"""Scoring of completed questionnaires (pure).

Responses map item id → the answer on the item's own scale, or ``None`` for an
item left unanswered (never a default). Reverse-keyed items are turned round
(``max + min - x``) before they are combined. A score whose items are missing
beyond its ``max_missing`` is ``None``: a missing score is reported as
missing, not as zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .model import Questionnaire, Score


class ResponseError(ValueError):
    """An answer that is not on the item's scale, or for an item the form does not have."""


@dataclass(frozen=True)
class ScoreResult:
    id: str
    title: str
    #: Combined (sum or mean) reverse-corrected answers, before the weight.
    raw: float | None
    #: ``raw × weight``: the published score.
    value: float | None
    n_answered: int
    n_items: int


def check_response(q: Questionnaire, item_id: str, response: object) -> int | None:
    """The validated response (``None`` = unanswered); raises :class:`ResponseError`."""
    try:
        item = q.item(item_id)
    except KeyError:
        raise ResponseError(f"questionnaire '{q.id}' has no item '{item_id}'") from None
    if response is None:
        return None
    if isinstance(response, float) and response.is_integer():
        response = int(response)
    if not item.scale.valid(response):
        raise ResponseError(f"{q.id}/{item_id}: response {response!r} is not on the scale "
                            f"{item.scale.min}–{item.scale.max}"
                            + (f" in steps of {item.scale.step}" if item.scale.step > 1 else ""))
    assert isinstance(response, int)
    return response


def keyed_value(q: Questionnaire, item_id: str, response: int) -> int:
    item = q.item(item_id)
    return item.scale.reverse(response) if item.reverse else response


def _item_score(q: Questionnaire, score: Score, responses: Mapping[str, int | None]
                ) -> tuple[float | None, int]:
    values = [keyed_value(q, i, r) for i in score.items
              if (r := responses.get(i)) is not None]
    missing = len(score.items) - len(values)
    if not values or missing > score.max_missing:
        return None, len(values)
    mean = sum(values) / len(values)
    return (mean * len(score.items) if score.method == "sum" else mean), len(values)


def score_responses(q: Questionnaire, responses: Mapping[str, int | None]
                    ) -> dict[str, ScoreResult]:
    """Every score of ``q`` for these responses, in definition order."""
    for item_id, response in responses.items():
        check_response(q, item_id, response)
    results: dict[str, ScoreResult] = {}
    for score in q.scores:
        if score.items:
            raw, n_answered = _item_score(q, score, responses)
            n_items = len(score.items)
        else:
            parts = [results[s] for s in score.of_scores]
            n_answered = sum(p.n_answered for p in parts)
            n_items = sum(p.n_items for p in parts)
            raws = [p.raw for p in parts]
            if any(r is None for r in raws):
                raw = None
            else:
                total = sum(r for r in raws if r is not None)
                raw = total if score.method == "sum" else total / len(raws)
        value = None if raw is None else round(raw * score.weight, 4)
        results[score.id] = ScoreResult(score.id, score.title,
                                        None if raw is None else round(raw, 4), value,
                                        n_answered, n_items)
    return results


def band(score: Score, value: float | None) -> str:
    """The label of the highest published cut-off at or below ``value`` ('' if none)."""
    if value is None:
        return ""
    label = ""
    for cut in sorted(score.cutoffs, key=lambda c: c.value):
        if value >= cut.value:
            label = cut.label
    return label


def results_to_dict(results: Mapping[str, ScoreResult]) -> dict[str, dict[str, object]]:
    return {k: {"title": r.title, "raw": r.raw, "value": r.value, "n_answered": r.n_answered,
                "n_items": r.n_items} for k, r in results.items()}
