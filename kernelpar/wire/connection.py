"""Where connection information lives and what it holds.

The controller writes two JSON files into ``<ipython_dir>/profile_<name>/security/``
(mode 0600, written atomically): ``ipcontroller[-<cluster_id>]-client.json`` for clients
and ``ipcontroller[-<cluster_id>]-engine.json`` for engines.  Each holds the
``interface`` (``tcp://127.0.0.1``), one port per channel, the HMAC ``key``, the
``signature_scheme``, the ``location`` (controller host) and the controller's
``versions``.  URLs are ``interface:port`` for TCP; with the ``ipc`` transport the
interface is a socket path prefix and URLs are ``interface-<n>``.  Engines started by a launcher get the engine
dict in ``$KERNELPAR_CONNECTION_INFO`` (``$IPP_CONNECTION_INFO`` is read too) instead.

This module also holds the version handshake rule: pickled code objects only load in the
Python minor version that made them, so peers must agree on Python ``major.minor`` and
on kernelpar ``major.minor``.
"""

import json
import os
import platform
import tempfile

from .._version import __version__

CONNECTION_ENV = ("KERNELPAR_CONNECTION_INFO", "IPP_CONNECTION_INFO")


def ipython_dir():
    return os.path.abspath(os.path.expanduser(os.environ.get("IPYTHONDIR") or "~/.ipython"))


def locate_profile_dir(profile=None, profile_dir=None, ipython_dir_=None, create=True):
    """The profile directory: ``profile_dir`` if given, else ``<ipython_dir>/profile_<profile>``."""
    if profile_dir is None:
        profile_dir = os.path.join(ipython_dir_ or ipython_dir(), f"profile_{profile or 'default'}")
    profile_dir = os.path.abspath(os.path.expanduser(profile_dir))
    if create:
        for sub, mode in (("", 0o755), ("security", 0o700), ("log", 0o755), ("pid", 0o755), ("db", 0o755)):
            path = os.path.join(profile_dir, sub)
            os.makedirs(path, mode=mode, exist_ok=True)
        os.chmod(os.path.join(profile_dir, "security"), 0o700)
    return profile_dir


def connection_file(profile_dir, kind, cluster_id=""):
    """Path of the ``kind`` ('client' or 'engine') connection file."""
    stem = f"ipcontroller-{cluster_id}-{kind}.json" if cluster_id else f"ipcontroller-{kind}.json"
    return os.path.join(profile_dir, "security", stem)


def write_private_json(path, data):
    """Write ``data`` as JSON, atomically, readable by the owner only (0600)."""
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".json")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_json(path):
    with open(path) as f:
        return json.load(f)


def connection_info_from_env():
    for name in CONNECTION_ENV:
        value = os.environ.get(name)
        if value:
            return json.loads(value)
    return None


def _join(interface, port):
    return f"{interface}-{port}" if interface.startswith("ipc://") else f"{interface}:{port}"


def url(info, channel):
    """The zmq URL of ``channel`` in a connection dict."""
    return _join(info["interface"], info[channel])


def connect_url(info, channel):
    """Like :func:`url`, but a wildcard interface is replaced by ``location``."""
    interface = info["interface"]
    if interface.endswith("://*") or interface.endswith("://0.0.0.0"):
        interface = interface.rsplit("://", 1)[0] + "://" + (info.get("location") or "127.0.0.1")
    return _join(interface, info[channel])


class Binder:
    """Binds sockets on one interface and says which port (or ipc suffix) each got."""

    def __init__(self, interface):
        self.interface = interface
        self._next_ipc = 0

    def bind(self, sock):
        if self.interface.startswith("ipc://"):
            self._next_ipc += 1
            sock.bind(_join(self.interface, self._next_ipc))
            return self._next_ipc
        return sock.bind_to_random_port(self.interface)


def versions():
    """What this process tells its peers in the version handshake."""
    return {
        "kernelpar": __version__,
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
    }


def _minor(version):
    return tuple(str(version).split(".")[:2])


def version_mismatch(mine, theirs, me="this process", them="the controller"):
    """A message explaining why two peers cannot exchange pickled code, or None."""
    if not isinstance(theirs, dict):
        return f"{them} sent no version information (is it kernelpar {__version__}?)"
    problems = []
    if _minor(mine.get("python")) != _minor(theirs.get("python")) or mine.get(
        "python_implementation"
    ) != theirs.get("python_implementation", mine.get("python_implementation")):
        problems.append(
            f"{me} runs {mine.get('python_implementation', 'Python')} {mine.get('python')} but {them} runs "
            f"{theirs.get('python_implementation', 'Python')} {theirs.get('python')}"
        )
    if _minor(mine.get("kernelpar")) != _minor(theirs.get("kernelpar")):
        problems.append(f"{me} runs kernelpar {mine.get('kernelpar')} but {them} runs kernelpar {theirs.get('kernelpar')}")
    if not problems:
        return None
    return "; ".join(problems) + ": pickled code cannot be exchanged between them. Use the same Python and kernelpar versions everywhere."


