"""Task records as the hub sends them, turned back into Python (pure functions).

:func:`decode_records` rebuilds ``db_query`` results (dates as datetimes, buffers
re-attached); :func:`split_result_buffers`, :func:`fill_metadata` and
:func:`result_value` turn a ``result_reply`` entry into a task's metadata and value.
The reply formats are those of :mod:`kernelpar.controller.queries`.
"""

from datetime import datetime, timezone

from .. import errors
from ..wire import shm
from ..wire.serialize import deserialize_object
from ..wire.session import parse_iso, utcnow
from .executereply import ExecuteReply

_DATE_KEYS = ("submitted", "started", "completed", "received")
_HEADER_KEYS = ("header", "result_header")


# -- decoding (pure) -------------------------------------------------------------------

def parse_date(value):
    """An ISO-8601 date string as a tz-aware datetime (naive ones are UTC).

    None and datetimes pass through; a string that is not a date is returned as it is
    (a record may hold anything a peer wrote).
    """
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
    if not isinstance(value, str):
        return value
    try:
        return parse_iso(value)
    except ValueError:
        return value


def _header_dates(header):
    if isinstance(header, dict) and "date" in header:
        header = dict(header, date=parse_date(header["date"]))
    return header


def as_buffer(frame):
    """A received buffer frame as bytes (small frames) or a memoryview (zero-copy frames)."""
    if isinstance(frame, (bytes, memoryview)):
        return frame
    buffer = getattr(frame, "buffer", None)  # zmq.Frame
    if isinstance(buffer, memoryview):
        return buffer
    return memoryview(frame)


def decode_records(content, buffers):
    """The records of a ``db_reply``: dates as datetimes, buffers re-attached.

    ``buffers`` are the reply's frames, record by record: its ``buffer_lens[i]`` request
    buffers, then its ``result_buffer_lens[i]`` result buffers.  Raises ValueError if the
    frames do not add up (a reply that lost or gained frames).
    """
    records = list(content.get("records") or [])
    buffer_lens = content.get("buffer_lens")
    result_buffer_lens = content.get("result_buffer_lens")
    for lens in (buffer_lens, result_buffer_lens):
        if lens is not None and len(lens) != len(records):
            raise ValueError(f"db_reply lists buffer counts for {len(lens)} records, but has {len(records)} records")
    expected = sum(buffer_lens or ()) + sum(result_buffer_lens or ())
    if expected != len(buffers):
        raise ValueError(f"db_reply announces {expected} buffers but carries {len(buffers)}")
    pos = 0
    out = []
    for i, rec in enumerate(records):
        rec = dict(rec)
        for key in _HEADER_KEYS:
            if key in rec:
                rec[key] = _header_dates(rec[key])
        for key in _DATE_KEYS:
            if key in rec:
                rec[key] = parse_date(rec[key])
        for key, lens in (("buffers", buffer_lens), ("result_buffers", result_buffer_lens)):
            if lens is not None:
                n = lens[i]
                rec[key] = [as_buffer(b) for b in buffers[pos:pos + n]]
                pos += n
        out.append(rec)
    return out


def split_result_buffers(content, buffers):
    """``{msg_id: [buffers]}`` for the completed entries of a ``result_reply``.

    The frames follow the ``completed`` order, ``result_buffer_count`` of them per entry.
    A reply without counts (an ipyparallel hub) can only be split when one task has
    buffers.  Raises ValueError if the counts and the frames disagree.
    """
    completed = [m for m in content.get("completed") or [] if isinstance(content.get(m), dict)]
    counts = [content[m].get("result_buffer_count") for m in completed]
    if any(c is None for c in counts):
        if len(completed) == 1:
            return {completed[0]: [as_buffer(b) for b in buffers]}
        if buffers:
            raise ValueError("result_reply without result_buffer_count: its buffers cannot be told apart")
        return {m: [] for m in completed}
    if sum(counts) != len(buffers):
        raise ValueError(f"result_reply announces {sum(counts)} buffers but carries {len(buffers)}")
    out, pos = {}, 0
    for msg_id, n in zip(completed, counts):
        out[msg_id] = [as_buffer(b) for b in buffers[pos:pos + n]]
        pos += n
    return out


def _dict(value):
    return value if isinstance(value, dict) else {}


def _dependency_ids(dep):
    if isinstance(dep, dict):
        dep = dep.get("dependencies")
    if isinstance(dep, (list, tuple)):
        return list(dep)
    return []


def fill_metadata(md, entry, engine_id_of=None, completed=True):
    """Fill ``md`` (a :class:`Metadata`) from one ``result_reply`` entry.

    ``engine_id_of(uuid)`` finds an engine id when the record does not carry it.  For a
    pending entry (``completed=False``) only what is known before a reply is filled.
    """
    header = _dict(entry.get("header"))
    request_md = _dict(entry.get("metadata"))
    result_md = _dict(entry.get("result_metadata"))
    result_header = _dict(entry.get("result_header"))
    result_content = _dict(entry.get("result_content"))
    engine_uuid = result_md.get("engine_uuid") or entry.get("engine_uuid")
    engine_id = result_md.get("engine_id")
    if engine_id is None and engine_uuid and engine_id_of is not None:
        engine_id = engine_id_of(engine_uuid)
    values = {
        "msg_id": header.get("msg_id") or md.get("msg_id"),
        "submitted": parse_date(header.get("date")) or parse_date(entry.get("submitted")),
        "engine_uuid": engine_uuid,
        "follow": _dependency_ids(request_md.get("follow")),
        "after": _dependency_ids(request_md.get("after")),
    }
    if request_md.get("label") is not None:
        values["label"] = request_md["label"]
    if engine_id is not None:
        values["engine_id"] = engine_id
    if completed:
        done = (parse_date(result_md.get("completed")) or parse_date(result_header.get("date"))
                or parse_date(entry.get("completed")))
        values.update(
            started=parse_date(result_md.get("started")),
            completed=done,
            # when the hub got the reply; else when it was sent (not when *we* fetched it)
            received=parse_date(entry.get("received")) or parse_date(entry.get("completed")) or done or utcnow(),
            status=result_content.get("status") or result_md.get("status"),
        )
        io = _dict(entry.get("io"))
        for key in ("execute_input", "execute_result"):
            if io.get(key) is not None:
                values[key] = io[key]
        for key in ("stdout", "stderr"):
            if io.get(key):
                values[key] = io[key]
        if isinstance(io.get("error"), dict):
            values["error"] = errors.unwrap_exception(io["error"])
    for key, value in values.items():
        if value is not None or md.get(key) is None:
            dict.__setitem__(md, key, value)
    return md


def _reply_type(entry):
    msg_type = _dict(entry.get("result_header")).get("msg_type")
    if msg_type:
        return msg_type
    request = _dict(entry.get("header")).get("msg_type") or "apply_request"
    return request.rsplit("_request", 1)[0] + "_reply"


def result_value(msg_id, entry, buffers, md):
    """``(ok, value)`` of a completed ``result_reply`` entry, as a reply would give it.

    ``md`` is the task's filled :class:`Metadata` (``ExecuteReply`` keeps it); value is
    the deserialized result, an ``ExecuteReply``, or the exception to raise
    (``RemoteError`` and its variants, ``TaskAborted``, a deserialization error).
    """
    content = entry.get("result_content")
    reply_type = _reply_type(entry)
    method = "execute" if reply_type == "execute_reply" else "apply"
    engine_info = {"engine_id": md.get("engine_id"), "engine_uuid": md.get("engine_uuid"), "method": method}
    if not isinstance(content, dict):
        err = errors.KernelError(f"the hub's record of task {msg_id} holds no result")
        err.engine_info = engine_info
        return False, err
    status = content.get("status")
    if status == "ok":
        if reply_type == "execute_reply":
            return True, ExecuteReply(msg_id, content, md)
        if _dict(entry.get("result_metadata")).get(shm.METADATA_KEY):
            err = errors.KernelError(
                f"the result of task {msg_id} went to its client through shared memory, so the hub holds no copy "
                f"of it; only the client that submitted the task received it")
            err.engine_info = engine_info
            return False, err
        try:
            return True, deserialize_object(buffers)
        except Exception as e:
            return False, e
    if status == "aborted":
        err = errors.TaskAborted(f"Task {msg_id} was aborted on engine {md.get('engine_id')}")
        err.engine_info = engine_info
        return False, err
    if not content.get("engine_info"):
        content = dict(content, engine_info=engine_info)
    return False, errors.unwrap_exception(content)


def jsonable(value):
    """A db query with datetimes as ISO strings and sets/tuples as lists (JSON-ready)."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.isoformat()
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in value]
    return value


# -- futures ---------------------------------------------------------------------------------
