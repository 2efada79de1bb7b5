"""Live tests of the Cluster API and ipcluster: real controllers and engines.

Each test that starts its own cluster gets its own ``$IPYTHONDIR``, uses fast heartbeats
(``--ping 200``) and checks that what it started is gone afterwards.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

import kernelpar
from kernelpar.cluster import Cluster, ClusterRunning
from kernelpar.wire import connection

FAST = ["--ping", "200"]
# how long a stop may take before it counts as not stopping (the 1 s goal is benchmarked)
STOP_BOUND = 5.0
# time for a controller and engines to notice their parent died (they check every second)
ORPHAN_GRACE = 8.0


@pytest.fixture
def ipydir(tmp_path, monkeypatch):
    """A private $IPYTHONDIR for one test."""
    path = tmp_path / "ipython"
    path.mkdir()
    monkeypatch.setenv("IPYTHONDIR", str(path))
    return str(path)


def _alive(pids):
    alive = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            pass
    return alive


def _wait_gone(pids, timeout):
    """Seconds until every pid has exited; fails listing the survivors after ``timeout``."""
    t0 = time.monotonic()
    while _alive(pids):
        if time.monotonic() - t0 > timeout:
            pytest.fail(f"still running after {timeout} s: {_alive(pids)}")
        time.sleep(0.02)
    return time.monotonic() - t0


def _cluster_pids(cluster):
    pids = [cluster.controller.pid] if cluster.controller else []
    for engine_set in cluster.engines.values():
        pids += engine_set.pids
    return pids


def _pids_in_cluster_file(path):
    d = json.load(open(path))
    pids = [d["controller"]["state"]["process"]["pid"]]
    for engine_set in d["engines"]["sets"].values():
        pids += [p["pid"] for p in engine_set["processes"]]
    return pids, d["cluster"]["ipcluster"]["pid"]


def _ipcluster(*args, timeout=90):
    return subprocess.run([sys.executable, "-m", "kernelpar.cluster", *args], capture_output=True, text=True,
                          timeout=timeout)


def _wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


# --- the session fixtures


def test_session_cluster_fixture(cluster, rc):
    assert rc.cluster is cluster
    assert len(rc.ids) == 2
    assert sorted(rc[:].apply_sync(os.getpid)) == sorted(_cluster_pids(cluster)[1:])


# --- Cluster API


@pytest.mark.timeout(60)
def test_context_manager_runs_work_and_stops(ipydir):
    cluster = Cluster(n=2, controller_args=FAST)
    t0 = time.monotonic()
    with cluster as rc:
        started = time.monotonic() - t0
        assert len(rc.ids) == 2
        assert rc[:].apply_sync(lambda x: x * 2, 21) == [42, 42]
        pids = _cluster_pids(cluster)
        assert sorted(rc[:].apply_sync(os.getpid)) == sorted(pids[1:])
        assert os.path.exists(cluster.cluster_file)
        assert os.stat(cluster.cluster_file).st_mode & 0o777 == 0o600
        for side in ("client", "engine"):
            path = connection.connection_file(cluster.profile_dir, side, cluster.cluster_id)
            with open(path) as f:
                info = json.load(f)
            # ipyparallel's keys, so that tools reading the files find them
            assert {"curve_serverkey", "signature_scheme", "key", "location", "pack", "ssh"} <= set(info)
            assert info["curve_serverkey"] is None and os.stat(path).st_mode & 0o777 == 0o600
        assert repr(cluster).startswith(f"<Cluster(cluster_id='{cluster.cluster_id}', profile='default', "
                                        f"controller=<running>, engine_sets=[")
        t1 = time.monotonic()
    stopped = time.monotonic() - t1
    gone = _wait_gone(pids, 1.0)
    print(f"start+connect+2 engines {started:.3f} s, stop {stopped:.3f} s (+{gone:.3f} s until gone)")
    assert not os.path.exists(cluster.cluster_file)
    assert not os.path.exists(connection.connection_file(cluster.profile_dir, "client", cluster.cluster_id))
    assert cluster.controller is None and cluster.engines == {}


@pytest.mark.timeout(60)
def test_async_context_manager(ipydir):
    import asyncio

    async def main():
        async with Cluster(n=1, controller_args=FAST) as rc:
            return rc[:].apply_sync(lambda: "hi")

    assert asyncio.run(main()) == ["hi"]


@pytest.mark.timeout(90)
def test_start_engines_adds_engines_and_stop_engines_removes_them(ipydir):
    cluster = Cluster(n=1, controller_args=FAST)
    rc = cluster.start_and_connect_sync()
    try:
        first = cluster.engine_set
        more = cluster.start_engines_sync(2)
        assert more in cluster.engines and len(cluster.engines) == 2
        rc.wait_for_engines(3, timeout=30)
        assert len(rc.ids) == 3
        extra = cluster.add_engines_sync(1)
        rc.wait_for_engines(4, timeout=30)
        pids = cluster.engines[more].pids
        cluster.stop_engines_sync(more)
        _wait_gone(pids, 1.0)
        assert more not in cluster.engines and first.running and cluster.engines[extra].running
        with pytest.raises(KeyError):
            cluster.stop_engines_sync(more)
        _wait_for(lambda: len(rc.ids) == 2, 10, "the stopped engines to unregister")
        assert len(rc[:].apply_sync(os.getpid)) == 2
    finally:
        rc.close()
        pids = _cluster_pids(cluster)
        cluster.stop_cluster_sync()
    _wait_gone(pids, 1.0)


@pytest.mark.timeout(60)
def test_stop_cluster_leaves_no_process(ipydir, caplog):
    cluster = Cluster(n=2, controller_args=FAST)
    rc = cluster.start_and_connect_sync()
    rc.wait_for_engines(2, timeout=30)
    rc.load_balanced_view().map_sync(abs, range(200))
    rc.close()
    tree = []
    for pid in _cluster_pids(cluster):
        proc = psutil.Process(pid)
        tree += [proc.pid] + [c.pid for c in proc.children(recursive=True)]
    cluster.stop_cluster_sync()
    cluster.stop_controller_sync()  # idempotent
    # the 1 s goal is a benchmark figure (benchmarks/bench.py); here: nothing is left
    _wait_gone(tree, STOP_BOUND)
    # and everything exited by itself: a non-zero code (e.g. -9 after a stuck engine
    # was killed) is logged as a warning
    stopped = [r.getMessage() for r in caplog.records if "stopped" in r.getMessage()]
    assert stopped and not [r for r in caplog.records if r.levelname == "WARNING" and "stopped" in r.getMessage()]


@pytest.mark.timeout(60)
def test_same_cluster_id_refused_while_running(ipydir):
    cluster = Cluster(n=1, cluster_id="dup", controller_args=FAST)
    cluster.start_cluster_sync()
    try:
        with pytest.raises(ClusterRunning, match="already running"):
            Cluster(n=1, cluster_id="dup").start_cluster_sync()
        assert cluster.controller.running  # the refused start did not touch the running one
        again = Cluster.from_file(cluster_id="dup")
        assert again.controller.pid == cluster.controller.pid and again.running
    finally:
        cluster.stop_cluster_sync()


@pytest.mark.timeout(60)
def test_engines_that_cannot_start_fail_fast_with_their_output(ipydir):
    cluster = Cluster(n=2, controller_args=FAST, engine_args=["--no-such-option"])
    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match="(?s)all engines exited.*--no-such-option"):
        with cluster:
            pass
    assert time.monotonic() - t0 < 15  # not engine_timeout (60 s)
    assert cluster.controller is None and cluster.engines == {}
    assert not os.path.exists(cluster.cluster_file)


def test_a_cluster_of_no_engines_connects_at_once_and_takes_engines_later(ipydir):
    with Cluster(n=0, controller_args=FAST) as rc:
        assert rc.ids == []
        rc.cluster.start_engines_sync(1)
        rc.wait_for_engines(1, timeout=60)
        assert rc[:].apply_sync(lambda: 7) == [7]


@pytest.mark.timeout(60)
def test_killing_the_starting_process_leaves_no_orphans(ipydir, tmp_path):
    script = tmp_path / "starter.py"
    script.write_text(textwrap.dedent(f"""
        import json, time
        from kernelpar.cluster import Cluster
        c = Cluster(n=2, controller_args={FAST!r})
        rc = c.start_and_connect_sync()
        print(json.dumps([c.controller.pid] + c.engine_set.pids), flush=True)
        time.sleep(120)
    """))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [os.path.dirname(os.path.dirname(kernelpar.__file__)), os.environ.get("PYTHONPATH", "")]))
    starter = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        pids = json.loads(starter.stdout.readline())
        assert len(_alive(pids)) == 3
    finally:
        starter.kill()  # no atexit, no cleanup: only the children's parent check is left
        starter.wait()
    print(f"orphans gone {_wait_gone(pids, ORPHAN_GRACE):.2f} s after the starter was killed")


# --- ipcluster


@pytest.mark.timeout(120)
def test_ipcluster_daemonize_list_stop(ipydir):
    t0 = time.monotonic()
    result = _ipcluster("start", "-n", "2", "--daemonize", "--", *FAST)
    print(f"ipcluster start --daemonize: {time.monotonic() - t0:.2f} s")
    assert result.returncode == 0, result.stderr
    assert "ipcluster stop" in result.stdout
    cluster_file = os.path.join(ipydir, "profile_default", "security", "cluster-.json")
    pids, ipcluster_pid = _pids_in_cluster_file(cluster_file)
    try:
        # the engines are registered when --daemonize returns (ipyparallel #241)
        rc = kernelpar.Client(connection.connection_file(os.path.dirname(os.path.dirname(cluster_file)), "client"))
        try:
            assert len(rc.ids) == 2
        finally:
            rc.close()

        listing = _ipcluster("list")
        assert listing.returncode == 0, listing.stderr
        header, *rows = listing.stdout.strip().splitlines()
        assert header.split() == ["PROFILE", "CLUSTER", "ID", "RUNNING", "ENGINES", "LAUNCHER"]
        assert [row.split() for row in rows] == [["default", "''", "True", "2", "local"]]
        assert json.loads(_ipcluster("list", "-o", "json").stdout)[0]["cluster"]["cluster_id"] == ""
    finally:
        t0 = time.monotonic()
        stop = _ipcluster("stop")
        stop_time = time.monotonic() - t0
    assert stop.returncode == 0, stop.stderr
    print(f"ipcluster stop: {stop_time:.2f} s")
    _wait_gone(pids + [ipcluster_pid], STOP_BOUND)
    assert not os.path.exists(cluster_file)
    again = _ipcluster("stop")
    assert again.returncode == 11 and "no cluster" in again.stderr
    assert _ipcluster("list").stdout.strip().splitlines()[1:] == []


@pytest.mark.timeout(60)
def test_ipcluster_daemonize_fails_loudly(ipydir):
    result = _ipcluster("start", "-n", "1", "--daemonize", "--", "--no-such-option")
    assert result.returncode == 1
    assert "exited with status 1 before the cluster was up" in result.stderr
    assert "unrecognized arguments: --no-such-option" in result.stderr  # the controller's own words
    assert _ipcluster("list").stdout.strip().splitlines()[1:] == []


def test_ipcontroller_and_ipengine_refuse_bad_places_in_one_line(ipydir, tmp_path):
    for module, args, words in [
        ("kernelpar.controller", ["--ip=no-such-interface"], "cannot listen on tcp://no-such-interface"),
        ("kernelpar.engine", [f"--file={tmp_path}"], "is a directory"),
    ]:
        result = subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=60)
        assert result.returncode != 0 and words in result.stderr, result
        assert "Traceback" not in result.stderr, result.stderr


@pytest.mark.timeout(120)
def test_ipcluster_start_twice_is_refused(ipydir):
    first = _ipcluster("start", "-n", "1", "--daemonize", "--profile", "twice", "--", *FAST)
    assert first.returncode == 0, first.stderr
    cluster_file = os.path.join(ipydir, "profile_twice", "security", "cluster-.json")
    pids, ipcluster_pid = _pids_in_cluster_file(cluster_file)
    try:
        for extra in (["--daemonize"], []):
            second = _ipcluster("start", "-n", "1", "--profile", "twice", *extra)
            assert second.returncode == 10, second.stderr
            assert "already running" in second.stderr and "ipcluster stop" in second.stderr
        assert _pids_in_cluster_file(cluster_file) == (pids, ipcluster_pid)
        assert len(_alive(pids)) == 2
    finally:
        assert _ipcluster("stop", "--profile", "twice").returncode == 0
    _wait_gone(pids + [ipcluster_pid], STOP_BOUND)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("form", [["start", "-n", "2"], ["local", "-n", "2"]], ids=["start", "local"])
def test_ctrl_c_on_foreground_ipcluster_stops_everything(ipydir, form):
    proc = subprocess.Popen([sys.executable, "-m", "kernelpar.cluster", *form, "--", *FAST],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    cluster_file = os.path.join(ipydir, "profile_default", "security", "cluster-.json")
    client_file = connection.connection_file(os.path.join(ipydir, "profile_default"), "client")
    try:
        _wait_for(lambda: os.path.exists(client_file) and os.path.exists(cluster_file), 30, "the cluster to start")
        pids, ipcluster_pid = _pids_in_cluster_file(cluster_file)
        assert ipcluster_pid == proc.pid and len(pids) == 3
        rc = kernelpar.Client(client_file)
        try:
            rc.wait_for_engines(2, timeout=30)
        finally:
            rc.close()
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=10)
        print(f"ipcluster exited {time.monotonic() - t0:.2f} s after SIGINT")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, out
    assert "stopped" in out
    _wait_gone(pids, STOP_BOUND)
    assert not os.path.exists(cluster_file)


def test_ipcluster_clean_refuses_a_running_cluster_and_removes_what_stopped_ones_left(ipydir):
    profile_dir = os.path.join(ipydir, "profile_default")
    cluster = Cluster(n=1, cluster_id="kept", profile_dir=profile_dir, controller_args=FAST)
    cluster.start_cluster_sync()
    try:
        refused = _ipcluster("clean")
        assert refused.returncode == 1
        assert "cluster 'kept'" in refused.stderr and "is running" in refused.stderr and "--force" in refused.stderr
        assert os.path.exists(cluster.cluster_file), "nothing is removed where a cluster runs"
        assert _ipcluster("list").stdout.split().count("True") == 1
    finally:
        cluster.stop_cluster_sync()
    # what a crashed cluster leaves: a cluster file naming dead processes, connection files, logs
    stale = os.path.join(profile_dir, "security", "cluster-crashed.json")
    connection.write_private_json(stale, cluster.to_dict())
    connection.write_private_json(connection.connection_file(profile_dir, "client", "crashed"), {})
    unreadable = os.path.join(profile_dir, "security", "cluster-garbled.json")
    with open(unreadable, "w") as f:
        f.write("{not json")
    logs = os.listdir(os.path.join(profile_dir, "log"))
    assert logs, "the stopped cluster's processes logged"

    cleaned = _ipcluster("clean")
    assert cleaned.returncode == 0, cleaned.stderr
    assert "cannot be read" in cleaned.stderr
    assert cleaned.stdout.strip() == f"Cleaned {profile_dir}: removed {len(logs) + 3} files"
    assert os.listdir(os.path.join(profile_dir, "log")) == []
    assert os.listdir(os.path.join(profile_dir, "security")) == ["cluster-start.lock"]
    assert _ipcluster("clean", "--profile", "nosuch").returncode == 1


def test_ipcluster_clean_all_and_force(ipydir):
    other = os.path.join(ipydir, "profile_other")
    cluster = Cluster(n=0, cluster_id="forced", profile_dir=other, controller_args=FAST)
    cluster.start_cluster_sync()
    try:
        os.makedirs(os.path.join(ipydir, "profile_default", "log"))
        open(os.path.join(ipydir, "profile_default", "log", "old.log"), "w").close()
        assert _ipcluster("clean", "--all").returncode == 1, "a running cluster in one profile"
        assert not os.path.exists(os.path.join(ipydir, "profile_default", "log", "old.log")), "the others are cleaned"
        forced = _ipcluster("clean", "--all", "--force")
        assert forced.returncode == 0, forced.stderr
        assert not os.path.exists(cluster.cluster_file)
        assert cluster.controller.running, "--force removes files, it does not stop processes"
    finally:
        cluster.stop_cluster_sync()
    _wait_gone(_cluster_pids(cluster), STOP_BOUND)


def test_ipcluster_engines_adds_engines_detached_and_in_the_foreground(ipydir):
    assert _ipcluster("engines", "-n", "1").returncode == 1, "no cluster to add to"
    assert _ipcluster("start", "-n", "1", "--daemonize", "--", *FAST).returncode == 0
    cluster_file = os.path.join(ipydir, "profile_default", "security", "cluster-.json")
    foreground = None
    rc = kernelpar.Client(connection.connection_file(os.path.dirname(os.path.dirname(cluster_file)), "client"))
    try:
        added = _ipcluster("engines", "-n", "1", "--daemonize")
        assert added.returncode == 0, added.stderr
        assert "Added 1 engines" in added.stdout
        assert len(rc.ids) == 2, "registered when --daemonize returns"
        assert [row.split()[3] for row in _ipcluster("list").stdout.strip().splitlines()[1:]] == ["2"]

        foreground = subprocess.Popen([sys.executable, "-m", "kernelpar.cluster", "engines", "-n", "1"],
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        rc.wait_for_engines(3, timeout=60)
        foreground.send_signal(signal.SIGINT)
        assert foreground.wait(30) == 0, foreground.stdout.read()
        _wait_for(lambda: len(rc.ids) == 2, 30, "the foreground engine to unregister")
        assert rc[:].apply_sync(os.getpid) and len(rc.ids) == 2, "the cluster keeps running"
    finally:
        if foreground is not None and foreground.poll() is None:
            foreground.kill()
            foreground.wait()
        rc.close()
        pids, ipcluster_pid = _pids_in_cluster_file(cluster_file)
        stop = _ipcluster("stop")
    assert stop.returncode == 0, stop.stderr
    assert len(pids) == 3, "the controller, the cluster's engine and the detached one"
    _wait_gone(pids + [ipcluster_pid], STOP_BOUND)
