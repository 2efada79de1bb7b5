"""Unit tests of the task scheduler's dependencies: ``after`` and ``follow`` graphs with
all/any and success/failure, and requirements parsed and evaluated alone (the harness:
:mod:`schedworld`)."""


import pytest
from schedworld import Cluster, dep

from kernelpar.controller.taskdeps import (
    IMPOSSIBLE,
    MET,
    PENDING,
    InvalidDependencySpec,
    Requirement,
    parse_dependency,
)

# -- after ----------------------------------------------------------------------------------


def test_after_waits_for_the_dependency_and_runs_it_after_delivering():
    c = Cluster(engines=("A", "B", "C"))
    c.submit("d0")
    assert c.submit("t0", after=dep("d0")) == []
    assert c.sched.waiting == 1
    # d0 made C the most recently used engine
    assert c.finish("d0") == [("deliver", "d0", "C"), ("assign", "t0", "B")]


def test_after_all_needs_every_dependency():
    c = Cluster(hwm=0)
    c.submit("d0")
    c.submit("d1")
    assert c.submit("t0", after=dep("d0", "d1")) == []
    assert c.finish("d0") == [("deliver", "d0", "B")]
    assert c.finish("d1")[1][:2] == ("assign", "t0")


def test_after_any_needs_one_dependency():
    c = Cluster(hwm=0)
    c.submit("d0")
    c.submit("d1")
    assert c.submit("t0", after=dep("d0", "d1", all=False)) == []
    assert c.finish("d1")[1][:2] == ("assign", "t0")
    assert c.finish("d0") == [("deliver", "d0", "B")]


def test_after_already_met_at_submission():
    c = Cluster()
    c.submit("d0")
    c.finish("d0")
    assert c.submit("t0", after=dep("d0")) == [("assign", "t0", "A")]


@pytest.mark.parametrize("status, success, failure, runs", [
    ("ok", True, False, True),
    ("error", True, False, False),
    ("ok", False, True, False),
    ("error", False, True, True),
    ("ok", True, True, True),
    ("error", True, True, True),
])
def test_after_success_and_failure(status, success, failure, runs):
    for finished_first in (True, False):
        c = Cluster(hwm=0)
        c.submit("d0")
        if finished_first:
            c.finish("d0", status)
        out = c.submit("t0", after=dep("d0", success=success, failure=failure))
        if not finished_first:
            out = c.finish("d0", status)[1:]
        assert out == ([("assign", "t0", "A")] if runs else
                       [("fail", "t0", "ImpossibleDependency")]), (finished_first, out)


def test_after_all_fails_at_the_first_failed_dependency_without_waiting_for_the_rest():
    c = Cluster(hwm=0)
    c.submit("d0")
    c.submit("d1")
    c.submit("t0", after=dep("d0", "d1"))
    assert c.finish("d0", "error") == [("deliver", "d0", "B"),
                                       ("fail", "t0", "ImpossibleDependency")]


def test_after_any_fails_only_when_every_dependency_failed():
    c = Cluster(hwm=0)
    c.submit("d0")
    c.submit("d1")
    c.submit("t0", after=dep("d0", "d1", all=False))
    assert c.finish("d0", "error") == [("deliver", "d0", "B")]
    assert c.finish("d1", "error") == [("deliver", "d1", "A"),
                                       ("fail", "t0", "ImpossibleDependency")]


def test_an_impossible_task_does_not_block_others():
    c = Cluster()
    c.submit("d0")
    c.submit("d1")
    c.submit("t0", after=dep("d0"))
    c.submit("t1")
    assert c.finish("d0", "error") == [("deliver", "d0", "B"), ("assign", "t1", "B"),
                                       ("fail", "t0", "ImpossibleDependency")]


def test_failure_propagates_through_a_long_chain_without_recursion():
    c = Cluster()
    c.submit("t0")
    for i in range(1, 10_000):
        assert c.submit(f"t{i}", after=dep(f"t{i - 1}")) == []
    out = c.finish("t0", "error")
    assert out[0] == ("deliver", "t0", "B")
    assert out[1:] == [("fail", f"t{i}", "ImpossibleDependency") for i in range(1, 10_000)]
    assert c.sched.waiting == 0


def test_a_chain_runs_in_order():
    c = Cluster()
    c.submit("t0")
    for i in range(1, 50):
        c.submit(f"t{i}", after=dep(f"t{i - 1}"))
    order = []
    while c.on:
        msg_id = next(iter(c.on))
        order.append(msg_id)
        c.finish(msg_id)
    assert order == [f"t{i}" for i in range(50)]


def test_unknown_dependency_is_invalid_once_its_grace_is_over():
    c = Cluster()
    assert c.submit("t0", after=dep("nobody")) == []
    assert c.submit("t1", follow=dep("nobody")) == []
    assert c.sched.next_deadline() == c.sched.unknown_dependency_grace
    c.clock.now = c.sched.unknown_dependency_grace - 0.1
    assert c.expire() == []
    c.clock.now = c.sched.unknown_dependency_grace
    assert c.expire() == [("fail", "t0", "InvalidDependency"), ("fail", "t1", "InvalidDependency")]
    assert "unknown to the cluster: ['nobody']" in c.last[0].evalue
    assert c.sched.next_deadline() is None


def test_a_direct_task_heard_of_during_the_grace_is_waited_for():
    # the hub reads of direct tasks from the queue monitor, which may lag behind
    known = {}
    c = Cluster(outcome_of=known.get)
    assert c.submit("t0", after=dep("direct")) == []
    known["direct"] = "pending"
    c.clock.now = c.sched.unknown_dependency_grace
    assert c.expire() == []
    assert c.sched.waiting == 1
    known["direct"] = ("ok", "A")
    assert [d[:2] for d in c.note("direct", "ok", "A")] == [("assign", "t0")]


def test_an_unknown_dependency_heard_of_and_finished_within_the_grace():
    known = {}
    c = Cluster(outcome_of=known.get)
    assert c.submit("t0", after=dep("direct", "nobody", all=False)) == []
    known["direct"] = ("ok", "B")
    assert [d[:2] for d in c.note("direct", "ok", "B")] == [("assign", "t0")]
    c.clock.now = c.sched.unknown_dependency_grace
    assert c.expire() == [] and c.sched.next_deadline() is None


@pytest.mark.parametrize("after", [
    dep("t0"),  # itself
    dep("x", success=False, failure=False),
    {"dependencies": "not-a-list"},
    {"dependencies": 3},
    {"dependencies": [3]},
    ["a", "list"],
])
def test_malformed_dependencies_are_invalid(after):
    c = Cluster(outcome_of=lambda msg_id: ("ok", "A"))
    assert c.submit("t0", after=after) == [("fail", "t0", "InvalidDependency")]


def test_no_flags_as_clients_send_them_mean_no_dependency():
    c = Cluster()
    assert c.submit("t0", after=dep(), follow=dep()) == [("assign", "t0", "B")]


def test_dependencies_known_only_to_the_hub():
    outcomes = {"direct-ok": ("ok", "A"), "direct-err": ("error", "B"),
                "direct-running": "pending"}
    c = Cluster(outcome_of=outcomes.get)
    assert c.submit("t0", after=dep("direct-ok")) == [("assign", "t0", "B")]
    assert c.submit("t1", after=dep("direct-err")) == [("fail", "t1", "ImpossibleDependency")]
    assert c.submit("t2", after=dep("direct-running"), targets={"A"}) == []
    assert c.note("someone-else", "ok", "A") == []
    assert c.note("direct-running", "ok", "B") == [("assign", "t2", "A")]


def test_note_outcome_ignores_tasks_scheduled_here():
    c = Cluster(hwm=0)
    c.submit("d0")
    c.submit("t0", after=dep("d0"))
    assert c.note("d0", "ok", "B") == []
    assert c.sched.waiting == 1


def test_failed_dependency_from_a_direct_task():
    c = Cluster(outcome_of=lambda msg_id: "pending")
    c.submit("t0", after=dep("direct"))
    assert c.note("direct", "aborted", "A") == [("fail", "t0", "ImpossibleDependency")]


def test_failure_cascades_to_dependents_of_dependents():
    c = Cluster(hwm=0)
    c.submit("d0")
    c.submit("t0", after=dep("d0"))
    c.submit("t1", after=dep("t0"))
    c.submit("t2", after=dep("t0", failure=True, success=False))
    out = c.finish("d0", "error")
    assert out[:3] == [("deliver", "d0", "B"), ("fail", "t0", "ImpossibleDependency"),
                       ("fail", "t1", "ImpossibleDependency")]
    assert out[3][:2] == ("assign", "t2")


# -- follow ---------------------------------------------------------------------------------


def test_follow_runs_where_the_dependency_ran():
    c = Cluster(hwm=0)
    c.submit("d0")  # on B
    c.finish("d0")
    c.submit("x")  # A is now the least recently used
    assert c.submit("t0", follow=dep("d0")) == [("assign", "t0", "B")]


def test_follow_waits_for_its_engine_to_have_room():
    c = Cluster()
    c.submit("d0")
    c.finish("d0")
    c.submit("busy", targets={"B"})
    assert c.submit("t0", follow=dep("d0")) == []
    assert c.submit("t1") == [("assign", "t1", "A")]
    assert c.finish("busy") == [("deliver", "busy", "B"), ("assign", "t0", "B")]


def test_follow_waits_for_a_pending_dependency():
    c = Cluster(hwm=0)
    c.submit("d0")
    assert c.submit("t0", follow=dep("d0")) == []
    assert c.finish("d0") == [("deliver", "d0", "B"), ("assign", "t0", "B")]


def test_follow_all_on_different_engines_is_impossible_at_once():
    c = Cluster(engines=("A", "B", "C"), hwm=0)
    for d in ("d0", "d1", "d2"):
        c.submit(d)
    c.submit("t0", follow=dep("d0", "d1", "d2"))
    assert c.finish("d0") == [("deliver", "d0", "C")]
    assert c.finish("d1") == [("deliver", "d1", "B"), ("fail", "t0", "ImpossibleDependency")]
    assert "different engines" in c.last[1].evalue
    # and for dependencies that finished before the submission
    assert c.submit("t1", follow=dep("d0", "d1")) == [("fail", "t1", "ImpossibleDependency")]


def test_follow_all_on_one_engine():
    c = Cluster(hwm=0)
    c.submit("d0", targets={"A"})
    c.submit("d1", targets={"A"})
    c.submit("t0", follow=dep("d0", "d1"))
    assert c.finish("d0") == [("deliver", "d0", "A")]
    assert c.finish("d1") == [("deliver", "d1", "A"), ("assign", "t0", "A")]


def test_follow_any_runs_on_any_engine_where_one_ran():
    c = Cluster(engines=("A", "B", "C"))
    c.submit("d0", targets={"A"})
    c.submit("d1", targets={"B"})
    c.submit("busy", targets={"C"})
    c.finish("d0")
    c.finish("d1")
    c.submit("a", targets={"A"})
    # A is busy, B is free
    assert c.submit("t0", follow=dep("d0", "d1", all=False)) == [("assign", "t0", "B")]
    c.submit("t1", follow=dep("d0", "d1", all=False))
    assert c.finish("busy") == [("deliver", "busy", "C")]  # not on C
    assert c.finish("a") == [("deliver", "a", "A"), ("assign", "t1", "A")]


def test_follow_any_gains_engines_as_dependencies_finish():
    c = Cluster(engines=("A", "B"))
    c.submit("d0", targets={"A"})
    c.submit("d1", targets={"B"})
    c.submit("t0", follow=dep("d0", "d1", all=False))
    c.submit("a2", targets={"A"})
    assert c.finish("d0") == [("deliver", "d0", "A"), ("assign", "a2", "A")]
    # t0 may run on A now, which is full; once d1 ran on B it may run there too
    assert c.finish("d1") == [("deliver", "d1", "B"), ("assign", "t0", "B")]


@pytest.mark.parametrize("status, success, failure, runs", [
    ("error", True, False, False),
    ("error", False, True, True),
    ("ok", False, True, False),
])
def test_follow_success_and_failure(status, success, failure, runs):
    c = Cluster(hwm=0)
    c.submit("d0")
    c.finish("d0", status)
    out = c.submit("t0", follow=dep("d0", success=success, failure=failure))
    assert out == ([("assign", "t0", "B")] if runs else
                   [("fail", "t0", "ImpossibleDependency")])


def test_follow_a_dead_engine_is_impossible():
    c = Cluster(hwm=0)
    c.submit("d0")
    c.finish("d0")
    c.remove("B")
    assert c.submit("t0", follow=dep("d0")) == [("fail", "t0", "ImpossibleDependency")]


def test_follow_fails_when_its_engine_dies_while_it_waits():
    c = Cluster(engines=("A", "B", "C"), hwm=0)
    c.submit("d0")  # C
    c.submit("d1")  # B
    c.submit("t0", follow=dep("d0", "d1"))  # all on one engine: not met before d1
    c.finish("d0")
    assert c.remove("C") == [("fail", "t0", "ImpossibleDependency")]


def test_follow_any_waits_for_another_dependency_when_its_engine_died():
    c = Cluster(engines=("A", "B"), hwm=0)
    c.submit("d0", targets={"B"})
    c.submit("d1", targets={"A"})
    c.submit("t0", follow=dep("d0", "d1", all=False))
    c.finish("d0")
    c.remove("B")  # t0 was assigned to B at once
    c.submit("t1", follow=dep("d0", "d1", all=False))
    assert c.finish("d1") == [("deliver", "d1", "A"), ("assign", "t1", "A")]


def test_follow_any_fails_when_its_last_dependency_gives_no_live_engine():
    c = Cluster(engines=("A", "B"))
    c.submit("d0", targets={"B"})
    c.submit("d1", targets={"A"})
    c.finish("d0")
    c.submit("busy", targets={"B"})
    c.submit("t0", follow=dep("d0", "d1", all=False))
    # B, the only engine t0 may use so far, dies: d1 may still name another
    assert c.remove("B") == [("fail", "busy", "EngineError")]
    assert c.finish("d1", "error") == [("deliver", "d1", "A"),
                                       ("fail", "t0", "ImpossibleDependency")]


def test_follow_a_task_that_never_ran_is_impossible():
    c = Cluster(engines=())
    c.submit("d0", timeout=1)
    c.clock.now = 2
    c.expire()
    assert c.submit("t0", follow=dep("d0", failure=True)) == [
        ("fail", "t0", "ImpossibleDependency")]
    # but it did finish, as far as `after` is concerned
    c.add("A")
    assert c.submit("t1", after=dep("d0", failure=True)) == [("assign", "t1", "A")]


def test_follow_a_direct_task():
    c = Cluster(outcome_of={"direct": ("ok", "A")}.get)
    assert c.submit("t0", follow=dep("direct")) == [("assign", "t0", "A")]


def test_follow_and_targets_must_agree():
    c = Cluster(hwm=0)
    c.submit("d0")
    c.finish("d0")
    assert c.submit("t0", follow=dep("d0"), targets={"A"}) == [
        ("fail", "t0", "ImpossibleDependency")]
    assert c.submit("t1", follow=dep("d0"), targets={"A", "B"}) == [("assign", "t1", "B")]


# -- requirements, alone --------------------------------------------------------------------


def test_parse_dependency():
    assert parse_dependency(None) is None
    assert parse_dependency(dep()) is None
    assert parse_dependency(dep("a", "a", all=False)) == (frozenset({"a"}), False, True, False)
    assert parse_dependency({"dependencies": ["a"]}) == (frozenset({"a"}), True, True, False)
    with pytest.raises(InvalidDependencySpec):
        parse_dependency(dep("a", success=False))


def test_requirement_verdicts():
    req = Requirement(frozenset({"a", "b"}), True, True, False, locates=False)
    assert req.verdict == PENDING
    assert req.resolve("ok", "A") is False
    assert req.resolve("ok", "B") is True and req.verdict == MET
    anyof = Requirement(frozenset({"a", "b"}), False, True, False, locates=False)
    assert anyof.resolve("error", None) is False and anyof.verdict == PENDING
    assert anyof.resolve("error", None) is True and anyof.verdict == IMPOSSIBLE


def test_requirement_location():
    req = Requirement(frozenset({"a", "b", "c"}), False, True, True, locates=True)
    req.resolve("ok", "A")
    assert req.verdict == MET and req.location == {"A"} and req.may_grow
    assert req.resolve("error", "B") is True and req.location == {"A", "B"}
    # the last one names no engine, but now the set of engines is final
    assert req.resolve("ok", None) is True and not req.may_grow
    together = Requirement(frozenset({"a", "b"}), True, True, False, locates=True)
    together.resolve("ok", "A")
    assert together.verdict == PENDING and together.location == {"A"}
    together.resolve("ok", "B")
    assert together.verdict == IMPOSSIBLE
    assert "different engines" in together.why_impossible("follow")


def test_outcomes_are_bounded_and_older_ones_come_from_the_records():
    records = {}
    c = Cluster(outcome_of=records.get)
    c.sched.outcomes_kept = 3
    for i in range(5):
        c.submit(f"t{i}")
        c.finish(f"t{i}")
        records[f"t{i}"] = ("ok", c.ran_on[f"t{i}"][0])
    assert len(c.sched._outcomes) == 3
    # t0 is forgotten by the scheduler, still known to the records
    assert c.submit("late", follow=dep("t0")) == [("assign", "late", records["t0"][1])]
    del records["t1"]
    assert c.submit("lost", after=dep("t1")) == []
    c.clock.now += c.sched.unknown_dependency_grace
    assert c.expire() == [("fail", "lost", "InvalidDependency")]
    assert "sqlitedb" in c.last[0].evalue
