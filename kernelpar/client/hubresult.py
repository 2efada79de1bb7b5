"""``AsyncHubResult``: an AsyncResult resolved from the hub's task records.

Its children are resolved from the records instead of from replies: the first
``result_request`` is sent when it is made (so it knows at once what the hub knows,
e.g. the submission time), then the client's IO thread polls for the tasks still
pending, every 0.1 s at first and less often (up to once a second) while they stay
pending; ``wait()`` and ``get()`` bring the pace back to 0.1 s.  Each result is fetched
once.  Tasks this client still has in flight are followed through their own futures,
not polled.  Closing the client, or a controller that shuts down, fails what is still
pending (nothing waits forever).
"""


from .. import errors
from .asyncresult import AsyncResult
from .futures import MessageFuture, Metadata
from .hubrecords import fill_metadata, result_value, split_result_buffers

#: first and longest interval between two polls of a pending AsyncHubResult (seconds)
POLL_INTERVAL = 0.1
POLL_MAX_INTERVAL = 1.0
POLL_BACKOFF = 1.5

class _HubChild(MessageFuture):
    """One task of an AsyncHubResult, resolved from the hub's record of it."""

    def __init__(self, msg_id, metadata):
        MessageFuture.__init__(self, msg_id, "apply", "apply_request", "hub", None, metadata=metadata)
        self.sent = True


class RelayFuture(MessageFuture):
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


def resolved_future(msg_id, value, metadata):
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
