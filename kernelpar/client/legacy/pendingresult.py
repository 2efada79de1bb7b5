"""``PendingResult``: what a legacy MultiEngineClient method returns with ``block=False``.

0.10 kept the results of non-blocking calls on the controller until the client fetched
them (or ``flush()`` discarded them); a ``PendingResult`` held only an id.  Here the
results arrive in the client process anyway (the modern futures), so the "controller
copy" is a per-client table, :class:`PendingTable`, from result id to the
:class:`LegacyCall` in flight.  Fetching a result removes it from the table and caches it
in the ``PendingResult`` (exceptions too, re-raised on every later fetch); ``flush()``
empties the table, so a later fetch of a flushed result raises ``InvalidDeferredID``, as
0.10's did.  A ``PendingResult`` that is garbage collected unfetched leaves the table
with it (0.10 kept those until ``flush``; nobody could fetch them).

:class:`LegacyCall` is one legacy command in flight: a modern ``AsyncResult`` over one
message per engine (its ``return_exceptions`` list keeps failures in place) and a
*finisher* that turns that list into the method's return value or raises its
``CompositeError``.
"""

import uuid
import weakref

from .error import InvalidDeferredID, NotAPendingResult, ResultNotCompleted


class LegacyCall:
    """A legacy command in flight: ``value()`` waits and returns the finished result."""

    __slots__ = ("ar", "finish")

    def __init__(self, ar, finish):
        #: a future of the raw per-message results (a modern AsyncResult with ``return_exceptions``)
        self.ar = ar
        #: raw per-message results -> the legacy return value (or raise)
        self.finish = finish

    def done(self):
        return self.ar.done()

    def value(self):
        return self.finish(self.ar.result())


class PendingTable:
    """A client's un-fetched pending results, by result id (see the module docstring)."""

    def __init__(self):
        self._calls = {}

    def add(self, client, call):
        """A new PendingResult of ``client`` for ``call``."""
        result_id = uuid.uuid4().hex
        self._calls[result_id] = call
        pr = PendingResult(client, result_id)
        weakref.finalize(pr, self._calls.pop, result_id, None)
        return pr

    def fetch(self, result_id, block):
        """The value of a pending result (removed from the table once it is there)."""
        call = self._calls.get(result_id)
        if call is None:
            raise InvalidDeferredID(f"Invalid deferred ID: {result_id} (fetched already or flushed)")
        if not block and not call.done():
            raise ResultNotCompleted(f"result {result_id} is not ready")
        try:
            return call.value()
        finally:
            self._calls.pop(result_id, None)

    def flush(self):
        """Forget every un-fetched result."""
        self._calls.clear()


class PendingResult:
    """The result of a non-blocking call, fetched with ``get_result()`` or ``.r``."""

    def __init__(self, client, result_id):
        self.client = client
        self.result_id = result_id
        self.called = False
        self.raised = False
        self.callbacks = []

    def get_result(self, default=None, block=True):
        """The result (waiting if ``block``); ``default`` if not ready and not ``block``.

        Callbacks are applied in order when the result arrives.  The result, or the
        exception, is cached: later calls return it (or raise it) again.
        """
        if self.called:
            if self.raised:
                raise self.result.with_traceback(None)
            return self.result
        try:
            result = self.client.get_pending_deferred(self.result_id, block)
        except ResultNotCompleted:
            return default
        except Exception as e:
            self.result, self.called, self.raised = e, True, True
            raise
        try:
            for f, args, kwargs in self.callbacks:
                result = f(result, *args, **kwargs)
        except Exception as e:
            self.result, self.called, self.raised = e, True, True
            raise
        self.result, self.called = result, True
        return result

    @property
    def r(self):
        """The result, waiting for it."""
        return self.get_result(block=True)

    def add_callback(self, f, *args, **kwargs):
        """When the result arrives, replace it with ``f(result, *args, **kwargs)``."""
        if not callable(f):
            raise TypeError(f"a callback must be callable, not {f!r}")
        self.callbacks.append((f, args, kwargs))

    def __lt__(self, other):
        if not isinstance(other, PendingResult):
            return NotImplemented
        return self.result_id < other.result_id


def barrier(pending_results):
    """Wait for every PendingResult; errors are swallowed (each one caches its own)."""
    prs = list(pending_results)
    for pr in prs:
        if not isinstance(pr, PendingResult):
            raise NotAPendingResult("Objects passed to barrier must be PendingResult instances")
    for pr in prs:
        try:
            pr.get_result(block=True)
        except Exception:
            pass
