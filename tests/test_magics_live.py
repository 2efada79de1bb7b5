"""The parallel magics through a real IPython ``InteractiveShell``, against the live cluster.

Cells run with ``shell.run_cell`` (what a user types, errors shown as IPython shows
them) and output is captured with IPython's ``capture_output``, what goes through the display
publisher (``[output:N]`` labels, rich displays, ``Out[...]``) shown as a terminal shows
it, in order with the printed output, and kept as a notebook gets it; the exact output forms
are asserted: ``[stdout:N] ...``, ``[stderr:N] ...``, ``[output:N]``, ``Out[N:count]: ...``,
``[N:execute]`` tracebacks, "Parallel execution on engine(s): ...".  Live streaming is
checked without timing assumptions: engines wait until the client has *shown* their
first line before they finish.

Engine namespaces are shared with other test modules: names set here start with ``mg_``.
"""

import re
import signal
import sys
import time

import pytest
from ipyshell import interactive_shell
from IPython.core.displaypub import DisplayPublisher
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import RichOutput, capture_output

import kernelpar as ipp

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def shell(ipython_dir):
    with interactive_shell() as sh:
        yield sh


@pytest.fixture
def view(rc, shell):
    """The magics of a fresh blocking view of all engines (defaults as a user gets them)."""
    return rc.activate()


class RecordingPublisher(DisplayPublisher):
    """A terminal's display publisher (text forms go to stdout, in order with prints) that
    also keeps the rich outputs (mime data and metadata) a notebook would show."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.outputs = []

    def publish(self, data, metadata=None, **kwargs):
        self.outputs.append(RichOutput(data, metadata))
        super().publish(data, metadata, **kwargs)


def run(shell, cell):
    """Run a cell as typed; return (ExecutionResult, stdout with the displays' text,
    stderr, the rich outputs that carry more than text)."""
    recorder, saved = RecordingPublisher(shell=shell), shell.display_pub
    shell.display_pub = recorder
    try:
        with capture_output(display=False) as io:
            result = shell.run_cell(cell)
    finally:
        shell.display_pub = saved
    rich = [o for o in recorder.outputs if set(o.data) != {"text/plain"}]
    return result, io.stdout, io.stderr, rich


def out_prompt(md):
    return f"Out[{md['engine_id']}:{md['execute_result']['execution_count']}]: "


# -- %px / %%px basics -----------------------------------------------------------------


def test_px_prints_per_engine(shell, view):
    result, out, err, _ = run(shell, "%px print('hi')")
    assert result.success and err == ""
    # streamed live: each engine's line as it arrives, in whatever order they arrive
    assert sorted(out.splitlines()) == ["[stdout:0] hi", "[stdout:1] hi"]
    # not streamed: shown at the end, in engine order
    result, out, err, _ = run(shell, "%%px --no-stream\nprint('hi')\nprint('there')")
    assert result.success and err == ""
    assert out == "[stdout:0] \nhi\nthere\n[stdout:1] \nhi\nthere\n"


def test_px_stderr_and_execute_result(shell, view):
    result, out, err, _ = run(shell, "%%px --no-stream -o mg_ar\nimport sys\nprint('oops', file=sys.stderr)\n1 + 2")
    assert result.success
    md = shell.user_ns["mg_ar"].metadata
    assert err == "[stderr:0] oops\n[stderr:1] oops\n"
    assert out == f"{out_prompt(md[0])}3\n{out_prompt(md[1])}3\n"
    assert re.fullmatch(r"Out\[0:\d+\]: 3\nOut\[1:\d+\]: 3\n", out)
    # streamed: stderr live, Out[...] at the end
    result, out, err, _ = run(shell, "%%px -o mg_ar\nimport sys\nprint('oops', file=sys.stderr)\n1 + 2")
    md = shell.user_ns["mg_ar"].metadata
    assert sorted(err.splitlines()) == ["[stderr:0] oops", "[stderr:1] oops"]
    assert out == f"{out_prompt(md[0])}3\n{out_prompt(md[1])}3\n"


HTML_TEXT = "<IPython.core.display.HTML object>"  # how a terminal shows an HTML display


def test_rich_output_and_grouping(shell, view):
    cell = "from IPython.display import display, HTML\nprint('so')\ndisplay(HTML('<b>x</b>'))\n5"
    result, out, err, outputs = run(shell, "%%px --no-stream -o mg_ar\n" + cell)
    assert result.success and err == ""
    md = shell.user_ns["mg_ar"].metadata
    assert out == (f"[stdout:0] so\n[stdout:1] so\n[output:0]\n{HTML_TEXT}\n[output:1]\n{HTML_TEXT}\n"
                   f"{out_prompt(md[0])}5\n{out_prompt(md[1])}5\n")
    assert [o.data["text/html"] for o in outputs] == ["<b>x</b>", "<b>x</b>"]
    assert [o.metadata["engine"] for o in outputs] == [0, 1]
    # -e: each engine's outputs together
    result, out, err, outputs = run(shell, "%%px --no-stream -e -o mg_ar\n" + cell)
    md = shell.user_ns["mg_ar"].metadata
    by_engine = (f"[stdout:0] so\n[output:0]\n{HTML_TEXT}\n{out_prompt(md[0])}5\n"
                 f"[stdout:1] so\n[output:1]\n{HTML_TEXT}\n{out_prompt(md[1])}5\n")
    assert out == by_engine
    # %pxresult re-shows the last one, with its own grouping
    result, out, err, outputs = run(shell, "%pxresult --group-outputs=engine")
    assert result.success and out == by_engine
    # streamed: displays show live too, Out[...] last
    result, out, err, outputs = run(shell, "%%px -o mg_ar\n" + cell)
    md = shell.user_ns["mg_ar"].metadata
    lines = out.splitlines()
    assert sorted(lines[:6]) == sorted(["[output:0]", "[output:1]", HTML_TEXT, HTML_TEXT,
                                        "[stdout:0] so", "[stdout:1] so"])
    assert lines.index("[stdout:0] so") < lines.index("[output:0]") < lines.index(HTML_TEXT)
    assert lines[6:] == [f"{out_prompt(md[0])}5", f"{out_prompt(md[1])}5"]
    assert len(outputs) == 2


def test_a_rich_result_keeps_its_mime_types(shell, view):
    cell = "class MgRich:\n    def _repr_html_(self):\n        return '<i>R</i>'\n    def __repr__(self):\n" \
           "        return 'MgRich()'\nMgRich()"
    result, out, err, outputs = run(shell, "%%px --no-stream -o mg_ar\n" + cell)
    assert result.success and err == ""
    md = shell.user_ns["mg_ar"].metadata
    assert out == f"{out_prompt(md[0])}MgRich()\n{out_prompt(md[1])}MgRich()\n"
    # a notebook gets the HTML form, the text form with the prompt
    assert [(o.data["text/html"], o.data["text/plain"], o.metadata["engine"]) for o in outputs] == [
        ("<i>R</i>", f"{out_prompt(md[0])}MgRich()", 0), ("<i>R</i>", f"{out_prompt(md[1])}MgRich()", 1)]


def test_targets_option(shell, view, rc):
    result, out, err, _ = run(shell, "%%px --targets ::2\nprint('hi')")
    assert result.success and out == "[stdout:0] hi\n"
    result, out, err, _ = run(shell, "%%px -t 1:\nprint('hi')")
    assert out == "[stdout:1] hi\n"
    result, out, err, _ = run(shell, "%%px -t 1\nprint('hi')")
    assert out == "[stdout:1] hi\n"
    result, out, err, _ = run(shell, "%%px -t [0,1] --no-stream\nprint('hi')")
    assert out == "[stdout:0] hi\n[stdout:1] hi\n"
    shell.user_ns["mg_engines"] = [1]
    result, out, err, _ = run(shell, "%%px -t mg_engines\nprint('hi')")
    assert out == "[stdout:1] hi\n"
    # temporary: the view's targets are unchanged
    assert view.targets == "all"
    result, out, err, _ = run(shell, "%%px -t all --no-stream\nprint('hi')")
    assert out == "[stdout:0] hi\n[stdout:1] hi\n"


def test_noblock_then_pxresult(shell, view):
    result, out, err, _ = run(shell, "%%px --noblock\nmg_n = 2\nmg_n * 2")
    ar = result.result
    assert isinstance(ar, ipp.AsyncResult)
    assert repr(ar).startswith("<AsyncResult(%px)")
    result, out, err, _ = run(shell, "%pxresult")
    assert result.success and err == ""
    assert out == f"{out_prompt(ar.metadata[0])}4\n{out_prompt(ar.metadata[1])}4\n"
    # the legacy name
    result, out2, err, _ = run(shell, "%result")
    assert out2 == out
    # -o stores instead of showing
    result, out, err, _ = run(shell, "%pxresult -o mg_last")
    assert out == "" and shell.user_ns["mg_last"] is ar


def test_pxresult_without_result_is_a_usage_error(shell, rc):
    rc.activate(suffix="_fresh")
    result, out, err, _ = run(shell, "%pxresult_fresh")
    assert isinstance(result.error_in_exec, UsageError)
    assert err.startswith("UsageError: %pxresult shows the result of the last") and "Traceback" not in out + err


def test_px_on_a_nonblocking_view_returns_the_async_result(shell, rc):
    v = rc[:]
    v.block = False
    v.activate()
    result, out, err, _ = run(shell, "%px mg_q = 1")
    assert isinstance(result.result, ipp.AsyncResult)
    result.result.get(10)
    assert rc[:]["mg_q"] == [1, 1]
    ar = shell.run_line_magic("px", "1/0")
    with pytest.raises(ipp.CompositeError):
        ar.get(10)


def test_pxconfig(shell, view, rc):
    run(shell, "%pxconfig --targets 1")
    assert view.targets == 1
    result, out, err, _ = run(shell, "%px print('x')")
    assert out == "[stdout:1] x\n"
    run(shell, "%pxconfig -t ::2")
    assert view.targets == rc.ids[::2]
    run(shell, "%pxconfig -t :")
    assert view.targets == rc.ids
    run(shell, "%pxconfig --noblock --verbose")
    assert view.block is False
    result, out, err, _ = run(shell, "%px mg_w = 1")
    assert out.startswith("Async parallel execution on engine(s): [0, 1]\n")
    assert isinstance(result.result, ipp.AsyncResult)
    result.result.get(10)
    run(shell, "%pxconfig --block -t all")
    result, out, err, _ = run(shell, "%px print('y')")
    assert out.startswith("Parallel execution on engine(s): all\n")
    assert sorted(out.splitlines()[1:]) == ["[stdout:0] y", "[stdout:1] y"]
    run(shell, "%pxconfig --no-verbose --no-stream")
    result, out, err, _ = run(shell, "%px print('z')")
    assert out == "[stdout:0] z\n[stdout:1] z\n"


def test_px_assignment_reaches_the_engines(shell, view, rc):
    result, out, err, _ = run(shell, "%px mg_a = 5")
    assert result.success and out == "" and err == ""
    assert rc[:]["mg_a"] == [5, 5]


def test_no_local_expansion_fstrings_reach_the_engines(shell, view, rc):
    shell.user_ns["mg_x"] = "local"
    rc[:]["mg_x"] = "engine"
    run(shell, "%px mg_y = f'{mg_x}'")
    assert rc[:]["mg_y"] == ["engine", "engine"]
    run(shell, "%px mg_z = '$mg_x'")
    assert rc[:]["mg_z"] == ["$mg_x", "$mg_x"]
    result, out, err, _ = run(shell, "%px print(f'{3*2}')")
    assert sorted(out.splitlines()) == ["[stdout:0] 6", "[stdout:1] 6"]
    # the options line of %%px is expanded (as for any cell magic), the cell never
    shell.user_ns["mg_name"] = "mg_stored"
    run(shell, "%%px -o {mg_name}\nmg_v = f'{mg_x}'")
    assert isinstance(shell.user_ns["mg_stored"], ipp.AsyncResult)
    assert rc[:]["mg_v"] == ["engine", "engine"]


# -- errors --------------------------------------------------------------------------------


def test_remote_errors_streamed(shell, view):
    result, out, err, _ = run(shell, "%px 1/0")
    assert isinstance(result.error_in_exec, ipp.AlreadyDisplayedError)
    # the tracebacks were shown live, per engine; the error only counts them
    assert out == "2 errors\n"
    blocks = re.split(r"^(?=\[\d:execute\])", err, flags=re.MULTILINE)
    # as ipyparallel streams them: each RemoteError's own rendering, its label alone on a line
    assert sorted(b.splitlines()[0] for b in blocks if b) == ["[0:execute]", "[1:execute]"]
    assert err.count("ZeroDivisionError: division by zero") == 2
    with capture_output(), pytest.raises(ipp.AlreadyDisplayedError, match="2 errors"):
        shell.run_line_magic("px", "1/0")


def test_remote_errors_not_streamed(shell, view):
    result, out, err, _ = run(shell, "%%px --no-stream\nprint('before')\n1/0")
    assert isinstance(result.error_in_exec, ipp.CompositeError)
    assert err == ""
    # the output first (nothing is lost to the error), then one traceback per engine
    assert out.startswith("[stdout:0] before\n[stdout:1] before\n[0:execute]")
    lines = out.splitlines()
    assert [line.rstrip() for line in lines if re.match(r"\[\d:execute\]", line)] == ["[0:execute]:", "[1:execute]:"]
    assert out.count("ZeroDivisionError: division by zero") == 2
    with capture_output(), pytest.raises(ipp.CompositeError):
        shell.run_cell_magic("px", "--no-stream", "1/0")
    # one engine: its RemoteError
    with capture_output(), pytest.raises(ipp.RemoteError, match=r"\[1:execute\] ZeroDivisionError"):
        shell.run_cell_magic("px", "--no-stream -t 1", "1/0")


@pytest.mark.parametrize("cell", [
    "%%px --foo\n1",
    "%%px --group-outputs=bad\n1",
    "%%px --progress-after soon\n1",
    "%%px --signal-on-interrupt SIGNOPE\n1",
    "%%px -t 7\n1",
    "%%px -t 5:\n1",
    "%%px -t nope\n1",
    "%%px -t 1:2:3:4\n1",
    "%%px -t 'a'\n1",
    "%%px -t '0\n1",
    "%pxconfig -t 9",
    "%pxconfig --bogus",
    "%pxresult --bogus",
])
def test_bad_options_and_targets_are_usage_errors(shell, view, cell):
    result, out, err, _ = run(shell, cell)
    assert isinstance(result.error_in_exec, UsageError), (out, err)
    assert err.startswith("UsageError: ") and err.count("\n") == 1
    assert "Traceback" not in out + err
    assert view.targets == "all" and view.block is True


def test_bad_target_messages(shell, view):
    _, _, err, _ = run(shell, "%%px -t 7\n1")
    assert err == "UsageError: Invalid targets '7': No such engine: 7 (registered: [0, 1])\n"
    _, _, err, _ = run(shell, "%%px --foo\n1")
    assert err == "UsageError: unrecognized arguments: --foo\n"


# -- %autopx and suffixes ------------------------------------------------------------------


def test_autopx(shell, view, rc):
    try:
        result, out, err, _ = run(shell, "%autopx")
        assert out == "%autopx enabled\n"
        for cell in ("mg_b = 12345\nmg_c = 0", "mg_b *= 2"):
            result, out, err, _ = run(shell, cell)
            assert result.success and out == "" and err == ""
        result, out, err, _ = run(shell, "print(mg_b)")
        assert sorted(out.splitlines()) == ["[stdout:0] 24690", "[stdout:1] 24690"]
        result, out, err, _ = run(shell, "mg_b")
        assert re.fullmatch(r"Out\[0:\d+\]: 24690\nOut\[1:\d+\]: 24690\n", out)
        result, out, err, _ = run(shell, "mg_b / mg_c")
        assert out == "2 errors\n" and err.count("ZeroDivisionError: division by zero") == 2
        assert "mg_b" not in shell.user_ns  # nothing ran here
    finally:
        result, out, err, _ = run(shell, "%autopx")
    assert out == "%autopx disabled\n"
    assert rc[:]["mg_b"] == [24690, 24690]
    result, out, err, _ = run(shell, "mg_local = 1")
    assert shell.user_ns["mg_local"] == 1


def test_suffixed_magics(shell, rc):
    v = rc[1:]
    v.block = True
    assert v.activate("_x") is None  # as ipyparallel: a cell ending with it shows nothing
    for kind, name in (("line", "px_x"), ("cell", "px_x"), ("line", "pxresult_x"), ("line", "pxconfig_x"),
                       ("line", "autopx_x")):
        assert name in shell.magics_manager.magics[kind]
    assert "result_x" not in shell.magics_manager.magics["line"]
    result, out, err, _ = run(shell, "%px_x print('s')")
    assert out == "[stdout:1] s\n"
    result, out, err, _ = run(shell, "%%px_x -t 0\nprint('t')")
    assert out == "[stdout:0] t\n"
    run(shell, "%pxconfig_x -t 0")
    assert v.targets == 0
    result, out, err, _ = run(shell, "%px_x print('u')")
    assert out == "[stdout:0] u\n"
    try:
        assert run(shell, "%autopx_x")[1] == "%autopx enabled\n"
        result, out, err, _ = run(shell, "print('auto')")
        assert out == "[stdout:0] auto\n"
    finally:
        assert run(shell, "%autopx_x")[1] == "%autopx disabled\n"


def test_client_activate_returns_a_blocking_view(shell, rc):
    v = rc.activate(targets=[0], suffix="_c")
    assert v.targets == [0] and v.block is True
    result, out, err, _ = run(shell, "%px_c print('c')")
    assert out == "[stdout:0] c\n"


def test_first_client_in_ipython_registers_the_magics(shell, cluster, rc):
    shell.magics_manager.magics["line"].pop("px", None)
    shell.magics_manager.magics["cell"].pop("px", None)
    first = cluster.connect_client_sync()
    try:
        owner = shell.magics_manager.magics["line"]["px"].__self__
        assert owner.view.client is first and owner.view.block is True
        result, out, err, _ = run(shell, "%%px --no-stream\nprint('auto')")
        assert out == "[stdout:0] auto\n[stdout:1] auto\n"
        # a second client does not take them over
        second = cluster.connect_client_sync()
        try:
            assert shell.magics_manager.magics["line"]["px"].__self__.view.client is first
        finally:
            second.close()
    finally:
        first.close()
    # ... unless the first one was closed
    third = cluster.connect_client_sync()
    try:
        assert shell.magics_manager.magics["line"]["px"].__self__.view.client is third
    finally:
        third.close()


# -- options -----------------------------------------------------------------------------


def test_out_stores_the_async_result(shell, view):
    result, out, err, _ = run(shell, "%%px --out mg_res\nmg_r = 1\nmg_r + 1")
    ar = shell.user_ns["mg_res"]
    assert isinstance(ar, ipp.AsyncResult) and ar.done()
    assert [reply.execution_count for reply in ar.get()] == [md["execute_result"]["execution_count"]
                                                              for md in ar.metadata]


def test_verbose_messages(shell, view):
    result, out, err, _ = run(shell, "%%px --verbose\nmg_t = 1")
    assert out == "Parallel execution on engine(s): all\n"
    result, out, err, _ = run(shell, "%%px --verbose --noblock -t ::2\nmg_t = 1")
    assert out.startswith("Async parallel execution on engine(s): [0]\n")
    result.result.get(10)


def test_local_runs_here_too(shell, view, rc):
    result, out, err, _ = run(shell, "%%px --local --no-stream\nmg_loc = 3\nprint('both')")
    assert shell.user_ns["mg_loc"] == 3 and rc[:]["mg_loc"] == [3, 3]
    assert out == "both\n[stdout:0] both\n[stdout:1] both\n"


def test_progress_bar_after_delay(shell, view):
    result, out, err, _ = run(shell, "%%px --progress-after 0\nimport time\ntime.sleep(0.3)")
    assert result.success and "%px" in err and "2/2" in err
    result, out, err, _ = run(shell, "%%px --progress-after -1\nimport time\ntime.sleep(0.3)")
    assert err == ""


def test_ctrl_c_signals_the_engines(shell, view, rc):
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    cell = "import time\nprint('Entering', flush=True)\ntime.sleep(20)\nprint('Exiting')"
    for option, shown in (("", "SIGINT"), ("--signal-on-interrupt 2", "2")):
        previous = signal.signal(signal.SIGALRM, interrupt)
        signal.setitimer(signal.ITIMER_REAL, 1.5)
        t0 = time.monotonic()
        try:
            result, out, err, _ = run(shell, f"%%px {option}\n{cell}")
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        assert time.monotonic() - t0 < 15
        assert result.success  # the user stopped it: no error raised
        assert f"Received Keyboard Interrupt. Sending signal {shown} to engines...\n" in err
        assert sorted(out.splitlines()) == ["[stdout:0] Entering", "[stdout:1] Entering"]
        # what the engines reported, per engine
        assert sorted(re.findall(r"^\[\d:execute\]", err, re.MULTILINE)) == ["[0:execute]", "[1:execute]"]
        assert "KeyboardInterrupt" in err
        assert "Exiting" not in out
    assert rc[:].apply_sync(lambda: "alive") == ["alive", "alive"]


def test_engine_death_during_px_names_the_engine(shell, ipython_dir, tmp_path):
    with ipp.Cluster(n=2, profile_dir=str(tmp_path / "profile_death"), controller_args=["--ping", "200"]) as rc2:
        rc2.wait_for_engines(2, timeout=60)
        rc2.activate(suffix="_death")
        result, out, err, _ = run(shell, "%%px_death --no-stream -t 1\nimport os\nos._exit(3)")
        # one engine: its error, a RemoteError that is also an EngineError, as IPython shows it
        assert isinstance(result.error_in_exec, ipp.RemoteError) and isinstance(result.error_in_exec, ipp.EngineError)
        assert re.search(r"^\[1:execute\]:?\nEngineError: Engine 1 died while running task \S+$", out, re.MULTILINE), out
        assert "Traceback" not in out
        # streamed: shown live, then counted
        result, out, err, _ = run(shell, "%%px_death -t 0\nimport os\nos._exit(3)")
        assert isinstance(result.error_in_exec, ipp.AlreadyDisplayedError)
        assert re.search(r"^\[0:execute\]:?\nEngineError: Engine 0 died while running task \S+$", err, re.MULTILINE), err
        assert out == "1 errors\n"


# -- AsyncResult.stream_output -----------------------------------------------------------


class Recorder:
    """A stand-in for sys.stdout that notes, with each write, whether the task was done."""

    def __init__(self, ar=None, on_write=None, tty=False):
        self.ar = ar
        self.writes = []
        self.on_write = on_write
        self.tty = tty

    def write(self, text):
        self.writes.append((text, self.ar.done() if self.ar is not None else None))
        if self.on_write is not None:
            self.on_write(self)
        return len(text)

    def flush(self):
        pass

    def isatty(self):
        return self.tty

    @property
    def text(self):
        return "".join(t for t, _ in self.writes)


def wait_for_file_cell(path, before, after):
    """Engine code: write ``before``, wait (at most 30 s) until ``path`` exists, write ``after``."""
    return (f"import os, sys, time\n{before}\nsys.stdout.flush()\n"
            f"deadline = time.monotonic() + 30\n"
            f"while not os.path.exists({str(path)!r}) and time.monotonic() < deadline:\n"
            f"    time.sleep(0.02)\n{after}\n")


def test_stream_output_shows_lines_before_the_task_ends(rc, tmp_path, monkeypatch):
    go = tmp_path / "go"
    ar = rc[:].execute(wait_for_file_cell(go, "print('first')", "print('second')"), silent=False, block=False)

    def release(recorder):  # the engines may finish once both first lines are on screen
        if "[stdout:0] first\n" in recorder.text and "[stdout:1] first\n" in recorder.text:
            go.touch()

    recorder = Recorder(ar, release)
    monkeypatch.setattr(sys, "stdout", recorder)
    with ar.stream_output():
        ar.wait(60)
    monkeypatch.undo()
    assert ar.successful()
    firsts = [done for text, done in recorder.writes if "first" in text]
    assert firsts and not any(firsts)  # shown while the tasks were still running
    assert sorted(recorder.text.splitlines()) == ["[stdout:0] first", "[stdout:0] second",
                                                  "[stdout:1] first", "[stdout:1] second"]


def test_stream_output_carriage_returns(rc, tmp_path, monkeypatch):
    # not a terminal: a progress line shows once, as it ends
    ar = rc[0].execute("import sys, time\nfor i in range(3):\n    print(f'\\r{i}', end='', flush=True)\n"
                       "    time.sleep(0.1)\nprint(' done')\nprint('a\\rb')", silent=False, block=False)
    recorder = Recorder(ar)
    monkeypatch.setattr(sys, "stdout", recorder)
    with ar.stream_output():
        ar.wait(60)
    monkeypatch.undo()
    assert recorder.text in ("[stdout:0] 2 done\n[stdout:0] b\n", "[stdout:0] \n2 done\nb\n")
    # a terminal: the progress line is rewritten in place while it runs, the prefix kept
    go = tmp_path / "go"
    ar = rc[0].execute(wait_for_file_cell(go, "print('\\r10%', end='')", "print('\\r100%')"), silent=False,
                       block=False)

    def release(recorder):
        if "[stdout:0] 10%" in recorder.text:
            go.touch()

    recorder = Recorder(ar, release, tty=True)
    monkeypatch.setattr(sys, "stdout", recorder)
    with ar.stream_output():
        ar.wait(60)
    monkeypatch.undo()
    live = [text for text, done in recorder.writes if "10%" in text]
    assert live == ["\r\x1b[K[stdout:0] 10%"]
    assert recorder.text.endswith("\r\x1b[K[stdout:0] 100%\n")


def test_stream_output_unfinished_line_and_late_output(rc, monkeypatch):
    # no newline, no flush: the engine sends it at the end, the last line still shows
    ar = rc[1].execute("print('tail', end='')", silent=False, block=False)
    recorder = Recorder(ar)
    monkeypatch.setattr(sys, "stdout", recorder)
    with ar.stream_output():
        ar.wait(60)
    monkeypatch.undo()
    assert recorder.text == "[stdout:1] tail\n"


def test_stream_output_shows_errors_on_stderr(rc, monkeypatch):
    ar = rc[:].execute("print('x')\nraise ValueError('bad')", silent=False, block=False)
    out, err = Recorder(ar), Recorder(ar)
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    with ar.stream_output():
        ar.wait(60)
    monkeypatch.undo()
    assert sorted(out.text.splitlines()) == ["[stdout:0] x", "[stdout:1] x"]
    assert err.text.count("ValueError: bad") == 2
    assert sorted(line for line in err.text.splitlines() if line.startswith("[")) == [
        "[0:execute]", "[1:execute]"]


def test_stream_output_outside_ipython_works_for_apply(rc, monkeypatch):
    def noisy():
        print("from apply")
        return 1

    ar = rc[:].apply_async(ipp.interactive(noisy))
    recorder = Recorder(ar)
    monkeypatch.setattr(sys, "stdout", recorder)
    with ar.stream_output():
        assert ar.get(60) == [1, 1]
    monkeypatch.undo()
    assert sorted(recorder.text.splitlines()) == ["[stdout:0] from apply", "[stdout:1] from apply"]


def test_activate_outside_ipython_warns(rc, monkeypatch):
    monkeypatch.setattr(InteractiveShell, "_instance", None)
    with pytest.warns(UserWarning, match="only work within IPython"):
        assert rc[:].activate() is None
