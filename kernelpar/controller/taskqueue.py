"""The load-balanced task channel: the :class:`.scheduler.TaskScheduler`'s I/O edge.

Two ROUTER sockets on the reactor thread: clients' DEALERs connect to the client-facing
one, engines' task DEALERs (identity = engine uuid) to the engine-facing one.  Frames
on the way (the routing ids are the only thing that changes)::

    client  -> [client_id, <IDS|MSG>, ...]               (client-facing ROUTER)
    engine  <- [engine_uuid, client_id, <IDS|MSG>, ...]  (engine-facing ROUTER)
    engine  -> [engine_uuid, client_id, <IDS|MSG>, ...]
    client  <- [client_id, engine_uuid, <IDS|MSG>, ...]  (so a client sees the same
                                                          [engine_uuid, msg] as on mux)

Every message is checked (signature, framing) with only its header decoded; the
metadata, which carries the scheduling flags (``after``, ``follow``, ``timeout``,
``retries``, ``targets``), is decoded once on the way in, and a reply's content only
when it is an error (to tell ``UnmetDependency`` apart).  The scheduler decides; this
class carries its decisions out, keeps the hub's task records (no monitor copies are
needed for this channel: the relay *is* the hub's process) and answers the scheduler's
failures (``ImpossibleDependency``, ``TaskTimeout``, ``EngineError``...) with an error
reply signed by the controller.  ``engine_ready`` messages arriving on the
engine-facing socket are registration steps for the hub.

A request whose metadata has ``legacy`` comes from the IPython 0.10 ``TaskClient``
(:mod:`.legacytasks`): it is numbered on arrival, and its number goes back to the client
at once (a ``legacy_task_reply`` answering the ``ack`` msg_id the client chose, while the
task is already on its way to an engine; one reply for the whole batch of a ``map``).  The
hub's ``legacy_task_request`` operations (:meth:`TaskQueue.legacy_request`) name tasks by
those numbers.
"""

import logging
import numbers
import sys

import zmq

from ..wire import protocol
from ..wire.protocol import reply_type
from ..wire.session import isoformat, pack, unpack
from ..wire.zmqtwisted import ZmqSocket
from .broadcast import Broadcaster
from .devices import unlimited
from .legacytasks import AckBatches, LegacyTasks, parse_stages
from .scheduler import Assign, Deliver, Fail, Task, TaskScheduler

log = logging.getLogger("kernelpar.controller")

_RECORDED = ("header", "metadata", "content", "buffers")


class FlagError(ValueError):
    """A task's scheduling flags cannot be honoured; the message says which and why."""


def parse_flags(metadata):
    """``(targets, after, follow, timeout, retries)`` from a task's metadata, validated."""
    targets = metadata.get("targets")
    if targets is not None:
        if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
            raise FlagError(f"targets must be a list of engine uuids, not {targets!r}")
        targets = frozenset(targets) or None
    deps = []
    for name in ("after", "follow"):
        dep = metadata.get(name)
        if dep is not None:
            if not isinstance(dep, dict) or not isinstance(dep.get("dependencies", []), list):
                raise FlagError(f"{name} must be a Dependency in its as_dict() form, not {dep!r}")
            if not dep.get("dependencies"):
                dep = None
        deps.append(dep)
    timeout = metadata.get("timeout") or 0.0
    if isinstance(timeout, bool) or not isinstance(timeout, numbers.Real) or timeout < 0:
        raise FlagError(f"timeout must be a non-negative number of seconds, not {timeout!r}")
    retries = metadata.get("retries") or 0
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise FlagError(f"retries must be a non-negative int, not {retries!r}")
    return targets, deps[0], deps[1], float(timeout), retries


class TaskQueue:
    """Relays load-balanced tasks between clients and engines as ``scheduler`` decides."""

    def __init__(self, reactor, ctx, session, binder, hub, scheme="leastload", hwm=1, idle_timeout=30.0):
        self.reactor = reactor
        self.session = session
        self.hub = hub
        self.scheduler = TaskScheduler(scheme, hwm, outcome_of=self._outcome_of, idle_timeout=idle_timeout)
        #: the TaskClient's task ids
        self.legacy = LegacyTasks(self.scheduler)
        self.clients = ZmqSocket(reactor, unlimited(ctx.socket(zmq.ROUTER)), self._on_client)
        engine_sock = unlimited(ctx.socket(zmq.ROUTER))
        # a task for an engine whose connection is gone must fail loudly, not vanish
        engine_sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
        self.engines = ZmqSocket(reactor, engine_sock, self._on_engine)
        self.client_port = binder.bind(self.clients.sock)
        self.engine_port = binder.bind(self.engines.sock)
        self._replies = {}
        self._batches = AckBatches()
        self._timer = self._timer_deadline = None
        #: BroadcastView's fan-out, which sends its copies through this engine socket
        self.broadcasts = Broadcaster(reactor, ctx, session, binder, hub, self.engines)

    @property
    def sockets(self):
        return (self.clients, self.engines, self.broadcasts.clients)

    # -- hub events ------------------------------------------------------------------

    def engine_registered(self, uuid):
        self._carry_out(self.scheduler.add_engine(uuid))

    def engine_unregistered(self, uuid):
        self._carry_out(self.scheduler.remove_engine(uuid))
        self.broadcasts.engine_gone(uuid)

    def note_outcome(self, msg_id, status, engine):
        """A direct task finished: tasks that depend on it may move."""
        self._carry_out(self.scheduler.note_outcome(msg_id, status, engine))

    def abort(self, msg_ids):
        """Abort tasks still waiting here; returns ``{engine_uuid: [msg_ids]}`` of those already assigned."""
        assigned = {}
        for msg_id in msg_ids:
            task = self.scheduler.task(msg_id)
            if task is not None and task.engine is not None:
                assigned.setdefault(task.engine, []).append(msg_id)
        self._carry_out(self.scheduler.abort(msg_ids))
        return assigned

    def _outcome_of(self, msg_id):
        record = self.hub.db.get_record(msg_id)
        if record is None:
            return None
        if record.get("completed") is None:
            return "pending"
        metadata = record.get("result_metadata")
        status = unpack(metadata).get("status") if isinstance(metadata, bytes) else (metadata or {}).get("status")
        return ("ok" if status == "ok" else "error", record.get("engine_uuid"))

    # -- messages ----------------------------------------------------------------------

    def submit_frames(self, frames):
        """A task as it would arrive from a client (the hub's resubmissions)."""
        self._on_client(frames)

    def _on_client(self, frames):
        msg = self.session.deserialize_or_drop(frames, "task", log, lazy=True)
        if msg is None:
            return
        if len(msg.idents) != 1:
            log.warning("dropped a task with %d routing ids (expected the client's only)", len(msg.idents))
            return
        client_id = msg.idents[0]
        payload = (client_id, frames[1:], msg.header)
        self.hub.record_submission(msg, None, client_id, "task")
        legacy = task = None
        try:
            metadata = unpack(msg.metadata)
            metadata = metadata if isinstance(metadata, dict) else {}
            legacy = metadata.get("legacy")
            if legacy is None:
                task = Task(msg.msg_id, payload, *parse_flags(metadata))
                if task.after is not None or task.follow is not None:
                    # the direct tasks it may name are known from the queue monitor's
                    # copies, read in batches: read those that have arrived
                    self.hub.catch_up()
            else:
                task = self._legacy_task(msg, frames, legacy)
            decisions = self.scheduler.submit(task)
        except ValueError as e:  # bad flags, undecodable metadata, a msg_id submitted twice
            self._fail(Task(msg.msg_id, payload), "ValueError", str(e))
            if legacy is not None:
                if task is not None:
                    self.legacy.ended(task, "ValueError")
                self._ack(client_id, legacy, ["ValueError", str(e)])
            return
        self._carry_out(decisions)
        if legacy is not None:
            self._ack(client_id, legacy, task.legacy_id)

    def _legacy_task(self, msg, frames, legacy):
        """Number a TaskClient request and make its Task (stages: see :mod:`.legacytasks`)."""
        client_id = frames[0]
        head, buffers = frames[1:7], frames[7:]  # [<IDS|MSG>, signature, 4 dicts], then buffers
        stages = parse_stages(legacy, len(buffers))
        _, task = self.legacy.submit(
            msg.msg_id, stages, lambda start, stop: (client_id, head + buffers[start:stop], msg.header))
        return task

    def _ack(self, client_id, legacy, entry):
        """Note a TaskClient request's task id (or ``[ename, message]``: why it was refused);
        the batch's ids go back in one ``legacy_task_reply`` once all have arrived."""
        ack = legacy.get("ack") if isinstance(legacy, dict) else None
        size = legacy.get("batch", 1) if isinstance(legacy, dict) else 1
        if not isinstance(ack, str) or not isinstance(size, int):
            return
        batch = self._batches.add(ack, size, entry)
        if batch is None:
            return
        frames, _ = self.session.serialize("legacy_task_reply", {"status": "ok", "taskids": batch},
                                           parent={"msg_id": ack}, idents=(client_id, protocol.HUB_ROUTING_ID))
        self.clients.send_multipart(frames)

    def _on_engine(self, frames):
        msg = self.session.deserialize_or_drop(frames, "task (engine side)", log, lazy=True)
        if msg is None or len(msg.idents) < 2:
            return
        # interned: the scheduler keeps an engine name per finished task
        engine = sys.intern(msg.idents[0].decode(errors="replace"))
        if msg.idents[1] == protocol.HUB_ROUTING_ID:
            if msg.msg_type == "engine_ready":
                self.hub.engine_step(engine, "task")
            return
        msg_id = msg.parent_header.get("msg_id")
        if self.broadcasts.owns(msg_id):
            self.broadcasts.on_reply(frames, msg, engine)
            return
        try:
            metadata = unpack(msg.metadata)
            status = metadata.get("status") if isinstance(metadata, dict) else None
            if status == "error" and unpack(msg.content).get("ename") == "UnmetDependency":
                status = "unmet"
        except ValueError:
            status = "error"
        if status not in ("ok", "error", "unmet", "aborted"):
            status = "error"
        self._replies[msg_id] = (frames, msg, status)
        self._carry_out(self.scheduler.finished(msg_id, engine, status))
        # a reply the scheduler did not deliver (a retry, an unmet dependency) is dropped
        self._replies.pop(msg_id, None)

    # -- decisions -------------------------------------------------------------------------

    def _carry_out(self, decisions):
        # engines first: an engine waiting for its next task starts it while the reply
        # that freed it is forwarded and recorded (the order among clients' answers stays)
        for decision in decisions:
            if isinstance(decision, Assign):
                self._assign(decision.task, decision.engine)
        for decision in decisions:
            if isinstance(decision, Deliver):
                self._deliver(decision.task, decision.engine)
            elif isinstance(decision, Fail):
                self._fail(decision.task, decision.ename, decision.evalue)
        self._schedule_expiry()

    def _assign(self, task, engine):
        client_id, frames, _ = task.payload
        try:
            self.engines.send_multipart([engine.encode(), client_id, *frames])
        except zmq.ZMQError as e:
            log.warning("engine %s cannot be reached on the task channel (%s): treating it as gone", engine, e)
            self.reactor.callLater(0, self.engine_unregistered, engine)
            return
        self.hub.db.update_record(task.msg_id, {"engine_uuid": engine})

    def _deliver(self, task, engine):
        frames, msg, status = self._replies.pop(task.msg_id)
        client_id = task.payload[0]
        self.clients.send_multipart([client_id, engine.encode(), *frames[2:]])
        self.hub.record_result(msg, engine)
        if task.legacy_id is not None:
            self.legacy.ended(task, status)

    def _fail(self, task, ename, evalue):
        client_id, _, header = task.payload
        engine_id = None
        if task.engine is not None:
            rec = self.hub.registry.get(task.engine)
            engine_id = rec.id if rec is not None else None
        if ename == "TaskAborted":
            content = {"status": "aborted"}
        else:
            content = {
                "status": "error", "ename": ename, "evalue": evalue, "traceback": f"{ename}: {evalue}",
                "engine_info": {"engine_id": engine_id, "engine_uuid": task.engine, "method": "apply"},
            }
        completed = isoformat()
        metadata = {"status": content["status"], "engine_id": engine_id, "engine_uuid": task.engine,
                    "started": None, "completed": completed, "iopub": 0}
        frames, reply_header = self.session.serialize(
            reply_type(header.get("msg_type", "apply_request")), content, parent=header, metadata=metadata,
            idents=(client_id, protocol.HUB_ROUTING_ID))
        self.clients.send_multipart(frames)
        self.hub.db.update_record(task.msg_id, {
            "result_header": reply_header, "result_metadata": pack(metadata), "result_content": pack(content),
            "result_buffers": [], "completed": completed,
        })
        if task.legacy_id is not None:
            self.legacy.ended(task, ename)

    # -- the TaskClient's operations (the hub's legacy_task_request) -----------------------------

    def legacy_request(self, content):
        """Answer a ``legacy_task_request``: ``{"op": "abort"|"status"|"clear"|"spin"|"lookup", ...}``.

        The reply is ``{"status": "ok", "value": ...}``, or ``{"status": "ok", "error":
        [ename, message]}`` with 0.10's IndexError/KeyError/TypeError for the client to raise.
        """
        op = content.get("op")
        try:
            if op == "abort":
                self._carry_out(self.legacy.abort(content.get("taskid")))
                value = None
            elif op == "status":
                value = self.legacy.status(bool(content.get("verbose")))
            elif op == "clear":
                value = self.legacy.clear(content.get("taskids"))
            elif op == "spin":
                decisions = self.scheduler.spin()
                value = any(isinstance(d, Assign) for d in decisions)
                self._carry_out(decisions)
            elif op == "lookup":
                value = self.legacy.lookup(content.get("taskid"))
            else:
                raise ValueError(f"unknown legacy task operation {op!r}")
        except (IndexError, KeyError, TypeError, ValueError) as e:
            return {"status": "ok", "error": [type(e).__name__, e.args[0] if e.args else ""]}
        return {"status": "ok", "value": value}

    def _schedule_expiry(self):
        deadline = self.scheduler.next_deadline()
        if deadline == self._timer_deadline:
            return
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        self._timer_deadline = deadline
        if deadline is not None:
            delay = max(0.0, deadline - self.scheduler.clock())
            self._timer = self.reactor.callLater(delay, self._expire)

    def _expire(self):
        self._timer = self._timer_deadline = None
        self._carry_out(self.scheduler.expire())

    def close(self, linger=None):
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        for sock in self.sockets:
            sock.close(linger=linger)
