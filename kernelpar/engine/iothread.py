"""The engine's IO thread: every socket, on a Twisted reactor that never runs user code.

Theory of operation
-------------------
:class:`EngineIO` runs the reactor (``reactor.run(installSignalHandlers=False)``) in a
daemon thread, so the main thread is free to run user code (:mod:`.kernel`) and the
engine still receives requests, streams output and answers control messages at once.

Life of an engine, all on the reactor:

1. ``registration_request`` on the registration DEALER; wait (bounded) for the reply.
   A refusal or a version mismatch ends the engine with a clear error.
2. Connect mux (and task, when the connection info has it) and control DEALERs, the
   iopub XPUB, a ping-watching SUB and the C heart (:mod:`.heart`).  Every socket's
   identity is the engine uuid.
3. Wait (at most ``SUBSCRIPTION_WAIT``) for the first subscription to reach the XPUB,
   so output published right after registration is not lost, then send
   ``engine_ready`` on mux and on control, addressed to ``protocol.HUB_ROUTING_ID``.
4. Serve: the mux and task sockets are handed to the main thread, which receives
   requests and sends replies itself (:mod:`.kernel`); control requests go to
   :mod:`.control`; the main thread's output arrives through
   ``reactor.callFromThread`` as calls of ``send_iopub``/``send_control_reply``.
5. Every second, check that the launcher (``$KERNELPAR_PARENT_PID``) is alive and the
   controller still pings; else exit rather than linger as an orphan.
6. :meth:`EngineIO.shutdown`: ``unregistration_request``, close every socket of this
   thread (``removeReader`` before ``close``, explicit ``LINGER``), stop the heart,
   stop the reactor; then tell the main thread to stop (it closes the request
   sockets) and ``ctx.term()``.
"""

import logging
import os
import signal
import socket
import threading

import zmq
from twisted.internet.task import LoopingCall

from ..wire import shm
from ..wire.connection import connect_url, version_mismatch, versions
from ..wire.frames import send_frames
from ..wire.protocol import DEFAULT_HB_PERIOD_MS, EXIT_NOT_REGISTERED, HUB_ROUTING_ID
from ..wire.session import Session, isoformat
from ..wire.zmqtwisted import ZmqSocket
from .capture import FLUSH_INTERVAL
from .control import ControlHandler, signal_main_thread
from .heart import Heart, PingWatch
from .kernel import Request, reply_type

log = logging.getLogger("kernelpar.engine")

REGISTRATION_TIMEOUT = 30.0
SUBSCRIPTION_WAIT = 5.0
WATCH_INTERVAL = 1.0
#: how long replies, output and the unregistration may take to leave at exit
REPLY_LINGER_MS = 1000
#: after the IO thread is done, the main thread gets this long to return from user code
FORCE_EXIT_AFTER = 5.0

_ABORTED = {"status": "aborted"}


class EngineIO:
    """Sockets, registration and lifecycle of one engine, driven by ``reactor``."""

    def __init__(self, reactor, info, kernel, requested_id=None, parent_pid=None):
        self.reactor = reactor
        self.info = info
        self.kernel = kernel
        kernel.io = self
        self.uuid = kernel.engine_uuid
        self.identity = self.uuid.encode("ascii")
        self.session = Session(info["key"], session=self.uuid)
        self.requested_id = requested_id
        self.parent_pid = parent_pid
        self.control = ControlHandler(self, kernel, reactor)
        self.ctx = zmq.Context()
        self.engine_id = None
        self.exit_code = 0
        self.stopping = False
        self.registration = self.mux = self.task = self.control_channel = self.iopub = None
        self._sockets = []
        self._timers = []
        self._watch_loop = None
        self._heart = None
        self._pings = self._ping_channel = None
        self._ready_sent = False
        #: request sockets not yet handed to the main thread (this thread closes them at exit)
        self._unattached = []
        self._linger = None
        self._iopub_md = {}
        self.thread = threading.Thread(target=self._run, name="kernelpar-engine-io", daemon=True)

    def start(self):
        self.thread.start()

    def _run(self):
        self.reactor.callWhenRunning(self._begin)
        self.reactor.run(installSignalHandlers=False)
        self.kernel.stop(self._linger)
        if self.kernel.busy:
            # user code is running: interrupt it (the SIGTERM handler raises EngineShutdown)
            signal_main_thread(signal.SIGTERM)
        watchdog = threading.Timer(FORCE_EXIT_AFTER, os._exit, (self.exit_code or 1,))
        watchdog.daemon = True
        watchdog.start()
        # returns once the main thread has closed the request sockets
        self.ctx.term()

    def _begin(self):
        self._watch_loop = LoopingCall(self._watch)
        self._watch_loop.start(WATCH_INTERVAL, now=False)
        self._register()

    # -- sockets -----------------------------------------------------------------------

    def _zmq_socket(self, kind):
        sock = self.ctx.socket(kind)
        sock.setsockopt(zmq.IDENTITY, self.identity)
        # never drop: an engine's output and replies are what clients wait for
        sock.setsockopt(zmq.SNDHWM, 0)
        sock.setsockopt(zmq.RCVHWM, 0)
        return sock

    def _socket(self, kind, channel, on_message, linger=0):
        sock = self._zmq_socket(kind)
        if kind == zmq.SUB:
            sock.setsockopt(zmq.SUBSCRIBE, b"")
        wrapper = ZmqSocket(self.reactor, sock, on_message, linger=linger)
        sock.connect(connect_url(self.info, channel))
        self._sockets.append(wrapper)
        return wrapper

    def _request_socket(self, channel):
        """A connected DEALER for ``channel``, for the main thread once ``engine_ready`` is out."""
        sock = self._zmq_socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, REPLY_LINGER_MS)
        sock.connect(connect_url(self.info, channel))
        self._unattached.append(sock)
        return sock

    def _send(self, channel, msg_type, content, idents=()):
        frames, _ = self.session.serialize(msg_type, content, idents=idents)
        channel.send_multipart(frames)

    def _later(self, delay, f, *args):
        """``callLater`` that :meth:`shutdown` cancels (registration and ready timeouts)."""
        timer = self.reactor.callLater(delay, f, *args)
        self._timers.append(timer)
        return timer

    # -- registration ------------------------------------------------------------------

    def _register(self):
        self.registration = self._socket(zmq.DEALER, "registration", self._on_registration, linger=REPLY_LINGER_MS)
        content = {"uuid": self.uuid, "versions": versions(), "hostname": socket.gethostname(), "pid": os.getpid()}
        if self.requested_id is not None:
            content["id"] = self.requested_id
        self._send(self.registration, "registration_request", content)
        self._registration_timer = self._later(REGISTRATION_TIMEOUT, self._registration_timed_out)

    def _registration_timed_out(self):
        self.fail(
            f"no registration reply from the controller at {connect_url(self.info, 'registration')} "
            f"within {REGISTRATION_TIMEOUT:g} s: is the controller running, and is this its connection info?"
        )

    def _on_registration(self, frames):
        msg = self.session.deserialize_or_drop(frames, "registration", log)
        if msg is None or msg.msg_type != "registration_reply" or self.engine_id is not None or self.stopping:
            return
        self._registration_timer.cancel()
        content = msg.content
        if content.get("status") != "ok":
            reason = content.get("reason") or content.get("evalue") or "no reason given"
            self.fail(f"the controller refused this engine's registration: {reason}")
            return
        problem = version_mismatch(versions(), content.get("versions"), me="this engine", them="the controller")
        if problem:
            self.fail(problem)
            return
        self._connect(int(content["id"]), float(content.get("hb_period") or DEFAULT_HB_PERIOD_MS / 1000))

    def _connect(self, engine_id, hb_period):
        self.engine_id = engine_id
        self.kernel.set_engine_id(engine_id)
        self._iopub_md = {"engine_id": engine_id}
        self.mux = self._request_socket("mux")
        if self.info.get("task"):
            self.task = self._request_socket("task")
        self.control_channel = self._socket(zmq.DEALER, "control", self._on_control, linger=REPLY_LINGER_MS)
        self.iopub = self._socket(zmq.XPUB, "iopub", self._on_subscription, linger=REPLY_LINGER_MS)
        self._pings = PingWatch(hb_period)
        self._ping_channel = self._socket(zmq.SUB, "hb_ping", self._on_ping)
        self._heart = Heart(connect_url(self.info, "hb_ping"), connect_url(self.info, "hb_pong"), self.identity)
        self._heart.start()
        self._ready_timer = self._later(SUBSCRIPTION_WAIT, self._subscription_timed_out)

    def _on_subscription(self, frames):
        # XPUB delivers subscriptions as b"\x01<topic>" (b"\x00<topic>" unsubscribes);
        # only the first one matters, the rest are read to keep the socket drained
        if not self._ready_sent and frames[0].bytes[:1] == b"\x01":
            self._ready_timer.cancel()
            self._send_ready()

    def _subscription_timed_out(self):
        log.warning("no iopub subscription within %g s; output published before one arrives is lost", SUBSCRIPTION_WAIT)
        self._send_ready()

    def _send_ready(self):
        self._ready_sent = True
        for channel in (self.mux, self.task, self.control_channel):
            if channel is not None:
                self._send(channel, "engine_ready", {"id": self.engine_id}, idents=(HUB_ROUTING_ID,))
        # sent from this thread before the hand-over: a zmq socket is used by one thread at a time
        while self._unattached:
            self.kernel.attach(self._unattached.pop())
        log.info("engine %s registered (uuid %s, pid %d)", self.engine_id, self.uuid, os.getpid())

    # -- incoming ----------------------------------------------------------------------

    def decode_request(self, frames, sock):
        """A :class:`Request` from a message the main thread received, or None (dropped)."""
        msg = self.session.deserialize_or_drop(frames, "the execution channel", log)
        return None if msg is None else Request(msg, sock)

    def _on_control(self, frames):
        msg = self.session.deserialize_or_drop(frames, "control", log)
        if msg is not None:
            self.control.handle(Request(msg, self.control_channel))

    def _on_ping(self, frames):
        self._pings.ping()

    def _watch(self):
        if self.parent_pid is not None and os.getppid() != self.parent_pid:
            self.fail(f"the launcher (pid {self.parent_pid}) has exited")
            return
        if self._pings is None:
            return
        if self._ping_channel.sock.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            # pings are waiting unread: user code held the GIL, so this thread could not
            # read them (this timer can fire before the socket is drained); libzmq kept
            # receiving, so the controller is alive
            self._pings.ping()
        silent = self._pings.silent_for()
        if silent is not None:
            # nobody to unregister from or to flush output to: exit without lingering
            self.fail(f"no heartbeat from the controller for {silent:.1f} s: it is gone", linger=0)

    # -- outgoing on the main thread's sockets: called by the main thread --------------

    def send_reply(self, request, streams, msg_type, content, buffers, started, completed):
        if self.stopping:
            return
        if streams:
            self.reactor.callFromThread(self._send_streams, request, streams)
        frames = self._reply_frames(request, msg_type, content, buffers, started, completed)
        send_frames(request.channel, frames, flags=0)

    def reply_aborted(self, requests):
        completed = isoformat()
        for request in requests:
            self.send_reply(request, (), reply_type(request.msg_type), _ABORTED, (), None, completed)

    def _reply_frames(self, request, msg_type, content, buffers, started, completed):
        metadata = {
            "started": started,
            "completed": completed,
            "engine_id": self.engine_id,
            "engine_uuid": self.uuid,
            "status": content["status"],
            "iopub": request.iopub,
        }
        session = str(request.header.get("session", ""))
        if buffers and session.encode() in request.idents:
            # a client on this machine maps large results from /dev/shm (and unlinks them); not
            # when the reply goes elsewhere (the hub's resubmissions keep the client's session)
            buffers, shared, _ = shm.export_for(buffers, [("client", session)])
            if shared:
                metadata[shm.METADATA_KEY] = shared
        frames, _ = self.session.serialize(
            msg_type, content, parent=request.header, metadata=metadata, buffers=buffers, idents=request.idents
        )
        return frames

    # -- outgoing on this thread's sockets: called through reactor.callFromThread -------

    def send_iopub(self, request, streams, msg_type, content, buffers=()):
        if self.stopping:
            return
        if streams:
            self._send_streams(request, streams)
        self._publish(request, msg_type, content, buffers)

    def send_aborted(self, requests):
        """Answer requests claimed on this thread ``aborted``, through the control channel.

        Their own socket belongs to the main thread, which may be busy for a long time;
        the client matches replies by msg_id on either channel, and the hub records a
        reply seen on either queue.
        """
        if self.stopping or not requests:
            return
        completed = isoformat()
        for request in requests:
            frames = self._reply_frames(request, reply_type(request.msg_type), _ABORTED, (), None, completed)
            self.control_channel.send_multipart(frames)

    def send_control_reply(self, request, msg_type, content):
        if self.stopping:
            return
        metadata = {"engine_id": self.engine_id, "engine_uuid": self.uuid, "status": content["status"]}
        frames, _ = self.session.serialize(
            msg_type, content, parent=request.header, metadata=metadata, idents=request.idents
        )
        request.channel.send_multipart(frames)

    def schedule_flush(self):
        if not self.stopping:
            self.reactor.callLater(FLUSH_INTERVAL, self.flush_output)

    def flush_output(self):
        if self.stopping:
            return
        request, streams = self.kernel.capture.take()
        if streams:
            self._send_streams(request, streams)

    def _send_streams(self, request, streams):
        for name, text in streams:
            self._publish(request, "stream", {"name": name, "text": text})

    def _publish(self, request, msg_type, content, buffers=()):
        frames, _ = self.session.serialize(
            msg_type, content, parent=request.header, metadata=self._iopub_md, buffers=buffers,
            idents=(request.topic,),
        )
        self.iopub.send_multipart(frames)

    # -- exit --------------------------------------------------------------------------

    def fail(self, message, linger=None):
        """Log ``message`` as the reason the engine stops, and stop with exit code 1
        (``EXIT_NOT_REGISTERED`` if it never registered)."""
        log.error("%s", message)
        self.shutdown(1 if self.engine_id is not None else EXIT_NOT_REGISTERED, linger=linger)

    def shutdown(self, code=0, reason=None, linger=None):
        """Unregister, close everything and stop the reactor (idempotent).

        ``linger`` (ms) overrides the sockets' own; 0 drops whatever is still unsent.
        """
        if self.stopping:
            return
        self.stopping = True
        self.exit_code = code
        self._linger = linger
        if reason:
            log.info("engine %s shutting down: %s", self.engine_id, reason)
        for timer in self._timers:
            if timer.active():
                timer.cancel()
        if self._watch_loop is not None and self._watch_loop.running:
            self._watch_loop.stop()
        if self.engine_id is not None and linger != 0:
            self._send(self.registration, "unregistration_request", {"id": self.engine_id})
        for channel in reversed(self._sockets):
            channel.close(linger)
        for sock in self._unattached:
            sock.close(linger=linger)
        self._unattached = []
        if self._heart is not None:
            self._heart.stop()
        self.reactor.stop()
