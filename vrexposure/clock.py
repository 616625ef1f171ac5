"""The session clock and client-side offset estimation (pure apart from reading time).

The session clock is the host's monotonic clock in seconds since the session
started. Clients estimate their offset to it NTP-style: send at ``t0`` (local),
the host answers its time ``t_host``, the reply arrives at ``t1`` (local);
``offset = t_host - (t0 + t1) / 2`` with an error bound of half the round trip.
Only the lowest-round-trip estimates are kept, since queueing delay only ever
adds to the round trip.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass


class SessionClock:
    """Seconds since session start on a monotonic clock; ``start_at_s`` resumes a session."""

    def __init__(self, start_at_s: float = 0.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._origin = monotonic() - start_at_s

    def now(self) -> float:
        return self._monotonic() - self._origin


@dataclass(frozen=True)
class OffsetSample:
    offset_s: float
    rtt_s: float
    local_time_s: float


class OffsetEstimator:
    """Keeps the ``keep`` lowest-round-trip samples of the last ``window`` and averages them."""

    def __init__(self, keep: int = 4, window: int = 32) -> None:
        self.keep = keep
        self.window = window
        self._samples: list[OffsetSample] = []

    def add(self, t_send_local: float, t_host: float, t_recv_local: float) -> OffsetSample:
        rtt = max(0.0, t_recv_local - t_send_local)
        sample = OffsetSample(t_host - (t_send_local + t_recv_local) / 2.0, rtt, t_recv_local)
        self._samples.append(sample)
        del self._samples[:-self.window]
        return sample

    @property
    def ready(self) -> bool:
        return bool(self._samples)

    def best(self) -> list[OffsetSample]:
        return sorted(self._samples, key=lambda s: s.rtt_s)[: self.keep]

    def offset_s(self) -> float:
        best = self.best()
        if not best:
            raise ValueError("no clock samples yet")
        return sum(s.offset_s for s in best) / len(best)

    def error_bound_s(self) -> float:
        best = self.best()
        if not best:
            raise ValueError("no clock samples yet")
        return min(s.rtt_s for s in best) / 2.0


def poll_timeout_ms(wait_s: float) -> int:
    """A poll timeout that waits at least ``wait_s`` (0 when due): rounded up, because a
    wait under 1 ms truncated to poll(0) makes a loop spin until its deadline (the host's
    loop did: 140 000 polls in 11 s, on the cores the data plane needs)."""
    return max(0, math.ceil(wait_s * 1000))
