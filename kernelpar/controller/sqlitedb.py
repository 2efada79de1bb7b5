"""Task records in an SQLite file (stdlib ``sqlite3``), kept across controller restarts.

One table, one row per record, one column per record key:

* dict-valued keys: TEXT holding the JSON (the bytes that travelled, decoded as UTF-8,
  never re-encoded);
* ``buffers``/``result_buffers``: BLOB, the list of buffers as ``<u32 count><u64 length
  each><data...>`` (NULL for None; an empty list is a 4-byte blob);
* dates and plain values: columns without a declared type (no affinity), so strings and
  numbers keep their type; a list (or any other value) is stored as a BLOB of its JSON,
  which a plain value column never otherwise holds.

Queries become SQL with every value bound as a parameter; column names come only from
the record schema and the table name must be an identifier.  ``$all``, ``$mod`` and
``$glob`` call the same Python predicates DictDB uses (registered as SQL functions),
so all stores agree on every operator.

Writes are batched: new records are staged in memory and written (one ``executemany``)
and committed every ``commit_every`` writes, on the first write ``commit_interval``
seconds after the batch began, on :meth:`flush` and on :meth:`close`; a task that
completes within a batch is written once, with its result.  Every read sees every write
(queries flush first).  A controller that dies loses at most the unflushed batch; the hub
should call :meth:`flush` from a periodic timer so an idle controller keeps nothing
unwritten.
"""

import functools
import json
import logging
import os
import re
import sqlite3
import struct
import time

import zmq

from ..wire.session import pack, unpack
from .query import (
    DATE_KEYS,
    JSON_KEYS,
    KIND,
    RECORD_KEYS,
    QueryError,
    check_keys,
    compile_query,
    pred_all,
    pred_glob,
    pred_mod,
    store_date,
)
from .records import RecordStore, decode_json

log = logging.getLogger("kernelpar.controller.records")

_COLUMN_TYPE = {"json": "TEXT", "buffers": "BLOB", "date": "", "value": ""}
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_HISTORY_ORDER = ' ORDER BY "submitted" IS NULL, "submitted", rowid'


def _q(name):
    """A schema column name, quoted (names only ever come from RECORD_KEYS)."""
    if name not in KIND:
        raise QueryError(f"{name!r} is not a task-record key")
    return f'"{name}"'


# -- encoding ------------------------------------------------------------------------------

def encode_buffers(buffers):
    """A list of buffers as one blob: ``<u32 n><u64 len>*n`` then the data."""
    if buffers is None:
        return None
    parts = []
    for buf in buffers:
        if type(buf) is not bytes and type(buf) is not zmq.Frame:  # frames: contiguous bytes
            buf = memoryview(buf)
            if not buf.c_contiguous:
                buf = buf.tobytes()
            elif buf.format != "B" or buf.ndim != 1:
                buf = buf.cast("B")
        parts.append(buf)
    n = len(parts)
    return b"".join([struct.pack(f"<I{n}Q", n, *map(len, parts)), *parts])


def decode_buffers(blob):
    if blob is None:
        return []
    (n,) = struct.unpack_from("<I", blob)
    lengths = struct.unpack_from(f"<{n}Q", blob, 4)
    pos = 4 + 8 * n
    out = []
    for length in lengths:
        out.append(blob[pos:pos + length])
        pos += length
    return out


def _encode_json(value):
    if type(value) is bytes:
        return value.decode("utf-8", errors="replace")
    if isinstance(value, str):
        return value
    if isinstance(value, (dict, list)):
        return pack(value).decode("utf-8")
    return bytes(value).decode("utf-8", errors="replace")  # memoryview, bytearray, zmq frame


def _encode_value(value):
    if value is None or type(value) in (str, int, float, bool):
        return value
    return pack(value)  # bytes: a BLOB, which marks JSON in a value column


def _decode_value(value):
    if type(value) is bytes:
        try:
            return unpack(value)
        except ValueError:
            return value
    return value


def _encode_date(value):
    return _encode_value(store_date(value))


_ENCODE = {"json": _encode_json, "buffers": encode_buffers, "date": _encode_date, "value": _encode_value}
_DECODE = {"json": decode_json, "buffers": decode_buffers, "date": _decode_value, "value": _decode_value}
_ENCODERS = tuple((k, _ENCODE[KIND[k]]) for k in RECORD_KEYS[1:])


# -- SQL functions for the operators SQL has no exact equivalent of ----------------------

@functools.lru_cache(maxsize=64)
def _operand_list(text):
    return tuple(json.loads(text))


def _sql_all(value, operand_json):
    return pred_all(_decode_value(value), _operand_list(operand_json))


def _sql_mod(value, divisor, remainder):
    return pred_mod(value, (divisor, remainder))


def _sql_glob(value, pattern):
    return pred_glob(value, pattern)


def _sql_in(value, operand_json):
    return value in _operand_list(operand_json) if type(value) is not bytes else False


def _json_list(values):
    return json.dumps(list(values), separators=(",", ":"))


class SQLiteDB(RecordStore):
    """Task records in ``<location>/<filename>``, table ``table`` (default ``tasks``).

    ``location`` is a directory (created if needed; the controller passes the
    profile's db folder) or ``":memory:"``.  Reopening the same file and table gives
    back the records of earlier sessions.  If the table exists with other column types
    (another program's), ``table_1``, ``table_2``... are tried instead.
    """

    kind = "sqlitedb"

    def __init__(self, location, table=None, filename="tasks.db", commit_every=1000, commit_interval=1.0):
        table = table or "tasks"
        if not _IDENTIFIER.match(table):
            raise ValueError(f"SQLiteDB table name must be an identifier (letters, digits, _), not {table!r}")
        if location == ":memory:":
            self.path = location
        else:
            os.makedirs(location, exist_ok=True)
            self.path = os.path.join(location, filename)
        self.commit_every = commit_every
        self.commit_interval = commit_interval
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, cached_statements=256)
        if self.path != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.create_function("kp_all", 2, _sql_all, deterministic=True)
        self._db.create_function("kp_mod", 3, _sql_mod, deterministic=True)
        self._db.create_function("kp_glob", 2, _sql_glob, deterministic=True)
        self._db.create_function("kp_in", 2, _sql_in, deterministic=True)
        try:
            self._db.execute("SELECT json_valid('[]')")
            self._json1 = True
        except sqlite3.OperationalError:
            self._json1 = False
        self.table = self._open_table(table)
        t = f'"{self.table}"'
        columns = ", ".join(_q(k) for k in RECORD_KEYS)
        self._insert_sql = f"INSERT OR REPLACE INTO {t} ({columns}) VALUES ({', '.join('?' * len(RECORD_KEYS))})"
        self._select_sql = f"SELECT {columns} FROM {t}"
        self._update_sql = {}
        self._closed = False
        self._staged = {}  # msg_id -> record added since the last flush, in the hub's form
        self._in_tx = False
        self._writes = 0
        self._dirty_since = None

    def _open_table(self, first):
        want = {k: _COLUMN_TYPE[KIND[k]] for k in RECORD_KEYS}
        table, n = first, 0
        while True:
            have = {row[1]: row[2].upper() for row in self._db.execute(f'PRAGMA table_info("{table}")')}
            if not have:
                self._create(table)
                break
            if all(have.get(k, v) == v for k, v in want.items()):
                for key in RECORD_KEYS:
                    if key not in have:  # written by an older version: add the column
                        self._db.execute(f'ALTER TABLE "{table}" ADD COLUMN {_q(key)} {want[key]}')
                break
            n += 1
            log.warning("table %r in %s has other columns than task records; trying %s_%d", table, self.path, first, n)
            table = f"{first}_{n}"
        return table

    def _create(self, table):
        defs = ['"msg_id" PRIMARY KEY NOT NULL'] + [f"{_q(k)} {_COLUMN_TYPE[KIND[k]]}".rstrip()
                                                    for k in RECORD_KEYS[1:]]
        self._db.execute(f'CREATE TABLE IF NOT EXISTS "{table}" ({", ".join(defs)})')
        self._db.execute(f'CREATE INDEX IF NOT EXISTS "{table}_submitted" ON "{table}" ("submitted")')

    # -- batching
    #
    # New records are staged in a dict and written with one executemany per batch, so a
    # task that completes within the batch costs one INSERT of its final row rather than
    # an INSERT and an UPDATE.  Reads and deletes flush first; get_record and `in` look
    # at the staged records too.

    def _changed(self):
        if self._dirty_since is None:
            self._dirty_since = time.monotonic()
        self._writes += 1
        if self._writes >= self.commit_every or time.monotonic() - self._dirty_since >= self.commit_interval:
            self.flush()

    def _execute_write(self, sql, params):
        if not self._in_tx:
            self._db.execute("BEGIN")
            self._in_tx = True
        return self._db.execute(sql, params)

    def flush(self):
        """Write the staged records and commit everything written so far."""
        if self._staged:
            rows = [self._row(msg_id, record) for msg_id, record in self._staged.items()]
            self._staged.clear()
            if not self._in_tx:
                self._db.execute("BEGIN")
                self._in_tx = True
            self._db.executemany(self._insert_sql, rows)
        if self._in_tx:
            self._in_tx = False
            self._db.execute("COMMIT")
        self._dirty_since = None
        self._writes = 0

    def close(self):
        if not self._closed:
            self.flush()
            self._db.close()
            self._closed = True  # later calls raise sqlite3.ProgrammingError

    # -- writing

    @staticmethod
    def _row(msg_id, record):
        get = record.get
        values = [msg_id]
        for key, encode in _ENCODERS:
            value = get(key)
            values.append(None if value is None else encode(value))
        return values

    def add_record(self, msg_id, record):
        self._staged[msg_id] = record
        self._changed()

    def update_record(self, msg_id, changes):
        staged = self._staged.get(msg_id)
        if staged is not None:
            staged.update(changes)
            self._changed()
            return True
        keys = tuple(k for k in changes if k in KIND and k != "msg_id")
        if not keys:
            return True if msg_id in self else None
        sql = self._update_sql.get(keys)
        if sql is None:
            sets = ", ".join(f"{_q(k)} = ?" for k in keys)
            sql = self._update_sql[keys] = f'UPDATE "{self.table}" SET {sets} WHERE "msg_id" = ?'
        values = [_ENCODE[KIND[k]](changes[k]) for k in keys]
        values.append(msg_id)
        found = self._execute_write(sql, values).rowcount > 0
        self._changed()
        return True if found else None

    def drop_record(self, msg_id):
        self.flush()
        dropped = self._execute_write(f'DELETE FROM "{self.table}" WHERE "msg_id" = ?', (msg_id,)).rowcount > 0
        self.flush()
        return dropped

    def drop_matching_records(self, query):
        where, params = self._where(compile_query(query))
        self.flush()
        dropped = self._execute_write(f'DELETE FROM "{self.table}"{where}', params).rowcount
        self.flush()
        return dropped

    # -- reading

    def get_record(self, msg_id):
        staged = self._staged.get(msg_id)
        if staged is not None:
            record = {k: staged.get(k) for k in RECORD_KEYS}
            record["msg_id"] = msg_id
            for key in DATE_KEYS:
                record[key] = store_date(record[key])
            for key in JSON_KEYS:
                if not (record[key] is None or type(record[key]) in (bytes, dict)):
                    record[key] = decode_json(record[key])
            return record
        row = self._db.execute(f'{self._select_sql} WHERE "msg_id" = ?', (msg_id,)).fetchone()
        if row is None:
            return None
        return {k: _DECODE[KIND[k]](v) for k, v in zip(RECORD_KEYS, row)}

    def find_records(self, query, keys=None):
        where, params = self._where(compile_query(query))
        keys = check_keys(keys) or RECORD_KEYS
        columns = ", ".join(_q(k) for k in keys)
        decoders = [_DECODE[KIND[k]] for k in keys]
        self.flush()
        rows = self._db.execute(f'SELECT {columns} FROM "{self.table}"{where}{_HISTORY_ORDER}', params)
        return [{k: decode(v) for k, decode, v in zip(keys, decoders, row)} for row in rows]

    def get_history(self):
        self.flush()
        return [row[0] for row in self._db.execute(f'SELECT "msg_id" FROM "{self.table}"{_HISTORY_ORDER}')]

    def __contains__(self, msg_id):
        if msg_id in self._staged:
            return True
        return self._db.execute(f'SELECT 1 FROM "{self.table}" WHERE "msg_id" = ?', (msg_id,)).fetchone() is not None

    def __len__(self):
        self.flush()
        return self._db.execute(f'SELECT COUNT(*) FROM "{self.table}"').fetchone()[0]

    # -- query translation

    def _where(self, conditions):
        """`` WHERE ...`` (or "") and its parameters for compiled conditions."""
        clauses, params = [], []
        for key, op, operand in conditions:
            clauses.append(self._clause(_q(key), op, operand, params))
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params

    def _clause(self, col, op, x, params):
        if op == "$exists":
            return f"{col} IS NOT NULL" if x else f"{col} IS NULL"
        if op in ("$eq", "$ne"):
            if x is None:
                return f"{col} IS NULL" if op == "$eq" else f"{col} IS NOT NULL"
            params.append(x)
            return f"{col} = ?" if op == "$eq" else f"{col} IS NOT ?"
        if op in ("$lt", "$lte", "$gt", "$gte"):
            if x is None:
                return "0"
            sign = {"$lt": "<", "$lte": "<=", "$gt": ">", "$gte": ">="}[op]
            kind = "= 'text'" if isinstance(x, str) else "IN ('integer', 'real')"
            params.append(x)
            return f"(typeof({col}) {kind} AND {col} {sign} ?)"
        if op in ("$in", "$nin"):
            values, has_none = x
            if values:
                params.append(_json_list(values))
                member = (f"{col} IN (SELECT value FROM json_each(?))" if self._json1 else f"kp_in({col}, ?)")
            else:
                member = "0"
            if op == "$in":
                return f"({col} IS NULL OR {member})" if has_none else f"({col} IS NOT NULL AND {member})"
            return f"({col} IS NOT NULL AND NOT {member})" if has_none else f"({col} IS NULL OR NOT {member})"
        if op == "$all":
            params.append(_json_list(x))
            return f"kp_all({col}, ?)"
        if op == "$mod":
            params.extend(x)
            return f"kp_mod({col}, ?, ?)"
        if op == "$glob":
            params.append(x)
            return f"kp_glob({col}, ?)"
        raise AssertionError(op)  # pragma: no cover


__all__ = ["DATE_KEYS", "SQLiteDB", "decode_buffers", "encode_buffers"]
