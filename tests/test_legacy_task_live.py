"""The legacy TaskClient against live clusters: one test per checklist item (TC-01..TC-16,
TR-01, spec §12), the §8.3 session, a LoadBalancedView and a TaskClient on one cluster,
task ids across two clients, and an engine dying under TaskClient tasks.

Most tests use the session cluster (2 engines) through ``TaskClient.from_client(rc)``.  Each
engine gets the property ``pin`` (its id), so a task with ``depend=on(k)`` runs on engine k
only: 0.10's own tests used one engine where the namespace must persist between tasks.  The
engines are reset at the start and cleared at the end of the module.  Tests that need task
ids from 0, kill an engine or wait for the 30 s idle timeout use private clusters.

Nothing relies on timing: a task that must still be running waits for a file the test
creates once the controller shows it running (or queued behind it).
"""

import os
import re
import signal
import time
import warnings

import pytest

import kernelpar as ipp
from kernelpar.client.legacy.error import EngineError, TaskAborted, TaskTimeout
from kernelpar.client.legacy.multiengineclient import MultiEngineClient
from kernelpar.client.legacy.task import MapTask, StringTask, TaskResult
from kernelpar.client.legacy.taskclient import TaskClient

pytestmark = pytest.mark.timeout(120)

WAIT = 30.0
TIME = re.compile(r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d")


def on(engine_id):
    """A ``depend`` function accepting only engine ``engine_id`` (by its ``pin`` property)."""
    return lambda properties: properties["pin"] == engine_id


def pin_engines(mec):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # 0.10's properties are deprecated
        for eid in mec.get_ids():
            mec.set_properties({"pin": eid}, targets=eid)


@pytest.fixture(scope="module")
def pinned(rc):
    mec = MultiEngineClient.from_client(rc)
    mec.reset()
    pin_engines(mec)
    yield mec
    rc[:].clear(block=True)


@pytest.fixture
def tc(rc, pinned):
    return TaskClient.from_client(rc)


def wait_until(condition, what, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def hold(path, then="", started=None):
    """StringTask source that waits (at most 60 s) for ``path`` to exist, then runs ``then``;
    it first creates the file ``started``, if given."""
    mark = f"open({str(started)!r}, 'w').close()\n" if started else ""
    return (f"{mark}import os, time\n_deadline = time.time() + 60\n"
            f"while not os.path.exists({str(path)!r}) and time.time() < _deadline:\n    time.sleep(0.01)\n{then}")


def occupy_both_engines(tc, tmp_path, release):
    """Two tasks holding engines 0 and 1 until ``release`` exists; their ids, once both run.

    They are known to run when their code has started: "pending" alone is not enough,
    since a task first sent to the other engine is pending there until its ``depend``
    refuses it, and then waits again.
    """
    started = [tmp_path / f"started-{k}" for k in (0, 1)]
    holders = [tc.run(StringTask(hold(release, started=started[k]), depend=on(k))) for k in (0, 1)]
    wait_until(lambda: all(path.exists() for path in started), "both engines to be busy")
    return holders


def running(tc, taskid):
    return taskid in tc.queue_status(verbose=True)["pending"]


# -- TC-01, TC-02, TC-03, TR-01 ---------------------------------------------------------------------


def test_tc01_run_returns_consecutive_ids_and_block_returns_the_result(tc):
    ids = [tc.run(StringTask("a = 5")) for _ in range(4)]
    assert all(isinstance(i, int) for i in ids) and ids == list(range(ids[0], ids[0] + 4))
    tr = tc.run(StringTask("a = 6", pull="a"), block=True)
    assert isinstance(tr, TaskResult) and tr.ns.a == 6 and tr.taskid == ids[-1] + 1
    with pytest.raises(AssertionError, match="task must be a Task object!"):
        tc.run("a = 5")
    task = MapTask(lambda x: abs(x), (-3,))
    assert tc.run(task, block=True) == 3 and task.taskid == ids[-1] + 2


def test_tc02_get_task_result_none_while_running_then_the_result(tc, tmp_path):
    release = tmp_path / "release"
    taskid = tc.run(StringTask(hold(release, "b = 7"), pull="b"))
    wait_until(lambda: running(tc, taskid), "the task to run")
    assert tc.get_task_result(taskid) is None and tc.get_task_result(taskid, block=False) is None
    release.touch()
    assert tc.get_task_result(taskid, block=True).ns.b == 7
    assert tc.get_task_result(taskid).results == {"b": 7}  # kept until clear()
    with pytest.raises(IndexError, match="task ID not registered: 10000000"):
        tc.get_task_result(10_000_000)
    for huge in (2**63, 2**64, 10**30):
        with pytest.raises(IndexError, match=f"task ID not registered: {huge}"):
            tc.get_task_result(huge)
    assert tc.clear([taskid]) == 1
    with pytest.raises(IndexError, match=f"task ID not registered: {taskid}"):
        tc.get_task_result(taskid)
    with pytest.raises(TypeError):
        tc.get_task_result("0")


def test_tc03_string_task_push_execute_pull_and_tr01_result_attributes(tc):
    tr = tc.run(StringTask("c = a * b\nd = str(c)", push=dict(a=6, b=7), pull=("c", "d", "a")), block=True)
    assert tr.results == {"c": 42, "d": "42", "a": 6} and tr.keys == ["c", "d", "a"]
    assert tr.ns.c == tr["c"] == 42 and tr.ns["d"] == "42"
    assert tr.engineid in (0, 1) and isinstance(tr.taskid, int) and tr.failure is None
    assert TIME.fullmatch(tr.submitted) and TIME.fullmatch(tr.completed) and tr.submitted <= tr.completed
    assert isinstance(tr.duration, float) and 0 <= tr.duration < WAIT
    assert repr(tr) == f"TaskResult[ID:{tr.taskid}]:{{'c': 42, 'd': '42', 'a': 6}}"
    assert repr(tr.ns) == "NS{'a': 6, 'c': 42, 'd': '42'}"
    with pytest.raises(Exception, match="cannot be changed"):
        tr.ns = None
    assert tc.run(StringTask("x = 1"), block=True).results == {}


# -- TC-04, TC-05, TC-06 ----------------------------------------------------------------------------


def test_tc04_a_failed_string_task_holds_its_original_exception(tc):
    for source, pull, etype in (("1/0", (), ZeroDivisionError), ("", "nowhere", NameError),
                                ("7=5", (), SyntaxError)):
        tr = tc.run(StringTask(source, pull=pull), block=True)  # never raises
        assert tr.failure is not None and tr.failure.type is etype and tr.results == {}
        for access in (lambda: tr.ns, lambda: tr["x"], tr.raise_exception, tr.failure.raiseException):
            with pytest.raises(etype):
                access()
        assert etype.__name__ in tr.failure.getTraceback()
        assert repr(tr).startswith(f"TaskResult[ID:{tr.taskid}]:<Failure {etype.__name__}")
    assert "name nowhere is not defined" in str(tc.run(StringTask("", pull="nowhere"), block=True).failure.value)


def test_tc05_map_task_raw_value_unwrapped_failure_and_helper_names(tc, rc):
    assert tc.run(MapTask(lambda x: 2 * x, (10,)), block=True) == 20
    assert tc.run(MapTask(lambda: 20), block=True) == 20
    assert tc.run(MapTask(lambda x: x, (), {"x": 20}), block=True) == 20
    assert tc.run(MapTask(lambda: None), block=True) is None
    taskid = tc.run(MapTask(lambda x: 1 / x, (0,)))
    with pytest.raises(ZeroDivisionError) as info:
        tc.get_task_result(taskid, block=True)
    assert info.value._ipython_engine_info["engineid"] in (0, 1)
    with pytest.raises(ZeroDivisionError):  # raised again, from the kept result
        tc.get_task_result(taskid)
    tc.run(MapTask(lambda a, b=2: a * b, (21,), depend=on(0)), block=True)
    names = rc[0].pull(["_ipython_task_result", "_ipython_task_args", "_ipython_task_kwargs"], block=True)
    assert names == [42, (21,), {}] and callable(rc[0].pull("_ipython_task_function", block=True))


def test_tc05_functions_see_the_engine_namespace_as_globals(tc, pinned):
    pinned.execute("import math\nscale = 3", targets=[0, 1])
    assert tc.run(MapTask(lambda x: math.floor(x) * scale, (2.5,)), block=True) == 6  # noqa: F821

    def offset(x, k=10):  # a default argument and a closure travel too (0.10 lost them)
        return x + k + base

    base = 100
    assert tc.map(offset, [1, 2]) == [111, 112]


def test_tc06_bad_tasks_are_refused_before_sending(tc):
    with pytest.raises(TypeError, match="a task function must be a FunctionType"):
        MapTask("asdfasdf")
    with pytest.raises(TypeError, match="a task args must be a list or tuple"):
        MapTask(lambda x: x, 10)
    with pytest.raises(TypeError, match="a task kwargs must be a dict"):
        MapTask(lambda x: x, (10,), 30)
    with pytest.raises(TypeError, match="push must be a dict"):
        StringTask("a", push=5)
    task = StringTask("a = 1")
    task.retries = "3"
    with pytest.raises(ValueError, match="retries"):
        tc.run(task)


# -- TC-07, TC-08 (namespace persistence, retries, recovery) --------------------------------------------


def test_tc07_clear_before_and_after_and_the_namespace_persisting_otherwise(tc, pinned):
    pinned.execute("b = 1", targets=[0, 1])
    tr = tc.run(StringTask("a = 1", clear_before=True, pull="b", clear_after=True), block=True)
    assert tr.failure.type is NameError  # b was cleared before
    assert all("a" not in keys and "b" not in keys for keys in pinned.keys(targets=[tr.engineid]))
    pin_engines(pinned)  # the resets cleared the properties too
    tc.run(StringTask("kept = 41", depend=on(1)), block=True)
    assert tc.run(StringTask("kept += 1", pull="kept", depend=on(1)), block=True).ns.kept == 42
    tr = tc.run(StringTask("1/0", clear_after=True, depend=on(1)), block=True)
    assert tr.failure.type is ZeroDivisionError and "kept" not in pinned.keys(targets=1)[0]  # even on failure
    pin_engines(pinned)


def test_tc08_retries_requeue_and_the_namespace_persists_between_attempts(tc, pinned):
    # 0.10's test_simple_retries, on one engine
    pinned.execute("i = 0", targets=1)
    first = tc.run(StringTask("i += 1\nassert i == 16", pull="i", retries=10, depend=on(1)), block=True)
    with pytest.raises(AssertionError):
        first.ns.i
    assert pinned.pull("i", targets=1) == [11]  # one attempt and ten retries
    second = tc.run(StringTask("i += 1\nassert i == 16", pull="i", retries=10, depend=on(1)), block=True)
    assert second.ns.i == 16


def test_tc08_recovery_task_runs_under_the_same_id(tc):
    # 0.10's test_recovery_tasks
    recovery = StringTask("i = 16", pull="i")
    task = StringTask("raise Exception", recovery_task=recovery, retries=2)
    taskid = tc.run(task)
    tr = tc.get_task_result(taskid, block=True)
    assert tr.ns.i == 16 and tr.taskid == taskid == task.taskid
    # a MapTask recovered by a StringTask gives the StringTask's result (and the reverse)
    assert tc.run(MapTask(lambda: 1 / 0, recovery_task=StringTask("r = 1", pull="r")), block=True).ns.r == 1
    assert tc.run(StringTask("1/0", recovery_task=MapTask(lambda: "mapped")), block=True) == "mapped"
    with pytest.raises(ZeroDivisionError):  # every stage failed: the last one's failure
        tc.run(StringTask("1/0", recovery_task=MapTask(lambda: 1 / 0)), block=True)


# -- TC-09, TC-10 (depend, TaskRejectError) -------------------------------------------------------------


def test_tc09_depend_gates_engines_with_their_properties(tc, pinned):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        pinned.set_properties({"gpu": True}, targets=1)
    taskids = [tc.run(MapTask(lambda: id, depend=lambda p: p.get("gpu", False))) for _ in range(6)]
    assert {tc.get_task_result(t, block=True) for t in taskids} == {1}  # id: the engine's id

    def picky(properties):
        return properties["gpu"]  # KeyError on engine 0: counts as False

    assert {tc.run(MapTask(lambda: id, depend=picky), block=True) for _ in range(4)} == {1}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        pinned.del_properties("gpu", targets=1)


def test_tc09_a_task_no_engine_accepts_waits_for_a_property_to_change(tc, pinned):
    taskid = tc.run(MapTask(lambda: id, depend=lambda p: p.get("ready", False)))
    wait_until(lambda: taskid in tc.queue_status(verbose=True)["scheduled"], "the task to wait")
    assert tc.get_task_result(taskid) is None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        pinned.set_properties({"ready": True}, targets=0)
    assert isinstance(tc.spin(), bool)  # retry now rather than after the refusal penalty
    assert tc.get_task_result(taskid, block=True) == 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        pinned.del_properties("ready", targets=0)


def test_tc10_rejected_tasks_are_retried_until_an_engine_accepts_them(tc, pinned):
    # taskreject.py: every engine rejects until run=True is set on one of them; no retries needed
    pinned.execute("from kernelpar.errors import TaskRejectError\nrun = False\nrejected = 0", targets=[0, 1])

    def map_task():
        global rejected
        if not run:  # noqa: F821
            rejected += 1
            raise TaskRejectError("task dependency not met")  # noqa: F821
        return id

    taskids = [tc.run(MapTask(map_task)) for _ in range(4)]
    wait_until(lambda: all(n >= 2 for n in pinned.pull("rejected", targets=[0, 1])), "both engines to reject")
    assert all(tc.get_task_result(t) is None for t in taskids)
    pinned.execute("run = True", targets=1)
    assert [tc.get_task_result(t, block=True) for t in taskids] == [1] * 4


# -- TC-11 .. TC-16 --------------------------------------------------------------------------------------


def test_tc11_abort_queued_running_completed(tc, tmp_path):
    release = tmp_path / "release"
    holders = occupy_both_engines(tc, tmp_path, release)
    queued = tc.run(StringTask("q = 1", pull="q"))
    assert tc.queue_status(verbose=True)["scheduled"].count(queued) == 1
    assert tc.abort(queued) is None
    with pytest.raises(TaskAborted):
        tc.get_task_result(queued, block=True)
    with pytest.raises(IndexError, match="Task Already Aborted"):
        tc.abort(queued)
    assert tc.abort(holders[0]) is None  # running: its result will be replaced
    with pytest.raises(IndexError, match="Task Already Aborted"):
        tc.abort(holders[0])
    release.touch()
    with pytest.raises(TaskAborted):
        tc.get_task_result(holders[0], block=True)
    assert tc.get_task_result(holders[1], block=True).failure is None
    with pytest.raises(IndexError, match="Task Already Completed"):
        tc.abort(holders[1])
    with pytest.raises(IndexError, match="No task #10000000"):
        tc.abort(10_000_000)
    with pytest.raises(TypeError, match="an integer task id expected: 'asdfadsf'"):
        tc.abort("asdfadsf")


def test_tc12_barrier_waits_and_swallows_errors(tc):
    ids = [tc.run(MapTask(lambda x: 1 / x, (x,))) for x in (1, 0, 2)]
    assert tc.barrier(ids) is None and tc.barrier(ids[0]) is None
    assert tc.barrier([10_000_000]) is None
    assert tc.get_task_result(ids[2]) == 0.5


def test_tc13_queue_status_counts_and_ids(tc, tmp_path):
    release = tmp_path / "release"
    holders = occupy_both_engines(tc, tmp_path, release)
    queued = [tc.run(StringTask("w = 1")) for _ in range(3)]
    status = tc.queue_status()
    assert set(status) == {"scheduled", "pending", "succeeded", "failed"}
    assert all(isinstance(v, int) for v in status.values()) and status["scheduled"] >= 3 and status["pending"] >= 2
    verbose = tc.queue_status(verbose=True)
    assert set(queued) <= set(verbose["scheduled"]) and set(holders) <= set(verbose["pending"])
    release.touch()
    tc.barrier(holders + queued)
    ok = tc.run(StringTask("w = 2"), block=True)
    bad = tc.run(StringTask("1/0"), block=True)
    mapped = tc.run(MapTask(lambda: 1))
    tc.barrier(mapped)
    verbose = tc.queue_status(verbose=True)
    assert ok.taskid in verbose["succeeded"] and bad.taskid in verbose["failed"]
    # 0.10's quirk: MapTask results are counted in neither
    assert mapped not in verbose["succeeded"] + verbose["failed"]


def test_tc14_clear_counts_and_refuses_unknown_ids(tc):
    ids = [tc.run(MapTask(lambda x: x, (x,))) for x in range(3)]
    tc.barrier(ids)
    assert tc.clear(ids[:2]) == 2
    with pytest.raises(IndexError):
        tc.get_task_result(ids[0])
    with pytest.raises(KeyError, match=r"Cleared 1 results, but no tasks found for ids: \[10000000\]"):
        tc.clear([ids[2], 10_000_000])
    tc.run(MapTask(lambda: 1), block=True)
    assert tc.clear() >= 1 and tc.clear() == 0


def test_tc15_map_mapper_and_parallel(tc):
    assert tc.map(lambda x: x**10, range(32)) == [x**10 for x in range(32)]
    assert tc.map(lambda x, y: x + y, [1, 2], (10, 20)) == [11, 22]
    assert tc.map(abs, []) == [] and tc.mapper(block=False).map(abs, []) == []
    taskids = tc.mapper(block=False).map(lambda x: 2 * x, range(10))
    assert taskids == list(range(taskids[0], taskids[0] + 10))
    assert [tc.get_task_result(t, block=True) for t in taskids] == [2 * x for x in range(10)]
    with pytest.raises(ValueError):
        tc.map(lambda x, y: x, [1, 2], [1])
    with pytest.raises(ZeroDivisionError):
        tc.map(lambda x: 1 / x, [1, 0])
    with pytest.raises(TypeError):
        tc.map(abs, [1])

    @tc.parallel()
    def f(x):
        return 10.0 * x**4

    assert f(range(32))[:3] == [0.0, 10.0, 160.0] and len(f(range(32))) == 32


def test_tc16_spin_and_task_controller(tc):
    assert tc.spin() in (True, False)
    assert "task controller" in repr(tc.task_controller)
    assert tc.block is True


# -- both APIs, two clients ------------------------------------------------------------------------------


def test_a_load_balanced_view_and_a_task_client_on_one_cluster(tc, rc):
    lv = rc.load_balanced_view()
    ar = lv.map_async(lambda x: x + 1, range(50))
    taskids = tc.mapper(block=False).map(lambda x: x * 3, range(50))
    assert ar.get(WAIT) == list(range(1, 51))
    assert [tc.get_task_result(t, block=True) for t in taskids] == [x * 3 for x in range(50)]
    assert lv.apply_sync(lambda: 5) == 5 and tc.run(MapTask(lambda: 6), block=True) == 6


def test_task_ids_are_consecutive_across_two_task_clients(tc, cluster):
    other_client = cluster.connect_client_sync()
    try:
        other = TaskClient.from_client(other_client)
        ids = []
        for i in range(6):
            ids.append((tc if i % 2 else other).run(StringTask(f"n = {i}", pull="n")))
        assert ids == list(range(ids[0], ids[0] + 6))
        # each can fetch the other's results (from the controller's records)
        assert other.get_task_result(ids[1], block=True).ns.n == 1
        assert tc.get_task_result(ids[0], block=True).ns.n == 0
        assert tc.get_task_result(ids[2], block=True).taskid == ids[2]
        mapped = other.run(MapTask(lambda: 1 / 0))
        with pytest.raises(ZeroDivisionError):
            tc.get_task_result(mapped, block=True)
    finally:
        other_client.close()


# -- private clusters --------------------------------------------------------------------------------------


def fast_cluster(tmp_path, n, *args):
    return ipp.Cluster(n=n, profile_dir=str(tmp_path / "profile_tc"),
                       controller_args=["--ping", "100", "--ping-misses", "3", *args])


@pytest.mark.slow
def test_parallel_task_doc_session_through_a_furl_file(tmp_path):
    """§8.3: 1000 StringTasks "a = %i", barrier, results, ``task_results[73]``; FURL file."""
    furl_file = tmp_path / "ipcontroller-tc.furl"
    with fast_cluster(tmp_path, 2, "--task-furl-file", str(furl_file)) as rc:
        rc.wait_for_engines(2, timeout=60)
        tc = TaskClient(str(furl_file))
        assert tc.map(lambda x: x**10, range(32)) == [x**10 for x in range(32)]
        tc.clear()
        tasklist = [StringTask("a = %i" % n, pull="a") for n in range(1000)]
        taskids = [tc.run(t) for t in tasklist]
        assert taskids == list(range(32, 1032))
        assert tc.barrier(taskids) is None
        task_results = [tc.get_task_result(t) for t in taskids]
        tr = task_results[73]
        assert repr(tr) == "TaskResult[ID:105]:{'a': 73}"
        assert tr.results["a"] == tr.ns.a == 73 and tr.engineid in (0, 1)
        assert TIME.fullmatch(tr.submitted) and TIME.fullmatch(tr.completed) and tr.duration >= 0
        status = tc.queue_status()
        assert status == {"scheduled": 0, "pending": 0, "succeeded": 1000, "failed": 0}
        assert TaskClient(str(furl_file))._client is tc._client  # one connection per FURL


@pytest.mark.slow
def test_an_engine_dying_under_task_client_tasks(tmp_path):
    """A task whose engine is killed is retried on another engine; without retries it fails: nothing hangs."""
    release, marker = tmp_path / "release", tmp_path / "pid"
    with fast_cluster(tmp_path, 2) as rc:
        rc.wait_for_engines(2, timeout=60)
        pids = {rc[eid].apply_sync(os.getpid): eid for eid in rc.ids}
        tc = TaskClient.from_client(rc)
        source = f"import os\nopen({str(marker)!r}, 'w').write(str(os.getpid()))\n" + hold(release, "where = id")
        taskid = tc.run(StringTask(source, pull="where", retries=1))
        wait_until(lambda: marker.exists() and marker.read_text(), "the task to start")
        victim = pids[int(marker.read_text())]
        os.kill(int(marker.read_text()), signal.SIGKILL)
        wait_until(lambda: victim not in rc.ids, "the dead engine to unregister")
        release.touch()
        tr = tc.get_task_result(taskid, block=True)
        survivor = rc.ids[0]
        assert tr.failure is None and tr.ns.where == survivor != victim
        doomed = tc.run(MapTask(lambda: __import__("time").sleep(60)))
        wait_until(lambda: running(tc, doomed), "the doomed task to run")
        os.kill(next(pid for pid, eid in pids.items() if eid == survivor), signal.SIGKILL)
        with pytest.raises(EngineError):
            tc.get_task_result(doomed, block=True)


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_tc09_unmet_dependencies_time_out_after_30_seconds(tmp_path):
    with fast_cluster(tmp_path, 2) as rc:
        rc.wait_for_engines(2, timeout=60)
        tc = TaskClient.from_client(rc)
        taskid = tc.run(StringTask("a = 1", depend=lambda p: False))
        mapped = tc.run(MapTask(lambda: 1, depend=lambda p: 1 / 0))
        assert tc.spin() in (True, False) and tc.get_task_result(taskid) is None  # waiting, not failed
        with pytest.raises(TaskTimeout, match=f"task {taskid} failed to execute due to unmet dependencies for 30 "
                                              "seconds"):
            tc.get_task_result(taskid, block=True)
        with pytest.raises(TaskTimeout, match=f"task {mapped} failed"):
            tc.get_task_result(mapped, block=True)
        assert tc.run(MapTask(lambda: 2), block=True) == 2


def test_the_idle_timeout_is_a_controller_option(tmp_path):
    with fast_cluster(tmp_path, 1, "--task-idle-timeout", "1.5") as rc:
        rc.wait_for_engines(1, timeout=60)
        tc = TaskClient.from_client(rc)
        taskid = tc.run(StringTask("a = 1", depend=lambda p: False))
        with pytest.raises(TaskTimeout, match=f"task {taskid} failed to execute due to unmet dependencies for 1.5 "
                                              "seconds"):
            tc.get_task_result(taskid, block=True)


@pytest.mark.slow
def test_the_pure_scheme_cannot_number_tasks(tmp_path):
    with fast_cluster(tmp_path, 1, "--scheme", "pure") as rc:
        with pytest.raises(RuntimeError, match="task scheme is 'pure'"):
            TaskClient.from_client(rc)
