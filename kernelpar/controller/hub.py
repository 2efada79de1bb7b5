"""The hub: registration, connection requests, queue status, heartbeats and task records.

The hub is plain Python with no sockets.  The controller's I/O side feeds it every
message from the registration ROUTER, the queue monitors, the iopub capture and the
heartbeat pong ROUTER, and the hub answers through an *outbox* object with five methods:

* ``reply(idents, msg_type, content, parent, buffers)`` on the registration socket,
* ``notify(msg_type, content)`` on the notification PUB,
* ``control(engine_uuid, msg_type, content)`` through the control queue to an engine,
* ``ping(beat)`` on the heartbeat PUB,
* ``stop()`` to end the controller.

Time enters only through ``call_later(seconds, fn)``, so tests drive the hub with
recorded messages and a fake clock.  A malformed or wrongly signed message is logged and
dropped: nothing a peer sends can raise out of these handlers.
"""

import logging
from collections import OrderedDict

from ..wire import protocol
from ..wire.connection import version_mismatch
from ..wire.protocol import reply_type
from ..wire.session import as_bytes, isoformat, new_id, pack, unpack
from .heartmonitor import HeartMonitor
from .queries import RecordQueries
from .records import DictDB
from .registry import READY_STEPS, EngineRegistry, RegistrationError

log = logging.getLogger("kernelpar.controller")

#: the "client" of resubmitted tasks: nobody listens there, the results go to the records
RESUBMIT_ROUTING_ID = b"hub-resubmit"
#: how long a connection request may wait for the client's iopub subscription
SUBSCRIPTION_WAIT = 2.0
#: a second early ping, in case the first reached the engine's heart before it subscribed
REGISTRATION_PING_RETRY = 0.05


_TASK_REPLIES = frozenset(("apply_reply", "execute_reply"))
#: how many replies (and outputs) heard before their request the hub keeps waiting for it
EARLY_REPLY_LIMIT = 1024
#: the iopub message types whose content the task records keep (see ``_record_output``)
_RECORDED_OUTPUT = frozenset(("stream", "error", "execute_input", "execute_result"))


def _label(metadata):
    """A request's ``label`` from its metadata (JSON bytes, decoded only when it has one)."""
    if isinstance(metadata, (bytes, bytearray)):
        if b'"label"' not in metadata:
            return None
        try:
            metadata = unpack(metadata)
        except ValueError:
            return None
    label = metadata.get("label") if isinstance(metadata, dict) else None
    return label if isinstance(label, str) else None


class Hub:
    def __init__(self, session, outbox, call_later, versions, hb_period=1.0, max_missed=5, db=None,
                 ready_steps=READY_STEPS):
        self.session = session
        self.outbox = outbox
        self.call_later = call_later
        self.versions = versions
        self.hb_period = hb_period
        self.registry = EngineRegistry(ready_steps)
        #: the load-balanced task channel (:class:`.taskqueue.TaskQueue`), when there is one
        self.tasks = None
        #: handles the queue-monitor copies still waiting (set by the I/O edge, which reads
        #: them in batches): queries see every task the asking client has seen answered
        self.catch_up = lambda: None
        self.heart = HeartMonitor(max_missed)
        self.db = db if db is not None else DictDB()
        self.queries = RecordQueries(self.db, resubmit=self._resubmit, engine_uuid_of=self._engine_uuid_of)
        self.queues = {}
        self.completed = {}
        #: replies heard before the request they answer: parent msg_id -> (engine, reply)
        self._early_replies = OrderedDict()
        #: output heard before its request: msg_id -> [(msg_type, content), ...]
        self._early_output = OrderedDict()
        self._subscribed = set()
        self._waiting_clients = {}
        self.registration_timeout = max(30.0, 10 * hb_period)

    # -- registration socket -------------------------------------------------

    def handle_registration(self, frames):
        msg = self.session.deserialize_or_drop(frames, "registration", log)
        if msg is None:
            return
        handler = getattr(self, "_on_" + msg.msg_type, None)
        if handler is None:
            log.warning("dropped unknown hub request %r", msg.msg_type)
            self._reply(msg, reply_type(msg.msg_type), {"status": "error", "reason": f"unknown request type {msg.msg_type!r}"})
            return
        try:
            handler(msg)
        except Exception as e:
            log.exception("error handling %s", msg.msg_type)
            self._reply(msg, reply_type(msg.msg_type), {"status": "error", "reason": repr(e)})

    def _reply(self, msg, msg_type, content, buffers=()):
        self.outbox.reply(msg.idents, msg_type, content, msg.header, buffers)

    def _on_registration_request(self, msg):
        content = msg.content
        uuid = content.get("uuid")
        problem = version_mismatch(self.versions, content.get("versions"), "the controller", "this engine")
        if not isinstance(uuid, str) or not uuid:
            problem = "registration_request without an engine uuid"
        if problem is None:
            try:
                rec = self.registry.add(uuid, content.get("id"), content.get("hostname", ""), content.get("pid", 0))
            except RegistrationError as e:
                problem = str(e)
        if problem is not None:
            log.error("refused engine registration: %s", problem)
            self._reply(msg, "registration_reply", {"status": "error", "reason": problem, "versions": self.versions})
            return
        log.info("engine %d (%s) registering", rec.id, uuid)
        self._reply(msg, "registration_reply",
                    {"status": "ok", "id": rec.id, "hb_period": self.hb_period, "versions": self.versions})
        self.call_later(self.registration_timeout, self._purge_stalled, uuid)

    def _purge_stalled(self, uuid):
        rec = self.registry.get(uuid)
        if rec is not None and not rec.registered:
            log.warning("purging stalled registration of engine %d (saw %s)", rec.id, sorted(rec.seen) or "nothing")
            self.registry.remove(uuid)
            self.heart.forget(uuid.encode())

    def engine_step(self, uuid, step):
        rec = self.registry.mark(uuid, step)
        if rec is None:
            pending = self.registry.get(uuid)
            if pending is not None and not pending.registered and pending.seen == pending.needs - {"heart"}:
                # its heart is connected by now: ping at once rather than wait up to a period
                self.outbox.ping(self.heart.beat)
                self.call_later(REGISTRATION_PING_RETRY, self._ping_if_pending, uuid)
            return
        self.queues.setdefault(rec.uuid, {})
        self.completed.setdefault(rec.uuid, 0)
        log.info("engine %d registered (pid %s on %s)", rec.id, rec.pid, rec.hostname)
        self.outbox.notify("registration_notification", {"id": rec.id, "uuid": rec.uuid})
        if self.tasks is not None:
            self.tasks.engine_registered(rec.uuid)

    def _ping_if_pending(self, uuid):
        rec = self.registry.get(uuid)
        if rec is not None and not rec.registered:
            self.outbox.ping(self.heart.beat)

    def _on_unregistration_request(self, msg):
        rec = self.registry.by_id(msg.content.get("id"))
        if rec is not None:
            self.unregister(rec.uuid, "it asked to")
        self._reply(msg, "unregistration_reply", {"status": "ok"})

    def unregister(self, uuid, why):
        rec = self.registry.remove(uuid)
        if rec is None:
            return
        self.heart.forget(uuid.encode())
        lost = self.queues.pop(uuid, {})
        self.completed.pop(uuid, None)
        for msg_id in lost:
            self.db.update_record(msg_id, {"completed": isoformat(), "result_content": pack({
                "status": "error", "ename": "EngineError",
                "evalue": f"Engine {rec.id} died while running task {msg_id!r}"})})
        log.warning("engine %d unregistered: %s (%d direct task(s) lost)", rec.id, why, len(lost))
        self.outbox.notify("unregistration_notification", {"id": rec.id, "uuid": uuid})
        if self.tasks is not None:
            self.tasks.engine_unregistered(uuid)
        # after the scheduler has dropped the engine, so that no dependent goes to it
        for msg_id in lost:
            self.note_failure(msg_id, uuid)

    def _engines(self):
        return {str(r.id): r.uuid for r in self.registry.registered()}

    def _on_connection_request(self, msg):
        problem = version_mismatch(self.versions, msg.content.get("versions"), "the controller", "this client")
        if problem is not None:
            self._reply(msg, "connection_reply", {"status": "error", "reason": problem, "versions": self.versions})
            return
        session = msg.header.get("session", "")
        if session.encode() in self._subscribed:
            self._answer_connection(msg)
        else:
            self._waiting_clients[session] = msg
            self.call_later(SUBSCRIPTION_WAIT, self._answer_waiting, session)

    def _answer_waiting(self, session):
        msg = self._waiting_clients.pop(session, None)
        if msg is not None:
            self._answer_connection(msg)

    def _answer_connection(self, msg):
        self._reply(msg, "connection_reply", {"status": "ok", "engines": self._engines(), "versions": self.versions})

    def _on_queue_request(self, msg):
        self.catch_up()
        targets = msg.content.get("targets")
        verbose = bool(msg.content.get("verbose"))
        status = {}
        scheduler = self.tasks.scheduler if self.tasks is not None else None
        for rec in self.registry.registered():
            if targets is not None and rec.id not in targets:
                continue
            queue = self.queues.get(rec.uuid, {})
            tasks = list(scheduler.outstanding_ids(rec.uuid)) if scheduler is not None else []
            status[str(rec.id)] = {
                "queue": list(queue) if verbose else len(queue),
                "completed": self._completed_ids(rec.uuid) if verbose else self.completed.get(rec.uuid, 0),
                "tasks": tasks if verbose else len(tasks),
            }
        waiting = scheduler.waiting_ids() if scheduler is not None else []
        status["unassigned"] = list(waiting) if verbose else len(waiting)
        self._reply(msg, "queue_reply", {"status": "ok", "queue": status})

    def _completed_ids(self, uuid):
        """msg_ids of the tasks ``uuid`` finished that still have records (the store is bounded)."""
        if self.db.kind == "nodb":
            return []
        records = self.db.find_records({"engine_uuid": uuid, "completed": {"$ne": None}}, keys=["msg_id"])
        return [r["msg_id"] for r in records]

    def _on_task_abort_request(self, msg):
        """Abort load-balanced tasks: those still waiting at once, the others on their engine."""
        msg_ids = msg.content.get("msg_ids")
        if not isinstance(msg_ids, list) or not all(isinstance(m, str) for m in msg_ids):
            raise TypeError(f"msg_ids must be a list of str, not {msg_ids!r}")
        if self.tasks is None:
            raise RuntimeError("this controller has no load-balanced task channel")
        for engine, ids in self.tasks.abort(msg_ids).items():
            self.outbox.control(engine, "abort_request", {"msg_ids": ids})
        self._reply(msg, "task_abort_reply", {"status": "ok"})

    def _on_legacy_task_request(self, msg):
        """The IPython 0.10 TaskClient's operations on its numbered tasks (see :mod:`.legacytasks`)."""
        if self.tasks is None:
            raise RuntimeError("this controller has no load-balanced task channel")
        self._reply(msg, "legacy_task_reply", self.tasks.legacy_request(msg.content))

    # -- task records -------------------------------------------------------------

    def _on_record_query(self, msg):
        self.catch_up()
        content, buffers = self.queries.handle(msg.msg_type, msg.content)
        self._reply(msg, reply_type(msg.msg_type), content, buffers)

    _on_db_request = _on_history_request = _on_result_request = _on_purge_request = _on_record_query
    _on_resubmit_request = _on_record_query

    def _engine_uuid_of(self, eid):
        rec = self.registry.by_id(eid)
        return rec.uuid if rec is not None and rec.registered else None

    def _resubmit(self, record):
        """Send a recorded task again, load-balanced; returns its new msg_id."""
        if self.tasks is None:
            raise RuntimeError("this controller has no load-balanced task channel")
        header = dict(record["header"], msg_id=new_id(), date=isoformat())  # keeps the client's session
        frames, _ = self.session.serialize(header["msg_type"], record["content"], metadata=record["metadata"],
                                           buffers=record["buffers"], idents=(RESUBMIT_ROUTING_ID,), header=header)
        # records the new submission before returning, which the caller relies on
        self.tasks.submit_frames(frames)
        return header["msg_id"]

    def _on_shutdown_request(self, msg):
        self._reply(msg, "shutdown_reply", {"status": "ok"})
        self.shutdown()

    def shutdown(self):
        log.info("shutting down: stopping %d engine(s)", len(self.registry.registered()))
        self.announce_stop()
        for rec in self.registry.registered():
            self.outbox.control(rec.uuid, "shutdown_request", {})
        self.outbox.stop()

    def announce_stop(self):
        """Tell the clients that the controller stops: what they wait for will not come."""
        self.outbox.notify("shutdown_notification", {})

    # -- queue monitors ------------------------------------------------------

    def handle_monitor(self, frames):
        """A copy of a mux/control message: ``[topic, dest, src, <IDS|MSG>, ...]``."""
        if len(frames) < 3:
            log.warning("dropped short monitor message")
            return
        topic = as_bytes(frames[0])
        msg = self.session.deserialize_or_drop(frames[1:], "monitor", log, lazy=True)
        if msg is None:
            return
        if topic in (b"intask", b"outtask"):
            self._pure_task_copy(topic, msg)
            return
        dest, src = msg.idents[0], msg.idents[1] if len(msg.idents) > 1 else b""
        if topic == b"in":
            self.record_submission(msg, dest.decode(errors="replace"), src, "mux")
        elif topic in (b"out", b"outcontrol"):
            engine = src.decode(errors="replace")
            if dest == protocol.HUB_ROUTING_ID:
                if msg.msg_type == "engine_ready":
                    self.engine_step(engine, "mux" if topic == b"out" else "control")
            elif topic == b"out" or msg.msg_type in _TASK_REPLIES:
                # a queued task the engine aborted at once comes back on control
                if topic == b"outcontrol" and self._keep_if_early(msg, engine):
                    return
                self.record_result(msg, engine)
                self.note_reply(msg, engine)

    def _pure_task_copy(self, topic, msg):
        """A copy from the ``pure`` scheme's C queue: ``[client_id, <IDS|MSG>, ...]`` both ways."""
        if topic == b"intask":
            self.record_submission(msg, None, msg.idents[0], "task")
        elif msg.idents[0] == protocol.HUB_ROUTING_ID:
            if msg.msg_type == "engine_ready":
                # the engine's session id is its uuid
                self.engine_step(str(msg.header.get("session", "")), "task")
        else:
            engine = unpack(msg.metadata).get("engine_uuid")
            self.db.update_record(msg.parent_header.get("msg_id"), {"engine_uuid": engine})
            self.record_result(msg, engine)

    def _keep_if_early(self, msg, engine):
        """Keep a control-queue reply to a direct request the hub has not seen yet.

        Each device publishes its copies from its own thread, and the mux device copies a
        request to the hub only after forwarding it: an engine that aborts the request at
        once (it was aborted before it arrived) can answer on the control queue before the
        hub reads the request.  Recorded then, the request would stay queued forever.
        """
        parent_id = msg.parent_header.get("msg_id")
        if (parent_id in self.queues.get(engine, ()) or self.db.get_record(parent_id) is not None
                or (self.tasks is not None and self.tasks.scheduler.awaits(parent_id))):
            return False
        self._early_replies[parent_id] = (engine, msg)
        if len(self._early_replies) > EARLY_REPLY_LIMIT:
            self._early_replies.popitem(last=False)
        return True

    def record_submission(self, msg, engine, client, queue):
        """Record a request (``msg`` deserialized lazily) sent to ``engine`` (None: not yet known)."""
        msg_id = msg.msg_id
        if engine is not None:
            pending = self.queues.get(engine)
            if pending is not None:
                pending[msg_id] = None
        self.db.add_record(msg_id, {
            "msg_id": msg_id, "header": msg.header, "metadata": msg.metadata, "content": msg.content,
            "buffers": msg.buffers, "submitted": msg.header.get("date"), "client_uuid": msg.header.get("session"),
            "engine_uuid": engine, "queue": queue, "completed": None, "label": _label(msg.metadata),
            "stdout": "", "stderr": "",
        })
        for msg_type, content in self._early_output.pop(msg_id, ()):
            self._record_output(msg_id, msg_type, content)
        early = self._early_replies.pop(msg_id, None)
        if early is not None:
            self.record_result(early[1], early[0])

    # A load-balanced task may depend on direct and broadcast tasks, which the scheduler
    # never sees: the hub tells it how they ended (only those a waiting task names).

    def note_reply(self, msg, engine):
        """``engine`` answered a direct or broadcast task (``msg``, deserialized lazily)."""
        parent_id = msg.parent_header.get("msg_id")
        if self._awaited(parent_id):
            metadata = unpack(msg.metadata)
            status = metadata.get("status") if isinstance(metadata, dict) else None
            self.tasks.note_outcome(parent_id, "ok" if status == "ok" else "error", engine)

    def note_failure(self, msg_id, engine):
        """A direct or broadcast task failed without a reply (its engine is gone)."""
        if self._awaited(msg_id):
            self.tasks.note_outcome(msg_id, "error", engine)

    def _awaited(self, msg_id):
        return self.tasks is not None and self.tasks.scheduler.awaits(msg_id)

    def record_result(self, msg, engine):
        """Record the reply ``msg`` (deserialized lazily) that ``engine`` sent."""
        parent_id = msg.parent_header.get("msg_id")
        pending = self.queues.get(engine)
        if pending is not None and parent_id in pending:
            del pending[parent_id]
        if engine in self.completed:
            self.completed[engine] += 1
        try:
            metadata = unpack(msg.metadata)
        except ValueError:
            metadata = None
        metadata = metadata if isinstance(metadata, dict) else {}
        started = metadata.get("started")
        changes = {
            "received": isoformat(), "started": started if isinstance(started, str) else None,
            "result_header": msg.header, "result_metadata": msg.metadata, "result_content": msg.content,
            "result_buffers": msg.buffers, "completed": msg.header.get("date"),
        }
        if metadata.get("status") == "error":
            # an execute's error also comes on iopub; an apply's only here
            changes["error"] = msg.content
        self.db.update_record(parent_id, changes)

    # -- iopub capture -------------------------------------------------------

    def handle_iopub(self, frames):
        """A message through the iopub proxy: a (un)subscription or engine output."""
        if len(frames) == 1:
            data = as_bytes(frames[0])
            if data[:1] == b"\x01":
                topic = data[1:]
                self._subscribed.add(topic)
                session = topic.decode(errors="replace")
                if session in self._waiting_clients:
                    self._answer_connection(self._waiting_clients.pop(session))
            elif data[:1] == b"\x00":
                self._subscribed.discard(data[1:])
            return
        msg = self.session.deserialize_or_drop(frames, "iopub", log, lazy=True)
        if msg is None or msg.msg_type not in _RECORDED_OUTPUT:
            return
        try:
            content = unpack(msg.content)
        except ValueError:
            log.warning("dropped %s output with undecodable content", msg.msg_type)
            return
        msg_id = msg.parent_header.get("msg_id")
        if not isinstance(content, dict) or not isinstance(msg_id, str):
            return
        if self.db.kind == "nodb":
            return
        if self.db.get_record(msg_id) is None:
            self.catch_up()  # the monitor's copy of a direct request may still be unread
        if self.db.get_record(msg_id) is None:
            self._early_output.setdefault(msg_id, []).append((msg.msg_type, content))
            if len(self._early_output) > EARLY_REPLY_LIMIT:
                self._early_output.popitem(last=False)
            return
        self._record_output(msg_id, msg.msg_type, content)

    def _record_output(self, msg_id, msg_type, content):
        """Keep engine output in the task's record, as ipyparallel's hub does."""
        if msg_type == "stream":
            name, text = content.get("name"), content.get("text")
            if name in ("stdout", "stderr") and isinstance(text, str):
                record = self.db.get_record(msg_id)
                if record is not None:
                    self.db.update_record(msg_id, {name: (record.get(name) or "") + text})
        elif msg_type == "execute_input":
            self.db.update_record(msg_id, {"execute_input": content.get("code")})
        else:  # error, execute_result: the content as it came
            self.db.update_record(msg_id, {msg_type: content})

    # -- heartbeat -------------------------------------------------------------

    def handle_pong(self, frames):
        if len(frames) != 2:
            log.warning("dropped malformed heartbeat (%d frames)", len(frames))
            return
        ident = as_bytes(frames[0])
        try:
            beat = int(as_bytes(frames[1]))
        except ValueError:
            log.warning("dropped malformed heartbeat payload")
            return
        uuid = ident.decode(errors="replace")
        if uuid not in self.registry:
            return
        self.heart.pong(ident, beat)
        self.engine_step(uuid, "heart")

    def tick(self):
        """One heartbeat period: declare silent engines dead, publish the next ping."""
        beat, dead = self.heart.tick()
        for ident in dead:
            self.unregister(ident.decode(errors="replace"), "it missed too many heartbeats")
        self.outbox.ping(beat)
