"""What a TaskClient task runs on its engine (IPython 0.10's task steps).

:func:`run_task` is sent by reference (this module is importable on every engine) with
one :class:`EngineTask`, and works on the engine's user namespace with the 0.10
interpreter of :mod:`.onengine` (``execute``, ``reset``, ``properties``, ``push``,
``pull``).  It takes the namespace from :func:`~kernelpar.wire.serialize.user_namespace`
rather than as a ``Reference`` argument, and its argument is a named tuple, which the
engine does not search for references: each saves a few tens of microseconds per task.
The steps, in 0.10's order:

1. ``depend(properties)``: false or an exception means this engine may not run the task:
   ``UnmetDependency``, which the controller's scheduler takes as a refusal (the task goes
   to another engine, or waits; see :mod:`kernelpar.controller.legacyrules`);
2. ``clear_before``: a fresh namespace;
3. the task: a MapTask binds ``_ipython_task_function``/``_args``/``_kwargs`` and
   ``_ipython_task_result`` (0.10 left them in the namespace); a StringTask pushes, executes
   (counting as a command, like 0.10's tasks) and pulls;
4. ``clear_after``: a fresh namespace, even when the task failed.

A ``TaskRejectError`` raised by the task is a refusal too (``UnmetDependency``), not a
failure: it uses no retry (0.10 meant it that way; its check compared the wrong object).
The result is ``(kind, value)``, so the client knows which stage of a recovery chain
produced it; a failure is raised, so that the scheduler can retry it.
"""

from collections import namedtuple

from ...errors import TaskRejectError, UnmetDependency
from ...wire.serialize import user_namespace
from . import onengine

#: one task's stage: ``kind`` "map" (``body``: function, args, kwargs) or "string"
#: (``body``: raw text, text to run, push, pull), the task's settings, and the legacy-mode
#: prelude (:func:`.onengine.run_prelude`: ``depend`` and a MapTask's function may be
#: translated client code that needs its helpers)
EngineTask = namedtuple("EngineTask", "kind body clear_before clear_after depend prelude")


def run_task(task):
    """Run one TaskClient task (see the module docstring); ``(kind, value)``."""
    namespace = user_namespace()
    kind, body, clear_before, clear_after, depend, prelude = task
    onengine.run_prelude(prelude)
    if depend is not None and not _accepts(depend, namespace):
        raise UnmetDependency("the task's depend function does not accept this engine's properties")
    if clear_before:
        onengine.reset(namespace)
    try:
        if kind == "map":
            value = _map_task(namespace, *body)
        else:
            value = _string_task(namespace, *body)
    except TaskRejectError as e:
        raise UnmetDependency(f"the task was rejected: {e}") from e
    finally:
        if clear_after:
            onengine.reset(namespace)
    return kind, value


def _accepts(depend, namespace):
    try:
        return bool(depend(dict(onengine.properties(namespace))))
    except Exception:
        return False


def _map_task(namespace, function, args, kwargs):
    onengine.push(namespace, {"_ipython_task_function": function, "_ipython_task_args": args,
                              "_ipython_task_kwargs": kwargs})
    result = namespace["_ipython_task_result"] = function(*args, **kwargs)
    return result


def _string_task(namespace, raw, source, push, pull):
    onengine.push(namespace, push)
    onengine.execute(namespace, raw, source)
    return {key: onengine.pull(namespace, key) for key in pull}
