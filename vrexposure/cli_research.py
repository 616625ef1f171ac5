"""``vrexposure replay|report|progress|export|lsl``: tools for researchers and supervisors.

Standalone click commands; ``vrexposure/cli.py`` registers them with
``main.add_command``. Long jobs show a progress bar on stderr (only on a terminal).
"""

from __future__ import annotations

import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

import click

from .cli_common import base_port_option, client_curve, endpoints_from, network_options
from .config import ConfigError, load_config


def _config(path: str | None) -> dict[str, Any]:
    try:
        return load_config(Path(path) if path else None)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


def _bar(total: float | None, unit: str, desc: str) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit=unit, desc=desc, file=sys.stderr, disable=None,
                dynamic_ncols=True, leave=True,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} {unit} "
                           "[{elapsed}<{remaining}{postfix}]" if unit == "s" else None)


def _stop_on_sigterm(stop: Any) -> None:
    signal.signal(signal.SIGTERM, lambda *_: stop())


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise click.BadParameter(f"'{text}' is not WIDTHxHEIGHT (e.g. 1280x720)") from None
    if not (16 <= width <= 7680 and 16 <= height <= 4320):
        raise click.BadParameter(f"{text}: size out of range")
    return width, height


# --------------------------------------------------------------------------- replay


@click.command("replay")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--speed", type=float, default=1.0, show_default=True,
              help="Playback speed (2 = twice as fast).")
@click.option("--from", "from_s", type=float, default=None,
              help="Start at this session time (s).")
@click.option("--to", "to_s", type=float, default=None, help="Stop at this session time (s).")
@click.option("--as-fast-as-possible", "afap", is_flag=True,
              help="Ignore timing; as fast as the slowest consumer reads (nothing dropped).")
@click.option("--wait/--no-wait", default=True, show_default=True,
              help="Start the clock when the first consumer (panel, renderer, LSL gateway) "
                   "has connected.")
@click.option("--hold", is_flag=True,
              help="At the end keep showing the last state until Ctrl-C.")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False),
              help="Settings file (network ports).")
@base_port_option
@click.option("--frames", "frames_dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="Render the patient's view to numbered PNGs in DIR "
                                 "(offscreen; no sockets).")
@click.option("--fps", type=float, default=10.0, show_default=True,
              help="Frames per second of session time for --frames/--video.")
@click.option("--video", "video_file", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Encode the rendered view to FILE.mp4 (needs ffmpeg).")
@click.option("--size", "size_text", default="640x360", show_default=True,
              help="Frame size for --frames/--video, WIDTHxHEIGHT.")
def replay_command(file: Path, speed: float, from_s: float | None, to_s: float | None,
                   afap: bool, wait: bool, hold: bool, config_path: str | None,
                   base_port: int | None, frames_dir: Path | None, fps: float,
                   video_file: Path | None, size_text: str) -> None:
    """Replay a recorded session on the session host's sockets (read-only), or re-render
    the patient's view with --frames/--video.

    Panels, renderers and the LSL gateway attach to the replay as to a live session;
    every command but ping/get_state/heartbeat is refused.
    """
    from .replay import ReplayError

    config = _config(config_path)
    if frames_dir is not None or video_file is not None:
        _render(file, config, frames_dir, video_file, fps, _size(size_text), from_s, to_s)
        return
    from .replay import Replayer

    endpoints = endpoints_from(config, None, base_port)
    bar = None

    def progress(t_s: float, samples: int) -> None:
        if bar is not None:
            bar.n = max(0.0, min(bar.total, t_s - start))
            bar.set_postfix_str(f"{samples:,} samples", refresh=False)
            bar.refresh()

    try:
        replayer = Replayer(file, endpoints, speed=speed, start_s=from_s, end_s=to_s,
                            as_fast_as_possible=afap, wait_for_subscriber=wait, hold=hold,
                            on_progress=progress)
    except (ReplayError, ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
    schedule = replayer.schedule
    start = schedule.start_s
    pace = "as fast as possible" if afap else f"at {speed:g}× speed"
    click.echo(f"replaying {file.name} (patient {replayer.metadata.get('patient_id', '?')}) "
               f"from {schedule.start_s:.1f} s to {schedule.end_s:.1f} s {pace}, read-only"
               + (" — the recording was cut short" if replayer.recording.truncated else ""))
    click.echo(f"listening: feed {endpoints.feed}, host feed {endpoints.host_feed}, "
               f"control {endpoints.control}", err=True)
    if schedule.skipped_streams:
        click.echo(f"not replayed: {', '.join(schedule.skipped_streams)}", err=True)
    if wait:
        click.echo("waiting for a consumer to connect (panel, renderer, LSL gateway; "
                   "--no-wait to start now)…", err=True)
    _stop_on_sigterm(replayer.request_stop)
    bar = _bar(max(1e-3, schedule.end_s - schedule.start_s), "s", "replay")
    try:
        stats = replayer.run()
    except KeyboardInterrupt:
        replayer.close()
        stats = replayer.stats
    finally:
        bar.close()
    late = "" if afap else f", at most {stats.max_late_s * 1000:.0f} ms late"
    click.echo(f"replayed {stats.messages:,} messages ({stats.samples:,} samples) in "
               f"{stats.wall_s:.1f} s{late}; commands refused: {stats.commands_refused}")


def _render(file: Path, config: dict[str, Any], frames_dir: Path | None,
            video_file: Path | None, fps: float, size: tuple[int, int],
            from_s: float | None, to_s: float | None) -> None:
    from .replay import ReplayError
    from .replay_render import VideoUnavailable, encode_video, ffmpeg_path, render_frames

    if video_file is not None and ffmpeg_path() is None:
        raise click.ClickException(
            "--video needs ffmpeg, which is not installed: install it (e.g. 'apt install "
            "ffmpeg'), or write PNG frames with --frames DIR")
    temporary = None
    if frames_dir is None:
        temporary = tempfile.TemporaryDirectory(prefix="vrexposure-frames-")
        frames_dir = Path(temporary.name)
    bar = _bar(None, "frame", "rendering")

    def on_frame(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    try:
        result = render_frames(file, frames_dir, fps=fps, width=size[0], height=size[1],
                               start_s=from_s, end_s=to_s, config=config, on_frame=on_frame)
        bar.close()
        click.echo(f"{len(result.frames)} frames ({result.start_s:.1f}–{result.end_s:.1f} s "
                   f"at {fps:g} fps, head from {result.pose_source or 'no pose'}) "
                   + (f"in {frames_dir}" if temporary is None else ""))
        if video_file is not None:
            encode_video(frames_dir, fps, video_file)
            click.echo(f"video: {video_file}")
    except (ReplayError, VideoUnavailable, ValueError, OSError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        bar.close()
        if temporary is not None:
            temporary.cleanup()


# --------------------------------------------------------------------------- reports


@click.command("report")
@click.argument("files", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="Folder for the HTML and JSON (default: beside each FILE).")
def report_command(files: tuple[Path, ...], out_dir: Path | None) -> None:
    """Session report of each FILE: HTML with plots and a per-step table, plus a JSON summary."""
    from .report import write_report

    stages = ["reading the recording", "computing the numbers", "drawing the figures",
              "writing the report"]
    failed = 0
    for file in files:
        bar = _bar(len(stages), "step", "report")

        def progress(stage: str, bar: Any = bar) -> None:
            bar.set_description_str(stage, refresh=False)
            bar.update(1 if stage != stages[0] else 0)

        try:
            written = write_report(file, out_dir, progress=progress)
            bar.update(bar.total - bar.n)
        except (OSError, ValueError) as exc:
            failed += 1
            click.echo(f"Error: {_with_path(file, exc)}", err=True)
            continue
        finally:
            bar.close()
        click.echo(written.report.text())
        click.echo(f"report: {written.html}\nsummary: {written.json}")
    if failed:
        raise click.ClickException(f"{failed} of {len(files)} recording(s) could not be "
                                   "reported (see above)")


def _with_path(file: Path, exc: Exception) -> str:
    """The error, naming the file once (many of our errors already start with its path)."""
    text = str(exc)
    return text if text.startswith(str(file)) else f"{file}: {text}"


@click.command("progress")
@click.argument("folder", required=False,
                type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--patient", "patient_id", required=True, help="Pseudonymous patient id.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="Folder for the HTML and JSON (default: FOLDER, or the "
                                 "recordings' folder).")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False),
              help="Settings file (database.url).")
def progress_command(folder: Path | None, patient_id: str, out_dir: Path | None,
                     config_path: str | None) -> None:
    """Progress across a patient's sessions: peak SUDS per step, highest step, habituation.

    Reads the recordings in FOLDER, or without FOLDER those the clinic database indexes."""
    from .report import find_sessions, sessions_of, write_progress

    indexed: list[Path] | None = None
    if folder is None:
        from .cli_clinic import indexed_recordings_or_exit

        indexed, folder = indexed_recordings_or_exit(_config(config_path), patient_id)
        found, _ = sessions_of(indexed, patient_id)
    else:
        found, _ = find_sessions(folder, patient_id)
    if not found:
        raise click.ClickException(f"no recordings of patient {patient_id} in {folder}")
    bar = _bar(len(found), "session", "sessions")
    try:
        files = write_progress(folder, patient_id, out_dir,
                               on_file=lambda path: bar.update(1), files=indexed)
    except (OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        bar.close()
    for skipped in files.progress.skipped:
        click.echo(f"not read: {skipped}", err=True)
    for number, s in enumerate(files.progress.sessions, start=1):
        highest = "—" if s.highest_step is None else f"{s.highest_step + 1} {s.highest_step_id}"
        click.echo(f"{number:>3}  {s.started_utc[:16]}  highest step {highest}"
                   + ("  (cut short)" if s.cut_short else ""))
    click.echo(f"progress: {files.html}\nsummary: {files.json}")


# --------------------------------------------------------------------------- export


@click.command("export")
@click.argument("file", type=click.Path(exists=True, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["csv", "bids", "fhir", "parquet"]),
              required=True,
              help="csv: one CSV per stream plus events; bids: BIDS physio and events; "
                   "fhir: the questionnaires as a FHIR R4 Bundle (FILE may also be a "
                   "stand-alone .questionnaire.json, or a questionnaire .yaml definition); "
                   "parquet: every recording under FILE (a folder) as one dataset "
                   "partitioned by patient and session.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              required=True, help="Output folder (for bids: the dataset root).")
@click.option("--session", "session", default=None,
              help="BIDS session label (default: the recording's number among the "
                   "patient's recordings in its folder).")
@click.option("--from-database", is_flag=True,
              help="parquet: the recordings the clinic database indexes under FILE, each "
                   "checked against its indexed checksum.")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False),
              help="Settings file (database.url, for --from-database).")
def export_command(file: Path, fmt: str, out_dir: Path, session: str | None,
                   from_database: bool, config_path: str | None) -> None:
    """Export a recording as CSV files, into a BIDS dataset, or its questionnaires as FHIR;
    or a folder of recordings as a Parquet dataset."""
    from .export import export_bids, export_csv
    from .xdf import read_xdf

    if fmt == "parquet":
        from .cli_clinic import export_parquet_command

        export_parquet_command(file, out_dir, from_database, _config(config_path))
        return
    if file.is_dir():
        raise click.BadParameter(f"{file} is a folder: {fmt} exports one recording",
                                 param_hint="FILE")
    if fmt == "fhir":
        _export_fhir(file, out_dir)
        return

    try:
        recording = read_xdf(file)
    except (OSError, ValueError) as exc:
        raise click.ClickException(_with_path(file, exc)) from None
    n_streams = len(recording.streams) + 1
    bar = _bar(n_streams, "stream", f"export {fmt}")

    def progress(name: str) -> None:
        bar.set_postfix_str(name, refresh=False)
        bar.update(1)

    try:
        if fmt == "csv":
            result = export_csv(file, out_dir, recording=recording, progress=progress)
        else:
            result = export_bids(file, out_dir, session=session, recording=recording,
                                 progress=progress)
    except (OSError, ValueError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        bar.close()
    for note in result.notes:
        click.echo(note)
    click.echo(f"{len(result.files)} files in {result.out_dir}"
               + (" (the recording was cut short)" if recording.truncated else ""))


def _export_fhir(file: Path, out_dir: Path) -> None:
    from .export import export_fhir
    from .questionnaires import QuestionnaireError

    try:
        result = export_fhir(file, out_dir)
    except (OSError, ValueError, RuntimeError, QuestionnaireError) as exc:
        raise click.ClickException(str(exc)) from exc
    for note in result.notes:
        click.echo(note)
    click.echo(f"FHIR bundle: {result.files[0]}")


# --------------------------------------------------------------------------- LSL


@click.command("lsl")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False),
              help="Settings file.")
@network_options
@click.option("--topics", default=None,
              help="Comma-separated topic prefixes to forward, e.g. 'hr,ecg' "
                   "(default: all; events always).")
@click.option("--source-id-prefix", "source_prefix", default="vrexposure", show_default=True,
              help="Outlets' LSL source_id is PREFIX-<topic>; make it unique per room.")
@click.option("--duration", "duration_s", type=float, default=None,
              help="Stop after this many seconds (default: until Ctrl-C).")
def lsl_command(config_path: str | None, host_address: str | None, base_port: int | None,
                topics: str | None, source_prefix: str, duration_s: float | None) -> None:
    """Republish the live streams as Lab Streaming Layer outlets (for LabRecorder)."""
    from .lsl_gateway import LslGateway, LslUnavailable, describe, parse_topics

    config = _config(config_path)
    endpoints = endpoints_from(config, host_address, base_port)
    try:
        gateway = LslGateway(endpoints, topics=parse_topics(topics), source_prefix=source_prefix,
                             on_outlet=lambda spec: click.echo(describe(spec), err=True),
                             curve=client_curve(config))
    except LslUnavailable as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"LSL gateway: forwarding {endpoints.feed} and {endpoints.host_feed} "
               "to LSL outlets (Ctrl-C to stop)")
    _stop_on_sigterm(gateway.request_stop)
    try:
        gateway.run(duration_s)
    except KeyboardInterrupt:
        pass
    finally:
        gateway.close()
    counts = ", ".join(f"{name} {n:,}" for name, n in sorted(gateway.counters.items()))
    click.echo(f"forwarded: {counts or 'nothing'}")


__all__ = ["export_command", "lsl_command", "progress_command", "replay_command",
           "report_command"]
