"""The panel's look: colours and small helpers shared by its areas."""

from __future__ import annotations

import html
from typing import TypeVar

from PySide6.QtWidgets import QLabel, QWidget

GREEN, RED, AMBER, GREY, BLUE = "#1b7f3b", "#c62828", "#b76e00", "#7b828c", "#1565c0"
INK, PAPER, LINE = "#1d2330", "#f4f6f8", "#d5dae0"

W = TypeVar("W", bound=QWidget)


def colored_tail(text: str, color: str) -> str:
    """Coloured rich text (``text`` is already HTML)."""
    return f"<span style='color:{color}'>{text}</span>"


def named(widget: W, name: str) -> W:
    widget.setObjectName(name)
    return widget


def colored(text: str, color: str) -> str:
    return f"<span style='color:{color}'>{html.escape(text)}</span>"


def set_text(label: QLabel, text: str) -> None:
    if label.text() != text:
        label.setText(text)


def set_style(widget: QWidget, style: str) -> None:
    if widget.styleSheet() != style:
        widget.setStyleSheet(style)


