"""Finding the controller: which connection file a ``Client`` reads, and waiting for it.

Order: an explicit ``connection_info`` (a dict, or the path of a JSON file), else the
legacy ``url_file``/``url_or_file`` keyword (honoured: ipyparallel 9.2 silently ignores
``url_file``), else ``ipcontroller[-<cluster_id>]-client.json`` in the profile's
``security`` folder.  An explicit path that does not exist is an error at once; the
profile's default file may still be on its way (a controller starting), so it is
polled every 0.1 s for up to ``timeout`` seconds.
"""

import json
import os
import time
import warnings

from ..wire import connection
from ..wire.session import SIGNATURE_SCHEME

POLL_INTERVAL = 0.1
_URL_PREFIXES = ("tcp://", "ipc://", "inproc://", "pb://")
_REQUIRED = ("interface", "registration", "mux", "control", "iopub", "notification", "key")


def resolve(connection_info=None, url_file=None, url_or_file=None, profile=None, profile_dir=None,
            ipython_dir=None, cluster_id=None, timeout=10):
    """Return ``(info_dict, profile_dir or None)``."""
    for legacy_name, legacy in (("url_file", url_file), ("url_or_file", url_or_file)):
        if legacy is not None:
            warnings.warn(f"Client({legacy_name}=...) is deprecated: pass the file as the first argument, "
                          "Client(connection_info)", DeprecationWarning, stacklevel=4)
            if connection_info is None:
                connection_info = legacy
    if isinstance(connection_info, dict):
        return _check(dict(connection_info), "the connection_info dict"), profile_dir
    pdir = connection.locate_profile_dir(profile, profile_dir, ipython_dir, create=False)
    if connection_info is not None:
        path = os.fspath(connection_info)
        if path.startswith(_URL_PREFIXES):
            raise ValueError(f"Client needs a connection file (ipcontroller-client.json), not a URL: {path!r}")
        path = _find_explicit(os.path.expanduser(path), pdir)
        return _check(_read(path), path), pdir
    path = connection.connection_file(pdir, "client", cluster_id or "")
    return _check(_wait_for_file(path, timeout), path), pdir


def _find_explicit(path, profile_dir):
    if os.path.exists(path):
        return path
    # A bare file name may name a file in the profile's security folder (ipyparallel does this).
    if not os.path.dirname(path):
        candidate = os.path.join(profile_dir, "security", path)
        if os.path.exists(candidate):
            return candidate
    raise OSError(f"Connection file {path!r} not found. Is a controller running?")


def _read(path):
    try:
        return connection.read_json(path)
    except json.JSONDecodeError as e:
        raise OSError(f"Connection file {path!r} is not valid JSON: {e}") from None


def _wait_for_file(path, timeout):
    if os.path.exists(path):
        return _read(path)
    print(f"Waiting for connection file: {path}")
    deadline = time.monotonic() + (timeout if timeout is not None and timeout >= 0 else float("inf"))
    while time.monotonic() < deadline:
        time.sleep(POLL_INTERVAL)
        if os.path.exists(path):
            try:
                return connection.read_json(path)
            except (json.JSONDecodeError, OSError):
                continue  # being replaced right now: look again
    raise OSError(
        f"Connection file {path!r} not found after {timeout} seconds. Is a controller running? "
        "Start one with `ipcluster start` (or kernelpar.Cluster), or pass the connection file to Client()."
    )


def _check(info, where):
    missing = [k for k in _REQUIRED if k not in info]
    if missing:
        raise ValueError(
            f"{where} lacks {', '.join(missing)}: is it a client connection file (ipcontroller-client.json)?")
    scheme = info.get("signature_scheme", SIGNATURE_SCHEME)
    if scheme != SIGNATURE_SCHEME:
        raise ValueError(f"{where} asks for signature_scheme {scheme!r}: kernelpar signs with {SIGNATURE_SCHEME!r} only")
    return info
