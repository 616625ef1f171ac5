"""Building a personalised hierarchy: the draft's operations and live validation, and the
editor widget driven like a therapist would (offscreen Qt, grabbed), saving versions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage
from pytestqt.qtbot import QtBot

from vrexposure.cli import main
from vrexposure.clinic import open_store
from vrexposure.clinic.draft import DraftError, HierarchyDraft
from vrexposure.panel.hierarchy_editor import PARAMS_COLUMN, SUDS_COLUMN, HierarchyEditor

from .conftest import HIERARCHIES

TEMPLATE = (HIERARCHIES / "arachnophobia.yaml").read_text()


def ids(draft: HierarchyDraft) -> list[str]:
    return [str(s["id"]) for s in draft.steps]


def test_draft_operations_and_live_validation() -> None:
    draft = HierarchyDraft(TEMPLATE)
    original = ids(draft)
    assert draft.problems() == [] and draft.savable()
    draft.set_expected_suds(0, 60)  # the patient rates the first situation higher
    messages = [p.message for p in draft.problems()]
    assert any("first step expects 60 SUDS" in m for m in messages)
    assert any("expected SUDS falls from 60" in m for m in messages)
    assert draft.savable()  # warnings do not block a save
    draft.order_by_ratings()
    suds = [s["expected_suds"] for s in draft.steps]
    assert suds == sorted(suds) and ids(draft)[0] == original[1]
    assert not any("falls" in p.message for p in draft.problems())
    draft.move(0, 2)
    assert ids(draft)[2] == original[1]
    new = draft.duplicate(0)
    assert ids(draft)[new] == f"{ids(draft)[0]}-b" and len(set(ids(draft))) == len(ids(draft))
    draft.remove(new)
    assert len(draft.steps) == len(original)
    with pytest.raises(DraftError, match="outside 0-100"):
        draft.set_expected_suds(0, 120)
    with pytest.raises(DraftError, match="no step 99"):
        draft.remove(98)
    draft.set_param(0, "distanse_m", 2.0)  # a misspelt scene parameter
    problems = draft.problems()
    assert any(p.severity == "error" and "distanse_m" in p.message for p in problems)
    assert not draft.savable()
    for text in ("steps: [unclosed", "just text", "steps: 3"):
        with pytest.raises(DraftError, match="not"):
            HierarchyDraft(text)


def test_editor_builds_and_saves_versions(qtbot: QtBot, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'clinic.sqlite3'}"
    store = open_store(url)
    store.add_patient("P017")
    editor = HierarchyEditor(store, "P017", HierarchyDraft(TEMPLATE))
    qtbot.addWidget(editor)
    editor.resize(900, 600)
    editor.show()
    qtbot.waitExposed(editor)
    first_id = editor.table.item(0, 1).text()
    assert editor.problems.item(0).text().startswith("No problems")

    # The patient rates the first step 60: typed into the cell, validated at once.
    editor.table.item(0, SUDS_COLUMN).setText("60")
    texts = [editor.problems.item(i).text() for i in range(editor.problems.count())]
    assert any("first step expects 60 SUDS" in t for t in texts)
    qtbot.mouseClick(editor.buttons["order"], Qt.MouseButton.LeftButton)
    assert editor.table.item(0, 1).text() != first_id
    column = [int(editor.table.item(r, SUDS_COLUMN).text())
              for r in range(editor.table.rowCount())]
    assert column == sorted(column)

    editor.table.selectRow(0)
    qtbot.mouseClick(editor.buttons["remove"], Qt.MouseButton.LeftButton)
    assert editor.table.rowCount() == len(HierarchyDraft(TEMPLATE).steps) - 1
    with qtbot.waitSignal(editor.saved, timeout=5000) as saved:
        qtbot.mouseClick(editor.buttons["save"], Qt.MouseButton.LeftButton)
    assert saved.args == [1]
    assert "Saved as version 1" in editor.status.text()

    image = editor.grab().toImage().convertToFormat(QImage.Format.Format_RGB32)
    assert image.save(str(tmp_path / "editor.png"))
    pixels = np.frombuffer(image.constBits(), np.uint8).reshape(
        image.height(), image.bytesPerLine() // 4, 4)[:, :image.width(), :3]
    assert pixels.std() > 10

    # Scene parameters typed into the cell: a misspelt one is shown and blocks the save.
    params = editor.table.item(0, PARAMS_COLUMN).text()
    assert params.startswith("{") and "count: 1" in params
    editor.table.item(0, PARAMS_COLUMN).setText(params.replace("count: 1", "cuont: 1"))
    texts = [editor.problems.item(i).text() for i in range(editor.problems.count())]
    assert any(t.startswith("error:") and "cuont" in t for t in texts), texts
    assert not editor.buttons["save"].isEnabled()
    editor.table.item(0, PARAMS_COLUMN).setText(params.replace("count: 1", "count: 2"))
    assert editor.buttons["save"].isEnabled()
    assert editor.draft.steps[0]["params"]["count"] == 2
    store.close()

    # The saved version exports as YAML that `vrexposure validate` accepts.
    config = tmp_path / "config.yaml"
    config.write_text(f"database:\n  url: {url}\n")
    out = tmp_path / "p017.yaml"
    runner = CliRunner()
    result = runner.invoke(main, ["hierarchy", "export", "--patient", "P017", "--out",
                                  str(out), "--config", str(config)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["validate", str(out)])
    assert result.exit_code == 0 and "0 error(s)" in result.output, result.output
    assert len(HierarchyDraft(out.read_text()).steps) == len(HierarchyDraft(TEMPLATE).steps) - 1
    # The export is the saved version 1 (count 1), not the unsaved edit.
    assert HierarchyDraft(out.read_text()).steps[0]["params"]["count"] == 1
