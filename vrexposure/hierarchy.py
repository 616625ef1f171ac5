"""Fear hierarchies: the YAML model, its validation and clinical checks (pure).

A hierarchy names its scene, its calm scene, a baseline phase, its advance
rule and its ordered steps. ``load_hierarchy`` returns a validated
:class:`Hierarchy` or raises :class:`HierarchyError` listing every problem as
``file:line: message``; ``validate_file`` returns problems without raising.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from .plugins import discover_scenes
from .scene_api import EventSpec, ParamValue, SceneSpec, interpolate_params
from .yamlsrc import PathKey, SourceMap, YamlSyntaxError, load_yaml_file, load_yaml_text

Severity = Literal["error", "warning"]

# Clinical guidance (see docs/architecture.md): 8–12 items, first ≤ 40 SUDS, gaps ≤ 15.
MAX_FIRST_STEP_SUDS = 40
MAX_SUDS_GAP = 15
MIN_STEPS = 5
MAX_STEPS = 15
#: Hierarchy ids end up in file names: letters, digits, '-' and '_' only.
ID_SLUG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class Problem:
    path: str
    line: int
    severity: Severity
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.severity}: {self.message}"


class HierarchyError(Exception):
    """A hierarchy file has errors; ``problems`` lists every one of them."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass(frozen=True)
class AdvanceRule:
    """When to suggest moving to the next step (all times on the session clock)."""

    suds_drop_pct: float | None = 50.0
    min_time_in_step_s: float = 60.0
    max_time_in_step_s: float | None = None
    #: The panel reminds the therapist when no SUDS was asked for this long (None: never).
    suds_interval_s: float | None = None
    expectancy_violation: bool = True
    auto_advance: bool = False


@dataclass(frozen=True)
class AlertRule:
    """Heart-rate alert relative to the patient's own baseline."""

    rise_bpm: float = 20.0
    rise_sd: float = 3.0
    sustain_s: float = 15.0

    def threshold_bpm(self, baseline_mean_bpm: float, baseline_sd_bpm: float) -> float:
        return baseline_mean_bpm + max(self.rise_bpm, self.rise_sd * baseline_sd_bpm)


@dataclass(frozen=True)
class Baseline:
    duration_s: float
    scene: str
    params: Mapping[str, ParamValue] = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    id: str
    label: str
    expected_suds: int
    params: Mapping[str, ParamValue]
    intensity: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    #: The feared outcome the patient is asked to predict before the step (optional).
    expectancy_prompt: str = ""
    notes: str = ""
    #: Stimulus events played automatically: (event name, seconds into the step).
    events: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class QuestionnairePlan:
    """Questionnaires the session gives before exposure and after it (ids), and the SSQ
    total rise (points) that raises a cybersickness alert."""

    before: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    ssq_rise_alert: float | None = None


@dataclass(frozen=True)
class Hierarchy:
    id: str
    title: str
    scene: str
    calm_scene: str
    baseline: Baseline
    advance_rule: AdvanceRule
    alerts: AlertRule
    steps: tuple[Step, ...]
    description: str = ""
    source_path: str = ""
    questionnaires: QuestionnairePlan = field(default_factory=QuestionnairePlan)
    #: The scene's stimulus events (from its schema), for the panel and the host.
    scene_events: tuple[EventSpec, ...] = ()

    def step_params(
        self, index: int, intensity: float, scenes: Mapping[str, SceneSpec]
    ) -> dict[str, ParamValue]:
        """Resolved scene parameters of step ``index`` at a within-step intensity."""
        step = self.steps[index]
        return interpolate_params(scenes[self.scene], step.params, step.intensity, intensity)

    def with_scaled_times(self, factor: float, min_baseline_s: float = 0.0) -> Hierarchy:
        """A copy with baseline and step time limits scaled (used by the short demo)."""
        rule = self.advance_rule
        baseline_s = max(min_baseline_s, self.baseline.duration_s * factor)
        return replace(
            self,
            baseline=replace(self.baseline, duration_s=baseline_s),
            advance_rule=replace(
                rule,
                min_time_in_step_s=rule.min_time_in_step_s * factor,
                max_time_in_step_s=(
                    None if rule.max_time_in_step_s is None else rule.max_time_in_step_s * factor
                ),
                suds_interval_s=(
                    None if rule.suds_interval_s is None else rule.suds_interval_s * factor
                ),
            ),
            alerts=replace(self.alerts, sustain_s=self.alerts.sustain_s * factor),
        )


# ---------------------------------------------------------------------------
# Validation


class FieldChecker:
    """Collects problems while reading fields out of the loaded YAML (hierarchies,
    questionnaires): every problem as ``file:line: message``."""

    def __init__(self, source: SourceMap) -> None:
        self.source = source
        self.problems: list[Problem] = []

    def report(self, key_path: PathKey, message: str, severity: Severity = "error") -> None:
        self.problems.append(
            Problem(self.source.path, self.source.line(key_path), severity, message)
        )

    def mapping(self, value: object, key_path: PathKey, what: str) -> Mapping[str, Any] | None:
        if isinstance(value, Mapping):
            return value
        self.report(key_path, f"{what} must be a mapping of names to values")
        return None

    def unknown_keys(self, data: Mapping[str, Any], allowed: Sequence[str],
                     key_path: PathKey) -> None:
        for key in data:
            if key not in allowed:
                self.report(
                    (*key_path, key), f"unknown field '{key}'{did_you_mean(str(key), allowed)}"
                )

    def unique_id(self, data: Mapping[str, Any], key_path: PathKey, seen: dict[str, int],
                  what: str, index: int) -> str:
        """The ``id`` of list entry ``index`` (a step, an item), reported when an earlier
        entry has it too; ``seen`` maps ids to their first index."""
        entry_id = self.text(data, "id", key_path, default=f"{what}{index + 1}")
        if entry_id in seen:
            self.report((*key_path, "id"), f"{what} id '{entry_id}' is used twice "
                                           f"(also {what} {seen[entry_id] + 1})")
        seen[entry_id] = index
        return entry_id

    def text(self, data: Mapping[str, Any], key: str, key_path: PathKey, required: bool = True,
             default: str = "") -> str:
        if key not in data:
            if required:
                self.report(key_path, f"missing required field '{key}'")
            return default
        value = data[key]
        if not isinstance(value, str) or not value.strip():
            self.report((*key_path, key), f"'{key}' must be a non-empty string, not {value!r}")
            return default
        return value

    def number(self, data: Mapping[str, Any], key: str, key_path: PathKey, default: float | None,
               minimum: float | None = None, maximum: float | None = None,
               required: bool = False, allow_null: bool = False) -> float | None:
        if key not in data:
            if required:
                self.report(key_path, f"missing required field '{key}'")
            return default
        value = data[key]
        if value is None and allow_null:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.report((*key_path, key), f"'{key}' must be a number, not {value!r}")
            return default
        if minimum is not None and value < minimum:
            self.report((*key_path, key), f"'{key}' must be at least {minimum}, not {value}")
        if maximum is not None and value > maximum:
            self.report((*key_path, key), f"'{key}' must be at most {maximum}, not {value}")
        return float(value)

    def flag(self, data: Mapping[str, Any], key: str, key_path: PathKey, default: bool) -> bool:
        if key not in data:
            return default
        value = data[key]
        if not isinstance(value, bool):
            self.report((*key_path, key), f"'{key}' must be true or false, not {value!r}")
            return default
        return value


def did_you_mean(name: str, candidates: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


_TOP_KEYS = ("id", "title", "description", "scene", "calm_scene", "baseline", "advance_rule",
             "alerts", "steps", "questionnaires")
_BASELINE_KEYS = ("duration_s", "scene", "params")
_RULE_KEYS = ("suds_drop_pct", "min_time_in_step_s", "max_time_in_step_s",
              "expectancy_violation", "auto_advance", "suds_interval_s")
_ALERT_KEYS = ("rise_bpm", "rise_sd", "sustain_s")
_STEP_KEYS = ("id", "label", "expected_suds", "params", "intensity", "expectancy_prompt", "notes",
              "events")


def _scene_params(check: FieldChecker, scene: SceneSpec, params: object, key_path: PathKey
                  ) -> dict[str, ParamValue]:
    data = check.mapping(params, key_path, f"parameters of scene '{scene.name}'")
    if data is None:
        return {}
    good: dict[str, ParamValue] = {}
    for name, value in data.items():
        spec = scene.param(str(name))
        if spec is None:
            check.report(
                (*key_path, name),
                f"scene '{scene.name}' has no parameter '{name}'"
                f"{did_you_mean(str(name), scene.param_names)}",
            )
            continue
        problem = spec.check(value)
        if problem:
            check.report((*key_path, name), f"parameter '{name}' {problem}")
            continue
        good[str(name)] = value
    return good


def _intensity_ranges(check: FieldChecker, scene: SceneSpec, ranges: object, key_path: PathKey
                      ) -> dict[str, tuple[float, float]]:
    data = check.mapping(ranges, key_path, "'intensity'")
    if data is None:
        return {}
    good: dict[str, tuple[float, float]] = {}
    for name, pair in data.items():
        where = (*key_path, name)
        spec = scene.param(str(name))
        if spec is None:
            check.report(where, f"scene '{scene.name}' has no parameter '{name}'"
                                f"{did_you_mean(str(name), scene.param_names)}")
            continue
        if not spec.interpolable:
            check.report(where, f"intensity range for '{name}': only numeric parameters can "
                                f"follow the intensity slider ('{name}' is {spec.type})")
            continue
        if not (isinstance(pair, list) and len(pair) == 2):
            check.report(where, f"intensity range for '{name}' must be [low, high], not {pair!r}")
            continue
        problems = [p for p in (spec.check(pair[0]), spec.check(pair[1])) if p]
        if problems:
            check.report(where, f"intensity range for '{name}': {problems[0]}")
            continue
        good[str(name)] = (float(pair[0]), float(pair[1]))
    return good


_PLAN_KEYS = ("before", "after", "ssq_rise_alert")


def _questionnaire_plan(check: FieldChecker, raw: object) -> QuestionnairePlan:
    from .questionnaires.session import library

    data = check.mapping(raw, ("questionnaires",), "'questionnaires'")
    if data is None:
        return QuestionnairePlan()
    where: PathKey = ("questionnaires",)
    check.unknown_keys(data, _PLAN_KEYS, where)
    known = library(None)
    lists: dict[str, tuple[str, ...]] = {}
    for key in ("before", "after"):
        ids = data.get(key, [])
        if not isinstance(ids, list):
            check.report((*where, key), f"'{key}' must be a list of questionnaire ids")
            ids = []
        good = []
        for index, qid in enumerate(ids):
            if qid not in known:
                check.report((*where, key, index), f"no questionnaire {qid!r}"
                                                   f"{did_you_mean(str(qid), list(known))}; "
                                                   f"known: {', '.join(sorted(known))}")
            else:
                if not known[qid].administrable:
                    check.report((*where, key, index), f"questionnaire '{qid}' ships as "
                                 "scoring only (licensed item text): the session can give it "
                                 "only with the clinic's licensed copy in questionnaires.dirs",
                                 "warning")
                good.append(str(qid))
        lists[key] = tuple(good)
    rise = check.number(data, "ssq_rise_alert", where, None, 0.0, 235.62, allow_null=True)
    if rise is not None and ("ssq" not in lists["before"] or "ssq" not in lists["after"]):
        check.report((*where, "ssq_rise_alert"), "'ssq_rise_alert' compares the SSQ before and "
                                                 "after: list 'ssq' in both 'before' and 'after'")
    return QuestionnairePlan(lists["before"], lists["after"], rise)


def _clinical_checks(check: FieldChecker, steps: Sequence[Step]) -> None:
    if not steps:
        return
    if not MIN_STEPS <= len(steps) <= MAX_STEPS:
        check.report(("steps",), f"{len(steps)} steps: a hierarchy usually has "
                                 f"{MIN_STEPS}-{MAX_STEPS} (8-12 is typical)", "warning")
    if steps[0].expected_suds > MAX_FIRST_STEP_SUDS:
        check.report(("steps", 0, "expected_suds"),
                     f"first step expects {steps[0].expected_suds} SUDS: start at "
                     f"{MAX_FIRST_STEP_SUDS} or below so the patient can succeed", "warning")
    for index in range(1, len(steps)):
        before, after = steps[index - 1], steps[index]
        where = ("steps", index, "expected_suds")
        if after.expected_suds < before.expected_suds:
            check.report(where, f"expected SUDS falls from {before.expected_suds} "
                                f"('{before.id}') to {after.expected_suds} ('{after.id}'): "
                                "order steps by increasing distress", "warning")
        elif after.expected_suds - before.expected_suds > MAX_SUDS_GAP:
            check.report(where, f"gap of {after.expected_suds - before.expected_suds} SUDS "
                                f"between '{before.id}' and '{after.id}' (more than "
                                f"{MAX_SUDS_GAP}): add an intermediate step", "warning")


def _step_events(check: FieldChecker, scene: SceneSpec, raw: object, key_path: PathKey
                 ) -> tuple[tuple[str, float], ...]:
    """``events: [{name, at_s}]`` of a step, checked against the scene's declared events."""
    if not isinstance(raw, list):
        check.report(key_path, "'events' must be a list of {name, at_s}")
        return ()
    names = [e.name for e in scene.events]
    good: list[tuple[str, float]] = []
    for k, item in enumerate(raw):
        where = (*key_path, k)
        if not isinstance(item, Mapping):
            check.report(where, "an event must be a mapping {name, at_s}")
            continue
        check.unknown_keys(item, ("name", "at_s"), where)
        name, at_s = item.get("name"), item.get("at_s")
        if scene.event(str(name)) is None:
            known = ", ".join(names) or "none"
            check.report((*where, "name"), f"scene '{scene.name}' has no event {name!r} "
                                           f"(its events: {known}){did_you_mean(str(name), names)}")
            continue
        if isinstance(at_s, bool) or not isinstance(at_s, int | float) or not 0 <= at_s <= 3600:
            check.report((*where, "at_s"), f"'at_s' must be seconds into the step (0-3600), "
                                           f"not {at_s!r}")
            continue
        good.append((str(name), float(at_s)))
    return tuple(sorted(good, key=lambda e: e[1]))


def _intensity_checks(check: FieldChecker, scene: SceneSpec, steps: Sequence[Step]) -> None:
    """Warn about steps whose within-step intensity slider would change nothing."""
    for index, step in enumerate(steps):
        moving = [name for name, (low, high) in step.intensity.items() if low != high]
        if not moving:
            check.report(("steps", index), f"step '{step.id}': intensity changes nothing "
                                           "(no parameter range under 'intensity'): the "
                                           "intensity slider would do nothing", "warning")


def _build(data: object, source: SourceMap, scenes: Mapping[str, SceneSpec],
           intensity_checks: bool = False) -> tuple[Hierarchy | None, list[Problem]]:
    check = FieldChecker(source)
    top = check.mapping(data, (), "a hierarchy file")
    if top is None:
        return None, check.problems
    check.unknown_keys(top, _TOP_KEYS, ())
    hid = check.text(top, "id", ())
    if hid and not ID_SLUG_RE.match(hid):
        # The id becomes part of the recording's file name: no path separators, no dots.
        check.report(("id",), f"'id' must be a slug (letters, digits, '-' or '_', at most "
                              f"64, starting with a letter or digit), not {hid[:80]!r}")
        hid = ""
    title = check.text(top, "title", ())
    description = check.text(top, "description", (), required=False)

    def scene_ref(key: str, required: bool, default: str) -> SceneSpec | None:
        name = check.text(top, key, (), required=required, default=default)
        if not name:
            return None
        if name not in scenes:
            check.report((key,), f"unknown scene '{name}'{did_you_mean(name, list(scenes))}; "
                                 f"known scenes: {', '.join(sorted(scenes))}")
            return None
        return scenes[name]

    scene = scene_ref("scene", True, "")
    calm = scene_ref("calm_scene", False, "calm")
    calm_name = calm.name if calm else "calm"

    baseline = Baseline(duration_s=120.0, scene=calm_name)
    if "baseline" in top:
        raw = check.mapping(top["baseline"], ("baseline",), "'baseline'")
        if raw is not None:
            check.unknown_keys(raw, _BASELINE_KEYS, ("baseline",))
            duration = check.number(raw, "duration_s", ("baseline",), 120.0, minimum=0.0)
            bscene_name = check.text(raw, "scene", ("baseline",), required=False,
                                     default=calm_name)
            bscene = scenes.get(bscene_name)
            if bscene is None:
                check.report(("baseline", "scene"), f"unknown scene '{bscene_name}'"
                                                    f"{did_you_mean(bscene_name, list(scenes))}")
            bparams = (_scene_params(check, bscene, raw["params"], ("baseline", "params"))
                       if bscene is not None and "params" in raw else {})
            baseline = Baseline(float(duration or 0.0), bscene_name, bparams)

    rule = AdvanceRule()
    if "advance_rule" in top:
        raw = check.mapping(top["advance_rule"], ("advance_rule",), "'advance_rule'")
        if raw is not None:
            where: PathKey = ("advance_rule",)
            check.unknown_keys(raw, _RULE_KEYS, where)
            rule = AdvanceRule(
                suds_drop_pct=check.number(raw, "suds_drop_pct", where, 50.0, 1.0, 100.0,
                                           allow_null=True),
                min_time_in_step_s=check.number(raw, "min_time_in_step_s", where, 60.0, 0.0)
                or 0.0,
                max_time_in_step_s=check.number(raw, "max_time_in_step_s", where, None, 1.0,
                                                allow_null=True),
                expectancy_violation=check.flag(raw, "expectancy_violation", where, True),
                auto_advance=check.flag(raw, "auto_advance", where, False),
                suds_interval_s=check.number(raw, "suds_interval_s", where, None, 1.0,
                                             allow_null=True),
            )
            if (rule.max_time_in_step_s is not None
                    and rule.max_time_in_step_s < rule.min_time_in_step_s):
                check.report((*where, "max_time_in_step_s"),
                             "max_time_in_step_s is shorter than min_time_in_step_s")

    alerts = AlertRule()
    if "alerts" in top:
        raw = check.mapping(top["alerts"], ("alerts",), "'alerts'")
        if raw is not None:
            check.unknown_keys(raw, _ALERT_KEYS, ("alerts",))
            alerts = AlertRule(
                rise_bpm=check.number(raw, "rise_bpm", ("alerts",), 20.0, 1.0, 100.0) or 20.0,
                rise_sd=check.number(raw, "rise_sd", ("alerts",), 3.0, 0.0, 10.0) or 0.0,
                sustain_s=check.number(raw, "sustain_s", ("alerts",), 15.0, 0.0, 600.0) or 0.0,
            )

    steps: list[Step] = []
    raw_steps = top.get("steps")
    if "steps" not in top:
        check.report((), "missing required field 'steps'")
    elif not isinstance(raw_steps, list) or not raw_steps:
        check.report(("steps",), "'steps' must be a non-empty list of steps")
    else:
        seen_ids: dict[str, int] = {}
        for index, raw_step in enumerate(raw_steps):
            where = ("steps", index)
            step_data = check.mapping(raw_step, where, f"step {index + 1}")
            if step_data is None:
                continue
            check.unknown_keys(step_data, _STEP_KEYS, where)
            sid = check.unique_id(step_data, where, seen_ids, "step", index)
            label = check.text(step_data, "label", where)
            suds_value = step_data.get("expected_suds")
            if "expected_suds" not in step_data:
                check.report(where, "missing required field 'expected_suds'")
                suds = 0
            elif (isinstance(suds_value, bool) or not isinstance(suds_value, int)
                  or not 0 <= suds_value <= 100):
                check.report((*where, "expected_suds"),
                             f"'expected_suds' must be a whole number from 0 to 100, "
                             f"not {suds_value!r}")
                suds = 0
            else:
                suds = suds_value
            params: dict[str, ParamValue] = {}
            ranges: dict[str, tuple[float, float]] = {}
            if scene is not None:
                params = _scene_params(check, scene, step_data.get("params", {}),
                                       (*where, "params"))
                if "intensity" in step_data:
                    ranges = _intensity_ranges(check, scene, step_data["intensity"],
                                               (*where, "intensity"))
            prompt = check.text(step_data, "expectancy_prompt", where, required=False)
            notes = check.text(step_data, "notes", where, required=False)
            events: tuple[tuple[str, float], ...] = ()
            if scene is not None and "events" in step_data:
                events = _step_events(check, scene, step_data["events"], (*where, "events"))
            steps.append(Step(sid, label, suds, params, ranges, prompt, notes, events))
    _clinical_checks(check, steps)
    plan = (_questionnaire_plan(check, top["questionnaires"]) if "questionnaires" in top
            else QuestionnairePlan())
    if intensity_checks and scene is not None and scene.has_stimulus:
        _intensity_checks(check, scene, steps)

    if any(p.severity == "error" for p in check.problems) or scene is None:
        return None, check.problems
    return (
        Hierarchy(hid, title, scene.name, calm_name, baseline, rule, alerts, tuple(steps),
                  description, source.path, plan, scene.events),
        check.problems,
    )


def parse_hierarchy(text: str, path: str = "<string>",
                    scenes: Mapping[str, SceneSpec] | None = None
                    ) -> tuple[Hierarchy | None, list[Problem]]:
    """Parse and validate hierarchy YAML text. Returns (hierarchy or None, problems)."""
    try:
        data, source = load_yaml_text(text, path)
    except YamlSyntaxError as exc:
        return None, [Problem(exc.path, exc.line, "error", exc.message)]
    return _build(data, source, scenes if scenes is not None else discover_scenes())


def validate_file(path: Path, scenes: Mapping[str, SceneSpec] | None = None,
                  *, intensity_checks: bool = False) -> tuple[Hierarchy | None, list[Problem]]:
    """Problems of a hierarchy file; ``intensity_checks`` adds a warning for each step whose
    intensity slider changes nothing (``vrexposure validate``)."""
    loaded = load_yaml_checked(path)
    if isinstance(loaded, list):
        return None, loaded
    return _build(*loaded, scenes if scenes is not None else discover_scenes(), intensity_checks)


def load_yaml_checked(path: Path) -> tuple[Any, SourceMap] | list[Problem]:
    """A YAML file and its source map, or the problem (file:line) that stops reading it."""
    try:
        return load_yaml_file(path)
    except YamlSyntaxError as exc:
        return [Problem(exc.path, exc.line, "error", exc.message)]
    except OSError as exc:
        return [Problem(str(path), 1, "error", f"cannot read file: {exc.strerror}")]


def load_hierarchy(path: Path, scenes: Mapping[str, SceneSpec] | None = None) -> Hierarchy:
    """Load a hierarchy file; raises :class:`HierarchyError` if it has errors."""
    hierarchy, problems = validate_file(Path(path), scenes)
    if hierarchy is None:
        raise HierarchyError([p for p in problems if p.severity == "error"] or problems)
    return hierarchy


def hierarchy_to_dict(hierarchy: Hierarchy) -> dict[str, Any]:
    """A plain-data form (recorded in the XDF header so a recording is self-contained)."""
    return {
        "id": hierarchy.id,
        "title": hierarchy.title,
        "description": hierarchy.description,
        "scene": hierarchy.scene,
        "calm_scene": hierarchy.calm_scene,
        "baseline": {"duration_s": hierarchy.baseline.duration_s,
                     "scene": hierarchy.baseline.scene,
                     "params": dict(hierarchy.baseline.params)},
        "advance_rule": {
            "suds_drop_pct": hierarchy.advance_rule.suds_drop_pct,
            "min_time_in_step_s": hierarchy.advance_rule.min_time_in_step_s,
            "max_time_in_step_s": hierarchy.advance_rule.max_time_in_step_s,
            "expectancy_violation": hierarchy.advance_rule.expectancy_violation,
            "auto_advance": hierarchy.advance_rule.auto_advance,
        },
        "alerts": {"rise_bpm": hierarchy.alerts.rise_bpm, "rise_sd": hierarchy.alerts.rise_sd,
                   "sustain_s": hierarchy.alerts.sustain_s},
        "steps": [
            {"id": s.id, "label": s.label, "expected_suds": s.expected_suds,
             "params": dict(s.params),
             "intensity": {k: [lo, hi] for k, (lo, hi) in s.intensity.items()},
             **({"expectancy_prompt": s.expectancy_prompt} if s.expectancy_prompt else {}),
             **({"notes": s.notes} if s.notes else {}),
             **({"events": [{"name": n, "at_s": t} for n, t in s.events]} if s.events else {})}
            for s in hierarchy.steps
        ],
        **({"questionnaires": {
            "before": list(hierarchy.questionnaires.before),
            "after": list(hierarchy.questionnaires.after),
            "ssq_rise_alert": hierarchy.questionnaires.ssq_rise_alert}}
           if hierarchy.questionnaires != QuestionnairePlan() else {}),
    }


def hierarchy_from_dict(data: Mapping[str, Any], scenes: Mapping[str, SceneSpec] | None = None,
                        origin: str = "<recording>") -> Hierarchy:
    """Rebuild a hierarchy from :func:`hierarchy_to_dict` output (validated again)."""
    import yaml

    class _NoAliases(yaml.SafeDumper):
        # Shared objects would be written as anchors, which hierarchy files refuse.
        def ignore_aliases(self, data: Any) -> bool:
            return True

    text = yaml.dump(dict(data), Dumper=_NoAliases, sort_keys=False)
    hierarchy, problems = parse_hierarchy(text, origin, scenes)
    if hierarchy is None:
        raise HierarchyError(problems)
    return hierarchy
