"""Resting-baseline heart-rate statistics from window estimates (pure).

Only GOOD estimates inside the baseline period are used; UNCERTAIN and BAD ones
are counted but never averaged in. Among the GOOD values, outliers further than
``outlier_mads`` robust SDs from their median are dropped as well (a last guard
against a wrong value that slipped through). The baseline itself is flagged:
GOOD only if enough of the period was trustworthy.

Note that with overlapping windows (step < window) neighbouring values are
correlated: ``sd_bpm`` is the spread of the window means, not of beat-to-beat
heart rate.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from vrexposure.physio.records import HeartRateEstimate
from vrexposure.sensor_api import Quality

__all__ = ["BaselineStats"]


@dataclass(frozen=True, slots=True)
class BaselineStats:
    """Heart rate of a resting period.

    Attributes:
        mean_bpm: Mean of the used window values (``None`` if none usable).
        sd_bpm: Sample SD of the used values (``None`` if fewer than 2).
        median_bpm: Median of the used values (``None`` if none usable).
        n_used: Window values used.
        n_windows: Window estimates inside the period (any quality).
        n_outliers: GOOD values dropped as outliers.
        trusted_fraction: ``n_used / n_windows`` (0 when there are no windows).
        start_s: Start of the period (session clock, s).
        end_s: End of the period (session clock, s).
        quality: GOOD when at least ``min_trusted_fraction`` of the windows and at
            least ``min_windows`` values were usable; UNCERTAIN when some were;
            BAD when none.
    """

    mean_bpm: float | None
    sd_bpm: float | None
    median_bpm: float | None
    n_used: int
    n_windows: int
    n_outliers: int
    trusted_fraction: float
    start_s: float
    end_s: float
    quality: Quality

    @classmethod
    def from_estimates(
        cls,
        estimates: Iterable[HeartRateEstimate],
        start_s: float = -math.inf,
        end_s: float = math.inf,
        min_trusted_fraction: float = 0.6,
        min_windows: int = 10,
        outlier_mads: float = 5.0,
    ) -> BaselineStats:
        """Statistics of the estimates whose whole window lies in ``[start_s, end_s]``.

        Args:
            estimates: Window estimates, any order.
            start_s: Start of the resting period (session clock, s).
            end_s: End of the resting period (session clock, s).
            min_trusted_fraction: Share of GOOD windows needed for a GOOD baseline.
            min_windows: GOOD values needed for a GOOD baseline.
            outlier_mads: GOOD values further than this many robust SDs (1.4826 x MAD,
                at least 1 bpm) from their median are dropped.
        """
        inside = [e for e in estimates if e.t_s - e.window_s >= start_s and e.t_s <= end_s]
        good = np.array(
            [e.bpm for e in inside if e.quality is Quality.GOOD and e.bpm is not None],
            dtype=np.float64,
        )
        good = good[np.isfinite(good)]
        n_outliers = 0
        if good.size >= 3:
            med = float(np.median(good))
            spread = max(1.4826 * float(np.median(np.abs(good - med))), 1.0)
            keep = np.abs(good - med) <= outlier_mads * spread
            n_outliers = int((~keep).sum())
            good = good[keep]
        n_windows = len(inside)
        frac = good.size / n_windows if n_windows else 0.0
        if good.size == 0:
            quality = Quality.BAD
        elif frac >= min_trusted_fraction and good.size >= min_windows:
            quality = Quality.GOOD
        else:
            quality = Quality.UNCERTAIN
        t0 = min((e.t_s - e.window_s for e in inside), default=start_s)
        t1 = max((e.t_s for e in inside), default=end_s)
        return cls(
            mean_bpm=float(good.mean()) if good.size else None,
            sd_bpm=float(good.std(ddof=1)) if good.size >= 2 else None,
            median_bpm=float(np.median(good)) if good.size else None,
            n_used=int(good.size),
            n_windows=n_windows,
            n_outliers=n_outliers,
            trusted_fraction=frac,
            start_s=float(start_s) if math.isfinite(start_s) else float(t0),
            end_s=float(end_s) if math.isfinite(end_s) else float(t1),
            quality=quality,
        )

    def delta_bpm(self, bpm: float | None) -> float | None:
        """``bpm`` minus the baseline mean (``None`` if either is unknown)."""
        if bpm is None or self.mean_bpm is None:
            return None
        return bpm - self.mean_bpm

    def z_score(self, bpm: float | None) -> float | None:
        """``(bpm - mean) / sd`` (``None`` if unknown or the SD is zero)."""
        if bpm is None or self.mean_bpm is None or not self.sd_bpm:
            return None
        return (bpm - self.mean_bpm) / self.sd_bpm
