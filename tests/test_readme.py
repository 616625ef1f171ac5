"""The README's commands, run as written (on private ports): a reader who types them gets no
error and no traceback.

The blocks under "Running a session on one machine" and "After a session" run as bash
scripts in an empty folder with the real ``vrexposure`` command; ``VREXPOSURE_BASE_PORT``
moves every command of the block to free ports, which is the README's own advice for a
second session on one machine.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT, free_endpoints

README = (ROOT / "README.md").read_text(encoding="utf-8")


def readme_block(heading: str) -> str:
    """The first ```bash block under ``## heading``."""
    section = README.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```bash\n(.*?)```", section, re.S)
    assert match, f"no bash block under '{heading}'"
    return match.group(1)


class BlockRun:
    """What a block printed (read from files: background commands keep writing to them)."""

    def __init__(self, cwd: Path, name: str, returncode: int) -> None:
        self.out_path, self.err_path = cwd / f".{name}.out", cwd / f".{name}.err"
        self.returncode = returncode

    @property
    def stdout(self) -> str:
        return self.out_path.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.err_path.read_text(errors="replace")


def run_block(block: str, cwd: Path, env: dict[str, str], timeout_s: float, name: str
              ) -> tuple[BlockRun, list[int]]:
    """Run ``block`` with bash -e; returns its output and the pids left in the background."""
    pids_file = cwd / f".{name}-pids"
    script = f"set -euo pipefail\n{block}\njobs -p > {pids_file}\n"
    with open(cwd / f".{name}.out", "w") as out, open(cwd / f".{name}.err", "w") as err:
        done = subprocess.run(["bash", "-c", script], cwd=cwd, env=env, stdout=out,
                              stderr=err, stdin=subprocess.DEVNULL, timeout=timeout_s)
    pids = [int(p) for p in pids_file.read_text().split()] if pids_file.exists() else []
    return BlockRun(cwd, name, done.returncode), pids


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_gone(pid: int, timeout_s: float) -> bool:
    """Reap ``pid`` if it is our child's child (it is not: poll until it is gone)."""
    for _ in range(int(timeout_s * 10)):
        if not alive(pid):
            return True
        subprocess.run(["sleep", "0.1"], check=True)
    return not alive(pid)


@pytest.fixture
def reader_env(tmp_path: Path) -> dict[str, str]:
    """A shell like a reader's after ``pip install .``: ``vrexposure`` on PATH."""
    bin_dir = Path(sys.executable).parent
    assert (bin_dir / "vrexposure").exists(), f"no vrexposure command in {bin_dir}"
    (tmp_path / "hierarchies").symlink_to(ROOT / "hierarchies")
    base_port = int(free_endpoints().publish.rsplit(":", 1)[1])
    env = {k: v for k, v in os.environ.items() if not k.startswith("VREXPOSURE_")}
    env.update(PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
               VREXPOSURE_BASE_PORT=str(base_port), QT_QPA_PLATFORM="offscreen")
    env.pop("DISPLAY", None)
    return env


@pytest.mark.slow
def test_readme_session_and_after_session_blocks_run_as_written(
        tmp_path: Path, reader_env: dict[str, str]) -> None:
    session, leftover = run_block(readme_block("Running a session on one machine"), tmp_path,
                                  reader_env, timeout_s=240, name="session")
    try:
        assert session.returncode == 0, session.stdout[-3000:] + session.stderr[-3000:]
        assert "Traceback" not in session.stdout + session.stderr, session.stderr[-3000:]
        # `ctl end` is the documented end: the host closes its recording and exits, and the
        # simulated patient stops with it.
        deadline_s = 30.0
        for pid in leftover:
            for _ in range(int(deadline_s * 10)):
                if not alive(pid):
                    break
                subprocess.run(["sleep", "0.1"], check=True)
            assert not alive(pid), f"process {pid} still running after 'ctl end'"
    finally:
        for pid in leftover:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
    assert '"phase": "safe"' in session.stdout  # `ctl state` after `ctl stop`
    recordings = sorted((tmp_path / "sessions").glob("P017_*.xdf"))
    assert len(recordings) == 1 and recordings[0].stat().st_size > 10_000

    after, leftover = run_block(readme_block("After a session"), tmp_path, reader_env,
                                timeout_s=240, name="after")
    try:
        assert after.returncode == 0, after.stdout[-3000:] + after.stderr[-3000:]
        assert leftover, "the replay should still be running in the background"
        # Give the replay a moment to start listening, then end it as a reader would.
        for _ in range(100):
            if "listening" in after.stderr or not all(alive(p) for p in leftover):
                break
            subprocess.run(["sleep", "0.1"], check=True)
        assert all(alive(p) for p in leftover), "the replay exited on its own"
    finally:
        # A background job of a script ignores SIGINT (bash does that); SIGTERM is how a
        # reader's `kill %1` ends it.
        for pid in leftover:
            if alive(pid):
                os.kill(pid, signal.SIGTERM)
        stopped = [wait_gone(pid, 15.0) for pid in leftover]
        for pid in leftover:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
    assert all(stopped), "the replay did not stop on SIGTERM"
    assert "Traceback" not in after.stdout + after.stderr, after.stderr[-3000:]
    assert list((tmp_path / "reports").glob("P017_*.html"))
    reports = sorted(p.name for p in (tmp_path / "reports").iterdir())
    assert "P017.progress.html" in reports and "P017.progress.json" in reports, reports
    assert (tmp_path / "bids" / "dataset_description.json").exists()
    shutil.rmtree(tmp_path / "sessions")


def test_readme_starts_with_the_two_commands() -> None:
    first_block = re.search(r"```bash\n(.*?)```", README, re.S)
    assert first_block
    lines = [line.split("#")[0].strip() for line in first_block.group(1).splitlines()]
    assert lines == ["pip install . && vrexposure demo", "bash scripts/test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "bash scripts/test" in ci
