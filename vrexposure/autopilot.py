"""An autopilot therapist for the demo and for tests: runs a session by the book.

Baseline, then each step: record the patient's predicted feared outcome when
the step has one, ask for SUDS at a fixed interval (the simulated patient answers
from its own distress), and accept the advance rule's suggestion (recording that
the feared outcome did not happen). It sends the controlling heartbeat like the
panel does. It never records a rating nobody gave: the likelihood of each
prediction is the simulated patient's, from how feared the step is. The questionnaires the hierarchy
asks for are given before the baseline and before the end (the patient answers).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from .client import CommandFailed, ControlClient, HostUnreachable, Subscriber
from .config import Endpoints

log = logging.getLogger(__name__)


@dataclass
class AutopilotSettings:
    suds_interval_s: float = 30.0
    heartbeat_interval_s: float = 0.5
    client_id: str = "autopilot"
    #: Time kept at the end for the 'after' questionnaires, and the most one may take.
    questionnaire_reserve_s: float = 4.0
    questionnaire_timeout_s: float = 8.0


def predicted_likelihood_pct(expected_suds: float) -> int:
    """How likely the simulated patient thinks the feared outcome is at a step (0–100 %).

    Anxious patients overrate the likelihood of what they fear, more so the more
    they fear the step: half-way between the step's expected SUDS and certainty,
    so a step rated 20 gives 60 % and one rated 90 gives 95 %.
    """
    suds = min(100.0, max(0.0, float(expected_suds)))
    return round(suds + (100.0 - suds) / 2)


@dataclass
class AutopilotLog:
    commands: list[tuple[float, str, dict[str, Any]]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    ended: bool = False


class AutopilotTherapist:
    def __init__(self, endpoints: Endpoints, settings: AutopilotSettings) -> None:
        self.settings = settings
        self.control = ControlClient(endpoints.control, "therapist", settings.client_id)
        self.subscriber = Subscriber(endpoints, topics=("state", "event"), data=False)
        self.log = AutopilotLog()
        self._state: dict[str, Any] = {}
        self._expectancy_step: int | None = None
        self._given: set[tuple[str, str]] = set()  # (when, questionnaire id)
        self._next_heartbeat = 0.0

    def _send(self, name: str, args: dict[str, Any] | None = None) -> bool:
        try:
            self.control.send(name, args or {}, timeout_s=3.0)
        except (CommandFailed, HostUnreachable) as exc:
            self.log.errors.append(f"{name}: {exc}")
            log.info("autopilot: %s", exc)
            return False
        self.log.commands.append((time.monotonic(), name, dict(args or {})))
        return True

    def run(self, duration_s: float) -> AutopilotLog:
        """Run the session for ``duration_s`` (wall time) or until the hierarchy is done."""
        s = self.settings
        start = time.monotonic()
        next_suds = start
        self._next_heartbeat = start
        plan: dict[str, Any] = {}
        try:
            while time.monotonic() - start < duration_s and not self.log.ended:
                now = time.monotonic()
                self._pump(now)
                plan = self._state.get("questionnaire_plan") or {}
                phase = self._state.get("phase")
                if self._state.get("questionnaire"):
                    pass  # the patient is answering: wait
                elif phase == "idle" and self._give_due("before", plan.get("before", [])):
                    pass
                elif (plan.get("after") and not self.log.ended
                      and duration_s - (now - start) < s.questionnaire_reserve_s):
                    break  # keep the end of the session for the 'after' questionnaires
                elif phase == "idle":
                    self._send("start_baseline")
                    self._state["phase"] = "baseline"
                elif phase == "baseline" and self._state.get("baseline_done"):
                    self._send("start_exposure")
                    self._state["phase"] = "exposure"
                elif phase == "exposure":
                    step = int(self._state.get("step_index", 0))
                    if (self._state.get("step_expectancy_prompt")
                            and self._expectancy_step != step):
                        self._expectancy_step = step
                        self._send("expectancy", {
                            "outcome": self._state["step_expectancy_prompt"],
                            "likelihood_pct": predicted_likelihood_pct(
                                self._state.get("step_expected_suds", 50))})
                    if now >= next_suds:
                        self._send("request_suds")
                        next_suds = now + s.suds_interval_s
                time.sleep(0.02)
            if self.log.ended and plan.get("after"):
                pass  # ended by the hierarchy: the 'after' forms were given before 'end'
            elif plan.get("after"):
                self._give_after(plan["after"])
            if not self.log.ended:
                self._send("end", {"reason": "autopilot finished"})
                self.log.ended = True
        finally:
            self.subscriber.close()
            self.control.close()
        return self.log

    def _pump(self, now: float) -> None:
        """Heartbeat when due; read the host's state and events."""
        if now >= self._next_heartbeat:
            try:
                self.control.send("heartbeat", {"controlling": True}, timeout_s=2.0)
            except (CommandFailed, HostUnreachable) as exc:
                self.log.errors.append(f"heartbeat: {exc}")
            self._next_heartbeat = now + self.settings.heartbeat_interval_s
        for message in self.subscriber.drain(200):
            if message.topic == "state":
                self._state = dict(message.payload)
            elif message.topic == "event":
                self._on_event(dict(message.payload))

    def _give_due(self, when: str, ids: list[str]) -> bool:
        """Start the next of ``ids`` not yet given ``when``; True if one was started."""
        for qid in ids:
            if (when, qid) not in self._given:
                self._given.add((when, qid))
                if self._send("questionnaire_start", {
                        "id": qid, "occasion": f"{when}_session"}):
                    self._state["questionnaire"] = {"id": qid}  # until the next state
                    return True
        return False

    def _give_after(self, ids: list[str]) -> None:
        """Give the 'after' questionnaires one by one and wait for the patient's answers."""
        for qid in ids:
            if not self._give_due("after", [qid]):
                continue
            deadline = time.monotonic() + self.settings.questionnaire_timeout_s
            while self._state.get("questionnaire") and time.monotonic() < deadline:
                self._pump(time.monotonic())
                time.sleep(0.02)
            if self._state.get("questionnaire"):
                self._send("questionnaire_finish", {"id": qid})  # the rest stays unanswered

    def _on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("kind")
        if kind != "advance_suggested":
            return
        step = int(event.get("step_index", 0))
        if self._expectancy_step == step and event.get("reason") != "expectancy_violated":
            # The feared outcome did not happen: record it before moving on.
            self._send("expectancy_outcome", {"happened": False})
        if event.get("hierarchy_complete"):
            self._give_after(list((self._state.get("questionnaire_plan") or {})
                                  .get("after", [])))
            self._send("end", {"reason": "hierarchy complete"})
            self.log.ended = True
        else:
            self._send("accept_suggestion")
