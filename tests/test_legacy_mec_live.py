"""The legacy MultiEngineClient against the session cluster (2 engines): one test per checklist
item MEC-01..MEC-31, PR-01..PR-05, ENG-01, ERR-02 and PY2-02 (spec §12), through
``MultiEngineClient.from_client(rc)``.  The magics and the private-cluster scenarios are in
test_legacy_mec_sessions_live.py; the shared fixtures in :mod:`legacymec`.

Ordering-dependent scenarios never rely on timing: a command that must still be running
waits for a file the test creates once the hub shows the commands queued behind it.
"""

import os
import re

import pytest
from legacymec import clean_engines, hold, mec, plain, release, wait_queued, wait_until  # noqa: F401

from kernelpar.client.legacy import translate
from kernelpar.client.legacy.error import (
    CompositeError,
    InvalidDeferredID,
    InvalidEngineID,
    InvalidProperty,
    NotAPendingResult,
    QueueCleared,
    collect_exceptions,
)
from kernelpar.client.legacy.multiengineclient import MultiEngineClient
from kernelpar.client.legacy.pendingresult import PendingResult
from kernelpar.client.legacy.resultlist import ResultList

pytestmark = pytest.mark.timeout(120)


# -- construction, flags, targets (MEC-01..MEC-03) -------------------------------------------------


def test_mec01_flags_defaults_overrides_and_validation(mec):
    assert mec.block is True and mec.targets == "all"
    assert mec.push({"a": 1}) == [None, None]
    assert mec.pull("a", targets=0) == [1]
    pr = mec.pull("a", block=False)
    assert isinstance(pr, PendingResult) and pr.r == [1, 1]
    mec.targets, mec.block = [1], False
    assert mec.pull("a").r == [1]
    with pytest.raises(ValueError, match="^block must be True or False$"):
        mec.execute("a", block="yes")
    with pytest.raises(ValueError, match="^targets must be a str, list, tuple or int$"):
        mec.execute("a", targets={0})


def test_mec02_get_ids_and_len(mec, rc):
    ids = mec.get_ids()
    assert ids == sorted(ids) and all(isinstance(i, int) for i in ids)
    assert ids == rc.ids and len(mec) == len(ids) == 2


def test_mec03_targets(mec):
    mec.execute("me = id")
    assert mec.pull("me") == [0, 1]
    assert mec.pull("me", targets=1) == [1]
    assert mec.pull("me", targets=[1, 0]) == [1, 0]
    assert mec.pull("me", targets=(0, 0)) == [0, 0]
    with pytest.raises(InvalidEngineID, match="^Engine with id 7 is not registered$"):
        mec.execute("b = 10", targets=7)
    with pytest.raises(InvalidEngineID):
        mec.execute("b = 10", targets=-1)
    with pytest.raises(InvalidEngineID, match=r"^Engine with id 5 is not registered$"):
        mec.pull("me", targets=[0, 5])
    with pytest.raises(InvalidEngineID, match="targets argument is not an int, list of ints or 'all': 'some'"):
        mec.pull("me", targets="some")
    with pytest.raises(InvalidEngineID, match="engine with id 9 does not exist"):
        mec.scatter("x", [1, 2], targets=[0, 9])


# -- execute and the Results List (MEC-04..MEC-09) ---------------------------------------------------


def test_mec04_execute_result_dicts(mec):
    mec.reset()
    mec.execute("a = 5")
    result = mec.execute("d=10; print(d)")
    assert isinstance(result, ResultList)
    for eid, r in zip([0, 1], result):
        assert r == {"id": eid, "number": 2, "input": {"raw": "d=10; print(d)", "translated": "d=10; print(d)"},
                     "stdout": "10\n"}


def test_mec05_numbering_and_mec05b_stop_at_first_failure(mec):
    mec.reset()
    assert [r["number"] for r in mec.execute("a = 1")] == [1, 1]
    with pytest.raises(CompositeError):
        mec.execute("x = 1\n1/0\ny = 2")
    assert mec.pull("x") == [1, 1]
    assert mec.keys(targets=0)[0].count("y") == 0, "statements after the failing one did not run"
    mec.push({"p": 1})
    mec.pull("p")
    assert [r["number"] for r in mec.execute("b = 2")] == [3, 3]
    assert [r["number"] for r in mec.execute("c = 3", targets=0)] == [4]
    assert [r["number"] for r in mec.execute("c = 3")] == [5, 4]
    mec.reset()
    assert [r["number"] for r in mec.execute("a = 1")] == [1, 1]


def test_mec06_results_list_text(mec):
    mec.reset()
    mec.execute("a = 5")
    text = plain(mec.execute("print('Hello World')\nimport sys\nprint('careful', file=sys.stderr)"))
    assert text == (
        "<Results List>\n"
        "[0] In [2]: print('Hello World')\nimport sys\nprint('careful', file=sys.stderr)\n"
        "[0] Out[2]: Hello World\n\n"
        "[0] Err[2]:\n careful\n"
        "[1] In [2]: print('Hello World')\nimport sys\nprint('careful', file=sys.stderr)\n"
        "[1] Out[2]: Hello World\n\n"
        "[1] Err[2]:\n careful\n"
    )
    assert "\x1b[0;32m[0]\x1b[0;34m In [2]:\x1b[0m print" in repr(mec.get_result())


def test_mec07_expression_gives_display_and_no_out_line(mec):
    mec.push({"a": [1, 2]})
    result = mec.execute("a")
    assert [r["display"] for r in result] == [{"pprint": "[1, 2]", "repr": "[1, 2]"}] * 2
    assert all("stdout" not in r for r in result)
    assert "Out[" not in plain(result)


def test_mec08_composite_error_after_all_engines_finished(mec):
    mec.execute("done = False")
    with pytest.raises(CompositeError) as info:
        mec.execute("import time\nif id == 0: 1/0\ntime.sleep(0.3)\ndone = True")
    err = info.value
    assert str(err).splitlines() == ["one or more exceptions from call to method: execute",
                                     "[0:execute]: ZeroDivisionError: division by zero"]
    assert mec.pull("done", targets=1) == [True], "engine 1 had finished when the error was raised"


def test_mec09_composite_error_api(mec, capsys):
    with pytest.raises(CompositeError) as info:
        mec.execute("1/0")
    err = info.value
    assert err.message == "one or more exceptions from call to method: execute"
    assert err.args == (err.message, err.elist)
    assert [(et, ev._ipython_engine_info["engineid"]) for et, ev, _ in err.elist] == [(ZeroDivisionError, 0),
                                                                                    (ZeroDivisionError, 1)]
    with pytest.raises(ZeroDivisionError):
        err.raise_exception()
    with pytest.raises(ZeroDivisionError):
        err.raise_exception(1)
    err.print_tracebacks()
    out = capsys.readouterr().out
    assert out.count("[0:execute]: \n") == 1 and out.count("[1:execute]: \n") == 1
    assert "1/0" in out and "ZeroDivisionError" in out
    err.print_tracebacks(1)
    assert capsys.readouterr().out.startswith("[1:execute]: \n")
    with pytest.raises(IndexError, match="an exception with index 2 does not exist"):
        err.print_tracebacks(2)
    with pytest.raises(IndexError):
        err.raise_exception(2)


# -- namespace (MEC-10..MEC-14) ----------------------------------------------------------------------


def test_mec10_push_pull_shapes(mec):
    assert mec.push(dict(a=1.03234, b=3453)) == [None, None]
    assert mec.pull("a") == [1.03234, 1.03234]
    assert mec.pull("b", targets=0) == [3453]
    assert mec.pull(("a", "b")) == [[1.03234, 3453]] * 2
    assert mec.pull(["a"]) == [1.03234, 1.03234]
    assert mec.pull([]) == [[], []]


def test_mec10_unpicklable_push_raises_here_unwrapped(mec):
    with pytest.raises(TypeError) as info:
        mec.push({"g": (x for x in [])})
    assert not isinstance(info.value, CompositeError)


def test_mec11_pull_missing_name(mec):
    with pytest.raises(CompositeError) as info:
        mec.pull("lm_missing")
    assert [str(ev) for _, ev, _ in info.value.elist] == ["name lm_missing is not defined"] * 2
    assert all(et is NameError for et, _, _ in info.value.elist)
    assert str(info.value).splitlines()[1] == "[0:pull]: NameError: name lm_missing is not defined"
    with pytest.raises(CompositeError) as info:
        mec.pull(5)
    assert info.value.elist[0][0] is TypeError


def test_mec12_zip_pull(mec):
    mec.push(dict(a=1.5, b=3))
    assert mec.zip_pull(("a", "b")) == [(1.5, 1.5), (3, 3)]
    assert mec.zip_pull("a") == [1.5, 1.5]
    assert mec.zip_pull(("a", "b"), targets=1) == [1.5, 3]
    assert mec.zip_pull("a", targets=[0]) == 1.5
    assert mec.zip_pull(("a", "b"), targets=[]) == [] and mec.pull("a", targets=[]) == []


def test_mec13_item_access(mec):
    mec["a"] = ["foo", "bar"]
    assert mec["a"] == [["foo", "bar"]] * 2
    mec.targets = 1
    mec["a"] = 100
    assert mec["a"] == [100]
    assert mec.pull("a", targets=0) == [["foo", "bar"]]
    with pytest.raises(TypeError, match="__getitem__ only takes strs"):
        mec[0]


def test_mec14_push_and_pull_functions(mec):
    mec.push({"scale": 2.0})

    def f(x):
        return scale * x**4  # noqa: F821  (``scale`` is resolved on the engines)

    offset = 10

    def g(x, y=1):
        return x + y + offset

    assert mec.push_function(dict(f=f, g=g)) == [None, None]
    mec.execute("y = f(4.0)\nz = g(1)")
    assert mec.pull(("y", "z")) == [[512.0, 12]] * 2
    with pytest.raises(CompositeError) as info:
        mec.push_function(dict(h=3))
    assert info.value.elist[0][0] is TypeError
    mec.execute("def twice(x):\n    return 2 * x")
    twice = mec.pull_function("twice")
    assert [fn(21) for fn in twice] == [42, 42]


# -- scatter, gather, maps (MEC-15..MEC-21) ------------------------------------------------------------


def test_mec15_scatter_partitions(mec):
    assert mec.scatter("a", list(range(5))) == [None, None]
    assert mec.pull("a") == [[0, 1, 2], [3, 4]]
    mec.scatter("t", (1, 2, 3))
    assert mec.pull("t") == [(1, 2), (3,)]
    mec.scatter("s", "abc", flatten=True)
    assert mec.pull("s") == ["ab", "c"]
    mec.scatter("one", [7, 8], flatten=True)
    assert mec.pull("one") == [7, 8]


def test_mec16_gather_round_trips(mec):
    mec.scatter("a", range(16))
    assert mec.gather("a") == list(range(16))
    mec.scatter("a", range(16), targets=[1, 0])
    assert mec.pull("a", targets=1) == [list(range(8))]
    mec.execute("y = [i**10 for i in a]")
    assert mec.gather("y", targets=[1, 0]) == [i**10 for i in range(16)]
    mec.execute("n = id * 10")
    assert mec.gather("n") == [0, 10]
    numpy = pytest.importorskip("numpy")
    mec.scatter("arr", numpy.arange(10))
    gathered = mec.gather("arr")
    assert isinstance(gathered, numpy.ndarray) and gathered.tolist() == list(range(10))
    with pytest.raises(CompositeError) as info:
        mec.gather("lm_missing")
    assert info.value.message.endswith("method: gather") and "[0:pull]" in str(info.value)


def test_mec17_ranges_and_iterators_scatter_as_lists(mec):
    mec.scatter("a", range(4))
    assert mec.execute("print(a)", targets=0)[0]["stdout"] == "[0, 1]\n"
    mec.scatter("g", (i * i for i in range(4)))
    assert mec.pull("g") == [[0, 1], [4, 9]]
    mec.execute("r = range(3)")
    assert mec.gather("r") == [0, 1, 2, 0, 1, 2]


def test_mec18_map(mec):
    assert mec.map(lambda x: x**10, range(32)) == [x**10 for x in range(32)]
    mec.targets = 0
    assert mec.map(lambda x, y: x * y, [1, 2, 3], [4, 5, 6]) == [4, 10, 18]
    assert mec.map(lambda x: -x, [5]) == [-5], "fewer items than engines"
    assert mec.map(lambda x: x, []) == []
    mec.block = False
    pr = mec.map(lambda x: x + 1, range(4))
    assert isinstance(pr, PendingResult) and pr.r == [1, 2, 3, 4]
    mec.push({"k": 3}, targets="all", block=True)
    assert mec.map(lambda x: x + k, [1]).r == [4]  # noqa: F821  (``k`` lives on the engines)


def test_mec19_mapper(mec):
    m = mec.mapper(targets=[1], block=True)
    assert m.map(lambda x: (x, id), [1, 2]) == [(1, 1), (2, 1)]
    pr = mec.mapper(block=False).map(lambda x: 2 * x, range(10))
    assert isinstance(pr, PendingResult) and pr.r == list(range(0, 20, 2))
    mec.block = False
    assert isinstance(mec.mapper().map(lambda x: x, [1]), PendingResult), "block None: the client's, when called"


def test_mec20_parallel_decorator(mec):
    @mec.parallel()
    def f(x):
        return 10.0 * x**4

    assert f(range(32))[:3] == [0.0, 10.0, 160.0]
    mec.targets, mec.block = [1], False

    @mec.parallel()
    def where(x, y):
        return (x + y, id)

    mec.targets, mec.block = "all", True
    pr = where([1, 2], [10, 20])
    assert isinstance(pr, PendingResult), "block captured at decoration"
    assert pr.r == [(11, 1), (22, 1)], "targets captured at decoration"
    with pytest.raises(AssertionError):
        mec.parallel()(abs)


def test_mec21_raw_map(mec):
    assert mec.raw_map(lambda x, y: x - y, [[5, 6, 7], [1, 1, 1]]) == [4, 5, 6]
    mec.push({"k": 100})
    assert mec.raw_map("lambda x: x + k", [[1, 2]]) == [101, 102]
    assert set(mec.keys()[0]) >= {"_ipython_map_func", "_ipython_map_seq", "_ipython_map_seq_result"}
    with pytest.raises(ValueError, match="all sequences must have equal length"):
        mec.raw_map(lambda x, y: x, [[1, 2], [1]])
    with pytest.raises(TypeError):
        mec.raw_map(lambda x: x, "abc")
    with pytest.raises(CompositeError) as info:
        mec.raw_map(lambda x: 1 / x, [[1, 0, 2, 0]])
    assert len(info.value.elist) == 2


# -- run, reset, keys, get_result (MEC-22..MEC-25) ------------------------------------------------------


def test_mec22_run_file(mec, tmp_path):
    script = tmp_path / "lm_script.py"
    script.write_text("lm_ran = id + 100\nprint('ran')\n")
    result = mec.run(str(script))
    assert type(result) is list and [r["stdout"] for r in result] == ["ran\n", "ran\n"]
    assert mec.pull("lm_ran") == [100, 101]
    bad = tmp_path / "bad.py"
    bad.write_text("x = = 1\n")
    with pytest.raises(SyntaxError):
        mec.run(str(bad))
    assert isinstance(mec.run(str(script), block=False).r, list)


def test_mec23_reset(mec):
    mec.execute("lm_x = 1")
    assert mec.reset() == [None, None]
    assert [sorted(k) for k in mec.keys()] == [["id", "mpi"]] * 2
    assert mec.pull("id") == [0, 1]
    with pytest.raises(CompositeError) as info:
        mec.get_result()
    assert info.value.elist[0][0] is IndexError


def test_mec24_keys(mec):
    mec.reset()
    mec.execute("lm_a = 1\n_ = 2\nIn = 3\nraw_input = input")
    assert [sorted(k) for k in mec.keys()] == [["id", "lm_a", "mpi"]] * 2
    assert mec.keys(targets=1) == [mec.keys()[1]]


def test_mec25_get_result(mec):
    mec.reset()
    mec.execute("a = 1")
    mec.execute("print(id)", targets=1)
    latest = mec.get_result()
    assert isinstance(latest, ResultList)
    assert [(r["id"], r["number"]) for r in latest] == [(0, 1), (1, 2)]
    assert mec.get_result(1, targets=1)[0]["input"]["raw"] == "a = 1"
    assert mec.get_result(targets=1)[0]["stdout"] == "1\n", "targets are honoured"
    with pytest.raises(CompositeError) as info:
        mec.get_result(2)
    assert [ev._ipython_engine_info["engineid"] for _, ev, _ in info.value.elist] == [0]
    assert info.value.elist[0][0] is IndexError


# -- queues (MEC-26, MEC-27) ------------------------------------------------------------------------


def test_mec26_queue_status_and_clear_queue(mec, release):
    # the hub records a reply shortly after a client has it: let the last commands of
    # earlier tests' other clients be recorded as done, or engine 1 could show one pending
    rc = mec._client
    leftovers = {}

    def nothing_queued():
        leftovers.clear()
        leftovers.update({eid: s["queue"] for eid, s in rc.queue_status(verbose=True).items()
                          if isinstance(s, dict) and s["queue"]})
        return not leftovers

    try:
        wait_until(nothing_queued, "the hub to record every earlier command as done")
    except AssertionError as e:
        records = rc.db_query({"msg_id": {"$in": [m for ids in leftovers.values() for m in ids]}},
                              keys=["msg_id", "header", "client_uuid", "engine_uuid", "submitted", "completed"])
        raise AssertionError(f"{e}: still queued {leftovers}; their records: {records}") from None
    mec.block = False
    running = mec.execute(hold(release), targets=0)
    queued = [mec.execute("time.sleep(2.0)", targets=0), mec.push({"q": 1}, targets=0)]
    wait_queued(mec, 0, 2)
    status = mec.queue_status(block=True)
    assert type(status) is list and [eid for eid, _ in status] == [0, 1]
    assert status[0][1]["pending"].startswith('execute("import os, time')
    assert status[0][1]["queue"] == ["execute('time.sleep(2.0)')", "push(['q'])"]
    assert status[1][1] == {"queue": [], "pending": "None"}
    assert mec.clear_queue(targets=0, block=True) == [None]
    release.touch()
    assert isinstance(running.r, ResultList)
    for pr in queued:
        with pytest.raises(CompositeError) as info:
            pr.r
        assert info.value.elist[0][0] is QueueCleared
    assert mec.execute("a = 1", block=True)[0]["id"] == 0, "later commands are not affected"


def test_mec27_fifo_and_failure_aborts_the_queue(mec, release):
    mec.block = False
    mec.push({"a": 1})
    mec.execute("a += 1")
    mec.execute("import time; time.sleep(0.2); a *= 10")
    assert mec.pull("a").r == [20, 20], "commands ran in submission order"
    failing = mec.execute(hold(release) + "1/0", targets=0)
    behind = [mec.execute("lm_b = 1", targets=0), mec.pull("a", targets=0)]
    other = mec.execute("lm_b = 2", targets=1)
    wait_queued(mec, 0, 2)
    release.touch()
    with pytest.raises(CompositeError) as info:
        failing.r
    assert info.value.elist[0][0] is ZeroDivisionError
    for pr in behind:
        with pytest.raises(CompositeError) as info:
            pr.r
        assert info.value.elist[0][0] is QueueCleared
    assert isinstance(other.r, ResultList), "the other engine's queue is not affected"
    assert mec.pull("a", targets=0).r == [20]
    assert mec.keys(targets=0).r[0].count("lm_b") == 0


# -- properties, benchmark, activate (MEC-29..MEC-31) -------------------------------------------------------


def test_mec29_properties(mec):
    mec.reset()
    with pytest.warns(UserWarning):
        assert mec.set_properties({"a": 1, "b": [2]}) == [None, None]
    with pytest.warns(UserWarning):
        assert mec.get_properties() == [{"a": 1, "b": [2]}] * 2
    with pytest.warns(UserWarning):
        assert mec.get_properties(["a"], targets=1) == [{"a": 1}]
    with pytest.warns(UserWarning):
        assert mec.has_properties(["a", "c"]) == [[True, False]] * 2
    with pytest.warns(UserWarning):
        assert mec.del_properties("a") == [None, None]
    with pytest.warns(UserWarning):
        assert mec.get_properties() == [{"b": [2]}] * 2
    with pytest.warns(UserWarning), pytest.raises(CompositeError) as info:
        mec.set_properties({"bad": lambda: 1})  # a lambda pickles here (cloudpickle), not with pickle there
    assert info.value.elist[0][0] is InvalidProperty
    with pytest.warns(UserWarning):
        assert mec.clear_properties() == [None, None]
    with pytest.warns(UserWarning):
        assert mec.get_properties() == [{}, {}]
    mec.reset()


def test_mec30_benchmark(mec):
    report = mec.benchmark(push_size=1000)
    assert {"single_engine_latency", "all_engine_latency"} <= set(report)
    assert report["all_engine_latency"][1] == "msec" and report["all_engine_latency"][0] > 0


def test_mec31_activate_outside_ipython(mec, capsys):
    mec.activate()
    assert capsys.readouterr().out == "The IPython Controller magics only work within IPython.\n"


# -- PendingResult (PR-01..PR-05) -------------------------------------------------------------------------


def test_pr01_pending_result_default_and_r(mec, release):
    pr = mec.execute(hold(release), block=False)
    assert pr.get_result(default="not done", block=False) == "not done"
    assert pr.get_result(block=False) is None
    release.touch()
    assert isinstance(pr.r, ResultList) and pr.r is pr.get_result()


def test_pr02_results_and_exceptions_are_cached(mec):
    pr = mec.execute("1/0", block=False)
    for _ in range(2):
        with pytest.raises(CompositeError):
            pr.r
    assert pr.result_id not in mec._pending._calls, "fetched: the client's copy is gone"
    ok = mec.pull("id", block=False)
    assert ok.r == [0, 1] and ok.get_result() == [0, 1]


def test_pr03_callbacks_chain_and_pending_execute_is_a_results_list(mec):
    pr = mec.pull("id", block=False)
    pr.add_callback(lambda r, k: [x + k for x in r], 10)
    pr.add_callback(sum)
    assert pr.r == 21
    pr = mec.execute("lm_z = 1", block=False)
    assert isinstance(pr.r, ResultList) and plain(pr.r).startswith("<Results List>\n[0] In [")


def test_pr04_barrier(mec):
    prs = [mec.execute("import time; time.sleep(0.05)", block=False) for _ in range(3)]
    failing = mec.execute("1/0", block=False)
    assert mec.barrier(prs + [failing]) is None
    assert all(pr.called for pr in prs) and failing.raised
    with pytest.raises(NotAPendingResult):
        mec.barrier([prs[0], "nope"])


def test_pr05_flush(mec):
    prs = [mec.execute("a = 1", block=False), mec.pull("id", block=False)]
    mec.barrier([])
    assert mec.flush() is None
    for pr in prs:
        with pytest.raises(InvalidDeferredID):
            pr.get_result()
    pr = mec.pull("id", block=False)
    mec.clear_pending_results()
    with pytest.raises(InvalidDeferredID):
        pr.r


# -- engines and errors (ENG-01, ERR-02, PY2-02) --------------------------------------------------------------


def test_eng01_engine_namespace(mec):
    mec.reset()
    assert mec.pull(("id", "mpi", "__name__")) == [[0, None, "__main__"], [1, None, "__main__"]]
    mec.execute("import os, sys\nlm_path = '' in sys.path\nlm_cwd = os.getcwd()")
    assert mec.pull("lm_path") == [True, True]
    assert mec.pull("lm_cwd") == [os.getcwd()] * 2


def test_eng01_modern_users_never_see_id(rc):
    view = rc[:]
    view.clear(block=True)
    view.execute("lm_has_id = 'id' in globals()", block=True)
    assert view.pull("lm_has_id", block=True) == [False, False]
    MultiEngineClient.from_client(rc).keys()
    assert view.pull("id", block=True) == [0, 1]


def test_err02_nested_composite_errors_flatten(mec):
    errors = []
    for call in (lambda: mec.execute("1/0"), lambda: mec.pull("lm_missing")):
        try:
            call()
        except CompositeError as e:
            errors.append(e)
    with pytest.raises(CompositeError) as info:
        collect_exceptions(errors + [None], "barrier")
    assert [et for et, _, _ in info.value.elist] == [ZeroDivisionError, ZeroDivisionError, NameError, NameError]


def test_py2_02_translated_code_runs_and_the_results_list_shows_the_original(mec):
    def translator(source, filename):
        return re.sub(r"^print (\w+)$", r"print(\1)", source, flags=re.M)

    prelude = "import builtins\nbuiltins.__lm_prelude_ran__ = True\n"
    translate.set_translator(translator, prelude)
    try:
        mec.push({"c": "speed"})
        result = mec.execute("print c")
        assert [r["stdout"] for r in result] == ["speed\n", "speed\n"]
        assert result[0]["input"] == {"raw": "print c", "translated": "print c"}
        assert "[0] In [" in plain(result) and "]: print c\n" in plain(result)
        assert mec.execute("ran = __lm_prelude_ran__") and mec.pull("ran") == [True, True]
        assert "__lm_prelude_ran__" not in mec.keys()[0], "the prelude ran outside the user namespace"
        with pytest.raises(CompositeError) as info:
            mec.execute("print c d")
        assert info.value.elist[0][0] is SyntaxError
        # functions of translated client code may need the prelude's helpers: map runs it too
        translate.set_translator(translator, "import builtins\nbuiltins.__lm_double__ = lambda x: 2 * x\n")
        assert mec.map(lambda x: __lm_double__(x), [1, 2]) == [2, 4]  # noqa: F821  (the prelude's)
    finally:
        translate.set_translator(None)
        mec.execute("import builtins\nfor name in ('__lm_prelude_ran__', '__lm_double__'):\n"
                    "    if hasattr(builtins, name): delattr(builtins, name)")
