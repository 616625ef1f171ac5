"""Heights: a rooftop terrace of a tall building, approaching the edge."""

from vrexposure.scene_api import SceneSpec, bool_param, choice_param, float_param

SCENE = SceneSpec(
    name="heights",
    title="Rooftop ledge",
    params=(
        float_param("height_m", 3.0, 1.0, 200.0, "m", "Height of the floor above the ground"),
        float_param("edge_distance_m", 3.0, 0.0, 6.0, "m", "Distance from the patient to the edge"),
        choice_param("railing", "full", ("full", "low", "none"), "Railing at the edge"),
        bool_param("glass_floor", False, "The floor near the edge is transparent"),
        float_param("wind_speed_m_s", 1.0, 0.0, 15.0, "m/s", "Wind: sways flags, plants and the view"),
        float_param("wind_volume", 0.3, 0.0, 1.0, "", "Wind sound volume"),
    ),
)
