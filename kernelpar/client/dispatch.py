"""What the IO thread does with messages: resolve futures, track engines, fail the lost.

Everything here runs in the client's IO thread (:mod:`.ioloop`) except :meth:`register`,
which callers use to enter a request in the table before it is sent.  No lock is needed:
the IO thread only iterates ``list()`` snapshots of the table, and other threads only
read ``engines`` (replaced, never mutated, on each change) and ``futures.get(msg_id)``.

Rules it follows (see :mod:`kernelpar.wire.protocol`):

* A reply is matched to its request by ``parent_header.msg_id``.  A task is resolved
  once its reply *and* the ``metadata.iopub`` output messages it announced have arrived;
  if output stops arriving for :data:`OUTPUT_GRACE` seconds (a lost iopub message), it is
  resolved with what it has.  Nothing waits forever on output.
* Engine death: on ``unregistration_notification``, or when a hub re-sync no longer
  lists an engine we learned of *before* asking, the engine's outstanding requests fail
  with ``EngineError("Engine N died while running task <msg_id>")`` after
  :data:`DEATH_GRACE` seconds (replies the engine sent before dying travel on another
  socket than the notification and may still be on their way).
* While requests are outstanding or someone waits for engines, the hub is asked for the
  engine list every :data:`RESYNC_INTERVAL` seconds, so a lost notification cannot
  leave a request hanging.  Hub requests time out on their own timer.
"""

import logging

import zmq

from .. import errors
from ..wire import shm
from ..wire.connection import versions
from ..wire.protocol import LEGACY_RESULT
from ..wire.serialize import deserialize_object
from ..wire.session import Message, utcnow
from .executereply import ExecuteReply
from .futures import MessageFuture, apply_iopub, apply_reply_metadata
from .namehints import name_error_hint

log = logging.getLogger("kernelpar.client")

OUTPUT_GRACE = 1.0
DEATH_GRACE = 0.25
RESYNC_INTERVAL = 1.0
RESYNC_TIMEOUT = 5 * RESYNC_INTERVAL
HUB_TIMEOUT = 10.0
#: re-sync requests in a row the controller may leave unanswered (each waits 5 re-sync
#: intervals) before the client decides it is gone and fails what it waits for
CONTROLLER_LOST_AFTER = 2
TASK_KINDS = ("apply", "execute")


class Dispatcher:
    def __init__(self, session, outstanding, results):
        self.session = session
        self.loop = None  # set by the client once the IOLoop exists
        self.outstanding = outstanding
        self.results = results
        self.futures = {}
        self.engines = {}  # id -> uuid; replaced on change (copy-on-write)
        self.dead = set()  # uuids of engines that unregistered: never re-added
        #: the controller's task scheme ('pure' cannot say which tasks a dead engine held)
        self.task_scheme = "leastload"
        self.lost_engine = False
        self._learned = {}  # uuid -> resync epoch at which we learned of it
        self._epoch = 0
        self._resync_pending = False
        self._resync_misses = 0
        self._waiters = []
        self.hub_stopped = False

    # -- sending ---------------------------------------------------------------

    def register(self, fut):
        """Make ``fut`` findable (``Client.wait``, replies) before it is sent (any thread)."""
        self.futures[fut.msg_id] = fut

    def send_broadcast(self, futures, frames):
        """Send one broadcast message for the registered ``futures`` of its copies (IO thread)."""
        problem = self.hub_stopped and "The controller has shut down; the broadcast was not sent"
        if not problem:
            try:
                self.loop.send("broadcast", frames)
            except zmq.ZMQError as e:
                problem = f"could not send the broadcast: {e}"
        for fut in futures:
            if problem:
                self.finish(fut, False, self._engine_error(fut, problem))
            else:
                fut.sent = True

    def send_request(self, fut, hub_timeout=HUB_TIMEOUT):
        """Send a registered hub request with its timeout (IO thread: timers live there)."""
        if fut.done():  # failed before it could be sent (e.g. the client closed)
            return
        if hub_timeout is not None and hub_timeout >= 0:
            self.loop.call_later(hub_timeout, self._hub_timeout, fut)
        self._transmit(fut)

    def send_task(self, fut):
        """Send a registered task or control request (IO thread)."""
        if fut.done():
            return
        problem = self._unreachable(fut) if fut.engine_uuid is not None else self._hub_gone(fut)
        if problem is not None:
            self.finish(fut, False, problem)
            return
        self._transmit(fut)

    def _transmit(self, fut):
        try:
            fut.tracker = self.loop.send(fut.channel, fut.frames, track=fut.track)
        except zmq.ZMQError as e:  # never leave a caller waiting for a message that did not go out
            self.finish(fut, False, errors.KernelError(f"could not send {fut.msg_type} {fut.msg_id}: {e}"))
            return
        finally:
            fut.frames = None
        fut.sent = True

    def _hub_gone(self, fut):
        if self.hub_stopped:
            return self._engine_error(fut, f"The controller has shut down; task {fut.msg_id} was not sent")
        return None

    def _unreachable(self, fut):
        problem = self._hub_gone(fut)
        if problem is not None:
            return problem
        if fut.engine_uuid in self.dead or fut.engine_id not in self.engines:
            return self._engine_error(fut, f"Engine {fut.engine_id} died before task {fut.msg_id} could run")
        return None

    def _hub_timeout(self, fut):
        if not fut.done():
            self.finish(fut, False, errors.TimeoutError(f"Hub {fut.msg_type.replace('_', ' ')} timed out"))

    # -- resolving -----------------------------------------------------------------

    def finish(self, fut, ok, value):
        self.futures.pop(fut.msg_id, None)
        if fut.grace_timer is not None:
            fut.grace_timer.cancel()
            fut.grace_timer = None
        if fut.kind in TASK_KINDS:
            self.outstanding.discard(fut.msg_id)
            self.results[fut.msg_id] = value  # popped when the owning AsyncResult resolves
            if not ok:
                md = fut.metadata
                if md["status"] is None:  # no reply: the engine died, the controller answered...
                    md["status"] = "error"
                if md["error"] is None and isinstance(value, errors.RemoteError):
                    md["error"] = value
        fut.finish(ok, value)

    def _engine_info(self, fut):
        return {"engine_id": fut.engine_id, "engine_uuid": fut.engine_uuid, "method": fut.kind}

    def _engine_error(self, fut, text):
        # a RemoteError too, as the scheduler's are (``except RemoteError`` sees every task failure)
        return errors.RemoteEngineError("EngineError", text, "", self._engine_info(fut))

    def _remote_error(self, fut, content):
        if not content.get("engine_info"):
            content = dict(content, engine_info=self._engine_info(fut))
        err = errors.unwrap_exception(content)
        hint = name_error_hint(err.ename, err.evalue, method=fut.kind)
        if hint is not None:
            errors.add_note(err, hint)
        return err

    # -- handlers (one per channel) ----------------------------------------------

    def on_registration(self, frames):
        msg = self.session.deserialize_or_drop(frames, "registration", log)
        if msg is None:
            return
        fut = self.futures.get(msg.parent_header.get("msg_id"))
        if fut is not None:
            fut.buffers = msg.buffers
            self.finish(fut, True, msg.content)

    def on_reply(self, frames):
        """A reply from an engine on mux, task, broadcast or control."""
        msg = self.session.deserialize_or_drop(frames, "mux/control", log)
        if msg is None:
            return
        if msg.msg_type == "coalesced_reply":
            self._split_coalesced(msg)
        else:
            self._handle_reply(msg)

    def _split_coalesced(self, msg):
        """A BroadcastView's replies, gathered by the controller into one message."""
        buffers = msg.buffers
        start = 0
        for sub in msg.content.get("replies", []):
            n = sub.get("nbuffers", 0)
            header = sub.get("header") or {}
            self._handle_reply(Message(
                idents=[], header=header, parent_header=sub.get("parent_header") or {},
                metadata=sub.get("metadata") or {}, content=sub.get("content") or {},
                buffers=buffers[start:start + n], msg_id=header.get("msg_id"), msg_type=header.get("msg_type")))
            start += n

    def _handle_reply(self, msg):
        fut = self.futures.get(msg.parent_header.get("msg_id"))
        if fut is None:
            log.debug("reply to unknown request %s dropped", msg.parent_header.get("msg_id"))
            return
        content = msg.content
        status = content.get("status")
        if fut.kind not in TASK_KINDS:
            ok = status == "ok"
            self.finish(fut, ok, content if ok else self._remote_error(fut, content))
            return
        if fut.engine_uuid is None:
            # load-balanced: the reply tells where it ran (None if the scheduler answered)
            fut.engine_uuid = msg.metadata.get("engine_uuid")
            fut.engine_id = msg.metadata.get("engine_id")
        apply_reply_metadata(fut.metadata, msg.metadata, utcnow())
        if status == "ok":
            ok = True
            if fut.kind == "apply":
                try:
                    buffers = msg.buffers
                    shared = msg.metadata.get(shm.METADATA_KEY)
                    if shared:
                        buffers = shm.attach_received(buffers, shared)
                    value = deserialize_object(buffers)
                except Exception as e:
                    ok, value = False, e
            elif LEGACY_RESULT in content:  # a legacy MultiEngineClient's execute: 0.10's dict
                value = content[LEGACY_RESULT]
            else:
                value = ExecuteReply(fut.msg_id, content, fut.metadata)
        elif status == "aborted":
            where = "" if fut.engine_id is None else f" on engine {fut.engine_id}"
            ok, value = False, errors.TaskAborted(f"Task {fut.msg_id} was aborted{where}")
            value.engine_info = self._engine_info(fut)
        else:
            ok, value = False, self._remote_error(fut, content)
        expected = msg.metadata.get("iopub") or 0
        fut.expected_iopub = expected
        if fut.iopub_seen >= expected:
            self.finish(fut, ok, value)
        else:
            fut.outcome = (ok, value)
            fut.grace_timer = self.loop.call_later(OUTPUT_GRACE, self._output_lost, fut)

    def _output_lost(self, fut):
        fut.grace_timer = None
        if not fut.done():
            log.warning("output of %s incomplete (%d of %d iopub messages); resolving without the rest",
                        fut.msg_id, fut.iopub_seen, fut.expected_iopub)
            self.finish(fut, *fut.outcome)

    def on_iopub(self, frames):
        msg = self.session.deserialize_or_drop(frames, "iopub", log)
        if msg is None:
            return
        fut = self.futures.get(msg.parent_header.get("msg_id"))
        if fut is None or fut.kind not in TASK_KINDS:
            return
        fut.iopub_seen += 1
        apply_iopub(fut.metadata, msg.msg_type, msg.content, lambda c: self._remote_error(fut, c), msg.buffers)
        if fut.expected_iopub is None:
            return
        if fut.iopub_seen >= fut.expected_iopub:
            self.finish(fut, *fut.outcome)
        else:  # output is still flowing: restart the grace period
            fut.grace_timer.cancel()
            fut.grace_timer = self.loop.call_later(OUTPUT_GRACE, self._output_lost, fut)

    def on_notification(self, frames):
        msg = self.session.deserialize_or_drop(frames, "notification", log)
        if msg is None:
            return
        content = msg.content
        if msg.msg_type == "registration_notification":
            self._add_engine(int(content["id"]), content["uuid"])
        elif msg.msg_type == "unregistration_notification":
            self._engine_gone(int(content["id"]), content["uuid"])
        elif msg.msg_type == "shutdown_notification":
            self._hub_shutdown()

    # -- engine table ----------------------------------------------------------------

    def set_engines(self, listed):
        """The engine list of the connection reply (IO thread)."""
        for eid, uuid in listed.items():
            self._add_engine(int(eid), uuid)

    def _add_engine(self, eid, uuid):
        if uuid in self.dead or self.engines.get(eid) == uuid:
            return
        self._learned[uuid] = self._epoch
        self.engines = {**self.engines, eid: uuid}
        self._check_waiters()

    def _engine_gone(self, eid, uuid):
        if uuid in self.dead:
            return
        self.dead.add(uuid)
        self.lost_engine = True
        self._learned.pop(uuid, None)
        if self.engines.get(eid) == uuid:
            engines = dict(self.engines)
            del engines[eid]
            self.engines = engines
        log.info("engine %d unregistered", eid)
        self.loop.call_later(DEATH_GRACE, self._fail_engine_requests, eid, uuid)
        for waiter in list(self._waiters):
            message = f"Engine {eid} unregistered while waiting for {waiter[0]} engines"
            self._end_waiter(waiter, errors.EngineError(message))

    def _fail_engine_requests(self, eid, uuid):
        pure = self.task_scheme == "pure"
        for fut in [f for f in list(self.futures.values())
                    if f.engine_uuid == uuid or (pure and f.channel == "task" and f.engine_uuid is None)]:
            if fut.engine_uuid is None:
                self.finish(fut, False, self._engine_error(
                    fut, f"Engine {eid} died; the 'pure' task scheme cannot tell which tasks it held, so task "
                         f"{fut.msg_id} may be lost and is failed rather than left waiting"))
                continue
            if fut.msg_type == "shutdown_request":
                self.finish(fut, True, {"status": "ok"})  # it did what we asked
            else:
                self.finish(fut, False, self._engine_error(fut, f"Engine {eid} died while running task {fut.msg_id}"))

    def _hub_shutdown(self):
        log.info("the controller is shutting down")
        self._controller_ended("The controller has shut down")

    def _controller_ended(self, why):
        """No reply will come any more: engines' tasks fail as their engines', the rest with ``why``."""
        self.hub_stopped = True
        for eid, uuid in list(self.engines.items()):
            self._engine_gone(eid, uuid)
        # after the engines' own (same grace): tasks still in the scheduler, held by no engine
        self.loop.call_later(DEATH_GRACE, self._fail_unanswered, why)

    def _fail_unanswered(self, why):
        for fut in [f for f in list(self.futures.values()) if f.kind in TASK_KINDS]:
            self.finish(fut, False, errors.KernelError(f"{why}: {fut.msg_type} {fut.msg_id} will get no reply"))

    # -- periodic re-sync with the hub -----------------------------------------------

    def start_resync(self):
        self.loop.call_later(RESYNC_INTERVAL, self._resync_tick)

    def _needs_resync(self):
        return bool(self._waiters) or any(f.kind != "hub" for f in list(self.futures.values()))

    def _resync_tick(self):
        self.loop.call_later(RESYNC_INTERVAL, self._resync_tick)
        if self._resync_pending or self.hub_stopped or not self._needs_resync():
            return
        self._resync_pending = True
        self._epoch += 1
        fut = self.hub_future("connection_request", {"versions": versions()})
        epoch = self._epoch
        fut.add_done_callback(lambda f: self._on_engine_list(f, epoch))
        self.register(fut)
        self.send_request(fut, hub_timeout=RESYNC_TIMEOUT)

    def hub_future(self, msg_type, content):
        frames, header = self.session.serialize(msg_type, content)
        return MessageFuture(header["msg_id"], "hub", msg_type, "registration", frames)

    def _on_engine_list(self, fut, epoch):
        self._resync_pending = False
        if isinstance(fut.exception(), errors.TimeoutError):
            self._resync_misses += 1
            if self._resync_misses >= CONTROLLER_LOST_AFTER and not self.hub_stopped:
                silent = self._resync_misses * RESYNC_TIMEOUT
                log.error("the controller has not answered for %g s: it is gone", silent)
                self._controller_ended(f"The controller stopped answering (nothing for {silent:g} s)")
            return
        self._resync_misses = 0
        if fut.exception() is not None or fut.result().get("status") != "ok":
            return
        listed = {int(k): v for k, v in fut.result().get("engines", {}).items()}
        for eid, uuid in listed.items():
            self._add_engine(eid, uuid)
        for eid, uuid in list(self.engines.items()):
            if eid not in listed and self._learned.get(uuid, epoch) < epoch:
                self._engine_gone(eid, uuid)

    # -- waiting for engines -----------------------------------------------------------

    def add_waiter(self, n, future, timeout):
        """Resolve ``future`` once ``n`` engines are registered (IO thread)."""
        waiter = [n, future, None]
        if len(self.engines) >= n:
            future.set_result(None)
            return
        self._waiters.append(waiter)
        if timeout is not None:
            waiter[2] = self.loop.call_later(timeout, self._waiter_timeout, waiter, timeout)

    def _check_waiters(self):
        for waiter in list(self._waiters):
            if len(self.engines) >= waiter[0]:
                self._end_waiter(waiter, None)

    def _waiter_timeout(self, waiter, timeout):
        n = waiter[0]
        self._end_waiter(waiter, errors.TimeoutError(
            f"{n} engines not ready in {timeout:g} seconds. Currently ready: {len(self.engines)}"))

    def _end_waiter(self, waiter, exc):
        if waiter not in self._waiters:
            return
        self._waiters.remove(waiter)
        if waiter[2] is not None:
            waiter[2].cancel()
        if exc is None:
            waiter[1].set_result(None)
        else:
            waiter[1].set_exception(exc)

    # -- closing ---------------------------------------------------------------------------

    def on_stop(self):
        """The IO thread is stopping: nothing outstanding may be left waiting."""
        for fut in list(self.futures.values()):
            message = f"The client was closed while {fut.msg_type} {fut.msg_id} was outstanding"
            self.finish(fut, False, errors.KernelError(message))
        for waiter in list(self._waiters):
            self._end_waiter(waiter, errors.KernelError("The client was closed while waiting for engines"))
