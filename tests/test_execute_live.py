"""``execute`` on live engines: plain cells, IPython syntax, errors and results."""

import pytest

import kernelpar as ipp

pytestmark = pytest.mark.timeout(60)


def test_plain_silent_cells_run_in_the_user_namespace(rc):
    dview = rc[:]
    dview.execute("import math\nroot = math.sqrt(16)", block=True)
    assert dview["root"] == [4.0, 4.0]
    assert rc[0].apply_sync(ipp.interactive(lambda: root)) == 4.0  # noqa: F821


def test_errors_in_silent_cells_show_the_cell_source(rc):
    ar = rc[0].execute("def f(x):\n    return 1 / x\ny = f(0)", block=False)
    with pytest.raises(ipp.RemoteError) as info:
        ar.get(timeout=10)
    err = info.value
    assert err.ename == "ZeroDivisionError"
    assert "return 1 / x" in err.traceback and "y = f(0)" in err.traceback
    assert err.engine_info["method"] == "execute"


def test_ipython_syntax_still_works_when_silent(rc):
    ar = rc[0].execute("%time z = 5", block=True)
    assert rc[0]["z"] == 5
    assert "Wall time" in ar.stdout


def test_non_silent_cells_return_the_last_value(rc):
    ar = rc[0].execute("print('hi')\n3 + 4", silent=False, block=True)
    assert ar.stdout == "hi\n"
    assert ar.execute_result["data"]["text/plain"] == "7"


def test_engine_runs_exit_handlers_when_stopped(tmp_path):
    marker = tmp_path / "atexit-ran"
    with ipp.Cluster(n=1, profile_dir=str(tmp_path / "profile_exit"), controller_args=["--ping", "200"]) as rc:
        rc[:].execute("%time x = 1", block=True)  # load IPython, whose teardown is what is skipped
        rc[:].execute(f"import atexit\natexit.register(lambda: open({str(marker)!r}, 'w').write('ran'))", block=True)
    assert marker.read_text() == "ran"
