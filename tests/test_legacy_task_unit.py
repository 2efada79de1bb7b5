"""The IPython 0.10 TaskClient's pure pieces: task validation, TaskResult/ResultNS, the
controller's task-id table, and the scheduler's TaskClient rules (fake clock, no sockets).

The live behaviour is in test_legacy_task_live.py."""

import random

import pytest
from schedworld import FakeClock, brief

from kernelpar.client.legacy.task import MapTask, ResultNS, StringTask, TaskFailure, TaskResult
from kernelpar.client.legacy.taskclient import _batch_shipper
from kernelpar.client.legacy.taskonengine import EngineTask, run_task
from kernelpar.controller.legacytasks import AckBatches, LegacyTasks, parse_stages
from kernelpar.controller.scheduler import Deliver, Fail, Task, TaskScheduler
from kernelpar.wire.serialize import pack_apply, unpack_apply


def double(x):
    return 2 * x


# -- tasks (TC-06) ------------------------------------------------------------------------------


@pytest.mark.parametrize("args, message", [
    (("asdfasdf",), "a task function must be a FunctionType"),
    ((abs,), "a task function must be a FunctionType"),
    ((double, 10), "a task args must be a list or tuple"),
    ((double, (10,), 30), "a task kwargs must be a dict"),
])
def test_map_task_validation(args, message):
    with pytest.raises(TypeError, match=message):
        MapTask(*args)


@pytest.mark.parametrize("kwargs, message", [
    (dict(expression=5), "a task expression must be a string"),
    (dict(expression="a=1", pull=5), "pull must be str or a sequence of strs"),
    (dict(expression="a=1", pull=["a", 1]), "pull must be str or a sequence of strs"),
    (dict(expression="a=1", push=[("a", 1)]), "push must be a dict"),
])
def test_string_task_validation(kwargs, message):
    with pytest.raises(TypeError, match=message):
        StringTask(**kwargs)


def test_task_defaults_and_settable_attributes():
    t = MapTask(double)
    assert (t.args, t.kwargs, t.taskid, t.retries, t.clear_before, t.clear_after) == ((), {}, None, 0, False, False)
    s = StringTask(b"a = 1", pull="a")
    assert s.expression == "a = 1" and s.pull == ("a",) and s.push == {}
    assert StringTask("", pull=("word")).pull == ("word",)  # helloworld.py's pull=('word') is a str
    s.retries = 3
    s.recovery_task = t
    assert s.stages() == [s, t]


def test_bad_settings_are_refused_when_the_task_is_run():
    t = MapTask(double, (1,))
    t.retries = -1
    with pytest.raises(ValueError, match="retries"):
        t.engine_task()
    t.retries, t.depend = 0, "not callable"
    with pytest.raises(TypeError, match="depend"):
        t.engine_task()
    t.depend, t.recovery_task = None, "not a task"
    with pytest.raises(TypeError, match="recovery_task"):
        t.stages()


def test_recovery_chains_stop_at_a_loop():
    a, b = StringTask("a"), StringTask("b")
    a.recovery_task, b.recovery_task = b, a
    assert a.stages() == [a, b]


def test_functions_travel_as_the_multiengineclient_ships_them():
    halve = lambda x: x / 2  # noqa: E731
    body = MapTask(halve, [4], {}).engine_task().body
    assert body[0] is not halve and body[0].__module__ == "__main__" and body[0](4) == 2
    assert MapTask(double, [4], {}).engine_task().body[0] is double  # importable: by reference
    task = MapTask(double, [4], {}).engine_task()
    assert isinstance(task, EngineTask) and task.kind == "map" and task.body[1:] == ((4,), {})


def test_the_tasks_of_a_map_share_one_pickled_function():
    halve = lambda x: x / 2
    ship = _batch_shipper()
    first, second = (MapTask(halve, [x], {}, depend=halve).engine_task(ship) for x in (4, 6))
    assert first.body[0] is second.body[0] is first.depend, "pickled once for the batch"
    _, (task,), _ = unpack_apply(pack_apply(run_task, (second,), {}), {})
    assert task.body[0](task.body[1][0]) == 3 and task.body[0].__module__ == "__main__"


# -- results (TR-01, TC-03, TC-04) ------------------------------------------------------------------


def test_task_result_of_a_success():
    tr = TaskResult({"a": 73})
    tr.taskid = 73
    assert repr(tr) == "TaskResult[ID:73]:{'a': 73}"
    assert tr.keys == ["a"] and tr["a"] == 73 and tr.ns.a == 73 and tr.ns["a"] == 73
    assert tr.failure is None and tr.raise_exception() is None
    with pytest.raises(Exception, match="the ns attribute cannot be changed"):
        tr.ns = {}


def test_task_result_of_a_failure_raises_the_original_exception_on_every_access():
    failure = TaskFailure(ZeroDivisionError("division by zero"))
    tr = TaskResult({"a": 1}, failure)
    tr.taskid = 3
    assert tr.results == {} and tr.keys == [] and tr.failure is failure
    assert repr(tr) == "TaskResult[ID:3]:<Failure ZeroDivisionError: division by zero>"
    for access in (lambda: tr.ns, lambda: tr["a"], tr.raise_exception, failure.raiseException, tr.raise_exception):
        with pytest.raises(ZeroDivisionError):
            access()
    assert failure.type is ZeroDivisionError and isinstance(failure.value, ZeroDivisionError)
    assert "ZeroDivisionError" in failure.getTraceback()


def test_result_ns_repr_is_sorted_and_public():
    ns = ResultNS({"foo": [0, 1, 2], "a": 17})
    assert repr(ns) == "NS{'a': 17, 'foo': [0, 1, 2]}"
    assert ns.a == ns["a"] == 17


# -- the controller's task-id table ----------------------------------------------------------------


def stages(*kinds):
    return [(1, 0, kind) for kind in kinds]


def test_task_ids_are_consecutive_from_zero():
    table = LegacyTasks(TaskScheduler())
    ids = [table.submit(f"m{i}", stages("map"), lambda a, b: None)[0] for i in range(4)]
    assert ids == [0, 1, 2, 3] and len(table) == 4


def test_stages_metadata_is_checked():
    assert parse_stages({"stages": [[2, 1, "map"], [1, 0, "string"]]}, 3) == [(2, 1, "map"), (1, 0, "string")]
    for bad, what in [({}, "stages"), ({"stages": [[1, 0, "shell"]]}, "kind"),
                      ({"stages": [[1, -1, "map"]]}, "retries"), ({"stages": [[2, 0, "map"]]}, "buffers"),
                      ({"stages": [[1, 0]]}, "nbuffers, retries, kind")]:
        with pytest.raises(ValueError, match=what):
            parse_stages(bad, 1)


def test_ack_batches_answer_once_whole_and_forget_abandoned_ones():
    batches = AckBatches(limit=2)
    assert batches.add("a", 2, 0) is None
    assert batches.add("b", 1, 1) == [1]
    assert batches.add("a", 2, ["KeyError", "no"]) == [0, ["KeyError", "no"]] and len(batches) == 0
    for ack in ("dead1", "dead2", "dead3"):
        batches.add(ack, 5, 0)
    assert len(batches) == 2, "only the newest incomplete batches are kept"
    assert batches.add("dead1", 2, 1) is None, "a forgotten batch starts again"


class Controller:
    """A scheduler with its task-id table, as the task queue drives them."""

    def __init__(self, engines=("A", "B"), **kwargs):
        self.clock = FakeClock()
        self.sched = TaskScheduler(clock=self.clock, rng=random.Random(0), **kwargs)
        self.table = LegacyTasks(self.sched)
        self.tasks = {}
        for e in engines:
            self.sched.add_engine(e)

    def run(self, *kinds, retries=0):
        """Submit a task (with recovery stages of ``kinds[1:]``); (task id, decisions)."""
        taskid, task = self.table.submit(f"m{len(self.tasks)}", [(1, retries, k) for k in kinds],
                                         lambda start, stop: f"stage{start}")
        self.tasks[taskid] = task
        return taskid, self.carry(self.sched.submit(task))

    def carry(self, decisions, status=None):
        """Tell the table how tasks ended, as the task queue does (``status``: the reply's)."""
        for d in decisions:
            if isinstance(d, Deliver):
                self.table.ended(d.task, status)
            elif isinstance(d, Fail):
                self.table.ended(d.task, d.ename)
        return brief(decisions)

    def reply(self, taskid, status):
        task = self.tasks[taskid]
        return self.carry(self.sched.finished(task.msg_id, task.engine, status), status)


def test_abort_status_and_clear_with_0_10_messages():
    c = Controller(engines=("A",))
    running, _ = c.run("string")
    queued, _ = c.run("string")
    mapped, _ = c.run("map")
    with pytest.raises(TypeError, match="an integer task id expected: 'x'"):
        c.table.abort("x")
    with pytest.raises(IndexError, match="No task #99"):
        c.table.abort(99)
    assert c.table.status() == {"scheduled": 2, "pending": 1, "succeeded": 0, "failed": 0}
    assert c.carry(c.table.abort(queued)) == [("fail", "m1", "TaskAborted")]
    with pytest.raises(IndexError, match="Task Already Aborted"):
        c.table.abort(queued)
    assert c.table.abort(running) == []  # running: its result will be replaced
    with pytest.raises(IndexError, match="Task Already Aborted"):
        c.table.abort(running)
    assert c.reply(running, "ok") == [("fail", "m0", "TaskAborted"), ("assign", "m2", "A")]
    assert c.reply(mapped, "ok") == [("deliver", "m2", "A")]
    with pytest.raises(IndexError, match="Task Already Completed"):
        c.table.abort(mapped)
    failed, _ = c.run("string")
    c.reply(failed, "error")
    ok, _ = c.run("string")
    c.reply(ok, "ok")
    # 0.10's quirk: only StringTask results count, and aborted tasks have none
    assert c.table.status() == {"scheduled": 0, "pending": 0, "succeeded": 1, "failed": 1}
    assert c.table.status(verbose=True) == {"scheduled": [], "pending": [], "succeeded": [ok], "failed": [failed]}
    assert c.table.lookup(ok) == ["m4", "string", True]
    still, _ = c.run("map")
    with pytest.raises(KeyError, match=r"Cleared 1 results, but no tasks found for ids: \[%d, 42\]" % still):
        c.table.clear([ok, still, 42])
    with pytest.raises(IndexError, match=f"task ID not registered: {ok}"):
        c.table.lookup(ok)
    assert c.table.clear() == 4  # the finished ones; the running one stays
    assert c.table.lookup(still)[2] is False and c.table.clear(None) == 0


# -- the scheduler's TaskClient rules ------------------------------------------------------------


class Sched:
    def __init__(self, engines=("A", "B"), **kwargs):
        self.clock = FakeClock()
        self.s = TaskScheduler(clock=self.clock, rng=random.Random(0), **kwargs)
        self.tasks = {}
        for e in engines:
            self.s.add_engine(e)

    def submit(self, msg_id, legacy_id=0, **kwargs):
        task = self.tasks[msg_id] = Task(msg_id, payload="main", legacy_id=legacy_id, **kwargs)
        return brief(self.s.submit(task))

    def reply(self, msg_id, status, engine=None):
        task = self.tasks[msg_id]
        return brief(self.s.finished(msg_id, engine or task.engine, status))

    def at(self, t):
        self.clock.now = t
        return brief(self.s.expire())


def test_retries_may_reuse_the_engine_that_failed():
    # 0.10's retries test: one engine, the namespace persists between attempts
    s = Sched(engines=("A",))
    assert s.submit("t", retries=2) == [("assign", "t", "A")]
    assert s.reply("t", "error") == [("assign", "t", "A")]
    assert s.reply("t", "error") == [("assign", "t", "A")]
    assert s.reply("t", "error") == [("deliver", "t", "A")]


def test_a_retry_prefers_another_engine_with_room():
    s = Sched()
    first = s.submit("t", retries=1)[0][2]
    other = ({"A", "B"} - {first}).pop()
    assert s.reply("t", "error") == [("assign", "t", other)]
    assert s.reply("t", "ok") == [("deliver", "t", other)]


def test_a_retry_goes_to_the_back_of_the_queue_as_in_0_10():
    s = Sched(engines=("A",))
    s.submit("t", retries=1)
    s.submit("u", legacy_id=1)
    assert s.reply("t", "error") == [("assign", "u", "A")]
    assert s.reply("u", "ok") == [("deliver", "u", "A"), ("assign", "t", "A")]


def test_recovery_stages_run_under_the_same_msg_id_after_the_retries():
    s = Sched(engines=("A",))
    task_fallbacks = (("recovery", 1), ("last", 0))
    s.submit("t", retries=1, fallbacks=task_fallbacks)
    task = s.tasks["t"]
    assert s.reply("t", "error") == [("assign", "t", "A")] and task.payload == "main"
    assert s.reply("t", "error") == [("assign", "t", "A")] and task.payload == "recovery"
    assert s.reply("t", "error") == [("assign", "t", "A")] and task.payload == "recovery"
    assert s.reply("t", "error") == [("assign", "t", "A")] and task.payload == "last" and task.stage == 2
    assert s.reply("t", "error") == [("deliver", "t", "A")]


def test_a_successful_stage_ends_the_chain():
    s = Sched(engines=("A",))
    s.submit("t", fallbacks=(("recovery", 0),))
    s.reply("t", "error")
    assert s.reply("t", "ok") == [("deliver", "t", "A")] and s.tasks["t"].stage == 1


def test_refusals_use_no_retry_and_a_task_refused_everywhere_waits():
    s = Sched()
    first = s.submit("t")[0][2]
    other = ({"A", "B"} - {first}).pop()
    assert s.reply("t", "unmet") == [("assign", "t", other)]
    assert s.reply("t", "unmet") == []  # never ImpossibleDependency
    assert s.s.waiting == 1 and s.s.next_deadline() == pytest.approx(1.0)
    assert s.at(0.5) == []
    # the bars end after the penalty: engines may have changed their minds
    assert len(s.at(1.0)) == 1 and s.tasks["t"].state == "assigned"
    assert s.reply("t", "ok")[0][0] == "deliver"


def test_spin_lifts_the_bars_at_once():
    s = Sched(engines=("A",))
    s.submit("t")
    s.reply("t", "unmet")
    assert s.s.waiting == 1
    assert brief(s.s.spin()) == [("assign", "t", "A")]
    assert brief(s.s.spin()) == []


def test_a_new_engine_takes_a_task_every_engine_refused():
    s = Sched(engines=("A",))
    s.submit("t")
    s.reply("t", "unmet")
    assert brief(s.s.add_engine("B")) == [("assign", "t", "B")]


def test_idle_timeout_fails_refused_tasks_with_0_10s_message():
    s = Sched(engines=("A",), idle_timeout=30)
    s.submit("t", legacy_id=7)
    s.clock.now = 0.2
    s.reply("t", "unmet")
    for t in range(1, 30):  # re-offered a second after each refusal, refused every time
        assert s.at(t + 0.2) == [("assign", "t", "A")]
        assert s.reply("t", "unmet") == []
    assert s.s.next_deadline() == pytest.approx(30.0)
    fail = s.s.expire()
    assert fail == [] and s.s.task("t") is not None
    s.clock.now = 30.0
    fail, = s.s.expire()
    assert isinstance(fail, Fail) and fail.ename == "TaskTimeout"
    assert fail.evalue == "task 7 failed to execute due to unmet dependencies for 30 seconds"
    assert s.s.task("t") is None and s.s.next_deadline() is None


def refuse(s, decisions, msg_id="t"):
    """Every engine refuses ``msg_id`` whenever it is offered; the other decisions."""
    offers = [d for d in decisions if d[:2] == ("assign", msg_id)]
    others = [d for d in decisions if d[:2] != ("assign", msg_id)]
    while offers:
        _, _, engine = offers.pop()
        for d in s.reply(msg_id, "unmet", engine):
            (offers if d[:2] == ("assign", msg_id) else others).append(d)
    return others


def test_a_busy_engine_or_activity_keeps_refused_tasks_waiting():
    s = Sched(idle_timeout=30)
    s.submit("busy", legacy_id=0)
    assert refuse(s, s.submit("t", legacy_id=1)) == []  # t waits for the busy engine
    for t in range(1, 41):
        assert refuse(s, s.at(float(t))) == []
    assert s.s.task("t") is not None  # 40 s, but an engine was busy all along
    assert refuse(s, s.reply("busy", "ok"))[0][0] == "deliver"  # activity at 40
    s.clock.now = 50.0
    assert refuse(s, brief(s.s.spin())) == []  # activity at 50
    for t in range(51, 80):
        assert refuse(s, s.at(float(t))) == []
    assert s.at(80.0) == [("fail", "t", "TaskTimeout")]


def test_no_timeout_without_engines():
    s = Sched(engines=("A",), idle_timeout=30)
    s.submit("t")
    s.reply("t", "unmet")
    s.s.remove_engine("A")
    assert s.at(100.0) == [] and s.s.waiting == 1
    assert brief(s.s.add_engine("B")) == [("assign", "t", "B")]


def test_discard_result_replaces_a_running_tasks_reply():
    s = Sched(engines=("A",))
    s.submit("t", retries=3)
    assert s.s.discard_result("t") is True and s.s.discard_result("nope") is False
    assert s.reply("t", "error") == [("fail", "t", "TaskAborted")]  # no retry either


def test_engine_death_retries_elsewhere_or_fails():
    s = Sched(engines=("A", "B"))
    s.submit("r", retries=1)
    s.submit("busy", legacy_id=1)
    victim, other = s.tasks["r"].engine, s.tasks["busy"].engine
    assert brief(s.s.remove_engine(victim)) == [] and s.tasks["r"].state == "waiting"  # the other is busy
    assert s.reply("busy", "ok") == [("deliver", "busy", other), ("assign", "r", other)]
    s = Sched(engines=("A", "B"))
    s.submit("r", retries=1)
    victim = s.tasks["r"].engine
    assert brief(s.s.remove_engine(victim)) == [("assign", "r", ({"A", "B"} - {victim}).pop())]
    s = Sched(engines=("A",))
    s.submit("d")
    assert brief(s.s.remove_engine("A")) == [("fail", "d", "EngineError")]


def test_modern_tasks_keep_their_rules_next_to_legacy_ones():
    s = Sched(engines=("A",))
    task = Task("modern", payload=None, retries=1)
    assert brief(s.s.submit(task)) == [("assign", "modern", "A")]
    # a modern retry never goes back to an engine that failed it: with no other, the error stands
    assert brief(s.s.finished("modern", "A", "error")) == [("deliver", "modern", "A")]
    task = Task("unmet", payload=None)
    s.s.submit(task)
    assert brief(s.s.finished("unmet", "A", "unmet")) == [("fail", "unmet", "ImpossibleDependency")]


def test_idle_timeout_must_be_positive():
    with pytest.raises(ValueError, match="idle_timeout"):
        TaskScheduler(idle_timeout=0)
