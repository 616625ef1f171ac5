"""Reports a therapist and a researcher read without a glossary (issue 18, and issue 11's
1-based step numbers): each point checked on generated reports, the HTML's text and the JSON.

Recordings are written with the real recorder (``write_session``); the edge cases are a
single rating, steps jumped over, a session ended early while sensors kept recording, a
lost panel, an alert, scene events, recording sources and data gaps, and an event kind
this version does not know.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

from vrexposure.panel.model import PanelModel
from vrexposure.report import (
    compute_progress,
    compute_report,
    json_records,
    mss,
    progress_figure,
    timeline_figure,
    write_progress,
    write_report,
)
from vrexposure.summary import summarize
from vrexposure.xdf import read_xdf

from .test_report import HIERARCHY, suds, write_session

Event = tuple[float, str, dict[str, Any]]

EDGE_EVENTS: list[Event] = [
    (0.0, "baseline_started", {"by": "therapist:panel", "duration_s": 10}),
    (0.5, "source_admitted", {"source": "hr.sim"}),
    (0.6, "source_rejected", {"source": "hr.rogue", "reason": "unknown device"}),
    (10.0, "baseline_completed", {"mean_bpm": 70.0, "sd_bpm": 1.0, "n_values": 9,
                                  "by": "host:host"}),
    (10.0, "exposure_started", {"step_index": 0, "step_id": "jar-far",
                                "by": "therapist:panel"}),
    (10.5, "suds_requested", {"step_index": 0, "by": "therapist:panel"}),
    suds(11.0, 0, 40),  # the only rating of step 1
    (12.0, "step_changed", {"from": 0, "to": 4, "step_id": HIERARCHY.steps[4].id,
                            "reason": "jump", "by": "therapist:panel"}),
    suds(13.0, 4, 60), suds(15.0, 4, 30),
    (16.0, "step_changed", {"from": 4, "to": 8, "step_id": HIERARCHY.steps[8].id,
                            "reason": "jump", "by": "therapist:panel"}),
    (16.5, "expectancy_recorded", {"step_index": 8, "outcome": "I will faint",
                                   "likelihood_pct": 80, "by": "therapist:panel"}),
    suds(17.0, 8, 70),
    (18.0, "intensity_changed", {"intensity": 0.4, "step_index": 8, "by": "therapist:panel"}),
    (19.0, "stimulus_event", {"name": "spider_jump", "label": "Spider jumps",
                              "by": "therapist:panel"}),
    (20.0, "marker", {"text": "patient held breath", "step_index": 8,
                      "by": "therapist:panel"}),
    (21.0, "alert", {"alert": "hr_above_baseline", "value_bpm": 105.8, "threshold_bpm": 92.3,
                     "baseline_mean_bpm": 70.0, "sustained_s": 15.0, "step_index": 8,
                     "phase": "exposure"}),
    (22.0, "controller_lost", {"client": "panel"}),
    (22.0, "paused", {"reason": "panel_heartbeat_lost", "resume_to": "exposure",
                      "by": "host:host"}),
    (23.0, "resumed", {"to": "exposure", "by": "therapist:panel"}),
    (23.5, "expectancy_outcome", {"expectancy_index": 0, "step_index": 8, "happened": False,
                                  "outcome": "I will faint", "by": "therapist:panel"}),
    (24.0, "data_gap", {"source": "hr.sim", "count": 3, "from_seq": 20, "to_seq": 22}),
    (25.0, "questionnaire_completed", {"name": "SUDS-post", "score": 12}),
    (26.0, "ended", {"reason": "patient wanted to stop", "by": "therapist:panel"}),
]


def edge_session(path: Path) -> Path:
    """The edge cases above; heart rate goes on for 14 s after the end (sensors stream on)."""
    hr = [(float(t), 75.0, "uncertain" if t == 18 else "good") for t in range(1, 41)]
    return write_session(path, patient="P042", started="2026-11-02T09:00:00+00:00",
                         events=EDGE_EVENTS, hr=hr)


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, Any], str]]:
    folder = tmp_path_factory.mktemp("edge")
    files = write_report(edge_session(folder / "P042_edge.xdf"), folder / "out")
    yield json.loads(files.json.read_text()), files.html.read_text()


def _text(page: str) -> str:
    """The page's visible text, tags removed and whitespace collapsed."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)).replace("&#x27;", "'")


def _section(page: str, title: str) -> str:
    start = page.index(f"<h2>{title}</h2>")
    end = page.find("<h2>", start + 4)
    return page[start:end if end >= 0 else None]


# --------------------------------------------------------------------------- session report


def test_a_single_rating_reads_as_one_rating(edge: tuple[dict[str, Any], str]) -> None:
    summary, page = edge
    step1 = summary["steps"][0]
    assert step1["step"] == 1 and [r["value"] for r in step1["suds"]] == [40]
    assert step1["suds_drop_pct"] is None and step1["suds_drop_note"] == "n/a: one rating"
    assert step1["habituation_note"] == "n/a: one rating"
    steps = _section(page, "Steps")
    assert "n/a: one rating" in steps and "1 rating<" in steps
    assert "1 ratings" not in page and "drop 0" not in page
    # peak → end stays on one line
    assert re.search(r"td\.suds,td\.nw\{white-space:nowrap\}", page)
    assert "<td class='suds'>40 → 40" in steps
    assert steps.count("<td class='nw'>n/a: one rating</td>") == 4  # steps 1 and 9
    # the step with two ratings that fell to half: a drop and a time to habituation
    step5 = next(s for s in summary["steps"] if s["step"] == 5)
    assert step5["suds_drop_pct"] == 50.0 and step5["habituation_s"] == 3.0
    assert step5["suds_drop_note"] is None and step5["habituation_note"] is None


def test_skipped_steps_are_shown_as_skipped(edge: tuple[dict[str, Any], str]) -> None:
    summary, page = edge
    session = summary["session"]
    assert session["highest_step"] == 9 and session["highest_step_index"] == 8
    assert session["skipped_steps"] == [2, 3, 4, 6, 7, 8]
    assert [(s["step"], s["skipped"]) for s in summary["steps"]] == [
        (1, False), (2, True), (3, True), (4, True), (5, False), (6, True), (7, True),
        (8, True), (9, False)]
    text = _text(page)
    assert "9 of 10 highest step reached (2, 3, 4, 6, 7, 8 skipped)" in text
    assert page.count('<tr class="skipped">') == 6
    assert "3. " + HIERARCHY.steps[2].id + " " in _text(_section(page, "Steps"))
    assert text.count("skipped: not shown in this session") == 6
    assert "heart rate high" in _section(page, "Steps")  # step 9's alert, in words


def test_session_length_ends_at_the_end(edge: tuple[dict[str, Any], str]) -> None:
    summary, page = edge
    assert summary["session"]["duration_s"] == 26.0  # the 'ended' record
    assert summary["session"]["ended_s"] == 26.0 and summary["session"]["recorded_s"] == 40.0
    assert "0:26.0 session length (start to end)" in _text(page)
    assert "recorded 14.0 s past the end of the session (not counted in its length)" in page


def test_the_log_is_written_for_a_person(edge: tuple[dict[str, Any], str],
                                         tmp_path: Path) -> None:
    summary, page = edge
    log = summary["log"]
    texts = [row["text"] for row in log]
    assert texts == [
        "Baseline started (10 s planned)",
        "Source hr.sim recorded",
        "Source hr.rogue refused (reason unknown device)",
        "Baseline heart rate 70.0 ± 1.0 bpm (SD) from 9 values; alert line 90 bpm",
        "Exposure started at step 1 (jar-far)",
        "SUDS 40 (prompted)",
        f"Jumped from step 1 (jar-far) to step 5 ({HIERARCHY.steps[4].id})",
        "SUDS 60", "SUDS 30",
        f"Jumped from step 5 ({HIERARCHY.steps[4].id}) to step 9 ({HIERARCHY.steps[8].id})",
        "Prediction: “I will faint”, 80 % likely",
        "SUDS 70",
        "Intensity set to 40 %",
        "Scene event: Spider jumps",
        "Note: patient held breath",
        "Heart rate 106 bpm, above the alert line of 92 bpm for 15 s (baseline 70 bpm)",
        "Therapist panel stopped responding (panel)",
        "Paused: the therapist panel stopped responding",
        "Resumed exposure",
        "Outcome: “I will faint” did not happen",
        "Data gap: 3 samples of hr.sim missing (numbers 20–22)",
        "Questionnaire completed (name SUDS-post, score 12)",  # unknown kind, in words
        "Session ended: patient wanted to stop",
    ]
    # every event of the recording is in the log (the SUDS request is part of its answer)
    assert len(log) == len(EDGE_EVENTS) - 1
    assert [row["step"] for row in log if row["kind"] == "suds_recorded"] == [1, 5, 5, 9]
    assert all("_" not in t for t in texts), "no internal codes"
    by = {row["text"]: row["who"] for row in log}
    assert by["SUDS 70"] == "patient (remote)"
    assert by["Paused: the therapist panel stopped responding"] == "session host"
    assert by["Intensity set to 40 %"] == "therapist (panel)"
    section = _text(_section(page, "Session log"))
    for text in ("Heart rate 106 bpm, above the alert line of 92 bpm for 15 s",
                 "0:17.0 9 SUDS 70 patient (remote)", "0:18.0 9 Intensity set to 40 %",
                 "Questionnaire completed (name SUDS-post, score 12)"):
        assert text in section
    for code in ("hr_above_baseline", "panel_heartbeat_lost", "STOP: STOP", "value_bpm",
                 "patient:remote", "therapist:panel"):
        assert code not in section

    # STOP says who pressed it; a plain default reason is not repeated
    stop: list[Event] = [
        (0.0, "exposure_started", {"step_index": 0, "step_id": "jar-far",
                                   "by": "therapist:panel"}),
        (1.0, "stopped", {"reason": "STOP", "resume_to": "exposure", "already_safe": False,
                          "by": "patient:remote"}),
        (2.0, "stopped", {"reason": "too much", "resume_to": "exposure",
                          "already_safe": True, "by": "therapist:panel"})]
    report = compute_report(read_xdf(write_session(
        tmp_path / "stop.xdf", patient="P1", started="2026-11-02T09:00:00+00:00",
        events=stop, hr=[(0.5, 70.0, "good")])))
    assert [row["text"] for row in report.log][1:] == [
        "STOP pressed by the patient (remote); safe place shown",
        "STOP pressed by the therapist (panel): too much (already in the safe place)"]


def test_the_log_of_the_demo_matches_its_events(demo: Any) -> None:
    report = compute_report(demo)
    # every event, and the host's admission and data-gap records, has its line
    events = [r for r in json_records(demo.by_name("events"))
              if r.get("type") in ("event", "admission", "data_gap")]
    requests = sum(e["kind"] == "suds_requested" for e in events)
    answered = sum(row["text"].endswith("(prompted)") for row in report.log)
    assert len(report.log) == len(events) - answered
    assert answered == requests  # the autopilot's requests were all answered
    ratings = [f"SUDS {e['value']}" for e in events if e["kind"] == "suds_recorded"]
    assert [row["text"].removesuffix(" (prompted)") for row in report.log
            if row["kind"] == "suds_recorded"] == ratings


def test_baseline_band_is_the_panels(edge: tuple[dict[str, Any], str]) -> None:
    summary, page = edge
    base = summary["baseline"]
    panel = PanelModel()
    panel.state = {"baseline": {"mean_bpm": base["mean_bpm"], "sd_bpm": base["sd_bpm"]}}
    band = panel.baseline_band()
    assert band is not None
    mean, low, high, _ = band
    assert base["band_bpm"] == [pytest.approx(low), pytest.approx(high)] == [50.0, 90.0]
    assert base["threshold_bpm"] == pytest.approx(high) and base["mean_bpm"] == mean
    text = _text(page)
    assert ("Blue band: the baseline heart rate 70 bpm ± the alert margin 20 bpm" in text
            and "The therapist panel draws the same band." in text)
    assert "baseline heart rate (bpm, ± SD)" in text  # the tile's ± is the SD, and says so


def test_timeline_has_the_notes_and_an_m_ss_axis(tmp_path: Path) -> None:
    report = compute_report(read_xdf(edge_session(tmp_path / "e.xdf")))
    fig = timeline_figure(report)
    FigureCanvasAgg(fig).draw()
    ax_hr, ax_suds, ax_int = fig.axes
    ticks = [label.get_text() for at, label in zip(ax_int.get_xticks(),
                                                   ax_int.get_xticklabels(), strict=True)
             if 0 <= at <= 26]
    assert ticks[:3] == ["0:00", "0:05", "0:10"] and ticks[-1] == "0:25"
    assert ax_int.get_xlim() == (0.0, 26.0)  # the session, not the sensors after its end
    assert ax_int.get_xlabel() == "session time (m:ss)"
    assert "✎1" in [t.get_text().strip() for t in ax_suds.texts]
    for ax in (ax_hr, ax_suds, ax_int):
        assert [line for line in ax.get_lines() if list(line.get_xdata()) == [20.0, 20.0]], \
            "the note is a line at 0:20 across the timeline"
    assert "Spider jumps" in [t.get_text() for t in ax_int.texts]
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert "therapist's note (✎)" in labels and "scene event" in labels
    assert "data gap (samples missing)" in labels
    assert [list(line.get_xdata()) for line in ax_hr.get_lines()
            if line.get_marker() == "x"] == [[24.0]]
    assert "alert line 90 bpm" in labels
    assert [mss(s) for s in (0, 59.6, 61, 3725)] == ["0:00", "1:00", "1:01", "1:02:05"]


def test_research_numbers_in_html_and_json(edge: tuple[dict[str, Any], str]) -> None:
    summary, page = edge
    step9 = next(s for s in summary["steps"] if s["step"] == 9)
    # 16-18 s at intensity 0, 18-22 and 23-26 s at 0.4 (paused 22-23 left out)
    assert step9["intensity_time_s"] == [{"intensity": 0.0, "time_s": 2.0},
                                         {"intensity": 0.4, "time_s": 7.0}]
    assert step9["time_in_step_s"] == 9.0
    # heart rate at 16..25 s without 22 (paused): 9 windows, the one at 18 s uncertain
    assert (step9["hr_windows"], step9["hr_values"]) == (9, 8)
    assert step9["hr_trusted_share"] == pytest.approx(8 / 9, abs=1e-4)
    assert summary["sources"] == {
        "admitted": [{"source": "hr.sim", "t_s": 0.5}],
        "rejected": [{"source": "hr.rogue", "reason": "unknown device", "t_s": 0.6}],
        "gaps": [{"t_s": 24.0, "source": "hr.sim", "count": 3, "from_seq": 20,
                  "to_seq": 22}]}
    research = _text(_section(page, "For research"))
    assert "0 %: 0:02.0 · 40 %: 0:07.0" in research
    assert "89 % 8 of 9 windows" in research
    assert "Recorded sources: hr.sim" in research
    assert "Refused sources: hr.rogue (reason unknown device) at 0:00.6" in research
    assert "Data gaps: 1 gap, 3 samples missing." in research
    assert "0:24.0 hr.sim 3 20–22" in research
    text = _text(page)
    assert "Notes on the timeline: ✎1 0:20.0 patient held breath" in text


def test_summary_json_counts_steps_from_one(tmp_path: Path) -> None:
    path = edge_session(tmp_path / "s.xdf")
    summary = summarize(path)
    assert summary.to_dict()["highest_step"] == 9  # 1-based, as the text says
    assert "highest step reached 9" in summary.text()


# --------------------------------------------------------------------------- progress


def _progress_folder(folder: Path) -> Path:
    """Three sessions: habituation in a long and a short one, a step never falling to half,
    a step not reached, and predictions that came true and did not."""
    folder.mkdir(exist_ok=True)
    plans: list[list[tuple[list[int], float]]] = [
        # (ratings of each step, seconds between ratings)
        [([50, 60, 25], 10.0), ([80, 70], 2.0)],
        [([40, 15], 2.0), ([60, 50, 40], 2.0)],
        [([20, 5], 1.0), ([30, 10], 1.0), ([40, 15], 1.0)],
    ]
    for day, plan in enumerate(plans, start=1):
        events: list[Event] = [
            (0.0, "baseline_started", {}),
            (5.0, "baseline_completed", {"mean_bpm": 70.0, "sd_bpm": 2.0, "n_values": 5}),
            (5.0, "exposure_started", {"step_index": 0, "step_id": "jar-far"})]
        t = 5.0
        for step, (ratings, gap) in enumerate(plan):
            if step:
                events.append((t, "step_changed", {"from": step - 1, "to": step,
                                                   "step_id": HIERARCHY.steps[step].id}))
            if step == 0:
                events.append((t + 0.1, "expectancy_recorded", {
                    "step_index": 0, "outcome": f"It escapes ({day})",
                    "likelihood_pct": 50 + 10 * day}))
            for value in ratings:
                t += gap
                events.append(suds(t, step, value))
            if step == 0:
                events.append((t, "expectancy_outcome", {
                    "expectancy_index": 0, "step_index": 0, "happened": day == 2,
                    "outcome": f"It escapes ({day})"}))
            t += 1.0
        events.append((t, "ended", {}))
        write_session(folder / f"P042_{day}.xdf", patient="P042",
                      started=f"2026-11-0{day}T10:00:00.123456+00:00", events=events,
                      hr=[(float(s), 75.0, "good") for s in range(int(t))])
    return folder


@pytest.fixture
def berlin(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_progress_reads_without_a_glossary(tmp_path: Path, berlin: None) -> None:
    folder = _progress_folder(tmp_path / "sessions")
    files = write_progress(folder, "P042", tmp_path / "out")
    data = json.loads(files.json.read_text())
    page = files.html.read_text()
    text = _text(page)
    sessions = data["sessions"]
    # local date and time, not raw ISO UTC with microseconds
    assert [s["started_local"] for s in sessions] == [
        "2026-11-01 11:00 CET", "2026-11-02 11:00 CET", "2026-11-03 11:00 CET"]
    assert "started (local time, CET)" in text and "2026-11-01 11:00 CET" in text
    assert ".123456" not in page and "T10:00" not in page
    # 1-based highest step
    assert [s["highest_step"] for s in sessions] == [2, 2, 3]
    # habituation as a share of the time in the step: 30 s at jar-far in session 1, 4 s in 2
    assert sessions[0]["habituation_s"]["jar-far"] == 30.0
    assert sessions[0]["time_in_step_s"]["jar-far"] == 31.0
    assert sessions[0]["habituation_share"]["jar-far"] == pytest.approx(30 / 31, abs=1e-4)
    assert sessions[1]["habituation_share"]["jar-far"] == pytest.approx(4 / 5, abs=1e-4)
    assert "habituated in 0:30.0 (97 % of 0:31.0)" in text
    # "not reached" and "never fell to half" are different words
    assert [s["step_status"]["jar-near"] for s in sessions] == [
        "no habituation", "no habituation", "habituated"]
    assert [s["step_status"]["free-far"] for s in sessions] == [
        "not reached", "not reached", "habituated"]
    assert "never fell to half the peak in 0:05.0" in text
    table = _section(page, "SUDS per step, session by session: first rating → peak")
    assert table.count(">not reached<") == 2 and "—" not in table
    # between-session habituation: first → peak of the same step, session over session
    assert [(s["first_suds"]["jar-far"], s["peak_suds"]["jar-far"]) for s in sessions] == [
        (50, 60), (40, 40), (20, 20)]
    assert [s["first_suds"].get("jar-near") for s in sessions] == [80, 60, 30]
    row = next(r for r in re.findall(r"<tr>.*?</tr>", page, re.S) if "2. jar-near" in r)
    assert re.findall(r"(\d+ → \d+)", row) == ["80 → 80", "60 → 60", "30 → 30"]
    # predictions that did not come true, across sessions
    assert data["predictions"] == {
        "recorded": 3, "did_not_happen": 2, "happened": 1, "no_outcome": 0,
        "mean_likelihood_pct_of_those_that_did_not_happen": 70.0}
    predictions = _text(_section(page, "Predictions that did not come true"))
    assert "2 of 3 predictions did not come true (predicted as 70 % likely on average)" \
        in predictions
    assert "“It escapes (3)” 80 % did not happen" in predictions
    assert "“It escapes (2)” 70 % happened" in predictions


def test_progress_with_one_session_says_it_needs_two(tmp_path: Path) -> None:
    folder = _progress_folder(tmp_path / "sessions")
    for extra in ("P042_2.xdf", "P042_3.xdf"):
        (folder / extra).unlink()
    progress = compute_progress(folder, "P042")
    fig = progress_figure(progress)
    FigureCanvasAgg(fig).draw()
    hab = fig.axes[2]
    assert "needs two sessions" in [t.get_text() for t in hab.texts]
    assert hab.get_ylabel() == "% of time in step" and hab.get_ylim() == (0.0, 105.0)
    page = write_progress(folder, "P042", tmp_path / "out").html.read_text()
    assert "habituation across sessions needs two sessions" in page
