"""The traitlets configuration of an IPython profile, read as far as kernelpar has equivalents.

ipyparallel's applications are traitlets apps: a profile made by ``ipython profile create
--parallel`` holds ``ipcluster_config.py``, ``ipcontroller_config.py`` and
``ipengine_config.py`` (or ``.json``), where users write ``c.Cluster.n = 4`` or
``c.HeartMonitor.period = 1000``.  kernelpar's tools take options, not traits, so this
module reads those files (with traitlets' own loaders: the file is Python run with
``c = get_config()``) and translates the traits it knows into the option names of
:class:`~kernelpar.cluster.Cluster` (:data:`CLUSTER_TRAITS`) and of ``ipcontroller``
(:data:`CONTROLLER_TRAITS`).  Those become defaults: what the caller passes explicitly
wins.  A trait with no equivalent is named in one warning and otherwise ignored; a file
that cannot be read is a warning too, never an error that stops a cluster.
"""

import logging
import os

log = logging.getLogger("kernelpar.config")


def _launcher(value):
    # ipyparallel writes launchers as import strings of its own classes: keep the class name,
    # which kernelpar's launcher lookup knows ('LocalEngineSetLauncher' -> local)
    if isinstance(value, str) and "." in value and value.rpartition(".")[2].endswith("Launcher"):
        return value.rpartition(".")[2]
    return value


def _db(value):
    name = str(value).rpartition(".")[2].lower()
    if name not in ("dictdb", "sqlitedb", "nodb"):
        raise ValueError(f"no kernelpar task store for db_class {value!r} (DictDB, SQLiteDB or NoDB)")
    return name


def _same(value):
    return value


#: ``(class, trait) -> (Cluster argument, conversion)``, from ipcluster_config
CLUSTER_TRAITS = {
    ("Cluster", "n"): ("n", _same),
    ("IPClusterEngines", "n"): ("n", _same),
    ("IPClusterStart", "n"): ("n", _same),
    ("Cluster", "engines"): ("engines", _launcher),
    ("Cluster", "engine_launcher_class"): ("engines", _launcher),
    ("IPClusterEngines", "engine_launcher_class"): ("engines", _launcher),
    ("Cluster", "controller"): ("controller", _launcher),
    ("Cluster", "controller_launcher_class"): ("controller", _launcher),
    ("IPClusterStart", "controller_launcher_class"): ("controller", _launcher),
    ("Cluster", "controller_args"): ("controller_args", list),
    ("LocalControllerLauncher", "controller_args"): ("controller_args", list),
    ("LocalEngineSetLauncher", "engine_args"): ("engine_args", list),
    ("LocalEngineLauncher", "engine_args"): ("engine_args", list),
    ("Cluster", "controller_ip"): ("controller_ip", _same),
    ("Cluster", "controller_location"): ("controller_location", _same),
    ("Cluster", "delay"): ("delay", _same),
    ("IPClusterStart", "delay"): ("delay", _same),
    ("Cluster", "engine_timeout"): ("engine_timeout", _same),
    ("Cluster", "cluster_id"): ("cluster_id", _same),
    ("Cluster", "shutdown_atexit"): ("shutdown_atexit", _same),
    ("Cluster", "send_engines_connection_env"): ("send_engines_connection_env", _same),
    ("IPClusterEngines", "work_dir"): ("work_dir", _same),
}

#: ``(class, trait) -> (ipcontroller option dest, conversion)``, from ipcontroller_config
CONTROLLER_TRAITS = {
    ("IPController", "ip"): ("ip", _same),
    ("HubFactory", "ip"): ("ip", _same),
    ("IPController", "location"): ("location", _same),
    ("IPController", "reuse_files"): ("reuse", bool),
    ("IPControllerApp", "reuse_files"): ("reuse", bool),
    ("HeartMonitor", "period"): ("ping", float),
    ("HeartMonitor", "max_heartmonitor_misses"): ("ping_misses", int),
    ("TaskScheduler", "hwm"): ("hwm", int),
    ("TaskScheduler", "scheme_name"): ("scheme", str),
    ("IPController", "db_class"): ("db", _db),
    ("HubFactory", "db_class"): ("db", _db),
    ("DictDB", "record_limit"): ("record_limit", int),
    ("DictDB", "size_limit"): ("size_limit", int),
}


def load(profile_dir, app):
    """The profile's ``<app>_config.json`` then ``<app>_config.py`` merged (a traitlets
    ``Config``; empty when there are none or traitlets is missing)."""
    try:
        from traitlets.config.loader import Config, JSONFileConfigLoader, PyFileConfigLoader
    except ImportError:
        return {}
    config = Config()
    for loader, ext in ((JSONFileConfigLoader, "json"), (PyFileConfigLoader, "py")):
        path = os.path.join(profile_dir, f"{app}_config.{ext}")
        if not os.path.isfile(path):
            continue
        try:
            config.merge(loader(os.path.basename(path), os.path.dirname(path)).load_config())
        except Exception as e:  # noqa: BLE001 (a user's file: whatever it raises, say so and go on)
            log.warning("ignoring %s: %s: %s", path, type(e).__name__, e)
    return config


def options(config, table, source):
    """``{option: value}`` for the traits of ``config`` that ``table`` knows; the others
    are named in one warning (``source`` says where they came from)."""
    found, unknown = {}, []
    for section, traits in config.items():
        if not hasattr(traits, "items"):
            continue
        for trait, value in traits.items():
            entry = table.get((section, trait))
            if entry is None:
                unknown.append(f"{section}.{trait}")
                continue
            name, convert = entry
            try:
                found[name] = convert(value)
            except (TypeError, ValueError) as e:
                log.warning("%s: ignoring %s.%s = %r: %s", source, section, trait, value, e)
    if unknown:
        log.warning("%s: kernelpar has no equivalent for %s (ignored)", source, ", ".join(sorted(unknown)))
    return found


def profile_options(profile_dir, app, table):
    """:func:`options` of the profile's configuration for ``app`` (``{}`` without one)."""
    if not profile_dir or not os.path.isdir(profile_dir):
        return {}
    config = load(profile_dir, app)
    return options(config, table, f"{app}_config in {profile_dir}") if config else {}


def cluster_options(profile_dir, config=None, load_profile=True):
    """What a ``Cluster`` takes for the arguments it is not given: ``config`` (a traitlets
    ``Config``) over the profile's ``ipcluster_config`` (read only with ``load_profile``)."""
    found = profile_options(profile_dir, "ipcluster", CLUSTER_TRAITS) if load_profile else {}
    if config:
        found.update(options(config, CLUSTER_TRAITS, "Cluster(config=...)"))
    return found
