"""Redeeming a FURL: one blocking request/reply with the controller's FURL port.

Used by the legacy clients (:mod:`kernelpar.client.legacy.furl`) and by ``ipengine
--furl-file``, before either has any other connection, so it is a plain zmq DEALER with
a deadline (no reactor, no IO thread).  The DEALER connects to every location hint of
the FURL with ``IMMEDIATE`` set, so the request goes to the first hint that accepts a
connection, and a dead controller shows as "no answer within the timeout" rather than
a request queued forever.  The protocol itself is :mod:`.furl`'s.
"""

import time

import zmq

from . import furl as furls


def _where(furl):
    return ", ".join(f"{host}:{port}" for host, port in furl.hints)


def resolve(furl, timeout, source=None, context=None):
    """``(kind, connection dict)`` for ``furl``, asking its controller.

    ``source`` names where the FURL came from (a file path) in error messages.  Raises
    ``TimeoutError`` when no controller answers within ``timeout`` seconds,
    ``ConnectionRefusedError`` when the controller refuses the FURL (wrong swiss number,
    wrong tub) and ``ConnectionError`` when the answer cannot be authenticated.
    """
    source = source or f"the FURL {furl.redacted()}"
    deadline = time.monotonic() + timeout
    sock = (context or zmq.Context.instance()).socket(zmq.DEALER)
    try:
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.IMMEDIATE, 1)
        for host, port in furl.hints:
            sock.connect(f"tcp://{host}:{port}")
        frames, nonce = furls.request(furl)
        no_answer = TimeoutError(f"no controller answered at {_where(furl)} within {timeout:g} s for {source}: "
                                 "is the controller running? (a stale FURL file names a controller that has exited)")
        sock.setsockopt(zmq.SNDTIMEO, max(1, int(timeout * 1000)))
        try:
            sock.send_multipart(frames)
        except zmq.Again:
            raise no_answer from None
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not sock.poll(max(1, int(remaining * 1000)), zmq.POLLIN):
            raise no_answer
        answer = sock.recv_multipart()
    finally:
        sock.close(linger=0)
    try:
        return furls.open_reply(answer, furl, nonce)
    except furls.Refused as e:
        raise ConnectionRefusedError(f"the controller at {_where(furl)} refused {source}: {e}") from None
    except furls.HandshakeError as e:
        raise ConnectionError(f"bad answer from {_where(furl)} for {source}: {e}") from None
