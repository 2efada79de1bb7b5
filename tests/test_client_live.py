"""Live tests of the client against a real controller and engines (``rc`` from conftest).

The session cluster has two engines (0 and 1); tests that kill or add engines start
their own engine processes, and the one that shuts a controller down uses its own
cluster.  Nothing here may leave the session cluster with fewer than two engines.
"""

import gc
import json
import os
import signal
import socket
import subprocess
import sys
import time
import warnings

import numpy as np
import psutil
import pytest

import kernelpar as ipp


@ipp.interactive  # by value: engines cannot import this test module
def noop():
    pass


@pytest.fixture
def dv(rc):
    view = rc[:]
    view.block = True
    return view


def test_ids_views_and_targets(rc):
    assert rc.ids == [0, 1] and len(rc) == 2
    ids = rc.ids
    ids.append(99)
    assert rc.ids == [0, 1]  # a copy
    assert repr(rc[:]) == "<DirectView [0, 1]>" and repr(rc[-1]) == "<DirectView 1>"
    assert repr(rc[::2]) == "<DirectView [0]>" and [repr(v) for v in rc] == ["<DirectView 0>", "<DirectView 1>"]
    assert rc.direct_view().targets == "all" and len(rc.direct_view()) == 2
    with pytest.raises(IndexError):
        rc[7]
    with pytest.raises(TypeError):
        rc["a"]
    assert repr(rc.load_balanced_view()) == "<LoadBalancedView None>" and len(rc.load_balanced_view([1])) == 1


def test_apply_forms(rc):
    assert rc[0].apply_sync(lambda x: x + 1, 1) == 2  # int target: bare value
    assert rc[:].apply_sync(lambda: 3) == [3, 3]
    assert rc[[1]].apply_sync(os.getpid) != rc[[0]].apply_sync(os.getpid)
    ar = rc[1].apply_async(lambda f: f, f="kw named f")  # the function parameter is positional-only
    assert isinstance(ar, ipp.AsyncResult) and ar.get(10) == "kw named f"
    assert ar.metadata.engine_id == 1 and ar.engine_id == 1 and ar.successful()
    view = rc[:]
    view.block = True
    assert view.apply(lambda: 1) == [1, 1]
    with view.temp_flags(block=False):
        assert isinstance(view.apply(lambda: 1), ipp.AsyncResult)
    assert view.block is True
    with pytest.raises(KeyError):
        view.set_flags(nope=1)
    assert view.set_flags(label="x") is view and view.label == "x"
    # flags are checked as ipyparallel's traits check them
    with pytest.raises(TypeError, match="'block' flag of a DirectView expected a boolean, not the str 'yes'"):
        view.block = "yes"
    with pytest.raises(TypeError):
        view.set_flags(track=None)
    view.block = 0
    assert view.block is False and view.track is False


def test_results_are_concurrent_futures(rc):
    import concurrent.futures as cf

    ars = [rc[i % 2].apply_async(time.sleep, 0.05 * (i % 3)) for i in range(6)]
    done, not_done = cf.wait(ars, timeout=10)
    assert not not_done
    assert len(list(cf.as_completed(ars))) == 6
    ar = rc[0].apply_async(lambda: 5)
    seen = []
    ar.add_done_callback(lambda f: seen.append(f.get()))  # get() inside a callback is fine once done
    assert ar.result(10) == 5
    deadline = time.monotonic() + 5
    while not seen and time.monotonic() < deadline:
        time.sleep(0.01)
    assert seen == [5]


def test_map_semantics(dv):
    assert dv.map(lambda x: x * x, range(7)) == [x * x for x in range(7)]
    assert dv.map(lambda x, y: x + y, range(5), range(3)) == [0, 2, 4]  # shortest wins
    assert dv.map(lambda x: x, []) == []
    assert dv.map(str, (i for i in range(3))) == ["0", "1", "2"]
    amr = dv.map_async(lambda x: x + 1, range(5))
    assert isinstance(amr, ipp.AsyncMapResult) and len(amr) == 5 and list(amr) == [1, 2, 3, 4, 5]
    assert list(dv.imap(lambda x: -x, range(4))) == [0, -1, -2, -3]
    assert dv.map_sync(abs, [-1]) == [1]
    with pytest.raises(TypeError):
        dv.map_sync(abs, [1], block=False)


def test_push_pull_scatter_gather(dv, rc):
    assert dv.push({"a": 1, "b": [1, 2]}) == [None, None]
    with pytest.raises(TypeError):
        dv.push([("a", 1)])
    assert dv.pull("a") == [1, 1] and dv.pull(["a", "b"]) == [[1, [1, 2]]] * 2
    dv["c"] = {"k": 5}
    assert dv["c"] == [{"k": 5}] * 2 and rc[0].get("c['k']") == 5
    dv.execute("class O: pass\no = O(); o.attr = 'dotted'")
    assert rc[1].pull("o.attr", block=True) == "dotted"
    assert dv.scatter("part", list(range(7))) is None
    assert dv.pull("part") == [[0, 1, 2, 3], [4, 5, 6]] and dv.gather("part") == list(range(7))
    dv.scatter("rr", list(range(5)), dist="r")
    assert dv.pull("rr") == [[0, 2, 4], [1, 3]] and dv.gather("rr", dist="r") == list(range(5))
    dv.scatter("rank", rc.ids, flatten=True)
    assert dv.pull("rank") == [0, 1]
    ar = rc[:].gather("rank", block=False)
    assert isinstance(ar, ipp.AsyncMapResult) and ar.get(10) == [0, 1]


def test_numpy_scatter_gather_zero_copy(dv):
    a = np.random.rand(10_000_000)
    dv.scatter("x", a)  # warm-up: first-touch of fresh memory is slow on a VM
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        dv.scatter("x", a)
        b = dv.gather("x")
        times.append(time.perf_counter() - t0)
    np.testing.assert_array_equal(a, b)
    # functions defined in a test module keep their own globals unless marked interactive
    assert dv.apply(ipp.interactive(lambda: (x.shape, x.dtype.name))) == [((5_000_000,), "float64")] * 2  # noqa: F821
    print(f"scatter+gather 10M float64: best {min(times):.3f} s")


def test_execute_and_outputs(rc, capsys):
    view = rc[:]
    with pytest.raises(TypeError, match="code must be text, not <class 'int'>"):
        view.execute(5)
    ar = view.execute("import sys\nprint('out'); print('err', file=sys.stderr)\n6*7", silent=False, block=True)
    assert isinstance(ar, ipp.AsyncResult) and ar.ready()  # execute always returns the AsyncResult
    replies = ar.get()
    assert all(isinstance(r, ipp.ExecuteReply) for r in replies)
    assert ar.stdout == ["out\n", "out\n"] and ar.stderr == ["err\n", "err\n"]
    assert repr(replies[0]).startswith("<ExecuteReply[") and repr(replies[0]).endswith("]: 42>")
    capsys.readouterr()
    ar.display_outputs()
    out, err = capsys.readouterr()
    assert "[stdout:0] out\n[stdout:1] out\n" in out and "[stderr:1] err\n" in err
    assert f"Out[0:{replies[0].execution_count}]: 42" in out
    silent = rc[0].execute("print('quiet')")
    assert silent.get(10).execution_count is not None and silent.stdout == "quiet\n"


def test_run_file(rc, tmp_path):
    path = tmp_path / "script.py"
    path.write_text("ran_value = 'from file'")
    rc[0].run(str(path), block=True)
    assert rc[0].pull("ran_value", block=True) == "from file"


def test_remote_errors(rc, dv):
    with pytest.raises(ipp.RemoteError) as info:
        rc[0].apply_sync(lambda: 1 / 0)
    e = info.value
    assert e.ename == "ZeroDivisionError" and e.engine_info["engine_id"] == 0 and e.engine_info["method"] == "apply"
    assert "ZeroDivisionError" in e.traceback
    with pytest.raises(ipp.CompositeError) as info:
        dv.apply(lambda: 1 / 0)
    assert len(info.value.elist) == 2
    rendered = "\n".join(info.value.render_traceback())
    assert "[0:apply]" in rendered and "[1:apply]" in rendered
    with pytest.raises(ipp.CompositeError) as info:
        dv.execute("raise ValueError('boom')")
    assert "[0:execute]ValueError: boom" in str(info.value)
    ar = dv.apply_async(lambda: 1 / 0)
    assert all(isinstance(r, ipp.RemoteError) for r in ar.get(10, return_exceptions=True))


def test_stop_on_error_aborts_queue_and_abort(rc):
    failing = rc[0].execute("import time; time.sleep(0.3); 1/0")
    queued = rc[0].apply_async(lambda: "never")
    with pytest.raises(ipp.RemoteError):
        failing.get(10)
    with pytest.raises(ipp.TaskAborted):
        queued.get(10)
    running = rc[1].apply_async(time.sleep, 0.5)
    victim = rc[1].apply_async(lambda: "never")
    victim.abort()
    with pytest.raises(ipp.TaskAborted):
        victim.get(10)
    running.get(10)
    with pytest.raises(RuntimeError):
        running.abort()


def test_abort_of_a_request_queued_behind_a_running_one_is_answered_at_once(rc):
    # first's end makes the engine read second and victim; abort victim while second runs
    first = rc[1].apply_async(time.sleep, 0.3)
    second = rc[1].apply_async(time.sleep, 3)
    victim = rc[1].apply_async(lambda: "never")
    first.get(10)
    time.sleep(0.2)
    victim.abort()
    with pytest.raises(ipp.TaskAborted):
        victim.get(10)
    assert not second.ready(), "the aborted reply must not wait for the running task"
    second.get(10)
    assert rc[1].apply_sync(lambda: "after") == "after"


def test_timeouts_and_async_result_api(rc):
    ar = rc[:].apply_async(time.sleep, 0.4)
    assert repr(ar) == "<AsyncResult(sleep): pending>" and not ar.ready() and ar.progress == 0
    with pytest.raises(TimeoutError, match="Result not ready."):
        ar.get(0.05)
    assert ar.wait(-1) and ar.get() == [None, None] and repr(ar) == "<AsyncResult(sleep): finished>"
    assert ar.wall_time >= ar.serial_time / 2 > 0.35 and ar.elapsed == ar.wall_time
    assert ar.get_dict() == {0: None, 1: None} and ar.r == [None, None]
    assert len(ar.msg_ids) == 2 and all(m in rc.history for m in ar.msg_ids)
    assert ar.wait_for_output(1)
    ar = rc[0].apply_async(lambda: print("printed") or 1)
    assert ar.get(10) == 1 and ar.stdout == "printed\n" and ar["stdout"] == "printed\n"
    md = ar.metadata
    assert md["submitted"] <= md["started"] <= md["completed"] <= md["received"] and md.status == "ok"


def test_iteration_and_error_metadata(rc, dv):
    def fail_on_one(x):
        if x == 1:
            raise ValueError(x)
        return x

    for ar in (dv.map_async(fail_on_one, [0, 1]), rc.load_balanced_view().map_async(fail_on_one, [0, 1])):
        with pytest.raises(ipp.CompositeError, match=r"\]ValueError: 1"):
            list(ar)  # pending or done, a failure ends the iteration as a CompositeError
        assert ar.wait(10)
        with pytest.raises(ipp.CompositeError):
            list(ar)
    lazy = dv.map_async(fail_on_one, [0, 1], return_exceptions=True)
    items = list(lazy)
    assert items[0] == 0 and isinstance(items[1], ipp.RemoteError) and items[1].ename == "ValueError"
    again = list(lazy)  # done now: the same list
    assert again[0] == 0 and isinstance(again[1], ipp.RemoteError)
    ar = dv.apply_async(lambda: 1 / 0)
    ar.wait(10)
    assert [e.ename for e in ar.error] == ["ZeroDivisionError", "ZeroDivisionError"]
    assert ar.status == ["error", "error"]
    ok = dv.apply_async(lambda: 1)
    assert ok.get(10) == [1, 1] and ok.error == [None, None]


def test_return_when_split_and_join(rc):
    from concurrent.futures import FIRST_COMPLETED, FIRST_EXCEPTION

    def sleep_or_fail(x):
        import time

        if x < 0:
            raise ValueError(x)
        time.sleep(x)
        return x

    # FIRST_EXCEPTION: the first failure is raised while the other task still runs
    ar = rc[:].map_async(sleep_or_fail, [-1, 3])
    with pytest.raises(ipp.RemoteError, match="ValueError"):
        ar.get(20, return_when=FIRST_EXCEPTION)
    assert not ar.done()
    assert ar.wait(20)
    ar = rc[:].apply_async(sleep_or_fail, 0.2)
    done, pending = ar.wait(10, return_when=FIRST_COMPLETED)
    assert done and len(done | pending) == 2 and all(isinstance(p, ipp.AsyncResult) for p in done)
    parts = ar.split()
    assert [p.get(10) for p in parts] == [0.2, 0.2] and ar.split() is parts
    assert ipp.AsyncResult.join(*parts).get(10) == [0.2, 0.2] and rc[0].apply_async(abs, -1).split()[0].get(10) == 1
    with pytest.warns(UserWarning, match="FIRST_COMPLETED"):
        assert ar.get(return_when=FIRST_COMPLETED) == [0.2, 0.2]
    single = rc[0].apply_async(sleep_or_fail, 1)
    with pytest.raises(TimeoutError, match="Result not ready."):
        single.get(0.05, return_when=FIRST_EXCEPTION)
    with pytest.raises(ValueError, match="return_when"):
        single.wait(1, return_when="sometime")
    assert single.get(20) == 1


def test_wait_queue_status_and_caches(rc):
    ars = [rc[0].apply_async(time.sleep, 0.1) for _ in range(3)]
    assert rc.wait(ars[0], timeout=5) and rc.wait(timeout=5) and not rc.outstanding
    assert rc.wait([a.msg_ids[0] for a in ars]) is True
    slow = rc[1].apply_async(time.sleep, 1)
    assert rc.wait(timeout=0.05) is False
    slow.get(10)
    status = rc.queue_status()
    assert set(status) >= {0, 1, "unassigned"} and status[0]["queue"] == 0
    assert set(rc.queue_status(0)) >= {"queue", "completed", "tasks"}
    assert not rc.results and not rc.metadata  # dropped once the owning AsyncResults resolved
    verbose = rc.queue_status(0, verbose=True)
    assert ars[0].msg_ids[0] in verbose["completed"] and verbose["queue"] == [] and verbose["tasks"] == []
    slow = rc[1].apply_async(time.sleep, 0.3)
    rc.wait_interactive(interval=0.05, timeout=10)
    assert slow.done()
    rc.wait_interactive()  # nothing outstanding: returns at once


def test_view_get_result_and_purge_results(rc):
    view = rc[0]
    ar = view.apply_async(lambda: 5)
    assert ar.get(10) == 5
    assert view.get_result(ar.msg_ids[0]).get(10) == 5 and view.get_result(-1).get(10) == 5
    assert view.get_result([ar.msg_ids[0]]).get(10) == [5]
    view.purge_results(jobs=[ar.msg_ids[0]])
    assert ar.msg_ids[0] not in rc.hub_history()
    view.purge_results(targets="all")


def test_send_signal_interrupts(rc):
    ar = rc[0].apply_async(time.sleep, 10)
    time.sleep(0.3)
    rc.send_signal("SIGINT", targets=[0], block=True)
    with pytest.raises(ipp.RemoteError, match="KeyboardInterrupt") as info:
        ar.get(5)
    # the traceback ends in the user's call, not in the engine's signal handler
    assert "kernelpar" not in info.value.traceback
    rc[0].execute("import time", block=True)  # the engine's IPython shell is created first
    ar = rc[0].execute("time.sleep(10)", block=False)
    time.sleep(0.3)
    rc.send_signal("SIGINT", targets=[0], block=True)
    with pytest.raises(ipp.RemoteError, match="KeyboardInterrupt") as info:
        ar.get(5)
    assert "time.sleep(10)" in info.value.traceback and "on_sigint" not in info.value.traceback


def test_keyboard_interrupt_while_blocking_returns_async_result(rc):
    def interrupt(*_):
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        result = rc[1].apply_sync(time.sleep, 0.8)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert isinstance(result, ipp.AsyncResult)
    assert result.get(5) is None


def test_decorators_imports_and_serializers(rc, dv, capsys):
    @dv.remote(block=True)
    def pid():
        import os

        return os.getpid()

    assert len(set(pid())) == 2

    @ipp.parallel(dv, block=True)
    def double(chunk):
        return [2 * x for x in chunk]

    assert double(range(5)) == [0, 2, 4, 6, 8] and double.map([[1], [2, 3]]) == [[2], [4, 6]]

    @dv.parallel(dist="r", block=True)
    def ident(chunk):
        return list(chunk)

    assert ident(range(5)) == list(range(5))
    with dv.sync_imports():
        import colorsys  # noqa: F401
    assert "importing colorsys on engine(s)" in capsys.readouterr().out
    assert dv.apply(ipp.interactive(lambda: colorsys.__name__)) == ["colorsys", "colorsys"]
    secret = 41
    try:
        dv.use_cloudpickle()
        assert dv.apply(lambda: secret + 1) == [42, 42]
    finally:
        dv.use_pickle()
    with pytest.raises(NotImplementedError, match="use_cloudpickle"):
        dv.use_dill()


def test_pre_pickled_functions_and_arguments(rc, dv):
    big = np.ones(200_000)
    weighted = ipp.PrePickled(lambda a, k: float((a * k).sum()))
    ones = ipp.PrePickled(big)
    assert dv.apply_sync(weighted, ones, 2) == [400_000.0, 400_000.0]
    ar = rc[1].apply_async(weighted, ones, 3)
    assert repr(ar).startswith("<AsyncResult(<lambda>)") and ar.get(10) == 600_000.0
    lview = rc.load_balanced_view()
    assert lview.map_sync(lambda a, k: float((a * k).sum()), [ones, ones], [1, 2]) == [200_000.0, 400_000.0]


def test_deprecated_noops(rc):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        rc.spin()
        rc.spin_thread()
        rc[:].spin()
    assert [x.category for x in w] == [DeprecationWarning] * 3


def test_wait_for_engines_timeout(rc):
    t0 = time.monotonic()
    with pytest.raises(TimeoutError, match="3 engines not ready in 0.5 seconds"):
        rc.wait_for_engines(3, timeout=0.5)
    assert time.monotonic() - t0 < 3
    rc.wait_for_engines(2, timeout=1)
    assert rc.wait_for_engines(2, block=False).result(1) is None


def _start_engine(cluster):
    return subprocess.Popen(
        [sys.executable, "-m", "kernelpar.engine", "--profile-dir", cluster.profile_dir, "--cluster-id",
         cluster.cluster_id], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def test_engine_death_fails_its_requests(rc, cluster):
    proc = _start_engine(cluster)
    try:
        rc.wait_for_engines(3, timeout=30)
        new = max(rc.ids)
        running = rc[new].apply_async(time.sleep, 30)
        queued = rc[new].apply_async(lambda: "never")
        time.sleep(0.3)
        proc.kill()
        with pytest.raises(ipp.EngineError, match=rf"Engine {new} died while running task {running.msg_ids[0]}"):
            running.get(20)
        with pytest.raises(ipp.EngineError):
            queued.get(5)
        # a RemoteError too, as ipyparallel's is; recorded in the task's metadata
        error = running.exception()
        assert isinstance(error, ipp.RemoteError) and error.ename == "EngineError"
        assert str(error).startswith(f"[{new}:apply] EngineError: Engine {new} died")
        assert running.metadata["status"] == "error" and running.metadata["error"] is error
        assert new not in rc.ids
        with pytest.raises(IndexError):
            rc[new]
    finally:
        proc.kill()
        proc.wait(10)
    assert rc[:].apply_sync(lambda: 1) == [1, 1]


def test_dead_controller_gives_clear_timeout(tmp_path, rc):
    info = dict(rc.connection_info, interface="tcp://127.0.0.1")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    for channel in ("registration", "mux", "control", "task", "iopub", "notification"):
        info[channel] = free_port  # nothing listens there
    path = tmp_path / "dead.json"
    path.write_text(json.dumps(info))
    t0 = time.monotonic()
    with pytest.raises(TimeoutError, match="Hub connection request timed out"):
        ipp.Client(str(path), timeout=1)
    assert time.monotonic() - t0 < 3


def test_version_mismatch_names_both(rc, monkeypatch):
    from kernelpar.wire import connection

    real = connection.versions()
    monkeypatch.setattr(connection, "versions", lambda: dict(real, python="3.9.0"))
    with pytest.raises(ipp.ProtocolVersionError, match=r"3\.9\.0.*" + real["python"].replace(".", r"\.")):
        ipp.Client(rc.connection_info, timeout=5)


def test_client_close_is_idempotent_and_context_manager(rc):
    with ipp.Client(rc.connection_info) as other:
        assert other.ids == [0, 1] and other[0].apply_sync(lambda: 2) == 2
    assert other.closed
    other.close()
    with pytest.raises(RuntimeError, match="closed"):
        other[0].apply_sync(noop)


@pytest.mark.slow
def test_memory_flat_over_many_tasks(rc):
    view = rc[0]
    proc = psutil.Process()

    def run(n):
        for _ in range(n // 500):
            for _ in range(500):
                view.apply_async(noop)
            assert rc.wait(timeout=60)

    run(5000)
    gc.collect()
    before = proc.memory_info().rss
    run(50000)
    gc.collect()
    growth = proc.memory_info().rss - before
    assert growth < 10 * 2**20, f"client grew by {growth / 2**20:.1f} MiB over 50,000 tasks"
    assert not rc.results and not rc.metadata and not rc.outstanding and len(rc.history._starts) < 100


@pytest.mark.slow
def test_shutdown_hub_closes_client(ipython_dir, tmp_path):
    from kernelpar.cluster import Cluster

    cluster = Cluster(n=1, profile_dir=str(tmp_path / "profile"), controller_args=["--ping", "200"])
    cluster.start_cluster_sync()
    try:
        client = cluster.connect_client_sync()
        client.wait_for_engines(1, timeout=60)
        pending = client[0].apply_async(time.sleep, 30)
        client.shutdown(hub=True)
        assert client.closed
        with pytest.raises((ipp.EngineError, ipp.KernelError)):
            pending.get(10)
    finally:
        cluster.stop_cluster_sync()


def test_received_arrays_are_writable_on_both_sides(rc):
    view = rc[0]
    view.push({"arr": np.arange(1_000_000, dtype=np.float64)}, block=True)
    assert view.apply_sync(ipp.interactive(lambda: arr.flags.writeable))  # noqa: F821
    got = view.pull("arr", block=True)
    got[0] = 5.0
    assert got.flags.writeable and got[0] == 5.0


def test_many_threads_sending_at_once(rc):
    # every thread sends on the client's sockets itself (under the client's socket lock)
    import concurrent.futures

    lview = rc.load_balanced_view()

    def work(t):
        ars = [rc[i % 2].apply_async(lambda x: x * 2, t * 1000 + i) for i in range(100)]
        ars += [lview.apply_async(lambda x: -x, t * 1000 + i) for i in range(100)]
        return [ar.get(30) for ar in ars]

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(work, range(8)))
    for t, got in enumerate(results):
        assert got == [(t * 1000 + i) * 2 for i in range(100)] + [-(t * 1000 + i) for i in range(100)]
