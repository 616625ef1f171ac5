"""The ``vrexposure`` command: one subcommand per job."""

from __future__ import annotations

import difflib
import json
import logging
import math
import signal
import sys
import time
from pathlib import Path
from typing import Any

import click

from . import __version__
from .cli_common import (
    base_port_option,
    client_curve,
    config_or_exit,
    endpoints_from,
    hierarchy_or_exit,
    network_options,
)
from .hierarchy import validate_file

DEFAULT_HIERARCHY = "arachnophobia"


@click.group()
@click.version_option(__version__, prog_name="vrexposure")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def main(verbose: int) -> None:
    """Session controller for virtual-reality exposure therapy."""
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(level=max(logging.DEBUG, level),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--strict", is_flag=True, help="Treat clinical warnings as errors.")
def validate(paths: tuple[Path, ...], strict: bool) -> None:
    """Check hierarchy and questionnaire files (a folder: every *.yaml in it)."""
    files: list[Path] = []
    for path in paths:
        files.extend(sorted(path.glob("*.yaml")) if path.is_dir() else [path])
    errors = warnings = 0
    for path in files:
        if _is_questionnaire(path):
            ok_text, problems = _validate_questionnaire(path)
        else:
            hierarchy, problems = validate_file(path, intensity_checks=True)
            ok_text = (f"{len(hierarchy.steps)} steps, scene '{hierarchy.scene}'"
                       if hierarchy is not None else None)
        for problem in problems:
            click.echo(str(problem), err=problem.severity == "error")
        errors += sum(p.severity == "error" for p in problems)
        warnings += sum(p.severity == "warning" for p in problems)
        if ok_text is not None and not problems:
            click.echo(f"{path}: ok ({ok_text})")
    click.echo(f"{len(files)} file(s): {errors} error(s), {warnings} warning(s)")
    if errors or (strict and warnings):
        sys.exit(1)


def _is_questionnaire(path: Path) -> bool:
    from .questionnaires import is_questionnaire_document

    return is_questionnaire_document(path)


def _validate_questionnaire(path: Path) -> tuple[str | None, list[Any]]:
    from .questionnaires import validate_questionnaire_file

    q, problems = validate_questionnaire_file(path)
    if q is None:
        return None, problems
    kind = "items included" if q.administrable else "scoring only, licensed item text"
    return f"questionnaire '{q.id}', {len(q.items)} items, {kind}", problems


@main.command()
@click.option("--hierarchy", "hierarchy_name", help="Hierarchy YAML file or built-in name.")
@click.option("--patient", "patient_id", default="", help="Pseudonymous patient id (e.g. P017).")
@click.option("--config", "config_path", type=click.Path(exists=True), help="Settings file.")
@click.option("--resume", "resume_path", type=click.Path(exists=True, path_type=Path),
              help="Continue the session recorded in this file.")
@click.option("--bind", "bind_address", default=None,
              help="Address to listen on (off loopback only with --keys).")
@click.option("--keys", "keys_dir", type=click.Path(path_type=Path), default=None,
              help="Key directory: require CurveZMQ and the allow-list.")
@click.option("--recording-dir", type=click.Path(path_type=Path), default=None,
              help="Folder for the recording (default: the config's session.recording_dir).")
@base_port_option
def session(hierarchy_name: str | None, patient_id: str, config_path: str | None,
            resume_path: Path | None, bind_address: str | None, keys_dir: Path | None,
            recording_dir: Path | None, base_port: int | None) -> None:
    """Run the session host (bridge, state machine, recorder, clock).

    The host runs until the session is ended (`vrexposure ctl end`, or End in the panel),
    then closes the recording and exits; Ctrl-C or SIGTERM also close it cleanly.
    """
    from .host import HostError, SessionHost

    config = config_or_exit(config_path)
    endpoints = endpoints_from(config, bind_address, base_port)
    keys = keys_dir or config.get("security", {}).get("keys_dir")
    try:
        if resume_path is not None:
            host = SessionHost(None, patient_id, endpoints, config, resume_from=resume_path,
                               keys_dir=keys)
        else:
            if not patient_id:
                raise click.UsageError("a new session needs --patient (and --hierarchy, "
                                       "unless the patient has one in the clinic database)")
            version = None
            if hierarchy_name:
                hierarchy = hierarchy_or_exit(hierarchy_name)
            else:
                from .cli_clinic import patient_hierarchy_or_exit

                hierarchy, version = patient_hierarchy_or_exit(config, patient_id)
            host = SessionHost(hierarchy, patient_id, endpoints, config,
                               recording_dir=recording_dir, keys_dir=keys,
                               hierarchy_version=version)
    except HostError as exc:
        raise click.ClickException(str(exc)) from exc
    signal.signal(signal.SIGTERM, lambda *_: host.request_stop())
    click.echo(f"session {host.session_id} for patient {host.patient_id}: "
               f"hierarchy '{host.hierarchy.id}', recording {host.recording_path}")
    click.echo(f"listening: publish {endpoints.publish}, feed {endpoints.feed}, "
               f"host feed {endpoints.host_feed}, control {endpoints.control}", err=True)
    try:
        host.run(exit_after_end_s=1.0)
    except KeyboardInterrupt:
        pass
    click.echo(f"recording closed: {host.recording_path}")
    from .cli_clinic import index_after_session

    index_after_session(config, host.recording_path)


_CTL_HELP = """Send a command to the session host and print its answer.

\b
Commands (steps are numbered from 1, as in the panel and the reports):
  state | ping | start-baseline | start-exposure [STEP] | pause | resume | stop
  next | previous | repeat | jump STEP | intensity X (0-1) | suds N (0-100)
  request-suds | expectancy LIKELIHOOD OUTCOME... | outcome yes|no
  marker TEXT... | accept | dismiss | auto-advance on|off
  questionnaire-start ID | questionnaire-answer ITEM N|- | questionnaire-pause on|off
  questionnaire-finish
  end   (ends the session: the host closes the recording and exits)
"""

#: Every word ``ctl`` understands, and the host command it sends.
CTL_COMMANDS: dict[str, str] = {
    "state": "get_state", "ping": "ping", "start_baseline": "start_baseline",
    "start_exposure": "start_exposure", "pause": "pause", "resume": "resume", "stop": "stop",
    "next": "next", "previous": "previous", "repeat": "repeat", "jump": "jump",
    "intensity": "intensity", "suds": "suds", "request_suds": "request_suds",
    "expectancy": "expectancy", "outcome": "expectancy_outcome", "marker": "marker",
    "accept": "accept_suggestion", "dismiss": "dismiss_suggestion",
    "auto_advance": "auto_advance", "end": "end",
    "questionnaire_start": "questionnaire_start", "questionnaire_answer": "questionnaire_answer",
    "questionnaire_pause": "questionnaire_pause", "questionnaire_finish": "questionnaire_finish",
}


def _step_arg(text: str) -> int | str:
    """A step as a person types it: its number from 1, or its id. Sent as a 0-based index."""
    if text.isascii() and text.isdigit():
        number = int(text)
        if number < 1:
            raise click.UsageError(f"steps are numbered from 1, not {text}")
        return number - 1
    return text


def _ctl_command(words: tuple[str, ...]) -> tuple[str, dict[str, Any]]:
    if not words:
        raise click.UsageError("name a command (see --help)")
    word, rest = words[0].replace("-", "_"), list(words[1:])
    if word not in CTL_COMMANDS:
        close = difflib.get_close_matches(word, CTL_COMMANDS, n=1)
        hint = f" (did you mean '{close[0].replace('_', '-')}'?)" if close else ""
        raise click.UsageError(f"unknown command '{words[0]}'{hint}; see 'vrexposure ctl --help'")
    name = CTL_COMMANDS[word]

    def need(count: int) -> None:
        if len(rest) < count:
            raise click.UsageError(f"'{words[0]}' needs {count} argument(s)")

    def number(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise click.UsageError(f"not a number: {text}") from None
        if not math.isfinite(value):
            raise click.UsageError(f"not a number: {text}")
        return value

    if name == "jump":
        need(1)
        return name, {"step": _step_arg(rest[0])}
    if name == "start_exposure" and rest:
        return name, {"step": _step_arg(rest[0])}
    if name == "intensity":
        need(1)
        return name, {"value": number(rest[0])}
    if name == "suds":
        need(1)
        value = number(rest[0])
        return name, {"value": int(value) if value.is_integer() else value}
    if name == "expectancy":
        need(2)
        return name, {"likelihood_pct": int(number(rest[0])), "outcome": " ".join(rest[1:])}
    if name == "expectancy_outcome":
        need(1)
        return name, {"happened": rest[0].lower() in ("yes", "y", "true", "1")}
    if name == "marker":
        need(1)
        return name, {"text": " ".join(rest)}
    if name == "auto_advance":
        need(1)
        return name, {"enabled": rest[0].lower() in ("on", "yes", "true", "1")}
    if name == "questionnaire_start":
        need(1)
        return name, {"id": rest[0]}
    if name == "questionnaire_answer":
        need(2)
        return name, {"item": rest[0],
                      "response": None if rest[1] == "-" else int(number(rest[1]))}
    if name == "questionnaire_pause":
        need(1)
        return name, {"paused": rest[0].lower() in ("on", "yes", "true", "1")}
    if name in ("stop", "pause", "end") and rest:
        return name, {"reason": " ".join(rest)}
    if rest:
        raise click.UsageError(f"'{words[0]}' takes no arguments")
    return name, {}


@main.command(help=_CTL_HELP, context_settings={"ignore_unknown_options": True})
@click.argument("words", nargs=-1)
@click.option("--config", "config_path", type=click.Path(exists=True), help="Settings file.")
@network_options
@click.option("--role", default="therapist", show_default=True,
              type=click.Choice(["therapist", "patient", "observer"]),
              help="The role to send as (a key's role wins off loopback).")
@click.option("--timeout", "timeout_s", default=5.0, show_default=True,
              help="Seconds to keep retrying (STOP retries for at least 60 s).")
@click.option("--skip-baseline", is_flag=True,
              help="With start-exposure from idle: start without a baseline (heart-rate "
                   "alerts stay off; logged).")
def ctl(words: tuple[str, ...], config_path: str | None, host_address: str | None,
        base_port: int | None, role: str, timeout_s: float, skip_baseline: bool) -> None:
    from .client import ControlClient, HostUnreachable

    name, args = _ctl_command(words)
    config = config_or_exit(config_path)
    endpoints = endpoints_from(config, host_address, base_port)
    client = ControlClient(endpoints.control, role, f"ctl-{role}", curve=client_curve(config))
    try:
        if name == "start_exposure" and not skip_baseline:
            phase = client.request("get_state", {}, timeout_s=timeout_s).result.get("phase")
            if phase == "idle":
                raise click.ClickException(
                    "no baseline yet: run 'vrexposure ctl start-baseline' first (it ends by "
                    "itself), or add --skip-baseline to start exposure without one "
                    "(heart-rate alerts stay off)")
        reply = client.request(name, args, timeout_s=max(timeout_s, 60.0)
                               if name == "stop" else timeout_s)
    except HostUnreachable as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        client.close()
    if not reply.ok:
        raise click.ClickException(f"{words[0]} refused: {reply.error}")
    if name == "get_state":
        click.echo(json.dumps(reply.result, indent=2, sort_keys=True))
    elif name == "ping":
        click.echo(f"session time {reply.result['t_s']:.3f} s")
    else:
        click.echo(f"ok {words[0]} (state {reply.state_seq}): "
                   f"{', '.join(reply.result.get('events', [])) or 'no change'}")
        if name == "end":
            click.echo("the session has ended: the host closes the recording and exits")


@main.command()
@click.option("--config", "config_path", type=click.Path(exists=True), help="Settings file.")
@network_options
@click.option("--no-ecg", is_flag=True, help="Publish heart rate and RR only.")
@click.option("--no-suds", is_flag=True, help="Do not answer SUDS prompts.")
@click.option("--duration", "duration_s", type=float, default=None,
              help="Stop after this many seconds (default: until the session ends, the host "
                   "is gone for 10 s, or Ctrl-C).")
@click.option("--source", default="sim", show_default=True, help="Source id in topics.")
def sim(config_path: str | None, host_address: str | None, base_port: int | None,
        no_ecg: bool, no_suds: bool, duration_s: float | None, source: str) -> None:
    """Run the simulated patient against a session host."""
    from .sim import SimSettings, SimulatedPatient

    config = config_or_exit(config_path)
    endpoints = endpoints_from(config, host_address, base_port)
    patient = SimulatedPatient(endpoints, SimSettings.from_config(
        config, ecg=not no_ecg, answer_suds=not no_suds, source=source),
        curve=client_curve(config), host_gone_after_s=10.0).start()
    click.echo(f"simulated patient '{source}' publishing to {endpoints.publish}")
    signal.signal(signal.SIGTERM, lambda *_: patient.stop())
    deadline = None if duration_s is None else time.monotonic() + duration_s
    try:
        while patient.running and (deadline is None or time.monotonic() < deadline):
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        patient.stop()
    if patient.finished_reason:
        click.echo(f"simulated patient stopped: {patient.finished_reason}")
    click.echo(f"published: {patient.published}")


@main.command()
@click.option("--hierarchy", "hierarchy_name", default=DEFAULT_HIERARCHY, show_default=True,
              help="Hierarchy YAML file or built-in name.")
@click.option("--duration", "duration_s", type=float, default=60.0, show_default=True,
              help="Session length in seconds (the hierarchy's times are scaled to fit).")
@click.option("--patient", "patient_id", default="DEMO01", show_default=True,
              help="Pseudonymous patient id of the demo recording.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("sessions"),
              show_default=True, help="Folder for the recording and its summary.")
@click.option("--config", "config_path", type=click.Path(exists=True), help="Settings file.")
@base_port_option
def demo(hierarchy_name: str, duration_s: float, patient_id: str, out_dir: Path,
         config_path: str | None, base_port: int | None) -> None:
    """Run a whole session with a simulated patient and an autopilot therapist."""
    from .demo import run_demo
    from .host import HostError

    config = config_or_exit(config_path)
    endpoints = endpoints_from(config, None, base_port)
    hierarchy = hierarchy_or_exit(hierarchy_name)
    click.echo(f"demo: '{hierarchy.title}' for {duration_s:.0f} s with a simulated patient "
               "(headless)")
    try:
        result = run_demo(hierarchy, config, duration_s=duration_s, out_dir=out_dir,
                          patient_id=patient_id, endpoints=endpoints)
    except HostError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(result.summary.text())
    for line in result.questionnaires:
        click.echo(line)
    click.echo(f"Summary: {result.summary_path}")


@main.group()
def keys() -> None:
    """Create and manage CurveZMQ keys and the allow-list (roles per key)."""


def _keys_dir_option(func: Any) -> Any:
    return click.option("--dir", "directory", type=click.Path(path_type=Path),
                        default=Path("keys"), show_default=True,
                        help="The key directory (keep it on the host machine).")(func)


@keys.command("init")
@_keys_dir_option
def keys_init(directory: Path) -> None:
    """Create the host key pair and an empty allow-list."""
    from .security import KeyStoreError, init_keys

    try:
        init_keys(directory)
    except KeyStoreError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"host keys created in {directory} (host.key is public, host.key_secret is not)")


@keys.command("add")
@click.argument("name")
@click.option("--role", required=True,
              type=click.Choice(["therapist", "patient", "observer", "renderer", "sensor"]),
              help="What the key may do: therapist (all commands), patient (pause, STOP, "
                   "SUDS), observer (read only), renderer and sensor (publish data).")
@_keys_dir_option
def keys_add(name: str, role: str, directory: Path) -> None:
    """Create a client key pair and allow it with a role."""
    from .security import KeyStoreError, add_client

    try:
        client = add_client(directory, name, role)
    except KeyStoreError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"added {client.name} ({client.role}); copy {directory}/clients/{name}.key_secret "
               f"and {directory}/host.key to that machine")


@keys.command("list")
@_keys_dir_option
def keys_list(directory: Path) -> None:
    """List the allowed clients and their roles."""
    from .security import KeyStoreError, load_allow_list

    try:
        clients = load_allow_list(directory)
    except KeyStoreError as exc:
        raise click.ClickException(str(exc)) from exc
    for client in sorted(clients.values(), key=lambda c: c.name):
        status = "REVOKED" if client.revoked else "allowed"
        click.echo(f"{client.name:<20}{client.role:<12}{status:<9}{client.public_key}")


@keys.command("revoke")
@click.argument("name")
@_keys_dir_option
def keys_revoke(name: str, directory: Path) -> None:
    """Revoke a client's key (takes effect for new connections at once)."""
    from .security import KeyStoreError, revoke_client

    try:
        revoke_client(directory, name)
    except KeyStoreError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"revoked {name}")


def _register_plugins_commands() -> None:
    from .cli_clinic import db_command, hierarchy_command, patient_command
    from .cli_panel import panel_command
    from .cli_questionnaire import questionnaire_command
    from .cli_render import check_scenes_command, render_command, snapshot_command
    from .cli_research import (
        export_command,
        lsl_command,
        progress_command,
        replay_command,
        report_command,
    )
    from .cli_sensors import sensor_command, sim_device_command

    main.add_command(sensor_command, "sensor")
    main.add_command(sim_device_command, "sim-device")
    main.add_command(render_command, "render")
    main.add_command(snapshot_command, "snapshot")
    main.add_command(check_scenes_command, "check-scenes")
    main.add_command(panel_command, "panel")
    main.add_command(replay_command, "replay")
    main.add_command(report_command, "report")
    main.add_command(progress_command, "progress")
    main.add_command(export_command, "export")
    main.add_command(lsl_command, "lsl")
    main.add_command(questionnaire_command, "questionnaire")
    main.add_command(db_command, "db")
    main.add_command(patient_command, "patient")
    main.add_command(hierarchy_command, "hierarchy")


_register_plugins_commands()

if __name__ == "__main__":
    main()
