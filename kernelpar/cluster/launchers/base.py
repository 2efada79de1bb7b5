"""What every launcher does, whatever starts its processes (local, SSH, MPI, batch).

A launcher owns some processes of one cluster: the controller, or one set of engines.
Its life is ``state``: ``'before'`` -> ``start()`` -> ``'running'`` -> (``stop()`` or
its processes exiting by themselves, noticed by ``poll()``) -> ``'after'``, at which
point the ``on_stop`` callbacks run once with ``stop_data``.  ``to_dict``/``from_dict``
carry enough to find and stop the processes from another Python process (the cluster
file), and ``get_output`` returns what the processes printed, for error messages.

Children always get an explicit environment: ours, the launcher's ``environment``, and
``KERNELPAR_PARENT_PID`` when the processes must not outlive the starting process (the
controller and the engines exit once their parent is gone).
"""

import logging
import os
import site

PARENT_PID_ENV = "KERNELPAR_PARENT_PID"
# the directory holding the kernelpar package this process runs
_KERNELPAR_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def pythonpath_with_kernelpar(pythonpath):
    """``$PYTHONPATH`` that makes children import the kernelpar this process runs.

    Run from a source checkout (not installed), a child started elsewhere would not find
    kernelpar, or would find another version and fail the version handshake.
    """
    if _KERNELPAR_ROOT in site.getsitepackages() + [site.getusersitepackages()]:
        return pythonpath
    parts = [p for p in (pythonpath or "").split(os.pathsep) if p]
    if _KERNELPAR_ROOT in parts:
        return pythonpath
    return os.pathsep.join([_KERNELPAR_ROOT, *parts])


class NotRunning(RuntimeError):
    """A launcher re-attached from a file found none of its processes alive."""


def exit_codes(stop_data):
    """The exit statuses a launcher's ``stop_data`` reports (one process's or several)."""
    stop_data = stop_data or {}
    codes = list(stop_data.get("exit_codes", {}).values())
    if "exit_code" in stop_data:
        codes.append(stop_data["exit_code"])
    return codes


class BaseLauncher:
    """Common state, callbacks, environment and serialization of launchers."""

    #: the name this launcher is registered under (see :mod:`kernelpar.cluster.launchers`)
    name = None

    def __init__(self, *, profile_dir, cluster_id="", args=(), environment=None,
                 parent_pid=None, work_dir=None, log=None):
        self.profile_dir = profile_dir
        self.cluster_id = cluster_id
        self.args = list(args)
        self.environment = dict(environment or {})
        self.parent_pid = parent_pid
        self.work_dir = work_dir
        self.log = log or logging.getLogger("kernelpar.cluster")
        self.state = "before"
        self.stop_data = None
        self.output_files = []
        self._stop_callbacks = []

    def __repr__(self):
        return f"<{type(self).__name__} state={self.state!r}>"

    @property
    def running(self):
        return self.state == "running"

    # --- lifecycle, implemented by subclasses

    async def start(self):
        raise NotImplementedError

    async def stop(self, term_grace=None):
        """Stop the processes: SIGTERM, then SIGKILL after ``term_grace`` seconds
        (default :data:`kernelpar.cluster.process.TERM_GRACE`)."""
        raise NotImplementedError

    def signal(self, sig):
        raise NotImplementedError

    def poll(self):
        """Notice processes that exited by themselves; return True while still running."""
        raise NotImplementedError

    # --- stop notification

    def on_stop(self, callback):
        """Call ``callback(stop_data)`` once the launcher has stopped (at once if it has)."""
        if self.state == "after":
            callback(self.stop_data)
        else:
            self._stop_callbacks.append(callback)

    def notify_stop(self, data):
        if self.state == "after":
            return
        self.state = "after"
        self.stop_data = data
        callbacks, self._stop_callbacks = self._stop_callbacks, []
        for callback in callbacks:
            try:
                callback(data)
            except Exception:
                self.log.exception("error in on_stop callback %r of %r", callback, self)

    # --- what children get

    def child_environment(self, extra=None):
        env = dict(os.environ)
        env.update(self.environment)
        env.update(extra or {})
        pythonpath = pythonpath_with_kernelpar(env.get("PYTHONPATH"))
        if pythonpath:
            env["PYTHONPATH"] = pythonpath
        if self.parent_pid:
            env[PARENT_PID_ENV] = str(self.parent_pid)
        else:
            # inherited from whoever started us, it would name the wrong parent
            env.pop(PARENT_PID_ENV, None)
        return env

    def get_output(self, tail=None):
        """What the processes wrote to their output files (the last ``tail`` chars)."""
        chunks = []
        for path in self.output_files:
            try:
                with open(path, "rb") as f:
                    if tail:
                        f.seek(max(0, os.fstat(f.fileno()).st_size - tail))
                    text = f.read().decode("utf8", "replace")
            except OSError:
                continue
            if text.strip():
                chunks.append(f"--- {path}\n{text}")
        return "\n".join(chunks)

    # --- serialization

    def to_dict(self):
        return {
            "profile_dir": self.profile_dir,
            "cluster_id": self.cluster_id,
            "args": self.args,
            "parent_pid": self.parent_pid,
            "output_files": self.output_files,
            "state": self.state,
        }

    @classmethod
    def from_dict(cls, d, **kwargs):
        """Re-attach to running processes described by :meth:`to_dict`.

        Raises :class:`NotRunning` when none of them is alive any more.
        """
        for key in ("profile_dir", "cluster_id", "args", "parent_pid"):
            if key in d:
                kwargs.setdefault(key, d[key])
        self = cls(**kwargs)
        self.output_files = list(d.get("output_files", []))
        self._restore(d)
        if not self.poll():
            raise NotRunning(f"{cls.__name__} for cluster {self.cluster_id!r} has no process left")
        return self

    def _restore(self, d):
        """Subclass hook: rebuild process handles from ``d`` and set ``state``."""
        raise NotImplementedError
