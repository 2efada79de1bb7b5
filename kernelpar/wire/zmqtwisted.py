"""A zmq socket driven by a Twisted reactor (an ``IReadDescriptor``).

Theory of operation
-------------------
A zmq socket exposes one file descriptor, ``zmq.FD``, and it is *edge-triggered*: it
becomes readable when libzmq's internal mailbox receives commands, and *any* call that
processes that mailbox (``recv``, ``send``, ``getsockopt(EVENTS)``) consumes the edge.
So the reactor's "readable" callback is only a hint.  The rules this class follows:

* On a wake-up, drain while ``EVENTS & POLLIN`` (not until the first EAGAIN of one
  ``recv``), handling at most ``max_batch`` messages per reactor turn and rescheduling
  itself with ``callLater(0)`` for the rest, because the FD will not fire again for
  messages that are already queued.
* After every send, re-check ``EVENTS``: the send may have swallowed the edge that
  announced new incoming messages.  Forgetting this stalls a server whose replies are
  sent outside its read handler (the normal case for a relaying controller); the test
  suite reproduces that stall with a naive subclass.
* Sends that hit EAGAIN (HWM on a DEALER/PUB) are queued in order and flushed when
  ``EVENTS & POLLOUT`` comes back.
* ``removeReader`` before ``close``; ``LINGER`` is explicit.

A socket whose messages need no immediate answer (the hub's copies of routed traffic)
can pass ``batch_delay``: a wake-up then only consumes the edge and schedules one drain
``batch_delay`` seconds later, so a busy stream costs one reactor turn per batch rather
than one per message.
"""

from collections import deque

import zmq
from twisted.internet.interfaces import IReadDescriptor
from twisted.python import log
from zope.interface import implementer

from .frames import recv_frames, send_frames

# plain ints: the enum flags pyzmq exposes cost a Python-level operation per test
_EVENTS = int(zmq.EVENTS)
_POLLIN = int(zmq.POLLIN)
_POLLOUT = int(zmq.POLLOUT)


@implementer(IReadDescriptor)
class ZmqSocket:
    """Own ``sock`` on ``reactor``: call ``on_message(frames)`` for each received message."""

    max_batch = 256

    def __init__(self, reactor, sock, on_message=None, linger=0, batch_delay=0):
        self.reactor = reactor
        self.sock = sock
        self.on_message = on_message
        self.batch_delay = batch_delay
        sock.setsockopt(zmq.LINGER, linger)
        self._fd = sock.getsockopt(zmq.FD)
        self._pending_drain = None
        self._outbox = deque()
        if on_message is not None:
            reactor.addReader(self)
            self._schedule_drain()

    # IReadDescriptor / ILoggingContext
    def fileno(self):
        return self._fd if self.sock is not None else -1

    def logPrefix(self):
        return "zmq"

    def connectionLost(self, reason):
        self.close()

    def doRead(self):
        if not self.batch_delay:
            self._drain()
        elif self.sock is not None:
            # consume the edge now (the reactor's epoll is level-triggered), read later
            self.sock.getsockopt(_EVENTS)
            self._schedule_drain(self.batch_delay)

    def send_multipart(self, frames):
        """Send now if possible, else queue in order; never raises EAGAIN (other errors do).

        Large frames are not copied (:mod:`.frames`), so a caller must not mutate them after.
        """
        if self.sock is None:
            raise RuntimeError("send on a closed zmq socket")
        try:
            if self._outbox or not self._try_send(frames):
                self._outbox.append(frames)
        finally:
            # also after a failed send (EHOSTUNREACH from a ROUTER_MANDATORY socket)
            self._after_send()

    def _try_send(self, frames):
        try:
            send_frames(self.sock, frames)
            return True
        except zmq.Again:
            return False

    def _after_send(self):
        # the send may have consumed the edge announcing incoming messages
        events = self.sock.getsockopt(_EVENTS)
        if events & _POLLIN or (self._outbox and events & _POLLOUT):
            self._schedule_drain()

    def _schedule_drain(self, delay=0):
        if self._pending_drain is None and self.sock is not None:
            self._pending_drain = self.reactor.callLater(delay, self._scheduled_drain)

    def _scheduled_drain(self):
        self._pending_drain = None
        self._drain()

    def drain(self):
        """Handle every message waiting now (for a socket read in batches: catch up at once)."""
        if self._pending_drain is not None and self._pending_drain.active():
            self._pending_drain.cancel()
        self._pending_drain = None
        self._drain()

    def _drain(self):
        handled = 0
        while self.sock is not None:
            events = self.sock.getsockopt(_EVENTS)
            if self._outbox and events & _POLLOUT:
                self._flush()
                continue
            if not events & _POLLIN or self.on_message is None:
                return
            if handled >= self.max_batch:
                self._schedule_drain()
                return
            frames = recv_frames(self.sock)
            handled += 1
            try:
                self.on_message(frames)
            except Exception:
                log.err(None, "error handling a zmq message (dropped)")

    def _flush(self):
        while self._outbox:
            if not self._try_send(self._outbox[0]):
                return
            self._outbox.popleft()

    def close(self, linger=None):
        if self.sock is None:
            return
        if self.on_message is not None:
            try:
                self.reactor.removeReader(self)
            except (ValueError, OSError, KeyError):
                pass
        if self._pending_drain is not None and self._pending_drain.active():
            self._pending_drain.cancel()
        self._pending_drain = None
        self.sock.close(linger=linger)
        self.sock = None
