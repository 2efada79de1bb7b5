"""Every exception a kernelpar user can see, in one place.

The hierarchy is ipyparallel's (``IPythonError > KernelError > ...``), so code written
against ``ipyparallel.error`` catches the same things.  ``RemoteError`` carries an
exception raised on an engine: its class name (``ename``), message (``evalue``), the
formatted remote ``traceback`` and ``engine_info`` (``engine_id``, ``engine_uuid``,
``method``).  ``CompositeError`` bundles several of them from one multi-engine call.
"""

import builtins
import sys
import traceback as _traceback

__all__ = [
    "AlreadyDisplayedError", "CompositeError", "DependencyTimeout", "EngineError", "ImpossibleDependency",
    "InvalidDependency", "IPythonError", "KernelError", "MultipleInstanceError", "NoEnginesRegistered",
    "ProtocolVersionError", "RemoteError", "TaskAborted", "TaskRejectError", "TaskTimeout", "TimeoutError",
    "UnmetDependency", "collect_exceptions", "unwrap_exception", "wrap_exception",
]

TimeoutError = builtins.TimeoutError


class IPythonError(Exception):
    """Base class of kernelpar's errors."""


class KernelError(IPythonError):
    pass


class EngineError(KernelError):
    """An engine died, or stopped answering heartbeats, while holding a task."""


class NoEnginesRegistered(KernelError):
    def __str__(self):
        if self.args:  # the legacy API's own words
            return str(self.args[0])
        return (
            "This operation requires engines. Try client.wait_for_engines(n) to wait for engines to register."
        )


class TaskAborted(KernelError):
    pass


class TaskTimeout(KernelError):
    pass


class TaskRejectError(KernelError):
    pass


class UnmetDependency(KernelError):
    pass


class ImpossibleDependency(UnmetDependency):
    pass


class DependencyTimeout(ImpossibleDependency):
    pass


class InvalidDependency(ImpossibleDependency):
    pass


class MultipleInstanceError(IPythonError):
    pass


class ProtocolVersionError(IPythonError, RuntimeError):
    """A peer's Python or kernelpar version cannot exchange pickled code with ours."""


def _engine_label(engine_info):
    # no engine: the scheduler or the client decided (a task that never reached one)
    if not engine_info or engine_info.get("engine_id") is None:
        return "[Engine Exception]"
    eid = engine_info.get("engine_id", "?")
    method = engine_info.get("method", "?")
    return f"[{eid}:{method}]"


class RemoteError(KernelError):
    """An exception raised on an engine."""

    engine_info = None
    tb = None

    def __init__(self, ename, evalue, traceback, engine_info=None):
        self.ename = ename
        self.evalue = str(evalue)
        self.traceback = traceback
        self.tb = traceback
        self.engine_info = engine_info or {}
        super().__init__(ename, self.evalue, traceback, self.engine_info)

    def __repr__(self):
        engine_id = self.engine_info.get("engine_id", " ")
        return f"<{type(self).__name__}[{engine_id}]:{self.ename}({self.evalue})>"

    def __str__(self):
        return f"{_engine_label(self.engine_info)} {self.ename}: {self.evalue}"

    def render_traceback(self):
        """The engine's label, the remote traceback as a list of lines (what IPython shows),
        then any notes."""
        lines = [_engine_label(self.engine_info), *(self.traceback or f"{self.ename}: {self.evalue}").splitlines()]
        return lines + notes(self)

    def _render_traceback_(self):
        return self.render_traceback()

    def print_traceback(self, file=None):
        print("\n".join(self.render_traceback()), file=file or sys.stdout)


class AlreadyDisplayedError(RemoteError):
    """Ends a call whose ``n`` remote tracebacks were already shown as they happened."""

    def __init__(self, n):
        # ipyparallel passes the CompositeError whose errors were shown
        self.original_error = n if isinstance(n, CompositeError) else None
        self.n = n = len(n.elist) if self.original_error is not None else n
        RemoteError.__init__(self, "AlreadyDisplayedError", f"{n} errors", f"{n} errors")

    def __str__(self):
        return f"{self.n} errors"

    def __repr__(self):
        return f"<{type(self).__name__}({self.n} errors)>"

    def render_traceback(self):
        return [str(self)]

    def __reduce__(self):
        return type(self), (self.n,)


class CompositeError(RemoteError):
    """Several remote exceptions from one call on many engines."""

    tb_limit = 4

    def __init__(self, message, elist):
        Exception.__init__(self, message, elist)
        self.msg = message
        for note in dict.fromkeys(n for e in elist if isinstance(e, BaseException) for n in notes(e)):
            add_note(self, note)
        self.elist = _flatten(elist)
        ename, evalue, tb, info = self.elist[0] if self.elist else ("", "", "", {})
        self.ename, self.evalue, self.traceback, self.tb, self.engine_info = ename, evalue, tb, tb, info

    def __str__(self):
        # ipyparallel's layout, which scripts match on: no space after the label
        lines = [str(self.msg)]
        lines += [f"{_engine_label(i)}{e}: {v}" for e, v, _, i in self.elist[: self.tb_limit]]
        extra = len(self.elist) - self.tb_limit
        if extra > 0:
            lines.append(f".... {extra} more exceptions ...")
        return "\n".join(lines)

    def __repr__(self):
        return f"CompositeError({len(self.elist)})"

    def render_traceback(self, excid=None):
        lines = []
        if excid is None:
            for ename, evalue, tb, info in self.elist[: self.tb_limit]:
                lines.append(_engine_label(info) + ":")
                lines.extend((tb or f"{ename}: {evalue}").splitlines())
                lines.append("")
            extra = len(self.elist) - self.tb_limit
            if extra > 0:
                lines.append(f"... {extra} more exceptions ...")
        else:
            ename, evalue, tb, info = self._get(excid)
            lines.append(_engine_label(info) + ":")
            lines.extend((tb or f"{ename}: {evalue}").splitlines())
        return lines + notes(self)

    def print_traceback(self, excid=None, file=None):
        print("\n".join(self.render_traceback(excid)), file=file or sys.stdout)

    def _get(self, excid):
        try:
            return self.elist[excid]
        except IndexError:
            raise IndexError(f"an exception with index {excid} does not exist") from None

    def raise_exception(self, excid=0):
        ename, evalue, tb, info = self._get(excid)
        raise RemoteError(ename, evalue, tb, info)


def add_note(exc, note):
    """Attach ``note`` to ``exc`` as PEP 678 does (Python 3.11 prints notes after the message)."""
    exc.__notes__ = [*notes(exc), note]


def notes(exc):
    """The notes attached to ``exc``, as a list of strings."""
    return list(getattr(exc, "__notes__", None) or ())


def composite_entry(exc):
    """``exc`` as an entry of a CompositeError: itself if remote, else a 4-tuple
    ``(ename, evalue, traceback, engine_info)`` (an EngineError, a TaskAborted...)."""
    if isinstance(exc, RemoteError):
        return exc
    return (type(exc).__name__, str(exc), "", getattr(exc, "engine_info", None) or {})


def _flatten(elist):
    flat = []
    for item in elist:
        if isinstance(item, CompositeError):
            flat.extend(item.elist)
        elif isinstance(item, RemoteError):
            flat.append((item.ename, item.evalue, item.traceback, item.engine_info))
        else:
            flat.append(tuple(item))
    return flat


def wrap_exception(engine_info=None, exc=None):
    """The error-reply content describing the exception being handled (or ``exc``)."""
    if exc is None:
        exc = sys.exc_info()[1]
    tb = "".join(_traceback.format_exception(type(exc), exc, exc.__traceback__))
    return {
        "status": "error",
        "ename": type(exc).__name__,
        "evalue": str(exc),
        "traceback": tb,
        "engine_info": engine_info or {},
    }


#: errors a scheduler or an engine raises about a task itself (not user code); a reply
#: naming one becomes a RemoteError that is *also* that class, so both
#: ``except RemoteError`` (ipyparallel's tests check ``ename``) and ``except EngineError`` work
_REMOTE_VARIANTS = {}
for _base in (EngineError, TaskTimeout, TaskAborted, UnmetDependency, ImpossibleDependency, DependencyTimeout,
              InvalidDependency):
    # module-level names, so that these exceptions pickle
    _REMOTE_VARIANTS[_base.__name__] = globals()[f"Remote{_base.__name__}"] = type(
        f"Remote{_base.__name__}", (RemoteError, _base), {"__module__": __name__})
del _base


def unwrap_exception(content):
    """The exception an error-reply content describes: a ``RemoteError`` (or subclass)."""
    return _REMOTE_VARIANTS.get(content.get("ename"), RemoteError)(
        content.get("ename", "Error"),
        content.get("evalue", ""),
        content.get("traceback", ""),
        content.get("engine_info"),
    )


def collect_exceptions(rdict_or_list, method="unspecified"):
    """Raise a ``CompositeError`` if any element is a ``RemoteError``; else return the input."""
    values = rdict_or_list.values() if isinstance(rdict_or_list, dict) else rdict_or_list
    elist = [r for r in values if isinstance(r, RemoteError)]
    if not elist:
        return rdict_or_list
    raise CompositeError(f"one or more exceptions raised in: {method}", elist)
