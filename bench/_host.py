"""A session host as its own process, for benchmarks (shared by bridge.py and soak.py)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from vrexposure.config import Endpoints, write_config


def start_host(endpoints: Endpoints, patient_id: str, prefix: str
               ) -> tuple[subprocess.Popen[str], Path]:
    """Start ``vrexposure session`` on ``endpoints``; returns it (ready) and its directory."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    config = write_config(workdir / "config.yaml", endpoints,
                          session={"recording_dir": str(workdir)})
    host = subprocess.Popen([sys.executable, "-m", "vrexposure", "session", "--config",
                             str(config), "--hierarchy", "arachnophobia", "--patient",
                             patient_id],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert host.stdout is not None
    host.stdout.readline()  # the host prints its first line once it is listening
    return host, workdir
