"""Bluetooth LE heart-rate straps (Heart Rate Measurement 0x2A37) via bleak.

The I/O shell around the ``ble_hrm`` driver: connect, subscribe to the
characteristic's notifications, feed each payload to the decoder, publish what
it decodes exactly as the serial runtime does (heart rate derived from RR with
quality flags; the strap's own figure as ``<src>.device``), and reconnect with
back-off when the strap goes away. ``client_factory`` is the one injected seam:
by default ``bleak.BleakClient`` (the optional ``ble`` extra); tests inject a
fake, because no Bluetooth adapter exists on a test machine.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any, Protocol

from .client import ControlClient, HostUnreachable, Publisher
from .config import Endpoints
from .sensor_api import DriverSpec
from .sensor_runtime import BACKOFF_MAX_S, BACKOFF_START_S, HeartRateDeriver, samples_to_messages

log = logging.getLogger(__name__)


class BleClient(Protocol):
    """The part of ``bleak.BleakClient`` this module uses."""

    @property
    def is_connected(self) -> bool: ...

    async def connect(self) -> Any: ...

    async def disconnect(self) -> Any: ...

    async def start_notify(self, char_specifier: str,
                           callback: Callable[[Any, bytearray], None]) -> None: ...


BLE_EXTRA_MESSAGE = "Bluetooth LE needs the optional extra: pip install 'vrexposure[ble]'"


def require_bleak() -> None:
    """Raise ``RuntimeError`` (a message, not a thread traceback) when bleak is missing."""
    try:
        import bleak  # noqa: F401
    except ImportError as exc:
        raise RuntimeError(BLE_EXTRA_MESSAGE) from exc


def default_client_factory(address: str, disconnected: Callable[[Any], None]) -> BleClient:
    try:
        from bleak import BleakClient
    except ImportError as exc:
        raise RuntimeError(BLE_EXTRA_MESSAGE) from exc
    return BleakClient(address, disconnected_callback=disconnected)


class BleHeartRateSource:
    """Streams one BLE heart-rate strap onto the bridge."""

    def __init__(self, driver: DriverSpec, address: str, endpoints: Endpoints,
                 source_id: str | None = None,
                 client_factory: Callable[[str, Callable[[Any], None]], BleClient]
                 = default_client_factory,
                 clock: Callable[[], float] | None = None,
                 status_interval_s: float = 1.0) -> None:
        if driver.extras.get("transport") != "ble":
            raise ValueError(f"driver {driver.name} is not a Bluetooth LE driver")
        self.driver = driver
        self.address = address
        self.endpoints = endpoints
        self.source_id = source_id or driver.name
        self.client_factory = client_factory
        self.characteristic = str(driver.extras["characteristic_uuid"])
        self.decoder = driver.decoder()
        self.deriver = HeartRateDeriver()
        self.status_interval_s = status_interval_s
        self._clock = clock
        self._offset_s = 0.0
        self.connected = False
        self.disconnects = 0
        self.notifications = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._publisher: Publisher | None = None

    def now(self) -> float:
        return self._clock() if self._clock is not None else time.monotonic() + self._offset_s

    def start(self) -> BleHeartRateSource:
        self._thread = threading.Thread(target=self.run, name=f"ble-{self.source_id}",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def run(self) -> None:
        if self._clock is None:
            control = ControlClient(self.endpoints.control, "sensor", self.source_id,
                                    reply_timeout_s=0.5)
            try:
                self._offset_s = control.sync_clock(rounds=4, timeout_s=1.0)
            except HostUnreachable:
                log.warning("host did not answer; stamping with the local clock")
            finally:
                control.close()
        self._publisher = Publisher(self.endpoints.publish, self.source_id, clock=self.now,
                                    control=self.endpoints.control)
        self._publisher.wait_connected(2.0)
        try:
            asyncio.run(self._run())
        finally:
            self._publisher.close()

    def _on_notification(self, _sender: Any, data: bytearray) -> None:
        """One 0x2A37 payload: decode, stamp at arrival, publish."""
        assert self._publisher is not None
        t_s = self.now()
        self.notifications += 1
        samples = self.decoder.feed(bytes(data))
        derived = self.deriver.feed(samples, t_s)
        for kind, payload, stamp in samples_to_messages(samples, t_s):
            demoted = kind == "hr" and self.deriver.active
            self._publisher.publish(kind, payload, stamp,
                                    source=f"{self.source_id}.device" if demoted else None)
        for kind, payload, stamp in derived:
            self._publisher.publish(kind, payload, stamp)

    def _status(self, event: str, **extra: Any) -> None:
        assert self._publisher is not None
        self._publisher.publish("sensor", {"event": event, "connected": self.connected,
                                           "device": self.driver.name, "port": self.address,
                                           "notifications": self.notifications,
                                           "disconnects": self.disconnects,
                                           **asdict(self.decoder.stats), **extra})

    async def _run(self) -> None:
        backoff = BACKOFF_START_S
        lost_at: float | None = None
        gone = asyncio.Event()
        while not self._stop.is_set():
            gone.clear()
            loop = asyncio.get_running_loop()

            def on_disconnect(_client: Any, loop: asyncio.AbstractEventLoop = loop) -> None:
                loop.call_soon_threadsafe(gone.set)  # bleak may call from another thread

            client = self.client_factory(self.address, on_disconnect)
            try:
                await client.connect()
                await client.start_notify(self.characteristic, self._on_notification)
            except Exception as exc:  # bleak raises several types (BleakError, OSError, ...)
                log.info("cannot connect to %s (%s); retry in %.1f s", self.address, exc,
                         backoff)
                await asyncio.sleep(backoff)
                backoff = min(BACKOFF_MAX_S, backoff * 2)
                continue
            backoff = BACKOFF_START_S
            self.connected = True
            extra = {} if lost_at is None else {"gap_s": time.monotonic() - lost_at}
            if lost_at is not None:
                self.deriver.reset()  # no beat interval spans the outage
            self._status("connected", **extra)
            while not self._stop.is_set() and not gone.is_set() and client.is_connected:
                try:
                    await asyncio.wait_for(gone.wait(), self.status_interval_s)
                except TimeoutError:
                    self._status("status")
            if self._stop.is_set():
                await client.disconnect()
                self.connected = False
                self._status("stopped")
                return
            self.connected = False
            self.disconnects += 1
            lost_at = time.monotonic()
            self._status("disconnected")
