"""Sending and receiving whole multipart messages on a zmq socket, with little Python.

pyzmq's ``send_multipart`` costs 25-35 us for a 9-frame message on this class of
machine (enum arithmetic on every frame, per-frame checks in the sugar layer); calling
the backend's ``send`` with plain int flags costs 5 us.  Small frames are copied
(cheaper than a ``zmq.Frame`` each), large ones go zero-copy, so zmq holds a reference
to the caller's memory until it is sent: never mutate a buffer after sending it.
Receiving uses ``Frame.more`` instead of a ``getsockopt(RCVMORE)`` per frame.

Used by every Python endpoint: the controller's reactor (:mod:`.zmqtwisted`), the
engine's main thread and the client's IO thread.
"""

import zmq

#: frames at least this big are sent without a copy
COPY_THRESHOLD = 64 * 1024

NOBLOCK = int(zmq.NOBLOCK)
_SNDMORE = int(zmq.SNDMORE)
_send = zmq.backend.Socket.send


def send_frames(sock, frames, flags=NOBLOCK, track=False):
    """Send ``frames`` as one message; returns the last MessageTracker when ``track``.

    With ``track`` every frame goes zero-copy, so the tracker says when the caller may
    reuse its buffers.
    """
    last = len(frames) - 1
    more = flags | _SNDMORE
    tracker = None
    for i, frame in enumerate(frames):
        f = more if i < last else flags
        if track:
            tracker = _send(sock, frame, f, False, True)
        elif type(frame) is bytes and len(frame) < COPY_THRESHOLD:
            _send(sock, frame, f)
        else:
            _send(sock, frame, f, _nbytes(frame) < COPY_THRESHOLD)
    return tracker


def _nbytes(frame):
    if isinstance(frame, zmq.Frame):
        return COPY_THRESHOLD  # already zmq's memory: sending it never copies
    try:
        return memoryview(frame).nbytes
    except TypeError:
        return len(frame)


def recv_frames(sock, flags=NOBLOCK):
    """Receive one whole message from ``sock`` (which must have one waiting) as zmq Frames."""
    frame = sock.recv(flags, copy=False)
    frames = [frame]
    while frame.more:
        frame = sock.recv(flags, copy=False)
        frames.append(frame)
    return frames
