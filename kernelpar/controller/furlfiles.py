"""``ipcontroller``'s IPython 0.10 FURL options, and the FURL files they govern.

Which controllers write FURL files
----------------------------------
0.10 had no profiles: ``<IPYTHONDIR>/security/ipcontroller-{mec,tc,engine}.furl`` is
one place per IPython directory, so only one controller at a time can own it.  The rule:

* a controller writes the FURL files when it is the IPython directory's classic
  controller: profile ``default`` and cluster id ``''`` (a plain ``ipcontroller``,
  ``ipcluster start``, ``ipcluster local``), or when any FURL option is given
  (``-r``, ``-x``, ``-y``, ``--client-port``, ``--*-furl-file``, ...), or with
  ``--furl-files``;
* ``--no-furl-files`` turns them off; every other controller (a ``Cluster()`` in Python
  gets a random cluster id, another profile) leaves them alone, so test clusters and
  profiles never clobber each other's FURLs;
* without ``-r`` the files are deleted at start and, if they still hold this
  controller's FURLs, at exit; with ``-r`` they stay, and the next start with the same
  fixed ports reads the tub ids and swiss numbers back from them (identical FURLs).

The engine FURL is written as soon as the ports are bound; the client FURLs (``mec``,
``tc``) too, unless ``--client-furls-after-engines N`` defers them until N engines have
registered (``ipcluster local -n N`` does that, so a script that waits for
``ipcontroller-mec.furl`` finds every engine there).
"""

import logging
import os
import socket

from ..wire import furl as furls
from .furlservice import FurlService, Tub

log = logging.getLogger("kernelpar.controller")

#: how often a deferred client FURL checks the number of registered engines
ENGINE_POLL_INTERVAL = 0.05
_WILDCARDS = ("", "*", "0.0.0.0")
_FILE_OPTIONS = {"mec": "multiengine_furl_file", "tc": "task_furl_file", "engine": "engine_furl_file"}


def add_arguments(parser):
    g = parser.add_argument_group("IPython 0.10 FURL files (legacy MultiEngineClient, TaskClient, ipengine --furl-file)")
    files = g.add_mutually_exclusive_group()
    files.add_argument("--furl-files", dest="furl_files", action="store_const", const=True, default=None,
                       help="write the FURL files (default: only for profile 'default' with cluster id '', "
                            "or when a FURL option is given)")
    files.add_argument("--no-furl-files", dest="furl_files", action="store_const", const=False,
                       help="write no FURL files")
    g.add_argument("-r", "--reuse-furls", dest="reuse_furls", action="store_true",
                   help="reuse the FURL files (needs --client-port and --engine-port): same FURLs across restarts")
    for side, flag, what in (("client", "-x", "clients"), ("engine", "-y", "engines")):
        g.add_argument(f"--{side}-ip", default=None,
                       help=f"interface of the {side} FURL port (default: --ip, or 127.0.0.1; '' means all)")
        g.add_argument(f"--{side}-port", type=int, default=0, help=f"{side} FURL port (default 0: any free port)")
        g.add_argument(f"--{side}-location", default=None, help=f"host name or IP written into the {side} FURLs")
        g.add_argument(flag, dest=f"{side}_insecure", action="store_true",
                       help=f"pbu:// FURLs for {what} (0.10's insecure form; no tub id)")
    g.add_argument("--multiengine-furl-file", default=None, help="path of the MultiEngineClient FURL file")
    g.add_argument("--task-furl-file", default=None, help="path of the TaskClient FURL file")
    g.add_argument("--engine-furl-file", default=None, help="path of the engine FURL file")
    g.add_argument("--client-furls-after-engines", type=int, default=0, metavar="N",
                   help="write the client FURL files only once N engines have registered")


def _furl_options_given(args):
    return bool(args.reuse_furls or args.client_insecure or args.engine_insecure or args.client_port
                or args.engine_port or args.client_furls_after_engines
                or any(getattr(args, f"{side}_{what}") is not None
                       for side in ("client", "engine") for what in ("ip", "location"))
                or any(getattr(args, option) for option in _FILE_OPTIONS.values()))


def wanted(args, profile_dir, ipython_dir):
    """Whether this controller writes FURL files (see the module docstring)."""
    if args.furl_files is not None:
        return args.furl_files
    classic = os.path.abspath(profile_dir) == os.path.join(ipython_dir, "profile_default") and not args.cluster_id
    return classic or _furl_options_given(args)


def check_arguments(args):
    """An error message for inconsistent FURL options, or None."""
    if args.reuse_furls and not (args.client_port and args.engine_port):
        return ("-r (reuse FURL files) needs fixed ports: give both --client-port and --engine-port, "
                "e.g. ipcontroller -r --client-port=10101 --engine-port=10102")
    for side in ("client", "engine"):
        port = getattr(args, f"{side}_port")
        if not 0 <= port < 65536:
            return f"--{side}-port must be a port number (0 for any free port), not {port}"
    if args.client_furls_after_engines < 0:
        return f"--client-furls-after-engines must be >= 0, not {args.client_furls_after_engines}"
    return None


def _bind_ip(args, side):
    ip = getattr(args, f"{side}_ip")
    if ip is None:
        ip = args.ip if args.transport == "tcp" else "127.0.0.1"
    if ip in _WILDCARDS:
        return "*"
    return "127.0.0.1" if ip == "localhost" else ip


def _locations(args, side, ip):
    location = getattr(args, f"{side}_location")
    if location:
        return [location]
    if ip == "*":
        # as 0.10: this host as others see it, and the loopback address
        return [args.location or socket.gethostname(), "127.0.0.1"]
    return [ip]


class LegacyFurls:
    """The FURL files of one controller: planned from its options, written, cleaned up."""

    def __init__(self, args, ipython_dir):
        self.reuse = args.reuse_furls
        self.defer_clients = args.client_furls_after_engines
        self.paths = {}
        for kind, option in _FILE_OPTIONS.items():
            path = getattr(args, option)
            self.paths[kind] = (os.path.abspath(os.path.expanduser(path)) if path
                                else furls.default_furl_file(kind, ipython_dir))
        self.tubs = []
        for side in ("client", "engine"):
            ip = _bind_ip(args, side)
            self.tubs.append(Tub(side, None, not getattr(args, f"{side}_insecure"), ip,
                                 getattr(args, f"{side}_port"), _locations(args, side, ip)))
        self.service = None
        self.written = {}
        self._deferred = None

    def prepare(self):
        """Before binding: delete the old files, or (``-r``) read names back from them."""
        for tub in self.tubs:
            kinds = [kind for kind in furls.KINDS if furls.TUB_OF_KIND[kind] == tub.side]
            for kind in kinds:
                old = self._reusable(kind, tub.secure) if self.reuse else None
                if old is None:
                    furls.remove_furl_file(self.paths[kind])
                    tub.names[furls.new_name()] = kind
                else:
                    tub.names[old.name] = kind
                    if tub.tub_id is None and old.tub_id is not None:
                        tub.tub_id = old.tub_id
            if tub.tub_id is None:
                tub.tub_id = furls.new_name()

    def _reusable(self, kind, secure):
        path = self.paths[kind]
        if not os.path.exists(path):
            return None
        try:
            old = furls.read_furl_file(path)
        except ValueError as e:
            log.warning("-r: cannot reuse %s: %s", path, e)
            return None
        if old.secure != secure:
            log.info("-r: %s is %s but %s FURLs were asked for: making a new one", path,
                     "pb://" if old.secure else "pbu://", "pb://" if secure else "pbu://")
            return None
        return old

    def start_service(self, reactor, ctx, client_info, engine_info):
        self.service = FurlService(reactor, ctx, self.tubs, {"client": client_info, "engine": engine_info})

    def write(self, count_engines, reactor):
        """Write the engine FURL now, and the client FURLs now or once enough engines registered."""
        self._write(["engine"])
        if not self.defer_clients:
            self._write(["mec", "tc"])
            return
        from twisted.internet import task

        def check():
            if count_engines() >= self.defer_clients:
                self._deferred.stop()
                self._write(["mec", "tc"])

        self._deferred = task.LoopingCall(check)
        self._deferred.clock = reactor
        self._deferred.start(ENGINE_POLL_INTERVAL, now=True)

    def _write(self, kinds):
        current = self.service.furls()
        for kind in kinds:
            furls.write_furl_file(self.paths[kind], current[kind])
            self.written[kind] = current[kind]
            log.info("wrote %s", self.paths[kind])

    def close(self):
        """At exit: stop listening; without ``-r`` remove the files that are still ours."""
        if self._deferred is not None and self._deferred.running:
            self._deferred.stop()
        if self.service is not None:
            self.service.close()
        if not self.reuse:
            for kind, furl in self.written.items():
                furls.remove_furl_file(self.paths[kind], only_if=furl)
