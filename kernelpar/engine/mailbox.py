"""Where the engine's main thread waits for work: its request sockets and a wake-up pipe.

The main thread owns the engine's request sockets (mux, and task when there is one): it
receives requests itself and sends their replies itself, so a no-op round trip costs
the engine no hand-off between threads (each hand-off is a futex wake-up plus a reactor
turn, which on a small VM is a large part of a round trip).  While user code runs,
nobody reads these sockets: new requests wait in libzmq (HWM 0, nothing is dropped)
and are read as soon as the current request is done.

Other threads (the IO thread, and unit tests) talk to the main thread with
:meth:`Mailbox.put`, which queues an item and writes a byte to a pipe that the main
thread's ``zmq.Poller`` watches beside the sockets.  An item that is a ``zmq.Socket``
hands that socket to the main thread (libzmq sockets may move between threads, with
the lock here as the memory barrier); any other item is returned by :meth:`get`.
"""

import os
import threading
from collections import deque

import zmq

from ..wire.frames import recv_frames

#: the longest single wait; waits loop, so this only bounds how stale a wait can be
POLL_MS = 1000

_EVENTS = int(zmq.EVENTS)
_POLLIN = int(zmq.POLLIN)


class Mailbox:
    """The main thread's source of work.

    ``decode(frames, sock)`` turns a received message into an item for :meth:`get`, or
    None to drop it (it is called on the main thread, for every message received).
    """

    def __init__(self, decode=None):
        self.decode = decode
        self._items = deque()
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._poller = zmq.Poller()
        self._poller.register(self._wake_r, zmq.POLLIN)
        self._sockets = []
        self._closed = False

    def put(self, item):
        """Queue ``item`` for the main thread and wake it (any thread)."""
        with self._lock:
            # under the lock: after close() the pipe's fd number may belong to another file
            if self._closed:
                return
            self._items.append(item)
            try:
                os.write(self._wake_w, b"\0")
            except BlockingIOError:
                pass  # the pipe is full of wake-ups already: the main thread will look

    def get(self):
        """The next item, receiving from the sockets as needed (main thread; blocks)."""
        while True:
            self.receive()
            item = self._pop()
            if item is not None:
                return item
            ready = dict(self._poller.poll(POLL_MS))
            if self._wake_r in ready:
                try:
                    while os.read(self._wake_r, 4096):
                        pass
                except BlockingIOError:
                    pass

    def receive(self):
        """Read every message already waiting on the sockets, without blocking (main thread)."""
        for sock in self._sockets:
            while sock.getsockopt(_EVENTS) & _POLLIN:
                item = self.decode(recv_frames(sock), sock)
                if item is not None:
                    with self._lock:
                        self._items.append(item)

    def _pop(self):
        while True:
            with self._lock:
                if not self._items:
                    return None
                item = self._items.popleft()
            if isinstance(item, zmq.Socket):
                self._sockets.append(item)
                self._poller.register(item, zmq.POLLIN)
                continue
            return item

    def close(self, linger=None):
        """Close the sockets handed over so far and the pipe (main thread, at exit)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._sockets.extend(i for i in self._items if isinstance(i, zmq.Socket))
            os.close(self._wake_r)
            os.close(self._wake_w)
        for sock in self._sockets:
            sock.close(linger=linger)
        self._sockets = []
