from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyxdf

from vrexposure.xdf import StreamInfo, XdfWriter, read_xdf


def write_sample_file(path: Path) -> None:
    writer = XdfWriter(path, {"patient_id": "P001"})
    writer.add_stream(StreamInfo(1, "ecg.sim", "ECG", 2, 500.0, "float32", "sim",
                                 ("ecg1", "ecg2"), ("mV", "mV")))
    writer.add_stream(StreamInfo(2, "hr.sim", "HeartRate", 2, 0.0, "double64", "sim",
                                 ("bpm", "quality")))
    writer.add_stream(StreamInfo(3, "events", "Markers", 1, 0.0, "string", "host"))
    block = np.arange(200, dtype=np.float32).reshape(100, 2)
    writer.write_numeric(1, [10.0], block, first_stamp_only=True)
    writer.write_numeric(1, [10.2], block + 200, first_stamp_only=True)
    writer.write_numeric(2, [10.0, 11.0], [[70.0, 0], [72.5, 1]])
    writer.write_strings(3, [10.5, 10.7], ['{"kind": "stopped"}', "ünïcode ✓"])
    writer.write_boundary()
    writer.close()


def test_round_trip_and_owner_only_permissions(tmp_path: Path) -> None:
    path = tmp_path / "a.xdf"
    write_sample_file(path)
    assert os.stat(path).st_mode & 0o777 == 0o600
    recording = read_xdf(path)
    assert not recording.truncated and recording.header["patient_id"] == "P001"
    ecg = recording.by_name("ecg.sim")
    assert ecg.values.shape == (200, 2) and ecg.values[150, 1] == 301.0
    np.testing.assert_allclose(ecg.timestamps[:3], [10.0, 10.002, 10.004])
    assert ecg.channel_labels == ["ecg1", "ecg2"]
    hr = recording.by_name("hr.sim")
    np.testing.assert_array_equal(hr.values, [[70.0, 0], [72.5, 1]])
    assert recording.by_name("events").values == ['{"kind": "stopped"}', "ünïcode ✓"]
    assert ecg.footer is not None and ecg.footer["sample_count"] == "200"


def test_pyxdf_reads_our_files(tmp_path: Path) -> None:
    path = tmp_path / "a.xdf"
    write_sample_file(path)
    streams, header = pyxdf.load_xdf(str(path), synchronize_clocks=False, dejitter_timestamps=False)
    by_name = {s["info"]["name"][0]: s for s in streams}
    assert by_name["ecg.sim"]["time_series"].shape == (200, 2)
    np.testing.assert_allclose(by_name["ecg.sim"]["time_stamps"][100], 10.2)
    assert by_name["events"]["time_series"][1] == ["ünïcode ✓"]
    assert header["info"]["patient_id"] == ["P001"]


def test_every_cut_point_reads_up_to_the_cut(tmp_path: Path) -> None:
    path = tmp_path / "a.xdf"
    write_sample_file(path)
    data = path.read_bytes()
    full = read_xdf(path)
    total = sum(len(s.timestamps) for s in full.streams.values())
    previous = 0
    for cut in range(4, len(data), 7):
        cut_path = tmp_path / "cut.xdf"
        cut_path.write_bytes(data[:cut])
        partial = read_xdf(cut_path)
        count = sum(len(s.timestamps) for s in partial.streams.values())
        assert previous <= count <= total  # never loses what an earlier cut had
        previous = count
        assert partial.end_of_valid_data <= cut


WRITER = """
import sys, time, numpy as np
from pathlib import Path
from vrexposure.xdf import StreamInfo, XdfWriter
w = XdfWriter(Path(sys.argv[1]), {"patient_id": "P002"})
w.add_stream(StreamInfo(1, "ecg.sim", "ECG", 1, 1000.0, "float32", "sim"))
i = 0
while True:
    w.write_numeric(1, [i * 0.02], np.full(20, i, dtype=np.float32), first_stamp_only=True)
    i += 1
    if i % 25 == 0:
        w.sync()
        print(i, flush=True)
    time.sleep(0.001)
"""


def test_reader_survives_a_writer_killed_with_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "killed.xdf"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None
    synced = 0
    deadline = time.monotonic() + 20
    while synced < 100 and time.monotonic() < deadline:
        synced = int(proc.stdout.readline())
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    recording = read_xdf(path)
    ecg = recording.by_name("ecg.sim")
    assert len(ecg.timestamps) >= synced * 20  # everything synced before the kill
    assert ecg.footer is None
    values = ecg.values[:, 0]
    np.testing.assert_array_equal(values, np.repeat(np.arange(len(values) // 20), 20))


def test_recorder_merges_contiguous_blocks_and_keeps_gaps(tmp_path: Path) -> None:
    from vrexposure import protocol
    from vrexposure.recorder import Recorder

    recorder = Recorder(tmp_path / "r.xdf", {"patient_id": "P001"})
    block = np.arange(20, dtype=np.float32)
    starts = [1.0, 1.02, 1.04, 2.0, 2.02]  # a 0.94 s gap after the third block
    for i, t0 in enumerate(starts):
        recorder.record(protocol.decode_data(protocol.encode_data(
            "ecg.a", i, t0, protocol.chunk_payload(block + 20 * i, 1000.0, "mV"))))
    recorder.close(3.0)
    stream = read_xdf(tmp_path / "r.xdf").by_name("ecg.a")
    np.testing.assert_array_equal(stream.values[:, 0], np.arange(100, dtype=np.float32))
    np.testing.assert_allclose(stream.timestamps[[0, 59, 60, 99]], [1.0, 1.059, 2.0, 2.039])
    raw = (tmp_path / "r.xdf").read_bytes()
    assert raw.count(b"ecg1") == 1  # one stream header


def test_rr_intervals_are_stamped_at_the_beats_that_end_them(tmp_path: Path) -> None:
    from vrexposure import protocol
    from vrexposure.recorder import Recorder

    recorder = Recorder(tmp_path / "rr.xdf", {"patient_id": "P001"})
    recorder.record(protocol.decode_data(protocol.encode_data(
        "rr.strap", 0, 10.0, {"rr_ms": [800.0, 1000.0, 600.0], "quality": "good"})))
    recorder.close(11.0)
    stream = read_xdf(tmp_path / "rr.xdf").by_name("rr.strap")
    np.testing.assert_allclose(stream.timestamps, [8.4, 9.4, 10.0])  # beats at 8.4, 9.4, 10.0
    np.testing.assert_array_equal(stream.values[:, 0], [800.0, 1000.0, 600.0])
