"""The scene plugin API: parameter schemas (pure) and the hooks a renderer calls.

A scene plugin is one Python file in ``scenes/`` (or an extra folder named in
config) that defines a module-level ``SCENE: SceneSpec``. The schema part is
pure data so that hierarchies can be validated without Panda3D installed; the
drawing part (``SceneSpec.factory``) is imported lazily by the renderer.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

ParamType = Literal["float", "int", "bool", "choice"]
ParamValue = float | int | bool | str


@dataclass(frozen=True)
class ParamSpec:
    """One scene parameter: its name, type, range, unit and default."""

    name: str
    type: ParamType
    default: ParamValue
    description: str
    unit: str = ""
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()

    def check(self, value: object) -> str | None:
        """Return a problem description for ``value``, or None when it is valid."""
        if self.type == "bool":
            return None if isinstance(value, bool) else f"must be true or false, not {value!r}"
        if self.type == "choice":
            if value in self.choices:
                return None
            return f"must be one of {', '.join(self.choices)}, not {value!r}"
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"must be a number ({self.type}), not {value!r}"
        if self.type == "int" and not float(value).is_integer():
            return f"must be a whole number, not {value!r}"
        if not math.isfinite(float(value)):
            return f"must be finite, not {value!r}"
        unit = f" {self.unit}" if self.unit else ""
        if self.minimum is not None and value < self.minimum:
            return f"{value}{unit} is below the minimum {self.minimum}{unit}"
        if self.maximum is not None and value > self.maximum:
            return f"{value}{unit} is above the maximum {self.maximum}{unit}"
        return None

    @property
    def interpolable(self) -> bool:
        """Numbers can follow the within-step intensity slider; bools and choices cannot."""
        return self.type in ("float", "int")


@dataclass(frozen=True)
class EventSpec:
    """A stimulus event a therapist can trigger in the moment (a spider drops, a cough).

    ``key``: the panel's keyboard shortcut (one character); ``duration_s``: how long the
    renderer plays it.
    """

    name: str
    label: str
    key: str
    duration_s: float


@dataclass(frozen=True)
class SceneSpec:
    """What a scene plugin declares: its name, its parameters and how to build it."""

    name: str
    title: str
    params: tuple[ParamSpec, ...]
    #: True for scenes with a feared stimulus (look-at / look-away is measured against it).
    has_stimulus: bool = True
    #: Smallest angular size (degrees, equivalent diameter of the largest visible part)
    #: the stimulus must have from the patient's eye at every step (``check-scenes``).
    stimulus_floor_deg: float = 1.0
    #: Stimulus events the scene can play (``trigger_event`` host command, panel buttons).
    events: tuple[EventSpec, ...] = ()
    #: Returns the renderer-side scene object; imported lazily (needs Panda3D).
    factory: Callable[..., Any] | None = field(default=None, compare=False)

    def param(self, name: str) -> ParamSpec | None:
        for spec in self.params:
            if spec.name == name:
                return spec
        return None

    def event(self, name: str) -> EventSpec | None:
        for spec in self.events:
            if spec.name == name:
                return spec
        return None

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.params)

    def defaults(self) -> dict[str, ParamValue]:
        return {spec.name: spec.default for spec in self.params}

    def resolve(self, params: Mapping[str, ParamValue]) -> dict[str, ParamValue]:
        """Defaults overlaid with ``params`` (unknown names are ignored)."""
        resolved = self.defaults()
        resolved.update({k: v for k, v in params.items() if k in resolved})
        return resolved


def float_param(
    name: str,
    default: float,
    minimum: float,
    maximum: float,
    unit: str,
    description: str,
) -> ParamSpec:
    return ParamSpec(name, "float", default, description, unit, minimum, maximum)


def int_param(
    name: str, default: int, minimum: int, maximum: int, unit: str, description: str
) -> ParamSpec:
    return ParamSpec(name, "int", default, description, unit, minimum, maximum)


def bool_param(name: str, default: bool, description: str) -> ParamSpec:
    return ParamSpec(name, "bool", default, description)


def choice_param(name: str, default: str, choices: tuple[str, ...], description: str) -> ParamSpec:
    return ParamSpec(name, "choice", default, description, choices=choices)


def interpolate_params(
    spec: SceneSpec,
    base: Mapping[str, ParamValue],
    ranges: Mapping[str, tuple[float, float]],
    intensity: float,
) -> dict[str, ParamValue]:
    """The scene parameters for a step at a within-step ``intensity`` in [0, 1].

    ``ranges`` maps a numeric parameter to the (low, high) pair the intensity
    slider spans; other parameters keep their step value. Integers round to the
    nearest whole number so that, e.g., a spider count never shows 2.5 spiders.
    """
    level = min(1.0, max(0.0, float(intensity)))
    params = spec.resolve(base)
    for name, (low, high) in ranges.items():
        pspec = spec.param(name)
        if pspec is None or not pspec.interpolable:
            continue
        value = low + (high - low) * level
        params[name] = round(value) if pspec.type == "int" else value
    return params
