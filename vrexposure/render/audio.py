"""Procedural sounds: numpy synthesis written once to WAV files in a cache folder.

Ambient sounds are seamless loops (their end cross-faded into their start); event
sounds (:data:`EVENT_SOUNDS`: a seat-belt chime, a captain's announcement, a cough …)
play once when a stimulus event starts. All are mono 16-bit at :data:`SAMPLE_RATE_HZ`,
generated deterministically from a fixed seed, so nothing is downloaded or shipped (no
recorded or copyrighted audio). The engine loads the files with Panda3D's audio
manager; with ``audio-library-name null`` they simply play silently.
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
_VERSION = 2  # 2: event sounds

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


# --------------------------------------------------------------------------- event sounds

#: The seat-belt chime: a high then a low tone (a two-tone "ding-dong"), each ringing out.
CHIME_TONES_HZ = (880.0, 698.5)
CHIME_NOTE_S = 0.75
#: The cabin PA "ding" before the announcement, and the muffled voice's band and rate.
PA_DING_HZ = 1174.7
SPEECH_BAND_HZ = (250.0, 2800.0)
SYLLABLES_HZ = 4.5
ANNOUNCEMENT_S = 7.0
COUGH_BURSTS = 3


def _bell(n: int, freq_hz: float, decay_s: float) -> Signal:
    """A struck tone: fundamental with a soft octave and fifth partial, exponential decay."""
    t = _time(n)
    tone = (np.sin(2 * math.pi * freq_hz * t) + 0.25 * np.sin(2 * math.pi * 2 * freq_hz * t)
            + 0.1 * np.sin(2 * math.pi * 3 * freq_hz * t))
    attack = np.minimum(1.0, t / 0.005)
    return tone * attack * np.exp(-t / decay_s)


def chime(rng: np.random.Generator) -> Signal:
    """Two-tone cabin chime: high then low, each note ringing ~0.75 s."""
    note = int(CHIME_NOTE_S * SAMPLE_RATE_HZ)
    out = np.zeros(2 * note + int(0.5 * SAMPLE_RATE_HZ))
    for k, freq in enumerate(CHIME_TONES_HZ):
        ring = _bell(len(out) - k * note, freq, 0.45)
        out[k * note:] += ring
    return out


def _speech(rng: np.random.Generator, n: int) -> Signal:
    """Speech-like but wordless: band-limited noise and a voiced buzz, syllable-rate
    envelope with pauses between phrases, muffled (a small cabin loudspeaker)."""
    t = _time(n)
    f0 = 115.0 * (1.0 + 0.08 * np.sin(2 * math.pi * 0.35 * t))  # intonation
    voiced = np.sign(np.sin(2 * math.pi * np.cumsum(f0) / SAMPLE_RATE_HZ))
    voice = _band_noise(rng, n, *SPEECH_BAND_HZ) + 0.35 * voiced
    # Formant-ish band limiting of the buzz too (FFT mask, as _band_noise does).
    spectrum = np.fft.rfft(voice)
    freqs = np.fft.rfftfreq(n, 1.0 / SAMPLE_RATE_HZ)
    spectrum[(freqs < SPEECH_BAND_HZ[0]) | (freqs > SPEECH_BAND_HZ[1])] = 0.0
    voice = np.fft.irfft(spectrum, n)
    syllables = np.clip(np.sin(2 * math.pi * SYLLABLES_HZ * t + 0.7 * np.sin(1.3 * t)), 0, 1)
    phrases = (_slow(rng, n, 0.35) > 0.3).astype(np.float64)
    smooth = int(0.03 * SAMPLE_RATE_HZ)
    phrases = np.convolve(phrases, np.ones(smooth) / smooth, mode="same")
    return voice * syllables**0.7 * phrases


def announcement(rng: np.random.Generator) -> Signal:
    """The captain's announcement: a PA "ding", then a muffled voice for a few seconds."""
    ding_n = int(1.2 * SAMPLE_RATE_HZ)
    speech_n = int((ANNOUNCEMENT_S - 1.2) * SAMPLE_RATE_HZ)
    ding = _bell(ding_n, PA_DING_HZ, 0.35)
    voice = _speech(rng, speech_n)
    voice *= 0.6 / (np.max(np.abs(voice)) + 1e-12)
    hiss = 0.03 * _band_noise(rng, speech_n, 2000, 6000)  # the loudspeaker's hiss
    return np.concatenate([ding, voice + hiss])


def cough(rng: np.random.Generator) -> Signal:
    """Three coughs: a sharp noisy burst each (glottal pop, then a breathy tail)."""
    burst_n = int(0.35 * SAMPLE_RATE_HZ)
    gap_n = int(0.22 * SAMPLE_RATE_HZ)
    parts = []
    for k in range(COUGH_BURSTS):
        t = _time(burst_n)
        env = np.minimum(1.0, t / 0.008) * np.exp(-t / (0.09 - 0.015 * k))
        noise = _band_noise(rng, burst_n, 150, 3500) + 0.4 * _band_noise(rng, burst_n, 80, 400)
        parts += [noise * env * (1.0 - 0.2 * k), np.zeros(gap_n)]
    return np.concatenate(parts)


def yawn(rng: np.random.Generator) -> Signal:
    """A long breathy yawn: noise through a formant that falls, swelling and fading."""
    n = int(2.2 * SAMPLE_RATE_HZ)
    t = _time(n)
    out = np.zeros(n)
    frame = int(0.08 * SAMPLE_RATE_HZ)
    window = np.hanning(frame)
    for start in range(0, n - frame, frame // 2):  # a falling band, overlapping frames
        centre = 900.0 - 500.0 * start / n
        out[start:start + frame] += window * _band_noise(rng, frame, centre * 0.6, centre * 1.4)
    return out * np.sin(math.pi * t / t[-1]) ** 1.5


def phone_ping(rng: np.random.Generator) -> Signal:
    """A phone's notification: two short bright blips."""
    blip = _bell(int(0.18 * SAMPLE_RATE_HZ), 1568.0, 0.06)
    return np.concatenate([blip, np.zeros(int(0.06 * SAMPLE_RATE_HZ)),
                           _bell(int(0.3 * SAMPLE_RATE_HZ), 2093.0, 0.08)])


def gust(rng: np.random.Generator) -> Signal:
    """A strong gust of wind rising and falling over a few seconds."""
    n = int(4.5 * SAMPLE_RATE_HZ)
    t = _time(n)
    swell = np.sin(math.pi * t / t[-1]) ** 2
    return (_band_noise(rng, n, 60, 1200) * swell
            + 0.4 * _band_noise(rng, n, 1200, 3500) * swell**2)


def door_slam(rng: np.random.Generator) -> Signal:
    """A door swinging shut: a low thud with a rattle, then the latch click."""
    n = int(1.0 * SAMPLE_RATE_HZ)
    t = _time(n)
    thud = (np.sin(2 * math.pi * 70 * t) + 0.6 * _band_noise(rng, n, 60, 500)) * np.exp(-t / 0.12)
    click = np.zeros(n)
    c0 = int(0.18 * SAMPLE_RATE_HZ)
    click_n = int(0.03 * SAMPLE_RATE_HZ)
    click[c0:c0 + click_n] = _band_noise(rng, click_n, 2000, 6000) * np.exp(-_time(click_n) / 0.006)
    return thud + 0.5 * click


#: One-shot sounds of stimulus events (scenes map their events to these names).
EVENT_SOUNDS: dict[str, Callable[[np.random.Generator], Signal]] = {
    "chime": chime,
    "announcement": announcement,
    "cough": cough,
    "yawn": yawn,
    "phone_ping": phone_ping,
    "gust": gust,
    "door_slam": door_slam,
}


def synthesize_event(name: str, seed: int = 7) -> NDArray[np.int16]:
    """The named event sound as 16-bit samples, faded in and out over 5 ms (no clicks)."""
    raw = EVENT_SOUNDS[name](np.random.default_rng(seed))
    fade = min(len(raw) // 2, int(0.005 * SAMPLE_RATE_HZ))
    ramp = np.linspace(0.0, 1.0, fade)
    raw[:fade] *= ramp
    raw[len(raw) - fade:] *= ramp[::-1]
    raw *= 0.8 / (np.max(np.abs(raw)) + 1e-12)
    return (raw * 32767).astype(np.int16)


def event_sound_path(name: str) -> Path:
    """Path of the named event sound, synthesized on first use."""
    if name not in EVENT_SOUNDS:
        raise KeyError(f"unknown event sound {name!r} (known: {', '.join(EVENT_SOUNDS)})")
    return _cached_wav(f"event-{name}.wav", lambda: synthesize_event(name))


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
    return _cached_wav(f"{name}.wav", lambda: synthesize(name))


def _cached_wav(filename: str, samples: Callable[[], NDArray[np.int16]]) -> Path:
    """``filename`` in the cache folder, written (atomically) from ``samples`` if missing."""
    path = cache_dir() / filename
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        with wave.open(str(tmp), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(SAMPLE_RATE_HZ)
            out.writeframes(samples().tobytes())
        tmp.replace(path)
    return path
