"""The questionnaire in the headset: keys, nothing pre-selected, pause, recording, legibility.

A real session host and the real renderer (offscreen, the shared engine); a simulated
patient answers the SSQ with key presses through Panda3D's messenger, as a keyboard
would. Legibility is measured like tests/test_render_legibility.py: a child process
renders the head-locked card side-by-side at 2 × 1440 × 1600, 90° per eye.
"""

from __future__ import annotations

import pytest

from tests.render_fixtures import changed_fraction
from tests.test_render_legibility import height_deg, measure_extents
from tests.test_render_process import renderer_fixture, run_for, run_until, shown  # noqa: F401
from vrexposure.client import ControlClient
from vrexposure.host import SessionHost
from vrexposure.questionnaires.records import from_recording
from vrexposure.render.process import RendererProcess
from vrexposure.render.questionnaire_card import QuestionnaireInput, box_layout, card_text

pytestmark = pytest.mark.render


# --------------------------------------------------------------------------- pure logic


def test_nothing_is_preselected_and_enter_sends_nothing_until_chosen() -> None:
    choice = QuestionnaireInput()
    choice.load(("ssq", "nausea"), [0, 1, 2, 3])
    assert choice.selected is None and choice.enter() is None
    assert choice.right() == 2  # first move: the middle, then one step at a time
    assert choice.right() == 3 and choice.right() == 3
    assert choice.left() == 2
    assert choice.digit(0, 1.0) == 0
    choice.load(("ssq", "nausea"), [0, 1, 2, 3])  # same item: the choice stays
    assert choice.selected == 0
    choice.load(("ssq", "vertigo"), [0, 1, 2, 3])  # next item: empty again
    assert choice.selected is None
    suds = QuestionnaireInput()
    suds.load(("suds", "suds"), list(range(0, 101, 5)))
    assert suds.digit(4, 0.0) == 40 and suds.digit(2, 0.5) == 40  # 42 → nearest step 40
    assert suds.digit(4, 5.0) == 40 and suds.digit(7, 5.2) == 45  # 47 → 45


def test_card_text_and_layout() -> None:
    form = {"id": "ssq", "title": "SSQ", "n_items": 16, "visited": 4, "next_index": 4,
            "next_item": {"id": "difficulty_focusing", "text": "Difficulty focusing",
                          "anchors": {"0": "None", "2": "Moderate"}}}
    text = card_text(form, None)
    assert text.header == "SSQ: question 5 of 16" and text.answer == "Choose an answer"
    assert text.progress == 0.25
    assert card_text(form, 2).answer == "Your answer: 2 (Moderate)"
    boxes = box_layout(7, 1.15)
    assert boxes[0][0] == pytest.approx(-boxes[-1][0]) and all(w > 0.25 for _, w in boxes)


# --------------------------------------------------------------------------- real renderer


def press(renderer: RendererProcess, *keys: str) -> None:
    for key in keys:
        renderer.engine.base.messenger.send(key)
        renderer.step_frame()


def test_simulated_patient_answers_ssq_with_keys_and_the_recording_holds_it(
        host: SessionHost, renderer: RendererProcess) -> None:
    therapist = ControlClient(host.endpoints.control, "therapist", "panel")
    try:
        assert therapist.send("start_exposure").ok
        run_until(renderer, lambda: shown(renderer) == "spiders" and not renderer.engine.fading,
                  10)
        before = renderer.engine.read_pixels()
        assert therapist.send("questionnaire_start", {"id": "ssq"}).ok
        run_until(renderer, lambda: renderer.questionnaire.active, 5)
        run_until(renderer, lambda: shown(renderer) == "calm" and not renderer.engine.fading,
                  10)  # the calm scene while the questionnaire is open
        assert renderer.questionnaire.input.selected is None  # nothing pre-selected
        with_card = renderer.engine.read_pixels()
        assert changed_fraction(before, with_card) > 0.2
        press(renderer, "enter")  # nothing chosen: nothing is sent
        run_for(renderer, 0.3)
        assert host.state.questionnaire is not None
        assert host.state.questionnaire.visited_count == 0
        assert "Choose an answer first" in renderer.overlay.status.text
        expected: dict[str, int | None] = {}
        items = list(host.state.questionnaire.definition.item_ids)
        for index, item in enumerate(items):
            run_until(renderer, lambda item=item: renderer.questionnaire.form is not None
                      and renderer.questionnaire.form["next_item"]["id"] == item
                      and renderer.questionnaire.pending_item is None, 5)
            if index == 3:  # pause and continue in the middle
                press(renderer, "p")
                run_until(renderer, lambda: renderer.questionnaire.paused, 5)
                assert host.state.questionnaire.paused
                press(renderer, "enter", "2")  # ignored while paused
                press(renderer, "p")
                run_until(renderer, lambda: not renderer.questionnaire.paused, 5)
                assert renderer.questionnaire.input.selected is None
            if index == 5:
                press(renderer, "delete")  # leave it unanswered
                expected[item] = None
            elif index % 2:
                press(renderer, "arrow_right", "arrow_right", "enter")  # middle, then up
                expected[item] = 3
            else:
                press(renderer, str(index % 3), "enter")
                expected[item] = index % 3
        run_until(renderer, lambda: not host.state.questionnaire
                  and bool(host.state.questionnaires_done), 5)
        run_until(renderer, lambda: not renderer.questionnaire.active, 5)
    finally:
        therapist.close()
    done = host.state.questionnaires_done[-1]
    assert done.id == "ssq" and dict(done.answers) == expected
    host.close()
    (admin,) = from_recording(host.recording_path)
    assert admin.final_answers() == expected
    assert all(a["by"].startswith("patient:renderer") for a in admin.answers)
    assert [a["answered"] for a in admin.answers].count(False) == 1
    assert admin.scores["nausea"]["value"] is None  # increased_salivation was left open
    assert admin.scores["oculomotor"]["value"] is not None


MEASURE = r"""
import json, sys
import numpy as np
from vrexposure.render.engine import RenderEngine
from vrexposure.render.overlay import PatientOverlay
from vrexposure.render.questionnaire_card import QuestionnaireCard
W, H, FOV = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
eng = RenderEngine("offscreen", W, H, stereo=True, fov_deg=FOV)
eng.show("calm", {})
overlay = PatientOverlay(eng.base.aspect2d, eng.base.camera, aspect_ratio=(W / 2) / H)
card = QuestionnaireCard(overlay)
forms = {
  "ipq": {"id": "ipq", "title": "igroup Presence Questionnaire", "n_items": 14, "visited": 3,
          "next_index": 3, "paused": False, "next_item": {
            "id": "SP3", "text": "I did not feel present in the virtual space.", "min": 0,
            "max": 6, "step": 1, "anchors": {"0": "Did not feel", "6": "Felt present"}}},
  "suds": {"id": "suds", "title": "Distress now (SUDS)", "n_items": 1, "visited": 0,
           "next_index": 0, "paused": False, "next_item": {
             "id": "suds", "text": "How much distress or anxiety do you feel right now?",
             "min": 0, "max": 100, "step": 5,
             "anchors": {"0": "Completely calm", "100": "Worst distress imaginable"}}},
}
eng.world.hide()
eng.base.win.setClearColor((0, 0, 0, 1))
out = {}
for key, form in forms.items():
    card.show_form(form)
    nodes = [p for p in card.root.findAllMatches("**/+TextNode")] + \
            [card.root.find("**/q-card")]
    names = ["q-card", "q-header", "q-item", "q-answer", "q-hint-0", "q-hint-1",
             "q-value-0", "q-value-6" if key == "ipq" else "q-value-50",
             "q-anchor-0", "q-anchor-6" if key == "ipq" else "q-anchor-100"]
    everything = card.root.findAllMatches("**/*")
    for name in names:
        for n in everything:
            n.hide()
        target = card.root.find("**/" + name)
        if target.isEmpty():
            out[key + ":" + name] = None
            continue
        p = target
        while p != card.root:
            p.show()
            p = p.getParent()
        eng.step(0.0)
        eye = eng.read_pixels()[:, : W // 2].max(axis=2)
        lit = eye > (8 if name == "q-card" else 128)
        rows, cols = np.nonzero(lit.any(axis=1))[0], np.nonzero(lit.any(axis=0))[0]
        out[key + ":" + name] = ([int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])]
                                 if len(rows) else None)
    for n in everything:
        n.show()
eng.close()
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def extents() -> dict[str, list[int] | None]:
    return measure_extents(MEASURE, timeout_s=180.0)


@pytest.mark.parametrize("form", ["ipq", "suds"])
def test_item_text_and_scale_are_at_least_one_degree(
        extents: dict[str, list[int] | None], form: str) -> None:
    top = "6" if form == "ipq" else "100"
    mid = "6" if form == "ipq" else "50"
    assert height_deg(extents[f"{form}:q-item"]) >= 1.4
    assert height_deg(extents[f"{form}:q-value-0"]) >= 1.0
    assert height_deg(extents[f"{form}:q-value-{mid}"]) >= 1.0
    assert height_deg(extents[f"{form}:q-anchor-0"]) >= 1.0
    assert height_deg(extents[f"{form}:q-anchor-{top}"]) >= 1.0
    for line in ("q-header", "q-hint-0", "q-hint-1", "q-answer"):
        assert height_deg(extents[f"{form}:{line}"]) >= 1.0, line
    card = extents[f"{form}:q-card"]
    assert card is not None
    for key, box in extents.items():
        if key.startswith(form + ":") and key != f"{form}:q-card":
            assert box is not None, key
            assert card[2] <= box[2] and box[3] <= card[3], (key, box, card)
            assert card[0] <= box[0] and box[1] <= card[1], (key, box, card)
