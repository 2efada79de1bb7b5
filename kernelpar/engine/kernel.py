"""Request dispatch: the engine's user namespace and the main-thread work loop.

Theory of operation
-------------------
The main thread (:meth:`Kernel.run`) owns the request sockets (mux, and task when the
cluster has one): the IO thread connects them and hands them over with
:meth:`Kernel.attach`, and from then on the main thread receives requests, runs them
one at a time and sends their replies itself (:mod:`.mailbox` explains why).  Each
request received is filed in ``pending`` (by msg_id) and in the mailbox's FIFO.  A
request is *claimed* by popping it from ``pending`` under a lock, by whichever thread
gets there first: the main thread to run it, or the IO thread to answer it
``aborted`` (an ``abort_request`` on the control channel).  So a request is answered
exactly once, without the IO thread ever waiting for user code.  Requests still unread
in libzmq while user code runs are not in ``pending`` yet: an abort naming them is
remembered, and they are answered ``aborted`` as soon as they are read.

The main thread calls these methods of the IO object directly (they send on its own
sockets):

* ``decode_request(frames, sock)`` -> :class:`Request` or None (dropped)
* ``send_reply(request, streams, reply_type, content, buffers, started, completed)``
* ``reply_aborted(requests)``

and everything that goes out on the IO thread's sockets through ``post``
(``reactor.callFromThread`` in the engine, a direct call in unit tests):

* ``send_iopub(request, streams, msg_type, content, buffers=())``
* ``send_control_reply(request, reply_type, content)``
* ``schedule_flush()`` (stdout/stderr were written: flush them in ~50 ms)

The IO thread itself answers the requests it claims with ``send_aborted(requests)``.
``streams`` is captured output not yet published, ``[(name, text), ...]``; a request's
``iopub`` count (see :mod:`.capture`) covers it, so a client waits for it even when it
arrives after the reply.

SIGINT and SIGTERM handlers (installed by the app) consult :attr:`Kernel.busy`: they
raise into the main thread only while user code (or its result's serialization) runs,
so an idle engine survives a stray SIGINT.
"""

import builtins
import logging
import sys
import threading
import types
from collections import deque

import zmq

from ..errors import wrap_exception
from ..wire import shm
from ..wire.protocol import LEGACY_EXECUTE, LEGACY_RESULT, reply_type
from ..wire.serialize import (
    serialize_object,
    set_user_namespace,
    unpack_apply,
    wrap_buffers,
)
from ..wire.session import isoformat
from .capture import Capture
from .mailbox import Mailbox

log = logging.getLogger("kernelpar.engine")

#: metadata flag of an apply_request whose failure aborts the requests queued behind it
STOP_ON_ERROR = "stop_on_error"

#: remembered ids of aborted requests that had not arrived yet (bounded)
MAX_EARLY_ABORTS = 10000

_OK = {"status": "ok"}
_STOP = object()
_WAKE = object()


#: code objects of the signal handlers that raise into user code (see
#: ``app.install_signal_handlers``): a remote traceback ends at the user's line
signal_handler_codes = set()


class EngineShutdown(BaseException):
    """Raised in the main thread to stop running user code because the engine exits."""


def drop_handler_frame(exc):
    """Cut the signal handler's frame off the end of ``exc``'s traceback, in place."""
    tb = exc.__traceback__
    if tb is not None and tb.tb_frame.f_code in signal_handler_codes:
        exc.__traceback__ = None  # raised in a C call: no frame of the user's is left
        return
    while tb is not None and tb.tb_next is not None:
        if tb.tb_next.tb_frame.f_code in signal_handler_codes:
            tb.tb_next = None
            return
        tb = tb.tb_next


class Request:
    """One apply/execute request and the bookkeeping of its reply."""

    __slots__ = ("msg", "msg_id", "msg_type", "header", "idents", "channel", "topic", "iopub")

    def __init__(self, msg, channel):
        self.msg = msg
        self.msg_id = msg["msg_id"]
        self.msg_type = msg["msg_type"]
        self.header = msg["header"]
        self.idents = msg["idents"]
        #: the socket the reply goes back on (mux or task: the main thread's; control: the IO thread's)
        self.channel = channel
        #: iopub topic: the requesting client's session id
        self.topic = str(self.header.get("session", "")).encode()
        #: iopub messages published for this request so far (see :class:`.capture.Capture`)
        self.iopub = 0

    def __repr__(self):
        return f"<Request {self.msg_type} {self.msg_id}>"


def make_user_module():
    """A fresh ``__main__`` module whose dict is the user namespace."""
    module = types.ModuleType("__main__", doc="kernelpar engine user namespace")
    module.__dict__["__builtins__"] = builtins
    return module


class Kernel:
    """The user namespace and the queue of requests, run by the main thread."""

    #: the engine process's kernel (one per process), for :func:`.datapub.publish_data`
    instance = None

    def __init__(self, engine_uuid, post, shell_factory=None):
        self.engine_uuid = engine_uuid
        self.engine_id = None
        self.io = None  # set by the IO object that owns this kernel
        self._post = post
        self._shell_factory = shell_factory
        self._shell = None
        self.user_module = make_user_module()
        self.user_ns = self.user_module.__dict__
        # interactive functions and pickled __main__ objects resolve in the user namespace
        sys.modules["__main__"] = self.user_module
        set_user_namespace(self.user_ns)
        self.capture = Capture(lambda: self._post(self.io.schedule_flush))
        self._mailbox = Mailbox(self._receive)
        #: LINGER (ms) for the request sockets when the loop ends (None: their own)
        self.linger = None
        self._lock = threading.Lock()
        self._pending = {}
        self._early_aborts = {}
        self._controls = deque()
        self.busy = False
        #: set when the engine is exiting: queued requests are no longer started
        self.stopping = False
        self.current = None
        self.set_engine_id(None)
        Kernel.instance = self

    def set_engine_id(self, engine_id):
        self.engine_id = engine_id
        info = {"engine_id": engine_id, "engine_uuid": self.engine_uuid}
        self._apply_info = {**info, "method": "apply"}
        self.execute_info = {**info, "method": "execute"}

    # -- called by other threads ------------------------------------------------------

    def attach(self, sock):
        """Hand a connected request socket (mux or task) over to the main thread."""
        self._mailbox.put(sock)

    def submit(self, request):
        """Queue ``request`` as if received; returns False if an earlier abort_request named it."""
        if not self._file(request):
            return False
        self._mailbox.put(request)
        return True

    def _file(self, request):
        with self._lock:
            if self._early_aborts and self._early_aborts.pop(request.msg_id, False):
                return False
            self._pending[request.msg_id] = request
        return True

    def abort(self, msg_ids=None):
        """Claim the queued requests named by ``msg_ids`` (all if None) and return them.

        Ids that are not queued may still be on their way (abort and request travel on
        different channels), so they are remembered and answered ``aborted`` on arrival.
        """
        with self._lock:
            if msg_ids is None:
                claimed = list(self._pending.values())
                self._pending.clear()
                return claimed
            claimed = []
            for msg_id in msg_ids:
                request = self._pending.pop(msg_id, None)
                if request is not None:
                    claimed.append(request)
                else:
                    self._early_aborts[msg_id] = True
            while len(self._early_aborts) > MAX_EARLY_ABORTS:
                del self._early_aborts[next(iter(self._early_aborts))]
        return claimed

    def request_clear(self, request):
        """Reset the namespace in the main thread, before any queued request runs."""
        self._controls.append(request)
        self._mailbox.put(_WAKE)

    def stop(self, linger=None):
        """Make :meth:`run` return once the current request (if any) is done.

        ``linger`` (ms) overrides the request sockets' own when they close.
        """
        self.linger = linger
        self.stopping = True
        self._mailbox.put(_STOP)

    # -- main thread -------------------------------------------------------------------

    def run(self):
        """Serve requests until :meth:`stop` or :class:`EngineShutdown`."""
        try:
            self._serve()
        finally:
            self._mailbox.close(self.linger)

    def _receive(self, frames, sock):
        """A message read from a request socket: the mailbox's next item, or None."""
        request = self.io.decode_request(frames, sock)
        if request is None:
            return None
        if not self._file(request):
            self.io.reply_aborted([request])
            return None
        return request

    def _serve(self):
        get = self._mailbox.get
        while True:
            try:
                request = get()
                if self._controls:
                    self._run_controls()
                if request is _STOP or self.stopping:
                    return
                if request is _WAKE:
                    continue
                with self._lock:
                    claimed = self._pending.pop(request.msg_id, None)
                if claimed is None:
                    continue  # answered 'aborted' by the IO thread meanwhile
                if request.msg_type == "apply_request":
                    self.do_apply(request)
                elif request.msg_type == "execute_request":
                    legacy = request.msg["metadata"].get(LEGACY_EXECUTE)
                    if legacy is None:
                        self.do_execute(request)
                    else:
                        self.do_legacy_execute(request, legacy)
                else:
                    self._unknown(request)
            except EngineShutdown:
                self.busy = False
                return
            except zmq.ContextTerminated:
                # the IO thread is ending the engine and terminated the context while this
                # thread was between requests (its _STOP may still be queued behind)
                return
            except KeyboardInterrupt as e:
                # SIGINT landed in our own code around the user call, not inside it
                self._fail_current(e)
            except Exception as e:
                # a bug of ours (user code's errors are caught in do_*): answer, keep serving
                log.exception("internal error while serving %r", self.current)
                self._fail_current(e)

    def _begin(self, request):
        self.current = request
        self.capture.begin(request)
        return isoformat()

    def _finish(self, request, content, buffers, started):
        completed = isoformat()
        self.current = None
        streams = self.capture.end()
        self.io.send_reply(request, streams, reply_type(request.msg_type), content, buffers, started, completed)

    def do_apply(self, request):
        metadata = request.msg["metadata"]

        def call():
            buffers = request.msg["buffers"]
            shared = metadata.get(shm.METADATA_KEY)
            if shared:
                buffers = shm.attach_received(buffers, shared)
            f, args, kwargs = unpack_apply(buffers, self.user_ns)
            return _OK, serialize_object(wrap_buffers(f(*args, **kwargs)))

        # the legacy MultiEngineClient asks for 0.10's queue semantics: a failure aborts
        # what is queued behind it
        self._answer_call(request, call, bool(metadata.get(STOP_ON_ERROR)))

    def do_legacy_execute(self, request, legacy):
        """An execute of IPython 0.10's MultiEngineClient (``legacy_execute``, see
        :mod:`kernelpar.wire.protocol`): its interpreter's result dict in the reply."""
        from ..client.legacy import onengine  # loaded only by engines that serve a legacy client

        code = request.msg["content"].get("code", "")

        def call():
            result = onengine.execute(None, legacy.get("raw", code), code, legacy.get("prelude"))
            return {"status": "ok", LEGACY_RESULT: result}, ()

        self._answer_call(request, call, True)

    def _answer_call(self, request, call, stop_on_error):
        """Reply to ``request`` with ``call()``'s ``(content, buffers)``, or with the error it
        raised; after an error, with ``stop_on_error``, abort what is queued (claimed
        before the reply goes out, as in do_execute)."""
        started = self._begin(request)
        self.busy = True
        try:
            content, buffers = call()
        except EngineShutdown:
            raise
        except BaseException as e:
            # drop this method's frame and call's: the remote traceback starts at the user's code
            for _ in range(2):
                if e.__traceback__ is not None and e.__traceback__.tb_next is not None:
                    e.__traceback__ = e.__traceback__.tb_next
            drop_handler_frame(e)
            content, buffers = wrap_exception(self._apply_info, e), ()
        self.busy = False
        failed = content.get("status") != "ok"
        aborted = self._claim_queued() if failed and stop_on_error else None
        self._finish(request, content, buffers, started)
        if aborted:
            self.io.reply_aborted(aborted)

    def do_execute(self, request):
        content = request.msg["content"]
        code = content.get("code", "")
        silent = bool(content.get("silent", False))
        started = self._begin(request)
        shell = self.shell
        if not silent:
            self.publish("execute_input", {"code": code, "execution_count": shell.execution_count})
        self.busy = True
        try:
            reply = shell.execute(
                code,
                silent=silent,
                store_history=bool(content.get("store_history", not silent)),
                user_expressions=content.get("user_expressions") or {},
                engine_info=self.execute_info,
            )
        finally:
            self.busy = False
        # stop on error: claim what is queued *before* the reply goes out, or a request
        # the client sends after seeing the error could be aborted too
        aborted = self._claim_queued() if reply["status"] == "error" and content.get("stop_on_error", True) else None
        self._finish(request, reply, (), started)
        if aborted:
            self.io.reply_aborted(aborted)

    def _claim_queued(self):
        """Claim every request queued now, the unread ones included (for stop-on-error)."""
        self._mailbox.receive()
        return self.abort(None)

    @property
    def shell(self):
        """The IPython shell, created on the first execute to keep startup fast."""
        if self._shell is None:
            self._shell = self._shell_factory(self.user_module, self.publish)
        return self._shell

    def publish(self, msg_type, content, buffers=()):
        """Publish an iopub message (with optional buffer frames) for the running request
        (main thread)."""
        request = self.current
        if request is None:
            return  # e.g. display() from a background thread while idle: nobody asked
        owner, streams = self.capture.take()
        self.capture.count(request, 1)
        extra = (buffers,) if buffers else ()  # an IO object without buffer support still works
        self._post(self.io.send_iopub, request, streams if owner is request else [], msg_type, content, *extra)

    def _run_controls(self):
        while self._controls:
            request = self._controls.popleft()
            self.clear_namespace()
            self._post(self.io.send_control_reply, request, "clear_reply", {"status": "ok"})

    def clear_namespace(self):
        """Reset the user namespace in place (its identity is what functions hold)."""
        if self._shell is not None:
            self._shell.reset(new_session=False)
        else:
            self.user_ns.clear()
            self.user_ns.update(__name__="__main__", __builtins__=builtins, __doc__=self.user_module.__doc__)

    def _unknown(self, request):
        started = self._begin(request)
        err = ValueError(f"unknown request type {request.msg_type!r} on the execution channel")
        self._finish(request, wrap_exception(self._apply_info, err), (), started)

    def _fail_current(self, exc):
        """Answer the request being served with ``exc``, unless its reply is out already."""
        self.busy = False
        request = self.current
        if request is None:
            return
        info = self.execute_info if request.msg_type == "execute_request" else self._apply_info
        self._finish(request, wrap_exception(info, exc), (), isoformat())
