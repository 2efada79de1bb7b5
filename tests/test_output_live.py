"""Live output against the session cluster: publish_data, ``\\r`` in stdout/stderr,
progress of ``wait_interactive`` and ``wait_for_engines``."""

import io
import re
import time

import pytest

import kernelpar as ipp
from kernelpar.client.futures import append_stream, collapse_cr

BOUND = 30  # seconds: an upper bound for things that take milliseconds, never a timing assertion


def _until(predicate, limit=BOUND):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


@pytest.fixture
def interactive_env(monkeypatch):
    for name in ("KERNELPAR_NONINTERACTIVE", "IPP_NONINTERACTIVE"):
        monkeypatch.delenv(name, raising=False)


class FakeTTY(io.StringIO):
    def isatty(self):
        return True


# -- \r collapse (pure) ------------------------------------------------------------------------


def test_collapse_cr_rules():
    assert collapse_cr("10%\r50%\r100%\n") == "100%\n"
    assert collapse_cr("a\r\nb\n") == "a\r\nb\n"  # \r\n is a line ending
    assert collapse_cr("x\ry\nkeep\n50%\r") == "y\nkeep\n50%\r"  # a trailing \r keeps its line
    text = ""
    for chunk in ["start\n", "10%", "\r", "20%\r", "100%\n", "end"]:
        text = append_stream(text, chunk)
    assert text == "start\n100%\nend"


# -- publish_data ---------------------------------------------------------------------------------


def test_publish_data_import_paths():
    from kernelpar.datapub import publish_data
    from kernelpar.engine.datapub import publish_data as engine_publish_data

    assert publish_data is engine_publish_data
    assert not hasattr(ipp, "publish_data")  # as ipyparallel: not exported at top level
    with pytest.raises(RuntimeError):
        publish_data({"a": 1})  # not on an engine


def test_publish_data_seen_while_running(rc, tmp_path):
    flag = tmp_path / "go"

    @ipp.interactive
    def task(flag):
        import os
        import time

        from kernelpar.datapub import publish_data

        publish_data({"stage": 1, "first": [1, 2, 3]})
        deadline = time.monotonic() + 60
        while not os.path.exists(flag) and time.monotonic() < deadline:
            time.sleep(0.01)
        publish_data({"stage": 2, "bytes": b"x" * 100_000})
        return "ok"

    ar = rc[0].apply_async(task, str(flag))
    try:
        assert _until(lambda: ar.data.get("stage") == 1), ar.data
        assert not ar.ready()
        assert ar.data == {"stage": 1, "first": [1, 2, 3]}
        assert ar["data"] is ar.data
    finally:
        flag.touch()
    assert ar.get(BOUND) == "ok"
    # later publications update the namespace, as dict.update
    assert ar.data == {"stage": 2, "first": [1, 2, 3], "bytes": b"x" * 100_000}


def test_publish_data_multi_engine(rc):
    @ipp.interactive
    def task():
        from kernelpar.datapub import publish_data

        import numpy

        publish_data({"arr": numpy.arange(10), "n": 1})
        publish_data({"n": 2})

    ar = rc[:2].apply_async(task)
    ar.get(BOUND)
    assert len(ar.data) == 2
    for data in ar.data:
        assert data["n"] == 2
        assert list(data["arr"]) == list(range(10))


def test_publish_data_from_execute(rc):
    view = rc[0]
    ar = view.execute("from kernelpar.datapub import publish_data; publish_data({'k': 42})")
    ar.get(BOUND)
    assert ar.data == {"k": 42}


# -- \r in stdout / stderr ------------------------------------------------------------------------


def test_stdout_carriage_return_collapsed(rc):
    @ipp.interactive
    def task():
        import sys
        import time

        print("header")
        for pct in (10, 50, 100):
            print(f"{pct}%", end="\r", flush=True)
            time.sleep(0.06)  # separate iopub messages, not one chunk
        print("100% done")
        print("a\rbb\rccc")
        sys.stderr.write("e1\re2\n")
        return 0

    ar = rc[0].apply_async(task)
    ar.get(BOUND)
    assert ar.stdout == "header\n100% done\nccc\n"
    assert ar.stderr == "e2\n"


def test_unfinished_progress_line_keeps_last_version(rc):
    ar = rc[0].apply_async(lambda: print("1/3\r2/3\r3/3", end="\r"))
    ar.get(BOUND)
    assert ar.stdout == "3/3\r"


# -- wait_interactive -----------------------------------------------------------------------------


@pytest.mark.parametrize("var", ["IPP_NONINTERACTIVE", "KERNELPAR_NONINTERACTIVE"])
def test_wait_interactive_noninteractive_text(rc, capsys, monkeypatch, interactive_env, var):
    monkeypatch.setenv(var, "1")
    ar = rc[:2].apply_async(lambda: __import__("time").sleep(0.3))
    ar.wait_interactive(interval=0.05)
    assert ar.ready()
    out = capsys.readouterr().err
    lines = out.splitlines()
    assert re.fullmatch(r"<lambda>:\s+2/2 tasks finished after\s+\d+ s", lines[-2]), out
    assert lines[-1] == "done"
    assert "\r" not in out


def test_wait_interactive_text_when_not_a_tty(rc, capsys, interactive_env):
    ar = rc[:2].apply_async(lambda: 1)
    ar.wait_interactive(widget=None)
    out = capsys.readouterr().err
    assert re.search(r"2/2 tasks finished after", out), out


def test_wait_interactive_timeout_returns(rc, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("IPP_NONINTERACTIVE", "1")
    flag = tmp_path / "go"

    @ipp.interactive
    def wait_for(flag):
        import os
        import time

        deadline = time.monotonic() + 60
        while not os.path.exists(flag) and time.monotonic() < deadline:
            time.sleep(0.01)

    ar = rc[0].apply_async(wait_for, str(flag))
    try:
        ar.wait_interactive(interval=0.05, timeout=0.2)
        assert not ar.ready()
        out = capsys.readouterr().err
        assert re.search(r"0/1 tasks finished after", out), out
        assert "done" not in out
    finally:
        flag.touch()
    ar.get(BOUND)


def test_wait_interactive_tqdm_on_a_tty(rc, monkeypatch, interactive_env):
    fake = FakeTTY()
    monkeypatch.setattr("sys.stderr", fake)
    ar = rc[:2].apply_async(lambda: __import__("time").sleep(0.2))
    ar.wait_interactive(interval=0.05)
    out = fake.getvalue()
    assert "\r" in out  # redrawn in place
    final = out.split("\r")[-1] if out.split("\r")[-1].strip() else out.split("\r")[-2]
    assert "2/2" in final and "100%" in final, out
    assert "tasks/s" in out or "s/tasks" in out, out  # tqdm's rate, in our unit
    assert "finished after" not in out


def test_wait_interactive_widget_without_ipywidgets_falls_back(rc, capsys, interactive_env):
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("ipywidgets installed: the widget would be drawn")
    ar = rc[0].apply_async(lambda: 1)
    ar.wait_interactive(widget=True)
    assert re.search(r"1/1 tasks finished after", capsys.readouterr().err)


# -- wait_for_engines -----------------------------------------------------------------------------


def test_wait_for_engines_quiet_by_default(rc, capsys):
    rc.wait_for_engines(len(rc.ids), timeout=BOUND)
    assert capsys.readouterr().err == ""


def test_wait_for_engines_progress_text(rc, capsys, monkeypatch):
    monkeypatch.setenv("IPP_NONINTERACTIVE", "1")
    n = len(rc.ids)
    rc.wait_for_engines(n, timeout=BOUND, interactive=True)
    out = capsys.readouterr().err
    assert re.search(rf"^\s*{n}/{n} engines ready after\s+\d+ s$", out, re.M), out

    with pytest.raises(ipp.TimeoutError):
        rc.wait_for_engines(n + 1, timeout=0.3, interactive=True)
    out = capsys.readouterr().err
    assert re.search(rf"\b{n}/{n + 1} engines ready after", out), out


def test_wait_for_engines_tqdm_on_a_tty(rc, monkeypatch, interactive_env):
    fake = FakeTTY()
    monkeypatch.setattr("sys.stderr", fake)
    n = len(rc.ids)
    rc.wait_for_engines(n, timeout=BOUND, interactive=True, widget=False)
    out = fake.getvalue()
    assert f"{n}/{n}" in out and "engines" in out, out


def test_wait_for_engines_nonblocking_interactive(rc, capsys, monkeypatch):
    monkeypatch.setenv("KERNELPAR_NONINTERACTIVE", "1")
    n = len(rc.ids)
    fut = rc.wait_for_engines(n, timeout=BOUND, block=False, interactive=True)
    assert fut.result(BOUND) is None
    seen = []

    def shown():
        seen.append(capsys.readouterr().err)
        return re.search(rf"\b{n}/{n} engines ready after", "".join(seen)) is not None

    assert _until(shown), seen


def test_matplotlib_inline_figures_on_engines_arrive_as_images(rc):
    view = rc[0]
    view.execute("%matplotlib inline", block=True)
    ar = view.execute("import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.show()", silent=False, block=True)
    assert any("image/png" in output.get("data", {}) for output in ar.outputs)
    with pytest.raises(ipp.RemoteError, match="no GUI event loop"):
        view.execute("get_ipython().enable_gui('qt')", block=True)
