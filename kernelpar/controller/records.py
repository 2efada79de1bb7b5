"""Task records kept by the hub: one interface, three stores (:class:`DictDB`, :class:`NoDB`,
and :class:`~.sqlitedb.SQLiteDB`), and :func:`make_db` to pick one by name.

Every request seen by the hub becomes a record keyed by msg_id (the keys are
:data:`~.query.RECORD_KEYS`: ``header``, ``metadata``, ``content``, ``buffers``,
``submitted``, ``engine_uuid``, ``client_uuid``, ``queue``; later ``started``,
``result_header``, ``result_metadata``, ``result_content``, ``result_buffers``,
``completed``, ``stdout``, ``stderr``, ...).  The hub writes a record as it has it:

* dict-valued keys (``header``, ``metadata``, ``content`` and their ``result_`` twins,
  ``execute_result``, ``error``) as a dict or as the JSON bytes that travelled;
* ``buffers``/``result_buffers`` as lists of zmq frames, bytes or memoryviews;
* dates as ``datetime`` objects or ISO strings; stores keep them as canonical UTC ISO
  strings (see :mod:`.query`), so comparing them as strings is comparing them in time.

Reading through :meth:`RecordStore.get_records` / :meth:`RecordStore.find_records` gives
*decoded* records: every key present, dicts for the JSON keys, lists of ``bytes`` for the
buffers, ISO strings for dates.  :meth:`RecordStore.get_record` is the hub's cheap raw
access (the record as stored, or None).
"""

import abc
import logging
from collections import OrderedDict

import zmq

from ..wire.session import as_bytes, unpack
from .query import (
    BUFFER_KEYS,
    DATE_KEYS,
    JSON_KEYS,
    KIND,
    RECORD_KEYS,
    QueryError,
    check_keys,
    compile_query,
    matches,
    store_date,
)

log = logging.getLogger("kernelpar.controller.records")

__all__ = [
    "BUFFER_KEYS",
    "JSON_KEYS",
    "RECORD_KEYS",
    "DictDB",
    "NoDB",
    "QueryError",
    "RecordNotFound",
    "RecordStore",
    "RecordsNotKept",
    "buffer_bytes",
    "buffer_nbytes",
    "decode_json",
    "decode_record",
    "make_db",
]


class RecordNotFound(KeyError):
    """No record for a msg_id (never seen, dropped, or culled from memory)."""

    def __init__(self, msg_id, reason="no task record for msg_id"):
        super().__init__(msg_id)
        self.msg_id = msg_id
        self.reason = f"{reason} {msg_id!r}"

    def __str__(self):
        return self.reason


class RecordsNotKept(KeyError):
    """Raised by :class:`NoDB` for any call that needs stored records."""

    def __str__(self):
        return ("the controller runs with --nodb, so task records are not kept and results, "
                "history and db queries are unavailable; start it with --dictdb or --sqlitedb to keep them")


# -- decoding --------------------------------------------------------------------------

def buffer_nbytes(buf):
    """Size in bytes of one buffer (bytes, zmq frame, memoryview of any format)."""
    if type(buf) is bytes or isinstance(buf, zmq.Frame):
        return len(buf)
    if isinstance(buf, memoryview):
        return buf.nbytes
    return memoryview(buf).nbytes


def buffers_nbytes(buffers):
    if not buffers:
        return 0
    total = 0
    for buf in buffers:
        total += len(buf) if type(buf) is bytes or type(buf) is zmq.Frame else buffer_nbytes(buf)
    return total


def buffer_bytes(buf):
    """One buffer as ``bytes`` (a copy unless it already is bytes)."""
    if type(buf) is bytes:
        return buf
    if isinstance(buf, memoryview):
        return buf.tobytes()
    return as_bytes(buf)


def decode_json(value):
    """A JSON-valued field as a dict: JSON bytes/str/frames are parsed, dicts kept."""
    if value is None:
        return None
    if isinstance(value, dict):
        return dict(value)  # a copy: callers may change what they read
    if isinstance(value, str):
        data = value
    else:
        data = buffer_bytes(value)
    try:
        return unpack(data)
    except (ValueError, UnicodeDecodeError):
        log.warning("undecodable JSON in a task record: %.60r", data)
        return None


def _decode_buffers(value):
    return [buffer_bytes(b) for b in value] if value else []


_DECODERS = {"json": decode_json, "buffers": _decode_buffers}


def decode_record(msg_id, record, keys=None):
    """The decoded form of a stored record, with every key (or ``keys``, msg_id first)."""
    out = {"msg_id": msg_id}
    for key in keys or RECORD_KEYS:
        if key == "msg_id":
            continue
        value = record.get(key)
        decoder = _DECODERS.get(KIND[key])
        out[key] = decoder(value) if decoder is not None else value
    return out


def _history_key(record):
    submitted = record.get("submitted")
    return (0, submitted) if isinstance(submitted, str) else (1, "")


# -- the interface ----------------------------------------------------------------------

class RecordStore(abc.ABC):
    """What the hub calls to keep task records.  Not thread-safe: one thread uses a store.

    Malformed queries or key lists raise :class:`~.query.QueryError` (a ValueError)
    naming the key/operator at fault; :class:`NoDB` raises :class:`RecordsNotKept` (a
    KeyError) from every call that needs records.
    """

    #: the name :func:`make_db` knows the store by
    kind = ""

    @abc.abstractmethod
    def add_record(self, msg_id, record):
        """Store a new record (a dict of :data:`RECORD_KEYS`; missing keys are None).

        A second add with the same msg_id replaces the record.  Stores may keep
        ``record`` itself (DictDB does), so the caller must not reuse it.
        """

    @abc.abstractmethod
    def update_record(self, msg_id, changes):
        """Merge ``changes`` (a dict) into the record; None if there is no such record.

        Otherwise returns a true value: DictDB the stored record itself, SQLiteDB True.
        """

    @abc.abstractmethod
    def get_record(self, msg_id):
        """The record, or None if there is none: the hub's cheap access, no KeyError.

        Not necessarily decoded: a JSON key holds a dict or the JSON bytes the hub
        wrote (DictDB returns its stored dict itself, so do not change it); buffers are
        a list of frames/bytes; dates canonical strings.  NoDB returns None.  Use
        :meth:`get_records` for decoded copies and a KeyError naming a missing msg_id.
        """

    def get_records(self, msg_ids, keys=None):
        """Decoded records for ``msg_ids``, in that order (like :meth:`find_records`).

        Raises :class:`RecordNotFound` (a KeyError naming the msg_id) for the first
        msg_id without a record.
        """
        msg_ids = list(msg_ids)
        found = {r["msg_id"]: r for r in self.find_records({"msg_id": {"$in": msg_ids}}, keys)}
        for msg_id in msg_ids:
            if msg_id not in found:
                raise self._not_found(msg_id)
        return [found[m] for m in msg_ids]

    def _not_found(self, msg_id):
        return RecordNotFound(msg_id)

    @abc.abstractmethod
    def find_records(self, query, keys=None):
        """Decoded records matching ``query`` (see :mod:`.query`), in history order.

        With ``keys`` (a list of record keys) each dict has only msg_id and those keys.
        """

    @abc.abstractmethod
    def drop_matching_records(self, query):
        """Delete every record matching ``query``; returns how many were deleted."""

    @abc.abstractmethod
    def drop_record(self, msg_id):
        """Delete one record; returns whether there was one."""

    @abc.abstractmethod
    def get_history(self):
        """Every stored msg_id, oldest submission first (records without a date last)."""

    @abc.abstractmethod
    def __contains__(self, msg_id):
        """Whether a record for msg_id is stored."""

    @abc.abstractmethod
    def __len__(self):
        """The number of stored records."""

    def flush(self):
        """Make writes durable now (SQLiteDB commits); a no-op for memory stores."""

    def close(self):
        """Flush and release the store; it is not used afterwards."""
        self.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# -- DictDB -------------------------------------------------------------------------------

class DictDB(RecordStore):
    """Records in memory, bounded by count (``record_limit``) and buffer bytes (``size_limit``).

    Buffers are the zmq frames the queue copied to the hub, so keeping them shares memory
    with the message rather than copying it, but it still holds that memory.  When the
    records exceed ``record_limit`` or their buffers exceed ``size_limit`` bytes, the
    records that completed longest ago are dropped until both are below ``(1 -
    cull_fraction)`` of their limit, so culling runs once per ``cull_fraction`` of the
    limit and costs O(1) per dropped record.  Pending records are never dropped: if
    pending records alone hold too many bytes, their buffers are, oldest first.  While
    more than ``record_limit`` records are pending (a big ``map`` in flight), completed
    records are dropped in batches of ``cull_fraction`` of the limit too, not one by one
    as each task completes.
    """

    kind = "dictdb"

    def __init__(self, record_limit=1024, size_limit=128 * 1024 * 1024, cull_fraction=0.1):
        if record_limit < 1 or size_limit < 0 or not 0 <= cull_fraction < 1:
            raise ValueError("DictDB needs record_limit >= 1, size_limit >= 0 and 0 <= cull_fraction < 1")
        self.record_limit = record_limit
        self.size_limit = size_limit
        self.cull_fraction = cull_fraction
        self._records = {}
        self._sizes = {}                  # msg_id -> buffer bytes, for records holding any
        self._completed = OrderedDict()   # completed msg_ids, earliest completion first
        self._completed_bytes = 0
        self._loaded = OrderedDict()      # pending msg_ids holding buffer bytes, oldest first
        self._culled = OrderedDict()      # recently culled msg_ids, for a clearer KeyError
        self._culled_limit = max(4 * record_limit, 4096)
        self._count_target = int(record_limit * (1 - cull_fraction))
        self._cull_batch = max(1, record_limit - self._count_target)
        self.nbytes = 0

    def __len__(self):
        return len(self._records)

    def __contains__(self, msg_id):
        return msg_id in self._records

    # -- writing

    def add_record(self, msg_id, record):
        if msg_id in self._records:
            self._remove(msg_id)
        record["msg_id"] = msg_id
        for key in DATE_KEYS:
            if key in record:
                record[key] = store_date(record[key])
        self._records[msg_id] = record
        size = buffers_nbytes(record.get("buffers")) + buffers_nbytes(record.get("result_buffers"))
        if size:
            self._sizes[msg_id] = size
            self.nbytes += size
        if record.get("completed") is not None:
            self._completed[msg_id] = None
            self._completed_bytes += size
        elif size:
            self._loaded[msg_id] = None
        if self._over_limits():
            self._cull()

    def update_record(self, msg_id, changes):
        record = self._records.get(msg_id)
        if record is None:
            return None
        record.update(changes)
        record["msg_id"] = msg_id
        for key in DATE_KEYS:
            if key in changes:
                record[key] = store_date(record[key])
        old = self._sizes.get(msg_id, 0)
        size = old
        if "buffers" in changes or "result_buffers" in changes:
            size = buffers_nbytes(record.get("buffers")) + buffers_nbytes(record.get("result_buffers"))
            if size:
                self._sizes[msg_id] = size
            else:
                self._sizes.pop(msg_id, None)
            self.nbytes += size - old
        was_done = msg_id in self._completed
        if record.get("completed") is not None:
            if was_done:
                self._completed_bytes += size - old
            else:
                self._completed[msg_id] = None
                self._completed_bytes += size
                self._loaded.pop(msg_id, None)
        else:
            if was_done:
                del self._completed[msg_id]
                self._completed_bytes -= old
            if size:
                self._loaded[msg_id] = None
            else:
                self._loaded.pop(msg_id, None)
        if self._over_limits():
            self._cull()
        return record

    def _remove(self, msg_id):
        record = self._records.pop(msg_id)
        size = self._sizes.pop(msg_id, 0)
        self.nbytes -= size
        if msg_id in self._completed:
            del self._completed[msg_id]
            self._completed_bytes -= size
        self._loaded.pop(msg_id, None)
        return record

    def _over_limits(self):
        if self.nbytes > self.size_limit:
            return True
        if len(self._records) <= self.record_limit:
            return False
        wanted = len(self._records) - self._count_target
        return len(self._completed) >= min(wanted, self._cull_batch)

    def _cull(self):
        count_target = self._count_target
        if len(self._records) <= self.record_limit:
            count_target = self.record_limit
        byte_target = self.size_limit * (1 - self.cull_fraction)
        if self.nbytes <= self.size_limit:
            byte_target = self.size_limit
        before, before_bytes = len(self._records), self.nbytes
        culled = 0
        while self._completed and (
            len(self._records) > count_target or (self.nbytes > byte_target and self._completed_bytes > 0)
        ):
            msg_id = next(iter(self._completed))
            self._remove(msg_id)
            self._culled[msg_id] = None
            culled += 1
        while len(self._culled) > self._culled_limit:
            self._culled.popitem(last=False)
        stripped = 0
        while self.nbytes > byte_target and self._loaded:
            msg_id, _ = self._loaded.popitem(last=False)
            record = self._records[msg_id]
            record["buffers"] = []
            if record.get("result_buffers"):
                record["result_buffers"] = []
            self.nbytes -= self._sizes.pop(msg_id, 0)
            stripped += 1
        if culled or stripped:
            log.debug("task records: %d records / %d buffer bytes over the limits (%d / %d): "
                      "dropped %d completed records, and the buffers of %d pending ones",
                      before, before_bytes, self.record_limit, self.size_limit, culled, stripped)

    def drop_record(self, msg_id):
        if msg_id not in self._records:
            return False
        self._remove(msg_id)
        return True

    def drop_matching_records(self, query):
        conditions = compile_query(query)
        doomed = [m for m, rec in self._candidates(conditions) if matches(conditions, rec)]
        for msg_id in doomed:
            self._remove(msg_id)
        return len(doomed)

    # -- reading

    def get_record(self, msg_id):
        return self._records.get(msg_id)

    def _not_found(self, msg_id):
        if msg_id in self._culled:
            return RecordNotFound(msg_id, f"the hub no longer keeps the record (culled: DictDB keeps at most "
                                          f"{self.record_limit} records / {self.size_limit} buffer bytes) of")
        return RecordNotFound(msg_id)

    def _candidates(self, conditions):
        """(msg_id, record) pairs that may match: a lookup when the query names msg_ids."""
        for key, op, operand in conditions:
            if key == "msg_id" and op in ("$eq", "$in"):
                ids = (operand,) if op == "$eq" else operand[0]
                records = self._records
                return [(m, records[m]) for m in ids if m in records]
        return list(self._records.items())

    def find_records(self, query, keys=None):
        conditions = compile_query(query)
        keys = check_keys(keys)
        found = [(m, rec) for m, rec in self._candidates(conditions) if matches(conditions, rec)]
        found.sort(key=lambda item: _history_key(item[1]))
        return [decode_record(m, rec, keys) for m, rec in found]

    def get_history(self):
        records = self._records
        return sorted(records, key=lambda m: _history_key(records[m]))


# -- NoDB -----------------------------------------------------------------------------------

class NoDB(RecordStore):
    """Keeps nothing: writes are ignored, :meth:`get_record` finds nothing, and the reads
    that need records (get_records, find_records, get_history) raise :class:`RecordsNotKept`."""

    kind = "nodb"

    def add_record(self, msg_id, record):
        pass

    def update_record(self, msg_id, changes):
        return None

    def get_record(self, msg_id):
        return None

    def get_records(self, msg_ids, keys=None):
        raise RecordsNotKept()

    def find_records(self, query, keys=None):
        compile_query(query)
        check_keys(keys)
        raise RecordsNotKept()

    def drop_matching_records(self, query):
        compile_query(query)
        return 0

    def drop_record(self, msg_id):
        return False

    def get_history(self):
        raise RecordsNotKept()

    def __contains__(self, msg_id):
        return False

    def __len__(self):
        return 0


# -- factory -------------------------------------------------------------------------------

def make_db(kind="dictdb", **options):
    """A record store by name: ``"dictdb"``, ``"sqlitedb"`` or ``"nodb"`` (any case, a
    leading ``--`` allowed, so ``"--sqlitedb"`` and ``"SQLiteDB"`` work too).

    ``options`` go to the store: DictDB(record_limit, size_limit, cull_fraction);
    SQLiteDB(location, table, filename, commit_every, commit_interval); NoDB takes none.
    """
    name = str(kind).lower().lstrip("-")
    if name == "dictdb":
        return DictDB(**options)
    if name == "sqlitedb":
        from .sqlitedb import SQLiteDB

        return SQLiteDB(**options)
    if name == "nodb":
        if options:
            raise TypeError(f"NoDB takes no options, got {sorted(options)}")
        return NoDB()
    raise ValueError(f"unknown task-record store {kind!r}: use 'dictdb', 'sqlitedb' or 'nodb'")
