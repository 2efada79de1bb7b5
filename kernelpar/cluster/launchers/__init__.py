"""Launchers, found by name.

``Cluster(engines='local')`` and ``ipcluster start --engines local`` look the name up in
:data:`ENGINE_LAUNCHERS` / :data:`CONTROLLER_LAUNCHERS` (case-insensitive; ipyparallel's
class names such as ``'LocalEngineSetLauncher'`` work too).  A launcher class or a
``"package.module.Class"`` import string is accepted as well.  The other launchers
ipyparallel has (MPI, SSH, batch systems) are known names that are not implemented yet:
asking for one says so plainly instead of failing somewhere later.  A new launcher
subclasses :class:`~.base.BaseLauncher` and adds itself to these dicts.
"""

import importlib

from .base import BaseLauncher, NotRunning
from .local import LocalControllerLauncher, LocalEngineSetLauncher

ENGINE_LAUNCHERS = {"local": LocalEngineSetLauncher}
CONTROLLER_LAUNCHERS = {"local": LocalControllerLauncher}

# ipyparallel's launcher names (and the IPython 0.10 ipcluster modes), not written yet
PLANNED_LAUNCHERS = {
    "mpi": "mpi", "mpiexec": "mpi", "mpirun": "mpi", "ssh": "ssh", "sshproxy": "sshproxy",
    "pbs": "pbs", "sge": "sge", "lsf": "lsf", "htcondor": "htcondor", "slurm": "slurm",
    "winhpc": "winhpc", "batch": "batch",
}


class LauncherNotAvailable(ValueError):
    """The requested launcher does not exist (or does not exist yet)."""


def _normalize(name):
    key = name.strip().lower()
    for suffix in ("enginesetlauncher", "controllerlauncher", "launcher"):
        if key.endswith(suffix) and key != suffix:
            return key[: -len(suffix)]
    return key


def _resolve(spec, registry, kind):
    if isinstance(spec, type):
        return spec
    if "." in spec:
        module, _, attr = spec.rpartition(".")
        try:
            return getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as e:
            raise LauncherNotAvailable(f"cannot import {kind} launcher {spec!r}: {e}") from None
    key = _normalize(spec)
    if key in registry:
        return registry[key]
    available = ", ".join(sorted(registry))
    if key in PLANNED_LAUNCHERS:
        raise LauncherNotAvailable(
            f"the {PLANNED_LAUNCHERS[key]!r} {kind} launcher is not available yet in kernelpar "
            f"(available: {available})"
        )
    raise LauncherNotAvailable(f"unknown {kind} launcher {spec!r} (available: {available})")


def engine_launcher_class(spec="local"):
    """The engine-set launcher class for a name, class or import string."""
    return _resolve(spec, ENGINE_LAUNCHERS, "engine")


def controller_launcher_class(spec="local"):
    """The controller launcher class for a name, class or import string."""
    return _resolve(spec, CONTROLLER_LAUNCHERS, "controller")


def launcher_name(cls):
    """The short name a cluster file records for a launcher class."""
    if cls.name and (ENGINE_LAUNCHERS.get(cls.name) is cls or CONTROLLER_LAUNCHERS.get(cls.name) is cls):
        return cls.name
    return f"{cls.__module__}.{cls.__qualname__}"


__all__ = [
    "BaseLauncher", "NotRunning", "LauncherNotAvailable", "LocalControllerLauncher",
    "LocalEngineSetLauncher", "ENGINE_LAUNCHERS", "CONTROLLER_LAUNCHERS", "PLANNED_LAUNCHERS",
    "engine_launcher_class", "controller_launcher_class", "launcher_name",
]
