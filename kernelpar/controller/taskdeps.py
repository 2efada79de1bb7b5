"""Task dependencies: what each task waits for, and how far that has come (pure, no I/O).

A load-balanced task may name other tasks it depends on, in the form the client's
``Dependency.as_dict()`` sends: ``{"dependencies": [msg_ids], "all": bool,
"success": bool, "failure": bool}``.  ``after`` is a time dependency (start only once
those tasks have finished the right way); ``follow`` is also a location dependency (start
on an engine where they ran).

The scheduler (``scheduler.py``) gives each submitted task to a
:class:`DependencyIndex`, which builds one :class:`Requirement` per dependency and
files the task under each msg_id it still waits for.  When a task finishes, the
scheduler announces it, and the index hands the outcome to the requirements that name
it, and to no others; a requirement only counts, so each outcome costs O(1) whatever
the size of the dependency.  The index then gives back the tasks whose requirements
moved, for the scheduler to settle.  Which engines are alive, and what a task may do
about it, is the scheduler's business, not this module's.
"""

from collections import deque

MET = "met"
PENDING = "pending"
IMPOSSIBLE = "impossible"


class InvalidDependencySpec(ValueError):
    """The dependency is not in ``Dependency.as_dict()`` form (the client never sends this)."""


def parse_dependency(spec):
    """The ``(msg_ids, require_all, success, failure)`` of an ``as_dict()`` dependency.

    ``None`` or an empty list of msg_ids gives ``None``: no dependency at all, which is
    what a client sends for a task without flags.
    """
    if spec is None:
        return None
    if not isinstance(spec, dict):
        raise InvalidDependencySpec(f"a dependency must be a dict, not {type(spec).__name__}")
    ids = spec.get("dependencies", ())
    if not isinstance(ids, (list, tuple, set, frozenset)) or not all(
            isinstance(i, str) for i in ids):
        raise InvalidDependencySpec("a dependency's 'dependencies' must be a list of msg_ids")
    if not ids:
        return None
    success = bool(spec.get("success", True))
    failure = bool(spec.get("failure", False))
    if not (success or failure):
        raise InvalidDependencySpec("a dependency must be met by successes, failures, or both")
    return frozenset(ids), bool(spec.get("all", True)), success, failure


class Requirement:
    """One dependency of one task, and what the finished tasks it names have shown so far.

    ``resolve()`` is called once for each named task as it finishes.  The ``verdict``
    is ``MET``, ``PENDING`` or ``IMPOSSIBLE``; it never goes back from ``MET`` or
    ``IMPOSSIBLE``.  A task *counts* when its outcome is one this dependency accepts
    (``"ok"`` if ``success``, ``"error"`` if ``failure``).

    For a location dependency (``locates=True``) a task counts only if it ran on an
    engine (one failed by the scheduler before it ran, say ``TaskTimeout``, ran nowhere,
    so nothing can follow it), and ``location`` is the set of engines the counting
    tasks ran on: with ``require_all`` they must all be one engine (two engines make it
    impossible at once, without waiting for the rest); without, any one of them will do,
    and the set can grow while named tasks are unfinished.
    """

    __slots__ = (
        "counted",
        "failure",
        "ids",
        "locates",
        "location",
        "missed",
        "require_all",
        "success",
        "unresolved",
    )

    def __init__(self, ids, require_all, success, failure, locates):
        self.ids = ids
        self.require_all = require_all
        self.success = success
        self.failure = failure
        self.locates = locates
        self.unresolved = len(ids)
        self.counted = 0
        self.missed = 0
        #: engines where counting tasks ran; ``None`` until one has
        self.location = None

    @property
    def verdict(self):
        if self.require_all:
            if self.missed or (self.location is not None and len(self.location) > 1):
                return IMPOSSIBLE
            return MET if not self.unresolved else PENDING
        if self.counted:
            return MET
        return IMPOSSIBLE if not self.unresolved else PENDING

    @property
    def may_grow(self):
        """Whether a met location dependency may still name more engines."""
        return not self.require_all and self.unresolved > 0

    def resolve(self, status, engine):
        """A named task finished with ``status`` ("ok"/"error") on ``engine`` (or None).

        Returns whether this changed anything the scheduler acts on: the verdict, the
        engines a location dependency allows, or whether those may still grow.
        """
        before = self._progress()
        self.unresolved -= 1
        counts = self.success if status == "ok" else self.failure
        if counts and self.locates and engine is None:
            counts = False
        if counts:
            self.counted += 1
            if self.locates:
                self.location = ({engine} if self.location is None
                                 else self.location | {engine})
        else:
            self.missed += 1
        return self._progress() != before

    def _progress(self):
        return self.verdict, self.location, self.locates and self.may_grow

    def why_impossible(self, kind):
        """A sentence saying why this ``kind`` ("after"/"follow") dependency cannot be met."""
        if self.locates and self.require_all and self.location and len(self.location) > 1:
            return f"the tasks it must follow ran on different engines {sorted(self.location)}"
        wanted = " or ".join(w for w, on in (("succeed", self.success), ("fail", self.failure))
                             if on)
        how_many = "all of" if self.require_all else "any of"
        return f"its {kind} dependency needs {how_many} {sorted(self.ids)} to {wanted}, " \
               f"and that can no longer happen"


def unknown_problem(ids):
    """Why a task naming ``ids`` cannot be scheduled: nobody has heard of them."""
    return (f"depends on tasks unknown to the cluster: {sorted(ids)} (or finished so long ago that "
            "neither the scheduler nor the task records remember them: see --sqlitedb)")


class DependencyIndex:
    """The tasks waiting for each unfinished msg_id, and the outcomes not yet passed on.

    It uses these attributes of a task: ``msg_id``, ``after`` and ``follow`` (the
    ``as_dict()`` forms), and sets ``after_req``, ``follow_req`` (a
    :class:`Requirement` or ``None``), ``awaited`` (the msg_ids it is filed under) and
    ``unknown_deps`` (those of them nobody knew of).
    """

    def __init__(self):
        self._waiters = {}  # msg_id -> {task: None}, in the order the tasks were filed
        self._news = deque()  # (msg_id, status, engine, waiters) not yet passed on

    def awaits(self, msg_id):
        return msg_id in self._waiters

    def attach(self, task, outcome_of):
        """Build ``task``'s requirements and file it; what is wrong with them, or ``None``.

        ``outcome_of(msg_id)`` is ``None`` for a msg_id unknown to the cluster,
        ``"pending"``, or ``(status, engine)`` for a finished task.  A task with
        something wrong is neither given requirements nor filed.  Unknown msg_ids are
        filed as pending and named in ``task.unknown_deps``: the hub may not have read
        yet about a direct task sent just before (the scheduler gives them a grace).
        """
        try:
            after = parse_dependency(task.after)
            follow = parse_dependency(task.follow)
        except InvalidDependencySpec as e:
            return f"has an invalid dependency: {e}"
        if after is None and follow is None:
            return None
        ids = (after[0] if after else frozenset()) | (follow[0] if follow else frozenset())
        if task.msg_id in ids:
            return "depends on itself"
        outcomes = {i: outcome_of(i) for i in ids}
        task.unknown_deps = frozenset(i for i, outcome in outcomes.items() if outcome is None)
        if after:
            task.after_req = Requirement(*after, locates=False)
        if follow:
            task.follow_req = Requirement(*follow, locates=True)
        task.awaited = set()
        for dep_id, outcome in outcomes.items():
            if outcome is None or outcome == "pending":
                task.awaited.add(dep_id)
                self._waiters.setdefault(dep_id, {})[task] = None
            else:
                for req in (task.after_req, task.follow_req):
                    if req is not None and dep_id in req.ids:
                        req.resolve(*outcome)
        return None

    def detach(self, task):
        """Forget a task that is over, wherever it is still filed."""
        for dep_id in task.awaited:
            waiters = self._waiters.get(dep_id)
            if waiters is not None:
                waiters.pop(task, None)
                if not waiters:
                    del self._waiters[dep_id]

    def announce(self, msg_id, status, engine):
        """``msg_id`` finished with ``status`` ("ok"/"error") on ``engine`` (or None)."""
        waiters = self._waiters.pop(msg_id, None)
        if waiters:
            self._news.append((msg_id, status, engine, waiters))

    def woken(self):
        """Yield each task whose requirements moved, as the announcements are passed on.

        Announcements made while iterating are passed on in the same iteration, so
        consequences of consequences need no recursion.  A task announced over (and
        detached) after its announcement was queued may still be yielded: the caller
        skips tasks that are over.
        """
        while self._news:
            msg_id, status, engine, waiters = self._news.popleft()
            for task in waiters:
                task.awaited.discard(msg_id)
                changed = False
                for req in (task.after_req, task.follow_req):
                    if req is not None and msg_id in req.ids:
                        changed = req.resolve(status, engine) or changed
                if changed:
                    yield task
