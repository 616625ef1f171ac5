"""The patient's view area: the renderer's preview, the head compass, a larger view.

The preview is what the renderer's left eye shows, with the panel's knowledge drawn
over it (preview lost, looking away). The larger view is a separate, non-modal
window with the same picture (STOP's F12 works there too: it is an application
shortcut).
"""

from __future__ import annotations

import html
import time

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QBrush, QColor, QPainter, QPaintEvent, QPen, QPixmap, QPolygonF
from PySide6.QtWidgets import (
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from .look import GREEN, GREY, LINE, RED, colored, named, set_text
from .model import Link, PanelModel, format_duration


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
        # The frame scaled to the widget, made once per frame and size: a smooth scale of
        # the whole picture on every repaint (overlay, caption) cost more than the rest.
        self._scaled: tuple[int, QSize, QPixmap] | None = None
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

    def _scaled_frame(self, pixmap: QPixmap) -> QPixmap:
        key = (pixmap.cacheKey(), self.size())
        if self._scaled is None or self._scaled[:2] != key:
            scaled = pixmap.scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio,
                                   Qt.TransformationMode.SmoothTransformation)
            self._scaled = (*key, scaled)
        return self._scaled[2]

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        rect = QRectF(self.rect())
        painter.fillRect(rect, QColor("#263238"))
        if self.pixmap is not None and not self.pixmap.isNull():
            scaled = self._scaled_frame(self.pixmap)
            painter.drawPixmap(QPointF((self.width() - scaled.width()) / 2,
                                       (self.height() - scaled.height()) / 2), scaled)
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


class PatientViewArea(QGroupBox):
    """The "Patient's view" group: preview, compass, where the head points."""

    def __init__(self, model: PanelModel) -> None:
        super().__init__("Patient's view")
        self.model = model
        self._preview_shown = -1
        view_box = QVBoxLayout(self)
        self.mirror = MirrorView()
        self.mirror.setMinimumHeight(212)
        self.mirror.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        view_box.addWidget(self.mirror)
        self.large_view: LargePatientView | None = None
        self.large_button = QPushButton("Larger view ⤢")
        self.large_button.setToolTip("The patient's view in its own window, as large as you "
                                     "like (STOP's F12 works there too)")
        self.large_button.clicked.connect(self.show_large_view)
        view_box.addWidget(self.large_button)
        gaze = QHBoxLayout()
        self.compass = HeadCompass()
        gaze.addWidget(self.compass)
        gaze_text = QVBoxLayout()
        self.gaze_now = QLabel("Head: no pose yet")
        self.gaze_now.setStyleSheet("font-size: 11pt; font-weight: 600;")
        self.gaze_now.setWordWrap(True)
        self.gaze_now.setMinimumWidth(150)
        self.gaze_share = QLabel("Looking away this step: –")
        self.gaze_share.setStyleSheet("font-size: 11pt;")
        self.gaze_share.setWordWrap(True)
        self.gaze_share.setMinimumWidth(150)
        self.gaze_share.setToolTip("Share of this step's exposure time with the head turned "
                                   "away from the stimulus (from the head pose)")
        self.render_label = named(QLabel(""), "muted")
        self.render_label.setWordWrap(True)
        self.render_label.setMinimumWidth(150)
        gaze_text.addWidget(self.gaze_now)
        gaze_text.addWidget(self.gaze_share)
        gaze_text.addWidget(self.render_label)
        gaze_text.addStretch(1)
        gaze.addLayout(gaze_text, 1)
        view_box.addLayout(gaze)

    def reset(self) -> None:
        """A new session: no picture yet."""
        self._preview_shown = -1
        self.mirror.set_frame(None, "", "No preview from the renderer yet", False)

    def show_large_view(self) -> None:
        if self.large_view is None:
            self.large_view = LargePatientView()
            self.large_view.setStyleSheet(self.window().styleSheet())
        mirror = self.mirror
        self.large_view.mirror.set_frame(mirror.pixmap, mirror.caption, mirror.overlay,
                                         mirror.looking_away)
        self.large_view.show()
        self.large_view.raise_()

    def update_pose(self, now: float) -> None:
        """The compass, at the refresh rate (whole degrees, so noise does not repaint it)."""
        source = self.model.pose_source(now)
        pose = self.model.pose.get(source) if source else None
        if pose is None:
            self.compass.set_pose(None, None, None)
        else:
            self.compass.set_pose(None if pose.yaw_deg is None else round(pose.yaw_deg),
                                  None if pose.look_angle_deg is None
                                  else round(pose.look_angle_deg), pose.looking_away)

    def update_pose_text(self) -> None:
        """Where the head points and the look-away share, in words (4 Hz)."""
        now = time.monotonic()
        source = self.model.pose_source(now)
        pose = self.model.pose.get(source) if source else None
        if pose is not None:
            lost = now - pose.received_s > self.model.lost_after_s
            if lost:
                text = colored(f"Head pose lost ({now - pose.received_s:.0f} s)", RED)
            elif (self.model.state or {}).get("phase") != "exposure":
                # no stimulus (idle, baseline, calm scene): nothing to look at or away from
                text = colored("No stimulus shown (calm scene)", GREY)
            elif pose.looking_away:
                text = colored("Looking AWAY from the stimulus", RED)
            else:
                text = colored("Looking at the stimulus", GREEN)
            angle = (f" ({pose.look_angle_deg:.0f}° off)"
                     if pose.look_angle_deg is not None and not lost else "")
            self.gaze_now.setTextFormat(Qt.TextFormat.RichText)
            set_text(self.gaze_now, text + html.escape(angle))
        current = self.model.current_look_away()
        phase = (self.model.state or {}).get("phase")
        if current is not None:
            index, share = current
            if share.share is None:
                text = f"Looking away in step {index + 1}: –" + (
                    "" if phase == "exposure" else " (counted during exposure only)")
            else:
                text = (f"Looking away in step {index + 1}: <b>{100 * share.share:.0f} %</b> "
                        f"({format_duration(share.away_s)} of "
                        f"{format_duration(share.total_s)})")
            self.gaze_share.setTextFormat(Qt.TextFormat.RichText)
            set_text(self.gaze_share, text)

    def update_preview(self, now: float, overlay_only: bool = False) -> None:
        model = self.model
        frame = model.preview
        renderer = model.renderer_link(now)
        pose_source = model.pose_source(now)
        pose = model.pose.get(pose_source) if pose_source else None
        away = bool(pose and pose.looking_away and (model.state or {}).get("phase") == "exposure"
                    and now - pose.received_s <= model.lost_after_s)
        overlay = ""
        if frame is None:
            overlay = "No preview from the renderer yet"
        elif now - frame.received_s > model.lost_after_s:
            overlay = (f"Renderer preview lost\n(last frame "
                       f"{now - frame.received_s:.0f} s ago)")
        if frame is not None and frame.source in model.render_stats:
            stats = model.render_stats[frame.source]
            parts = [f"{float(stats['fps']):.0f} fps" if "fps" in stats else "",
                     f"p99 {float(stats['frame_ms_p99']):.1f} ms"
                     if "frame_ms_p99" in stats else "",
                     f"scene {stats.get('scene')}" if stats.get("scene") else "",
                     "FAILSAFE (calm)" if stats.get("failsafe") else ""]
            set_text(self.render_label, "Renderer: " + ", ".join(p for p in parts if p))
        elif renderer == Link.NOT_SEEN:
            set_text(self.render_label, "Renderer: not seen yet")
        pixmap = self.mirror.pixmap
        if frame is not None and model.preview_version != self._preview_shown \
                and not overlay_only:
            self._preview_shown = model.preview_version
            loaded = QPixmap()
            if loaded.loadFromData(frame.jpeg, "JPG"):
                pixmap = loaded
        caption = ""
        if frame is not None:
            caption = (f"{frame.source} · frame {frame.frame if frame.frame is not None else '?'}"
                       f" · {format_duration(frame.t_s)}")
        if (pixmap is not self.mirror.pixmap or caption != self.mirror.caption
                or overlay != self.mirror.overlay or away != self.mirror.looking_away):
            self.mirror.set_frame(pixmap, caption, overlay, away)
            if self.large_view is not None and self.large_view.isVisible():
                self.large_view.mirror.set_frame(pixmap, caption, overlay, away)


__all__ = ["HeadCompass", "LargePatientView", "MirrorView", "PatientViewArea"]
