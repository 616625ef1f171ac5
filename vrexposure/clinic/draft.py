"""A personalised hierarchy being built with the patient (pure logic; the panel's editor and
``vrexposure hierarchy save`` store the result as a new version).

Starts from a template's YAML; steps are added, removed, reordered and given the patient's own
expected SUDS; :meth:`HierarchyDraft.problems` runs the same rules and clinical warnings as
``vrexposure validate`` on the YAML that would be saved.
"""

from __future__ import annotations

import copy
from typing import Any

import yaml

from ..hierarchy import Hierarchy, Problem, parse_hierarchy


class DraftError(Exception):
    pass


class HierarchyDraft:
    def __init__(self, yaml_text: str, origin: str = "<draft>") -> None:
        try:
            data = yaml.safe_load(yaml_text)
        except yaml.YAMLError as exc:
            raise DraftError(f"{origin}: not YAML: {exc}") from None
        if not isinstance(data, dict) or not isinstance(data.get("steps"), list):
            raise DraftError(f"{origin}: not a hierarchy (no list of steps)")
        self.data: dict[str, Any] = data
        self.origin = origin

    @property
    def steps(self) -> list[dict[str, Any]]:
        steps: list[dict[str, Any]] = self.data["steps"]
        return steps

    def _check(self, index: int) -> None:
        if not 0 <= index < len(self.steps):
            raise DraftError(f"no step {index + 1} (the draft has {len(self.steps)})")

    def move(self, index: int, to: int) -> None:
        self._check(index)
        self._check(to)
        self.steps.insert(to, self.steps.pop(index))

    def remove(self, index: int) -> None:
        self._check(index)
        if len(self.steps) == 1:
            raise DraftError("a hierarchy keeps at least one step")
        del self.steps[index]

    def duplicate(self, index: int) -> int:
        """A copy of step ``index`` right after it (a new situation to adjust); its index."""
        self._check(index)
        step = copy.deepcopy(self.steps[index])
        ids = {str(s.get("id")) for s in self.steps}
        base, number = f"{step.get('id', 'step')}-b", 2
        new_id = base
        while new_id in ids:
            new_id, number = f"{base}{number}", number + 1
        step["id"] = new_id
        self.steps.insert(index + 1, step)
        return index + 1

    def set_expected_suds(self, index: int, suds: int) -> None:
        """The patient's own rating of the step (0-100)."""
        self._check(index)
        if not 0 <= suds <= 100:
            raise DraftError(f"SUDS {suds} is outside 0-100")
        self.steps[index]["expected_suds"] = int(suds)

    def set_label(self, index: int, label: str) -> None:
        self._check(index)
        self.steps[index]["label"] = label

    def set_param(self, index: int, name: str, value: Any) -> None:
        """A scene parameter of the step (checked against the scene by :meth:`problems`)."""
        self._check(index)
        self.steps[index].setdefault("params", {})[name] = value

    def set_params(self, index: int, text: str) -> None:
        """All scene parameters of the step from a YAML flow mapping (as the editor shows)."""
        self._check(index)
        try:
            params = yaml.safe_load(text) if text.strip() else {}
        except yaml.YAMLError as exc:
            raise DraftError(f"scene parameters are not YAML: {exc}") from None
        if not isinstance(params, dict):
            raise DraftError("scene parameters must be a mapping, e.g. {count: 1}")
        self.steps[index]["params"] = params

    def order_by_ratings(self) -> None:
        """Steps by the patient's expected SUDS, lowest first (stable for ties)."""
        self.steps.sort(key=lambda s: int(s.get("expected_suds", 0)))

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.data, sort_keys=False, allow_unicode=True, width=100)

    def validate(self) -> tuple[Hierarchy | None, list[Problem]]:
        return parse_hierarchy(self.to_yaml(), self.origin)

    def problems(self) -> list[Problem]:
        return self.validate()[1]

    def savable(self) -> bool:
        hierarchy, problems = self.validate()
        return hierarchy is not None and not any(p.severity == "error" for p in problems)


def params_text(step: dict[str, Any]) -> str:
    """A step's scene parameters as one line of YAML (``{count: 1, size_cm: 2}``)."""
    params = step.get("params") or {}
    return yaml.safe_dump(params, default_flow_style=True, sort_keys=False,
                          width=10_000).strip()


def starting_yaml(store: Any, patient_id: str, hierarchy_id: str | None = None
                  ) -> tuple[str, str]:
    """What the editor starts from: the patient's current version, else the built-in template
    with ``hierarchy_id`` (the session's); ``(yaml text, origin)``. Raises :class:`DraftError`
    when there is neither."""
    from ..plugins import builtin_hierarchies
    from .store import StoreError

    try:
        row = store.hierarchy(patient_id)
        return row.yaml_text, f"<patient {patient_id} hierarchy v{row.version}>"
    except StoreError:
        pass
    for path in builtin_hierarchies():
        text = path.read_text(encoding="utf-8")
        data = yaml.safe_load(text)
        if hierarchy_id in (path.stem, data.get("id") if isinstance(data, dict) else None):
            return text, str(path)
    raise DraftError(f"patient {patient_id} has no hierarchy of their own and no template "
                     f"'{hierarchy_id}' is built in")


def preview_params(step: dict[str, Any]) -> dict[str, Any]:
    """A step's scene parameters as exposure starts it (intensity 0: each intensity range's
    first value over the step's own value), for the headset while the step is edited."""
    params = dict(step.get("params") or {})
    for name, span in (step.get("intensity") or {}).items():
        if isinstance(span, list | tuple) and len(span) == 2 and isinstance(
                span[0], int | float) and not isinstance(span[0], bool):
            params[str(name)] = span[0]
    return params
