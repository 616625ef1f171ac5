"""Heart-rate monitoring against the patient's own baseline (pure, streaming).

The host feeds every heart-rate value it forwards; the monitor collects the
trustworthy ones during baseline and, once a baseline exists, watches for a
sustained rise above ``mean + max(rise_bpm, rise_sd × SD)``. It only returns
commands (``complete_baseline``, ``alert``, ``alert_cleared``) for the state
machine: physiology informs the therapist, it never changes the scene.
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from .hierarchy import AlertRule

#: Fewer trustworthy values than this and the baseline is declared unavailable.
MIN_BASELINE_VALUES = 5
#: More than enough for any baseline (10 minutes at 30 values a second).
MAX_BASELINE_VALUES = 20_000
ALERT_HR_HIGH = "hr_above_baseline"


@dataclass
class HeartRateMonitor:
    rule: AlertRule
    baseline_values: list[float] = field(default_factory=list)
    collecting: bool = False
    baseline_mean_bpm: float | None = None
    baseline_sd_bpm: float | None = None
    above_since_s: float | None = None
    below_since_s: float | None = None
    alert_active: bool = False
    last_bpm: float | None = None
    last_quality: str = "bad"

    def start_baseline(self) -> None:
        self.collecting = True
        self.baseline_values.clear()

    def set_baseline(self, mean_bpm: float | None, sd_bpm: float | None) -> None:
        self.collecting = False
        self.baseline_mean_bpm = mean_bpm
        self.baseline_sd_bpm = sd_bpm

    def baseline_args(self) -> dict[str, Any]:
        """Arguments of the ``complete_baseline`` command from what was collected."""
        values = self.baseline_values
        if len(values) < MIN_BASELINE_VALUES:
            return {"mean_bpm": None, "sd_bpm": None, "n_values": len(values)}
        return {"mean_bpm": round(statistics.fmean(values), 2),
                "sd_bpm": round(statistics.stdev(values), 2), "n_values": len(values)}

    @property
    def threshold_bpm(self) -> float | None:
        if self.baseline_mean_bpm is None or self.baseline_sd_bpm is None:
            return None
        return self.rule.threshold_bpm(self.baseline_mean_bpm, self.baseline_sd_bpm)

    def observe(self, t_s: float, bpm: float, quality: str) -> list[tuple[str, dict[str, Any]]]:
        """Feed one heart-rate value; returns commands (name, args) for the state machine."""
        self.last_bpm, self.last_quality = bpm, quality
        if quality != "good":
            # An uncertain value neither starts nor clears an alert: it is not evidence.
            return []
        if self.collecting:
            if len(self.baseline_values) < MAX_BASELINE_VALUES:  # a flood cannot grow it
                self.baseline_values.append(bpm)
            return []
        threshold = self.threshold_bpm
        if threshold is None:
            return []
        commands: list[tuple[str, dict[str, Any]]] = []
        if bpm > threshold:
            self.below_since_s = None
            if self.above_since_s is None:
                self.above_since_s = t_s
            if not self.alert_active and t_s - self.above_since_s >= self.rule.sustain_s:
                self.alert_active = True
                commands.append(("alert", {
                    "alert": ALERT_HR_HIGH, "value_bpm": round(bpm, 1),
                    "threshold_bpm": round(threshold, 1),
                    "baseline_mean_bpm": self.baseline_mean_bpm,
                    "sustained_s": round(t_s - self.above_since_s, 2)}))
        else:
            self.above_since_s = None
            if self.below_since_s is None:
                self.below_since_s = t_s
            if self.alert_active and t_s - self.below_since_s >= self.rule.sustain_s / 2:
                self.alert_active = False
                commands.append(("alert_cleared", {"alert": ALERT_HR_HIGH}))
        return commands


class PrimaryHrSource:
    """Which heart-rate source the headline and the alert read: the one chosen (config or the
    therapist) while it sends, else the one with the most trusted values over the last 30 s
    (ties by name, so the choice never flips between equals). One rule, on the host, so the
    panel's big number and the alert never come from different sensors."""

    WINDOW_S = 30.0
    MAX_SOURCES = 32

    def __init__(self, chosen: str | None = None) -> None:
        self.chosen = chosen
        self._good_s: dict[str, deque[float]] = {}
        self._last_s: dict[str, float] = {}

    def observe(self, t_s: float, source: str, quality: str) -> None:
        if source not in self._last_s and len(self._last_s) >= self.MAX_SOURCES:
            return
        self._last_s[source] = t_s
        good = self._good_s.setdefault(source, deque())
        if quality == "good":
            good.append(t_s)
        while good and good[0] < t_s - self.WINDOW_S:
            good.popleft()

    def _good_count(self, source: str, t_s: float) -> int:
        return sum(1 for t in self._good_s.get(source, ()) if t >= t_s - self.WINDOW_S)

    def primary(self, t_s: float) -> str | None:
        live = [s for s, last in self._last_s.items() if t_s - last <= self.WINDOW_S]
        if self.chosen in live:
            return self.chosen
        if not live:
            return None
        return max(sorted(live), key=lambda s: self._good_count(s, t_s))
