"""omio: Open Microscopy Image I/O."""

__version__ = "0.1.0"
