"""Calm scene: a quiet lakeside meadow. Shown during baseline, pauses and after STOP."""

from vrexposure.scene_api import SceneSpec, choice_param, float_param

SCENE = SceneSpec(
    name="calm",
    title="Quiet lakeside meadow",
    has_stimulus=False,
    params=(
        choice_param("time_of_day", "day", ("day", "dusk"), "Sky colour and sun height"),
        float_param("light_level", 1.0, 0.3, 1.0, "", "Overall brightness (1 = full daylight)"),
        float_param("wind_speed_m_s", 1.0, 0.0, 5.0, "m/s", "Breeze moving grass and water"),
        float_param("ambient_volume", 0.4, 0.0, 1.0, "", "Birdsong and water sound volume"),
    ),
)
