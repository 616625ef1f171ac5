"""Public speaking: a hall with an audience watching the patient at a lectern."""

from vrexposure.scene_api import SceneSpec, choice_param, float_param, int_param

SCENE = SceneSpec(
    name="public_speaking",
    title="Speaking to an audience",
    params=(
        int_param("audience_size", 3, 0, 80, "people", "Number of people in the audience"),
        float_param("attention", 0.3, 0.0, 1.0, "", "Share of the audience looking at the speaker"),
        float_param("hostility", 0.0, 0.0, 1.0, "", "Frowns, crossed arms, whispering and phones"),
        float_param("front_row_distance_m", 4.0, 1.0, 10.0, "m", "Distance to the first row"),
        choice_param(
            "hall", "meeting_room", ("meeting_room", "classroom", "lecture_hall"), "Room size"
        ),
        float_param("murmur_volume", 0.2, 0.0, 1.0, "", "Crowd murmur volume"),
        float_param("spotlight", 0.0, 0.0, 1.0, "", "Stage light on the speaker (0 = none)"),
    ),
)
