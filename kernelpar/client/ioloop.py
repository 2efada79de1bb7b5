"""The client's IO thread: the only code that touches the client's zmq sockets.

No event loop runs in the user's process (a notebook may already run asyncio): one
daemon thread blocks in a ``zmq.Poller`` over the client's sockets plus an inproc PAIR
*wake-up* socket.  Other threads never use a socket; they append work to a deque and,
if the IO thread has not been woken for earlier work yet, send one empty frame on the
wake-up PAIR (under a lock: zmq sockets are not thread-safe).  The IO thread then runs
the queued calls, which send messages and register futures.  Incoming messages are
passed to one handler per channel; a handler that raises is logged and the thread goes
on, so a bad message can never stop the client.

Timers (output grace periods, engine re-syncs, waits with deadlines) are a heap checked
after every poll; the poll timeout is the time to the next one.

Receiving: the routing ids and the five framing frames are small and received as bytes
(cheaper than ``zmq.Frame`` objects); the buffers that follow are received with
``copy=False`` so a large array is a view on zmq's memory.  Sending is
:func:`~kernelpar.wire.frames.send_frames`: big buffers are not copied.
"""

import heapq
import itertools
import logging
import threading
import time
from collections import deque

import zmq

from ..wire.frames import send_frames
from ..wire.session import DELIM

log = logging.getLogger("kernelpar.client")

#: messages handled from one socket before the others get a turn
MAX_BATCH = 512
#: channels whose messages may carry large buffers (received without a copy)
ZERO_COPY_CHANNELS = frozenset({"mux", "task", "broadcast"})

# Plain ints: pyzmq's enum constants cost an ``enum`` call per ``|``/``&`` on the hot path.
_NOBLOCK = int(zmq.NOBLOCK)
_RCVMORE = int(zmq.RCVMORE)
_EVENTS = int(zmq.EVENTS)
_POLLIN = int(zmq.POLLIN)

_loop_ids = itertools.count()


class Timer:
    __slots__ = ("deadline", "fn", "args", "cancelled")

    def __init__(self, deadline, fn, args):
        self.deadline = deadline
        self.fn = fn
        self.args = args
        self.cancelled = False

    def cancel(self):
        self.cancelled = True

    def __lt__(self, other):
        return self.deadline < other.deadline


class IOLoop:
    """Sockets and the thread that owns them.

    ``channels`` is a list of ``(name, socket_type, url, options)`` where ``options`` is a
    dict of ``setsockopt`` values (``zmq.SUBSCRIBE`` included); ``handlers[name](frames)``
    is called in the IO thread for every message received on ``name``.  Channels are
    polled in list order, so output (iopub) is handled before replies that arrive in the
    same poll.  ``on_stop()`` runs in the IO thread just before the sockets are closed.
    """

    def __init__(self, context, channels, handlers, on_stop=None):
        self.context = context
        self._channels = channels
        self._handlers = handlers
        self._on_stop = on_stop
        self._queue = deque()
        self._wake_pending = False
        self._wake_lock = threading.Lock()
        self._wake_url = f"inproc://kernelpar-client-wake-{id(self):x}-{next(_loop_ids)}"
        self._waker = None
        self._timers = []
        self._sockets = {}
        self._stopping = False
        self._closed = False
        self._ready = threading.Event()
        self._setup_error = None
        self._thread = threading.Thread(target=self._run, name="kernelpar-client-io", daemon=True)

    # -- any thread ------------------------------------------------------------

    def start(self):
        self._thread.start()
        self._ready.wait()
        if self._setup_error is not None:
            raise self._setup_error
        waker = self.context.socket(zmq.PAIR)
        waker.linger = 0
        waker.connect(self._wake_url)
        self._waker = waker

    @property
    def closed(self):
        return self._closed

    def in_io_thread(self):
        return threading.current_thread() is self._thread

    def submit(self, fn, *args):
        """Run ``fn(*args)`` in the IO thread, soon, in submission order."""
        if self._closed:
            raise RuntimeError("This client has been closed")
        self._queue.append((fn, args))
        if not self._wake_pending:
            self._wake_pending = True
            self._send_wake()

    def _send_wake(self):
        with self._wake_lock:
            if self._waker is not None:
                try:
                    self._waker.send(b"", zmq.NOBLOCK)
                except zmq.Again:
                    pass  # the IO thread has ended (its end of the PAIR is closed): nobody to wake

    def stop(self, timeout=5.0):
        """Stop the thread and close every socket (linger 0).  Idempotent, any thread."""
        self._closed = True
        if self.in_io_thread():
            self._stopping = True  # the loop ends after the current callback
            return
        self._queue.append((self._request_stop, ()))
        self._send_wake()
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._close_waker()

    def _close_waker(self):
        with self._wake_lock:
            if self._waker is not None:
                self._waker.close(linger=0)
                self._waker = None

    # -- IO thread only ----------------------------------------------------------

    def call_later(self, delay, fn, *args):
        timer = Timer(time.monotonic() + delay, fn, args)
        heapq.heappush(self._timers, timer)
        return timer

    def send(self, channel, frames, track=False):
        """Send a multipart message on ``channel``; return its MessageTracker if ``track``.

        Big frames go zero-copy (:mod:`~kernelpar.wire.frames`), so zmq keeps a
        reference to the caller's memory until it is sent.
        """
        return send_frames(self._sockets[channel], frames, track=track)

    def _request_stop(self):
        self._stopping = True

    def _setup(self):
        ctx = self.context
        wake = ctx.socket(zmq.PAIR)
        wake.linger = 0
        wake.bind(self._wake_url)
        self._wake_in = wake
        for name, socket_type, url, options in self._channels:
            sock = ctx.socket(socket_type)
            sock.linger = 0
            for opt, value in options.items():
                sock.setsockopt(opt, value)
            sock.connect(url)
            self._sockets[name] = sock

    def _run(self):
        try:
            self._setup()
        except BaseException as e:  # reported to start()'s caller
            self._setup_error = e
            self._close_sockets()
            self._ready.set()
            return
        self._ready.set()
        poller = zmq.Poller()
        by_socket = {}
        for name, sock in self._sockets.items():
            poller.register(sock, zmq.POLLIN)
            by_socket[sock] = (sock, self._handlers[name], name in ZERO_COPY_CHANNELS)
        poller.register(self._wake_in, zmq.POLLIN)
        try:
            while not self._stopping:
                for sock, _ in poller.poll(self._poll_timeout()):
                    if sock is self._wake_in:
                        self._run_queue()
                    else:
                        self._drain(*by_socket[sock])
                if self._timers:
                    self._run_timers()
        except Exception:
            log.exception("kernelpar client IO thread crashed")
        finally:
            self._closed = True
            if self._on_stop is not None:
                try:
                    self._on_stop()
                except Exception:
                    log.exception("error while stopping the client IO thread")
            self._close_sockets()

    def _close_sockets(self):
        for sock in self._sockets.values():
            sock.close(linger=0)
        wake = getattr(self, "_wake_in", None)
        if wake is not None:
            wake.close(linger=0)
        self._close_waker()  # under its lock, so no other thread is using it

    def _poll_timeout(self):
        timers = self._timers
        while timers and timers[0].cancelled:
            heapq.heappop(timers)
        if not timers:
            return None
        return max(0, (timers[0].deadline - time.monotonic()) * 1000)

    def _run_timers(self):
        now = time.monotonic()
        timers = self._timers
        while timers and (timers[0].cancelled or timers[0].deadline <= now):
            timer = heapq.heappop(timers)
            if not timer.cancelled:
                self._call(timer.fn, timer.args)

    def _run_queue(self):
        # Order matters: consume the wake-up frames, *then* clear the flag, then run the
        # queue.  Work appended before the flag is cleared is run below; work appended
        # after it sends a fresh wake-up that stays in the socket for the next poll.
        # (Clearing first could swallow the only wake-up of work appended meanwhile.)
        wake = self._wake_in
        while wake.getsockopt(_EVENTS) & _POLLIN:
            wake.recv(_NOBLOCK)
        self._wake_pending = False
        queue = self._queue
        while queue:
            fn, args = queue.popleft()
            self._call(fn, args)

    @staticmethod
    def _call(fn, args):
        # BaseException too: a user's done-callback calling sys.exit() must not end the
        # thread every result of this client goes through (signals never land here)
        try:
            fn(*args)
        except BaseException:
            log.exception("error in kernelpar client IO thread callback %r", fn)

    def _drain(self, sock, handler, zero_copy):
        # The poller said readable; afterwards ask EVENTS (cheap) rather than provoke an
        # exception-raising EAGAIN for every batch.
        for _ in range(MAX_BATCH):
            try:
                frames = _recv(sock, zero_copy)
            except zmq.Again:
                return
            try:
                handler(frames)
            except BaseException:  # as in _call
                log.exception("error handling a message in the kernelpar client")
            if not sock.getsockopt(_EVENTS) & _POLLIN:
                return


def _recv(sock, zero_copy):
    """One multipart message: framing as bytes, buffers as zero-copy frames if ``zero_copy``."""
    recv, more = sock.recv, sock.getsockopt
    first = recv(_NOBLOCK)
    frames = [first]
    if not zero_copy:
        while more(_RCVMORE):
            frames.append(recv())
        return frames
    framing_end = 5 if first == DELIM else None
    while more(_RCVMORE):
        if framing_end is not None and len(frames) > framing_end:
            frames.append(recv(copy=False))
            continue
        frame = recv()
        if framing_end is None and frame == DELIM:
            framing_end = len(frames) + 5
        frames.append(frame)
    return frames
