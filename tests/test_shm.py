"""Shared-memory transfer of large buffers: real files in /dev/shm, no sockets."""

import errno
import json
import os
import pickle
import subprocess
import sys
import time
import uuid

import numpy as np
import pytest

from kernelpar.wire import serialize, shm
from kernelpar.wire.shm import ShmError

pytestmark = pytest.mark.skipif(not shm.available(), reason="no writable /dev/shm")

MiB = 1024 * 1024


def _path(name):
    return os.path.join(shm.SHM_DIR, name)


def _ours():
    """Names of this process's data files currently in /dev/shm."""
    prefix = f"kernelpar-{os.getpid()}-"
    return {n for n in os.listdir(shm.SHM_DIR) if n.startswith(prefix)}


@pytest.fixture
def handles():
    """Handles to release at the end of a test, whatever happens."""
    created = []
    before = _ours()
    yield created
    for h in created:
        h.release()
    assert _ours() <= before, "a test left shared-memory files behind"


def _pid_of_finished():
    """The pid of a process that has exited (and been reaped)."""
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _export(handles, buffers, **kw):
    frames, descriptors, handle = shm.export(buffers, **kw)
    handles.append(handle)
    return frames, descriptors, handle


def test_available():
    assert shm.available() is True


def test_round_trip_of_bytes_and_memoryview(handles):
    data = os.urandom(2 * MiB)
    view = memoryview(bytearray(os.urandom(MiB + 3)))
    frames, descriptors, handle = _export(handles, [b"pickle", data, view])
    assert frames[0] == b"pickle" and frames[1] == b"" and frames[2] == b""
    assert [d[0] for d in descriptors] == [1, 2]
    assert [d[2] for d in descriptors] == [len(data), view.nbytes]
    assert all(os.path.exists(_path(d[1])) for d in descriptors)
    assert handle and handle.nbytes == len(data) + view.nbytes
    # the descriptors travel in JSON metadata
    descriptors = json.loads(json.dumps(descriptors))
    out = shm.attach(frames, descriptors)
    assert out[0] == b"pickle"
    assert isinstance(out[1], memoryview) and not out[1].readonly
    assert bytes(out[1]) == data and bytes(out[2]) == bytes(view)
    handle.release()
    assert not any(os.path.exists(_path(d[1])) for d in descriptors)
    # a mapping survives the unlink
    assert bytes(out[1][:16]) == data[:16]


def test_pickle_buffer_and_serialized_object_round_trip(handles):
    arr = np.arange(MiB // 4, dtype=np.int64)
    pb = pickle.PickleBuffer(arr)
    frames, descriptors, _ = _export(handles, [pb])
    assert frames == [b""] and descriptors[0][2] == arr.nbytes
    assert np.array_equal(np.frombuffer(shm.attach(frames, descriptors)[0], dtype=np.int64), arr)

    obj = {"a": arr, "b": [1, 2]}
    buffers = serialize.serialize_object(obj)
    frames, descriptors, _ = _export(handles, buffers)
    assert len(descriptors) == 1
    back = serialize.deserialize_object(shm.attach(frames, descriptors))
    assert np.array_equal(back["a"], arr) and back["b"] == [1, 2]
    assert back["a"].flags.writeable


def test_20mb_numpy_array_is_writable_and_copy_on_write(handles):
    arr = np.random.default_rng(0).random((20 * MiB) // 8)
    original = arr.copy()
    frames, descriptors, _ = _export(handles, [arr])
    assert frames == [b""] and descriptors[0][2] == arr.nbytes

    first = np.frombuffer(shm.attach(frames, descriptors)[0], dtype=arr.dtype)
    assert first.flags.writeable
    assert np.array_equal(first, original)
    first[:1000] = -1.0
    first[-1] = 42.0

    second = np.frombuffer(shm.attach(frames, descriptors)[0], dtype=arr.dtype)
    assert np.array_equal(second, original), "a consumer's writes reached the file"
    assert np.array_equal(arr, original), "a consumer's writes reached the producer"
    assert first[0] == -1.0 and first[-1] == 42.0


def test_fortran_ordered_and_non_contiguous_buffers(handles):
    f = np.asfortranarray(np.arange(512 * 512, dtype=np.float64).reshape(512, 512))
    strided = np.arange(MiB, dtype=np.float64)[::2]
    frames, descriptors, _ = _export(handles, [f, strided])
    # Fortran order goes in memory order, like a socket frame; strided stays as it is
    assert [d[0] for d in descriptors] == [0]
    assert frames[1] is strided
    out = shm.attach(frames, descriptors)
    assert bytes(out[0]) == bytes(pickle.PickleBuffer(f).raw())


def test_small_and_empty_buffers_are_untouched(handles):
    small = b"x" * (MiB - 1)
    empty = b""
    view = memoryview(b"y" * 100)
    frames, descriptors, handle = _export(handles, [small, empty, view])
    assert descriptors == [] and not handle
    assert frames[0] is small and frames[1] is empty and frames[2] is view
    assert shm.attach(frames, descriptors) == frames
    # threshold is a parameter; zero-length buffers are never exported
    frames, descriptors, _ = _export(handles, [b"", b"abc"], threshold=0)
    assert [d[0] for d in descriptors] == [1] and frames == [b"", b""]
    assert bytes(shm.attach(frames, descriptors)[1]) == b"abc"


def test_non_buffers_pass_through(handles):
    frames, descriptors, _ = _export(handles, ["not a buffer", b"z" * MiB])
    assert frames[0] == "not a buffer" and [d[0] for d in descriptors] == [1]


@pytest.mark.parametrize(
    "mangle, match",
    [
        (lambda d: [[d[0], "../etc/passwd", d[2]]], "invalid file"),
        (lambda d: [[d[0], "kernelpar-1-ab/../../etc/passwd", d[2]]], "invalid file"),
        (lambda d: [[d[0], "passwd", d[2]]], "not a kernelpar"),
        (lambda d: [[d[0], "kernelpar-engine-abc", d[2]]], "not a kernelpar"),
        (lambda d: [[d[0], "kernelpar-12-XYZ", d[2]]], "not a kernelpar"),
        (lambda d: [[d[0], 7, d[2]]], "invalid file"),
        (lambda d: [[5, d[1], d[2]]], "out of range"),
        (lambda d: [[-1, d[1], d[2]]], "out of range"),
        (lambda d: [["1", d[1], d[2]]], "out of range"),
        (lambda d: [[True, d[1], d[2]]], "out of range"),
        (lambda d: [[0, d[1], d[2]]], "not empty"),
        (lambda d: [d, d], "twice"),
        (lambda d: [[d[0], d[1], d[2] + 1]], "has .* bytes, the message says"),
        (lambda d: [[d[0], d[1], d[2] - 1]], "has .* bytes, the message says"),
        (lambda d: [[d[0], d[1], 0]], "invalid size"),
        (lambda d: [[d[0], d[1], "10"]], "invalid size"),
        (lambda d: [[d[0], d[1]]], "not \\[index, name, nbytes\\]"),
        (lambda d: "x", "must be a list"),
    ],
)
def test_bad_descriptors_are_refused(handles, mangle, match):
    frames, descriptors, _ = _export(handles, [b"pickle", b"a" * MiB])
    with pytest.raises(ShmError, match=match):
        shm.attach(frames, mangle(descriptors[0]))
    assert issubclass(ShmError, ValueError)


def test_missing_file_is_refused(handles):
    frames, descriptors, handle = _export(handles, [b"a" * MiB])
    handle.release()
    with pytest.raises(ShmError, match="is gone"):
        shm.attach(frames, descriptors)


def test_symlink_is_refused(handles):
    name = f"kernelpar-{os.getpid()}-{uuid.uuid4().hex}"
    os.symlink("/etc/hostname", _path(name))
    try:
        with pytest.raises(ShmError, match="cannot open"):
            shm.attach([b""], [[0, name, os.path.getsize("/etc/hostname")]])
    finally:
        os.unlink(_path(name))


def test_unlink_on_attach_removes_the_file(handles):
    data = os.urandom(MiB)
    frames, descriptors, handle = _export(handles, [data, data])
    out = shm.attach(frames, descriptors, unlink=True)
    assert not any(os.path.exists(_path(d[1])) for d in descriptors)
    assert bytes(out[0]) == data and bytes(out[1]) == data
    handle.release()  # the producer releasing too is harmless


def test_unlink_on_failed_attach_still_removes_the_files(handles):
    frames, descriptors, _ = _export(handles, [b"a" * MiB, b"b" * MiB])
    descriptors[1][2] += 1
    with pytest.raises(ShmError):
        shm.attach(frames, descriptors, unlink=True)
    assert not any(os.path.exists(_path(d[1])) for d in descriptors)


def test_release_is_idempotent(handles):
    _, descriptors, handle = _export(handles, [b"a" * MiB])
    assert not handle.released
    handle.release()
    handle.release()
    assert handle.released and not os.path.exists(_path(descriptors[0][1]))
    with shm.export([b"b" * MiB])[2] as h:
        name = h.names[0]
        assert os.path.exists(_path(name))
    assert not os.path.exists(_path(name))


def test_fallocate_failure_falls_back_and_leaves_nothing(handles, monkeypatch):
    calls = []

    def full(fd, offset, length):
        calls.append(length)
        if len(calls) == 2:  # the first file was reserved, the second does not fit
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", full)
    before = set(os.listdir(shm.SHM_DIR))
    buffers = [b"p", b"a" * MiB, b"b" * MiB]
    frames, descriptors, handle = _export(handles, buffers)
    assert len(calls) == 2
    assert descriptors == [] and not handle
    assert frames == buffers and all(f is b for f, b in zip(frames, buffers))
    assert set(os.listdir(shm.SHM_DIR)) <= before


def test_unlinker_pid_names_the_file(handles):
    _, descriptors, _ = _export(handles, [b"a" * MiB], unlinker_pid=1)
    assert descriptors[0][1].startswith("kernelpar-1-")
    with pytest.raises(ValueError):
        shm.export([b"a" * MiB], unlinker_pid=0)
    with pytest.raises(ValueError):
        shm.export([b"a" * MiB], unlinker_pid="12")


def test_markers_and_peer_pid():
    ident = uuid.uuid4().hex
    assert shm.peer_pid("engine", ident) is None
    path = shm.create_marker("engine", ident)
    try:
        assert path == _path(f"kernelpar-engine-{ident}")
        assert shm.peer_pid("engine", ident) == os.getpid()
        assert shm.peer_pid("client", ident) is None
        shm.create_marker("engine", ident)  # rewriting is fine
        assert shm.peer_pid("engine", ident) == os.getpid()
    finally:
        shm.remove_marker("engine", ident)
    assert not os.path.exists(path)
    assert shm.peer_pid("engine", ident) is None
    shm.remove_marker("engine", ident)  # removing twice is fine
    assert not [n for n in os.listdir(shm.SHM_DIR) if ident in n]


@pytest.mark.parametrize("kind, ident", [("engine", "../x"), ("engine", "a/b"), ("engine", ""),
                                         ("engine", "a.b"), ("hub", "abc"), ("client", None)])
def test_marker_names_are_validated(kind, ident):
    with pytest.raises(ValueError):
        shm.create_marker(kind, ident)
    with pytest.raises(ValueError):
        shm.peer_pid(kind, ident)


def test_peer_pid_of_a_dead_or_foreign_peer_is_none():
    ident = uuid.uuid4().hex
    path = _path(f"kernelpar-client-{ident}")
    try:
        with open(path, "w") as f:
            f.write(f"{_pid_of_finished()} {shm._pidns()}\n")
        assert shm.peer_pid("client", ident) is None
        with open(path, "w") as f:  # a live pid of another pid namespace means nothing here
            f.write(f"{os.getpid()} {(shm._pidns() + 1) & 0xFFFFFFFF}\n")
        assert shm.peer_pid("client", ident) is None
        with open(path, "w") as f:
            f.write("garbage")
        assert shm.peer_pid("client", ident) is None
    finally:
        os.unlink(path)


def test_sweep_removes_files_of_dead_processes_only(handles):
    dead = _pid_of_finished()
    dead_ident, live_ident = uuid.uuid4().hex, uuid.uuid4().hex
    _, dead_desc, _ = _export(handles, [b"d" * MiB], unlinker_pid=dead)
    _, live_desc, _ = _export(handles, [b"l" * MiB])
    # a marker written by a process that has exited since
    subprocess.run(
        [sys.executable, "-c", f"from kernelpar.wire import shm; shm.create_marker('engine', {dead_ident!r})"],
        check=True,
    )
    shm.create_marker("client", live_ident)
    dead_marker, live_marker = _path(f"kernelpar-engine-{dead_ident}"), _path(f"kernelpar-client-{live_ident}")
    # files that match no pattern, or another namespace's, are never touched
    foreign = [
        _path(f"kernelpar-{dead}-{uuid.uuid4().hex}"),  # not a name this version creates
        _path(f"kernelpar-{dead}-{(shm._pidns() + 1) & 0xFFFFFFFF:08x}{uuid.uuid4().hex[:16]}"),
        _path(f"kernelpar-{dead}-{uuid.uuid4().hex[:8]}.tmp"),
        _path(f"kernelpar-engine-{uuid.uuid4().hex}"),  # unreadable marker: empty
    ]
    for p in foreign:
        open(p, "w").close()
    try:
        assert os.path.exists(dead_marker)
        assert shm.sweep() >= 2
        assert not os.path.exists(_path(dead_desc[0][1]))
        assert not os.path.exists(dead_marker)
        assert os.path.exists(_path(live_desc[0][1]))
        assert os.path.exists(live_marker)
        assert all(os.path.exists(p) for p in foreign)
    finally:
        shm.remove_marker("client", live_ident)
        shm.remove_marker("engine", dead_ident)
        for p in foreign:
            os.unlink(p)


def test_unavailable_means_not_used(handles, monkeypatch):
    monkeypatch.setattr(shm, "SHM_DIR", "/nonexistent/kernelpar-shm")
    assert shm.available() is False
    buffers = [b"a" * MiB]
    frames, descriptors, handle = _export(handles, buffers)
    assert frames == buffers and descriptors == [] and not handle
    assert shm.peer_pid("engine", "abc") is None
    assert shm.sweep() == 0


@pytest.mark.timeout(60)
def test_a_running_controller_sweeps_the_files_of_dead_processes(tmp_path, handles):
    import kernelpar as ipp
    from kernelpar.controller.server import SHM_SWEEP_INTERVAL

    cluster = ipp.Cluster(n=0, profile_dir=str(tmp_path / "profile_sweep"))
    cluster.start_controller_sync()
    try:
        # made once everything has started: clients and engines sweep only as they start
        _, descriptors, _ = _export(handles, [b"x" * MiB], unlinker_pid=_pid_of_finished())
        path = _path(descriptors[0][1])
        assert os.path.exists(path)
        deadline = time.monotonic() + 3 * SHM_SWEEP_INTERVAL
        while os.path.exists(path) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not os.path.exists(path), "the controller did not sweep the file of a dead process"
    finally:
        cluster.stop_cluster_sync()
