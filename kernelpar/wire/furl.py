"""FURLs: the IPython 0.10 connection capabilities, and the handshake that redeems them.

What users see is 0.10's: three one-line files in ``<IPYTHONDIR>/security/`` (mode 0700,
files 0600): ``ipcontroller-mec.furl`` (MultiEngineClient), ``ipcontroller-tc.furl``
(TaskClient) and ``ipcontroller-engine.furl`` (engines), each holding a Foolscap-shaped
FURL::

    pb://<tub id>@<host>:<port>[,<host>:<port>...]/<swiss number>     (secure, the default)
    pbu://<host>:<port>/<name>                                        (ipcontroller -x / -y)

Tub ids and swiss numbers are 160 random bits in lowercase base32 without padding (32
characters of ``a-z2-7``), as in Foolscap.  What stands behind them is kernelpar's own:
the controller listens on one zmq ROUTER port per *tub* (one for clients, holding the
``mec`` and ``tc`` names, one for engines), and a FURL resolves, through one
request/reply, to the same connection dict the JSON files ``ipcontroller-client.json``
and ``ipcontroller-engine.json`` hold, HMAC key included.  Everything after that is the
ordinary kernelpar wire.

Theory of operation
-------------------
A FURL is a capability: whoever holds it may use the cluster, nobody else can learn
anything about it.  The swiss number (``name``) is the secret; it never crosses the wire.

1. The client sends ``[PROTOCOL, {"op": "resolve", "tub_id", "nonce", "proof"}]`` where
   ``nonce`` is 32 fresh random bytes and ``proof = HMAC-SHA256(name, "request" | tub_id
   | nonce)``.  A request carries no name or name hash: the controller tries the few
   names its tub holds (two at most), comparing in constant time.
2. The controller answers a valid request with ``{"status": "ok", "tub_id", "kind",
   "nonce": <its own fresh nonce>, "payload", "mac"}``: ``payload`` is the JSON
   connection dict encrypted with a keystream (HMAC-SHA256 in counter mode) under
   ``k_enc = HMAC(name, "encrypt" | client nonce | server nonce)``, and ``mac`` is
   ``HMAC(k_mac, tub_id | kind | payload)`` with ``k_mac`` derived the same way
   (encrypt-then-MAC, separate keys).  The key inside the payload is what lets a peer
   sign kernelpar messages, so it must not travel in clear.
3. Anything else gets ``{"status": "error", "reason": ...}`` (wrong tub, unknown name,
   bad request), and the controller logs the refusal.  Malformed frames get no answer.

Properties: an eavesdropper learns neither the name nor the connection dict; a replayed
request yields a reply under a fresh server nonce that only a name holder can decrypt;
a fake controller cannot produce a reply that verifies (the client checks ``mac`` before
it trusts anything), so a client never connects to ports a stranger chose.  A refusal
is not authenticated: a stranger who can answer instead of the controller can make a
client fail, never make it connect elsewhere.

What the tub id pins: in 0.10 it was the SHA-1 of the tub's TLS certificate.  Here the
controller is authenticated by the name instead (only the controller and FURL holders
know it), and the tub id *names the tub*: random when the controller makes its FURLs,
kept with ``-r``.  The controller refuses a request for another tub id, and the client
checks the tub id inside the authenticated reply, so a FURL is only ever answered by the
tub that issued it: a stale FURL reaching a new controller on the same port gets "wrong
tub", not a confusing failure later.  ``pbu://`` FURLs (``-x``/``-y``) keep 0.10's
insecure *format* (no tub id) but not its weakness: the name is still required and the
reply still encrypted; only the tub-id check is absent.

This module is pure apart from the small file helpers (:func:`read_furl_file`,
:func:`write_furl_file`, :func:`remove_furl_file`, :func:`legacy_security_dir`); the
sockets live in :mod:`kernelpar.controller.furlservice` (controller) and
:mod:`.furlrequest` (clients and engines).
"""

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
from dataclasses import dataclass

from .connection import ipython_dir

PROTOCOL = b"kernelpar-furl/1"
#: the three FURLs of a controller, and the tub each lives on
KINDS = ("mec", "tc", "engine")
TUB_OF_KIND = {"mec": "client", "tc": "client", "engine": "engine"}
KIND_DESCRIPTIONS = {
    "mec": "the MultiEngineClient interface (ipcontroller-mec.furl)",
    "tc": "the TaskClient interface (ipcontroller-tc.furl)",
    "engine": "the engine interface (ipcontroller-engine.furl)",
}
NOT_A_FURL = "not a furl or a file containing a furl"

_BASE32 = "[a-z2-7]{32}"
_HINT = r"[^,/@:\s]+:\d{1,5}"
_SECURE = re.compile(rf"pb://(?P<tub>{_BASE32})@(?P<hints>{_HINT}(?:,{_HINT})*)/(?P<name>{_BASE32})\Z")
_INSECURE = re.compile(rf"pbu://(?P<hints>{_HINT}(?:,{_HINT})*)/(?P<name>{_BASE32})\Z")
_NONCE_BYTES = 32


class HandshakeError(ValueError):
    """A handshake message that cannot be accepted (bad framing, JSON, fields or MAC)."""


class Refused(Exception):
    """The controller refuses a request; ``str(e)`` is the reason sent back to the client."""


def new_name():
    """A fresh tub id or swiss number: 160 random bits, lowercase base32, no padding."""
    return base64.b32encode(secrets.token_bytes(20)).decode("ascii").lower()


@dataclass(frozen=True)
class Furl:
    """A parsed FURL. ``tub_id`` is None for the insecure ``pbu://`` form."""

    tub_id: str | None
    hints: tuple
    name: str

    @property
    def secure(self):
        return self.tub_id is not None

    def _locations(self):
        return ",".join(f"{host}:{port}" for host, port in self.hints)

    def __str__(self):
        if self.secure:
            return f"pb://{self.tub_id}@{self._locations()}/{self.name}"
        return f"pbu://{self._locations()}/{self.name}"

    def redacted(self):
        """The FURL without its secret, for messages and logs."""
        where = f"{self.tub_id}@{self._locations()}" if self.secure else self._locations()
        return f"{'pb' if self.secure else 'pbu'}://{where}/<swiss number>"


def make_furl(tub_id, hints, name, secure=True):
    hints = tuple((str(host), int(port)) for host, port in hints)
    return Furl(tub_id if secure else None, hints, name)


def looks_like_furl(text):
    return text.startswith(("pb://", "pbu://"))


def parse_furl(text):
    """Parse a FURL string; ValueError saying what is wrong with it."""
    text = text.strip()
    match = _SECURE.match(text) or _INSECURE.match(text)
    if match is None:
        if not looks_like_furl(text):
            raise ValueError("it does not start with pb:// or pbu://")
        raise ValueError("malformed FURL: expected pb://<32 base32 chars>@host:port[,host:port...]/<32 base32 chars> "
                         "or pbu://host:port/<32 base32 chars>")
    hints = []
    for hint in match.group("hints").split(","):
        host, _, port = hint.rpartition(":")
        if not 0 < int(port) < 65536:
            raise ValueError(f"malformed FURL: port {port} out of range")
        hints.append((host, int(port)))
    return Furl(match.groupdict().get("tub"), tuple(hints), match.group("name"))


# --- files


def legacy_security_dir(ipython_dir_=None, create=True):
    """``<IPYTHONDIR>/security``, 0.10's place for FURL files; created / re-chmodded 0700."""
    path = os.path.join(ipython_dir_ or ipython_dir(), "security")
    if create:
        os.makedirs(path, mode=0o700, exist_ok=True)
        os.chmod(path, 0o700)
    return path


def default_furl_file(kind, ipython_dir_=None, create=True):
    """Where the controller writes (and clients look for) the ``kind`` FURL by default."""
    return os.path.join(legacy_security_dir(ipython_dir_, create), f"ipcontroller-{kind}.furl")


def _bad(arg, why):
    return ValueError(f"{NOT_A_FURL}: {arg} ({why})")


def read_furl_file(path, shown=None):
    """The FURL in file ``path``; ValueError (0.10's message, plus what was wrong) naming it.

    ``shown`` is the argument as the user gave it, when that differs from ``path``.
    """
    shown = shown or path
    where = f" {path}" if shown != path else ""
    try:
        with open(path) as f:
            text = f.read().strip()
    except FileNotFoundError:
        raise _bad(shown, f"no such file{where}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise _bad(shown, f"cannot read it: {e}") from None
    if not text:
        raise _bad(shown, f"the file{where} is empty")
    try:
        return parse_furl(text)
    except ValueError as e:
        raise _bad(shown, f"the file{where} holds no valid FURL: {e}") from None


def read_furl_argument(furl_or_file):
    """0.10's rule: a FURL string, or the path of a file holding one.

    Returns ``(furl, source)`` where ``source`` names the argument for error messages
    without revealing the swiss number.  ValueError("not a furl or a file containing a
    furl: <arg> (...)") for anything else.
    """
    arg = os.fspath(furl_or_file) if isinstance(furl_or_file, os.PathLike) else furl_or_file
    if not isinstance(arg, str):
        raise ValueError(f"{NOT_A_FURL}: {arg!r}")  # noqa: TRY004  (0.10 raises ValueError)
    if looks_like_furl(arg.strip()):
        try:
            furl = parse_furl(arg)
        except ValueError as e:
            raise _bad(arg, str(e)) from None
        return furl, f"the FURL {furl.redacted()}"
    path = os.path.abspath(os.path.expanduser(arg))
    return read_furl_file(path, shown=arg), f"the FURL file {path}"


def write_furl_file(path, furl):
    """Write ``furl`` on one line, atomically (temp file + rename), mode 0600, dir 0700."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, mode=0o700, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".furl")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(f"{furl}\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def remove_furl_file(path, only_if=None):
    """Remove ``path``; with ``only_if``, only while it still holds that FURL."""
    if only_if is not None:
        try:
            if read_furl_file(path) != only_if:
                return False
        except ValueError:
            return False
    try:
        os.unlink(path)
        return True
    except FileNotFoundError:
        return False


# --- the handshake


def _mac(key, *parts):
    return hmac.new(key, b"\0".join(parts), hashlib.sha256).digest()


def _session_keys(name, client_nonce, server_nonce):
    secret = name.encode("ascii")
    return (_mac(secret, b"encrypt", client_nonce, server_nonce),
            _mac(secret, b"authenticate", client_nonce, server_nonce))


def _keystream_xor(key, data):
    out = bytearray(data)
    for block in range(0, len(out), 32):
        pad = hmac.new(key, block.to_bytes(8, "big"), hashlib.sha256).digest()
        for i, byte in enumerate(pad[: len(out) - block]):
            out[block + i] ^= byte
    return bytes(out)


def _proof(name, tub_id, nonce):
    return _mac(name.encode("ascii"), b"request", (tub_id or "").encode("ascii"), nonce)


def _frames(message):
    return [PROTOCOL, json.dumps(message, separators=(",", ":")).encode()]


def _load(frames):
    if len(frames) != 2 or bytes(frames[0]) != PROTOCOL:
        raise HandshakeError(f"not a {PROTOCOL.decode()} message ({len(frames)} frames)")
    try:
        message = json.loads(bytes(frames[1]))
    except ValueError as e:
        raise HandshakeError(f"invalid JSON: {e}") from None
    if not isinstance(message, dict):
        raise HandshakeError("the message is not a JSON object")
    return message


def _field(message, key, kind):
    value = message.get(key)
    if not isinstance(value, kind):
        raise HandshakeError(f"field {key!r} missing or not a {kind.__name__}")
    return value


def _hex(message, key, size):
    try:
        value = bytes.fromhex(_field(message, key, str))
    except ValueError:
        raise HandshakeError(f"field {key!r} is not hex") from None
    if len(value) != size:
        raise HandshakeError(f"field {key!r} has {len(value)} bytes, not {size}")
    return value


def request(furl):
    """The client's request for ``furl``: ``(frames, nonce)``; keep the nonce for :func:`open_reply`."""
    nonce = secrets.token_bytes(_NONCE_BYTES)
    message = {"op": "resolve", "tub_id": furl.tub_id, "nonce": nonce.hex(),
               "proof": _proof(furl.name, furl.tub_id, nonce).hex()}
    return _frames(message), nonce


def check_request(frames, tub_id, secure, names):
    """Which name a request proves it holds: ``(name, kind, client_nonce)``.

    ``names`` maps this tub's names to their kinds.  Raises :class:`HandshakeError` for a
    malformed message (drop it) and :class:`Refused` for a well-formed one that must be
    refused (answer with :func:`refusal`).
    """
    message = _load(frames)
    if message.get("op") != "resolve":
        raise HandshakeError(f"unknown op {message.get('op')!r}")
    nonce = _hex(message, "nonce", _NONCE_BYTES)
    proof = _hex(message, "proof", hashlib.sha256().digest_size)
    requested = message.get("tub_id")
    if requested is not None and not isinstance(requested, str):
        raise HandshakeError("field 'tub_id' is not a string")
    expected = tub_id if secure else None
    if requested != expected:
        if expected is None:
            raise Refused("wrong tub: this tub is insecure (pbu://) and has no tub id; the FURL names tub "
                          f"{requested} (a stale or foreign FURL)")
        if requested is None:
            raise Refused(f"this tub is secure: the FURL must be pb://{tub_id}@..., not pbu://")
        raise Refused(f"wrong tub: the FURL names tub {requested} but this is tub {tub_id} "
                      "(a stale FURL, or one for another controller)")
    found = None
    for name, kind in names.items():
        if hmac.compare_digest(_proof(name, requested, nonce), proof):
            found = (name, kind)
    if found is None:
        raise Refused("unknown swiss number: the FURL is not valid for this controller")
    return found[0], found[1], nonce


def reply(tub_id, name, kind, client_nonce, payload):
    """The controller's answer to a valid request: ``payload`` (a JSON-able dict), encrypted."""
    server_nonce = secrets.token_bytes(_NONCE_BYTES)
    k_enc, k_mac = _session_keys(name, client_nonce, server_nonce)
    ciphertext = _keystream_xor(k_enc, json.dumps(payload, separators=(",", ":")).encode())
    tub = (tub_id or "").encode("ascii")
    message = {"status": "ok", "tub_id": tub_id, "kind": kind, "nonce": server_nonce.hex(),
               "payload": base64.b64encode(ciphertext).decode("ascii"),
               "mac": _mac(k_mac, tub, kind.encode(), ciphertext).hex()}
    return _frames(message)


def refusal(reason):
    return _frames({"status": "error", "reason": str(reason)})


def open_reply(frames, furl, client_nonce):
    """``(kind, payload)`` from the controller's reply to our request for ``furl``.

    Raises :class:`Refused` with the controller's reason, or :class:`HandshakeError` when
    the reply cannot be authenticated (not the controller this FURL names).
    """
    message = _load(frames)
    status = message.get("status")
    if status == "error":
        raise Refused(str(message.get("reason") or "no reason given"))
    if status != "ok":
        raise HandshakeError(f"unknown status {status!r}")
    kind = _field(message, "kind", str)
    server_nonce = _hex(message, "nonce", _NONCE_BYTES)
    mac = _hex(message, "mac", hashlib.sha256().digest_size)
    try:
        ciphertext = base64.b64decode(_field(message, "payload", str), validate=True)
    except ValueError:
        raise HandshakeError("field 'payload' is not base64") from None
    k_enc, k_mac = _session_keys(furl.name, client_nonce, server_nonce)
    # the tub id we asked for, not the one the reply claims: a reply for another tub fails here
    if not hmac.compare_digest(_mac(k_mac, (furl.tub_id or "").encode("ascii"), kind.encode(), ciphertext), mac):
        raise HandshakeError("the reply is not authenticated by this FURL's swiss number and tub id")
    try:
        payload = json.loads(_keystream_xor(k_enc, ciphertext))
    except ValueError:
        raise HandshakeError("the decrypted payload is not JSON") from None
    if kind not in KINDS or not isinstance(payload, dict):
        raise HandshakeError(f"unexpected kind {kind!r} or payload")
    return kind, payload
