"""The therapist control panel (PySide6 + pyqtgraph).

* :mod:`.model` — :class:`PanelModel`, pure: what the panel knows (no Qt);
* :mod:`.bridge` — :class:`Bridge`, the ZeroMQ threads (receive, commands, STOP,
  heartbeat);
* :mod:`.window` — :class:`PanelWindow`, the Qt window, and :func:`run_panel`.

Only :mod:`.model` is imported here, so the model works without Qt installed.
"""

from .model import Link, PanelModel, Ring, rmssd_ms

__all__ = ["Link", "PanelModel", "Ring", "rmssd_ms"]
