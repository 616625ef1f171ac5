"""Questionnaire sections of the session report and the progress page (HTML, JSON, browser)."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from vrexposure.questionnaires import discover_questionnaires, parse_questionnaire
from vrexposure.questionnaires.records import (
    Administration,
    administer,
    find_administrations,
    from_events,
    write_standalone,
)
from vrexposure.report_questionnaires import (
    progress_json,
    progress_section,
    session_changes,
    session_json,
    session_section,
)

QS = discover_questionnaires()
SSQ = QS["ssq"]


def given(qid: str, answers: dict[str, int | None], occasion: str, t0: datetime,
          patient: str = "P017") -> Administration:
    events = administer(QS[qid], answers, occasion, "patient:remote")
    (admin,) = from_events(events, patient, t0.isoformat(), "test")
    return admin


def ssq(value: int, occasion: str, t0: datetime) -> Administration:
    return given("ssq", {i: value for i in SSQ.item_ids}, occasion, t0)


T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def test_session_section_shows_ssq_before_after_with_the_change() -> None:
    before = ssq(0, "before_session", T0)
    after = given("ssq", {i: 1 for i in SSQ.item_ids} | {"burping": None}, "after_session",
                  T0)
    after2 = ssq(1, "after_session", T0)
    ipq = given("ipq", {i: 4 for i in QS["ipq"].item_ids}, "after_session", T0)
    changes = session_changes([before, after2, ipq])
    total = next(c for c in changes if c.score == "total")
    assert (total.before, total.after, total.delta) == (0, pytest.approx(78.54),
                                                        pytest.approx(78.54))
    page = session_section([before, after2, ipq])
    assert '<section class="questionnaires" id="questionnaires">' in page
    assert "SSQ Total score (TS)</td><td>0</td><td>78.54</td>" in page
    assert 'class="change rise">+78.54<' in page  # a rise in sickness is marked
    assert "igroup Presence Questionnaire" in page and "Spatial presence (SP)" in page
    # An unanswered item stays unanswered in the report; its scores are missing.
    page2 = session_section([before, after])
    assert "Unanswered (recorded as unanswered, not scored as 0): burping" in page2
    assert "<td>Nausea (N)</td>" not in page2 and "<td class=\"l\">Nausea (N)</td><td>—</td>" \
        in page2
    data = session_json([before, after2])
    assert data["changes"][-1] == {"questionnaire": "ssq", "score": "total", "before": 0.0,
                                   "after": pytest.approx(78.54),
                                   "change": pytest.approx(78.54)}
    assert data["questionnaires"][0]["entered_by"] == ["patient:remote"]
    assert session_section([]) == ""


def test_html_is_escaped() -> None:
    text = (Path(__file__).parents[1] / "questionnaires" / "suds.yaml").read_text()
    q, problems = parse_questionnaire(text.replace("title: Distress now (SUDS)",
                                                   "title: <script>x</script>"), "x.yaml")
    assert q is not None, problems
    events = administer(q, {"suds": 10}, "before_session", "t")
    (admin,) = from_events(events, "P017", T0.isoformat())
    assert "<script>" not in session_section([admin])
    assert "&lt;script&gt;" in session_section([admin])


CUT = """\
id: demo-cut
title: Fear scale
version: "1"
citation: test
licence: test
scale: {min: 0, max: 10, anchors: {0: none, 10: extreme}}
items:
  - {id: a, text: A}
  - {id: b, text: B}
scores:
  - id: total
    title: Fear total
    items: [a, b]
    cutoffs: [{value: 12, label: clinical range}]
"""


def phases(tmp_path: Path) -> list[Administration]:
    q, problems = parse_questionnaire(CUT, "cut.yaml")
    assert q is not None, problems
    out = []
    for days, occasion, value in ((0, "before_treatment", 9), (7, "before_session", 8),
                                  (14, "before_session", 6), (21, "after_treatment", 3),
                                  (90, "follow_up", 2)):
        started = T0 + timedelta(days=days)
        path = write_standalone(tmp_path, "P017", occasion,
                                administer(q, {"a": value, "b": value}, occasion, "t"), started)
        assert path.exists()
    found, skipped = find_administrations(tmp_path, "P017")
    assert not skipped
    out.extend(found)
    return out


def test_progress_section_plots_phases_and_cutoffs(tmp_path: Path) -> None:
    found = phases(tmp_path)
    assert [a.phase for a in found] == ["before_treatment", "session", "session",
                                        "after_treatment", "follow_up"]
    data = progress_json(found)
    (measure,) = data["measures"]
    assert [p["value"] for p in measure["points"]] == [18, 16, 12, 6, 4]
    assert measure["cutoffs"] == [{"value": 12.0, "label": "clinical range"}]
    page = progress_section(found)
    assert page.count("<img") == 1 and "data:image/png;base64," in page
    assert "Published cut-offs: Fear total ≥ 12: clinical range." in page
    assert "<td class=\"l\">follow-up</td><td>4</td>" in page
    assert "before treatment" in page and "after treatment" in page


def screenshot(tmp_path: Path, body: str, name: str) -> np.ndarray[Any, Any]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.fail("headless Chromium is needed to look at the pages (apt install chromium)")
    page = tmp_path / f"{name}.html"
    page.write_text(f"<!doctype html><html><meta charset='utf-8'><body>{body}</body></html>")
    png = tmp_path / f"{name}.png"
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                    "--hide-scrollbars", f"--screenshot={png}", "--window-size=1000,1400",
                    page.as_uri()], check=True, capture_output=True, timeout=120)
    return np.asarray(Image.open(png).convert("RGB"))


def test_pages_render_in_a_real_browser(tmp_path: Path) -> None:
    before, after = ssq(0, "before_session", T0), ssq(2, "after_session", T0)
    pixels = screenshot(tmp_path, session_section([before, after]), "session")
    red = (pixels[..., 0] > 150) & (pixels[..., 1] < 80) & (pixels[..., 2] < 80)
    assert red.sum() > 30  # the rise in the change table is drawn in red
    assert (pixels.min(axis=2) < 60).mean() > 0.005  # text was drawn
    pixels = screenshot(tmp_path, progress_section(phases(tmp_path / "q")), "progress")
    blue = (pixels[..., 2] > 180) & (pixels[..., 0] < 80) & (pixels[..., 1] < 140)
    assert blue.sum() > 50  # the in-session points of the figure


def test_entry_points_for_the_report_and_progress_pages(demo_file: Path) -> None:
    from vrexposure.report_questionnaires import for_patient, for_recording

    page, data = for_recording(demo_file)
    assert "SSQ Total score (TS)</td><td>0</td>" in page
    assert [q["occasion"] for q in data["questionnaires"]] == ["before_session",
                                                                 "after_session"]
    page, data, skipped = for_patient(demo_file.parent, "DEMO01")
    assert not skipped and "Simulator Sickness Questionnaire" in page
    assert [p["phase"] for p in data["measures"][0]["points"]] == ["session", "session"]
    assert for_patient(demo_file.parent, "P404")[0] == ""


def test_session_report_and_progress_page_carry_the_questionnaires(demo_file: Path,
                                                                    tmp_path: Path) -> None:
    """`vrexposure report` and `progress` show the SSQ the demo gave before and after."""
    import json

    from vrexposure.report import write_progress, write_report

    files = write_report(demo_file, tmp_path)
    page = files.html.read_text()
    assert page.index("<h2>Questionnaires</h2>") < page.index("<h2>Session log</h2>")
    # the log says it in words, without dumping the definition the started event carries
    assert "Questionnaire started: " in page and " scored: " in page
    assert "http://" not in page and "https://" not in page
    given = json.loads(files.json.read_text())["questionnaires"]
    assert [q["id"] for q in given["questionnaires"]] == ["ssq", "ssq"]
    assert any(c["questionnaire"] == "ssq" for c in given["changes"])
    patient = json.loads(files.json.read_text()).get("patient_id") or "DEMO01"
    progress = write_progress(demo_file.parent, patient, tmp_path)
    assert "Questionnaires across treatment" in progress.html.read_text()
    assert json.loads(progress.json.read_text())["questionnaires"]
