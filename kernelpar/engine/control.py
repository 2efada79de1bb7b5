"""Control-channel requests, handled at once on the IO thread.

These must work while user code runs, which is why they never go through the main
thread's queue (except ``clear_request``, whose work must happen between tasks):

* ``abort_request {msg_ids | null}``: queued requests are answered ``aborted`` now;
  ids not yet arrived are answered ``aborted`` when they do.
* ``clear_request``: the kernel resets the namespace before the next queued request
  and sends ``clear_reply`` itself.
* ``shutdown_request``: reply, then shut the engine down cleanly.
* ``signal_request {sig}``: deliver ``sig`` (a number or a name such as ``"SIGINT"``
  or ``"INT"``) to this process; SIGINT interrupts running user code with
  KeyboardInterrupt.

Each gets ``<type>_reply {status, ...}`` with the error fields when it fails.
"""

import signal
import threading

from ..errors import wrap_exception
from .kernel import reply_type

#: the signal goes out a moment after the reply, so that the reply is on its way
#: before a signal such as SIGKILL or SIGSTOP takes effect
SIGNAL_DELAY = 0.01


def resolve_signal(sig):
    """A signal number from an int or a name (``"SIGINT"``, ``"INT"``, ``"2"``)."""
    if isinstance(sig, bool):
        raise TypeError(f"not a signal: {sig!r}")
    if isinstance(sig, int):
        number = sig
    elif isinstance(sig, str):
        name = sig.strip().upper()
        if name.lstrip("-").isdigit():
            number = int(name)
        else:
            if not name.startswith("SIG"):
                name = "SIG" + name
            member = getattr(signal.Signals, name, None)
            if member is None:
                raise ValueError(f"unknown signal name {sig!r}")
            number = int(member)
    else:
        raise TypeError(f"a signal must be an int or a name, not {type(sig).__name__}")
    if number not in signal.valid_signals():
        raise ValueError(f"invalid signal number {number}")
    return number


class ControlHandler:
    """Answers control requests for one engine (IO thread)."""

    def __init__(self, io, kernel, reactor):
        self.io = io
        self.kernel = kernel
        self.reactor = reactor
        self._handlers = {
            "abort_request": self.abort,
            "clear_request": self.clear,
            "shutdown_request": self.shutdown,
            "signal_request": self.signal,
        }

    def handle(self, request):
        handler = self._handlers.get(request.msg_type)
        try:
            if handler is None:
                raise ValueError(f"unknown control request {request.msg_type!r}")
            handler(request)
        except Exception as e:
            info = {"engine_id": self.kernel.engine_id, "engine_uuid": self.kernel.engine_uuid, "method": "control"}
            self.io.send_control_reply(request, reply_type(request.msg_type), wrap_exception(info, e))

    def abort(self, request):
        msg_ids = request.msg["content"].get("msg_ids")
        if msg_ids is not None and not isinstance(msg_ids, list):
            raise TypeError(f"msg_ids must be a list or null, not {type(msg_ids).__name__}")
        self.io.send_aborted(self.kernel.abort(msg_ids))
        self.io.send_control_reply(request, "abort_reply", {"status": "ok"})

    def clear(self, request):
        self.kernel.request_clear(request)

    def shutdown(self, request):
        self.io.send_control_reply(request, "shutdown_reply", {"status": "ok", "restart": False})
        self.io.shutdown(0, "shutdown requested")

    def signal(self, request):
        number = resolve_signal(request.msg["content"].get("sig"))
        self.io.send_control_reply(request, "signal_reply", {"status": "ok"})
        self.reactor.callLater(SIGNAL_DELAY, signal_main_thread, number)


def signal_main_thread(number):
    """Deliver signal ``number`` to this process, to the main thread in particular.

    ``os.kill(os.getpid(), ...)`` from the IO thread may be delivered to the IO thread
    itself (measured: 1 run in 3); Python then runs the handler only when the main
    thread next executes bytecode, so a ``time.sleep(30)`` in user code would not be
    interrupted.  Directed at the main thread, the signal makes its blocking call
    return EINTR and the handler (KeyboardInterrupt for SIGINT) runs at once.
    Process-wide actions (default termination, SIGSTOP, SIGKILL) are unaffected.
    """
    signal.pthread_kill(threading.main_thread().ident, number)

