"""Load balancing against a real controller and engines: LoadBalancedView, flags,
dependencies, records of the task channel, engine failure, the 'pure' scheme."""

import os
import signal
import time

import pytest

import kernelpar as ipp
from kernelpar.errors import RemoteError

TIMEOUT = 30


# module-level functions are pickled by reference; engines cannot import this module
@ipp.interactive
def pid():
    import os

    return os.getpid()


@ipp.interactive
def slow_pid(t):
    import os
    import time

    time.sleep(t)
    return os.getpid()


@pytest.fixture
def lv(rc):
    view = rc.load_balanced_view()
    yield view
    view.wait(timeout=TIMEOUT)


def fast_cluster(tmp_path, n=2, **kwargs):
    return ipp.Cluster(n=n, profile_dir=str(tmp_path / "profile_lb"), controller_args=["--ping", "100",
                       "--ping-misses", "3", *kwargs.pop("controller_args", [])], **kwargs)


# -- the view ------------------------------------------------------------------------


def test_apply_is_one_task_with_a_bare_result(lv, rc):
    assert lv.apply_sync(lambda x: x * 2, 21) == 42
    ar = lv.apply_async(pid)
    assert ar.get(TIMEOUT) in {e.apply_sync(pid) for e in rc}
    assert isinstance(ar.engine_id, int) and ar.metadata["engine_id"] == ar.engine_id
    assert ar.msg_ids[0] in lv.history and not lv.outstanding


def test_map_chunks_order_and_iteration(lv):
    assert lv.map_sync(lambda x, y: x + y, range(10), range(0, 20, 2)) == [3 * i for i in range(10)]
    ar = lv.map_async(lambda x: x * x, range(7), chunksize=3)
    assert len(ar.msg_ids) == 3 and ar.get(TIMEOUT) == [i * i for i in range(7)] and len(ar) == 7
    ar = lv.map_async(slow_pid, [0.4, 0.0, 0.0], ordered=False)
    assert sorted(ar) == sorted(ar.get(TIMEOUT))
    assert lv.map_sync(lambda x: x, []) == []
    with pytest.raises(ValueError):
        lv.map(abs, [1], chunksize=0)


def test_map_errors_and_return_exceptions(lv):
    def inv(x):
        return 1 / x

    with pytest.raises(ipp.CompositeError) as info:
        lv.map_sync(inv, [1, 0, 2])
    assert "ZeroDivisionError" in str(info.value)
    out = lv.map(inv, [1, 0], block=True, return_exceptions=True)
    assert out[0] == 1.0 and isinstance(out[1], RemoteError) and out[1].ename == "ZeroDivisionError"


def test_imap_consumes_an_infinite_iterator_lazily_and_cancels(lv):
    def naturals():
        n = 0
        while True:
            yield n
            n += 1

    it = lv.imap(lambda x: x + 1, naturals(), max_outstanding=2)
    assert [next(it) for _ in range(5)] == [1, 2, 3, 4, 5]
    it.cancel()
    rest = list(it)  # what was submitted before the cancel (in order), then the end
    assert rest == list(range(6, 6 + len(rest)))
    assert list(lv.imap(abs, iter([-1, -2, -3]), ordered=False)) in ([1, 2, 3], [1, 3, 2], [2, 1, 3], [2, 3, 1],
                                                                    [3, 1, 2], [3, 2, 1])


def test_executor(lv, rc):
    with lv.executor as ex:
        assert ex.submit(abs, -3).result(TIMEOUT) == 3
        assert list(ex.map(abs, [-1, -2])) == [1, 2]
    with rc.executor() as ex:
        assert ex.submit(pow, 2, 5).result(TIMEOUT) == 32


def test_parallel_decorator(lv):
    # .map: one call per element; a plain call: f on each task's share (chunksize elements)
    assert lv.parallel(block=True)(lambda x: x * 2).map(range(4)) == [0, 2, 4, 6]
    assert lv.parallel(block=True, chunksize=3)(lambda x: x + 1).map(list(range(7))) == list(range(1, 8))
    assert lv.parallel(block=True)(lambda x: x * 2)([0, 1, 2]) == [0, 0, 1, 1, 2, 2]
    assert lv.parallel(block=True, chunksize=3)(lambda x: [len(x)])(list(range(7))) == [3, 2, 2]
    assert lv.parallel(block=True, dist="r", chunksize=3)(list)(list(range(7))) == list(range(7))
    ar = lv.parallel(block=False, ordered=False)(lambda x: x).map([5, 6])
    assert isinstance(ar, ipp.AsyncMapResult) and sorted(ar.get(TIMEOUT)) == [5, 6]


@pytest.mark.parametrize("flags, error", [
    ({"timeout": -1}, ValueError), ({"timeout": "soon"}, TypeError), ({"retries": -1}, ValueError),
    ({"retries": 1.5}, TypeError), ({"after": 3}, TypeError), ({"targets": "some"}, TypeError),
    ({"hwm": 3}, KeyError), ({"block": "yes"}, TypeError), ({"track": None}, TypeError),
])
def test_bad_flags_are_refused_when_set(lv, flags, error):
    with pytest.raises(error):
        lv.set_flags(**flags)
    with pytest.raises(error):
        with lv.temp_flags(**flags):
            pass
    assert lv.timeout == 0 and lv.retries == 0 and lv.after is None


# -- dependencies ----------------------------------------------------------------------


def test_after_waits_for_its_dependencies(lv):
    first = lv.apply_async(slow_pid, 0.4)
    with lv.temp_flags(after=[first]):
        second = lv.apply_async(time.time)
    started_after = second.get(TIMEOUT)
    assert first.ready() and started_after >= first.metadata["completed"].timestamp() - 0.05


def test_follow_runs_where_its_dependency_ran(lv):
    first = lv.apply_async(pid)
    where = first.get(TIMEOUT)
    with lv.temp_flags(follow=first):
        assert {lv.apply_sync(pid) for _ in range(4)} == {where}


def test_dependency_errors(lv, rc):
    with lv.temp_flags(after=["no-such-task"]):
        with pytest.raises(ipp.InvalidDependency) as info:
            lv.apply_sync(pid)
    assert isinstance(info.value, RemoteError) and info.value.ename == "InvalidDependency"

    failed = lv.apply_async(lambda: 1 / 0)
    with pytest.raises(RemoteError):
        failed.get(TIMEOUT)
    with lv.temp_flags(after=failed):  # success required, it failed
        with pytest.raises(ipp.ImpossibleDependency):
            lv.apply_sync(pid)
    with lv.temp_flags(after=ipp.Dependency(failed, success=False, failure=True)):
        assert lv.apply_sync(lambda: "ran") == "ran"

    on0, on1 = rc[0].apply_async(pid), rc[1].apply_async(pid)
    rc.wait([on0, on1], timeout=TIMEOUT)
    with lv.temp_flags(follow=ipp.Dependency([on0, on1], all=True)):
        with pytest.raises(ipp.ImpossibleDependency):
            lv.apply_sync(pid)


def test_timeout_on_an_unmet_dependency_and_abort_of_a_waiting_task(lv):
    blocker = lv.apply_async(time.sleep, 4)  # long enough that a loaded machine cannot end it first
    with lv.temp_flags(after=blocker, timeout=0.2):
        with pytest.raises(ipp.TaskTimeout):
            lv.apply_sync(pid)
    with lv.temp_flags(after=blocker):
        waiting = lv.apply_async(pid)
    waiting.abort()
    with pytest.raises(ipp.TaskAborted):
        waiting.get(TIMEOUT)
    assert not blocker.ready()


def test_require_and_depend(lv):
    # as in a notebook: the function's globals are the engine's namespace, where require imports
    @ipp.require("colorsys")
    @ipp.interactive
    def hls():
        return colorsys.rgb_to_hls(1, 0, 0)[0]  # noqa: F821

    assert lv.apply_sync(hls) == 0.0

    @ipp.require("kernelpar_no_such_module")
    def never():
        return 1

    with pytest.raises(ipp.ImpossibleDependency):
        lv.apply_sync(never)

    def is_not_here(there):
        import os

        return os.getpid() != there

    there = lv.apply_sync(pid)
    assert lv.apply_sync(ipp.depend(is_not_here, there)(pid)) != there


def test_targets_restrict_placement(lv, rc):
    target_pid = rc[1].apply_sync(pid)
    with lv.temp_flags(targets=[1]):
        assert {lv.apply_sync(pid) for _ in range(4)} == {target_pid}
    assert rc.load_balanced_view(1).apply_sync(pid) == target_pid
    assert rc.load_balanced_view(slice(1, 2)).apply_sync(pid) == target_pid
    everywhere = rc.load_balanced_view("all")
    assert everywhere.targets is None and repr(everywhere) == "<LoadBalancedView None>"
    with lv.temp_flags(targets=[5]):
        with pytest.raises(IndexError):
            lv.apply_async(pid)


def test_queue_status_and_records_of_load_balanced_tasks(lv, rc):
    running = lv.apply_async(time.sleep, 0.5)
    time.sleep(0.2)
    status = rc.queue_status()
    assert sum(status[i]["tasks"] for i in rc.ids) >= 1 and status["unassigned"] == 0
    running.get(TIMEOUT)
    assert rc.queue_status()["unassigned"] == 0


# -- failures -----------------------------------------------------------------------------


def _engine_pids(rc):
    return {eid: rc[eid].apply_sync(pid) for eid in rc.ids}


@pytest.mark.parametrize("how", ["SIGKILL", "SIGSTOP"])
def test_engine_failure_with_and_without_retries(tmp_path, how):
    # greedy (hwm 0), so both tasks below sit on engine 0 when it fails
    with fast_cluster(tmp_path, n=3, controller_args=["--hwm", "0"]) as rc:
        rc.wait_for_engines(3, timeout=TIMEOUT)
        pids = _engine_pids(rc)
        lv = rc.load_balanced_view()
        with lv.temp_flags(targets=[1]):
            busy = lv.apply_async(slow_pid, 1.0)
        with lv.temp_flags(targets=[0, 1], retries=1):
            retrying = lv.apply_async(slow_pid, 0.5)  # least loaded of 0 and 1: engine 0
        with lv.temp_flags(targets=[0]):
            doomed = lv.apply_async(slow_pid, 0.5)
        on_victim = rc.queue_status(0, verbose=True)["tasks"]
        assert set(retrying.msg_ids + doomed.msg_ids) <= set(on_victim)
        os.kill(pids[0], getattr(signal, how))
        try:
            assert retrying.get(TIMEOUT) == pids[1]
            with pytest.raises(ipp.EngineError, match="died"):
                doomed.get(TIMEOUT)
            assert busy.get(TIMEOUT) == pids[1]
            deadline = time.monotonic() + TIMEOUT
            while 0 in rc.ids and time.monotonic() < deadline:
                time.sleep(0.05)
            assert rc.ids == [1, 2]
            assert lv.map_sync(lambda x: x, range(10)) == list(range(10))
        finally:
            if how == "SIGSTOP":
                os.kill(pids[0], signal.SIGKILL)


def test_a_thousand_tasks_across_an_engine_death_each_end_exactly_once(tmp_path):
    with fast_cluster(tmp_path, n=3) as rc:
        rc.wait_for_engines(3, timeout=TIMEOUT)
        pids = _engine_pids(rc)
        lv = rc.load_balanced_view(retries=1)

        def tick(i):
            import time

            time.sleep(0.002)
            return i

        ar = lv.map_async(tick, range(1000))
        time.sleep(0.3)
        os.kill(pids[1], signal.SIGKILL)
        results = ar.get(120, return_exceptions=True)
        ok = [r for r in results if not isinstance(r, BaseException)]
        failed = [r for r in results if isinstance(r, BaseException)]
        assert len(results) == 1000
        assert ok == sorted(set(ok)) and all(isinstance(f, ipp.EngineError) for f in failed)
        # a task that was retried after the death ran again elsewhere: its result is there
        assert len(ok) + len(failed) == 1000 and len(ok) >= 990


def test_an_engine_that_registers_later_gets_waiting_tasks_at_once(tmp_path):
    with fast_cluster(tmp_path, n=1) as rc:
        rc.wait_for_engines(1, timeout=TIMEOUT)
        first_pid = rc[0].apply_sync(pid)
        lv = rc.load_balanced_view()
        busy = lv.apply_async(slow_pid, 6)
        queued = [lv.apply_async(pid) for _ in range(3)]
        rc.cluster.start_engines_sync(1)
        rc.wait_for_engines(2, timeout=TIMEOUT)
        assert {q.get(TIMEOUT) for q in queued} != {first_pid}
        assert not busy.ready()


def test_pure_scheme(tmp_path):
    with fast_cluster(tmp_path, n=2, controller_args=["--scheme", "pure"]) as rc:
        rc.wait_for_engines(2, timeout=TIMEOUT)
        lv = rc.load_balanced_view()
        assert lv.map_sync(lambda x: x + 1, range(20)) == list(range(1, 21))
        with lv.temp_flags(retries=1):
            with pytest.raises(RuntimeError, match="pure"):
                lv.apply_async(pid)
        victim = rc[1].apply_sync(pid)
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + TIMEOUT
        while 1 in rc.ids and time.monotonic() < deadline:
            time.sleep(0.05)
        with pytest.raises(RuntimeError, match="Task farming is disabled"):
            lv.apply_async(pid)


def test_map_progress_counts_elements(lv, rc):
    ar = lv.map_async(lambda x: x, range(7), chunksize=3)
    ar.get(TIMEOUT)
    assert len(ar) == 7 and ar.progress == 7 and len(ar.msg_ids) == 3
    dar = rc[:].map_async(lambda x: x, range(5))
    dar.get(TIMEOUT)
    assert dar.progress == len(dar) == 5
