"""Flying: a seat in an aircraft cabin, from boarding to turbulence and landing."""

from vrexposure.scene_api import SceneSpec, bool_param, choice_param, float_param

SCENE = SceneSpec(
    name="flying",
    title="Aircraft cabin",
    params=(
        choice_param(
            "flight_phase",
            "boarding",
            ("boarding", "taxi", "takeoff", "cruise", "landing"),
            "Phase of the flight: changes the view, pitch and sounds",
        ),
        float_param("turbulence", 0.0, 0.0, 1.0, "", "Cabin shaking strength"),
        float_param("cabin_occupancy", 0.5, 0.0, 1.0, "", "Share of seats taken"),
        bool_param("window_shade_open", True, "The window next to the patient is open"),
        bool_param("seatbelt_sign", False, "Seatbelt sign lit (with chime)"),
        float_param("engine_volume", 0.4, 0.0, 1.0, "", "Engine hum volume"),
        float_param("light_level", 1.0, 0.2, 1.0, "", "Cabin light"),
    ),
)
