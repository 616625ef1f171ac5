"""The LSL gateway: a replayed session republished as LSL outlets, read with pylsl inlets."""

from __future__ import annotations

import json
import sys
import time
import uuid
from typing import Any

import numpy as np
import pylsl
import pytest
from click.testing import CliRunner

from vrexposure.lsl_gateway import (
    LslGateway,
    LslUnavailable,
    import_pylsl,
    message_samples,
    outlet_spec,
)
from vrexposure.protocol import DataMessage
from vrexposure.replay import Replayer
from vrexposure.xdf import XdfFile

from .conftest import free_endpoints
from .test_replay import events_of

START_S, END_S = 10.0, 15.0


def pull_all(inlet: Any, quiet_s: float = 0.5) -> tuple[list[Any], list[float]]:
    samples: list[Any] = []
    stamps: list[float] = []
    last = time.monotonic()
    while time.monotonic() - last < quiet_s:
        chunk, times = inlet.pull_chunk(timeout=0.05, max_samples=100_000)
        if times:
            samples += list(chunk)
            stamps += list(times)
            last = time.monotonic()
    return samples, stamps


def test_message_mapping() -> None:
    rr = DataMessage("rr.sim", 0, 10.0, {"rr_ms": [800.0, 1000.0]})
    rows, stamps = message_samples(rr)
    assert rows == [[800.0], [1000.0]] and stamps == pytest.approx([9.0, 10.0])
    spec = outlet_spec(DataMessage("alert", 0, 1.0, {"kind": "alert", "alert": "x"}))
    assert spec is not None and (spec.name, spec.channel_format) == ("events", "string")
    assert outlet_spec(DataMessage("preview.main", 0, 1.0, {})) is None
    spec = outlet_spec(DataMessage("pose.head", 0, 1.0, {"pos": [0, 0, 0],
                                                         "quat": [1, 0, 0, 0]}))
    assert spec is not None and spec.channel_count == 9 and spec.nominal_srate == 0.0


def test_missing_pylsl_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    from vrexposure.cli_research import lsl_command

    monkeypatch.setitem(sys.modules, "pylsl", None)
    with pytest.raises(LslUnavailable, match=r"pip install 'vrexposure\[lsl\]'"):
        import_pylsl()
    result = CliRunner().invoke(lsl_command, ["--base-port", "40000"])
    assert result.exit_code != 0 and "optional extra" in result.output


def test_gateway_republishes_heart_rate_ecg_and_events(demo: XdfFile) -> None:
    endpoints = free_endpoints()
    prefix = f"vrexposure-test-{uuid.uuid4().hex[:8]}"
    gateway = LslGateway(endpoints, topics=("hr", "ecg"), source_prefix=prefix).start()
    inlets: dict[str, Any] = {}
    try:
        # a first, fast pass creates the outlets, so that inlets can attach before the data
        first = Replayer(demo, endpoints, start_s=START_S - 1, end_s=START_S,
                         as_fast_as_possible=True, wait_for_subscriber=True,
                         wait_timeout_s=10).start()
        first.wait(20)
        first.close()
        for name in ("hr.sim", "ecg.sim", "events"):
            found = pylsl.resolve_byprop("source_id", f"{prefix}-{name}", timeout=10)
            assert len(found) == 1, name
            inlets[name] = pylsl.StreamInlet(found[0], max_buflen=60)
            inlets[name].open_stream(timeout=10)
        for inlet in inlets.values():
            pull_all(inlet, quiet_s=0.3)  # drop what the first pass sent
        assert inlets["ecg.sim"].info().nominal_srate() == 1000.0
        assert inlets["hr.sim"].info().nominal_srate() == pylsl.IRREGULAR_RATE

        # the real-time replay of an excerpt, at speed 1
        replay = Replayer(demo, endpoints, start_s=START_S, end_s=END_S,
                          wait_for_subscriber=True, wait_timeout_s=10).start()
        replay.wait(30)
        received = {name: pull_all(inlet) for name, inlet in inlets.items()}
        replay.close()
    finally:
        gateway.close()
        for inlet in inlets.values():
            inlet.close_stream()

    hr = demo.by_name("hr.sim")
    window = (hr.timestamps >= START_S) & (hr.timestamps <= END_S)
    samples, stamps = received["hr.sim"]
    assert np.array_equal(np.array(samples), hr.values[window])  # bpm and quality code
    # stamped on LSL's clock at the session time the replay played them (speed 1)
    assert replay.started_at is not None
    lsl_minus_mono = pylsl.local_clock() - time.monotonic()
    expected = [replay.wall_time_of(t) + lsl_minus_mono for t in hr.timestamps[window]]
    assert np.allclose(stamps, expected, atol=0.02), np.array(stamps) - np.array(expected)
    assert np.allclose(np.diff(stamps), np.diff(hr.timestamps[window]), atol=0.005)

    ecg = demo.by_name("ecg.sim")
    in_window = (ecg.timestamps >= START_S) & (ecg.timestamps <= END_S)
    ecg_samples, ecg_stamps = received["ecg.sim"]
    assert np.array_equal(np.array(ecg_samples, dtype=np.float32), ecg.values[in_window])
    assert np.allclose(np.diff(ecg_stamps), 0.001, atol=0.002)

    events = [e for e in events_of(demo) if START_S <= e["t_s"] <= END_S]
    got = [json.loads(row[0]) for row in received["events"][0]]
    assert got == events and any(e["kind"] == "suds_recorded" for e in got)
    assert gateway.counters["hr.sim"] >= int(window.sum())
