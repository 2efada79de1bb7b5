"""Task records kept by the hub, in memory, bounded by count and by bytes (pure, no I/O).

Every request seen by the hub becomes a record keyed by msg_id (``header``,
``metadata``, ``content``, ``buffers``, ``submitted``, ``engine_uuid``, ``client_uuid``,
``queue``; then ``result_header``, ``result_metadata``, ``result_content``,
``result_buffers``, ``completed``).  ``metadata``/``content`` and their ``result_``
twins are kept as the JSON bytes that travelled, decoded only when a record is read.
Buffers are the zmq frames the queue
copied to the hub, so keeping them shares memory with the message rather than copying
it, but it still holds that memory: when the records exceed ``record_limit`` or their
buffers exceed ``size_limit`` bytes, the oldest *completed* records are dropped
(``cull_fraction`` of them at a time), so a 100 MB push is not held forever.
"""

from collections import OrderedDict


def _nbytes(buffers):
    return sum(len(b) for b in buffers or ())


class DictDB:
    def __init__(self, record_limit=1024, size_limit=128 * 1024 * 1024, cull_fraction=0.1):
        self.record_limit = record_limit
        self.size_limit = size_limit
        self.cull_fraction = cull_fraction
        self._records = OrderedDict()
        self._sizes = {}
        self._pending = set()
        self.nbytes = 0

    def __len__(self):
        return len(self._records)

    def __contains__(self, msg_id):
        return msg_id in self._records

    def add_record(self, msg_id, record):
        self._records[msg_id] = record
        self._pending.add(msg_id)
        self._account(msg_id, record)
        self._cull()

    def update_record(self, msg_id, changes):
        record = self._records.get(msg_id)
        if record is None:
            return None
        record.update(changes)
        if record.get("completed") is not None:
            self._pending.discard(msg_id)
        self._account(msg_id, record)
        self._cull()
        return record

    def get_record(self, msg_id):
        return self._records.get(msg_id)

    def _account(self, msg_id, record):
        size = _nbytes(record.get("buffers")) + _nbytes(record.get("result_buffers"))
        self.nbytes += size - self._sizes.get(msg_id, 0)
        self._sizes[msg_id] = size

    def _drop(self, msg_id):
        self._records.pop(msg_id, None)
        self._pending.discard(msg_id)
        self.nbytes -= self._sizes.pop(msg_id, 0)

    def _cull(self):
        if len(self._records) <= self.record_limit and self.nbytes <= self.size_limit:
            return
        quota = max(1, int(len(self._records) * self.cull_fraction))
        for msg_id in [m for m in self._records if m not in self._pending]:
            if quota <= 0 and len(self._records) <= self.record_limit and self.nbytes <= self.size_limit:
                break
            self._drop(msg_id)
            quota -= 1
        if self.nbytes > self.size_limit:
            # only pending records are left: keep them, but not their data
            for msg_id in list(self._pending):
                record = self._records[msg_id]
                record["buffers"] = []
                self._account(msg_id, record)
