"""``view.executor``: a PEP 3148 ``concurrent.futures.Executor`` over a view.

``submit`` is ``view.apply_async`` (an AsyncResult *is* a Future); ``map`` is
``view.imap``, so it consumes its input lazily on a load-balanced view; ``shutdown``
waits for what was submitted and never stops engines.  Use as a context manager to
wait on exit.
"""

import warnings
from concurrent.futures import Executor


class ViewExecutor(Executor):
    def __init__(self, view):
        self.view = view
        self._iterators = []

    def submit(self, fn, /, *args, **kwargs):
        return self.view.apply_async(fn, *args, **kwargs)

    def map(self, fn, *iterables, **kwargs):
        if "timeout" in kwargs:
            warnings.warn("ViewExecutor.map ignores timeout", stacklevel=2)
            kwargs.pop("timeout")
        kwargs.pop("chunksize", None)
        iterator = self.view.imap(fn, *iterables, **kwargs)
        self._iterators.append(iterator)
        return iterator

    def shutdown(self, wait=True, *, cancel_futures=False):
        iterators, self._iterators = self._iterators, []
        if cancel_futures:
            for iterator in iterators:
                cancel = getattr(iterator, "cancel", None)
                if cancel is not None:
                    cancel()
        if wait:
            for iterator in iterators:
                wait_all = getattr(iterator, "wait", None)
                if wait_all is not None:
                    wait_all()
            self.view.wait()
