"""``AsyncResult`` and ``AsyncMapResult``: what a non-blocking call returns.

An ``AsyncResult`` is a ``concurrent.futures.Future`` over one or more
:class:`~.futures.MessageFuture` children (one per message sent), so it works with
``concurrent.futures.wait``/``as_completed`` and ``asyncio.wrap_future``.  It resolves in
the IO thread when its last child does: a single child gives a bare value (or raises that
task's exception: a ``RemoteError`` with ``engine_info``, an ``EngineError``, a
``TaskAborted``); several children give a list, and any failure becomes one
``CompositeError`` listing every failed task once (``[N:apply]`` headers).  With
``return_exceptions`` the exceptions are returned in place instead.

Memory: on resolution the owner removes its msg_ids from ``client.results`` and
``client.metadata``, so a client that runs many tasks and keeps none of their results
stays flat.  Output (``stdout``, ``outputs``, ...) lives in each task's ``Metadata``.

Live output: inside ``with ar.stream_output():`` a background thread watches the tasks'
``Metadata`` (which the IO thread fills as iopub messages arrive) and prints what is new
every :data:`STREAM_INTERVAL` seconds: ``[stdout:N] ...`` / ``[stderr:N] ...`` by whole
lines, ``[output:N]`` before rich displays, and each failed task's traceback (headed
``[N:method]``) on stderr as soon as that task ends.  Lines rewritten with ``\\r``
(progress bars) are shown in place on a terminal or in a notebook, else once finished.
"""

import logging
import threading
import time
import warnings
from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, FIRST_EXCEPTION, Future, InvalidStateError, as_completed
from concurrent.futures import TimeoutError as FutureTimeoutError
from concurrent.futures import wait as wait_futures
from contextlib import contextmanager
from datetime import datetime

from .. import errors
from ..wire.session import utcnow
from . import display, partition
from .futures import METADATA_KEYS, MessageFuture
from .streaming import OutputStreamer, TextProgress
from .streaming import progress as progress_display

log = logging.getLogger("kernelpar.client")



def _none_if_negative(timeout):
    return None if timeout is not None and timeout < 0 else timeout


def _fresh(exc):
    """``exc`` without the local frames of earlier raises (each ``get()`` shows its own)."""
    return exc.with_traceback(None)


def composite(fname, exceptions):
    return errors.CompositeError(
        f"one or more exceptions raised in: {fname}", [errors.composite_entry(e) for e in exceptions]
    )


class AsyncResult(Future):
    """The pending result of one or more requests (see the module docstring)."""

    def __init__(self, client, children, fname="unknown", owner=True, return_exceptions=False):
        Future.__init__(self)
        self._single_result = isinstance(children, MessageFuture)
        if self._single_result:
            children = [children]
        self._client = client
        self._children = list(children)
        self.msg_ids = [c.msg_id for c in self._children]
        self._metadata = [c.metadata for c in self._children]
        self._fname = fname
        self.owner = owner
        self._return_exceptions = return_exceptions
        self._raw_results = None
        self._parts = None  # split()'s, made once
        self._lock = threading.Lock()
        with self._lock:
            # children that already resolved will not call us back: count only the others
            self._pending = sum(1 for c in self._children if c.link(self))
        if self._pending == 0:
            self._resolve()

    # -- resolution (IO thread) ------------------------------------------------------

    def _child_done(self, child):
        with self._lock:
            self._pending -= 1
            last = self._pending == 0
        if last:
            self._resolve()

    def _resolve(self):
        raw = [c.exception() or c.result() for c in self._children]
        self._raw_results = raw
        failures = [r for r in raw if isinstance(r, BaseException)]
        if self.owner:
            results, metadata = self._client.results, self._client.metadata
            for msg_id in self.msg_ids:
                results.pop(msg_id, None)
                metadata.pop(msg_id, None)
        try:
            if self._single_result:
                ok, value = (False, failures[0]) if failures else (True, raw[0])
            elif failures and not self._return_exceptions:
                ok, value = False, composite(self._fname, failures)
            else:
                ok, value = True, self._reconstruct(raw)
        except Exception as e:  # e.g. gathered pieces that cannot be joined: fail, never hang
            ok, value = False, e
        try:
            if ok:
                self.set_result(value)
            else:
                self.set_exception(value)
        except InvalidStateError:
            pass  # the caller cancel()ed this local object; the remote work went on regardless

    def _reconstruct(self, raw):
        """Turn the list of per-message results into what ``get()`` returns."""
        return raw

    # -- waiting ---------------------------------------------------------------------

    def wait(self, timeout=-1, return_when=None):
        """Wait up to ``timeout`` seconds (negative: forever); return whether it is done.

        With ``return_when`` (``concurrent.futures``' ``FIRST_COMPLETED``,
        ``FIRST_EXCEPTION`` or ``ALL_COMPLETED``), wait as ``concurrent.futures.wait`` does
        for the parts of :meth:`split` and return its ``(done, pending)`` sets.
        """
        if return_when is not None:
            if return_when not in (FIRST_COMPLETED, FIRST_EXCEPTION, ALL_COMPLETED):
                raise ValueError(f"Unrecognized return_when={return_when!r}")
            self._check_not_io_thread(timeout)
            return wait_futures(self.split(), timeout=_none_if_negative(timeout), return_when=return_when)
        if self.done():
            return True
        self._check_not_io_thread(timeout)
        try:
            self.exception(_none_if_negative(timeout))
        except (TimeoutError, FutureTimeoutError):  # distinct classes before Python 3.11
            return False
        return True

    def _check_not_io_thread(self, timeout):
        if timeout != 0 and self._client._loop.in_io_thread():
            # a done-callback runs in the IO thread, which is the thread that would resolve us
            raise RuntimeError("cannot wait for a result inside a done-callback (it runs in the client's IO thread)")

    def split(self):
        """One AsyncResult per message, for ``concurrent.futures.wait`` and friends (a
        single message's is this one)."""
        if len(self._children) == 1:
            return (self,)
        if self._parts is None:
            single = not isinstance(self, AsyncMapResult)  # a map's parts stay lists of results
            self._parts = tuple(
                AsyncResult(self._client, child if single else [child], fname=self._fname, owner=False,
                            return_exceptions=self._return_exceptions) for child in self._children)
        return self._parts

    @classmethod
    def join(cls, *async_results):
        """One AsyncResult over the messages of several (the inverse of :meth:`split`)."""
        if not async_results:
            raise ValueError("Must specify at least one AsyncResult to join")
        first = async_results[0]
        if len(async_results) == 1:
            return first
        children = [child for ar in async_results for child in ar._children]
        return AsyncResult(first._client, children, fname=first._fname, owner=False,
                           return_exceptions=first._return_exceptions)

    def ready(self):
        return self.done()

    def get(self, timeout=None, return_exceptions=None, return_when=None):
        """The result; raise ``TimeoutError("Result not ready.")`` if not done in ``timeout`` s.

        ``return_when=FIRST_EXCEPTION``: raise the first task's failure as soon as it
        happens rather than when every task has ended.
        """
        if return_when == FIRST_COMPLETED:
            warnings.warn("Ignoring unsupported AsyncResult.get(return_when=FIRST_COMPLETED)", UserWarning,
                          stacklevel=2)
        elif return_when == FIRST_EXCEPTION and not self.done():
            done, _ = self.wait(-1 if timeout is None else timeout, return_when=FIRST_EXCEPTION)
            if not self.done():
                for part in self.split():
                    if part in done and part.exception() is not None:
                        return part.get(return_exceptions=return_exceptions)
                raise errors.TimeoutError("Result not ready.")
        if not self.wait(-1 if timeout is None else timeout):
            raise errors.TimeoutError("Result not ready.")
        if return_exceptions is None:
            return_exceptions = self._return_exceptions
        if return_exceptions and not self._single_result:
            return self._reconstruct(self._raw_results)
        exc = self.exception()
        if exc is None:
            return self.result()
        if return_exceptions:
            return exc
        raise _fresh(exc)

    def wait_interactive(self, interval=0.1, timeout=-1, widget=None, return_when=None):
        """Wait, showing progress (``N/M tasks``) every ``interval`` seconds.

        A tqdm bar on a terminal, tqdm's notebook widget in a Jupyter kernel (``widget``:
        None = detect, True/False = force one or the other), plain lines
        (``f:   3/10 tasks finished after    2 s``) on stderr when it is not a terminal or
        ``KERNELPAR_NONINTERACTIVE`` / ``IPP_NONINTERACTIVE`` is set.  ``timeout`` < 0 or
        None: no limit; returns when done or out of time (like ``wait``).
        ``return_when=FIRST_EXCEPTION`` also stops at the first failed task,
        ``FIRST_COMPLETED`` at the first task that ends.
        """
        deadline = None if timeout is None or timeout < 0 else time.monotonic() + timeout
        # the units of ``progress``: messages, or a map's elements
        total = len(self)
        bar = progress_display(total, unit="tasks", desc=self._fname, widget=widget, initial=self.progress)
        try:
            while not self.done():
                wait = interval
                if deadline is not None:
                    wait = min(wait, deadline - time.monotonic())
                    if wait <= 0:
                        break
                self.wait(wait)
                bar.update_to(self.progress)
                if return_when == FIRST_COMPLETED and any(c.done() for c in self._children):
                    break
                if return_when == FIRST_EXCEPTION and any(
                    c.done() and c.exception() is not None for c in self._children
                ):
                    break
            bar.update_to(self.progress)
        finally:
            bar.close()
        if isinstance(bar, TextProgress) and self.done():
            print("done", file=bar.file)

    def wait_for_output(self, timeout=-1):
        """Wait until results *and* output are in (output is bounded by a grace period)."""
        return self.wait(timeout)

    def successful(self):
        if not self.done():
            raise RuntimeError("The result is not ready yet: successful() needs a finished AsyncResult")
        return self.exception() is None

    def _check_ready(self):
        if not self.done():
            raise errors.TimeoutError("Result not ready.")

    @property
    def r(self):
        return self.get()

    @property
    def result_dict(self):
        return self.get_dict()

    def get_dict(self, timeout=-1):
        """``{engine_id: result}``; ``ValueError`` if one engine ran several of the tasks."""
        results = self.get(timeout)
        if self._single_result:
            results = [results]
        engine_ids = [md["engine_id"] for md in self._metadata]
        if len(set(engine_ids)) != len(engine_ids):
            dup = next(e for e in engine_ids if engine_ids.count(e) > 1)
            raise ValueError(f"Cannot build dict, {engine_ids.count(dup)} jobs ran on engine #{dup}")
        return dict(zip(engine_ids, results))

    # -- control -----------------------------------------------------------------------

    def abort(self):
        """Abort the tasks that have not started yet."""
        if self.done():
            raise RuntimeError("Can't abort, I am already done!")
        targets = sorted({md["engine_id"] for md in self._metadata if md["engine_id"] is not None})
        return self._client.abort(self.msg_ids, targets=targets or None, block=True)

    @property
    def sent(self):
        return all(c.sent and (c.tracker is None or c.tracker.done) for c in self._children)

    def wait_for_send(self, timeout=-1):
        """Wait until zero-copy sends are done (so sent arrays may be changed again)."""
        deadline = None if timeout is None or timeout < 0 else time.monotonic() + timeout
        while not self.sent:
            if deadline is not None and time.monotonic() >= deadline:
                raise errors.TimeoutError("Still waiting to be sent")
            time.sleep(0.001)
        return True

    # -- metadata and output --------------------------------------------------------------

    @property
    def metadata(self):
        return self._metadata[0] if self._single_result else self._metadata

    def _metadata_values(self, key):
        values = [md[key] for md in self._metadata]
        return values[0] if self._single_result else values

    def __getattr__(self, key):
        # metadata proxy: ar.stdout, ar.engine_id, ... (available before completion)
        if key in METADATA_KEYS:
            return self._metadata_values(key)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {key!r}")

    def __dir__(self):
        return sorted(set(object.__dir__(self)) | set(METADATA_KEYS))

    def __getitem__(self, key):
        if isinstance(key, str):
            if key not in METADATA_KEYS:
                raise KeyError(key)
            return self._metadata_values(key)
        if isinstance(key, (int, slice)):
            self._check_ready()
            results = self.get()
            if self._single_result:
                raise TypeError("a single-task AsyncResult cannot be indexed")
            return results[key]
        raise TypeError(f"Invalid key type {type(key).__name__!r}, must be 'int', 'slice', or 'str'")

    def display_outputs(self, groupby="type", result_only=False):
        """Print the collected output: ``[stdout:N]``, ``[stderr:N]``, ``Out[N:count]:``."""
        self._check_ready()
        display.display_outputs(self._metadata, groupby=groupby, result_only=result_only)

    @contextmanager
    def stream_output(self):
        """Context manager: print the tasks' output live while the block runs.

        ``with ar.stream_output(): ar.wait()`` shows ``[stdout:N] line`` as engines print,
        rich displays (``[output:N]``) and the traceback of each task that fails, as it
        fails.  Leaving the block prints whatever arrived and was not shown yet, including
        an unfinished last line.  Execute results (``Out[N:count]``) are not streamed:
        ``display_outputs(result_only=True)`` shows them afterwards.
        """
        streamer = OutputStreamer(self)
        streamer.start()
        try:
            yield self
        finally:
            streamer.stop()

    # -- timing ----------------------------------------------------------------------------

    @staticmethod
    def timedelta(start, end, start_key=min, end_key=max):
        """Seconds between ``start_key(start)`` and ``end_key(end)`` (single datetimes pass)."""
        if not isinstance(start, datetime):
            start = start_key(start)
        if not isinstance(end, datetime):
            end = end_key(end)
        return (end - start).total_seconds()

    @property
    def progress(self):
        """How many of the requests have finished."""
        return sum(1 for c in self._children if c.done())

    @property
    def elapsed(self):
        if self.done():
            return self.wall_time
        submitted = [md["submitted"] for md in self._metadata if md["submitted"]]
        if not submitted:
            return 0.0
        return (utcnow() - min(submitted)).total_seconds()

    @property
    def wall_time(self):
        """Latest ``received`` minus earliest ``submitted``, in seconds."""
        self._check_ready()
        received = [md["received"] for md in self._metadata if md["received"]]
        submitted = [md["submitted"] for md in self._metadata if md["submitted"]]
        if not received or not submitted:
            return 0.0
        return self.timedelta(submitted, received)

    @property
    def serial_time(self):
        """Sum over the tasks of ``completed - started``, in seconds."""
        self._check_ready()
        return sum(
            (md["completed"] - md["started"]).total_seconds()
            for md in self._metadata if md["completed"] and md["started"]
        )

    # -- sequence protocol -----------------------------------------------------------------

    def __len__(self):
        return len(self.msg_ids)

    def __iter__(self):
        if self._single_result:
            raise TypeError("AsyncResults with a single result are not iterable.")
        if self.done():
            yield from self.get()
            return
        for child in self._children:
            yield self._child_outcome(child)

    def _child_outcome(self, child):
        """One message's result once it is in; its failure as a CompositeError, or
        returned in place with ``return_exceptions`` (as ``get`` treats failures)."""
        exc = child.exception()
        if exc is None:
            return child.result()
        if self._return_exceptions:
            return exc
        raise composite(self._fname, [exc])

    def __repr__(self):
        if self.cancelled():
            state = "cancelled"
        elif not self.done():
            state = "pending"
        elif self.exception() is not None:
            state = "failed"
        else:
            state = "finished"
        return f"<{type(self).__name__}({self._fname}): {state}>"


class AsyncMapResult(AsyncResult):
    """The result of a map, scatter/gather or ``@parallel`` call: one message per engine share.

    ``dist`` is how the input was split (:mod:`.partition`) and how the per-share results
    are joined; ``length`` the number of input elements.  With ``elementwise`` each share's
    result is the list of its elements' results, and iterating yields elements as their
    shares arrive, in order (or in completion order with ``ordered=False``).
    """

    def __init__(self, client, children, fname="unknown", dist="b", length=None, elementwise=True, owner=True,
                 return_exceptions=False, ordered=True, sizes=None):
        self._dist = dist
        self._length = length
        #: elements per child (a map's share or chunk): ``progress`` counts elements then
        self._sizes = sizes
        self._elementwise = elementwise
        self.ordered = ordered
        AsyncResult.__init__(self, client, list(children), fname=fname, owner=owner,
                             return_exceptions=return_exceptions)

    def _reconstruct(self, raw):
        if any(isinstance(r, BaseException) for r in raw):
            # the shape cannot be rebuilt: chain the shares, one exception per failed share
            flat = []
            for r in raw:
                if isinstance(r, BaseException) or not self._elementwise:
                    flat.append(r)
                else:
                    flat.extend(r)
            return flat
        return partition.join(raw, self._dist)

    def __len__(self):
        return self._length if self._length is not None else len(self.msg_ids)

    @property
    def progress(self):
        """How many elements have their result (messages, when elements are not counted)."""
        if self._sizes is None:
            return AsyncResult.progress.fget(self)
        return sum(size for child, size in zip(self._children, self._sizes) if child.done())

    def __iter__(self):
        if self.done() or not self._elementwise or self._dist != "b":
            yield from self.get()
            return
        children = self._children if self.ordered else as_completed(self._children)
        for child in children:
            outcome = self._child_outcome(child)
            if isinstance(outcome, BaseException):
                yield outcome  # the failed share, once
            else:
                yield from outcome
