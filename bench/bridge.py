"""Bridge latency and throughput: producer → session host → subscriber, against pylsl.

Three processes as in a session: the session host (``vrexposure session``), a
producer (1 kHz ECG in 20-sample chunks, 90 Hz pose, 1 Hz heart rate) and this
process as the subscriber. Each message carries its send time from
CLOCK_MONOTONIC (shared by all processes on Linux). The peer measured in the
same run:

* the broker floor: a bare pyzmq proxy (``zmq.proxy`` in C, in its own process) between a
  PUB producer and this process's SUB, at the same message rates and sizes, with no
  encoding or validation (the send time travels as 8 raw bytes). The host is a broker
  by design; this is the least any broker hop costs here;
* a pylsl outlet (separate process) → inlet (this process) at the same message rate
  and size, directly with no broker in between.

Run: ``python bench/bridge.py [--seconds 10] [--rounds 3]``: ours and the two proxies are
measured in interleaved rounds and pooled (the load of a shared machine drifts). The last
line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import zmq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench._host import start_host  # noqa: E402
from tests.conftest import free_endpoints  # noqa: E402
from vrexposure import protocol  # noqa: E402
from vrexposure.client import Publisher, Subscriber, send_frames  # noqa: E402
from vrexposure.config import Endpoints  # noqa: E402

ECG_CHUNK = 20
RATES_HZ = {"ecg": 1000 / ECG_CHUNK, "pose": 90.0, "hr": 1.0}


def _paced(seconds: float, send: Callable[[str, int], None]) -> None:
    """Call ``send(kind, send time ns)`` at each kind's rate of RATES_HZ for ``seconds``
    (the same pacing for our producer and the peers')."""
    period_ns = {k: int(1e9 / v) for k, v in RATES_HZ.items()}
    next_ns = dict.fromkeys(RATES_HZ, time.monotonic_ns())
    end_ns = time.monotonic_ns() + int(seconds * 1e9)
    while (now := time.monotonic_ns()) < end_ns:
        for kind, due in next_ns.items():
            if now >= due:
                send(kind, time.monotonic_ns())
                next_ns[kind] = due + period_ns[kind]
        time.sleep(max(0.0, (min(next_ns.values()) - time.monotonic_ns()) / 1e9 - 0.0003))


def _produce(publish: str, seconds: float, start_at_ns: int, control: str | None = None,
             costs: Any = None) -> None:
    pub = Publisher(publish, "bench", control=control)
    spent_us: list[float] = []  # send time → publish() returned: the producer's Python
    pub.wait_connected()
    while time.monotonic_ns() < start_at_ns:
        time.sleep(0.001)

    def send(kind: str, sent: int) -> None:
        pub.publish(kind, _payload(kind, sent), sent / 1e9)
        spent_us.append((time.monotonic_ns() - sent) / 1e3)

    _paced(seconds, send)
    pub.close()
    if costs is not None:
        costs.put(spent_us)


def _flood(publish: str, count: int, start_at_ns: int, control: str | None = None
           ) -> None:
    pub = Publisher(publish, "flood", control=control)
    pub.wait_connected()
    while time.monotonic_ns() < start_at_ns:
        time.sleep(0.001)
    payload = {"pos": [0.0, 0.0, 1.2], "quat": [1.0, 0.0, 0.0, 0.0]}
    for _ in range(count):
        pub.publish("pose", payload, 0.0)
    time.sleep(1.0)
    pub.close()


_CHUNK = np.zeros(ECG_CHUNK, dtype=np.float32)


def _payload(kind: str, sent: int) -> dict[str, Any]:
    """The payload a producer sends for ``kind``, stamped with its send time."""
    if kind == "ecg":
        return {"rate_hz": 1000.0, "n_channels": 1, "unit": "mV", "quality": "good",
                "data": _CHUNK.tobytes(), "sent_ns": sent}
    if kind == "pose":
        return {"pos": [0.0, 0.0, 1.2], "quat": [1.0, 0.0, 0.0, 0.0],
                "look_angle_deg": 3.0, "looking_away": False, "sent_ns": sent}
    return {"bpm": 72.0, "quality": "good", "sent_ns": sent}


def _proxy_run(frontend: str, backend: str, chained: bool = False) -> None:
    ctx = zmq.Context()
    front, back = ctx.socket(zmq.SUB), ctx.socket(zmq.PUB)
    front.setsockopt(zmq.SUBSCRIBE, b"")
    front.bind(frontend)
    back.bind(backend)
    if not chained:
        zmq.proxy(front, back)
        return
    # The host's data path without its Python: proxy → inproc capture → gate proxy →
    # feed, and a recorder socket on the capture drained every 20 ms by a Python thread.
    capture = ctx.socket(zmq.PUB)
    capture.bind("inproc://capture")
    gate_in, recorder = ctx.socket(zmq.SUB), ctx.socket(zmq.SUB)
    for sock in (gate_in, recorder):
        sock.setsockopt(zmq.SUBSCRIBE, b"")
        sock.connect("inproc://capture")

    def drain() -> None:
        while True:
            time.sleep(0.02)
            while recorder.poll(0):
                recorder.recv_multipart()

    threading.Thread(target=zmq.proxy, args=(front, capture), daemon=True).start()
    threading.Thread(target=drain, daemon=True).start()
    zmq.proxy(gate_in, back)


def _proxy_produce(frontend: str, seconds: float, start_at_ns: int, costs: Any = None
                   ) -> None:
    ctx = zmq.Context()
    pub = ctx.socket(zmq.PUB)
    pub.connect(frontend)
    # the same sizes as our messages: topic and a body of the encoded message's length
    sizes = {kind: len(protocol.encode_data(f"{kind}.bench", 1, 1.0, _payload(kind, 0))[1])
             for kind in RATES_HZ}
    time.sleep(1.0)  # the subscription reaches the proxy
    while time.monotonic_ns() < start_at_ns:
        time.sleep(0.001)
    spent_us: list[float] = []  # send time → send returned: the peer producer's Python

    def send(kind: str, sent: int) -> None:
        # the same send call as Publisher.publish: the peer gets the cheapest send too
        send_frames(pub, [f"{kind}.bench".encode(),
                          sent.to_bytes(8, "little") + bytes(sizes[kind] - 8)])
        spent_us.append((time.monotonic_ns() - sent) / 1e3)

    _paced(seconds, send)
    if costs is not None:
        costs.put(spent_us)
    time.sleep(0.5)
    pub.close(linger=1000)


def measure_proxy(seconds: float, chained: bool = False) -> tuple[list[float], list[float]]:
    """The broker floor: PUB → bare ``zmq.proxy`` (another process) → SUB, no codec;
    ``chained``: through the host's two proxies and recorder socket, still no codec.
    Latencies and the producer's time from its send stamp to the send returning (µs)."""
    endpoints = free_endpoints()
    spawn = mp.get_context("spawn")
    proxy = spawn.Process(target=_proxy_run, args=(endpoints.publish, endpoints.feed, chained),
                          daemon=True)
    proxy.start()
    sub: zmq.Socket[bytes] = zmq.Context.instance().socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(endpoints.feed)
    time.sleep(0.5)
    start_at = time.monotonic_ns() + int(2.0e9)
    costs: Any = spawn.Queue()
    producer = spawn.Process(target=_proxy_produce,
                             args=(endpoints.publish, seconds, start_at, costs))
    producer.start()
    latencies: list[float] = []
    # a blocking wait for each message, as ours; done when nothing came for 200 ms and the
    # producer has ended or sent its costs (a child cannot exit before a large queued item
    # is read)
    while sub.poll(200) or (producer.is_alive() and costs.empty()):
        if sub.poll(0):
            frames = sub.recv_multipart()
            latencies.append((time.monotonic_ns() - int.from_bytes(frames[1][:8], "little"))
                             / 1e3)
    producer_us: list[float] = costs.get(timeout=10)
    producer.join()
    proxy.terminate()
    proxy.join()
    sub.close(linger=0)
    skip = int(len(latencies) * 0.02)
    return latencies[skip:], producer_us[skip:]


def _lsl_produce(seconds: float, start_at_ns: int) -> None:
    import pylsl

    info = pylsl.StreamInfo("bench", "Bench", ECG_CHUNK + 1, 0, "double64", "bench-lsl")
    outlet = pylsl.StreamOutlet(info)
    while not outlet.have_consumers():
        time.sleep(0.01)
    while time.monotonic_ns() < start_at_ns:
        time.sleep(0.001)
    total_rate = sum(RATES_HZ.values())
    period_ns = int(1e9 / total_rate)
    sample = [0.0] * (ECG_CHUNK + 1)
    next_ns = time.monotonic_ns()
    end_ns = next_ns + int(seconds * 1e9)
    while (now := time.monotonic_ns()) < end_ns:
        if now >= next_ns:
            sample[0] = float(time.monotonic_ns())
            outlet.push_sample(sample)
            next_ns += period_ns
        time.sleep(max(0.0, (next_ns - time.monotonic_ns()) / 1e9 - 0.0003))
    time.sleep(0.5)


def process_cpu_s(pid: int) -> float:
    """CPU time (user + system, all threads) of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentiles(latencies_us: list[float]) -> tuple[float, float, float]:
    values = np.asarray(latencies_us)
    return (float(np.percentile(values, 50)), float(np.percentile(values, 99)),
            float(values.max()))


def measure_bridge(endpoints: Endpoints, seconds: float, host_pid: int
                   ) -> tuple[list[float], list[float], list[float], tuple[float, float]]:
    """Latencies (µs) at receipt after decoding and validation; and, in the same run,
    the producer's time from its send stamp to ``publish`` returning (payload, binding
    tag, encoding, send), the subscriber's decode-and-validate time, and the host's CPU
    and wall seconds from the first message received to the last."""
    sub = Subscriber(endpoints, topics=("ecg.bench", "pose.bench", "hr.bench"), host=False)
    time.sleep(0.5)
    start_at = time.monotonic_ns() + int(1.5e9)
    spawn = mp.get_context("spawn")
    costs: Any = spawn.Queue()
    producer = spawn.Process(target=_produce, args=(endpoints.publish, seconds, start_at,
                                                    endpoints.control, costs))
    producer.start()
    latencies: list[float] = []
    decode_us: list[float] = []
    deadline = time.monotonic() + seconds + 10
    socket = sub.socket
    while (time.monotonic() < deadline and producer.is_alive()) or socket.poll(0):
        if not socket.poll(200):
            continue
        frames = socket.recv_multipart()  # what Subscriber.recv does, timed in two parts
        received = time.monotonic_ns()
        message = protocol.decode_data(frames)
        done = time.monotonic_ns()
        latencies.append((done - int(message.payload["sent_ns"])) / 1e3)
        decode_us.append((done - received) / 1e3)
        if len(latencies) == 1:  # after the stamps: reading /proc is not on the path
            host_from = (process_cpu_s(host_pid), time.monotonic())
    producer_us: list[float] = costs.get(timeout=10)
    producer.join()
    sub.close()
    skip = int(len(latencies) * 0.02)  # drop the warm-up
    host_cpu = (process_cpu_s(host_pid) - host_from[0], time.monotonic() - host_from[1])
    return latencies[skip:], producer_us[skip:], decode_us[skip:], host_cpu


def measure_throughput(endpoints: Endpoints, count: int) -> tuple[float, int]:
    sub = Subscriber(endpoints, topics=("pose.flood",), host=False)
    time.sleep(0.5)
    start_at = time.monotonic_ns() + int(1.5e9)
    producer = mp.get_context("spawn").Process(target=_flood,
                                               args=(endpoints.publish, count, start_at,
                                                     endpoints.control))
    producer.start()
    received = 0
    first = last = 0.0
    while True:
        frames_ready = sub.socket.poll(3000)
        if not frames_ready:
            break
        sub.socket.recv_multipart()
        last = time.monotonic()
        if received == 0:
            first = last
        received += 1
        if received == count:
            break
    producer.join()
    sub.close()
    rate = (received - 1) / (last - first) if received > 1 and last > first else 0.0
    return rate, count - received


def measure_lsl(seconds: float) -> list[float]:
    import pylsl

    start_at = time.monotonic_ns() + int(2.5e9)
    producer = mp.get_context("spawn").Process(target=_lsl_produce, args=(seconds, start_at))
    producer.start()
    streams = pylsl.resolve_byprop("name", "bench", timeout=10)
    inlet = pylsl.StreamInlet(streams[0])
    inlet.open_stream(timeout=5)
    latencies: list[float] = []
    while True:
        sample, _ = inlet.pull_sample(timeout=2.0)
        if sample is None:
            break
        latencies.append((time.monotonic_ns() - int(sample[0])) / 1e3)
    producer.join()
    inlet.close_stream()
    return latencies[int(len(latencies) * 0.02):]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--flood", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3,
                        help="interleave ours and the proxies in this many rounds of "
                             "seconds/rounds each (the machine's load drifts; a ratio "
                             "of back-to-back runs measures the drift too)")
    args = parser.parse_args()

    endpoints = free_endpoints()
    host, _workdir = start_host(endpoints, "B001", "vrexposure-bench-")
    ours, producer_us, decode_us, proxy, chain, peer_producer_us = [], [], [], [], [], []
    round_s = args.seconds / args.rounds
    host_cpu_s = host_wall_s = 0.0
    try:
        for i in range(args.rounds):
            ours_i, producer_i, decode_i, (cpu_s, wall_s) = measure_bridge(
                endpoints, round_s, host.pid)
            host_cpu_s += cpu_s
            host_wall_s += wall_s
            proxy_i, peer_producer_i = measure_proxy(round_s)
            chain_i, _ = measure_proxy(round_s, chained=True)
            print(f"round {i + 1}: p50 ours / proxy {np.percentile(ours_i, 50):.0f} / "
                  f"{np.percentile(proxy_i, 50):.0f} µs, host topology "
                  f"{np.percentile(chain_i, 50):.0f} µs", flush=True)
            for pooled, part in ((ours, ours_i), (producer_us, producer_i),
                                 (decode_us, decode_i), (proxy, proxy_i), (chain, chain_i),
                                 (peer_producer_us, peer_producer_i)):
                pooled.extend(part)
        throughput, lost = measure_throughput(endpoints, args.flood)
    finally:
        host.send_signal(signal.SIGTERM)
        host.wait(timeout=20)
        host.stdout.close()
    lsl = measure_lsl(args.seconds)
    p50, p99, worst = percentiles(ours)
    proxy_p50, proxy_p99, proxy_max = percentiles(proxy)
    chain_p50, chain_p99, chain_max = percentiles(chain)
    lsl_p50, lsl_p99, lsl_max = percentiles(lsl)
    print(f"machine: {os.cpu_count()} cores; {args.seconds:.0f} s in {args.rounds} rounds at "
          f"{sum(RATES_HZ.values()):.0f} msg/s (1 kHz ECG in {ECG_CHUNK}-sample chunks, "
          "90 Hz pose, 1 Hz HR)")
    print(f"{'path':<34}{'n':>7}{'p50 µs':>10}{'p99 µs':>10}{'max µs':>10}")
    print(f"{'producer → host → subscriber':<34}{len(ours):>7}{p50:>10.0f}{p99:>10.0f}"
          f"{worst:>10.0f}")
    print(f"{'PUB → bare zmq.proxy → SUB':<34}{len(proxy):>7}{proxy_p50:>10.0f}"
          f"{proxy_p99:>10.0f}{proxy_max:>10.0f}")
    print(f"{'… host topology, no Python codec':<34}{len(chain):>7}{chain_p50:>10.0f}"
          f"{chain_p99:>10.0f}{chain_max:>10.0f}")
    print(f"{'pylsl outlet → inlet (direct)':<34}{len(lsl):>7}{lsl_p50:>10.0f}"
          f"{lsl_p99:>10.0f}{lsl_max:>10.0f}")
    print(f"Python on the path, in the same run: producer (payload, tag, encode, send) "
          f"p50 {np.percentile(producer_us, 50):.0f} / p99 {np.percentile(producer_us, 99):.0f}"
          f" µs (the proxy's producer, stamp to send returned: p50 "
          f"{np.percentile(peer_producer_us, 50):.0f} / p99 "
          f"{np.percentile(peer_producer_us, 99):.0f} µs); subscriber decode + validate p50 "
          f"{np.percentile(decode_us, 50):.0f} / p99 {np.percentile(decode_us, 99):.0f} µs")
    host_cpu_pct = 100 * host_cpu_s / host_wall_s
    print(f"session host CPU while data flowed: {host_cpu_pct:.1f} % of a core")
    print(f"throughput through the host: {throughput:,.0f} msg/s, {lost} of {args.flood} lost")
    print(f"ratio ours / bare proxy: p50 {p50 / proxy_p50:.2f}, p99 {p99 / proxy_p99:.2f} "
          f"(goal ≤ 1.1); p99 ours / LSL: {p99 / lsl_p99:.2f}")
    print(json.dumps({"p50_us": round(p50, 1), "p99_us": round(p99, 1), "max_us": round(worst, 1),
                      "throughput_msgs_per_s": round(throughput) if lost == 0 else 0,
                      "lost_in_flood": lost,
                      "proxy_p50_us": round(proxy_p50, 1), "proxy_p99_us": round(proxy_p99, 1),
                      "producer_python_p50_us": round(float(np.percentile(producer_us, 50)), 1),
                      "producer_python_p99_us": round(float(np.percentile(producer_us, 99)), 1),
                      "proxy_producer_p50_us": round(float(np.percentile(peer_producer_us, 50)),
                                                     1),
                      "proxy_producer_p99_us": round(float(np.percentile(peer_producer_us, 99)),
                                                     1),
                      "decode_p50_us": round(float(np.percentile(decode_us, 50)), 1),
                      "decode_p99_us": round(float(np.percentile(decode_us, 99)), 1),
                      "host_cpu_pct": round(host_cpu_pct, 2),
                      "host_topology_p50_us": round(chain_p50, 1),
                      "host_topology_p99_us": round(chain_p99, 1),
                      "p50_ratio_vs_proxy": round(p50 / proxy_p50, 3),
                      "p99_ratio_vs_proxy": round(p99 / proxy_p99, 3),
                      "lsl_p50_us": round(lsl_p50, 1), "lsl_p99_us": round(lsl_p99, 1),
                      "p50_ratio_vs_lsl": round(p50 / lsl_p50, 3),
                      "p99_ratio_vs_lsl": round(p99 / lsl_p99, 3)}))


if __name__ == "__main__":
    main()
