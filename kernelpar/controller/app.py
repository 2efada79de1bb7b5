"""``ipcontroller`` / ``python -m kernelpar.controller``: run one controller process.

Parses the command line, binds everything (:class:`.server.ControllerServer`), writes
the client and engine connection files (mode 0600) only once every socket is bound (so
"the file exists" means "the controller is ready"), runs the epoll reactor, and on exit
(SIGTERM, SIGINT, a hub ``shutdown_request``, or the death of the launching process
named in ``$KERNELPAR_PARENT_PID``) closes the sockets, terminates the zmq context and
removes the files unless ``--reuse`` was given.

It also speaks IPython 0.10: the FURL files of the legacy clients and ``ipengine
--furl-file`` (:mod:`.furlfiles`, options ``-r``, ``-x``, ``-y``, ``--client-port``, ...)
and ``-l/--logfile PREFIX`` (log to ``PREFIX<pid>.log``).
"""

import argparse
import logging
import os
import secrets
import shutil
import sys
import tempfile

from .. import profileconfig
from .._version import __version__
from ..wire import connection, protocol
from ..wire.session import Session
from . import furlfiles
from .furlservice import FurlPortError
from .schemes import SCHEMES

log = logging.getLogger("kernelpar.controller")

#: the task schemes: the Python scheduler's, and the C queue's 'pure'
SCHEME_NAMES = (*SCHEMES, "pure")


def build_parser():
    p = argparse.ArgumentParser(prog="ipcontroller", description="Start a kernelpar controller (hub and queues).")
    p.add_argument("--help-all", action="help", help="the same as --help")
    p.add_argument("--ip", default="127.0.0.1", help="interface to bind ('*' for all; default 127.0.0.1)")
    p.add_argument("--transport", choices=("tcp", "ipc"), default="tcp",
                   help="tcp (default), or ipc: unix sockets in a private directory, for engines on this host")
    p.add_argument("--location", default=None, help="host name or IP that remote engines and clients should use")
    p.add_argument("--ping", type=float, default=protocol.DEFAULT_HB_PERIOD_MS,
                   help="heartbeat period in milliseconds (default %(default)s)")
    p.add_argument("--ping-misses", type=int, default=protocol.DEFAULT_HB_MAX_MISSED,
                   help="missed heartbeats before an engine is declared dead (default %(default)s)")
    p.add_argument("--profile", default="default")
    p.add_argument("--profile-dir", default=None)
    p.add_argument("--ipython-dir", default=None)
    p.add_argument("--cluster-id", default="")
    p.add_argument("--reuse", action="store_true", help="keep the connection files when the controller exits")
    p.add_argument("--scheme", choices=SCHEME_NAMES, default="leastload",
                   help="how load-balanced tasks are placed (default %(default)s; 'pure' is a C queue without flags)")
    p.add_argument("--hwm", type=int, default=1,
                   help="load-balanced tasks outstanding per engine (default %(default)s; 0: no limit)")
    p.add_argument("--task-idle-timeout", type=float, default=30.0, metavar="SECONDS",
                   help="TaskClient tasks that every idle engine refuses (depend, TaskRejectError) fail with "
                        "TaskTimeout after this long (default %(default)s, as IPython 0.10)")
    store = p.add_mutually_exclusive_group()
    store.add_argument("--dictdb", dest="db", action="store_const", const="dictdb", default="dictdb",
                       help="keep task records in memory, bounded (default)")
    store.add_argument("--sqlitedb", dest="db", action="store_const", const="sqlitedb",
                       help="keep task records in <profile>/db/tasks.db: they survive a controller restart")
    store.add_argument("--nodb", dest="db", action="store_const", const="nodb", help="keep no task records")
    p.add_argument("--record-limit", type=int, default=1024, help="task records kept in memory (dictdb)")
    p.add_argument("--size-limit", type=int, default=128 * 1024 * 1024, help="bytes of task data kept in memory (dictdb)")
    p.add_argument("--log-level", default="INFO")
    p.add_argument("--debug", action="store_const", const="DEBUG", dest="log_level", help="--log-level DEBUG")
    p.add_argument("-l", "--logfile", default=None, metavar="PREFIX",
                   help="log to PREFIX<pid>.log (warnings also to stderr); default: stderr")
    p.add_argument("--version", action="version", version=f"kernelpar {__version__}")
    furlfiles.add_arguments(p)
    return p


def configure_logging(level, name, logfile_prefix=None):
    """Log to stderr, or (0.10's ``-l PREFIX``) to ``PREFIX<pid>.log`` with warnings also on stderr."""
    if isinstance(level, str) and level.isdigit():
        level = int(level)
    formatter = logging.Formatter(f"%(asctime)s [{name}] %(levelname)s %(message)s", datefmt="%H:%M:%S")
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setFormatter(formatter)
    handlers = [stderr]
    if logfile_prefix:
        path = f"{os.path.abspath(os.path.expanduser(logfile_prefix))}{os.getpid()}.log"
        os.makedirs(os.path.dirname(path), exist_ok=True)
        logfile = logging.FileHandler(path)
        logfile.setFormatter(formatter)
        stderr.setLevel(logging.WARNING)
        handlers.append(logfile)
    logging.basicConfig(level=level, handlers=handlers)


def parse_args(argv=None):
    """The command line, over the defaults the profile's ``ipcontroller_config`` sets
    (:mod:`kernelpar.profileconfig`): an option given here wins."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        profile_dir = connection.locate_profile_dir(args.profile, args.profile_dir, args.ipython_dir, create=False)
    except OSError:
        return args
    configured = profileconfig.profile_options(profile_dir, "ipcontroller", profileconfig.CONTROLLER_TRAITS)
    if configured.get("scheme", "leastload") not in SCHEME_NAMES:
        log.warning("ignoring TaskScheduler.scheme_name = %r: not one of %s", configured.pop("scheme"),
                    ", ".join(SCHEME_NAMES))
    if configured:
        parser.set_defaults(**configured)
        args = parser.parse_args(argv)
    return args


def main(argv=None):
    args = parse_args(argv)
    configure_logging(args.log_level.upper() if isinstance(args.log_level, str) else args.log_level, "controller",
                      args.logfile)
    if args.ping <= 0:
        sys.exit(f"ipcontroller: --ping must be positive, not {args.ping}")
    problem = furlfiles.check_arguments(args)
    if problem:
        sys.exit(f"ipcontroller: {problem}")

    import zmq
    from twisted.internet import epollreactor

    epollreactor.install()
    from twisted.internet import reactor, task
    from twisted.python import log as twisted_log

    from .records import make_db
    from .server import ControllerServer

    twisted_log.PythonLoggingObserver("kernelpar.controller").start()

    profile_dir = connection.locate_profile_dir(args.profile, args.profile_dir, args.ipython_dir)
    if args.transport == "ipc":
        if args.ip != "127.0.0.1":
            sys.exit("ipcontroller: --transport=ipc serves only this host; it cannot be combined with --ip")
        # a short private path: unix socket paths are limited to ~107 bytes
        ipc_dir = tempfile.mkdtemp(prefix="kernelpar-")
        interface = f"ipc://{ipc_dir}/c"
    else:
        ipc_dir = None
        interface = f"tcp://{args.ip}"
    if args.db == "dictdb":
        db = make_db("dictdb", record_limit=args.record_limit, size_limit=args.size_limit)
    elif args.db == "sqlitedb":
        db = make_db("sqlitedb", location=os.path.join(profile_dir, "db"))
    else:
        db = make_db("nodb")
    key = secrets.token_hex(32).encode("ascii")
    session = Session(key, username="kernelpar-controller")
    ctx = zmq.Context()
    try:
        server = ControllerServer(
            reactor, ctx, session, connection.versions(), interface=interface, location=args.location,
            hb_period=args.ping / 1000.0, max_missed=args.ping_misses, db=db, scheme=args.scheme, hwm=args.hwm,
            task_idle_timeout=args.task_idle_timeout,
        )
    except zmq.ZMQError as e:  # binding: an --ip that is no address of this machine, say
        ctx.destroy(linger=0)
        if ipc_dir is not None:
            shutil.rmtree(ipc_dir, ignore_errors=True)
        sys.exit(f"ipcontroller: cannot listen on {interface}: {e.strerror}"
                 + (" (--ip must be an address of this machine, or '*')" if ipc_dir is None else ""))
    client_info, engine_info = server.connection_info(key)
    client_info["cluster_id"] = engine_info["cluster_id"] = args.cluster_id
    files = {
        kind: connection.connection_file(profile_dir, kind, args.cluster_id) for kind in ("client", "engine")
    }
    ipython_dir = os.path.abspath(os.path.expanduser(args.ipython_dir or connection.ipython_dir()))
    legacy = None
    if furlfiles.wanted(args, profile_dir, ipython_dir):
        legacy = furlfiles.LegacyFurls(args, ipython_dir)
        legacy.prepare()
        try:
            legacy.start_service(reactor, ctx, client_info, engine_info)
        except FurlPortError as e:
            server.close(linger=0)
            ctx.term()
            if ipc_dir is not None:
                shutil.rmtree(ipc_dir, ignore_errors=True)
            sys.exit(f"ipcontroller: {e}")

    def write_files():
        server.start()
        if legacy is not None:
            legacy.write(lambda: len(server.hub.registry.registered()), reactor)
        connection.write_private_json(files["engine"], engine_info)
        connection.write_private_json(files["client"], client_info)
        log.info("controller ready (pid %d): %s", os.getpid(), files["client"])

    def cleanup():
        # also when a signal stops the reactor: clients must not wait for results for ever
        server.hub.announce_stop()
        if legacy is not None:
            legacy.close()
        server.close()
        if not args.reuse:
            for path in files.values():
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
        if ipc_dir is not None:
            shutil.rmtree(ipc_dir, ignore_errors=True)

    parent = os.environ.get("KERNELPAR_PARENT_PID")
    if parent and parent.isdigit():
        def watch_parent():
            if os.getppid() != int(parent):
                log.warning("the process that started this controller (pid %s) is gone: shutting down", parent)
                server.hub.shutdown()

        task.LoopingCall(watch_parent).start(1.0, now=False)

    reactor.callWhenRunning(write_files)
    reactor.addSystemEventTrigger("before", "shutdown", cleanup)
    reactor.run()
    ctx.term()
    log.info("controller stopped")
