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


#: Paced records: scored apart (AAMI EC57 leaves them out of detector evaluations).
PACED = frozenset({"102", "104", "107"})
#: Rhythm annotations that count as sinus rhythm (with or without ectopic beats) for the
#: coverage goal; AFIB, AFL, NOD, SVTA, VT, paced ... are not.
SINUS_RHYTHMS = frozenset({"(N", "(SBR", "(B", "(T", "(AB", "(BII"})


def rhythm_spans(ann: Any, fs: float, duration_s: float) -> list[tuple[float, float, str]]:
    """(start s, end s, rhythm label) from the annotation's aux notes."""
    marks = [
        (float(s) / fs, str(a).strip("\x00 "))
        for s, a in zip(ann.sample, ann.aux_note, strict=True)
        if str(a).startswith("(")
    ]
    out = []
    for k, (t, lab) in enumerate(marks):
        end = marks[k + 1][0] if k + 1 < len(marks) else duration_s
        out.append((t, end, lab))
    return out


def load_mitdb(folder: Path, name: str) -> Record:
    """One MIT-BIH record: MLII when it has that lead (lead 1 in 114), else lead 0 (V5)."""
    import wfdb

    rec = wfdb.rdrecord(str(folder / name))
    ann = wfdb.rdann(str(folder / name), "atr")
    names = list(rec.sig_name)
    lead = names.index("MLII") if "MLII" in names else 0
    fs = float(rec.fs)
    pairs = zip(ann.sample, ann.symbol, strict=True)
    beats = np.array([s for s, sym in pairs if sym in BEAT_SYMBOLS])
    x = rec.p_signal[:, lead].astype(np.float64)
    return Record(
        f"mitdb{name}",
        "ecg",
        x,
        fs,
        beats / fs,
        f"MIT-BIH annotations, lead {names[lead]}",
        extra={
            "paced": name in PACED,
            "rhythms": rhythm_spans(ann, fs, x.size / fs),
        },
    )


def dev_records(root: Path) -> list[Record]:
    """The development set: record 100 and the 17 records of ``mitdb_dev``."""
    dev = root / "mitdb_dev"
    if not dev.is_dir():
        raise SystemExit(f"development set not found at {dev} (set VREXPOSURE_SHARED_DATA)")
    names = sorted(p.stem for p in dev.glob("*.hea"))
    return [load_mitdb(root / "mitdb_100", "100"), *(load_mitdb(dev, n) for n in names)]


def sinus_span(rec: Record) -> Callable[[float, float], bool]:
    """Windows lying entirely inside one sinus-rhythm annotation span."""
    spans = [(a, b) for a, b, lab in rec.extra.get("rhythms", []) if lab in SINUS_RHYTHMS]  # type: ignore[attr-defined]

    def inside(t0: float, t1: float) -> bool:
        return any(a <= t0 and t1 <= b for a, b in spans)

    return inside


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
    out = pipe.run(x, fs, CHUNK_S)
    dt = time.perf_counter() - t
    return np.array([b.t_s for b in out.beats]), list(out.estimates), dt


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


def peer_heartpy(x: FloatArray, fs: float) -> FloatArray:
    """HeartPy 1.2 as its docs use it on ECG: baseline wander removed, scaled, ``process``;
    the peaks it rejects itself (``removed_beats``) are left out."""
    import heartpy as hp

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        y = hp.scale_data(hp.remove_baseline_wander(_clean(x), fs))
        try:
            wd, _ = hp.process(y, fs, bpmmax=240, clean_rr=False)
        except hp.exceptions.BadSignalWarning:
            return np.zeros(0)
    removed = set(np.asarray(wd["removed_beats"]).tolist())
    return np.array([p for p in wd["peaklist"] if p not in removed], dtype=np.float64) / fs


def _have(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


ECG_PEERS: dict[str, Callable[[FloatArray, float], FloatArray]] = {
    "neurokit2_neurokit": peer_neurokit("neurokit"),
    "neurokit2_kalidas2017": peer_neurokit("kalidas2017"),
    "neurokit2_rodrigues2021": peer_neurokit("rodrigues2021"),
    "sleepecg": peer_sleepecg,
    # HeartPy is in the `physio` extra (not `test`): scored when installed.
    **({"heartpy": peer_heartpy} if _have("heartpy") else {}),
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

    @property
    def max_trusted_error(self) -> float:
        return max(self.trusted_errors, default=0.0)

    @property
    def n_trusted_over5(self) -> int:
        return sum(1 for e in self.trusted_errors if e > 5.0)


def window_ends(duration_s: float) -> FloatArray:
    return np.arange(WINDOW_S, math.floor(duration_s) + 1e-9, STEP_S)


def ours_window_stats(
    rec: Record,
    est: Sequence[HeartRateEstimate],
    span: tuple[float, float] | None = None,
    only: Callable[[float, float], bool] | None = None,
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
        if only is not None and not only(e.t_s - WINDOW_S, e.t_s):
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


DEV_HEADER = [
    "record",
    "ref beats",
    "ours F1 %",
    *(f"{n} F1 %" for n in ECG_PEERS),
    "ours s",
    "trusted %",
    "sinus trusted %",
    "≤3 bpm %",
    "max err bpm",
    ">5 bpm",
    "ectopic/window",
]


def run_dev(
    root: Path, only: set[str] | None, peers: bool
) -> tuple[dict[str, Any], list[list[str]], float]:
    """Score every development record (ours + peers); per-record entries and the table."""
    per: dict[str, Any] = {}
    rows: list[list[str]] = []
    cpu_s = 0.0
    ecg_s = 0.0
    for rec in dev_records(root):
        if only and rec.name.removeprefix("mitdb") not in only:
            continue
        duration = rec.signal.size / rec.fs
        c0 = time.process_time()
        beats, est, _ = run_ours_ecg(rec.signal, rec.fs)
        cpu_s += time.process_time() - c0
        ecg_s += duration
        c = match_counts(beats, rec.ref_beats_s)
        ws = ours_window_stats(rec, est)
        sinus = ours_window_stats(rec, est, only=sinus_span(rec))
        ectopic = float(np.mean([e.n_ectopic for e in est])) if est else 0.0
        entry: dict[str, Any] = {
            "paced": bool(rec.extra["paced"]),
            "ref_beats": c[0] + c[2],
            "ours": list(c),
            "f1": round(f1_pct(*c), 3),
            "windows": ws.n_windows,
            "trusted_pct": round(ws.trusted_pct, 2),
            "sinus_windows": sinus.n_windows,
            "sinus_trusted_pct": round(sinus.trusted_pct, 2) if sinus.n_windows else None,
            "trusted_within_3bpm_pct": round(ws.within3_pct, 3) if ws.n_trusted else None,
            "trusted_max_error_bpm": round(ws.max_trusted_error, 2),
            "trusted_over_5bpm": ws.n_trusted_over5,
            "n_trusted": ws.n_trusted,
            "n_trusted_within_3bpm": sum(1 for e in ws.trusted_errors if e <= 3.0),
            "n_sinus_trusted": sinus.n_trusted,
            "peers": {},
        }
        peer_f1 = []
        if peers:
            for name, fn in ECG_PEERS.items():
                pc = match_counts(fn(rec.signal, rec.fs), rec.ref_beats_s)
                entry["peers"][name] = list(pc)
                peer_f1.append(fmt(f1_pct(*pc)))
        else:
            peer_f1 = ["" for _ in ECG_PEERS]
        per[rec.name] = entry
        rows.append(
            [
                rec.name + (" (paced)" if entry["paced"] else ""),
                str(entry["ref_beats"]),
                fmt(entry["f1"]),
                *peer_f1,
                fmt(time.process_time() - c0, 1),
                fmt(ws.trusted_pct, 1),
                fmt(sinus.trusted_pct, 1) if sinus.n_windows else "—",
                fmt(ws.within3_pct, 2) if ws.n_trusted else "—",
                fmt(ws.max_trusted_error, 1),
                str(ws.n_trusted_over5),
                fmt(ectopic, 1),
            ]
        )
        print(f"  scored {rec.name}", file=sys.stderr, flush=True)
    return per, rows, (cpu_s / ecg_s * 3600.0 if ecg_s else math.nan)


def dev_summary(per: dict[str, Any], cpu_per_hour_s: float) -> dict[str, Any]:
    """Pooled figures over the development set (paced records apart)."""

    def pool(paced: bool, key: str) -> list[Any]:
        return [e[key] for e in per.values() if e["paced"] is paced]

    def f1(cs: list[Any]) -> float:
        return round(pooled_f1([tuple(c) for c in cs]), 3) if cs else math.nan

    np_ = [e for e in per.values() if not e["paced"]]
    n_win = sum(e["windows"] for e in np_)
    n_tr = sum(e["n_trusted"] for e in np_)
    n_w3 = sum(e["n_trusted_within_3bpm"] for e in np_)
    n_sw = sum(e["sinus_windows"] for e in np_)
    n_st = sum(e["n_sinus_trusted"] for e in np_)
    out: dict[str, Any] = {
        "dev_records": len(per),
        "dev_f1_pooled": f1(pool(False, "ours")),
        "dev_paced_f1_pooled": f1(pool(True, "ours")),
        "dev_trusted_pct": round(100.0 * n_tr / max(1, n_win), 2),
        "dev_sinus_trusted_pct": round(100.0 * n_st / max(1, n_sw), 2),
        "dev_trusted_within_3bpm_pct": round(100.0 * n_w3 / max(1, n_tr), 3),
        "dev_trusted_max_error_bpm": max(
            (e["trusted_max_error_bpm"] for e in per.values()), default=0.0
        ),
        "dev_trusted_over_5bpm": sum(e["trusted_over_5bpm"] for e in per.values()),
        "dev_paced_trusted_max_error_bpm": max(
            (e["trusted_max_error_bpm"] for e in per.values() if e["paced"]), default=0.0
        ),
        "cpu_s_per_hour_ecg": round(cpu_per_hour_s, 3),
        "peers": {},
    }
    for name in ECG_PEERS:
        cs = [e["peers"][name] for e in np_ if name in e["peers"]]
        pcs = [e["peers"][name] for e in per.values() if e["paced"] and name in e["peers"]]
        if cs:
            out["peers"][name] = {"dev_f1_pooled": f1(cs), "dev_paced_f1_pooled": f1(pcs)}
    return out


def compare(base: dict[str, Any], now: dict[str, Any]) -> list[list[str]]:
    """Which way each record moved against a baseline JSON line (dev part)."""
    rows = []
    bper = base.get("dev_per_record", {})
    for name, e in now.get("dev_per_record", {}).items():
        b = bper.get(name)
        if b is None:
            continue
        cells = [name]
        for key, better_high in (
            ("f1", True),
            ("trusted_pct", True),
            ("sinus_trusted_pct", True),
            ("trusted_max_error_bpm", False),
            ("trusted_over_5bpm", False),
        ):
            v0, v1 = b.get(key), e.get(key)
            if v0 is None or v1 is None:
                cells.append("—")
                continue
            d = v1 - v0
            arrow = "=" if abs(d) < 1e-09 else "▲" if (d > 0) == better_high else "▼"
            cells.append(f"{v0:g} → {v1:g} {arrow}")
        rows.append(cells)
    return rows


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", type=Path, help="JSON line of an earlier run to compare with")
    ap.add_argument("--json-out", type=Path, help="also write the JSON line to this file")
    ap.add_argument("--records", help="comma-separated dev record numbers (quick tuning runs)")
    ap.add_argument("--no-peers", action="store_true", help="skip the peers (tuning runs)")
    ap.add_argument("--dev-only", action="store_true", help="only the development set")
    args = ap.parse_args()
    root = data_dir()
    only = set(args.records.split(",")) if args.records else None
    per, dev_rows, cpu_h = run_dev(root, only, peers=not args.no_peers)
    print(
        "Development set (MIT-BIH: record 100 + mitdb_dev): beat F1 at ±100 ms; windows of "
        f"{WINDOW_S:g} s every {STEP_S:g} s.\ntrusted: windows flagged GOOD among windows with "
        "a reference value; sinus: windows inside a sinus-rhythm annotation\n(N, SBR, B, T, AB, "
        "BII); ≤3 bpm / max err / >5 bpm: of the trusted windows.\n"
    )
    print_table(DEV_HEADER, dev_rows)
    dev = dev_summary(per, cpu_h)
    peer_line = ", ".join(f"{n} {v['dev_f1_pooled']:.2f}" for n, v in dev["peers"].items())
    print(
        f"\npooled (non-paced): F1 {dev['dev_f1_pooled']:.2f} % (peers: {peer_line or '—'}); "
        f"trusted {dev['dev_trusted_pct']:.1f} %, in sinus rhythm "
        f"{dev['dev_sinus_trusted_pct']:.1f} %; trusted within 3 bpm "
        f"{dev['dev_trusted_within_3bpm_pct']:.2f} %; max trusted error "
        f"{dev['dev_trusted_max_error_bpm']:.1f} bpm ({dev['dev_trusted_over_5bpm']} windows "
        f"> 5 bpm); paced F1 {dev['dev_paced_f1_pooled']:.2f} %; "
        f"CPU {dev['cpu_s_per_hour_ecg']:.2f} s per hour of ECG\n"
    )
    summary: dict[str, Any] = {}
    if not args.dev_only:
        summary = legacy(root)
    summary.update({k: v for k, v in dev.items() if k != "peers"})
    summary.setdefault("peers", {})
    for name, v in dev["peers"].items():
        summary["peers"].setdefault(name, {}).update(v)
    summary["dev_per_record"] = per
    if args.baseline is not None:
        base = json.loads(args.baseline.read_text().strip().splitlines()[-1])
        print(f"\nChange per record against {args.baseline} (▲ better, ▼ worse):\n")
        print_table(
            ["record", "F1 %", "trusted %", "sinus trusted %", "max err bpm", ">5 bpm"],
            compare(base, summary),
        )
        keys = (
            "dev_f1_pooled",
            "dev_trusted_pct",
            "dev_sinus_trusted_pct",
            "dev_trusted_within_3bpm_pct",
            "dev_trusted_max_error_bpm",
        )
        print("  pooled: " + "; ".join(f"{k} {base.get(k)} → {summary.get(k)}" for k in keys))
    line = json.dumps(summary)
    if args.json_out is not None:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(line + "\n")
    print(line)


def legacy(root: Path) -> dict[str, Any]:
    """Record 100, the NSTDB excerpts and the PPG records (the original bench)."""
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
    return summary


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
