"""``MultiEngineClient``: IPython 0.10's explicit-addressing client over a modern ``kernelpar.Client``.

Every method is one ``apply`` per targeted engine of a function of :mod:`.onengine`
through the mux channel (``execute``, ``push``/``pull``, ``keys``, ...), so commands to one
engine run in the order they were sent, blocking or not, as with 0.10's per-engine
controller queue; a failure aborts what is queued behind it on that engine
(:mod:`.commands`).

Results follow spec §3.4: a per-engine list in target order; engine failures are
collected until every engine answered, then one ``CompositeError`` wraps them.  Target
errors (``InvalidEngineID``, ``NoEnginesRegistered``) and local errors (pickling, a
``SyntaxError`` in ``run``'s file) are raised directly.  ``block=False`` returns a
:class:`.pendingresult.PendingResult`.

``scatter``/``gather``/``map`` and friends are in :mod:`.mecdata`.
"""

import numbers
import time
import warnings
from concurrent.futures import Future

from ..asyncresult import AsyncResult
from . import magic, onengine, translate
from .commands import (
    COMMAND_KEY,
    command_text,
    execute_metadata,
    nones,
    per_engine,
    request_metadata,
    shipped_function,
)
from .error import InvalidEngineID, NoEnginesRegistered
from .furl import FurlClient
from .mecdata import DataMethods
from .onengine import USER_NAMESPACE
from .pendingresult import LegacyCall, PendingTable, barrier
from .resultlist import ResultList

#: how long a blocking ``kill()`` waits for the engines to leave the engine table (s)
KILL_WAIT = 10.0

_PROPERTIES_WARNING = ("The MultiEngineClient's engine properties are deprecated (as in IPython 0.10): "
                       "the dependency system they serve is being refactored.")


class MultiEngineClient(FurlClient, DataMethods):
    """IPython 0.10's ``client.MultiEngineClient(furl_or_file='')`` (see the module docstring)."""

    furl_kind = "mec"

    def _setup(self, client):
        self._client = client
        self._pending = PendingTable()
        self.block = True
        self.targets = "all"

    def __repr__(self):
        return f"<MultiEngineClient of {self._client!r}: targets={self.targets!r}, block={self.block!r}>"

    # -- targets and block -------------------------------------------------------------------

    def _flags(self, targets, block):
        """The effective ``(targets, block)`` of a call, validated as 0.10 did."""
        targets = self.targets if targets is None else targets
        block = self.block if block is None else block
        if block not in (True, False):
            raise ValueError("block must be True or False")
        if not isinstance(targets, (str, list, tuple, numbers.Integral)):
            raise ValueError("targets must be a str, list, tuple or int")
        return targets, bool(block)

    def _pairs(self, targets, unknown="Engine with id {!r} is not registered"):
        """``[(engine id, uuid), ...]`` in target order (``'all'``: ascending ids)."""
        engines = self._client._dispatcher.engines
        if isinstance(targets, str):
            if targets != "all":
                raise InvalidEngineID(f"targets argument is not an int, list of ints or 'all': {targets!r}")
            if not engines:
                raise NoEnginesRegistered("There are no engines registered. "
                                          "Check the logs in ~/.ipython/log if you think there should have been.")
            return sorted(engines.items())
        ids = [targets] if isinstance(targets, numbers.Integral) else targets
        pairs = []
        for eid in ids:
            uuid = engines.get(eid) if isinstance(eid, numbers.Integral) else None
            if uuid is None:
                raise InvalidEngineID(unknown.format(eid))
            pairs.append((int(eid), uuid))
        return pairs

    def get_ids(self):
        """The registered engine ids, ascending."""
        return self._client.ids

    def __len__(self):
        return len(self.get_ids())

    # -- issuing commands ------------------------------------------------------------------------

    def _futures(self, pairs, f, args, text):
        return self._client._apply_futures(pairs, f, args, {}, metadata=request_metadata(text))

    def _issue(self, futures, method, finish, block):
        """Send ``futures``; the finished value if ``block``, else a PendingResult."""
        ar = AsyncResult(self._client, futures, fname=method, return_exceptions=True)
        self._client._send(futures)
        return self._deliver(LegacyCall(ar, finish), block)

    def _deliver(self, call, block):
        if block:
            return call.value()
        return self._pending.add(self, call)

    def _done(self, value, block):
        """A result computed here, delivered like the others."""
        fut = Future()
        fut.set_result(value)
        return self._deliver(LegacyCall(fut, lambda raw: raw), block)

    def _command(self, method, f, args, targets, block, text, shape=None, engine_method=None):
        """One apply of ``f(*args)`` per target: the usual shape of a method."""
        targets, block = self._flags(targets, block)
        futures = self._futures(self._pairs(targets), f, args, text)
        return self._issue(futures, method, per_engine(futures, method, engine_method, shape), block)

    def get_pending_deferred(self, deferred_id, block):
        """The value of a PendingResult (what ``PendingResult.get_result`` asks for)."""
        return self._pending.fetch(deferred_id, block)

    # -- code ------------------------------------------------------------------------------------

    def execute(self, lines, targets=None, block=None):
        """Run ``lines`` on each target; a ResultList of result dicts."""
        return self._execute(lines, targets, block, ResultList, "<string>")

    def _execute(self, lines, targets, block, shape, filename):
        if isinstance(lines, bytes):
            lines = lines.decode("utf-8")
        if not isinstance(lines, str):
            raise TypeError(f"execute needs a str of code, not {type(lines).__name__}")
        try:
            source = translate.for_engine(lines, filename)
        except SyntaxError:
            source = lines  # the engines report it, as for any SyntaxError
        targets, block = self._flags(targets, block)
        metadata = execute_metadata(command_text("execute", lines), lines, translate.engine_prelude())
        futures = self._client._execute_futures(self._pairs(targets), source, metadata=metadata)
        return self._issue(futures, "execute", per_engine(futures, "execute", shape=shape), block)

    def run(self, filename, targets=None, block=None):
        """Run a local file's source on the engines; a plain list of result dicts.

        The file is compiled here first: a ``SyntaxError`` is raised here, unwrapped.
        """
        with open(filename) as f:
            lines = f.read()
        compile(translate.for_engine(lines, filename), filename, "exec")
        return self._execute(lines, targets, block, list, filename)

    # -- namespace -------------------------------------------------------------------------------

    def push(self, namespace, targets=None, block=None):
        """Merge the dict ``namespace`` into each target's namespace; ``[None, ...]``."""
        if not isinstance(namespace, dict):
            raise TypeError(f"push needs a dict of names to values, not {type(namespace).__name__}")
        return self._command("push", onengine.push, (USER_NAMESPACE, namespace), targets, block,
                             command_text("push", list(namespace)))

    def pull(self, keys, targets=None, block=None):
        """Per-engine values: one for a str (or one-key list), a list for several keys."""
        return self._command("pull", onengine.pull, (USER_NAMESPACE, keys), targets, block, command_text("pull", keys))

    def zip_pull(self, keys, targets=None, block=None):
        """``pull`` regrouped by key: ``[(a0, a1, ...), (b0, b1, ...)]``.

        A single target gives that engine's value; a str is one key (0.10 counted its
        characters).
        """
        targets, block = self._flags(targets, block)
        single = isinstance(targets, numbers.Integral) or (isinstance(targets, (list, tuple)) and len(targets) == 1)
        several_keys = isinstance(keys, (list, tuple)) and len(keys) > 1

        def regroup(values):
            if single:
                return values[0]
            return list(zip(*values)) if several_keys else list(values)

        return self._command("zip_pull", onengine.pull, (USER_NAMESPACE, keys), targets, block,
                             command_text("pull", keys), shape=regroup, engine_method="pull")

    def push_function(self, namespace, targets=None, block=None):
        """Push functions; on the engines their globals are the engine's namespace
        (see :func:`.commands.shipped_function`)."""
        if not isinstance(namespace, dict):
            raise TypeError(f"push_function needs a dict of names to functions, not {type(namespace).__name__}")
        functions = {name: shipped_function(f) for name, f in namespace.items()}
        return self._command("push_function", onengine.push_function,
                             (USER_NAMESPACE, functions, translate.engine_prelude()), targets, block,
                             command_text("push_function", list(namespace)))

    def pull_function(self, keys, targets=None, block=None):
        """Like ``pull``, for functions (rebuilt here with ``__main__``'s globals)."""
        return self._command("pull_function", onengine.pull, (USER_NAMESPACE, keys), targets, block,
                             command_text("pull_function", keys), engine_method="pull_function")

    def push_serialized(self, namespace, targets=None, block=None):
        raise NotImplementedError("push_serialized is not supported by kernelpar: use push")

    def pull_serialized(self, keys, targets=None, block=None):
        raise NotImplementedError("pull_serialized is not supported by kernelpar: use pull")

    def __setitem__(self, key, value):
        """``mec['a'] = v``: push with the instance's targets and block."""
        return self.push({key: value})

    def __getitem__(self, key):
        """``mec['a']``: pull with the instance's targets and block."""
        if not isinstance(key, str):
            raise TypeError("__getitem__ only takes strs")
        return self.pull(key)

    def keys(self, targets=None, block=None):
        """Per-engine lists of the names in the engines' namespaces."""
        return self._command("keys", onengine.keys, (USER_NAMESPACE,), targets, block, "keys()")

    def get_result(self, i=None, targets=None, block=None):
        """A ResultList of each target's stored result of command ``i`` (None: the latest)."""
        return self._command("get_result", onengine.get_result, (USER_NAMESPACE, i), targets, block,
                             command_text("get_result", i), shape=ResultList)

    def reset(self, targets=None, block=None):
        """Clear each target's queue, then give it a fresh interpreter; ``[None, ...]``."""
        targets, block = self._flags(targets, block)
        self.clear_queue(targets, block=True)
        return self._command("reset", onengine.reset, (USER_NAMESPACE,), targets, block, "reset()")

    # -- queues ------------------------------------------------------------------------------------

    def _queued(self, pairs):
        """``{engine id: [msg_id, ...]}``: each engine's outstanding requests, oldest first.

        The hub's view (every client's requests), plus this client's own requests the hub
        may not have seen yet, minus its own requests already answered (the hub records a
        reply a moment after the client has it).
        """
        client = self._client
        status = client.queue_status(targets=[eid for eid, _ in pairs], verbose=True)
        known, outstanding = client.metadata, client.outstanding
        queued = {eid: [m for m in status.get(eid, {}).get("queue", []) if m not in known or m in outstanding]
                  for eid, _ in pairs}
        for fut in list(self._client._dispatcher.futures.values()):
            ids = queued.get(fut.engine_id)
            if ids is not None and fut.kind == "apply" and fut.msg_id not in ids:
                ids.append(fut.msg_id)
        return queued

    def clear_queue(self, targets=None, block=None):
        """Drop the commands waiting on each target (the running one goes on); ``[None, ...]``.

        Their PendingResults raise ``CompositeError`` wrapping ``QueueCleared``.
        """
        targets, block = self._flags(targets, block)
        pairs = self._pairs(targets)
        queued = self._queued(pairs)
        futures = []
        for pair in pairs:
            futures += self._client._control_futures("abort_request", {"msg_ids": queued[pair[0]]}, [pair])
        return self._issue(futures, "clear_queue", per_engine(futures, "clear_queue", shape=nones), block)

    def queue_status(self, targets=None, block=None):
        """``[(id, {'queue': [command, ...], 'pending': command or 'None'}), ...]``."""
        targets, block = self._flags(targets, block)
        pairs = self._pairs(targets)
        queued = self._queued(pairs)
        every = [m for ids in queued.values() for m in ids]
        texts = {}
        if every:
            for record in self._client.db_query({"msg_id": {"$in": every}}, keys=["metadata", "header"]):
                metadata, header = record.get("metadata") or {}, record.get("header") or {}
                texts[record["msg_id"]] = metadata.get(COMMAND_KEY) or f"{header.get('msg_type', 'request')}()"
        status = []
        for eid, _ in pairs:
            shown = [texts.get(m, f"request({m!r})") for m in queued[eid]]
            status.append((eid, {"queue": shown[1:], "pending": shown[0] if shown else "None"}))
        return self._done(status, block)

    def barrier(self, pendingResults):
        """Wait for every PendingResult (errors swallowed); ``None``."""
        barrier(pendingResults)

    def flush(self):
        """Forget every un-fetched pending result: fetching one raises ``InvalidDeferredID``."""
        self._pending.flush()

    clear_pending_results = flush

    # -- engines -----------------------------------------------------------------------------------

    def kill(self, controller=False, targets=None, block=None):
        """Stop the target engines (``controller=True``: every engine and the controller).

        ``[None, ...]``, or ``None`` with ``controller=True``.  Blocking waits until the
        engines have left ``get_ids()``.
        """
        if controller:
            if self.get_ids():
                self.clear_queue("all", block=True)
            self._client.shutdown(targets="all", hub=True)
            return None
        targets, block = self._flags(targets, block)
        pairs = self._pairs(targets)
        self.clear_queue(targets, block=True)
        futures = self._client._control_futures("shutdown_request", {}, pairs)
        result = self._issue(futures, "kill", per_engine(futures, "kill", shape=nones), block)
        if block:
            self._wait_until_gone({uuid for _, uuid in pairs})
        return result

    def _wait_until_gone(self, uuids):
        deadline = time.monotonic() + KILL_WAIT
        while uuids & set(self._client._dispatcher.engines.values()) and time.monotonic() < deadline:
            time.sleep(0.05)

    # -- properties (deprecated in 0.10 already) ------------------------------------------------------

    def _property_command(self, name, f, args, targets, block, shape=None):
        warnings.warn(_PROPERTIES_WARNING, UserWarning, stacklevel=3)
        return self._command(name, f, (USER_NAMESPACE, *args), targets, block, command_text(name, *args), shape)

    def set_properties(self, properties, targets=None, block=None):
        return self._property_command("set_properties", onengine.set_properties, (properties,), targets, block)

    def get_properties(self, keys=None, targets=None, block=None):
        return self._property_command("get_properties", onengine.get_properties, (keys,), targets, block)

    def has_properties(self, keys, targets=None, block=None):
        return self._property_command("has_properties", onengine.has_properties, (keys,), targets, block)

    def del_properties(self, keys, targets=None, block=None):
        return self._property_command("del_properties", onengine.del_properties, (keys,), targets, block)

    def clear_properties(self, targets=None, block=None):
        return self._property_command("clear_properties", onengine.clear_properties, (), targets, block)

    # -- misc ------------------------------------------------------------------------------------------

    def activate(self):
        """Make this client the one of ``%px``, ``%result`` and ``%autopx``."""
        magic.activate(self)

    def benchmark(self, push_size=10000):
        """Latencies (msec) of a no-op on one and on all engines, and push speeds (MB/sec)."""
        ids = self.get_ids()

        def msec(targets):
            start = time.perf_counter()
            self.execute("pass", targets=targets, block=True)
            return ((time.perf_counter() - start) * 1000.0, "msec")

        report = {"single_engine_latency": msec(ids[0]), "all_engine_latency": msec("all")}
        try:
            import numpy
        except ImportError:
            return report
        data = numpy.zeros(push_size, dtype="float64")
        megabytes = data.nbytes / 1e6
        for key, targets, n in (("single_engine_push", ids[0], 1), ("all_engine_push", "all", len(ids))):
            start = time.perf_counter()
            self.push({"_ipython_benchmark": data}, targets=targets, block=True)
            report[key] = (n * megabytes / (time.perf_counter() - start), "MB/sec")
        return report

