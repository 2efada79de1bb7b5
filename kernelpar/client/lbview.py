"""``LoadBalancedView``: tasks placed on engines by the controller's scheduler.

``rc.load_balanced_view(targets=None, **flags)``.  Each call is one task (``apply``
never wraps its result in a list); ``map`` sends one task per ``chunksize`` elements;
``imap`` consumes its input lazily, keeping at most ``max_outstanding`` tasks in
flight.  Scheduling flags travel in each request's metadata, where the controller's
:mod:`~kernelpar.controller.taskqueue` reads them:

* ``after`` / ``follow``: time and location dependencies (msg_ids, AsyncResults or a
  :class:`~.dependency.Dependency`);
* ``timeout``: seconds the task may wait for its dependencies or an engine
  (``TaskTimeout`` after that; 0 = no limit);
* ``retries``: resubmissions to *other* engines after a failure or an engine's death;
* ``targets``: the engines allowed (ids; None = any).

Bad flag values raise ``TypeError``/``ValueError`` when set.  With the controller's
``pure`` scheme (a C queue) no flag can be honoured: setting one and sending raises
``RuntimeError``, and once an engine has unregistered the client refuses new tasks
("Task farming is disabled"), since a pure queue cannot tell which tasks it lost.
"""

import numbers
import threading
from collections import deque

from ..wire.serialize import pickled_once
from . import partition
from .asyncresult import AsyncMapResult
from .dependency import as_dependency_dict
from .enginefuncs import map_chunk
from .remotefunction import getname
from .view import View


def _non_negative(name, kind, what, convert):
    """A validator for a flag that is None (meaning 0) or a non-negative ``kind``."""

    def validate(value):
        if value is None:
            return convert(0)
        if isinstance(value, bool) or not isinstance(value, kind):
            raise TypeError(f"{name} must be {what}, not {type(value).__name__}")
        if value < 0:
            raise ValueError(f"{name} must be >= 0, not {value!r}")
        return convert(value)

    return validate


def _validate_targets(value):
    if value is None or (isinstance(value, str) and value == "all"):
        return None
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return [int(value)]
    if isinstance(value, (list, tuple, range, set)):
        ids = list(value)
        if not all(isinstance(i, numbers.Integral) and not isinstance(i, bool) for i in ids):
            raise TypeError(f"targets must be engine ids (ints), not {value!r}")
        return [int(i) for i in ids]
    raise TypeError(f"targets must be None, 'all', an int, a slice or a list of ints, not {value!r}")


_VALIDATORS = {
    "after": as_dependency_dict,
    "follow": as_dependency_dict,
    "timeout": _non_negative("timeout", numbers.Real, "a number of seconds", float),
    "retries": _non_negative("retries", numbers.Integral, "an int", int),
    "targets": _validate_targets,
}


class LoadBalancedView(View):
    flags = View.flags + ("after", "follow", "timeout", "retries")

    def __init__(self, client, targets=None, block=None, track=False, label=None, **flags):
        self._flags = {"after": None, "follow": None, "timeout": 0.0, "retries": 0, "targets": None}
        View.__init__(self, client, targets, block, track, label)
        self.set_flags(**flags)

    # flags with validation: ``view.retries = -1`` raises just as set_flags does
    def __setattr__(self, name, value):
        if name == "targets" and isinstance(value, slice):
            value = self.client.ids[value]  # the engines there are now, as rc[a:b] picks them
        if name in _VALIDATORS:
            self._flags[name] = _VALIDATORS[name](value)
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name):
        flags = self.__dict__.get("_flags")
        if flags is not None and name in flags:
            return flags[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __len__(self):
        targets = self._flags["targets"]
        return len(self.client.ids) if targets is None else len(targets)

    def __repr__(self):
        return f"<LoadBalancedView {'None' if self._flags['targets'] is None else self._flags['targets']}>"

    # -- requests --------------------------------------------------------------------

    def _scheduling_metadata(self):
        """The flags as the scheduler reads them (only those that differ from the defaults)."""
        flags = self._flags
        metadata = {}
        for name in ("after", "follow"):
            if flags[name] is not None:
                metadata[name] = flags[name]
        if flags["timeout"]:
            metadata["timeout"] = flags["timeout"]
        if flags["retries"]:
            metadata["retries"] = flags["retries"]
        if flags["targets"] is not None:
            engines = self.client._dispatcher.engines
            missing = [i for i in flags["targets"] if i not in engines]
            if missing:
                raise IndexError(f"No such engine: {missing[0]} (registered: {sorted(engines)})")
            metadata["targets"] = [engines[i] for i in flags["targets"]]
        if metadata and self.client._task_scheme == "pure":
            raise RuntimeError(
                f"the controller's task scheme is 'pure', which supports no flags (got {sorted(metadata)})")
        return metadata

    def _really_apply(self, f, args=(), kwargs=None, targets=None, block=None, track=None, fname=None):
        block = self.block if block is None else block
        track = self.track if track is None else track
        if targets is not None:
            with self.temp_flags(targets=targets):
                metadata = self._scheduling_metadata()
        else:
            metadata = self._scheduling_metadata()
        fut = self.client._lb_future(f, args, kwargs or {}, metadata, track, self.label, self.history)
        return self._send([fut], True, fname or getname(f), block)

    # -- map --------------------------------------------------------------------------

    def map(self, f, *sequences, block=None, chunksize=1, ordered=True, return_exceptions=False, label=None,
            track=None):
        """One task per ``chunksize`` elements; builtin-``map`` length semantics."""
        if not sequences:
            raise TypeError("map needs at least one sequence")
        if isinstance(chunksize, bool) or not isinstance(chunksize, numbers.Integral) or chunksize < 1:
            raise ValueError(f"chunksize must be a positive int, not {chunksize!r}")
        block = self.block if block is None else block
        track = self.track if track is None else track
        label = self.label if label is None else label
        sequences = [partition.as_sequence(s) for s in sequences]
        n = partition.common_length(sequences)
        # one task per chunk, but the function is pickled once for all of them
        shipped = pickled_once(f)
        arg_lists = [[shipped, *(s[i:i + chunksize] for s in sequences)] for i in range(0, n, chunksize)]
        metadata = self._scheduling_metadata()
        futures = [self.client._lb_future(map_chunk, args, {}, metadata, track, label, self.history)
                   for args in arg_lists]
        ar = AsyncMapResult(self.client, futures, fname=getname(f), dist="b", length=n, elementwise=True,
                            return_exceptions=return_exceptions, ordered=ordered,
                            sizes=[min(chunksize, n - i) for i in range(0, n, chunksize)])
        self.client._send(futures)
        return self._finish(ar, block)

    def _map_async(self, f, sequences, dist="b", mapping=True, return_exceptions=False, track=None, label=None,
                   chunksize=None, ordered=True):
        """What ``@view.parallel`` runs: with ``mapping``, :meth:`map`; else one task per
        ``chunksize`` (default 1) elements, ``f`` called on its share of each sequence."""
        if mapping:
            return self.map(f, *sequences, block=False, chunksize=chunksize or 1, ordered=ordered,
                            return_exceptions=return_exceptions, label=label, track=track)
        if not sequences:
            raise TypeError("map needs at least one sequence")
        track = self.track if track is None else track
        label = self.label if label is None else label
        sequences = [partition.as_sequence(s) for s in sequences]
        n = partition.common_length(sequences)
        parts = -(-n // (chunksize or 1))
        shares = [partition.partition(s, parts, dist, n) for s in sequences]
        shipped = pickled_once(f)
        metadata = self._scheduling_metadata()
        futures = [self.client._lb_future(shipped, [share[i] for share in shares], {}, metadata, track, label,
                                          self.history) for i in range(parts)]
        ar = AsyncMapResult(self.client, futures, fname=getname(f), dist=dist, length=n, elementwise=False,
                            return_exceptions=return_exceptions, ordered=ordered)
        self.client._send(futures)
        return ar

    def imap(self, f, *sequences, ordered=True, max_outstanding="auto", return_exceptions=False):
        """Results of ``f`` over (possibly infinite) iterables, consuming them lazily."""
        if not sequences:
            raise TypeError("imap needs at least one iterable")
        if max_outstanding == "auto":
            max_outstanding = max(1, len(self))
        if isinstance(max_outstanding, bool) or not isinstance(max_outstanding, numbers.Integral) or max_outstanding < 0:
            raise ValueError(f"max_outstanding must be 'auto' or an int >= 0, not {max_outstanding!r}")
        return LazyMapIterator(self, f, sequences, ordered, int(max_outstanding), return_exceptions)

    # -- control --------------------------------------------------------------------------

    def abort(self, jobs=None, targets=None, block=None):
        jobs = sorted(self.outstanding) if jobs is None else jobs
        return self.client.abort(jobs, block=block)

    def queue_status(self, targets=None, verbose=False):
        return self.client.queue_status(targets="all" if targets is None else targets, verbose=verbose)


class LazyMapIterator:
    """What ``LoadBalancedView.imap`` returns: iterate for results; ``cancel()`` stops consuming input.

    A helper thread submits one task per input element while fewer than
    ``max_outstanding`` (0: no limit) are in flight; iteration yields results in input
    order (``ordered``) or as they complete.
    """

    def __init__(self, view, f, iterables, ordered, max_outstanding, return_exceptions):
        self._view = view
        self._f = f
        self._ordered = ordered
        self._return_exceptions = return_exceptions
        self._max = max_outstanding
        self._cond = threading.Condition()
        self._submitted = deque()  # in input order
        self._done = deque()  # in completion order
        self._in_flight = 0
        self._cancelled = False
        self._exhausted = False
        self._error = None
        self._thread = threading.Thread(target=self._feed, args=(zip(*iterables),), name="kernelpar-imap",
                                        daemon=True)
        self._thread.start()

    def _feed(self, inputs):
        try:
            for args in inputs:
                with self._cond:
                    while self._max and self._in_flight >= self._max and not self._cancelled:
                        self._cond.wait()
                    if self._cancelled:
                        break
                    self._in_flight += 1
                ar = self._view.apply_async(self._f, *args)
                with self._cond:
                    self._submitted.append(ar)
                    self._cond.notify_all()
                ar.add_done_callback(self._task_done)
        except BaseException as e:  # the input iterator (or a send) failed: surface it to the consumer
            with self._cond:
                self._error = e
        finally:
            with self._cond:
                self._exhausted = True
                self._cond.notify_all()

    def _task_done(self, ar):
        with self._cond:
            self._in_flight -= 1
            self._done.append(ar)
            self._cond.notify_all()

    def cancel(self):
        """Submit no more tasks (those in flight still complete)."""
        with self._cond:
            self._cancelled = True
            self._cond.notify_all()

    def wait(self):
        """Wait until every submitted task is done."""
        self._thread.join()
        for ar in list(self._submitted):
            ar.wait()

    def __iter__(self):
        return self

    def __next__(self):
        with self._cond:
            while True:
                queue = self._submitted if self._ordered else self._done
                if queue:
                    ar = queue.popleft()
                    if not self._ordered:
                        self._submitted.remove(ar)
                    break
                if self._exhausted and not self._submitted:
                    if self._error is not None:
                        error, self._error = self._error, None
                        raise error
                    raise StopIteration
                self._cond.wait()
        if self._ordered:
            ar.wait()
        if self._return_exceptions:
            return ar.get(return_exceptions=True)
        return ar.get()

