"""``IPython.kernel.task``: the TaskClient's tasks (``MapTask``, ``StringTask``) and results.

A task is a description, built and checked here in the client (0.10's constructor
``TypeError`` messages); :class:`~.taskclient.TaskClient` sends it, and the engine that the
controller's scheduler picks runs :func:`.taskonengine.run_task` with :meth:`BaseTask.engine_task`.

* ``MapTask(function, args, kwargs)``: ``function(*args, **kwargs)`` on an engine; its
  result is the raw return value.  The function travels as the MultiEngineClient ships
  functions (:func:`.commands.shipped_function`): functions of ``__main__``, lambdas and
  nested functions by value with the *engine's namespace as their globals* (so ``numpy``
  imported there, or pushed data, resolve), functions of importable modules by reference.
* ``StringTask(expression, pull, push)``: push ``push``, run ``expression`` with 0.10's
  interpreter semantics (:mod:`.onengine`; Python 2-era text goes through the legacy
  translator, :mod:`.translate`), pull the ``pull`` names: a :class:`TaskResult`, which
  holds a failure instead of raising it.

Both take ``clear_before``/``clear_after`` (a fresh engine namespace before / after the
task, after it even when it failed), ``retries``, ``recovery_task`` (a task run under the
same id once the retries are used up) and ``depend`` (``depend(properties)`` is called on
each candidate engine with that engine's properties; false or an exception means "not
here").  They may be set after construction, as in 0.10; :meth:`BaseTask.stages` checks
them when the task is run.
"""

import types

from . import translate
from .commands import shipped_function
from .taskonengine import EngineTask

__all__ = ["BaseTask", "MapTask", "ResultNS", "StringTask", "TaskFailure", "TaskResult"]

#: 0.10's format of ``TaskResult.submitted`` / ``.completed``
TIME_FORMAT = "%Y/%m/%d %H:%M:%S"


class BaseTask:
    """What every task has: ``clear_before``, ``clear_after``, ``retries``,
    ``recovery_task``, ``depend`` and ``taskid`` (None until run)."""

    kind = None

    def __init__(self, clear_before=False, clear_after=False, retries=0, recovery_task=None, depend=None):
        self.clear_before = clear_before
        self.clear_after = clear_after
        self.retries = retries
        self.recovery_task = recovery_task
        self.depend = depend
        self.taskid = None

    def _body(self, ship):
        raise NotImplementedError

    def engine_task(self, ship=shipped_function):
        """What :func:`.taskonengine.run_task` runs for this task (not its recovery).

        ``ship(f)`` is what travels for each function (see :func:`.commands.shipped_function`).
        """
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or self.retries < 0:
            raise ValueError(f"a task's retries must be a non-negative int, not {self.retries!r}")
        if self.depend is not None and not callable(self.depend):
            raise TypeError(f"a task's depend must be a function of the engine properties, not {self.depend!r}")
        depend = ship(self.depend) if isinstance(self.depend, types.FunctionType) else self.depend
        return EngineTask(self.kind, self._body(ship), bool(self.clear_before), bool(self.clear_after), depend,
                          translate.engine_prelude())

    def stages(self):
        """This task, then its ``recovery_task`` chain (a task already in the chain ends it:
        0.10 prevented recovery loops too)."""
        chain, seen = [], set()
        task = self
        while task is not None and id(task) not in seen:
            if not isinstance(task, BaseTask):
                raise TypeError(f"a recovery_task must be a MapTask or StringTask, not {task!r}")
            chain.append(task)
            seen.add(id(task))
            task = task.recovery_task
        return chain


class MapTask(BaseTask):
    """``function(*args, **kwargs)`` on an engine; the result is its return value."""

    kind = "map"

    def __init__(self, function, args=None, kwargs=None, clear_before=False, clear_after=False, retries=0,
                 recovery_task=None, depend=None):
        BaseTask.__init__(self, clear_before, clear_after, retries, recovery_task, depend)
        if not isinstance(function, types.FunctionType):
            raise TypeError("a task function must be a FunctionType")
        if args is None:
            args = ()
        if not isinstance(args, (list, tuple)):
            raise TypeError("a task args must be a list or tuple")
        if kwargs is None:
            kwargs = {}
        if not isinstance(kwargs, dict):
            raise TypeError("a task kwargs must be a dict")
        self.function = function
        self.args = args
        self.kwargs = kwargs

    def _body(self, ship):
        return (ship(self.function), tuple(self.args), dict(self.kwargs))


class StringTask(BaseTask):
    """Push ``push``, run ``expression``, pull the ``pull`` names: a :class:`TaskResult`."""

    kind = "string"

    def __init__(self, expression, pull=None, push=None, clear_before=False, clear_after=False, retries=0,
                 recovery_task=None, depend=None):
        BaseTask.__init__(self, clear_before, clear_after, retries, recovery_task, depend)
        if isinstance(expression, bytes):
            expression = expression.decode("utf-8")
        if not isinstance(expression, str):
            raise TypeError("a task expression must be a string")
        if pull is None:
            pull = ()
        elif isinstance(pull, str):
            pull = (pull,)
        elif isinstance(pull, (list, tuple)) and all(isinstance(key, str) for key in pull):
            pull = tuple(pull)
        else:
            raise TypeError("pull must be str or a sequence of strs")
        if push is None:
            push = {}
        if not isinstance(push, dict):
            raise TypeError("push must be a dict")
        self.expression = expression
        self.pull = pull
        self.push = push

    def _body(self, ship):
        try:
            source = translate.for_engine(self.expression, "<StringTask>")
        except SyntaxError:
            source = self.expression  # the engine reports it, in the TaskResult
        return (self.expression, source, dict(self.push), tuple(self.pull))


# -- results ------------------------------------------------------------------------------------


class TaskFailure:
    """Why a StringTask failed: what 0.10 kept as a Twisted ``Failure``.

    ``value`` is the exception (its original class when that is a builtin or an
    ``IPython.kernel.error`` one, see :func:`.error.engine_exception`), ``type`` its class.
    """

    def __init__(self, value):
        self.value = value
        self.type = type(value)

    def raiseException(self):
        raise self.value.with_traceback(None)

    def getTraceback(self):
        """The engine's traceback text (or, if there is none, the exception line)."""
        return getattr(self.value, "_ipython_traceback_text", None) or f"{self.type.__name__}: {self.value}\n"

    def getErrorMessage(self):
        return str(self.value)

    def __repr__(self):
        return f"<Failure {self.type.__name__}: {self.value}>"


class ResultNS:
    """The pulled names of a StringTask as attributes: ``ns.a``, ``ns['a']``.

    ``repr`` is ``NS`` and the dict of its public attributes, in ``dir()`` (sorted) order::

        >>> ResultNS({'foo': [0, 1, 2], 'a': 17})
        NS{'a': 17, 'foo': [0, 1, 2]}
    """

    def __init__(self, dikt):
        for key, value in dikt.items():
            setattr(self, key, value)

    def __repr__(self):
        public = {key: getattr(self, key) for key in dir(self) if key[:2] != "__" and key[-2:] != "__"}
        return "NS" + repr(public)

    def __getitem__(self, key):
        return getattr(self, key)


class TaskResult:
    """A StringTask's outcome: ``results`` (name -> value, ``{}`` on failure), ``keys``
    (a list), ``failure`` (None or a :class:`TaskFailure`), ``engineid``, ``taskid``,
    ``submitted``/``completed`` (local time, ``'%Y/%m/%d %H:%M:%S'``), ``duration``
    (seconds).  ``ns``, ``tr[name]`` and ``raise_exception()`` raise the failure, if any."""

    def __init__(self, results, failure=None):
        self.results = {} if failure is not None else dict(results)
        self.keys = list(self.results)
        self.failure = failure
        self.engineid = None
        self.taskid = None
        self.submitted = None
        self.completed = None
        self.duration = None

    def _get_ns(self):
        self.raise_exception()
        return ResultNS(self.results)

    def _set_ns(self, value):
        raise Exception("the ns attribute cannot be changed")

    ns = property(_get_ns, _set_ns)

    def __getitem__(self, key):
        self.raise_exception()
        return self.results[key]

    def raise_exception(self):
        """Raise the failure (its original exception class); None if the task succeeded."""
        if self.failure is not None:
            self.failure.raiseException()

    def __repr__(self):
        contents = self.failure if self.failure is not None else self.results
        return f"TaskResult[ID:{self.taskid!r}]:{contents!r}"


def local_time(dt):
    """A result date (UTC) as 0.10 showed times: local, ``'%Y/%m/%d %H:%M:%S'`` (None passes)."""
    if dt is None:
        return None
    return dt.astimezone().strftime(TIME_FORMAT)
