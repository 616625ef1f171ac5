"""``vrexposure sensor`` and ``vrexposure sim-device``: a serial sensor and its simulator.

Standalone click commands; ``vrexposure/cli.py`` registers them with ``main.add_command``.
"""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path
from typing import Any

import click

from .cli_common import endpoints_from, network_options
from .config import ConfigError, load_config
from .plugins import PluginError, discover_sensors
from .sensor_api import DriverSpec


def _drivers() -> dict[str, DriverSpec]:
    try:
        return discover_sensors()
    except PluginError as exc:
        raise click.ClickException(str(exc)) from exc


def _driver(name: str) -> DriverSpec:
    drivers = _drivers()
    if name not in drivers:
        raise click.ClickException(f"no sensor driver '{name}' (found: {', '.join(drivers)})")
    return drivers[name]


def _exit_on_sigterm() -> None:
    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


@click.command("sensor")
@click.option("--device", "device", help="Driver name (see --list).")
@click.option("--port", help="Serial port, e.g. /dev/ttyUSB0 or /dev/rfcomm0.")
@click.option("--source-id", help="Source name on the bridge (default: the driver name).")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False),
              help="Configuration file.")
@network_options
@click.option("--list", "list_drivers", is_flag=True, help="List the sensor drivers found.")
def sensor_command(device: str | None, port: str | None, source_id: str | None,
                   config_path: str | None, host_address: str | None,
                   base_port: int | None, list_drivers: bool) -> None:
    """Read a serial sensor and publish its samples to the session host."""
    if list_drivers:
        for name, spec in sorted(_drivers().items()):
            note = " (Bluetooth LE, not a serial port)" \
                if spec.extras.get("transport") == "ble" else ""
            click.echo(f"{name:24s} {spec.title}{note}")
        return
    if not device or not port:
        raise click.UsageError("--device and --port are required (or --list)")
    from .sensor_runtime import SensorRuntime

    try:
        config = load_config(Path(config_path) if config_path else None)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    endpoints = endpoints_from(config, host_address, base_port)
    spec = _driver(device)
    runtime: Any
    try:
        if spec.extras.get("transport") == "ble":
            from .ble import BleHeartRateSource, require_bleak

            try:
                require_bleak()
            except RuntimeError as exc:  # a message and exit code 1, never a hung thread
                raise click.ClickException(f"--device {device}: {exc}") from exc
            # For a Bluetooth LE strap, --port is its address (e.g. from bluetoothctl scan).
            runtime = BleHeartRateSource(spec, port, endpoints, source_id=source_id)
        else:
            runtime = SensorRuntime(spec, port, endpoints, source_id=source_id)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    _exit_on_sigterm()
    click.echo(f"{device} on {port} → {endpoints.publish} as '{runtime.source_id}'",
               err=True)
    runtime.start()
    try:
        while True:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        runtime.stop()


@click.command("sim-device")
@click.argument("name")
@click.option("--recording", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="WFDB record (.dat/.hea, beats from <record>_atr.csv) or PPG .npy file.")
@click.option("--start", "start_s", type=float, default=30.0, show_default=True,
              help="Offset into the recording, s.")
@click.option("--fault", "faults", multiple=True, metavar="KIND[@S][:VALUE]",
              help="Inject a fault S seconds in (default 5): displaced (beat moved by VALUE "
                   "s, default 0.224), garbage (VALUE bytes, default 300), unplug (for VALUE "
                   "s, default 3; the new path is printed), wrong-device (another device's "
                   "frames on this port). Repeatable.")
def sim_device_command(name: str, recording: Path | None, start_s: float,
                       faults: tuple[str, ...]) -> None:
    """Simulate sensor NAME on a pseudo-terminal; prints its path first.

    Recordings come from VREXPOSURE_SHARED_DATA (default ../shared/data beside the
    checkout); without them a synthetic 70 bpm rhythm is played (and logged).
    """
    from .sim_device import Fault, SimDevice

    try:
        parsed = [Fault.parse(f) for f in faults]
        spec = _driver(name)
        wrong = None
        if any(f.kind == "wrong-device" for f in parsed):
            other = "nonin_df2" if name != "nonin_df2" else "zephyr_hxm"
            encoder = _driver(other).encoder
            wrong = encoder() if encoder is not None else None
        device = SimDevice(spec, recording=recording, start_s=start_s, faults=parsed,
                           wrong_encoder=wrong)
    except (ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc

    def announce(path: str) -> None:
        click.echo(path)
        sys.stdout.flush()

    device.on_new_path = announce
    announce(device.path)
    _exit_on_sigterm()
    try:
        device.run()
    except KeyboardInterrupt:
        pass
    finally:
        device.close()
