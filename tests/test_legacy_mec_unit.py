"""Unit tests of the legacy MultiEngineClient's pure parts (no sockets, no processes).

The Results List text, 0.10's interpreter semantics of :mod:`kernelpar.client.legacy.onengine`
(run here on a plain dict namespace, exactly as an engine runs them on its own), pull
shapes, partitioning, PendingResult caching/flush/barrier, and the engine-failure
mapping of :mod:`kernelpar.client.legacy.commands`.
"""

import re
from concurrent.futures import Future

import pytest

from kernelpar.client.legacy import commands, mecdata, onengine
from kernelpar.client.legacy.error import (
    CompositeError,
    InvalidDeferredID,
    NotAPendingResult,
    QueueCleared,
    RemoteError,
)
from kernelpar.client.legacy.multiengineclient import MultiEngineClient
from kernelpar.client.legacy.pendingresult import LegacyCall, PendingTable, barrier
from kernelpar.client.legacy.resultlist import ResultList
from kernelpar.errors import EngineError, TaskAborted

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def fresh_namespace():
    return {"__name__": "__main__"}


def run(ns, source):
    return onengine.execute(ns, source, source)


# -- ResultList (MEC-06, MEC-07) ------------------------------------------------------------


def test_results_list_text_with_colours():
    rl = ResultList([
        {"id": 0, "number": 1, "input": {"raw": "print(c)", "translated": "print(c)"}, "stdout": "speed\n"},
        {"id": 1, "number": 4, "input": {"raw": "x", "translated": "x"}, "stderr": "oops\n"},
    ])
    assert repr(rl) == (
        "<Results List>\n"
        "\x1b[0;32m[0]\x1b[0;34m In [1]:\x1b[0m print(c)\n"
        "\x1b[0;32m[0]\x1b[0;31m Out[1]:\x1b[0m speed\n\n"
        "\x1b[0;32m[1]\x1b[0;34m In [4]:\x1b[0m x\n"
        "\x1b[0;32m[1]\x1b[0;31m Err[4]:\n\x1b[0m oops\n"
    )
    assert str(rl) == repr(rl)


def test_results_list_colours_can_be_disabled_and_missing_input_shows():
    rl = ResultList([{"id": 2, "number": 3}])
    rl.colors = False
    assert repr(rl) == "<Results List>\n[2] In [3]: No Input\n"
    assert ANSI.sub("", repr(ResultList([{"id": 2, "number": 3}]))) == repr(rl)
    assert isinstance(rl, list) and rl == [{"id": 2, "number": 3}]


# -- engine-side execute (MEC-04, MEC-05, MEC-05b, MEC-07, MEC-23, MEC-24) ---------------------


def test_execute_result_dict_and_numbering():
    ns = fresh_namespace()
    first = run(ns, "d=10; print(d)")
    assert first == {"id": None, "number": 1, "input": {"raw": "d=10; print(d)", "translated": "d=10; print(d)"},
                     "stdout": "10\n"}
    with pytest.raises(ZeroDivisionError):
        run(ns, "1/0")
    onengine.push(ns, {"z": 1})
    onengine.pull(ns, "z")
    third = run(ns, "import sys; print('e', file=sys.stderr)")
    assert third["number"] == 3, "failures use a number, push/pull do not"
    assert third["stderr"] == "e\n" and "stdout" not in third


def test_execute_expression_goes_to_display_not_stdout():
    ns = fresh_namespace()
    result = run(ns, "a = [1, 2]\na\nNone")
    assert result["display"] == {"pprint": "[1, 2]", "repr": "[1, 2]"}
    assert "stdout" not in result
    assert ns["_"] == [1, 2]
    assert "display" not in run(ns, "b = 1")


def test_execute_stops_at_the_first_failing_statement():
    ns = fresh_namespace()
    with pytest.raises(NameError):
        run(ns, "a = 1\nundefined_name\nb = 2")
    assert ns["a"] == 1 and "b" not in ns


def test_execute_syntax_error_runs_nothing_and_indented_code_runs():
    ns = fresh_namespace()
    with pytest.raises(SyntaxError):
        run(ns, "a = 1\nb = = 2")
    assert "a" not in ns
    assert run(ns, "    x = 1\n    y = x + 1\n")["number"] == 2
    assert ns["y"] == 2


def test_execute_future_imports_apply_to_later_statements():
    ns = fresh_namespace()
    run(ns, "from __future__ import annotations\ndef f(x: undefined_type): return x\n")
    assert ns["f"].__annotations__ == {"x": "undefined_type"}


def test_seeding_reset_keys_and_history():
    ns = fresh_namespace()
    assert onengine.keys(ns) == ["id", "mpi"]
    assert ns["id"] is None and ns["mpi"] is None
    run(ns, "a = 1")
    onengine.set_properties(ns, {"p": 1})
    assert onengine.get_result(ns)["number"] == 1
    with pytest.raises(IndexError):
        onengine.get_result(ns, 7)
    onengine.reset(ns)
    assert sorted(onengine.keys(ns)) == ["id", "mpi"]
    assert onengine.properties(ns) == {}
    with pytest.raises(IndexError):
        onengine.get_result(ns)
    assert run(ns, "b = 2")["number"] == 1


def test_keys_hide_the_interpreter_names():
    ns = fresh_namespace()
    onengine.push(ns, {name: 1 for name in ("In", "Out", "_", "__", "___", "_ih", "_oh", "__IP", "input",
                                            "raw_input", "mine")})
    assert sorted(onengine.keys(ns)) == ["id", "mine", "mpi"]


# -- pull shapes and errors (MEC-10, MEC-11) -----------------------------------------------------


def test_pull_shapes():
    ns = fresh_namespace()
    onengine.push(ns, {"a": 1, "b": 2})
    assert onengine.pull(ns, "a") == 1
    assert onengine.pull(ns, ["a"]) == 1
    assert onengine.pull(ns, ("a", "b")) == [1, 2]
    assert onengine.pull(ns, []) == []


def test_pull_errors_use_0_10_messages():
    ns = fresh_namespace()
    with pytest.raises(NameError, match=r"^name x is not defined$"):
        onengine.pull(ns, "x")
    with pytest.raises(TypeError, match=r"^objects must be keyed by strings\.$"):
        onengine.pull(ns, [1])
    with pytest.raises(TypeError, match=r"^keys must be a strong or a list/tuple of strings$"):
        onengine.pull(ns, 3)


def test_push_function_needs_functions():
    ns = fresh_namespace()
    with pytest.raises(TypeError, match="function object expected"):
        onengine.push_function(ns, {"f": 3})
    onengine.push_function(ns, {"f": lambda: 1})
    assert ns["f"]() == 1


def test_properties_are_copied_and_must_pickle():
    ns = fresh_namespace()
    value = [1]
    onengine.set_properties(ns, {"a": value, "b": 2})
    value.append(2)
    assert onengine.get_properties(ns) == {"a": [1], "b": 2}
    assert onengine.get_properties(ns, "b") == {"b": 2}
    assert onengine.has_properties(ns, ["a", "c"]) == [True, False]
    onengine.del_properties(ns, "a")
    assert onengine.properties(ns) == {"b": 2}
    with pytest.raises(onengine.InvalidProperty):
        onengine.set_properties(ns, {"bad": (x for x in [])})
    onengine.clear_properties(ns)
    assert onengine.properties(ns) == {}


def test_raw_map_chunk_leaves_0_10_helper_names():
    ns = fresh_namespace()
    onengine.push(ns, {"k": 10})
    assert onengine.raw_map_chunk(ns, "lambda x, y: x * y + k", [(1, 2), (3, 4)]) == [12, 22]
    assert ns["_ipython_map_seq_result"] == [12, 22] and ns["_ipython_map_seq"] == [(1, 2), (3, 4)]
    assert onengine.raw_map_chunk(ns, abs, []) == []


# -- partitioning (MEC-15, MEC-16, MEC-17) -----------------------------------------------------


def test_scatter_parts_are_lists_for_ranges_and_iterators():
    assert mecdata.as_list_like(range(4)) == [0, 1, 2, 3]
    assert mecdata.as_list_like(x for x in "ab") == ["a", "b"]
    assert mecdata.as_list_like((1, 2)) == (1, 2)
    assert mecdata.join([range(2), [2, 3]]) == [0, 1, 2, 3]
    assert mecdata.join([(1,), (2,)]) == [1, 2]
    assert mecdata.join([5, 6]) == [5, 6]
    with pytest.raises(KeyError):
        mecdata.check_dist("r")
    with pytest.raises(AssertionError, match="func must be a fuction or str"):
        mecdata.check_map_func(abs)


def test_gather_concatenates_arrays():
    import numpy
    joined = mecdata.join([numpy.arange(2), numpy.arange(2, 5)])
    assert isinstance(joined, numpy.ndarray) and joined.tolist() == [0, 1, 2, 3, 4]


# -- failures (MEC-08, MEC-26, MEC-27, ERR-02) ----------------------------------------------------


class _Fut:
    def __init__(self, engine_id):
        self.engine_id = engine_id


def test_per_engine_collects_every_failure_after_all_engines():
    finish = commands.per_engine([_Fut(0), _Fut(1), _Fut(2)], "execute")
    remote = RemoteError("ZeroDivisionError", "division by zero", "Traceback...")
    aborted = TaskAborted("aborted")
    with pytest.raises(CompositeError) as info:
        finish([remote, {"ok": 1}, aborted])
    err = info.value
    assert err.message == "one or more exceptions from call to method: execute"
    assert [et for et, _, _ in err.elist] == [ZeroDivisionError, QueueCleared]
    assert str(err).splitlines()[1] == "[0:execute]: ZeroDivisionError: division by zero"
    assert str(err).splitlines()[2].startswith("[2:execute]: QueueCleared: ")
    with pytest.raises(ZeroDivisionError):
        err.raise_exception(0)
    with pytest.raises(IndexError, match="an exception with index 5 does not exist"):
        err.raise_exception(5)
    assert commands.per_engine([_Fut(0)], "push", shape=commands.nones)([None]) == [None]


def test_engine_death_is_an_engine_error_in_the_composite():
    death = EngineError("Engine 1 died while running task x")
    with pytest.raises(CompositeError) as info:
        commands.per_engine([_Fut(1)], "execute")([death])
    assert info.value.elist[0][1] is death
    assert death._ipython_engine_info == {"engineid": 1, "method": "execute", "args": []}


def test_command_text_is_short():
    assert commands.command_text("execute", "time.sleep(2.0)") == "execute('time.sleep(2.0)')"
    long = commands.command_text("execute", "x" * 1000)
    assert len(long) == commands.COMMAND_TEXT_LIMIT and long.endswith("...)")


def test_stop_on_error_flag_matches_the_engine():
    from kernelpar.engine.kernel import STOP_ON_ERROR

    assert commands.request_metadata("t")[commands.STOP_ON_ERROR] is True
    assert commands.STOP_ON_ERROR == STOP_ON_ERROR


# -- flags (MEC-01) ------------------------------------------------------------------------------


def test_block_and_targets_validation():
    mec = MultiEngineClient.from_client(None)
    assert mec.block is True and mec.targets == "all"
    assert mec._flags(None, None) == ("all", True)
    assert mec._flags([0, 1], 0) == ([0, 1], False)
    with pytest.raises(ValueError, match="^block must be True or False$"):
        mec._flags(None, "yes")
    with pytest.raises(ValueError, match="^targets must be a str, list, tuple or int$"):
        mec._flags({0}, None)


# -- PendingResult (PR-01..PR-05) -------------------------------------------------------------------


class _Client:
    def __init__(self):
        self.table = PendingTable()

    def get_pending_deferred(self, result_id, block):
        return self.table.fetch(result_id, block)


def _pending(client, value=None, exc=None, done=True):
    fut = Future()
    if done:
        fut.set_result([exc if exc is not None else value])

    def finish(raw):
        if isinstance(raw[0], BaseException):
            raise raw[0]
        return raw[0]

    return client.table.add(client, LegacyCall(fut, finish)), fut


def test_pending_result_default_callbacks_and_cache():
    client = _Client()
    pr, fut = _pending(client, done=False)
    assert pr.get_result(default="not done", block=False) == "not done"
    pr.add_callback(lambda r, k: r + k, 10)
    pr.add_callback(lambda r, scale=1: r * scale, scale=2)
    fut.set_result([1])
    assert pr.r == 22 and pr.get_result() == 22
    assert pr.called and pr.result == 22
    with pytest.raises(TypeError):
        pr.add_callback(3)
    assert isinstance(pr.result_id, str) and len(pr.result_id) == 32


def test_pending_result_exception_is_raised_every_time():
    client = _Client()
    pr, _ = _pending(client, exc=ZeroDivisionError("x"))
    for _ in range(2):
        with pytest.raises(ZeroDivisionError):
            pr.r
    assert pr.raised


def test_flush_makes_unfetched_results_invalid():
    client = _Client()
    fetched, _ = _pending(client, 1)
    flushed, _ = _pending(client, 2)
    assert fetched.r == 1
    client.table.flush()
    assert fetched.r == 1
    for _ in range(2):
        with pytest.raises(InvalidDeferredID):
            flushed.get_result()


def test_barrier_swallows_errors_and_rejects_other_objects():
    client = _Client()
    ok, _ = _pending(client, 1)
    bad, _ = _pending(client, exc=KeyError("k"))
    assert barrier([bad, ok]) is None
    assert ok.called and bad.raised
    with pytest.raises(NotAPendingResult):
        barrier([ok, 3])
    assert sorted([ok, bad]) == sorted([bad, ok])


def test_garbage_collected_pending_results_leave_the_table():
    client = _Client()
    pr, _ = _pending(client, 1, done=False)
    assert len(client.table._calls) == 1
    del pr
    assert client.table._calls == {}


def test_remote_tracebacks_start_at_the_users_code():
    text = (
        "Traceback (most recent call last):\n"
        '  File "/site/kernelpar/client/legacy/onengine.py", line 107, in in_namespace\n'
        "    return f(user_namespace() if namespace is None else namespace, *args, **kwargs)\n"
        "           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n"
        '  File "/site/kernelpar/client/legacy/onengine.py", line 157, in execute\n'
        "    exec(code, namespace)\n"
        '  File "<legacy-input-1>", line 2, in <module>\n'
        "    f(0)\n"
        '  File "/home/me/mymodule.py", line 3, in f\n'
        "    return 1/x\n"
        "ZeroDivisionError: division by zero\n"
    )
    assert commands.user_traceback(text) == (
        "Traceback (most recent call last):\n"
        '  File "<legacy-input-1>", line 2, in <module>\n'
        "    f(0)\n"
        '  File "/home/me/mymodule.py", line 3, in f\n'
        "    return 1/x\n"
        "ZeroDivisionError: division by zero\n"
    )
