"""Helpers shared by the ``vrexposure`` subcommands (config and hierarchy look-up)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .config import ConfigError, load_config
from .hierarchy import Hierarchy, HierarchyError, load_hierarchy
from .plugins import builtin_dir, builtin_hierarchies


def config_or_exit(path: str | Path | None) -> dict[str, Any]:
    """Settings from ``path`` (or the defaults); a bad file is a clear error, not a traceback."""
    try:
        return load_config(Path(path) if path else None)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


def hierarchy_path(name_or_path: str) -> Path:
    """A hierarchy file given as a path or as a built-in name (e.g. ``acrophobia``)."""
    path = Path(name_or_path)
    if path.exists():
        return path
    builtin = builtin_dir("hierarchies") / f"{name_or_path}.yaml"
    if builtin.exists():
        return builtin
    names = ", ".join(p.stem for p in builtin_hierarchies())
    raise click.ClickException(f"no hierarchy file '{name_or_path}' (built-in: {names})")


def hierarchy_or_exit(name_or_path: str) -> Hierarchy:
    try:
        return load_hierarchy(hierarchy_path(name_or_path))
    except HierarchyError as exc:
        raise click.ClickException(f"invalid hierarchy:\n{exc}") from exc


def client_curve(config: dict[str, Any]) -> Any:
    """This machine's CurveZMQ credentials from config, or None on a loopback set-up."""
    from .security import KeyStoreError, client_credentials

    sec = config.get("security", {})
    if not sec.get("keys_dir") or not sec.get("client_name"):
        return None
    try:
        return client_credentials(Path(sec["keys_dir"]), str(sec["client_name"]))
    except KeyStoreError as exc:
        raise click.ClickException(str(exc)) from exc
