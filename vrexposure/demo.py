"""``vrexposure demo``: a whole session on one machine with a simulated patient.

Starts the session host, the simulated patient and the autopilot therapist
(library objects in one process, talking over real loopback sockets), runs for
``duration_s`` with the hierarchy's times scaled to fit, and prints a summary
read back from the recording.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .autopilot import AutopilotSettings, AutopilotTherapist
from .config import Endpoints
from .hierarchy import Hierarchy
from .host import SessionHost
from .sim import SimSettings, SimulatedPatient
from .summary import SessionSummary, summarize

log = logging.getLogger(__name__)

#: Long enough for about ten heart-rate values at the usual 1 Hz.
DEMO_BASELINE_S = 10.0


@dataclass
class DemoResult:
    recording: Path
    summary: SessionSummary
    summary_path: Path


def demo_time_scale(hierarchy: Hierarchy, duration_s: float) -> float:
    """Scale factor so that a 10 s baseline plus about eight minimum step times fit the demo."""
    rule = hierarchy.advance_rule
    nominal_s = 8 * max(rule.min_time_in_step_s, 30.0)
    return min(1.0, 0.8 * max(1.0, duration_s - DEMO_BASELINE_S) / nominal_s)


def run_demo(hierarchy: Hierarchy, config: dict[str, Any], *, duration_s: float,
             out_dir: Path, patient_id: str = "DEMO01", endpoints: Endpoints | None = None,
             ecg: bool = True) -> DemoResult:
    scale = demo_time_scale(hierarchy, duration_s)
    scaled = hierarchy.with_scaled_times(scale, min_baseline_s=DEMO_BASELINE_S)
    endpoints = endpoints or Endpoints.from_config(config)
    host = SessionHost(scaled, patient_id, endpoints, config, recording_dir=out_dir).start()
    sim_settings = SimSettings.from_config(config, ecg=ecg)
    sim_settings.habituation_tau_s *= scale
    patient = SimulatedPatient(endpoints, sim_settings).start()
    try:
        autopilot = AutopilotTherapist(endpoints, AutopilotSettings(
            suds_interval_s=max(1.0, 30.0 * scale)))
        autopilot.run(duration_s)
    finally:
        patient.stop()
        host.close()
    summary = summarize(host.recording_path)
    summary_path = host.recording_path.with_suffix(".summary.json")
    summary_path.write_text(json.dumps(summary.to_dict(), indent=2))
    summary_path.chmod(0o600)
    return DemoResult(host.recording_path, summary, summary_path)
