"""The load-balanced task scheduler: where and when each task runs (pure, no I/O).

The controller's edge receives load-balanced requests, wraps each in a :class:`Task`,
and tells a :class:`TaskScheduler` what happens: a task was submitted, an engine came
or went, a reply arrived, the clock passed a deadline.  Every such call returns a list
of decisions, :class:`Assign`, :class:`Fail` and :class:`Deliver`, which the edge
carries out in order by sending frames.  The scheduler never sees a frame or a socket,
so all of it is tested with plain objects, a fake clock and a seeded random.


Theory of operation
-------------------

Each task is in one of three states:

* ``waiting``: in the scheduler, not on any engine.  A waiting task is either
  *blocked* (an ``after`` or ``follow`` dependency names tasks that have not finished
  yet) or *ready* (it only needs an engine with room: fewer than ``hwm`` tasks
  outstanding, or any engine when ``hwm`` is 0);
* ``assigned``: sent to exactly one engine, whose reply is awaited;
* ``done``: a :class:`Deliver` or :class:`Fail` went out for it.  Nothing happens to a
  task after that, so no task is answered twice.

A task goes from waiting to assigned and back (an error with ``retries`` left, an
``UnmetDependency`` raised on the engine, the engine's death), each time adding the
engine to the task's ``tried`` set, which rules that engine out for good.  It ends
with the engine's reply (:class:`Deliver`), or with a :class:`Fail` the moment the
scheduler can prove it will never run (:class:`Fail` ``ImpossibleDependency``), or at
the edge's request (timeout, abort).

The rule that makes this cheap: *a waiting ready task is never one that an engine with
room could take.*  Every call restores it before returning.  So a task that becomes
ready takes an engine with room at once if one may run it (the scheme picks which),
and otherwise queues; and an engine that gains room (a reply came, it registered)
takes the oldest queued task it may run, without asking the scheme, since no other
engine with room could have taken that task.  Ready tasks queue in one of two places:

* the *open queue*, for tasks any engine may run (no ``targets``, no ``follow``,
  nothing tried yet): the common case, one deque, O(1) per task;
* each engine's own queue, for tasks restricted to named engines (``targets``, a met
  ``follow``) or barred from some (``tried``).  Such a task is queued on every engine
  it may use, and the first of them to take it makes the other entries stale.

Stale entries are skipped when they reach the front of a queue (a ticket number on
each task tells current entries from old ones), so nothing is ever searched for.

Blocked tasks sit in an index from each unfinished msg_id they wait for to the tasks
waiting for it, so when a task finishes only its dependents are looked at, each
through a :class:`~.taskdeps.Requirement` that counts outcomes in O(1).  Finishing
may unblock tasks, or make some impossible, whose failure may make others impossible
in turn: these consequences go through a work list, not recursion, so a chain of
10,000 dependent tasks does not exhaust the stack.

When an engine goes away, its outstanding tasks are retried or failed, and only the
waiting tasks that might have needed that engine are checked again: those restricted
to named engines including it (an index from engine to task), and those barred from
all the other engines.  A task that can never run fails at once instead of waiting for
an engine that will not come back; only a task that may run anywhere and has not been
tried anywhere waits for engines to register.

TaskClient tasks (those with a ``legacy_id``) follow IPython 0.10's rules where they
differ: :mod:`.legacyrules` says which, and holds the methods that apply them.
"""

import heapq
import itertools
import random
import time
from collections import deque

from .legacyrules import TaskClientRules
from .schemes import SCHEMES
from .taskdeps import IMPOSSIBLE, MET, DependencyIndex, unknown_problem
from .tasktypes import ASSIGNED, DONE, FINAL_STATUS, WAITING, Assign, Deliver, Fail, Task

__all__ = ["ASSIGNED", "DONE", "WAITING", "Assign", "Deliver", "Fail", "Task", "TaskScheduler"]

# where a waiting task may run, as _assess() sees it
_OPEN = "open"  # any engine, now or registered later
_ROAMING = "roaming"  # any engine registered now or later except those it tried
_PINNED = "pinned"  # only the listed engines


class _Engine:
    __slots__ = ("queue", "stamp", "tasks", "uuid")

    def __init__(self, uuid, stamp):
        self.uuid = uuid
        #: msg_id -> Task outstanding on this engine, in the order they were assigned
        self.tasks = {}
        #: (seq, ticket, task) of ready tasks restricted to engines including this one
        self.queue = deque()
        #: when it last got a task; lower is less recently used
        self.stamp = stamp


class TaskScheduler(TaskClientRules):
    """Decides where and when load-balanced tasks run; see the module docstring."""

    #: how long a task may name msg_ids nobody knows of before it fails: the hub hears of
    #: a direct task from the queue monitor, which may lag behind a load-balanced task
    #: the client sent right after it
    unknown_dependency_grace = 2.0
    #: outcomes of finished tasks remembered here for dependencies (~180 bytes each);
    #: older ones are looked up with ``outcome_of`` (the hub's records)
    outcomes_kept = 20_000

    def __init__(self, scheme="leastload", hwm=1, clock=time.monotonic, rng=None,
                 outcome_of=None, idle_timeout=30.0):
        if scheme not in SCHEMES:
            raise ValueError(f"unknown scheme {scheme!r}: use one of {', '.join(SCHEMES)}")
        if hwm < 0:
            raise ValueError(f"hwm must be 0 (no limit) or more, not {hwm}")
        if idle_timeout <= 0:
            raise ValueError(f"idle_timeout must be a positive number of seconds, not {idle_timeout}")
        self.scheme = scheme
        self.hwm = hwm
        self._choose = SCHEMES[scheme]
        #: the scheduler's time; deadlines are values of it
        self.clock = clock
        self._rng = rng if rng is not None else random.Random()
        self._outcome_of = outcome_of if outcome_of is not None else (lambda msg_id: None)

        self._engines = {}  # uuid -> _Engine, registered engines only
        self._room = set()  # uuids of engines with fewer than hwm tasks outstanding
        self._tasks = {}  # msg_id -> Task not yet done
        self._outcomes = {}  # msg_id -> ("ok"|"error", engine or None) of the last tasks done here
        self._waiting = 0
        self._open = deque()  # (seq, ticket, task): ready tasks any engine may run
        self._roaming = {}  # queued tasks any engine may run but those in task.tried
        self._pinned = {}  # uuid -> {task: None} of tasks restricted to it (and maybe others)
        self._deps = DependencyIndex()
        self._deadlines = []  # heap of (deadline, n, task), stale once the task moved on
        self._unknown_checks = []  # heap of (when, n, task) for tasks with unknown_deps
        self._decisions = []
        self._seqs = itertools.count()
        self._uses = itertools.count()
        self._registrations = itertools.count(1)
        #: seconds TaskClient tasks that were refused may wait while every engine idles
        self.idle_timeout = idle_timeout
        self._refused = {}  # TaskClient tasks not done that some engine refused: {task: None}
        self._unbars = []  # heap of (unbar_at, n, task), stale once the task moved on
        self._activity = clock()  # the last event that restarts the idle timeout

    # -- read-only views ------------------------------------------------------------------

    @property
    def engines(self):
        """The uuids of the registered engines, in registration order."""
        return tuple(self._engines)

    @property
    def waiting(self):
        """How many tasks are in the scheduler and not on an engine."""
        return self._waiting

    def outstanding(self, engine):
        """How many tasks ``engine`` has been given and not answered."""
        eng = self._engines.get(engine)
        return len(eng.tasks) if eng is not None else 0

    def outstanding_ids(self, engine):
        """The msg_ids of those tasks, oldest first."""
        eng = self._engines.get(engine)
        return list(eng.tasks) if eng is not None else []

    def __contains__(self, msg_id):
        """Whether ``msg_id`` is a task submitted here and not yet answered."""
        return msg_id in self._tasks

    def task(self, msg_id):
        """The :class:`Task` submitted as ``msg_id`` if it is not yet answered, else None."""
        return self._tasks.get(msg_id)

    # -- events ---------------------------------------------------------------------------

    def add_engine(self, uuid):
        """A new engine registered; it takes waiting tasks at once."""
        if uuid in self._engines:
            return []
        # never used yet, so it is the least recently used of all
        eng = self._engines[uuid] = _Engine(uuid, -next(self._registrations))
        self._room.add(uuid)
        self._activity = self.clock()
        for task in self._roaming:
            if uuid not in task.tried:
                eng.queue.append((task.seq, task.ticket, task))
        self._fill(eng)
        return self._flush()

    def remove_engine(self, uuid):
        """An engine died or unregistered: retry or fail its tasks, and fail the waiting
        tasks that cannot run without it."""
        eng = self._engines.pop(uuid, None)
        if eng is None:
            return []
        self._room.discard(uuid)
        for task in eng.tasks.values():
            if task.legacy_id is not None:
                self._legacy_reply(task, uuid, "lost")
                continue
            task.tried = task.tried | {uuid}
            if task.retries_left > 0 and self._assess(task)[0] is None:
                task.engine = None
                task.retries_left -= 1
                self._wait(task)
                self._settle(task)
            else:
                # task.engine still names the engine, for the error reply
                self._fail(task, "EngineError",
                           f"Engine {uuid!r} died while running task {task.msg_id!r}")
        at_risk = list(self._pinned.pop(uuid, ())) + list(self._roaming)
        for task in at_risk:
            if task.state is WAITING:
                reason, _, _ = self._assess(task)
                if reason is not None:
                    self._fail_impossible(task, reason)
        self._propagate()
        return self._flush()

    def submit(self, task):
        """A new task: assign it, fail it, or keep it waiting."""
        msg_id = task.msg_id
        if msg_id in self._tasks or msg_id in self._outcomes:
            raise ValueError(f"task {msg_id!r} was already submitted")
        task.targets = frozenset(task.targets) if task.targets else None
        task.retries_left = max(0, task.retries)
        task.seq = next(self._seqs)
        self._tasks[msg_id] = task
        self._activity = self.clock()
        self._wait(task)
        problem = self._deps.attach(task, self._outcome)
        if problem is not None:
            self._fail(task, "InvalidDependency", f"Task {msg_id!r} {problem}")
        else:
            if task.unknown_deps:
                heapq.heappush(self._unknown_checks,
                               (self.clock() + self.unknown_dependency_grace, next(self._seqs), task))
            self._settle(task)
        self._propagate()
        return self._flush()

    def finished(self, msg_id, engine, status):
        """``engine`` replied to ``msg_id`` with ``status`` "ok", "error", "unmet", "aborted".

        A reply the scheduler no longer expects (the task was failed or moved on when
        its engine was removed) returns ``[]``: the edge must drop it.
        """
        if status != "unmet" and status not in FINAL_STATUS:
            raise ValueError(f"unknown task status {status!r}")
        task = self._tasks.get(msg_id)
        if task is None or task.state is not ASSIGNED or task.engine != engine:
            return []
        eng = self._engines[engine]
        del eng.tasks[msg_id]
        self._room.add(engine)
        if task.legacy_id is not None:
            self._legacy_reply(task, engine, status)
            self._fill(eng)
            self._propagate()
            self._check_idle()
            return self._flush()
        task.tried = task.tried | {engine}
        if status == "unmet":
            task.engine = None
            self._wait(task)
            self._settle(task)
        elif status == "error" and task.retries_left > 0 and self._assess(task)[0] is None:
            task.engine = None
            task.retries_left -= 1
            self._wait(task)
            self._settle(task)
        else:
            task.state = DONE
            self._decisions.append(Deliver(task, engine))
            self._finish(task, FINAL_STATUS[status], engine)
        self._fill(eng)
        self._propagate()
        return self._flush()

    def awaits(self, msg_id):
        """Whether a waiting task depends on ``msg_id`` (so its outcome is worth decoding)."""
        return self._deps.awaits(msg_id)

    def waiting_ids(self):
        """The msg_ids of the tasks in the scheduler and not on an engine."""
        return [msg_id for msg_id, task in self._tasks.items() if task.state == WAITING]

    def note_outcome(self, msg_id, status, engine):
        """A task not scheduled here (e.g. a direct one) finished; wake its dependents.

        ``status`` "ok" is a success, anything else a failure.  The hub's answer from
        ``outcome_of`` must already say so, for tasks submitted after this call.
        """
        if msg_id not in self._tasks and msg_id not in self._outcomes:
            self._deps.announce(msg_id, "ok" if status == "ok" else "error", engine)
            self._propagate()
        return self._flush()

    def abort(self, msg_ids=None):
        """Fail the given waiting tasks (all, for ``None``) with ``TaskAborted``.

        Assigned tasks are left alone: aborting them is the engine's business.
        """
        if msg_ids is None:
            victims = [t for t in self._tasks.values() if t.state is WAITING]
        else:
            victims = [t for t in map(self._tasks.get, msg_ids)
                       if t is not None and t.state is WAITING]
        # all fail before any consequence is drawn, so none is assigned on the way
        for task in victims:
            if task.state is WAITING:
                self._fail(task, "TaskAborted",
                           f"Task {task.msg_id!r} was aborted before it reached an engine")
        self._propagate()
        return self._flush()

    def expire(self):
        """Fail with ``TaskTimeout`` the tasks that have waited past their timeout (and
        TaskClient tasks refused while engines idled too long); lift refusal bars that ended."""
        now = self.clock()
        self._check_idle()
        self._lift_ended_bars(now)
        heap = self._deadlines
        expired = []
        while heap and heap[0][0] <= now:
            deadline, _, task = heapq.heappop(heap)
            if task.state is WAITING and task.deadline == deadline:
                expired.append(task)
        for task in expired:
            if task.state is WAITING:
                self._fail(task, "TaskTimeout", f"Task {task.msg_id!r} waited more than "
                           f"{task.timeout:g} s for an engine")
        checks = self._unknown_checks
        while checks and checks[0][0] <= now:
            task = heapq.heappop(checks)[2]
            if task.state is WAITING:
                unknown = [i for i in task.unknown_deps if self._outcome(i) is None]
                if unknown:
                    self._fail(task, "InvalidDependency", f"Task {task.msg_id!r} {unknown_problem(unknown)}")
        self._propagate()
        return self._flush()

    def next_deadline(self):
        """The clock value at which ``expire()`` next has work, or ``None``."""
        due = []
        heap = self._deadlines
        while heap:
            deadline, _, task = heap[0]
            if task.state is WAITING and task.deadline == deadline:
                due.append(deadline)
                break
            heapq.heappop(heap)
        checks = self._unknown_checks
        while checks and checks[0][2].state is not WAITING:
            heapq.heappop(checks)
        if checks:
            due.append(checks[0][0])
        due.extend(self._legacy_deadlines())
        return min(due) if due else None

    # -- dependencies ---------------------------------------------------------------------

    def _outcome(self, msg_id):
        if msg_id in self._outcomes:
            return self._outcomes[msg_id]
        if msg_id in self._tasks:
            return "pending"
        return self._outcome_of(msg_id)

    def _propagate(self):
        """Settle the waiting tasks whose dependencies moved, and those that moves in turn."""
        for task in self._deps.woken():
            if task.state is WAITING:
                self._settle(task)

    # -- placement ------------------------------------------------------------------------

    def _assess(self, task):
        """``(reason, scope, engines)`` for a waiting task: why it can never run (or None),
        and the registered engines it may use now (``engines`` is None for ``_OPEN``)."""
        for kind, req in (("after", task.after_req), ("follow", task.follow_req)):
            if req is not None and req.verdict is IMPOSSIBLE:
                return req.why_impossible(kind), None, None
        follow = task.follow_req
        location = follow.location if follow is not None else None
        if task.targets is None and location is None:
            if not task.tried:
                return None, _OPEN, None
            engines = [e for e in self._engines if e not in task.tried]
            if not engines and task.legacy_id is None:
                return ("every engine left has already tried it "
                        f"({sorted(task.tried)})"), None, None
            return None, _ROAMING, engines
        if location is None:
            allowed = task.targets
        else:
            allowed = location if task.targets is None else task.targets & location
        engines = [e for e in allowed if e in self._engines and e not in task.tried]
        # a met `follow` with unfinished tasks left may still name new engines
        if not engines and not (location is not None and follow.may_grow):
            return (f"it may only run on engines {sorted(allowed)}, and none of them is "
                    "left" + (" that has not already tried it" if task.tried else "")), None, None
        return None, _PINNED, engines

    def _settle(self, task):
        """Fail, keep blocked, assign or queue a waiting task, as it now stands."""
        reason, scope, engines = self._assess(task)
        if reason is not None:
            self._fail_impossible(task, reason)
            return
        if scope is _PINNED:
            self._pin(task, engines)
        if ((task.after_req is not None and task.after_req.verdict is not MET)
                or (task.follow_req is not None and task.follow_req.verdict is not MET)):
            return
        if scope is _OPEN:
            room = self._room
        else:
            room = [e for e in engines if e in self._room]
        if room:
            self._assign(task, next(iter(room)) if len(room) == 1 else self._pick(room))
            return
        task.ticket += 1  # entries from an earlier settle are stale now
        entry = (task.seq, task.ticket, task)
        if scope is _OPEN:
            self._open.append(entry)
            return
        for e in engines:
            self._engines[e].queue.append(entry)
        if scope is _ROAMING:
            self._roaming[task] = None

    def _pick(self, room):
        ranked = sorted(room, key=lambda e: self._engines[e].stamp)
        loads = [len(self._engines[e].tasks) for e in ranked]
        return self._choose(ranked, loads, self._rng)

    def _pin(self, task, engines):
        new = [e for e in engines if e not in task.pins]
        for e in new:
            self._pinned.setdefault(e, {})[task] = None
        if new:
            task.pins = task.pins.union(new)

    def _fill(self, eng):
        """Give ``eng`` queued tasks while it has room, oldest first."""
        own, shared = eng.queue, self._open
        while eng.uuid in self._room:
            while own and not _current(own[0]):
                own.popleft()
            while shared and not _current(shared[0]):
                shared.popleft()
            if own and (not shared or own[0][0] < shared[0][0]):
                task = own.popleft()[2]
            elif shared:
                task = shared.popleft()[2]
            else:
                return
            self._assign(task, eng.uuid)

    # -- state changes --------------------------------------------------------------------

    def _wait(self, task):
        task.state = WAITING
        self._waiting += 1
        if task.timeout > 0:
            # each wait gets the whole timeout, as in ipyparallel: a retry is not
            # failed for the time its first attempt spent running
            task.deadline = self.clock() + task.timeout
            heapq.heappush(self._deadlines, (task.deadline, next(self._seqs), task))

    def _assign(self, task, engine):
        eng = self._engines[engine]
        task.state = ASSIGNED
        task.engine = engine
        task.ticket += 1
        self._waiting -= 1
        self._roaming.pop(task, None)
        eng.tasks[task.msg_id] = task
        eng.stamp = next(self._uses)
        if self.hwm and len(eng.tasks) >= self.hwm:
            self._room.discard(engine)
        self._decisions.append(Assign(task, engine))

    def _fail_impossible(self, task, reason):
        self._fail(task, "ImpossibleDependency", f"Task {task.msg_id!r} can never run: {reason}")

    def _fail(self, task, ename, evalue):
        """End a task that is not on an engine (any more) with an error.

        Its outcome names no engine: nothing can ``follow`` a task that never
        finished on one.
        """
        if task.state is WAITING:
            self._waiting -= 1
        task.state = DONE
        self._decisions.append(Fail(task, ename, evalue))
        self._finish(task, "error", None)

    def _finish(self, task, status, engine):
        """Forget a done task but for its outcome, and pass that on to its dependents."""
        msg_id = task.msg_id
        del self._tasks[msg_id]
        outcomes = self._outcomes
        outcomes[msg_id] = (status, engine)
        if len(outcomes) > self.outcomes_kept:
            # bounded memory: older outcomes are the hub's records' business (outcome_of)
            del outcomes[next(iter(outcomes))]
        self._roaming.pop(task, None)
        self._refused.pop(task, None)
        self._deps.detach(task)
        for e in task.pins:
            pinned = self._pinned.get(e)
            if pinned is not None:
                pinned.pop(task, None)
                if not pinned:
                    del self._pinned[e]
        self._deps.announce(msg_id, status, engine)

    def _flush(self):
        decisions, self._decisions = self._decisions, []
        return decisions


def _current(entry):
    """Whether a queue entry still stands for a waiting task (not one since moved on)."""
    _, ticket, task = entry
    return task.state is WAITING and task.ticket == ticket
