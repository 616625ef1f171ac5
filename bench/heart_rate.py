"""Heart-rate benchmark: vrexposure.physio (streaming) vs NeuroKit2 and sleepecg (batch).

Run from the repository root: ``python bench/heart_rate.py`` (needs ``wfdb``,
``neurokit2``, ``sleepecg`` and the shared data directory beside the clone,
``../shared/data``; override with ``VREXPOSURE_SHARED_DATA``).

Prints a table, then as its last line one JSON object (see bench/README.md).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from vrexposure.physio import (  # noqa: E402
    EcgHeartRatePipeline,
    HeartRateEstimate,
    PpgHeartRatePipeline,
    Quality,
)

FloatArray = npt.NDArray[np.float64]

#: MIT-BIH annotation symbols that are beats (everything else: rhythm, noise, ...).
BEAT_SYMBOLS = frozenset("NLRBAaJSVrFejnE/fQ?")
TOL_S = 0.100  # beat match tolerance
WINDOW_S = 10.0
STEP_S = 1.0
CHUNK_S = 0.25  # how the streaming pipeline is fed (any chunking gives the same result)


def data_dir() -> Path:
    env = os.environ.get("VREXPOSURE_SHARED_DATA")
    path = Path(env) if env else REPO.parent / "shared" / "data"
    if not path.is_dir():
        raise SystemExit(f"shared data not found at {path} (set VREXPOSURE_SHARED_DATA)")
    return path


# -- records ---------------------------------------------------------------------------


@dataclass
class Record:
    name: str
    kind: str  # "ecg" or "ppg"
    signal: FloatArray
    fs: float
    ref_beats_s: FloatArray  # reference beat times (s)
    ref_note: str
    #: For PPG: time windows whose ECG reference is unambiguous (both ECG detectors agree).
    ref_valid: Callable[[float, float], bool] | None = None
    noisy_from_s: float | None = None  # NSTDB excerpts: noise starts here
    lag_s: float = 0.0  # PPG: median pulse lag behind the ECG reference (removed)
    extra: dict[str, object] = field(default_factory=dict)


def load_mitdb100(root: Path) -> Record:
    import wfdb

    rec = wfdb.rdrecord(str(root / "mitdb_100" / "100"))
    ann = wfdb.rdann(str(root / "mitdb_100" / "100"), "atr")
    pairs = zip(ann.sample, ann.symbol, strict=True)
    beats = np.array([s for s, sym in pairs if sym in BEAT_SYMBOLS])
    fs = float(rec.fs)
    return Record(
        "mitdb100",
        "ecg",
        rec.p_signal[:, 0].astype(np.float64),
        fs,
        beats / fs,
        "MIT-BIH annotations (beat symbols)",
    )


def load_nstdb(root: Path, snr: int) -> Record:
    x = np.loadtxt(root / "nstdb_118" / f"118e{snr:02d}.csv")
    ann = np.loadtxt(root / "nstdb_118" / f"118e{snr:02d}_ann.csv")
    fs = 360.0
    # Excerpt offsets in the 30-min record (found by aligning the excerpt annotations with
    # 118e24_annotations.csv): noise is added from 9:00 of the record on.
    offset = {24: 160000, 12: 180000}[snr]
    noisy_from = (9 * 60 * fs - offset) / fs
    return Record(
        f"nstdb118e{snr:02d}",
        "ecg",
        x,
        fs,
        ann / fs,
        "NSTDB reference R peaks",
        noisy_from_s=noisy_from,
    )


# -- detectors -------------------------------------------------------------------------


def run_ours_ecg(x: FloatArray, fs: float) -> tuple[FloatArray, list[HeartRateEstimate], float]:
    pipe = EcgHeartRatePipeline(window_s=WINDOW_S, step_s=STEP_S)
    return _run_pipeline(pipe, x, fs)


def run_ours_ppg(x: FloatArray, fs: float) -> tuple[FloatArray, list[HeartRateEstimate], float]:
    pipe = PpgHeartRatePipeline(window_s=WINDOW_S, step_s=STEP_S)
    return _run_pipeline(pipe, x, fs)


def _run_pipeline(
    pipe: EcgHeartRatePipeline | PpgHeartRatePipeline, x: FloatArray, fs: float
) -> tuple[FloatArray, list[HeartRateEstimate], float]:
    t = time.perf_counter()
    beats: list[float] = []
    est: list[HeartRateEstimate] = []
    n = max(1, round(CHUNK_S * fs))
    for i in range(0, x.size, n):
        out = pipe.feed(x[i : i + n], i / fs, fs)
        beats += [b.t_s for b in out.beats]
        est += out.estimates
    out = pipe.flush()
    beats += [b.t_s for b in out.beats]
    est += out.estimates
    return np.array(beats), est, time.perf_counter() - t


def _clean(x: FloatArray) -> FloatArray:
    x = np.asarray(x, dtype=np.float64).copy()
    bad = ~np.isfinite(x)
    if bad.any():
        x[bad] = np.interp(np.flatnonzero(bad), np.flatnonzero(~bad), x[~bad])
    return x


def peer_neurokit(method: str) -> Callable[[FloatArray, float], FloatArray]:
    def detect(x: FloatArray, fs: float) -> FloatArray:
        import neurokit2 as nk

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clean = nk.ecg_clean(_clean(x), sampling_rate=int(fs), method="neurokit")
            _, info = nk.ecg_peaks(clean, sampling_rate=int(fs), method=method)
        return np.asarray(info["ECG_R_Peaks"], dtype=np.float64) / fs

    return detect


def peer_sleepecg(x: FloatArray, fs: float) -> FloatArray:
    import sleepecg

    return np.asarray(sleepecg.detect_heartbeats(_clean(x), fs), dtype=np.float64) / fs


def peer_neurokit_ppg(x: FloatArray, fs: float) -> FloatArray:
    import neurokit2 as nk

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clean = nk.ppg_clean(_clean(x), sampling_rate=int(fs))
        info = nk.ppg_findpeaks(clean, sampling_rate=int(fs))
    return np.asarray(info["PPG_Peaks"], dtype=np.float64) / fs


ECG_PEERS: dict[str, Callable[[FloatArray, float], FloatArray]] = {
    "neurokit2_neurokit": peer_neurokit("neurokit"),
    "neurokit2_kalidas2017": peer_neurokit("kalidas2017"),
    "neurokit2_rodrigues2021": peer_neurokit("rodrigues2021"),
    "sleepecg": peer_sleepecg,
}
PPG_PEERS: dict[str, Callable[[FloatArray, float], FloatArray]] = {
    "neurokit2_elgendi": peer_neurokit_ppg,
}


# -- metrics ---------------------------------------------------------------------------


def match_counts(det: FloatArray, ref: FloatArray, tol: float = TOL_S) -> tuple[int, int, int]:
    """One-to-one matching (each reference beat to the nearest free detection): TP, FP, FN."""
    det = np.sort(det)
    used = np.zeros(det.size, dtype=bool)
    tp = 0
    idx = np.searchsorted(det, ref)
    for r, k in zip(ref, idx, strict=True):
        best, bd = -1, tol
        for c in (k - 1, k):
            if 0 <= c < det.size and not used[c] and abs(det[c] - r) <= bd:
                best, bd = c, abs(det[c] - r)
        if best >= 0:
            used[best] = True
            tp += 1
    return tp, det.size - tp, ref.size - tp


def f1_pct(tp: int, fp: int, fn: int) -> float:
    return 100.0 * 2 * tp / max(1, 2 * tp + fp + fn)


def window_hr(beats: FloatArray, t_end: float) -> float | None:
    """60 / mean RR of the intervals with both beats in ``[t_end - W, t_end)``."""
    b = beats[(beats >= t_end - WINDOW_S) & (beats < t_end)]
    if b.size < 3:
        return None
    return 60.0 / float(np.mean(np.diff(b)))


@dataclass
class WindowStats:
    errors_all: list[float] = field(default_factory=list)  # |ours - ref| where ours has a value
    n_windows: int = 0  # windows with a reference value
    n_trusted: int = 0
    trusted_errors: list[float] = field(default_factory=list)

    def add(self, other: WindowStats) -> None:
        self.errors_all += other.errors_all
        self.n_windows += other.n_windows
        self.n_trusted += other.n_trusted
        self.trusted_errors += other.trusted_errors

    @property
    def median_error(self) -> float:
        return float(np.median(self.errors_all)) if self.errors_all else math.nan

    @property
    def trusted_pct(self) -> float:
        return 100.0 * self.n_trusted / max(1, self.n_windows)

    @property
    def within3_pct(self) -> float:
        e = np.asarray(self.trusted_errors)
        return 100.0 * float(np.mean(e <= 3.0)) if e.size else math.nan


def window_ends(duration_s: float) -> FloatArray:
    return np.arange(WINDOW_S, math.floor(duration_s) + 1e-9, STEP_S)


def ours_window_stats(
    rec: Record, est: Sequence[HeartRateEstimate], span: tuple[float, float] | None = None
) -> WindowStats:
    st = WindowStats()
    ref = rec.ref_beats_s + rec.lag_s
    duration = rec.signal.size / rec.fs
    for e in est:
        if e.t_s - WINDOW_S < -1e-9 or e.t_s > duration + 1e-9:
            continue  # the same windows as for the peers: inside the record
        if span is not None and not (span[0] <= e.t_s - WINDOW_S and e.t_s <= span[1]):
            continue
        if rec.ref_valid is not None and not rec.ref_valid(e.t_s - WINDOW_S, e.t_s):
            continue
        r = window_hr(ref, e.t_s)
        if r is None:
            continue
        st.n_windows += 1
        if e.bpm is not None:
            err = abs(e.bpm - r)
            st.errors_all.append(err)
            if e.quality is Quality.GOOD:
                st.n_trusted += 1
                st.trusted_errors.append(err)
    return st


def peer_window_stats(rec: Record, beats: FloatArray, duration_s: float) -> WindowStats:
    st = WindowStats()
    ref = rec.ref_beats_s + rec.lag_s
    for t in window_ends(duration_s):
        if rec.ref_valid is not None and not rec.ref_valid(t - WINDOW_S, t):
            continue
        r = window_hr(ref, t)
        if r is None:
            continue
        st.n_windows += 1
        v = window_hr(beats, t)
        if v is not None:
            st.errors_all.append(abs(v - r))
    return st


# -- PPG records -----------------------------------------------------------------------


def load_challenge(root: Path, name: str, ecg_lead: str) -> tuple[FloatArray, FloatArray, float]:
    import wfdb

    rec = wfdb.rdrecord(str(root / "challenge2015_ecg_ppg" / name))
    names = list(rec.sig_name)
    return (
        rec.p_signal[:, names.index(ecg_lead)].astype(np.float64),
        rec.p_signal[:, names.index("PLETH")].astype(np.float64),
        float(rec.fs),
    )


def agreement_mask(a: FloatArray, b: FloatArray) -> Callable[[float, float], bool]:
    """Windows in which two ECG beat sequences agree beat for beat (within 100 ms)."""
    bad: list[float] = []
    for x, y in ((a, b), (b, a)):
        for t in x:
            k = np.searchsorted(y, t)
            near = [abs(y[c] - t) for c in (k - 1, k) if 0 <= c < y.size]
            if not near or min(near) > TOL_S:
                bad.append(float(t))
    bad_arr = np.sort(np.array(bad))

    def valid(t0: float, t1: float) -> bool:
        lo = np.searchsorted(bad_arr, t0 - 1.0)
        hi = np.searchsorted(bad_arr, t1 + 1.0)
        return bool(hi == lo) and a.size > 0 and a[0] <= t0 and a[-1] >= t1

    return valid


def median_lag(pulses: FloatArray, ref: FloatArray) -> float:
    k = np.searchsorted(ref, pulses) - 1
    ok = k >= 0
    d = pulses[ok] - ref[k[ok]]
    return float(np.median(d)) if d.size else 0.0


# -- main ------------------------------------------------------------------------------


def fmt(v: float | None, nd: int = 2) -> str:
    return "—" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{nd}f}"


HEADER = [
    "record",
    "detector",
    "ref beats",
    "TP",
    "FP",
    "FN",
    "F1 %",
    "time s",
    "windows",
    "|err| median bpm",
    "trusted %",
    "trusted ≤3 bpm %",
]


def row(
    record: str,
    detector: str,
    c: tuple[int, int, int] | None,
    dt: float | None,
    ws: WindowStats,
    trusted: bool,
) -> list[str]:
    counts = [str(c[0] + c[2]), *map(str, c), fmt(f1_pct(*c))] if c else ["", "", "", "", ""]
    return [
        record,
        detector,
        *counts,
        fmt(dt),
        str(ws.n_windows),
        fmt(ws.median_error),
        fmt(ws.trusted_pct, 1) if trusted else "—",
        fmt(ws.within3_pct, 1) if trusted else "—",
    ]


def pooled_f1(counts: Sequence[tuple[int, int, int]]) -> float:
    return f1_pct(*(sum(c[i] for c in counts) for i in range(3)))


def main() -> None:
    root = data_dir()
    ecg_records = [load_mitdb100(root), load_nstdb(root, 24), load_nstdb(root, 12)]
    rows: list[list[str]] = []
    counts: dict[str, dict[str, tuple[int, int, int]]] = {}
    wstats: dict[str, WindowStats] = {}

    print(
        f"Windows: {WINDOW_S:g} s, step {STEP_S:g} s; beat tolerance {TOL_S * 1000:g} ms; "
        f"ours fed in {CHUNK_S:g} s chunks (streaming), peers run batch on the whole record.\n"
        "|err|: over windows where the detector gives a value (peers: 60/mean RR of their "
        "beats, no rejection);\ntrusted: windows flagged GOOD among windows with a "
        "reference value.\n"
    )
    for rec in ecg_records:
        beats, est, dt = run_ours_ecg(rec.signal, rec.fs)
        c = match_counts(beats, rec.ref_beats_s)
        counts.setdefault("ours", {})[rec.name] = c
        ws = ours_window_stats(rec, est)
        wstats.setdefault("ours", WindowStats()).add(ws)
        rows.append(row(rec.name, "ours (streaming)", c, dt, ws, True))
        if rec.noisy_from_s is not None:
            for part, span in (
                ("clean", (0.0, rec.noisy_from_s)),
                ("noisy", (rec.noisy_from_s, math.inf)),
            ):
                p = ours_window_stats(rec, est, span)
                rows.append(row(f"  {part} part", "ours", None, None, p, True))
        for name, fn in ECG_PEERS.items():
            t = time.perf_counter()
            pb = fn(rec.signal, rec.fs)
            dt = time.perf_counter() - t
            c = match_counts(pb, rec.ref_beats_s)
            counts.setdefault(name, {})[rec.name] = c
            ws = peer_window_stats(rec, pb, rec.signal.size / rec.fs)
            wstats.setdefault(name, WindowStats()).add(ws)
            rows.append(row(rec.name, name, c, dt, ws, False))
    print_table(HEADER, rows)

    # The best detector on the noisy records (pooled F1) provides the PPG reference.
    noisy = ["nstdb118e24", "nstdb118e12"]

    def rank(n: str) -> tuple[float, float]:
        return pooled_f1([counts[n][r] for r in noisy]), pooled_f1([counts[n]["mitdb100"]])

    best, second = sorted(counts, key=rank, reverse=True)[:2]
    detectors: dict[str, Callable[[FloatArray, float], FloatArray]] = {
        "ours": lambda x, fs: run_ours_ecg(x, fs)[0],
        **ECG_PEERS,
    }
    ppg_rows: list[list[str]] = []
    notes: list[str] = []
    ppg_counts: dict[str, list[tuple[int, int, int]]] = {}
    ppg_stats: dict[str, WindowStats] = {}
    # v102s: lead II is unusable (the detectors disagree throughout); lead V is the clean one.
    for name, lead in (("a103l", "II"), ("v102s", "V")):
        ecg, ppg, fs = load_challenge(root, name, lead)
        ref = detectors[best](ecg, fs)
        other = detectors[second](ecg, fs)
        rec = Record(f"{name} PPG", "ppg", ppg, fs, ref, f"ECG {lead}, {best}")
        rec.ref_valid = agreement_mask(ref, other)
        beats, est, dt = run_ours_ppg(ppg, fs)
        rec.lag_s = median_lag(beats, ref)
        valid_beats = _beats_in_valid(rec)
        c = match_counts(_beats_in_valid(rec, beats - rec.lag_s), valid_beats)
        ppg_counts.setdefault("ours", []).append(c)
        ws = ours_window_stats(rec, est)
        ppg_stats.setdefault("ours", WindowStats()).add(ws)
        ppg_rows.append(row(rec.name, "ours (streaming)", c, dt, ws, True))
        notes.append(
            f"{name}: reference = '{best}' on ECG lead {lead}; {valid_beats.size} of {ref.size} "
            f"reference beats and {ws.n_windows} windows where '{second}' agrees; "
            f"our pulse lag {rec.lag_s * 1000:.0f} ms"
        )
        for pname, fn in PPG_PEERS.items():
            t = time.perf_counter()
            pb = fn(ppg, fs)
            dt = time.perf_counter() - t
            lag = median_lag(pb, ref)
            c = match_counts(_beats_in_valid(rec, pb - lag), valid_beats)
            ppg_counts.setdefault(pname, []).append(c)
            prec = Record(rec.name, "ppg", ppg, fs, ref, rec.ref_note, rec.ref_valid, lag_s=lag)
            ws = peer_window_stats(prec, pb, ppg.size / fs)
            ppg_stats.setdefault(pname, WindowStats()).add(ws)
            ppg_rows.append(row(rec.name, pname, c, dt, ws, False))

    print(
        "\nPPG vs simultaneous ECG. Reference: the ECG beats of the best detector on the noisy "
        "records above,\nshifted by each PPG detector's median pulse lag; only beats/windows "
        "where the runner-up ECG detector\nagrees beat for beat count (the reference is "
        "unambiguous there).\n"
    )
    print_table(HEADER, ppg_rows)
    for n in notes:
        print("  " + n)

    summary: dict[str, Any] = {"ours": {}, "peers": {}}
    for name in counts:
        entry: dict[str, float] = {
            "mitdb100_f1": round(pooled_f1([counts[name]["mitdb100"]]), 3),
            "noisy_f1": round(pooled_f1([counts[name][r] for r in noisy]), 3),
            "window_error_bpm_median": round(wstats[name].median_error, 3),
        }
        if name != "ours":
            summary["peers"][name] = entry
            continue
        entry["trusted_windows_pct"] = round(wstats[name].trusted_pct, 2)
        entry["trusted_within_3bpm_pct"] = round(wstats[name].within3_pct, 2)
        entry["ppg_f1"] = round(pooled_f1(ppg_counts["ours"]), 3)
        entry["ppg_window_error_bpm_median"] = round(ppg_stats["ours"].median_error, 3)
        entry["ppg_trusted_windows_pct"] = round(ppg_stats["ours"].trusted_pct, 2)
        entry["ppg_trusted_within_3bpm_pct"] = round(ppg_stats["ours"].within3_pct, 2)
        summary["ours"] = entry
    for pname in PPG_PEERS:
        summary["peers"][pname] = {
            "ppg_f1": round(pooled_f1(ppg_counts[pname]), 3),
            "ppg_window_error_bpm_median": round(ppg_stats[pname].median_error, 3),
        }
    print(f"\nECG reference detector for PPG: {best} (runner-up: {second})")
    print(json.dumps(summary))


def _beats_in_valid(rec: Record, beats: FloatArray | None = None) -> FloatArray:
    """Beats inside stretches where the ECG reference is unambiguous."""
    b = rec.ref_beats_s if beats is None else beats
    assert rec.ref_valid is not None
    keep = [t for t in b if rec.ref_valid(t - 0.5, t + 0.5)]
    return np.array(keep, dtype=np.float64)


def print_table(hdr: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(hdr[i]), *(len(r[i]) for r in rows)) for i in range(len(hdr))]
    print("  ".join(h.ljust(w) for h, w in zip(hdr, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)))


if __name__ == "__main__":
    main()
