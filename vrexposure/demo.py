"""``vrexposure demo``: a whole session on one machine with a simulated patient.

Starts the session host, the simulated patient and the autopilot therapist
(library objects in one process, talking over real loopback sockets), runs for
``duration_s`` with the hierarchy's times scaled to fit, and prints a summary
read back from the recording.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .autopilot import AutopilotSettings, AutopilotTherapist
from .config import Endpoints, write_config
from .hierarchy import Hierarchy, QuestionnairePlan
from .host import SessionHost
from .sim import SimSettings, SimulatedPatient
from .summary import SessionSummary, summarize

log = logging.getLogger(__name__)

#: Long enough for about ten heart-rate values at the usual 1 Hz.
DEMO_BASELINE_S = 10.0
#: The demo gives the SSQ before and after when the hierarchy asks for nothing itself.
DEMO_QUESTIONNAIRES = QuestionnairePlan(before=("ssq",), after=("ssq",), ssq_rise_alert=30.0)


@dataclass
class DemoResult:
    recording: Path
    summary: SessionSummary
    summary_path: Path
    #: One line per questionnaire given (e.g. "SSQ before session: total 0").
    questionnaires: list[str] = field(default_factory=list)


def demo_time_scale(hierarchy: Hierarchy, duration_s: float) -> float:
    """Scale factor so that a 10 s baseline plus about eight minimum step times fit the demo."""
    rule = hierarchy.advance_rule
    nominal_s = 8 * max(rule.min_time_in_step_s, 30.0)
    return min(1.0, 0.8 * max(1.0, duration_s - DEMO_BASELINE_S) / nominal_s)


def display_available() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _start_child(args: list[str], config_file: Path, log_file: Path) -> subprocess.Popen[bytes]:
    """Another ``vrexposure`` process on the demo's sockets; its output goes to ``log_file``."""
    with open(log_file, "ab") as log_handle:
        return subprocess.Popen([sys.executable, "-m", "vrexposure", *args,
                                 "--config", str(config_file)],
                                stdout=log_handle, stderr=subprocess.STDOUT)


def _stop_child(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=15)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def run_demo(hierarchy: Hierarchy, config: dict[str, Any], *, duration_s: float,
             out_dir: Path, patient_id: str = "DEMO01", endpoints: Endpoints | None = None,
             ecg: bool = True, renderer: bool = True, panel: bool | None = None) -> DemoResult:
    """Run a whole session. The renderer runs offscreen unless a display is available,
    where it opens the patient's window; ``panel`` (default: when a display is
    available) also opens the therapist's panel."""
    scale = demo_time_scale(hierarchy, duration_s)
    scaled = hierarchy.with_scaled_times(scale, min_baseline_s=DEMO_BASELINE_S)
    if scaled.questionnaires == QuestionnairePlan():
        scaled = replace(scaled, questionnaires=DEMO_QUESTIONNAIRES)
    endpoints = endpoints or Endpoints.from_config(config)
    out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    host = SessionHost(scaled, patient_id, endpoints, config, recording_dir=out_dir).start()
    children: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="vrexposure-demo-") as scratch:
        child_config = write_config(Path(scratch) / "config.yaml", endpoints)
        child_log = Path(scratch) / "children.log"
        if renderer:
            backend = "desktop" if display_available() else "offscreen"
            children.append(_start_child(["render", "--backend", backend, "--fps", "30",
                                          "--duration", str(duration_s + 10)],
                                         child_config, child_log))
        if panel if panel is not None else display_available():
            children.append(_start_child(["panel"], child_config, child_log))
        sim_settings = SimSettings.from_config(config, ecg=ecg)
        sim_settings.habituation_tau_s *= scale
        patient = SimulatedPatient(endpoints, sim_settings).start()
        try:
            autopilot = AutopilotTherapist(endpoints, AutopilotSettings(
                suds_interval_s=max(1.0, 30.0 * scale)))
            autopilot.run(duration_s)
        finally:
            patient.stop()
            for child in children:
                _stop_child(child)
            host.close()
        failed = [c.args for c in children if c.returncode not in (0, -signal.SIGTERM)]
        if failed:
            log.warning("a demo process ended with an error: %s\n%s", failed,
                        child_log.read_text(errors="replace")[-2000:])
    summary = summarize(host.recording_path)
    summary_path = host.recording_path.with_suffix(".summary.json")
    summary_path.write_text(json.dumps(summary.to_dict(), indent=2))
    summary_path.chmod(0o600)
    return DemoResult(host.recording_path, summary, summary_path,
                      _questionnaire_lines(host.recording_path))


def _questionnaire_lines(path: Path) -> list[str]:
    from .questionnaires.records import from_recording

    lines = []
    for a in from_recording(path):
        values = {s.id: a.value(s.id) for s in a.questionnaire.scores}  # published order
        scores = ", ".join(f"{k} " + ("missing" if v is None else f"{v:g}")
                           for k, v in values.items())
        lines.append(f"{a.questionnaire.title} ({a.occasion.replace('_', ' ')}): {scores}")
    return lines
