"""``ipengine`` / ``python -m kernelpar.engine``: find the controller and run an engine.

Connection info comes from, in order: ``$KERNELPAR_CONNECTION_INFO`` (or
``$IPP_CONNECTION_INFO``), the JSON engine dict a launcher passes so no file has to
exist; ``--file PATH``; IPython 0.10's ``--furl-file PATH`` (an engine FURL, redeemed
with the controller for the same dict); the profile's
``ipcontroller[-<cluster_id>]-engine.json``, or, when that does not exist and no
profile or cluster id was named, 0.10's default engine FURL file
``<IPYTHONDIR>/security/ipcontroller-engine.furl`` if that exists (the 0.10 way to run
engines on another host: copy that file there).  A file may not exist yet when engines
start together with the controller, so it is polled for (every 50 ms, up to
``--timeout`` seconds) before the engine gives up with an error naming the path; the
FURL's controller must answer within the same timeout.

As 0.10's engines did, an engine puts ``''`` at the front of ``sys.path`` (modules in
its working directory, which is the directory it was started in, are importable), and
``-l/--logfile PREFIX`` logs to ``PREFIX<pid>.log``.

The main thread installs the SIGINT/SIGTERM handlers (SIGINT interrupts running user
code and is ignored while idle; SIGTERM shuts the engine down cleanly), starts the IO
thread (:mod:`.iothread`) and then serves requests (:mod:`.kernel`) until the engine
stops.  The exit status is 0 after a requested shutdown, 1 after a failure once
registered, and ``EXIT_NOT_REGISTERED`` (3) when the engine never registered (no
connection info, no controller, refused): ``ipcluster`` tells engines that could not
start from engines that ran and ended.
"""

import argparse
import atexit
import json
import logging
import os
import signal
import sys
import time

from .._version import __version__
from ..wire import furl as furls
from ..wire import furlrequest, shm
from ..wire.connection import (
    connection_file,
    connection_info_from_env,
    locate_profile_dir,
    read_json,
    version_mismatch,
    versions,
)
from ..wire.protocol import EXIT_NOT_REGISTERED
from ..wire.session import new_id
from .kernel import EngineShutdown, Kernel, signal_handler_codes

log = logging.getLogger("kernelpar.engine")

FILE_POLL_INTERVAL = 0.05
#: how long the main thread waits for the IO thread to finish closing at exit
IO_JOIN_TIMEOUT = 10.0
REQUIRED_KEYS = ("interface", "key", "registration", "mux", "control", "iopub", "hb_ping", "hb_pong")
PARENT_PID_ENV = "KERNELPAR_PARENT_PID"


class StartupError(Exception):
    """The engine cannot start; the message says why, for the user."""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="ipengine", description="Start a kernelpar engine.")
    parser.add_argument("--help-all", action="help", help="the same as --help")
    parser.add_argument("--version", action="version", version=f"kernelpar {__version__}")
    parser.add_argument("--file", metavar="PATH", help="the controller's engine connection file")
    parser.add_argument("--profile", metavar="NAME", help="IPython profile to find the connection file in")
    parser.add_argument("--profile-dir", metavar="DIR", help="profile directory (instead of --profile)")
    parser.add_argument("--cluster-id", metavar="ID", default="", help="cluster id in the connection file name")
    parser.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=float,
        default=10.0,
        help="how long to wait for the connection file to appear (default: 10)",
    )
    parser.add_argument("--id", metavar="N", type=_engine_id, help="engine id to ask the controller for")
    parser.add_argument(
        "--log-level", metavar="LEVEL", default="INFO", type=_log_level, help="DEBUG, INFO, WARNING, ..."
    )
    parser.add_argument("--debug", action="store_const", const=logging.DEBUG, dest="log_level",
                        help="--log-level DEBUG")
    legacy = parser.add_argument_group("IPython 0.10 options")
    legacy.add_argument("--furl-file", metavar="PATH",
                        help="the controller's engine FURL file (default, when no connection file exists: "
                             "<IPYTHONDIR>/security/ipcontroller-engine.furl)")
    legacy.add_argument("-l", "--logfile", metavar="PREFIX", help="log to PREFIX<pid>.log (default: stderr)")
    legacy.add_argument("--mpi", metavar="NAME", nargs="?", const="mpi4py", default="",
                        help="mpi4py|pytrilinos: not available yet in kernelpar")
    return parser.parse_args(argv)


def _engine_id(value):
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an engine id: {value!r}") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"an engine id cannot be negative: {number}")
    return number


def _log_level(value):
    if value.isdigit():
        return int(value)
    level = logging.getLevelName(value.upper())
    if not isinstance(level, int):
        raise argparse.ArgumentTypeError(f"unknown log level {value!r}")
    return level


def setup_logging(level, logfile_prefix=None):
    """Log to stderr, or (0.10's ``-l PREFIX``) to ``PREFIX<pid>.log`` with warnings also on stderr."""
    formatter = logging.Formatter("%(asctime)s.%(msecs)03d ipengine[%(process)d] %(levelname)s %(message)s",
                                  "%H:%M:%S")
    handlers = [logging.StreamHandler(sys.__stderr__)]
    if logfile_prefix:
        path = f"{os.path.abspath(os.path.expanduser(logfile_prefix))}{os.getpid()}.log"
        os.makedirs(os.path.dirname(path), exist_ok=True)
        handlers[0].setLevel(logging.WARNING)
        handlers.append(logging.FileHandler(path))
    for handler in handlers:
        handler.setFormatter(formatter)
        log.addHandler(handler)
    log.setLevel(level)
    log.propagate = False
    # Twisted's own log events (e.g. an exception in a socket callback) go to our logger;
    # Twisted must not redirect stdout/stderr: the kernel owns those
    from twisted.logger import STDLibLogObserver, globalLogBeginner

    logging.getLogger("kernelpar.engine.twisted").setLevel(max(level, logging.WARNING))
    globalLogBeginner.beginLoggingTo(
        [STDLibLogObserver(name="kernelpar.engine.twisted")], discardBuffer=True, redirectStandardIO=False
    )


def load_connection_info(args):
    """The engine connection dict and a description of where it came from."""
    try:
        info = connection_info_from_env()
    except json.JSONDecodeError as e:
        raise StartupError(f"$KERNELPAR_CONNECTION_INFO is not valid JSON: {e}") from None
    if info is not None:
        source = "the environment"
    elif args.file:
        source = os.path.abspath(os.path.expanduser(args.file))
        info = wait_for_file(source, args.timeout, parent_pid())
    elif args.furl_file:
        source = os.path.abspath(os.path.expanduser(args.furl_file))
        info = info_from_furl_file(source, args.timeout, parent_pid())
    else:
        profile_dir = locate_profile_dir(args.profile, args.profile_dir, create=False)
        source = connection_file(profile_dir, "engine", args.cluster_id)
        default_furl = furls.default_furl_file("engine", create=False)
        named = args.profile or args.profile_dir or args.cluster_id
        if not named and not os.path.exists(source) and os.path.exists(default_furl):
            source = default_furl
            info = info_from_furl_file(source, args.timeout, parent_pid())
        else:
            info = wait_for_file(source, args.timeout, parent_pid())
    missing = [k for k in REQUIRED_KEYS if k not in info]
    if missing:
        raise StartupError(f"the connection info from {source} lacks {', '.join(missing)}")
    return info, source


def wait_for_file(path, timeout, parent=None, poll=FILE_POLL_INTERVAL):
    """Read the JSON file at ``path``, waiting up to ``timeout`` s for it to appear.

    Gives up early if ``parent`` (the launcher's pid) is no longer our parent: an engine
    must not outlive the process that started it, even before it has registered.
    """
    deadline = time.monotonic() + timeout
    while True:
        if parent is not None and os.getppid() != parent:
            raise StartupError(f"the process that started this engine (pid {parent}) is gone")
        try:
            return read_json(path)
        except IsADirectoryError:
            raise StartupError(f"connection file {path} is a directory") from None
        except (FileNotFoundError, json.JSONDecodeError) as e:
            if time.monotonic() >= deadline:
                what = "did not appear" if isinstance(e, FileNotFoundError) else "is not valid JSON"
                raise StartupError(
                    f"connection file {path} {what} within {timeout:g} s: is the controller running "
                    "(with the same profile and cluster id)?"
                ) from None
        time.sleep(poll)


def info_from_furl_file(path, timeout, parent=None, poll=FILE_POLL_INTERVAL):
    """The engine connection dict an engine FURL file stands for.

    The file is waited for as a connection file is; then its controller must answer
    within what is left of ``timeout``.  Every failure is a StartupError naming the file.
    """
    deadline = time.monotonic() + timeout
    while True:
        if parent is not None and os.getppid() != parent:
            raise StartupError(f"the process that started this engine (pid {parent}) is gone")
        if os.path.exists(path):
            break
        if time.monotonic() >= deadline:
            raise StartupError(f"the FURL file {path} did not appear within {timeout:g} s: is the controller running?")
        time.sleep(poll)
    try:
        # written atomically: an empty or malformed file will stay so
        furl = furls.read_furl_file(path)
    except ValueError as e:
        raise StartupError(str(e)) from None
    try:
        kind, info = furlrequest.resolve(furl, max(0.1, deadline - time.monotonic()), f"the FURL file {path}")
    except OSError as e:
        raise StartupError(f"error connecting to controller: {e}") from None
    if kind != "engine":
        raise StartupError(f"the FURL file {path} is {furls.KIND_DESCRIPTIONS[kind]}, not the engine FURL "
                           "(ipcontroller-engine.furl)")
    return info


def parent_pid():
    """The launcher's pid from ``$KERNELPAR_PARENT_PID`` (None when not set)."""
    value = os.environ.get(PARENT_PID_ENV)
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        log.warning("ignoring $%s=%r: not a pid", PARENT_PID_ENV, value)
        return None


def _create_shell(user_module, publish):
    # imported here: IPython costs a few hundred ms that apply-only engines never pay
    from .shell import create_shell

    return create_shell(user_module, publish)


def install_signal_handlers(kernel, io, reactor):
    def on_sigint(signum, frame):
        if kernel.busy:
            raise KeyboardInterrupt
        log.info("SIGINT ignored: no task is running")

    def on_sigterm(signum, frame):
        # also how the IO thread interrupts user code once it has shut down
        if not kernel.stopping:
            kernel.stopping = True
            reactor.callFromThread(io.shutdown, 0, "SIGTERM")
        if kernel.busy:
            raise EngineShutdown

    signal_handler_codes.update((on_sigint.__code__, on_sigterm.__code__))
    signal.signal(signal.SIGINT, on_sigint)
    signal.signal(signal.SIGTERM, on_sigterm)


def run_engine(info, requested_id=None):
    """Run an engine until it stops, then end the process with its exit status."""
    from twisted.internet import reactor

    from .iothread import EngineIO

    kernel = Kernel(new_id(), reactor.callFromThread, shell_factory=_create_shell)
    io = EngineIO(reactor, info, kernel, requested_id=requested_id, parent_pid=parent_pid())
    install_signal_handlers(kernel, io, reactor)
    shared = shm.available()
    if shared:
        # clients on this machine send large arguments through /dev/shm
        shm.sweep()
        shm.create_marker("engine", kernel.engine_uuid)
    try:
        io.start()
        kernel.run()
        io.thread.join(IO_JOIN_TIMEOUT)
    finally:
        if shared:
            shm.remove_marker("engine", kernel.engine_uuid)
    exit_promptly(io.exit_code)


def exit_promptly(code):
    """End the process once its sockets are closed, skipping interpreter teardown.

    Tearing down the module graph of an engine that loaded IPython takes ~0.5 s of CPU,
    so a cluster stopping several engines on two cores had to SIGKILL them.  Exit
    handlers (the user's included) still run and output is flushed; only the
    finalization of every module object is skipped.
    """
    atexit._run_exitfuncs()
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()
        except Exception:  # best effort: the process ends either way
            pass
    os._exit(code)


def main(argv=None):
    args = parse_args(argv)
    setup_logging(args.log_level, args.logfile)
    if sys.path[:1] != [""]:
        sys.path.insert(0, "")
    try:
        if args.mpi:
            raise StartupError(f"--mpi={args.mpi}: MPI engines are not available yet in kernelpar "
                               "(issue 'launchers'); start the engines without --mpi")
        info, source = load_connection_info(args)
        if info.get("versions") is not None:
            problem = version_mismatch(versions(), info["versions"], me="this engine", them="the controller")
            if problem:
                raise StartupError(problem)
    except StartupError as e:
        log.error("%s", e)
        return EXIT_NOT_REGISTERED
    log.debug("connection info from %s", source)
    return run_engine(info, args.id)
