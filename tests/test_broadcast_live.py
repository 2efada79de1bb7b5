"""BroadcastView against a real cluster: one message fanned out by the controller."""

import os

import pytest

import kernelpar as ipp

TIMEOUT = 30


@pytest.mark.parametrize("coalescing", [False, True])
def test_broadcast_apply_execute_push_pull(rc, coalescing):
    bv = rc.broadcast_view(is_coalescing=coalescing)
    assert isinstance(bv, ipp.DirectView) and bv.is_coalescing is coalescing
    pids = bv.apply_sync(os.getpid)
    assert pids == [rc[i].apply_sync(os.getpid) for i in rc.ids]  # target order
    bv.push({"shared": 7}, block=True)
    assert bv.pull("shared", block=True) == [7, 7] and bv["shared"] == [7, 7]
    ar = bv.execute("print('hello'); x = 2", silent=False, block=True)
    assert ar.stdout == ["hello\n", "hello\n"] and bv.pull("x", block=True) == [2, 2]
    assert sorted(ar.engine_id) == sorted(rc.ids)
    # targets are evaluated when the view is made, as ipyparallel does: always a list
    one = rc.broadcast_view(targets=1, is_coalescing=coalescing)
    assert one.targets == [1] and one.apply_sync(os.getpid) == [pids[1]]
    assert bv.targets == rc.ids and repr(bv).startswith(f"<BroadcastView {rc.ids}")
    assert ar.metadata[0]["is_broadcast"] is True and ar.metadata[0]["is_coalescing"] is coalescing


@pytest.mark.parametrize("coalescing", [False, True])
def test_broadcast_errors_are_per_engine(rc, coalescing):
    bv = rc.broadcast_view(is_coalescing=coalescing)
    with pytest.raises(ipp.CompositeError) as info:
        bv.apply_sync(lambda: 1 / 0)
    assert "[0:apply]ZeroDivisionError" in str(info.value) and "[1:apply]" in str(info.value)
    with pytest.raises(ipp.CompositeError):
        bv.execute("raise ValueError('no')", block=True)
    assert bv.apply_sync(lambda: "ok") == ["ok", "ok"]


def test_scatter_gather_and_map_on_a_broadcast_view(rc):
    bv = rc.broadcast_view()
    bv.scatter("part", list(range(10)), block=True)
    assert bv.gather("part", block=True) == list(range(10))
    assert bv.map_sync(lambda v: v * 3, range(6)) == [0, 3, 6, 9, 12, 15]


def test_broadcast_to_an_unknown_engine_fails_cleanly(rc):
    with pytest.raises(IndexError):
        rc.broadcast_view(targets=[0, 9])
