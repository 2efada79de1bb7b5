"""Task records on the client side (no sockets): decoding helpers, and the Client mixin +
AsyncHubResult over a fake transport that hands requests to a real RecordQueries.

The hub, its stores and the task driver are :mod:`hubworld`'s.
"""

import json
from datetime import datetime, timedelta, timezone

import pytest
import zmq
from hubworld import ENGINES, KEY, T0, ask, at, db, entry_for, hub, queries, sample, tasks  # noqa: F401

from kernelpar import errors
from kernelpar.client.asyncresult import AsyncResult
from kernelpar.client.executereply import ExecuteReply
from kernelpar.client.futures import MessageFuture, Metadata
from kernelpar.client.history import IdHistory
from kernelpar.client.hubqueries import HubQueries
from kernelpar.client.hubrecords import (
    as_buffer,
    decode_records,
    fill_metadata,
    jsonable,
    parse_date,
    result_value,
    split_result_buffers,
)
from kernelpar.client.hubresult import AsyncHubResult
from kernelpar.wire.serialize import deserialize_object
from kernelpar.wire.session import Session, isoformat, new_id, pack

# -- client side: pure decoding helpers -----------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("2026-03-01T12:00:00.250000+00:00", T0),
    ("2026-03-01T12:00:00.25Z", T0),
    ("2026-03-01T12:00:00.250", T0),
    ("2026-03-01 14:00:00.25+0200", T0),
    ("2026-03-01T14:00:00.250+02", T0),
    ("2026-03-01T12:00", T0.replace(second=0, microsecond=0)),
])
def test_parse_date(text, expected):
    parsed = parse_date(text)
    assert parsed == expected and parsed.tzinfo is not None


def test_parse_date_passes_other_values():
    assert parse_date(None) is None
    assert parse_date(T0) is T0
    assert parse_date(datetime(2026, 1, 1)).tzinfo is timezone.utc
    assert parse_date("not a date") == "not a date"
    assert parse_date(5) == 5


def test_jsonable_turns_dates_into_strings():
    naive = datetime(2026, 3, 1, 12, 0, 0, 250000)
    q = {"submitted": {"$lt": naive, "$in": (T0,)}, "msg_id": {"$nin": {"a"}}}
    out = jsonable(q)
    assert out == {"submitted": {"$lt": T0.isoformat(), "$in": [T0.isoformat()]}, "msg_id": {"$nin": ["a"]}}
    json.dumps(out)


def test_decode_records_reattaches_buffers_and_parses_dates():
    content = {
        "records": [
            {"msg_id": "a", "submitted": at(1), "completed": None, "header": {"date": at(1), "msg_id": "a"}},
            {"msg_id": "b", "submitted": at(2), "result_header": {"date": at(3)}},
        ],
        "buffer_lens": [1, 2], "result_buffer_lens": [0, 1],
    }
    frames = [b"a0", b"b0", zmq.Frame(b"b1"), b"rb0"]
    a, b = decode_records(content, frames)
    assert a["buffers"] == [b"a0"] and a["result_buffers"] == []
    assert [bytes(x) for x in b["buffers"]] == [b"b0", b"b1"] and isinstance(b["buffers"][1], memoryview)
    assert b["result_buffers"] == [b"rb0"]
    assert a["submitted"] == T0 + timedelta(seconds=1) and a["completed"] is None
    assert a["header"]["date"] == T0 + timedelta(seconds=1) and b["result_header"]["date"] == T0 + timedelta(seconds=3)
    assert content["records"][0]["submitted"] == at(1)  # the reply itself is left alone
    with pytest.raises(ValueError, match="4"):
        decode_records(content, frames[:3])
    plain = decode_records({"records": [{"msg_id": "a"}], "buffer_lens": None, "result_buffer_lens": None}, [])
    assert plain == [{"msg_id": "a"}]


def test_as_buffer():
    assert as_buffer(b"x") == b"x"
    view = as_buffer(zmq.Frame(b"abc"))
    assert isinstance(view, memoryview) and bytes(view) == b"abc"
    assert bytes(as_buffer(bytearray(b"q"))) == b"q"


def test_split_result_buffers():
    content = {"completed": ["a", "b", "c"], "a": {"result_buffer_count": 2}, "b": {"result_buffer_count": 0},
               "c": {"result_buffer_count": 1}}
    assert split_result_buffers(content, [b"1", b"2", b"3"]) == {"a": [b"1", b"2"], "b": [], "c": [b"3"]}
    with pytest.raises(ValueError):
        split_result_buffers(content, [b"1"])
    # an entry-less (status_only) reply, and a hub that does not count
    assert split_result_buffers({"completed": ["a"]}, []) == {}
    assert split_result_buffers({"completed": ["a"], "a": {}}, [b"1", b"2"]) == {"a": [b"1", b"2"]}
    with pytest.raises(ValueError):
        split_result_buffers({"completed": ["a", "b"], "a": {}, "b": {}}, [b"1"])


def test_result_value_of_ok_error_and_aborted(queries, tasks):
    done, failed, _pending, big = sample(tasks)
    entry, bufs = entry_for(queries, done["msg_id"])
    md = fill_metadata(Metadata(msg_id=done["msg_id"]), entry)
    assert md["engine_id"] == 0 and md["engine_uuid"] == "engine-0" and md["status"] == "ok"
    assert md["submitted"] == parse_date(done["date"])
    assert md["started"] < md["completed"] and md["received"] is not None
    assert result_value(done["msg_id"], entry, bufs, md) == (True, [1024, big])

    entry, bufs = entry_for(queries, failed["msg_id"])
    md = fill_metadata(Metadata(), entry)
    ok, err = result_value(failed["msg_id"], entry, bufs, md)
    assert not ok and isinstance(err, errors.RemoteError) and err.ename == "ZeroDivisionError"
    assert err.engine_info["engine_id"] == 1

    aborted = tasks.submit()
    tasks.reply(aborted, aborted=True)
    entry, bufs = entry_for(queries, aborted["msg_id"])
    ok, err = result_value(aborted["msg_id"], entry, bufs, fill_metadata(Metadata(), entry))
    assert not ok and isinstance(err, errors.TaskAborted) and err.engine_info["engine_id"] == 0


def test_result_value_of_execute_engine_death_shm_and_garbage(queries, tasks, db):
    code = tasks.submit(msg_type="execute_request", code="1")
    tasks.reply(code)
    entry, bufs = entry_for(queries, code["msg_id"])
    md = fill_metadata(Metadata(), entry)
    ok, value = result_value(code["msg_id"], entry, bufs, md)
    assert ok and isinstance(value, ExecuteReply) and value.execution_count == 3 and value.metadata is md

    lost = tasks.submit(engine="engine-1")
    db.update_record(lost["msg_id"], {"completed": isoformat(), "result_content": pack({
        "status": "error", "ename": "EngineError", "evalue": "Engine 1 died while running task"})})
    entry, bufs = entry_for(queries, lost["msg_id"])
    md = fill_metadata(Metadata(), entry, {"engine-1": 1}.get)
    assert md["engine_id"] == 1 and md["started"] is None
    ok, err = result_value(lost["msg_id"], entry, bufs, md)
    assert not ok and isinstance(err, errors.EngineError) and isinstance(err, errors.RemoteError)
    assert err.engine_info == {"engine_id": 1, "engine_uuid": "engine-1", "method": "apply"}

    shared = tasks.submit()
    tasks.reply(shared, b"x", metadata={"shm": [{"name": "kernelpar-1-ab", "nbytes": 10}]})
    entry, bufs = entry_for(queries, shared["msg_id"])
    ok, err = result_value(shared["msg_id"], entry, bufs, fill_metadata(Metadata(), entry))
    assert not ok and isinstance(err, errors.KernelError) and "shared memory" in str(err)

    ok, err = result_value("m", {"result_content": None}, [], Metadata())
    assert not ok and "holds no result" in str(err)
    ok, err = result_value("m", {"result_content": {"status": "ok"}}, [b"garbage"], Metadata())
    assert not ok and isinstance(err, Exception)


def test_fill_metadata_of_a_pending_entry_and_io():
    md = Metadata(msg_id="m")
    entry = {"header": {"msg_id": "m", "date": at(1)}, "metadata": {"label": "L", "after": {"dependencies": ["x"]}},
             "engine_uuid": None, "submitted": at(1)}
    fill_metadata(md, entry, completed=False)
    assert md["submitted"] == T0 + timedelta(seconds=1) and md["label"] == "L" and md["after"] == ["x"]
    assert md["completed"] is None and md["status"] is None
    entry.update(result_content={"status": "ok"}, result_metadata={}, completed=at(5), received=at(6),
                 io={"stdout": "hi\n", "stderr": "", "execute_result": {"data": {}},
                     "error": {"ename": "E", "evalue": "v", "traceback": ""}, "execute_input": "x"})
    fill_metadata(md, entry)
    assert md["completed"] == T0 + timedelta(seconds=5) and md["received"] == T0 + timedelta(seconds=6)
    assert md["stdout"] == "hi\n" and md["execute_input"] == "x" and isinstance(md["error"], errors.RemoteError)


# -- the Client mixin and AsyncHubResult over a fake transport ---------------------------------------

class FakeLoop:
    def __init__(self):
        self.timers = []
        self.closed = False

    def in_io_thread(self):
        return False

    def submit(self, fn, *args):
        if self.closed:
            raise RuntimeError("This client has been closed")
        fn(*args)

    def call_later(self, delay, fn, *args):
        self.timers.append((delay, fn, args))

    def run_timers(self):
        timers, self.timers = self.timers, []
        for _, fn, args in timers:
            fn(*args)
        return len(timers)


class FakeDispatcher:
    """Hub requests answered at once by RecordQueries, JSON both ways."""

    def __init__(self, queries):
        self.queries = queries
        self.futures = {}
        self.engines = dict(ENGINES)
        self.hub_stopped = False
        self.requests = []

    def hub_future(self, msg_type, content):
        fut = MessageFuture(new_id(), "hub", msg_type, "registration", None)
        fut.request = content
        return fut

    def register(self, fut):
        self.futures[fut.msg_id] = fut

    def send_request(self, fut, hub_timeout=None):
        self.requests.append((fut.msg_type, fut.request))
        reply, buffers = ask(self.queries, fut.msg_type, fut.request)
        self.futures.pop(fut.msg_id, None)
        fut.buffers = buffers
        fut.finish(True, reply)

    def on_stop(self):
        for fut in list(self.futures.values()):
            self.futures.pop(fut.msg_id, None)
            fut.finish(False, errors.KernelError(f"The client was closed while {fut.msg_type} was outstanding"))


class FakeClient(HubQueries):
    block = False
    timeout = 10

    def __init__(self, queries):
        import threading

        self.session = Session(KEY)
        self._task_prefix = self.session.session + "_"
        self._submit_lock = threading.Lock()
        self.history = IdHistory(self._task_prefix)
        self.results, self.metadata, self.outstanding = {}, {}, set()
        self._dispatcher = FakeDispatcher(queries)
        self._loop = FakeLoop()
        self._closed = False
        self.requests = []

    def _hub_request(self, msg_type, content, timeout=None, with_buffers=False):
        self.requests.append((msg_type, content))
        reply, buffers = ask(self._dispatcher.queries, msg_type, content)
        if reply.get("status") == "error":
            raise errors.unwrap_exception(reply)
        return (reply, buffers) if with_buffers else reply

    def _resolve_targets(self, targets):
        ids = [targets] if isinstance(targets, int) else list(targets)
        for eid in ids:
            if eid not in self._dispatcher.engines:
                raise IndexError(f"No such engine: {eid}")
        return [(eid, self._dispatcher.engines[eid]) for eid in ids], isinstance(targets, int)

    def close(self):
        self._closed = True
        self._dispatcher.on_stop()
        self._loop.closed = True

    # a local task in flight, as Client._send registers one
    def local_task(self, tasks, *args):
        n = len(self.history)
        self.history.append_number(n)
        header = tasks.submit(pow, *args, msg_id=f"{self._task_prefix}{n}")
        md = Metadata(msg_id=header["msg_id"], engine_id=0, engine_uuid="engine-0")
        fut = MessageFuture(header["msg_id"], "apply", "apply_request", "mux", None, 0, "engine-0", md)
        self._dispatcher.register(fut)
        self.outstanding.add(fut.msg_id)
        self.metadata[fut.msg_id] = md
        return header, fut


@pytest.fixture
def rc(queries):
    return FakeClient(queries)


def test_db_query_and_hub_history(rc, tasks):
    done, failed, pending, big = sample(tasks)
    recs = rc.db_query({"submitted": {"$gte": parse_date(done["date"])}})
    assert [r["msg_id"] for r in recs] == rc.hub_history() == [done["msg_id"], failed["msg_id"], pending["msg_id"]]
    assert isinstance(recs[0]["submitted"], datetime) and recs[0]["submitted"].tzinfo is not None
    assert isinstance(recs[0]["header"]["date"], datetime)
    assert "buffers" not in recs[0]
    recs = rc.db_query({"msg_id": done["msg_id"]}, keys=["result_buffers", "completed"])
    assert set(recs[0]) == {"msg_id", "result_buffers", "completed"}
    assert deserialize_object(recs[0]["result_buffers"]) == [1024, big]
    assert rc.db_query({"msg_id": done["msg_id"]}, keys="completed")[0]["completed"] == recs[0]["completed"]
    with pytest.raises(errors.RemoteError) as e:
        rc.db_query({"bogus": 1})
    assert e.value.ename == "ValueError"


def test_get_result_of_a_finished_remote_task(rc, tasks):
    done, _failed, _pending, big = sample(tasks)
    ahr = rc.get_result(done["msg_id"], owner=False)
    assert isinstance(ahr, AsyncHubResult) and ahr.done()
    assert ahr.get(0) == [1024, big]
    md = ahr.metadata
    assert md["engine_id"] == 0 and md["submitted"] == parse_date(done["date"]) and md["status"] == "ok"
    assert ahr.wall_time >= 0 and ahr.serial_time > 0
    # not the owner: the result stays with the client, so it is found locally next time
    assert rc.results[done["msg_id"]] == [1024, big]
    ar2 = rc.get_result(done["msg_id"])
    assert not isinstance(ar2, AsyncHubResult) and ar2.get(0) == [1024, big]
    assert done["msg_id"] not in rc.results  # ar2 owned it
    ar3 = rc.get_result(ar2)
    assert ar3.msg_ids == ar2.msg_ids and ar3.get(0) == [1024, big]
    assert isinstance(rc.get_result([ar2]).get(0), list)
    assert rc._loop.timers == []  # nothing left to poll


def test_get_result_of_a_failed_and_an_unknown_task(rc, tasks):
    done, failed, _pending, _ = sample(tasks)
    ahr = rc.get_result(failed["msg_id"])
    with pytest.raises(errors.RemoteError) as e:
        ahr.get(0)
    assert e.value.ename == "ZeroDivisionError"
    assert failed["msg_id"] not in rc.results and failed["msg_id"] not in rc.metadata  # owner cleaned up
    ahr = rc.get_result([done["msg_id"], failed["msg_id"]])
    with pytest.raises(errors.CompositeError):
        ahr.get(0)
    assert len(ahr.get(0, return_exceptions=True)) == 2
    bad = rc.get_result("invalid")
    with pytest.raises(errors.RemoteError) as e:
        bad.get(0)
    assert e.value.ename == "KeyError"
    with pytest.raises(TypeError):
        rc.get_result(3.5)


def test_get_result_polls_until_the_task_completes(rc, tasks):
    pending = tasks.submit(pow, 3, 3)
    ahr = rc.get_result(pending["msg_id"])
    assert not ahr.done()
    assert ahr.metadata["submitted"] == parse_date(pending["date"])  # known from the first poll
    assert ahr.elapsed > 0
    with pytest.raises(TimeoutError, match="Result not ready"):
        ahr.get(timeout=0.01)
    dispatcher = rc._dispatcher
    assert any(f.msg_type == "result_watch" for f in dispatcher.futures.values())
    rc._loop.run_timers()  # arm -> first background poll: still pending
    assert not ahr.done()
    first = rc._loop.timers[0][0]
    rc._loop.run_timers()
    assert rc._loop.timers[0][0] > first  # backs off while nothing changes
    ahr.wait(0)
    tasks.reply(pending, 27)
    assert rc._loop.run_timers() == 1
    assert ahr.done() and ahr.get(0) == 27 and ahr.metadata["engine_id"] == 0
    assert rc._loop.timers == [] and not dispatcher.futures  # the watch is gone too
    # each poll asked only about what was still pending
    assert all(req == {"msg_ids": [pending["msg_id"]], "status_only": False}
               for kind, req in dispatcher.requests if kind == "result_request")


def test_a_pending_hub_result_fails_when_the_client_closes(rc, tasks):
    pending = tasks.submit()
    ahr = rc.get_result(pending["msg_id"])
    rc.close()
    with pytest.raises(errors.KernelError, match="closed"):
        ahr.get(0)
    closed = rc.get_result(tasks.submit()["msg_id"])
    with pytest.raises(errors.KernelError, match="closed"):
        closed.get(0)


def test_a_pending_hub_result_fails_when_the_controller_stops(rc, tasks):
    ahr = rc.get_result(tasks.submit()["msg_id"])
    rc._dispatcher.hub_stopped = True
    rc._loop.run_timers()
    with pytest.raises(errors.KernelError, match="shut down"):
        ahr.get(0)


def test_get_result_of_a_local_task_in_flight_does_not_steal_it(rc, tasks):
    header, fut = rc.local_task(tasks, 2, 5)
    mine = AsyncResult(rc, fut)  # the view's AsyncResult
    other = rc.get_result(header["msg_id"])
    also = rc.get_result(-1, owner=False)
    assert not isinstance(other, AsyncHubResult) and not other.done()
    assert rc._dispatcher.requests == [] and rc.requests == []  # no hub involved
    rc.outstanding.discard(fut.msg_id)
    rc.results[fut.msg_id] = 32
    fut.finish(True, 32)
    assert mine.get(0) == other.get(0) == also.get(0) == 32


def test_get_result_mixes_local_and_remote(rc, tasks):
    done, *_ = sample(tasks)
    header, fut = rc.local_task(tasks, 2, 2)
    ahr = rc.get_result([done["msg_id"], header["msg_id"]])
    assert isinstance(ahr, AsyncHubResult) and not ahr.done()
    fut.finish(True, 4)
    assert ahr.get(0)[1] == 4


def test_get_result_block_and_default_is_last(rc, tasks):
    header, fut = rc.local_task(tasks, 2, 3)
    fut.finish(True, 8)
    rc.results[header["msg_id"]] = 8
    assert rc.get_result(block=True).get(0) == 8


def test_result_status(rc, tasks):
    done, failed, pending, big = sample(tasks)
    status = rc.result_status([done["msg_id"], pending["msg_id"]])
    assert status == {"status": "ok", "pending": [pending["msg_id"]], "completed": [done["msg_id"]]}
    status = rc.result_status([done["msg_id"], pending["msg_id"]], status_only=False)
    assert status[done["msg_id"]] == [1024, big] and pending["msg_id"] not in status
    assert rc.metadata[done["msg_id"]]["engine_id"] == 0
    # now held locally: answered without asking the hub
    before = len(rc.requests)
    assert rc.result_status(done["msg_id"], status_only=False)[done["msg_id"]] == [1024, big]
    assert len(rc.requests) == before
    with pytest.raises(errors.RemoteError) as e:
        rc.result_status(failed["msg_id"], status_only=False)
    assert e.value.ename == "ZeroDivisionError"
    other = tasks.submit()
    tasks.reply(other, error=ValueError("bad"))
    with pytest.raises(errors.CompositeError):
        rc.result_status([failed["msg_id"], other["msg_id"]], status_only=False)
    with pytest.raises(errors.RemoteError) as e:
        rc.result_status(["nope"])
    assert e.value.ename == "KeyError"


def test_resubmit(rc, tasks, queries):
    done, _failed, _pending, _big = sample(tasks)
    ahr = rc.resubmit([done["msg_id"]])
    assert isinstance(ahr, AsyncHubResult) and not ahr.done()
    (new_id,) = ahr.msg_ids
    assert new_id != done["msg_id"]
    assert rc.db_query({"msg_id": done["msg_id"]}, keys=["resubmitted"])[0]["resubmitted"] == new_id
    new_header = rc.db_query({"msg_id": new_id}, keys="header")[0]["header"]
    tasks.reply(new_header, 99)
    rc._loop.run_timers()
    rc._loop.run_timers()
    assert ahr.get(0) == [99]  # a list, as ipyparallel's resubmit gives
    with pytest.raises(errors.RemoteError) as e:
        rc.resubmit(["invalid"])
    assert e.value.ename == "KeyError"
    with pytest.raises(TypeError):
        rc.resubmit([object()])


def test_purge_local_results(rc, tasks):
    rc.results["asdf"] = 5
    rc.metadata["asdf"] = Metadata(msg_id="asdf", engine_uuid="engine-1")
    rc.results["b"] = 6
    rc.metadata["b"] = Metadata(msg_id="b", engine_uuid="engine-0")
    rc.purge_local_results("asdf")
    assert set(rc.results) == set(rc.metadata) == {"b"}
    rc.purge_local_results(targets=0)  # engine 0 is a target, not "nothing"
    assert rc.results == rc.metadata == {}
    with pytest.raises(ValueError, match="at least one"):
        rc.purge_local_results()
    with pytest.raises(TypeError, match="Expected msg_id"):
        rc.purge_local_results([1.5])
    header, _fut = rc.local_task(tasks, 1, 1)
    with pytest.raises(RuntimeError, match="outstanding"):
        rc.purge_local_results(header["msg_id"])
    with pytest.raises(RuntimeError, match="outstanding"):
        rc.purge_local_results("all")
    rc.outstanding.clear()
    rc.purge_local_results("all")
    assert rc.results == rc.metadata == {}


def test_purge_hub_results(rc, tasks):
    done, failed, pending, _ = sample(tasks)
    rc.purge_hub_results(done["msg_id"])
    assert rc.hub_history() == [failed["msg_id"], pending["msg_id"]]
    with pytest.raises(errors.RemoteError) as e:
        rc.purge_hub_results([pending["msg_id"]])
    assert e.value.ename == "IndexError"
    rc.purge_hub_results(targets=[1])
    assert rc.hub_history() == [pending["msg_id"]]
    with pytest.raises(ValueError):
        rc.purge_hub_results()
    with pytest.raises(IndexError):
        rc.purge_hub_results(targets=[5])
    rc.purge_hub_results("all")
    assert rc.hub_history() == [pending["msg_id"]]
    assert rc.requests[-2] == ("purge_request", {"engine_ids": [], "msg_ids": "all"})


def test_purge_results_and_everything(rc, tasks):
    _done, _failed, pending, _ = sample(tasks)
    tasks.reply(pending, 27)
    header, _fut = rc.local_task(tasks, 1, 1)
    tasks.reply(header, 1)
    rc.outstanding.clear()
    rc.results[header["msg_id"]] = 1
    rc.purge_results([header["msg_id"]])
    assert header["msg_id"] not in rc.results and header["msg_id"] not in rc.hub_history()
    rc.results["x"] = 1
    assert len(rc.history) == 1
    rc.purge_everything()
    assert rc.results == {} and rc.metadata == {} and len(rc.history) == 0 and rc.hub_history() == []
    rc.history.append_number(7)  # history works again after the reset
    assert list(rc.history) == [rc._task_prefix + "7"]
