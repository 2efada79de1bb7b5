"""DictDB's memory bounds (no sockets): culling by record count and buffer bytes, amortized."""

from array import array

import pytest
from test_records import iso

from kernelpar.controller.records import DictDB


def test_dictdb_culls_completed_records_by_count_in_batches():
    db = DictDB(record_limit=100, cull_fraction=0.2)
    for i in range(100):
        db.add_record(f"p{i}", {"submitted": iso(i)})  # pending: never culled
    for i in range(50):
        db.update_record(f"p{i}", {"completed": iso(200 + i)})
    assert len(db) == 100
    db.add_record("x", {"submitted": iso(300)})
    assert len(db) == 80  # culled down to (1 - cull_fraction) of the limit at once
    assert "p0" not in db and "p20" not in db and "p21" in db and "p99" in db and "x" in db
    for i in range(20):
        db.add_record(f"y{i}", {"submitted": iso(400 + i)})
    assert len(db) == 100  # no culling until over the limit again
    with pytest.raises(KeyError, match="culled.*'p3'"):
        db.get_records(["p3"])


def test_dictdb_never_culls_pending_records():
    db = DictDB(record_limit=5, cull_fraction=0.2)
    for i in range(8):
        db.add_record(f"p{i}", {"submitted": iso(i)})
    assert len(db) == 8
    db.update_record("p2", {"completed": iso(10)})
    assert "p2" not in db and len(db) == 7
    db.update_record("p1", {"completed": iso(11)})
    db.update_record("p0", {"completed": iso(12)})
    assert "p1" not in db and "p0" not in db


def test_dictdb_culls_oldest_completed_by_size():
    db = DictDB(record_limit=1000, size_limit=1000, cull_fraction=0.5)
    for i in range(9):
        db.add_record(f"r{i}", {"submitted": iso(i), "buffers": [bytes(100)]})
        db.update_record(f"r{i}", {"completed": iso(i), "result_buffers": [bytes(10)]})
    assert db.nbytes == 990 and len(db) == 9
    db.add_record("pending", {"submitted": iso(20), "buffers": [bytes(50)]})
    assert db.nbytes <= 500  # down to (1 - cull_fraction) of size_limit
    assert "r0" not in db and "r4" not in db and "r5" in db and "pending" in db
    assert db.get_record("pending")["buffers"] == [bytes(50)]


def test_dictdb_strips_pending_buffers_when_only_pending_records_are_heavy():
    db = DictDB(record_limit=1000, size_limit=1000, cull_fraction=0.1)
    db.add_record("light", {"submitted": iso(0)})
    db.update_record("light", {"completed": iso(1)})  # no bytes: not culled for size
    db.add_record("old", {"submitted": iso(1), "buffers": [bytes(600)]})
    db.add_record("new", {"submitted": iso(2), "buffers": [bytes(600)]})
    assert db.nbytes == 600 and "light" in db
    assert db.get_record("old")["buffers"] == [] and db.get_record("new")["buffers"] == [bytes(600)]
    assert len(db) == 3


def test_dictdb_accounting_follows_updates_and_drops():
    db = DictDB(size_limit=10**6)
    db.add_record("a", {"buffers": [memoryview(array("d", [0.0] * 10))]})
    assert db.nbytes == 80
    db.update_record("a", {"result_buffers": [b"x" * 20], "completed": iso(1)})
    assert db.nbytes == 100
    db.update_record("a", {"buffers": []})
    assert db.nbytes == 20
    db.add_record("a", {"buffers": [b"y"]})  # replaced
    assert db.nbytes == 1
    db.drop_matching_records({"msg_id": "a"})
    assert db.nbytes == 0 and len(db) == 0


def test_dictdb_culling_is_amortized(monkeypatch):
    db = DictDB(record_limit=1000, cull_fraction=0.1)
    calls = []
    real = db._cull
    monkeypatch.setattr(db, "_cull", lambda: (calls.append(1), real()))
    for i in range(11000):
        db.add_record(str(i), {"submitted": iso(i), "buffers": [b"x"]})
        db.update_record(str(i), {"completed": iso(i)})
    assert len(db) <= 1000
    assert len(calls) <= 110  # once per 100 records, not once per record


def test_dictdb_culling_is_amortized_while_more_tasks_than_the_limit_are_pending(monkeypatch):
    db = DictDB(record_limit=1000, cull_fraction=0.1)
    for i in range(3000):
        db.add_record(str(i), {"submitted": iso(i)})
    calls = []
    real = db._cull
    monkeypatch.setattr(db, "_cull", lambda: (calls.append(1), real()))
    for i in range(3000):
        db.update_record(str(i), {"completed": iso(i)})
    assert len(db) <= 1000
    assert len(calls) <= 31  # once per 100 completions, not once per completion
    assert "2999" in db and "0" not in db


def test_dictdb_rejects_bad_limits():
    with pytest.raises(ValueError):
        DictDB(record_limit=0)
    with pytest.raises(ValueError):
        DictDB(cull_fraction=1.0)
