"""``from kernelpar.datapub import publish_data`` (as ``ipyparallel.datapub``)."""

from .engine.datapub import publish_data

__all__ = ["publish_data"]
