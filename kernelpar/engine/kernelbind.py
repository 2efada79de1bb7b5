"""``bind_kernel()``: open a running engine to Jupyter frontends (``jupyter console --existing``).

Called on an engine (``rc[0].apply_sync(ipp.bind_kernel)``, ``%px ipp.bind_kernel()``), it
starts an ipykernel kernel inside the engine process whose user namespace *is* the
engine's: names defined from the console are seen by ``pull``/``apply``, and the other
way round.  The kernel lives in its own daemon thread with its own asyncio/tornado loop
(ipykernel adds its control, shell-channel, iopub and heartbeat threads, all daemons),
listens on 127.0.0.1 only, and writes a 0600 connection file ``kernel-<pid>.json`` in the
profile's ``security`` directory, as ipyparallel does.  The absolute path is printed
(so ``%px`` shows it) and returned.  A second call starts nothing and returns (and
prints) the same file.

Differences from a standalone ipykernel, because the engine owns the process:

* no signal handlers are installed (only the main thread may): SIGINT still interrupts
  the engine's own task, not a console cell;
* ``sys.stdout``/``sys.stderr`` are redirected to the console only while a console cell
  runs, and only for writes made by the kernel's thread; the engine's capture of its own
  requests is untouched;
* the console's shell is a ``ZMQInteractiveShell`` of its own (the engine's shell stays
  ``InteractiveShell.instance()``), sharing the namespace, so ``In``/``Out``/``_`` in the
  namespace are those of whichever shell ran last;
* a ``shutdown_request`` from a frontend stops the bound kernel, never the engine.

The process exits with ``os._exit`` after the engine loop ends, so the threads never keep
it alive; an exit handler still stops the loop (bounded) and removes the connection file.

Outside an engine: inside an ipykernel kernel process (a notebook) this is a no-op that
returns None, because that process already is a kernel (as in ipyparallel); anywhere
else it raises ``RuntimeError``.
"""

import asyncio
import atexit
import contextlib
import io
import logging
import os
import sys
import threading

log = logging.getLogger("kernelpar.engine.kernelbind")

#: how long bind_kernel waits for the kernel thread to be listening
START_TIMEOUT = 60.0
#: how long the exit handler waits for the kernel's loop to stop
STOP_TIMEOUT = 2.0
BIND_IP = "127.0.0.1"

_lock = threading.Lock()
_bound = None  # the BoundKernel once started


def _engine_namespace():
    """The engine's user module and namespace, or None when not in an engine process."""
    if "kernelpar.engine.kernel" not in sys.modules:
        return None
    from ..wire import serialize

    ns = serialize._user_namespace
    if ns is None:
        return None
    main = sys.modules.get("__main__")
    if main is not None and getattr(main, "__dict__", None) is ns:
        return main, ns
    return None, ns  # IPython wraps the namespace in a module of its own


def _in_ipykernel():
    """True in a process that already is an ipykernel kernel (not one bound here)."""
    app_mod = sys.modules.get("ipykernel.kernelapp")
    if app_mod is None:
        return False
    app_cls = app_mod.IPKernelApp
    return app_cls.initialized() and type(app_cls._instance) is app_cls


def _profile_dir():
    """The engine's profile directory, from its command line (as the engine found it)."""
    from ..wire.connection import locate_profile_dir
    from .app import parse_args

    profile = profile_dir = None
    try:
        args, _ = _tolerant_parse(parse_args, sys.argv[1:])
        profile, profile_dir = args.profile, args.profile_dir
    except Exception:  # an engine started some other way: use the default profile
        pass
    return locate_profile_dir(profile, profile_dir, create=False)


def _tolerant_parse(parse_args, argv):
    try:
        return parse_args(argv), []
    except SystemExit:
        raise ValueError("unparsable engine command line") from None


def _security_dir(profile_dir):
    path = os.path.join(profile_dir, "security")
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path


def bind_kernel(**kwargs):
    """Make this engine a Jupyter kernel too; return (and print) its connection file.

    Keyword arguments are traits of ipykernel's ``IPKernelApp`` (e.g. ``shell_port``).
    """
    global _bound
    found = _engine_namespace()
    if found is None:
        if _in_ipykernel():
            return None  # already a kernel: nothing to bind (ipyparallel does the same)
        raise RuntimeError("bind_kernel must be called from an IPEngine instance")
    with _lock:
        if _bound is None or not _bound.alive():
            module, ns = found
            bound = BoundKernel(module, ns, kwargs)
            bound.start(START_TIMEOUT)
            _bound = bound
        bound = _bound
    print("To connect another client to this kernel, use:")
    print(f"    --existing {bound.connection_file}")
    return bound.connection_file


class BoundKernel:
    """An ipykernel kernel running in a thread of the engine, on the engine's namespace."""

    def __init__(self, user_module, user_ns, app_kwargs):
        self.user_module = user_module
        self.user_ns = user_ns
        self.app_kwargs = dict(app_kwargs)
        self.app = None
        self.io_loop = None
        self.connection_file = None
        self.thread = None
        self._ready = threading.Event()
        self._error = None

    def alive(self):
        return self.thread is not None and self.thread.is_alive()

    def start(self, timeout):
        profile_dir = _profile_dir()
        self.thread = threading.Thread(
            target=self._run, args=(profile_dir,), name="kernelpar-bound-kernel", daemon=True
        )
        self.thread.start()
        if not self._ready.wait(timeout):
            raise TimeoutError(f"the bound kernel did not start within {timeout:g} s")
        if self._error is not None:
            raise RuntimeError(f"could not start the bound kernel: {self._error!r}") from self._error
        atexit.register(self.stop)

    def _run(self, profile_dir):
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            from tornado.ioloop import IOLoop

            self.app = app = _make_app(self, profile_dir)
            app.init_connection_file()
            app.init_sockets()
            app.init_heartbeat()
            app.init_kernel()
            app.kernel.start()
            self.io_loop = IOLoop.current()
            # written last: a frontend reading it finds a kernel that answers
            app.write_connection_file()
            os.chmod(app.abs_connection_file, 0o600)
            self.connection_file = app.abs_connection_file
            log.info("bound kernel listening; connection file %s", self.connection_file)
        except BaseException as e:  # reported to the caller of bind_kernel
            self._error = e
            self._ready.set()
            log.exception("could not start the bound kernel")
            return
        self._ready.set()
        try:
            self.io_loop.start()
        except Exception:
            log.exception("the bound kernel's loop failed")
        finally:
            self._cleanup_file()
            with contextlib.suppress(Exception):
                _forget_singletons(self.app)

    def _cleanup_file(self):
        path = self.connection_file
        if path:
            with contextlib.suppress(OSError):
                os.remove(path)

    def stop(self):
        """Stop the kernel's loop and threads (bounded); remove the connection file."""
        loop = self.io_loop
        if loop is not None and self.alive():
            with contextlib.suppress(Exception):
                loop.add_callback(loop.stop)
            self.thread.join(STOP_TIMEOUT)
        if self.app is not None:
            with contextlib.suppress(Exception):
                self.app.close_quietly()
        self._cleanup_file()


# --- the ipykernel subclasses (built lazily: importing ipykernel costs ~0.5 s) -------------

_classes = None


def _kernel_classes():
    global _classes
    if _classes is not None:
        return _classes
    from ipykernel.ipkernel import IPythonKernel
    from ipykernel.iostream import OutStream
    from ipykernel.kernelapp import IPKernelApp
    from ipykernel.zmqshell import ZMQInteractiveShell
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets import Type

    class ConsoleShell(ZMQInteractiveShell):
        """The console's shell: not registered as *the* InteractiveShell (the engine's is)."""

        _console_instance = None

        @classmethod
        def instance(cls, *args, **kwargs):
            if cls._console_instance is None:
                cls._console_instance = cls(*args, **kwargs)
            return cls._console_instance

        @classmethod
        def initialized(cls):
            return cls._console_instance is not None

    class ConsoleKernel(IPythonKernel):
        shell_class = Type(ConsoleShell)

        @contextlib.contextmanager
        def _cancel_on_sigint(self, future):
            # signal handlers can only be set from the main thread, which the engine owns
            yield

        async def do_execute(self, *args, **kwargs):
            router = _OutputRouter.install(self)
            try:
                return await super().do_execute(*args, **kwargs)
            finally:
                router.uninstall()

    class _OutputRouter(io.TextIOBase):
        """``sys.stdout``/``stderr`` for the duration of a console cell: the kernel thread's
        writes go to the console, every other thread's to the stream that was installed."""

        def __init__(self, kernel, name, previous):
            self.kernel = kernel
            self.name = name
            self.previous = previous
            self.thread = threading.get_ident()
            self.out = OutStream(kernel.session, kernel.iopub_thread, name, watchfd=False)
            self.out.set_parent(kernel.get_parent("shell"))

        @classmethod
        def install(cls, kernel):
            routers = []
            for name in ("stdout", "stderr"):
                router = cls(kernel, name, getattr(sys, name))
                setattr(sys, name, router)
                routers.append(router)
            return _Routers(routers)

        def _target(self):
            return self.out if threading.get_ident() == self.thread else self.previous

        def write(self, text):
            return self._target().write(text)

        def flush(self):
            target = self._target()
            if target is not None:
                target.flush()

        def writable(self):
            return True

        @property
        def encoding(self):
            return "utf-8"

        def isatty(self):
            return False

        def fileno(self):
            return self.previous.fileno()

    class _Routers:
        def __init__(self, routers):
            self.routers = routers

        def uninstall(self):
            for router in self.routers:
                with contextlib.suppress(Exception):
                    router.out.flush()
                # the engine may have installed its own capture meanwhile: leave that one
                if getattr(sys, router.name) is router:
                    setattr(sys, router.name, router.previous)

    class EngineKernelApp(IPKernelApp):
        """IPKernelApp without the process-wide parts (signals, stdio, crash handler)."""

        def init_kernel(self):
            # as IPKernelApp.init_kernel, with the engine's module as the user module
            from zmq.eventloop.zmqstream import ZMQStream

            shell_stream = ZMQStream(self.shell_socket, self.shell_channel_thread.io_loop)
            self.shell_channel_thread.shell_stream = shell_stream
            control_stream = ZMQStream(self.control_socket, self.control_thread.io_loop)
            debugpy_stream = ZMQStream(self.debugpy_socket, self.control_thread.io_loop)
            self.control_thread.start()
            self.shell_channel_thread.start()
            kernel = ConsoleKernel.instance(
                parent=self,
                session=self.session,
                control_stream=control_stream,
                debugpy_stream=debugpy_stream,
                debug_shell_socket=self.debug_shell_socket,
                shell_stream=shell_stream,
                control_thread=self.control_thread,
                shell_channel_thread=self.shell_channel_thread,
                iopub_thread=self.iopub_thread,
                iopub_socket=self.iopub_socket,
                stdin_socket=self.stdin_socket,
                log=self.log,
                profile_dir=self.profile_dir,
                user_module=self._bound.user_module,
                user_ns=self._bound.user_ns,
            )
            kernel.record_ports({name + "_port": port for name, port in self._ports.items()})
            self.kernel = kernel
            # the console's shell put its own get_ipython into the shared namespace; engine
            # cells (which call get_ipython() for every magic) must keep reaching the engine's
            # shell, or they would use this kernel, even after it is shut down
            user_ns = self._bound.user_ns
            if InteractiveShell.initialized() and user_ns.get("get_ipython") is not None:
                user_ns["get_ipython"] = InteractiveShell.instance().get_ipython

        def close(self):
            # registered with atexit by init_sockets; BoundKernel.stop does the work
            pass

        def close_quietly(self):
            if self.heartbeat:
                with contextlib.suppress(Exception):
                    self.heartbeat.context.term()
            for thread in (self.control_thread, self.shell_channel_thread):
                if thread is not None and thread.is_alive():
                    with contextlib.suppress(Exception):
                        thread.stop()
                        thread.join(STOP_TIMEOUT)
            if self.iopub_thread:
                with contextlib.suppress(Exception):
                    self.iopub_thread.stop()

    _classes = EngineKernelApp
    return _classes


def _make_app(bound, profile_dir):
    from IPython.core.profiledir import ProfileDir
    from ipykernel.kernelapp import IPKernelApp
    from jupyter_client.session import Session
    from traitlets.config import Config

    app_class = _kernel_classes()
    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    config.InteractiveShell.colors = "NoColor"
    kwargs = dict(bound.app_kwargs)
    kwargs.setdefault("config", config)
    kwargs.setdefault("ip", BIND_IP)
    kwargs.setdefault("transport", "tcp")
    kwargs.setdefault("connection_dir", _security_dir(profile_dir))
    kwargs.setdefault("connection_file", f"kernel-{os.getpid()}.json")
    kwargs.setdefault("log", log)
    kwargs.setdefault("profile_dir", ProfileDir.find_profile_dir(profile_dir))
    kwargs.setdefault("session", Session(config=kwargs["config"]))
    app = app_class(**kwargs)
    app._bound = bound
    # lets ipykernel code that asks for IPKernelApp.instance() find this one
    type(app)._instance = IPKernelApp._instance = app
    return app


def _forget_singletons(app):
    """After the kernel stopped: a later bind_kernel builds fresh ones."""
    from ipykernel.kernelapp import IPKernelApp

    if app is None:
        return
    kernel = getattr(app, "kernel", None)
    if kernel is not None:
        type(kernel).clear_instance()
        type(kernel.shell)._console_instance = None
    if IPKernelApp._instance is app:
        IPKernelApp._instance = None
    type(app)._instance = None
