"""Spiders: a living room where spiders sit, walk and approach the seated patient."""

from vrexposure.scene_api import SceneSpec, bool_param, choice_param, float_param, int_param

SCENE = SceneSpec(
    name="spiders",
    title="Living room with spiders",
    params=(
        int_param("count", 1, 0, 20, "spiders", "Number of spiders in the room"),
        float_param("size_cm", 3.0, 0.5, 15.0, "cm", "Leg span of each spider"),
        float_param("distance_m", 3.0, 0.3, 5.0, "m", "Distance of the nearest spider from the patient"),
        float_param("speed_cm_s", 0.0, 0.0, 30.0, "cm/s", "Walking speed (0 = motionless)"),
        bool_param("approach", False, "Spiders walk towards the patient instead of wandering"),
        bool_param("contained", False, "Spiders are inside a closed glass terrarium"),
        choice_param("species", "house", ("house", "wolf", "tarantula"), "Look of the spiders"),
        float_param("light_level", 1.0, 0.2, 1.0, "", "Room brightness"),
    ),
)
