"""Properties every sensor driver in ``sensors/`` shares.

Each driver's own encoder makes a valid stream; the decoders must give the same
samples however the stream is split, never raise on arbitrary bytes, and
recover frames embedded in garbage.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vrexposure.plugins import load_module
from vrexposure.sensor_api import (
    DecoderStats,
    DriverSpec,
    HeartRate,
    OxygenSaturation,
    PhysioChunk,
    Quality,
    RRIntervals,
    Sample,
    SequenceGap,
    Waveform,
)

SENSORS_DIR = Path(__file__).resolve().parent.parent / "sensors"
DRIVER_FILES = sorted(p for p in SENSORS_DIR.glob("*.py") if not p.name.startswith("_"))
NAMES = [p.stem for p in DRIVER_FILES]
EXPECTED = {
    "zephyr_hxm",
    "zephyr_bioharness",
    "nonin_df2",
    "nonin_ascii",
    "bitalino",
    "contec_cms50d",
    "contec_cms50d_legacy",
    "pulsesensor",
    "ble_hrm",
}
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SPLITS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def load(name: str) -> ModuleType:
    return load_module(SENSORS_DIR / f"{name}.py", "sensors")


def driver(name: str) -> DriverSpec:
    spec = load(name).DRIVER
    assert isinstance(spec, DriverSpec)
    return spec


def is_ble(spec: DriverSpec) -> bool:
    return spec.extras.get("transport") == "ble"


def key(samples: list[Sample]) -> list[object]:
    """Comparable form of samples (Waveform holds an array, so == is not usable)."""
    out: list[object] = []
    for s in samples:
        if isinstance(s, Waveform):
            out.append(("W", s.kind, s.rate_hz, s.unit, s.quality, s.values.tobytes()))
        else:
            out.append(s)
    return out


def chunks_for(spec: DriverSpec, n_chunks: int = 4, chunk_s: float = 0.5) -> list[PhysioChunk]:
    """A plain physiology sequence scaled to the encoder's waveform range."""
    assert spec.encoder is not None
    enc = spec.encoder()
    chunks = []
    for i in range(n_chunks):
        n = round((enc.waveform_rate_hz or 0) * chunk_s)
        wave: np.ndarray = np.zeros(0)
        if n:
            lo, hi = enc.waveform_range or (0.0, 1.0)
            t = np.arange(n) / n + i
            wave = lo + (hi - lo) * (0.5 + 0.4 * np.sin(2 * np.pi * 1.2 * t))
        chunks.append(
            PhysioChunk(hr_bpm=70 + i, rr_ms=(850.0 + i, 830.0 - i), waveform=wave, spo2_pct=97)
        )
    return chunks


def encoded(spec: DriverSpec, n_chunks: int = 4) -> list[bytes]:
    assert spec.encoder is not None
    enc = spec.encoder()
    return [enc.frames_for(c) for c in chunks_for(spec, n_chunks)]


def decode(spec: DriverSpec, pieces: list[bytes]) -> tuple[list[Sample], DecoderStats]:
    dec = spec.decoder()
    out: list[Sample] = []
    for piece in pieces:
        out.extend(dec.feed(piece))
    return out, dec.stats


def test_every_expected_driver_is_present() -> None:
    assert set(NAMES) >= EXPECTED


@pytest.mark.parametrize("name", NAMES)
def test_driver_declares_spec_decoder_and_encoder(name: str) -> None:
    spec = driver(name)
    assert spec.name == name
    assert spec.title and spec.description
    dec = spec.decoder()
    assert isinstance(dec.stats, DecoderStats)
    assert dec.feed(b"") == []
    assert spec.encoder is not None
    enc = spec.encoder()
    assert enc.waveform_kind in (None, "ecg", "ppg")
    if enc.waveform_kind is not None:
        assert enc.waveform_rate_hz and enc.waveform_rate_hz > 0
        assert enc.waveform_range is not None and enc.waveform_unit
    if not is_ble(spec):
        assert spec.serial.baud > 0 and spec.serial.parity in ("N", "E", "O")


@pytest.mark.parametrize("name", NAMES)
def test_encoded_stream_decodes_cleanly(name: str) -> None:
    spec = driver(name)
    pieces = encoded(spec)
    samples, stats = decode(spec, pieces if is_ble(spec) else [b"".join(pieces)])
    assert stats.frames_ok > 0
    assert stats.frames_bad_checksum == stats.frames_malformed == stats.bytes_discarded == 0
    assert samples
    for s in samples:
        assert isinstance(s, HeartRate | RRIntervals | Waveform | OxygenSaturation | SequenceGap)
        assert not isinstance(s, SequenceGap)
        if isinstance(s, Waveform):
            assert s.values.dtype == np.float32 and s.values.ndim == 1 and len(s.values)
            assert s.quality is Quality.GOOD


@pytest.mark.parametrize("name", [n for n in NAMES if not is_ble(driver(n))])
@SPLITS
@given(data=st.data())
def test_split_feeds_give_the_same_samples(name: str, data: st.DataObject) -> None:
    spec = driver(name)
    stream = b"".join(encoded(spec, n_chunks=2))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=30)))
    pieces = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    whole, whole_stats = decode(spec, [stream])
    split, split_stats = decode(spec, pieces)
    assert key(split) == key(whole)
    assert split_stats == whole_stats


@pytest.mark.parametrize("name", [n for n in NAMES if not is_ble(driver(n))])
def test_byte_by_byte_equals_all_at_once(name: str) -> None:
    spec = driver(name)
    stream = b"".join(encoded(spec))
    whole, whole_stats = decode(spec, [stream])
    single, single_stats = decode(spec, [bytes((b,)) for b in stream])
    assert key(single) == key(whole)
    assert single_stats == whole_stats


@pytest.mark.parametrize("name", NAMES)
@FUZZ
@given(pieces=st.lists(st.binary(max_size=300), max_size=8))
def test_arbitrary_bytes_never_raise(name: str, pieces: list[bytes]) -> None:
    spec = driver(name)
    samples, stats = decode(spec, pieces)
    assert min(stats.frames_ok, stats.frames_bad_checksum, stats.frames_malformed) >= 0
    assert stats.bytes_discarded <= sum(map(len, pieces))
    for s in samples:
        if isinstance(s, Waveform):
            assert s.values.ndim == 1
        if isinstance(s, SequenceGap):
            assert s.missing > 0


@pytest.mark.parametrize("name", [n for n in NAMES if not is_ble(driver(n))])
@FUZZ
@given(before=st.binary(max_size=200), after=st.binary(max_size=200))
def test_frames_in_garbage_are_recovered(name: str, before: bytes, after: bytes) -> None:
    spec = driver(name)
    stream = b"".join(encoded(spec, n_chunks=2))
    _, clean = decode(spec, [stream])
    samples, stats = decode(spec, [before + stream + after])
    # Garbage may at worst swallow the first frame (a false start overlapping it).
    assert stats.frames_ok >= clean.frames_ok - 1
    assert samples


@FUZZ
@given(garbage=st.lists(st.binary(max_size=40), max_size=6))
def test_ble_notifications_survive_garbage_notifications(garbage: list[bytes]) -> None:
    spec = driver("ble_hrm")
    valid = encoded(spec)
    clean, _ = decode(spec, valid)
    mixed = [p for pair in zip(valid, garbage + [b""] * len(valid), strict=False) for p in pair]
    dec = spec.decoder()
    kept: list[Sample] = []
    for payload in mixed:
        out = dec.feed(payload)
        if payload in valid:
            kept.extend(out)
    assert key(kept) == key(clean)


@pytest.mark.parametrize("name", NAMES)
def test_encoders_accept_gaps_and_out_of_range_values(name: str) -> None:
    spec = driver(name)
    assert spec.encoder is not None
    enc = spec.encoder()
    n = round(enc.waveform_rate_hz or 0)
    wave = np.resize(np.array([np.nan, np.inf, -np.inf, 1e9, -1e9, 0.0]), n)
    data = enc.frames_for(PhysioChunk(hr_bpm=300.0, rr_ms=(200.0,), waveform=wave, spo2_pct=120))
    samples, stats = decode(spec, [data])
    assert stats.frames_ok > 0 and samples
