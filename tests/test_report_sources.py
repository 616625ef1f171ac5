"""The report tells a researcher which sources the recording admitted or refused and where
data is missing, from the host's own admission and data-gap records (a real host)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from vrexposure import protocol
from vrexposure.client import ControlClient, Publisher
from vrexposure.host import SessionHost
from vrexposure.report import write_report


def test_report_lists_admitted_and_refused_sources_and_data_gaps(host: SessionHost,
                                                                 tmp_path: Path) -> None:
    own = Publisher(host.endpoints.publish, "strap", clock=host.clock.now)
    foreign = Publisher(host.endpoints.publish, "polar", clock=host.clock.now)
    therapist = ControlClient(host.endpoints.control, "therapist", "panel")
    try:
        assert own.wait_connected() and foreign.wait_connected()
        for i in range(10):
            if i == 5:
                own._seq["hr.strap"] += 3  # three messages lost on the way: a gap
            own.publish("hr", {"bpm": 70.0 + i})
            foreign.send_raw(protocol.encode_data("hr.polar", i, host.clock.now(),
                                                  {"bpm": 120.0}))
            time.sleep(0.02)
        deadline = time.monotonic() + 5.0
        while host.pending_sources["polar"] < 10 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert therapist.send("reject_source", {"source": "polar"}).ok
        time.sleep(0.3)
    finally:
        for client in (own, foreign, therapist):
            client.close()
    host.close()
    files = write_report(host.recording_path, tmp_path)
    sources = json.loads(files.json.read_text())["sources"]
    assert [s["source"] for s in sources["admitted"]] == ["strap"]
    assert [s["source"] for s in sources["rejected"]] == ["polar"]
    assert [(g["source"], g["count"]) for g in sources["gaps"]] == [("hr.strap", 3)]
    page = files.html.read_text()
    assert "Data gap: 3 samples of hr.strap missing" in page
    assert "Source polar refused" in page
