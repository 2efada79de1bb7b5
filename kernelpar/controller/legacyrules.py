"""IPython 0.10's scheduling rules for TaskClient tasks (pure, no I/O).

A task with a ``legacy_id`` was submitted by the legacy ``TaskClient``
(:mod:`kernelpar.client.legacy.taskclient`).  It rides the same
:class:`~.scheduler.TaskScheduler` as every load-balanced task (same queues, same
scheme, same engines), and differs only where 0.10's TaskController did:

* **Retries may reuse an engine.**  A failure with retries left is retried at once, on
  another engine with room if there is one, else on the same engine.  ipyparallel bars an
  engine that failed a task for good; 0.10 only readmitted it after a 1 s penalty, and
  legacy code counts on that (the engine namespace persists, so a retry may build on what
  the failed attempt left: 0.10's own retries test increments a variable until it is 16).
* **Recovery stages.**  When the retries are used up, the next stage of ``fallbacks``
  (``(payload, retries)`` pairs: the ``recovery_task`` chain) replaces the task's payload
  under the same msg_id, with its own retries; only the last stage's failure is delivered.
* **Refusals are not failures.**  A reply with status ``"unmet"`` (the task's ``depend``
  said no or raised, or the task raised ``TaskRejectError``) uses no retry.  The engine is
  barred from that task for :attr:`~TaskClientRules.refusal_penalty` seconds, then may have
  it again, since engine properties and namespaces change; a task that every engine
  refused waits (it never becomes ``ImpossibleDependency``).  :meth:`~TaskClientRules.spin`
  lifts every bar at once.
* **Idle timeout.**  When tasks wait because they were refused, engines are registered and
  none has a task, for ``idle_timeout`` seconds (default 30) since the last *activity* (a
  submission, a reply that is not a refusal, ``spin``, an engine registering), those tasks
  fail with ``TaskTimeout("task <id> failed to execute due to unmet dependencies for 30
  seconds")``, 0.10's message.  An engine busy with any task keeps them waiting.
* **Abort of a running task** (:meth:`~TaskClientRules.discard_result`): the engine is not
  interrupted; its reply, when it comes, is replaced by ``TaskAborted``.

These methods are mixed into :class:`~.scheduler.TaskScheduler` and work on its state:
``_refused`` (the TaskClient tasks not done that some engine refused), the heap
``_unbars`` of ``(unbar_at, n, task)`` (stale once ``task.unbar_at`` moved on) and
``_activity``.
"""

import heapq

from .tasktypes import ASSIGNED, DONE, FINAL_STATUS, WAITING, Deliver


class TaskClientRules:
    """The TaskClient half of :class:`~.scheduler.TaskScheduler` (see the module docstring)."""

    #: seconds an engine that refused a TaskClient task is barred from it (0.10's failure penalty)
    refusal_penalty = 1.0

    # -- events ---------------------------------------------------------------------------

    def discard_result(self, msg_id):
        """Replace the reply of TaskClient task ``msg_id``, now on an engine, by ``TaskAborted``
        when it comes; False if it is not on an engine."""
        task = self._tasks.get(msg_id)
        if task is None or task.state is not ASSIGNED or task.legacy_id is None:
            return False
        task.discard = True
        return True

    def spin(self):
        """Let every engine that refused a TaskClient task have it again now (engine
        properties may have changed); restarts the idle timeout."""
        self._activity = self.clock()
        for task in list(self._refused):
            if task.state is WAITING and task.tried:
                self._lift_bars(task)
        return self._flush()

    # -- what the scheduler's own events call ------------------------------------------------

    def _legacy_reply(self, task, engine, status):
        """``engine`` answered TaskClient ``task`` with ``status`` ("lost": the engine died)."""
        if task.discard:
            self._fail(task, "TaskAborted", f"task {task.legacy_id} was aborted")
            return
        if status == "unmet":
            self._refuse(task, engine)
            return
        self._activity = self.clock()
        if status in ("error", "lost"):
            if task.retries_left > 0:
                task.retries_left -= 1
                self._requeue(task, engine)
                return
            if task.stage < len(task.fallbacks):
                task.payload, task.retries_left = task.fallbacks[task.stage]
                task.stage += 1
                # a new task under the same id: no engine refused it yet
                task.tried = frozenset()
                task.unbar_at = None
                self._refused.pop(task, None)
                self._requeue(task, engine)
                return
        if status == "lost":
            # task.engine still names the engine, for the error reply
            self._fail(task, "EngineError", f"Engine {engine!r} died while running task {task.legacy_id}")
            return
        task.state = DONE
        self._decisions.append(Deliver(task, engine))
        self._finish(task, FINAL_STATUS[status], engine)

    def _lift_ended_bars(self, now):
        unbars = self._unbars
        while unbars and unbars[0][0] <= now:
            unbar_at, _, task = heapq.heappop(unbars)
            if task.state is WAITING and task.unbar_at == unbar_at:
                self._lift_bars(task)

    def _legacy_deadlines(self):
        """The clock values at which ``expire()`` has TaskClient work (bars ending, idle timeout)."""
        unbars = self._unbars
        while unbars:
            unbar_at, _, task = unbars[0]
            if task.state is WAITING and task.unbar_at == unbar_at:
                yield unbar_at
                break
            heapq.heappop(unbars)
        if self._idling():
            yield self._activity + self.idle_timeout

    def _check_idle(self):
        """Fail the refused tasks if every engine has idled for ``idle_timeout`` seconds."""
        if not self._idling() or self.clock() < self._activity + self.idle_timeout:
            return
        for task in list(self._refused):
            # all of them are waiting: no task is on an engine
            self._fail(task, "TaskTimeout", f"task {task.legacy_id} failed to execute due to unmet "
                       f"dependencies for {self.idle_timeout:g} seconds")

    # -- helpers --------------------------------------------------------------------------------

    def _requeue(self, task, avoid):
        """Wait again, going to an engine other than ``avoid`` if one has room."""
        task.engine = None
        self._wait(task)
        had_room = avoid in self._room
        self._room.discard(avoid)
        self._settle(task)
        if had_room:
            # if no other engine had room, the caller's _fill gives the task back to ``avoid``
            self._room.add(avoid)

    def _refuse(self, task, engine):
        task.tried = task.tried | {engine}
        task.engine = None
        task.unbar_at = self.clock() + self.refusal_penalty
        heapq.heappush(self._unbars, (task.unbar_at, next(self._seqs), task))
        self._refused[task] = None
        self._wait(task)
        self._settle(task)

    def _lift_bars(self, task):
        task.tried = frozenset()
        task.unbar_at = None
        self._roaming.pop(task, None)
        self._settle(task)

    def _idling(self):
        """Whether refused TaskClient tasks wait while every (registered) engine idles."""
        return bool(self._refused) and bool(self._engines) and len(self._tasks) == self._waiting
