"""``vrexposure render`` and ``vrexposure snapshot``: the patient's renderer from the command line.

``render_command`` and ``snapshot_command`` are registered in :mod:`vrexposure.cli`;
``python -m vrexposure.cli_render render|snapshot …`` runs them on their own.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from pathlib import Path

import click

from .cli_common import config_or_exit, endpoints_from, hierarchy_path, network_options

log = logging.getLogger(__name__)


@click.command("render")
@click.option("--backend", type=click.Choice(["desktop", "offscreen", "openvr"]),
              default="desktop", show_default=True,
              help="A window (mouse-look, keys), a buffer with no display (head from the "
                   "simulated patient), or an OpenVR headset (optional extra).")
@click.option("--stereo", is_flag=True, help="Side-by-side stereo (desktop, offscreen).")
@click.option("--config", "config_path", type=click.Path(exists=True), help="Settings file.")
@network_options
@click.option("--source", default="main", show_default=True,
              help="Source id of the render.<source> and preview.<source> topics.")
@click.option("--sim-source", default="sim", show_default=True,
              help="Simulated head pose stream pose.<sim-source> (offscreen back-end).")
@click.option("--width", type=click.IntRange(16, 8192), default=1280, show_default=True,
              help="Frame width in pixels (both eyes when stereo).")
@click.option("--height", type=click.IntRange(16, 8192), default=720, show_default=True,
              help="Frame height in pixels.")
@click.option("--fps", "frame_rate_hz", type=float, default=None,
              help="Frame-rate cap (default: 60 offscreen; the display's rate in a window).")
@click.option("--duration", "duration_s", type=float, default=None,
              help="Stop after this many seconds (default: until Ctrl-C or the window closes).")
def render_command(backend: str, stereo: bool, config_path: str | None,
                   host_address: str | None, base_port: int | None, source: str,
                   sim_source: str, width: int, height: int, frame_rate_hz: float | None,
                   duration_s: float | None) -> None:
    """Show the session's scene to the patient: follow the host, publish pose, stats, preview.

    Keys (desktop): Space = pause, Escape or S = STOP; when a SUDS rating is asked
    for, number keys or Left/Right choose and Enter sends.
    """
    from .render.process import OpenVRUnavailable, RendererProcess

    config = config_or_exit(config_path)
    endpoints = endpoints_from(config, host_address, base_port)
    if (backend == "desktop" and sys.platform.startswith("linux")
            and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))):
        raise click.ClickException("the desktop back-end needs a display (DISPLAY is not set); "
                                   "use --backend offscreen")
    if frame_rate_hz is None and backend == "offscreen":
        frame_rate_hz = 60.0
    try:
        renderer = RendererProcess(endpoints, config, backend=backend,  # type: ignore[arg-type]
                                   stereo=stereo, width=width, height=height, source=source,
                                   sim_source=sim_source, frame_rate_hz=frame_rate_hz)
    except OpenVRUnavailable as exc:
        raise click.ClickException(f"openvr back-end unavailable: {exc}") from None
    except RuntimeError as exc:  # no graphics pipe could open a window
        raise click.ClickException(str(exc).splitlines()[0]) from None
    previous = signal.signal(signal.SIGTERM, lambda *_: renderer.request_quit())
    click.echo(f"renderer '{source}' ({backend}{', stereo' if stereo else ''}, "
               f"{renderer.engine.width}x{renderer.engine.height}, {renderer.engine.pipe_name}) "
               f"following {endpoints.host_feed}")
    try:
        renderer.run(duration_s)
    except KeyboardInterrupt:
        pass
    finally:
        frames = renderer.frame
        renderer.close()
        signal.signal(signal.SIGTERM, previous)
    click.echo(f"renderer stopped after {frames} frames")


@click.command("snapshot")
@click.argument("hierarchy_name", metavar="HIERARCHY")
@click.option("--step", "step_number", type=int, required=True,
              help="Step number, 1 = the first step.")
@click.option("--intensity", type=click.FloatRange(0.0, 1.0), default=0.5, show_default=True,
              help="Within-step intensity from 0 to 1.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path),
              required=True, help="PNG file to write.")
@click.option("--width", type=click.IntRange(16, 8192), default=1280, show_default=True,
              help="Picture width in pixels.")
@click.option("--height", type=click.IntRange(16, 8192), default=720, show_default=True,
              help="Picture height in pixels.")
def snapshot_command(hierarchy_name: str, step_number: int, intensity: float, out_path: Path,
                     width: int, height: int) -> None:
    """Render one hierarchy step offscreen and write a PNG."""
    from .hierarchy import HierarchyError, load_hierarchy
    from .plugins import discover_scenes

    try:
        hierarchy = load_hierarchy(hierarchy_path(hierarchy_name))
    except HierarchyError as exc:
        raise click.ClickException(f"invalid hierarchy:\n{exc}") from exc
    count = len(hierarchy.steps)
    if not 1 <= step_number <= count:
        raise click.BadParameter(f"must be from 1 to {count}", param_hint="--step")
    params = hierarchy.step_params(step_number - 1, intensity, discover_scenes())
    from .render.snapshot import snapshot

    try:
        written = snapshot(hierarchy.scene, params, out_path, width, height)
    except RuntimeError as exc:
        raise click.ClickException(str(exc).splitlines()[0]) from None
    step = hierarchy.steps[step_number - 1]
    click.echo(f"{written}: {hierarchy.scene}, step {step_number} '{step.id}' "
               f"at intensity {intensity:.2f}")


@click.group()
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def main(verbose: int) -> None:
    """The renderer's commands on their own (normally: ``vrexposure render|snapshot``)."""
    logging.basicConfig(level=max(logging.DEBUG, logging.WARNING - 10 * verbose),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


main.add_command(render_command)
main.add_command(snapshot_command)

if __name__ == "__main__":
    main()
