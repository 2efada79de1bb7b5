"""The engine's heartbeat: a C echo device, and a watch for a silent controller.

:class:`Heart` answers the hub's pings with pyzmq's ``FORWARDER`` device (SUB on
``hb_ping`` -> DEALER on ``hb_pong``, identity = engine uuid) in its own thread and its
own zmq context.  ``zmq_proxy`` runs without the GIL, so pings are answered in well under
a millisecond even while user code holds the GIL for seconds; a Python heart would miss
them and the hub would wrongly declare a busy engine dead.  Its private context lets
:meth:`Heart.stop` use ``ctx.term()``: the device thread gets ``ETERM`` and closes its own
sockets, which is the only thread-safe way to stop a running proxy.

:class:`PingWatch` is the other direction: the IO thread also subscribes to ``hb_ping``
and records when a ping arrived, so an engine whose controller has gone away notices
(no ping for ``protocol.engine_silence_limit(hb_period)``) and exits instead of
lingering as an orphan.
"""

import time

import zmq
from zmq.devices import ThreadDevice

from ..wire.protocol import engine_silence_limit


class Heart:
    """Echo every ping from ``ping_url`` back to ``pong_url`` as ``identity``."""

    def __init__(self, ping_url, pong_url, identity):
        self._context = zmq.Context()
        device = ThreadDevice(zmq.FORWARDER, zmq.SUB, zmq.DEALER)
        device.context_factory = lambda: self._context
        device.daemon = True
        device.setsockopt_in(zmq.SUBSCRIBE, b"")
        device.setsockopt_in(zmq.LINGER, 0)
        device.setsockopt_out(zmq.LINGER, 0)
        device.setsockopt_out(zmq.IDENTITY, identity)
        device.connect_in(ping_url)
        device.connect_out(pong_url)
        self._device = device

    def start(self):
        self._device.start()

    def stop(self):
        """Terminate the context: the device thread closes its sockets and ends."""
        if self._context is not None:
            self._context.term()
            self._context = None


class PingWatch:
    """When did the controller last ping us, and has it been silent for too long?"""

    def __init__(self, hb_period, clock=time.monotonic):
        self.limit = engine_silence_limit(hb_period)
        self._clock = clock
        self.last = clock()

    def ping(self):
        self.last = self._clock()

    def silent_for(self):
        """Seconds since the last ping, if that exceeds the limit; else None."""
        elapsed = self._clock() - self.last
        return elapsed if elapsed > self.limit else None
