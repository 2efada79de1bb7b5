"""The engine table: ids, uuids and the steps of registration (pure, no I/O).

An engine becomes *registered* when three things have been seen: its ``engine_ready``
through the mux queue, its ``engine_ready`` through the control queue (so both queues
can route to it) and one heartbeat (so its heart is connected); with a task channel,
also its ``engine_ready`` there.  Ids are handed out
0, 1, 2, ... and never reused, even after an engine leaves; an engine may ask for a
specific unused id (an MPI rank, say).
"""

from dataclasses import dataclass, field

READY_STEPS = frozenset({"mux", "control", "heart"})


class RegistrationError(ValueError):
    pass


@dataclass
class EngineRecord:
    id: int
    uuid: str
    hostname: str = ""
    pid: int = 0
    seen: set = field(default_factory=set)
    needs: frozenset = READY_STEPS

    @property
    def registered(self):
        return self.seen >= self.needs


class EngineRegistry:
    """``ready_steps``: what must be seen before an engine counts as registered (a cluster
    with a load-balanced task channel adds ``"task"``)."""

    def __init__(self, ready_steps=READY_STEPS):
        self.ready_steps = frozenset(ready_steps)
        self._by_uuid = {}
        self._next_id = 0
        self._used_ids = set()

    def add(self, uuid, requested_id=None, hostname="", pid=0):
        """Reserve an id for a new engine; raises RegistrationError if impossible."""
        if uuid in self._by_uuid:
            raise RegistrationError(f"engine uuid {uuid} is already registered")
        if requested_id is not None:
            if isinstance(requested_id, bool) or not isinstance(requested_id, int) or requested_id < 0:
                raise RegistrationError(f"requested engine id must be a non-negative int, not {requested_id!r}")
            if requested_id in self._used_ids:
                raise RegistrationError(f"engine id {requested_id} is already in use")
            eid = requested_id
        else:
            while self._next_id in self._used_ids:
                self._next_id += 1
            eid = self._next_id
        self._used_ids.add(eid)
        rec = EngineRecord(eid, uuid, hostname, pid, needs=self.ready_steps)
        self._by_uuid[uuid] = rec
        return rec

    def mark(self, uuid, step):
        """Note a registration step; return the record if this completed registration."""
        rec = self._by_uuid.get(uuid)
        if rec is None or rec.registered:
            return None
        rec.seen.add(step)
        return rec if rec.registered else None

    def remove(self, uuid):
        return self._by_uuid.pop(uuid, None)

    def get(self, uuid):
        return self._by_uuid.get(uuid)

    def by_id(self, eid):
        for rec in self._by_uuid.values():
            if rec.id == eid:
                return rec
        return None

    def registered(self):
        return sorted((r for r in self._by_uuid.values() if r.registered), key=lambda r: r.id)

    def __contains__(self, uuid):
        return uuid in self._by_uuid
