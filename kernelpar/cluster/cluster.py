"""``Cluster``: one controller and sets of engines, started, watched and stopped from Python.

The ipyparallel 9.2 API (``start_cluster``, ``start_and_connect``, ``stop_cluster``,
context managers, ``to_dict``/``from_file``), with every coroutine method also available
as a blocking ``<name>_sync`` twin.

Startup is built for latency: the controller and the engines are started at the same
time (the engines wait for the engine connection file themselves), the connection files
are polled every 20 ms, and nothing sleeps a fixed time (``delay`` defaults to 0).
Connection files left by an earlier controller of the same profile/cluster id are
deleted first, so nothing can connect to a dead controller's ports.

Nothing outlives its starter by accident: every process leads its own process group and
is stopped (SIGTERM, then SIGKILL) on ``stop_*``, at interpreter exit and when the
``Cluster`` is garbage-collected; children get ``$KERNELPAR_PARENT_PID`` so they exit on
their own if this process dies without cleaning up (SIGKILL).  ``shutdown_atexit=False``
turns all of that off, for clusters meant to outlive the Python process.
"""

import asyncio
import atexit
import logging
import os
import random
import string
import time
import traceback
import weakref

from .. import profileconfig
from ..wire import connection
from . import files
from ._async import with_sync_twins
from .arguments import cpu_count, engine_count, seconds
from .launchers import NotRunning, controller_launcher_class, engine_launcher_class, launcher_name
from .launchers.base import exit_codes
from .process import POLL_INTERVAL, TERM_GRACE, ProcessHandle, stop_handles

_SUFFIX_CHARS = string.ascii_lowercase + string.digits
# how long ``ipcluster stop`` lets a running ipcluster stop its own processes
IPCLUSTER_STOP_GRACE = 2.0
# stop_cluster: the engines get ENGINE_TERM_GRACE s after SIGTERM, the controller what is
# left of STOP_DEADLINE s (the SIGKILLs that may follow take milliseconds)
STOP_DEADLINE = 0.9
ENGINE_TERM_GRACE = 0.5

# keyword arguments ipyparallel's Cluster takes that have no meaning here (a traitlets parent)
_IGNORED_KWARGS = ("parent",)


class ClusterRunning(RuntimeError):
    """A cluster with this profile and cluster id is already running (or starting)."""


_atexit_clusters = weakref.WeakSet()


@atexit.register
def _stop_clusters_at_exit():
    for cluster in list(_atexit_clusters):
        if cluster.shutdown_atexit and cluster._has_processes():
            try:
                cluster.stop_cluster_sync()
            except Exception:
                traceback.print_exc()


def _default_cluster_id():
    return f"{int(time.time())}-{''.join(random.choice(_SUFFIX_CHARS) for _ in range(4))}"


async def wait_for_engines(client, n, timeout, check):
    """``client.wait_for_engines(n, timeout=timeout)``, failing early when ``check()`` raises.

    ``check`` watches the processes that should become those engines, so engines that
    crash at startup fail this in a fraction of a second rather than after ``timeout``,
    and the error can show what they printed.
    """
    done = client.wait_for_engines(n, timeout=timeout, block=False)
    while not done.done():
        check()
        await asyncio.sleep(POLL_INTERVAL * 2)
    return done.result()


def _log_stopped(log, what):
    # an on_stop callback that holds no reference to the Cluster: a launcher -> Cluster
    # cycle would keep a dropped Cluster (and so its processes) alive until the cyclic GC
    def callback(stop_data):
        (log.warning if any(exit_codes(stop_data)) else log.info)("%s stopped: %s", what, stop_data)

    return callback


@with_sync_twins
class Cluster:
    """A kernelpar cluster: one controller and any number of engine sets.

    ``n`` engines (default: one per CPU) in profile ``profile`` (or directory
    ``profile_dir``); ``controller_args``/``engine_args`` are passed on the command
    lines of ``python -m kernelpar.controller``/``kernelpar.engine``.  ``engines`` and
    ``controller`` name the launchers (only ``'local'`` exists so far).  What is not given
    comes from ``config`` (a traitlets ``Config``), then, with ``load_profile``, from the
    profile's ``ipcluster_config`` (:mod:`kernelpar.profileconfig`).
    """

    def __init__(self, n=None, profile=None, profile_dir=None, ipython_dir=None, cluster_id=None,
                 controller_args=(), engine_args=(), controller_ip=None, controller_location=None,
                 delay=None, engine_timeout=None, log_level=logging.INFO, shutdown_atexit=None, *,
                 engines=None, controller=None, cluster_file=None, work_dir=None,
                 send_engines_connection_env=None, log=None, config=None, load_profile=True, **kwargs):
        # first, so that __del__ works even if the arguments below are rejected
        self.controller = None
        self.engines = {}
        self.shutdown_atexit = shutdown_atexit is not False  # the profile may change it below
        # ipyparallel's long names for ``engines``/``controller``
        engines = kwargs.pop("engine_launcher_class", engines)
        controller = kwargs.pop("controller_launcher_class", controller)
        for name in _IGNORED_KWARGS:
            kwargs.pop(name, None)
        if kwargs:
            raise TypeError(f"Cluster() got unexpected keyword arguments: {', '.join(sorted(kwargs))}")
        self.profile = profile or (None if profile_dir else "default")
        self.ipython_dir = ipython_dir
        self.profile_dir = connection.locate_profile_dir(profile, profile_dir, ipython_dir, create=False)
        configured = profileconfig.cluster_options(self.profile_dir, config, load_profile)

        def given(name, value, default=None):
            if value is None or (isinstance(value, (list, tuple)) and not value):
                return configured.get(name, default)
            return value

        n = given("n", n)
        self.n = None if n is None else engine_count(n)
        self.shutdown_atexit = given("shutdown_atexit", shutdown_atexit, True)
        cluster_id = given("cluster_id", cluster_id)
        self.cluster_id = _default_cluster_id() if cluster_id is None else cluster_id
        self.cluster_file = cluster_file or files.cluster_file_path(self.profile_dir, self.cluster_id)
        self.controller_args = list(given("controller_args", controller_args, ()))
        self.engine_args = list(given("engine_args", engine_args, ()))
        self.controller_ip = given("controller_ip", controller_ip)
        self.controller_location = given("controller_location", controller_location)
        self.delay = seconds("delay", given("delay", delay, 0.0))
        self.engine_timeout = seconds("engine_timeout", given("engine_timeout", engine_timeout, 60))
        self.log_level = log_level
        self.work_dir = given("work_dir", work_dir)
        self.send_engines_connection_env = given("send_engines_connection_env", send_engines_connection_env, True)
        engines = given("engines", engines, "local")
        controller = given("controller", controller, "local")
        self.engine_launcher_class = engine_launcher_class(engines)
        self.controller_launcher_class = controller_launcher_class(controller)
        if log is None:
            log = logging.getLogger(f"kernelpar.cluster.{self.cluster_id or 'ipcluster'}")
            log.setLevel(log_level)
        self.log = log
        # the ipcluster process watching this cluster, if any (set by ``ipcluster start``)
        self.ipcluster_process = None
        # this process, while it starts the controller (see _claim)
        self.starting_process = None
        self._context_client = None

    # --- description

    @property
    def engine_set(self):
        """The first engine set (most clusters have only one)."""
        return next(iter(self.engines.values()), None)

    def __repr__(self):
        fields = [f"cluster_id={self.cluster_id!r}"]
        name = files.profile_name(self.profile_dir, self.ipython_dir)
        if os.sep in name or name.startswith("~"):
            fields.append(f"profile_dir={name!r}")
        else:
            fields.append(f"profile={name!r}")
        if self.controller:
            fields.append(f"controller=<{self.controller.state}>")
        if self.engines:
            fields.append(f"engine_sets={list(self.engines)}")
        return f"<{type(self).__name__}({', '.join(fields)})>"

    def _has_processes(self):
        return bool((self.controller and self.controller.running)
                    or any(es.running for es in self.engines.values()))

    @property
    def running(self):
        """True while the controller runs, or the ipcluster watching this cluster, or the
        process starting it."""
        if self.controller and self.controller.poll():
            return True
        return any(p is not None and not p.exited() for p in (self.ipcluster_process, self.starting_process))

    def _parent_pid(self):
        # children bound to our life only when we promise to clean up after ourselves
        return os.getpid() if self.shutdown_atexit else None

    def _launcher_kwargs(self):
        return dict(profile_dir=self.profile_dir, cluster_id=self.cluster_id, parent_pid=self._parent_pid(),
                    work_dir=self.work_dir, log=self.log)

    # --- cluster file

    def to_dict(self):
        """Everything needed to find (and stop) this cluster's processes from elsewhere."""
        d = {
            "cluster": {
                "class": f"{type(self).__module__}.{type(self).__qualname__}",
                "cluster_id": self.cluster_id,
                "profile_dir": self.profile_dir,
                "n": self.n,
                "controller_args": self.controller_args,
                "engine_args": self.engine_args,
                "controller_ip": self.controller_ip,
                "controller_location": self.controller_location,
                "delay": self.delay,
                "engine_timeout": self.engine_timeout,
                "ipcluster": self.ipcluster_process.to_dict() if self.ipcluster_process else None,
                "starting": self.starting_process.to_dict() if self.starting_process else None,
            },
            "controller": None,
            "engines": {"class": launcher_name(self.engine_launcher_class), "sets": {}},
        }
        if self.controller and self.controller.state != "after":
            d["controller"] = {"class": launcher_name(self.controller_launcher_class),
                               "state": self.controller.to_dict()}
        for set_id, engine_set in self.engines.items():
            if engine_set.state != "after":
                d["engines"]["sets"][set_id] = engine_set.to_dict()
        return d

    @classmethod
    def from_dict(cls, d, **kwargs):
        """Re-attach to a cluster described by :meth:`to_dict` (``shutdown_atexit=False``:
        a cluster re-attached to is stopped explicitly, not when this process exits)."""
        info = d["cluster"]
        kwargs.setdefault("shutdown_atexit", False)
        for key in ("cluster_id", "n", "controller_args", "engine_args", "controller_ip",
                    "controller_location", "delay", "engine_timeout"):
            if key in info:
                kwargs.setdefault(key, info[key])
        if "profile" not in kwargs:
            kwargs.setdefault("profile_dir", info["profile_dir"])
        engines = d.get("engines") or {}
        kwargs.setdefault("engines", engines.get("class", "local"))
        if d.get("controller"):
            kwargs.setdefault("controller", d["controller"]["class"])
        self = cls(**kwargs)
        for key, attr in (("ipcluster", "ipcluster_process"), ("starting", "starting_process")):
            if info.get(key):
                handle = ProcessHandle.from_dict(info[key])
                setattr(self, attr, None if handle.exited() else handle)
        launcher_kwargs = self._launcher_kwargs()
        del launcher_kwargs["parent_pid"]  # a fact about the running processes: keep the recorded one
        if d.get("controller"):
            try:
                self.controller = self.controller_launcher_class.from_dict(d["controller"]["state"], **launcher_kwargs)
            except NotRunning as e:
                self.log.info("%s", e)
        for set_id, state in engines.get("sets", {}).items():
            try:
                self.engines[set_id] = self.engine_launcher_class.from_dict(
                    state, engine_set_id=set_id, **launcher_kwargs)
            except NotRunning as e:
                self.log.info("%s", e)
        return self

    @classmethod
    def from_file(cls, cluster_file=None, *, profile=None, profile_dir=None, ipython_dir=None,
                  cluster_id="", **kwargs):
        """Re-attach to a cluster started elsewhere (``ipcluster start`` by default).

        FileNotFoundError if no such cluster file exists.
        """
        if cluster_file is None:
            location = connection.locate_profile_dir(profile, profile_dir, ipython_dir, create=False)
            cluster_file = files.cluster_file_path(location, cluster_id)
        d = files.read_cluster_file(cluster_file)
        if profile is not None:
            kwargs["profile"] = profile
        return cls.from_dict(d, cluster_file=cluster_file, ipython_dir=ipython_dir, **kwargs)

    def write_cluster_file(self):
        files.write_cluster_file(self.cluster_file, self.to_dict())

    def remove_cluster_file(self):
        files.remove_file(self.cluster_file)

    def update_cluster_file(self):
        """Write the cluster file while anything runs; remove it once nothing does."""
        if self._has_processes() or self.starting_process:
            self.write_cluster_file()
        else:
            self.remove_cluster_file()

    # --- starting

    def ensure_not_running(self):
        """Raise :class:`ClusterRunning` if a live cluster uses this profile and cluster id."""
        connection.locate_profile_dir(profile_dir=self.profile_dir, create=True)
        with files.start_lock(self.profile_dir):
            self._check_not_running()

    def _check_not_running(self):
        try:
            other = type(self).from_file(self.cluster_file)
        except (FileNotFoundError, ValueError, KeyError):
            return
        if other.running or other._has_processes():
            pid = other.controller.pid if other.controller else None
            raise ClusterRunning(
                f"cluster {self.cluster_id!r} in {self.profile_dir} is already running (controller pid {pid}); "
                f"stop it with: ipcluster stop --profile-dir {self.profile_dir} --cluster-id '{self.cluster_id}'"
            )
        self.log.debug("removing stale cluster file %s", self.cluster_file)
        self.remove_cluster_file()

    def _claim(self):
        """Check that no live cluster uses this profile/cluster id and write a cluster file
        saying that we are starting one, under the profile's start lock: two starts of the
        same cluster cannot both pass the check.  Nothing here awaits, so two clusters
        starting in one event loop cannot deadlock on the lock."""
        connection.locate_profile_dir(profile_dir=self.profile_dir, create=True)
        with files.start_lock(self.profile_dir):
            self._check_not_running()
            self.starting_process = ProcessHandle(os.getpid())
            self.write_cluster_file()

    async def _spawn_controller(self, **launcher_kwargs):
        if self.controller is not None and self.controller.running:
            raise RuntimeError("the controller is already running; call stop_controller() first")
        self._claim()
        try:
            files.remove_connection_files(self.profile_dir, self.cluster_id)
            args = []
            if self.controller_ip:
                args += ["--ip", self.controller_ip]
            elif not {"--ip", "--transport"} & {a.split("=")[0] for a in self.controller_args}:
                # engines started here run on this host: unix sockets move big arrays
                # about twice as fast as TCP loopback
                args += ["--transport", "ipc"]
            if self.controller_location:
                args += ["--location", self.controller_location]
            args += ["--log-level", logging.getLevelName(self.log_level)]
            kwargs = self._launcher_kwargs()
            kwargs.update(launcher_kwargs)
            self.controller = self.controller_launcher_class(args=args + self.controller_args, **kwargs)
            self.controller.on_stop(_log_stopped(self.log, "controller"))
            if self.shutdown_atexit:
                _atexit_clusters.add(self)
            await self.controller.start()
        finally:
            self.starting_process = None
            self.update_cluster_file()

    async def _controller_ready(self):
        try:
            await self.controller.wait_for_connection_files(self.engine_timeout)
        except BaseException:
            await self.stop_controller()
            raise

    async def start_controller(self, **launcher_kwargs):
        """Start the controller and wait until it is ready (its connection files exist).

        RuntimeError if it is already running, :class:`ClusterRunning` if another
        process runs a cluster with this profile and cluster id.
        """
        await self._spawn_controller(**launcher_kwargs)
        await self._controller_ready()

    def _new_engine_set_id(self):
        base = engine_set_id = f"{int(time.time())}"
        i = 1
        while engine_set_id in self.engines:
            engine_set_id = f"{base}-{i}"
            i += 1
        return engine_set_id

    def _engine_connection_info(self):
        if not (self.send_engines_connection_env and self.controller and self.controller.running):
            return None
        try:
            return connection.read_json(connection.connection_file(self.profile_dir, "engine", self.cluster_id))
        except (OSError, ValueError):
            return None  # not written yet: the engines wait for the file themselves

    async def start_engines(self, n=None, engine_set_id=None, **launcher_kwargs):
        """Start a set of ``n`` engines (default ``self.n``, else one per CPU); return its id.

        Call it again to add more engines: each call starts a new engine set.
        """
        n = engine_count(n) if n is not None else self.n if self.n is not None else cpu_count()
        if engine_set_id is None:
            engine_set_id = self._new_engine_set_id()
        elif engine_set_id in self.engines and self.engines[engine_set_id].running:
            raise ValueError(f"engine set {engine_set_id!r} is already running")
        connection.locate_profile_dir(profile_dir=self.profile_dir, create=True)
        kwargs = self._launcher_kwargs()
        args = ["--log-level", logging.getLevelName(self.log_level), *self.engine_args]
        kwargs.update(args=args, n=n, engine_set_id=engine_set_id, timeout=self.engine_timeout,
                      connection_info=self._engine_connection_info())
        kwargs.update(launcher_kwargs)
        engine_set = self.engines[engine_set_id] = self.engine_launcher_class(**kwargs)
        engine_set.on_stop(_log_stopped(self.log, f"engine set {engine_set_id}"))
        if self.shutdown_atexit:
            _atexit_clusters.add(self)
        self.log.info("starting %d engines (set %s)", n, engine_set_id)
        await engine_set.start()
        self.update_cluster_file()
        return engine_set_id

    async def add_engines(self, n=1):
        """Start ``n`` more engines (a new engine set); return the engine set id."""
        return await self.start_engines(n)

    async def start_cluster(self, n=None):
        """Start the controller (unless running) and ``n`` engines, at the same time; return self."""
        spawned = False
        try:
            if not (self.controller and self.controller.running):
                await self._spawn_controller()
                spawned = True
            if self.delay:
                await asyncio.sleep(self.delay)
            await self.start_engines(n)
            if spawned:
                await self._controller_ready()
        except BaseException:
            if spawned:
                await self.stop_cluster()
            raise
        return self

    # --- connecting

    async def connect_client(self, **client_kwargs):
        """A :class:`kernelpar.Client` connected to this cluster (``client.cluster is self``)."""
        import kernelpar

        if self.controller and self.controller.running:
            await self.controller.wait_for_connection_files(self.engine_timeout)
        path = connection.connection_file(self.profile_dir, "client", self.cluster_id)
        return kernelpar.Client(path, cluster=self, **client_kwargs)

    async def start_and_connect(self, n=None, activate=False):
        """Start the cluster, connect a client and wait until its engines have registered.

        Waits for ``n`` engines (default: every engine started) up to ``engine_timeout``
        seconds; fails early, with their output, if the engines all exit.
        ``activate=True`` registers the ``%px`` magics on a blocking view of all engines.
        """
        if n is None and self.n is None:
            n = cpu_count()
        await self.start_cluster(n)
        client = await self.connect_client()
        try:
            wanted = sum(es.n for es in self.engines.values() if es.running)
            await self._wait_for_engines(client, wanted)
        except BaseException:
            client.close()
            raise
        if activate:
            view = client[:]
            view.block = True
            view.activate()
        return client

    async def _wait_for_engines(self, client, n):
        def check():
            engine_sets = [es for es in self.engines.values() if es.n]
            if engine_sets and not any(es.poll() for es in engine_sets):
                output = "\n".join(es.get_output(tail=3000) for es in engine_sets)
                raise RuntimeError(f"all engines exited before {n} registered:\n{output}")
            if self.controller and not self.controller.poll():
                raise RuntimeError(f"the controller exited while waiting for engines:\n"
                                   f"{self.controller.get_output(tail=3000)}")

        return await wait_for_engines(client, n, self.engine_timeout, check)

    # --- stopping and signalling

    async def stop_engines(self, engine_set_id=None):
        """Stop one engine set (KeyError for an unknown id), or all of them."""
        if engine_set_id is not None and engine_set_id not in self.engines:
            raise KeyError(engine_set_id)
        await self._stop_engine_sets(list(self.engines) if engine_set_id is None else [engine_set_id])

    async def _stop_engine_sets(self, set_ids, term_grace=TERM_GRACE):
        await asyncio.gather(*(self.engines[i].stop(term_grace) for i in set_ids))
        for set_id in set_ids:
            self.engines.pop(set_id, None)
        self.update_cluster_file()

    async def stop_controller(self):
        """Stop the controller (nothing happens if it is not running)."""
        await self._stop_controller()

    async def _stop_controller(self, term_grace=TERM_GRACE):
        if self.controller is not None:
            await self.controller.stop(term_grace)
            self.controller = None
            if "--reuse" not in self.controller_args:
                # the controller removes them when it exits cleanly, not when SIGKILLed
                files.remove_connection_files(self.profile_dir, self.cluster_id)
        self.update_cluster_file()

    async def _stop_ipcluster(self):
        # a cluster re-attached from the file of a running ``ipcluster start``: ask that
        # process to stop (it then stops everything and exits) while we stop things too
        handle = self.ipcluster_process
        if handle is not None and handle.pid != os.getpid():
            await stop_handles([handle], term_grace=IPCLUSTER_STOP_GRACE)
        self.ipcluster_process = None

    async def stop_cluster(self):
        """Stop the engines, then the controller, and remove the cluster file."""
        # Engines first: they unregister from a live controller and exit at once; while a
        # controller that is already gone makes them wait out their socket linger (~1 s).
        # Both SIGTERM graces come out of one budget, so that even processes that ignore
        # SIGTERM are SIGKILLed and gone within STOP_DEADLINE.  Many engines per core need
        # longer to exit by themselves (each runs its exit handlers): the engines' grace
        # grows with that ratio, so they are not SIGKILLed while exiting cleanly.
        n_engines = sum(getattr(s, "n", 1) for s in self.engines.values())
        engine_grace = ENGINE_TERM_GRACE * max(1.0, n_engines / (2 * cpu_count()))
        deadline = time.monotonic() + STOP_DEADLINE + engine_grace - ENGINE_TERM_GRACE
        ipcluster = asyncio.ensure_future(self._stop_ipcluster())
        await self._stop_engine_sets(list(self.engines), engine_grace)
        await self._stop_controller(max(0.1, deadline - time.monotonic()))
        await ipcluster
        self.remove_cluster_file()

    async def restart_engines(self, engine_set_id=None):
        """Stop an engine set (or all) and start as many engines again (with new engine ids)."""
        set_ids = list(self.engines) if engine_set_id is None else [engine_set_id]
        for set_id in set_ids:
            n = self.engines[set_id].n
            await self.stop_engines(set_id)
            await self.start_engines(n, set_id)

    async def signal_engines(self, signum, engine_set_id=None):
        """Send ``signum`` to every engine of one engine set, or of all of them."""
        if engine_set_id is not None and engine_set_id not in self.engines:
            raise KeyError(engine_set_id)
        for set_id in list(self.engines) if engine_set_id is None else [engine_set_id]:
            self.engines[set_id].signal(signum)

    async def stop_engine(self, engine_id):
        raise NotImplementedError("engines are started and stopped in sets: use stop_engines(engine_set_id)")

    async def restart_engine(self, engine_id):
        raise NotImplementedError("engines are restarted in sets: use restart_engines(engine_set_id)")

    async def signal_engine(self, signum, engine_id):
        raise NotImplementedError("use client[engine_id] and view.signal(), or signal_engines(signum)")

    # --- context managers: yield a connected client, stop everything on exit

    def __enter__(self):
        try:
            self._context_client = self.start_and_connect_sync()
        except BaseException:
            self.stop_cluster_sync()
            raise
        return self._context_client

    def __exit__(self, *exc_info):
        self._close_context_client()
        self.stop_cluster_sync()

    async def __aenter__(self):
        try:
            self._context_client = await self.start_and_connect()
        except BaseException:
            await self.stop_cluster()
            raise
        return self._context_client

    async def __aexit__(self, *exc_info):
        self._close_context_client()
        await self.stop_cluster()

    def _close_context_client(self):
        client, self._context_client = self._context_client, None
        if client is not None:
            client.close()

    def __del__(self):
        if self.shutdown_atexit and self._has_processes():
            try:
                self.stop_cluster_sync()
            except Exception:
                pass
