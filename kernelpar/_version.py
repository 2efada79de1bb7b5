"""The kernelpar version (a leaf module: everything may import it)."""

__version__ = "0.1.0"
version_info = tuple(int(p) for p in __version__.split("."))
