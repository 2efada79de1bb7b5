"""Large message buffers through shared memory, between processes on one machine.

Without this module a 100 MB array pushed from a client to an engine crosses two socket
hops (client → controller → engine), each a copy at about 1 GB/s.  When both ends share
``/dev/shm`` (same machine, same mount namespace, same pid namespace, same user), the
producer instead copies each large out-of-band buffer once into a file in ``/dev/shm``
(tmpfs: the file *is* memory), sends an empty placeholder frame in its place and lists
the files in the message metadata (key ``"shm"``); the consumer maps the files.  This
module is only the file-system part: pure functions around files and ``mmap``, no zmq,
no threads.  Everything degrades to "not used" when :func:`available` is False.

Discovery: markers
    Each process that can take part writes a marker ``/dev/shm/kernelpar-<kind>-<ident>``
    (``kind`` is ``engine`` or ``client``, ``ident`` its uuid) holding its pid and pid
    namespace (:func:`create_marker`).  A process that finds its peer's marker with
    :func:`peer_pid` knows the peer sees the same ``/dev/shm``; :func:`peer_pid` also
    checks that the marker belongs to this user and to a live process in this pid
    namespace, otherwise it answers None and the socket path is used.

Life cycle of a data file ``/dev/shm/kernelpar-<pid>-<hex>``
    * Created by the producer in :func:`export`: the space is reserved with
      ``posix_fallocate`` first (for all buffers of the message, before anything is
      written), so a full ``/dev/shm`` (Docker's default is 64 MB) is a clean ``OSError``
      and the message falls back to the socket path; then each buffer is copied in with
      one ``pwrite`` (a single kernel memcpy, no intermediate ``bytes``).  Mode 0600.
    * ``<pid>`` names the *unlinker*: the process responsible for the file, which is
      the producer by default.  The producer unlinks the files with
      :meth:`ShmHandle.release` once every consumer has attached (push to N engines:
      the client releases when all replies are in).  For a single consumer the producer
      may instead name the consumer's pid (from :func:`peer_pid`) and the consumer
      passes ``unlink=True`` to :func:`attach`, which unlinks right after mapping;
      releasing as well is harmless.
    * Consumers map the files with :func:`attach`.  An unlinked file stays in memory
      while a mapping of it exists and disappears when the last mapping goes (the
      consumer's arrays are garbage collected); nobody can open it any more.
    * When the unlinker dies without unlinking (SIGKILL, crash), its files would stay
      in RAM until reboot: :func:`sweep` (run by any kernelpar process, e.g. at start-up)
      unlinks data files and markers whose pid is dead.  The hex part of a data file
      name starts with 8 hex digits of the creator's pid-namespace id, and the marker
      records it too: sweep only judges pids of its own namespace, so a process in
      another container that shares ``/dev/shm`` never has its live files removed.
      A consumer that comes too late (file released or swept) gets a :class:`ShmError`.

Why ``MAP_PRIVATE``
    :func:`attach` maps read-only-opened files copy-on-write.  The consumer gets a
    *writable* view without copying anything (numpy arrays built on it are writable,
    as arrays received from a socket frame copied into a fresh buffer would be), pages
    are copied only when and where it writes, and those writes never reach the file, so
    the producer's data and every other consumer of the same file stay intact.
"""

import errno
import logging
import mmap
import os
import re
import secrets
import stat
import sys
from pickle import PickleBuffer

log = logging.getLogger("kernelpar.wire.shm")

#: where the files live; tmpfs on Linux
SHM_DIR = "/dev/shm"
#: buffers at least this big go through shared memory
SHM_THRESHOLD = 1024 * 1024
#: metadata key of the descriptors
METADATA_KEY = "shm"

PREFIX = "kernelpar-"
MARKER_KINDS = ("engine", "client")

_NAME_RE = re.compile(r"kernelpar-[0-9]+-[0-9a-f]+")
# names this version creates: pid, 8 hex digits of the pid namespace, 16 random hex digits
_OWN_NAME_RE = re.compile(r"kernelpar-([0-9]+)-([0-9a-f]{8})[0-9a-f]{16}")
_IDENT_RE = re.compile(r"[A-Za-z0-9_-]{1,200}")
_MARKER_RE = re.compile(r"kernelpar-(engine|client)-[A-Za-z0-9_-]{1,200}")
_MAX_PWRITE = 1 << 30


class ShmError(ValueError):
    """A shared-memory descriptor that cannot be honoured; the message says why."""


def available():
    """True on Linux when ``SHM_DIR`` is a writable directory."""
    return (
        sys.platform.startswith("linux")
        and os.path.isdir(SHM_DIR)
        and os.access(SHM_DIR, os.W_OK | os.X_OK)
    )


_pidns_cache = None


def _pidns():
    """This process's pid-namespace id (32 bits), 0 when /proc does not tell."""
    global _pidns_cache
    if _pidns_cache is None:
        try:
            _pidns_cache = os.stat("/proc/self/ns/pid").st_ino & 0xFFFFFFFF
        except OSError:
            _pidns_cache = 0
    return _pidns_cache


def _alive(pid):
    """True/False for a pid of this namespace; None when ``pid`` cannot be a pid."""
    if pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except (OverflowError, ValueError, OSError):
        return None
    return True


def _path(name):
    return os.path.join(SHM_DIR, name)


# --- markers -----------------------------------------------------------------------


def _marker_name(kind, ident):
    if kind not in MARKER_KINDS:
        raise ValueError(f"marker kind must be one of {MARKER_KINDS}, not {kind!r}")
    if not isinstance(ident, str) or not _IDENT_RE.fullmatch(ident):
        raise ValueError(f"marker ident must match [A-Za-z0-9_-]{{1,200}}, not {ident!r}")
    return f"{PREFIX}{kind}-{ident}"


def _read_marker(path):
    """``(pid, pidns, uid)`` of a marker file, or None if absent or unreadable."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not _is_regular(st):
            return None
        text = os.read(fd, 64).decode("ascii")
        pid, ns = text.split()
        return int(pid), int(ns), st.st_uid
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    finally:
        os.close(fd)


def _is_regular(st):
    return stat.S_ISREG(st.st_mode)


def create_marker(kind, ident):
    """Write ``SHM_DIR/kernelpar-<kind>-<ident>`` with this process's pid; return its path.

    The file is written under a temporary dot-name and renamed, so readers never see it
    half written.  Raises ``ValueError`` for a bad kind or ident, ``OSError`` if the
    directory is not writable.
    """
    name = _marker_name(kind, ident)
    path = _path(name)
    tmp = _path(f".{name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        try:
            os.write(fd, f"{os.getpid()} {_pidns()}\n".encode("ascii"))
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        _unlink_quietly(tmp)
        raise
    return path


def remove_marker(kind, ident):
    """Remove the marker ``kernelpar-<kind>-<ident>`` if it exists."""
    _unlink_quietly(_path(_marker_name(kind, ident)))


def peer_pid(kind, ident):
    """The pid in the peer's marker, or None.

    None unless the marker exists, is readable and well formed, belongs to this user
    (so its data files, mode 0600, can be opened), and names a live process of this
    pid namespace (so the pid means the same here as there).
    """
    if not available():
        return None
    info = _read_marker(_path(_marker_name(kind, ident)))
    if info is None:
        return None
    pid, ns, uid = info
    if uid != os.getuid() or ns != _pidns() or not _alive(pid):
        return None
    return pid


# --- data files --------------------------------------------------------------------


class ShmHandle:
    """The files one :func:`export` created; :meth:`release` unlinks them."""

    __slots__ = ("_released", "names", "nbytes")

    def __init__(self, names=(), nbytes=0):
        self.names = tuple(names)
        self.nbytes = nbytes
        self._released = not self.names

    def release(self):
        """Unlink the files (idempotent).  Mappings made before stay valid."""
        if self._released:
            return
        self._released = True
        for name in self.names:
            _unlink_quietly(_path(name))

    @property
    def released(self):
        return self._released

    def __bool__(self):
        return bool(self.names)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()

    def __repr__(self):
        state = "released" if self._released else "live"
        return f"<ShmHandle {len(self.names)} files, {self.nbytes} bytes, {state}>"


def _flat(buffer):
    """A flat unsigned-byte view of a contiguous buffer, or None if it cannot be exported."""
    try:
        mv = memoryview(buffer)
    except TypeError:
        return None
    if mv.c_contiguous:
        return mv.cast("B") if (mv.ndim != 1 or mv.format != "B") else mv
    if mv.contiguous:
        # Fortran order: the raw memory, in memory order, is what a socket frame carries
        return PickleBuffer(mv).raw()
    return None


def export(buffers, threshold=SHM_THRESHOLD, unlinker_pid=None):
    """Move the large buffers of a message into shared-memory files.

    Returns ``(frames, descriptors, handle)``: ``frames`` is a new list in which every
    exported buffer is replaced by ``b""``; ``descriptors`` is ``[[index, name, nbytes],
    ...]`` for the message metadata (empty when nothing was exported); ``handle`` is a
    :class:`ShmHandle` whose ``release()`` unlinks the files.  Buffers smaller than
    ``threshold`` (or empty, or not contiguous) pass through untouched.  ``unlinker_pid``
    (default: this process) is the pid written into the file names, the process whose
    death lets :func:`sweep` remove them.

    Any ``OSError`` (``/dev/shm`` full, no permission...) removes what was created and
    returns the buffers unchanged, with no descriptors: the socket path.
    """
    frames = list(buffers)
    if unlinker_pid is None:
        unlinker_pid = os.getpid()
    if type(unlinker_pid) is not int or unlinker_pid <= 0:
        raise ValueError(f"unlinker_pid must be a positive int, not {unlinker_pid!r}")
    threshold = max(int(threshold), 1)
    if not available():
        return frames, [], ShmHandle()

    todo = []
    for i, b in enumerate(frames):
        flat = _flat(b)
        if flat is not None and flat.nbytes >= threshold:
            todo.append((i, flat))
    if not todo:
        return frames, [], ShmHandle()

    ns = f"{_pidns():08x}"
    created = []  # (name, fd)
    try:
        # reserve everything first: a full tmpfs fails here, before any byte is written
        for _, flat in todo:
            name = f"{PREFIX}{unlinker_pid}-{ns}{secrets.token_hex(8)}"
            fd = os.open(_path(name), os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            created.append((name, fd))
            os.posix_fallocate(fd, 0, flat.nbytes)
        for (_, flat), (_, fd) in zip(todo, created):
            _write_all(fd, flat)
    except OSError as e:
        for name, _ in created:
            _unlink_quietly(_path(name))
        log.debug("shared memory not used for %d buffer(s): %s", len(todo), e)
        return list(buffers), [], ShmHandle()
    finally:
        for _, fd in created:
            os.close(fd)

    descriptors = []
    for (i, flat), (name, _) in zip(todo, created):
        frames[i] = b""
        descriptors.append([i, name, flat.nbytes])
    return frames, descriptors, ShmHandle([name for name, _ in created], sum(d[2] for d in descriptors))


def _write_all(fd, flat):
    n = flat.nbytes
    offset = 0
    while offset < n:
        written = os.pwrite(fd, flat[offset : offset + _MAX_PWRITE], offset)
        if written <= 0:
            raise OSError(errno.EIO, "short write to shared memory")
        offset += written


def _is_placeholder(b):
    if isinstance(b, (bytes, bytearray)):
        return len(b) == 0
    try:
        return memoryview(b).nbytes == 0
    except TypeError:
        return False


def _check_descriptors(buffers, descriptors):
    """Validate ``descriptors`` against ``buffers``; return ``[(index, name, nbytes)]``."""
    if not isinstance(descriptors, (list, tuple)):
        raise ShmError(f"shared-memory descriptors must be a list, not {type(descriptors).__name__}")
    checked = []
    seen = set()
    for d in descriptors:
        if not isinstance(d, (list, tuple)) or len(d) != 3:
            raise ShmError(f"shared-memory descriptor {d!r} is not [index, name, nbytes]")
        index, name, nbytes = d
        if not isinstance(name, str) or "/" in name or "\\" in name or "\0" in name:
            raise ShmError(f"shared-memory descriptor names an invalid file {name!r}")
        if not _NAME_RE.fullmatch(name):
            raise ShmError(f"shared-memory descriptor names {name!r}, not a kernelpar-<pid>-<hex> file")
        if type(index) is not int or not 0 <= index < len(buffers):
            raise ShmError(
                f"shared-memory descriptor for {name} has index {index!r}, "
                f"out of range for {len(buffers)} buffers"
            )
        if index in seen:
            raise ShmError(f"shared-memory descriptors name buffer {index} twice")
        seen.add(index)
        if not _is_placeholder(buffers[index]):
            raise ShmError(f"shared-memory descriptor for {name} points at buffer {index}, which is not empty")
        if type(nbytes) is not int or nbytes <= 0:
            raise ShmError(f"shared-memory descriptor for {name} has invalid size {nbytes!r}")
        checked.append((index, name, nbytes))
    return checked


def _map(name, nbytes):
    path = _path(name)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise ShmError(
            f"shared-memory buffer {name} is gone (its producer released it, or died and it was swept)"
        ) from None
    except OSError as e:
        raise ShmError(f"cannot open shared-memory buffer {name}: {e.strerror or e}") from None
    try:
        st = os.fstat(fd)
        if not _is_regular(st):
            raise ShmError(f"shared-memory buffer {name} is not a regular file")
        if st.st_size != nbytes:
            raise ShmError(f"shared-memory buffer {name} has {st.st_size} bytes, the message says {nbytes}")
        try:
            m = mmap.mmap(fd, nbytes, access=mmap.ACCESS_COPY)
        except (OSError, ValueError) as e:
            raise ShmError(f"cannot map shared-memory buffer {name}: {e}") from None
    finally:
        os.close(fd)
    return memoryview(m)


def attach(buffers, descriptors, unlink=False):
    """Replace the placeholders of a received message by views of the shared-memory files.

    ``descriptors`` is the metadata's ``"shm"`` list from :func:`export`.  Returns a new
    list; each placeholder becomes a writable ``memoryview`` of its file mapped
    copy-on-write (``MAP_PRIVATE``).  Raises :class:`ShmError` for a malformed
    descriptor (bad name, index out of range or not an empty placeholder, size
    mismatch) or a file that is gone.  With ``unlink`` (the single consumer is the
    unlinker) each file is unlinked once mapped; on an error, every validly named file
    of the message is unlinked before raising, since nobody else will.
    """
    out = list(buffers)
    if not descriptors:
        return out
    try:
        checked = _check_descriptors(out, descriptors)
        for index, name, nbytes in checked:
            out[index] = _map(name, nbytes)
            if unlink:
                _unlink_quietly(_path(name))
    except ShmError:
        if unlink and isinstance(descriptors, (list, tuple)):
            for d in descriptors:
                if isinstance(d, (list, tuple)) and len(d) == 3:
                    name = d[1]
                    if isinstance(name, str) and _NAME_RE.fullmatch(name):
                        _unlink_quietly(_path(name))
        raise
    return out


# --- whole messages ------------------------------------------------------------------


def has_large(buffers, threshold=SHM_THRESHOLD):
    """Whether any buffer is big enough to be worth exporting (cheap: no file access)."""
    for b in buffers:
        try:
            if memoryview(b).nbytes >= threshold:
                return True
        except TypeError:
            pass
    return False


def export_for(buffers, peers, unlinker_pid=None):
    """:func:`export` ``buffers`` if they are large and every ``(kind, ident)`` peer shares
    ``/dev/shm``; returns ``(frames, descriptors, handle)`` (nothing exported otherwise).

    With one peer and no ``unlinker_pid``, that peer is made the unlinker: it unlinks
    the files as it attaches them (:func:`attach_received`).
    """
    if not peers or not has_large(buffers) or not available():
        return buffers, [], ShmHandle()
    try:
        pids = [peer_pid(kind, ident) for kind, ident in peers]
    except ValueError:  # an ident that cannot name a marker (not one of ours)
        return buffers, [], ShmHandle()
    if None in pids:
        return buffers, [], ShmHandle()
    if unlinker_pid is None and len(pids) == 1:
        unlinker_pid = pids[0]
    return export(buffers, unlinker_pid=unlinker_pid)


def attach_received(buffers, descriptors):
    """:func:`attach` a received message's files; unlink them if this process is their unlinker."""
    me = str(os.getpid())
    unlink = all(isinstance(d, (list, tuple)) and len(d) == 3 and isinstance(d[1], str)
                 and d[1].split("-")[1:2] == [me] for d in descriptors)
    return attach(buffers, descriptors, unlink=unlink)


# --- clean-up ----------------------------------------------------------------------


def sweep():
    """Unlink data files and markers of dead processes; return how many were removed.

    Only ``kernelpar-<pid>-<hex>`` data files created by this version and
    ``kernelpar-<kind>-<ident>`` markers are considered, and only those of this pid
    namespace whose pid no longer exists (a pid we may not signal is alive).  Anything
    else in the directory is left alone.
    """
    if not available():
        return 0
    try:
        names = os.listdir(SHM_DIR)
    except OSError:
        return 0
    ns = _pidns()
    removed = 0
    for name in names:
        if not name.startswith(PREFIX):
            continue
        m = _OWN_NAME_RE.fullmatch(name)
        if m:
            pid, file_ns = int(m.group(1)), int(m.group(2), 16)
        elif _MARKER_RE.fullmatch(name):
            info = _read_marker(_path(name))
            if info is None:
                continue
            pid, file_ns, _ = info
        else:
            continue
        if file_ns != ns or _alive(pid) is not False:
            continue
        if _unlink_quietly(_path(name)):
            removed += 1
            log.debug("swept %s of dead process %d", name, pid)
    return removed


def _unlink_quietly(path):
    """Unlink ``path``; True if this call removed it."""
    try:
        os.unlink(path)
    except OSError:
        return False
    return True
