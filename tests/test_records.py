"""Task-record stores and the db_query language (no sockets): DictDB, SQLiteDB, NoDB."""

import json
import sqlite3
from array import array
from datetime import datetime, timedelta, timezone

import pytest
import zmq

from kernelpar.controller.query import (
    OPERATORS,
    RECORD_KEYS,
    QueryError,
    compile_query,
    matches,
    normalize_date,
    store_date,
)
from kernelpar.controller.records import (
    DictDB,
    NoDB,
    RecordNotFound,
    RecordsNotKept,
    make_db,
)
from kernelpar.controller.sqlitedb import SQLiteDB, decode_buffers, encode_buffers
from kernelpar.wire.session import isoformat, pack

T0 = datetime(2026, 11, 22, 23, 30, 0, 123456, tzinfo=timezone.utc)
PLUS2 = timezone(timedelta(hours=2))


def at(seconds):
    return T0 + timedelta(seconds=seconds)


def iso(seconds):
    return isoformat(at(seconds))


def record(msg_id, submitted, **fields):
    """A record shaped as the hub writes it: JSON bytes, a header dict, frames/bytes buffers."""
    rec = {
        "msg_id": msg_id, "header": {"msg_id": msg_id, "msg_type": "apply_request"},
        "metadata": pack({"label": fields.get("label")}), "content": pack({}),
        "buffers": [b"f-" + msg_id.encode()], "submitted": submitted, "client_uuid": "c0",
        "engine_uuid": "e0", "queue": "mux", "completed": None,
    }
    rec.update(fields)
    return rec


# m3 is submitted before m2, to tell history order from insertion order
SAMPLE = [
    record("m0", iso(0), label="alpha", stdout="hello world", completed=iso(5),
           result_content=pack({"status": "ok"}), result_buffers=[b"r0"]),
    record("m1", at(10), label=7, engine_uuid="e1", queue="task"),
    record("m2", iso(30), label=["a", "b", "c"], completed=at(31), stdout="bye"),
    record("m3", at(20).astimezone(PLUS2), label=12.5, engine_uuid="e1", completed=iso(25)),
    record("m4", iso(40), engine_uuid=None, buffers=[]),
    record("m5", iso(50), label="beta", stderr="oops", resubmitted="m6"),
]


@pytest.fixture(params=["dictdb", "sqlitedb", "sqlitedb-without-json1"])
def store(request, tmp_path):
    db = DictDB() if request.param == "dictdb" else SQLiteDB(tmp_path)
    if request.param == "sqlitedb-without-json1":
        db._json1 = False  # $in / $nin through the Python function instead of json_each
    for rec in SAMPLE:
        db.add_record(rec["msg_id"], dict(rec))
    yield db
    db.close()


def ids(records):
    return [r["msg_id"] for r in records]


def found(store, query):
    return set(ids(store.find_records(query)))


# -- the operators, on every store ------------------------------------------------------------

OPERATOR_CASES = [
    # plain equality and $eq
    ({}, {"m0", "m1", "m2", "m3", "m4", "m5"}),
    ({"engine_uuid": "e0"}, {"m0", "m2", "m5"}),
    ({"engine_uuid": {"$eq": "e1"}}, {"m1", "m3"}),
    ({"label": 7}, {"m1"}),
    ({"label": 7.0}, {"m1"}),
    ({"label": "7"}, set()),
    ({"label": None}, {"m4"}),
    ({"engine_uuid": None}, {"m4"}),
    ({"completed": None}, {"m1", "m4", "m5"}),
    ({"completed": iso(5)}, {"m0"}),
    ({"completed": at(5).astimezone(PLUS2)}, {"m0"}),
    ({"result_content": None}, {"m1", "m2", "m3", "m4", "m5"}),
    ({"engine_uuid": "e0", "queue": "mux"}, {"m0", "m2", "m5"}),
    # $ne (a missing value is "not equal")
    ({"engine_uuid": {"$ne": "e0"}}, {"m1", "m3", "m4"}),
    ({"label": {"$ne": None}}, {"m0", "m1", "m2", "m3", "m5"}),
    ({"completed": {"$ne": None}}, {"m0", "m2", "m3"}),
    ({"result_buffers": {"$ne": None}}, {"m0"}),
    # ordering: $gt is *greater than*
    ({"submitted": {"$gt": at(20)}}, {"m2", "m4", "m5"}),
    ({"submitted": {"$gt": iso(20)}}, {"m2", "m4", "m5"}),
    ({"submitted": {"$gte": at(20)}}, {"m3", "m2", "m4", "m5"}),
    ({"submitted": {"$lt": at(20)}}, {"m0", "m1"}),
    ({"submitted": {"$lte": at(20).astimezone(PLUS2).isoformat()}}, {"m0", "m1", "m3"}),
    ({"submitted": {"$gt": "2026-11-22T23:30:20.123456Z"}}, {"m2", "m4", "m5"}),
    ({"submitted": {"$gte": at(10), "$lt": at(40)}}, {"m1", "m3", "m2"}),
    ({"completed": {"$gt": at(0)}}, {"m0", "m2", "m3"}),  # None never compares
    ({"completed": {"$lt": at(100)}}, {"m0", "m2", "m3"}),
    ({"label": {"$gt": 7}}, {"m3"}),
    ({"label": {"$gte": 7}}, {"m1", "m3"}),
    ({"label": {"$lt": 12.5}}, {"m1"}),
    ({"label": {"$lte": 12.5}}, {"m1", "m3"}),
    ({"label": {"$gt": "alpha"}}, {"m5"}),  # strings only compare with strings
    ({"label": {"$lt": "beta"}}, {"m0"}),
    ({"label": {"$lt": None}}, set()),
    ({"label": {"$gte": None}}, set()),
    # $in / $nin
    ({"engine_uuid": {"$in": ["e1"]}}, {"m1", "m3"}),
    ({"engine_uuid": {"$in": ["e1", None]}}, {"m1", "m3", "m4"}),
    ({"msg_id": {"$in": ["m2", "m0", "nope"]}}, {"m0", "m2"}),
    ({"msg_id": {"$in": []}}, set()),
    ({"label": {"$in": [7, "beta"]}}, {"m1", "m5"}),
    ({"label": {"$in": ["7", "a"]}}, set()),
    ({"completed": {"$in": [at(5), iso(25)]}}, {"m0", "m3"}),
    ({"engine_uuid": {"$nin": ["e0"]}}, {"m1", "m3", "m4"}),
    ({"engine_uuid": {"$nin": ["e0", None]}}, {"m1", "m3"}),
    ({"msg_id": {"$nin": []}}, {"m0", "m1", "m2", "m3", "m4", "m5"}),
    ({"label": {"$nin": [7, "alpha"]}}, {"m2", "m3", "m4", "m5"}),
    # $all: the value is a list holding every operand
    ({"label": {"$all": ["a", "c"]}}, {"m2"}),
    ({"label": {"$all": ["a", "z"]}}, set()),
    ({"label": {"$all": ["alpha"]}}, set()),
    # $mod
    ({"label": {"$mod": [5, 2]}}, {"m1"}),
    ({"label": {"$mod": [5, 2.5]}}, {"m3"}),
    ({"label": {"$mod": [-5, -3]}}, {"m1"}),  # Python semantics: 7 % -5 == -3
    ({"label": {"$mod": [2, 0]}}, set()),
    # $exists
    ({"completed": {"$exists": True}}, {"m0", "m2", "m3"}),
    ({"completed": {"$exists": False}}, {"m1", "m4", "m5"}),
    ({"label": {"$exists": False}}, {"m4"}),
    ({"started": {"$exists": True}}, set()),
    ({"content": {"$exists": True}}, {"m0", "m1", "m2", "m3", "m4", "m5"}),
    ({"result_buffers": {"$exists": True}}, {"m0"}),
    ({"buffers": {"$exists": True}}, {"m0", "m1", "m2", "m3", "m4", "m5"}),  # [] exists
    ({"stderr": {"$exists": True}, "resubmitted": "m6"}, {"m5"}),
    # $glob (fnmatch, case-sensitive)
    ({"stdout": {"$glob": "hello*"}}, {"m0"}),
    ({"stdout": {"$glob": "HELLO*"}}, set()),
    ({"msg_id": {"$glob": "m[0-2]"}}, {"m0", "m1", "m2"}),
    ({"msg_id": {"$glob": "m[!0-2]"}}, {"m3", "m4", "m5"}),
    ({"label": {"$glob": "?eta"}}, {"m5"}),
    ({"submitted": {"$glob": "2026-11-22T23:30:1*"}}, {"m1"}),
]


@pytest.mark.parametrize("query, expected", OPERATOR_CASES, ids=[repr(q) for q, _ in OPERATOR_CASES])
def test_every_operator_on_every_store(store, query, expected):
    assert found(store, query) == expected


@pytest.mark.parametrize("query, expected", OPERATOR_CASES, ids=[repr(q) for q, _ in OPERATOR_CASES])
def test_the_pure_matcher_agrees(query, expected):
    conditions = compile_query(query)
    stored = []
    for rec in SAMPLE:
        rec = dict(rec)
        for key in ("submitted", "completed"):
            rec[key] = store_date(rec[key])
        stored.append(rec)
    assert {r["msg_id"] for r in stored if matches(conditions, r)} == expected


def test_gt_is_greater_than_and_lt_is_less_than(store):
    later = store.find_records({"submitted": {"$gt": at(30)}})
    earlier = store.find_records({"submitted": {"$lt": at(30)}})
    assert ids(later) == ["m4", "m5"]
    assert ids(earlier) == ["m0", "m1", "m3"]
    assert all(r["submitted"] > iso(30) for r in later)
    assert all(r["submitted"] < iso(30) for r in earlier)


def test_every_operator_is_covered():
    used = {op for query, _ in OPERATOR_CASES for spec in query.values() if isinstance(spec, dict) for op in spec}
    assert used == set(OPERATORS)


# -- malformed queries ------------------------------------------------------------------------

MALFORMED = [
    ([("engine_uuid", "e0")], "must be a dict"),
    ("engine_uuid", "must be a dict"),
    ({"nosuchkey": 1}, "'nosuchkey' is not a task-record key"),
    ({"$or": [{"label": 1}]}, "'\\$or' is not a task-record key"),
    ({"label": {"$regex": "a.*"}}, "unknown operator '\\$regex'"),
    ({"label": {"gt": 1}}, "unknown operator 'gt'"),
    ({"label": {}}, "'label': empty operator dict"),
    ({"label": {"$in": "abc"}}, "'label', operator \\$in: operand must be a list"),
    ({"label": {"$nin": 3}}, "'label', operator \\$nin: operand must be a list"),
    ({"label": {"$in": [[1, 2]]}}, "'label', operator \\$in: operand must be a string, number"),
    ({"label": {"$all": "a"}}, "'label', operator \\$all: operand must be a list"),
    ({"label": {"$mod": 3}}, "'label', operator \\$mod: operand must be \\[divisor, remainder\\]"),
    ({"label": {"$mod": [3]}}, "operator \\$mod: operand must be \\[divisor, remainder\\]"),
    ({"label": {"$mod": [3, "1"]}}, "operator \\$mod: operand must be \\[divisor, remainder\\]"),
    ({"label": {"$mod": [0, 1]}}, "operator \\$mod: divisor must not be 0"),
    ({"label": {"$exists": "yes"}}, "operator \\$exists: operand must be True or False"),
    ({"label": {"$glob": 5}}, "operator \\$glob: operand must be a pattern string"),
    ({"label": {"$lt": [1]}}, "operator \\$lt: operand must be a string, number"),
    ({"label": {"$eq": {"a": 1}}}, "operator \\$eq: operand must be a string, number"),
    ({"submitted": {"$gt": "yesterday"}}, "'submitted', operator \\$gt: not an ISO-8601 date"),
    ({"submitted": {"$lt": 5}}, "'submitted', operator \\$lt: not a date"),
    ({"submitted": {"$mod": [2, 0]}}, "'submitted', operator \\$mod: \\$mod does not apply to a date"),
    ({"completed": {"$in": [at(1), "nope"]}}, "'completed', operator \\$in: not an ISO-8601 date"),
    ({"content": {"status": "ok"}}, "'content': unknown operator 'status'.*only top-level keys"),
    ({"content": {"$eq": {"status": "ok"}}}, "'content', operator \\$eq: 'content' holds a dict"),
    ({"result_content": {"$in": [None]}}, "'result_content', operator \\$in: 'result_content' holds a dict"),
    ({"content": {"$glob": "*"}}, "'content', operator \\$glob: 'content' holds a dict"),
    ({"buffers": {"$ne": b"x"}}, "'buffers', operator \\$ne: 'buffers' holds buffers"),
]


@pytest.mark.parametrize("query, message", MALFORMED, ids=[repr(q) for q, _ in MALFORMED])
def test_malformed_queries_raise_a_clear_value_error(store, query, message):
    with pytest.raises(QueryError, match=message) as info:
        store.find_records(query)
    assert isinstance(info.value, ValueError)
    with pytest.raises(QueryError, match=message):
        store.drop_matching_records(query)
    assert len(store) == len(SAMPLE)


def test_bad_keys_lists_are_refused(store):
    with pytest.raises(QueryError, match="'nope' is not a task-record key"):
        store.find_records({}, keys=["engine_uuid", "nope"])
    with pytest.raises(QueryError, match="must be a list of record keys"):
        store.find_records({}, keys="engine_uuid")


def test_a_query_cannot_inject_sql(tmp_path):
    db = SQLiteDB(tmp_path)
    db.add_record("x'; DROP TABLE tasks; --", record("x", iso(0), stdout="'); DROP TABLE tasks; --"))
    with pytest.raises(QueryError):
        db.find_records({'msg_id" = 1; DROP TABLE tasks; --': 1})
    with pytest.raises(QueryError):
        db.find_records({}, keys=['msg_id FROM tasks; DROP TABLE tasks; --'])
    assert ids(db.find_records({"stdout": "'); DROP TABLE tasks; --"})) == ["x'; DROP TABLE tasks; --"]
    assert ids(db.find_records({"msg_id": {"$in": ["x'; DROP TABLE tasks; --"]}})) == ["x'; DROP TABLE tasks; --"]
    with pytest.raises(ValueError, match="identifier"):
        SQLiteDB(tmp_path, table='tasks"; DROP TABLE tasks; --')
    assert len(db) == 1
    db.close()


# -- reading records back ------------------------------------------------------------------------

def test_records_come_back_decoded_with_every_key(store):
    (rec,) = store.find_records({"msg_id": "m0"})
    assert list(rec) == list(RECORD_KEYS)
    assert rec["header"] == {"msg_id": "m0", "msg_type": "apply_request"}
    assert rec["metadata"] == {"label": "alpha"}
    assert rec["content"] == {}
    assert rec["result_content"] == {"status": "ok"}
    assert rec["buffers"] == [b"f-m0"] and rec["result_buffers"] == [b"r0"]
    assert rec["submitted"] == iso(0) and rec["completed"] == iso(5)
    assert rec["started"] is None and rec["result_header"] is None
    (m4,) = store.find_records({"msg_id": "m4"})
    assert m4["buffers"] == [] and m4["result_buffers"] == []
    (m2,) = store.find_records({"msg_id": "m2"})
    assert m2["label"] == ["a", "b", "c"] and m2["completed"] == iso(31)


def test_keys_projection(store):
    recs = store.find_records({"engine_uuid": "e1"}, keys=["content", "engine_uuid", "msg_id", "buffers"])
    assert [list(r) for r in recs] == [["msg_id", "content", "engine_uuid", "buffers"]] * 2
    assert recs[0] == {"msg_id": "m1", "content": {}, "engine_uuid": "e1", "buffers": [b"f-m1"]}
    assert store.find_records({"msg_id": "m3"}, keys=[]) == [{"msg_id": "m3"}]


def test_dates_are_stored_in_one_utc_format(store):
    recs = {r["msg_id"]: r for r in store.find_records({}, keys=["submitted", "completed"])}
    assert recs["m1"]["submitted"] == "2026-11-22T23:30:10.123456+00:00"
    assert recs["m3"]["submitted"] == iso(20)  # given as a +02:00 datetime
    assert recs["m2"]["completed"] == iso(31)
    assert normalize_date("2026-11-22T23:30:00Z") == "2026-11-22T23:30:00.000000+00:00"
    assert normalize_date(datetime(2026, 1, 1)) == "2026-01-01T00:00:00.000000+00:00"  # naive = UTC
    assert store_date("not a date") == "not a date"


def test_history_is_in_submission_order(store):
    assert store.get_history() == ["m0", "m1", "m3", "m2", "m4", "m5"]
    assert ids(store.find_records({})) == ["m0", "m1", "m3", "m2", "m4", "m5"]
    store.add_record("undated", record("undated", None))
    assert store.get_history()[-1] == "undated"


def test_get_records_decodes_and_names_missing_ids(store):
    recs = store.get_records(["m2", "m0"])
    assert ids(recs) == ["m2", "m0"] and recs[1]["result_content"] == {"status": "ok"}
    assert store.get_records(["m1"], keys=["engine_uuid"]) == [{"msg_id": "m1", "engine_uuid": "e1"}]
    with pytest.raises(KeyError, match="no task record for msg_id 'nope'") as info:
        store.get_records(["m0", "nope"])
    assert isinstance(info.value, RecordNotFound) and info.value.msg_id == "nope"


def test_update_record_and_raw_get_record(store):
    assert store.update_record("nope", {"completed": iso(1)}) is None
    assert store.get_record("nope") is None
    assert store.update_record("m1", {"completed": at(11), "result_content": pack({"status": "error"}),
                                      "result_buffers": [memoryview(b"rb")], "stdout": "done"})
    raw = store.get_record("m1")
    assert raw["completed"] == iso(11) and raw["stdout"] == "done"
    content = raw["result_content"]  # raw: JSON bytes or a dict
    assert (content if isinstance(content, dict) else json.loads(content)) == {"status": "error"}
    header = store.get_record("m0")["header"]
    assert (header if isinstance(header, dict) else json.loads(header))["msg_id"] == "m0"
    store.flush()  # SQLiteDB: now from the table rather than the staged batch
    raw = store.get_record("m1")
    assert raw["completed"] == iso(11) and raw["result_buffers"] == [b"rb"]
    content = raw["result_content"]
    assert (content if isinstance(content, dict) else json.loads(content)) == {"status": "error"}
    (rec,) = store.get_records(["m1"])
    assert rec["result_content"] == {"status": "error"} and rec["result_buffers"] == [b"rb"]
    assert found(store, {"completed": {"$gt": at(10)}}) == {"m1", "m2", "m3"}


def test_drop_record_and_matching_records(store):
    assert store.drop_record("m0") is True
    assert store.drop_record("m0") is False
    assert "m0" not in store and "m1" in store
    assert store.drop_matching_records({"engine_uuid": "e1"}) == 2
    assert store.get_history() == ["m2", "m4", "m5"]
    assert store.drop_matching_records({"completed": None}) == 2
    assert len(store) == 1 and store.get_history() == ["m2"]


def test_adding_the_same_msg_id_replaces_the_record(store):
    store.add_record("m0", record("m0", iso(60), label="again"))
    assert len(store) == len(SAMPLE)
    assert store.get_records(["m0"], keys=["label"]) == [{"msg_id": "m0", "label": "again"}]


# -- buffers --------------------------------------------------------------------------------

def test_buffers_round_trip(store):
    doubles = array("d", [1.5, -2.0, 3.25])
    grid = memoryview(bytes(range(20)))[::2]  # not contiguous
    bufs = [b"plain", memoryview(b"view"), memoryview(doubles), grid, zmq.Frame(b"frame"), b"", bytearray(b"ba")]
    store.add_record("b", record("b", iso(70), buffers=bufs, result_buffers=[memoryview(bytes(1000))]))
    (rec,) = store.get_records(["b"])
    assert rec["buffers"] == [b"plain", b"view", doubles.tobytes(), bytes(range(0, 20, 2)), b"frame", b"", b"ba"]
    assert all(type(b) is bytes for b in rec["buffers"])
    assert rec["result_buffers"] == [bytes(1000)]


def test_buffer_blob_format():
    assert decode_buffers(encode_buffers([])) == []
    assert decode_buffers(encode_buffers([b"a", b"", b"xyz"])) == [b"a", b"", b"xyz"]
    assert encode_buffers(None) is None and decode_buffers(None) == []


# -- SQLiteDB persistence and batching ------------------------------------------------------------

def test_sqlitedb_survives_reopening(tmp_path):
    db = SQLiteDB(tmp_path / "db", table="session1")
    for rec in SAMPLE:
        db.add_record(rec["msg_id"], dict(rec))
    db.update_record("m1", {"completed": at(12), "result_content": pack({"status": "ok"})})
    db.close()
    again = SQLiteDB(tmp_path / "db", table="session1")
    assert again.get_history() == ["m0", "m1", "m3", "m2", "m4", "m5"]
    (rec,) = again.get_records(["m1"])
    assert rec["result_content"] == {"status": "ok"} and rec["completed"] == iso(12) and rec["label"] == 7
    assert found(again, {"submitted": {"$gt": at(20)}}) == {"m2", "m4", "m5"}
    assert len(SQLiteDB(tmp_path / "db", table="other")) == 0
    again.close()


def test_sqlitedb_commits_in_batches(tmp_path):
    db = SQLiteDB(tmp_path, commit_every=3, commit_interval=3600)
    reader = sqlite3.connect(tmp_path / "tasks.db")

    def committed():
        return reader.execute('SELECT COUNT(*) FROM "tasks"').fetchone()[0]

    db.add_record("a", record("a", iso(0)))
    db.add_record("b", record("b", iso(1)))
    assert "a" in db and db.get_record("b")["submitted"] == iso(1)  # the writer sees its own writes
    assert committed() == 0
    assert db.update_record("a", {"completed": iso(2)})  # third write: write and commit
    assert committed() == 2
    assert reader.execute('SELECT "completed" FROM "tasks" WHERE "msg_id" = \'a\'').fetchone() == (iso(2),)
    db.add_record("c", record("c", iso(3)))
    assert committed() == 2
    db.flush()
    assert committed() == 3
    assert db.update_record("a", {"stdout": "x"})  # an UPDATE now
    assert db.update_record("nope", {"stdout": "x"}) is None
    assert len(db) == 3 and db.find_records({"stdout": "x"}, keys=["completed"]) == [
        {"msg_id": "a", "completed": iso(2)}]
    db.add_record("d", record("d", iso(4)))
    db.close()
    assert committed() == 4
    reader.close()


def test_sqlitedb_commits_after_an_interval(tmp_path):
    db = SQLiteDB(tmp_path, commit_every=10**6, commit_interval=0)
    db.add_record("a", record("a", iso(0)))
    reader = sqlite3.connect(tmp_path / "tasks.db")
    assert reader.execute('SELECT COUNT(*) FROM "tasks"').fetchone()[0] == 1
    reader.close()
    db.close()


def test_sqlitedb_moves_aside_from_a_foreign_table(tmp_path):
    con = sqlite3.connect(tmp_path / "tasks.db")
    con.execute('CREATE TABLE "tasks" (msg_id text PRIMARY KEY, buffers pickle)')
    con.commit()
    con.close()
    db = SQLiteDB(tmp_path)
    assert db.table == "tasks_1"
    db.add_record("a", record("a", iso(0)))
    assert db.get_history() == ["a"]
    db.close()


def test_sqlitedb_in_memory():
    with SQLiteDB(":memory:") as db:
        db.add_record("a", record("a", iso(0)))
        assert "a" in db and "b" not in db and len(db) == 1


# -- NoDB and the factory -------------------------------------------------------------------------

def test_nodb_keeps_nothing_and_says_so():
    db = NoDB()
    db.add_record("a", record("a", iso(0)))
    assert db.update_record("a", {"completed": iso(1)}) is None
    assert len(db) == 0 and "a" not in db
    assert db.get_record("a") is None
    for call in (lambda: db.get_records(["a"]), lambda: db.find_records({}), db.get_history):
        with pytest.raises(RecordsNotKept, match="--nodb") as info:
            call()
        assert isinstance(info.value, KeyError)
        assert "--dictdb or --sqlitedb" in str(info.value)
    with pytest.raises(QueryError):
        db.find_records({"bad": 1})
    assert db.drop_record("a") is False and db.drop_matching_records({}) == 0


def test_make_db(tmp_path):
    assert isinstance(make_db("dictdb", record_limit=3), DictDB)
    assert make_db("DictDB").record_limit == 1024
    assert isinstance(make_db("--nodb"), NoDB)
    db = make_db("SQLiteDB", location=tmp_path, table="t")
    assert isinstance(db, SQLiteDB) and db.table == "t"
    db.close()
    with pytest.raises(ValueError, match="unknown task-record store 'mongodb'"):
        make_db("mongodb")
    with pytest.raises(TypeError):
        make_db("nodb", record_limit=1)


def test_reads_are_copies(store):
    (rec,) = store.get_records(["m0"])
    rec["header"]["msg_type"] = "changed"
    rec["buffers"].append(b"more")
    (again,) = store.get_records(["m0"])
    assert again["header"]["msg_type"] == "apply_request" and again["buffers"] == [b"f-m0"]


def test_a_closed_sqlitedb_says_so(tmp_path):
    db = SQLiteDB(tmp_path)
    db.add_record("a", record("a", iso(0)))
    db.close()
    db.close()
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        db.find_records({})


@pytest.mark.parametrize("given, canonical", [
    ("2026-11-22T23:30:00Z", "2026-11-22T23:30:00.000000+00:00"),
    ("2026-11-22T23:30:00.5+02:00", "2026-11-22T21:30:00.500000+00:00"),
    ("2026-11-22T23:30:00.1234567-0130", "2026-11-23T01:00:00.123456+00:00"),
    ("2026-11-22 23:30+05", "2026-11-22T18:30:00.000000+00:00"),
    ("2026-11-22", "2026-11-22T00:00:00.000000+00:00"),
    (datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=-3))), "2026-01-01T03:00:00.000000+00:00"),
    (isoformat(T0), isoformat(T0)),
    (isoformat(T0.replace(microsecond=0)), "2026-11-22T23:30:00.000000+00:00"),
])
def test_dates_normalise_to_one_format(given, canonical):
    assert normalize_date(given) == canonical
    assert store_date(given) == canonical


@pytest.mark.parametrize("bad", ["yesterday", "2026-13-01", "2026-11-22T25:00", ""])
def test_bad_dates(bad):
    with pytest.raises(ValueError, match="not an ISO-8601 date"):
        normalize_date(bad)
    assert store_date(bad) == bad
