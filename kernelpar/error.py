"""``kernelpar.error``: the module name ipyparallel code imports (``ipyparallel.error``).

Everything lives in :mod:`kernelpar.errors`; this module re-exports it so that
``from kernelpar.error import RemoteError`` and ``kernelpar.error.CompositeError`` work.
"""

from .errors import (  # noqa: F401
    AlreadyDisplayedError,
    CompositeError,
    DependencyTimeout,
    EngineError,
    ImpossibleDependency,
    InvalidDependency,
    IPythonError,
    KernelError,
    MultipleInstanceError,
    NoEnginesRegistered,
    ProtocolVersionError,
    RemoteError,
    TaskAborted,
    TaskRejectError,
    TaskTimeout,
    TimeoutError,
    UnmetDependency,
    collect_exceptions,
    unwrap_exception,
    wrap_exception,
)
