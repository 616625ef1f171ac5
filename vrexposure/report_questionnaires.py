"""Questionnaire sections for the session report and the progress page.

Functions return an HTML ``<section>`` (self-contained: inline CSS classes of its own,
figures as base64 PNG) and the matching JSON, so ``report.py`` can place them in its
pages (the lead wires them in):

* :func:`session_section` / :func:`session_json`: the questionnaires given in one
  session (every score; SSQ before → after with the change; unanswered items);
* :func:`progress_section` / :func:`progress_json`: each measure across sessions and
  treatment phases (before treatment, sessions, after treatment, follow-up), with the
  published cut-offs where the definition gives them.

Inputs are :class:`~vrexposure.questionnaires.records.Administration` lists, from
:func:`~vrexposure.questionnaires.records.from_recording` (one session) or
:func:`~vrexposure.questionnaires.records.find_administrations` (a patient's folder,
recordings and stand-alone questionnaire files together).
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .questionnaires.records import PHASES, Administration
from .questionnaires.scoring import band

PHASE_LABELS = {"before_treatment": "before treatment", "session": "sessions",
                "after_treatment": "after treatment", "follow_up": "follow-up"}
PHASE_COLOURS = {"before_treatment": "#6b7280", "session": "#2563eb",
                 "after_treatment": "#059669", "follow_up": "#7c3aed"}
STYLE = """<style>
section.questionnaires table { border-collapse: collapse; margin: 0.5em 0 1em; }
section.questionnaires th, section.questionnaires td { border-bottom: 1px solid #ddd;
  padding: 4px 10px; text-align: right; }
section.questionnaires th.l, section.questionnaires td.l { text-align: left; }
section.questionnaires .change { font-weight: bold; }
section.questionnaires .rise { color: #b3261e; }
section.questionnaires .note { color: #555; font-size: 90%; }
section.questionnaires img { max-width: 100%; }
</style>"""


def _e(value: Any) -> str:
    return html.escape("—" if value is None else str(value))


def _num(value: float | None) -> str:
    return "—" if value is None else html.escape(f"{value:g}")


def _occasion(text: str) -> str:
    return text.replace("_", " ")


@dataclass(frozen=True)
class Change:
    """A score from the first to the last time a questionnaire was given in a session."""

    questionnaire: str
    score: str
    title: str
    before: float
    after: float

    @property
    def delta(self) -> float:
        return round(self.after - self.before, 2)


def session_changes(administrations: Sequence[Administration]) -> list[Change]:
    """Before → after of every score of a questionnaire given twice or more (e.g. SSQ)."""
    changes = []
    by_id: dict[str, list[Administration]] = {}
    for a in administrations:
        by_id.setdefault(a.id, []).append(a)
    for qid, given in by_id.items():
        if len(given) < 2:
            continue
        first, last = given[0], given[-1]
        for score in first.questionnaire.scores:
            before, after = first.value(score.id), last.value(score.id)
            if before is not None and after is not None:
                changes.append(Change(qid, score.id, score.title, before, after))
    return changes


def session_json(administrations: Sequence[Administration]) -> dict[str, Any]:
    return {
        "questionnaires": [{
            "id": a.id, "title": a.questionnaire.title, "occasion": a.occasion,
            "t_s": round(a.t_s, 3), "completed_utc": a.completed_utc,
            "scores": {k: v.get("value") for k, v in a.scores.items()},
            "unanswered": [k for k, v in a.final_answers().items() if v is None],
            "entered_by": sorted({str(r.get("by", "")) for r in a.answers}),
        } for a in administrations],
        "changes": [{"questionnaire": c.questionnaire, "score": c.score, "before": c.before,
                     "after": c.after, "change": c.delta}
                    for c in session_changes(administrations)],
    }


def session_section(administrations: Sequence[Administration]) -> str:
    """The report's questionnaire section (an empty string when none was given)."""
    if not administrations:
        return ""
    parts = [STYLE, '<section class="questionnaires" id="questionnaires">',
             "<h2>Questionnaires</h2>"]
    changes = session_changes(administrations)
    if changes:
        rows = []
        for c in changes:
            higher_worse = next((s.higher_is == "worse" for a in administrations if a.id ==
                                 c.questionnaire for s in a.questionnaire.scores
                                 if s.id == c.score), True)
            worse = (c.delta > 0) == higher_worse and c.delta != 0
            rows.append(f'<tr><td class="l">{_e(c.questionnaire.upper())} {_e(c.title)}</td>'
                        f"<td>{_num(c.before)}</td><td>{_num(c.after)}</td>"
                        f'<td class="change{" rise" if worse else ""}">{c.delta:+g}</td></tr>')
        parts.append('<table class="changes"><tr><th class="l">before → after</th>'
                     "<th>before</th><th>after</th><th>change</th></tr>"
                     + "".join(rows) + "</table>")
    for a in administrations:
        unanswered = [k for k, v in a.final_answers().items() if v is None]
        banded = any(s.cutoffs for s in a.questionnaire.scores)
        rows = []
        for score in a.questionnaire.scores:
            entry = a.scores.get(score.id, {})
            value = entry.get("value")
            label = band(score, value)
            rows.append(f'<tr><td class="l">{_e(score.title)}</td><td>{_num(value)}</td>'
                        f"<td>{_e(entry.get('n_answered'))} / {_e(entry.get('n_items'))}</td>"
                        + (f'<td class="l">{_e(label) if label else ""}</td>' if banded
                           else "") + "</tr>")
        minutes = a.t_s / 60.0
        parts.append(
            f'<h3>{_e(a.questionnaire.title)} <span class="note">({_e(_occasion(a.occasion))}'
            f", scored at {minutes:.1f} min)</span></h3>"
            '<table><tr><th class="l">score</th><th>value</th><th>items answered</th>'
            + ('<th class="l">band</th>' if banded else "") + "</tr>" + "".join(rows)
            + "</table>"
            + (f'<p class="note">Unanswered (recorded as unanswered, not scored as 0): '
               f"{_e(', '.join(unanswered))}</p>" if unanswered else ""))
    parts.append('<p class="note">Scores as published; a score is missing when more items '
                 "were left unanswered than its scoring rule allows.</p></section>")
    return "\n".join(parts)


# --------------------------------------------------------------------------- progress


def _measures(administrations: Sequence[Administration]) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []
    for a in administrations:
        for score in a.questionnaire.scores:
            if (a.id, score.id) not in seen:
                seen.append((a.id, score.id))
    return seen


def progress_json(administrations: Sequence[Administration]) -> dict[str, Any]:
    measures = []
    for qid, score_id in _measures(administrations):
        points = [{"completed_utc": a.completed_utc, "phase": a.phase, "occasion": a.occasion,
                   "value": a.value(score_id)} for a in administrations if a.id == qid]
        score = next(s for a in administrations if a.id == qid
                     for s in a.questionnaire.scores if s.id == score_id)
        measures.append({"questionnaire": qid, "score": score_id, "title": score.title,
                         "cutoffs": [{"value": c.value, "label": c.label}
                                     for c in score.cutoffs], "points": points})
    return {"phases": list(PHASES), "measures": measures}


def progress_figure(administrations: Sequence[Administration], qid: str) -> Any:
    """One panel per score of questionnaire ``qid``: value per administration, coloured by
    treatment phase, with the cut-offs as dashed lines."""
    from matplotlib.figure import Figure

    given = [a for a in administrations if a.id == qid]
    scores = given[0].questionnaire.scores
    fig = Figure(figsize=(9, 2.4 * len(scores)), layout="constrained")
    axes = fig.subplots(len(scores), 1, squeeze=False)[:, 0]
    x = list(range(1, len(given) + 1))
    for ax, score in zip(axes, scores, strict=True):
        values = [a.value(score.id) for a in given]
        known = [(xi, v) for xi, v in zip(x, values, strict=True) if v is not None]
        if known:
            ax.plot([k[0] for k in known], [k[1] for k in known], color="#9ca3af", lw=1,
                    zorder=1)
        for phase in PHASES:
            pts = [(xi, v) for xi, v, a in zip(x, values, given, strict=True)
                   if v is not None and a.phase == phase]
            if pts:
                ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=36, zorder=2,
                           color=PHASE_COLOURS[phase], label=PHASE_LABELS[phase])
        for cut in score.cutoffs:
            ax.axhline(cut.value, color="#b3261e", ls="--", lw=1)
            ax.annotate(cut.label, (0.01, cut.value), xycoords=("axes fraction", "data"),
                        fontsize=8, color="#b3261e", va="bottom")
        ax.set_title(score.title, fontsize=10, loc="left")
        ax.set_xticks(x, [a.completed_utc[:10] for a in given], fontsize=7, rotation=30)
        ax.set_xlim(0.5, len(given) + 0.5)
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8, loc="upper right")
    return fig


def _png(fig: Any) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def progress_section(administrations: Sequence[Administration]) -> str:
    """The progress page's questionnaire section: one figure and table per questionnaire."""
    if not administrations:
        return ""
    parts = [STYLE, '<section class="questionnaires" id="questionnaire-progress">',
             "<h2>Questionnaires across treatment</h2>",
             '<p class="note">Phases: ' + ", ".join(
                 f'<span style="color:{PHASE_COLOURS[p]}">&#9679; {PHASE_LABELS[p]}</span>'
                 for p in PHASES) + ".</p>"]
    ids = list(dict.fromkeys(a.id for a in administrations))
    for qid in ids:
        given = [a for a in administrations if a.id == qid]
        q = given[0].questionnaire
        head = "".join(f"<th>{_e(s.title)}</th>" for s in q.scores)
        rows = "".join(
            f'<tr><td class="l">{_e(a.completed_utc[:16].replace("T", " "))}</td>'
            f'<td class="l">{_e(PHASE_LABELS[a.phase])}</td>'
            + "".join(f"<td>{_num(a.value(s.id))}</td>" for s in q.scores) + "</tr>"
            for a in given)
        cutoffs = [f"{_e(s.title)} ≥ {c.value:g}: {_e(c.label)}" for s in q.scores
                   for c in s.cutoffs]
        parts.append(
            f"<h3>{_e(q.title)}</h3>"
            f'<img alt="{_e(q.title)} across treatment" '
            f'src="data:image/png;base64,{_png(progress_figure(administrations, qid))}">'
            f'<table><tr><th class="l">completed</th><th class="l">phase</th>{head}</tr>'
            f"{rows}</table>"
            + (f'<p class="note">Published cut-offs: {"; ".join(cutoffs)}.</p>' if cutoffs
               else '<p class="note">No published clinical cut-off is shipped for this '
                    "measure.</p>"))
    parts.append("</section>")
    return "\n".join(parts)


def for_recording(path: Any, recording: Any = None) -> tuple[str, dict[str, Any]]:
    """(HTML section, JSON) of one session recording, for the session report."""
    from .questionnaires.records import from_recording

    given = from_recording(path, recording)
    return session_section(given), session_json(given)


def for_patient(folder: Any, patient_id: str) -> tuple[str, dict[str, Any], list[str]]:
    """(HTML section, JSON, unreadable files) of a patient's folder (recordings and
    stand-alone questionnaire files), for the progress page."""
    from .questionnaires.records import find_administrations

    given, skipped = find_administrations(folder, patient_id)
    return progress_section(given), progress_json(given), skipped


__all__ = ["Change", "for_patient", "for_recording", "progress_figure", "progress_json",
           "progress_section", "session_changes", "session_json", "session_section"]
