"""The IPython 0.10 example programs (spec section 8), unchanged Python 2 code, run with
``kernelpar-legacy`` against ``ipcluster local -n 4`` (EX-01, EX-02).

The programs in ``tests/legacy_examples/`` are modelled on 0.10's ``docs/examples/kernel``
scripts and on the sessions of its parallel docs (``parallel_intro``, ``parallel_multiengine``,
``parallel_task`` as ``.ipy`` files).  They find the cluster through its FURL files, as they
did in 0.10.  All share one cluster, started in a copy of the examples directory (engines open
the text files of ``pwordfreq.py`` there), so they must not depend on each other's engine
state; output is compared by shape (spec 8.5), not float text or engine history numbers.
"""

import re
import shutil
from pathlib import Path

import pytest
from legacy_cluster import ipcluster_local, run_legacy

EXAMPLES = Path(__file__).parent / "legacy_examples"
ENGINES = 4
ANSI = re.compile(r"\x1b\[[0-9;]*m")
DOUBLES = "[0, 2, 4, 6, 8, 10, 12, 14, 16, 18]"


@pytest.fixture(scope="module")
def examples(tmp_path_factory):
    """(directory holding a copy of the examples, its IPython directory) with the cluster running."""
    work = tmp_path_factory.mktemp("legacy_examples")
    directory = work / "examples"
    shutil.copytree(EXAMPLES, directory)
    ipython_dir = work / "ipython"
    with ipcluster_local(ENGINES, ipython_dir, cwd=directory):
        yield directory, ipython_dir


def run_example(examples, name, timeout=180):
    """The example's stdout, without colours and with IPython's pretty-printed values on one line.

    A session shows long values over several lines (``Out[8]:`` then ``[0.0,`` / `` 10.0,`` ...),
    as 0.10's did; joined here, so each ``Out[n]: value`` is one line to match.
    """
    directory, ipython_dir = examples
    out = run_legacy(directory / name, ipython_dir=ipython_dir, cwd=directory, timeout=timeout)
    assert out.returncode == 0, f"{name}: exit {out.returncode}\nstdout:\n{out.stdout}\nstderr:\n{out.stderr}"
    text = ANSI.sub("", out.stdout)
    text = re.sub(r"^(Out\[\d+\]: )\n(?=[\[({])", r"\1", text, flags=re.MULTILINE)
    return re.sub(r"(?<=[,(\[{])\n +(?=\S)", " ", text)


def test_multienginemap(examples):
    lines = run_example(examples, "multienginemap.py").splitlines()
    assert lines[0] == f"Simple, default map:  {DOUBLES}"
    assert re.fullmatch(r"Submitted map, got PendingResult:  <\S*PendingResult object at 0x[0-9a-f]+>", lines[1]), lines
    assert lines[2:] == [f"Using a mapper:  {DOUBLES}", f"Using a parallel function:  {DOUBLES}"]


def test_taskmap(examples):
    lines = run_example(examples, "taskmap.py").splitlines()
    assert lines[0] == f"Simple, default map:  {DOUBLES}"
    ids = re.fullmatch(r"Submitted tasks, got ids:  (\[.*\])", lines[1])
    assert ids, lines
    ids = eval(ids.group(1))
    assert ids == list(range(ids[0], ids[0] + 10))
    assert lines[2:] == [f"Using a mapper:  {DOUBLES}", f"Using a parallel function:  {DOUBLES}"]


def test_task1(examples):
    assert run_example(examples, "task1.py") == "a, b:  5 300\nc:  45000\n"


def test_helloworld(examples):
    lines = run_example(examples, "helloworld.py").splitlines()
    assert re.fullmatch(r"Submitted tasks: \d+ \d+", lines[0]), lines
    assert lines[1:] == ["Hello, World!"]


def test_taskreject(examples):
    lines = run_example(examples, "taskreject.py").splitlines()
    assert lines[0] == "Tasks: 10"
    engines = eval(lines[1].removeprefix("Ran on engines: "))
    assert engines and set(engines) <= {0, 1}, lines


@pytest.mark.slow
def test_mcdriver(examples):
    lines = run_example(examples, "mcdriver.py").splitlines()
    ids = eval(lines[0].removeprefix("Submitted tasks:  "))
    assert ids == list(range(ids[0], ids[0] + 25))
    assert lines[1] == "Vanilla call prices: (5, 5)"
    assert lines[-2:] == ["Calls fall with the strike: True", "Asian calls are cheaper: True"]


@pytest.mark.slow
def test_multiengine1(examples):
    out = run_example(examples, "multiengine1.ipy")
    for line in ("Caught invalid engine ID OK.", "Caught 1/0 correctly.", "Caught IndexError ok.",
                 "Caught QueueCleared OK: True", "PendingResult object was cleared OK."):
        assert line in out.splitlines(), line
    assert out.count("Caught 1/0 correctly.") == 2
    assert out.count("Caught ZeroDivisionError OK.") == 3
    assert out.count("PendingResult object was cleared OK.") == 2
    assert "Parallel execution on engines: all" in out
    assert "Auto Parallel Enabled\nType %autopx to disable" in out and "Auto Parallel Disabled" in out
    assert out.endswith("The tests are done!\n")


@pytest.mark.slow
def test_multiengine2(examples):
    out = run_example(examples, "multiengine2.ipy")
    assert "Try a non-blocking get_result\nNow wait for all the results\n" in out
    assert out.endswith("The last pull got: " + str([[10, 30, "The dog went swimming."]] * ENGINES) + "\n")


@pytest.mark.slow
def test_rmt(examples):
    # EX-02: classic division in the client (num/nengines) and on the engines (evals[N/2]), xrange
    out = run_example(examples, "rmt.ipy")
    lines = out.splitlines()
    assert lines[0] == "Distributing code to engines..."
    assert sum("per loop (mean" in line for line in lines) == 2, out     # the two %timeit lines
    assert lines.count("Running with 25 per engine.") == 2
    assert lines[-3:] == ["Gaps: ndarray (100,)", "Mean normalized gap: 1.0", "Wigner density at s=0.8: 0.76"]


def test_pwordfreq(examples):
    # EX-02: iteritems, keys(), zip(...).sort(), print statements; one text file per engine
    out = run_example(examples, "pwordfreq.py")
    serial, parallel = out.split("\nParallel word frequency count:\n")
    serial_lines = serial.splitlines()
    assert serial_lines[0] == "Serial word frequency count:"
    top = serial_lines[1:]
    assert len(top) == 10 and top[0] == "the 29", top
    assert parallel.splitlines() == top + ["", "Same counts: True"]


def test_parallel_intro(examples):
    out = run_example(examples, "parallel_intro.ipy")
    assert re.search(r"^Out\[\d+\]: \[0, 1, 2, 3\]$", out, re.MULTILINE), out
    results = out[out.index("<Results List>"):]
    for k in range(ENGINES):
        assert re.search(rf"^\[{k}\] In \[(\d+)\]: print \"Hello World\"\n\[{k}\] Out\[\1\]: Hello World\n\n", results,
                         re.MULTILINE), results


@pytest.mark.slow
def test_parallel_multiengine(examples):
    out = run_example(examples, "parallel_multiengine.ipy")
    assert re.search(r"^Out\[\d+\]: True$", out, re.MULTILINE)                              # serial == parallel map
    assert re.search(r"^Out\[\d+\]: \[0\.0, 10\.0, 160\.0, 810\.0, ", out, re.MULTILINE)
    for k, c in ((0, 15), (1, -5), (2, 15), (3, -5)):
        assert re.search(rf"^\[{k}\] In \[\d+\]: print c\n\[{k}\] Out\[\d+\]: {c}$", out, re.MULTILINE), k
    assert re.search(r"^\[0\] In \[\d+\]: c=a\+b$", out, re.MULTILINE) and not re.search(r"^\[1\] In \[\d+\]: c=a\+b$", out,
                                                                                   re.MULTILINE)
    assert out.count("'stdout': '10\\n'") == ENGINES                               # the result dicts
    assert "Parallel execution on engines: all" in out
    assert out.count("Average max eigenvalue is:  ") == ENGINES
    assert re.search(r"^Out\[\d+\]: \[1\.03234, 1\.03234, 1\.03234, 1\.03234\]$", out, re.MULTILINE)
    assert re.search(r"^Out\[\d+\]: \[3453\]$", out, re.MULTILINE)
    assert re.search(r"^Out\[\d+\]: \[\(1\.03234, 1\.03234, 1\.03234, 1\.03234\), \(3453, 3453, 3453, 3453\)\]$",
                     out, re.MULTILINE)
    assert len(re.findall(r"^\[\d\] Out\[\d+\]: speed$", out, re.MULTILINE)) == ENGINES
    assert len(re.findall(r"^\[\d\] Out\[\d+\]: 512\.0$", out, re.MULTILINE)) == ENGINES
    assert re.search(r"^Out\[\d+\]: \[\['foo', 'bar'\], \['foo', 'bar'\], \['foo', 'bar'\], \['foo', 'bar'\]\]$",
                     out, re.MULTILINE)
    for k in range(ENGINES):
        part = list(range(4 * k, 4 * k + 4))
        assert re.search(rf"^\[{k}\] Out\[\d+\]: {re.escape(str(part))}$", out, re.MULTILINE), k
    assert re.search(r"^Out\[\d+\]: " + re.escape(str(list(range(16)))) + "$", out, re.MULTILINE)
    assert "[0, 1, 1024, 59049, 1048576, 9765625, 60466176, 282475249, 1073741824, " in out
    assert "CompositeError: one or more exceptions from call to method: execute" in out
    assert "raise_exception gave ZeroDivisionError" in out
    assert out.count(":execute]: ") >= ENGINES
    assert "Non-blocking: 4 errors" in out


def test_parallel_task(examples):
    out = run_example(examples, "parallel_task.ipy")
    outs = re.findall(r"^Out\[\d+\]: (.*)$", out, re.MULTILINE)
    assert outs[0] == "True"
    assert outs[1].startswith("[0.0, 10.0, 160.0, 810.0, ")
    assert re.fullmatch(r"TaskResult\[ID:\d+\]:\{'a': 73\}", outs[2]), outs
    assert "True True True" in out.splitlines()
    assert outs[3] == "True"
    status = eval(outs[4])
    assert set(status) == {"scheduled", "pending", "succeeded", "failed"}
