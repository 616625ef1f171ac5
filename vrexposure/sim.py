"""The simulated patient: heart rate, ECG and head pose that react to the session.

Pure models (:class:`PatientModel`, :class:`EcgSynth`, :class:`HeadModel`) take
time and the scene's exposure level and return numbers; :class:`SimulatedPatient`
is the thin I/O shell that follows the host's state and publishes on the bridge.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from .client import ControlClient, HostUnreachable, Publisher, Subscriber
from .config import Endpoints
from .security import CurveClient

log = logging.getLogger(__name__)


# --- pure models -------------------------------------------------------------------

def exposure_level(state: Mapping[str, Any], expected_suds: float) -> float:
    """How threatening the current view is, 0–1 (0 in the calm scene)."""
    if state.get("phase") != "exposure":
        return 0.0
    intensity = float(state.get("intensity", 0.0))
    return min(1.0, expected_suds / 100.0 * (0.8 + 0.4 * intensity))


@dataclass
class PatientModel:
    """Arousal that rises with exposure and habituates within a step.

    ``distress`` follows the exposure level, decaying within a step towards 30 %
    of its peak with time constant ``habituation_tau_s``; heart rate follows
    ``resting + max_rise × distress`` with a 4 s physiological lag.
    """

    resting_hr_bpm: float = 72.0
    max_rise_bpm: float = 35.0
    habituation_tau_s: float = 90.0
    hr_lag_s: float = 4.0
    seed: int = 7
    hr_bpm: float = field(init=False)
    distress: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        self.hr_bpm = self.resting_hr_bpm
        self._rng = np.random.default_rng(self.seed)

    def update(self, dt_s: float, level: float, time_in_step_s: float) -> None:
        habituation = 0.3 + 0.7 * math.exp(-max(0.0, time_in_step_s) / self.habituation_tau_s)
        self.distress = level * habituation
        target = self.resting_hr_bpm + self.max_rise_bpm * self.distress
        alpha = 1.0 - math.exp(-dt_s / self.hr_lag_s)
        self.hr_bpm += (target - self.hr_bpm) * alpha

    def suds(self) -> int:
        noise = float(self._rng.normal(0.0, 3.0))
        return int(min(100, max(0, round(100 * self.distress + noise))))

    def next_rr_ms(self, t_s: float) -> float:
        """One beat-to-beat interval: mean from heart rate, respiratory sinus arrhythmia, noise."""
        rsa = 0.04 * math.sin(2 * math.pi * t_s / 4.5)  # breathing every 4.5 s
        noise = float(self._rng.normal(0.0, 0.01))
        return 60_000.0 / self.hr_bpm * (1.0 + rsa + noise)


# (centre offset s, width s, amplitude mV) of P, Q, R, S, T around the R peak
_PQRST = ((-0.20, 0.025, 0.15), (-0.035, 0.010, -0.12), (0.0, 0.011, 1.2),
          (0.035, 0.010, -0.25), (0.28, 0.045, 0.3))


class EcgSynth:
    """A synthetic single-lead ECG (mV) around given R-peak times."""

    def __init__(self, seed: int = 11, noise_mv: float = 0.02) -> None:
        self._rng = np.random.default_rng(seed)
        self.noise_mv = noise_mv

    def render(self, t0_s: float, n: int, rate_hz: float, r_peaks_s: npt.ArrayLike
               ) -> npt.NDArray[np.float32]:
        t = t0_s + np.arange(n) / rate_hz
        signal = 0.05 * np.sin(2 * np.pi * t / 4.5)  # baseline wander with breathing
        for peak in np.asarray(r_peaks_s, dtype=float):
            if peak < t[0] - 0.5 or peak > t[-1] + 0.5:
                continue
            for offset, width, amp in _PQRST:
                signal += amp * np.exp(-0.5 * ((t - peak - offset) / width) ** 2)
        signal += self._rng.normal(0.0, self.noise_mv, n)
        return signal.astype(np.float32)


def yaw_pitch_to_quat(yaw_deg: float, pitch_deg: float) -> list[float]:
    """Quaternion (w, x, y, z) for heading ``yaw`` about the up axis (z), then ``pitch``."""
    half_yaw, half_pitch = math.radians(yaw_deg) / 2, math.radians(pitch_deg) / 2
    cy, sy, cp, sp = math.cos(half_yaw), math.sin(half_yaw), math.cos(half_pitch), \
        math.sin(half_pitch)
    return [cy * cp, cy * sp, sy * sp, sy * cp]


def angle_between_deg(yaw1: float, pitch1: float, yaw2: float, pitch2: float) -> float:
    def vec(yaw: float, pitch: float) -> tuple[float, float, float]:
        y, p = math.radians(yaw), math.radians(pitch)
        return (-math.sin(y) * math.cos(p), math.cos(y) * math.cos(p), math.sin(p))
    a, b = vec(yaw1, pitch1), vec(yaw2, pitch2)
    dot = max(-1.0, min(1.0, sum(x * y for x, y in zip(a, b, strict=True))))
    return math.degrees(math.acos(dot))


@dataclass
class HeadModel:
    """A seated head that watches the stimulus and sometimes looks away, more so in distress."""

    stimulus_yaw_deg: float = 0.0
    stimulus_pitch_deg: float = -15.0
    look_away_threshold_deg: float = 30.0
    seed: int = 3
    yaw_deg: float = 0.0
    pitch_deg: float = -15.0
    _away_until_s: float = -1.0
    _away_yaw_deg: float = 0.0

    def __post_init__(self) -> None:
        self._rng = np.random.default_rng(self.seed)

    def update(self, t_s: float, dt_s: float, distress: float) -> dict[str, Any]:
        if t_s >= self._away_until_s and self._rng.random() < dt_s * (0.05 + 0.5 * distress):
            self._away_until_s = t_s + float(self._rng.uniform(0.8, 3.0))
            self._away_yaw_deg = float(self._rng.choice([-1, 1]) * self._rng.uniform(45, 80))
        away = t_s < self._away_until_s
        target_yaw = self._away_yaw_deg if away else self.stimulus_yaw_deg
        target_pitch = 0.0 if away else self.stimulus_pitch_deg
        alpha = 1.0 - math.exp(-dt_s / 0.25)  # head turns take a few hundred ms
        self.yaw_deg += (target_yaw - self.yaw_deg) * alpha + float(self._rng.normal(0, 0.2))
        self.pitch_deg += (target_pitch - self.pitch_deg) * alpha
        look = angle_between_deg(self.yaw_deg, self.pitch_deg, self.stimulus_yaw_deg,
                                 self.stimulus_pitch_deg)
        return {"pos": [0.0, 0.0, 1.2], "quat": yaw_pitch_to_quat(self.yaw_deg, self.pitch_deg),
                "yaw_deg": self.yaw_deg, "pitch_deg": self.pitch_deg,
                "look_angle_deg": look, "looking_away": look > self.look_away_threshold_deg}


#: Symptoms the simulated patient reports as 'slight' after exposure (mild, common ones).
SIM_AFTER_SYMPTOMS = frozenset({"fatigue", "eyestrain", "general_discomfort"})


def questionnaire_response(form: Mapping[str, Any], suds: int) -> int:
    """The simulated patient's answer to the open form's next item (pure)."""
    item = form["next_item"]
    low, high, step = int(item["min"]), int(item["max"]), int(item.get("step", 1))
    if form.get("id") == "ssq":  # no symptoms before exposure, a few slight ones after
        after = form.get("occasion") == "after_session"
        return min(high, 1) if after and item["id"] in SIM_AFTER_SYMPTOMS else low
    if high - low > 10:  # a 0–100 distress scale: the current SUDS on the scale's steps
        return min(high, max(low, low + round((suds - low) / step) * step))
    return low + (high - low) // 2 // step * step  # a neutral answer


# --- I/O shell ----------------------------------------------------------------------

@dataclass
class SimSettings:
    resting_hr_bpm: float = 72.0
    max_rise_bpm: float = 35.0
    habituation_tau_s: float = 90.0
    pose_rate_hz: float = 90.0
    ecg_rate_hz: float = 1000.0
    ecg_chunk_samples: int = 20
    ecg: bool = True
    answer_suds: bool = True
    answer_questionnaires: bool = True
    source: str = "sim"

    @staticmethod
    def from_config(config: Mapping[str, Any], **overrides: Any) -> SimSettings:
        sim = config["simulator"]
        settings = SimSettings(
            resting_hr_bpm=float(sim["resting_hr_bpm"]),
            max_rise_bpm=float(sim["max_rise_bpm"]),
            habituation_tau_s=float(sim["habituation_tau_s"]),
            pose_rate_hz=float(sim["pose_rate_hz"]), ecg_rate_hz=float(sim["ecg_rate_hz"]),
            ecg_chunk_samples=int(sim["ecg_chunk_samples"]))
        for key, value in overrides.items():
            setattr(settings, key, value)
        return settings


class SimulatedPatient:
    """Publishes a simulated patient's HR, RR, ECG and head pose; answers SUDS prompts."""

    def __init__(self, endpoints: Endpoints, settings: SimSettings,
                 curve: CurveClient | None = None, host_gone_after_s: float | None = None
                 ) -> None:
        """``host_gone_after_s``: stop by itself when the session has ended, or when no state
        has come from a host that was there for this long (None: run until :meth:`stop`)."""
        self.endpoints = endpoints
        self.host_gone_after_s = host_gone_after_s
        #: Why the patient stopped by itself ("" while running or when stopped from outside).
        self.finished_reason = ""
        self.curve = curve
        self.settings = settings
        self.model = PatientModel(settings.resting_hr_bpm, settings.max_rise_bpm,
                                  settings.habituation_tau_s)
        self.head = HeadModel()
        self.ecg = EcgSynth()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.published: dict[str, int] = {"hr": 0, "rr": 0, "ecg": 0, "pose": 0}
        self.suds_answers = 0
        self.questionnaire_answers = 0
        self._answered: tuple[Any, ...] | None = None

    def start(self) -> SimulatedPatient:
        self._thread = threading.Thread(target=self.run, name="sim-patient", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _finished(self, state: dict[str, Any], last_state_s: float | None, now_s: float) -> str:
        if self.host_gone_after_s is None:
            return ""
        if state.get("phase") == "ended":
            return "the session has ended"
        if last_state_s is not None and now_s - last_state_s > self.host_gone_after_s:
            return f"no state from the session host for {self.host_gone_after_s:.0f} s"
        return ""

    def run(self) -> None:
        s = self.settings
        control = ControlClient(self.endpoints.control, "patient", f"{s.source}-patient",
                                reply_timeout_s=0.3, curve=self.curve)
        try:
            offset = control.sync_clock(rounds=5)
        except HostUnreachable:
            offset = 0.0
            log.warning("simulated patient: host not reachable yet; using local time")
        publisher = Publisher(self.endpoints.publish, s.source,
                              clock=lambda: time.monotonic() + offset, curve=self.curve,
                              control=self.endpoints.control)
        subscriber = Subscriber(self.endpoints, topics=("state", "event"), data=False,
                                curve=self.curve)
        publisher.wait_connected()
        state: dict[str, Any] = {}
        last_state_s: float | None = None
        pose_period = 1.0 / s.pose_rate_hz
        chunk_period = s.ecg_chunk_samples / s.ecg_rate_hz
        now = publisher.now()
        next_pose, next_chunk, next_hr = now, now, now + 1.0
        next_beat = now + self.model.next_rr_ms(now) / 1000.0
        beats: list[float] = []
        pending_rr: list[float] = []
        last_update = now
        try:
            while not self._stop.is_set():
                for message in subscriber.drain(100):
                    if message.topic == "state":
                        state = dict(message.payload)
                        last_state_s = time.monotonic()
                        if s.answer_questionnaires:
                            self._answer_questionnaire(control, state)
                    elif (message.topic == "event" and s.answer_suds
                          and message.payload.get("kind") == "suds_requested"):
                        try:
                            control.send("suds", {"value": self.model.suds()}, timeout_s=2.0)
                            self.suds_answers += 1
                        except Exception as exc:  # the session may have moved on
                            log.info("simulated SUDS answer not accepted: %s", exc)
                self.finished_reason = self._finished(state, last_state_s, time.monotonic())
                if self.finished_reason:
                    break
                now = publisher.now()
                level = exposure_level(state, float(state.get("step_expected_suds", 0.0)))
                self.model.update(now - last_update, level, float(state.get("time_in_step_s",
                                                                            0.0)))
                last_update = now
                while next_beat <= now:
                    rr = self.model.next_rr_ms(next_beat)
                    beats.append(next_beat)
                    pending_rr.append(rr)
                    next_beat += rr / 1000.0
                if now >= next_pose:
                    publisher.publish("pose", self.head.update(now, pose_period,
                                                               self.model.distress), now)
                    self.published["pose"] += 1
                    next_pose += pose_period
                    if now - next_pose > 0.5:  # fell far behind (e.g. suspended): skip ahead
                        next_pose = now + pose_period
                if s.ecg and now >= next_chunk + chunk_period:
                    values = self.ecg.render(next_chunk, s.ecg_chunk_samples, s.ecg_rate_hz,
                                             [*beats[-3:], next_beat])
                    publisher.publish_chunk("ecg", values, s.ecg_rate_hz, "mV", next_chunk)
                    self.published["ecg"] += 1
                    next_chunk += chunk_period
                if now >= next_hr:
                    # Like a chest strap: the rate of the last few beats, with their variability.
                    recent_rr = (pending_rr or [self.model.next_rr_ms(now)])[-4:]
                    publisher.publish("hr", {"bpm": round(60_000.0 / np.mean(recent_rr), 2),
                                             "quality": "good"}, now)
                    self.published["hr"] += 1
                    if pending_rr:
                        publisher.publish("rr", {"rr_ms": [round(v, 1) for v in pending_rr],
                                                 "quality": "good"}, beats[-1])
                        self.published["rr"] += 1
                        pending_rr.clear()
                    del beats[:-4]
                    next_hr += 1.0
                wake = min(next_pose, next_chunk + chunk_period if s.ecg else next_pose, next_hr)
                time.sleep(max(0.0, min(0.01, wake - publisher.now())))
        finally:
            subscriber.close()
            publisher.close()
            control.close()

    def _answer_questionnaire(self, control: ControlClient, state: Mapping[str, Any]) -> None:
        """Answer the open questionnaire's next item once (a state may repeat)."""
        form = state.get("questionnaire")
        if not form or form.get("paused") or not form.get("next_item"):
            return
        key = (form["id"], form["next_item"]["id"], form.get("visited"))
        if key == self._answered:
            return
        self._answered = key
        try:
            control.send("questionnaire_answer", {
                "id": form["id"], "item": form["next_item"]["id"],
                "response": questionnaire_response(form, self.model.suds())}, timeout_s=2.0)
            self.questionnaire_answers += 1
        except Exception as exc:  # the therapist may have finished the form meanwhile
            log.info("simulated questionnaire answer not accepted: %s", exc)
