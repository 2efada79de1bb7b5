"""IPython 0.10's processes and files, live: ``ipcluster local``, ``ipcontroller``, ``ipengine
--furl-file`` and FURL handshakes with real controllers.

Checklist items CLI-01..CLI-05, CON-01 (against a live controller), the sys.path/cwd part
of ENG-01, the bad-input rules of the FURL issue (missing/empty/malformed FURL files, a
dead controller, a wrong swiss number) and a modern and a legacy client using one cluster
at once.  Every test has its own ``$IPYTHONDIR`` (FURL files have one place per IPython
directory) and stops everything it started, also on failure.
"""

import asyncio
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time

import psutil
import pytest
import zmq

import kernelpar
from kernelpar.client.legacy import furl as legacy_furl
from kernelpar.cluster.launchers.base import pythonpath_with_kernelpar
from kernelpar.cluster.process import ProcessHandle, stop_handles
from kernelpar.wire import connection, furl
from kernelpar.wire.protocol import EXIT_NOT_REGISTERED

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

FAST = ["--ping", "200"]
SECURE = re.compile(r"pb://[a-z2-7]{32}@127\.0\.0\.1:\d+/[a-z2-7]{32}\n\Z")
INSECURE = re.compile(r"pbu://127\.0\.0\.1:\d+/[a-z2-7]{32}\n\Z")
WAIT = 60.0
STOP_BOUND = 10.0


@pytest.fixture
def ipydir(tmp_path, monkeypatch):
    path = tmp_path / "ipython"
    path.mkdir()
    monkeypatch.setenv("IPYTHONDIR", str(path))
    yield str(path)
    legacy_furl.close_cached_clients()


@pytest.fixture
def processes():
    """Start processes in their own groups; every one is stopped at the end of the test."""
    handles = []

    def start(*args, output, cwd=None):
        env = dict(os.environ, PYTHONPATH=pythonpath_with_kernelpar(os.environ.get("PYTHONPATH")) or "")
        handle = ProcessHandle.spawn([sys.executable, "-m", *args], env, str(output), cwd=cwd)
        handles.append(handle)
        return handle

    yield start
    asyncio.run(stop_handles(handles))


def security(ipydir, kind):
    return os.path.join(ipydir, "security", f"ipcontroller-{kind}.furl")


def wait_for(predicate, what, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def read(path):
    with open(path) as f:
        return f.read()


def alive(pids):
    result = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                result.append(pid)
        except psutil.NoSuchProcess:
            pass
    return result


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_controller(processes, ipydir, tmp_path, *args, name="ipcontroller"):
    """``ipcontroller ARGS`` logging to ``tmp_path/<name><pid>.log``; returns (handle, log path)."""
    handle = processes("kernelpar.controller", *FAST, "-l", str(tmp_path / name), *args,
                       output=tmp_path / f"{name}.out")
    return handle, tmp_path / f"{name}{handle.pid}.log"


def wait_ready(handle, output, ipydir, profile="default"):
    client_json = connection.connection_file(os.path.join(ipydir, f"profile_{profile}"), "client")
    wait_for(lambda: os.path.exists(client_json) or handle.poll() is not None, "the controller")
    assert handle.poll() is None, read(output)
    return client_json


def wait_engines(client, n):
    client.wait_for_engines(n, timeout=WAIT)
    return sorted(client.ids)


# --- ipcluster local (CLI-01, CLI-02, CLI-03, ENG-01, modern + legacy at once)


def test_ipcluster_local_starts_two_engines_writes_furls_serves_both_apis_and_stops_on_ctrl_c(
        ipydir, tmp_path, processes):
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "localmod.py").write_text("VALUE = 42\n")
    out = tmp_path / "ipcluster.out"
    ipcluster = processes("kernelpar.cluster", "local", "--", *FAST, output=out, cwd=str(workdir))
    wait_for(lambda: "engines are running" in read(out) or ipcluster.poll() is not None, "ipcluster local")
    text = read(out)
    assert ipcluster.poll() is None, text
    # CLI-01: -n defaults to 2: one controller and two engines
    assert "starting engine: 0\nstarting engine: 1\n" in text and "starting engine: 2" not in text
    cluster_file = os.path.join(ipydir, "profile_default", "security", "cluster-.json")
    d = connection.read_json(cluster_file)
    controller_pid = d["controller"]["state"]["process"]["pid"]
    engine_pids = [p["pid"] for s in d["engines"]["sets"].values() for p in s["processes"]]
    assert len(engine_pids) == 2 and len(alive([controller_pid, *engine_pids])) == 3

    # CLI-02 / CLI-03: three one-line FURL files, 0600, in $IPYTHONDIR/security (0700)
    sec = os.path.join(ipydir, "security")
    assert stat.S_IMODE(os.stat(sec).st_mode) == 0o700
    furls = {}
    for kind in ("mec", "tc", "engine"):
        content = read(security(ipydir, kind))
        assert SECURE.match(content), content
        assert stat.S_IMODE(os.stat(security(ipydir, kind)).st_mode) == 0o600
        furls[kind] = furl.parse_furl(content)
    assert furls["mec"].tub_id == furls["tc"].tub_id != furls["engine"].tub_id  # the client tub and the engine tub
    assert furls["mec"].hints == furls["tc"].hints != furls["engine"].hints
    assert len({f.name for f in furls.values()}) == 3
    assert os.listdir(os.path.join(ipydir, "log"))  # --logdir defaults to $IPYTHONDIR/log

    # CON-01 live: the default files; the engines registered before the client FURLs were reported
    mec_client = legacy_furl.client_for("", "mec")
    assert sorted(mec_client.ids) == [0, 1]
    assert legacy_furl.client_for(security(ipydir, "mec"), "mec") is mec_client  # cached per FURL
    # ENG-01: '' first on sys.path, the launch directory as cwd (its modules importable)
    assert mec_client[:].apply_sync(lambda: __import__("sys").path[0]) == ["", ""]
    assert mec_client[:].apply_sync(__import__("os").getcwd) == [str(workdir)] * 2
    assert mec_client[:].apply_sync(lambda: __import__("localmod").VALUE) == [42, 42]

    # a modern client from the JSON file and the legacy ones from FURLs, at the same time
    modern = kernelpar.Client(connection.connection_file(os.path.join(ipydir, "profile_default"), "client"))
    try:
        modern[:].push({"shared": 7}, block=True)
        mec_client[:].execute("doubled = shared * 2", block=True)
        assert modern[:].pull("doubled", block=True) == [14, 14]
        tc_client = legacy_furl.client_for(str(furls["tc"]), "tc")
        assert tc_client.load_balanced_view().apply_sync(pow, 6, 2) == 36
    finally:
        modern.close()

    os.kill(ipcluster.pid, signal.SIGINT)
    wait_for(lambda: ipcluster.poll() is not None, "ipcluster to exit after Ctrl-C", STOP_BOUND)
    assert ipcluster.returncode == 0, read(out)
    wait_for(lambda: not alive([controller_pid, *engine_pids]), "every process to exit", STOP_BOUND)
    assert "cluster '' stopped" in read(out)
    assert not any(os.path.exists(security(ipydir, kind)) for kind in ("mec", "tc", "engine"))


def test_ipcluster_local_honours_n_and_logdir(ipydir, tmp_path, processes):
    out = tmp_path / "ipcluster.out"
    logdir = tmp_path / "logs"
    ipcluster = processes("kernelpar.cluster", "local", "-n", "3", "--logdir", str(logdir), "--", *FAST, output=out)
    wait_for(lambda: "engines are running" in read(out) or ipcluster.poll() is not None, "ipcluster local -n 3")
    assert ipcluster.poll() is None, read(out)
    assert "starting engine: 2" in read(out)
    assert sorted(legacy_furl.client_for("", "mec").ids) == [0, 1, 2]
    logs = sorted(os.listdir(logdir))
    assert sum(name.startswith("ipcontroller") for name in logs) == 1
    assert sum(name.startswith(f"ipengine{ipcluster.pid}-") for name in logs) == 3
    os.kill(ipcluster.pid, signal.SIGTERM)
    wait_for(lambda: ipcluster.poll() is not None, "ipcluster to exit after SIGTERM", STOP_BOUND)
    assert ipcluster.returncode == 0, read(out)


def test_engines_killed_right_after_the_start_leave_the_controller_running(ipydir, tmp_path, processes):
    # ipcluster stops everything only when the engines could not start; these ran
    out = tmp_path / "ipcluster.out"
    ipcluster = processes("kernelpar.cluster", "local", "-n", "2", "--", *FAST, output=out)
    wait_for(lambda: "engines are running" in read(out) or ipcluster.poll() is not None, "ipcluster local -n 2")
    mec = legacy_furl.client_for("", "mec")
    assert wait_engines(mec, 2) == [0, 1]
    mec[:].execute("import os", block=True)
    mec[:].execute("os._exit(1)", block=False)
    wait_for(lambda: "all engines have exited" in read(out), "ipcluster to notice the engines exited")
    time.sleep(0.5)
    assert ipcluster.poll() is None, read(out)
    processes("kernelpar.engine", output=tmp_path / "late.out")
    wait_for(lambda: sorted(mec.ids) == [2], "the engine started by hand, alone")
    os.kill(ipcluster.pid, signal.SIGINT)
    wait_for(lambda: ipcluster.poll() is not None, "ipcluster to exit after Ctrl-C", STOP_BOUND)


@pytest.mark.parametrize("command", [["local", "-n", "0"], ["start", "-n", "0"]])
def test_a_cluster_of_no_engines_waits_for_engines_started_by_hand(ipydir, tmp_path, processes, command):
    out = tmp_path / "ipcluster.out"
    ipcluster = processes("kernelpar.cluster", *command, output=out)
    client_json = connection.connection_file(os.path.join(ipydir, "profile_default"), "client")
    wait_for(lambda: os.path.exists(client_json) or ipcluster.poll() is not None, "the controller")
    time.sleep(1.0)
    assert ipcluster.poll() is None, read(out)
    processes("kernelpar.engine", output=tmp_path / "byhand.out")
    with kernelpar.Client(client_json, timeout=WAIT) as rc:
        assert wait_engines(rc, 1) == [0]
        assert rc[0].apply_sync(lambda: "by hand") == "by hand"
    os.kill(ipcluster.pid, signal.SIGINT)
    wait_for(lambda: ipcluster.poll() is not None, "ipcluster to exit after Ctrl-C", STOP_BOUND)
    assert ipcluster.returncode == 0, read(out)


def test_negative_engine_counts_are_refused_by_every_ipcluster_command(ipydir):
    for command in (["local", "-n", "-3"], ["start", "-n", "-1"]):
        result = subprocess.run([sys.executable, "-m", "kernelpar.cluster", *command], capture_output=True,
                                text=True, timeout=60, check=False)
        assert result.returncode == 2 and "-n must be >= 0" in result.stderr, result


# --- ipcontroller's FURL files (CLI-03 -x/-y, CLI-04)


def test_insecure_flags_give_pbu_furls_that_still_need_the_name(ipydir, tmp_path, processes):
    handle, _ = start_controller(processes, ipydir, tmp_path, "-xy")
    wait_ready(handle, tmp_path / "ipcontroller.out", ipydir)
    for kind in ("mec", "tc", "engine"):
        assert INSECURE.match(read(security(ipydir, kind))), read(security(ipydir, kind))
    assert "registration" in legacy_furl.connection_info("", "mec", timeout=WAIT)
    engine_info = legacy_furl.connection_info("", "engine", timeout=WAIT)
    assert "hb_ping" in engine_info
    forged = tmp_path / "forged.furl"
    hints = furl.parse_furl(read(security(ipydir, "mec"))).hints
    furl.write_furl_file(str(forged), furl.make_furl(None, hints, furl.new_name(), secure=False))
    with pytest.raises(ConnectionRefusedError, match="unknown swiss number"):
        legacy_furl.connection_info(str(forged), "mec", timeout=WAIT)


def test_without_r_old_furl_files_are_deleted_at_start_and_at_exit(ipydir, tmp_path, processes):
    stale = {kind: furl.make_furl(furl.new_name(), [("127.0.0.1", 1)], furl.new_name()) for kind in ("mec", "tc", "engine")}
    for kind, f in stale.items():
        furl.write_furl_file(security(ipydir, kind), f)
    # the client FURLs wait for one engine: until then they must simply be gone
    handle, _ = start_controller(processes, ipydir, tmp_path, "--client-furls-after-engines", "1")
    wait_ready(handle, tmp_path / "ipcontroller.out", ipydir)
    assert furl.read_furl_file(security(ipydir, "engine")) != stale["engine"]
    assert not os.path.exists(security(ipydir, "mec")) and not os.path.exists(security(ipydir, "tc"))
    engine = processes("kernelpar.engine", "--furl-file", security(ipydir, "engine"), output=tmp_path / "engine.out")
    wait_for(lambda: os.path.exists(security(ipydir, "tc")) or engine.poll() is not None, "the client FURLs")
    assert engine.poll() is None, read(tmp_path / "engine.out")
    wait_for(lambda: os.path.exists(security(ipydir, "mec")), "the mec FURL")
    assert furl.read_furl_file(security(ipydir, "mec")) != stale["mec"]
    assert legacy_furl.client_for("", "mec").ids == [0]
    asyncio.run(stop_handles([engine, handle]))
    assert handle.returncode == 0, read(tmp_path / "ipcontroller.out")
    assert not any(os.path.exists(security(ipydir, kind)) for kind in ("mec", "tc", "engine"))


@pytest.mark.parametrize("command", [["kernelpar.controller", "-r"],
                                     ["kernelpar.controller", "-r", "--client-port", "10101"],
                                     ["kernelpar.cluster", "local", "-r", "--engine-port", "10102"]])
def test_reuse_without_both_ports_is_an_error(ipydir, command):
    env = dict(os.environ, PYTHONPATH=pythonpath_with_kernelpar(os.environ.get("PYTHONPATH")) or "")
    result = subprocess.run([sys.executable, "-m", *command], capture_output=True, text=True, env=env, timeout=60,
                            check=False)
    assert result.returncode == 1
    assert "-r (reuse FURL files) needs fixed ports: give both --client-port and --engine-port" in result.stderr
    assert not os.path.exists(security(ipydir, "mec"))


def test_reuse_with_fixed_ports_keeps_the_furls_across_restarts(ipydir, tmp_path, processes):
    ports = ["-r", "--client-port", str(free_port()), "--engine-port", str(free_port())]
    first, _ = start_controller(processes, ipydir, tmp_path, *ports, name="first")
    wait_ready(first, tmp_path / "first.out", ipydir)
    before = {kind: read(security(ipydir, kind)) for kind in ("mec", "tc", "engine")}
    old_client = legacy_furl.client_for("", "mec")
    asyncio.run(stop_handles([first]))
    assert first.returncode == 0, read(tmp_path / "first.out")
    assert {kind: read(security(ipydir, kind)) for kind in before} == before  # -r keeps them at exit

    client_json = connection.connection_file(os.path.join(ipydir, "profile_default"), "client")
    wait_for(lambda: not os.path.exists(client_json), "the first controller's files to go")
    second, _ = start_controller(processes, ipydir, tmp_path, *ports, name="second")
    wait_ready(second, tmp_path / "second.out", ipydir)
    assert {kind: read(security(ipydir, kind)) for kind in before} == before  # same host, port, tub id, name
    # the old files still work: an engine and a client, through the restarted controller
    engine = processes("kernelpar.engine", "--furl-file", security(ipydir, "engine"), output=tmp_path / "engine.out")
    client = legacy_furl.client_for(security(ipydir, "mec"), "mec")
    assert client is not old_client and old_client.closed  # the cache noticed the restart
    assert wait_engines(client, 1) == [0]
    assert client[0].apply_sync(os.getpid) == engine.pid


# --- ipcontroller + ipengine by hand (CLI-05)


def test_ipcontroller_and_ipengine_furl_file_by_hand(ipydir, tmp_path, processes):
    # a controller of another profile writes FURLs when asked; its JSON files are not where
    # a plain ipengine looks, so that one uses the default engine FURL file
    handle, _ = start_controller(processes, ipydir, tmp_path, "--profile", "byhand", "--furl-files")
    wait_ready(handle, tmp_path / "ipcontroller.out", ipydir, profile="byhand")
    copied = tmp_path / "elsewhere" / "engine.furl"
    copied.parent.mkdir()
    shutil.copy(security(ipydir, "engine"), copied)
    explicit = processes("kernelpar.engine", f"--furl-file={copied}", output=tmp_path / "e0.out")
    client = legacy_furl.client_for(security(ipydir, "mec"), "mec")
    assert wait_engines(client, 1) == [0]
    default = processes("kernelpar.engine", output=tmp_path / "e1.out")
    assert wait_engines(client, 2) == [0, 1]
    assert client[:].apply_sync(os.getpid) == [explicit.pid, default.pid]


# --- bad input


def test_furl_files_naming_no_live_controller_fail_clearly_within_the_timeout(ipydir, tmp_path, processes):
    dead = tmp_path / "dead.furl"
    furl.write_furl_file(str(dead), furl.make_furl(furl.new_name(), [("127.0.0.1", free_port())], furl.new_name()))
    with pytest.raises(TimeoutError) as info:
        legacy_furl.connection_info(str(dead), "mec", timeout=1)
    assert str(dead) in str(info.value) and "is the controller running?" in str(info.value)
    with pytest.raises(TimeoutError, match=re.escape(str(dead))):
        legacy_furl.client_for(str(dead), "tc", timeout=1)

    empty = tmp_path / "empty.furl"
    empty.write_text("")
    malformed = tmp_path / "malformed.furl"
    malformed.write_text("pb://not-a-furl\n")
    missing = tmp_path / "missing.furl"
    expectations = {dead: ["error connecting to controller", "no controller answered"],
                    empty: ["the file is empty"], malformed: ["holds no valid FURL"],
                    missing: ["did not appear within 1 s"]}
    engines = {path: processes("kernelpar.engine", "--timeout", "1", "--furl-file", str(path),
                               output=tmp_path / f"{path.stem}.out") for path in expectations}
    for path, engine in engines.items():
        wait_for(lambda engine=engine: engine.poll() is not None, f"the engine given {path.name} to give up")
        output = read(tmp_path / f"{path.stem}.out")
        assert engine.returncode == EXIT_NOT_REGISTERED, output
        assert str(path) in output and all(words in output for words in expectations[path]), output


def test_wrong_swiss_number_is_refused_and_logged_malformed_requests_dropped(ipydir, tmp_path, processes):
    handle, log = start_controller(processes, ipydir, tmp_path)
    wait_ready(handle, tmp_path / "ipcontroller.out", ipydir)
    good = furl.read_furl_file(security(ipydir, "mec"))
    forged = tmp_path / "forged.furl"
    furl.write_furl_file(str(forged), furl.make_furl(good.tub_id, good.hints, furl.new_name()))
    with pytest.raises(ConnectionRefusedError) as info:
        legacy_furl.client_for(str(forged), "mec")
    assert str(forged) in str(info.value) and "unknown swiss number" in str(info.value)
    stale_tub = tmp_path / "stale.furl"
    furl.write_furl_file(str(stale_tub), furl.make_furl(furl.new_name(), good.hints, good.name))
    with pytest.raises(ConnectionRefusedError, match="wrong tub"):
        legacy_furl.connection_info(str(stale_tub), "mec")

    # garbage on the FURL port gets no answer and does not disturb the controller
    sock = zmq.Context.instance().socket(zmq.DEALER)
    try:
        sock.linger = 0
        host, port = good.hints[0]
        sock.connect(f"tcp://{host}:{port}")
        sock.send_multipart([b"garbage"])
        sock.send_multipart([furl.PROTOCOL, b"{not json"])
        assert not sock.poll(500)
    finally:
        sock.close()
    # a FURL of the wrong kind is named as such
    with pytest.raises(ValueError, match="is the TaskClient interface .*not the MultiEngineClient interface"):
        legacy_furl.connection_info(security(ipydir, "tc"), "mec")
    assert legacy_furl.connection_info("", "mec")["key"]

    wait_for(lambda: read(log).count("dropped a malformed FURL request") >= 2, "the controller to log the garbage")
    text = read(log)
    assert "refused a FURL request on the client port from 127.0.0.1: unknown swiss number" in text
    assert "wrong tub" in text
    assert good.name not in text  # secrets stay out of the log
