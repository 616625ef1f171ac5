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
@click.option("--step", "step_number", type=int, default=None,
              help="Step number, 1 = the first step (with --out).")
@click.option("--intensity", type=click.FloatRange(0.0, 1.0), default=0.5, show_default=True,
              help="Within-step intensity from 0 to 1.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="PNG file to write (one step).")
@click.option("--sheet", "sheet_path", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Contact sheet PNG: every step at intensity 0 and 1, with "
                                 "label and expected SUDS (for review before a session).")
@click.option("--width", type=click.IntRange(16, 8192), default=None,
              help="Picture width [default: 1280, 384 per picture of a sheet].")
@click.option("--height", type=click.IntRange(16, 8192), default=None,
              help="Picture height [default: 720, 216 per picture of a sheet].")
def snapshot_command(hierarchy_name: str, step_number: int | None, intensity: float,
                     out_path: Path | None, sheet_path: Path | None, width: int | None,
                     height: int | None) -> None:
    """Render one hierarchy step offscreen and write a PNG (--step, --out), or a contact
    sheet of every step at intensity 0 and 1 (--sheet)."""
    from .hierarchy import HierarchyError, load_hierarchy
    from .plugins import discover_scenes

    try:
        hierarchy = load_hierarchy(hierarchy_path(hierarchy_name))
    except HierarchyError as exc:
        raise click.ClickException(f"invalid hierarchy:\n{exc}") from exc
    if sheet_path is not None:
        from .render.snapshot import contact_sheet

        try:
            written = contact_sheet(hierarchy, discover_scenes(), sheet_path,
                                    width or 384, height or 216)
        except RuntimeError as exc:
            raise click.ClickException(str(exc).splitlines()[0]) from None
        click.echo(f"{written}: {hierarchy.scene}, {len(hierarchy.steps)} steps at intensity "
                   "0 and 1")
        if out_path is None:
            return
    if step_number is None or out_path is None:
        raise click.UsageError("give --step and --out for one picture, or --sheet")
    width, height = width or 1280, height or 720
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


@click.command("check-scenes")
@click.argument("hierarchy_names", metavar="[HIERARCHY]...", nargs=-1)
@click.option("--config", "config_path", type=click.Path(exists=True),
              help="Settings file (its plugins.scene_dirs add the clinic's own scenes).")
@click.option("--size", "size_px", type=click.IntRange(64, 2048), default=256, show_default=True,
              help="Side of the square check render in pixels (angles do not depend on it).")
@click.option("--fov", "fov_deg", type=click.FloatRange(30.0, 150.0), default=100.0,
              show_default=True, help="Headset field of view per eye, degrees.")
@click.option("--strict", is_flag=True, help="Warnings (grading) fail too.")
def check_scenes_command(hierarchy_names: tuple[str, ...], config_path: str | None,
                         size_px: int, fov_deg: float, strict: bool) -> None:
    """Render every step of each hierarchy (default: all built-in) at intensity 0 and 1
    from the patient's eye and check it: the stimulus is visible (angular size vs the
    scene's floor), intensity changes it, steps are graded, no flat frame, no camera in
    geometry, ground under the patient, no overlapping people/props, no z-fighting.
    """
    from .hierarchy import HierarchyError, load_hierarchy
    from .plugins import builtin_hierarchies, discover_scenes
    from .render.engine import RenderEngine
    from .scene_check import SceneChecker, report_lines

    config = config_or_exit(config_path)
    scene_dirs = [Path(d) for d in config.get("plugins", {}).get("scene_dirs", [])]
    scenes = discover_scenes(scene_dirs)
    paths = [hierarchy_path(n) for n in hierarchy_names] or builtin_hierarchies()
    hierarchies = []
    for path in paths:
        try:
            hierarchies.append(load_hierarchy(path, scenes))
        except HierarchyError as exc:
            raise click.ClickException(f"{path}: invalid hierarchy:\n{exc}") from exc
    errors = warnings = 0
    try:
        engine = RenderEngine("offscreen", 64, 64, scene_dirs=scene_dirs, multisamples=0)
    except RuntimeError as exc:
        raise click.ClickException(str(exc).splitlines()[0]) from None
    with engine, SceneChecker(engine, size_px, fov_deg) as checker:
        for path, hierarchy in zip(paths, hierarchies, strict=True):
            click.echo(f"{path}: scene '{hierarchy.scene}', {len(hierarchy.steps)} steps")
            steps, findings = checker.check_hierarchy(hierarchy, scenes)
            for line in report_lines(steps):
                click.echo("  " + line)
            for finding in findings:
                click.echo(f"  {finding}", err=finding.severity == "error")
            errors += sum(f.severity == "error" for f in findings)
            warnings += sum(f.severity == "warning" for f in findings)
    click.echo(f"{len(paths)} hierarchy(ies): {errors} error(s), {warnings} warning(s)")
    if errors or (strict and warnings):
        sys.exit(1)


@click.group()
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def main(verbose: int) -> None:
    """The renderer's commands on their own (normally: ``vrexposure render|snapshot``)."""
    logging.basicConfig(level=max(logging.DEBUG, logging.WARNING - 10 * verbose),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


main.add_command(render_command)
main.add_command(snapshot_command)
main.add_command(check_scenes_command)

if __name__ == "__main__":
    main()
