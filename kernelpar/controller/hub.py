"""The hub: registration, connection requests, queue status, heartbeats and task records.

The hub is plain Python with no sockets.  The controller's I/O side feeds it every
message from the registration ROUTER, the queue monitors, the iopub capture and the
heartbeat pong ROUTER, and the hub answers through an *outbox* object with five methods:

* ``reply(idents, msg_type, content, parent)`` on the registration socket,
* ``notify(msg_type, content)`` on the notification PUB,
* ``control(engine_uuid, msg_type, content)`` through the control queue to an engine,
* ``ping(beat)`` on the heartbeat PUB,
* ``stop()`` to end the controller.

Time enters only through ``call_later(seconds, fn)``, so tests drive the hub with
recorded messages and a fake clock.  A malformed or wrongly signed message is logged and
dropped: nothing a peer sends can raise out of these handlers.
"""

import logging

from ..wire import protocol
from ..wire.connection import version_mismatch
from ..wire.session import as_bytes, isoformat, pack
from .heartmonitor import HeartMonitor
from .records import DictDB
from .registry import EngineRegistry, RegistrationError

log = logging.getLogger("kernelpar.controller")

#: how long a connection request may wait for the client's iopub subscription
SUBSCRIPTION_WAIT = 2.0
#: a second early ping, in case the first reached the engine's heart before it subscribed
REGISTRATION_PING_RETRY = 0.05


_TASK_REPLIES = frozenset(("apply_reply", "execute_reply"))


def _reply_type(request_type):
    return request_type.rsplit("_request", 1)[0] + "_reply"


class Hub:
    def __init__(self, session, outbox, call_later, versions, hb_period=1.0, max_missed=5, db=None):
        self.session = session
        self.outbox = outbox
        self.call_later = call_later
        self.versions = versions
        self.hb_period = hb_period
        self.registry = EngineRegistry()
        self.heart = HeartMonitor(max_missed)
        self.db = db if db is not None else DictDB()
        self.queues = {}
        self.completed = {}
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
            self._reply(msg, _reply_type(msg.msg_type), {"status": "error", "reason": f"unknown request type {msg.msg_type!r}"})
            return
        try:
            handler(msg)
        except Exception as e:
            log.exception("error handling %s", msg.msg_type)
            self._reply(msg, _reply_type(msg.msg_type), {"status": "error", "reason": repr(e)})

    def _reply(self, msg, msg_type, content):
        self.outbox.reply(msg.idents, msg_type, content, msg.header)

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

    def _engine_step(self, uuid, step):
        rec = self.registry.mark(uuid, step)
        if rec is None:
            pending = self.registry.get(uuid)
            if pending is not None and not pending.registered and pending.seen == {"mux", "control"}:
                # its heart is connected by now: ping at once rather than wait up to a period
                self.outbox.ping(self.heart.beat)
                self.call_later(REGISTRATION_PING_RETRY, self._ping_if_pending, uuid)
            return
        self.queues.setdefault(rec.uuid, {})
        self.completed.setdefault(rec.uuid, 0)
        log.info("engine %d registered (pid %s on %s)", rec.id, rec.pid, rec.hostname)
        self.outbox.notify("registration_notification", {"id": rec.id, "uuid": rec.uuid})

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
        log.warning("engine %d unregistered: %s (%d task(s) lost)", rec.id, why, len(lost))
        self.outbox.notify("unregistration_notification", {"id": rec.id, "uuid": uuid})

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
        targets = msg.content.get("targets")
        verbose = bool(msg.content.get("verbose"))
        status = {}
        for rec in self.registry.registered():
            if targets is not None and rec.id not in targets:
                continue
            queue = self.queues.get(rec.uuid, {})
            status[str(rec.id)] = {
                "queue": list(queue) if verbose else len(queue),
                "completed": self.completed.get(rec.uuid, 0),
                "tasks": [] if verbose else 0,
            }
        status["unassigned"] = [] if verbose else 0
        self._reply(msg, "queue_reply", {"status": "ok", "queue": status})

    def _on_shutdown_request(self, msg):
        self._reply(msg, "shutdown_reply", {"status": "ok"})
        self.shutdown()

    def shutdown(self):
        log.info("shutting down: stopping %d engine(s)", len(self.registry.registered()))
        self.outbox.notify("shutdown_notification", {})
        for rec in self.registry.registered():
            self.outbox.control(rec.uuid, "shutdown_request", {})
        self.outbox.stop()

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
        dest, src = msg.idents[0], msg.idents[1] if len(msg.idents) > 1 else b""
        if topic == b"in":
            self._task_submitted(msg, engine=dest.decode(errors="replace"), client=src)
        elif topic in (b"out", b"outcontrol"):
            engine = src.decode(errors="replace")
            if dest == protocol.HUB_ROUTING_ID:
                if msg.msg_type == "engine_ready":
                    self._engine_step(engine, "mux" if topic == b"out" else "control")
            elif topic == b"out" or msg.msg_type in _TASK_REPLIES:
                # a queued task the engine aborted at once comes back on control
                self._task_finished(msg, engine)

    def _task_submitted(self, msg, engine, client):
        msg_id = msg.msg_id
        queue = self.queues.get(engine)
        if queue is not None:
            queue[msg_id] = None
        self.db.add_record(msg_id, {
            "msg_id": msg_id, "header": msg.header, "metadata": msg.metadata, "content": msg.content,
            "buffers": msg.buffers, "submitted": msg.header.get("date"), "client_uuid": msg.header.get("session"),
            "engine_uuid": engine, "queue": "mux", "completed": None,
        })

    def _task_finished(self, msg, engine):
        parent_id = msg.parent_header.get("msg_id")
        queue = self.queues.get(engine)
        if queue is not None and parent_id in queue:
            del queue[parent_id]
            self.completed[engine] += 1
        self.db.update_record(parent_id, {
            "result_header": msg.header, "result_metadata": msg.metadata, "result_content": msg.content,
            "result_buffers": msg.buffers, "completed": msg.header.get("date"),
        })

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
        self._engine_step(uuid, "heart")

    def tick(self):
        """One heartbeat period: declare silent engines dead, publish the next ping."""
        beat, dead = self.heart.tick()
        for ident in dead:
            self.unregister(ident.decode(errors="replace"), "it missed too many heartbeats")
        self.outbox.ping(beat)
