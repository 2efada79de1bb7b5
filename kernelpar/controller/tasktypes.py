"""What the task scheduler and its edge exchange: :class:`Task` and the decisions.

The edge (:mod:`.taskqueue`) wraps each load-balanced request in a :class:`Task` and
hands it to the :class:`~.scheduler.TaskScheduler`, whose every answer is a list of
:class:`Assign`, :class:`Fail` and :class:`Deliver` decisions for the edge to carry out.
"""

from dataclasses import dataclass, field

from .taskdeps import Requirement

WAITING = "waiting"
ASSIGNED = "assigned"
DONE = "done"


@dataclass(eq=False, slots=True)
class Task:
    """One load-balanced request, as the scheduler sees it.

    The edge fills in the first nine fields; the rest is the scheduler's bookkeeping,
    which the edge may read but never writes: ``state`` (``None`` until submitted, then
    ``"waiting"``, ``"assigned"`` or ``"done"``), ``engine`` (the engine it is on;
    ``None`` while waiting; once done, the engine that answered it or, for
    ``EngineError``, died with it) and ``tried`` (the engines it may not go to again).  ``targets`` may be any
    iterable of engine uuids; the scheduler makes it a frozenset, or ``None`` when
    empty (no restriction, as in ipyparallel).
    """

    msg_id: str
    payload: object
    targets: frozenset | None = None
    after: dict | None = None
    follow: dict | None = None
    timeout: float = 0.0
    retries: int = 0
    #: a TaskClient task's id: 0.10's rules apply (see :mod:`.legacyrules`)
    legacy_id: int | None = None
    #: recovery stages of a TaskClient task, ``(payload, retries)`` each, tried in order
    fallbacks: tuple = ()

    state: str | None = field(default=None, init=False)
    engine: str | None = field(default=None, init=False)
    tried: frozenset = field(default=frozenset(), init=False)
    retries_left: int = field(default=0, init=False, repr=False)
    seq: int = field(default=0, init=False, repr=False)
    ticket: int = field(default=0, init=False, repr=False)
    deadline: float | None = field(default=None, init=False, repr=False)
    after_req: Requirement | None = field(default=None, init=False, repr=False)
    follow_req: Requirement | None = field(default=None, init=False, repr=False)
    awaited: set | frozenset = field(default=frozenset(), init=False, repr=False)
    #: msg_ids it names that nobody knew of at submission (checked again after a grace)
    unknown_deps: frozenset = field(default=frozenset(), init=False, repr=False)
    pins: frozenset = field(default=frozenset(), init=False, repr=False)
    #: recovery stages used so far
    stage: int = field(default=0, init=False, repr=False)
    #: when the engines that refused it may have it again (TaskClient tasks)
    unbar_at: float | None = field(default=None, init=False, repr=False)
    #: its reply is to be replaced by TaskAborted (:meth:`TaskScheduler.discard_result`)
    discard: bool = field(default=False, init=False, repr=False)


@dataclass(slots=True)
class Assign:
    """Send ``task`` to ``engine``."""

    task: Task
    engine: str


@dataclass(slots=True)
class Fail:
    """Answer ``task``'s client with an error of class ``ename``: the task is over.

    ``task.engine`` is the engine that died for ``EngineError``, else ``None``.
    """

    task: Task
    ename: str
    evalue: str


@dataclass(slots=True)
class Deliver:
    """Forward the reply ``engine`` just sent for ``task`` to the client: the task is over."""

    task: Task
    engine: str


#: a reply's status -> the outcome its dependents see: an aborted task did not succeed
FINAL_STATUS = {"ok": "ok", "error": "error", "aborted": "error"}
