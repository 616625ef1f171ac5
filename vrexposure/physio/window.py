"""Heart rate per sliding window, with a quality flag (streaming, pure).

Windows are ``[t_end - window_s, t_end)`` with ``t_end`` on the grid
``k * step_s`` of the session clock. A window is emitted once the caller's
*watermark* (the time before which no further beat can arrive) has passed its
end, so its content never depends on how the input was chunked.

Interval membership: an interval belongs to a window when both of its beats lie
inside it. The window's heart rate counts the beats the intervals imply:

* NORMAL and WARMUP intervals are used as they are;
* a SHORT interval followed by anything but EXTRA is a premature beat: used
  (a real beat, e.g. an atrial premature beat), and so is the ECTOPIC
  (compensatory) interval after it;
* a SHORT + EXTRA pair is one interval split by an extra detection: merged;
* a MISSED interval of ≈ k references counts as k intervals;
* a LONG + SHORT pair summing to ≈ two references is one displaced beat: both
  are used; the SHORT half alone at a window's start is left out;
* LONG, IMPLAUSIBLE and a trailing SHORT interval are left out;

``bpm = 60000 * (number of intervals) / (their total duration)``. RMSSD uses
adjacent NORMAL (and WARMUP) pairs only. See :mod:`vrexposure.physio.quality`
for the flag.

Waveform input (ECG/PPG) adds independent evidence
(:mod:`vrexposure.physio.crosscheck`): a window is GOOD only if the slope
envelope of the raw signal confirms its beats (no prominent peak without a
beat, no beat without a peak, no missed beats of a halved rate) and its rate is
a plausible continuation of the last trusted windows; every failed check is
named in ``reasons``. For ECG, when the envelope confirms an unbroken chain of
beats, *every* interval counts (ectopic beats are beats, classified and counted
in ``n_ectopic``) and the beat-shape, premature-beat and search-back rules are
relaxed; an interval of about k references or a long interval (> 1.3 x the
window's median, or the window's last) still makes the window uncertain, unless it
is the pause after a premature beat in a repeating pattern (bigeminy: every
coupling + pause pair spans about the same time).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from vrexposure.physio._stream import median
from vrexposure.physio.crosscheck import (
    CrossCheckSettings,
    RateContinuity,
    SlopeEnvelope,
    beats_agree,
    envelope_peaks,
)
from vrexposure.physio.quality import WindowFeatures, WindowQualitySettings, assess_window
from vrexposure.physio.records import HeartRateEstimate, RrLabel
from vrexposure.physio.rr import rmssd_ms
from vrexposure.sensor_api import Quality

__all__ = ["CorrectedIntervals", "HeartRateWindower", "correct_intervals"]

_USABLE = (RrLabel.NORMAL, RrLabel.WARMUP)
_PAUSE_LABELS = (RrLabel.MISSED, RrLabel.LONG, RrLabel.NORMAL, RrLabel.ECTOPIC)
_EPS_S = 1e-9


@dataclass(frozen=True, slots=True)
class _Item:
    t_start: float
    t_end: float
    rr_ms: float
    label: RrLabel
    adjacent: bool  # directly follows the previous stored interval
    displaced_second: bool = False  # the SHORT half of a displaced beat (LONG + SHORT)


@dataclass(frozen=True, slots=True)
class _BeatMark:
    t_s: float
    shape_corr: float
    noise_ratio: float
    searchback: bool
    prominence: float
    missed_like_s: float | None = None


@dataclass(frozen=True, slots=True)
class CorrectedIntervals:
    """Result of :func:`correct_intervals`."""

    duration_ms: float  # total duration of the used intervals
    count: float  # number of beat intervals they imply
    n_premature: int
    n_corrected: int
    n_excluded: int


def correct_intervals(
    labels: list[RrLabel], rr_ms: list[float], adjacent: list[bool]
) -> CorrectedIntervals:
    """Apply the window rules above to one window's intervals (oldest first).

    ``adjacent[i]`` tells whether interval ``i`` directly follows interval ``i - 1``.
    """
    normal = [r for r, lab in zip(rr_ms, labels, strict=True) if lab in _USABLE]
    ref = median(normal) if normal else median(rr_ms) if rr_ms else 0.0
    duration = 0.0
    count = 0.0
    premature = corrected = excluded = 0
    n = len(labels)
    displaced = displaced_beats(labels, rr_ms, adjacent, ref)
    for i, (lab, rr) in enumerate(zip(labels, rr_ms, strict=True)):
        nxt = labels[i + 1] if i + 1 < n and adjacent[i + 1] else None
        prev = labels[i - 1] if i > 0 and adjacent[i] else None
        if i in displaced or (i - 1) in displaced:
            duration += rr  # both halves of a displaced beat: the pair is two intervals
            count += 1
        elif lab in _USABLE or lab is RrLabel.ECTOPIC:
            duration += rr
            count += 1
        elif lab is RrLabel.SHORT:
            if nxt is None:
                excluded += 1
            elif nxt is not RrLabel.EXTRA:
                duration += rr
                count += 1
                premature += 1
        elif lab is RrLabel.EXTRA:
            if prev is RrLabel.SHORT:
                duration += rr + rr_ms[i - 1]
                count += 1
                corrected += 1
            else:
                excluded += 1
        elif lab is RrLabel.MISSED and ref > 0:
            duration += rr
            count += max(2, round(rr / ref))
            corrected += 1
        else:
            excluded += 1
    return CorrectedIntervals(duration, count, premature, corrected, excluded)


def displaced_beats(
    labels: list[RrLabel],
    rr_ms: list[float],
    adjacent: list[bool],
    ref_ms: float,
    tolerance: float = 0.15,
) -> set[int]:
    """Indices ``i`` of LONG intervals followed by a SHORT one that sum to ~2 references.

    That is one beat detected late (or early): dropping the long half and keeping the
    short one as a premature beat would bias the rate up, so both are kept.
    """
    out: set[int] = set()
    if ref_ms <= 0:
        return out
    for i in range(len(labels) - 1):
        if (
            labels[i] is RrLabel.LONG
            and labels[i + 1] is RrLabel.SHORT
            and adjacent[i + 1]
            and abs(rr_ms[i] + rr_ms[i + 1] - 2 * ref_ms) <= tolerance * ref_ms
        ):
            out.add(i)
    return out


def compensatory_pauses(
    labels: list[RrLabel], rr_ms: list[float], adjacent: list[bool], tolerance: float = 0.2
) -> set[int]:
    """Indices of long intervals that are the pause after a premature beat (bigeminy).

    In a repeating premature-beat pattern every coupling interval (SHORT) is followed by
    a long pause, and each pair spans about the same time. A pair that spans much more
    than the window's typical pair hides a missed beat and is not returned. Needs at
    least two such pairs in the window.
    """
    pairs = [
        i
        for i in range(1, len(labels))
        if labels[i - 1] is RrLabel.SHORT and adjacent[i] and labels[i] in _PAUSE_LABELS
    ]
    if len(pairs) < 2:
        return set()
    sums = [rr_ms[i - 1] + rr_ms[i] for i in pairs]
    typical = median(sums)
    return {i for i, v in zip(pairs, sums, strict=True) if v <= (1 + tolerance) * typical}


class HeartRateWindower:
    """Collects beats/intervals and emits one :class:`HeartRateEstimate` per window.

    Args:
        window_s: Window length, seconds.
        step_s: Spacing of window ends on the session clock, seconds.
        quality: Thresholds of the quality rule.
        envelope: Slope envelope of the waveform (ECG/PPG input): enables the
            independent checks of :mod:`vrexposure.physio.crosscheck`. Without it
            (RR-only input) the beat-level rule alone decides.
        crosscheck: Constants of those checks.
    """

    def __init__(
        self,
        window_s: float = 10.0,
        step_s: float = 1.0,
        quality: WindowQualitySettings | None = None,
        envelope: SlopeEnvelope | None = None,
        crosscheck: CrossCheckSettings | None = None,
    ) -> None:
        if not (window_s > 0 and step_s > 0):
            raise ValueError("window_s and step_s must be > 0")
        self.window_s = float(window_s)
        self.step_s = float(step_s)
        self.quality = quality or WindowQualitySettings()
        self._items: deque[_Item] = deque()
        self._beats: deque[_BeatMark] = deque()
        self._starts: deque[float] = deque()  # session times where continuous input began
        self._bad: deque[tuple[float, float]] = deque()
        self._next_k: int | None = None
        self._last_item_end: float | None = None
        self.envelope = envelope
        self.crosscheck = crosscheck or (envelope.s if envelope is not None else None)
        self._continuity = RateContinuity(self.crosscheck)

    # -- input -----------------------------------------------------------------------

    def mark_start(self, t_s: float) -> None:
        """Continuous input (re)starts at ``t_s`` (first input, after a gap or reset)."""
        if self._next_k is None:
            self._next_k = math.floor(t_s / self.step_s + _EPS_S) + 1
        self._starts.append(float(t_s))
        self._last_item_end = None

    def mark_bad_input(self, t0_s: float, t1_s: float) -> None:
        """Input in ``[t0_s, t1_s)`` was invalid or flagged bad by the device."""
        if t1_s <= t0_s:
            return
        if self._bad and t0_s <= self._bad[-1][1] + _EPS_S:
            a, b = self._bad.pop()
            self._bad.append((min(a, t0_s), max(b, t1_s)))
        else:
            self._bad.append((float(t0_s), float(t1_s)))

    def add_beat(
        self,
        t_s: float,
        shape_corr: float = float("nan"),
        noise_ratio: float = 0.0,
        searchback: bool = False,
        prominence: float = 1.0,
        missed_like_s: float | None = None,
    ) -> None:
        """Record a beat (for the beat count and the beat-level quality checks)."""
        if self._next_k is None:
            self.mark_start(t_s)
        self._beats.append(
            _BeatMark(
                float(t_s),
                float(shape_corr),
                float(noise_ratio),
                bool(searchback),
                prominence,
                missed_like_s,
            )
        )

    def add_interval(self, t_end_s: float, rr_ms: float, label: RrLabel) -> None:
        """Record the interval that ends with the beat at ``t_end_s``."""
        t_start = t_end_s - rr_ms / 1000.0
        adjacent = self._last_item_end is not None and abs(self._last_item_end - t_start) < 0.05
        second = False
        if adjacent and label is RrLabel.SHORT and self._items:
            prev = self._items[-1]
            recent = [it.rr_ms for it in list(self._items)[-9:] if it.label in _USABLE]
            if prev.label is RrLabel.LONG and recent:
                ref = median(recent)
                second = bool(
                    displaced_beats([prev.label, label], [prev.rr_ms, rr_ms], [False, True], ref)
                )
        self._items.append(_Item(t_start, float(t_end_s), float(rr_ms), label, adjacent, second))
        self._last_item_end = float(t_end_s)

    def break_sequence(self) -> None:
        """The next interval does not directly follow the previous one."""
        self._last_item_end = None

    # -- output ----------------------------------------------------------------------

    def advance(self, watermark_s: float | None) -> list[HeartRateEstimate]:
        """Emit every window whose end is at or before ``watermark_s``."""
        out: list[HeartRateEstimate] = []
        if watermark_s is None or self._next_k is None:
            return out
        while self._next_k * self.step_s <= watermark_s + _EPS_S:
            out.append(self._window(self._next_k * self.step_s))
            self._next_k += 1
        self._prune(self._next_k * self.step_s - self.window_s)
        return out

    def _window(self, t_end: float) -> HeartRateEstimate:
        w = self.window_s
        t_start = t_end - w
        items = [it for it in self._items if it.t_start >= t_start - _EPS_S and it.t_end < t_end]
        if items and items[0].displaced_second:
            # Its LONG partner lies before the window: alone it would bias the rate up.
            items = items[1:]
        beats = [b for b in self._beats if t_start <= b.t_s < t_end]
        labels = [it.label for it in items]
        rr = [it.rr_ms for it in items]
        adjacent = [it.adjacent for it in items]
        if adjacent:
            adjacent[0] = False
        bad = 0.0
        for a, b in self._bad:
            bad += max(0.0, min(b, t_end) - max(a, t_start))
        ectopic = _ectopic_beats(beats, items, self.quality.min_shape_corr)
        cross: str | None = None
        chain = all(adjacent[1:]) and len(rr) >= 2
        use_chain = False
        if self.envelope is not None and self.crosscheck is not None:
            # Every detected beat counts (ectopic beats are beats) when an independent
            # count of the waveform's beats agrees with that rate.
            # From a little before the window: a peak at the very start needs its left side.
            t_env, env = self.envelope.window(t_start - 0.5, t_end)
            low, high = envelope_peaks(t_env, env, self.crosscheck)
            if chain and not any(lab is RrLabel.IMPLAUSIBLE for lab in labels):
                times = [b.t_s for b in beats]
                cross = beats_agree(times, low, high, self.crosscheck, t_end)
                use_chain = cross is None and self.crosscheck.count_every_beat
            else:
                cross = "broken_beat_sequence"
        corrs = [
            b.shape_corr
            for b in beats
            if not math.isnan(b.shape_corr) and not (use_chain and b.t_s in ectopic)
        ]
        if use_chain:
            assert self.crosscheck is not None  # use_chain needs the cross-check
            duration_ms, count = float(sum(rr)), float(len(rr))
            # A long interval may hide a small beat both estimators missed: not trusted,
            # unless it is only a little longer than the window's typical interval (sinus
            # arrhythmia) or half of a displaced beat.
            normal = [r for r, lab in zip(rr, labels, strict=True) if lab in _USABLE]
            typical = median(normal or rr)
            moved = displaced_beats(labels, rr, adjacent, typical) | compensatory_pauses(
                labels, rr, adjacent
            )
            long_ok = self.crosscheck.long_ratio * median(rr)
            # The last interval could be the first half of a displaced beat whose short
            # half is not in the window: it cannot be judged yet.
            last = len(rr) - 1
            n_corrected = sum(
                1
                for i, (lab, v) in enumerate(zip(labels, rr, strict=True))
                if i not in moved
                and (lab is RrLabel.MISSED or (lab is RrLabel.LONG and (v > long_ok or i == last)))
            )
            n_excluded = n_premature = 0
            # A beat of any shape is certain when it stands well above the noise.
            weak = [b for b in beats if b.t_s in ectopic and b.prominence < 0.5]
            if weak:
                corrs.append(-1.0)
            n_searchback = sum(1 for b in beats if b.searchback and b.prominence < 0.5)
        else:
            cor = correct_intervals(labels, rr, adjacent)
            duration_ms, count = cor.duration_ms, cor.count
            n_corrected, n_excluded, n_premature = cor.n_corrected, cor.n_excluded, cor.n_premature
            n_searchback = sum(1 for b in beats if b.searchback)
        feats = WindowFeatures(
            window_s=w,
            n_beats=len(beats),
            n_used=round(count),
            n_warmup=sum(1 for lab in labels if lab is RrLabel.WARMUP),
            n_premature=n_premature,
            n_corrected=n_corrected,
            n_excluded=n_excluded,
            used_coverage=duration_ms / 1000.0 / w,
            min_shape_corr=min(corrs) if corrs else float("nan"),
            max_noise_ratio=max((b.noise_ratio for b in beats), default=0.0),
            n_searchback=n_searchback,
            discontinuous=any(t_start < s < t_end for s in self._starts),
            bad_input_fraction=bad / w,
            # Every stored beat: the one after the window's last carries a suspect
            # between them.
            n_missed_like=sum(
                1
                for b in self._beats
                if b.missed_like_s is not None and t_start <= b.missed_like_s < t_end
            ),
        )
        quality, reasons = assess_window(feats, self.quality)
        bpm = None
        if quality is not Quality.BAD and duration_ms > 0:
            bpm = 60000.0 * count / duration_ms
        if self.crosscheck is not None and quality is not Quality.BAD and bpm is not None:
            # Every failed check is named, so the panel can say why a value is uncertain.
            extra = [] if cross is None else [cross]
            if quality is Quality.GOOD:
                jump = self._continuity.check(t_end, bpm)
                extra += [] if jump is None else [jump]
            if extra:
                quality, reasons = Quality.UNCERTAIN, (*reasons, *extra)
            else:
                self._continuity.trusted(t_end, bpm)
        return HeartRateEstimate(
            t_s=t_end,
            bpm=bpm,
            quality=quality,
            rmssd_ms=rmssd_ms(rr, labels, adjacent) if rr else None,
            n_beats=len(beats),
            window_s=w,
            reasons=reasons,
            n_ectopic=len(ectopic),
        )

    def _prune(self, before_s: float) -> None:
        while self._items and self._items[0].t_start < before_s - 1.0:
            self._items.popleft()
        while self._beats and self._beats[0].t_s < before_s - 1.0:
            self._beats.popleft()
        while len(self._starts) > 1 and self._starts[0] < before_s - 1.0:
            self._starts.popleft()
        while self._bad and self._bad[0][1] < before_s - 1.0:
            self._bad.popleft()
        if self.envelope is not None:
            self.envelope.prune(before_s - 1.0)


def _ectopic_beats(beats: list[_BeatMark], items: list[_Item], min_corr: float) -> set[float]:
    """Times of beats classified ectopic: premature (ending a SHORT interval) or odd-shaped."""
    premature = {it.t_end for it in items if it.label is RrLabel.SHORT}
    return {
        b.t_s
        for b in beats
        if b.t_s in premature or (not math.isnan(b.shape_corr) and b.shape_corr < min_corr)
    }
