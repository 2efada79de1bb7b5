"""What a client asks the hub about task records: ``db_query``, ``hub_history``,
``result_status``, ``get_result``, ``resubmit`` and the ``purge_*`` family.

:class:`HubQueries` is a mixin of :class:`~.client.Client`; it uses the client's
``_hub_request``, ``history``, ``results``, ``metadata``, ``outstanding``, ``_dispatcher``
and ``_loop``.  The reply formats are those of :mod:`kernelpar.controller.queries`.

``get_result`` and ``resubmit`` return an :class:`~.hubresult.AsyncHubResult` for tasks
this client does not have in flight; :mod:`.hubrecords` decodes what the hub sends.
"""

import numbers
import types
from collections.abc import Iterable

from .asyncresult import AsyncResult, composite
from .futures import Metadata
from .history import IdHistory
from .hubrecords import decode_records, fill_metadata, jsonable, result_value, split_result_buffers
from .hubresult import AsyncHubResult, RelayFuture, resolved_future


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
                    children.append(RelayFuture(fut))
                elif job in self.results:
                    md = self.metadata.get(job)
                    children.append(resolved_future(job, self.results[job], md if isinstance(md, Metadata)
                                              else Metadata(msg_id=job)))
                else:
                    children.append(job)
                    remote = True
            elif isinstance(job, AsyncResult):
                if single and not job._single_result:
                    single = False
                children.extend(RelayFuture(c) for c in job._children)
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
