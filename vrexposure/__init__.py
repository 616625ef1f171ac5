"""vrexposure: a session controller for virtual-reality exposure therapy."""

__version__ = "0.1.0"

__all__ = ["__version__"]
