"""Event sounds: synthesised one-shots (chime, announcement, cough …) heard when an event starts.

The buffers are measured as signals (duration, level, spectrum, envelope), the cached
WAV files read back, and the renderer's ``play_event`` is checked to start the sound
the scene maps to the event.
"""

from __future__ import annotations

import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from vrexposure.plugins import discover_scenes
from vrexposure.render import audio
from vrexposure.render.audio import (
    ANNOUNCEMENT_S,
    CHIME_TONES_HZ,
    COUGH_BURSTS,
    EVENT_SOUNDS,
    PA_DING_HZ,
    SAMPLE_RATE_HZ,
    SPEECH_BAND_HZ,
    SYLLABLES_HZ,
    event_sound_path,
    synthesize_event,
)

from .render_fixtures import shared_engine


def signal(name: str) -> NDArray[np.float64]:
    return synthesize_event(name).astype(np.float64) / 32767.0


def peak_hz(x: NDArray[np.float64]) -> float:
    """Frequency of the strongest spectral line (Hann window)."""
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1.0 / SAMPLE_RATE_HZ)[int(np.argmax(spectrum))])


def envelope(x: NDArray[np.float64], frame_s: float = 0.02) -> NDArray[np.float64]:
    """RMS per frame."""
    n = int(frame_s * SAMPLE_RATE_HZ)
    frames = x[: len(x) // n * n].reshape(-1, n)
    return np.sqrt((frames**2).mean(axis=1))


@pytest.mark.parametrize("name", sorted(EVENT_SOUNDS))
def test_every_event_sound_is_audible_short_and_clean(name: str) -> None:
    x = signal(name)
    seconds = len(x) / SAMPLE_RATE_HZ
    assert 0.3 <= seconds <= 8.0
    assert np.sqrt((x**2).mean()) > 0.03  # not silent
    assert np.abs(x).max() < 0.99  # not clipped
    assert abs(x[0]) < 0.01 and abs(x[-1]) < 0.01  # faded in and out: no click
    assert np.array_equal(synthesize_event(name), synthesize_event(name))  # deterministic


def test_seat_belt_chime_is_a_high_then_a_low_tone() -> None:
    x = signal("chime")
    assert 1.5 <= len(x) / SAMPLE_RATE_HZ <= 2.5
    note = int(audio.CHIME_NOTE_S * SAMPLE_RATE_HZ)
    high, low = CHIME_TONES_HZ
    assert peak_hz(x[: note - 200]) == pytest.approx(high, abs=5.0)
    assert peak_hz(x[note + 200: 2 * note]) == pytest.approx(low, abs=5.0)
    env = envelope(x)
    assert env[int(0.7 / 0.02)] < 0.5 * env[:10].max()  # each note rings out (decays)


def test_captains_announcement_is_a_ding_then_muffled_speech() -> None:
    x = signal("announcement")
    assert len(x) / SAMPLE_RATE_HZ == pytest.approx(ANNOUNCEMENT_S, abs=0.05)
    ding, speech = x[: int(1.0 * SAMPLE_RATE_HZ)], x[int(1.3 * SAMPLE_RATE_HZ):]
    assert peak_hz(ding) == pytest.approx(PA_DING_HZ, abs=5.0)
    spectrum = np.abs(np.fft.rfft(speech)) ** 2
    freqs = np.fft.rfftfreq(len(speech), 1.0 / SAMPLE_RATE_HZ)
    band = (freqs >= SPEECH_BAND_HZ[0]) & (freqs <= SPEECH_BAND_HZ[1])
    assert spectrum[band].sum() / spectrum.sum() > 0.9  # a voice band, muffled: no highs
    env = envelope(speech)
    rhythm = np.abs(np.fft.rfft(env - env.mean()))
    rates = np.fft.rfftfreq(len(env), 0.02)
    syllabic = rates[1 + int(np.argmax(rhythm[1:]))]
    assert 2.0 <= syllabic <= 8.0 and syllabic == pytest.approx(SYLLABLES_HZ, abs=1.5)
    assert (env < 0.1 * env.max()).mean() > 0.1  # pauses between syllables and phrases


def test_cough_is_three_sharp_bursts() -> None:
    x = signal("cough")
    env = envelope(x, 0.01)
    loud = np.flatnonzero(env > 0.3 * env.max())
    # Bursts: runs of loud frames, a new one after a quiet gap of at least 0.1 s.
    bursts = 1 + int((np.diff(loud) > 10).sum())
    assert bursts == COUGH_BURSTS
    attack = int(np.argmax(env))
    assert attack * 0.01 < 0.05  # a sharp start: the loudest moment within 50 ms
    assert len(x) / SAMPLE_RATE_HZ < 2.0


def test_event_sounds_are_cached_as_wav_files(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("VREXPOSURE_CACHE_DIR", str(tmp_path))
    path = event_sound_path("chime")
    assert path.is_relative_to(tmp_path)
    with wave.open(str(path), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (
            1, 2, SAMPLE_RATE_HZ)
        frames = np.frombuffer(wav.readframes(wav.getnframes()), np.int16)
    assert np.array_equal(frames, synthesize_event("chime"))
    assert event_sound_path("chime") == path  # written once
    with pytest.raises(KeyError, match="unknown event sound"):
        event_sound_path("applause")


def test_scenes_map_their_events_to_existing_sounds() -> None:
    scenes = discover_scenes()
    mapped = {}
    for name, spec in scenes.items():
        factory: Any = spec.factory
        for event, sound in factory.event_sounds.items():
            assert spec.event(event) is not None, (name, event)
            assert sound in EVENT_SOUNDS, (name, sound)
            mapped[(name, event)] = sound
    assert mapped[("flying", "chime")] == "chime"
    assert mapped[("flying", "announcement")] == "announcement"
    assert mapped[("public_speaking", "cough")] == "cough"


@pytest.mark.render
def test_triggering_an_event_starts_its_sound() -> None:
    engine = shared_engine()
    engine.show("flying", {"flight_phase": "cruise"})
    engine.step(0.0)
    assert engine.play_event("announcement")
    assert engine.last_event_sound == "announcement"
    assert "event:announcement" in engine._sounds  # loaded (silent with the null library)
    assert engine.play_event("chime") and engine.last_event_sound == "chime"
    assert engine.play_event("jolt") and engine.last_event_sound is None  # no sound mapped
    engine.show("public_speaking", {})
    engine.step(0.0)
    assert engine.play_event("cough") and engine.last_event_sound == "cough"
    assert not engine.play_event("announcement")  # not this scene's
    engine.show("calm", {})
    engine.step(0.0)
