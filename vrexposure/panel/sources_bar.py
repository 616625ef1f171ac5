"""Sources that want into the recording, and data that went missing on the way.

A source that has not proven it belongs to this session (another session's sensor, a sensor
left running from the previous patient) is never recorded: the host lists it in the state's
``session.pending_sources`` and the therapist admits or rejects it here. Sequence gaps the
host recorded (``session.data_gaps``) are shown so nobody takes a curve with holes as whole.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from .look import named as _named

Send = Callable[[str, Mapping[str, Any]], object]


class SourcesBar(QWidget):
    """One row per source waiting for admission (Admit / Reject), and a data-gap line."""

    def __init__(self, send: Send, read_only: bool = False,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("sources-bar")
        self._send = send
        self._read_only = read_only
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self.gaps = _named(QLabel(""), "data-gaps")
        self.gaps.setWordWrap(True)
        self._layout.addWidget(self.gaps)
        self.rows: dict[str, QWidget] = {}
        self.buttons: dict[tuple[str, str], QPushButton] = {}
        self.setVisible(False)

    def update_state(self, state: Mapping[str, Any]) -> None:
        session = state.get("session") or {}
        pending = dict(session.get("pending_sources") or {})
        for source in [s for s in self.rows if s not in pending]:
            row = self.rows.pop(source)
            self.buttons.pop((source, "admit"), None)
            self.buttons.pop((source, "reject"), None)
            self._layout.removeWidget(row)
            row.deleteLater()
        for source, count in sorted(pending.items()):
            if source not in self.rows:
                self.rows[source] = self._row(source)
                self._layout.insertWidget(len(self.rows) - 1, self.rows[source])
            label = self.rows[source].findChild(QLabel)
            if label is not None:
                label.setText(f"<b>Unknown source '{source}'</b> is sending ({count} messages, "
                              "not recorded). Is it this patient's sensor?")
        gaps = int(session.get("data_gaps") or 0)
        missing = int(session.get("data_gap_messages") or 0)
        self.gaps.setText(f"Data gaps: {gaps} ({missing} messages missing; marked in the "
                          "recording)" if gaps else "")
        self.gaps.setVisible(bool(gaps))
        self.setVisible(bool(pending) or bool(gaps))

    def _row(self, source: str) -> QWidget:
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        label = QLabel()
        label.setWordWrap(True)
        layout.addWidget(label, 1)
        for action, text in (("admit", "Admit"), ("reject", "Reject")):
            button = QPushButton(text)
            button.setEnabled(not self._read_only)
            button.clicked.connect(lambda _=False, a=action: self._send(f"{a}_source",
                                                                        {"source": source}))
            layout.addWidget(button)
            self.buttons[(source, action)] = button
        return row


__all__ = ["SourcesBar"]
