"""Run in its own process on an X server: open the panel as ``vrexposure panel`` does,
wait, then write what a person would check (overlaps, STOP on screen) and a screenshot.

``python tests/panel_layout_probe.py CONFIG OUT.json OUT.png [SECONDS]``
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from PySide6.QtCore import QRect, QTimer
from PySide6.QtWidgets import QAbstractScrollArea, QApplication, QScrollArea, QWidget

from vrexposure.config import Endpoints, load_config
from vrexposure.panel.window import ColumnScroll, PanelWindow


def _name(widget: QWidget) -> str:
    text = widget.text() if hasattr(widget, "text") and callable(widget.text) else ""
    return f"{type(widget).__name__}#{widget.objectName()}:{str(text)[:30]!r}"


def layout_faults(window: QWidget) -> list[str]:
    """Visible sibling widgets that overlap, and visible children that stick out of their
    parent (cut-off buttons); scrolled content inside a scroll area's viewport is fine."""
    faults: list[str] = []
    for parent in [window, *window.findChildren(QWidget)]:
        if not parent.isVisible():
            continue
        children = [c for c in parent.children() if isinstance(c, QWidget)
                    and c.isVisible() and not c.isWindow() and not c.geometry().isEmpty()]
        scrolled = isinstance(parent.parentWidget(), QAbstractScrollArea) and \
            parent is parent.parentWidget().viewport()  # type: ignore[union-attr]
        inside = QRect(0, 0, parent.width(), parent.height())
        for i, child in enumerate(children):
            if not scrolled and not inside.contains(child.geometry()):
                faults.append(f"{_name(child)} {child.geometry().getRect()} sticks out of "
                              f"{_name(parent)} {inside.getRect()}")
            for other in children[i + 1:]:
                if child.geometry().intersects(other.geometry()):
                    faults.append(f"{_name(child)} {child.geometry().getRect()} overlaps "
                                  f"{_name(other)} {other.geometry().getRect()}")
    areas = [window] if isinstance(window, QScrollArea) else []
    for area in [*areas, *window.findChildren(QScrollArea)]:
        content = area.widget()
        if (area.isVisible() and content is not None
                and content.width() > area.viewport().width()):
            faults.append(f"{_name(content)} is {content.width()} px wide in a scroll area "
                          f"{area.viewport().width()} px wide: cut off at the right")
    return faults


def main() -> None:
    config_file, out_json, out_png = sys.argv[1:4]
    wait_s = float(sys.argv[4]) if len(sys.argv) > 4 else 6.0
    app = QApplication(["panel-probe"])
    endpoints = Endpoints.from_config(load_config(Path(config_file)))
    window = PanelWindow(endpoints, "probe-panel")
    window.fit_to_screen()
    window.show()

    def check() -> None:
        screen = window.screen()
        area = screen.availableGeometry()
        stop = window.stop_button
        top_left = stop.mapToGlobal(stop.rect().topLeft())
        stop_rect = QRect(top_left, stop.size())
        screen.grabWindow(0).save(out_png)
        Path(out_json).write_text(json.dumps({
            "screen": list(area.getRect()),
            "window": list(window.frameGeometry().getRect()),
            "stop": list(stop_rect.getRect()),
            "stop_visible": stop.isVisible(),
            "stop_on_screen": area.contains(stop_rect),
            "faults": layout_faults(window),
            # what sets the window's width when it is wider than the screen
            "min_widths": {f"{i} {_name(w)}": w.minimumSizeHint().width() for i, w in enumerate((
                window.stop_button.parentWidget(), window.body,
                *window.findChildren(ColumnScroll))) if w.isVisible()},
            "state_seen": window.model.state is not None,
        }, indent=1))
        window.shutdown()
        app.quit()

    QTimer.singleShot(int(wait_s * 1000), check)
    app.exec()


if __name__ == "__main__":
    main()
