"""``TaskClient``: IPython 0.10's load-balanced client over a modern ``kernelpar.Client``.

A task (:mod:`.task`) is one load-balanced ``apply_request`` of
:func:`.taskonengine.run_task` on the controller's task channel, placed by the same
scheduler as the ``LoadBalancedView``'s tasks, under 0.10's rules for retries, recovery
tasks, ``depend`` and ``TaskRejectError`` (:mod:`kernelpar.controller.legacyrules`).  Its
metadata's ``legacy`` entry makes the controller number it (:mod:`kernelpar.controller.
legacytasks`): ``run`` returns that number, which the controller sends back the moment
the request arrives, while the task is already on its way to an engine (a ``map`` gets
the numbers of all its tasks in one reply); a recovery chain travels in the same request.
That reply is what a legacy ``run`` costs more than a modern ``apply``: 0.10's integer ids
are the controller's, so the caller must hear from it before it can return one.

Results: the tasks this TaskClient submitted are followed through their own futures, kept
until ``clear()``; another client's task ids are looked up on the controller and fetched
from its task records (``Client.get_result``), which hold only the most recent tasks
(``--record-limit``): an older result of another client is gone.  ``clear`` is the
controller's, as in 0.10 (other clients can no longer fetch those ids), and drops this
TaskClient's own copies; another TaskClient keeps its own until it clears them.

The 'pure' task scheme (a C queue) cannot number tasks: the TaskClient refuses it.
"""

import concurrent.futures
import functools
import itertools
import numbers
import threading
import types

from ... import errors
from ...wire.serialize import pack_apply, pickled_once
from ..futures import MessageFuture
from . import error
from .commands import shipped_function
from .furl import FurlClient
from .task import BaseTask, MapTask, TaskFailure, TaskResult, local_time
from .taskonengine import run_task

#: seconds to wait for the controller to number submitted tasks
ACK_TIMEOUT = 60.0
#: the builtin exceptions a legacy_task_request may answer with (0.10's messages)
_OP_ERRORS = {cls.__name__: cls for cls in (IndexError, KeyError, TypeError, ValueError)}


class TaskController:
    """``tc.task_controller``: what 0.10's TaskClient was connected to (a repr to print)."""

    def __init__(self, client):
        self._client = client

    def __repr__(self):
        info = self._client.connection_info
        return (f"<kernelpar task controller {info.get('location') or info.get('interface')}: "
                f"scheme {self._client._task_scheme!r}, {len(self._client)} engines>")


class _Submitted:
    """One task this TaskClient ran: its request's future and its stages' kinds."""

    __slots__ = ("future", "kinds", "value")

    def __init__(self, future, kinds):
        self.future = future
        self.kinds = kinds
        #: (ok, what get_task_result returns or raises), once built
        self.value = None


def _task_id(taskid):
    if isinstance(taskid, bool) or not isinstance(taskid, numbers.Integral):
        raise TypeError(f"an integer task id expected: {taskid!r}")
    if taskid >= 2**63:  # no task has one, and the JSON to the controller would make it a float
        raise IndexError(f"task ID not registered: {taskid}")
    return int(taskid)


def _batch_shipper():
    """:func:`.commands.shipped_function` for the tasks of one request batch, each
    function pickled once for all of them (a ``map``'s tasks share one; pickling it by
    value for each task was most of a small task's cost here)."""
    shipped = {}  # id(f) -> (f, what travels): f is kept so that its id is not reused

    def ship(f):
        entry = shipped.get(id(f))
        if entry is None:
            entry = shipped[id(f)] = (f, pickled_once(shipped_function(f)))
        return entry[1]

    return ship


class TaskClient(FurlClient):
    """IPython 0.10's ``client.TaskClient(furl_or_file='')`` (see the module docstring)."""

    furl_kind = "tc"

    def _setup(self, client):
        if client._task_scheme == "pure" or client.connection_info.get("task") is None:
            raise RuntimeError(
                "the TaskClient needs the controller's task scheduler, which numbers the tasks; this controller's "
                f"task scheme is {client._task_scheme!r} (a C queue without one): start it with another --scheme")
        self._client = client
        self._mine = {}  # task id -> _Submitted, until clear()
        self._lock = threading.Lock()
        self._acks = itertools.count()
        #: 0.10's attribute (no method reads it)
        self.block = True
        self.task_controller = TaskController(client)

    def __repr__(self):
        return f"<TaskClient of {self._client!r}>"

    # -- submitting --------------------------------------------------------------------------

    def run(self, task, block=False):
        """Submit a MapTask or StringTask: its task id, or (``block=True``) its result."""
        if not block:
            return self._submit([task])[0]
        sent = self._send([task])
        # the result comes after the id: wait for it first, so that this thread wakes once
        concurrent.futures.wait([sent[0][0][1]])
        return self.get_task_result(self._numbered(sent)[0], block=True)

    def _submit(self, tasks):
        """Send ``tasks`` (one request each, back to back); their task ids, in order."""
        if not tasks:  # nothing to number: no ack would come
            return []
        return self._numbered(self._send(tasks))

    def _send(self, tasks):
        """Send the requests of ``tasks``; ``([(task, future, kinds), ...], ack future)``.

        The controller numbers the requests as they arrive and, once it has numbered all of
        them, answers the ack msg_id with their ids: one message for a whole ``map``.
        """
        client = self._client
        ack = MessageFuture(f"{client.session.session}-taskids-{next(self._acks)}", "hub", "legacy_task_request",
                            "task", None)
        ship = _batch_shipper() if len(tasks) > 1 else shipped_function
        sent = []
        for task in tasks:
            if not isinstance(task, BaseTask):
                raise AssertionError("task must be a Task object!")
            stages = task.stages()
            buffers, spec = [], []
            for stage in stages:
                packed = pack_apply(run_task, (stage.engine_task(ship),), {})
                buffers.extend(packed)
                spec.append([len(packed), stage.retries, stage.kind])
            metadata = {"legacy": {"ack": ack.msg_id, "batch": len(tasks), "stages": spec}}
            future = client._task_future("apply", "apply_request", None, None, None, buffers, False, None, None,
                                         metadata)
            sent.append((task, future, tuple(s.kind for s in stages)))
        client._dispatcher.register(ack)
        client._send([future for _, future, _ in sent])
        return sent, ack

    def _numbered(self, sent):
        """The task ids of requests sent by :meth:`_send`, once the controller gave them."""
        sent, ack = sent
        try:
            taskids = ack.result(ACK_TIMEOUT)["taskids"]
        except concurrent.futures.TimeoutError:
            self._client._dispatcher.futures.pop(ack.msg_id, None)
            raise errors.TimeoutError(f"the controller did not number {len(sent)} task(s) within "
                                      f"{ACK_TIMEOUT:g} s") from None
        refused = None
        with self._lock:
            for (task, future, kinds), taskid in zip(sent, taskids, strict=True):
                if isinstance(taskid, int):
                    task.taskid = taskid
                    self._mine[taskid] = _Submitted(future, kinds)
                elif refused is None:
                    refused = _OP_ERRORS.get(taskid[0], errors.KernelError)(taskid[1])
        if refused is not None:
            raise refused
        return taskids

    # -- results -------------------------------------------------------------------------------

    def get_task_result(self, taskid, block=False):
        """The result of task ``taskid``: None while it runs (unless ``block``), a
        TaskResult for a StringTask, the return value for a MapTask (whose failure is
        raised); TaskAborted / TaskTimeout for an aborted or timed-out task."""
        taskid = _task_id(taskid)
        with self._lock:
            mine = self._mine.get(taskid)
        if mine is None:
            return self._foreign_result(taskid, block)
        if mine.value is None:
            future = mine.future
            if not block and not future.done():
                return None
            exc = future.exception()  # waits
            ok, value = (True, future.result()) if exc is None else (False, exc)
            mine.value = self._outcome(taskid, ok, value, future.metadata, mine.kinds[-1])
            self._forget(future)
        ok, value = mine.value
        if not ok:
            raise value.with_traceback(None)
        return value

    def _forget(self, future):
        """Drop a finished request from the modern client's result tables (which nothing else reads)."""
        self._client.results.pop(future.msg_id, None)
        self._client.metadata.pop(future.msg_id, None)

    def _foreign_result(self, taskid, block):
        """A task another client submitted: from the controller's records."""
        msg_id, _, done = self._op("lookup", taskid=taskid)
        if not done and not block:
            return None
        ar = self._client.get_result(msg_id, block=False)
        ar.wait()
        try:
            ok, value = True, ar.get()
        except Exception as e:
            ok, value = False, e
        # the kind of the stage that ran last, now that it is done
        kind = self._op("lookup", taskid=taskid)[1]
        ok, value = self._outcome(taskid, ok, value, ar.metadata, kind)
        if not ok:
            raise value
        return value

    def _outcome(self, taskid, ok, value, metadata, last_kind):
        """``(ok, value)`` of get_task_result from a request's outcome.

        A success is ``(kind, value)`` (the stage that succeeded says which); a failure
        is the last stage's (every earlier stage failed before it ran).
        """
        if ok:
            kind, value = value
            if kind == "map":
                return True, value
            return True, self._task_result(taskid, value, None, metadata)
        if isinstance(value, errors.TaskAborted):
            return False, error.TaskAborted(f"task {taskid} was aborted")
        if isinstance(value, errors.TaskTimeout):
            return False, error.TaskTimeout(getattr(value, "evalue", str(value)))
        exc = error.engine_exception(value, metadata.get("engine_id"), "execute")
        if last_kind == "map":
            return False, exc
        return True, self._task_result(taskid, {}, TaskFailure(exc), metadata)

    @staticmethod
    def _task_result(taskid, results, failure, metadata):
        tr = TaskResult(results, failure)
        tr.taskid = taskid
        tr.engineid = metadata.get("engine_id")
        tr.submitted = local_time(metadata.get("submitted"))
        tr.completed = local_time(metadata.get("completed"))
        started, completed = metadata.get("started"), metadata.get("completed")
        tr.duration = (completed - started).total_seconds() if started and completed else 0.0
        return tr

    def barrier(self, taskids):
        """Wait until the tasks (an id or a sequence of ids) are done; errors are swallowed."""
        if isinstance(taskids, numbers.Integral):
            taskids = [taskids]
        for taskid in taskids:
            try:
                self.get_task_result(taskid, block=True)
            except Exception:
                pass

    # -- the controller's operations --------------------------------------------------------------

    def _op(self, op, **content):
        reply = self._client._hub_request("legacy_task_request", {"op": op, **content})
        problem = reply.get("error")
        if problem is not None:
            ename, message = problem
            raise _OP_ERRORS.get(ename, errors.KernelError)(message)
        return reply.get("value")

    def abort(self, taskid):
        """Abort a task: a queued one ends with TaskAborted; a running one's result is
        replaced by TaskAborted.  IndexError if it completed, was aborted or is unknown."""
        self._op("abort", taskid=_task_id(taskid))

    def spin(self):
        """Let engines that refused tasks (``depend``, ``TaskRejectError``) have them again
        now; whether a task went to an engine."""
        return bool(self._op("spin"))

    def queue_status(self, verbose=False):
        """``{'scheduled', 'pending', 'succeeded', 'failed'}``: counts, or lists of task ids.

        As in 0.10, succeeded/failed count StringTask results only."""
        return self._op("status", verbose=bool(verbose))

    def clear(self, taskids=None):
        """Forget finished tasks' results (all, or those given); the number forgotten.

        KeyError for ids that name no finished task (the others are forgotten)."""
        if taskids is not None:
            ids = [taskids] if isinstance(taskids, numbers.Integral) else list(taskids)
            taskids = [_task_id(t) for t in ids]
        try:
            return self._op("clear", taskids=taskids)
        finally:
            with self._lock:
                for taskid in list(self._mine) if taskids is None else taskids:
                    mine = self._mine.get(taskid)
                    if mine is not None and mine.future.done():
                        del self._mine[taskid]
                        self._forget(mine.future)

    # -- map -------------------------------------------------------------------------------------

    def map(self, func, *sequences):
        """Load-balanced ``map``: one MapTask per element; results in input order (the first
        failure is raised)."""
        return self.mapper().map(func, *sequences)

    def mapper(self, clear_before=False, clear_after=False, retries=0, recovery_task=None, depend=None, block=True):
        """An object whose ``map(func, *sequences)`` runs MapTasks with these settings
        (``block=False``: it returns the task ids)."""
        return TaskMapper(self, clear_before, clear_after, retries, recovery_task, depend, block)

    def parallel(self, clear_before=False, clear_after=False, retries=0, recovery_task=None, depend=None,
                 block=True):
        """Decorator: ``@tc.parallel()`` makes ``f(seq, ...)`` a load-balanced map of ``f``."""
        mapper = self.mapper(clear_before, clear_after, retries, recovery_task, depend, block)

        def decorator(func):
            if not isinstance(func, types.FunctionType):
                raise TypeError(f"@parallel needs a function, not {func!r}")

            @functools.wraps(func)
            def parallel_function(*sequences):
                return mapper.map(func, *sequences)

            return parallel_function

        return decorator


class TaskMapper:
    """What ``tc.mapper(...)`` returns: ``map(func, *sequences)`` with fixed task settings."""

    def __init__(self, tc, clear_before, clear_after, retries, recovery_task, depend, block):
        self.tc = tc
        self.clear_before = clear_before
        self.clear_after = clear_after
        self.retries = retries
        self.recovery_task = recovery_task
        self.depend = depend
        self.block = block

    def map(self, func, *sequences):
        if not sequences:
            raise TypeError("map needs at least one sequence")
        sequences = [list(s) for s in sequences]
        if len({len(s) for s in sequences}) > 1:
            raise ValueError("all sequences must have equal length")
        tasks = [MapTask(func, args, clear_before=self.clear_before, clear_after=self.clear_after,
                         retries=self.retries, recovery_task=self.recovery_task, depend=self.depend)
                 for args in zip(*sequences, strict=True)]
        taskids = self.tc._submit(tasks)
        if not self.block:
            return taskids
        self.tc.barrier(taskids)
        return [self.tc.get_task_result(taskid) for taskid in taskids]
