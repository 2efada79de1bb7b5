"""Files a cluster keeps in its profile: the cluster file, a start lock, stale connection files.

``<profile_dir>/security/cluster-<cluster_id>.json`` (0600) describes a running cluster
(see ``Cluster.to_dict``): ``ipcluster list``/``stop`` and ``Cluster.from_file`` read it.
It is written on start, updated when engine sets come and go, removed on stop.

``cluster-start.lock`` serializes starts within a profile (see :func:`start_lock`).  The
kernel drops an ``flock`` when its holder dies, so a crashed start never blocks the next
one; the file itself stays (removing a lock file that another process may have just
opened would let two processes hold "the" lock).
"""

import contextlib
import fcntl
import glob
import os

from ..wire import connection


def cluster_file_path(profile_dir, cluster_id):
    return os.path.join(profile_dir, "security", f"cluster-{cluster_id}.json")


def cluster_id_from_path(path):
    return os.path.basename(path)[len("cluster-"):-len(".json")]


def write_cluster_file(path, data):
    connection.write_private_json(path, data)


def read_cluster_file(path):
    return connection.read_json(path)


def remove_file(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def remove_connection_files(profile_dir, cluster_id):
    """Remove the connection files of ``cluster_id``.

    Before a start, a file left by a crashed controller would send the new engines and
    client to dead ports; after a stop, the controller may not have had time to remove them.
    """
    for kind in ("client", "engine"):
        remove_file(connection.connection_file(profile_dir, kind, cluster_id))


def leftover_files(profile_dir):
    """What ``ipcluster clean`` removes besides cluster files: every log file, and every
    controller connection file, of the profile (the start lock stays: see above)."""
    logs = glob.glob(os.path.join(profile_dir, "log", "*"))
    connections = glob.glob(os.path.join(profile_dir, "security", "ipcontroller-*.json"))
    return sorted(p for p in logs + connections if os.path.isfile(p))


def profile_dirs(ipython_dir=None):
    """Every ``profile_*`` directory in the IPython directory."""
    root = ipython_dir or connection.ipython_dir()
    return sorted(p for p in glob.glob(os.path.join(root, "profile_*")) if os.path.isdir(p))


def cluster_files(profile_dir):
    return sorted(glob.glob(os.path.join(profile_dir, "security", "cluster-*.json")))


def profile_name(profile_dir, ipython_dir=None):
    """``'default'`` for ``<ipython_dir>/profile_default``, else the path (``~`` for home)."""
    root = ipython_dir or connection.ipython_dir()
    parent, base = os.path.split(os.path.abspath(profile_dir))
    if parent == root and base.startswith("profile_"):
        return base[len("profile_"):]
    home = os.path.expanduser("~")
    if profile_dir.startswith(home + os.sep):
        return "~" + profile_dir[len(home):]
    return profile_dir


@contextlib.contextmanager
def start_lock(profile_dir):
    """Hold the profile's start lock (``flock`` on ``security/cluster-start.lock``).

    Held from "is this cluster already running?" until the new cluster file names the
    new controller, so two starts of one profile/cluster id cannot both pass the check.
    The section is a few milliseconds long, so waiting for the lock is fine.
    """
    path = os.path.join(profile_dir, "security", "cluster-start.lock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
