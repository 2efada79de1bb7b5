"""Placement schemes: which of the engines able to take a task gets it (pure functions).

The task scheduler (``scheduler.py``) calls ``choose(engines, loads, rng)`` only when
there is a real choice: ``engines`` are the uuids of the engines that may run the task
and have room for it, least recently used first (an engine that never had a task counts
as the least recently used of all); ``loads`` are their outstanding task counts in the
same order; ``rng`` is a ``random.Random``.  A scheme returns one of ``engines``.

These are the load-balancing schemes of ipyparallel's Python scheduler, selected by
name (``TaskScheduler.scheme_name`` there, ``TaskScheduler(scheme=...)`` here).  The C
``pure`` queue is not one of them: it has no Python choice to make.
"""


def leastload(engines, loads, rng):
    """The engine with the fewest outstanding tasks; ties go to the least recently used."""
    return engines[loads.index(min(loads))]


def lru(engines, loads, rng):
    """The least recently used engine, whatever its load."""
    return engines[0]


def plainrandom(engines, loads, rng):
    """Any engine, uniformly at random."""
    return engines[rng.randrange(len(engines))]


def twobin(engines, loads, rng):
    """Two engines drawn at random; the less recently used of the two.

    Close to ``lru`` in effect, without every task going to the same engine when
    several become free at once.
    """
    n = len(engines)
    return engines[min(rng.randrange(n), rng.randrange(n))]


def weighted(engines, loads, rng):
    """Two engines drawn at random, weighted by inverse load; the less loaded of the two.

    The tiny constant makes an idle engine a million times likelier than one with a
    single task, rather than dividing by zero.
    """
    weights = [1.0 / (1e-6 + load) for load in loads]
    first, second = rng.choices(range(len(engines)), weights=weights, k=2)
    return engines[second if loads[second] < loads[first] else first]


SCHEMES = {
    "leastload": leastload,
    "lru": lru,
    "plainrandom": plainrandom,
    "twobin": twobin,
    "weighted": weighted,
}
