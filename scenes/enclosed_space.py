"""Enclosed space: a small room whose walls, ceiling, light and door are controlled."""

from vrexposure.scene_api import SceneSpec, choice_param, float_param

SCENE = SceneSpec(
    name="enclosed_space",
    title="Small room",
    params=(
        float_param("wall_distance_m", 2.5, 0.4, 4.0, "m", "Distance from the patient to each wall"),
        float_param("ceiling_height_m", 2.8, 1.4, 4.0, "m", "Ceiling height"),
        float_param("wall_creep_cm_s", 0.0, 0.0, 5.0, "cm/s", "Walls slowly move in (0 = still)"),
        choice_param("door", "open", ("open", "closed", "locked"), "Door state"),
        float_param("light_level", 1.0, 0.05, 1.0, "", "Room brightness"),
        float_param("ventilation_volume", 0.2, 0.0, 1.0, "", "Ventilation hum volume"),
    ),
)
