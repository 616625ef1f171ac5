"""Soak: a long session at accelerated time with every stream at full rate, plus abuse.

The session host runs as its own process (``vrexposure session``). A producer
process replays ``--minutes`` of a session at ``--speed`` times real time:
1 kHz ECG in 20-sample chunks, 90 Hz head pose, 1 Hz heart rate and RR, and
sensor status once a second. Messages are stamped on the host's session clock
(synchronised like every producer's: the host refuses stamps far from its clock),
so at ``--speed`` above 1 the streams are denser than their nominal rates.
Meanwhile a therapist client sends commands (SUDS, intensity, markers, step
moves) and a third process fires bursts of malformed data and commands.

Measured: commands lost (sent but not acknowledged, or acknowledged but missing
from the recording), samples lost (sent but missing from the recording), and
the host's resident memory growth from warm-up to the end (``/proc``). The
peer in the same run is the host's memory right after start-up.

``--hog N`` runs N busy processes beside it (a renderer, another job on the
clinic PC), so the host and producer compete for the cores. Where ZeroMQ could
drop (high-water marks), the host records each sequence gap as a ``data_gap``
record; ``gaps_recorded`` counts them.

Run: ``python bench/soak.py [--minutes 60] [--speed 20] [--hog 2]``; the last line
is JSON.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import signal
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._host import start_host  # noqa: E402
from tests.conftest import free_endpoints  # noqa: E402
from vrexposure.client import ControlClient, Publisher  # noqa: E402
from vrexposure.config import Endpoints  # noqa: E402
from vrexposure.xdf import read_xdf  # noqa: E402

ECG_CHUNK = 20


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def hog(stop_at: float) -> None:
    """A busy process: spins until ``stop_at`` (monotonic seconds)."""
    x = 0
    while time.monotonic() < stop_at:
        for _ in range(100_000):
            x += 1


def produce(endpoints: Endpoints, minutes: float, speed: float, counts: mp.Queue) -> None:  # type: ignore[type-arg]
    pub = Publisher(endpoints.publish, "soak", control=endpoints.control)
    control = ControlClient(endpoints.control, "sensor", "soak")
    pub.set_offset(control.sync_clock(rounds=5))
    control.close()
    pub.wait_connected()
    sent = {"ecg": 0, "pose": 0, "hr": 0, "rr": 0, "sensor": 0}
    session_s = 0.0
    end_s = minutes * 60.0
    step_s = ECG_CHUNK / 1000.0  # one ECG chunk of session time per iteration
    pose_due = hr_due = 0.0
    t_wall0 = time.monotonic()
    chunk = np.sin(np.arange(ECG_CHUNK, dtype=np.float32))
    pose = {"pos": [0.0, 0.0, 1.2], "quat": [1.0, 0.0, 0.0, 0.0], "look_angle_deg": 4.0,
            "looking_away": False}
    while session_s < end_s:
        pub.publish_chunk("ecg", chunk, 1000.0, "mV", pub.now())
        sent["ecg"] += ECG_CHUNK
        while pose_due < session_s + step_s:
            pub.publish("pose", pose)
            sent["pose"] += 1
            pose_due += 1 / 90
        if hr_due < session_s + step_s:
            pub.publish("hr", {"bpm": 70.0 + 10 * np.sin(hr_due / 60), "quality": "good"})
            pub.publish("rr", {"rr_ms": [850.0], "quality": "good"})
            pub.publish("sensor", {"event": "status", "connected": True})
            sent["hr"] += 1
            sent["rr"] += 1
            sent["sensor"] += 1
            hr_due += 1.0
        session_s += step_s
        lag = session_s / speed - (time.monotonic() - t_wall0)
        if lag > 0:
            time.sleep(lag)
    time.sleep(1.0)
    pub.close()
    counts.put(sent)


def abuse(endpoints: Endpoints, bursts: int) -> None:
    import zmq

    ctx = zmq.Context()
    pub = ctx.socket(zmq.PUB)
    pub.connect(endpoints.publish)
    dealer = ctx.socket(zmq.DEALER)
    dealer.connect(endpoints.control)
    rng = np.random.default_rng(1)
    time.sleep(1.0)
    for _ in range(bursts):
        for _ in range(500):
            garbage = rng.integers(0, 256, int(rng.integers(1, 300)), dtype=np.uint8).tobytes()
            pub.send_multipart([b"hr.junk", garbage])
            pub.send_multipart([b"ecg.junk", garbage])
            dealer.send(garbage)
        time.sleep(2.0)
    pub.close(linger=1000)
    dealer.close(linger=1000)
    ctx.term()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--speed", type=float, default=20.0)
    parser.add_argument("--hog", type=int, default=0, metavar="N",
                        help="busy processes running beside the session")
    args = parser.parse_args()

    endpoints = free_endpoints()
    host, workdir = start_host(endpoints, "S001", "vrexposure-soak-")
    time.sleep(1.0)
    rss_start = rss_mb(host.pid)
    ctx = mp.get_context("spawn")
    counts: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    producer = ctx.Process(target=produce, args=(endpoints, args.minutes, args.speed, counts))
    wall_s = args.minutes * 60 / args.speed
    hogs = [ctx.Process(target=hog, args=(time.monotonic() + wall_s + 30.0,), daemon=True)
            for _ in range(args.hog)]
    for process in hogs:
        process.start()
    abuser = ctx.Process(target=abuse, args=(endpoints, max(1, int(wall_s / 20))))
    producer.start()
    abuser.start()
    ctl = ControlClient(endpoints.control, "therapist", "soak")
    ctl.send("start_exposure")
    acked: list[str] = []
    commands_sent = 0
    unanswered = 0
    rss_samples: list[tuple[float, float]] = []
    t0 = time.monotonic()
    i = 0
    while producer.is_alive():
        name, cmd_args = [("suds", {"value": int(i % 101)}),
                          ("intensity", {"value": (i % 11) / 10}),
                          ("marker", {"text": f"soak marker {i}"}),
                          ("request_suds", {})][i % 4]
        commands_sent += 1
        try:
            reply = ctl.request(name, cmd_args, timeout_s=10.0)
            if reply.ok:
                acked.append(reply.id)
        except Exception:
            unanswered += 1
        i += 1
        rss_samples.append((time.monotonic() - t0, rss_mb(host.pid)))
        time.sleep(0.05)
    producer.join()
    abuser.join()
    for process in hogs:
        process.terminate()
        process.join()
    sent = counts.get(timeout=10)
    time.sleep(2.0)
    rss_end = rss_mb(host.pid)
    warm = [r for t, r in rss_samples if t > min(10.0, wall_s / 4)]
    rss_warm = warm[0] if warm else rss_start
    ctl.close()
    host.send_signal(signal.SIGTERM)
    host.wait(timeout=60)
    host.stdout.close()

    path = next(workdir.glob("S001_*.xdf"))
    t_read = time.monotonic()
    recording = read_xdf(path)
    read_s = time.monotonic() - t_read
    recorded = {"ecg": 0, "pose": 0, "hr": 0, "rr": 0, "sensor": 0}
    for stream in recording.streams.values():
        kind, _, source = stream.name.partition(".")
        if source == "soak" and kind in recorded:
            recorded[kind] = len(stream.timestamps)
    events = [json.loads(v) for v in recording.by_name("events").values]
    recorded_ids = {e.get("id") for e in events if e.get("type") == "command" and e.get("ok")}
    commands_lost = unanswered + sum(1 for cid in acked if cid not in recorded_ids)
    samples_lost = sum(sent[k] - recorded[k] for k in sent)
    gaps = [e for e in events if e.get("type") == "data_gap"
            and str(e.get("source", "")).endswith(".soak")]
    growth = rss_end - rss_warm
    print(f"{args.minutes:.0f} min of session at {args.speed:.0f}x in {wall_s:.0f} s wall time")
    print(f"{'stream':<8}{'sent':>10}{'recorded':>10}")
    for kind in sent:
        print(f"{kind:<8}{sent[kind]:>10}{recorded[kind]:>10}")
    print(f"commands: {commands_sent} sent, {len(acked)} acknowledged, {unanswered} unanswered, "
          f"{commands_lost} lost")
    print(f"host memory: {rss_start:.1f} MB at start (the peer), {rss_warm:.1f} MB after "
          f"warm-up, {rss_end:.1f} MB at the end: growth {growth:+.1f} MB "
          f"(ratio end/start {rss_end / rss_start:.2f})")
    print(f"recording {path.stat().st_size / 1e6:.1f} MB, complete: {not recording.truncated}, "
          f"read back in {read_s:.1f} s; {len(gaps)} sequence gaps recorded "
          f"({sum(int(g['count']) for g in gaps)} messages); {args.hog} busy processes")
    print(json.dumps({"commands_lost": commands_lost, "samples_lost": int(samples_lost),
                      "memory_growth_mb": round(growth, 1),
                      "commands_sent": commands_sent, "recording_complete":
                      not recording.truncated, "hog_processes": args.hog,
                      "speed": args.speed, "gaps_recorded": len(gaps)}))


if __name__ == "__main__":
    main()
