"""Questionnaire definitions, validation messages and scoring against published examples."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from vrexposure.cli import main
from vrexposure.plugins import builtin_dir
from vrexposure.questionnaires import (
    NotAdministrable,
    ResponseError,
    discover_questionnaires,
    parse_questionnaire,
    score_responses,
)

QS = discover_questionnaires()
SSQ = QS["ssq"]
IPQ = QS["ipq"]


def test_builtins_shipped_with_licence_and_citation() -> None:
    assert {"ssq", "ipq", "suds", "fsq", "aq", "prcs", "clq", "fas"} <= set(QS)
    for q in QS.values():
        assert q.licence and q.citation and q.version
    assert {q.id for q in QS.values() if q.administrable} == {"ssq", "ipq", "suds"}


def test_ssq_maximum_gives_the_published_maximum_scores() -> None:
    # Kennedy et al. 1993: all 16 symptoms 'severe' → N 200.34, O 159.18, D 292.32, TS 235.62.
    results = score_responses(SSQ, {i: 3 for i in SSQ.item_ids})
    assert results["nausea"].value == pytest.approx(200.34)
    assert results["oculomotor"].value == pytest.approx(159.18)
    assert results["disorientation"].value == pytest.approx(292.32)
    assert results["total"].value == pytest.approx(235.62)


def test_ssq_worked_example_shared_items_count_twice() -> None:
    # Only 'nausea' slight (1) and 'blurred vision' moderate (2):
    # nausea ∈ N, D; blurred vision ∈ O, D → N raw 1, O raw 2, D raw 3.
    answers = {i: 0 for i in SSQ.item_ids} | {"nausea": 1, "blurred_vision": 2}
    r = score_responses(SSQ, answers)
    assert (r["nausea"].raw, r["oculomotor"].raw, r["disorientation"].raw) == (1, 2, 3)
    assert r["nausea"].value == pytest.approx(9.54)
    assert r["oculomotor"].value == pytest.approx(15.16)
    assert r["disorientation"].value == pytest.approx(41.76)
    assert r["total"].value == pytest.approx(6 * 3.74)


def test_ssq_subscale_membership_as_published() -> None:
    n = set(SSQ.score("nausea").items)
    o = set(SSQ.score("oculomotor").items)
    d = set(SSQ.score("disorientation").items)
    assert len(n) == len(o) == len(d) == 7
    assert n & o == {"general_discomfort", "difficulty_concentrating"}
    assert o & d == {"difficulty_focusing", "blurred_vision"}
    assert n & d == {"nausea"}
    assert n | o | d == set(SSQ.item_ids)


def test_ssq_unanswered_item_makes_the_score_missing_not_zero() -> None:
    answers: dict[str, int | None] = {i: 1 for i in SSQ.item_ids}
    answers["vertigo"] = None
    r = score_responses(SSQ, answers)
    assert r["disorientation"].value is None and r["total"].value is None
    assert r["nausea"].value == pytest.approx(7 * 9.54)


def test_ipq_reverse_keying() -> None:
    # All answers 6 ('fully agree' etc.): SP2, INV3 and REAL1 are reversed (6 - x = 0).
    r = score_responses(IPQ, {i: 6 for i in IPQ.item_ids})
    assert r["general"].value == 6
    assert r["spatial"].value == pytest.approx((6 * 4 + 0) / 5)
    assert r["involvement"].value == pytest.approx((6 * 3 + 0) / 4)
    assert r["realism"].value == pytest.approx((6 * 3 + 0) / 4)
    reversed_ids = {i.id for i in IPQ.items if i.reverse}
    assert reversed_ids == {"SP2", "INV3", "REAL1"}
    low = score_responses(IPQ, {i: 0 for i in IPQ.item_ids})
    assert low["spatial"].value == pytest.approx(6 / 5)


def test_response_off_the_scale_is_refused() -> None:
    with pytest.raises(ResponseError, match="not on the scale 0–3"):
        score_responses(SSQ, {"nausea": 4})
    with pytest.raises(ResponseError, match="no item"):
        score_responses(SSQ, {"bogus": 1})
    with pytest.raises(ResponseError, match="steps of 5"):
        score_responses(QS["suds"], {"suds": 42})


def test_scoring_only_instrument_says_where_the_licensed_text_goes() -> None:
    fsq = QS["fsq"]
    assert not fsq.administrable and all(i.text == "" for i in fsq.items)
    with pytest.raises(NotAdministrable, match="clinic's questionnaires folder"):
        fsq.require_text()


BAD = """\
id: broken
title: Broken
version: "1"
citation: x
licence: x
scale: {min: 0, max: 3, anchors: {0: none, 3: lots}}
items:
  - {id: a, text: A}
  - {id: a, text: B, reverse: maybe}
  - id: c
    scal: {min: 0}
scores:
  - {id: s, items: [a, zz], method: median}
  - {id: t, of_scores: [nope]}
"""


def test_validation_names_file_and_line() -> None:
    q, problems = parse_questionnaire(BAD, "bad.yaml")
    assert q is None
    text = "\n".join(str(p) for p in problems)
    assert "bad.yaml:9: error: item id 'a' is used twice" in text
    assert "bad.yaml:9: error: 'reverse' must be true or false" in text
    assert "bad.yaml:10:" in text or "bad.yaml:11: error: unknown field 'scal'" in text
    assert "(did you mean 'scale'?)" in text
    assert "bad.yaml:13: error: 'method' must be 'sum' or 'mean'" in text
    assert "bad.yaml:13: error: no item 'zz'" in text
    assert "bad.yaml:14: error: no earlier score 'nope'" in text


def test_cli_validate_accepts_the_folder_and_reports_lines(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["validate", str(builtin_dir("questionnaires"))])
    assert result.exit_code == 0, result.output
    assert "questionnaire 'ssq', 16 items" in result.output
    bad = tmp_path / "questionnaires"
    bad.mkdir()
    (bad / "broken.yaml").write_text(BAD)
    result = runner.invoke(main, ["validate", str(bad)])
    assert result.exit_code == 1
    assert f"{bad / 'broken.yaml'}:13: error: no item 'zz'" in result.output
