"""What a client asks the hub about task records: ``db_query``, ``hub_history``,
``result_status``, ``get_result``, ``resubmit`` and the ``purge_*`` family.

:class:`HubQueries` is a mixin of :class:`~.client.Client`; it uses the client's
``_hub_request``, ``history``, ``results``, ``metadata``, ``outstanding``, ``_dispatcher``
and ``_loop``.  The reply formats are those of :mod:`kernelpar.controller.queries`.

:class:`AsyncHubResult` is an :class:`~.asyncresult.AsyncResult` whose children are
resolved from the hub's records instead of from replies: the first ``result_request`` is
sent when it is made (so it knows at once what the hub knows, e.g. the submission time),
then the client's IO thread polls for the tasks still pending, every 0.1 s at first and
less often (up to once a second) while they stay pending; ``wait()`` and ``get()`` bring
the pace back to 0.1 s.  Each result is fetched once.  Tasks this client still has in
flight are followed through their own futures, not polled.  Closing the client, or a
controller that shuts down, fails what is still pending (nothing waits forever).

The decoding helpers (:func:`decode_records`, :func:`split_result_buffers`,
:func:`fill_metadata`, :func:`result_value`, :func:`parse_date`) are pure functions.
"""

import numbers
import re
import types
from collections.abc import Iterable
from datetime import datetime, timezone

from .. import errors
from ..wire.serialize import deserialize_object
from ..wire.session import utcnow
from .asyncresult import AsyncResult, composite
from .executereply import ExecuteReply
from .futures import MessageFuture, Metadata
from .history import IdHistory

__all__ = [
    "AsyncHubResult", "HubQueries", "decode_records", "fill_metadata", "jsonable", "parse_date",
    "result_value", "split_result_buffers",
]

#: first and longest interval between two polls of a pending AsyncHubResult (seconds)
POLL_INTERVAL = 0.1
POLL_MAX_INTERVAL = 1.0
POLL_BACKOFF = 1.5

_DATE_KEYS = ("submitted", "started", "completed", "received")
_HEADER_KEYS = ("header", "result_header")
#: the metadata key under which shared-memory buffers are listed (kernelpar.wire.shm)
_SHM_KEY = "shm"


# -- decoding (pure) -------------------------------------------------------------------

_ISO = re.compile(
    r"(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(?::\d{2})?)(?:[.,](\d+))?\s*(Z|[+-]\d{2}(?::?\d{2})?)?\Z", re.IGNORECASE)


def parse_date(value):
    """An ISO-8601 date string as a tz-aware datetime (naive ones are UTC).

    None and datetimes pass through; a string that is not a date is returned as it is
    (a record may hold anything a peer wrote).
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)
    if not isinstance(value, str):
        return value
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:  # Python 3.10: no 'Z', no 1-5 digit fractions
        m = _ISO.match(value.strip())
        if m is None:
            return value
        day, hms, frac, tz = m.groups()
        if len(hms) == 5:
            hms += ":00"
        tz = "+00:00" if tz is None or tz.upper() == "Z" else tz
        if len(tz) == 3:
            tz += ":00"
        elif ":" not in tz:
            tz = f"{tz[:3]}:{tz[3:]}"
        try:
            dt = datetime.fromisoformat(f"{day}T{hms}.{(frac or '0')[:6].ljust(6, '0')}{tz}")
        except ValueError:
            return value
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=timezone.utc)


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
        if _dict(entry.get("result_metadata")).get(_SHM_KEY):
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

class _HubChild(MessageFuture):
    """One task of an AsyncHubResult, resolved from the hub's record of it."""

    def __init__(self, msg_id, metadata):
        MessageFuture.__init__(self, msg_id, "apply", "apply_request", "hub", None, metadata=metadata)
        self.sent = True


class _Relay(MessageFuture):
    """A stand-in for a future another AsyncResult owns: resolved when it is.

    A :class:`MessageFuture` tells only one parent (``link``), so a second AsyncResult
    over the same request follows it through ``add_done_callback`` instead.
    """

    def __init__(self, source):
        MessageFuture.__init__(self, source.msg_id, source.kind, source.msg_type, source.channel, None,
                               source.engine_id, source.engine_uuid, source.metadata, source.track)
        self._source = source
        source.add_done_callback(self._relay)

    def _relay(self, source):
        exc = source.exception()
        if exc is None:
            self.finish(True, source.result())
        else:
            self.finish(False, exc)

    # follow the source's send state (set by the IO thread after this object was made)
    sent = property(lambda self: getattr(self, "_source", None) is None or self._source.sent,
                    lambda self, value: None)
    tracker = property(lambda self: getattr(self._source, "tracker", None) if hasattr(self, "_source") else None,
                       lambda self, value: None)


def _resolved(msg_id, value, metadata):
    fut = MessageFuture(msg_id, "apply", "apply_request", "hub", None, metadata=metadata)
    fut.sent = True
    fut.finish(not isinstance(value, BaseException), value)
    return fut


class AsyncHubResult(AsyncResult):
    """Results of tasks this client did not submit (or no longer holds), from the hub.

    ``jobs`` is a msg_id, a :class:`MessageFuture`, or a list of them (a list gives a
    list of results; futures are tasks still in flight here).
    """

    def __init__(self, client, jobs, fname="unknown", owner=True, return_exceptions=False):
        single = not isinstance(jobs, (list, tuple))
        items = [jobs] if single else list(jobs)
        children, remote, mds = [], {}, {}
        for item in items:
            if isinstance(item, MessageFuture):
                children.append(item)
            elif isinstance(item, str):
                md = mds.get(item)
                if md is None:
                    md = client.metadata.get(item)
                    if not isinstance(md, Metadata):
                        md = Metadata(msg_id=item)
                    mds[item] = md
                child = _HubChild(item, md)
                remote.setdefault(item, []).append(child)
                children.append(child)
            else:
                raise TypeError(f"AsyncHubResult jobs are msg_ids or MessageFutures, not {item!r}")
        self._remote = remote
        self._interval = POLL_INTERVAL
        self._watch = None
        AsyncResult.__init__(self, client, children[0] if single else children, fname=fname, owner=owner,
                             return_exceptions=return_exceptions)
        if remote:
            self._first_poll()

    # -- polling --------------------------------------------------------------------------

    def _pending_ids(self):
        return [m for m, children in self._remote.items() if any(not c.done() for c in children)]

    def _first_poll(self):
        client = self._client
        if client._closed:
            self._fail_remaining(errors.KernelError("The client is closed: results cannot be fetched from the hub"))
            return
        if client._loop.in_io_thread():  # made in a done-callback: the IO thread cannot wait for itself
            self._arm()
            return
        try:
            content, buffers = client._hub_request(
                "result_request", {"msg_ids": self._pending_ids(), "status_only": False}, with_buffers=True)
        except errors.TimeoutError:
            content = None  # a slow hub: keep polling
        except Exception as e:
            self._fail_remaining(e)
            return
        if content is not None:
            self._absorb(content, buffers)
        if self._pending_ids():
            try:
                client._loop.submit(self._arm)
            except RuntimeError as e:  # closed meanwhile
                self._fail_remaining(errors.KernelError(str(e)))

    def _arm(self):
        """Start polling (IO thread)."""
        if not self._pending_ids():
            return
        dispatcher = self._client._dispatcher
        if self._watch is None:
            # on close, the dispatcher fails every future it holds: this one tells us
            watch = MessageFuture(f"hub-result-watch-{id(self):x}", "hub", "result_watch", "registration", None)
            watch.add_done_callback(self._on_watch)
            dispatcher.register(watch)
            self._watch = watch
        self._client._loop.call_later(self._interval, self._poll)

    def _poll(self):
        """Ask the hub about the tasks still pending (IO thread)."""
        pending = self._pending_ids()
        if not pending:
            self._disarm()
            return
        client = self._client
        dispatcher = client._dispatcher
        if dispatcher.hub_stopped:
            self._fail_remaining(errors.KernelError("The controller has shut down: these results cannot be fetched"))
            return
        fut = dispatcher.hub_future("result_request", {"msg_ids": pending, "status_only": False})
        fut.add_done_callback(self._on_reply)
        dispatcher.register(fut)
        dispatcher.send_request(fut, client.timeout)

    def _on_reply(self, fut):
        """A poll's reply (IO thread)."""
        exc = fut.exception()
        if exc is not None:
            if isinstance(exc, errors.TimeoutError) and not self._client._closed:
                self._client._loop.call_later(self._interval, self._poll)  # hub busy: try again
            else:
                self._fail_remaining(exc)
            return
        content = fut.result()
        if content.get("status") != "ok":
            if content.get("ename"):
                self._fail_remaining(errors.unwrap_exception(content))
            else:
                self._fail_remaining(errors.KernelError(f"hub result_request failed: {content.get('reason', content)}"))
            return
        self._absorb(content, list(fut.buffers))
        if self._pending_ids():
            self._interval = min(self._interval * POLL_BACKOFF, POLL_MAX_INTERVAL)
            self._client._loop.call_later(self._interval, self._poll)
        else:
            self._disarm()

    def _on_watch(self, watch):
        exc = watch.exception()
        self._fail_remaining(exc if exc is not None else errors.KernelError("The client was closed"))

    def _disarm(self):
        """Stop watching for the client's close (IO thread)."""
        watch, self._watch = self._watch, None
        if watch is not None:
            self._client._dispatcher.futures.pop(watch.msg_id, None)

    def _absorb(self, content, buffers):
        """Resolve the children the reply has results for; note what it says of the others."""
        client = self._client
        engines = client._dispatcher.engines
        by_uuid = {uuid: eid for eid, uuid in engines.items()}
        try:
            per_task = split_result_buffers(content, buffers)
        except ValueError as e:
            self._fail_remaining(errors.KernelError(f"malformed result_reply from the hub: {e}"))
            return
        for msg_id in content.get("pending") or ():
            entry = content.get(msg_id)
            children = self._remote.get(msg_id)
            if isinstance(entry, dict) and children:
                fill_metadata(children[0].metadata, entry, by_uuid.get, completed=False)
        for msg_id in content.get("completed") or ():
            entry = content.get(msg_id)
            children = [c for c in self._remote.get(msg_id, ()) if not c.done()]
            if not isinstance(entry, dict) or not children:
                continue
            md = fill_metadata(children[0].metadata, entry, by_uuid.get)
            ok, value = result_value(msg_id, entry, per_task.get(msg_id, []), md)
            # kept like a reply's until the owner resolves (so get_result finds it locally)
            client.results[msg_id] = value
            client.metadata[msg_id] = md
            for child in children:
                child.finish(ok, value)

    def _fail_remaining(self, exc):
        for children in self._remote.values():
            for child in children:
                if not child.done():
                    child.finish(False, exc)
        if self._watch is not None:
            loop = self._client._loop
            if loop.in_io_thread():
                self._disarm()
            else:
                try:
                    loop.submit(self._disarm)
                except RuntimeError:
                    pass

    # -- waiting ---------------------------------------------------------------------------

    def wait(self, timeout=-1):
        if not self.done():
            self._interval = POLL_INTERVAL  # someone is waiting: poll at full pace again
        return AsyncResult.wait(self, timeout)


# -- the Client mixin ------------------------------------------------------------------------

def _is_index(job):
    return isinstance(job, numbers.Integral) and not isinstance(job, bool)


def _job_list(jobs):
    """``(jobs as a list, single)``: one msg_id / index / AsyncResult is a list of one."""
    if isinstance(jobs, (str, AsyncResult)) or _is_index(jobs):
        return [jobs], True
    if isinstance(jobs, (list, tuple, set, frozenset, range, types.GeneratorType)) or (
            isinstance(jobs, Iterable) and not isinstance(jobs, (bytes, dict))):
        return list(jobs), False
    return [jobs], True


class HubQueries:
    """Client methods that ask the hub about task records (see the module docstring)."""

    # -- jobs -> msg_ids ------------------------------------------------------------------

    def _msg_ids_from_jobs(self, jobs):
        """msg_ids from a msg_id, history index, AsyncResult, or a list of them."""
        msg_ids = []
        for job in _job_list(jobs)[0]:
            if _is_index(job):
                msg_ids.append(self.history[int(job)])
            elif isinstance(job, str):
                msg_ids.append(job)
            elif isinstance(job, AsyncResult):
                msg_ids.extend(job.msg_ids)
            else:
                raise TypeError(f"Expected msg_id, int, or AsyncResult, got {job!r}")
        return msg_ids

    def _msg_ids_from_target(self, targets=None):
        """msg_ids of this client's known tasks that ran on ``targets``."""
        if not _given(targets):
            return []
        uuids = {uuid for _, uuid in self._resolve_targets(targets)[0]}
        return [msg_id for msg_id, md in list(self.metadata.items()) if md.get("engine_uuid") in uuids]

    def _engine_id_of(self, uuid):
        for eid, u in self._dispatcher.engines.items():
            if u == uuid:
                return eid
        return None

    # -- queries ----------------------------------------------------------------------------

    def db_query(self, query, keys=None):
        """Records of the hub's task database matching ``query`` (see the docs of §13).

        ``keys`` limits each record to those keys (``msg_id`` is always there); by default
        every key but ``buffers`` and ``result_buffers``.  Dates are tz-aware datetimes;
        asked-for buffers are bytes (or memoryviews of large frames).
        """
        if isinstance(keys, str):
            keys = [keys]
        elif keys is not None:
            keys = list(keys)
        content, buffers = self._hub_request("db_request", {"query": jsonable(query or {}), "keys": keys},
                                             with_buffers=True)
        return decode_records(content, buffers)

    def hub_history(self):
        """Every msg_id the hub has a record of, oldest submission first."""
        return list(self._hub_request("history_request", {}).get("history") or [])

    def result_status(self, msg_ids, status_only=True):
        """``{'pending': [...], 'completed': [...]}`` for tasks (msg_ids, indices, AsyncResults).

        With ``status_only=False`` also ``msg_id: result`` for each completed task; a
        failed task raises (one failure: its own exception, several: CompositeError).
        """
        theids = self._msg_ids_from_jobs(msg_ids)
        local, remote = {}, []
        for msg_id in dict.fromkeys(theids):
            if msg_id in self.results:
                local[msg_id] = self.results[msg_id]
            else:
                remote.append(msg_id)
        if remote:
            content, buffers = self._hub_request("result_request", {"msg_ids": remote, "status_only": status_only},
                                                 with_buffers=True)
        else:
            content, buffers = {"status": "ok", "pending": [], "completed": []}, []
        out = {"status": content.get("status", "ok"), "pending": list(content.get("pending") or []),
               "completed": list(content.get("completed") or [])}
        out["completed"].extend(local)
        if status_only:
            return out
        per_task = split_result_buffers(content, buffers)
        by_uuid = {uuid: eid for eid, uuid in self._dispatcher.engines.items()}
        failures = []
        for msg_id in content.get("completed") or ():
            entry = content.get(msg_id)
            if not isinstance(entry, dict):
                continue
            md = self.metadata.get(msg_id)
            if not isinstance(md, Metadata):
                md = Metadata(msg_id=msg_id)
            fill_metadata(md, entry, by_uuid.get)
            ok, value = result_value(msg_id, entry, per_task.get(msg_id, []), md)
            self.results[msg_id] = value
            self.metadata[msg_id] = md
            out[msg_id] = value
            if not ok:
                failures.append(value)
        for msg_id, value in local.items():
            out[msg_id] = value
            if isinstance(value, BaseException):
                failures.append(value)
        if failures:
            if len(theids) == 1:
                raise failures[0]
            raise composite("result_status", failures)
        return out

    # -- results ------------------------------------------------------------------------------

    def get_result(self, indices_or_msg_ids=None, block=None, owner=True):
        """An AsyncResult for earlier tasks: by history index, msg_id or AsyncResult (or a list).

        Tasks this client has in flight or still holds give a plain ``AsyncResult``; any
        other task is fetched from the hub: ``AsyncHubResult``.  Default: the last task
        submitted.  ``block=True`` waits for the results.
        """
        block = self.block if block is None else block
        if indices_or_msg_ids is None:
            indices_or_msg_ids = -1
        jobs, single = _job_list(indices_or_msg_ids)
        children, remote = [], False
        for job in jobs:
            if _is_index(job):
                job = self.history[int(job)]
            if isinstance(job, str):
                fut = self._dispatcher.futures.get(job)
                if fut is not None and fut.kind in ("apply", "execute"):
                    children.append(_Relay(fut))
                elif job in self.results:
                    md = self.metadata.get(job)
                    children.append(_resolved(job, self.results[job], md if isinstance(md, Metadata)
                                              else Metadata(msg_id=job)))
                else:
                    children.append(job)
                    remote = True
            elif isinstance(job, AsyncResult):
                if single and not job._single_result:
                    single = False
                children.extend(_Relay(c) for c in job._children)
            else:
                raise TypeError(f"Expected msg_id, int, or AsyncResult, got {job!r}")
        if not children:
            raise ValueError("get_result() needs at least one task")
        shape = children[0] if single and len(children) == 1 else children
        if remote:
            ar = AsyncHubResult(self, shape, owner=owner)
        else:
            ar = AsyncResult(self, shape, owner=owner)
        if block:
            ar.wait()
        return ar

    def resubmit(self, indices_or_msg_ids=None, metadata=None, block=None):
        """Run finished (or in-flight) tasks again through the task scheduler.

        Returns an ``AsyncHubResult`` of the new tasks (a list of results, one per task).
        ``metadata`` is accepted for compatibility and ignored, as in ipyparallel.
        """
        block = self.block if block is None else block
        if indices_or_msg_ids is None:
            indices_or_msg_ids = -1
        theids = self._msg_ids_from_jobs(indices_or_msg_ids)
        content = self._hub_request("resubmit_request", {"msg_ids": theids})
        mapping = content.get("resubmitted") or {}
        new_ids = [mapping[m] for m in theids]
        ar = AsyncHubResult(self, new_ids)
        if block:
            ar.wait()
        return ar

    # -- purging --------------------------------------------------------------------------------

    def purge_local_results(self, jobs=None, targets=None):
        """Forget results and metadata this client keeps: by jobs, by engines, or ``'all'``.

        Raises ValueError without jobs or targets, RuntimeError for tasks still outstanding.
        """
        jobs = [] if jobs is None else jobs
        if not _given(targets) and not _given(jobs):
            raise ValueError("Must specify at least one of `targets` and `jobs`")
        if _is_all(jobs):
            if self.outstanding:
                raise RuntimeError(f"Can't purge outstanding tasks: {sorted(self.outstanding)}")
            self.results.clear()
            self.metadata.clear()
            return
        msg_ids = set(self._msg_ids_from_target(targets))
        msg_ids.update(self._msg_ids_from_jobs(jobs))
        still_outstanding = self.outstanding.intersection(msg_ids)
        if still_outstanding:
            raise RuntimeError(f"Can't purge outstanding tasks: {sorted(still_outstanding)}")
        for msg_id in msg_ids:
            self.results.pop(msg_id, None)
            self.metadata.pop(msg_id, None)

    def purge_hub_results(self, jobs=None, targets=None):
        """Make the hub forget task records: by jobs, by engines (completed tasks), or ``'all'``.

        ``'all'`` drops every completed record.  Purging a task still pending raises a
        RemoteError (``IndexError``).
        """
        jobs = [] if jobs is None else jobs
        if not _given(targets) and not _given(jobs):
            raise ValueError("Must specify at least one of `targets` and `jobs`")
        engine_ids = [eid for eid, _ in self._resolve_targets(targets)[0]] if _given(targets) else []
        msg_ids = "all" if _is_all(jobs) else self._msg_ids_from_jobs(jobs)
        self._hub_request("purge_request", {"engine_ids": engine_ids, "msg_ids": msg_ids})

    def purge_results(self, jobs=None, targets=None):
        """:meth:`purge_local_results` then :meth:`purge_hub_results`, with the same arguments."""
        self.purge_local_results(jobs=jobs, targets=targets)
        self.purge_hub_results(jobs=jobs, targets=targets)

    def purge_everything(self):
        """``purge_results('all')``, and forget this client's ``history`` too."""
        self.purge_results("all")
        self._clear_history()
        digests = getattr(self.session, "digest_history", None)
        if digests is not None:
            digests.clear()

    def _clear_history(self):
        # IdHistory is append-only: start a new one (under the lock submissions append with)
        with self._submit_lock:
            self.history = IdHistory(self._task_prefix)


def _is_all(jobs):
    return isinstance(jobs, str) and jobs == "all"


def _given(jobs):
    """Whether a jobs/targets argument names anything (0 is engine 0 / history index 0)."""
    if jobs is None:
        return False
    if isinstance(jobs, (str, AsyncResult)) or _is_index(jobs):
        return True
    try:
        return len(jobs) > 0
    except TypeError:
        return True
