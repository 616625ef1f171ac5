"""Procedural ambient sounds: numpy synthesis written once to WAV files in a cache folder.

Each sound is a seamless loop (its end cross-faded into its start), mono 16-bit
at :data:`SAMPLE_RATE_HZ`, generated deterministically from a fixed seed, so
nothing is downloaded or shipped. The engine loads the files with Panda3D's
audio manager; with ``audio-library-name null`` they simply play silently.
"""

from __future__ import annotations

import math
import os
import tempfile
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

SAMPLE_RATE_HZ = 22050
LOOP_S = 8.0
_VERSION = 1

Signal = NDArray[np.float64]


def _band_noise(rng: np.random.Generator, n: int, low_hz: float, high_hz: float) -> Signal:
    """White noise band-limited to [low_hz, high_hz] (FFT mask; periodic over n samples)."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE_HZ)
    spectrum[(freqs < low_hz) | (freqs > high_hz)] = 0.0
    out = np.fft.irfft(spectrum, n)
    return out / (np.max(np.abs(out)) + 1e-12)


def _slow(rng: np.random.Generator, n: int, rate_hz: float) -> Signal:
    """A smooth random envelope in [0, 1] varying at about ``rate_hz``."""
    env = _band_noise(rng, n, 0.01, rate_hz)
    return 0.5 + 0.5 * env


def _time(n: int) -> Signal:
    return np.arange(n) / SAMPLE_RATE_HZ


def wind(rng: np.random.Generator, n: int) -> Signal:
    gust = _slow(rng, n, 0.4) ** 1.5
    return (
        _band_noise(rng, n, 40, 900) * (0.25 + 0.75 * gust)
        + 0.15 * _band_noise(rng, n, 900, 2500) * gust**2
    )


def murmur(rng: np.random.Generator, n: int) -> Signal:
    """Crowd babble: many band-limited 'voices' with syllable-rate envelopes."""
    t = _time(n)
    out = np.zeros(n)
    for _ in range(14):
        f0 = rng.uniform(95, 230)
        voiced = np.sin(2 * math.pi * f0 * t + 3 * np.sin(2 * math.pi * rng.uniform(0.2, 0.6) * t))
        formant = _band_noise(rng, n, rng.uniform(300, 500), rng.uniform(900, 2200))
        syllables = np.clip(np.sin(2 * math.pi * rng.uniform(3, 5.5) * t + rng.uniform(0, 6)), 0, 1)
        phrases = _slow(rng, n, 0.5) > 0.45
        out += (0.3 * voiced + formant) * syllables * phrases
    out += 0.3 * _band_noise(rng, n, 80, 600)
    return out


def engine(rng: np.random.Generator, n: int) -> Signal:
    t = _time(n)
    hum = sum(a * np.sin(2 * math.pi * f * t) for f, a in ((62.5, 0.5), (125, 0.3), (250, 0.12)))
    return 0.8 * _band_noise(rng, n, 30, 500) + hum + 0.2 * _band_noise(rng, n, 2000, 4000)


def ventilation(rng: np.random.Generator, n: int) -> Signal:
    t = _time(n)
    hum = 0.35 * np.sin(2 * math.pi * 100 * t) + 0.15 * np.sin(2 * math.pi * 200 * t)
    return _band_noise(rng, n, 150, 1800) * (0.8 + 0.2 * _slow(rng, n, 0.3)) + hum


def birds(rng: np.random.Generator, n: int) -> Signal:
    """Chirps (fast frequency sweeps) over soft lapping water."""
    out = 0.25 * _band_noise(rng, n, 100, 700) * _slow(rng, n, 0.6)
    for _ in range(int(n / SAMPLE_RATE_HZ * 2.5)):
        start = int(rng.uniform(0, n - SAMPLE_RATE_HZ * 0.4))
        notes = int(rng.integers(2, 6))
        f_base = rng.uniform(2500, 5000)
        for k in range(notes):
            length = int(SAMPLE_RATE_HZ * rng.uniform(0.04, 0.09))
            s = start + k * int(length * 1.4)
            if s + length >= n:
                break
            tt = np.arange(length) / SAMPLE_RATE_HZ
            sweep = f_base * (1 + rng.uniform(-0.4, 0.4) * tt / tt[-1])
            phase = 2 * math.pi * np.cumsum(sweep) / SAMPLE_RATE_HZ
            out[s : s + length] += 0.5 * np.sin(phase) * np.hanning(length)
    return out


SOUNDS: dict[str, Callable[[np.random.Generator, int], Signal]] = {
    "wind": wind,
    "murmur": murmur,
    "engine": engine,
    "ventilation": ventilation,
    "birds": birds,
}


def synthesize(name: str, seconds: float = LOOP_S, seed: int = 7) -> NDArray[np.int16]:
    """The named loop as 16-bit samples; its end is cross-faded into its start."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SAMPLE_RATE_HZ)
    fade = int(0.5 * SAMPLE_RATE_HZ)
    raw = SOUNDS[name](rng, n + fade)
    ramp = np.linspace(0.0, 1.0, fade)
    loop = raw[:n].copy()
    loop[:fade] = raw[:fade] * ramp + raw[n:] * (1 - ramp)
    loop *= 0.7 / (np.max(np.abs(loop)) + 1e-12)
    return (loop * 32767).astype(np.int16)


def cache_dir() -> Path:
    base = os.environ.get("VREXPOSURE_CACHE_DIR") or os.path.join(
        tempfile.gettempdir(), "vrexposure"
    )
    return Path(base) / f"sounds-v{_VERSION}"


def sound_path(name: str) -> Path:
    """Path of the named ambient loop, synthesized on first use."""
    if name not in SOUNDS:
        raise KeyError(f"unknown ambient sound {name!r} (known: {', '.join(SOUNDS)})")
    path = cache_dir() / f"{name}.wav"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        with wave.open(str(tmp), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(SAMPLE_RATE_HZ)
            out.writeframes(synthesize(name).tobytes())
        tmp.replace(path)
    return path
