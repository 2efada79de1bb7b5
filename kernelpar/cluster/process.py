"""One started process that leads its own process group, and how to stop groups of them.

Every process a launcher starts gets its own session (``start_new_session=True``), so
its pid is also its process-group id: stopping it means signalling the whole group,
which also reaches whatever the process itself started (a user's subprocesses on an
engine).  Ctrl-C in the user's terminal does not reach these groups; the launchers stop
them explicitly instead, which is what makes stopping orderly.

A handle is either one this process spawned (it holds the ``Popen`` and reaps it) or
one re-attached from a cluster file written by another process (``ipcluster stop``):
then the pid is checked against the recorded ``create_time`` so a recycled pid is never
signalled.
"""

import asyncio
import os
import signal
import subprocess
import time

import psutil

# How long stop() lets a group exit on SIGTERM before it sends SIGKILL.  The controller
# and the engines exit on SIGTERM in well under this; the whole stop stays below 1 s.
TERM_GRACE = 0.6
KILL_GRACE = 0.3
POLL_INTERVAL = 0.02


class ProcessHandle:
    """A process (and its process group) identified by pid and creation time."""

    def __init__(self, pid, create_time=None, popen=None):
        self.pid = pid
        self.popen = popen
        self.returncode = None
        try:
            self.process = psutil.Process(pid)
            actual = self.process.create_time()
        except psutil.Error:
            self.process, actual = None, None
        if create_time is not None and (actual is None or abs(actual - create_time) > 0.01):
            # the recorded process is gone and the pid may belong to someone else now
            self.process = None
        self.create_time = actual if create_time is None else create_time

    @classmethod
    def spawn(cls, cmd, env, output_file, cwd=None):
        """Start ``cmd`` in a new session with stdout and stderr appended to ``output_file``."""
        with open(output_file, "ab") as out:
            popen = subprocess.Popen(
                cmd, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True, close_fds=True,
            )
        return cls(popen.pid, popen=popen)

    def to_dict(self):
        return {"pid": self.pid, "create_time": self.create_time}

    @classmethod
    def from_dict(cls, d):
        return cls(int(d["pid"]), create_time=d.get("create_time"))

    def exited(self):
        """True once the group leader has exited (without reaping it: see :meth:`reap`)."""
        if self.returncode is not None or self.process is None:
            return True
        if self.popen is not None:
            try:
                # WNOWAIT leaves the zombie in place, so the pid (and so the process
                # group id) cannot be recycled before we sweep the group and reap.
                info = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            except ChildProcessError:
                return True
            return info is not None
        try:
            return self.process.status() == psutil.STATUS_ZOMBIE
        except psutil.Error:
            return True

    def reap(self):
        """Collect the exit status of an exited child (no-op for re-attached processes)."""
        if self.popen is not None and self.returncode is None:
            try:
                self.returncode = self.popen.wait(timeout=0)
            except subprocess.TimeoutExpired:
                return None
        elif self.returncode is None and self.exited():
            self.returncode = -1  # not our child: its exit status is its parent's
        return self.returncode

    def poll(self):
        """The exit code if the process has exited (and is now reaped), else None."""
        if self.exited():
            return self.reap()
        return None

    def signal_group(self, sig):
        """Send ``sig`` to the process group, or to the process alone if it leads none."""
        if self.process is None or self.returncode is not None:
            return False
        if self.popen is None and not self.process.is_running():
            return False  # re-attached and gone: is_running() also catches a recycled pid
        try:
            if os.getpgid(self.pid) == self.pid:
                os.killpg(self.pid, sig)
            else:
                os.kill(self.pid, sig)
            return True
        except (ProcessLookupError, PermissionError):
            return False


def _sweep_and_reap(handle):
    # the leader has exited: kill whatever it left behind in its group, then reap it
    handle.signal_group(signal.SIGKILL)
    handle.reap()


async def stop_handles(handles, term_grace=TERM_GRACE, kill_grace=KILL_GRACE):
    """SIGTERM every group, wait up to ``term_grace`` s, SIGKILL what is left, reap all."""
    pending = [h for h in handles if h.returncode is None]
    for h in pending:
        h.signal_group(signal.SIGTERM)
    for grace, sig in ((term_grace, signal.SIGKILL), (kill_grace, None)):
        deadline = time.monotonic() + grace
        while pending:
            for h in [h for h in pending if h.exited()]:
                _sweep_and_reap(h)
                pending.remove(h)
            if not pending or time.monotonic() >= deadline:
                break
            await asyncio.sleep(POLL_INTERVAL)
        if sig is not None:
            for h in pending:
                h.signal_group(sig)
    return [h for h in pending if not h.exited()]
