"""``IPython.genutils`` as far as 0.10-era programs used it (the import hook maps the name here).

0.10's ``genutils`` was a grab bag; parallel scripts took four things from it: the ``time``
module (``from IPython.genutils import time``, in ``task_profiler.py``), the IPython
directory, the directory holding the FURL files, and ``flatten``.
"""

import time

from kernelpar.wire.connection import ipython_dir
from kernelpar.wire.furl import legacy_security_dir

__all__ = ["flatten", "get_ipython_dir", "get_security_dir", "time"]


def get_ipython_dir():
    """``$IPYTHONDIR``, else ``~/.ipython`` (absolute)."""
    return ipython_dir()


def get_security_dir():
    """``<IPYTHONDIR>/security``, where the FURL files are; created (mode 0700) if missing."""
    return legacy_security_dir()


def flatten(seq):
    """One level of nesting removed: ``flatten([[1, 2], [3]]) == [1, 2, 3]`` (as 0.10's)."""
    return [item for part in seq for item in part]
