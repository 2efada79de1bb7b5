"""Framing, signing and serialization round trips (no sockets)."""

import collections
import json
import os
import stat
import threading

import numpy as np
import pytest

from kernelpar.wire import connection, serialize
from kernelpar.wire.serialize import Reference, SerializationError, pack_apply, unpack_apply
from kernelpar.wire.session import DELIM, MessageError, Session


def test_round_trip_keeps_parts_and_buffers():
    s = Session(b"secret")
    frames, header = s.serialize("apply_request", {"a": 1}, parent={"msg_id": "p"}, metadata={"m": 2},
                                 buffers=[b"x" * 10], idents=[b"engine", b"client"])
    msg = s.deserialize(frames)
    assert msg.idents == [b"engine", b"client"]
    assert msg.msg_type == "apply_request" and msg.msg_id == header["msg_id"]
    assert msg.content == {"a": 1} and msg.metadata == {"m": 2} and msg.parent_header == {"msg_id": "p"}
    assert msg.buffers == [b"x" * 10]
    assert set(header) >= {"msg_id", "msg_type", "session", "username", "date", "version"}


def test_message_ids_are_unique():
    s = Session(b"k")
    assert len({s.msg_id() for _ in range(1000)}) == 1000


@pytest.mark.parametrize("tamper", ["header", "content", "signature"])
def test_tampered_or_wrongly_signed_messages_are_refused(tamper):
    s = Session(b"secret")
    frames, _ = s.serialize("x", {"a": 1})
    i = frames.index(DELIM)
    where = {"signature": i + 1, "header": i + 2, "content": i + 5}[tamper]
    last = frames[where][-1:]
    frames[where] = frames[where][:-1] + (b"1" if last == b"0" else b"0")
    with pytest.raises(MessageError):
        s.deserialize(frames)
    with pytest.raises(MessageError, match="invalid HMAC"):
        Session(b"other key").deserialize(s.serialize("x", {})[0])


def test_unsigned_and_garbage_messages_are_refused():
    signed = Session(b"secret")
    unsigned_frames, _ = Session(b"").serialize("x", {})
    with pytest.raises(MessageError, match="unsigned"):
        signed.deserialize(unsigned_frames)
    for garbage in ([b"junk"], [DELIM, b"sig"], [DELIM, b"", b"{", b"{}", b"{}", b"{}"], []):
        with pytest.raises(MessageError):
            signed.deserialize(garbage)


@pytest.mark.parametrize("header, parent", [
    ({"msg_type": 5}, {}), ({"msg_type": None}, {}), ({"msg_id": {"a": 1}}, {}), ({"msg_id": 7}, {}),
    ({}, {"msg_id": ["x"]}),
])
def test_messages_must_name_themselves_with_strings(header, parent):
    s = Session(b"secret")
    frames, _ = s.serialize("x", {}, header=dict(s.header("x"), **header), parent=parent)
    with pytest.raises(MessageError, match="must be strings"):
        s.deserialize(frames)


def test_large_arrays_travel_out_of_band_without_copies():
    arr = np.arange(1_000_000, dtype=np.float64)
    buffers = serialize.serialize_object({"a": arr})
    assert len(buffers) == 2
    assert np.shares_memory(np.frombuffer(buffers[1], dtype=np.float64), arr)
    got = serialize.deserialize_object([bytes(buffers[0]), buffers[1]])
    assert np.shares_memory(got["a"], arr)
    assert np.array_equal(got["a"], arr)


def test_small_objects_stay_in_band():
    buffers = serialize.serialize_object([1, "two", np.arange(3)])
    assert len(buffers) == 1


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_large_bytes_like_arguments_go_out_of_band(kind):
    value = kind(b"z" * 200_000)
    buffers = pack_apply(len, (value,), {})
    assert len(buffers) == 2
    f, args, _ = unpack_apply(buffers, {})
    assert f is len and bytes(args[0]) == b"z" * 200_000
    assert isinstance(args[0], kind)


def test_interactive_functions_use_the_receivers_namespace():
    offset = 5  # noqa: F841 - a client-side local the engine must not see
    f = serialize.interactive(lambda x: x + offset_on_engine)  # noqa: F821
    namespace = {"offset_on_engine": 100}
    serialize.set_user_namespace(namespace)
    try:
        g, args, kwargs = unpack_apply(pack_apply(f, (1,), {}), namespace)
        assert g(*args) == 101
    finally:
        serialize.set_user_namespace(None)


def test_closures_travel_by_value():
    def make(n):
        return lambda x: x * n

    g, args, _ = unpack_apply(pack_apply(serialize.interactive(make(3)), (2,), {}), {})
    assert g(*args) == 6


def test_a_function_pickled_once_travels_in_many_messages():
    def make(n):
        return lambda x: x * n + offset_on_engine  # noqa: F821

    shipped = serialize.pickled_once(serialize.interactive(make(3)))
    assert not callable(shipped)  # bytes now: what the client changes next is not sent
    namespace = {"offset_on_engine": 100}
    serialize.set_user_namespace(namespace)
    try:
        for x in (1, 2):
            _, (g, arg), _ = unpack_apply(pack_apply(len, (shipped, x), {}), namespace)
            assert g(arg) == 3 * x + 100
    finally:
        serialize.set_user_namespace(None)


def test_pre_pickled_large_buffers_still_travel_out_of_band():
    big = np.arange(100_000.0)
    heavy = serialize.interactive(lambda: big.sum())  # its closure holds a large array
    shipped = serialize.PrePickled(heavy)
    assert repr(shipped) == "<PrePickled <lambda>>" and repr(serialize.PrePickled(big)) == "<PrePickled ndarray>"
    data, *large = pack_apply(len, (shipped, shipped), {})
    assert [memoryview(b).nbytes for b in large] == [big.nbytes], "out of band, once"
    _, (g, again), _ = unpack_apply([bytes(data), *large], {})
    assert g() == big.sum() and again is g


def test_plain_arguments_take_the_c_pickler_and_code_inside_them_still_travels_by_value():
    from kernelpar.client.enginefuncs import map_chunk

    shipped = serialize.PrePickled(len)
    plain = (map_chunk, (shipped, range(3), [1.5, "x", None], {"k": (b"y", 2j)}, np.arange(3)), {})
    assert serialize._is_plain(plain)
    f, (g, seq, *rest), _ = unpack_apply(pack_apply(*plain), {})
    assert f is map_chunk and g is len and seq == range(3)
    assert rest[:2] == [[1.5, "x", None], {"k": (b"y", 2j)}] and list(rest[2]) == [0, 1, 2]

    offset = 10
    nested = [1, {"f": serialize.interactive(lambda x: x + offset)}]
    assert not serialize._is_plain(nested)
    assert not serialize._is_plain(np.array([None, len]))
    _, (got,), _ = unpack_apply(pack_apply(len, (nested,), {}), {})
    assert got[1]["f"](1) == 11

    from kernelpar.client.legacy.taskonengine import EngineTask

    task = EngineTask("map", (shipped, (1,), {}), False, False, None, None)
    assert serialize._is_plain(task), "this package's namedtuples travel by name"
    assert unpack_apply(pack_apply(len, (task,), {}), {})[1] == [EngineTask("map", (len, (1,), {}), False, False, None, None)]
    assert not serialize._is_plain(EngineTask("map", (lambda: 1,), False, False, None, None)), "code inside"
    local_tuple = collections.namedtuple("local_tuple", "a")
    local_tuple.__module__ = "kernelpar.wire.serialize"
    assert not serialize._is_plain(local_tuple(1)), "not importable by name: left to cloudpickle"
    local_tuple.__module__ = None
    assert not serialize._is_plain(local_tuple(1))

    long_list = list(range(1000))
    assert not serialize._is_plain(long_list), "past the scan limit it is left to cloudpickle"
    assert unpack_apply(pack_apply(len, (long_list,), {}), {})[1] == [long_list]


def test_what_cannot_be_pickled_once_is_shipped_as_it_is():
    lock = threading.Lock()
    with pytest.raises(SerializationError, match="lock"):
        serialize.PrePickled(lock)
    assert serialize.pickled_once(lock) is lock
    with pytest.raises(SerializationError, match="argument 0 of len.*lock"):
        pack_apply(len, (serialize.pickled_once(lock),), {})


def test_references_resolve_in_the_namespace():
    namespace = {"a": {"b": 7}, "f": abs}
    f, args, kwargs = unpack_apply(pack_apply(Reference("f"), (Reference("a['b']"), [Reference("-1")]), {"k": Reference("a")}), namespace)
    assert f is abs and args == [7, [-1]] and kwargs == {"k": {"b": 7}}


@pytest.mark.parametrize("bad, name", [(threading.Lock(), "lock"), ((i for i in range(3)), "generator")])
def test_unpicklable_arguments_name_their_type(bad, name):
    with pytest.raises(SerializationError, match=f"argument 0 of len.*{name}"):
        pack_apply(len, (bad,), {})
    with pytest.raises(SerializationError, match=name):
        serialize.serialize_object(bad)


def test_connection_files_are_private(tmp_path):
    profile = connection.locate_profile_dir(profile_dir=str(tmp_path / "profile_x"))
    path = connection.connection_file(profile, "client", "abc")
    assert path.endswith("security/ipcontroller-abc-client.json")
    connection.write_private_json(path, {"key": "k"})
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
    assert json.load(open(path)) == {"key": "k"}


def test_version_mismatch_names_both_versions():
    mine = connection.versions()
    assert connection.version_mismatch(mine, dict(mine)) is None
    other = dict(mine, python="3.9.1")
    message = connection.version_mismatch(mine, other, "this client", "the controller")
    assert mine["python"] in message and "3.9.1" in message
    assert "kernelpar 0.0.1" in connection.version_mismatch(mine, dict(mine, kernelpar="0.0.1"))


def test_wildcard_interface_connects_to_location():
    info = {"interface": "tcp://*", "location": "10.1.2.3", "mux": 5}
    assert connection.url(info, "mux") == "tcp://*:5"
    assert connection.connect_url(info, "mux") == "tcp://10.1.2.3:5"
