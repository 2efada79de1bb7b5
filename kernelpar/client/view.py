"""``View``, the base of every view, and ``DirectView``: explicit addressing of engines
(``rc[0]``, ``rc[:]``, ``rc.direct_view()``).

One message per target engine, sent on the mux channel; each engine runs its messages
in order.  Flags (``block``, ``targets``, ``track``, ``label``) are plain attributes,
also settable with ``set_flags`` or temporarily with ``temp_flags``.  ``targets`` is
resolved at each call, so ``'all'`` includes engines that registered later; an ``int``
target gives bare results, a list gives lists in target order.

Namespace access (``push``/``pull``/``scatter``/``gather``, ``view['a']``) is built on
``apply`` of the small functions in :mod:`.enginefuncs`; ``pull`` evaluates each name on
the engine (``'a.b'``, ``'x[0]'`` work).  Partitioning is :mod:`.partition`.
"""

import numbers
import sys
import warnings
from contextlib import contextmanager

from ..wire import serialize
from ..wire.serialize import Reference
from . import partition
from .asyncresult import AsyncMapResult, AsyncResult
from .enginefuncs import USER_NAMESPACE, identity, map_chunk, update_namespace
from .executor import ViewExecutor
from .history import IdHistory
from .imports import sync_imports
from .remotefunction import ParallelFunction, RemoteFunction, getname


def _bool_flag(name, doc):
    """A view flag that takes what ipyparallel's Bool traits take: True, False, 1 or 0."""
    attr = "_" + name

    def get(view):
        return getattr(view, attr)

    def set_(view, value):
        if isinstance(value, numbers.Integral) and value in (0, 1):
            value = bool(value)
        if not isinstance(value, bool):
            raise TypeError(f"The {name!r} flag of a {type(view).__name__} expected a boolean, "
                            f"not the {type(value).__name__} {value!r}.")
        setattr(view, attr, value)

    return property(get, set_, doc=doc)


class View:
    """What every view has: flags, bookkeeping, ``apply``, decorators, control wrappers.

    Subclasses name their flags in ``flags`` and implement ``_really_apply``.
    """

    flags = ("block", "targets", "track", "label")

    def __init__(self, client, targets, block=None, track=False, label=None):
        self.client = client
        self.targets = targets
        self.block = client.block if block is None else block
        self.track = track
        self.label = label
        self.history = IdHistory(client._task_prefix)

    # -- flags ---------------------------------------------------------------------

    block = _bool_flag("block", "Whether calls wait for their results (a bool).")
    track = _bool_flag("track", "Whether calls track when zmq is done with their buffers (a bool).")

    def set_flags(self, **kwargs):
        """Set view flags (see ``flags``); returns the view."""
        for name in kwargs:
            if name not in self.flags:
                raise KeyError(f"Invalid name: {name!r} (view flags are {', '.join(self.flags)})")
        for name, value in kwargs.items():
            setattr(self, name, value)
        return self

    @contextmanager
    def temp_flags(self, **kwargs):
        """``with view.temp_flags(block=True): ...`` restores the flags afterwards."""
        saved = {name: getattr(self, name) for name in kwargs if name in self.flags}
        self.set_flags(**kwargs)
        try:
            yield self
        finally:
            for name, value in saved.items():
                setattr(self, name, value)

    # -- bookkeeping -----------------------------------------------------------------

    @property
    def outstanding(self):
        """msg_ids sent through this view that have no result yet."""
        return {m for m in self.client.outstanding.copy() if m in self.history}

    @property
    def results(self):
        return self.client.results

    def __len__(self):
        return len(self.client._resolve_targets(self.targets)[0])

    def __repr__(self):
        targets = self.targets
        shown = list(targets) if isinstance(targets, (tuple, range)) else targets
        return f"<{type(self).__name__} {shown}>"

    def spin(self):
        warnings.warn("spin() is not needed: replies are received in a background thread", DeprecationWarning,
                      stacklevel=2)

    # -- IPython magics ------------------------------------------------------------------

    def activate(self, suffix=""):
        """Make this view the one of the parallel magics ``%px``, ``%%px``, ``%pxresult``,
        ``%pxconfig`` and ``%autopx``, each name followed by ``suffix`` (``%px0``...).

        Only inside IPython (a warning otherwise); IPython is never imported here.
        """
        ipython = sys.modules.get("IPython")
        shell = ipython.get_ipython() if ipython is not None else None
        if shell is None:
            warnings.warn("The parallel magics (%px, etc.) only work within IPython.", stacklevel=2)
            return
        from .magics import ParallelMagics

        shell.register_magics(ParallelMagics(shell, self, suffix))

    # -- the one place requests are made ---------------------------------------------

    def _send(self, futures, single, fname, block, kind=AsyncResult, **ar_kwargs):
        if single:
            ar = kind(self.client, futures[0], fname=fname, **ar_kwargs)
        else:
            ar = kind(self.client, futures, fname=fname, **ar_kwargs)
        self.client._send(futures)
        return self._finish(ar, block)

    @staticmethod
    def _finish(ar, block):
        """The result if blocking (the AsyncResult itself on Ctrl-C, as ipyparallel), else ``ar``."""
        if not block:
            return ar
        try:
            return ar.get()
        except KeyboardInterrupt:
            return ar

    # -- apply -----------------------------------------------------------------------------

    def apply(self, f, /, *args, **kwargs):
        """Call ``f(*args, **kwargs)`` on the targets, blocking per ``self.block``."""
        return self._really_apply(f, args, kwargs)

    def apply_sync(self, f, /, *args, **kwargs):
        return self._really_apply(f, args, kwargs, block=True)

    def apply_async(self, f, /, *args, **kwargs):
        return self._really_apply(f, args, kwargs, block=False)

    def map_sync(self, f, *sequences, **kwargs):
        if "block" in kwargs:
            raise TypeError("map_sync doesn't take a `block` keyword argument.")
        return self.map(f, *sequences, block=True, **kwargs)

    def map_async(self, f, *sequences, **kwargs):
        if "block" in kwargs:
            raise TypeError("map_async doesn't take a `block` keyword argument.")
        return self.map(f, *sequences, block=False, **kwargs)

    # -- decorators and executor ----------------------------------------------------------

    def remote(self, block=None, **flags):
        """Decorator: calling the function runs it with ``self.apply``."""

        def decorate(f):
            return RemoteFunction(self, f, block=block, **flags)

        return decorate

    def parallel(self, dist="b", block=None, **flags):
        """Decorator: calling the function splits its sequence arguments over the targets."""

        def decorate(f):
            return ParallelFunction(self, f, dist=dist, block=block, **flags)

        return decorate

    @property
    def executor(self):
        """A ``concurrent.futures.Executor`` submitting to this view (PEP 3148)."""
        return ViewExecutor(self)

    # -- control (thin wrappers around the client) -------------------------------------------

    def abort(self, jobs=None, targets=None, block=None):
        jobs = sorted(self.outstanding) if jobs is None else jobs
        return self.client.abort(jobs, targets=self.targets if targets is None else targets, block=block)

    def queue_status(self, targets=None, verbose=False):
        return self.client.queue_status(targets=self.targets if targets is None else targets, verbose=verbose)

    def wait(self, jobs=None, timeout=-1):
        return self.client.wait(sorted(self.outstanding) if jobs is None else jobs, timeout=timeout)

    def get_result(self, indices_or_msg_ids=None, block=None, owner=False):
        """Results of earlier tasks of this view (by index into ``history`` or msg_id)."""
        if indices_or_msg_ids is None:
            indices_or_msg_ids = -1
        if isinstance(indices_or_msg_ids, (list, tuple, set)):
            ids = [self.history[i] if isinstance(i, int) else i for i in indices_or_msg_ids]
        else:  # one task: its bare result, as the client's get_result gives it
            ids = self.history[indices_or_msg_ids] if isinstance(indices_or_msg_ids, int) else indices_or_msg_ids
        return self.client.get_result(ids, block=block, owner=owner)

    def purge_results(self, jobs=(), targets=()):
        """Forget results here and in the hub (see ``Client.purge_results``); ``targets``
        None or 'all' means this view's engines."""
        if targets is None or (isinstance(targets, str) and targets == "all"):
            targets = self.targets
        def given(value):  # an empty list or tuple is "none"; engine id 0 is one
            return None if isinstance(value, (list, tuple)) and not value else value

        return self.client.purge_results(jobs=given(jobs), targets=given(targets))


class DirectView(View):
    """Explicit addressing: ``rc[0]``, ``rc[:]``, ``rc.direct_view(targets)``."""

    def __init__(self, client, targets="all", block=None, track=False, label=None):
        View.__init__(self, client, targets, block, track, label)

    def _really_apply(self, f, args=(), kwargs=None, targets=None, block=None, track=None, fname=None):
        block = self.block if block is None else block
        track = self.track if track is None else track
        pairs, single = self.client._resolve_targets(self.targets if targets is None else targets)
        futures = self.client._apply_futures(pairs, f, args, kwargs or {}, track, self.label, self.history)
        return self._send(futures, single, fname or getname(f), block)

    # -- map -----------------------------------------------------------------------------------

    def _map_async(self, f, sequences, dist="b", mapping=True, return_exceptions=False, track=None, label=None,
                   chunksize=None, ordered=True):
        """Split ``sequences`` over the targets, one message per engine with a non-empty share
        (results always in order; ``chunksize`` is a LoadBalancedView's)."""
        if chunksize:
            warnings.warn("`chunksize` is ignored unless load balancing", UserWarning, stacklevel=3)
        if not sequences:
            raise TypeError("map needs at least one sequence")
        track = self.track if track is None else track
        label = self.label if label is None else label
        pairs, _ = self.client._resolve_targets(self.targets)
        sequences = [partition.as_sequence(s) for s in sequences]
        n = partition.common_length(sequences)
        shares = [partition.partition(s, len(pairs), dist, n) for s in sequences]
        futures, sizes = [], []
        for i, pair in enumerate(pairs):
            args = [share[i] for share in shares]
            if not any(len(a) for a in args):
                continue
            sizes.append(max(len(a) for a in args))
            func, args = (map_chunk, [f, *args]) if mapping else (f, args)
            futures += self.client._apply_futures([pair], func, args, {}, track, label, self.history)
        ar = AsyncMapResult(self.client, futures, fname=getname(f), dist=dist, length=n, elementwise=mapping,
                            return_exceptions=return_exceptions, sizes=sizes if mapping else None)
        self.client._send(futures)
        return ar

    def map(self, f, *sequences, block=None, track=None, return_exceptions=False, label=None):
        """Builtin-``map`` semantics, split in contiguous chunks over the targets."""
        block = self.block if block is None else block
        return self._finish(self._map_async(f, sequences, "b", True, return_exceptions, track, label), block)

    def imap(self, f, *sequences, **kwargs):
        """Iterate over the results of ``map_async`` in order, as they arrive."""
        return iter(self.map_async(f, *sequences, **kwargs))

    # -- code ------------------------------------------------------------------------------

    def execute(self, code, silent=True, targets=None, block=None):
        """Run ``code`` as an IPython cell; always returns the AsyncResult (of ExecuteReplies)."""
        if not isinstance(code, str):
            raise TypeError(f"code must be text, not {type(code)}")
        block = self.block if block is None else block
        pairs, single = self.client._resolve_targets(self.targets if targets is None else targets)
        futures = self.client._execute_futures(pairs, code, silent, self.label, self.history)
        ar = self._send(futures, single, "execute", block=False)
        self._finish(ar, block)  # when blocking: waits for results and output, raises remote errors
        return ar

    def run(self, filename, targets=None, block=None):
        """Execute the contents of a local file on the engines."""
        with open(filename) as f:
            code = f.read() + "\n"
        return self.execute(code, targets=targets, block=block)

    # -- namespace -------------------------------------------------------------------------

    def push(self, ns, targets=None, block=None, track=None):
        """Update the engines' namespaces with the dict ``ns``."""
        if not isinstance(ns, dict):
            raise TypeError(f"push needs a dict of names to values, not {type(ns).__name__}")
        return self._really_apply(update_namespace, (USER_NAMESPACE, ns), targets=targets, block=block, track=track,
                                  fname="push")

    def update(self, ns):
        return self.push(ns)

    def __setitem__(self, key, value):
        self.update({key: value})

    def pull(self, names, targets=None, block=None):
        """Values of ``names`` (each evaluated on the engine: ``'a.b'`` works)."""
        if isinstance(names, str):
            arg = Reference(names)
        elif isinstance(names, (list, tuple, set)) and all(isinstance(n, str) for n in names):
            arg = [Reference(n) for n in names]
        else:
            raise TypeError(f"names must be a str or a list of str, not {names!r}")
        return self._really_apply(identity, (arg,), targets=targets, block=block, fname="pull")

    def get(self, key_s):
        return self.pull(key_s, block=True)

    def __getitem__(self, key):
        return self.get(key)

    def scatter(self, key, seq, dist="b", flatten=False, targets=None, block=None, track=None):
        """Split ``seq`` over the targets and bind each share to ``key`` there."""
        block = self.block if block is None else block
        track = self.track if track is None else track
        pairs, _ = self.client._resolve_targets(self.targets if targets is None else targets)
        shares = partition.partition(partition.as_sequence(seq), len(pairs), dist)
        if flatten:
            shares = partition.flatten_singletons(shares)
        futures = []
        for pair, share in zip(pairs, shares):
            futures += self.client._apply_futures([pair], update_namespace, (USER_NAMESPACE, {key: share}), {},
                                                  track, self.label, self.history)
        ar = self._send(futures, False, "scatter", block=False)
        return ar if self._finish(ar, block) is ar else None

    def gather(self, key, dist="b", targets=None, block=None):
        """Pull ``key`` from every target and join the shares (inverse of ``scatter``)."""
        block = self.block if block is None else block
        pairs, _ = self.client._resolve_targets(self.targets if targets is None else targets)
        futures = []
        for pair in pairs:
            futures += self.client._apply_futures([pair], identity, (Reference(key),), {}, False, self.label,
                                                  self.history)
        return self._send(futures, False, "gather", block, kind=AsyncMapResult, dist=dist, elementwise=False)

    # -- imports, serializers ----------------------------------------------------------------

    def sync_imports(self, local=True, quiet=False):
        """Context manager: imports in the block also run on the engines."""
        return sync_imports(self, local=local, quiet=quiet)

    @property
    def importer(self):
        return self.sync_imports(True)

    def use_pickle(self):
        """Back to the default serializer, here and on the engines (as in ipyparallel)."""
        serialize.use_pickle()
        return self.apply(serialize.use_pickle)

    def use_cloudpickle(self):
        """cloudpickle's by-value globals, here and on the engines."""
        serialize.use_cloudpickle()
        return self.apply(serialize.use_cloudpickle)

    def use_dill(self):
        """Not supported (see :func:`kernelpar.wire.serialize.use_dill`); nothing is sent."""
        serialize.use_dill()

    # -- control (thin wrappers around the client) -------------------------------------------

    def clear(self, targets=None, block=None):
        return self.client.clear(targets=self.targets if targets is None else targets, block=block)

    def shutdown(self, targets=None, restart=False, hub=False, block=None):
        return self.client.shutdown(targets=self.targets if targets is None else targets, restart=restart, hub=hub,
                                    block=block)
