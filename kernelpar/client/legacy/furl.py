"""FURL discovery for the legacy clients: ``MultiEngineClient(furl_or_file='')`` and friends.

0.10's rule for ``furl_or_file`` (see :func:`kernelpar.wire.furl.read_furl_argument`): a
``pb://``/``pbu://`` string, the path of a file holding one, or empty for the default
file ``<IPYTHONDIR>/security/ipcontroller-<kind>.furl``.  Anything else raises
``ValueError("not a furl or a file containing a furl: <arg> (<what was wrong>)")``.
The default path is computed at each call (0.10 fixed it at import), so a changed
``$IPYTHONDIR`` is honoured.

A FURL is then redeemed with the controller (:mod:`kernelpar.wire.furlrequest`) for the
same connection dict ``ipcontroller-client.json`` holds, and :func:`client_for` builds a
:class:`kernelpar.Client` on it.  Clients are cached per FURL in this process, as 0.10
cached connections: two ``MultiEngineClient()`` calls share one connection (each wraps
it in its own object with its own ``block``/``targets``).  Every call still asks the
controller, which costs one round trip and means a cached client of a controller that
has since been restarted (``-r``: same FURL, new ports and key) is replaced, not reused.
"""

import threading

from ...wire import furl as furls
from ...wire import furlrequest

#: seconds to wait for the controller to answer a FURL
DEFAULT_TIMEOUT = 10.0

_clients = {}
_lock = threading.Lock()


def _check_kind(kind):
    if kind not in furls.KINDS:
        raise ValueError(f"kind must be one of {', '.join(furls.KINDS)}, not {kind!r}")


def furl_for(furl_or_file, kind):
    """``(Furl, source)`` for a legacy client's argument (empty: the default file)."""
    _check_kind(kind)
    if not furl_or_file:
        furl_or_file = furls.default_furl_file(kind)
    return furls.read_furl_argument(furl_or_file)


def _redeem(furl, source, kind, timeout):
    actual, info = furlrequest.resolve(furl, timeout, source)
    if actual != kind:
        raise ValueError(f"{source} is {furls.KIND_DESCRIPTIONS[actual]}, not {furls.KIND_DESCRIPTIONS[kind]}")
    return info


def connection_info(furl_or_file="", kind="mec", timeout=DEFAULT_TIMEOUT):
    """The connection dict a ``kind`` FURL (``'mec'``, ``'tc'`` or ``'engine'``) stands for.

    ValueError (0.10's message) for a bad argument or a FURL of another kind;
    ``TimeoutError`` naming the file when no controller answers within ``timeout``
    seconds; ``ConnectionRefusedError`` naming it when the controller refuses the FURL.
    """
    furl, source = furl_for(furl_or_file, kind)
    return _redeem(furl, source, kind, timeout)


def client_for(furl_or_file, kind, timeout=DEFAULT_TIMEOUT):
    """The :class:`kernelpar.Client` for a ``'mec'`` or ``'tc'`` FURL, shared per FURL.

    Do not close it: other legacy client objects of this process may share it.
    """
    from ..client import Client

    if kind == "engine":
        raise ValueError("the engine FURL is for engines (ipengine --furl-file), not for clients")
    furl, source = furl_for(furl_or_file, kind)
    info = _redeem(furl, source, kind, timeout)
    key = str(furl)
    with _lock:
        cached = _clients.get(key)
        if cached is not None and cached[0] == info and not cached[1].closed:
            return cached[1]
        client = Client(info, timeout=timeout)
        _clients[key] = (info, client)
    if cached is not None:
        cached[1].close()  # the controller behind this FURL was restarted
    return client


def close_cached_clients():
    """Close and forget every cached client (for a program done with its clusters, and tests)."""
    with _lock:
        cached = list(_clients.values())
        _clients.clear()
    for _, client in cached:
        client.close()


class FurlClient:
    """How the legacy clients are made: from a FURL (0.10's ``furl_or_file``) or over a modern
    ``kernelpar.Client``; subclasses name their FURL (``furl_kind``) and set themselves up in
    ``_setup(client)``."""

    furl_kind = None

    def __init__(self, furl_or_file=""):
        self._setup(client_for(furl_or_file, self.furl_kind))

    @classmethod
    def from_client(cls, client):
        """A legacy client over an existing modern ``kernelpar.Client`` (both APIs on one cluster)."""
        legacy = cls.__new__(cls)
        legacy._setup(client)
        return legacy

    def _setup(self, client):
        raise NotImplementedError
