"""BroadcastView's fan-out: one request from a client, one copy per target engine.

A client sends *one* ``apply_request``/``execute_request`` on the broadcast channel
(a ROUTER here) with ``{"targets": [engine uuids], "msg_ids": [one per target],
"is_coalescing": bool}`` in its metadata.  This module sends each target a copy whose
header's msg_id is the one listed for it (re-signed; the client registered those ids
itself), through the engines' task sockets, so a broadcast costs the client O(1) messages whatever the
number of engines.  Replies come back to the task channel, which hands those of
broadcast copies here:

* not coalescing: each reply goes on to the client as it arrives, as
  ``[engine_uuid, <IDS|MSG>, ...]`` (the shape of a mux reply);
* coalescing: the replies are held until every target has answered, then sent as one
  ``coalesced_reply`` whose content lists each reply's ``header``, ``parent_header``,
  ``metadata``, ``content`` and number of buffers, the buffers following in order.

A target that is not registered, or that dies before answering, is answered with an
``EngineError`` reply signed by the controller.  Every copy is a task record (queue
``"broadcast"``).
"""

import logging

import zmq

from ..wire import protocol
from ..wire.protocol import reply_type
from ..wire.session import as_bytes, isoformat, pack, unpack
from ..wire.zmqtwisted import ZmqSocket
from .devices import unlimited

log = logging.getLogger("kernelpar.controller")


class Fanout:
    """One broadcast in flight: who asked, which copies are still out, what came back."""

    __slots__ = ("client_id", "header", "coalescing", "waiting", "replies")

    def __init__(self, client_id, header, coalescing):
        self.client_id = client_id
        self.header = header
        self.coalescing = coalescing
        self.waiting = {}  # child msg_id -> engine uuid
        self.replies = []  # (child msg_id, engine uuid, Message) when coalescing


class Broadcaster:
    def __init__(self, reactor, ctx, session, binder, hub, engines):
        self.session = session
        self.hub = hub
        #: the engine-facing task socket (a :class:`ZmqSocket`), shared with the task queue
        self.engines = engines
        self.clients = ZmqSocket(reactor, unlimited(ctx.socket(zmq.ROUTER)), self._on_client)
        self.port = binder.bind(self.clients.sock)
        self._fanouts = {}  # child msg_id -> Fanout

    def owns(self, msg_id):
        return msg_id in self._fanouts

    # -- requests ----------------------------------------------------------------------

    def _on_client(self, frames):
        msg = self.session.deserialize_or_drop(frames, "broadcast", log, lazy=True)
        if msg is None or len(msg.idents) != 1:
            return
        try:
            metadata = unpack(msg.metadata)
            targets, child_ids = metadata["targets"], metadata["msg_ids"]
            if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
                raise TypeError(f"targets must be a list of engine uuids, not {targets!r}")
            if not isinstance(child_ids, list) or len(child_ids) != len(targets) or not all(
                    isinstance(m, str) for m in child_ids):
                raise TypeError("msg_ids must be a list of str, one per target")
        except (ValueError, KeyError, TypeError) as e:
            log.warning("dropped a broadcast without valid targets: %s", e)
            return
        fanout = Fanout(msg.idents[0], msg.header, bool(metadata.get("is_coalescing")))
        # each copy differs only in its header: parent, metadata and content travel as they came
        rest = [as_bytes(frames[len(msg.idents) + 3]), msg.metadata, msg.content]
        gone = []
        for uuid, child in zip(targets, child_ids):
            rec = self.hub.registry.get(uuid)
            fanout.waiting[child] = uuid
            self._fanouts[child] = fanout
            header = dict(msg.header, msg_id=child)
            parts = [pack(header), *rest]
            copy = self.session.frames_of(parts, msg.buffers, idents=(uuid.encode(), fanout.client_id))
            self.hub.record_submission(_Copy(header, msg), uuid, fanout.client_id, "broadcast")
            if rec is None or not rec.registered:
                gone.append((child, uuid))
                continue
            try:
                self.engines.send_multipart(copy)
            except zmq.ZMQError:
                gone.append((child, uuid))
        for child, uuid in gone:
            self._fail(child, uuid, f"Engine {uuid} is not registered: broadcast copy {child} was not sent")

    # -- replies ---------------------------------------------------------------------------

    def on_reply(self, frames, msg, engine):
        """A reply of an engine to a broadcast copy (the task channel checked :meth:`owns`)."""
        child = msg.parent_header.get("msg_id")
        fanout = self._fanouts.pop(child, None)
        if fanout is None or fanout.waiting.pop(child, None) is None:
            return
        self.hub.record_result(msg, engine)
        self.hub.note_reply(msg, engine)
        if not fanout.coalescing:
            self.clients.send_multipart([fanout.client_id, engine.encode(), *frames[2:]])
            return
        fanout.replies.append((child, engine, msg))
        if not fanout.waiting:
            self._send_coalesced(fanout)

    def engine_gone(self, uuid):
        for child, fanout in [(c, f) for c, f in self._fanouts.items() if f.waiting.get(c) == uuid]:
            self._fail(child, uuid, f"Engine {uuid} died while running broadcast copy {child}")

    def _fail(self, child, uuid, text):
        fanout = self._fanouts.pop(child, None)
        if fanout is None or fanout.waiting.pop(child, None) is None:
            return
        rec = self.hub.registry.get(uuid)
        info = {"engine_id": rec.id if rec is not None else None, "engine_uuid": uuid, "method": "apply"}
        content = {"status": "error", "ename": "EngineError", "evalue": text, "traceback": f"EngineError: {text}",
                   "engine_info": info}
        metadata = {"status": "error", "engine_id": info["engine_id"], "engine_uuid": uuid, "started": None,
                    "completed": isoformat(), "iopub": 0}
        parent = dict(fanout.header, msg_id=child)
        frames, header = self.session.serialize(reply_type(fanout.header.get("msg_type", "apply_request")), content, parent=parent, metadata=metadata,
                                                idents=(fanout.client_id, protocol.HUB_ROUTING_ID))
        self.hub.db.update_record(child, {"result_header": header, "result_metadata": pack(metadata),
                                          "result_content": pack(content), "completed": metadata["completed"]})
        self.hub.note_failure(child, uuid)
        if not fanout.coalescing:
            self.clients.send_multipart(frames)
            return
        fanout.replies.append((child, uuid, _Reply(header, parent, metadata, content)))
        if not fanout.waiting:
            self._send_coalesced(fanout)

    def _send_coalesced(self, fanout):
        replies, buffers = [], []
        for _, _, msg in fanout.replies:
            replies.append({
                "header": msg.header, "parent_header": msg.parent_header, "metadata": _dict(msg.metadata),
                "content": _dict(msg.content), "nbuffers": len(msg.buffers),
            })
            buffers.extend(msg.buffers)
        frames, _ = self.session.serialize("coalesced_reply", {"status": "ok", "replies": replies},
                                           parent=fanout.header, buffers=buffers,
                                           idents=(fanout.client_id, protocol.HUB_ROUTING_ID))
        self.clients.send_multipart(frames)


class _Copy:
    """What :meth:`Hub.record_submission` reads of one copy (its own header, the original's rest)."""

    def __init__(self, header, original):
        self.msg_id = header["msg_id"]
        self.header = header
        self.metadata = original.metadata
        self.content = original.content
        self.buffers = original.buffers


class _Reply:
    def __init__(self, header, parent_header, metadata, content):
        self.header, self.parent_header, self.metadata, self.content = header, parent_header, metadata, content
        self.buffers = []


def _dict(value):
    return unpack(value) if isinstance(value, (bytes, bytearray, memoryview)) else value
