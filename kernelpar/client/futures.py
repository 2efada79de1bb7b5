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

import logging
import re
import threading
from concurrent.futures import Future

from ..wire.serialize import deserialize_object
from ..wire.session import parse_date

log = logging.getLogger("kernelpar.client")

METADATA_KEYS = (
    "msg_id", "submitted", "started", "completed", "received", "engine_uuid", "engine_id",
    "follow", "after", "status", "execute_input", "execute_result", "error",
    "stdout", "stderr", "outputs", "data", "label", "is_broadcast", "is_coalescing",
)  # fmt: skip

# Guards the hand-over between a future resolving (IO thread) and an AsyncResult
# attaching itself to it (caller's thread): exactly one of them sees the other.
_LINK_LOCK = threading.Lock()


class Metadata(dict):
    """Per-task metadata: a dict with attribute access and a fixed set of keys."""

    #: (not a key) names of the streams whose last, unfinished line was rewritten with
    #: ``\r``: ``stream_output`` shows such a line in place (the collapsed text no longer
    #: says it was a progress line)
    _rewriting = frozenset()

    def __init__(self, *args, **kwargs):
        dict.__init__(
            self, msg_id=None, submitted=None, started=None, completed=None, received=None,
            engine_uuid=None, engine_id=None, follow=[], after=[], status=None,
            execute_input=None, execute_result=None, error=None, stdout="", stderr="",
            outputs=[], data={}, label=None, is_broadcast=False, is_coalescing=False,
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


#: text up to (and including) the last ``\r`` of a line that is followed by more text on
#: that line: what a terminal no longer shows once the line was rewritten
_CR_OVERWRITTEN = re.compile(r".*\r(?=[^\n])")


def collapse_cr(text):
    """``text`` with each line rewritten by carriage returns reduced to its last version.

    ``"10%\r50%\r100%\n"`` -> ``"100%\n"``.  A ``\r`` that ends the text or a line
    (``\r\n``) stays, so the line it ends is kept until something replaces it.
    """
    if "\r" not in text:
        return text
    return _CR_OVERWRITTEN.sub("", text)


def append_stream(old, new):
    """``old + new`` with ``\r``-rewritten lines collapsed (only the last line of ``old``
    can still change: earlier ones are complete and were collapsed when they arrived)."""
    head = old.rfind("\n") + 1
    tail = old[head:] + new
    if "\r" not in tail:
        return old + new
    return old[:head] + collapse_cr(tail)


def apply_iopub(md, msg_type, content, unwrap_error, buffers=()):
    """Record one iopub message in a task's :class:`Metadata`."""
    if msg_type == "stream":
        name = content.get("name", "stdout")
        key = name if name in ("stdout", "stderr") else "stdout"
        new = content.get("text", "")
        dict.__setitem__(md, key, append_stream(md[key], new))
        rewriting = set(md._rewriting)
        if "\r" in new.rpartition("\n")[2] or (key in rewriting and "\n" not in new):
            rewriting.add(key)
        else:
            rewriting.discard(key)
        object.__setattr__(md, "_rewriting", frozenset(rewriting))
    elif msg_type == "display_data":
        md["outputs"].append(content)
    elif msg_type == "execute_result":
        dict.__setitem__(md, "execute_result", content)
    elif msg_type == "execute_input":
        dict.__setitem__(md, "execute_input", content.get("code"))
    elif msg_type == "error":
        dict.__setitem__(md, "error", unwrap_error(content))
    elif msg_type in ("data_message", "data_pub"):
        if buffers:
            try:
                data = deserialize_object(buffers)
            except Exception:
                log.exception("could not deserialize published data of %s", md["msg_id"])
                return
        else:
            data = content.get("data")
        if isinstance(data, dict):
            md["data"].update(data)
