"""The controller's table of TaskClient tasks: 0.10's integer task ids (pure, no I/O).

IPython 0.10's ``TaskClient.run`` returned an integer task id, counted from 0 by the
controller across every client, and later calls named tasks by that id
(``get_task_result``, ``abort``, ``clear``, ``queue_status``).  A TaskClient task is an
ordinary load-balanced ``apply_request`` whose metadata carries ``legacy``::

    {"ack": <msg_id to answer with the task ids>, "batch": <requests naming that ack>,
     "stages": [[nbuffers, retries, kind], ...]}     # kind: "map" or "string"

The request's buffers are its stages' ``apply`` buffers one after the other: the task
itself, then its ``recovery_task`` chain (buffers are not signed, so the edge can send
each stage's slice under the same signed header, and the reply of any stage answers the
client's one request).  :mod:`.taskqueue` hands such a request to :meth:`LegacyTasks.submit`,
which numbers it and builds the scheduler's :class:`~.tasktypes.Task` (see
:mod:`.legacyrules` for how it is scheduled), and reports how each task ended with
:meth:`LegacyTasks.ended`.  The other methods answer the TaskClient's
``legacy_task_request`` operations; they raise ``IndexError``/``KeyError``/``TypeError``
with 0.10's messages, which the edge sends back for the client to raise.

Entries stay until ``clear()`` drops them (0.10 kept every result until then); the
results themselves are the hub's task records (``get_result``) and the submitting
client's own.
"""

import itertools
import numbers

from .tasktypes import ASSIGNED, WAITING, Task

KINDS = ("map", "string")


class _Entry:
    __slots__ = ("aborted", "end", "kinds", "msg_id", "stage")

    def __init__(self, msg_id, kinds):
        self.msg_id = msg_id
        self.kinds = kinds
        self.stage = 0
        #: None while not done, else "ok" / "error" (the engine's reply) or the failure's ename
        self.end = None
        #: abort() was asked for
        self.aborted = False

    @property
    def kind(self):
        """The kind of the stage that ran last (what the result is)."""
        return self.kinds[self.stage]

    def counted(self):
        """``"succeeded"``/``"failed"``/None: 0.10's queue_status counted only StringTask
        results (its TaskResults), which aborted and timed-out tasks do not have."""
        if self.kind != "string" or self.end in (None, "TaskAborted", "TaskTimeout"):
            return None
        return "succeeded" if self.end == "ok" else "failed"


def _task_id(value, what="task id"):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"an integer {what} expected: {value!r}")
    return int(value)


def parse_stages(legacy, nbuffers):
    """``[(nbuffers, retries, kind), ...]`` from a request's ``legacy`` metadata, checked
    against the ``nbuffers`` it carries (ValueError naming what is wrong)."""
    stages = legacy.get("stages") if isinstance(legacy, dict) else None
    if not isinstance(stages, list) or not stages:
        raise ValueError(f"legacy task metadata needs a non-empty list of stages, not {stages!r}")
    parsed = []
    for stage in stages:
        if not (isinstance(stage, list) and len(stage) == 3):
            raise ValueError(f"a legacy task stage is [nbuffers, retries, kind], not {stage!r}")
        n, retries, kind = stage
        for name, value in (("nbuffers", n), ("retries", retries)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"a legacy task stage's {name} must be a non-negative int, not {value!r}")
        if n == 0 or kind not in KINDS:
            raise ValueError(f"a legacy task stage needs buffers and a kind in {KINDS}, not {stage!r}")
        parsed.append((n, retries, kind))
    if sum(n for n, _, _ in parsed) != nbuffers:
        raise ValueError(f"legacy task stages account for {sum(n for n, _, _ in parsed)} buffers, "
                         f"the request has {nbuffers}")
    return parsed


class LegacyTasks:
    """TaskClient ids, and what became of each task, for one :class:`~.scheduler.TaskScheduler`."""

    def __init__(self, scheduler):
        self.scheduler = scheduler
        self._ids = itertools.count()
        self._entries = {}  # task id -> _Entry, until clear()
        self._live = {}  # msg_id -> task id, until the task ends

    def __len__(self):
        return len(self._entries)

    # -- the edge's events ------------------------------------------------------------------

    def submit(self, msg_id, stages, payload_of):
        """Number a new TaskClient request; return ``(task id, Task)`` for the scheduler.

        ``stages`` as :func:`parse_stages` gives them; ``payload_of(start, stop)`` is the
        edge's payload for the buffers ``start:stop`` (one stage).
        """
        payloads, start = [], 0
        for n, retries, _ in stages:
            payloads.append((payload_of(start, start + n), retries))
            start += n
        taskid = next(self._ids)
        self._entries[taskid] = _Entry(msg_id, tuple(kind for _, _, kind in stages))
        self._live[msg_id] = taskid
        (payload, retries), *fallbacks = payloads
        return taskid, Task(msg_id, payload, retries=retries, legacy_id=taskid, fallbacks=tuple(fallbacks))

    def ended(self, task, how):
        """``task`` is done: ``how`` is the reply's status ("ok"/"error"/"aborted") or the
        ename the scheduler failed it with."""
        taskid = self._live.pop(task.msg_id, None)
        entry = self._entries.get(taskid)
        if entry is not None:
            entry.stage = task.stage
            entry.end = "TaskAborted" if how == "aborted" else how

    # -- the TaskClient's operations --------------------------------------------------------------

    def abort(self, taskid):
        """0.10's ``abort``: decisions to carry out (a waiting task fails with TaskAborted;
        a running one's reply will be replaced)."""
        taskid = _task_id(taskid)
        entry = self._entries.get(taskid)
        if entry is None:
            raise IndexError(f"No task #{taskid}")
        if entry.aborted or entry.end == "TaskAborted":
            raise IndexError("Task Already Aborted")
        if entry.end is not None:
            raise IndexError("Task Already Completed")
        entry.aborted = True
        task = self.scheduler.task(entry.msg_id)
        if task.state is WAITING:
            return self.scheduler.abort([entry.msg_id])
        self.scheduler.discard_result(entry.msg_id)
        return []

    def status(self, verbose=False):
        """0.10's ``queue_status``: ``{'scheduled', 'pending', 'succeeded', 'failed'}``,
        counts or (``verbose``) lists of task ids."""
        groups = {"scheduled": [], "pending": [], "succeeded": [], "failed": []}
        for taskid, entry in self._entries.items():
            if entry.end is None:
                task = self.scheduler.task(entry.msg_id)
                group = "pending" if task is not None and task.state is ASSIGNED else "scheduled"
            else:
                group = entry.counted()
            if group is not None:
                groups[group].append(taskid)
        return groups if verbose else {name: len(ids) for name, ids in groups.items()}

    def clear(self, taskids=None):
        """0.10.1's ``clear``: forget finished tasks (all, or those given); the number forgotten."""
        if taskids is None:
            done = [taskid for taskid, entry in self._entries.items() if entry.end is not None]
            for taskid in done:
                del self._entries[taskid]
            return len(done)
        ids = [taskids] if not isinstance(taskids, (list, tuple)) else taskids
        cleared, missing = 0, []
        for value in ids:
            taskid = _task_id(value)
            entry = self._entries.get(taskid)
            if entry is None or entry.end is None:
                missing.append(taskid)
            else:
                del self._entries[taskid]
                cleared += 1
        if missing:
            raise KeyError(f"Cleared {cleared} results, but no tasks found for ids: {missing!r}")
        return cleared

    def lookup(self, taskid):
        """``[msg_id, kind, done]`` of a task (``kind`` of the stage that ran last, so far)."""
        taskid = _task_id(taskid)
        entry = self._entries.get(taskid)
        if entry is None:
            raise IndexError(f"task ID not registered: {taskid}")
        task = self.scheduler.task(entry.msg_id)
        stage = task.stage if task is not None else entry.stage
        return [entry.msg_id, entry.kinds[stage], entry.end is not None]


class AckBatches:
    """The task ids of TaskClient batches, collected until each batch is whole.

    A client sends ``batch`` requests naming one ``ack`` msg_id (a ``map`` sends them all
    at once) and waits for one reply listing their task ids.  A client that dies halfway
    through sending leaves its batch incomplete for ever: only the ``limit`` newest
    incomplete batches are kept.
    """

    def __init__(self, limit=1024):
        self.limit = limit
        self._entries = {}

    def add(self, ack, size, entry):
        """Note ``entry`` for ``ack``; returns the whole batch once ``size`` entries are in, else None."""
        batch = self._entries.get(ack)
        if batch is None:
            batch = self._entries[ack] = []
            if len(self._entries) > self.limit:
                del self._entries[next(iter(self._entries))]
        batch.append(entry)
        if len(batch) < size:
            return None
        del self._entries[ack]
        return batch

    def __len__(self):
        return len(self._entries)
