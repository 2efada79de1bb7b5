"""One request in flight: its :class:`MessageFuture` and its :class:`Metadata`.

A ``MessageFuture`` is a ``concurrent.futures.Future`` for one message sent to one engine
(or to the hub).  It is created in the caller's thread *before* anything is sent and
resolved by the client's IO thread.  For tasks (``apply``/``execute``) it resolves only
when both the reply and all of the request's output have arrived (the reply's
``metadata.iopub`` says how many iopub messages to expect), or when the output grace
period ran out; so ``ar.get()`` followed by ``ar.stdout`` always sees the whole output.

The owning :class:`~kernelpar.client.asyncresult.AsyncResult` is linked through
``parent`` instead of ``add_done_callback`` so that no reference cycle outlives the
request: the link is cut when the future resolves.
"""

import threading
from concurrent.futures import Future

from ..wire.session import parse_date

METADATA_KEYS = (
    "msg_id", "submitted", "started", "completed", "received", "engine_uuid", "engine_id",
    "follow", "after", "status", "execute_input", "execute_result", "error",
    "stdout", "stderr", "outputs", "data", "label",
)  # fmt: skip

# Guards the hand-over between a future resolving (IO thread) and an AsyncResult
# attaching itself to it (caller's thread): exactly one of them sees the other.
_LINK_LOCK = threading.Lock()


class Metadata(dict):
    """Per-task metadata: a dict with attribute access and a fixed set of keys."""

    def __init__(self, *args, **kwargs):
        dict.__init__(
            self, msg_id=None, submitted=None, started=None, completed=None, received=None,
            engine_uuid=None, engine_id=None, follow=[], after=[], status=None,
            execute_input=None, execute_result=None, error=None, stdout="", stderr="",
            outputs=[], data={}, label=None,
        )  # fmt: skip
        self.update(*args, **kwargs)

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    def __setattr__(self, key, value):
        self[key] = value

    def __setitem__(self, key, value):
        if key not in self:
            raise KeyError(f"{key!r} is not a metadata key (keys: {', '.join(METADATA_KEYS)})")
        dict.__setitem__(self, key, value)


class MessageFuture(Future):
    """The future of one request.  ``kind``: ``apply``, ``execute``, ``control`` or ``hub``."""

    def __init__(self, msg_id, kind, msg_type, channel, frames, engine_id=None, engine_uuid=None, metadata=None,
                 track=False):
        Future.__init__(self)
        self.msg_id = msg_id
        self.kind = kind
        self.msg_type = msg_type
        self.channel = channel
        self.frames = frames  # dropped by the IO thread once sent
        self.engine_id = engine_id
        self.engine_uuid = engine_uuid
        self.metadata = metadata
        self.track = track
        self.tracker = None  # zmq.MessageTracker when sent with track=True
        self.sent = False
        self.parents = []
        #: the reply's buffer frames (hub replies that carry records)
        self.buffers = ()
        # output accounting (IO thread only)
        self.expected_iopub = None
        self.iopub_seen = 0
        self.outcome = None  # (ok, value) held from the reply until the output is complete
        self.grace_timer = None

    def finish(self, ok, value):
        """Resolve, then tell the owning AsyncResult (IO thread, or a closed client's caller)."""
        if self.done():
            return
        if ok:
            self.set_result(value)
        else:
            self.set_exception(value)
        with _LINK_LOCK:
            parents, self.parents = self.parents, []
        for parent in parents:
            parent._child_done(self)

    def cancel(self):
        """A sent message cannot be taken back (use ``abort``); never cancelled."""
        return False

    def link(self, parent):
        """Attach ``parent`` (one of possibly several AsyncResults over this message);
        return False if this future already resolved (no callback will come)."""
        with _LINK_LOCK:
            if self.done():
                return False
            self.parents.append(parent)
            return True

    def __repr__(self):
        state = "done" if self.done() else "pending"
        return f"<MessageFuture {self.msg_type} {self.msg_id} engine={self.engine_id} {state}>"


def apply_reply_metadata(md, reply_metadata, received):
    """Copy an engine reply's metadata (dates parsed) into a task's :class:`Metadata`."""
    dict.update(
        md,
        started=parse_date(reply_metadata.get("started")),
        completed=parse_date(reply_metadata.get("completed")),
        received=received,
        status=reply_metadata.get("status"),
    )
    if reply_metadata.get("engine_id") is not None:
        dict.__setitem__(md, "engine_id", reply_metadata["engine_id"])
    if reply_metadata.get("engine_uuid"):
        dict.__setitem__(md, "engine_uuid", reply_metadata["engine_uuid"])


def apply_iopub(md, msg_type, content, unwrap_error):
    """Record one iopub message in a task's :class:`Metadata`."""
    if msg_type == "stream":
        name = content.get("name", "stdout")
        key = name if name in ("stdout", "stderr") else "stdout"
        dict.__setitem__(md, key, md[key] + content.get("text", ""))
    elif msg_type == "display_data":
        md["outputs"].append(content)
    elif msg_type == "execute_result":
        dict.__setitem__(md, "execute_result", content)
    elif msg_type == "execute_input":
        dict.__setitem__(md, "execute_input", content.get("code"))
    elif msg_type == "error":
        dict.__setitem__(md, "error", unwrap_error(content))
    elif msg_type in ("data_message", "data_pub"):
        md["data"].update(content.get("data") or {})
