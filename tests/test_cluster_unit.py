"""Unit tests of kernelpar.cluster that need no controller or engine: argument parsing,
command lines, launcher lookup, cluster-file round trips, process-group stopping (with
stand-in ``sleep`` processes), and the ``_sync`` twins."""

import asyncio
import os
import re
import signal
import sys
import textwrap
import time

import psutil
import pytest

from kernelpar.cluster import Cluster, LauncherNotAvailable, LocalControllerLauncher, LocalEngineSetLauncher
from kernelpar.cluster import app, launchers, legacycli
from kernelpar.cluster._async import run_sync
from kernelpar.cluster.process import ProcessHandle, stop_handles

# how long a stop may take before it counts as not stopping (the 1 s goal is benchmarked)
STOP_BOUND = 5.0
SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


class SleeperEngines(LocalEngineSetLauncher):
    """Engine sets whose 'engines' just sleep: the launcher machinery without engines."""

    def command(self):
        return SLEEPER


STUBBORN = [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print('ready', flush=True); time.sleep(60)"]


class StubbornEngines(LocalEngineSetLauncher):
    def command(self):
        return STUBBORN


class StubbornController(LocalControllerLauncher):
    def command(self):
        return STUBBORN


@pytest.fixture
def profile_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path))
    path = tmp_path / "profile_unit"
    for sub in ("security", "log"):
        (path / sub).mkdir(parents=True)
    return str(path)


def _gone(pids, timeout=2.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
        if not alive:
            return True
        time.sleep(0.02)
    return False


# --- command line


def test_start_arguments_and_controller_passthrough():
    parser = app.build_parser()
    argv, controller_args = app.split_controller_args(
        ["start", "-n", "3", "--profile", "p", "--cluster-id", "c", "--daemonize", "--ip", "*", "--", "--ping", "200"])
    args = parser.parse_args(argv)
    assert (args.command, args.n, args.profile, args.cluster_id, args.daemonize, args.ip) == (
        "start", 3, "p", "c", True, "*")
    assert controller_args == ["--ping", "200"]
    assert parser.parse_args(["start", "--n=4"]).n == 4
    assert parser.parse_args(["start"]).cluster_id == ""


def test_classic_local_form_goes_to_the_0_10_command_line():
    # the 0.10 modes and their options are tested in test_furl.py
    assert legacycli.is_legacy(["local", "-n", "2"])
    args, _ = legacycli.parse(["local", "-n", "2"])
    assert (args.mode, args.n) == ("local", 2)


def test_stop_and_list_without_clusters(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        app.main(["stop", "--ipython-dir", str(tmp_path)])
    assert exit_info.value.code == app.ALREADY_STOPPED
    assert "no cluster '' is running" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        app.main(["list", "--ipython-dir", str(tmp_path)])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.split() == ["PROFILE", "CLUSTER", "ID", "RUNNING", "ENGINES", "LAUNCHER"]


def test_controller_args_only_for_start():
    with pytest.raises(SystemExit) as exit_info:
        app.main(["list", "--", "--ping", "200"])
    assert exit_info.value.code == 2


# --- launchers


def test_launcher_lookup():
    assert launchers.engine_launcher_class("local") is LocalEngineSetLauncher
    assert launchers.engine_launcher_class("LocalEngineSetLauncher") is LocalEngineSetLauncher
    assert launchers.controller_launcher_class("Local") is LocalControllerLauncher
    assert launchers.engine_launcher_class(SleeperEngines) is SleeperEngines
    assert launchers.engine_launcher_class("kernelpar.cluster.LocalEngineSetLauncher") is LocalEngineSetLauncher
    with pytest.raises(LauncherNotAvailable, match="'mpi' engine launcher is not available yet"):
        launchers.engine_launcher_class("MPI")
    with pytest.raises(LauncherNotAvailable, match="unknown engine launcher 'nope'"):
        launchers.engine_launcher_class("nope")
    with pytest.raises(LauncherNotAvailable):
        Cluster(engines="slurm")


def test_command_lines(profile_dir):
    controller = LocalControllerLauncher(profile_dir=profile_dir, cluster_id="c1", args=["--ping", "200"])
    assert controller.command() == [sys.executable, "-m", "kernelpar.controller", "--profile-dir", profile_dir,
                                    "--cluster-id", "c1", "--ping", "200"]
    engines = LocalEngineSetLauncher(profile_dir=profile_dir, cluster_id="c1", n=2, timeout=30, args=["--x"])
    assert engines.command() == [sys.executable, "-m", "kernelpar.engine", "--profile-dir", profile_dir,
                                 "--cluster-id", "c1", "--timeout", "30", "--x"]


def test_child_environment_names_the_parent(profile_dir, monkeypatch):
    monkeypatch.setenv("KERNELPAR_PARENT_PID", "1")
    bound = LocalEngineSetLauncher(profile_dir=profile_dir, parent_pid=1234, environment={"A": "b"})
    env = bound.child_environment({"C": "d"})
    assert (env["KERNELPAR_PARENT_PID"], env["A"], env["C"]) == ("1234", "b", "d")
    assert env["PATH"] == os.environ["PATH"]
    free = LocalEngineSetLauncher(profile_dir=profile_dir, parent_pid=None)
    assert "KERNELPAR_PARENT_PID" not in free.child_environment()


def test_engine_set_start_stop_and_callbacks(profile_dir):
    engines = SleeperEngines(profile_dir=profile_dir, cluster_id="c", n=3, engine_set_id="s")
    stopped = []
    engines.on_stop(stopped.append)
    run_sync(engines.start())
    assert engines.state == "running" and engines.running_count == 3
    for pid in engines.pids:
        assert os.getpgid(pid) == pid  # each leads its own process group
    assert len(engines.output_files) == 3 and all(os.path.exists(f) for f in engines.output_files)
    t0 = time.monotonic()
    run_sync(engines.stop())
    assert time.monotonic() - t0 < STOP_BOUND
    assert engines.state == "after" and len(stopped) == 1
    assert set(stopped[0]["exit_codes"].values()) == {-signal.SIGTERM}
    assert _gone(engines.pids, STOP_BOUND)
    late = []
    engines.on_stop(late.append)  # registering after the stop calls back at once
    assert late == stopped


def test_poll_notices_processes_that_exit_by_themselves(profile_dir):
    engines = SleeperEngines(profile_dir=profile_dir, n=2)
    run_sync(engines.start())
    for pid in engines.pids:
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 2
    while engines.poll() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert engines.state == "after"
    assert set(engines.stop_data["exit_codes"].values()) == {-signal.SIGKILL}


def test_stop_kills_what_ignores_sigterm_and_the_whole_group(profile_dir, tmp_path):
    # a leader that ignores SIGTERM and has a child in its group that ignores it too
    script = tmp_path / "stubborn.py"
    script.write_text(textwrap.dedent("""
        import signal, subprocess, sys, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        child = subprocess.Popen([sys.executable, "-c",
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"])
        print(child.pid, flush=True)
        time.sleep(60)
    """))
    handle = ProcessHandle.spawn([sys.executable, str(script)], dict(os.environ), str(tmp_path / "out.log"))
    deadline = time.monotonic() + 10
    while not (tmp_path / "out.log").read_text().strip() and time.monotonic() < deadline:
        time.sleep(0.02)
    child = int((tmp_path / "out.log").read_text())
    t0 = time.monotonic()
    left = run_sync(stop_handles([handle]))
    assert left == [] and time.monotonic() - t0 < STOP_BOUND
    assert handle.returncode == -signal.SIGKILL
    assert _gone([handle.pid, child], STOP_BOUND)


def test_reattached_handle_checks_identity(tmp_path):
    handle = ProcessHandle.spawn(SLEEPER, dict(os.environ), str(tmp_path / "out.log"))
    again = ProcessHandle.from_dict(handle.to_dict())
    assert again.popen is None and not again.exited()
    impostor = ProcessHandle.from_dict({"pid": handle.pid, "create_time": handle.create_time - 100})
    assert impostor.exited() and not impostor.signal_group(signal.SIGTERM)
    run_sync(stop_handles([again]))  # stopped through the re-attached handle
    assert again.exited()
    handle.reap()
    assert handle.returncode == -signal.SIGTERM


# --- Cluster


def test_cluster_defaults_and_repr(profile_dir, tmp_path):
    c = Cluster()
    assert re.fullmatch(r"\d+-[a-z0-9]{4}", c.cluster_id)
    assert c.profile_dir == str(tmp_path / "profile_default")
    assert c.cluster_file == os.path.join(c.profile_dir, "security", f"cluster-{c.cluster_id}.json")
    assert repr(Cluster(cluster_id="x")) == "<Cluster(cluster_id='x', profile='default')>"
    assert repr(Cluster(cluster_id="x", profile="p")) == "<Cluster(cluster_id='x', profile='p')>"
    assert repr(Cluster(cluster_id="x", profile_dir="/elsewhere/p")) == "<Cluster(cluster_id='x', profile_dir='/elsewhere/p')>"
    with pytest.raises(TypeError, match="bogus"):
        Cluster(bogus=1)


def test_cluster_file_round_trip(profile_dir):
    c = Cluster(n=2, profile_dir=profile_dir, cluster_id="rt", engines=SleeperEngines,
                controller_args=["--ping", "200"], engine_args=["--e"], controller_ip="127.0.0.1")
    set_id = c.start_engines_sync(2)
    extra = c.add_engines_sync(1)
    try:
        assert set_id != extra and list(c.engines) == [set_id, extra]
        assert os.stat(c.cluster_file).st_mode & 0o777 == 0o600
        assert repr(c) == f"<Cluster(cluster_id='rt', profile='unit', engine_sets=['{set_id}', '{extra}'])>"
        again = Cluster.from_file(c.cluster_file, engines=SleeperEngines)
        assert (again.cluster_id, again.profile_dir, again.n) == ("rt", profile_dir, 2)
        assert (again.controller_args, again.engine_args, again.controller_ip) == (["--ping", "200"], ["--e"], "127.0.0.1")
        assert again.shutdown_atexit is False
        assert sorted(again.engines) == sorted([set_id, extra])
        assert again.engines[set_id].pids == c.engines[set_id].pids
        assert again.to_dict()["engines"]["sets"] == c.to_dict()["engines"]["sets"]
        with pytest.raises(KeyError):
            c.stop_engines_sync("nope")
        again.stop_engines_sync(extra)  # stop from the re-attached copy
        assert _gone(c.engines[extra].pids, 1.0)
    finally:
        c.stop_cluster_sync()
    assert not os.path.exists(c.cluster_file)
    assert c.engines == {}


def test_stop_cluster_kills_processes_that_ignore_sigterm_within_a_second(profile_dir):
    c = Cluster(n=2, profile_dir=profile_dir, cluster_id="stubborn", engines=StubbornEngines,
                controller=StubbornController)
    run_sync(c._spawn_controller())  # no connection files will come: don't wait for them
    c.start_engines_sync()
    launchers = [c.controller, c.engine_set]
    deadline = time.monotonic() + 10
    while not all("ready" in open(f).read() for l in launchers for f in l.output_files):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    pids = [c.controller.pid] + c.engine_set.pids
    t0 = time.monotonic()
    c.stop_cluster_sync()
    assert time.monotonic() - t0 < 1.0
    assert _gone(pids, 0.05)
    assert [l.stop_data for l in launchers] == [
        {"exit_code": -signal.SIGKILL, "pid": pids[0]},
        {"exit_codes": {str(pid): -signal.SIGKILL for pid in pids[1:]}},
    ]
    assert not os.path.exists(c.cluster_file)


def test_sync_twin_inside_a_running_loop():
    async def inner():
        await asyncio.sleep(0)
        return threadname()

    def threadname():
        import threading

        return threading.current_thread().name

    async def notebook_cell():
        return run_sync(inner())  # as a _sync method called from a notebook

    assert run_sync(inner()) == "MainThread"
    assert asyncio.run(notebook_cell()).startswith("kernelpar-sync")
    assert Cluster.stop_cluster_sync.__name__ == "stop_cluster_sync"


@pytest.mark.parametrize("n, error", [("2", TypeError), (2.0, TypeError), (True, TypeError), (-1, ValueError)])
def test_a_bad_number_of_engines_is_refused_before_anything_starts(tmp_path, n, error):
    with pytest.raises(error, match="number of engines n"):
        Cluster(n=n, profile_dir=str(tmp_path))
    cluster = Cluster(n=1, profile_dir=str(tmp_path))
    with pytest.raises(error, match="number of engines n"):
        cluster.start_engines_sync(n)
    assert cluster.engines == {} and cluster.controller is None


@pytest.mark.parametrize("kwargs, error", [({"delay": "x"}, TypeError), ({"delay": -1}, ValueError),
                                           ({"engine_timeout": "x"}, TypeError)])
def test_bad_delays_and_timeouts_are_refused(tmp_path, kwargs, error):
    name = next(iter(kwargs))
    with pytest.raises(error, match=name):
        Cluster(n=1, profile_dir=str(tmp_path), **kwargs)
    assert Cluster(n=1, profile_dir=str(tmp_path), delay=1, engine_timeout=5).delay == 1.0
