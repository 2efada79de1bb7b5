"""How a legacy MultiEngineClient command travels and how its replies become 0.10 results.

Each command is one ``apply`` per targeted engine (``execute`` one ``execute_request``,
which the engines run with 0.10's interpreter: ``legacy_execute`` in its metadata, see
:mod:`kernelpar.wire.protocol`); the requests carry two metadata entries:

* ``stop_on_error``: the engine aborts everything queued behind a command that fails
  (0.10's per-engine queue semantics); the aborted commands come back as ``aborted``
  replies, which :func:`legacy_value` turns into ``QueueCleared``;
* ``legacy_command``: the command's text (``execute('time.sleep(2.0)')``), which the hub
  records with the request and ``queue_status()`` shows.

A *finisher* (:func:`per_engine`) turns the raw per-engine results into the method's
return value: engine failures are decorated by :func:`.error.engine_exception` and,
once every engine answered, collected into one ``CompositeError``.
"""

import re
import types

from ...errors import TaskAborted
from ...wire.protocol import LEGACY_EXECUTE
from .error import QueueCleared, collect_exceptions, engine_exception

#: the engine's metadata flag (``kernelpar.engine.kernel.STOP_ON_ERROR``; the client
#: never imports the engine package)
STOP_ON_ERROR = "stop_on_error"

#: metadata key holding a command's text for ``queue_status``
COMMAND_KEY = "legacy_command"

#: longest command text kept for ``queue_status``
COMMAND_TEXT_LIMIT = 200


def request_metadata(text):
    """The metadata of a legacy command's requests."""
    return {STOP_ON_ERROR: True, COMMAND_KEY: text}


def execute_metadata(text, raw, prelude):
    """The metadata of a legacy ``execute``'s requests: ``execute_request``s that the
    engines run with 0.10's interpreter (``legacy_execute``, see :mod:`kernelpar.wire.protocol`)."""
    return {**request_metadata(text), LEGACY_EXECUTE: {"raw": raw, "prelude": prelude}}


def command_text(method, *args):
    """``method(arg, ...)`` as ``queue_status`` shows it, shortened."""
    text = f"{method}({', '.join(repr(a) for a in args)})"
    if len(text) > COMMAND_TEXT_LIMIT:
        text = text[:COMMAND_TEXT_LIMIT - 4] + "...)"
    return text


def legacy_value(value, engine_id, method):
    """One engine's raw result, a failure turned into the exception 0.10 raised."""
    if not isinstance(value, BaseException):
        return value
    if isinstance(value, TaskAborted):
        value = QueueCleared(f"command aborted on engine {engine_id}: an earlier command on that engine failed, "
                             "or its queue was cleared")
    exc = engine_exception(value, engine_id, method)
    if exc._ipython_traceback_text:
        exc._ipython_traceback_text = user_traceback(exc._ipython_traceback_text)
    return exc


#: the engine-side modules whose frames head every legacy traceback
_OWN_FRAMES = re.compile(r'^  File ".*[/\\]kernelpar[/\\]client[/\\]legacy[/\\](?:task)?onengine\.py", ')


def user_traceback(text):
    """A remote traceback without the frames of the legacy layer's own engine functions.

    A frame is its ``  File ...`` line and the indented source lines after it.
    """
    kept, skipping = [], False
    for line in text.splitlines(keepends=True):
        if line.startswith("  File "):
            skipping = bool(_OWN_FRAMES.match(line))
        elif not line.startswith("    "):
            skipping = False
        if not skipping:
            kept.append(line)
    return "".join(kept)


def per_engine(futures, method, engine_method=None, shape=None):
    """A finisher: raw results -> per-engine list (``shape``d), or one CompositeError.

    ``method`` names the client method (in the CompositeError's message),
    ``engine_method`` what ran on the engines (in each entry's ``[id:method]`` tag).
    """
    engine_ids = [f.engine_id for f in futures]
    engine_method = engine_method or method

    def finish(raw):
        values = [legacy_value(v, eid, engine_method) for v, eid in zip(raw, engine_ids)]
        collect_exceptions(values, method)
        return values if shape is None else shape(values)

    return finish


def shipped_function(f):
    """``f`` as 0.10 shipped functions: its global names resolve on the engine.

    0.10 sent a function's code alone and rebuilt it with the engine's namespace as
    globals.  kernelpar's serializer already does that for functions of ``__main__``;
    this extends it to the other functions that travel by value (lambdas and functions
    defined inside functions, wherever they live), by sending a copy that says it is of
    ``__main__``.  Functions of importable modules still travel by reference and keep
    their module's globals (0.10 broke them); closures and defaults travel too (0.10
    refused closures and lost defaults): a documented superset.
    """
    if not isinstance(f, types.FunctionType) or f.__module__ == "__main__":
        return f
    if "<locals>" not in f.__qualname__ and f.__name__ != "<lambda>":
        return f
    copy = types.FunctionType(f.__code__, f.__globals__, f.__name__, f.__defaults__, f.__closure__)
    copy.__kwdefaults__ = f.__kwdefaults__
    copy.__qualname__ = f.__qualname__
    copy.__dict__.update(f.__dict__)
    copy.__module__ = "__main__"
    return copy


def nones(values):
    """The result of commands that return nothing: ``[None, ...]``."""
    return [None] * len(values)
