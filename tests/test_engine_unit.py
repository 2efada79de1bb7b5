"""Unit tests of the engine's pure parts: request dispatch, capture, control helpers, app.

No sockets and no reactor: the kernel runs its real loop in a thread, with a fake IO
object recording what would be sent, and ``post`` calling directly.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
import types

import pytest

from kernelpar.engine import app, control, heart
from kernelpar.engine.capture import Capture
from kernelpar.engine.kernel import EngineShutdown, Kernel, Request, reply_type
from kernelpar.wire.serialize import deserialize_object, pack_apply, set_user_namespace
from kernelpar.wire.session import Session

TIMEOUT = 10


class FakeIO:
    """Records the kernel's outgoing calls, as the IO thread would receive them."""

    def __init__(self):
        self.events = []
        self.cond = threading.Condition()

    def _record(self, *event):
        with self.cond:
            self.events.append(event)
            self.cond.notify_all()

    def send_reply(self, request, streams, msg_type, content, buffers, started, completed):
        self._record("reply", request, streams, msg_type, content, buffers, started, completed)

    def send_iopub(self, request, streams, msg_type, content):
        self._record("iopub", request, streams, msg_type, content)

    def send_aborted(self, requests):
        for r in requests:
            self._record("aborted", r)

    reply_aborted = send_aborted

    def send_control_reply(self, request, msg_type, content):
        self._record("control", request, msg_type, content)

    def schedule_flush(self):
        self._record("flush")

    def wait_for(self, kind, n=1):
        deadline = time.monotonic() + TIMEOUT
        with self.cond:
            while len(self.of(kind)) < n:
                left = deadline - time.monotonic()
                assert left > 0, f"timed out waiting for {n} {kind} events: {self.events}"
                self.cond.wait(left)
        return self.of(kind)

    def of(self, kind):
        return [e for e in self.events if e[0] == kind]


def _create_shell(module, publish):
    from kernelpar.engine.shell import create_shell

    return create_shell(module, publish)


@pytest.fixture(autouse=True)
def restore_globals():
    """A Kernel takes over __main__, sys.stdout/stderr and the serializer's namespace."""
    saved = sys.stdout, sys.stderr, sys.modules["__main__"]
    yield
    sys.stdout, sys.stderr, sys.modules["__main__"] = saved
    set_user_namespace(None)


@pytest.fixture
def engine():
    """A kernel serving requests in a thread; yields (kernel, io, submit)."""
    io = FakeIO()
    kernel = Kernel("uuid-test", lambda f, *a: f(*a), shell_factory=_create_shell)
    kernel.io = io
    kernel.set_engine_id(3)
    session = Session(b"key", session="client-session")
    thread = threading.Thread(target=kernel.run, daemon=True)

    def submit(msg_type, content=None, buffers=(), start=True):
        frames, _ = session.serialize(msg_type, content or {}, buffers=buffers, idents=[b"client"])
        request = Request(session.deserialize(frames), channel="mux")
        assert kernel.submit(request)
        if start and not thread.is_alive():
            thread.start()
        return request

    yield kernel, io, submit
    kernel.stop()
    if thread.is_alive():
        thread.join(TIMEOUT)
    from kernelpar.engine.shell import EngineShell

    # clear_instance() walks up the MRO: clearing InteractiveShell would leave ours
    EngineShell.clear_instance()


def apply(submit, f, *args, start=True):
    return submit("apply_request", {}, pack_apply(f, args, {}), start=start)


def test_reply_type():
    assert reply_type("apply_request") == "apply_reply"
    assert reply_type("execute_request") == "execute_reply"
    assert reply_type("weird") == "weird_reply"


def test_request_topic_is_parent_session():
    session = Session(b"k", session="abc")
    frames, _ = session.serialize("apply_request", {}, idents=[b"c"])
    request = Request(session.deserialize(frames), channel=None)
    assert request.topic == b"abc"
    assert request.idents == [b"c"]
    assert request.iopub == 0


def test_apply_ok_and_metadata_fields(engine):
    kernel, io, submit = engine
    request = apply(submit, pow, 2, 10)
    (_, req, streams, msg_type, content, buffers, started, completed), = io.wait_for("reply")
    assert req is request
    assert msg_type == "apply_reply"
    assert content == {"status": "ok"}
    assert deserialize_object(buffers) == 1024
    assert streams == []
    assert started <= completed
    assert not io.of("iopub"), "a silent task publishes nothing"


def test_apply_error_reply(engine):
    kernel, io, submit = engine

    def boom():
        raise ZeroDivisionError("nope")

    apply(submit, boom)
    content = io.wait_for("reply")[0][4]
    assert content["status"] == "error"
    assert content["ename"] == "ZeroDivisionError"
    assert content["evalue"] == "nope"
    assert content["engine_info"] == {"engine_id": 3, "engine_uuid": "uuid-test", "method": "apply"}
    assert "in boom" in content["traceback"]
    assert "kernel.py" not in content["traceback"], "the engine's own frames are not shown"


def test_unpicklable_result_names_type_and_engine_survives(engine):
    kernel, io, submit = engine

    def gen():
        return (i for i in range(3))

    apply(submit, gen)
    apply(submit, len, "abc")
    first, second = io.wait_for("reply", 2)
    assert first[4]["status"] == "error"
    assert "cannot serialize object of type generator" in first[4]["evalue"]
    assert deserialize_object(second[5]) == 3


def test_user_namespace_is_main_and_shared_with_interactive_functions(engine):
    kernel, io, submit = engine
    kernel.user_ns["a"] = 40

    def f(x):
        return a + x, __name__  # noqa: F821 (resolved in the engine's namespace)

    f.__module__ = "__main__"
    apply(submit, f, 2)
    reply = io.wait_for("reply")[0]
    assert deserialize_object(reply[5]) == (42, "__main__")


def test_output_is_captured_per_request_and_sent_with_reply(engine):
    kernel, io, submit = engine

    def talk():
        print("hello")
        print("oops", file=sys.stderr)
        print("again")
        return 1

    request = apply(submit, talk)
    streams = io.wait_for("reply")[0][2]
    assert streams == [("stdout", "hello\nagain\n"), ("stderr", "oops\n")]
    assert request.iopub == 2
    assert io.of("flush"), "the first write asks the IO thread for a periodic flush"


def test_abort_queued_and_early(engine):
    kernel, io, submit = engine
    # queue requests without starting the loop, then abort some
    r1 = apply(submit, len, "a", start=False)
    r2 = apply(submit, len, "bb", start=False)
    claimed = kernel.abort([r1.msg_id, "not-yet-arrived"])
    assert claimed == [r1]
    # an id aborted before it arrives is refused on arrival
    session = Session(b"key", session="s")
    frames, _ = session.serialize("apply_request", {}, buffers=pack_apply(len, ("x",), {}), header=session.header(
        "apply_request", msg_id="not-yet-arrived"))
    late = Request(session.deserialize(frames), channel="mux")
    assert kernel.submit(late) is False
    apply(submit, len, "ccc")  # starts the loop
    replies = io.wait_for("reply", 2)
    assert [r[1] for r in replies] == [r2, replies[1][1]]
    assert deserialize_object(replies[1][5]) == 3


def test_abort_all(engine):
    kernel, io, submit = engine
    requests = [apply(submit, len, "a", start=False) for _ in range(3)]
    assert kernel.abort(None) == requests
    assert kernel.abort(None) == []


def test_clear_runs_before_queued_work(engine):
    kernel, io, submit = engine
    kernel.user_ns["x"] = 1
    control_request = object()
    kernel.request_clear(control_request)

    def has_x():
        return "x" in globals()

    has_x.__module__ = "__main__"
    apply(submit, has_x)
    reply = io.wait_for("reply")[0]
    assert deserialize_object(reply[5]) is False
    assert io.wait_for("control")[0][1:] == (control_request, "clear_reply", {"status": "ok"})
    assert kernel.user_ns["__name__"] == "__main__"


def test_execute_result_display_and_silence(engine):
    kernel, io, submit = engine
    submit("execute_request", {"code": "from IPython.display import display\ndisplay('shown')\nx = 6\nx * 7",
                               "silent": False})
    reply = io.wait_for("reply")[0]
    assert reply[4]["status"] == "ok"
    iopub = [(e[3], e[4]) for e in io.of("iopub")]
    assert iopub[0][0] == "execute_input"
    assert iopub[1] == ("display_data", {"data": {"text/plain": "'shown'"}, "metadata": {}, "transient": {}})
    assert iopub[2][0] == "execute_result" and iopub[2][1]["data"] == {"text/plain": "42"}
    assert reply[1].iopub == 3
    # a silent execute publishes nothing, and shares the namespace with apply
    submit("execute_request", {"code": "y = x + 1", "silent": True})
    reply = io.wait_for("reply", 2)[1]
    assert reply[1].iopub == 0
    assert kernel.user_ns["y"] == 7


def test_execute_error_plain_traceback_and_stop_on_error(engine):
    kernel, io, submit = engine
    submit("execute_request", {"code": "1/0", "silent": True}, start=False)
    queued = apply(submit, len, "x", start=False)
    submit("execute_request", {"code": "print('ran')", "silent": True})
    replies = io.wait_for("reply", 1)
    content = replies[0][4]
    assert content["status"] == "error"
    assert content["ename"] == "ZeroDivisionError"
    assert content["engine_info"]["method"] == "execute"
    assert "\x1b[" not in content["traceback"], "NoColor traceback"
    assert "ZeroDivisionError" in content["traceback"]
    errors = [e for e in io.of("iopub") if e[3] == "error"]
    assert errors and errors[0][4]["ename"] == "ZeroDivisionError"
    aborted = io.wait_for("aborted", 2)
    assert aborted[0][1] is queued


def test_stop_on_error_spares_requests_sent_after_the_error(engine):
    kernel, io, submit = engine
    follow = []
    record = io.send_reply

    def send_reply(request, streams, msg_type, content, *rest):
        record(request, streams, msg_type, content, *rest)
        if content["status"] == "error" and not follow:
            # a fast client reacting to the error reply
            follow.append(apply(submit, len, "ab"))

    io.send_reply = send_reply
    submit("execute_request", {"code": "1/0", "silent": True})
    replies = io.wait_for("reply", 2)
    assert replies[1][1] is follow[0] and replies[1][4] == {"status": "ok"}
    assert not io.of("aborted")


def test_apply_stop_on_error_only_when_the_metadata_asks(engine):
    """The legacy MultiEngineClient's flag: a failed apply aborts what is queued behind it."""
    from kernelpar.engine.kernel import STOP_ON_ERROR

    kernel, io, submit = engine
    session = Session(b"key", session="legacy-session")

    def queue(f, *args, metadata=None):
        frames, _ = session.serialize("apply_request", {}, metadata=metadata or {}, buffers=pack_apply(f, args, {}),
                                      idents=[b"client"])
        request = Request(session.deserialize(frames), channel="mux")
        assert kernel.submit(request)
        return request

    queue(divmod, 1, 0)  # fails without the flag: nothing is aborted
    plain_next = queue(len, "abc")
    queue(divmod, 1, 0, metadata={STOP_ON_ERROR: True})
    queued = [queue(len, "x", metadata={STOP_ON_ERROR: True}), queue(len, "y")]
    apply(submit, len, "z")  # starts the loop; queued behind the failure too
    replies = io.wait_for("reply", 3)
    assert [r[4]["status"] for r in replies[:3]] == ["error", "ok", "error"]
    assert replies[1][1] is plain_next
    aborted = [e[1] for e in io.wait_for("aborted", 3)]
    assert aborted[:2] == queued and len(aborted) == 3


def test_legacy_execute_replies_with_the_0_10_result_dict_and_stops_on_error(engine, monkeypatch):
    """A MultiEngineClient's execute_request: 0.10's interpreter, not IPython's shell."""
    from kernelpar.client.legacy import onengine
    from kernelpar.wire.protocol import LEGACY_EXECUTE, LEGACY_RESULT, execute_content

    monkeypatch.setattr(onengine, "_engine_id", None)  # it caches this kernel's id: not for later tests

    kernel, io, submit = engine
    session = Session(b"key", session="legacy-session")

    def queue(code):
        metadata = {LEGACY_EXECUTE: {"raw": code, "prelude": None}}
        frames, _ = session.serialize("execute_request", execute_content(code), metadata=metadata, idents=[b"client"])
        request = Request(session.deserialize(frames), channel="mux")
        assert kernel.submit(request)
        return request

    queue("a = 6\na * 7")
    queue("print(a)\n1 / 0")
    behind = queue("b = 1")
    apply(submit, len, "z")  # starts the loop
    ok, failed = (r[4] for r in io.wait_for("reply", 2)[:2])
    assert isinstance(ok[LEGACY_RESULT].pop("number"), int)
    assert ok == {"status": "ok", LEGACY_RESULT: {
        "id": 3, "input": {"raw": "a = 6\na * 7", "translated": "a = 6\na * 7"},
        "display": {"pprint": "42", "repr": "42"}}}
    assert failed["status"] == "error" and failed["ename"] == "ZeroDivisionError"
    assert "kernel.py" not in failed["traceback"] and "onengine.py" in failed["traceback"]
    assert io.wait_for("aborted")[0][1] is behind
    assert not io.of("iopub"), "0.10's stdout is part of its result, not streamed"


@pytest.mark.parametrize("kind", ["apply", "execute"])
def test_engine_shutdown_ends_the_loop(engine, kind):
    kernel, io, submit = engine
    kernel.user_ns["EngineShutdown"] = EngineShutdown

    def stop():
        raise EngineShutdown

    stop.__module__ = "__main__"
    if kind == "apply":
        apply(submit, stop, start=False)
    else:
        submit("execute_request", {"code": "raise EngineShutdown", "silent": True}, start=False)
    apply(submit, len, "x", start=False)
    kernel.run()  # returns instead of serving the second request
    assert not io.of("reply")
    assert not kernel.busy


def test_execute_magic_and_print(engine):
    kernel, io, submit = engine
    submit("execute_request", {"code": "%time z = 5\nprint('z is', z)", "silent": True})
    reply = io.wait_for("reply")[0]
    assert reply[4]["status"] == "ok"
    text = "".join(t for name, t in reply[2] if name == "stdout")
    assert "z is 5" in text


def test_capture_fallback_and_flush_scheduling():
    scheduled = []
    capture = Capture(lambda: scheduled.append(1))
    assert capture.write("stdout", "idle") is False
    req = types.SimpleNamespace(iopub=0)
    capture.begin(req)
    try:
        capture.stdout.write("a")
        capture.stdout.write("b")
        capture.stderr.write("c")
        assert scheduled == [1], "one flush per batch"
        capture.stdout.write("d")
        assert capture.take() == (req, [("stdout", "abd"), ("stderr", "c")])
        capture.stderr.write("e")
        assert scheduled == [1, 1]
        capture.count(req, 1)
        assert capture.end() == [("stderr", "e")]
        assert capture.take() == (None, [])
        assert req.iopub == 4, "every stream message taken, and the counted one"
    finally:
        capture.end()


def test_capture_stream_rejects_bytes():
    capture = Capture(lambda: None)
    with pytest.raises(TypeError):
        capture.stdout.write(b"x")


@pytest.mark.parametrize(
    "sig,number",
    [(2, signal.SIGINT), ("SIGINT", signal.SIGINT), ("int", signal.SIGINT), ("15", signal.SIGTERM),
     ("SIGUSR1", signal.SIGUSR1)],
)
def test_resolve_signal(sig, number):
    assert control.resolve_signal(sig) == number


@pytest.mark.parametrize("sig", ["SIGNOPE", 10_000, None, True, 1.5])
def test_resolve_signal_rejects(sig):
    with pytest.raises((ValueError, TypeError)):
        control.resolve_signal(sig)


def test_ping_watch():
    now = [100.0]
    watch = heart.PingWatch(0.2, clock=lambda: now[0])
    assert watch.limit == 5.0
    now[0] += 4.9
    assert watch.silent_for() is None
    watch.ping()
    now[0] += 5.5
    assert watch.silent_for() == pytest.approx(5.5)
    assert heart.PingWatch(2.0).limit == 20.0


def test_wait_for_file_times_out_naming_path(tmp_path):
    path = tmp_path / "security" / "ipcontroller-engine.json"
    t0 = time.monotonic()
    with pytest.raises(app.StartupError, match=str(path)):
        app.wait_for_file(str(path), 0.2)
    assert time.monotonic() - t0 < 2


def test_wait_for_file_gives_up_when_the_launcher_is_gone(tmp_path):
    t0 = time.monotonic()
    with pytest.raises(app.StartupError, match="is gone"):
        app.wait_for_file(str(tmp_path / "never.json"), 30, parent=os.getppid() + 12345)
    assert time.monotonic() - t0 < 1


def test_wait_for_file_sees_late_file(tmp_path):
    path = tmp_path / "late.json"
    threading.Timer(0.15, lambda: path.write_text('{"a": 1}')).start()
    assert app.wait_for_file(str(path), 5) == {"a": 1}


ENGINE_INFO = {"interface": "tcp://127.0.0.1", "key": "k", "registration": 1, "mux": 2, "control": 3,
               "iopub": 4, "hb_ping": 5, "hb_pong": 6}


def test_connection_info_precedence(tmp_path, monkeypatch):
    profile_dir = tmp_path / "profile_x"
    (profile_dir / "security").mkdir(parents=True)
    (profile_dir / "security" / "ipcontroller-c1-engine.json").write_text(json.dumps({**ENGINE_INFO, "mux": 20}))
    other = tmp_path / "other.json"
    other.write_text(json.dumps({**ENGINE_INFO, "mux": 30}))
    monkeypatch.delenv("KERNELPAR_CONNECTION_INFO", raising=False)
    monkeypatch.delenv("IPP_CONNECTION_INFO", raising=False)
    args = app.parse_args(["--profile-dir", str(profile_dir), "--cluster-id", "c1"])
    assert app.load_connection_info(args)[0]["mux"] == 20
    args = app.parse_args(["--profile-dir", str(profile_dir), "--cluster-id", "c1", "--file", str(other)])
    assert app.load_connection_info(args)[0]["mux"] == 30
    monkeypatch.setenv("IPP_CONNECTION_INFO", json.dumps({**ENGINE_INFO, "mux": 40}))
    assert app.load_connection_info(args)[0]["mux"] == 40
    monkeypatch.setenv("KERNELPAR_CONNECTION_INFO", json.dumps({**ENGINE_INFO, "mux": 50}))
    assert app.load_connection_info(args)[0]["mux"] == 50


def test_connection_info_missing_keys(monkeypatch):
    monkeypatch.setenv("KERNELPAR_CONNECTION_INFO", json.dumps({"interface": "tcp://127.0.0.1"}))
    with pytest.raises(app.StartupError, match="hb_ping"):
        app.load_connection_info(app.parse_args([]))


def test_parse_args():
    args = app.parse_args(["--id", "4", "--log-level", "debug", "--timeout", "2.5"])
    assert (args.id, args.log_level, args.timeout, args.cluster_id) == (4, 10, 2.5, "")
    with pytest.raises(SystemExit):
        app.parse_args(["--id", "-1"])
    assert app.parse_args(["--debug"]).log_level == 10
    # ipyparallel's --mpi is a flag; 0.10's took the module's name
    assert (app.parse_args(["--mpi"]).mpi, app.parse_args(["--mpi=pytrilinos"]).mpi) == ("mpi4py", "pytrilinos")


@pytest.mark.parametrize("command", ["kernelpar.engine", "kernelpar.controller", "kernelpar.cluster"])
def test_every_tool_has_version_and_help_all(command):
    for flag, expected in (("--version", "kernelpar "), ("--help-all", "usage: ")):
        done = subprocess.run([sys.executable, "-m", command, flag], capture_output=True, text=True, timeout=60,
                              check=False)
        assert done.returncode == 0 and done.stdout.startswith(expected), (command, flag, done)


def test_parent_pid(monkeypatch):
    monkeypatch.setenv("KERNELPAR_PARENT_PID", str(os.getppid()))
    assert app.parent_pid() == os.getppid()
    monkeypatch.setenv("KERNELPAR_PARENT_PID", "")
    assert app.parent_pid() is None


class _FakeSock:
    def __init__(self, events):
        self.events = events

    def getsockopt(self, option):
        return self.events


class _FakeChannel:
    def __init__(self, events):
        self.sock = _FakeSock(events)


@pytest.mark.parametrize("queued,exits", [(True, False), (False, True)])
def test_unread_pings_after_a_gil_hold_are_not_silence(queued, exits):
    """User code held the GIL past the silence limit; pings are queued but unread."""
    import zmq

    from kernelpar.engine.iothread import EngineIO

    kernel = Kernel("uuid-test", lambda f, *a: f(*a))
    io = EngineIO(reactor=None, info=ENGINE_INFO, kernel=kernel)
    try:
        now = [0.0]
        io._pings = heart.PingWatch(0.2, clock=lambda: now[0])
        io._ping_channel = _FakeChannel(zmq.POLLIN if queued else 0)
        failures = []
        io.fail = lambda message, linger=None: failures.append(message)
        now[0] += 8.0
        io._watch()
        assert bool(failures) is exits
    finally:
        io.ctx.term()


def test_internal_error_is_answered_and_engine_keeps_serving(engine):
    kernel, io, submit = engine

    def broken_shell(module, publish):
        raise RuntimeError("IPython is broken")

    kernel._shell_factory = broken_shell
    submit("execute_request", {"code": "1", "silent": True})
    apply(submit, len, "abc")
    first, second = io.wait_for("reply", 2)
    assert first[4]["status"] == "error" and first[4]["evalue"] == "IPython is broken"
    assert deserialize_object(second[5]) == 3


def test_context_terminated_under_the_waiting_main_thread_ends_the_loop():
    # the IO thread terminates the context as the engine exits; the main thread, waiting
    # on its request socket, must end its loop (and close the socket) rather than spin
    import zmq

    ctx = zmq.Context()
    kernel = Kernel("uuid-term", lambda f, *a: f(*a))
    kernel.io = FakeIO()
    sock = ctx.socket(zmq.DEALER)
    sock.connect("inproc://kernelpar-test-nowhere")
    kernel.attach(sock)
    thread = threading.Thread(target=kernel.run, daemon=True)
    thread.start()
    time.sleep(0.2)  # the main thread is now waiting in the mailbox's poll
    terminator = threading.Thread(target=ctx.term, daemon=True)
    terminator.start()
    thread.join(TIMEOUT)
    terminator.join(TIMEOUT)
    assert not thread.is_alive() and not terminator.is_alive()
