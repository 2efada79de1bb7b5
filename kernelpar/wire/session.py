"""Message framing and signing: the Jupyter wire format, with HMAC-SHA256.

A message on a zmq socket is the multipart frame list::

    [routing ids ..., b"<IDS|MSG>", signature, header, parent_header, metadata, content, *buffers]

The four dicts are compact JSON; ``signature`` is the hex HMAC-SHA256 of those four
frames under the cluster key.  Buffers (pickled data, out-of-band array memory) follow
unsigned, as in Jupyter: they are bound to the message by the signed header's msg_id
and the buffer count the signed metadata carries would be the next step if needed.

This module does no I/O.  ``Session.serialize`` turns a message into frames,
``Session.deserialize`` turns frames back into a :class:`Message` or raises
:class:`MessageError`, which callers log and drop: a bad frame never propagates into a
reactor or an IO thread.
"""

import hashlib
import hmac
import json
import os
import re
import uuid
from datetime import datetime, timezone
from itertools import count
from operator import itemgetter

import orjson
import zmq

DELIM = b"<IDS|MSG>"
PROTOCOL_VERSION = "5.3"
#: how :class:`Session` signs, as connection files name it (the only scheme it knows)
SIGNATURE_SCHEME = "hmac-sha256"

# orjson: 5-10x faster than the json module both ways, on every message of every
# endpoint; the json module remains for what orjson refuses (ints beyond 64 bits)
_json_encoder = json.JSONEncoder(separators=(",", ":"), default=str, ensure_ascii=False)
_ORJSON_OPTIONS = orjson.OPT_NON_STR_KEYS


class MessageError(ValueError):
    """A multipart message that cannot be accepted: bad framing, JSON or signature."""


def utcnow():
    return datetime.now(timezone.utc)


def isoformat(dt=None):
    return (dt or utcnow()).isoformat()


_ISO = re.compile(
    r"(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2})(:\d{2})?(?:[.,](\d+))?)?\s*(Z|[+-]\d{2}(?::?\d{2})?)?\Z",
    re.IGNORECASE,
)


def parse_iso(value):
    """An ISO-8601 string as a tz-aware datetime (UTC when it has no offset).

    Python 3.10's ``fromisoformat`` is stricter than ISO (no ``Z``, fractions of 3 or 6
    digits only): what it refuses is rebuilt in the form it accepts.  Raises ValueError
    for a string that is not a date.
    """
    text = value.strip()
    try:
        dt = datetime.fromisoformat(text[:-1] + "+00:00" if text[-1:] in ("Z", "z") else text)
    except ValueError:
        m = _ISO.match(text)
        if m is None:
            raise ValueError(f"not an ISO-8601 date: {value!r}") from None
        day, hm, sec, frac, tz = m.groups()
        tz = "+00:00" if tz is None or tz.upper() == "Z" else (tz if len(tz) != 5 else f"{tz[:3]}:{tz[3:]}")
        tz = tz if len(tz) != 3 else tz + ":00"
        try:
            dt = datetime.fromisoformat(f"{day}T{hm or '00:00'}{sec or ':00'}.{(frac or '0')[:6].ljust(6, '0')}{tz}")
        except ValueError:
            raise ValueError(f"not an ISO-8601 date: {value!r}") from None
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=timezone.utc)


def parse_date(value):
    """Parse an ISO date string from a header into a tz-aware datetime (None passes)."""
    if value is None or isinstance(value, datetime):
        return value
    return parse_iso(value)


def pack(obj):
    try:
        return orjson.dumps(obj, default=str, option=_ORJSON_OPTIONS)
    except TypeError:
        return _json_encoder.encode(obj).encode("utf-8")


def unpack(data):
    return orjson.loads(data)


def new_id():
    return uuid.uuid4().hex


class Message(dict):
    """A received message: a dict with attribute access to its parts.

    Keys: ``idents`` (routing frames), ``header``, ``parent_header``, ``metadata``,
    ``content``, ``buffers`` (zmq frames or bytes), ``msg_id``, ``msg_type``.
    """

    # Properties, not ``__getattr__``: Python looks ``__getattr__`` up only after the
    # normal lookup has failed, which builds an AttributeError (with its formatted
    # message) for every access; the messages of every endpoint go through here.
    idents = property(itemgetter("idents"))
    header = property(itemgetter("header"))
    parent_header = property(itemgetter("parent_header"))
    metadata = property(itemgetter("metadata"))
    content = property(itemgetter("content"))
    buffers = property(itemgetter("buffers"))
    msg_id = property(itemgetter("msg_id"))
    msg_type = property(itemgetter("msg_type"))


class Session:
    """Builds, signs, checks and parses messages for one endpoint.

    ``session`` is this endpoint's id (a client's uuid, an engine's uuid); ``key`` is the
    cluster's HMAC key as bytes.  An empty key disables signing (and then only unsigned
    messages are accepted), which exists for tests of the signature check itself.
    """

    def __init__(self, key, session=None, username=None):
        if isinstance(key, str):
            key = key.encode("ascii")
        self.key = key
        self.session = session or new_id()
        self.username = username or os.environ.get("USER", "kernelpar")
        self._hmac = hmac.new(key, digestmod=hashlib.sha256) if key else None
        self._ids = count()
        self._id_prefix = f"{self.session[:8]}-{os.getpid()}-"

    def msg_id(self):
        return f"{self._id_prefix}{next(self._ids)}"

    def header(self, msg_type, msg_id=None):
        return {
            "msg_id": msg_id or self.msg_id(),
            "msg_type": msg_type,
            "session": self.session,
            "username": self.username,
            "date": isoformat(),
            "version": PROTOCOL_VERSION,
        }

    def sign(self, parts):
        if self._hmac is None:
            return b""
        h = self._hmac.copy()
        for p in parts:
            h.update(p)
        return h.hexdigest().encode("ascii")

    def serialize(self, msg_type, content=None, parent=None, metadata=None, buffers=(), idents=(), header=None):
        """Return ``(frames, header)`` for a new message.

        ``parent`` is the parent message's header dict (or None).  ``buffers`` are sent
        as they are: bytes, memoryviews, pickle buffers or zmq frames.
        """
        header = header or self.header(msg_type)
        parts = [pack(header), pack(parent or {}), pack(metadata or {}), pack(content or {})]
        return self.frames_of(parts, buffers, idents), header

    def frames_of(self, parts, buffers=(), idents=()):
        """Sign the four JSON ``parts`` (header, parent, metadata, content) into frames."""
        frames = list(idents)
        frames.append(DELIM)
        frames.append(self.sign(parts))
        frames.extend(parts)
        frames.extend(buffers)
        return frames

    def deserialize(self, frames, lazy=False):
        """Parse a full frame list (routing ids first) into a :class:`Message`.

        With ``lazy``, only the headers are decoded; ``metadata`` and ``content`` stay
        JSON bytes for the caller to :func:`unpack` if it ever needs them (the hub's
        copies of routed messages, most of which are never looked at).  Raises
        :class:`MessageError` for a missing delimiter, a bad signature, too few frames
        or undecodable JSON.
        """
        idx = _delim_index(frames)
        if idx < 0:
            raise MessageError("no <IDS|MSG> delimiter in message")
        if len(frames) < idx + 6:
            raise MessageError(f"message has {len(frames) - idx - 1} frames after the delimiter, expected at least 5")
        signature = as_bytes(frames[idx + 1])
        parts = [as_bytes(p) for p in frames[idx + 2 : idx + 6]]
        if self._hmac is not None:
            if not signature:
                raise MessageError("unsigned message")
            if not hmac.compare_digest(signature, self.sign(parts)):
                raise MessageError("invalid HMAC signature")
        try:
            header = unpack(parts[0])
            msg = Message(
                idents=[as_bytes(f) for f in frames[:idx]],
                header=header,
                parent_header=unpack(parts[1]),
                metadata=parts[2] if lazy else unpack(parts[2]),
                content=parts[3] if lazy else unpack(parts[3]),
                buffers=list(frames[idx + 6 :]),
                msg_id=header["msg_id"],
                msg_type=header["msg_type"],
            )
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
            raise MessageError(f"undecodable message: {e}") from None
        if not isinstance(header, dict) or not isinstance(msg["parent_header"], dict) or not (
            lazy or isinstance(msg["content"], dict)
        ):
            raise MessageError("message header and content must be JSON objects")
        parent_id = msg["parent_header"].get("msg_id")
        if not isinstance(msg.msg_id, str) or not isinstance(msg.msg_type, str) or not (
            parent_id is None or isinstance(parent_id, str)
        ):
            raise MessageError("message msg_id, msg_type and parent msg_id must be strings")
        return msg

    def deserialize_or_drop(self, frames, where, logger, lazy=False):
        """:meth:`deserialize`, or None after logging to ``logger`` why the message was dropped."""
        try:
            return self.deserialize(frames, lazy=lazy)
        except MessageError as e:
            logger.warning("dropped a message on %s: %s", where, e)
            return None


def as_bytes(frame):
    """The bytes of a zmq frame (``copy=False`` receive) or of any bytes-like object."""
    if type(frame) is bytes:
        return frame
    return frame.bytes if isinstance(frame, zmq.Frame) else bytes(frame)


_DELIM_LEN = len(DELIM)


def _delim_index(frames):
    for i, f in enumerate(frames):
        if len(f) == _DELIM_LEN and as_bytes(f) == DELIM:
            return i
    return -1
