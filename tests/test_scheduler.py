"""Unit tests of the task scheduler's decisions: schemes, hwm, targets, retries, engine
death, timeouts and aborts, with a fake clock and a seeded random (dependencies:
test_scheduler_deps.py; the harness: :mod:`schedworld`)."""

import random
from collections import Counter

import pytest
from schedworld import Cluster, StubRandom, dep

from kernelpar.controller import schemes
from kernelpar.controller.scheduler import Task, TaskScheduler

# -- schemes --------------------------------------------------------------------------------


def test_scheme_names():
    assert sorted(schemes.SCHEMES) == ["leastload", "lru", "plainrandom", "twobin", "weighted"]
    with pytest.raises(ValueError, match="leastload, lru, plainrandom, twobin, weighted"):
        TaskScheduler(scheme="pure")


def test_leastload_takes_lowest_load_and_lru_among_ties():
    assert schemes.leastload(["a", "b", "c"], [2, 1, 1], None) == "b"
    assert schemes.leastload(["a", "b", "c"], [0, 0, 0], None) == "a"


def test_lru_takes_least_recently_used_whatever_its_load():
    assert schemes.lru(["a", "b"], [5, 0], None) == "a"


def test_plainrandom_is_uniform_over_engines():
    rng = random.Random(1)
    picks = Counter(schemes.plainrandom(["a", "b", "c"], [0, 9, 0], rng) for _ in range(3000))
    assert set(picks) == {"a", "b", "c"}
    assert min(picks.values()) > 850


def test_twobin_takes_the_less_recently_used_of_two_draws():
    assert schemes.twobin(["a", "b", "c", "d"], [0] * 4, StubRandom(3, 1)) == "b"
    assert schemes.twobin(["a", "b", "c", "d"], [0] * 4, StubRandom(2, 2)) == "c"


def test_weighted_takes_the_less_loaded_of_two_draws():
    assert schemes.weighted(["a", "b", "c"], [3, 1, 2], StubRandom(0, 1)) == "b"
    assert schemes.weighted(["a", "b", "c"], [3, 1, 2], StubRandom(2, 0)) == "c"
    # equal loads: the first draw
    assert schemes.weighted(["a", "b"], [1, 1], StubRandom(1, 0)) == "b"


def test_weighted_favours_idle_engines():
    rng = random.Random(2)
    picks = Counter(schemes.weighted(["busy", "idle"], [4, 0], rng) for _ in range(1000))
    assert picks["idle"] > 990


def test_leastload_in_the_scheduler():
    c = Cluster(engines=("A", "B", "C"), hwm=0)
    # C registered last, so it is the least recently used; then B, then A
    assert [c.submit(f"t{i}")[0][2] for i in range(3)] == ["C", "B", "A"]
    c.finish("t1")  # B now has no task
    assert c.submit("t3") == [("assign", "t3", "B")]
    # all have one task: the least recently used of them
    assert c.submit("t4") == [("assign", "t4", "C")]
    assert [c.sched.outstanding(e) for e in "ABC"] == [1, 1, 2]


def test_lru_in_the_scheduler_cycles_whatever_the_loads():
    c = Cluster(engines=("A", "B", "C"), hwm=0, scheme="lru")
    c.submit("t0")
    c.finish("t0")
    engines = [c.submit(f"t{i}")[0][2] for i in range(1, 7)]
    assert engines == ["B", "A", "C", "B", "A", "C"]


def test_random_schemes_in_the_scheduler_use_the_given_rng():
    for name in ("plainrandom", "twobin", "weighted"):
        picks = Counter()
        c = Cluster(engines=("A", "B", "C"), hwm=0, scheme=name, rng=random.Random(7))
        for i in range(300):
            picks[c.submit(f"t{i}")[0][2]] += 1
            c.finish(f"t{i}")
        assert set(picks) == {"A", "B", "C"}, name
        again = Cluster(engines=("A", "B", "C"), hwm=0, scheme=name, rng=random.Random(7))
        same = Counter()
        for i in range(300):
            same[again.submit(f"t{i}")[0][2]] += 1
            again.finish(f"t{i}")
        assert same == picks, name


def test_weighted_in_the_scheduler_avoids_the_loaded_engine():
    c = Cluster(engines=("A", "B"), hwm=0, scheme="weighted", rng=random.Random(3))
    first = c.submit("t0")[0][2]
    other = ({"A", "B"} - {first}).pop()
    # the loaded engine is drawn twice about once in a billion
    assert c.submit("t1") == [("assign", "t1", other)]


# -- high water mark ------------------------------------------------------------------------


def test_hwm_1_keeps_one_task_per_engine():
    c = Cluster()
    out = [c.submit(f"t{i}") for i in range(5)]
    assert out[:2] == [[("assign", "t0", "B")], [("assign", "t1", "A")]]
    assert out[2:] == [[], [], []]
    assert c.sched.waiting == 3
    assert c.finish("t1") == [("deliver", "t1", "A"), ("assign", "t2", "A")]
    assert c.finish("t0") == [("deliver", "t0", "B"), ("assign", "t3", "B")]
    assert c.sched.waiting == 1
    assert c.sched.outstanding("A") == 1 and c.sched.outstanding_ids("B") == ["t3"]


def test_hwm_2_keeps_two_tasks_per_engine():
    c = Cluster(hwm=2)
    assigned = [c.submit(f"t{i}") for i in range(5)]
    assert [a[0][2] for a in assigned[:4]] == ["B", "A", "B", "A"]
    assert assigned[4] == []
    assert c.sched.outstanding_ids("B") == ["t0", "t2"]
    assert c.finish("t2") == [("deliver", "t2", "B"), ("assign", "t4", "B")]


def test_hwm_0_assigns_everything_at_once():
    c = Cluster(hwm=0)
    for i in range(10):
        assert len(c.submit(f"t{i}")) == 1
    assert c.sched.waiting == 0
    assert c.sched.outstanding("A") == c.sched.outstanding("B") == 5


def test_invalid_hwm():
    with pytest.raises(ValueError):
        TaskScheduler(hwm=-1)


def test_engine_added_later_takes_waiting_tasks_at_once():
    c = Cluster(engines=())
    for i in range(3):
        assert c.submit(f"t{i}") == []
    assert c.add("A") == [("assign", "t0", "A")]
    assert c.add("B") == [("assign", "t1", "B")]
    greedy = Cluster(engines=(), hwm=0)
    for i in range(3):
        greedy.submit(f"t{i}")
    assert greedy.add("A") == [("assign", f"t{i}", "A") for i in range(3)]


def test_adding_a_known_engine_or_removing_an_unknown_one_changes_nothing():
    c = Cluster()
    c.submit("t0")
    assert c.add("B") == [] and c.remove("Z") == []
    assert c.sched.engines == ("A", "B")


# -- targets --------------------------------------------------------------------------------


def test_targets_restrict_the_engines():
    c = Cluster()
    assert c.submit("t0", targets=frozenset({"A"})) == [("assign", "t0", "A")]
    assert c.submit("t1", targets={"A"}) == []  # any iterable will do
    assert c.finish("t0") == [("deliver", "t0", "A"), ("assign", "t1", "A")]


def test_a_restricted_task_does_not_block_the_tasks_behind_it():
    c = Cluster()
    c.submit("t0", targets={"B"})
    assert c.submit("t1", targets={"B"}) == []
    assert c.submit("t2") == [("assign", "t2", "A")]
    assert c.submit("t3") == []
    # A frees up: t1 may not run there, t3 may
    assert c.finish("t2") == [("deliver", "t2", "A"), ("assign", "t3", "A")]
    assert c.finish("t0") == [("deliver", "t0", "B"), ("assign", "t1", "B")]


def test_queued_tasks_go_in_submission_order():
    c = Cluster()
    c.submit("t0")
    c.submit("t1")
    c.submit("t2", targets={"A"})
    c.submit("t3")
    c.submit("t4", targets={"A"})
    assert c.finish("t1") == [("deliver", "t1", "A"), ("assign", "t2", "A")]
    assert c.finish("t2") == [("deliver", "t2", "A"), ("assign", "t3", "A")]
    assert c.finish("t3") == [("deliver", "t3", "A"), ("assign", "t4", "A")]


def test_empty_targets_mean_any_engine():
    c = Cluster()
    assert c.submit("t0", targets=frozenset()) == [("assign", "t0", "B")]


def test_targets_naming_no_registered_engine_are_impossible():
    c = Cluster()
    assert c.submit("t0", targets={"Z"}) == [("fail", "t0", "ImpossibleDependency")]
    assert "'Z'" in c.last[0].evalue


def test_waiting_task_fails_when_its_only_target_dies():
    c = Cluster()
    c.submit("busy", targets={"B"})
    c.submit("a", targets={"A"})
    c.submit("t0", targets={"B"})
    c.submit("t1", targets={"A", "B"})
    c.submit("t2", after=dep("a"), targets={"B"})
    out = c.remove("B")
    assert out[0] == ("fail", "busy", "EngineError")
    assert sorted(out[1:]) == [("fail", "t0", "ImpossibleDependency"),
                               ("fail", "t2", "ImpossibleDependency")]
    assert c.ends == Counter({"busy": 1, "t0": 1, "t2": 1})
    assert c.finish("a") == [("deliver", "a", "A"), ("assign", "t1", "A")]


# -- retries, unmet dependencies, engine death ------------------------------------------------


def test_error_with_retries_runs_again_elsewhere():
    c = Cluster(engines=("A", "B", "C"))
    c.submit("t0", retries=1)
    assert c.finish("t0", "error") == [("assign", "t0", "B")]
    assert c.finish("t0", "error") == [("deliver", "t0", "B")]
    assert c.ran_on["t0"] == ["C", "B"]


def test_error_without_retries_is_delivered():
    c = Cluster()
    c.submit("t0")
    c.submit("t1")
    c.submit("t2")
    assert c.finish("t0", "error") == [("deliver", "t0", "B"), ("assign", "t2", "B")]


def test_aborted_is_delivered_without_retrying():
    c = Cluster()
    c.submit("t0", retries=3)
    assert c.finish("t0", "aborted") == [("deliver", "t0", "B")]


def test_retries_never_go_back_to_an_engine():
    c = Cluster(engines=("A", "B"))
    c.submit("t0", retries=5)
    assert c.finish("t0", "error") == [("assign", "t0", "A")]
    # retries left, but no engine left that has not tried it: the error it has
    assert c.finish("t0", "error") == [("deliver", "t0", "A")]


def test_retry_waits_for_room_on_an_untried_engine():
    c = Cluster(engines=("A", "B"))
    c.submit("t0", retries=1)  # B
    c.submit("t1")  # A
    c.submit("t2")
    assert c.finish("t0", "error") == [("assign", "t2", "B")]
    assert c.sched.waiting == 1
    assert c.finish("t2") == [("deliver", "t2", "B")]  # t0 may not go back to B
    # the retry was queued before t3, so it goes first
    c.submit("t3")
    assert c.finish("t1") == [("deliver", "t1", "A"), ("assign", "t0", "A")]


def test_retry_goes_to_an_engine_registered_later():
    c = Cluster(engines=("A", "B"))
    c.submit("t0", retries=1)
    c.submit("t1")
    c.submit("t2", targets={"B"})
    c.finish("t0", "error")
    assert c.add("C") == [("assign", "t0", "C")]


def test_unmet_tries_another_engine_without_using_retries():
    c = Cluster(engines=("A", "B", "C"))
    c.submit("t0")
    assert c.finish("t0", "unmet") == [("assign", "t0", "B")]
    assert c.finish("t0", "unmet") == [("assign", "t0", "A")]
    assert c.finish("t0", "unmet") == [("fail", "t0", "ImpossibleDependency")]
    assert "already tried" in c.last[0].evalue


def test_unmet_waits_for_a_busy_untried_engine_and_frees_its_own():
    c = Cluster()
    c.submit("t0")  # B
    c.submit("t1")  # A
    c.submit("t2")
    assert c.finish("t0", "unmet") == [("assign", "t2", "B")]
    assert c.finish("t1") == [("deliver", "t1", "A"), ("assign", "t0", "A")]


def test_unmet_with_targets():
    c = Cluster(engines=("A", "B", "C"))
    c.submit("t0", targets={"A", "B"}, retries=2)
    assert c.finish("t0", "unmet") == [("assign", "t0", "A")]
    assert c.finish("t0", "unmet") == [("fail", "t0", "ImpossibleDependency")]


def test_engine_death_retries_elsewhere():
    c = Cluster(engines=("A", "B", "C"))
    c.submit("t0", retries=1)
    assert c.remove("C") == [("assign", "t0", "B")]
    assert c.remove("B") == [("fail", "t0", "EngineError")]
    assert "'B'" in c.last[0].evalue and "'t0'" in c.last[0].evalue


def test_engine_death_without_retries_fails_with_engine_error():
    c = Cluster()
    c.submit("t0")
    c.submit("t1")
    c.submit("t2")
    assert c.remove("B") == [("fail", "t0", "EngineError")]
    assert c.last[0].evalue == "Engine 'B' died while running task 't0'"
    assert c.last[0].task.engine == "B"
    assert c.finish("t1") == [("deliver", "t1", "A"), ("assign", "t2", "A")]


def test_engine_death_with_retries_but_no_engine_left():
    c = Cluster(engines=("A",))
    c.submit("t0", retries=3)
    assert c.remove("A") == [("fail", "t0", "EngineError")]
    assert c.last[0].task.engine == "A" and c.last[0].task.retries_left == 3


def test_late_reply_from_a_removed_engine_is_ignored():
    c = Cluster(engines=("A", "B", "C"))
    c.submit("t0", retries=1)
    c.remove("C")
    assert c.sched.finished("t0", "C", "ok") == []
    assert c.finish("t0") == [("deliver", "t0", "B")]
    assert c.sched.finished("t0", "B", "ok") == []  # nor twice
    assert c.sched.finished("nobody", "B", "ok") == []


def test_unknown_status_is_an_error():
    c = Cluster()
    c.submit("t0")
    with pytest.raises(ValueError):
        c.sched.finished("t0", "B", "fine")
    assert c.finish("t0") == [("deliver", "t0", "B")]


def test_dependents_of_a_task_lost_with_its_engine():
    c = Cluster(hwm=0)
    c.submit("d0")
    c.submit("t0", after=dep("d0"))
    c.submit("t1", after=dep("d0", success=False, failure=True))
    out = c.remove("B")
    assert out[:2] == [("fail", "d0", "EngineError"), ("fail", "t0", "ImpossibleDependency")]
    assert out[2] == ("assign", "t1", "A")


@pytest.mark.parametrize("hwm", [1, 0])
def test_engine_death_with_a_thousand_queued_tasks_ends_every_task_once(hwm):
    c = Cluster(engines=("A", "B", "C", "D"), hwm=hwm)
    rng = random.Random(5)
    ids = [f"t{i}" for i in range(1000)]
    for i, msg_id in enumerate(ids):
        flags = {}
        if i % 3 == 0:
            flags["retries"] = rng.randrange(3)
        if i % 7 == 0:
            flags["targets"] = set(rng.sample("ABCD", 2))
        if i % 11 == 0 and i:
            flags["after"] = dep(ids[i - 1], failure=rng.random() < 0.5)
        if i % 13 == 0 and i > 13:
            flags["follow"] = dep(ids[i - 13], all=False)
        c.submit(msg_id, **flags)
    for msg_id in list(c.on)[:2]:
        c.finish(msg_id, "error")
    c.remove("B")
    for _ in range(200):
        c.finish(next(iter(c.on)), rng.choice(["ok", "error", "unmet"]))
    c.remove("C")
    c.add("E")
    c.run_all()
    assert c.sched.waiting == 0
    assert sorted(c.ends) == sorted(ids)
    assert set(c.ends.values()) == {1}


def test_random_operations_end_every_task_exactly_once():
    for seed in range(20):
        rng = random.Random(seed)
        c = Cluster(engines=("A", "B", "C"), hwm=rng.choice([0, 1, 2]),
                    scheme=rng.choice(sorted(schemes.SCHEMES)), rng=random.Random(seed))
        submitted, fresh = [], 0
        for step in range(400):
            op = rng.random()
            if op < 0.45 or not submitted:
                msg_id = f"t{len(submitted)}"
                flags = {"retries": rng.randrange(3), "timeout": rng.choice([0, 0, 5])}
                if submitted and rng.random() < 0.3:
                    flags["after"] = dep(*rng.sample(submitted, min(2, len(submitted))),
                                         all=rng.random() < 0.5, failure=rng.random() < 0.5)
                if submitted and rng.random() < 0.2:
                    flags["follow"] = dep(rng.choice(submitted), failure=rng.random() < 0.5)
                if rng.random() < 0.2:
                    flags["targets"] = set(rng.sample(list(c.sched.engines) or ["A"], 1))
                c.submit(msg_id, **flags)
                submitted.append(msg_id)
            elif op < 0.85 and c.on:
                c.finish(rng.choice(sorted(c.on)), rng.choice(["ok", "ok", "error", "unmet"]))
            elif op < 0.88 and len(c.sched.engines) > 1:
                c.remove(rng.choice(c.sched.engines))
            elif op < 0.92:
                fresh += 1
                c.add(f"N{fresh}")
            elif op < 0.95:
                c.clock.now += 2
                c.expire()
            elif op < 0.97:
                c.abort(rng.sample(submitted, 3) if len(submitted) > 3 else None)
        c.run_all()
        c.abort()
        c.run_all()
        assert c.sched.waiting == 0, seed
        assert sorted(c.ends) == sorted(submitted), seed
        assert set(c.ends.values()) == {1}, seed
        assert not any(c.sched.outstanding(e) for e in c.sched.engines), seed


# -- timeouts and aborts --------------------------------------------------------------------


def test_timeout_fails_a_waiting_task():
    c = Cluster(engines=())
    c.submit("t0", timeout=5)
    c.clock.now = 1
    c.submit("t1", timeout=2)
    c.submit("t2")
    assert c.sched.next_deadline() == 3
    c.clock.now = 2.9
    assert c.expire() == []
    c.clock.now = 3
    assert c.expire() == [("fail", "t1", "TaskTimeout")]
    assert c.sched.next_deadline() == 5
    c.clock.now = 10
    assert c.expire() == [("fail", "t0", "TaskTimeout")]
    assert "'t0'" in c.last[0].evalue
    assert c.sched.next_deadline() is None
    assert c.sched.waiting == 1


def test_timeout_does_not_apply_once_assigned():
    c = Cluster()
    c.submit("t0", timeout=1)
    c.submit("t1", timeout=1)
    c.submit("t2", timeout=1)
    c.clock.now = 0.5
    c.finish("t0")  # t2 assigned
    assert c.sched.next_deadline() is None
    c.clock.now = 2
    assert c.expire() == []


def test_timeout_of_a_blocked_task_and_its_dependents():
    c = Cluster(hwm=0)
    c.submit("d0")
    c.submit("t0", after=dep("d0"), timeout=1)
    c.submit("t1", after=dep("t0"))
    c.clock.now = 1
    assert c.expire() == [("fail", "t0", "TaskTimeout"), ("fail", "t1", "ImpossibleDependency")]
    assert c.finish("d0") == [("deliver", "d0", "B")]


def test_a_retry_waits_the_whole_timeout_again():
    c = Cluster(engines=("A", "B"))
    c.submit("t0", retries=1, timeout=1)
    c.submit("t1")
    c.submit("t2", targets={"B"})
    c.clock.now = 10
    assert c.finish("t0", "error") == [("assign", "t2", "B")]
    assert c.sched.next_deadline() == 11


def test_abort_fails_waiting_tasks_only():
    c = Cluster()
    c.submit("t0")
    c.submit("t1")
    c.submit("t2")
    c.submit("t3")
    assert c.abort(["t0", "t2", "t2", "unknown"]) == [("fail", "t2", "TaskAborted")]
    assert c.abort() == [("fail", "t3", "TaskAborted")]
    assert c.sched.waiting == 0
    assert c.finish("t0") == [("deliver", "t0", "B")]


def test_abort_all_does_not_run_dependents_of_aborted_tasks():
    c = Cluster()
    c.submit("busy0")
    c.submit("busy1")
    c.submit("t0")
    c.submit("t1", after=dep("t0", failure=True))
    assert c.abort() == [("fail", "t0", "TaskAborted"), ("fail", "t1", "TaskAborted")]


def test_abort_one_lets_its_dependents_move_on():
    c = Cluster(hwm=0, engines=())
    c.submit("t0")
    c.submit("t1", after=dep("t0", failure=True))
    c.submit("t2", after=dep("t0"))
    assert c.abort(["t0"]) == [("fail", "t0", "TaskAborted"),
                               ("fail", "t2", "ImpossibleDependency")]
    assert c.add("A") == [("assign", "t1", "A")]


# -- bookkeeping ----------------------------------------------------------------------------


def test_a_msg_id_is_submitted_once():
    c = Cluster()
    c.submit("t0")
    with pytest.raises(ValueError):
        c.sched.submit(Task("t0", None))
    c.finish("t0")
    with pytest.raises(ValueError):
        c.sched.submit(Task("t0", None))


def test_views():
    c = Cluster()
    c.submit("t0")
    c.submit("t1")
    c.submit("t2")
    assert c.sched.engines == ("A", "B")
    assert "t2" in c.sched and "t0" in c.sched and "zz" not in c.sched
    assert c.sched.task("t2").state == "waiting" and c.sched.task("t2").engine is None
    assert c.sched.task("t0").state == "assigned" and c.sched.task("t0").engine == "B"
    assert c.sched.task("zz") is None
    assert c.sched.clock is c.clock
    assert c.sched.waiting == 1
    assert c.sched.outstanding("nobody") == 0 and c.sched.outstanding_ids("nobody") == []
    c.finish("t0")
    assert "t0" not in c.sched and c.sched.task("t0") is None
