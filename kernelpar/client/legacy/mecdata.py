"""The MultiEngineClient's data-parallel methods: ``scatter``, ``gather``, ``raw_map``,
``map``, ``mapper`` and ``parallel`` (spec §3.5, §3.8, §3.9).

:class:`DataMethods` is a mixin of :class:`.multiengineclient.MultiEngineClient`; it
uses the client's ``_flags``, ``_pairs``, ``_futures`` and ``_issue``.  Partitioning is
:mod:`kernelpar.client.partition` (0.10's ``'b'`` distribution, the only one 0.10 had:
any other ``dist`` is a ``KeyError`` as there).  Python 3 ``range`` objects, iterators and
other unsliceable iterables are scattered and mapped as lists, so engines see
``[0, 1, 2, 3]`` where Python 2 made lists.

``raw_map`` runs as one apply per engine of :func:`.onengine.raw_map_chunk` (0.10 used a
push, a scatter, an execute and a gather; the helper names it left behind are still
set).  Engines whose share would be empty are skipped, so a map over fewer items than
engines works (0.10 failed, spec §11).
"""

import types

from .. import partition
from . import translate
from .commands import command_text, nones, per_engine, shipped_function
from .onengine import USER_NAMESPACE, pull, push, raw_map_chunk

_UNKNOWN_ENGINE = "engine with id {!r} does not exist"


def check_dist(dist):
    if dist != "b":
        raise KeyError(dist)


def as_list_like(seq):
    """``seq`` if it can be sliced into parts of its own type, else ``list(seq)``."""
    if isinstance(seq, range):
        return list(seq)
    return partition.as_sequence(seq)


def join(pieces):
    """Gathered pieces joined as 0.10 did (ranges count as lists)."""
    return partition.concatenate([list(p) if isinstance(p, range) else p for p in pieces])


def check_map_func(func):
    if not isinstance(func, (str, types.FunctionType)):
        raise AssertionError("func must be a fuction or str")


class DataMethods:
    """``scatter``, ``gather`` and the maps of a MultiEngineClient (see the module docstring)."""

    def scatter(self, key, seq, dist="b", flatten=False, targets=None, block=None):
        """Partition ``seq`` over the targets, as ``key`` on each; ``[None, ...]``.

        With ``flatten``, a part of one element is sent as that element.
        """
        targets, block = self._flags(targets, block)
        check_dist(dist)
        pairs = self._pairs(targets, _UNKNOWN_ENGINE)
        parts = partition.partition(as_list_like(seq), len(pairs), dist)
        if flatten:
            parts = partition.flatten_singletons(parts)
        futures = []
        for pair, part in zip(pairs, parts):
            futures += self._futures([pair], push, (USER_NAMESPACE, {key: part}), command_text("push", [key]))
        finish = per_engine(futures, "scatter", "push", shape=nones)
        return self._issue(futures, "scatter", finish, block)

    def gather(self, key, dist="b", targets=None, block=None):
        """Pull ``key`` from each target and join the parts (lists, tuples, arrays)."""
        targets, block = self._flags(targets, block)
        check_dist(dist)
        pairs = self._pairs(targets, _UNKNOWN_ENGINE)
        futures = self._futures(pairs, pull, (USER_NAMESPACE, key), command_text("pull", key))
        return self._issue(futures, "gather", per_engine(futures, "gather", "pull", shape=join), block)

    def raw_map(self, func, seq, dist="b", targets=None, block=None):
        """``map(func, *seq)`` over the targets; ``func`` may be a function or an expression string."""
        check_map_func(func)
        if not isinstance(seq, (list, tuple)):
            raise TypeError(f"seq must be a list or tuple of sequences, not {type(seq).__name__}")
        targets, block = self._flags(targets, block)
        check_dist(dist)
        sequences = [as_list_like(s) for s in seq]
        if len({len(s) for s in sequences}) > 1:
            raise ValueError("all sequences must have equal length")
        pairs = self._pairs(targets)
        func = shipped_function(func)
        prelude = translate.engine_prelude()
        calls = list(zip(*sequences))
        futures = []
        for pair, part in zip(pairs, partition.partition(calls, len(pairs), dist)):
            if part:
                futures += self._futures([pair], raw_map_chunk, (USER_NAMESPACE, func, part, prelude),
                                         command_text("execute", "_ipython_map_seq_result = map(...)"))
        return self._issue(futures, "raw_map", per_engine(futures, "raw_map", "execute", shape=join), block)

    def mapper(self, dist="b", targets="all", block=None):
        """An object whose ``map(func, *sequences)`` uses these settings (``block`` None:
        the client's ``block`` when called)."""
        return MultiEngineMapper(self, dist, targets, block)

    def map(self, func, *sequences):
        """``list(map(func, *sequences))`` computed on all engines (``mec.targets`` is not
        used, ``mec.block`` is)."""
        return self.mapper().map(func, *sequences)

    def parallel(self, dist="b", targets=None, block=None):
        """Decorator: ``f(*sequences)`` becomes a map over the engines.

        ``targets``/``block`` default to the client's *now*, at decoration.
        """
        mapper = self.mapper(dist, self.targets if targets is None else targets,
                             self.block if block is None else block)

        def decorate(func):
            check_map_func(func)
            return ParallelFunction(func, mapper)

        return decorate


class MultiEngineMapper:
    """What ``mec.mapper()`` returns."""

    def __init__(self, client, dist="b", targets="all", block=None):
        self.client = client
        self.dist = dist
        self.targets = targets
        self.block = block

    def map(self, func, *sequences):
        block = self.client.block if self.block is None else self.block
        return self.client.raw_map(func, list(sequences), dist=self.dist, targets=self.targets, block=block)


class ParallelFunction:
    """A function decorated with ``@mec.parallel()``: calling it maps it over its sequences."""

    def __init__(self, func, mapper):
        self.func = func
        self.mapper = mapper

    def __call__(self, *sequences):
        return self.mapper.map(self.func, *sequences)

