"""The autopilot therapist records ratings someone gave, never a default."""

from __future__ import annotations

from dataclasses import fields

from vrexposure.autopilot import AutopilotSettings, predicted_likelihood_pct


def test_the_likelihood_comes_from_the_step_not_a_default() -> None:
    assert predicted_likelihood_pct(20) == 60
    assert predicted_likelihood_pct(90) == 95
    assert predicted_likelihood_pct(0) == 50 and predicted_likelihood_pct(100) == 100
    assert predicted_likelihood_pct(150) == 100  # clamped
    assert len({predicted_likelihood_pct(s) for s in (15, 45, 75)}) == 3  # differs by step
    # no setting holds a rating to send by default
    assert not any("likelihood" in f.name or "suds_value" in f.name
                   for f in fields(AutopilotSettings))
