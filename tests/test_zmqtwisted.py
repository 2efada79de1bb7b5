"""The Twisted zmq wrapper under the load that breaks naive ones.

An echo server that replies *outside* its read handler (``callLater(0)``, as a relaying
controller does) is driven by a windowed client.  A naive wrapper that drains until
EAGAIN on each wake-up but does not re-check ``EVENTS`` after sending loses the FD edge
and stalls; :class:`ZmqSocket` must not.  The servers are real processes.
"""

import os
import subprocess
import sys
import time

import pytest
import zmq

from kernelpar.wire.zmqtwisted import ZmqSocket

HERE = os.path.dirname(os.path.abspath(__file__))
MESSAGES = 20000
WINDOW = 1000


class NaiveZmqSocket(ZmqSocket):
    """Drains until EAGAIN when woken, never re-checks EVENTS after a send."""

    def doRead(self):
        while self.sock is not None:
            try:
                frames = self.sock.recv_multipart(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            self.on_message(frames)

    def _after_send(self):
        pass


def serve(kind, port_file):
    """Run a deferred-reply ROUTER echo server until it receives b'STOP'."""
    from twisted.internet import reactor

    ctx = zmq.Context()
    sock = ctx.socket(zmq.ROUTER)
    sock.setsockopt(zmq.SNDHWM, 0)
    sock.setsockopt(zmq.RCVHWM, 0)
    port = sock.bind_to_random_port("tcp://127.0.0.1")
    wrapper_class = NaiveZmqSocket if kind == "naive" else ZmqSocket
    holder = {}

    def on_message(frames):
        if frames[-1].bytes == b"STOP":
            reactor.stop()
            return
        reactor.callLater(0, holder["zs"].send_multipart, frames)

    holder["zs"] = wrapper_class(reactor, sock, on_message)
    with open(port_file, "w") as f:
        f.write(str(port))
    reactor.callLater(60, reactor.stop)
    reactor.run()
    holder["zs"].close()
    ctx.term()


def run_windowed_echo(kind, tmp_path, give_up_after_stalls):
    port_file = tmp_path / f"{kind}.port"
    code = f"import sys; sys.path.insert(0, {HERE!r}); import test_zmqtwisted as t; t.serve({kind!r}, {str(port_file)!r})"
    proc = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    ctx = zmq.Context()
    dealer = ctx.socket(zmq.DEALER)
    dealer.setsockopt(zmq.LINGER, 0)
    try:
        deadline = time.monotonic() + 20
        while not port_file.exists() or not port_file.read_text():
            assert time.monotonic() < deadline, "echo server did not start"
            time.sleep(0.02)
        dealer.connect(f"tcp://127.0.0.1:{port_file.read_text()}")
        sent = received = stalls = 0
        while received < MESSAGES:
            while sent < MESSAGES and sent - received < WINDOW:
                dealer.send_multipart([b"%d" % sent, b"payload"])
                sent += 1
            if dealer.poll(2000):
                dealer.recv_multipart()
                received += 1
            else:
                stalls += 1
                if stalls >= give_up_after_stalls:
                    break
                # a new message is a new FD edge: it releases a stalled naive server
                dealer.send_multipart([b"poke", b"payload"])
                sent += 1
        dealer.send_multipart([b"STOP"])
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass  # a stalled server may never read STOP; it is killed below
        return received, stalls
    finally:
        dealer.close()
        ctx.term()
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
            proc.wait()


@pytest.mark.timeout(120)
def test_wrapper_never_stalls_with_deferred_replies(tmp_path):
    received, stalls = run_windowed_echo("correct", tmp_path, give_up_after_stalls=3)
    assert stalls == 0
    assert received == MESSAGES


@pytest.mark.timeout(120)
def test_naive_wrapper_stalls_with_deferred_replies(tmp_path):
    received, stalls = run_windowed_echo("naive", tmp_path, give_up_after_stalls=1)
    assert stalls > 0, "the naive wrapper was expected to lose an FD edge and stall"
