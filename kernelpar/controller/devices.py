"""The C forwarding devices of the controller: mux and control queues, iopub proxy.

Each device is a pyzmq C loop (``monitored_queue`` or ``zmq.proxy``) running in its own
thread with the GIL released, so no Python runs per forwarded message.  Sockets are
created and bound in the calling thread (so their random ports are known before the
connection files are written) and handed to the device thread; starting a thread is a
full memory barrier, which is what zmq requires to move a socket between threads.
Every copy a device makes goes to an inproc monitor PUB that the hub reads.  The
devices end when the context is terminated: they get ETERM and close their own sockets.
"""

import logging
import threading

import zmq
from zmq.devices import monitored_queue

log = logging.getLogger("kernelpar.controller")


def unlimited(sock):
    """HWM 0: with the default 1000, C devices were measured silently dropping messages."""
    sock.setsockopt(zmq.SNDHWM, 0)
    sock.setsockopt(zmq.RCVHWM, 0)
    sock.setsockopt(zmq.LINGER, 0)
    return sock


class Device:
    """One forwarding loop over already-bound sockets, run in a daemon thread."""

    def __init__(self, name, run, sockets):
        self.name = name
        self._run = run
        self._sockets = sockets
        self.thread = threading.Thread(target=self._main, name=f"kernelpar-{name}", daemon=True)

    def start(self):
        self.thread.start()

    def _main(self):
        try:
            self._run()
        except zmq.ContextTerminated:
            pass
        except zmq.ZMQError as e:
            if e.errno != zmq.ETERM:
                log.error("device %s stopped: %s", self.name, e)
        finally:
            for sock in self._sockets:
                sock.close(linger=0)


def router_queue(ctx, name, binder, monitor_url, prefixes, engine_type=zmq.ROUTER):
    """A ROUTER|ROUTER monitored queue; returns ``(device, client_port, engine_port)``.

    With ``engine_type=zmq.DEALER`` it is the ``pure`` task scheme: engines' DEALERs
    connect to the DEALER, which hands out tasks round robin, in C, with no flags.
    """
    client_side = unlimited(ctx.socket(zmq.ROUTER))
    engine_side = unlimited(ctx.socket(engine_type))
    mon = unlimited(ctx.socket(zmq.PUB))
    client_port = binder.bind(client_side)
    engine_port = binder.bind(engine_side)
    mon.connect(monitor_url)
    in_prefix, out_prefix = prefixes
    device = Device(name, lambda: monitored_queue(client_side, engine_side, mon, in_prefix, out_prefix),
                    [client_side, engine_side, mon])
    return device, client_port, engine_port


def iopub_proxy(ctx, binder, capture_url, inproc_url):
    """Engines' XPUBs -> XSUB | XPUB -> clients' SUBs; everything is captured for the hub.

    Returns ``(device, client_port, engine_port)``.  The client-facing XPUB is also
    bound on ``inproc_url`` for the hub's own subscriber.
    """
    engine_side = unlimited(ctx.socket(zmq.XSUB))
    client_side = unlimited(ctx.socket(zmq.XPUB))
    capture = unlimited(ctx.socket(zmq.PUB))
    engine_port = binder.bind(engine_side)
    client_port = binder.bind(client_side)
    client_side.bind(inproc_url)
    capture.connect(capture_url)
    device = Device("iopub", lambda: zmq.proxy(engine_side, client_side, capture), [engine_side, client_side, capture])
    return device, client_port, engine_port
