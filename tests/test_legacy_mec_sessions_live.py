"""The legacy MultiEngineClient's magics (MAG-01..MAG-04, in an in-process IPython shell) and
the scenarios that need private clusters: the 4-engine session of the 0.10 docs (§8.2,
reached through a FURL file), an engine killed while it holds commands, and ``kill``.
"""

import importlib
import os
import re
import signal

import psutil
import pytest
from ipyshell import interactive_shell
from IPython.utils.capture import capture_output
from legacymec import ANSI, WAIT, clean_engines, hold, mec, plain, release, wait_queued, wait_until  # noqa: F401

import kernelpar as ipp
from kernelpar.client.legacy import magic
from kernelpar.client.legacy.error import (
    CompositeError,
    EngineError,
    NoEnginesRegistered,
)
from kernelpar.client.legacy.multiengineclient import MultiEngineClient
from kernelpar.client.legacy.pendingresult import PendingResult
from kernelpar.client.legacy.resultlist import ResultList

pytestmark = pytest.mark.timeout(120)


# -- magics (MAG-01..MAG-04) ------------------------------------------------------------------------------------


@pytest.fixture
def shell(ipython_dir):
    with interactive_shell() as sh:
        try:
            yield sh
        finally:
            magic.active_client = None
            if magic._autopx_transformer is not None:
                magic._disable_autopx()


def run_cell(shell, cell):
    with capture_output() as io:
        result = shell.run_cell(cell)
    return result, io.stdout


def test_mag01_px(shell, mec):
    mec.activate()
    result, out = run_cell(shell, "%px lm_c = 'speed'")
    assert out.startswith("Parallel execution on engines: all\n")
    assert isinstance(result.result, ResultList) and "]: lm_c = 'speed'" in plain(result.result)
    mec.targets = [1]
    result, out = run_cell(shell, "px print(lm_c)")
    assert out.startswith("Parallel execution on engines: [1]\n")
    assert [r["stdout"] for r in result.result] == ["speed\n"]
    mec.targets, mec.block = "all", False
    result, _ = run_cell(shell, "%px lm_d = {'a': 1}")
    assert isinstance(result.result, PendingResult)
    assert mec.pull("lm_d", block=True) == [{"a": 1}] * 2
    result, _ = run_cell(shell, "%px 1/0")
    assert isinstance(result.result, PendingResult)
    with pytest.raises(CompositeError):
        result.result.r


def test_mag02_result(shell, mec):
    mec.activate()
    mec.reset()
    mec.execute("lm_e = 1")
    latest = mec.execute("print('x')")
    result, _ = run_cell(shell, "%result")
    assert [r["number"] for r in result.result] == [r["number"] for r in latest]
    n = latest[0]["number"] - 1
    result, _ = run_cell(shell, f"%result {n}")
    assert result.result[0]["input"]["raw"] == "lm_e = 1"
    mec.reset()
    result, _ = run_cell(shell, "%result")
    assert isinstance(result.error_in_exec, CompositeError)


def test_mag03_autopx(shell, mec):
    mec.activate()
    _, out = run_cell(shell, "%autopx")
    assert out == "Auto Parallel Enabled\nType %autopx to disable\n"
    result, out = run_cell(shell, "lm_f = 3\nfor i in range(2):\n    lm_f += i\n")
    assert "lm_f" not in shell.user_ns
    assert ANSI.sub("", out).startswith("<Results List>\n[0] In [1]: lm_f = 3\nfor i in range(2):\n    lm_f += i\n[1]")
    assert mec.pull("lm_f") == [4, 4]
    result, _ = run_cell(shell, "1/0")
    assert isinstance(result.error_in_exec, CompositeError)
    mec.block = False
    _, out = run_cell(shell, "lm_g = 1")
    assert re.fullmatch(r"<kernelpar\.client\.legacy\.pendingresult\.PendingResult object at 0x[0-9a-f]+>\n", out)
    _, out = run_cell(shell, "%autopx")
    assert out == "Auto Parallel Disabled\n"
    run_cell(shell, "lm_h = 5")
    assert shell.user_ns["lm_h"] == 5


def test_mag04_no_active_client(shell):
    from kernelpar.client.legacy import client

    importlib.reload(client)  # as in 0.10, importing IPython.kernel.client installs the magics
    assert {"px", "result", "autopx"} <= set(shell.magics_manager.magics["line"])
    assert (client.MultiEngineClient, client.CompositeError) == (MultiEngineClient, CompositeError)
    expected = "\nError:  No Controller is activated\nUse activate() on a RemoteController object to activate it " \
               "for magics.\n\n"
    for cell in ("%px a = 1", "%result"):
        result, out = run_cell(shell, cell)
        assert out == expected and result.result is None
    _, out = run_cell(shell, "%autopx")
    assert out == "No active RemoteController found, use RemoteController.activate().\n"


# -- private clusters: the 4-engine doc session over a FURL file, engine death, kill -----------------------


@pytest.mark.slow
def test_parallel_multiengine_doc_session_through_a_furl_file(tmp_path):
    """The 0.10 ``parallel_multiengine.txt`` session (§8.2) on 4 engines, client from a FURL file."""
    furl_file = tmp_path / "ipcontroller-mec.furl"
    cluster = ipp.Cluster(n=4, profile_dir=str(tmp_path / "profile_mec"),
                          controller_args=["--ping", "200", "--multiengine-furl-file", str(furl_file)])
    with cluster as rc:
        rc.wait_for_engines(4, timeout=60)
        mec = MultiEngineClient(str(furl_file))
        assert mec.get_ids() == [0, 1, 2, 3]
        assert mec.map(lambda x: x**10, range(32)) == [x**10 for x in range(32)]

        @mec.parallel()
        def f(x):
            return 10.0 * x**4

        assert f(range(32))[:3] == [0.0, 10.0, 160.0]
        assert [r["number"] for r in mec.execute("a=5")] == [1] * 4
        assert plain(mec.execute("b=10")).splitlines()[1] == "[0] In [2]: b=10"
        assert [r["id"] for r in mec.execute("c=a+b", targets=[0, 2])] == [0, 2]
        mec.execute("c=a-b", targets=[1, 3])
        assert plain(mec.execute("print(c)")) == "<Results List>\n" + "".join(
            f"[{k}] In [4]: print(c)\n[{k}] Out[4]: {15 if k % 2 == 0 else -5}\n\n" for k in range(4))
        result = mec.execute("d=10; print(d)")
        assert [(r["number"], r["stdout"]) for r in result] == [(5, "10\n")] * 4
        mec.execute("import time")
        pr = mec.execute("time.sleep(0.5)", block=False)
        assert pr.get_result(block=False) is None
        assert isinstance(pr.get_result(), ResultList)
        mec.block = False
        pr_list = [mec.execute("time.sleep(0.05)") for _ in range(10)]
        assert mec.barrier(pr_list) is None and isinstance(pr_list[0].r, ResultList)
        mec.targets = [0, 2]
        assert [r["id"] for r in mec.execute("a=5").r] == [0, 2]
        mec.targets, mec.block = "all", True
        assert [r["stdout"] for r in mec.execute("b=10; print(b)")] == ["10\n"] * 4
        assert mec.push(dict(a=1.03234, b=3453)) == [None] * 4
        assert mec.pull(("a", "b")) == [[1.03234, 3453]] * 4
        assert mec.zip_pull(("a", "b")) == [(1.03234,) * 4, (3453,) * 4]
        assert mec.scatter("a", range(16)) == [None] * 4
        assert [r["stdout"] for r in mec.execute("print(a)")] == [f"{list(range(i, i + 4))}\n" for i in (0, 4, 8, 12)]
        assert mec.gather("a") == list(range(16))
        mec.scatter("x", range(64))
        mec.execute("y = [i**10 for i in x]")
        assert mec.gather("y")[:4] == [0, 1, 1024, 59049]
        with pytest.raises(CompositeError) as info:
            mec.execute("1/0")
        assert len(info.value.elist) == 4
        second = MultiEngineClient(str(furl_file))
        assert second._client is mec._client and second is not mec
        mec.reset()
        rc[:].clear(block=True)


@pytest.mark.slow
def test_mec18_engine_death_fails_pending_results_and_mec28_kill(tmp_path):
    cluster = ipp.Cluster(n=2, profile_dir=str(tmp_path / "profile_mec_kill"), controller_args=["--ping", "200"])
    with cluster as rc:
        rc.wait_for_engines(2, timeout=60)
        mec = MultiEngineClient.from_client(rc)
        mec.execute("import os; lm_pid = os.getpid()")
        pids = mec.pull("lm_pid")
        release = tmp_path / "never"
        running = mec.execute(hold(release), targets=0, block=False)
        behind = mec.execute("a = 1", targets=0, block=False)
        mapped = mec.raw_map(lambda x: x, [list(range(4))], block=False)
        wait_queued(mec, 0, 2)
        os.kill(pids[0], signal.SIGKILL)
        for pr in (running, behind):
            with pytest.raises(CompositeError) as info:
                pr.r
            assert info.value.elist[0][0] is not None and issubclass(info.value.elist[0][0], EngineError)
        with pytest.raises(CompositeError) as info:
            mapped.r
        assert [ev._ipython_engine_info["engineid"] for _, ev, _ in info.value.elist] == [0]
        wait_until(lambda: mec.get_ids() == [1], "engine 0 to be unregistered")
        assert mec.pull("id") == [1]

        assert mec.kill(targets=1) == [None]
        assert mec.get_ids() == []
        with pytest.raises(NoEnginesRegistered, match="no engines registered.*~/.ipython/log"):
            mec.execute("a = 1")
        assert len(mec) == 0 and not mec
        controller = psutil.Process(cluster.controller.pid)
        assert mec.kill(controller=True) is None
        assert rc.closed
        controller.wait(WAIT)
