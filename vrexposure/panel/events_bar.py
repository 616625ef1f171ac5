"""The stimulus events bar: one button (and keyboard shortcut) per event of the scene.

Self-contained: give it the scene's event specs (``SceneSpec.events`` or the state's
``scene_events`` list) and a ``send(command, args)`` callable; a press sends
``trigger_event {name}``. The panel window places it and calls :meth:`EventsBar.set_events`
when the hierarchy's scene changes and :meth:`EventsBar.set_active` with the phase.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import QGridLayout, QLabel, QPushButton, QVBoxLayout, QWidget

#: Shortcuts are Shift+letter: plain letters belong to the panel's own keys and text fields.
SHORTCUT_MODIFIER = "Shift+"


@dataclass(frozen=True)
class EventButtonSpec:
    """What a button needs from an event spec (an ``EventSpec`` or a state dict)."""

    name: str
    label: str
    key: str

    @staticmethod
    def of(spec: Any) -> EventButtonSpec:
        if isinstance(spec, Mapping):
            return EventButtonSpec(str(spec["name"]), str(spec.get("label", spec["name"])),
                                   str(spec.get("key", "")))
        return EventButtonSpec(str(spec.name), str(spec.label), str(spec.key))


def shortcut_text(key: str) -> str:
    """The shortcut of an event key (``"d"`` → ``"Shift+D"``); empty without a key."""
    key = key.strip()
    return f"{SHORTCUT_MODIFIER}{key.upper()}" if len(key) == 1 and key.isalnum() else ""


#: Event buttons per row of the bar.
BUTTONS_PER_ROW = 1


class EventsBar(QWidget):
    """A row of buttons that trigger the current scene's stimulus events."""

    def __init__(self, send: Callable[[str, Mapping[str, Any]], Any],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._send = send
        self._specs: tuple[EventButtonSpec, ...] = ()
        self.buttons: dict[str, QPushButton] = {}
        self.shortcuts: dict[str, QShortcut] = {}
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.title = QLabel("Stimulus events:")
        layout.addWidget(self.title)
        # Buttons in rows of BUTTONS_PER_ROW: a scene with many events must not make the
        # column (and the window) wider than a laptop screen.
        self._grid = QGridLayout()
        layout.addLayout(self._grid)
        self.empty = QLabel("none in this scene")
        self.empty.setEnabled(False)
        layout.addWidget(self.empty)
        self._active = True

    def set_events(self, specs: Sequence[Any]) -> None:
        """Show one button per event (rebuilt only when the events change)."""
        wanted = tuple(EventButtonSpec.of(s) for s in specs)
        if wanted == self._specs:
            return
        for button in self.buttons.values():
            self._grid.removeWidget(button)
            button.deleteLater()
        for shortcut in self.shortcuts.values():
            shortcut.setEnabled(False)
            shortcut.deleteLater()
        self.buttons.clear()
        self.shortcuts.clear()
        self._specs = wanted
        used: set[str] = set()
        for index, spec in enumerate(wanted):
            keys = shortcut_text(spec.key)
            if keys in used:
                keys = ""  # two events with one key: the second gets the button only
            text = f"{spec.label}  [{keys}]" if keys else spec.label
            button = QPushButton(text)
            button.setToolTip(f"trigger_event {spec.name}")
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            button.clicked.connect(lambda _=False, name=spec.name: self.trigger(name))
            self._grid.addWidget(button, index // BUTTONS_PER_ROW, index % BUTTONS_PER_ROW)
            self.buttons[spec.name] = button
            if keys:
                used.add(keys)
                shortcut = QShortcut(QKeySequence(keys), self)
                shortcut.setContext(Qt.ShortcutContext.WindowShortcut)
                shortcut.activated.connect(lambda name=spec.name: self.trigger(name))
                self.shortcuts[spec.name] = shortcut
        self.empty.setVisible(not wanted)
        self.set_active(self._active)

    def set_active(self, active: bool) -> None:
        """Enable the buttons and keys (exposure running) or grey them out."""
        self._active = active
        for button in self.buttons.values():
            button.setEnabled(active)
        for shortcut in self.shortcuts.values():
            shortcut.setEnabled(active)

    def trigger(self, name: str) -> Any:
        """Send ``trigger_event {name}`` (ignored while inactive)."""
        if not self._active:
            return None
        return self._send("trigger_event", {"name": name})
