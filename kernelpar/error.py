"""``kernelpar.error``: the module name ipyparallel code imports (``ipyparallel.error``).

Everything lives in :mod:`kernelpar.errors`; this module re-exports it so that
``from kernelpar.error import RemoteError`` and ``kernelpar.error.CompositeError`` work.
"""

from .errors import *  # noqa: F401,F403
from .errors import __all__  # noqa: F401
