"""Helpers shared by the ``vrexposure`` subcommands (config and hierarchy look-up)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .config import ConfigError, Endpoints, load_config
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


#: Environment variable for ``--base-port``: lets a whole set of commands (a second session
#: on one machine, the README's own test) move to other ports without a config file.
BASE_PORT_ENV = "VREXPOSURE_BASE_PORT"


def base_port_option(func: Any) -> Any:
    """``--base-port`` (or ``$VREXPOSURE_BASE_PORT``): the session's four ports from BASE."""
    return click.option(
        "--base-port", type=click.IntRange(1024, 65532), default=None, envvar=BASE_PORT_ENV,
        show_envvar=True,
        help="First of the session's four ports (publish, feed, control, host feed = "
             "BASE..BASE+3), to run beside another session; default: the config's ports.",
    )(func)


def network_options(func: Any) -> Any:
    """``--host`` and ``--base-port`` for every command that talks to a session host."""
    func = base_port_option(func)
    return click.option(
        "--host", "host_address", default=None,
        help="Address of the session host (default: the config's network.host).",
    )(func)


def endpoints_from(config: dict[str, Any], host_address: str | None,
                   base_port: int | None) -> Endpoints:
    """The session's endpoints: the config's, at ``host_address`` and/or ``base_port``."""
    endpoints = Endpoints.from_config(config, host_address)
    if base_port is None:
        return endpoints
    address = endpoints.control.split("://", 1)[1].rsplit(":", 1)[0]
    return Endpoints.at(address, base_port)
