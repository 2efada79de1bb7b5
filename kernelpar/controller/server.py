"""The controller's I/O edge: binds the sockets, runs the devices, feeds the hub.

Everything here runs on the Twisted reactor thread except the C devices
(:mod:`.devices`).  Python sees only what the hub must decide on: hub requests,
monitor copies, iopub captures and heartbeat pongs, and the load-balanced tasks
(:mod:`.taskqueue`), unless the scheme is ``pure`` (a C ROUTER|DEALER queue).  :class:`ControllerServer` is also
the hub's *outbox* (see :mod:`.hub`).
"""

import logging
import socket

import zmq
from twisted.internet import task

from ..wire import protocol, shm
from ..wire.connection import Binder, connect_url
from ..wire.session import SIGNATURE_SCHEME
from ..wire.zmqtwisted import ZmqSocket
from . import devices
from .hub import Hub
from .registry import READY_STEPS
from .taskqueue import TaskQueue

log = logging.getLogger("kernelpar.controller")

MONITOR_URL = "inproc://kernelpar-monitor"
CAPTURE_URL = "inproc://kernelpar-iopub-capture"
IOPUB_INPROC = "inproc://kernelpar-iopub"
#: records and queue status may lag this much behind the traffic they describe
MONITOR_BATCH_DELAY = 0.005
DB_FLUSH_INTERVAL = 1.0
SHM_SWEEP_INTERVAL = 10.0


class ControllerServer:
    def __init__(self, reactor, ctx, session, versions, interface="tcp://127.0.0.1", location=None,
                 hb_period=1.0, max_missed=5, db=None, scheme="leastload", hwm=1,
                 task_idle_timeout=30.0):
        self.reactor = reactor
        self.ctx = ctx
        self.session = session
        self.interface = interface
        self.binder = Binder(interface)
        host = interface.split("://", 1)[1]
        if location is None:
            location = "127.0.0.1" if interface.startswith("ipc://") else host
            location = socket.gethostname() if location in ("*", "0.0.0.0") else location
        self.location = location
        self.hub = Hub(session, self, reactor.callLater, versions, hb_period, max_missed, db,
                       ready_steps=READY_STEPS | {"task"})
        self.hb_period = hb_period
        self.scheme = scheme
        self.hwm = hwm
        self.task_idle_timeout = task_idle_timeout
        self.tasks = None
        self._stopping = False
        self._sockets = []
        self.ports = {}
        self._bind()

    def _reader(self, sock_type, on_message, name, bind=True, connect=None, batch_delay=0):
        sock = devices.unlimited(self.ctx.socket(sock_type))
        if bind:
            self.ports[name] = self.binder.bind(sock)
        if connect:
            sock.connect(connect)
        zs = ZmqSocket(self.reactor, sock, on_message, batch_delay=batch_delay)
        self._sockets.append(zs)
        return zs

    def _bind(self):
        hub = self.hub
        # inproc sinks are bound before the devices connect their copies to them
        monitor = self._reader(zmq.SUB, hub.handle_monitor, "monitor", bind=False, batch_delay=MONITOR_BATCH_DELAY)
        monitor.sock.bind(MONITOR_URL)
        monitor.sock.subscribe(b"")
        hub.catch_up = monitor.drain
        capture = self._reader(zmq.SUB, hub.handle_iopub, "capture", bind=False)
        capture.sock.bind(CAPTURE_URL)
        capture.sock.subscribe(b"")

        self.registration = self._reader(zmq.ROUTER, hub.handle_registration, "registration")
        self.notification = self._reader(zmq.PUB, None, "notification")
        self.hb_ping = self._reader(zmq.PUB, None, "hb_ping")
        self._reader(zmq.ROUTER, hub.handle_pong, "hb_pong")

        self.devices = []
        for name in ("mux", "control"):
            device, client_port, engine_port = devices.router_queue(
                self.ctx, name, self.binder, MONITOR_URL, protocol.MONITOR_TOPICS[name])
            self.ports[name] = client_port
            self.ports[f"engine_{name}"] = engine_port
            self.devices.append(device)
        if self.scheme == "pure":
            device, client_port, engine_port = devices.router_queue(
                self.ctx, "task", self.binder, MONITOR_URL, protocol.MONITOR_TOPICS["task"], engine_type=zmq.DEALER)
            self.devices.append(device)
        else:
            self.tasks = TaskQueue(self.reactor, self.ctx, self.session, self.binder, hub, self.scheme, self.hwm,
                                   self.task_idle_timeout)
            self._sockets.extend(self.tasks.sockets)
            hub.tasks = self.tasks
            client_port, engine_port = self.tasks.client_port, self.tasks.engine_port
        self.ports["task"] = client_port
        self.ports["engine_task"] = engine_port
        self.ports["broadcast"] = self.tasks.broadcasts.port if self.tasks is not None else None
        device, client_port, engine_port = devices.iopub_proxy(self.ctx, self.binder, CAPTURE_URL, IOPUB_INPROC)
        self.ports["iopub"] = client_port
        self.ports["engine_iopub"] = engine_port
        self.devices.append(device)

        # the hub's own subscription: every engine's iopub sees at least one
        # subscription when it attaches, which tells it its output path is up
        self.iopub_watch = self._reader(zmq.SUB, lambda frames: None, "iopub_watch", bind=False, connect=IOPUB_INPROC)
        self.iopub_watch.sock.subscribe(protocol.HUB_IOPUB_TOPIC)
        # the hub is a client of the control queue, to stop engines on shutdown
        self.control_out = self._reader(zmq.DEALER, lambda frames: None, "control_out", bind=False,
                                        connect=connect_url(dict(self.connection_info(b"")[0], location="127.0.0.1"), "control"))

    def start(self):
        for device in self.devices:
            device.start()
        self._heartbeat = task.LoopingCall(self.hub.tick)
        self._heartbeat.start(self.hb_period, now=True)
        # a store that batches its writes (SQLite) commits at least this often
        self._db_flush = task.LoopingCall(self.hub.db.flush)
        self._db_flush.start(DB_FLUSH_INTERVAL, now=False)
        if shm.available():
            # large messages of a client or engine that died stay in /dev/shm until a
            # sweep; clients and engines sweep as they start, the controller as it runs
            self._shm_sweep = task.LoopingCall(shm.sweep)
            self._shm_sweep.start(SHM_SWEEP_INTERVAL, now=False)

    def connection_info(self, key):
        common = {
            "interface": self.interface,
            "location": self.location,
            "key": key.decode("ascii"),
            "signature_scheme": SIGNATURE_SCHEME,
            "pack": "json",
            "unpack": "json",
            "ssh": "",
            "curve_serverkey": None,  # ipyparallel's key, for readers of the file: no CURVE here
            "registration": self.ports["registration"],
            "task_scheme": self.scheme,
            "versions": self.hub.versions,
        }
        client = dict(common, mux=self.ports["mux"], task=self.ports["task"], broadcast=self.ports["broadcast"],
                      control=self.ports["control"],
                      iopub=self.ports["iopub"], notification=self.ports["notification"])
        engine = dict(common, mux=self.ports["engine_mux"], task=self.ports["engine_task"],
                      control=self.ports["engine_control"],
                      iopub=self.ports["engine_iopub"], hb_ping=self.ports["hb_ping"], hb_pong=self.ports["hb_pong"])
        return client, engine

    # -- the hub's outbox ------------------------------------------------------

    def reply(self, idents, msg_type, content, parent, buffers=()):
        frames, _ = self.session.serialize(msg_type, content, parent=parent, idents=idents, buffers=buffers)
        self.registration.send_multipart(frames)

    def notify(self, msg_type, content):
        frames, _ = self.session.serialize(msg_type, content)
        self.notification.send_multipart(frames)

    def control(self, engine_uuid, msg_type, content):
        frames, _ = self.session.serialize(msg_type, content, idents=[engine_uuid.encode()])
        self.control_out.send_multipart(frames)

    def ping(self, beat):
        self.hb_ping.send_multipart([b"%d" % beat])

    def stop(self):
        if not self._stopping:
            self._stopping = True
            # leave the shutdown messages time to leave before the sockets close
            self.reactor.callLater(0.2, self.reactor.stop)

    def close(self, linger=200):
        for loop in (getattr(self, name, None) for name in ("_heartbeat", "_db_flush", "_shm_sweep")):
            if loop is not None and loop.running:
                loop.stop()
        for zs in self._sockets:
            zs.close(linger=linger)
        self._sockets = []
        self.hub.db.close()
