"""The patient's view area: the renderer's preview, the head compass, a larger view.

The preview is what the renderer's left eye shows, with the panel's knowledge drawn
over it (preview lost, looking away). The larger view is a separate, non-modal
window with the same picture (STOP's F12 works there too: it is an application
shortcut).
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QBrush, QColor, QPainter, QPaintEvent, QPen, QPixmap, QPolygonF
from PySide6.QtWidgets import QSizePolicy, QVBoxLayout, QWidget

GREEN, RED, GREY, LINE = "#1b7f3b", "#c62828", "#7b828c", "#d5dae0"


class HeadCompass(QWidget):
    """Top-down view of the head: where it points relative to the stimulus (straight up)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.yaw_deg: float | None = None
        self.look_angle_deg: float | None = None
        self.looking_away: bool | None = None
        self.setFixedSize(QSize(96, 96))
        self.setToolTip("Head direction seen from above; the orange mark is the stimulus")

    def set_pose(self, yaw_deg: float | None, look_angle_deg: float | None,
                 looking_away: bool | None) -> None:
        if (yaw_deg, look_angle_deg, looking_away) != (self.yaw_deg, self.look_angle_deg,
                                                       self.looking_away):
            self.yaw_deg, self.look_angle_deg, self.looking_away = (yaw_deg, look_angle_deg,
                                                                    looking_away)
            self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        side = min(self.width(), self.height()) - 8
        cx, cy, r = self.width() / 2, self.height() / 2, side / 2
        painter.setPen(QPen(QColor(LINE), 2))
        painter.setBrush(QBrush(QColor("white")))
        painter.drawEllipse(QPointF(cx, cy), r, r)
        # the stimulus, straight ahead
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QBrush(QColor("#ef6c00")))
        painter.drawPolygon(QPolygonF([QPointF(cx, cy - r + 1), QPointF(cx - 7, cy - r - 8 + 12),
                                       QPointF(cx + 7, cy - r - 8 + 12)]))
        if self.yaw_deg is None:
            painter.setPen(QColor(GREY))
            painter.drawText(QRectF(0, 0, self.width(), self.height()),
                             Qt.AlignmentFlag.AlignCenter, "no pose")
            painter.end()
            return
        color = QColor(RED if self.looking_away else GREEN)
        angle = np.radians(-self.yaw_deg)  # yaw is counter-clockwise seen from above
        tip = QPointF(cx + 0.8 * r * np.sin(angle), cy - 0.8 * r * np.cos(angle))
        painter.setPen(QPen(color, 4, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap))
        painter.drawLine(QPointF(cx, cy), tip)
        painter.setBrush(QBrush(color))
        painter.setPen(Qt.PenStyle.NoPen)
        painter.drawEllipse(QPointF(cx, cy), 6, 6)
        painter.end()


class MirrorView(QWidget):
    """The renderer's preview of what the patient sees, with its state drawn over it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.pixmap: QPixmap | None = None
        self.caption = ""
        self.overlay = "No preview from the renderer yet"
        self.looking_away = False
        self.setMinimumSize(QSize(320, 180))
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        return max(180, int(width * 9 / 16))

    def sizeHint(self) -> QSize:
        return QSize(400, 225)

    def set_frame(self, pixmap: QPixmap | None, caption: str, overlay: str,
                  looking_away: bool) -> None:
        self.pixmap, self.caption, self.overlay = pixmap, caption, overlay
        self.looking_away = looking_away
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        rect = QRectF(self.rect())
        painter.fillRect(rect, QColor("#263238"))
        if self.pixmap is not None and not self.pixmap.isNull():
            size = self.pixmap.size().scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio)
            target = QRectF((self.width() - size.width()) / 2,
                            (self.height() - size.height()) / 2, size.width(), size.height())
            painter.drawPixmap(target, self.pixmap, QRectF(self.pixmap.rect()))
        font = painter.font()
        font.setPointSizeF(9.5)
        painter.setFont(font)
        if self.caption:
            painter.fillRect(QRectF(0, 0, self.width(), 22), QColor(0, 0, 0, 130))
            painter.setPen(QColor("white"))
            painter.drawText(QRectF(8, 0, self.width() - 16, 22),
                             Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
                             self.caption)
        if self.overlay:
            painter.fillRect(rect, QColor(0, 0, 0, 110 if self.pixmap is not None else 0))
            font.setPointSizeF(13)
            font.setBold(True)
            painter.setFont(font)
            painter.setPen(QColor("#ffcdd2" if self.pixmap is not None else "#cfd8dc"))
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                             self.overlay)
        if self.looking_away:
            painter.setPen(QPen(QColor("#ff9800"), 6))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRect(rect.adjusted(3, 3, -3, -3))
        painter.end()


class LargePatientView(QWidget):
    """The patient's view in its own window, as large as the therapist wants it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.setWindowTitle("vrexposure — patient's view")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.mirror = MirrorView()
        self.mirror.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        layout.addWidget(self.mirror)
        self.resize(960, 540)


__all__ = ["HeadCompass", "LargePatientView", "MirrorView"]
