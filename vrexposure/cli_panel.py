"""``vrexposure panel``: the therapist's control panel (needs the ``panel`` extra)."""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from .cli_common import endpoints_from, network_options
from .config import ConfigError, load_config


def default_client_id() -> str:
    """A stable id per machine, so a restarted panel is the same controller in the log."""
    host = "".join(c if c.isalnum() or c in "-_" else "-" for c in socket.gethostname())
    return f"panel-{host or 'local'}"[:64]


def clinic_history(config: dict[str, Any]) -> Callable[[str], Any] | None:
    """The patient's course from the clinic record, when there is one (else None)."""
    from .clinic.store import database_exists, database_url

    url = database_url(config)
    if not database_exists(url):
        return None

    def load(patient_id: str) -> Any:
        from .clinic.history import patient_history
        from .clinic.store import StoreError, open_store

        store = open_store(url)
        try:
            return patient_history(store, patient_id)
        except (StoreError, KeyError, LookupError):
            return None  # a patient the record does not know yet
        finally:
            store.close()

    return load


def clinic_editor(config: dict[str, Any]) -> Callable[[str, str], tuple[Any, Any]] | None:
    """(patient id, session's hierarchy id) → (open store, draft) for the panel's hierarchy
    editor, when there is a clinic record (else None: the panel offers no editor)."""
    from .clinic.store import database_exists, database_url

    url = database_url(config)
    if not database_exists(url):
        return None

    def open_draft(patient_id: str, hierarchy_id: str) -> tuple[Any, Any]:
        from .clinic.draft import HierarchyDraft, starting_yaml
        from .clinic.store import open_store

        store = open_store(url)
        try:
            text, origin = starting_yaml(store, patient_id, hierarchy_id)
            return store, HierarchyDraft(text, origin)
        except Exception:
            store.close()
            raise

    return open_draft


@click.command("panel")
@network_options
@click.option("--config", "config_path", type=click.Path(exists=True, path_type=Path),
              default=None, help="Settings file.")
@click.option("--client-id", default=None,
              help="This panel's id in the recording (default: panel-<hostname>).")
@click.option("--observe", is_flag=True,
              help="Read-only: show the session without controlling it (no heartbeat).")
def panel_command(host_address: str | None, base_port: int | None, config_path: Path | None,
                  client_id: str | None, observe: bool) -> None:
    """Open the therapist panel: run, steer and stop the session from one window.

    \b
    Keys: F12 STOP · P pause · Ctrl+Shift+P resume · Ctrl+PgDn/PgUp next/previous
    step · Ctrl+R repeat · Ctrl+Up/Down intensity · digits + Enter SUDS · F1 all keys.
    With a clinic database: the patient's history, and Ctrl+H the hierarchy editor.
    """
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        from .panel.window import run_panel
    except ImportError as exc:  # PySide6 / pyqtgraph missing
        raise click.ClickException(
            f"the panel needs PySide6 and pyqtgraph: pip install 'vrexposure[panel]' ({exc})"
        ) from exc
    if sys.platform.startswith("linux") and not (
            os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
            or os.environ.get("QT_QPA_PLATFORM")):
        raise click.ClickException("no display: set DISPLAY (or QT_QPA_PLATFORM=offscreen)")
    endpoints = endpoints_from(config, host_address, base_port)
    code = run_panel(endpoints, client_id or default_client_id(), read_only=observe,
                     history=clinic_history(config), editor=clinic_editor(config))
    if code:
        sys.exit(code)
