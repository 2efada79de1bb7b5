"""Task records on a real hub: queries, results from another client, resubmission,
purging, and SQLite records that outlive the controller."""

import datetime
import os
import time

import pytest

import kernelpar as ipp

TIMEOUT = 30


def test_db_query_history_and_result_status(rc):
    ar = rc[0].apply_async(lambda: 41 + 1)
    ar.get(TIMEOUT)
    msg_id = ar.msg_ids[0]
    assert msg_id in rc.hub_history()
    [record] = rc.db_query({"msg_id": msg_id}, keys=["msg_id", "completed", "engine_uuid", "queue"])
    assert record["queue"] == "mux" and record["engine_uuid"] == rc._dispatcher.engines[0]
    assert isinstance(record["completed"], datetime.datetime) and record["completed"].tzinfo is not None
    since = record["completed"] - datetime.timedelta(seconds=1)
    assert msg_id in [r["msg_id"] for r in rc.db_query({"completed": {"$gt": since}}, keys=["msg_id"])]
    assert msg_id not in [r["msg_id"] for r in rc.db_query({"completed": {"$lt": since}}, keys=["msg_id"])]
    lb = rc.load_balanced_view().apply_async(os.getpid)
    lb.get(TIMEOUT)
    [lb_record] = rc.db_query({"msg_id": lb.msg_ids[0]}, keys=["queue", "engine_uuid"])
    assert lb_record["queue"] == "task" and lb_record["engine_uuid"] in rc._dispatcher.engines.values()
    assert rc.result_status([msg_id])["completed"] == [msg_id]


def _wait_for_record(rc, msg_id, key, timeout=TIMEOUT):
    # output reaches the hub on iopub, independently of the reply the client waited for
    deadline = time.monotonic() + timeout
    while True:
        [record] = rc.db_query({"msg_id": msg_id})
        if record[key] is not None or time.monotonic() > deadline:
            return record
        time.sleep(0.05)


def noisy(x):
    import sys

    print("out", x)
    print("err", x, file=sys.stderr)
    if x < 0:
        raise ValueError(x)
    return x


def test_records_keep_output_label_start_and_error(rc, cluster):
    lview = rc.load_balanced_view()
    for view, queue in ((rc[0], "mux"), (lview, "task")):
        with view.temp_flags(label=f"lab-{queue}"):
            ok = view.apply_async(ipp.interactive(noisy), 1)
            bad = view.apply_async(ipp.interactive(noisy), -1)
        ok.get(TIMEOUT)
        with pytest.raises(ipp.RemoteError):
            bad.get(TIMEOUT)
        record = _wait_for_record(rc, ok.msg_ids[0], "stderr")
        assert (record["queue"], record["label"], record["stdout"], record["stderr"]) == (
            queue, f"lab-{queue}", "out 1\n", "err 1\n")
        assert record["submitted"] <= record["started"] <= record["completed"] and record["error"] is None
        quiet = view.apply_async(abs, -1)
        quiet.get(TIMEOUT)
        [silent] = rc.db_query({"msg_id": quiet.msg_ids[0]}, keys=["stdout", "stderr"])
        assert (silent["stdout"], silent["stderr"]) == ("", "")  # as ipyparallel's: text, not None
        failed = _wait_for_record(rc, bad.msg_ids[0], "stderr")
        assert failed["error"]["ename"] == "ValueError" and failed["stdout"] == "out -1\n"
        found = rc.db_query({"label": f"lab-{queue}"}, keys=["msg_id"])
        assert sorted(r["msg_id"] for r in found) == sorted(ok.msg_ids + bad.msg_ids)
    ar = rc[0].execute("print('x')\n6 * 7", silent=False)
    ar.get(TIMEOUT)
    record = _wait_for_record(rc, ar.msg_ids[0], "execute_result")
    assert record["execute_input"] == "print('x')\n6 * 7" and record["stdout"] == "x\n"
    assert record["execute_result"]["data"]["text/plain"] == "42"
    other = cluster.connect_client_sync()
    try:
        from_hub = other.get_result(ok.msg_ids[0])
        assert from_hub.get(TIMEOUT) == 1 and from_hub.stdout == "out 1\n"
    finally:
        other.close()


def test_a_bad_query_is_a_clear_error_and_the_hub_keeps_serving(rc):
    with pytest.raises(ipp.RemoteError, match=r"\$nope"):
        rc.db_query({"msg_id": {"$nope": 1}})
    with pytest.raises(ipp.RemoteError):
        rc.db_query({"no_such_key": 1})
    assert rc[0].apply_sync(lambda: "still serving") == "still serving"


def test_get_result_from_a_second_client_and_resubmit(rc, cluster):
    ar = rc.load_balanced_view().apply_async(lambda x: x * 3, 14)
    assert ar.get(TIMEOUT) == 42
    other = cluster.connect_client_sync()
    try:
        hub_ar = other.get_result(ar.msg_ids[0])
        assert isinstance(hub_ar, ipp.AsyncHubResult) and hub_ar.get(TIMEOUT) == 42
        again = other.resubmit(ar.msg_ids[0])
        assert again.get(TIMEOUT) == [42]
        assert again.msg_ids[0] != ar.msg_ids[0]
    finally:
        other.close()


def test_resubmitting_a_task_with_a_large_result(rc):
    # the engine used to send the result through /dev/shm to the first client, which
    # never saw this reply: the hub had no copy and the file stayed behind
    big = rc[0].apply_async(lambda n: b"z" * n, 2 * 2**20)
    assert len(big.get(TIMEOUT)) == 2 * 2**20
    shm_files = set(os.listdir("/dev/shm")) if os.path.isdir("/dev/shm") else set()
    assert [len(r) for r in rc.resubmit(big.msg_ids).get(TIMEOUT)] == [2 * 2**20]
    if os.path.isdir("/dev/shm"):
        assert not {f for f in set(os.listdir("/dev/shm")) - shm_files if f.startswith("kernelpar-")}


def test_purge(rc):
    ar = rc[1].apply_async(lambda: "purge me")
    ar.get(TIMEOUT)
    rc.purge_hub_results(ar.msg_ids)
    assert rc.db_query({"msg_id": ar.msg_ids[0]}) == []
    rc.purge_local_results(ar)
    assert ar.msg_ids[0] not in rc.results


def test_sqlite_records_survive_a_controller_restart(tmp_path):
    profile = str(tmp_path / "profile_sqlite")
    args = ["--sqlitedb", "--reuse", "--ping", "200"]
    with ipp.Cluster(n=1, profile_dir=profile, controller_args=args) as rc:
        rc.wait_for_engines(1, timeout=TIMEOUT)
        ar = rc.load_balanced_view().apply_async(lambda: "kept")
        assert ar.get(TIMEOUT) == "kept"
        msg_id = ar.msg_ids[0]
    restarted = ipp.Cluster(n=0, profile_dir=profile, controller_args=args)
    restarted.start_controller_sync()
    try:
        rc = restarted.connect_client_sync()
        assert msg_id in rc.hub_history()
        assert rc.get_result(msg_id).get(TIMEOUT) == "kept"
        [record] = rc.db_query({"msg_id": msg_id}, keys=["queue"])
        assert record["queue"] == "task"
        rc.close()
    finally:
        restarted.stop_cluster_sync()
