"""Shared fixtures, and the rule that a test session leaves no kernelpar process behind.

* ``ipython_dir`` (session): a temporary ``$IPYTHONDIR`` for the whole session, so tests
  never touch ``~/.ipython`` and never see clusters from outside the session.
* ``cluster`` (session): one ``Cluster(n=2)`` with fast heartbeats (``--ping 200``),
  started once, stopped at the end of the session.
* ``rc`` (session): a client of that cluster, after both engines registered.

At the end of the session every process whose command line mentions kernelpar and that
either descends from pytest or was started during the session by one of ours (it
carries this session's ``KERNELPAR_TEST_SESSION`` token in its environment, e.g. a
daemonized ipcluster re-parented to init) must be gone.  Leftovers are reported,
killed, and fail the run.
"""

import os
import time
import uuid

import psutil
import pytest

SESSION_TOKEN_ENV = "KERNELPAR_TEST_SESSION"
LEFTOVER_GRACE = 3.0


def pytest_configure(config):
    # inherited by every process the session starts, so leftovers can be recognized even
    # after they have been re-parented; never by anyone else's processes
    os.environ[SESSION_TOKEN_ENV] = uuid.uuid4().hex
    config._kernelpar_session_start = time.time()


def _ours(proc, token, since):
    try:
        if not any("kernelpar" in part for part in proc.cmdline()):
            return False
        if proc.create_time() < since - 1:
            return False
        return proc.environ().get(SESSION_TOKEN_ENV) == token
    except psutil.Error:
        return False


def _leftovers(config):
    me = psutil.Process()
    token = os.environ.get(SESSION_TOKEN_ENV)
    found = {p.pid: p for p in me.children(recursive=True)}
    for proc in psutil.process_iter():
        if proc.pid not in found and proc.pid != me.pid and _ours(proc, token, config._kernelpar_session_start):
            found[proc.pid] = proc
    alive = []
    for proc in found.values():
        try:
            if proc.status() != psutil.STATUS_ZOMBIE and any("kernelpar" in p for p in proc.cmdline()):
                alive.append(proc)
        except psutil.Error:
            pass
    return alive


def pytest_sessionfinish(session, exitstatus):
    # session fixtures are finalized by now; give processes told to stop a moment to exit
    deadline = time.monotonic() + LEFTOVER_GRACE
    leftovers = _leftovers(session.config)
    while leftovers and time.monotonic() < deadline:
        time.sleep(0.1)
        leftovers = _leftovers(session.config)
    if not leftovers:
        return
    lines = []
    for proc in leftovers:
        try:
            lines.append(f"  pid {proc.pid} (ppid {proc.ppid()}): {' '.join(proc.cmdline())}")
            proc.kill()
        except psutil.Error:
            pass
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    message = "kernelpar processes left running at the end of the session (now killed):\n" + "\n".join(lines)
    if reporter is not None:
        reporter.write_line(message, red=True, bold=True)
    else:
        print(message)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def ipython_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("ipython")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IPYTHONDIR", str(path))
        yield str(path)


@pytest.fixture(scope="session")
def cluster(ipython_dir, tmp_path_factory):
    from kernelpar.cluster import Cluster

    c = Cluster(n=2, profile_dir=str(tmp_path_factory.mktemp("profile_session")),
                controller_args=["--ping", "200"], engine_timeout=60)
    c.start_cluster_sync()
    try:
        yield c
    finally:
        c.stop_cluster_sync()


@pytest.fixture(scope="session")
def rc(cluster):
    client = cluster.connect_client_sync()
    try:
        client.wait_for_engines(2, timeout=60)
        yield client
    finally:
        client.close()
