"""``IPython.kernel.error`` (and ``IPython.kernel.core.error``): the exceptions of the 0.10 API.

Names 0.10 shares with ipyparallel (``IPythonError``, ``KernelError``, ``EngineError``,
``NoEnginesRegistered``, ``TaskAborted``, ``TaskTimeout``, ``TaskRejectError``) *are*
:mod:`kernelpar.errors`' classes, so one ``except`` catches what either API raises.  The
rest are 0.10's own, all subclasses of ``KernelError`` as there.

Engine failures
---------------
0.10 raised the engine's own exception object in the client, decorated with
``_ipython_engine_info`` (``{'engineid', 'method', 'args'}``) and
``_ipython_traceback_text``.  kernelpar's engines report a failure as class name, message
and traceback text (a :class:`~kernelpar.errors.RemoteError`); :func:`engine_exception`
turns that back into the original class when the name is a builtin exception or one of
this module's, and keeps the ``RemoteError`` (which has the class name and message) when
the class lived in engine code.  Either way the two attributes are set, and that is what
:class:`CompositeError` reads.
"""

import ast
import builtins

from ...errors import (  # noqa: F401  (re-exported names of IPython.kernel.error)
    EngineError,
    IPythonError,
    KernelError,
    NoEnginesRegistered,
    RemoteError,
    TaskAborted,
    TaskRejectError,
    TaskTimeout,
)


class ControllerError(IPythonError):
    pass


class ControllerCreationError(ControllerError):
    pass


class EngineCreationError(EngineError):
    pass


class NotDefined(KernelError):
    def __init__(self, name):
        self.name = name
        self.args = (name,)

    def __repr__(self):
        return f"<NotDefined: {self.name}>"

    __str__ = __repr__


def _kernel_error(name, doc, base=KernelError):
    return type(name, (base,), {"__doc__": doc, "__module__": __name__})


QueueCleared = _kernel_error("QueueCleared", "A command waiting in an engine's queue was dropped "
                             "(clear_queue, or an earlier command on that engine failed).")
IdInUse = _kernel_error("IdInUse", "The engine id asked for is taken.")
ProtocolError = _kernel_error("ProtocolError", "A message broke the protocol.")
ConnectionError = _kernel_error("ConnectionError", "The controller could not be reached.")  # noqa: A001
InvalidEngineID = _kernel_error("InvalidEngineID", "No engine has this id.")
InvalidClientID = _kernel_error("InvalidClientID", "No client has this id.")
InvalidDeferredID = _kernel_error("InvalidDeferredID", "The pending result was fetched or flushed.")
SerializationError = _kernel_error("SerializationError", "An object could not be serialized.")
MessageSizeError = _kernel_error("MessageSizeError", "A message is too large.")
PBMessageSizeError = _kernel_error("PBMessageSizeError", "A message is too large.", MessageSizeError)
ResultNotCompleted = _kernel_error("ResultNotCompleted", "The result is not ready yet.")
ResultAlreadyRetrieved = _kernel_error("ResultAlreadyRetrieved", "The result was fetched already.")
ClientError = _kernel_error("ClientError", "The client was used wrongly.")
NotAPendingResult = _kernel_error("NotAPendingResult", "barrier() was given something that is not a PendingResult.")
UnpickleableException = _kernel_error("UnpickleableException", "An engine exception could not be pickled.")
AbortedPendingDeferredError = _kernel_error("AbortedPendingDeferredError", "The pending result was flushed.")
InvalidProperty = _kernel_error("InvalidProperty", "An engine property value is not picklable.")
MissingBlockArgument = _kernel_error("MissingBlockArgument", "A call needs a block argument.")
StopLocalExecution = _kernel_error("StopLocalExecution", "Stops the local body of a remote() block.")
SecurityError = _kernel_error("SecurityError", "The FURL's security check failed.")
FileTimeoutError = _kernel_error("FileTimeoutError", "A FURL file did not appear in time.")


def engine_tag(exc):
    """``[0:execute]: `` for an engine exception, ``[Engine Exception]`` for any other."""
    info = getattr(exc, "_ipython_engine_info", None)
    if info:
        return f"[{info.get('engineid')}:{info.get('method')}]: "
    return "[Engine Exception]"


class CompositeError(KernelError):
    """The engine exceptions of one MultiEngineClient call, one ``(etype, evalue, etb)`` per
    failing engine, in target order."""

    def __init__(self, message, elist):
        Exception.__init__(self, message, elist)
        self.message = message
        self.elist = elist

    def __str__(self):
        lines = [self.message]
        lines += [f"{engine_tag(ev)}{et.__name__}: {ev}" for et, ev, _ in self.elist]
        return "\n".join(lines)

    def _entry(self, excid):
        try:
            return self.elist[excid]
        except (IndexError, TypeError):
            raise IndexError(f"an exception with index {excid} does not exist") from None

    def print_tracebacks(self, excid=None):
        """Each engine's traceback under its tag (only entry ``excid`` if given)."""
        entries = [self._entry(excid)] if excid is not None else self.elist
        for et, ev, _ in entries:
            print(engine_tag(ev))
            print(getattr(ev, "_ipython_traceback_text", None) or "No traceback available")
            if excid is None:
                print()

    def raise_exception(self, excid=0):
        """Raise entry ``excid`` again, as its original type."""
        et, ev, etb = self._entry(excid)
        raise ev.with_traceback(etb)

    def _render_traceback_(self):
        return str(self).splitlines()


def collect_exceptions(rlist, method):
    """Raise one CompositeError if any element of ``rlist`` is an exception; else ``rlist``.

    CompositeErrors among the elements are flattened into the new one.
    """
    elist = []
    for r in rlist:
        if isinstance(r, CompositeError):
            elist.extend(r.elist)
        elif isinstance(r, BaseException):
            elist.append((type(r), r, r.__traceback__))
    if elist:
        raise CompositeError(f"one or more exceptions from call to method: {method}", elist)
    return rlist


def _exception_class(ename):
    cls = getattr(builtins, ename, None) or globals().get(ename)
    if isinstance(cls, type) and issubclass(cls, BaseException):
        return cls
    return None


def _rebuilt(cls, evalue):
    if cls is KeyError:
        # str(KeyError('a')) is "'a'": rebuild the key, or str() would quote it again
        try:
            return cls(ast.literal_eval(evalue))
        except (ValueError, SyntaxError):
            pass
    try:
        return cls(evalue)
    except Exception:
        return None


def engine_exception(error, engine_id, method, args=()):
    """The exception a legacy client raises for a failure on engine ``engine_id``.

    ``error`` is the modern client's exception (a RemoteError, or an EngineError /
    TaskAborted raised by the controller about the engine).
    """
    exc = error
    if isinstance(error, RemoteError) and type(error) is RemoteError:
        cls = _exception_class(error.ename)
        rebuilt = _rebuilt(cls, error.evalue) if cls is not None else None
        if rebuilt is not None:
            exc = rebuilt
    exc._ipython_engine_info = {"engineid": engine_id, "method": method, "args": list(args)}
    exc._ipython_traceback_text = getattr(error, "traceback", None) or None
    return exc


__all__ = [name for name, value in list(globals().items())
           if isinstance(value, type) and issubclass(value, BaseException)] + ["collect_exceptions"]
