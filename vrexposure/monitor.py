"""Heart-rate monitoring against the patient's own baseline (pure, streaming).

The host feeds every heart-rate value it forwards; the monitor collects the
trustworthy ones during baseline and, once a baseline exists, watches for a
sustained rise above ``mean + max(rise_bpm, rise_sd × SD)``. It only returns
commands (``complete_baseline``, ``alert``, ``alert_cleared``) for the state
machine: physiology informs the therapist, it never changes the scene.
"""

from __future__ import annotations

import statistics
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
