"""``Client``: the connection to one controller and its engines (ipyparallel 9.2 API).

Construction reads the connection file (:mod:`.connect`), starts the IO thread
(:mod:`.ioloop`, with the message handling of :mod:`.dispatch`) and performs the
``connection_request`` handshake: versions are compared (``ProtocolVersionError`` names
both sides) and the engine table is filled from the reply.  A controller that does not
answer within ``timeout`` gives ``TimeoutError("Hub connection request timed out")``.

Every request is built in the caller's thread (serialized, signed, given a
:class:`~.futures.MessageFuture`), then handed to the IO thread, which alone owns the
sockets.  Task msg_ids are ``<session>_<n>`` from one counter, which is what lets
:class:`~.history.IdHistory` keep ``history`` compact.
"""

import concurrent.futures
import itertools
import numbers
import os
import sys
import threading
import warnings
import weakref

import zmq

from .. import errors
from ..wire import connection, shm
from ..wire.protocol import execute_content
from ..wire.serialize import pack_apply
from ..wire.session import Session, parse_date, utcnow
from . import connect, display
from .asyncresult import AsyncResult
from .broadcastview import BroadcastView
from .dispatch import TASK_KINDS, Dispatcher
from .futures import MessageFuture, Metadata
from .history import IdHistory
from .hubqueries import HubQueries
from .ioloop import IOLoop
from .lbview import LoadBalancedView
from .streaming import noninteractive_env
from .streaming import progress as progress_display
from .view import DirectView

_UNSUPPORTED = ("sshserver", "sshkey", "password", "paramiko")


class Client(HubQueries):
    """A connection to a kernelpar (ipyparallel-compatible) controller."""

    block = False

    def __init__(self, connection_info=None, *, url_file=None, profile=None, profile_dir=None, ipython_dir=None,
                 cluster_id=None, timeout=10, context=None, cluster=None, debug=False, **kwargs):
        url_or_file = kwargs.pop("url_or_file", None)
        for name in _UNSUPPORTED:
            if kwargs.pop(name, None) is not None:
                raise NotImplementedError(f"Client({name}=...): ssh tunnels are not supported by kernelpar yet")
        if kwargs:
            raise TypeError(f"Client() got unexpected keyword arguments: {', '.join(sorted(kwargs))}")
        self._closed = True  # until the IO thread runs, close() has nothing to do
        self.timeout = timeout
        self.debug = debug
        self.cluster = cluster
        self.profile = profile
        info, self.profile_dir = connect.resolve(
            connection_info, url_file, url_or_file, profile, profile_dir, ipython_dir, cluster_id, timeout)
        self.connection_info = info
        self._task_scheme = info.get("task_scheme") or "leastload"
        self.session = Session(info["key"])
        self._task_prefix = f"{self.session.session}_"
        self._task_counter = itertools.count()
        self._submit_lock = threading.Lock()
        self.history = IdHistory(self._task_prefix)
        self.outstanding = set()
        self.results = {}
        self.metadata = {}
        self._dispatcher = Dispatcher(self.session, self.outstanding, self.results)
        self._dispatcher.task_scheme = self._task_scheme
        self._loop = self._start_io(info, context or zmq.Context.instance())
        self._closed = False
        if shm.available():
            # engines on this machine hand large results over through /dev/shm
            shm.sweep()
            shm.create_marker("client", self.session.session)
        self._finalizer = weakref.finalize(self, _stop, self._loop, self.session.session)
        try:
            self._connect(timeout)
        except BaseException:
            self.close()
            raise
        if "IPython" in sys.modules:  # never import IPython: only register magics inside a running one
            _activate_magics_in_ipython(self)

    def _start_io(self, info, context):
        ident = self.session.session.encode("ascii")
        dealer = {zmq.IDENTITY: ident, zmq.SNDHWM: 0, zmq.RCVHWM: 0}
        channels = [
            # iopub first: output that arrives in the same poll as its reply is counted first
            ("iopub", zmq.SUB, connection.connect_url(info, "iopub"), {zmq.RCVHWM: 0, zmq.SUBSCRIBE: ident}),
            ("mux", zmq.DEALER, connection.connect_url(info, "mux"), dealer),
            ("control", zmq.DEALER, connection.connect_url(info, "control"), dealer),
            ("registration", zmq.DEALER, connection.connect_url(info, "registration"), dealer),
            ("notification", zmq.SUB, connection.connect_url(info, "notification"),
             {zmq.RCVHWM: 0, zmq.SUBSCRIBE: b""}),
        ]
        for optional in ("task", "broadcast"):
            if info.get(optional) is not None:
                channels.append((optional, zmq.DEALER, connection.connect_url(info, optional), dealer))
        d = self._dispatcher
        handlers = {"iopub": d.on_iopub, "mux": d.on_reply, "task": d.on_reply, "broadcast": d.on_reply,
                    "control": d.on_reply,
                    "registration": d.on_registration, "notification": d.on_notification}
        loop = IOLoop(context, channels, handlers, on_stop=d.on_stop)
        d.loop = loop
        loop.start()
        return loop

    def _connect(self, timeout):
        mine = connection.versions()
        reply = self._hub_request("connection_request", {"versions": mine}, timeout)
        theirs = reply.get("versions")
        if theirs is not None:
            problem = connection.version_mismatch(mine, theirs, "this client", "the controller")
            if problem is not None:
                raise errors.ProtocolVersionError(problem)
        if reply.get("status") != "ok":
            reason = str(reply.get("reason", reply))
            cls = errors.ProtocolVersionError if "version" in reason.lower() else errors.KernelError
            raise cls(f"The controller refused the connection: {reason}")
        self._in_io_thread(self._dispatcher.set_engines, reply.get("engines") or {})
        self._loop.submit(self._dispatcher.start_resync)

    # -- IO-thread plumbing ------------------------------------------------------

    def _check_open(self):
        if self._closed:
            raise RuntimeError("This client has been closed")

    def _in_io_thread(self, fn, *args):
        """Run ``fn`` in the IO thread and wait for it (engine-table changes live there)."""
        done = concurrent.futures.Future()

        def call():
            try:
                done.set_result(fn(*args))
            except BaseException as e:
                done.set_exception(e)

        self._loop.submit(call)
        return done.result()

    def _hub_request(self, msg_type, content, timeout=None, with_buffers=False):
        """Ask the hub; return the reply content, or ``(content, buffers)`` (errors raised)."""
        self._check_open()
        fut = self._dispatcher.hub_future(msg_type, content)
        self._dispatcher.register(fut)
        self._loop.submit(self._dispatcher.send_request, fut, self.timeout if timeout is None else timeout)
        reply = fut.result()
        if reply.get("status") == "error" and msg_type != "connection_request":
            if reply.get("ename"):
                raise errors.unwrap_exception(reply)
            raise errors.KernelError(f"hub {msg_type} failed: {reply.get('reason', reply)}")
        return (reply, list(fut.buffers)) if with_buffers else reply

    def _send(self, futures):
        if not futures:
            return
        self._check_open()
        outstanding, metadata = self.outstanding, self.metadata
        register = self._dispatcher.register
        for fut in futures:
            if fut.kind in ("apply", "execute"):
                outstanding.add(fut.msg_id)
                metadata[fut.msg_id] = fut.metadata
            register(fut)
        # the IO thread sends: it batches what callers queue while it is busy, which
        # costs fewer wake-ups than each caller sending for itself (measured both ways)
        if len(futures) == 1:
            self._loop.submit(self._dispatcher.send_task, futures[0])
        else:
            self._loop.submit(_send_all, self._dispatcher.send_task, futures)

    # -- building requests (caller's thread) ------------------------------------------

    def _next_task_id(self, view_history):
        """The next task msg_id, noted in the client's history (and the view's)."""
        with self._submit_lock:
            n = next(self._task_counter)
            self.history.append_number(n)
            if view_history is not None:
                view_history.append_number(n)
        return f"{self._task_prefix}{n}"

    def _task_future(self, kind, msg_type, eid, uuid, content, buffers, track, label, view_history,
                     scheduling=None):
        """A task's future, signed and ready; nothing is registered until ``_send``.

        ``uuid`` None means load-balanced: the task goes to the scheduler on the task
        channel, with the ``scheduling`` flags in its metadata.
        """
        msg_id = self._next_task_id(view_history)
        header = self.session.header(msg_type, msg_id)
        md = Metadata(msg_id=msg_id, submitted=parse_date(header["date"]), engine_id=eid, engine_uuid=uuid, label=label)
        metadata = dict(scheduling) if scheduling else {}
        if label:
            metadata["label"] = label
        idents = () if uuid is None else (uuid.encode("ascii"),)
        frames, _ = self.session.serialize(msg_type, content, metadata=metadata, buffers=buffers, idents=idents,
                                           header=header)
        return MessageFuture(msg_id, kind, msg_type, "mux" if uuid is not None else "task", frames, eid, uuid, md,
                             track)

    def _broadcast(self, kind, msg_type, pairs, content, buffers, coalescing, label=None, view_history=None):
        """One broadcast message and the futures of its per-engine copies (see :mod:`.broadcastview`).

        The copies' msg_ids come from this client's counter, like any task's, and
        travel in the metadata; the controller gives each engine its copy.
        """
        if self.connection_info.get("broadcast") is None:
            raise RuntimeError("this controller has no broadcast channel (its task scheme is 'pure')")
        peers = [("engine", uuid) for _, uuid in pairs]
        buffers, shared, handle = shm.export_for(buffers, peers, unlinker_pid=os.getpid())
        futures = []
        for eid, uuid in pairs:
            msg_id = self._next_task_id(view_history)
            md = Metadata(msg_id=msg_id, submitted=utcnow(), engine_id=eid, engine_uuid=uuid, label=label,
                          is_broadcast=True, is_coalescing=bool(coalescing))
            futures.append(MessageFuture(msg_id, kind, msg_type, "broadcast", None, eid, uuid, md))
        metadata = {"targets": [uuid for _, uuid in pairs], "msg_ids": [f.msg_id for f in futures],
                    "is_coalescing": bool(coalescing)}
        if shared:
            metadata[shm.METADATA_KEY] = shared
        if label:
            metadata["label"] = label
        frames, _ = self.session.serialize(msg_type, content, metadata=metadata, buffers=buffers)
        _release_when_done(handle, futures)
        return futures, frames

    def _send_broadcast(self, futures, frames):
        self._check_open()
        for fut in futures:
            self.outstanding.add(fut.msg_id)
            self.metadata[fut.msg_id] = fut.metadata
            self._dispatcher.register(fut)
        self._loop.submit(self._dispatcher.send_broadcast, futures, frames)

    def _lb_future(self, f, args, kwargs, scheduling, track=False, label=None, view_history=None):
        """A load-balanced apply's future (see :mod:`.lbview`)."""
        if self.connection_info.get("task") is None:
            raise RuntimeError("this controller's connection info has no task channel: load balancing is unavailable")
        if self._task_scheme == "pure" and self._dispatcher.lost_engine:
            raise RuntimeError("Task farming is disabled: an engine unregistered, and the controller's 'pure' "
                               "scheme cannot tell which tasks it held")
        # any engine may get it (a retry may move it): share only if every engine can map it
        peers = [("engine", uuid) for uuid in self._dispatcher.engines.values()]
        buffers, shared, handle = shm.export_for(pack_apply(f, args, kwargs), peers, unlinker_pid=os.getpid())
        if shared:
            scheduling = dict(scheduling, **{shm.METADATA_KEY: shared})
        fut = self._task_future("apply", "apply_request", None, None, None, buffers, track, label, view_history,
                                scheduling)
        _release_when_done(handle, [fut])
        return fut

    def _apply_futures(self, pairs, f, args, kwargs, track=False, label=None, view_history=None, metadata=None):
        """One apply future per ``(id, uuid)`` pair; ``metadata`` is added to each request's."""
        buffers, shared, handle = shm.export_for(pack_apply(f, args, kwargs), [("engine", uuid) for _, uuid in pairs])
        extra = dict(metadata) if metadata else None
        if shared:
            extra = {**(extra or {}), shm.METADATA_KEY: shared}
        futures = [self._task_future("apply", "apply_request", eid, uuid, None, buffers, track, label, view_history,
                                     extra)
                   for eid, uuid in pairs]
        _release_when_done(handle, futures)
        return futures

    def _execute_futures(self, pairs, code, silent=True, label=None, view_history=None, metadata=None):
        """One execute future per ``(id, uuid)`` pair; ``metadata`` is added to each request's."""
        content = execute_content(code, silent)
        return [self._task_future("execute", "execute_request", eid, uuid, content, (), False, label, view_history,
                                  metadata)
                for eid, uuid in pairs]

    def _control_futures(self, msg_type, content, pairs):
        futures = []
        for eid, uuid in pairs:
            frames, header = self.session.serialize(msg_type, content, idents=(uuid.encode("ascii"),))
            futures.append(MessageFuture(header["msg_id"], "control", msg_type, "control", frames, eid, uuid))
        return futures

    def _control(self, msg_type, content, targets, block):
        block = self.block if block is None else block
        pairs, _ = self._resolve_targets(targets)
        futures = self._control_futures(msg_type, content, pairs)
        ar = AsyncResult(self, futures, fname=msg_type.replace("_request", ""))
        self._send(futures)
        if not block:
            return ar
        ar.get()
        return None

    # -- engines and targets ---------------------------------------------------------------

    @property
    def ids(self):
        """Sorted list of the registered engine ids (a copy)."""
        return sorted(self._dispatcher.engines)

    def __len__(self):
        return len(self._dispatcher.engines)

    def _resolve_targets(self, targets):
        """``([(id, uuid), ...], single)`` for a targets spec; single for an int."""
        engines = self._dispatcher.engines
        if not engines:
            raise errors.NoEnginesRegistered()
        if targets is None or targets == "all":
            return sorted(engines.items()), False
        single = isinstance(targets, numbers.Integral) and not isinstance(targets, bool)
        if single:
            ids = [int(targets)]
        elif isinstance(targets, slice):
            ids = sorted(engines)[targets]
        elif isinstance(targets, (list, tuple, range, set)):
            ids = list(targets)
        else:
            raise TypeError(f"targets must be 'all', an int, a slice or a list of ints, not {targets!r}")
        pairs = []
        for eid in ids:
            if not isinstance(eid, numbers.Integral) or isinstance(eid, bool):
                raise TypeError(f"engine ids are ints, not {eid!r}")
            if eid not in engines:
                raise IndexError(f"No such engine: {eid} (registered: {sorted(engines)})")
            pairs.append((int(eid), engines[eid]))
        if not pairs:
            raise IndexError(f"No engines selected by targets={targets!r}")
        return pairs, single

    def __getitem__(self, key):
        """``rc[0]`` (bare results), ``rc[-1]``, ``rc[::2]`` (evaluated now), ``rc[[0, 2]]``."""
        if isinstance(key, numbers.Integral) and not isinstance(key, bool):
            ids = self.ids
            if not ids:
                raise errors.NoEnginesRegistered()
            if key < 0:
                if -key > len(ids):
                    raise IndexError(f"No such engine: {key} ({len(ids)} registered)")
                key = ids[key]
            return self.direct_view(self._resolve_targets(int(key))[0][0][0])
        if isinstance(key, slice):
            return self.direct_view([eid for eid, _ in self._resolve_targets(key)[0]])
        if isinstance(key, (list, tuple, range)):
            return self.direct_view([eid for eid, _ in self._resolve_targets(list(key))[0]])
        raise TypeError(f"key by int, slice or list of ints, not {type(key).__name__}")

    def __iter__(self):
        for eid in self.ids:
            yield self.direct_view(eid)

    def direct_view(self, targets="all", **kwargs):
        """A DirectView; ``'all'`` is re-evaluated at every call (engines added later count)."""
        return DirectView(self, targets, **kwargs)

    def broadcast_view(self, targets="all", is_coalescing=False, **kwargs):
        """A BroadcastView: one message to the controller, which fans it out to ``targets``
        (evaluated now, as ipyparallel does: a list of the engines there are)."""
        ids = [eid for eid, _ in self._resolve_targets(targets)[0]]
        return BroadcastView(self, ids, is_coalescing=is_coalescing, **kwargs)

    def load_balanced_view(self, targets=None, **kwargs):
        """A LoadBalancedView: the controller's scheduler places each task (``targets`` restricts it)."""
        return LoadBalancedView(self, targets, **kwargs)

    def activate(self, targets="all", suffix=""):
        """Register the parallel magics (``%px``...) on a new blocking DirectView of ``targets``
        (names get ``suffix``: ``%px0``...); return that view."""
        view = self.direct_view(targets)
        view.block = True
        view.activate(suffix)
        return view

    def executor(self, targets=None):
        """A PEP 3148 executor over a load-balanced view (``targets`` restricts it)."""
        return self.load_balanced_view(targets).executor

    def wait_for_engines(self, n=None, *, timeout=-1, block=True, interactive=None, widget=None):
        """Wait until at least ``n`` engines are registered (``TimeoutError`` after ``timeout`` s).

        ``n`` defaults to the size of the client's cluster.  ``interactive`` (default: True
        when running in IPython, engines are missing and neither ``KERNELPAR_NONINTERACTIVE``
        nor ``IPP_NONINTERACTIVE`` is set) shows progress (``N/M engines``) while waiting: a
        tqdm bar, tqdm's notebook widget in a Jupyter kernel (``widget`` forces one or the
        other), or plain lines when the output is not a terminal or one of those variables
        is set.  ``block=False`` returns a Future instead.
        """
        self._check_open()
        if n is None:
            n = getattr(self.cluster, "n", None)
            if n is None:
                raise TypeError("wait_for_engines() needs n (the number of engines to wait for)")
        done = concurrent.futures.Future()
        limit = None if timeout is None or timeout < 0 else timeout
        if interactive is None:
            # as ipyparallel: in IPython, unless IPP_NONINTERACTIVE (or ours) says otherwise
            interactive = (display._ipython_shell() is not None and not noninteractive_env()
                           and len(self._dispatcher.engines) < n)  # nothing to show when they are there
        bar = None
        if interactive:
            bar = progress_display(n, unit="engines", widget=widget, verb="ready",
                                   initial=len(self._dispatcher.engines))
        self._loop.submit(self._dispatcher.add_waiter, n, done, limit)
        if bar is not None:
            if block:
                self._show_engine_progress(bar, done)
            else:
                threading.Thread(target=self._show_engine_progress, args=(bar, done),
                                 name="kernelpar-engine-progress", daemon=True).start()
        return done.result() if block else done

    def _show_engine_progress(self, bar, done):
        try:
            while True:
                finished = done.done() or bool(concurrent.futures.wait([done], 0.1).done)
                bar.update_to(len(self._dispatcher.engines))
                if finished:
                    break
        finally:
            bar.close()

    # -- waiting ------------------------------------------------------------------------------

    def _futures_of(self, jobs):
        if jobs is None:
            jobs = list(self.outstanding.copy())
        elif isinstance(jobs, (str, int, concurrent.futures.Future)):
            jobs = [jobs]
        futures = []
        for job in jobs:
            if isinstance(job, concurrent.futures.Future):
                futures.append(job)
                continue
            if isinstance(job, int):
                job = self.history[job]
            elif not isinstance(job, str):
                raise TypeError(f"jobs are msg_ids, history indices, AsyncResults or Futures, not {job!r}")
            fut = self._dispatcher.futures.get(job)
            if fut is not None:
                futures.append(fut)
        return futures

    def wait(self, jobs=None, timeout=-1):
        """Wait for jobs (default: everything outstanding); return False on timeout."""
        futures = self._futures_of(jobs)
        limit = None if timeout is None or timeout < 0 else timeout
        _, pending = concurrent.futures.wait(futures, limit)
        return not pending

    # -- control -------------------------------------------------------------------------------

    def abort(self, jobs=None, targets=None, block=None):
        """Drop queued (not yet running) tasks; they resolve with ``TaskAborted``."""
        if jobs is None:
            msg_ids = None
        else:
            msg_ids = self._msg_ids_from_jobs(jobs)
            # load-balanced tasks may still wait in the scheduler, which knows where the others are
            futures = self._dispatcher.futures
            balanced = {m for m in msg_ids if getattr(futures.get(m), "channel", None) == "task"}
            if balanced:
                self._hub_request("task_abort_request", {"msg_ids": sorted(balanced)})
                msg_ids = [m for m in msg_ids if m not in balanced]
                if not msg_ids:
                    return None
        return self._control("abort_request", {"msg_ids": msg_ids}, targets, block)

    def send_signal(self, sig, targets=None, block=None):
        """Send a signal (number or name such as ``'SIGINT'``) to the engines."""
        if not isinstance(sig, (int, str)):
            raise TypeError(f"sig must be a signal number or name, not {sig!r}")
        return self._control("signal_request", {"sig": sig}, targets, block)

    def clear(self, targets=None, block=None):
        """Reset the engines' namespaces."""
        return self._control("clear_request", {}, targets, block)

    def shutdown(self, targets="all", restart=False, hub=False, block=None):
        """Stop engines; with ``hub=True`` also the controller (and close this client)."""
        if restart:
            raise NotImplementedError("shutdown(restart=True) is not supported")
        block = True if hub else (self.block if block is None else block)
        result = None
        if not (hub and not self._dispatcher.engines):
            result = self._control("shutdown_request", {}, targets, block)
        if hub:
            self._hub_request("shutdown_request", {})
            self.close()
        return result

    def wait_interactive(self, jobs=None, interval=1.0, timeout=-1.0):
        """``wait`` showing progress (see ``AsyncResult.wait_interactive``); ``jobs``
        None: every outstanding task of this client."""
        if jobs is None:
            futures = [f for f in list(self._dispatcher.futures.values()) if f.kind in TASK_KINDS]
            if not futures:
                return
            ar = AsyncResult(self, futures, owner=False)
        else:
            ar = self.get_result(jobs, owner=False)
        return ar.wait_interactive(interval=interval, timeout=timeout)

    def queue_status(self, targets="all", verbose=False):
        """``{engine_id: {'queue': n, 'completed': n, 'tasks': n}, ..., 'unassigned': n}``."""
        if targets is None or targets == "all":
            ids = None
        else:
            ids = [eid for eid, _ in self._resolve_targets(targets)[0]]
        reply = self._hub_request("queue_request", {"targets": ids, "verbose": bool(verbose)})
        status = {int(k) if k.isdigit() else k: v for k, v in reply.get("queue", {}).items()}
        if isinstance(targets, numbers.Integral) and not isinstance(targets, bool):
            return status.get(int(targets), {})
        return status

    # -- legacy no-ops ---------------------------------------------------------------------------

    def spin(self):
        warnings.warn("Client.spin() is not needed: replies are received in a background thread",
                      DeprecationWarning, stacklevel=2)

    def spin_thread(self, interval=1):
        warnings.warn("Client.spin_thread() is not needed: replies are received in a background thread",
                      DeprecationWarning, stacklevel=2)

    def stop_spin_thread(self):
        warnings.warn("Client.stop_spin_thread() is not needed", DeprecationWarning, stacklevel=2)

    # -- lifetime --------------------------------------------------------------------------------

    def close(self, linger=None):
        """Stop the IO thread and close the sockets (linger 0).  Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._finalizer()

    @property
    def closed(self):
        return self._closed

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        state = "closed" if self._closed else f"{len(self)} engines"
        return f"<kernelpar.Client: {state}>"


def _stop(loop, session_id):
    loop.stop()
    shm.remove_marker("client", session_id)


def _release_when_done(handle, futures):
    """Unlink a message's shared-memory files once every engine it went to has answered."""
    if not handle:
        return
    left = [len(futures)]
    lock = threading.Lock()

    def one_done(_):
        with lock:
            left[0] -= 1
            last = left[0] == 0
        if last:
            handle.release()

    for fut in futures:
        fut.add_done_callback(one_done)


def _send_all(send, futures):
    for fut in futures:
        send(fut)


def _activate_magics_in_ipython(client):
    """The first client created inside IPython registers ``%px`` & co. (never fatal)."""
    try:
        from .magics import activate_first_client

        activate_first_client(client)
    except Exception as e:
        warnings.warn(f"could not register the parallel magics: {e}", stacklevel=3)
