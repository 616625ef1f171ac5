"""Shared fixtures: free loopback ports, a short hierarchy, a running session host."""

from __future__ import annotations

import os
import random
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vrexposure.config import Endpoints, load_config
from vrexposure.hierarchy import Hierarchy, load_hierarchy
from vrexposure.host import SessionHost

ROOT = Path(__file__).resolve().parents[1]
HIERARCHIES = ROOT / "hierarchies"
#: The shared recordings (MIT-BIH, NSTDB, ...): ``$VREXPOSURE_SHARED_DATA`` or
#: ``../shared/data`` beside the checkout.
SHARED_DATA = Path(os.environ.get("VREXPOSURE_SHARED_DATA") or ROOT.parent / "shared" / "data")


def pytest_configure(config: pytest.Config) -> None:
    """CI always has the shared data: there, its absence stops the run instead of letting
    the tests that need it skip."""
    if os.environ.get("CI") == "true" and not SHARED_DATA.is_dir():
        raise pytest.UsageError(f"CI needs the shared data set at {SHARED_DATA} "
                                "(../shared/data beside the checkout, or VREXPOSURE_SHARED_DATA)")


def require_shared_data(*parts: str) -> Path:
    """A path inside the shared data set. Without it a developer's run skips with the reason;
    CI (``CI=true``), which always has the data, fails instead of hiding the tests."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(_missing(path))
        pytest.skip(_missing(path))
    return path


def needs_shared_data(*parts: str) -> pytest.MarkDecorator:
    """The marker form of :func:`require_shared_data` (for a test or a module): skips a
    developer's run without the data; in CI the test runs and fails on the missing file."""
    path = SHARED_DATA.joinpath(*parts)
    return pytest.mark.skipif(not path.exists() and os.environ.get("CI") != "true",
                              reason=_missing(path))


def _missing(path: Path) -> str:
    return (f"shared data not found: {path} (put the shared data set at ../shared/data "
            "beside the checkout, or set VREXPOSURE_SHARED_DATA to its folder)")

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_endpoints() -> Endpoints:
    """Four consecutive free loopback ports (the host's sockets)."""
    for _ in range(200):
        base = random.randrange(20_000, 60_000, 4)
        if all(_port_free(base + i) for i in range(4)):
            return Endpoints.loopback(base)
    raise RuntimeError("no free ports")


@pytest.fixture
def endpoints() -> Endpoints:
    return free_endpoints()


@pytest.fixture
def config() -> dict[str, Any]:
    return load_config()


@pytest.fixture
def hierarchy() -> Hierarchy:
    """The arachnophobia hierarchy with times shrunk for tests (baseline 1 s, min step 0.5 s)."""
    return load_hierarchy(HIERARCHIES / "arachnophobia.yaml").with_scaled_times(1 / 240)


@pytest.fixture
def host(hierarchy: Hierarchy, endpoints: Endpoints, config: dict[str, Any],
         tmp_path: Path) -> Iterator[SessionHost]:
    session_host = SessionHost(hierarchy, "P001", endpoints, config,
                               recording_dir=tmp_path / "sessions").start()
    yield session_host
    session_host.close()


#: Length of the demo session recorded once for the research-tool tests.
DEMO_SECONDS = 30.0


def shared_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Record the demo session once per test run (modules share it; none modifies it)."""
    from vrexposure.demo import run_demo

    shared = tmp_path_factory.getbasetemp() / "research-demo"
    marker = shared / "recording.txt"
    if not marker.exists():
        shared.mkdir(exist_ok=True)
        demo_hierarchy = load_hierarchy(HIERARCHIES / "arachnophobia.yaml")
        result = run_demo(demo_hierarchy, load_config(), duration_s=DEMO_SECONDS,
                          out_dir=shared / "sessions", endpoints=free_endpoints())
        marker.write_text(str(result.recording))
    return Path(marker.read_text())


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared demo recording (see :func:`shared_demo`)."""
    return shared_demo(tmp_path_factory)


@pytest.fixture(scope="module")
def demo(demo_file: Path) -> Any:
    """The shared demo recording, read (an ``XdfFile``)."""
    from vrexposure.xdf import read_xdf

    return read_xdf(demo_file)


@pytest.fixture(autouse=True)
def _render_tests_start_at_the_same_scene_time() -> Iterator[None]:
    """Every test sees the shared render engine at scene time 0 with the head level.

    One engine serves the whole run (Panda3D allows one window system per process);
    without this, time-driven motion (clouds, walking spiders, the view outside a
    cabin) would depend on which tests ran before.
    """
    from tests import render_fixtures

    engine = render_fixtures._ENGINE
    if engine is not None:
        engine.time_s = 0.0
        engine.set_head_pose((0.0, 0.0, 0.0), (0.0, 0.0, 0.0))
    yield
