"""The hub's decisions, driven by recorded messages and a fake clock (no sockets)."""

import json

import pytest

from kernelpar.controller.heartmonitor import HeartMonitor
from kernelpar.controller.hub import Hub
from kernelpar.controller.records import DictDB
from kernelpar.wire import connection, protocol
from kernelpar.wire.session import Session

KEY = b"test-key"


class Outbox:
    def __init__(self):
        self.replies, self.notes, self.controls, self.pings, self.stopped = [], [], [], [], False

    def reply(self, idents, msg_type, content, parent, buffers=()):
        self.replies.append((idents, msg_type, content))

    def notify(self, msg_type, content):
        self.notes.append((msg_type, content))

    def control(self, uuid, msg_type, content):
        self.controls.append((uuid, msg_type))

    def ping(self, beat):
        self.pings.append(beat)

    def stop(self):
        self.stopped = True


class Clock:
    def __init__(self):
        self.calls = []

    def __call__(self, delay, fn, *args):
        self.calls.append((delay, fn, args))

    def run_all(self):
        calls, self.calls = self.calls, []
        for _, fn, args in calls:
            fn(*args)


@pytest.fixture
def hub():
    outbox, clock = Outbox(), Clock()
    h = Hub(Session(KEY), outbox, clock, connection.versions(), hb_period=1.0, max_missed=2, db=DictDB(record_limit=10))
    h.outbox_, h.clock_ = outbox, clock
    return h


def request(msg_type, content, ident=b"peer", session=None):
    frames, header = (session or Session(KEY)).serialize(msg_type, content, idents=[ident])
    return frames, header


def register(hub, uuid, requested=None):
    frames, _ = request("registration_request", {"uuid": uuid, "id": requested, "versions": connection.versions()})
    hub.handle_registration(frames)
    return hub.outbox_.replies[-1]


def make_ready(hub, uuid):
    engine = Session(KEY, session=uuid)
    for topic in (b"out", b"outcontrol"):
        frames, _ = engine.serialize("engine_ready", {}, idents=[protocol.HUB_ROUTING_ID, uuid.encode()])
        hub.handle_monitor([topic] + frames)
    hub.handle_pong([uuid.encode(), b"%d" % hub.heart.beat])


def test_engines_get_increasing_ids_and_register_after_all_steps(hub):
    _, kind, content = register(hub, "u0")
    assert (kind, content["status"], content["id"]) == ("registration_reply", "ok", 0)
    assert register(hub, "u1")[2]["id"] == 1
    assert hub.outbox_.notes == []
    make_ready(hub, "u0")
    assert hub.outbox_.notes == [("registration_notification", {"id": 0, "uuid": "u0"})]


def test_an_engine_whose_queues_are_ready_is_pinged_at_once(hub):
    register(hub, "u0")
    engine = Session(KEY, session="u0")
    for topic in (b"out", b"outcontrol"):
        frames, _ = engine.serialize("engine_ready", {}, idents=[protocol.HUB_ROUTING_ID, b"u0"])
        hub.handle_monitor([topic] + frames)
    assert hub.outbox_.pings == [0]
    hub.handle_pong([b"u0", b"0"])
    assert hub.outbox_.notes == [("registration_notification", {"id": 0, "uuid": "u0"})]


def test_with_a_task_channel_the_ping_comes_once_every_queue_is_ready():
    outbox, clock = Outbox(), Clock()
    hub = Hub(Session(KEY), outbox, clock, connection.versions(), ready_steps={"mux", "control", "task", "heart"})
    hub.outbox_ = outbox
    register(hub, "u0")
    engine = Session(KEY, session="u0")
    for topic in (b"out", b"outcontrol"):
        frames, _ = engine.serialize("engine_ready", {}, idents=[protocol.HUB_ROUTING_ID, b"u0"])
        hub.handle_monitor([topic] + frames)
    assert outbox.pings == []
    hub.engine_step("u0", "task")
    assert outbox.pings == [0]
    hub.handle_pong([b"u0", b"0"])
    assert outbox.notes == [("registration_notification", {"id": 0, "uuid": "u0"})]


def test_ids_are_never_reused_and_requested_ids_are_honoured(hub):
    register(hub, "u0")
    make_ready(hub, "u0")
    hub.unregister("u0", "test")
    assert register(hub, "u1")[2]["id"] == 1
    assert register(hub, "u7", requested=7)[2]["id"] == 7
    refused = register(hub, "u7b", requested=7)[2]
    assert refused["status"] == "error" and "already in use" in refused["reason"]
    for bad in (True, -1, "3", 2.0):
        refused = register(hub, f"bad-{bad!r}", requested=bad)[2]
        assert refused["status"] == "error" and "non-negative int" in refused["reason"]


def test_version_mismatch_is_refused_with_both_versions(hub):
    frames, _ = request("registration_request", {"uuid": "old", "versions": dict(connection.versions(), python="2.7.18")})
    hub.handle_registration(frames)
    content = hub.outbox_.replies[-1][2]
    assert content["status"] == "error" and "2.7.18" in content["reason"]


def test_missed_heartbeats_unregister_and_notify(hub):
    register(hub, "u0")
    make_ready(hub, "u0")
    for _ in range(4):
        hub.tick()
    assert ("unregistration_notification", {"id": 0, "uuid": "u0"}) in hub.outbox_.notes


def test_answering_engines_stay(hub):
    register(hub, "u0")
    make_ready(hub, "u0")
    for _ in range(10):
        hub.tick()
        hub.handle_pong([b"u0", b"%d" % hub.outbox_.pings[-1]])
    assert [n for n, _ in hub.outbox_.notes] == ["registration_notification"]


def test_connection_reply_waits_for_the_iopub_subscription(hub):
    register(hub, "u0")
    make_ready(hub, "u0")
    client = Session(KEY)
    frames, _ = request("connection_request", {"versions": connection.versions()}, session=client)
    n = len(hub.outbox_.replies)
    hub.handle_registration(frames)
    assert len(hub.outbox_.replies) == n
    hub.handle_iopub([b"\x01" + client.session.encode()])
    _, kind, content = hub.outbox_.replies[-1]
    assert kind == "connection_reply" and content["engines"] == {"0": "u0"}


def test_connection_reply_is_sent_anyway_after_a_while(hub):
    frames, _ = request("connection_request", {"versions": connection.versions()})
    hub.handle_registration(frames)
    hub.clock_.run_all()
    assert hub.outbox_.replies[-1][1] == "connection_reply"


def test_queue_status_follows_the_monitor(hub):
    register(hub, "u0")
    make_ready(hub, "u0")
    client = Session(KEY)
    frames, header = client.serialize("apply_request", {}, idents=[b"u0", client.session.encode()])
    hub.handle_monitor([b"in"] + frames)
    frames, _ = request("queue_request", {"targets": None, "verbose": False})
    hub.handle_registration(frames)
    assert hub.outbox_.replies[-1][2]["queue"] == {"0": {"queue": 1, "completed": 0, "tasks": 0}, "unassigned": 0}
    engine = Session(KEY, session="u0")
    frames, _ = engine.serialize("apply_reply", {"status": "ok"}, parent=header, idents=[client.session.encode(), b"u0"])
    hub.handle_monitor([b"out"] + frames)
    hub.handle_registration(request("queue_request", {"targets": [0], "verbose": False})[0])
    assert hub.outbox_.replies[-1][2]["queue"]["0"] == {"queue": 0, "completed": 1, "tasks": 0}
    assert json.loads(hub.db.get_record(header["msg_id"])["result_content"]) == {"status": "ok"}


def test_an_abort_heard_before_its_request_still_completes_it(hub):
    # the control device can publish the engine's at-once "aborted" reply before the mux
    # device publishes its copy of the request
    register(hub, "u0")
    make_ready(hub, "u0")
    client = Session(KEY)
    request_frames, header = client.serialize("apply_request", {}, idents=[b"u0", client.session.encode()])
    engine = Session(KEY, session="u0")
    frames, _ = engine.serialize("apply_reply", {"status": "aborted"}, parent=header,
                                 idents=[client.session.encode(), b"u0"])
    hub.handle_monitor([b"outcontrol"] + frames)
    hub.handle_monitor([b"in"] + request_frames)
    hub.handle_registration(request("queue_request", {"targets": [0], "verbose": True})[0])
    assert hub.outbox_.replies[-1][2]["queue"]["0"] == {"queue": [], "completed": [header["msg_id"]], "tasks": []}
    record = hub.db.get_record(header["msg_id"])
    assert record["completed"] is not None and json.loads(record["result_content"]) == {"status": "aborted"}


def test_garbage_and_wrong_keys_are_dropped(hub, caplog):
    hub.handle_registration([b"junk"])
    hub.handle_registration(Session(b"wrong").serialize("connection_request", {}, idents=[b"x"])[0])
    hub.handle_monitor([b"in", b"x"])
    hub.handle_monitor([b"in", b"a", b"b", b"<IDS|MSG>", b"sig", b"{", b"{}", b"{}", b"{}"])
    hub.handle_pong([b"u0", b"not-a-number"])
    hub.handle_pong([b"only-one-frame"])
    assert hub.outbox_.replies == []
    assert "dropped" in caplog.text


def test_shutdown_stops_engines_and_controller(hub):
    register(hub, "u0")
    make_ready(hub, "u0")
    hub.handle_registration(request("shutdown_request", {})[0])
    assert hub.outbox_.controls == [("u0", "shutdown_request")]
    assert hub.outbox_.stopped


def test_records_are_culled_by_count_and_size():
    db = DictDB(record_limit=5, size_limit=1000, cull_fraction=0.2)
    for i in range(20):
        db.add_record(str(i), {"buffers": [b"x" * 10]})
        db.update_record(str(i), {"completed": "now"})
    assert len(db) <= 5 and "19" in db
    db.add_record("big", {"buffers": [b"x" * 5000]})
    assert db.nbytes <= 1000 and db.get_record("big")["buffers"] == []


def test_heart_monitor_counts_misses():
    hm = HeartMonitor(max_missed=1)
    hm.pong(b"a", 0)
    assert hm.tick() == (1, [])
    assert hm.tick() == (2, [])
    assert hm.tick() == (3, [b"a"])
    with pytest.raises(ValueError):
        HeartMonitor(0)
