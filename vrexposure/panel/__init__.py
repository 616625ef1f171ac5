"""The therapist control panel (PySide6 + pyqtgraph).

* :mod:`.model` — :class:`PanelModel`, pure: what the panel knows (no Qt);
* :mod:`.bridge` — :class:`Bridge`, the ZeroMQ threads (receive, commands, STOP,
  heartbeat);
* :mod:`.window` — :class:`PanelWindow`, the Qt window (composition, actions, keys,
  banners), and :func:`run_panel`;
* one module per area of the window, each drawn from the same model:
  :mod:`.header` (phase, clocks, links, STOP), :mod:`.hierarchy_area`,
  :mod:`.exposure_area` (intensity, phase buttons), :mod:`.heart_rate`,
  :mod:`.patient_view`, :mod:`.ratings` (SUDS, expectancy), :mod:`.log_area`,
  :mod:`.notes`; :mod:`.ask` (inline questions: never a modal dialog) and
  :mod:`.look` (colours, helpers);
* the patient record: :mod:`.history` (the course, at session start), and
  :mod:`.editor_window` (the :mod:`.hierarchy_editor` in its own non-modal window, Ctrl+H).

Only :mod:`.model` is imported here, so the model works without Qt installed.
"""

from .model import Link, PanelModel, Ring, rmssd_ms

__all__ = ["Link", "PanelModel", "Ring", "rmssd_ms"]
