"""Unit tests of the client's pure parts: no controller, no engine, no sockets.

Replies are hand-built with a real :class:`Session` (as an engine would sign them) and fed
to the :class:`Dispatcher` the IO thread would call; timers are fired by hand.
"""

import json
import os
import pickle
import subprocess
import sys
import types
import warnings

import numpy as np
import pytest

from kernelpar import errors
from kernelpar.client import connect, display, partition
from kernelpar.client.asyncresult import AsyncMapResult, AsyncResult
from kernelpar.client.dispatch import Dispatcher
from kernelpar.client.executereply import ExecuteReply
from kernelpar.client.futures import MessageFuture, Metadata
from kernelpar.client.history import IdHistory
from kernelpar.client.ioloop import Timer
from kernelpar.client.namehints import name_error_hint
from kernelpar.wire import serialize
from kernelpar.wire.serialize import serialize_object
from kernelpar.wire.session import Session

KEY = b"k" * 32


# -- partition -------------------------------------------------------------------------------


def test_block_bounds_bigger_first_and_cover():
    assert partition.block_bounds(7, 3) == [(0, 3), (3, 5), (5, 7)]
    assert partition.block_bounds(2, 4) == [(0, 1), (1, 2), (2, 2), (2, 2)]
    assert partition.block_bounds(0, 2) == [(0, 0), (0, 0)]
    with pytest.raises(ValueError):
        partition.block_bounds(3, 0)


def test_partition_lists_block_and_round_robin():
    seq = list(range(7))
    assert partition.partition(seq, 2) == [[0, 1, 2, 3], [4, 5, 6]]
    assert partition.partition(seq, 2, "r") == [[0, 2, 4, 6], [1, 3, 5]]
    assert partition.partition(seq, 3, n=4) == [[0, 1], [2], [3]]
    assert partition.partition([1], 3) == [[1], [], []]
    with pytest.raises(ValueError):
        partition.partition(seq, 2, "x")


def test_partition_numpy_block_is_views_along_axis0():
    a = np.arange(20.0).reshape(10, 2)
    pieces = partition.partition(a, 3)
    assert [p.shape for p in pieces] == [(4, 2), (3, 2), (3, 2)]
    assert all(np.shares_memory(p, a) for p in pieces)
    assert all(p.flags.c_contiguous for p in pieces)
    np.testing.assert_array_equal(partition.join(pieces), a)


def test_join_round_robin_restores_order():
    seq = list(range(11))
    assert partition.join(partition.partition(seq, 3, "r"), "r") == seq
    a = np.arange(11)
    np.testing.assert_array_equal(partition.join(partition.partition(a, 4, "r"), "r"), a)


def test_concatenate_kinds():
    assert partition.concatenate([[1, 2], (3,), []]) == [1, 2, 3]
    assert partition.concatenate([1, 2]) == [1, 2]  # scalars (flatten=True shares) are listed
    assert partition.concatenate([]) == []
    out = partition.concatenate([np.zeros(2), np.ones(3)])
    assert isinstance(out, np.ndarray) and out.tolist() == [0, 0, 1, 1, 1]


def test_flatten_singletons_and_as_sequence():
    assert partition.flatten_singletons([[0], [1, 2], []]) == [0, [1, 2], []]
    assert partition.as_sequence(x for x in range(3)) == [0, 1, 2]
    assert partition.as_sequence({3}) == [3]
    r = range(5)
    assert partition.as_sequence(r) is r
    assert partition.common_length([[1, 2, 3], "ab"]) == 2


# -- history -----------------------------------------------------------------------------------


def test_id_history_compact_sequence():
    h = IdHistory("s_")
    for n in (0, 1, 2, 5, 6, 9):
        h.append_number(n)
    assert len(h) == 6 and len(h._starts) == 3
    assert list(h) == ["s_0", "s_1", "s_2", "s_5", "s_6", "s_9"]
    assert h[3] == "s_5" and h[-1] == "s_9" and h[-6] == "s_0"
    assert h[1:3] == ["s_1", "s_2"]
    assert "s_6" in h and "s_3" not in h and "t_1" not in h and 5 not in h
    assert h.index("s_9") == 5
    with pytest.raises(ValueError):
        h.index("s_4")
    with pytest.raises(IndexError):
        h[6]
    assert h == ["s_0", "s_1", "s_2", "s_5", "s_6", "s_9"]


def test_id_history_stays_one_run():
    h = IdHistory("p")
    for n in range(100000):
        h.append_number(n)
    assert len(h._starts) == 1 and len(h) == 100000 and h[-1] == "p99999"


# -- metadata ---------------------------------------------------------------------------------


def test_metadata_defaults_attribute_access_and_strict_keys():
    md = Metadata(msg_id="m", engine_id=3)
    assert md.engine_id == 3 and md["stdout"] == "" and md.outputs == []
    md.status = "ok"
    assert md["status"] == "ok"
    with pytest.raises(KeyError):
        md["nope"] = 1
    with pytest.raises(AttributeError):
        md.nope
    assert Metadata().outputs is not Metadata().outputs


# -- dispatcher + AsyncResult assembly from hand-built messages ------------------------------------


class FakeLoop:
    def __init__(self):
        self.timers = []
        self.sent = []

    def call_later(self, delay, fn, *args):
        timer = Timer(delay, fn, args)
        self.timers.append(timer)
        return timer

    def send(self, channel, frames, track=False):
        self.sent.append((channel, frames))

    def fire(self, fn_name=None):
        timers, self.timers = self.timers, []
        for t in timers:
            if t.cancelled or (fn_name and t.fn.__name__ != fn_name):
                if not t.cancelled:
                    self.timers.append(t)
                continue
            t.fn(*t.args)

    def in_io_thread(self):
        return False


class StubClient:
    def __init__(self):
        self.results = {}
        self.metadata = {}
        self._loop = FakeLoop()


@pytest.fixture
def wire():
    client_session = Session(KEY)
    engine_session = Session(KEY, session="engine-uuid")
    d = Dispatcher(client_session, set(), {})
    d.loop = FakeLoop()
    d.engines = {0: "u0", 1: "u1"}
    return types.SimpleNamespace(client=client_session, engine=engine_session, d=d, stub=StubClient())


def _request(w, n, kind="apply", eid=0):
    msg_type = "apply_request" if kind == "apply" else "execute_request"
    header = w.client.header(msg_type, f"req_{n}")
    fut = MessageFuture(header["msg_id"], kind, msg_type, "mux", [b"x"], eid, f"u{eid}",
                        Metadata(msg_id=header["msg_id"], engine_id=eid, engine_uuid=f"u{eid}"))
    fut.header = header
    w.d.register(fut)
    w.d.outstanding.add(fut.msg_id)
    w.d.send_task(fut)
    return fut


def _reply(w, fut, content, buffers=(), iopub=0, msg_type=None):
    msg_type = msg_type or fut.msg_type.replace("_request", "_reply")
    md = {"started": "2026-01-01T00:00:00+00:00", "completed": "2026-01-01T00:00:01.5+00:00",
          "engine_id": fut.engine_id, "engine_uuid": fut.engine_uuid, "status": content["status"], "iopub": iopub}
    frames, _ = w.engine.serialize(msg_type, content, parent=fut.header, metadata=md, buffers=buffers,
                                   idents=[fut.engine_uuid.encode()])
    w.d.on_reply(frames)


def _iopub(w, fut, msg_type, content):
    frames, _ = w.engine.serialize(msg_type, content, parent=fut.header, metadata={"engine_id": fut.engine_id},
                                   idents=[w.client.session.encode()])
    w.d.on_iopub(frames)


def test_single_apply_result_waits_for_announced_output(wire):
    fut = _request(wire, 0)
    ar = AsyncResult(wire.stub, fut, fname="f")
    assert wire.d.loop.sent and fut.sent and fut.frames is None
    _reply(wire, fut, {"status": "ok"}, serialize_object(42), iopub=1)
    assert not ar.done()  # the reply said one output message is still on its way
    _iopub(wire, fut, "stream", {"name": "stdout", "text": "hi\n"})
    assert ar.get(0) == 42 and ar.stdout == "hi\n" and ar.metadata.engine_id == 0
    assert ar.serial_time == 1.5
    assert repr(ar) == "<AsyncResult(f): finished>"
    assert fut.msg_id not in wire.d.futures and not wire.d.outstanding


def test_lost_output_resolves_after_grace(wire):
    fut = _request(wire, 1)
    ar = AsyncResult(wire.stub, fut)
    _reply(wire, fut, {"status": "ok"}, serialize_object("v"), iopub=2)
    _iopub(wire, fut, "stream", {"name": "stderr", "text": "partial"})
    assert not ar.done()
    wire.d.loop.fire("_output_lost")
    assert ar.get(0) == "v" and ar.stderr == "partial"


def test_remote_error_single_and_composite(wire):
    futs = [_request(wire, 2, eid=0), _request(wire, 3, eid=1)]
    ar = AsyncResult(wire.stub, futs, fname="boom")
    err = {"status": "error", "ename": "ZeroDivisionError", "evalue": "division by zero",
           "traceback": "Traceback (most recent call last):\n  File x\nZeroDivisionError: division by zero"}
    _reply(wire, futs[0], dict(err))
    _reply(wire, futs[1], {"status": "ok"}, serialize_object(1))
    with pytest.raises(errors.CompositeError) as info:
        ar.get(0)
    e = info.value
    assert len(e.elist) == 1 and e.engine_info["engine_id"] == 0
    text = "\n".join(e.render_traceback())
    assert text.count("[0:apply]") == 1 and text.count("ZeroDivisionError: division by zero") == 1
    assert ar.successful() is False and repr(ar) == "<AsyncResult(boom): failed>"
    with_exc = ar.get(return_exceptions=True)
    assert isinstance(with_exc[0], errors.RemoteError) and with_exc[1] == 1

    single = _request(wire, 4)
    ar1 = AsyncResult(wire.stub, single)
    _reply(wire, single, dict(err))
    with pytest.raises(errors.RemoteError) as info:
        ar1.get()
    assert str(info.value) == "[0:apply] ZeroDivisionError: division by zero"
    assert info.value.engine_info == {"engine_id": 0, "engine_uuid": "u0", "method": "apply"}


def test_name_error_hints_say_what_the_engines_miss():
    import os.path
    namespace = {"np": np, "math": __import__("math"), "path": os.path, "offset": 5}
    hint = name_error_hint("NameError", "name 'np' is not defined", namespace)
    assert hint == ("NameError hint: 'np' is imported in this client but not on the engines, where code sent from "
                    "here looks up its global names: import it there too (view.execute('import numpy as np') or "
                    "%px import numpy as np) or inside the function.")
    assert "view.execute('import math')" in name_error_hint("NameError", "name 'math' is not defined", namespace)
    assert f"import {os.path.__name__} as path" in name_error_hint("NameError", "name 'path' is not defined", namespace)
    assert name_error_hint("NameError", "name 'offset' is not defined", namespace) == (
        "NameError hint: 'offset' is defined in this client but not on the engines, where code sent from here "
        "looks up its global names: send it with view.push({'offset': offset}) or pass it as an argument.")
    assert name_error_hint("NameError", "name 'offset' is not defined", namespace, method="execute").endswith(
        "send it with view.push({'offset': offset}).")
    assert name_error_hint("NameError", "name 'np' is not defined", namespace, method="execute").endswith(
        "(view.execute('import numpy as np') or %px import numpy as np).")
    assert name_error_hint("NameError", "name 'elsewhere' is not defined", namespace) is None
    assert name_error_hint("ValueError", "name 'np' is not defined", namespace) is None
    assert name_error_hint("NameError", "free variable 'np' referenced before assignment", namespace) is None


def test_a_name_error_for_a_client_name_carries_the_hint_as_a_note(wire, monkeypatch):
    monkeypatch.setattr(serialize, "_user_namespace", {"offset": 5})
    futs = [_request(wire, 20, eid=0), _request(wire, 21, eid=1)]
    ar = AsyncResult(wire.stub, futs, fname="f")
    for fut in futs:
        _reply(wire, fut, {"status": "error", "ename": "NameError", "evalue": "name 'offset' is not defined",
                           "traceback": "Traceback (most recent call last):\nNameError: name 'offset' is not defined"})
    with pytest.raises(errors.CompositeError) as info:
        ar.get(0)
    composite = info.value
    assert str(composite).splitlines()[1] == "[0:apply]NameError: name 'offset' is not defined", "str is unchanged"
    assert composite.__notes__ == [name_error_hint("NameError", "name 'offset' is not defined")], "one note, not two"
    assert composite.render_traceback()[-1] == composite.__notes__[0]
    single = ar.get(0, return_exceptions=True)[0]
    assert str(single) == "[0:apply] NameError: name 'offset' is not defined"
    assert single.render_traceback()[-1] == single.__notes__[0]
    assert pickle.loads(pickle.dumps(single)).__notes__ == single.__notes__


def test_aborted_and_engine_death(wire):
    fut = _request(wire, 5)
    ar = AsyncResult(wire.stub, fut)
    _reply(wire, fut, {"status": "aborted"})
    with pytest.raises(errors.TaskAborted):
        ar.get(0)

    running = _request(wire, 6, eid=1)
    ar = AsyncResult(wire.stub, running)
    frames, _ = wire.engine.serialize("unregistration_notification", {"id": 1, "uuid": "u1"})
    wire.d.on_notification(frames)
    assert wire.d.engines == {0: "u0"}
    assert not ar.done()  # replies sent before the death may still arrive during the grace
    wire.d.loop.fire("_fail_engine_requests")
    with pytest.raises(errors.EngineError, match=rf"Engine 1 died while running task {running.msg_id}"):
        ar.get(0)
    late = _request(wire, 7, eid=1)  # sent after the death: fails at once
    with pytest.raises(errors.EngineError):
        late.result(0)


def test_resync_removes_only_engines_known_before_asking(wire):
    d = wire.d
    d._learned = {"u0": 0, "u1": 0}
    pending = _request(wire, 20, eid=1)  # something outstanding: re-syncs are due
    d._resync_tick()  # asks the hub (epoch 1)
    channel, frames = d.loop.sent[-1]
    assert channel == "registration"
    request = wire.client.deserialize(frames)
    frames, _ = wire.engine.serialize("registration_notification", {"id": 2, "uuid": "u2"})
    d.on_notification(frames)  # learned after asking: absent from the reply, but alive
    content = {"status": "ok", "engines": {"0": "u0"}}
    reply, _ = wire.engine.serialize("connection_reply", content, parent=request.header)
    d.on_registration(reply)
    assert d.engines == {0: "u0", 2: "u2"} and "u1" in d.dead
    d.loop.fire("_fail_engine_requests")
    with pytest.raises(errors.EngineError):
        pending.result(0)


def test_hub_request_times_out(wire):
    fut = wire.d.hub_future("queue_request", {})
    wire.d.register(fut)
    wire.d.send_request(fut, hub_timeout=1)
    wire.d.loop.fire("_hub_timeout")
    with pytest.raises(TimeoutError, match="Hub queue request timed out"):
        fut.result(0)


def test_execute_reply_and_iopub_metadata(wire):
    fut = _request(wire, 8, kind="execute")
    ar = AsyncResult(wire.stub, [fut], fname="execute")
    _iopub(wire, fut, "execute_input", {"code": "6*7", "execution_count": 3})
    _iopub(wire, fut, "execute_result", {"execution_count": 3, "data": {"text/plain": "42", "text/html": "<b>42</b>"},
                                         "metadata": {}})
    _iopub(wire, fut, "display_data", {"data": {"text/plain": "pic"}, "metadata": {}})
    _reply(wire, fut, {"status": "ok", "execution_count": 3}, iopub=3)
    (er,) = ar.get(0)
    assert isinstance(er, ExecuteReply) and er.execution_count == 3
    assert repr(er) == "<ExecuteReply[3]: 42>" and er._repr_html_() == "<b>42</b>"
    assert er["execute_input"] == "6*7" and er.outputs[0]["data"]["text/plain"] == "pic"
    assert ar.execute_result == [er.execute_result]


def test_async_result_timeout_iteration_and_dict(wire):
    futs = [_request(wire, 9, eid=0), _request(wire, 10, eid=1)]
    ar = AsyncResult(wire.stub, futs, fname="g")
    with pytest.raises(TimeoutError, match="Result not ready."):
        ar.get(0)
    assert repr(ar) == "<AsyncResult(g): pending>" and ar.progress == 0 and len(ar) == 2
    with pytest.raises(RuntimeError):
        ar.successful()
    _reply(wire, futs[0], {"status": "ok"}, serialize_object("a"))
    assert ar.progress == 1 and not ar.done()
    _reply(wire, futs[1], {"status": "ok"}, serialize_object("b"))
    assert list(ar) == ["a", "b"] and ar[1] == "b" and ar[:1] == ["a"]
    assert ar.get_dict() == {0: "a", 1: "b"} and ar.engine_id == [0, 1]
    with pytest.raises(TypeError):
        iter(AsyncResult(wire.stub, _request(wire, 11))).__next__()


def test_async_map_result_joins_chunks_in_order(wire):
    futs = [_request(wire, 12, eid=0), _request(wire, 13, eid=1)]
    amr = AsyncMapResult(wire.stub, futs, fname="sq", length=5)
    _reply(wire, futs[1], {"status": "ok"}, serialize_object([9, 16]))
    _reply(wire, futs[0], {"status": "ok"}, serialize_object([0, 1, 4]))
    assert amr.get(0) == [0, 1, 4, 9, 16] and list(amr) == [0, 1, 4, 9, 16] and len(amr) == 5
    empty = AsyncMapResult(wire.stub, [], fname="sq", length=0)
    assert empty.done() and empty.get() == []


def test_cancelled_or_unjoinable_results_never_break_the_io_thread(wire):
    fut = _request(wire, 16)
    ar = AsyncResult(wire.stub, fut)
    assert ar.cancel() and not fut.cancel()  # only the local object; a sent message stays
    _reply(wire, fut, {"status": "ok"}, serialize_object(1))
    assert fut.result(0) == 1 and ar.cancelled()
    futs = [_request(wire, 17, eid=0), _request(wire, 18, eid=1)]
    amr = AsyncMapResult(wire.stub, futs, dist="r", elementwise=False)
    _reply(wire, futs[0], {"status": "ok"}, serialize_object(np.zeros((2, 2))))
    _reply(wire, futs[1], {"status": "ok"}, serialize_object(np.zeros((1, 3))))
    with pytest.raises(ValueError):
        amr.get(0)


def test_owner_drops_client_caches(wire):
    fut = _request(wire, 14)
    wire.stub.metadata[fut.msg_id] = fut.metadata
    ar = AsyncResult(wire.stub, fut)
    wire.d.results = wire.stub.results
    _reply(wire, fut, {"status": "ok"}, serialize_object(1))
    assert ar.get() == 1 and not wire.stub.results and not wire.stub.metadata


def test_close_fails_everything_outstanding(wire):
    fut = _request(wire, 15)
    ar = AsyncResult(wire.stub, fut)
    wire.d.on_stop()
    with pytest.raises(errors.KernelError, match="closed"):
        ar.get(0)


# -- output rendering ----------------------------------------------------------------------------


def test_display_outputs_format(capsys):
    mds = [Metadata(engine_id=0, stdout="one\n", stderr="warn\n",
                    execute_result={"execution_count": 2, "data": {"text/plain": "7"}}),
           Metadata(engine_id=1, stdout="a\nb\n")]
    display.display_outputs(mds)
    out, err = capsys.readouterr()
    assert out == "[stdout:0] one\n[stdout:1] \na\nb\nOut[0:2]: 7\n"
    assert err == "[stderr:0] warn\n"
    with pytest.raises(ValueError):
        display.display_outputs(mds, groupby="nope")


def test_execute_reply_repr_truncates_and_pretty():
    md = Metadata(engine_id=1, execute_result={"data": {"text/plain": "x" * 40}})
    er = ExecuteReply("m", {"execution_count": 5}, md)
    assert repr(er) == "<ExecuteReply[5]: " + "x" * 29 + "...>"
    from IPython.lib.pretty import pretty

    assert pretty(er) == "Out[1:5]: " + "x" * 40
    assert pretty(ExecuteReply("m", {"execution_count": 2}, Metadata(engine_id=0))) == ""


def test_already_displayed_error_takes_a_count_or_the_composite():
    composite = errors.CompositeError("x", [("ValueError", "v", "", {"engine_id": i, "method": "execute"})
                                            for i in range(3)])
    for arg in (3, composite):
        err = errors.AlreadyDisplayedError(arg)
        assert str(err) == "3 errors" and repr(err) == "<AlreadyDisplayedError(3 errors)>"
    assert errors.AlreadyDisplayedError(composite).original_error is composite
    assert ExecuteReply("m", {"execution_count": 1}, Metadata()).__repr__() == "<ExecuteReply[1]: >"


def test_composite_error_rendering_headers():
    e1 = errors.RemoteError("ValueError", "bad", "Traceback...\nValueError: bad", {"engine_id": 0, "method": "execute"})
    e2 = ("EngineError", "Engine 1 died while running task t", "", {"engine_id": 1, "method": "apply"})
    ce = errors.CompositeError("one or more exceptions", [e1, e2])
    lines = ce.render_traceback()
    assert lines[:3] == ["[0:execute]:", "Traceback...", "ValueError: bad"]
    # an error the client or controller made up has no traceback: its message stands in
    assert lines[4:6] == ["[1:apply]:", "EngineError: Engine 1 died while running task t"]
    assert str(ce).splitlines() == ["one or more exceptions",
                                    "[0:execute]ValueError: bad", "[1:apply]EngineError: Engine 1 died while running task t"]
    assert e1.render_traceback() == ["[0:execute]", "Traceback...", "ValueError: bad"]
    assert repr(e1) == "<RemoteError[0]:ValueError(bad)>"
    anonymous = errors.RemoteError("KeyError", "'k'", "")
    assert str(anonymous) == "[Engine Exception] KeyError: 'k'" and repr(anonymous) == "<RemoteError[ ]:KeyError('k')>"


def test_composite_error_str_shows_tb_limit_errors_then_a_count():
    entries = [("ValueError", str(i), "", {"engine_id": i, "method": "apply"}) for i in range(6)]
    lines = str(errors.CompositeError("one or more exceptions raised in: f", entries)).splitlines()
    assert lines[1:] == [f"[{i}:apply]ValueError: {i}" for i in range(4)] + [".... 2 more exceptions ..."]


# -- connection files --------------------------------------------------------------------------------


def test_connect_explicit_missing_file(tmp_path):
    with pytest.raises(OSError, match="not found. Is a controller running?"):
        connect.resolve(str(tmp_path / "nope.json"), profile_dir=str(tmp_path))


def test_connect_waits_for_default_file(tmp_path, capsys):
    (tmp_path / "security").mkdir()
    with pytest.raises(OSError, match="not found after 0.3 seconds"):
        connect.resolve(profile_dir=str(tmp_path), timeout=0.3)
    expected = str(tmp_path / "security" / "ipcontroller-client.json")
    assert f"Waiting for connection file: {expected}" in capsys.readouterr().out


def test_connect_url_file_honoured_and_dict(tmp_path):
    info = {"interface": "tcp://127.0.0.1", "registration": 1, "mux": 2, "control": 3, "iopub": 4,
            "notification": 5, "key": "k"}
    path = tmp_path / "x.json"
    path.write_text(json.dumps(info))
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        got, _ = connect.resolve(url_file=str(path), profile_dir=str(tmp_path))
    assert got == info and w[0].category is DeprecationWarning
    assert connect.resolve(info)[0] == info
    with pytest.raises(ValueError, match="not a URL"):
        connect.resolve("tcp://127.0.0.1:5555")
    with pytest.raises(ValueError, match="lacks"):
        connect.resolve({"key": "k"})
    assert connect.resolve(dict(info, signature_scheme="hmac-sha256"))[0]["signature_scheme"] == "hmac-sha256"
    with pytest.raises(ValueError, match="signature_scheme 'hmac-md5'"):
        connect.resolve(dict(info, signature_scheme="hmac-md5"))


# -- the package face -----------------------------------------------------------------------------------


def test_import_is_light_and_names_exist():
    code = ("import sys, kernelpar as ipp; assert 'IPython' not in sys.modules, 'IPython imported';"
            "names = 'Client Cluster DirectView AsyncResult AsyncMapResult Reference interactive CompositeError "
            "RemoteError EngineError NoEnginesRegistered TimeoutError TaskAborted KernelError error remote parallel "
            "use_pickle use_cloudpickle serialize_object deserialize_object __version__ version_info BroadcastView "
            "ViewExecutor PrePickled use_dill'.split();"
            "missing = [n for n in names if not hasattr(ipp, n)]; assert not missing, missing;"
            "assert ipp.TimeoutError is TimeoutError and ipp.error.RemoteError is ipp.RemoteError;"
            "from kernelpar.error import CompositeError\n"
            "try:\n    ipp.use_dill()\nexcept NotImplementedError as e:\n    assert 'use_cloudpickle()' in str(e)\n"
            "else:\n    raise AssertionError('use_dill() must say it is not supported')")
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
