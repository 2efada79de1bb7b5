"""A scheduler and its engines driven by hand, for the scheduler's unit tests: a fake clock,
a ``Cluster`` that submits and finishes tasks and records the decisions, a ``brief`` form
of decisions for assertions, dependency specs (``dep``) and a stubbed random source.
"""

import random
from collections import Counter

from kernelpar.controller.scheduler import Assign, Deliver, Fail, Task, TaskScheduler


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class Cluster:
    """A scheduler and everything it decided, checked as it goes.

    Every decision is checked against the rules that hold whatever happens: an engine
    is registered when it gets a task and never gets the same task twice, a task ends
    (Deliver or Fail) at most once and is not assigned after that, and the scheduler's
    counts of waiting and outstanding tasks agree with what it decided.
    """

    def __init__(self, engines=("A", "B"), **kwargs):
        self.clock = FakeClock()
        kwargs.setdefault("rng", random.Random(0))
        self.sched = TaskScheduler(clock=self.clock, **kwargs)
        self.ends = Counter()
        self.ran_on = {}
        self.on = {}  # msg_id -> engine it is on now
        self.submitted = 0
        for engine in engines:
            self.add(engine)

    def _check(self, decisions):
        for d in decisions:
            msg_id = d.task.msg_id
            assert self.ends[msg_id] == 0, f"{d} after the task ended"
            if isinstance(d, Assign):
                assert d.engine in self.sched.engines
                assert d.engine not in self.ran_on.setdefault(msg_id, []), f"{d} twice"
                self.ran_on[msg_id].append(d.engine)
                self.on[msg_id] = d.engine
            else:
                self.ends[msg_id] += 1
                self.on.pop(msg_id, None)
        assert self.sched.waiting == self.submitted - sum(self.ends.values()) - len(self.on)
        for engine in self.sched.engines:
            assert sorted(self.sched.outstanding_ids(engine)) == sorted(
                m for m, e in self.on.items() if e == engine)
        self.last = decisions
        return brief(decisions)

    def submit(self, msg_id, **kwargs):
        self.submitted += 1
        return self._check(self.sched.submit(Task(msg_id, payload=None, **kwargs)))

    def finish(self, msg_id, status="ok"):
        engine = self.on.pop(msg_id)
        return self._check(self.sched.finished(msg_id, engine, status))

    def add(self, engine):
        return self._check(self.sched.add_engine(engine))

    def remove(self, engine):
        lost = [m for m, e in self.on.items() if e == engine]
        for msg_id in lost:
            del self.on[msg_id]
        return self._check(self.sched.remove_engine(engine))

    def note(self, msg_id, status, engine):
        return self._check(self.sched.note_outcome(msg_id, status, engine))

    def abort(self, msg_ids=None):
        return self._check(self.sched.abort(msg_ids))

    def expire(self):
        return self._check(self.sched.expire())

    def run_all(self):
        """Answer "ok" for every task on an engine until none is left."""
        while self.on:
            self.finish(next(iter(self.on)))


def brief(decisions):
    out = []
    for d in decisions:
        if isinstance(d, Assign):
            out.append(("assign", d.task.msg_id, d.engine))
        elif isinstance(d, Deliver):
            out.append(("deliver", d.task.msg_id, d.engine))
        else:
            assert isinstance(d, Fail)
            out.append(("fail", d.task.msg_id, d.ename))
    return out


def dep(*ids, all=True, success=True, failure=False):
    return {"dependencies": list(ids), "all": all, "success": success, "failure": failure}


class StubRandom:
    """Returns the queued numbers from randrange/choices, to pin down a scheme's choice."""

    def __init__(self, *draws):
        self.draws = list(draws)

    def randrange(self, n):
        return self.draws.pop(0)

    def choices(self, population, weights, k):
        return [self.draws.pop(0) for _ in range(k)]
