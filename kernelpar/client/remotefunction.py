"""Decorators that turn a function into a remote one: ``@remote`` and ``@parallel``.

``RemoteFunction(view, f)``: calling it is ``view.apply(f, ...)`` under temporary flags.
``ParallelFunction(view, f, dist)``: calling it with sequences splits them across the
view's engines (:mod:`.partition`), calls ``f`` once per engine on its share and joins the
per-engine results; ``.map(*seqs)`` calls ``f`` once per *element* instead, like the
builtin ``map`` (the shortest sequence decides the length).
"""

import inspect

from . import partition


def remote(view, block=None, **flags):
    """Decorator: ``@remote(view)`` makes ``f(...)`` run as ``view.apply(f, ...)``."""

    def decorate(f):
        return RemoteFunction(view, f, block=block, **flags)

    return decorate


def parallel(view, dist="b", block=None, ordered=True, **flags):
    """Decorator: ``@parallel(view)`` makes ``f(seq)`` run on ``view``'s engines, one chunk
    each (a LoadBalancedView: one task per ``chunksize`` elements)."""

    def decorate(f):
        return ParallelFunction(view, f, dist=dist, block=block, ordered=ordered, **flags)

    return decorate


def getname(f):
    """A callable's name for reprs and results: ``__name__``, else ``name``, else ``str``."""
    return getattr(f, "__name__", None) or getattr(f, "name", None) or str(f)


class RemoteFunction:
    def __init__(self, view, f, block=None, **flags):
        self.view = view
        self.func = f
        self.block = block
        self.flags = flags
        self.__name__ = getname(f)
        if getattr(f, "__doc__", None):
            self.__doc__ = f"{type(self).__name__} wrapping:\n{f.__doc__}"
        try:
            self.__signature__ = inspect.signature(f)
        except (TypeError, ValueError):
            pass

    def _block(self):
        return self.view.block if self.block is None else self.block

    def __call__(self, *args, **kwargs):
        with self.view.temp_flags(block=self._block(), **self.flags):
            return self.view.apply(self.func, *args, **kwargs)

    def __repr__(self):
        return f"<{type(self).__name__} {self.__name__} on {self.view!r}>"


class ParallelFunction(RemoteFunction):
    def __init__(self, view, f, dist="b", block=None, chunksize=None, ordered=True, return_exceptions=False,
                 **flags):
        partition.check_dist(dist)
        super().__init__(view, f, block=block, **flags)
        self.dist = dist
        # a LoadBalancedView's: elements per task, and results in order or as they come
        # (a DirectView always gives one share per engine, in order)
        self.chunksize = chunksize
        self.ordered = ordered
        self.return_exceptions = return_exceptions

    def __call__(self, *sequences, **kwargs):
        if kwargs:
            raise TypeError(f"Unexpected keyword arguments: {kwargs}")
        sequences = [partition.as_sequence(s) for s in sequences]
        lengths = [len(s) for s in sequences]
        if len(set(lengths)) > 1:
            raise ValueError(f"all sequences must have equal length, but have {lengths}")
        return self._run(sequences, mapping=False)

    def map(self, *sequences):
        """Call ``f`` on each element (builtin ``map`` semantics); blocking per ``block``."""
        return self._run([partition.as_sequence(s) for s in sequences], mapping=True)

    def _run(self, sequences, mapping):
        with self.view.temp_flags(**self.flags):
            ar = self.view._map_async(
                self.func, sequences, dist=self.dist, mapping=mapping, return_exceptions=self.return_exceptions,
                chunksize=self.chunksize, ordered=self.ordered,
            )
        return self.view._finish(ar, self._block())
