"""``ipcluster``: start, stop and list kernelpar clusters from the command line.

::

    ipcluster start -n 4 [--profile P | --profile-dir D] [--cluster-id I] [--daemonize]
                         [--ip IP] [--location HOST] [--engines local] [-- CONTROLLER ARGS]
    ipcluster stop [--profile P] [--cluster-id I] [--all]
    ipcluster list [-o json]
    ipcluster engines -n 2 [--profile P | --profile-dir D] [--cluster-id I] [--daemonize]
    ipcluster clean [--profile P | --profile-dir D | --all] [--force]
    ipcluster local -n 4 [-r] [-x] [-y] ...   # IPython 0.10: a mode first, its options after it

Arguments after ``--`` go to the controller (``ipcluster start -n 2 -- --ping 200``).
``ipcluster`` uses cluster id ``""`` by default, as ipyparallel does, so one
``ipcluster start`` per profile unless ``--cluster-id`` says otherwise.

This is a dispatcher: a first argument that is an IPython 0.10 mode (``local``,
``mpiexec``, ``mpirun``, ``pbs``, ``sge``, ``lsf``, ``ssh``), or no command but ``-n``
(0.9's ``ipcluster -n 4``), runs the 0.10 command line (:mod:`.legacycli`); anything
else the ipyparallel one here.

Exit status: 0 ok; 1 failed (``clean``: a cluster is running); 2 usage; 10 already
running; 11 nothing to stop.
"""

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys

from .._version import __version__
from ..wire import connection
from . import files
from .cluster import Cluster
from .launchers import LauncherNotAvailable

ALREADY_STARTED = 10
ALREADY_STOPPED = 11


def _add_profile_args(p):
    p.add_argument("--profile", default=None, help="profile name (default: 'default')")
    p.add_argument("--profile-dir", default=None, help="profile directory (instead of --profile)")
    p.add_argument("--ipython-dir", default=None, help="IPython directory (default: $IPYTHONDIR or ~/.ipython)")


def _add_start_args(p):
    _add_profile_args(p)
    p.add_argument("-n", "--n", type=int, default=None, help="number of engines (default: one per CPU)")
    p.add_argument("--cluster-id", default="", help="cluster id (default: '')")
    p.add_argument("--daemonize", "--daemon", action="store_true",
                   help="run in the background; return once all engines have registered")
    p.add_argument("--ip", default=None, help="interface the controller listens on (default 127.0.0.1)")
    p.add_argument("--location", default=None, help="host name engines and clients use to reach the controller")
    # defaults None: the profile's ipcluster_config may set them (else local, local, 0, 60)
    p.add_argument("--engines", default=None, help="engine launcher (available: local)")
    p.add_argument("--controller", default=None, help="controller launcher (available: local)")
    p.add_argument("--delay", type=float, default=None,
                   help="seconds between starting the controller and the engines (default 0)")
    p.add_argument("--engine-timeout", type=float, default=None,
                   help="seconds to wait for the controller and the engines (default 60)")
    p.add_argument("--work-dir", default=None, help="working directory of the engines (default: this one)")
    p.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ... (default INFO)")
    p.add_argument("--debug", action="store_const", const="DEBUG", dest="log_level", help="--log-level DEBUG")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="ipcluster", description="Start, stop and list kernelpar clusters (a controller and engines).",
        epilog="Arguments after '--' are passed to the controller, e.g. ipcluster start -n 2 -- --ping 200. "
               "IPython 0.10 forms: ipcluster local|mpiexec|mpirun|pbs|sge|lsf|ssh [-n N] ... "
               "(see ipcluster local -h)",
    )
    parser.add_argument("--help-all", action="help", help="the same as --help")
    parser.add_argument("--version", action="version", version=f"kernelpar {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    _add_start_args(sub.add_parser("start", help="start a cluster (in the foreground unless --daemonize)"))

    stop = sub.add_parser("stop", help="stop a running cluster")
    _add_profile_args(stop)
    stop.add_argument("--cluster-id", default="", help="cluster id (default: '')")
    stop.add_argument("--all", action="store_true", help="stop every cluster of the profile")
    stop.add_argument("cluster_ids", nargs="*", help="cluster ids to stop (instead of --cluster-id)")

    ls = sub.add_parser("list", help="list clusters (of every profile, unless one is given)")
    _add_profile_args(ls)
    ls.add_argument("-o", "--output", choices=("text", "json"), default="text", help="output format")

    engines = sub.add_parser("engines", help="add engines to a running cluster (they stop with this command "
                                             "unless --daemonize)")
    _add_profile_args(engines)
    engines.add_argument("-n", "--n", type=int, default=None, help="number of engines (default: one per CPU)")
    engines.add_argument("--cluster-id", default="", help="cluster id (default: '')")
    engines.add_argument("--engines", default=None, help="engine launcher (default: the cluster's)")
    engines.add_argument("--daemonize", "--daemon", action="store_true",
                         help="return once the engines have registered; they stop with the cluster")
    engines.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ... (default INFO)")
    engines.add_argument("--debug", action="store_const", const="DEBUG", dest="log_level", help="--log-level DEBUG")

    clean = sub.add_parser("clean", help="remove the cluster, connection and log files a profile has left")
    _add_profile_args(clean)
    clean.add_argument("--all", action="store_true", help="clean every profile, not just one")
    clean.add_argument("--force", action="store_true",
                       help="clean even where a cluster is running (its processes are not stopped: "
                            "they can be left as orphans)")
    return parser


def split_controller_args(argv):
    """``(ipcluster's arguments, the controller's)``: what follows ``--`` goes to the controller."""
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1:]
    return argv, []


def _configure_logging(level):
    logging.basicConfig(level=level.upper() if isinstance(level, str) else level, stream=sys.stderr,
                        format="%(asctime)s [ipcluster] %(levelname)s %(message)s", datefmt="%H:%M:%S")


def _profile_dir(args):
    return connection.locate_profile_dir(args.profile, args.profile_dir, args.ipython_dir, create=False)


def cmd_list(args):
    if args.profile or args.profile_dir:
        profile_dirs = [_profile_dir(args)]
    else:
        profile_dirs = files.profile_dirs(args.ipython_dir)
    clusters = []
    for profile_dir in profile_dirs:
        for path in files.cluster_files(profile_dir):
            try:
                clusters.append(Cluster.from_file(path, ipython_dir=args.ipython_dir))
            except (OSError, ValueError, KeyError, LauncherNotAvailable) as e:
                print(f"ipcluster list: cannot read {path}: {e}", file=sys.stderr)
    if args.output == "json":
        json.dump([c.to_dict() for c in clusters], sys.stdout, indent=1)
        print()
        return 0
    rows = [("PROFILE", "CLUSTER ID", "RUNNING", "ENGINES", "LAUNCHER")]
    for c in clusters:
        engines = sum(es.running_count for es in c.engines.values() if es.running)
        rows.append((files.profile_name(c.profile_dir, args.ipython_dir), c.cluster_id or "''",
                     str(c.running), str(engines), c.engine_launcher_class.name or "?"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    return 0


async def _stop_clusters(clusters):
    await asyncio.gather(*(c.stop_cluster() for c in clusters))


def cmd_stop(args):
    profile_dir = _profile_dir(args)
    if args.all:
        paths = files.cluster_files(profile_dir)
        if not paths:
            print(f"ipcluster stop: no clusters in {profile_dir}", file=sys.stderr)
            return ALREADY_STOPPED
    else:
        paths = [files.cluster_file_path(profile_dir, cid) for cid in (args.cluster_ids or [args.cluster_id])]
    running, status = [], 0
    for path in paths:
        cluster_id = files.cluster_id_from_path(path)
        try:
            cluster = Cluster.from_file(path, ipython_dir=args.ipython_dir)
        except FileNotFoundError:
            print(f"ipcluster stop: no cluster {cluster_id!r} is running in {profile_dir} (no {path})",
                  file=sys.stderr)
            status = ALREADY_STOPPED
            continue
        except (ValueError, KeyError, LauncherNotAvailable) as e:
            print(f"ipcluster stop: cannot read {path}: {e}", file=sys.stderr)
            status = 1
            continue
        if cluster.running or cluster._has_processes():
            running.append(cluster)
        else:
            cluster.remove_cluster_file()
            print(f"ipcluster stop: cluster {cluster_id!r} was not running (removed its stale cluster file)",
                  file=sys.stderr)
            status = ALREADY_STOPPED
    asyncio.run(_stop_clusters(running))
    for cluster in running:
        print(f"Stopped cluster {cluster.cluster_id!r} in {cluster.profile_dir}")
    if status == 1:
        return 1
    return 0 if running else status


def cmd_clean(args):
    """Remove what clusters left in the profile(s): stale cluster files, logs and
    connection files.  A profile where a cluster runs is left alone unless ``--force``."""
    profile_dirs = files.profile_dirs(args.ipython_dir) if args.all else [_profile_dir(args)]
    status = 0
    for profile_dir in profile_dirs:
        if not os.path.isdir(profile_dir):
            print(f"ipcluster clean: no profile directory {profile_dir}", file=sys.stderr)
            status = 1
            continue
        # under the start lock (where a cluster ever started): no cluster starts while
        # its files are judged and removed
        started_here = os.path.isdir(os.path.join(profile_dir, "security"))
        with files.start_lock(profile_dir) if started_here else contextlib.nullcontext():
            cluster_files, running = [], []
            for path in files.cluster_files(profile_dir):
                cluster_files.append(path)
                try:
                    cluster = Cluster.from_file(path, ipython_dir=args.ipython_dir)
                except (OSError, ValueError, KeyError, LauncherNotAvailable) as e:
                    print(f"ipcluster clean: removing {path}, which cannot be read: {e}", file=sys.stderr)
                    continue
                if cluster.running or cluster._has_processes():
                    running.append(cluster)
            if running and not args.force:
                for cluster in running:
                    print(f"ipcluster clean: cluster {cluster.cluster_id!r} in {profile_dir} is running: stop it "
                          f"first (ipcluster stop --profile-dir {profile_dir} --cluster-id '{cluster.cluster_id}'), "
                          "or use --force, which can leave its processes running as orphans", file=sys.stderr)
                status = 1
                continue
            removed = cluster_files + files.leftover_files(profile_dir)
            for path in removed:
                files.remove_file(path)
        print(f"Cleaned {profile_dir}: removed {len(removed)} file{'' if len(removed) == 1 else 's'}")
    return status


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    from . import legacycli  # it builds on this module

    if legacycli.is_legacy(argv):
        sys.exit(legacycli.main(argv))
    argv, controller_args = split_controller_args(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "start":
        from .start import cmd_start

        if args.n is not None and args.n < 0:
            parser.error(f"-n must be >= 0, not {args.n}")
        _configure_logging(args.log_level)
        sys.exit(cmd_start(args, controller_args))
    if controller_args:
        parser.error(f"'--' arguments are only for 'ipcluster start', not {args.command!r}")
    if args.command == "engines":
        from .engines import cmd_engines

        if args.n is not None and args.n < 1:
            parser.error(f"-n must be >= 1, not {args.n}")
        _configure_logging(args.log_level)
        sys.exit(cmd_engines(args))
    sys.exit({"stop": cmd_stop, "list": cmd_list, "clean": cmd_clean}[args.command](args))
