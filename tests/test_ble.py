"""The BLE transport with a fake bleak client (no Bluetooth adapter exists on a test machine);
everything behind the client — decoding, heart rate, publishing, reconnecting — is real."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any, ClassVar

import pytest

from vrexposure.ble import BleHeartRateSource
from vrexposure.client import Subscriber
from vrexposure.host import SessionHost
from vrexposure.plugins import builtin_dir, discover_sensors, load_module

from .test_host import wait_for

ble_hrm = load_module(builtin_dir("sensors") / "ble_hrm.py", "sensors")


class FakeStrap:
    """Stands in for bleak.BleakClient: notifies 0x2A37 payloads of a steady 75 bpm rhythm."""

    instances: ClassVar[list[FakeStrap]] = []
    beats: ClassVar[int] = 0

    def __init__(self, address: str, disconnected: Callable[[Any], None]) -> None:
        self.address = address
        self.disconnected = disconnected
        self.is_connected = False
        self.callback: Callable[[Any, bytearray], None] | None = None
        self.uuid = ""
        self._task: asyncio.Task[None] | None = None
        FakeStrap.instances.append(self)

    async def connect(self) -> None:
        if self.address != "AA:BB:CC:DD:EE:FF":
            raise OSError("device not found")
        self.is_connected = True

    async def start_notify(self, uuid: str, callback: Callable[[Any, bytearray], None]) -> None:
        self.uuid, self.callback = uuid, callback
        self._task = asyncio.get_running_loop().create_task(self._beat())

    async def _beat(self) -> None:
        rr_raw = ble_hrm.rr_ms_to_raw(800.0)  # 75 bpm
        while self.is_connected:
            assert self.callback is not None
            FakeStrap.beats += 1
            self.callback(self, bytearray(ble_hrm.encode_notification(75, [rr_raw])))
            await asyncio.sleep(0.01)  # 80x real time: the test's session clock follows beats

    def drop(self) -> None:
        """The strap walks out of range."""
        self.is_connected = False
        self.disconnected(self)

    async def disconnect(self) -> None:
        self.is_connected = False


def test_strap_to_subscriber_with_reconnect(host: SessionHost) -> None:
    FakeStrap.instances.clear()
    FakeStrap.beats = 0
    sub = Subscriber(host.endpoints, topics=("hr.strap", "sensor.strap"), host=False)
    source = BleHeartRateSource(discover_sensors()["ble_hrm"], "AA:BB:CC:DD:EE:FF",
                                host.endpoints, "strap", client_factory=FakeStrap,
                                status_interval_s=0.2,
                                clock=lambda: 0.8 * FakeStrap.beats).start()
    try:
        wait_for(lambda: source.notifications > 5, 5.0)
        assert FakeStrap.instances[0].uuid == "00002a37-0000-1000-8000-00805f9b34fb"
        FakeStrap.instances[-1].drop()
        wait_for(lambda: source.disconnects == 1 and source.connected, 5.0)
        wait_for(lambda: source.notifications > 60, 10.0)  # > 40 s of beats: several windows
        time.sleep(0.3)
        messages = sub.drain(100_000)
    finally:
        source.stop()
        sub.close()
    device_hr = [m.payload["bpm"] for m in messages if m.topic == "hr.strap.device"]
    derived = [m.payload for m in messages if m.topic == "hr.strap"
               and m.payload["quality"] == "good"]
    assert device_hr and set(device_hr) == {75.0}
    assert derived and all(p["bpm"] == pytest.approx(75.0, abs=1) and p["origin"] == "rr"
                           for p in derived)
    events = [m.payload["event"] for m in messages if m.kind == "sensor"]
    assert events.index("connected") < events.index("disconnected")
    assert events.count("connected") == 2
    assert len(FakeStrap.instances) == 2


def test_unreachable_strap_retries_without_crashing(host: SessionHost) -> None:
    FakeStrap.instances.clear()
    source = BleHeartRateSource(discover_sensors()["ble_hrm"], "00:00:00:00:00:00",
                                host.endpoints, "missing", client_factory=FakeStrap)
    thread = threading.Thread(target=source.run, daemon=True)
    thread.start()
    time.sleep(1.0)
    source.stop()
    thread.join(5)
    assert not thread.is_alive() and len(FakeStrap.instances) >= 2 and not source.connected


def test_missing_bleak_gives_a_clear_error() -> None:
    from vrexposure.ble import default_client_factory

    try:
        import bleak  # noqa: F401
    except ImportError:
        with pytest.raises(RuntimeError, match=r"pip install 'vrexposure\[ble\]'"):
            default_client_factory("AA", lambda _c: None)
    else:  # bleak installed: a real client object is built (no adapter needed for that)
        assert default_client_factory("AA", lambda _c: None) is not None
