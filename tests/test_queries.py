"""Task-record requests on the hub side (no sockets): RecordQueries over DictDB / SQLiteDB / NoDB.

The hub, its stores and the task driver are :mod:`hubworld`'s.
"""

import pytest
from hubworld import ENGINES, KEY, Outbox, Tasks, ask, check_error, db, hub, queries, sample, tasks  # noqa: F401

from kernelpar.controller.hub import Hub
from kernelpar.controller.queries import DEFAULT_DB_KEYS, MSG_TYPES, RecordQueries
from kernelpar.controller.records import DictDB, make_db
from kernelpar.wire import connection
from kernelpar.wire.serialize import deserialize_object
from kernelpar.wire.session import Session, isoformat, pack


def test_db_request_default_keys_exclude_buffers(queries, tasks):
    done, failed, pending, _ = sample(tasks)
    reply, buffers = ask(queries, "db_request", {"query": {"msg_id": {"$ne": ""}}, "keys": None})
    assert reply["status"] == "ok"
    assert reply["buffer_lens"] is None and reply["result_buffer_lens"] is None and buffers == []
    recs = reply["records"]
    assert [r["msg_id"] for r in recs] == [done["msg_id"], failed["msg_id"], pending["msg_id"]]
    for rec in recs:
        assert set(rec) == set(DEFAULT_DB_KEYS)
        assert "buffers" not in rec and "result_buffers" not in rec
    assert recs[0]["header"]["msg_type"] == "apply_request"
    assert recs[0]["result_content"] == {"status": "ok"}
    assert recs[0]["submitted"] == done["date"] and isinstance(recs[0]["completed"], str)
    assert recs[1]["result_content"]["ename"] == "ZeroDivisionError"
    assert recs[2]["completed"] is None and recs[2]["result_header"] is None


def test_db_request_buffers_follow_record_by_record(queries, tasks):
    _done, _failed, _pending, big = sample(tasks)
    reply, buffers = ask(queries, "db_request", {"query": {}, "keys": ["buffers", "result_buffers"]})
    recs = reply["records"]
    assert all(set(r) == {"msg_id"} for r in recs)
    blens, rlens = reply["buffer_lens"], reply["result_buffer_lens"]
    assert len(blens) == len(rlens) == 3 and rlens[1:] == [0, 0] and rlens[0] == 2
    assert len(buffers) == sum(blens) + sum(rlens)
    # record 0: its request buffers, then its result buffers
    request_bufs = buffers[:blens[0]]
    result_bufs = buffers[blens[0]:blens[0] + rlens[0]]
    assert deserialize_object(request_bufs)[1] == (2, 10)
    assert deserialize_object(result_bufs) == [1024, big]


def test_db_request_keys_as_a_string_and_msg_id_always(queries, tasks):
    sample(tasks)
    reply, _ = ask(queries, "db_request", {"query": {}, "keys": "header"})
    assert all(set(r) == {"msg_id", "header"} for r in reply["records"])
    reply, _ = ask(queries, "db_request", {"query": {}, "keys": ["msg_id"]})
    assert all(set(r) == {"msg_id"} for r in reply["records"])
    reply, _ = ask(queries, "db_request", {})  # no query at all: everything
    assert len(reply["records"]) == 3


def test_db_request_dates_and_operators(queries, tasks):
    done, failed, pending, _ = sample(tasks)
    reply, _ = ask(queries, "db_request", {"query": {"submitted": {"$lt": failed["date"]}}, "keys": ["submitted"]})
    assert [r["msg_id"] for r in reply["records"]] == [done["msg_id"]]
    reply, _ = ask(queries, "db_request", {"query": {"completed": None}, "keys": ["completed"]})
    assert [r["msg_id"] for r in reply["records"]] == [pending["msg_id"]]
    reply, _ = ask(queries, "db_request", {"query": {"engine_uuid": "engine-1"}, "keys": ["engine_uuid"]})
    assert [r["msg_id"] for r in reply["records"]] == [failed["msg_id"]]
    ids = [done["msg_id"], pending["msg_id"]]
    reply, _ = ask(queries, "db_request", {"query": {"msg_id": {"$nin": ids}}, "keys": []})
    assert [r["msg_id"] for r in reply["records"]] == [failed["msg_id"]]


@pytest.mark.parametrize("content, words", [
    ({"query": {"nope": 1}}, ["nope"]),
    ({"query": {"submitted": {"$near": 1}}}, ["$near"]),
    ({"query": {"header": {"$gt": 3}}}, ["header"]),
    ({"query": {}, "keys": ["nope"]}, ["nope"]),
    ({"query": {}, "keys": 5}, ["keys"]),
    ({"query": [1, 2]}, ["dict"]),
])
def test_db_request_bad_queries_are_error_replies(queries, tasks, content, words):
    sample(tasks)
    reply, buffers = ask(queries, "db_request", content)
    check_error(reply, "ValueError", *words)
    assert buffers == []


# -- history_request -------------------------------------------------------------------------

def test_history_request_is_submission_order(queries, tasks):
    a = tasks.submit()
    b = tasks.submit()
    c = tasks.submit()
    tasks.reply(b, 1)
    reply, _ = ask(queries, "history_request", {})
    assert reply == {"status": "ok", "history": [a["msg_id"], b["msg_id"], c["msg_id"]]}


# -- result_request ----------------------------------------------------------------------------

def test_result_request_status_only(queries, tasks):
    done, failed, pending, _ = sample(tasks)
    ids = [pending["msg_id"], done["msg_id"], failed["msg_id"], done["msg_id"]]
    reply, buffers = ask(queries, "result_request", {"msg_ids": ids, "status_only": True})
    assert reply == {"status": "ok", "pending": [pending["msg_id"]], "completed": [done["msg_id"], failed["msg_id"]]}
    assert buffers == []


def test_result_request_entries_and_buffers(queries, tasks):
    done, failed, pending, big = sample(tasks)
    ids = [failed["msg_id"], pending["msg_id"], done["msg_id"]]
    reply, buffers = ask(queries, "result_request", {"msg_ids": ids, "status_only": False})
    assert reply["pending"] == [pending["msg_id"]]
    assert reply["completed"] == [failed["msg_id"], done["msg_id"]]
    entry = reply[done["msg_id"]]
    assert set(entry) == {"header", "metadata", "result_header", "result_metadata", "result_content", "submitted",
                          "completed", "received", "engine_uuid", "io", "result_buffer_count"}
    assert set(entry["io"]) == {"execute_input", "execute_result", "error", "stdout", "stderr"}
    assert entry["header"]["msg_id"] == done["msg_id"] and entry["result_header"]["msg_type"] == "apply_reply"
    assert entry["result_metadata"]["engine_id"] == 0 and entry["engine_uuid"] == "engine-0"
    assert reply[failed["msg_id"]]["result_buffer_count"] == 0 and entry["result_buffer_count"] == 2
    assert deserialize_object(buffers) == [1024, big]  # failed has none: all frames are done's
    assert set(reply[pending["msg_id"]]) == {"header", "metadata", "submitted", "engine_uuid"}
    assert reply[pending["msg_id"]]["submitted"] == pending["date"]


def test_result_request_unknown_and_malformed(queries, tasks):
    done, *_ = sample(tasks)
    reply, _ = ask(queries, "result_request", {"msg_ids": [done["msg_id"], "nope"]})
    check_error(reply, "KeyError", "nope")
    reply, _ = ask(queries, "result_request", {"msg_ids": 5})
    check_error(reply, "TypeError", "msg_ids")
    reply, _ = ask(queries, "result_request", {"msg_ids": []})
    assert reply == {"status": "ok", "pending": [], "completed": []}
    reply, _ = ask(queries, "result_request", {"msg_ids": done["msg_id"], "status_only": True})  # one str
    assert reply["completed"] == [done["msg_id"]]


def test_result_request_for_a_culled_record_says_so():
    db = DictDB(record_limit=2, cull_fraction=0.5)
    hub = Hub(Session(KEY), Outbox(), lambda *a: None, connection.versions(), db=db)
    tasks = Tasks(hub)
    first = tasks.submit()
    tasks.reply(first, 1)
    for _ in range(4):
        tasks.reply(tasks.submit(), 1)
    reply, _ = ask(RecordQueries(db), "result_request", {"msg_ids": [first["msg_id"]]})
    check_error(reply, "KeyError", first["msg_id"], "culled")


def test_engine_death_record_is_a_completed_error(queries, tasks, hub):
    hub.queues["engine-0"] = {}
    lost = tasks.submit()
    assert lost["msg_id"] in hub.queues["engine-0"]
    hub.db.update_record(lost["msg_id"], {"completed": isoformat(), "result_content": pack({
        "status": "error", "ename": "EngineError", "evalue": "Engine 0 died"})})
    reply, buffers = ask(queries, "result_request", {"msg_ids": [lost["msg_id"]]})
    assert reply["completed"] == [lost["msg_id"]] and buffers == []
    assert reply[lost["msg_id"]]["result_content"]["ename"] == "EngineError"


# -- purge_request ------------------------------------------------------------------------------

def history(queries):
    return ask(queries, "history_request", {})[0]["history"]


def test_purge_by_msg_id(queries, tasks):
    done, failed, pending, _ = sample(tasks)
    reply, _ = ask(queries, "purge_request", {"msg_ids": [done["msg_id"], "unknown-is-ignored"], "engine_ids": []})
    assert reply == {"status": "ok"}
    assert history(queries) == [failed["msg_id"], pending["msg_id"]]


def test_purge_of_a_pending_task_is_refused_and_drops_nothing(queries, tasks):
    done, _failed, pending, _ = sample(tasks)
    reply, _ = ask(queries, "purge_request", {"msg_ids": [done["msg_id"], pending["msg_id"]]})
    check_error(reply, "IndexError", pending["msg_id"], "pending")
    assert len(history(queries)) == 3


def test_purge_all_keeps_pending(queries, tasks):
    _done, _failed, pending, _ = sample(tasks)
    reply, _ = ask(queries, "purge_request", {"msg_ids": "all"})
    assert reply["status"] == "ok"
    assert history(queries) == [pending["msg_id"]]


def test_purge_by_engine(queries, tasks):
    _done, failed, pending, _ = sample(tasks)
    reply, _ = ask(queries, "purge_request", {"msg_ids": [], "engine_ids": [0]})
    assert reply["status"] == "ok"
    assert history(queries) == [failed["msg_id"], pending["msg_id"]]  # pending on engine 0 stays
    reply, _ = ask(queries, "purge_request", {"msg_ids": [], "engine_ids": [1, 7]})
    check_error(reply, "IndexError", "7")
    assert len(history(queries)) == 2  # checked before anything is dropped
    reply, _ = ask(queries, "purge_request", {"engine_ids": ["0"]})
    check_error(reply, "TypeError", "engine_ids")
    reply, _ = ask(RecordQueries(queries.db), "purge_request", {"engine_ids": [1]})
    check_error(reply, "RuntimeError", "engine")


# -- resubmit_request ----------------------------------------------------------------------------

def test_resubmit_sends_the_record_and_marks_it(queries, tasks):
    done, _failed, pending, _ = sample(tasks)
    ids = [done["msg_id"], pending["msg_id"]]  # in-flight tasks may be resubmitted too
    reply, _ = ask(queries, "resubmit_request", {"msg_ids": ids})
    assert reply["status"] == "ok" and set(reply["resubmitted"]) == set(ids)
    seen = queries.resubmit.seen
    assert [r["msg_id"] for r in seen] == ids
    assert seen[0]["header"]["msg_type"] == "apply_request" and isinstance(seen[0]["metadata"], dict)
    assert deserialize_object(seen[0]["buffers"])[1] == (2, 10)
    recs = ask(queries, "db_request", {"query": {"msg_id": {"$in": ids}}, "keys": ["resubmitted"]})[0]["records"]
    assert {r["msg_id"]: r["resubmitted"] for r in recs} == reply["resubmitted"]
    new = list(reply["resubmitted"].values())
    status, _ = ask(queries, "result_request", {"msg_ids": new, "status_only": True})
    assert status["pending"] == new


def test_resubmit_errors(queries, tasks, db):
    done, *_ = sample(tasks)
    reply, _ = ask(queries, "resubmit_request", {"msg_ids": ["invalid"]})
    check_error(reply, "KeyError", "invalid")
    reply, _ = ask(queries, "resubmit_request", {"msg_ids": [done["msg_id"], "x", "y"]})
    check_error(reply, "KeyError", "'x'", "'y'")
    assert queries.resubmit.seen == []  # nothing sent when any id is unknown
    reply, _ = ask(RecordQueries(db), "resubmit_request", {"msg_ids": [done["msg_id"]]})
    check_error(reply, "RuntimeError", "resubmit")

    def broken(record):
        raise OSError("queue gone")

    reply, _ = ask(RecordQueries(db, resubmit=broken), "resubmit_request", {"msg_ids": [done["msg_id"]]})
    check_error(reply, "OSError", "queue gone", done["msg_id"])


def test_resubmit_refuses_what_the_hub_cannot_resend(queries, tasks, db):
    shared = tasks.submit(metadata={"shm": [{"name": "kernelpar-1-ab", "nbytes": 10}]})
    reply, _ = ask(queries, "resubmit_request", {"msg_ids": [shared["msg_id"]]})
    check_error(reply, "ValueError", "shared memory")
    stripped = tasks.submit()
    db.update_record(stripped["msg_id"], {"buffers": []})
    reply, _ = ask(queries, "resubmit_request", {"msg_ids": [stripped["msg_id"]]})
    check_error(reply, "ValueError", "no longer holds")
    code = tasks.submit(msg_type="execute_request", code="a = 1")
    reply, _ = ask(queries, "resubmit_request", {"msg_ids": [code["msg_id"]]})
    assert reply["status"] == "ok"  # execute requests carry no buffers
    assert queries.resubmit.seen[-1]["content"]["code"] == "a = 1"


# -- NoDB, failures, dispatch --------------------------------------------------------------------------

@pytest.mark.parametrize("msg_type, content", [
    ("db_request", {"query": {}}),
    ("history_request", {}),
    ("result_request", {"msg_ids": ["m"]}),
    ("result_request", {"msg_ids": ["m"], "status_only": True}),
    ("resubmit_request", {"msg_ids": ["m"]}),
    ("purge_request", {"msg_ids": ["m"]}),
])
def test_nodb_answers_every_request_with_a_clear_error(msg_type, content):
    queries = RecordQueries(make_db("nodb"), resubmit=lambda r: "new", engine_uuid_of=ENGINES.get)
    reply, _ = ask(queries, msg_type, content)
    check_error(reply, "KeyError", "--nodb")


def test_nodb_purge_all_is_fine():
    reply, _ = ask(RecordQueries(make_db("nodb")), "purge_request", {"msg_ids": "all"})
    assert reply == {"status": "ok"}


def test_a_failing_store_gives_an_error_reply_with_traceback():
    class Broken(DictDB):
        def find_records(self, query, keys=None):
            raise RuntimeError("disk on fire")

    reply, _ = ask(RecordQueries(Broken()), "db_request", {"query": {}})
    check_error(reply, "RuntimeError", "disk on fire")
    assert "Traceback" in reply["traceback"]


def test_unknown_msg_type_raises_and_bad_content_is_an_error(queries):
    with pytest.raises(ValueError, match="queue_request"):
        queries.handle("queue_request", {})
    reply, _ = queries.handle("db_request", ["not", "a", "dict"])
    check_error(reply, "TypeError", "dict")
    assert set(MSG_TYPES) == {"db_request", "history_request", "result_request", "purge_request",
                              "resubmit_request"}
