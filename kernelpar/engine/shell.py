"""IPython for ``execute_request``: magics, display and rich results on iopub.

The engine runs cells through an :class:`EngineShell`, an ``InteractiveShell`` whose
output side channels publish on iopub instead of printing:

* the display hook (value of a cell's last expression) -> ``execute_result``;
* the display publisher (``display()``) -> ``display_data``;
* tracebacks -> ``error`` (plain text: the shell uses the ``NoColor`` scheme, so the
  text reads the same in a log file, a terminal or a notebook).

``publish(msg_type, content)`` is the kernel's; it tags the message with the running
request.  The shell is a singleton (``IPython.display.display`` finds it through
``InteractiveShell.instance()``) and is created only on the first execute, because
importing and building it costs a few hundred ms that apply-only users never need.
History is kept in memory: many engines sharing one history database would contend
on its lock for nothing.

A *silent* cell that is plain Python (it compiles without IPython's transforms: no
magics, shell escapes or ``obj?``) is run with ``exec`` in the user namespace instead of
``run_cell``: silence already turns off what ``run_cell`` adds (history, the result
display, the counter), and skipping it makes ``dview.execute('a = 1')`` several times
cheaper.  Errors are reported exactly as ``run_cell`` reports them.
"""

import base64
import functools
import linecache
import sys

from IPython.core.displayhook import DisplayHook
from IPython.core.displaypub import DisplayPublisher
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

from .kernel import EngineShutdown, drop_handler_frame


def _jsonable(data):
    """Mime bundles may carry raw bytes (e.g. PNG); JSON carries them as base64."""
    return {
        k: base64.b64encode(v).decode("ascii") if isinstance(v, (bytes, bytearray)) else v for k, v in data.items()
    }


class IopubDisplayHook(DisplayHook):
    """Sends the value of a cell's last expression as ``execute_result``."""

    _content = None

    def start_displayhook(self):
        self._content = {"execution_count": None, "data": {}, "metadata": {}}

    def write_output_prompt(self):
        self._content["execution_count"] = self.prompt_count

    def write_format_data(self, format_dict, md_dict=None):
        self._content["data"] = _jsonable(format_dict)
        self._content["metadata"] = md_dict or {}

    def finish_displayhook(self):
        content, self._content = self._content, None
        if content and content["data"]:
            self.shell.iopub_publish("execute_result", content)


class IopubDisplayPublisher(DisplayPublisher):
    """Sends ``display()`` output as ``display_data``."""

    def publish(self, data, metadata=None, source=None, *, transient=None, update=False, **kwargs):
        content = {"data": _jsonable(data), "metadata": metadata or {}, "transient": transient or {}}
        self.shell.iopub_publish("display_data", content)

    def clear_output(self, wait=False):
        # clear_output is not among the protocol's iopub types; the base class would
        # write terminal escape codes into the captured stdout instead
        pass


class EngineShell(InteractiveShell):
    """An InteractiveShell whose display and traceback output goes to iopub."""

    displayhook_class = IopubDisplayHook
    display_pub_class = IopubDisplayPublisher

    #: ``publish(msg_type, content)``, set right after construction
    iopub_publish = None
    _last_error = None

    def enable_gui(self, gui=None):
        """``%matplotlib inline`` (figures go out as display data) needs no event loop; an
        engine has no screen for any other GUI."""
        if gui not in (None, "inline"):
            raise UsageError(f"engines have no GUI event loop: use %matplotlib inline, not {gui!r}")

    def showtraceback(self, exc_tuple=None, *args, **kwargs):
        etype, evalue, _ = exc_tuple or sys.exc_info()
        if etype is not None and issubclass(etype, EngineShutdown):
            return  # the engine is exiting: nobody will read it, and formatting is slow
        if isinstance(evalue, BaseException):
            drop_handler_frame(evalue)
        super().showtraceback(exc_tuple, *args, **kwargs)

    def _showtraceback(self, etype, evalue, stb):
        error = {
            "ename": getattr(etype, "__name__", str(etype)),
            "evalue": str(evalue),
            "traceback": self.InteractiveTB.stb2text(stb),
        }
        self._last_error = error
        self.iopub_publish("error", error)

    def execute(self, code, silent, store_history, user_expressions, engine_info):
        """Run one cell; return the ``execute_reply`` content."""
        self._last_error = None
        compiled = _plain_python(code) if silent and not user_expressions else None
        if compiled is not None:
            return self._exec_plain(compiled, engine_info)
        result = self.run_cell(code, store_history=store_history, silent=silent)
        if isinstance(result.error_in_exec, EngineShutdown):
            raise result.error_in_exec  # IPython catches everything; this must end the loop
        # run_cell has already advanced the counter when it stored history
        reply = {"status": "ok", "execution_count": self.execution_count - 1}
        if result.success:
            reply["user_expressions"] = self.user_expressions(user_expressions) if user_expressions else {}
            reply["payload"] = []
            return reply
        error = self._last_error or _describe(result.error_in_exec or result.error_before_exec)
        reply.update(status="error", engine_info=engine_info, **error)
        return reply


    def _exec_plain(self, compiled, engine_info):
        reply = {"status": "ok", "execution_count": self.execution_count - 1}
        try:
            exec(compiled, self.user_ns)
        except EngineShutdown:
            raise
        except BaseException as e:
            # tb_offset=1 hides this frame, as run_cell hides its own
            self.showtraceback(tb_offset=1)
            error = self._last_error or _describe(e)
            reply.update(status="error", engine_info=engine_info, **error)
            return reply
        reply["user_expressions"] = {}
        reply["payload"] = []
        return reply


@functools.lru_cache(maxsize=256)
def _plain_python(code):
    """``code`` compiled as plain Python, or None when it needs IPython (or fails to compile)."""
    filename = f"<kernelpar-cell-{hash(code) & 0xFFFFFFFF:08x}>"
    try:
        compiled = compile(code, filename, "exec", dont_inherit=True)
    except (SyntaxError, ValueError, OverflowError):
        return None
    # so that tracebacks show the cell's source lines
    linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
    return compiled


def _describe(exc):
    return {"ename": type(exc).__name__, "evalue": str(exc), "traceback": f"{type(exc).__name__}: {exc}"}


def create_shell(user_module, publish):
    """The engine's shell, running code in ``user_module`` and publishing with ``publish``."""
    config = Config()
    config.HistoryManager.enabled = False
    config.InteractiveShell.colors = "NoColor"
    shell = EngineShell.instance(config=config, user_module=user_module)
    shell.iopub_publish = publish
    return shell
