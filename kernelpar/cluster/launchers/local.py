"""Launchers that run the controller and engines as local subprocesses.

Plain ``subprocess.Popen`` (no reactor, no asyncio child watcher), so they work from a
script, from ipcluster and from inside a notebook's running event loop alike.  Each
process leads its own process group (see :mod:`kernelpar.cluster.process`) and writes
stdout and stderr to a file in the profile's ``log`` directory.
"""

import asyncio
import json
import os
import sys
import time

from ...wire import connection
from ..process import POLL_INTERVAL, TERM_GRACE, ProcessHandle, stop_handles
from .base import BaseLauncher


def _log_path(profile_dir, stem):
    return os.path.join(profile_dir, "log", f"{stem}.log")


def _with_id(prefix, cluster_id):
    return f"{prefix}-{cluster_id}" if cluster_id else prefix


class LocalControllerLauncher(BaseLauncher):
    """Runs ``python -m kernelpar.controller`` for one cluster."""

    name = "local"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.handle = None

    @property
    def process(self):
        """The controller's ``psutil.Process`` (None before start)."""
        return self.handle.process if self.handle else None

    @property
    def pid(self):
        return self.handle.pid if self.handle else None

    def command(self):
        return [
            sys.executable, "-m", "kernelpar.controller",
            "--profile-dir", self.profile_dir, "--cluster-id", self.cluster_id, *self.args,
        ]

    def connection_files(self):
        return {kind: connection.connection_file(self.profile_dir, kind, self.cluster_id)
                for kind in ("client", "engine")}

    async def start(self):
        if self.state != "before":
            raise RuntimeError(f"controller launcher already {self.state}")
        output = _log_path(self.profile_dir, f"{_with_id('ipcontroller', self.cluster_id)}-{os.getpid()}")
        self.output_files = [output]
        self.handle = ProcessHandle.spawn(self.command(), self.child_environment(), output, cwd=self.work_dir)
        self.state = "running"
        self.log.debug("started controller (pid %d): %s", self.pid, " ".join(self.command()))

    async def wait_for_connection_files(self, timeout):
        """Wait until the controller has written both connection files (it writes them once
        every socket is bound, so they existing means it is ready).

        Raises RuntimeError, with the controller's output, if it exits first or takes longer
        than ``timeout`` seconds.
        """
        files = self.connection_files()
        deadline = time.monotonic() + timeout
        while not all(os.path.exists(path) for path in files.values()):
            if not self.poll():
                raise RuntimeError(
                    f"the controller exited with status {self.stop_data.get('exit_code')} before it was ready"
                    f"\n{self.get_output(tail=4000)}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the controller did not write {files['client']} within {timeout:g} s"
                    f"\n{self.get_output(tail=4000)}"
                )
            await asyncio.sleep(POLL_INTERVAL)
        return files

    async def stop(self, term_grace=TERM_GRACE):
        if self.state != "running":
            return self.stop_data
        await stop_handles([self.handle], term_grace)
        self.notify_stop({"exit_code": self.handle.returncode, "pid": self.pid})
        return self.stop_data

    def signal(self, sig):
        if self.state == "running":
            self.handle.signal_group(sig)

    def poll(self):
        if self.state == "running" and self.handle.poll() is not None:
            self.notify_stop({"exit_code": self.handle.returncode, "pid": self.pid})
        return self.state == "running"

    def to_dict(self):
        d = super().to_dict()
        d["process"] = self.handle.to_dict() if self.handle else None
        return d

    def _restore(self, d):
        if d.get("process"):
            self.handle = ProcessHandle.from_dict(d["process"])
            self.state = "running"


class LocalEngineSetLauncher(BaseLauncher):
    """Runs ``n`` × ``python -m kernelpar.engine``, each in its own process group."""

    name = "local"

    def __init__(self, *, n=1, engine_set_id="", timeout=60, connection_info=None, **kwargs):
        super().__init__(**kwargs)
        self.n = n
        self.engine_set_id = engine_set_id
        self.timeout = timeout
        # the engine connection dict, when the controller has already written it: passed
        # in the environment so the engines need not read (or wait for) the file
        self.connection_info = connection_info
        self.handles = []

    @property
    def pids(self):
        return [h.pid for h in self.handles]

    @property
    def running_count(self):
        return sum(1 for h in self.handles if not h.exited())

    def command(self):
        return [
            sys.executable, "-m", "kernelpar.engine",
            "--profile-dir", self.profile_dir, "--cluster-id", self.cluster_id,
            "--timeout", f"{self.timeout:g}", *self.args,
        ]

    async def start(self):
        if self.state != "before":
            raise RuntimeError(f"engine set {self.engine_set_id} already {self.state}")
        extra = {}
        if self.connection_info:
            extra[connection.CONNECTION_ENV[0]] = json.dumps(self.connection_info)
        env = self.child_environment(extra)
        cmd = self.command()
        stem = _with_id("ipengine", self.cluster_id)
        for i in range(self.n):
            output = _log_path(self.profile_dir, f"{stem}-{self.engine_set_id}-{i}")
            self.output_files.append(output)
            self.handles.append(ProcessHandle.spawn(cmd, env, output, cwd=self.work_dir))
        self.state = "running"
        self.log.debug("started %d engines (pids %s): %s", self.n, self.pids, " ".join(cmd))

    def _stop_data(self):
        return {"exit_codes": {str(h.pid): h.returncode for h in self.handles}}

    async def stop(self, term_grace=TERM_GRACE):
        if self.state != "running":
            return self.stop_data
        await stop_handles(self.handles, term_grace)
        self.notify_stop(self._stop_data())
        return self.stop_data

    def signal(self, sig):
        if self.state == "running":
            for h in self.handles:
                h.signal_group(sig)

    def poll(self):
        if self.state == "running" and all(h.poll() is not None for h in self.handles):
            self.notify_stop(self._stop_data())
        return self.state == "running"

    def to_dict(self):
        d = super().to_dict()
        d.update(n=self.n, engine_set_id=self.engine_set_id, timeout=self.timeout,
                 processes=[h.to_dict() for h in self.handles])
        return d

    def _restore(self, d):
        self.n = d.get("n", self.n)
        self.engine_set_id = d.get("engine_set_id", self.engine_set_id)
        self.timeout = d.get("timeout", self.timeout)
        self.handles = [ProcessHandle.from_dict(p) for p in d.get("processes", [])]
        if self.handles:
            self.state = "running"
