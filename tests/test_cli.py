"""The command line as a person meets it: clear errors, 1-based steps, every option explained,
a session that ends when told to, and several sessions side by side on one machine."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from vrexposure.cli import main
from vrexposure.config import Endpoints
from vrexposure.hierarchy import Hierarchy
from vrexposure.host import HostError, SessionHost

from .conftest import free_endpoints


def _commands(group: click.Group, path: tuple[str, ...] = ("vrexposure",)
              ) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))
        else:
            yield (*path, name), command


def test_every_command_and_option_has_help_text() -> None:
    missing = [f"{' '.join(path)} {param.opts[0] if isinstance(param, click.Option) else ''}"
               for path, command in _commands(main)
               for param in [None, *command.params]
               if (param is None and not command.help)
               or (isinstance(param, click.Option) and not param.help and not param.hidden)]
    assert not missing, missing


def test_network_commands_all_take_base_port() -> None:
    commands = dict(_commands(main))
    for name in ("session", "sim", "ctl", "panel", "render", "sensor", "replay", "lsl", "demo"):
        options = {opt for p in commands[("vrexposure", name)].params for opt in p.opts}
        assert "--base-port" in options, name


def test_endpoints_at_a_base_port_follow_the_default_port_order() -> None:
    at = Endpoints.at("127.0.0.1", 6000)
    assert (at.publish, at.feed, at.control, at.host_feed) == (
        "tcp://127.0.0.1:6000", "tcp://127.0.0.1:6001", "tcp://127.0.0.1:6002",
        "tcp://127.0.0.1:6003")


def ctl(endpoints: Endpoints, *words: str) -> Any:
    base = endpoints.publish.rsplit(":", 1)[1]
    return CliRunner().invoke(main, ["ctl", "--base-port", base, "--timeout", "3", *words])


def test_unknown_ctl_command_is_named_with_a_suggestion(endpoints: Endpoints) -> None:
    result = ctl(endpoints, "stat")
    assert result.exit_code == 2
    assert "unknown command 'stat'" in result.output and "did you mean 'state'" in result.output
    assert "may not" not in result.output


def test_unknown_command_reaches_the_host_as_unknown_not_forbidden(host: SessionHost) -> None:
    from vrexposure.client import ControlClient

    client = ControlClient(host.endpoints.control, "patient", "remote")
    try:
        assert client.request("frobnicate").error == "unknown command 'frobnicate'"
    finally:
        client.close()


def test_start_exposure_from_idle_asks_for_skip_baseline(host: SessionHost) -> None:
    refused = ctl(host.endpoints, "start-exposure")
    assert refused.exit_code == 1 and "--skip-baseline" in refused.output
    assert host.current_state().phase.value == "idle"
    started = ctl(host.endpoints, "start-exposure", "--skip-baseline")
    assert started.exit_code == 0, started.output
    assert host.current_state().phase.value == "exposure"


def test_steps_are_numbered_from_one_in_ctl(host: SessionHost, hierarchy: Hierarchy) -> None:
    assert ctl(host.endpoints, "start-exposure", "2", "--skip-baseline").exit_code == 0
    assert host.current_state().step_index == 1
    assert ctl(host.endpoints, "jump", "4").exit_code == 0
    assert host.current_state().step_index == 3
    assert ctl(host.endpoints, "jump", str(len(hierarchy.steps))).exit_code == 0
    assert host.current_state().step_index == len(hierarchy.steps) - 1
    zero = ctl(host.endpoints, "jump", "0")
    assert zero.exit_code == 2 and "numbered from 1" in zero.output


def test_a_host_that_cannot_listen_leaves_no_recording(
        host: SessionHost, hierarchy: Hierarchy, config: dict[str, Any], tmp_path: Path) -> None:
    folder = tmp_path / "second"
    with pytest.raises(HostError, match="cannot listen"):
        SessionHost(hierarchy, "P002", host.endpoints, config, recording_dir=folder)
    assert list(folder.glob("*.xdf")) == []


def test_report_takes_several_files_and_names_a_bad_one_once(tmp_path: Path,
                                                              demo_file: Path) -> None:
    bad = tmp_path / "notes.xdf"
    bad.write_text("not a recording")
    result = CliRunner().invoke(main, ["report", str(demo_file), str(bad), "--out",
                                       str(tmp_path / "reports")])
    assert result.exit_code == 1
    assert result.output.count(str(bad)) == 1, result.output
    assert "1 of 2 recording(s) could not be reported" in result.output
    assert len(list((tmp_path / "reports").glob("*.html"))) == 1


def test_export_of_a_file_that_is_not_xdf_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "table.csv"
    bad.write_text("a,b\n1,2\n")
    result = CliRunner().invoke(main, ["export", str(bad), "--format", "csv", "--out",
                                       str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "not an XDF file" in result.output and "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.mark.slow
def test_two_sessions_side_by_side_with_base_port(tmp_path: Path, hierarchy: Hierarchy) -> None:
    """Two hosts, each with its own simulated patient, on one machine; `ctl end` ends each
    host and its patient, and each recording holds only its own session."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VREXPOSURE_")}
    short = tmp_path / "short.yaml"
    short.write_text((Path(__file__).parents[1] / "hierarchies" / "arachnophobia.yaml")
                     .read_text())
    procs: list[subprocess.Popen[bytes]] = []
    bases = []
    try:
        for patient in ("P101", "P102"):
            base = free_endpoints().publish.rsplit(":", 1)[1]
            bases.append(base)
            folder = tmp_path / patient
            folder.mkdir()
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "vrexposure", "session", "--hierarchy", str(short),
                 "--patient", patient, "--base-port", base, "--recording-dir", str(folder)],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "vrexposure", "sim", "--base-port", base, "--no-ecg"],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for base in bases:
            ping = CliRunner().invoke(main, ["ctl", "--base-port", base, "--timeout", "30",
                                             "ping"])
            assert ping.exit_code == 0, ping.output
        for base in bases:
            assert CliRunner().invoke(main, ["ctl", "--base-port", base,
                                             "start-baseline"]).exit_code == 0
        time.sleep(2.0)
        for base in bases:
            assert CliRunner().invoke(main, ["ctl", "--base-port", base, "end"]).exit_code == 0
        for proc in procs:
            assert proc.wait(timeout=30) == 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    from vrexposure.xdf import read_xdf

    for patient in ("P101", "P102"):
        (recording,) = (tmp_path / patient).glob("*.xdf")
        assert recording.name.startswith(patient)
        assert patient in read_xdf(recording).header["vrexposure"]
