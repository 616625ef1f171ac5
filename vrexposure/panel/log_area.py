"""The panel's log: in session-time order, filterable, clinical events set apart.

Entries arrive in the order the panel hears of them (a command's answer can come
before the event it caused); the list keeps them in session-time order. Clinical
events (SUDS, alerts, STOP, baseline, steps, predictions, markers) are bold with a
◆; connections and the host's acknowledgements are plain. The full text of an entry
is in its tooltip (nothing is cut without a way to read it).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QVBoxLayout,
    QWidget,
)

from .model import LogEntry, format_duration

LEVEL_COLORS = {"ok": "#1b7f3b", "error": "#c62828", "warn": "#b76e00", "alert": "#c62828",
                "info": "#455060", "event": "#1d2330"}
#: The filter menu: (text, which entries it shows).
KINDS = [("Everything", "all"), ("Clinical events", "clinical"),
         ("Commands and answers", "other")]
MAX_ENTRIES = 1000


def sort_key(entry: LogEntry) -> tuple[float, int]:
    """Session time first (entries without one: when heard), then arrival order."""
    t = entry.session_t_s
    return (-1.0 if t is None else t, entry.number)


def entry_text(entry: LogEntry) -> str:
    mark = "◆" if entry.clinical else " "
    return f"{format_duration(entry.session_t_s):>8} {mark} {entry.text}"


def shown(entry: LogEntry, kind: str, needle: str) -> bool:
    """Whether the filter (kind, typed text) lets ``entry`` through."""
    if kind == "clinical" and not entry.clinical:
        return False
    if kind == "other" and entry.clinical:
        return False
    return needle.casefold() in entry.text.casefold()


class LogArea(QWidget):
    """The log list with its filter row."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(2)
        row = QHBoxLayout()
        title = QLabel("Log")
        title.setStyleSheet("font-weight: 600;")
        self.kind = QComboBox()
        for text, key in KINDS:
            self.kind.addItem(text, key)
        self.kind.setToolTip("◆ clinical events (SUDS, alerts, STOP, baseline, steps, "
                             "predictions, markers); the rest: commands and connections")
        self.filter = QLineEdit()
        self.filter.setPlaceholderText("filter the log …")
        self.filter.setClearButtonEnabled(True)
        row.addWidget(title)
        row.addWidget(self.kind)
        row.addWidget(self.filter, 1)
        column.addLayout(row)
        self.list = QListWidget()
        self.list.setMinimumHeight(70)
        self.list.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.list.setWordWrap(True)  # long entries wrap: nothing cut off
        self.list.setToolTip("Every command with the host's answer, and the session's "
                             "events, in session-time order (drag the bar above to make "
                             "it taller)")
        column.addWidget(self.list, 1)
        self._keys: list[tuple[float, int]] = []
        self._entries: list[LogEntry] = []
        self.kind.currentIndexChanged.connect(self._apply_filter)
        self.filter.textChanged.connect(self._apply_filter)

    def add(self, entries: Iterable[LogEntry]) -> None:
        """Insert entries at their place in session time; follow the end when it was shown."""
        scrollbar = self.list.verticalScrollBar()
        at_end = scrollbar.value() >= scrollbar.maximum() - 2
        added = False
        kind, needle = str(self.kind.currentData()), self.filter.text()
        for entry in entries:
            key = sort_key(entry)
            index = bisect.bisect(self._keys, key)
            self._keys.insert(index, key)
            self._entries.insert(index, entry)
            self.list.insertItem(index, self._item(entry))
            self.list.item(index).setHidden(not shown(entry, kind, needle))
            added = True
        while len(self._entries) > MAX_ENTRIES:
            self._keys.pop(0)
            self._entries.pop(0)
            self.list.takeItem(0)
        if added and at_end:
            self.list.scrollToBottom()

    def _item(self, entry: LogEntry) -> QListWidgetItem:
        item = QListWidgetItem(entry_text(entry))
        item.setToolTip(entry.text)
        item.setForeground(QBrush(QColor(LEVEL_COLORS.get(entry.level, "#1d2330"))))
        if entry.clinical or entry.level in ("error", "alert"):
            font = item.font()
            font.setBold(True)
            item.setFont(font)
        return item

    def _apply_filter(self) -> None:
        kind, needle = str(self.kind.currentData()), self.filter.text()
        for index, entry in enumerate(self._entries):
            self.list.item(index).setHidden(not shown(entry, kind, needle))

    def count(self) -> int:
        return self.list.count()

    def texts(self, visible_only: bool = True) -> list[str]:
        return [self.list.item(i).text() for i in range(self.list.count())
                if not (visible_only and self.list.item(i).isHidden())]


__all__ = ["LogArea", "entry_text", "shown", "sort_key"]
