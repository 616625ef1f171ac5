"""Template-matching beat detection on one continuous segment (private).

Shared by the ECG and PPG detectors; see :mod:`vrexposure.physio.ecg` for the
algorithm.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np
from scipy import signal

from vrexposure.physio._stream import (
    Detection,
    FloatArray,
    SampleBuffer,
    SegmentCore,
    SosFilter,
    best_lag_corr,
    centre,
    local_maxima,
    median,
    zscore,
)


@dataclass(slots=True)
class _Candidate:
    i: int  # envelope peak (sample index)
    amp: float  # envelope value at the peak
    fid: float  # fiducial (group-delay corrected), fractional sample index
    seg: FloatArray  # band-passed waveform around the fiducial (incl. lag margins)
    corr: float = float("nan")
    # (template, correlation, offset) of the last template match: accepting the beat
    # needs the same match again, and the template is never changed in place.
    fit: tuple[FloatArray, float, int] | None = None


@dataclass(frozen=True)
class DetectorSettings:
    """Tuning constants shared by the ECG and PPG detectors (times in seconds).

    The defaults are the ECG ones (:class:`~vrexposure.physio.ecg.EcgDetectorSettings`);
    :class:`~vrexposure.physio.ppg.PpgDetectorSettings` overrides the front end.
    They were chosen with ``bench/heart_rate.py``; change them only with it at hand.

    Attributes:
        band_hz: Causal Butterworth band-pass (upper edge clipped to 0.4 x rate).
        envelope: ``"energy"`` (moving average of the squared band-pass, ECG) or
            ``"rise"`` (band-pass minus its running minimum, PPG pulse height).
        envelope_s: Moving-average / running-minimum length.
        nms_s: A candidate is the largest envelope value within ±this.
        fiducial: ``"abs"``: largest absolute band-pass value in the envelope window
            (ECG); ``"max"``: largest band-pass value near the candidate;
            ``"slope"``: steepest rise before the candidate (PPG upstroke).
        fid_search_s: Extra search span for the fiducial point.
        delay_at_hz: Frequency at which the filter's group delay is removed from
            the reported times.
        template_pre_s: Template span before the fiducial.
        template_post_s: Template span after the fiducial.
        lag_s: Alignment search of the template, ±.
        learn_s: Initial learning period of a segment.
        refractory_s: No two beats closer than this.
        secondary_s: After a beat, candidates within this (T wave, dicrotic wave)
            need ``shape_secondary``.
        searchback_factor: A beat is overdue after this many median RR intervals.
        searchback_horizon_s: Rejected candidates stay eligible for search-back this long.
        searchback_timed: Last search-back choice (any shape, above half the
            threshold): a candidate at least this x median RR from both the last beat
            and the overdue candidate (0: off).
        missed_like_amp: A rejected candidate with a beat's shape and at least this x
            the signal level, away from both neighbouring beats, is reported with the
            next beat (``missed_like_index``): a small beat may be missing there.
        missed_like_gap_s: ... at least this long before the next beat (and
            ``secondary_s`` after the previous one).
        relearn_min_s: Re-learn after at least this long without a beat ...
        relearn_factor: ... and at least this many median RR intervals.
        relearn_window_s: Candidates of this last span are used to re-learn.
        shape_accept: Template correlation needed to accept a candidate.
        shape_searchback: ... to accept it by search-back.
        shape_secondary: ... within ``secondary_s`` of the previous beat.
        premature_factor: A candidate earlier than this x median RR is premature ...
        shape_premature: ... and needs this correlation ...
        amp_premature: ... and this fraction of the signal level.
        ectopic_amp: An odd-shaped candidate above this x the signal level ...
        ectopic_amp_max: ... and below this x is accepted as an ectopic beat.
        shape_level: Candidates matching the template this well update the signal level.
        level_clip: Level updates use amplitudes clipped to this x the signal level.
        noise_cap: The noise level counts at most this x the signal level.
        odd_gap_factor: An odd-shaped search-back pick must lie this many median RR
            before the candidate that triggered the search.
        floor_ratio: Candidates below this x the long-term level are never beats.
        floor_tau_s: Decay time constant of the long-term level.
        rr_min_s: Shortest interval entering the RR statistics of the detector.
        rr_max_s: Longest interval entering them.
        min_rate_hz: Lowest accepted sampling rate.
    """

    band_hz: tuple[float, float] = (5.0, 35.0)
    envelope: str = "energy"
    envelope_s: float = 0.08
    nms_s: float = 0.2
    fiducial: str = "abs"
    fid_search_s: float = 0.03
    searchback_timed: float = 0.0
    missed_like_amp: float = math.inf
    missed_like_gap_s: float = 0.25
    delay_at_hz: float = 12.0
    template_pre_s: float = 0.08
    template_post_s: float = 0.08
    lag_s: float = 0.04
    learn_s: float = 2.5
    refractory_s: float = 0.2
    secondary_s: float = 0.36
    searchback_factor: float = 1.66
    searchback_horizon_s: float = 2.0
    relearn_min_s: float = 2.5
    relearn_factor: float = 1.8
    relearn_window_s: float = 4.0
    shape_accept: float = 0.6
    shape_searchback: float = 0.75
    shape_secondary: float = 0.8
    premature_factor: float = 0.7
    shape_premature: float = 0.85
    amp_premature: float = 0.5
    ectopic_amp: float = 1.2
    ectopic_amp_max: float = 6.0
    shape_level: float = 0.85
    level_clip: float = 3.0
    noise_cap: float = 0.5
    odd_gap_factor: float = 0.6
    floor_ratio: float = 0.002
    floor_tau_s: float = 30.0
    rr_min_s: float = 0.25
    rr_max_s: float = 2.0
    min_rate_hz: float = 60.0


class TemplateBeatCore(SegmentCore):
    """Candidate envelope peaks, accepted by adaptive threshold + template shape."""

    def __init__(self, fs: float, settings: DetectorSettings) -> None:
        if fs < settings.min_rate_hz:
            raise ValueError(f"sampling rate must be >= {settings.min_rate_hz} Hz, got {fs}")
        if settings.envelope not in ("energy", "rise") or settings.fiducial not in (
            "abs",
            "max",
            "slope",
        ):
            raise ValueError("envelope must be 'energy'/'rise', fiducial 'abs'/'max'/'slope'")
        p = settings
        self.p = p
        self.fs = fs
        band = (p.band_hz[0], min(p.band_hz[1], 0.4 * fs))
        self.sos = signal.butter(2, band, btype="bandpass", fs=fs, output="sos")
        _, gd = signal.group_delay(signal.sos2tf(self.sos), w=[p.delay_at_hz], fs=fs)
        self.gd = float(gd[0])
        self.filter = SosFilter(self.sos)
        self.m = max(1, round(p.envelope_s * fs))
        self.kernel = np.full(self.m, 1.0 / self.m)  # moving average of the energy envelope
        self.h = max(1, round(p.nms_s * fs))
        self.pad = round(p.fid_search_s * fs)
        self.pre = max(1, round(p.template_pre_s * fs))
        self.post = max(1, round(p.template_post_s * fs))
        self.size = self.pre + self.post + 1
        self.lag = max(1, round(p.lag_s * fs))
        self.learn = round(p.learn_s * fs)
        self.relearn_window = round(p.relearn_window_s * fs)
        self.horizon = p.searchback_horizon_s * fs
        self.y = SampleBuffer()
        self.e = SampleBuffer()
        self.tail: FloatArray = np.zeros(0)  # last m-1 samples feeding the envelope
        self.look = (self.m + self.pad) if p.envelope == "energy" else 0
        self.n = 0
        self.next_i = 1
        self.initialized = False
        self.learning: list[_Candidate] = []
        self.recent: deque[_Candidate] = deque()
        self.pending: list[_Candidate] = []
        self.spk = 0.0
        self.npk = 0.0
        self.last: _Candidate | None = None
        self.rr_hist: deque[float] = deque(maxlen=8)
        self.template: FloatArray | None = None
        # (template, centre(template)) of the template last matched against a candidate
        self._centred: tuple[FloatArray | None, tuple[FloatArray, float]] = (
            None,
            (self.kernel, 0.0),
        )
        self.template_n = 0
        self.learned_i = 0  # candidate index of the last (re)learning
        self.long_level = 0.0  # slowly decaying maximum of the beat level
        self.long_level_i = 0

    # -- SegmentCore -----------------------------------------------------------------

    def process(self, x: FloatArray) -> list[Detection]:
        y = self.filter(x)
        env = self._envelope(y)
        self.y.append(y)
        self.e.append(env)
        self.n += x.size
        out = self._scan(self.n - max(self.h, self.pad + 1))
        keep = self.next_i - self.h - self.look - self.pad - self.pre - 2 * self.lag - 4
        self.y.trim_before(keep)
        self.e.trim_before(keep)
        return out

    def _envelope(self, y: FloatArray) -> FloatArray:
        if self.p.envelope == "energy":
            v = y * y
            ext = np.concatenate([self.tail, v]) if self.tail.size else v
            pad = self.m - 1 - self.tail.size
            if pad > 0:  # segment start: the window is shorter
                ext = np.concatenate([np.zeros(pad), ext])
            env = np.convolve(ext, self.kernel, mode="valid")
        else:
            v = y
            ext = np.concatenate([self.tail, v]) if self.tail.size else v
            pad = self.m - 1 - self.tail.size
            if pad > 0:
                ext = np.concatenate([np.full(pad, ext[0]), ext])
            mins = np.lib.stride_tricks.sliding_window_view(ext, self.m).min(axis=1)
            env = y - mins
        if self.m > 1:
            self.tail = ext[-(self.m - 1) :].copy()
        return env

    def finish(self) -> list[Detection]:
        return self._scan(self.n, at_end=True)

    @property
    def final_until(self) -> float:
        bound = float(self.next_i - self.look) - self.gd
        if not self.initialized:
            return min([bound, *(c.fid for c in self.learning)])
        # A rejected candidate can still be accepted by search-back while it is within
        # the horizon of the next candidate (whose index is at least next_i).
        live = [q.fid for q in self.pending if self.next_i - q.i <= self.horizon]
        return min([bound, *live])
        return bound

    # -- candidates --------------------------------------------------------------------

    def _scan(self, stop: int, at_end: bool = False) -> list[Detection]:
        """Find candidates with envelope index in [next_i, stop) and decide on them."""
        out: list[Detection] = []
        a, b = self.next_i, stop
        if b <= a:
            return out
        h = self.h
        for i, v in local_maxima(self.e, a, b, h):
            out += self._on_candidate(self._make_candidate(i, v))
        self.next_i = b
        self.pending = [q for q in self.pending if b - q.i <= self.horizon]
        if at_end and not self.initialized and self.learning:
            out += self._initialize(self.learning)
        return out

    def _make_candidate(self, i: int, amp: float) -> _Candidate:
        if self.p.fiducial == "abs":
            lo, hi = i - self.look, i + 1
            seg = np.abs(self.y.view(lo, hi))
        elif self.p.fiducial == "slope":
            lo, hi = i - self.m, i + self.pad + 1
            seg = np.diff(self.y.view(lo - 1, hi))
            lo = max(lo, self.y.start + 1)
        else:
            lo, hi = i - self.pad, i + self.pad + 1
            seg = self.y.view(lo, hi)
        k = int(np.argmax(seg))
        raw = max(lo, self.y.start) + k
        frac = 0.0
        if 0 < k < seg.size - 1:
            y0, y1, y2 = float(seg[k - 1]), float(seg[k]), float(seg[k + 1])
            den = y0 - 2 * y1 + y2
            if den < 0:
                frac = min(max(0.5 * (y0 - y2) / den, -0.5), 0.5)
        wave = self.y.view(raw - self.pre - self.lag, raw + self.post + self.lag + 1).copy()
        return _Candidate(i=i, amp=amp, fid=raw + frac - self.gd, seg=wave)

    def _on_candidate(self, c: _Candidate) -> list[Detection]:
        fs = self.fs
        self.recent.append(c)
        while self.recent and self.recent[0].i < c.i - self.relearn_window:
            self.recent.popleft()
        if not self.initialized:
            self.learning.append(c)
            if c.i >= self.learn:
                return self._initialize(self.learning)
            return []
        out: list[Detection] = []
        rr_avg = self._rr_avg()
        # Long-term level: follows the beat level up at once, decays with time constant tau.
        decay = math.exp(-(c.i - self.long_level_i) / (self.p.floor_tau_s * fs))
        self.long_level = max(self.long_level * decay, self.spk)
        self.long_level_i = c.i
        since = c.i - max(self.last.i if self.last is not None else 0, self.learned_i)
        if self.last is not None:
            out += self._searchback_all(c, rr_avg)
        if since > max(self.p.relearn_min_s * fs, self.p.relearn_factor * rr_avg):
            self._relearn(c.i)
            out += self._searchback_all(c, rr_avg)
        out += self._decide(c, rr_avg)
        self.pending = [q for q in self.pending if c.i - q.i <= self.horizon]
        return out

    # -- decisions ---------------------------------------------------------------------

    def _rr_avg(self) -> float:
        if len(self.rr_hist) >= 2:
            return median(self.rr_hist)
        return 0.8 * self.fs

    def _shape(self, c: _Candidate) -> float:
        if self.template is None or c.seg.size < self.template.size:
            return float("nan")
        if self._centred[0] is not self.template:
            self._centred = (self.template, centre(self.template))
        r, k = best_lag_corr(self.template, c.seg, self._centred[1])
        c.fit = (self.template, r, k)
        return r

    def _floor(self) -> float:
        """Candidates below this are never beats (e.g. amplifier noise after lead-off)."""
        return self.p.floor_ratio * self.long_level

    def _threshold(self) -> float:
        npk = min(self.npk, self.p.noise_cap * self.spk)
        return npk + 0.25 * (self.spk - npk)

    def _gated(self, c: _Candidate) -> bool:
        return self.template_n >= 3 and bool(np.isfinite(c.corr))

    def _decide(self, c: _Candidate, rr_avg: float) -> list[Detection]:
        fs = self.fs
        p = self.p
        c.corr = self._shape(c)
        thr = self._threshold()
        gated = self._gated(c)
        dt = (c.fid - self.last.fid) if self.last is not None else np.inf
        ok = False
        if c.amp > max(thr, self._floor()) and dt > p.refractory_s * fs:
            if not gated or c.corr >= p.shape_accept:
                ok = True
                if dt < p.secondary_s * fs and gated and c.corr < p.shape_secondary:
                    ok = False
                if (
                    dt < p.premature_factor * rr_avg
                    and gated
                    and (c.corr < p.shape_premature or c.amp < p.amp_premature * self.spk)
                ):
                    ok = False
            elif p.ectopic_amp * self.spk < c.amp < p.ectopic_amp_max * self.spk and (
                dt >= p.secondary_s * fs
            ):
                ok = True
        self._update_levels(c, accepted=ok, searchback=False)
        if ok:
            return [self._accept(c, searchback=False)]
        self.pending.append(c)
        return []

    def _update_levels(self, c: _Candidate, accepted: bool, searchback: bool) -> None:
        """Signal level follows beat-shaped candidates; noise level the others."""
        gated = self._gated(c)
        cap = self.p.level_clip * self.spk if self.spk > 0 else c.amp
        amp = min(c.amp, cap)
        if (gated and c.corr >= self.p.shape_level) or (accepted and not gated):
            wgt = 0.25 if searchback else 0.125
            self.spk = wgt * amp + (1 - wgt) * self.spk
        elif not accepted and (not gated or c.corr < self.p.shape_accept):
            self.npk = 0.125 * amp + 0.875 * self.npk

    def _searchback_all(self, c: _Candidate, rr_avg: float) -> list[Detection]:
        """Search back repeatedly while the gap before ``c`` is overdue."""
        out: list[Detection] = []
        while self.last is not None and c.i - self.last.i > self.p.searchback_factor * rr_avg:
            found = self._searchback(c, rr_avg)
            if not found:
                break
            out += found
        return out

    def _searchback(self, c: _Candidate, rr_avg: float) -> list[Detection]:
        """Accept the best rejected candidate in an overdue gap, if any qualifies.

        First choice: the largest beat-shaped candidate above half the threshold.
        Otherwise (e.g. a missed ectopic beat of a different shape before a
        compensatory pause): the largest candidate above the full threshold that
        lies well inside the gap.
        """
        if self.last is None:
            return []
        fs = self.fs
        p = self.p
        thr = self._threshold()
        best: _Candidate | None = None
        odd: _Candidate | None = None
        timed: _Candidate | None = None
        for q in self.pending:
            if q.i <= self.last.i or q.i >= c.i or c.i - q.i > self.horizon:
                continue
            if q.fid - self.last.fid < max(p.secondary_s * fs, 0.5 * rr_avg):
                continue
            if c.fid - q.fid < p.refractory_s * fs:
                continue
            if q.amp <= max(0.5 * thr, self._floor()):
                continue
            q.corr = self._shape(q)
            if (
                p.searchback_timed > 0
                and min(q.fid - self.last.fid, c.fid - q.fid) >= p.searchback_timed * rr_avg
                and q.amp < p.ectopic_amp_max * self.spk
                and (timed is None or q.amp > timed.amp)
            ):
                timed = q
            if self.template_n < 3 or q.corr >= p.shape_searchback:
                if best is None or q.amp > best.amp:
                    best = q
            elif (
                q.amp > thr
                and c.fid - q.fid >= p.odd_gap_factor * rr_avg
                and q.amp < p.ectopic_amp_max * self.spk
                and (odd is None or q.amp > odd.amp)
            ):
                odd = q
        pick = best if best is not None else odd if odd is not None else timed
        if pick is None:
            return []
        if not self._gated(pick):
            self._update_levels(pick, accepted=True, searchback=True)
        return [self._accept(pick, searchback=True)]

    def _accept(self, c: _Candidate, searchback: bool) -> Detection:
        fs = self.fs
        if self.last is not None:
            rr = c.fid - self.last.fid
            if self.p.rr_min_s * fs <= rr <= self.p.rr_max_s * fs:
                self.rr_hist.append(rr)
        level = self.spk if self.spk > 0 else float("nan")
        prominence = c.amp / level
        noise = 0.0
        missed_like: _Candidate | None = None
        if self.last is not None:
            between = [q for q in self.pending if self.last.i < q.i < c.i and q is not c]
            noise = max((q.amp for q in between), default=0.0) / level
            lo = self.last.fid + self.p.secondary_s * fs
            hi = c.fid - self.p.missed_like_gap_s * fs
            for q in between:
                if (
                    lo <= q.fid <= hi
                    and q.corr >= self.p.shape_accept
                    and q.amp >= self.p.missed_like_amp * level
                    and (missed_like is None or q.amp > missed_like.amp)
                ):
                    missed_like = q
        self._update_template(c)
        self.last = c
        self.pending = [q for q in self.pending if q.i > c.i]
        return Detection(
            index=c.fid,
            shape_corr=c.corr,
            prominence=prominence,
            noise_ratio=noise,
            searchback=searchback,
            missed_like_index=None if missed_like is None else missed_like.fid,
        )

    def _update_template(self, c: _Candidate) -> None:
        core = c.seg[self.lag : self.lag + self.size]
        if core.size != self.size:
            return
        if self.template is None:
            self.template = zscore(core)
            self.template_n = 1
            return
        if c.fit is not None and c.fit[0] is self.template:
            _, r, k = c.fit
        else:
            r, k = best_lag_corr(self.template, c.seg)
        if self.template_n >= 3 and not r >= 0.7:
            return
        aligned = zscore(c.seg[k : k + self.size])
        alpha = max(1.0 / (self.template_n + 1), 0.1)
        self.template = zscore((1 - alpha) * self.template + alpha * aligned)
        self.template_n += 1

    # -- (re)learning ------------------------------------------------------------------

    def _learn_levels(self, cands: list[_Candidate]) -> list[_Candidate]:
        amps = np.array([c.amp for c in cands])
        strong = [c for c in cands if c.amp >= 0.3 * amps.max()]
        weak = [c.amp for c in cands if c.amp < 0.3 * amps.max()]
        self.spk = median(c.amp for c in strong)
        self.npk = median(weak) if weak else 0.1 * self.spk
        return strong

    def _bootstrap_template(self, strong: list[_Candidate], min_members: int) -> None:
        """Seed the template from the largest group of mutually similar strong candidates.

        The current template is kept unless at least ``min_members`` candidates agree.
        """
        size = self.size
        strong = [c for c in strong if c.seg.size == size + 2 * self.lag]
        if len(strong) < min_members or not strong:
            return
        cores = [zscore(c.seg[self.lag : self.lag + size]) for c in strong]
        sims = np.array([[best_lag_corr(a, c.seg)[0] for c in strong] for a in cores])
        seed = int(np.argmax(sims.sum(axis=1)))
        members = [j for j in range(len(cores)) if sims[seed, j] >= 0.8]
        if len(members) < min_members:
            return
        self.template = cores[seed]
        self.template_n = 1
        for j in members:
            if j != seed:
                self._update_template(strong[j])

    def _initialize(self, cands: list[_Candidate]) -> list[Detection]:
        self.initialized = True
        self.learning = []
        if not cands:
            return []
        self.learned_i = cands[-1].i
        self.long_level_i = cands[-1].i
        strong = self._learn_levels(cands)
        self.long_level = self.spk
        self._bootstrap_template(strong, min_members=1)
        out: list[Detection] = []
        for c in cands:
            rr_avg = self._rr_avg()
            out += self._decide(c, rr_avg)
        return out

    def _relearn(self, i: int) -> None:
        self.learned_i = i
        cands = [c for c in self.recent if c.amp >= self._floor()]
        if not cands:
            return
        strong = self._learn_levels(cands)
        self._bootstrap_template(strong, min_members=3)
