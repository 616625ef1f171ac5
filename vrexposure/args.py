"""One strict parser for command arguments (pure).

Every command argument that reaches the state machine is parsed here, so a
hostile or careless client meets the same rules everywhere: integers are
``int`` values or strings of ASCII digits only (``"²"`` and ``"٣"`` are not
numbers), floats are finite, text is bounded, choices are from a fixed set.
Every failure is an :class:`ArgError` (a ``ValueError``) with a message for
the sender; nothing else is raised for any input.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping
from typing import Any

#: ASCII digits only, optionally signed: ``str.isdigit`` and ``int()`` accept
#: superscripts and other scripts' digits, which a command must not.
_INT_RE = re.compile(r"^[+-]?[0-9]{1,18}$")
_FLOAT_RE = re.compile(r"^[+-]?([0-9]{1,18}(\.[0-9]{0,18})?|\.[0-9]{1,18})([eE][+-]?[0-9]{1,3})?$")
DEFAULT_MAX_CHARS = 500

_MISSING = object()


class ArgError(ValueError):
    """An argument that is missing, of the wrong type or out of range."""


def _get(args: Mapping[str, Any], name: str, default: Any) -> Any:
    if name in args:
        return args[name]
    if default is _MISSING:
        raise ArgError(f"needs the argument '{name}'")
    return default


def to_int(value: Any, name: str, low: int, high: int) -> int:
    """``value`` as an integer in [low, high]: an int, a whole float or ASCII digits."""
    if isinstance(value, bool):
        raise ArgError(f"'{name}' must be a whole number, not {value!r}")
    if isinstance(value, str):
        if not _INT_RE.match(value):
            raise ArgError(f"'{name}' must be a whole number in ASCII digits, not {value[:20]!r}")
        number = int(value)
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
        number = int(value)
    else:
        raise ArgError(f"'{name}' must be a whole number, not {_short(value)}")
    if not low <= number <= high:
        raise ArgError(f"'{name}' must be from {low} to {high}, not {number}")
    return number


def to_float(value: Any, name: str, low: float, high: float) -> float:
    """``value`` as a finite float in [low, high]: a number or a plain decimal string."""
    if isinstance(value, bool):
        raise ArgError(f"'{name}' must be a number, not {value!r}")
    if isinstance(value, str):
        if not _FLOAT_RE.match(value):
            raise ArgError(f"'{name}' must be a number, not {value[:20]!r}")
        number = float(value)
    elif isinstance(value, int | float):
        number = float(value)
    else:
        raise ArgError(f"'{name}' must be a number, not {_short(value)}")
    if not math.isfinite(number):
        raise ArgError(f"'{name}' must be a number (finite), not {number}")
    if not low <= number <= high:
        raise ArgError(f"'{name}' must be from {low} to {high}, not {number}")
    return number


def to_str(value: Any, name: str, max_chars: int = DEFAULT_MAX_CHARS, *,
           allow_empty: bool = False) -> str:
    """``value`` as text of at most ``max_chars`` characters (outer spaces removed)."""
    if not isinstance(value, str):
        raise ArgError(f"'{name}' must be text, not {_short(value)}")
    if len(value) > max_chars:
        raise ArgError(f"'{name}' is longer than {max_chars} characters")
    text = value.strip()
    if not text and not allow_empty:
        raise ArgError(f"'{name}' must be non-empty text")
    if any(ord(c) < 32 and c not in "\t\n" for c in text):
        raise ArgError(f"'{name}' contains control characters")
    return text


def to_bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise ArgError(f"'{name}' must be true or false")
    return value


def parse_int(args: Mapping[str, Any], name: str, low: int, high: int,
              default: Any = _MISSING) -> Any:
    value = _get(args, name, default)
    return value if name not in args else to_int(value, name, low, high)


def parse_float(args: Mapping[str, Any], name: str, low: float, high: float,
                default: Any = _MISSING) -> Any:
    value = _get(args, name, default)
    return value if name not in args else to_float(value, name, low, high)


def parse_str(args: Mapping[str, Any], name: str, max_chars: int = DEFAULT_MAX_CHARS,
              default: Any = _MISSING, *, allow_empty: bool = False) -> Any:
    value = _get(args, name, default)
    return value if name not in args else to_str(value, name, max_chars,
                                                 allow_empty=allow_empty)


def parse_bool(args: Mapping[str, Any], name: str, default: Any = _MISSING) -> Any:
    value = _get(args, name, default)
    return value if name not in args else to_bool(value, name)


def parse_choice(args: Mapping[str, Any], name: str, choices: Collection[str],
                 default: Any = _MISSING) -> Any:
    value = _get(args, name, default)
    if name not in args:
        return value
    if not isinstance(value, str) or value not in choices:
        raise ArgError(f"'{name}' must be one of {', '.join(sorted(choices))}, "
                       f"not {_short(value)}")
    return value


def _short(value: Any) -> str:
    """A bounded description of a bad value (never its whole contents)."""
    if isinstance(value, dict | list | tuple | bytes):
        return f"a {type(value).__name__}"
    return repr(value)[:40]


__all__ = ["ArgError", "parse_bool", "parse_choice", "parse_float", "parse_int", "parse_str",
           "to_bool", "to_float", "to_int", "to_str"]
