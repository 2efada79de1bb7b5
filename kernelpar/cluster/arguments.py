"""What ``Cluster`` and ``ipcluster`` accept as engine counts and durations.

Each check returns the value to use, or raises a TypeError or ValueError that names the
argument, so a bad value fails where it is given rather than in a launcher later.
"""

import os


def engine_count(n):
    """``n`` if it is a number of engines, else a TypeError or ValueError naming it."""
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"the number of engines n must be an int, not {n!r}")
    if n < 0:
        raise ValueError(f"the number of engines n must be >= 0, not {n}")
    return n


def seconds(name, value):
    """``value`` as a float of seconds, else a TypeError or ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, not {value!r}")
    if value < 0:
        raise ValueError(f"{name} must be >= 0, not {value}")
    return float(value)


def cpu_count():
    """The CPUs this process may run on: the default number of engines."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
