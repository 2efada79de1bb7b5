"""A hub keeping task records, driven without sockets: what the record-query tests share.

``Tasks`` submits tasks and replies to them through the hub's own ``record_submission`` /
``record_result``, from messages serialized by a Session and deserialized lazily, as the
monitor sees them.  The fixtures give a hub over each store (DictDB and SQLiteDB), its
``RecordQueries`` and a ``Tasks`` driver; ``ask`` sends a request the way it travels (JSON
both ways).
"""

from datetime import datetime, timedelta, timezone

import pytest

from kernelpar.client.hubrecords import (
    split_result_buffers,
)
from kernelpar.controller.hub import Hub
from kernelpar.controller.queries import RecordQueries
from kernelpar.controller.records import make_db
from kernelpar.wire import connection
from kernelpar.wire.serialize import (
    pack_apply,
    serialize_object,
    wrap_buffers,
)
from kernelpar.wire.session import Session, isoformat, new_id, pack, unpack

KEY = b"queries-test-key"
ENGINES = {0: "engine-0", 1: "engine-1"}
T0 = datetime(2026, 3, 1, 12, 0, 0, 250000, tzinfo=timezone.utc)


def at(seconds):
    return isoformat(T0 + timedelta(seconds=seconds))


def _bytes_frames(frames):
    """Frames as a socket would deliver them (bytes), not the memoryviews pickling made."""
    return [f if isinstance(f, bytes) else memoryview(f).tobytes() for f in frames]


class Outbox:
    def reply(self, *a, **kw):
        pass

    notify = control = ping = stop = reply


class Tasks:
    """Submits tasks and replies to them through the hub's record-keeping."""

    def __init__(self, hub):
        self.hub = hub
        self.client = Session(KEY)
        self.clock = 0

    def _tick(self):
        self.clock += 1
        return at(self.clock)

    def submit(self, f=pow, *args, engine="engine-0", queue="mux", msg_type="apply_request", code=None,
               metadata=None, msg_id=None):
        header = self.client.header(msg_type, msg_id)
        header["date"] = self._tick()
        if msg_type == "apply_request":
            content, buffers = {}, pack_apply(f, args, {})
        else:
            content, buffers = {"code": code, "silent": False}, []
        idents = [engine.encode() if engine else b"", self.client.session.encode()]
        frames, _ = self.client.serialize(msg_type, content, metadata=metadata or {}, buffers=buffers,
                                          idents=idents, header=header)
        msg = self.hub.session.deserialize(_bytes_frames(frames), lazy=True)
        self.hub.record_submission(msg, engine, msg.idents[1], queue)
        return header

    def reply(self, header, value=None, *, error=None, aborted=False, engine="engine-0", metadata=None):
        eid = {u: i for i, u in ENGINES.items()}.get(engine)
        reply_type = header["msg_type"].replace("_request", "_reply")
        if aborted:
            content, buffers, status = {"status": "aborted"}, [], "aborted"
        elif error is not None:
            content, buffers, status = {
                "status": "error", "ename": type(error).__name__, "evalue": str(error), "traceback": "tb...",
                "engine_info": {"engine_id": eid, "engine_uuid": engine, "method": "apply"}}, [], "error"
        elif reply_type == "execute_reply":
            content, buffers, status = {"status": "ok", "execution_count": 3}, [], "ok"
        else:
            content, buffers, status = {"status": "ok"}, serialize_object(wrap_buffers(value)), "ok"
        started, completed = self._tick(), self._tick()
        md = {"started": started, "completed": completed, "engine_id": eid, "engine_uuid": engine,
              "status": status, "iopub": 0}
        md.update(metadata or {})
        session = Session(KEY, session=engine)
        rheader = session.header(reply_type)
        rheader["date"] = completed
        frames, _ = session.serialize(reply_type, content, parent=header, metadata=md, buffers=buffers,
                                      idents=[self.client.session.encode(), engine.encode()], header=rheader)
        msg = self.hub.session.deserialize(_bytes_frames(frames), lazy=True)
        self.hub.record_result(msg, engine)
        return rheader


@pytest.fixture(params=["dictdb", "sqlitedb"])
def db(request, tmp_path):
    store = make_db(request.param, location=str(tmp_path)) if request.param == "sqlitedb" else make_db("dictdb")
    yield store
    store.close()


@pytest.fixture
def hub(db):
    return Hub(Session(KEY), Outbox(), lambda *a: None, connection.versions(), db=db)


@pytest.fixture
def tasks(hub):
    return Tasks(hub)


class Resubmitter:
    """What the lead's hub does on resubmit: a fresh msg_id and date, recorded at once."""

    def __init__(self, tasks):
        self.tasks = tasks
        self.seen = []

    def __call__(self, record):
        self.seen.append(record)
        header = dict(record["header"], msg_id=new_id(), date=self.tasks._tick())
        frames, _ = self.tasks.client.serialize(header["msg_type"], record["content"], metadata=record["metadata"],
                                                buffers=record["buffers"], idents=[b"", b"hub"], header=header)
        msg = self.tasks.hub.session.deserialize(frames, lazy=True)
        self.tasks.hub.record_submission(msg, None, b"hub", "task")
        return header["msg_id"]


@pytest.fixture
def queries(hub, tasks):
    return RecordQueries(hub.db, resubmit=Resubmitter(tasks), engine_uuid_of=ENGINES.get)


def ask(queries, msg_type, content):
    """A request as it travels: JSON both ways (buffers are frames)."""
    reply, buffers = queries.handle(msg_type, unpack(pack(content)))
    return unpack(pack(reply)), list(buffers)


def check_error(reply, ename, *words):
    assert reply["status"] == "error", reply
    assert reply["ename"] == ename, reply
    assert set(reply) >= {"ename", "evalue", "traceback", "engine_info"}
    for word in words:
        assert word in reply["evalue"], reply["evalue"]


def sample(tasks):
    """done (ok, 2 result buffers), failed, pending: returns their headers."""
    big = bytes(range(256)) * 400  # large enough to travel out of band
    done = tasks.submit(pow, 2, 10)
    tasks.reply(done, [1024, big])
    failed = tasks.submit(pow, 1, 0, engine="engine-1")
    tasks.reply(failed, error=ZeroDivisionError("division by zero"), engine="engine-1")
    pending = tasks.submit(pow, 3, 3)
    return done, failed, pending, big


# -- hub side: db_request -------------------------------------------------------------------


def entry_for(queries, msg_id):
    reply, buffers = ask(queries, "result_request", {"msg_ids": [msg_id]})
    return reply[msg_id], split_result_buffers(reply, buffers).get(msg_id, [])
