"""The OpenVR back-end's own code, driven by a stand-in headset (no runtime exists here).

Only ``openvr`` (constants) and ``P3DOpenVR`` (the panda3d-openvr driver) are
replaced; everything behind them is real: :class:`OpenVRHead`, the renderer
process, the shared offscreen engine and a real session host. The stand-in
turns the head like a tracked headset and presses controller buttons.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any, ClassVar

import pytest

from tests.render_fixtures import shared_engine
from vrexposure.client import ControlClient
from vrexposure.config import Endpoints, load_config
from vrexposure.host import SessionHost
from vrexposure.render.engine import RenderEngine
from vrexposure.render.process import OpenVRHead, RendererProcess
from vrexposure.state import Phase

pytestmark = pytest.mark.render

FAKE_OPENVR = SimpleNamespace(
    VREvent_ButtonPress=200, VREvent_ButtonUnpress=201,
    k_EButton_ApplicationMenu=1, k_EButton_Grip=2, k_EButton_SteamVR_Touchpad=32,
    k_EButton_SteamVR_Trigger=33, TrackingUniverseSeated=0, shutdown=lambda: None)


class StandInHeadset:
    """What P3DOpenVR offers the renderer: an anchor that follows the head, events, state."""

    instances: ClassVar[list[StandInHeadset]] = []

    def __init__(self, base: Any, verbose: bool = False) -> None:
        self.base = base
        self.hpr_deg = (0.0, 0.0, 0.0)
        self.touchpad_x = 0.0
        self.tracking_space: int | None = None
        self.handler: Callable[[Any], None] | None = None
        self.compositor = SimpleNamespace(setTrackingSpace=self._set_space)
        self.vr_system = SimpleNamespace(getControllerState=self._controller_state)
        self.queued: list[Any] = []
        StandInHeadset.instances.append(self)

    def init(self, near: float, far: float, root: Any, msaa: int, replicate: int) -> None:
        self.hmd_anchor = root.attachNewNode("hmd-anchor")

    def _set_space(self, space: int) -> None:
        self.tracking_space = space

    def _controller_state(self, index: int) -> tuple[bool, Any]:
        return True, SimpleNamespace(rAxis=[SimpleNamespace(x=self.touchpad_x, y=0.0)])

    def register_event_handler(self, handler: Callable[[Any], None]) -> None:
        self.handler = handler

    def press(self, button: int, kind: int = FAKE_OPENVR.VREvent_ButtonPress) -> None:
        self.queued.append(SimpleNamespace(eventType=kind, trackedDeviceIndex=3,
                                           data=SimpleNamespace(
                                               controller=SimpleNamespace(button=button))))

    def update_poses_task(self, task: Any) -> int:
        """Each frame: the tracked head pose, then the queued controller events."""
        self.hmd_anchor.setHpr(*self.hpr_deg)
        assert self.handler is not None
        events, self.queued = self.queued, []
        for event in events:
            self.handler(event)
        return int(task.cont)


def make_head(engine: RenderEngine, on_button: Callable[[str], None]) -> OpenVRHead:
    return OpenVRHead(engine, on_button, openvr_module=FAKE_OPENVR, p3d_openvr=StandInHeadset)


@pytest.fixture
def vr_renderer(endpoints: Endpoints) -> Iterator[tuple[RendererProcess, StandInHeadset]]:
    engine = shared_engine()
    time_s, auto_frame = engine.time_s, engine.auto_frame
    engine.auto_frame = False  # as the openvr back-end opens its engine: the head aims
    StandInHeadset.instances.clear()
    config = load_config(overrides={"renderer": {"failsafe_timeout_s": 2.0,
                                                 "stop_fade_s": 0.8}})
    process = RendererProcess(endpoints, config, backend="openvr", engine=engine,
                              headset=make_head)
    headset = StandInHeadset.instances[-1]
    try:
        yield process, headset
    finally:
        process.close()
        headset.hmd_anchor.removeNode()
        engine.time_s, engine.auto_frame = time_s, auto_frame
        engine.set_head_pose((0, 0, 0), (0, 0, 0))


def frames_until(renderer: RendererProcess, done: Callable[[], bool], limit: int = 400) -> None:
    import time

    for _ in range(limit):
        if done():
            return
        renderer.step_frame()
        time.sleep(1 / 120)
    raise AssertionError("not reached")


@pytest.mark.slow
def test_headset_pose_buttons_and_fade(host: SessionHost, vr_renderer: tuple[
        RendererProcess, StandInHeadset]) -> None:
    renderer, headset = vr_renderer
    assert headset.tracking_space == FAKE_OPENVR.TrackingUniverseSeated
    therapist = ControlClient(renderer.endpoints.control, "therapist", "t-vr")
    try:
        reply = therapist.send("start_exposure", {"step": 4})
        frames_until(renderer, lambda: renderer.shown_seq is not None
                     and renderer.shown_seq >= reply.state_seq and not renderer.engine.fading)

        # The tracked head, not the mouse or a simulation, is the published pose.
        headset.hpr_deg = (35.0, -10.0, 0.0)
        renderer.step_frame()
        pose = renderer.last_pose
        assert pose["yaw_deg"] == pytest.approx(35.0, abs=0.5)
        assert pose["pitch_deg"] == pytest.approx(-10.0, abs=0.5)
        assert "look_angle_deg" in pose  # the spiders are the stimulus
        ahead = pose["look_angle_deg"]
        headset.hpr_deg = (180.0, 0.0, 0.0)
        renderer.step_frame()
        assert renderer.last_pose["look_angle_deg"] > ahead + 60
        assert renderer.last_pose["looking_away"] is True

        # Menu button: pause, acknowledged in the headset.
        headset.press(FAKE_OPENVR.k_EButton_ApplicationMenu)
        frames_until(renderer, lambda: renderer.overlay.status_shown == "Paused — acknowledged")
        assert host.state.phase == Phase.PAUSED

        # SUDS: touchpad left lowers the selection, the trigger sends it.
        therapist.send("request_suds")
        frames_until(renderer, lambda: renderer.overlay.suds_visible)
        assert renderer.overlay.suds.value is None  # no default rating
        headset.touchpad_x = -0.7
        headset.press(FAKE_OPENVR.k_EButton_SteamVR_Touchpad)
        headset.press(FAKE_OPENVR.k_EButton_SteamVR_Touchpad)
        headset.press(FAKE_OPENVR.k_EButton_SteamVR_Touchpad, FAKE_OPENVR.VREvent_ButtonUnpress)
        renderer.step_frame()
        # the first press chooses the middle, the second lowers it; releases are not presses
        assert renderer.overlay.suds.value == 45
        headset.press(FAKE_OPENVR.k_EButton_SteamVR_Trigger)
        frames_until(renderer, lambda: bool(host.state.suds))
        assert host.state.suds[-1].value == 45
        assert host.state.suds[-1].by.startswith("patient:")

        # Grip: STOP, with the fade drawn inside the headset (render2d is not in the eyes).
        resume = therapist.send("resume")
        frames_until(renderer, lambda: renderer.shown_seq is not None
                     and renderer.shown_seq >= resume.state_seq and not renderer.engine.fading)
        assert renderer.vr is not None and renderer.vr.fade.isHidden()
        headset.press(FAKE_OPENVR.k_EButton_Grip)
        renderer.step_frame()
        renderer.step_frame()
        assert renderer.engine.fading
        assert not renderer.vr.fade.isHidden()
        assert 0.0 < renderer.vr.fade.getColorScale()[3] <= 1.0
        frames_until(renderer, lambda: renderer.overlay.status_shown == "Stopped — acknowledged")
        assert host.state.phase == Phase.SAFE
        frames_until(renderer, lambda: not renderer.engine.fading)
        renderer.step_frame()
        assert renderer.vr.fade.isHidden()
    finally:
        therapist.close()
