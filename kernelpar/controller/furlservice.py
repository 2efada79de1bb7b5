"""The controller's FURL ports: answer FURL handshakes with connection information.

0.10's controller listened on two Foolscap *tubs*: one for clients (holding the
MultiEngineClient and TaskClient references) and one for engines.  kernelpar keeps the
two ports (``--client-port``, ``--engine-port``; 0 picks a free one) as two zmq ROUTER
sockets on the controller's reactor (:class:`~kernelpar.wire.zmqtwisted.ZmqSocket`).
A request that proves it holds one of a tub's swiss numbers gets the connection dict of
that tub's side (the client or the engine JSON dict, key included, encrypted; see
:mod:`kernelpar.wire.furl`); a wrong swiss number or tub id gets a refusal and a warning
in the controller's log; a malformed message is logged and dropped.  Nothing a peer sends
can raise into the reactor.
"""

import logging
from dataclasses import dataclass, field

import zmq

from ..wire import furl as furls
from ..wire.zmqtwisted import ZmqSocket

log = logging.getLogger("kernelpar.controller")


@dataclass
class Tub:
    """One listening port and the FURL names it answers for.

    ``side`` is ``'client'`` or ``'engine'``; ``names`` maps swiss numbers to kinds
    (``'mec'``, ``'tc'``, ``'engine'``); ``locations`` are the hosts written into the
    FURLs; ``port`` is filled in once bound when it was 0.
    """

    side: str
    tub_id: str
    secure: bool
    ip: str
    port: int
    locations: list
    names: dict = field(default_factory=dict)

    def furls(self):
        """``{kind: Furl}`` for every name of this tub (needs the bound port)."""
        hints = [(host, self.port) for host in self.locations]
        return {kind: furls.make_furl(self.tub_id, hints, name, self.secure) for name, kind in self.names.items()}


class FurlPortError(RuntimeError):
    """A FURL port cannot be bound."""


def _peer(frames):
    try:
        return frames[-1].get("Peer-Address")
    except (AttributeError, zmq.ZMQError):
        return "?"


class FurlService:
    """Listen on every tub's port and answer handshakes with ``connection_info[tub.side]``."""

    def __init__(self, reactor, ctx, tubs, connection_info):
        self.reactor = reactor
        self.tubs = list(tubs)
        self.connection_info = connection_info
        self._sockets = []
        try:
            for tub in self.tubs:
                self._listen(ctx, tub)
        except BaseException:
            self.close()
            raise

    def _listen(self, ctx, tub):
        sock = ctx.socket(zmq.ROUTER)
        interface = f"tcp://{tub.ip}"
        try:
            if tub.port:
                sock.bind(f"{interface}:{tub.port}")
            else:
                sock.bind(f"{interface}:*")
                tub.port = int(sock.getsockopt_string(zmq.LAST_ENDPOINT).rsplit(":", 1)[1])
        except zmq.ZMQError as e:
            sock.close(linger=0)
            raise FurlPortError(f"cannot listen for {tub.side} FURLs on {tub.ip}:{tub.port}: {e}") from None
        # the handler runs from the reactor, after ``zs`` is bound
        zs = ZmqSocket(self.reactor, sock, lambda frames: self._on_request(tub, zs, frames))
        self._sockets.append(zs)
        log.info("%s FURL port: %s:%d (%s)", tub.side, tub.ip, tub.port, "pb" if tub.secure else "pbu")

    def _on_request(self, tub, sock, frames):
        if len(frames) < 2:
            log.warning("dropped a malformed FURL request on the %s port (%d frames)", tub.side, len(frames))
            return
        route, body = frames[:1], frames[1:]
        try:
            name, kind, nonce = furls.check_request(body, tub.tub_id, tub.secure, tub.names)
        except furls.HandshakeError as e:
            log.warning("dropped a malformed FURL request on the %s port from %s: %s", tub.side, _peer(frames), e)
            return
        except furls.Refused as e:
            log.warning("refused a FURL request on the %s port from %s: %s", tub.side, _peer(frames), e)
            sock.send_multipart(route + furls.refusal(e))
            return
        log.info("answered a FURL request for %s from %s", kind, _peer(frames))
        sock.send_multipart(route + furls.reply(tub.tub_id if tub.secure else None, name, kind, nonce,
                                                self.connection_info[tub.side]))

    def furls(self):
        """``{kind: Furl}`` over every tub."""
        result = {}
        for tub in self.tubs:
            result.update(tub.furls())
        return result

    def close(self, linger=0):
        for zs in self._sockets:
            zs.close(linger=linger)
        self._sockets = []
