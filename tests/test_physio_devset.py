"""Beat detection and the trust flag on development-set records where they used to fail.

Each test runs one whole MIT-BIH record (30 min) through the streaming ECG pipeline
in 1-s chunks, as a sensor would feed it, and scores it against the cardiologists'
annotations. The figures for every record are in ``bench/heart_rate.py``; these hold
the behaviours behind them:

* 106 (bigeminy, 520 PVCs): premature beats shaped like the template are beats, and a
  regular coupling + pause rhythm is trusted without ever being more than 5 bpm off;
* 201 (aberrated atrial premature beats too small for both beat estimators): a window
  with a rejected beat-shaped candidate is not trusted ("possible_missed_beat").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tests.conftest import require_shared_data
from vrexposure.physio import EcgHeartRatePipeline, HeartRateEstimate, Quality
from vrexposure.physio.records import RrLabel
from vrexposure.physio.window import compensatory_pauses

BEAT_SYMBOLS = frozenset("NLRBAaJSVrFejnE/fQ?")
TOLERANCE_S = 0.1


@dataclass
class Scored:
    beats_s: np.ndarray  # ours
    ref_s: np.ndarray  # annotated beats
    estimates: list[HeartRateEstimate]

    def counts(self) -> tuple[int, int, int]:
        """One-to-one matching within 100 ms: TP, FP, FN."""
        used = np.zeros(self.beats_s.size, dtype=bool)
        tp = 0
        for r in self.ref_s:
            k = int(np.searchsorted(self.beats_s, r))
            near = [c for c in (k - 1, k) if 0 <= c < self.beats_s.size and not used[c]]
            near = [c for c in near if abs(self.beats_s[c] - r) <= TOLERANCE_S]
            if near:
                used[min(near, key=lambda c: abs(self.beats_s[c] - r))] = True
                tp += 1
        return tp, self.beats_s.size - tp, self.ref_s.size - tp

    def trusted_errors_bpm(self) -> list[float]:
        out = []
        for e in self.estimates:
            b = self.ref_s[(self.ref_s >= e.t_s - 10.0) & (self.ref_s < e.t_s)]
            if e.quality is Quality.GOOD and b.size >= 3 and e.bpm is not None:
                out.append(abs(e.bpm - 60.0 / float(np.mean(np.diff(b)))))
        return out


_cache: dict[str, Scored] = {}


def scored(name: str) -> Scored:
    if name in _cache:
        return _cache[name]
    folder = require_shared_data("mitdb_dev", f"{name}.hea").parent
    import wfdb

    rec = wfdb.rdrecord(str(folder / name))
    ann = wfdb.rdann(str(folder / name), "atr")
    fs = float(rec.fs)
    ref = np.array(
        [s for s, sym in zip(ann.sample, ann.symbol, strict=True) if sym in BEAT_SYMBOLS]
    )
    lead = list(rec.sig_name).index("MLII")
    x = rec.p_signal[:, lead].astype(np.float64)
    out = EcgHeartRatePipeline().run(x, fs, chunk_s=1.0)
    _cache[name] = Scored(np.sort([b.t_s for b in out.beats]), ref / fs, list(out.estimates))
    return _cache[name]


def f1_pct(tp: int, fp: int, fn: int) -> float:
    return 100.0 * 2 * tp / (2 * tp + fp + fn)


def test_record_106_premature_beats_are_beats_and_bigeminy_is_trusted() -> None:
    s = scored("106")
    tp, fp, fn = s.counts()
    assert f1_pct(tp, fp, fn) >= 99.3  # was 97.0 when premature PVCs needed r >= 0.85
    errors = s.trusted_errors_bpm()
    # Most of the record is bigeminy or frequent PVCs: ~59 % of windows trusted (was 49 %)
    assert len(errors) > 950
    assert max(errors) <= 5.0


def test_record_201_small_missed_beats_make_the_window_uncertain() -> None:
    s = scored("201")
    errors = s.trusted_errors_bpm()
    assert len(errors) > 600
    assert max(errors) <= 5.0  # was 8.1 bpm: 11 windows trusted with a beat missed
    flagged = [e for e in s.estimates if "possible_missed_beat" in e.reasons]
    assert len(flagged) >= 20


def test_compensatory_pauses_of_a_bigeminy() -> None:
    labels = [RrLabel.SHORT, RrLabel.MISSED] * 4 + [RrLabel.SHORT]
    rr_ms = [480.0, 950.0, 470.0, 990.0, 500.0, 930.0, 460.0, 960.0, 490.0]
    adjacent = [False] + [True] * 8
    assert compensatory_pauses(labels, rr_ms, adjacent) == {1, 3, 5, 7}
    # A pause that hides a missed beat spans one interval more than the others
    hiding = rr_ms.copy()
    hiding[5] = 930.0 + 720.0
    assert compensatory_pauses(labels, hiding, adjacent) == {1, 3, 7}
    # A lone premature beat is judged by the RR classifier, not here
    assert compensatory_pauses(labels[:2], rr_ms[:2], adjacent[:2]) == set()
    # Not adjacent: not a pair
    assert compensatory_pauses(labels, rr_ms, [False] * 9) == set()
