"""The hub's answers about task records: ``db_request``, ``history_request``,
``result_request``, ``purge_request`` and ``resubmit_request`` (pure: no sockets).

The hub calls ``content, buffers = queries.handle(msg_type, content)`` and sends
``content`` as the ``<kind>_reply`` with ``buffers`` as extra frames.  Replies (the
shapes ipyparallel's hub gives them, plus the noted extras)::

    db_reply        {status, records: [record, ...], buffer_lens, result_buffer_lens}
                    records are decoded (dicts for JSON keys, ISO strings for dates) and
                    never carry buffers: with "buffers" / "result_buffers" among the
                    requested keys, ``buffer_lens`` / ``result_buffer_lens`` list how many
                    frames each record has (else they are None), and the frames follow
                    record by record: its buffers, then its result buffers.
    history_reply   {status, history: [msg_id, ...]}  (oldest submission first)
    result_reply    {status, pending: [...], completed: [...], <msg_id>: entry, ...}
                    entries only without ``status_only``: a completed task's entry is
                    {header, metadata, result_header, result_metadata, result_content,
                    submitted, completed, received, engine_uuid, io: {execute_input,
                    execute_result, error, stdout, stderr}, result_buffer_count}, and its
                    result buffers follow as frames, in ``completed`` order;
                    (extra) a pending task's entry is {header, metadata, submitted,
                    engine_uuid}, so a client can show its timing before it finishes.
    purge_reply     {status}
    resubmit_reply  {status, resubmitted: {old_msg_id: new_msg_id}}

Any failure is an error reply, never an exception out of :meth:`RecordQueries.handle`
(only an unknown ``msg_type`` raises ValueError): ``{status: "error", ename, evalue,
traceback, engine_info}``.  ``ename`` is what ipyparallel's hub says for the same case, so
code that checks ``RemoteError.ename`` keeps working: ``KeyError`` for an unknown, culled
or unkept (``--nodb``) record, ``IndexError`` for purging a pending task or an unknown
engine, ``ValueError`` for a malformed query, ``TypeError`` for a malformed request;
``evalue`` says exactly what happened.
"""

import logging
import traceback

from .query import BUFFER_KEYS, RECORD_KEYS, QueryError
from .records import RecordNotFound, RecordsNotKept

log = logging.getLogger("kernelpar.controller.queries")

__all__ = ["MSG_TYPES", "RecordQueries", "error_content"]

#: the requests :meth:`RecordQueries.handle` answers
MSG_TYPES = ("db_request", "history_request", "result_request", "purge_request", "resubmit_request")

#: db_request keys when the client names none: everything but the (large) buffers
DEFAULT_DB_KEYS = tuple(k for k in RECORD_KEYS if k not in BUFFER_KEYS)

#: what result_request reads from a record (never the request's own buffers or content)
_RESULT_KEYS = (
    "header", "metadata", "submitted", "engine_uuid", "completed", "received", "result_header",
    "result_metadata", "result_content", "result_buffers", "execute_input", "execute_result", "error",
    "stdout", "stderr",
)
_IO_KEYS = ("execute_input", "execute_result", "error", "stdout", "stderr")

#: the metadata key a message's shared-memory buffers are listed under (see kernelpar.wire.shm)
_SHM_KEY = "shm"


class RequestError(Exception):
    """A request that cannot be answered: becomes an error reply with ``ename``."""

    def __init__(self, ename, evalue):
        super().__init__(evalue)
        self.ename = ename
        self.evalue = evalue


def error_content(ename, evalue, tb=""):
    return {"status": "error", "ename": ename, "evalue": evalue, "traceback": tb, "engine_info": {}}


def _as_error(exc):
    """The error-reply content for an exception raised while answering a request."""
    if isinstance(exc, RequestError):
        return error_content(exc.ename, exc.evalue)
    if isinstance(exc, (RecordNotFound, RecordsNotKept)):
        return error_content("KeyError", str(exc))
    if isinstance(exc, QueryError):
        return error_content("ValueError", str(exc))
    # a store failure (disk full, corrupt file...): say what and where, keep serving
    log.error("task-record request failed", exc_info=exc)
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return error_content(type(exc).__name__, str(exc) or repr(exc), tb)


def _msg_id_list(msg_ids, key="msg_ids"):
    """A request's msg_ids as a list of distinct msg_ids, in order (one str is a list of one)."""
    if isinstance(msg_ids, str):
        msg_ids = [msg_ids]
    if not isinstance(msg_ids, (list, tuple)) or not all(isinstance(m, str) for m in msg_ids):
        raise RequestError("TypeError", f"{key} must be a list of msg_id strings, not {msg_ids!r}")
    return list(dict.fromkeys(msg_ids))


def _shared_memory(metadata):
    return isinstance(metadata, dict) and bool(metadata.get(_SHM_KEY))


class RecordQueries:
    """Answers the five record requests from a :class:`~.records.RecordStore`.

    ``resubmit(record) -> new_msg_id`` sends a task again; it gets the decoded record
    (``header``, ``metadata``, ``content`` dicts, ``buffers`` as bytes, ...) and must have
    recorded the new submission in ``db`` before it returns (a client polls for it at
    once).  ``engine_uuid_of(engine_id)`` is the uuid of a registered engine, or None
    (a KeyError counts as None).  Without them, resubmits and per-engine purges are
    answered with an error.
    """

    def __init__(self, db, resubmit=None, engine_uuid_of=None):
        self.db = db
        self.resubmit = resubmit
        self.engine_uuid_of = engine_uuid_of
        self._handlers = {
            "db_request": self.db_request,
            "history_request": self.history_request,
            "result_request": self.result_request,
            "purge_request": self.purge_request,
            "resubmit_request": self.resubmit_request,
        }

    def handle(self, msg_type, content):
        """``(reply_content, buffers)`` for one request; ValueError for an unknown msg_type."""
        handler = self._handlers.get(msg_type)
        if handler is None:
            raise ValueError(f"not a task-record request: {msg_type!r} (handled: {', '.join(MSG_TYPES)})")
        if not isinstance(content, dict):
            return error_content("TypeError", f"{msg_type} content must be a dict, not {type(content).__name__}"), []
        try:
            return handler(content)
        except Exception as e:
            return _as_error(e), []

    # -- db_request ----------------------------------------------------------------------

    def db_request(self, content):
        query = content.get("query")
        if query is None:
            query = {}
        keys = content.get("keys")
        if isinstance(keys, str):
            keys = [keys]
        if keys is None:
            keys = DEFAULT_DB_KEYS
        elif not isinstance(keys, (list, tuple)):
            raise QueryError(f"db query keys must be a list of record keys, not {type(keys).__name__}")
        records = self.db.find_records(query, list(keys))
        buffer_lens = [] if "buffers" in keys else None
        result_buffer_lens = [] if "result_buffers" in keys else None
        frames = []
        for rec in records:
            bufs = rec.pop("buffers", None) or []
            rbufs = rec.pop("result_buffers", None) or []
            if buffer_lens is not None:
                buffer_lens.append(len(bufs))
                frames.extend(bufs)
            if result_buffer_lens is not None:
                result_buffer_lens.append(len(rbufs))
                frames.extend(rbufs)
        reply = {"status": "ok", "records": records, "buffer_lens": buffer_lens,
                 "result_buffer_lens": result_buffer_lens}
        return reply, frames

    # -- history_request ---------------------------------------------------------------------

    def history_request(self, content):
        return {"status": "ok", "history": list(self.db.get_history())}, []

    # -- result_request ----------------------------------------------------------------------

    def result_request(self, content):
        msg_ids = _msg_id_list(content.get("msg_ids"))
        status_only = bool(content.get("status_only", False))
        keys = ["completed"] if status_only else list(_RESULT_KEYS)
        # RecordNotFound names the first unknown msg_id (and says if it was culled)
        records = self.db.get_records(msg_ids, keys) if msg_ids else []
        reply = {"status": "ok", "pending": [], "completed": []}
        frames = []
        for rec in records:
            msg_id = rec["msg_id"]
            if rec.get("completed") is None:
                reply["pending"].append(msg_id)
                if not status_only:
                    reply[msg_id] = {key: rec.get(key) for key in ("header", "metadata", "submitted", "engine_uuid")}
                continue
            reply["completed"].append(msg_id)
            if status_only:
                continue
            rbufs = rec.get("result_buffers") or []
            entry = {key: rec.get(key) for key in (
                "header", "metadata", "result_header", "result_metadata", "result_content", "submitted",
                "completed", "received", "engine_uuid")}
            entry["io"] = {key: rec.get(key) for key in _IO_KEYS}
            entry["result_buffer_count"] = len(rbufs)
            reply[msg_id] = entry
            frames.extend(rbufs)
        return reply, frames

    # -- purge_request -----------------------------------------------------------------------

    def purge_request(self, content):
        msg_ids = content.get("msg_ids")
        if msg_ids is None:
            msg_ids = []
        engine_ids = content.get("engine_ids")
        if engine_ids is None:
            engine_ids = []
        if not isinstance(engine_ids, (list, tuple)) or not all(
                isinstance(e, int) and not isinstance(e, bool) for e in engine_ids):
            raise RequestError("TypeError", f"engine_ids must be a list of engine ids (ints), not {engine_ids!r}")
        uuids = [self._engine_uuid(eid) for eid in engine_ids]  # all checked before anything is dropped
        if msg_ids == "all":
            self.db.drop_matching_records({"completed": {"$ne": None}})
        else:
            msg_ids = _msg_id_list(msg_ids)
            if msg_ids:
                pending = [r["msg_id"] for r in self.db.find_records(
                    {"msg_id": {"$in": msg_ids}, "completed": None}, ["completed"])]
                if pending:
                    raise RequestError("IndexError", f"msg pending: {pending[0]!r} has not completed, so its "
                                                     f"record cannot be purged ({len(pending)} pending in all)")
                self.db.drop_matching_records({"msg_id": {"$in": msg_ids}})
        for uuid in uuids:
            self.db.drop_matching_records({"engine_uuid": uuid, "completed": {"$ne": None}})
        return {"status": "ok"}, []

    def _engine_uuid(self, eid):
        if self.engine_uuid_of is None:
            raise RequestError("RuntimeError", "this hub cannot purge records by engine")
        try:
            uuid = self.engine_uuid_of(eid)
        except KeyError:
            uuid = None
        if uuid is None:
            raise RequestError("IndexError", f"No such engine: {eid}")
        return uuid

    # -- resubmit_request ----------------------------------------------------------------------

    def resubmit_request(self, content):
        msg_ids = _msg_id_list(content.get("msg_ids"))
        if self.resubmit is None:
            raise RequestError("RuntimeError", "this controller cannot resubmit tasks")
        found = {r["msg_id"]: r for r in self.db.find_records({"msg_id": {"$in": msg_ids}})} if msg_ids else {}
        missing = [m for m in msg_ids if m not in found]
        if missing:
            if len(missing) == 1:
                try:  # the store's own message says whether the record was culled
                    self.db.get_records(missing, ["completed"])
                except RecordNotFound as e:
                    raise RequestError("KeyError", str(e)) from None
            raise RequestError("KeyError", f"No such msg(s): {missing!r}")
        records = [found[m] for m in msg_ids]
        for rec in records:
            problem = self._unresubmittable(rec)
            if problem:
                raise RequestError("ValueError", f"cannot resubmit {rec['msg_id']!r}: {problem}")
        resubmitted = {}
        for rec in records:
            try:
                new_id = self.resubmit(rec)
            except Exception as e:
                log.exception("resubmitting %s failed", rec["msg_id"])
                done = f" (already resubmitted: {resubmitted!r})" if resubmitted else ""
                raise RequestError(type(e).__name__, f"resubmitting {rec['msg_id']!r} failed: {e}{done}") from None
            resubmitted[rec["msg_id"]] = new_id
            self.db.update_record(rec["msg_id"], {"resubmitted": new_id})
        return {"status": "ok", "resubmitted": resubmitted}, []

    @staticmethod
    def _unresubmittable(rec):
        header = rec.get("header")
        if not isinstance(header, dict) or not header.get("msg_type"):
            return "its record holds no request header"
        if header["msg_type"] not in ("apply_request", "execute_request"):
            return f"it is a {header['msg_type']}, not a task"
        if _shared_memory(rec.get("metadata")):
            return "its arguments travelled through shared memory, so the hub holds no copy of them"
        if header["msg_type"] == "apply_request" and not rec.get("buffers"):
            return "the hub no longer holds its arguments (DictDB dropped the buffers to stay under size_limit)"
        return None
