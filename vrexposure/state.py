"""The session state machine (pure, event-sourced).

``apply(state, command, now)`` validates a command against the current phase
and the sender's role, decides which events follow, and folds them into a new
state with :func:`evolve`. Because the state is nothing but the fold of its
events, a recording's event stream rebuilds it exactly (:func:`rebuild`), which
is how a crashed host resumes a session.

Phases: ``idle → baseline → exposure ⇄ paused``, ``any → safe`` (STOP),
``safe → exposure | paused``, ``any → ended``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

from . import args
from .hierarchy import Hierarchy
from .questionnaires import session as qsession
from .scene_api import ParamValue, SceneSpec


class Phase(str, Enum):
    IDLE = "idle"
    BASELINE = "baseline"
    EXPOSURE = "exposure"
    PAUSED = "paused"
    SAFE = "safe"
    ENDED = "ended"


class Role(str, Enum):
    THERAPIST = "therapist"
    PATIENT = "patient"  # the patient's remote: pause, STOP, SUDS
    OBSERVER = "observer"
    RENDERER = "renderer"
    SENSOR = "sensor"
    HOST = "host"  # the session host itself (never accepted from the network)


#: Commands that only read; every role may send them.
READ_ONLY_COMMANDS = frozenset({"get_state", "ping", "heartbeat", "clock_report"})

#: What each role may send besides the read-only commands.
ROLE_COMMANDS: dict[Role, frozenset[str]] = {
    Role.THERAPIST: frozenset({
        "start_baseline", "complete_baseline", "start_exposure", "pause", "resume", "stop",
        "next", "previous", "repeat", "jump", "intensity", "suds", "request_suds",
        "expectancy", "expectancy_outcome", "marker", "accept_suggestion",
        "dismiss_suggestion", "auto_advance", "end",
        "questionnaire_start", "questionnaire_answer", "questionnaire_pause",
        "questionnaire_finish", "trigger_event", "note", "preview_step",
    }),
    Role.PATIENT: frozenset({"pause", "stop", "suds", "questionnaire_answer",
                             "questionnaire_pause"}),
    Role.OBSERVER: frozenset(),
    Role.RENDERER: frozenset(),
    Role.SENSOR: frozenset(),
    Role.HOST: frozenset({
        "complete_baseline", "pause", "stop", "tick", "alert", "alert_cleared", "end",
        "marker",
    }),
}

MAX_MARKER_CHARS = 500
#: A session note (free text, several lines) may be this long.
MAX_NOTE_CHARS = 20_000
#: The state stays small whatever clients send (it is published and recorded on every
#: change); the full history lives in the recorded events. Per step the state keeps the
#: last SUDS_KEPT_PER_STEP ratings, plus the count and peak of the current visit.
SUDS_KEPT_PER_STEP = 20
MARKERS_KEPT = 100
#: Expectancies are referred to by position, so they are never trimmed: more are refused.
MAX_EXPECTANCIES = 200


class CommandError(Exception):
    """A command that is not allowed now, or not for this role, or malformed."""


@dataclass(frozen=True)
class Command:
    name: str
    args: Mapping[str, Any] = field(default_factory=dict)
    role: Role = Role.THERAPIST
    client: str = ""

    @property
    def by(self) -> str:
        return f"{self.role.value}:{self.client}" if self.client else self.role.value


@dataclass(frozen=True)
class Event:
    kind: str
    t_s: float
    data: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "t_s": self.t_s, **dict(self.data)}

    @staticmethod
    def from_dict(record: Mapping[str, Any]) -> Event:
        data = {k: v for k, v in record.items() if k not in ("kind", "t_s")}
        return Event(str(record["kind"]), float(record["t_s"]), data)


@dataclass(frozen=True)
class SudsRating:
    t_s: float
    step_index: int
    value: int
    by: str


@dataclass(frozen=True)
class Expectancy:
    t_s: float
    step_index: int
    outcome: str
    likelihood_pct: int
    happened: bool | None = None


@dataclass(frozen=True)
class Marker:
    t_s: float
    text: str
    by: str


@dataclass(frozen=True)
class Suggestion:
    step_index: int
    reason: str
    detail: Mapping[str, Any]
    t_s: float


@dataclass(frozen=True)
class BaselineSummary:
    mean_bpm: float
    sd_bpm: float
    n_values: int


@dataclass(frozen=True)
class SessionState:
    hierarchy: Hierarchy
    seq: int = 0
    phase: Phase = Phase.IDLE
    resume_to: Phase = Phase.EXPOSURE
    step_index: int = 0
    intensity: float = 0.0
    phase_since_s: float = 0.0
    step_since_s: float = 0.0
    baseline: BaselineSummary | None = None
    baseline_done: bool = False
    suds: tuple[SudsRating, ...] = ()
    expectancies: tuple[Expectancy, ...] = ()
    markers: tuple[Marker, ...] = ()
    suggestion: Suggestion | None = None
    dismissed_reasons: tuple[str, ...] = ()
    auto_advance: bool = False
    suds_requested_at_s: float | None = None
    alerts_active: tuple[str, ...] = ()
    highest_step: int = 0
    stop_count: int = 0
    exposure_started: bool = False
    #: The questionnaire being answered (renderer and panel follow it), and those done.
    questionnaire: qsession.OpenQuestionnaire | None = None
    questionnaires_done: tuple[qsession.CompletedQuestionnaire, ...] = ()
    #: Definitions a therapist may give (None: the built-in ones).
    questionnaire_library: Mapping[str, Any] | None = None
    #: The last stimulus event (name, id, session time): the renderer plays each id once.
    stimulus_event: tuple[str, int, float] | None = None
    stimulus_event_count: int = 0
    #: Indices of the step's automatic events already played, in the visit starting at
    #: ``auto_events_since_s`` (a new visit of a step plays them again).
    auto_events_played: tuple[int, ...] = ()
    auto_events_since_s: float = -1.0
    step_suds_count: int = 0
    step_suds_peak: int | None = None
    #: The step being edited with the patient, shown in the headset before the baseline
    #: (``preview_step``): (step id, scene parameters as sent). Never part of exposure.
    preview: tuple[str, Mapping[str, Any]] | None = None

    @property
    def step(self) -> Any:
        return self.hierarchy.steps[self.step_index]

    def time_in_step_s(self, now: float) -> float:
        return max(0.0, now - self.step_since_s)

    def step_ratings(self) -> list[SudsRating]:
        """SUDS ratings of the current visit to the current step."""
        return [r for r in self.suds
                if r.step_index == self.step_index and r.t_s >= self.step_since_s]


def initial_state(hierarchy: Hierarchy) -> SessionState:
    return SessionState(hierarchy=hierarchy, auto_advance=hierarchy.advance_rule.auto_advance)


# ---------------------------------------------------------------------------
# evolve: event -> state (the only place the state changes)


def evolve(state: SessionState, event: Event) -> SessionState:
    d = event.data
    t = event.t_s
    s = replace(state, seq=state.seq + 1)
    kind = event.kind
    if kind in _PREVIEW_ENDS and s.preview is not None:
        s = replace(s, preview=None)  # a phase change (STOP above all) ends the preview
    if kind == "preview_shown":
        return replace(s, preview=(str(d["step_id"]), dict(d["params"])))
    if kind == "baseline_started":
        return replace(s, phase=Phase.BASELINE, phase_since_s=t)
    if kind == "baseline_completed":
        summary = None
        if d.get("mean_bpm") is not None:
            summary = BaselineSummary(float(d["mean_bpm"]), float(d["sd_bpm"]),
                                      int(d["n_values"]))
        return replace(s, baseline=summary, baseline_done=True)
    if kind == "exposure_started":
        index = int(d["step_index"])
        return replace(s, phase=Phase.EXPOSURE, phase_since_s=t, step_index=index,
                       step_since_s=t, intensity=0.0, exposure_started=True,
                       step_suds_count=0, step_suds_peak=None,
                       highest_step=max(s.highest_step, index), suggestion=None,
                       dismissed_reasons=())
    if kind == "step_changed":
        index = int(d["to"])
        return replace(s, step_index=index, step_since_s=t, intensity=0.0, suggestion=None,
                       dismissed_reasons=(), suds_requested_at_s=None,
                       step_suds_count=0, step_suds_peak=None,
                       highest_step=max(s.highest_step, index))
    if kind == "intensity_changed":
        return replace(s, intensity=float(d["intensity"]))
    if kind == "paused":
        return replace(s, phase=Phase.PAUSED, phase_since_s=t,
                       resume_to=Phase(d.get("resume_to", Phase.EXPOSURE.value)))
    if kind == "resumed":
        return replace(s, phase=Phase(d["to"]), phase_since_s=t)
    if kind == "stopped":
        if s.phase == Phase.SAFE:
            return replace(s, stop_count=s.stop_count + 1)
        return replace(s, phase=Phase.SAFE, phase_since_s=t, stop_count=s.stop_count + 1,
                       resume_to=Phase(d.get("resume_to", Phase.EXPOSURE.value)))
    if kind == "suds_requested":
        return replace(s, suds_requested_at_s=t)
    if kind == "suds_recorded":
        rating = SudsRating(t, int(d["step_index"]), int(d["value"]), str(d.get("by", "")))
        kept = _trim_step(s.suds, rating)
        if rating.step_index == s.step_index and t >= s.step_since_s:
            peak = rating.value if s.step_suds_peak is None else max(s.step_suds_peak,
                                                                     rating.value)
            return replace(s, suds=kept, suds_requested_at_s=None,
                           step_suds_count=s.step_suds_count + 1, step_suds_peak=peak)
        return replace(s, suds=kept, suds_requested_at_s=None)
    if kind == "expectancy_recorded":
        exp = Expectancy(t, int(d["step_index"]), str(d["outcome"]), int(d["likelihood_pct"]))
        return replace(s, expectancies=(*s.expectancies, exp))
    if kind == "expectancy_outcome":
        index = int(d["expectancy_index"])
        exps = list(s.expectancies)
        exps[index] = replace(exps[index], happened=bool(d["happened"]))
        return replace(s, expectancies=tuple(exps))
    if kind == "marker":
        marker = Marker(t, str(d["text"]), str(d.get("by", "")))
        return replace(s, markers=(*s.markers, marker)[-MARKERS_KEPT:])
    if kind == "advance_suggested":
        return replace(s, suggestion=Suggestion(int(d["step_index"]), str(d["reason"]),
                                                dict(d.get("detail", {})), t))
    if kind == "suggestion_dismissed":
        return replace(s, suggestion=None,
                       dismissed_reasons=(*s.dismissed_reasons, str(d["reason"])))
    if kind == "auto_advance_set":
        return replace(s, auto_advance=bool(d["enabled"]))
    if kind == "alert":
        kind_name = str(d["alert"])
        active = s.alerts_active if kind_name in s.alerts_active else (*s.alerts_active, kind_name)
        return replace(s, alerts_active=active)
    if kind == "alert_cleared":
        return replace(s, alerts_active=tuple(a for a in s.alerts_active if a != d["alert"]))
    if kind == "ended":
        return replace(s, phase=Phase.ENDED, phase_since_s=t)
    if kind == "questionnaire_started":
        return replace(s, questionnaire=qsession.evolve_started(d, t))
    if kind == "questionnaire_answer":
        return replace(s, questionnaire=qsession.evolve_answer(s.questionnaire, d))
    if kind == "questionnaire_paused":
        return replace(s, questionnaire=qsession.evolve_paused(s.questionnaire, d))
    if kind == "questionnaire_scored":
        return replace(s, questionnaire=None, questionnaires_done=(
            *s.questionnaires_done, qsession.evolve_scored(d, t)))
    if kind == "stimulus_event":
        count = s.stimulus_event_count + 1
        s = replace(s, stimulus_event=(str(d["name"]), count, t), stimulus_event_count=count)
        if d.get("auto_index") is not None:
            played = s.auto_events_played if s.auto_events_since_s == s.step_since_s else ()
            s = replace(s, auto_events_played=(*played, int(d["auto_index"])),
                        auto_events_since_s=s.step_since_s)
        return s
    # Informational events (suggestion_accepted, auto_advanced, session_resumed, ...) only
    # advance the sequence number.
    return s


#: Events that end a preview: the session moves on (or STOP), the calm scene or the step wins.
_PREVIEW_ENDS = frozenset({"preview_ended", "baseline_started", "exposure_started", "stopped",
                           "paused", "ended", "questionnaire_started"})


def _trim_step(suds: tuple[SudsRating, ...], rating: SudsRating
               ) -> tuple[SudsRating, ...]:
    """``suds`` plus ``rating``, keeping at most SUDS_KEPT_PER_STEP ratings of its step."""
    kept = (*suds, rating)
    same = [i for i, r in enumerate(kept) if r.step_index == rating.step_index]
    if len(same) <= SUDS_KEPT_PER_STEP:
        return kept
    drop = set(same[:len(same) - SUDS_KEPT_PER_STEP])
    return tuple(r for i, r in enumerate(kept) if i not in drop)


def rebuild(hierarchy: Hierarchy, events: Iterable[Event]) -> SessionState:
    """The state reached by folding ``events`` from the start of a session."""
    state = initial_state(hierarchy)
    for event in events:
        state = evolve(state, event)
    return state


# ---------------------------------------------------------------------------
# decide: (state, command, now) -> events


def _arg(cmd: Command, name: str) -> Any:
    if name not in cmd.args:
        raise CommandError(f"'{cmd.name}' needs the argument '{name}'")
    return cmd.args[name]


def _int_arg(cmd: Command, name: str, low: int, high: int) -> int:
    try:
        return args.to_int(_arg(cmd, name), name, low, high)
    except args.ArgError as exc:
        raise CommandError(str(exc)) from None


def _float_arg(cmd: Command, name: str, low: float, high: float) -> float:
    try:
        return args.to_float(_arg(cmd, name), name, low, high)
    except args.ArgError as exc:
        raise CommandError(str(exc)) from None


def _text_arg(cmd: Command, name: str, max_chars: int = MAX_MARKER_CHARS) -> str:
    try:
        return args.to_str(_arg(cmd, name), name, max_chars)
    except args.ArgError as exc:
        raise CommandError(str(exc)) from None


def _opt_text_arg(cmd: Command, name: str, default: str, max_chars: int = 200) -> str:
    """An optional short text argument (a reason); bounded, never a nested structure."""
    if name not in cmd.args:
        return default
    return _text_arg(cmd, name, max_chars)


def _require(state: SessionState, cmd: Command, *phases: Phase) -> None:
    if state.phase not in phases:
        allowed = ", ".join(p.value for p in phases)
        raise CommandError(f"'{cmd.name}' is not possible while {state.phase.value} "
                           f"(only while {allowed})")


def _step_change(state: SessionState, to: int, reason: str, by: str, now: float) -> Event:
    return Event("step_changed", now, {"from": state.step_index, "to": to, "reason": reason,
                                       "by": by, "step_id": state.hierarchy.steps[to].id})


def advance_check(state: SessionState, now: float) -> tuple[str, dict[str, Any]] | None:
    """The advance rule's verdict for the current step: (reason, detail) or None."""
    if state.phase != Phase.EXPOSURE:
        return None
    if state.suggestion is not None and state.suggestion.step_index == state.step_index:
        return None
    rule = state.hierarchy.advance_rule
    time_in_step = state.time_in_step_s(now)
    candidates: list[tuple[str, dict[str, Any]]] = []
    if rule.max_time_in_step_s is not None and time_in_step >= rule.max_time_in_step_s:
        candidates.append(("time_cap", {"time_in_step_s": round(time_in_step, 3),
                                        "max_time_in_step_s": rule.max_time_in_step_s}))
    if time_in_step >= rule.min_time_in_step_s:
        ratings = state.step_ratings()
        if rule.suds_drop_pct is not None and state.step_suds_count >= 2 and ratings:
            # The peak of the whole visit, even when older ratings left the state.
            peak = max(state.step_suds_peak or 0, *(r.value for r in ratings))
            last = ratings[-1].value
            if peak > 0 and last <= peak * (1 - rule.suds_drop_pct / 100.0):
                drop_pct = 100.0 * (peak - last) / peak
                candidates.append(("suds_drop", {"peak_suds": peak, "last_suds": last,
                                                 "drop_pct": round(drop_pct, 1)}))
        if rule.expectancy_violation:
            for exp in state.expectancies:
                if (exp.step_index == state.step_index and exp.t_s >= state.step_since_s
                        and exp.happened is False):
                    candidates.append(("expectancy_violated",
                                       {"outcome": exp.outcome,
                                        "likelihood_pct": exp.likelihood_pct}))
                    break
    for reason, detail in candidates:
        if reason not in state.dismissed_reasons:
            return reason, detail
    return None


def _with_advance_rules(state: SessionState, events: list[Event], now: float) -> list[Event]:
    """Append advance_suggested (and, when opted in, the automatic step change)."""
    probe = state
    for event in events:
        probe = evolve(probe, event)
    verdict = advance_check(probe, now)
    if verdict is None:
        return events
    reason, detail = verdict
    last = probe.step_index >= len(probe.hierarchy.steps) - 1
    next_index = None if last else probe.step_index + 1
    events.append(Event("advance_suggested", now, {
        "step_index": probe.step_index, "reason": reason, "detail": detail,
        "next_step_index": next_index, "hierarchy_complete": last}))
    if probe.auto_advance and next_index is not None:
        events.append(Event("auto_advanced", now, {"reason": reason, "from": probe.step_index,
                                                   "to": next_index}))
        events.append(_step_change(probe, next_index, f"auto:{reason}", "host:auto_advance",
                                   now))
    return events


def decide(state: SessionState, cmd: Command, now: float) -> list[Event]:
    """The events that ``cmd`` causes at session time ``now``; raises CommandError."""
    if cmd.name in READ_ONLY_COMMANDS:
        return []
    handler = _HANDLERS.get(cmd.name)
    if handler is None:  # before the role check: a typo is not a permission problem
        raise CommandError(f"unknown command '{cmd.name}'")
    if cmd.name not in ROLE_COMMANDS.get(cmd.role, frozenset()):
        raise CommandError(f"role '{cmd.role.value}' may not send '{cmd.name}'")
    if state.phase == Phase.ENDED and cmd.name != "tick":
        raise CommandError("the session has ended")
    events = handler(state, cmd, now)
    if cmd.name in _RULE_TRIGGERS:
        events = _with_advance_rules(state, events, now)
    return events


def apply(state: SessionState, cmd: Command, now: float) -> tuple[SessionState, list[Event]]:
    """Validate and apply ``cmd``; returns the new state and the events it caused."""
    events = decide(state, cmd, now)
    for event in events:
        state = evolve(state, event)
    return state, events


# --- command handlers -------------------------------------------------------

def _start_baseline(state: SessionState, cmd: Command, now: float) -> list[Event]:
    _require(state, cmd, Phase.IDLE)
    return [Event("baseline_started", now, {"duration_s": state.hierarchy.baseline.duration_s,
                                            "by": cmd.by})]


def _complete_baseline(state: SessionState, cmd: Command, now: float) -> list[Event]:
    _require(state, cmd, Phase.BASELINE, Phase.PAUSED, Phase.SAFE)
    if state.baseline_done:
        raise CommandError("the baseline is already complete")
    mean = cmd.args.get("mean_bpm")
    data: dict[str, Any] = {"by": cmd.by, "mean_bpm": None, "sd_bpm": None,
                            "n_values": _int_arg(cmd, "n_values", 0, 10_000_000)
                            if cmd.args.get("n_values") is not None else 0}
    if mean is not None:
        data["mean_bpm"] = _float_arg(cmd, "mean_bpm", 20.0, 250.0)
        data["sd_bpm"] = _float_arg(cmd, "sd_bpm", 0.0, 100.0)
    else:
        data["warning"] = "no trustworthy heart rate during baseline: heart-rate alerts are off"
    return [Event("baseline_completed", now, data)]


def _start_exposure(state: SessionState, cmd: Command, now: float) -> list[Event]:
    _require(state, cmd, Phase.IDLE, Phase.BASELINE)
    index = _step_index_arg(state, cmd) if "step" in cmd.args else 0
    events = []
    if not state.baseline_done:
        events.append(Event("baseline_completed", now, {
            "by": cmd.by, "mean_bpm": None, "sd_bpm": None, "n_values": 0,
            "warning": "exposure started without a baseline: heart-rate alerts are off"}))
    events.append(Event("exposure_started", now, {"step_index": index,
                                                  "step_id": state.hierarchy.steps[index].id,
                                                  "by": cmd.by}))
    return events


def _pause(state: SessionState, cmd: Command, now: float) -> list[Event]:
    if state.phase == Phase.PAUSED:
        raise CommandError("already paused")
    _require(state, cmd, Phase.BASELINE, Phase.EXPOSURE, Phase.SAFE)
    resume_to = state.resume_to if state.phase == Phase.SAFE else state.phase
    return [Event("paused", now, {"by": cmd.by, "reason": _safe_reason(cmd, "command"),
                                  "resume_to": resume_to.value})]


def _resume(state: SessionState, cmd: Command, now: float) -> list[Event]:
    _require(state, cmd, Phase.PAUSED, Phase.SAFE)
    target = state.resume_to
    if target == Phase.BASELINE and state.baseline_done:
        target = Phase.EXPOSURE if state.exposure_started else Phase.BASELINE
    if target == Phase.EXPOSURE and not state.exposure_started:
        target = Phase.BASELINE
    # Optional: where exposure resumes. Coming back from a STOP is a decision (this step or
    # one below, at which intensity), so the panel can say both; without them: as it was.
    events: list[Event] = []
    if "step" in cmd.args or "intensity" in cmd.args:
        if target != Phase.EXPOSURE:
            raise CommandError("'step' and 'intensity' only apply when resuming exposure")
        if "step" in cmd.args:
            index = _step_index_arg(state, cmd)
            if index > state.step_index:
                raise CommandError(f"resume goes back to step {state.step_index + 1} or below, "
                                   f"not to step {index + 1} (use 'next' or 'jump')")
            events.append(_step_change(state, index, "resume", cmd.by, now))
        if "intensity" in cmd.args:
            value = _float_arg(cmd, "intensity", 0.0, 1.0)
            index = events[0].data["to"] if events else state.step_index
            events.append(Event("intensity_changed", now, {"intensity": value, "by": cmd.by,
                                                           "step_index": index}))
    return [*events, Event("resumed", now, {"by": cmd.by, "to": target.value})]


#: A previewed step's parameters: at most this many, names this long (checked against the
#: scene when shown: :func:`scene_target` uses only the values the scene accepts).
MAX_PREVIEW_PARAMS = 64


def _preview_step(state: SessionState, cmd: Command, now: float) -> list[Event]:
    """Show a step being edited in the headset (``{step_id, params}``), or end the preview
    (no ``params``). Only while nothing has started: exposure's rules never see it."""
    _require(state, cmd, Phase.IDLE)
    if "params" not in cmd.args:
        return [Event("preview_ended", now, {"by": cmd.by})]
    params = cmd.args["params"]
    if not isinstance(params, Mapping) or len(params) > MAX_PREVIEW_PARAMS:
        raise CommandError(f"'params' must be a mapping of at most {MAX_PREVIEW_PARAMS} "
                           "scene parameters")
    for name, value in params.items():
        if not isinstance(name, str) or not 0 < len(name) <= 64:
            raise CommandError(f"scene parameter name {name!r} is not a short text")
        if not isinstance(value, bool | int | float | str) or (
                isinstance(value, str) and len(value) > 200) or (
                isinstance(value, int | float) and not isinstance(value, bool)
                and not (math.isfinite(value) and abs(value) <= 1e9)):
            raise CommandError(f"scene parameter '{name}' must be a number, true/false or a "
                               "short text")
    step_id = _opt_text_arg(cmd, "step_id", "", 64)
    return [Event("preview_shown", now, {"step_id": step_id, "params": dict(params),
                                         "by": cmd.by})]


def _stop(state: SessionState, cmd: Command, now: float) -> list[Event]:
    # STOP is accepted in every phase but 'ended' and always logged, even when already safe.
    resume_to = state.resume_to if state.phase in (Phase.SAFE, Phase.PAUSED) else state.phase
    if resume_to == Phase.IDLE:
        resume_to = Phase.BASELINE
    return [Event("stopped", now, {"by": cmd.by, "reason": _stop_reason(cmd),
                                   "already_safe": state.phase == Phase.SAFE,
                                   "resume_to": resume_to.value})]


def _safe_reason(cmd: Command, default: str) -> str:
    # STOP and pause must work whatever came with them: a malformed reason is replaced,
    # never a reason to refuse.
    reason = cmd.args.get("reason", default)
    if not isinstance(reason, str) or not reason.strip():
        return default
    return reason.strip()[:200]


def _stop_reason(cmd: Command) -> str:
    return _safe_reason(cmd, "STOP")


def _step_index_arg(state: SessionState, cmd: Command) -> int:
    target = _arg(cmd, "step")
    steps = state.hierarchy.steps
    if isinstance(target, str):
        for index, step in enumerate(steps):
            if step.id == target:
                return index
        if not target.isascii() or not target.isdigit():
            raise CommandError(f"no step with id {target[:40]!r}")
    try:
        return args.to_int(target, "step", 0, len(steps) - 1)
    except args.ArgError:
        raise CommandError(f"'step' must be a step id or an index from 0 to "
                           f"{len(steps) - 1}") from None


def _next(state: SessionState, cmd: Command, now: float) -> list[Event]:
    _require(state, cmd, Phase.EXPOSURE, Phase.PAUSED, Phase.SAFE)
    if state.step_index >= len(state.hierarchy.steps) - 1:
        raise CommandError("already at the last step")
    return [_step_change(state, state.step_index + 1, "next", cmd.by, now)]


def _previous(state: SessionState, cmd: Command, now: float) -> list[Event]:
    _require(state, cmd, Phase.EXPOSURE, Phase.PAUSED, Phase.SAFE)
    if state.step_index == 0:
        raise CommandError("already at the first step")
    return [_step_change(state, state.step_index - 1, "previous", cmd.by, now)]


def _repeat(state: SessionState, cmd: Command, now: float) -> list[Event]:
    _require(state, cmd, Phase.EXPOSURE, Phase.PAUSED, Phase.SAFE)
    return [_step_change(state, state.step_index, "repeat", cmd.by, now)]


def _jump(state: SessionState, cmd: Command, now: float) -> list[Event]:
    _require(state, cmd, Phase.EXPOSURE, Phase.PAUSED, Phase.SAFE)
    return [_step_change(state, _step_index_arg(state, cmd), "jump", cmd.by, now)]


def _intensity(state: SessionState, cmd: Command, now: float) -> list[Event]:
    _require(state, cmd, Phase.EXPOSURE, Phase.PAUSED, Phase.SAFE)
    value = _float_arg(cmd, "value", 0.0, 1.0)
    return [Event("intensity_changed", now, {"intensity": value, "by": cmd.by,
                                             "step_index": state.step_index})]


def _suds(state: SessionState, cmd: Command, now: float) -> list[Event]:
    _require(state, cmd, Phase.BASELINE, Phase.EXPOSURE, Phase.PAUSED, Phase.SAFE)
    value = _int_arg(cmd, "value", 0, 100)
    return [Event("suds_recorded", now, {"value": value, "step_index": state.step_index,
                                         "phase": state.phase.value, "by": cmd.by,
                                         "prompted": state.suds_requested_at_s is not None})]


def _request_suds(state: SessionState, cmd: Command, now: float) -> list[Event]:
    _require(state, cmd, Phase.BASELINE, Phase.EXPOSURE, Phase.PAUSED, Phase.SAFE)
    return [Event("suds_requested", now, {"step_index": state.step_index, "by": cmd.by})]


def _expectancy(state: SessionState, cmd: Command, now: float) -> list[Event]:
    _require(state, cmd, Phase.BASELINE, Phase.EXPOSURE, Phase.PAUSED)
    if len(state.expectancies) >= MAX_EXPECTANCIES:
        raise CommandError(f"this session already has {MAX_EXPECTANCIES} expectancies")
    outcome = _text_arg(cmd, "outcome")
    likelihood = _int_arg(cmd, "likelihood_pct", 0, 100)
    return [Event("expectancy_recorded", now, {"step_index": state.step_index,
                                               "outcome": outcome, "likelihood_pct": likelihood,
                                               "by": cmd.by})]


def _expectancy_outcome(state: SessionState, cmd: Command, now: float) -> list[Event]:
    _require(state, cmd, Phase.EXPOSURE, Phase.PAUSED, Phase.SAFE)
    happened = _arg(cmd, "happened")
    if not isinstance(happened, bool):
        raise CommandError("'happened' must be true or false")
    for index in range(len(state.expectancies) - 1, -1, -1):
        exp = state.expectancies[index]
        if exp.step_index == state.step_index and exp.happened is None:
            return [Event("expectancy_outcome", now, {"expectancy_index": index,
                                                      "step_index": exp.step_index,
                                                      "outcome": exp.outcome,
                                                      "happened": happened, "by": cmd.by})]
    raise CommandError("no open expectancy for this step: record the prediction first")


def _marker(state: SessionState, cmd: Command, now: float) -> list[Event]:
    return [Event("marker", now, {"text": _text_arg(cmd, "text"), "by": cmd.by,
                                  "step_index": state.step_index})]


def _note(state: SessionState, cmd: Command, now: float) -> list[Event]:
    """A session note as typed so far: the whole text each time (the newest one of a
    ``note_id`` is the note), kept with its line breaks."""
    value = _arg(cmd, "text")
    if not isinstance(value, str):
        raise CommandError("'text' must be text")
    if len(value) > MAX_NOTE_CHARS:
        raise CommandError(f"'text' is longer than {MAX_NOTE_CHARS} characters")
    note_id = _int_arg(cmd, "note_id", 0, 1_000_000) if "note_id" in cmd.args else 0
    return [Event("note", now, {"text": value, "note_id": note_id, "by": cmd.by,
                                "step_index": state.step_index})]


def _accept_suggestion(state: SessionState, cmd: Command, now: float) -> list[Event]:
    suggestion = state.suggestion
    if suggestion is None or suggestion.step_index != state.step_index:
        raise CommandError("there is no advance suggestion to accept")
    if state.step_index >= len(state.hierarchy.steps) - 1:
        raise CommandError("the last step is done: end the session or repeat the step")
    return [
        Event("suggestion_accepted", now, {"reason": suggestion.reason, "by": cmd.by,
                                           "step_index": state.step_index}),
        _step_change(state, state.step_index + 1, f"accepted:{suggestion.reason}", cmd.by, now),
    ]


def _dismiss_suggestion(state: SessionState, cmd: Command, now: float) -> list[Event]:
    if state.suggestion is None:
        raise CommandError("there is no advance suggestion to dismiss")
    return [Event("suggestion_dismissed", now, {"reason": state.suggestion.reason,
                                                "by": cmd.by,
                                                "step_index": state.suggestion.step_index})]


def _auto_advance(state: SessionState, cmd: Command, now: float) -> list[Event]:
    enabled = _arg(cmd, "enabled")
    if not isinstance(enabled, bool):
        raise CommandError("'enabled' must be true or false")
    return [Event("auto_advance_set", now, {"enabled": enabled, "by": cmd.by})]


def _stimulus_event(state: SessionState, name: str, by: str, now: float,
                    auto_index: int | None = None) -> Event:
    spec = next((e for e in state.hierarchy.scene_events if e.name == name), None)
    if spec is None:
        known = ", ".join(e.name for e in state.hierarchy.scene_events) or "none"
        raise CommandError(f"scene '{state.hierarchy.scene}' has no event '{name}' "
                           f"(its events: {known})")
    data: dict[str, Any] = {"name": spec.name, "label": spec.label, "by": by,
                            "duration_s": spec.duration_s, "step_index": state.step_index}
    if auto_index is not None:
        data["auto_index"] = auto_index
    return Event("stimulus_event", now, data)


def _trigger_event(state: SessionState, cmd: Command, now: float) -> list[Event]:
    _require(state, cmd, Phase.EXPOSURE)
    return [_stimulus_event(state, _text_arg(cmd, "name", 64), cmd.by, now)]


def _tick(state: SessionState, cmd: Command, now: float) -> list[Event]:
    """The step's automatic stimulus events that are due (each once per visit)."""
    if state.phase != Phase.EXPOSURE:
        return []
    played = state.auto_events_played if state.auto_events_since_s == state.step_since_s else ()
    elapsed = state.time_in_step_s(now)
    return [_stimulus_event(state, name, "host:auto", now, index)
            for index, (name, at_s) in enumerate(state.step.events)
            if at_s <= elapsed and index not in played]


def _alert(state: SessionState, cmd: Command, now: float) -> list[Event]:
    data = {k: v for k, v in cmd.args.items() if k != "alert"}
    if cmd.args.get("alert") in state.alerts_active:
        return []  # already shown to the therapist
    return [Event("alert", now, {"alert": _text_arg(cmd, "alert", 64), **data,
                                 "step_index": state.step_index, "phase": state.phase.value})]


def _alert_cleared(state: SessionState, cmd: Command, now: float) -> list[Event]:
    name = _text_arg(cmd, "alert", 64)
    if name not in state.alerts_active:
        return []
    return [Event("alert_cleared", now, {"alert": name})]


def _questionnaire_start(state: SessionState, cmd: Command, now: float) -> list[Event]:
    try:
        data = qsession.start_event(state.questionnaire,
                                    qsession.library(state.questionnaire_library), cmd.args,
                                    state.exposure_started, cmd.by)
    except qsession.QuestionnaireCommandError as exc:
        raise CommandError(str(exc)) from None
    return [Event("questionnaire_started", now, data)]


def _questionnaire_answer(state: SessionState, cmd: Command, now: float) -> list[Event]:
    try:
        event = Event("questionnaire_answer", now,
                      qsession.answer_event(state.questionnaire, cmd.args, cmd.by))
        form = qsession.evolve_answer(state.questionnaire, event.data)
        if not qsession.auto_finish(form):
            return [event]
        # The last item is in: the form scores itself.
        later = qsession.finish_events(form, {}, state.questionnaires_done,
                                       state.hierarchy.questionnaires.ssq_rise_alert, cmd.by)
    except qsession.QuestionnaireCommandError as exc:
        raise CommandError(str(exc)) from None
    return [event, *(_questionnaire_event(state, kind, data, now) for kind, data in later)]


def _questionnaire_pause(state: SessionState, cmd: Command, now: float) -> list[Event]:
    try:
        return [Event("questionnaire_paused", now,
                      qsession.pause_event(state.questionnaire, cmd.args, cmd.by))]
    except qsession.QuestionnaireCommandError as exc:
        raise CommandError(str(exc)) from None


def _questionnaire_finish(state: SessionState, cmd: Command, now: float) -> list[Event]:
    try:
        later = qsession.finish_events(state.questionnaire, cmd.args, state.questionnaires_done,
                                       state.hierarchy.questionnaires.ssq_rise_alert, cmd.by)
    except qsession.QuestionnaireCommandError as exc:
        raise CommandError(str(exc)) from None
    return [_questionnaire_event(state, kind, data, now) for kind, data in later]


def _questionnaire_event(state: SessionState, kind: str, data: dict[str, Any], now: float
                         ) -> Event:
    if kind == "alert":
        data = {**data, "step_index": state.step_index, "phase": state.phase.value}
    return Event(kind, now, data)


def _end(state: SessionState, cmd: Command, now: float) -> list[Event]:
    events = []
    if state.questionnaire is not None:  # the open form is scored: the rest stays unanswered
        later = qsession.finish_events(state.questionnaire, {}, state.questionnaires_done,
                                       state.hierarchy.questionnaires.ssq_rise_alert, cmd.by)
        events = [_questionnaire_event(state, kind, data, now) for kind, data in later]
    return [*events, Event("ended", now, {"by": cmd.by,
                                          "reason": cmd.args.get("reason", "command")})]
    return [Event("ended", now, {"by": cmd.by,
                                 "reason": _opt_text_arg(cmd, "reason", "command")})]


_HANDLERS = {
    "start_baseline": _start_baseline, "complete_baseline": _complete_baseline,
    "start_exposure": _start_exposure, "pause": _pause, "resume": _resume, "stop": _stop,
    "next": _next, "previous": _previous, "repeat": _repeat, "jump": _jump,
    "intensity": _intensity, "suds": _suds, "request_suds": _request_suds,
    "expectancy": _expectancy, "expectancy_outcome": _expectancy_outcome, "marker": _marker,
    "note": _note,
    "accept_suggestion": _accept_suggestion, "dismiss_suggestion": _dismiss_suggestion,
    "auto_advance": _auto_advance, "tick": _tick, "alert": _alert,
    "alert_cleared": _alert_cleared, "end": _end,
    "questionnaire_start": _questionnaire_start, "questionnaire_answer": _questionnaire_answer,
    "questionnaire_pause": _questionnaire_pause, "questionnaire_finish": _questionnaire_finish,
    "trigger_event": _trigger_event, "preview_step": _preview_step,
}

#: Commands after which the advance rule is evaluated.
_RULE_TRIGGERS = frozenset({"tick", "suds", "expectancy_outcome", "resume", "auto_advance",
                            "intensity"})

COMMAND_NAMES = frozenset(_HANDLERS) | READ_ONLY_COMMANDS


# ---------------------------------------------------------------------------
# What the renderer shows, and the wire form of the state


def scene_target(state: SessionState, scenes: Mapping[str, SceneSpec]
                 ) -> tuple[str, dict[str, ParamValue]]:
    """The scene and parameters the patient should see in this state."""
    hierarchy = state.hierarchy
    if state.questionnaire is not None:  # the patient answers in the calm scene
        return hierarchy.calm_scene, scenes[hierarchy.calm_scene].defaults()
    if state.phase == Phase.EXPOSURE:
        return hierarchy.scene, hierarchy.step_params(state.step_index, state.intensity, scenes)
    if state.phase == Phase.BASELINE:
        spec = scenes[hierarchy.baseline.scene]
        return spec.name, spec.resolve(hierarchy.baseline.params)
    if state.phase == Phase.IDLE and state.preview is not None:
        # the step being edited with the patient: only values the scene accepts
        spec = scenes[hierarchy.scene]
        checks = {p.name: p for p in spec.params}
        return spec.name, spec.resolve({k: v for k, v in state.preview[1].items()
                                        if k in checks and checks[k].check(v) is None})
    return hierarchy.calm_scene, scenes[hierarchy.calm_scene].defaults()


def state_to_dict(state: SessionState, now: float, scenes: Mapping[str, SceneSpec]
                  ) -> dict[str, Any]:
    """The ``state`` message payload: everything a panel or renderer needs to draw."""
    scene, params = scene_target(state, scenes)
    step = state.hierarchy.steps[state.step_index]
    suggestion = state.suggestion
    return {
        "seq": state.seq,
        "phase": state.phase.value,
        "hierarchy_id": state.hierarchy.id,
        "step_index": state.step_index,
        "step_id": step.id,
        "step_label": step.label,
        "step_expected_suds": step.expected_suds,
        "step_expectancy_prompt": step.expectancy_prompt,
        "n_steps": len(state.hierarchy.steps),
        "steps": [{"id": s.id, "label": s.label, "expected_suds": s.expected_suds,
                   # what the within-step intensity changes: parameter -> [at 0, at 1]
                   "intensity": {k: [float(v[0]), float(v[1])] for k, v in s.intensity.items()}}
                  for s in state.hierarchy.steps],
        "intensity": state.intensity,
        "time_in_step_s": round(state.time_in_step_s(now), 3),
        "time_in_phase_s": round(max(0.0, now - state.phase_since_s), 3),
        "scene": scene,
        "params": params,
        "baseline": None if state.baseline is None else {
            "mean_bpm": state.baseline.mean_bpm, "sd_bpm": state.baseline.sd_bpm,
            "n_values": state.baseline.n_values,
            "threshold_bpm": round(state.hierarchy.alerts.threshold_bpm(
                state.baseline.mean_bpm, state.baseline.sd_bpm), 2)},
        "expectancies": [{"t_s": e.t_s, "step_index": e.step_index, "outcome": e.outcome,
                          "likelihood_pct": e.likelihood_pct, "happened": e.happened}
                         for e in state.expectancies],
        "baseline_done": state.baseline_done,
        "suds": [[r.t_s, r.step_index, r.value] for r in state.suds],
        "step_suds_count": state.step_suds_count,
        "suds_requested": state.suds_requested_at_s is not None,
        "suggestion": None if suggestion is None else {
            "step_index": suggestion.step_index, "reason": suggestion.reason,
            "detail": dict(suggestion.detail)},
        "auto_advance": state.auto_advance,
        "alerts_active": list(state.alerts_active),
        "highest_step": state.highest_step,
        "stop_count": state.stop_count,
        "stimulus_event": None if state.stimulus_event is None else {
            "name": state.stimulus_event[0], "id": state.stimulus_event[1],
            "t_s": state.stimulus_event[2]},
        "scene_events": [{"name": e.name, "label": e.label, "key": e.key,
                          "duration_s": e.duration_s} for e in state.hierarchy.scene_events],
        "questionnaire": None if state.questionnaire is None else state.questionnaire.to_dict(),
        "questionnaires_done": [c.to_dict() for c in state.questionnaires_done],
        "questionnaire_plan": {"before": list(state.hierarchy.questionnaires.before),
                               "after": list(state.hierarchy.questionnaires.after),
                               "ssq_rise_alert": state.hierarchy.questionnaires.ssq_rise_alert},
        # where 'resume' goes: the panel asks at which step only when it is exposure
        "resume_to": state.resume_to.value,
        # the plan the panel's timers count against
        "baseline_duration_s": state.hierarchy.baseline.duration_s,
        "step_min_s": state.hierarchy.advance_rule.min_time_in_step_s,
        "step_max_s": state.hierarchy.advance_rule.max_time_in_step_s,
        "suds_interval_s": state.hierarchy.advance_rule.suds_interval_s,
        "exposure_started": state.exposure_started,
        "preview": None if state.preview is None else {
            "step_id": state.preview[0], "params": dict(state.preview[1])},
    }
