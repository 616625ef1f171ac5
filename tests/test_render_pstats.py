"""Reading Panda3D's PStats collectors in-process: the wire format, the attribution of time
to App / Cull / Draw / Flip, and a live recording of real frames."""

from __future__ import annotations

import struct
import time
from typing import Any

import pytest

from tests.render_fixtures import engine
from vrexposure.render import pstats

pytestmark = pytest.mark.render
__all__ = ["engine"]

NAMES = {0: "Frame", 1: "App:Show code:General", 2: "App:render_frame", 3: "*:do_frame",
         4: "Cull", 5: "*:Munge", 6: "Draw:window1", 7: "Wait:Thread sync"}


def frame_message(thread: int, number: int, events: list[tuple[int, bool, float]]) -> bytes:
    """One framed PStats frame as the client sends it (time events, no levels)."""
    body = struct.pack("<BHIH", 0, thread, number, len(events))
    for index, start, t in events:
        body += struct.pack("<Hf", index if start else index | 0x8000, t)
    body += struct.pack("<H", 0)
    return struct.pack("<I", len(body)) + body


def test_frames_decode_and_broken_messages_are_counted() -> None:
    events = [(0, True, 1.0), (1, True, 1.0), (1, False, 1.002), (0, False, 1.01)]
    raw = (frame_message(0, 7, events) + struct.pack("<I", 3) + b"\x02ab"  # a control message
           + frame_message(1, 8, events[:2]) + struct.pack("<I", 40) + b"\x00" * 12)  # cut off
    frames, skipped = pstats.decode_frames(raw)
    assert [(f.thread, f.number) for f in frames] == [(0, 7), (1, 8)]
    assert frames[0].events[2][:2] == (1, False)
    assert frames[0].events[2][2] == pytest.approx(1.002)
    assert skipped == 2


def test_time_goes_to_the_innermost_named_collector_and_the_flip_apart() -> None:
    ms = 0.001
    events = [(0, True, 0.0),
              (1, True, 0.0), (1, False, 2 * ms),  # 2 ms of Python between frames
              (2, True, 2 * ms), (3, True, 2.1 * ms),  # render_frame 0.1 ms, then do_frame
              (4, True, 2.1 * ms), (5, True, 2.5 * ms), (5, False, 2.7 * ms),  # Munge in Cull
              (4, False, 3.1 * ms),
              (6, True, 3.1 * ms), (6, False, 9.1 * ms),  # 6 ms drawing
              (3, False, 10.1 * ms),  # 1 ms finishing the frame (the flip)
              (7, True, 10.1 * ms), (7, False, 10.2 * ms),
              (2, False, 10.3 * ms), (0, False, 10.4 * ms)]
    frame = pstats.decode_frames(frame_message(0, 1, events))[0][0]
    exclusive = pstats.exclusive_ms(frame, NAMES)
    assert exclusive["Cull"] == pytest.approx(1.0, abs=1e-3)  # Munge (0.2 ms) folded in
    assert "*:Munge" not in exclusive
    phases = pstats.phase_ms(exclusive)
    assert phases["App"] == pytest.approx(2.0 + 0.1 + 0.1, abs=1e-3)
    assert phases["Draw"] == pytest.approx(6.0, abs=1e-3)
    assert phases["Flip"] == pytest.approx(1.0, abs=1e-3)
    assert phases["Wait"] == pytest.approx(0.1, abs=1e-3)
    assert phases["Frame"] == pytest.approx(0.1, abs=1e-3)
    assert pstats.cpu_ms(phases) == pytest.approx(3.2, abs=1e-3)


def test_recorder_reads_the_engines_own_collectors(engine: Any) -> None:
    engine.show("calm", {})
    engine.step(0.0)
    with pstats.PStatsRecorder() as recorder:
        for _ in range(3):
            engine.step(1 / 90)
        time.sleep(0.3)
        recorder.clear()
        for _ in range(12):
            engine.step(1 / 90)
        time.sleep(0.5)  # the last frame is sent as it ends
        phases = recorder.phases()
        names = set(recorder.collector_names().values())
    assert 10 <= len(phases) <= 13
    assert {"App:Show code:General", "Cull", "Draw"} <= names
    # Every frame culled and drew the meadow; the CPU side is a small part of the frame.
    assert all(p["Cull"] > 0.0 and p["Draw"] > 0.0 and p["App"] > 0.0 for p in phases[1:])
    assert all(0.0 < pstats.cpu_ms(p) < 1000.0 for p in phases)
