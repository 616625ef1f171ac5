from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from click.testing import CliRunner

from vrexposure.cli import main
from vrexposure.hierarchy import (
    HierarchyError,
    hierarchy_from_dict,
    hierarchy_to_dict,
    load_hierarchy,
    parse_hierarchy,
    validate_file,
)
from vrexposure.plugins import builtin_hierarchies, discover_scenes

from .conftest import HIERARCHIES

GOOD = """\
id: test
title: Test hierarchy
scene: spiders
advance_rule:
  suds_drop_pct: 50
  min_time_in_step_s: 10
steps:
  - {id: a, label: A, expected_suds: 20, params: {count: 1, distance_m: 4}}
  - {id: b, label: B, expected_suds: 30, params: {count: 1, distance_m: 3}}
  - {id: c, label: C, expected_suds: 40, params: {count: 2, distance_m: 2},
     intensity: {distance_m: [2.5, 1.5]}}
  - {id: d, label: D, expected_suds: 50, params: {count: 3}}
  - {id: e, label: E, expected_suds: 60, params: {count: 4}}
"""


def test_builtin_hierarchies_validate_clean() -> None:
    files = builtin_hierarchies()
    assert {p.stem for p in files} >= {"arachnophobia", "acrophobia", "public_speaking",
                                       "claustrophobia", "fear_of_flying"}
    scenes = discover_scenes()
    for path in files:
        hierarchy, problems = validate_file(path)
        assert problems == [], [str(p) for p in problems]
        assert hierarchy is not None and 8 <= len(hierarchy.steps) <= 12
        assert hierarchy.steps[0].expected_suds <= 40
        suds = [s.expected_suds for s in hierarchy.steps]
        assert all(b - a <= 15 for a, b in itertools.pairwise(suds))
        assert hierarchy.scene in scenes and hierarchy.calm_scene in scenes


def test_every_builtin_scene_declares_a_schema() -> None:
    scenes = discover_scenes()
    assert set(scenes) >= {"calm", "spiders", "heights", "public_speaking", "enclosed_space",
                           "flying"}
    for spec in scenes.values():
        assert spec.params, spec.name
        for param in spec.params:
            assert param.check(param.default) is None, (spec.name, param.name)


def test_good_file_parses_and_interpolates_intensity() -> None:
    hierarchy, problems = parse_hierarchy(GOOD, "good.yaml")
    assert hierarchy is not None and problems == []
    scenes = discover_scenes()
    low = hierarchy.step_params(2, 0.0, scenes)
    high = hierarchy.step_params(2, 1.0, scenes)
    mid = hierarchy.step_params(2, 0.5, scenes)
    assert (low["distance_m"], mid["distance_m"], high["distance_m"]) == (2.5, 2.0, 1.5)
    assert low["count"] == 2 and low["size_cm"] == 3.0  # step value and scene default


def test_misspelt_parameter_names_line_and_suggestion() -> None:
    text = GOOD.replace("{count: 3}", "{count: 3, distnce_m: 2}")
    hierarchy, problems = parse_hierarchy(text, "bad.yaml")
    assert hierarchy is None
    assert [str(p) for p in problems] == [
        "bad.yaml:12: error: scene 'spiders' has no parameter 'distnce_m' "
        "(did you mean 'distance_m'?)"]


def test_out_of_range_wrong_type_and_unknown_field(tmp_path: Path) -> None:
    text = (GOOD.replace("distance_m: 4}", "distance_m: 40}")
            .replace("label: B,", "label: B, expcted_suds: 3,")
            .replace("count: 4}", "count: 2.5}")
            .replace("scene: spiders", "scene: spider"))
    path = tmp_path / "h.yaml"
    path.write_text(text)
    _, problems = validate_file(path)
    messages = [str(p) for p in problems]
    assert f"{path}:3: error: unknown scene 'spider' (did you mean 'spiders'?); known scenes: " \
        "calm, enclosed_space, flying, heights, public_speaking, spiders" in messages
    text = GOOD.replace("distance_m: 4}", "distance_m: 40}").replace(
        "label: B,", "label: B, expcted_suds: 3,").replace("count: 4}", "count: 2.5}")
    path.write_text(text)
    _, problems = validate_file(path)
    messages = [str(p) for p in problems]
    assert f"{path}:8: error: parameter 'distance_m' 40 m is above the maximum 5.0 m" in messages
    assert f"{path}:9: error: unknown field 'expcted_suds' (did you mean 'expected_suds'?)" \
        in messages
    assert f"{path}:13: error: parameter 'count' must be a whole number, not 2.5" in messages
    with pytest.raises(HierarchyError) as info:
        load_hierarchy(path)
    assert len(info.value.problems) == 3


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("id: x\ntitle: [unclosed\nscene: spiders\n")
    _, problems = validate_file(path)
    assert len(problems) == 1
    assert problems[0].path == str(path) and problems[0].line in (2, 3, 4)
    assert "invalid YAML" in problems[0].message


def test_clinical_warnings() -> None:
    text = """\
id: w
title: W
scene: heights
steps:
  - {id: a, label: A, expected_suds: 50}
  - {id: b, label: B, expected_suds: 80}
  - {id: c, label: C, expected_suds: 70}
"""
    hierarchy, problems = parse_hierarchy(text, "w.yaml")
    assert hierarchy is not None  # warnings do not stop a session
    assert [str(p) for p in problems] == [
        "w.yaml:4: warning: 3 steps: a hierarchy usually has 5-15 (8-12 is typical)",
        "w.yaml:5: warning: first step expects 50 SUDS: start at 40 or below so the patient "
        "can succeed",
        "w.yaml:6: warning: gap of 30 SUDS between 'a' and 'b' (more than 15): add an "
        "intermediate step",
        "w.yaml:7: warning: expected SUDS falls from 80 ('b') to 70 ('c'): order steps by "
        "increasing distress",
    ]


def test_intensity_on_a_bool_and_duplicate_ids_are_errors() -> None:
    text = GOOD.replace("intensity: {distance_m: [2.5, 1.5]}", "intensity: {approach: [0, 1]}")
    text = text.replace("{id: b,", "{id: a,")
    _, problems = parse_hierarchy(text, "x.yaml")
    messages = [p.message for p in problems]
    assert "step id 'a' is used twice (also step 1)" in messages
    assert any("only numeric parameters can follow the intensity slider" in m for m in messages)


def test_round_trip_through_plain_data() -> None:
    original = load_hierarchy(HIERARCHIES / "public_speaking.yaml")
    assert hierarchy_from_dict(hierarchy_to_dict(original)) == \
        original.__class__(**{**original.__dict__, "source_path": "<recording>"})


def test_validate_command_exit_status(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(main, ["validate", str(HIERARCHIES)])
    assert ok.exit_code == 0, ok.output
    assert "5 file(s): 0 error(s), 0 warning(s)" in ok.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(GOOD.replace("count: 4", "cout: 4"))
    result = runner.invoke(main, ["validate", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}:13: error: scene 'spiders' has no parameter 'cout' (did you mean 'count'?)" \
        in result.output
