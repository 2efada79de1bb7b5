"""Live output of a running AsyncResult: what ``AsyncResult.stream_output()`` prints.

A background thread looks at each task's :class:`~.futures.Metadata` every
``STREAM_INTERVAL`` seconds and prints what is new: complete lines as ``[stdout:N] ...``
/ ``[stderr:N] ...``, ``[output:N]`` before each rich display (re-published inside
IPython), and each failed task's traceback as soon as it fails.  ``\r`` progress lines
show as their final state (rewritten in place on a terminal or in a notebook).  The
parallel magics' ``%%px`` uses it.
"""

import logging
import os
import sys
import threading
import time

from .. import errors
from . import display
from .futures import collapse_cr

log = logging.getLogger("kernelpar.client")

#: how often ``stream_output`` looks for new output (seconds)
STREAM_INTERVAL = 0.05
#: an unfinished line (no newline yet, no ``\r``) unchanged this long is shown anyway
PARTIAL_LINE_DELAY = 0.5


def _collapse_cr(text):
    """Each line of ``text`` reduced to what a terminal shows of it (a trailing ``\\r`` too)."""
    return collapse_cr(text).replace("\r", "")


def _live_capable(file):
    """Can ``file`` rewrite a line in place (a terminal, or a notebook's output stream)?"""
    try:
        if file.isatty():
            return True
    except Exception:
        pass
    shell = display._ipython_shell()
    return getattr(shell, "kernel", None) is not None


class OutputStreamer:
    """The worker behind ``AsyncResult.stream_output`` (see the module docstring).

    Only ever reads the tasks' ``Metadata``: ``stdout``/``stderr`` strings grow (they are
    replaced by longer strings, never mutated), ``outputs`` lists are appended to, and a
    task's future resolves only once all of its output is in.
    """

    def __init__(self, ar):
        self._ar = ar
        self._streams = {}  # (task index, 'stdout'|'stderr') -> [text seen, pending partial line, changed at]
        self._outputs_shown = [0] * len(ar._metadata)
        self._errors_shown = set()
        self._errors_streamed = 0
        self._live = None  # (file, key) of a progress line shown in place, not yet ended
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kernelpar-stream-output", daemon=True)

    def start(self):
        self._thread.start()

    def stop(self):
        self._stopping.set()
        self._thread.join()
        self.drain(final=True)

    def _run(self):
        while not self._stopping.wait(STREAM_INTERVAL):
            try:
                self.drain()
            except Exception:  # a broken stdout must not end streaming silently mid-way
                log.exception("stream_output: could not show output")

    # -- one pass ----------------------------------------------------------------------

    def drain(self, final=False):
        with self._lock:
            # a task counted as done here has all of its output in its Metadata already
            done = [child.done() for child in self._ar._children]
            now = time.monotonic()
            for i, md in enumerate(self._ar._metadata):
                eid = md["engine_id"]
                if eid is None and not final:
                    continue  # load-balanced and not placed yet: its prefix is unknown
                for name in ("stdout", "stderr"):
                    self._stream(i, eid, name, md[name], now, final, name in getattr(md, "_rewriting", ()))
                outputs = md["outputs"]
                while self._outputs_shown[i] < len(outputs):
                    content = outputs[self._outputs_shown[i]]
                    self._outputs_shown[i] += 1
                    self._end_live()
                    display._show_rich(content, eid, display._ipython_shell())
            for i, child in enumerate(self._ar._children):
                if done[i] and i not in self._errors_shown:
                    self._errors_shown.add(i)
                    exc = child.exception()
                    if exc is not None:
                        self._show_error(exc)

    def _stream(self, i, eid, name, text, now, final, rewriting=False):
        key = (i, name)
        state = self._streams.get(key)
        if state is None:
            state = self._streams[key] = ["", "", now]
        seen, pending, changed = state
        new = ""
        if text is not seen and text != seen:
            if text.startswith(seen):
                new = text[len(seen):]
                pending += new
            else:
                # the last line was rewritten (``\r`` collapsed in the Metadata): lines that
                # ended are never rewritten, so the pending line is the text after them
                base = os.path.commonprefix([text, seen]).rfind("\n") + 1
                new = pending = text[base:]
            changed = now
        file = sys.stdout if name == "stdout" else sys.stderr
        prefix = f"[{name}:{eid}] "
        cut = pending.rfind("\n")
        if cut >= 0:
            complete, pending = pending[: cut + 1], pending[cut + 1:]
            self._emit(file, key, prefix, _collapse_cr(complete))
        if pending:
            # a progress line: rewritten with \r (collapsed already in the Metadata: then
            # ``rewriting`` says so), shown in place on a terminal, else once it ends
            progress_line = rewriting or "\r" in pending
            if final or (not progress_line and now - changed >= PARTIAL_LINE_DELAY):
                self._emit(file, key, prefix, _collapse_cr(pending) + "\n")
                pending = ""
            elif new and progress_line and _live_capable(file):
                self._show_live(file, key, prefix, _collapse_cr(pending))
        state[:] = [text, pending, changed]

    # -- printing ----------------------------------------------------------------------

    @staticmethod
    def _rewind(file):
        """Back to the start of the line (and erase it on a terminal)."""
        try:
            tty = file.isatty()
        except Exception:
            tty = False
        return "\r\x1b[K" if tty else "\r"

    def _emit(self, file, key, prefix, text):
        if self._live is not None and self._live[1] == key:
            # the finished line takes the place of its progress line
            self._live = None
            file.write(self._rewind(file))
        else:
            self._end_live()
        display.print_stream(text, prefix, file=file)
        file.flush()

    def _show_live(self, file, key, prefix, visible):
        if self._live is not None and self._live[1] != key:
            self._end_live()
        file.write(self._rewind(file) + prefix + visible)
        file.flush()
        self._live = (file, key)

    def _end_live(self):
        if self._live is not None:
            file = self._live[0]
            self._live = None
            file.write("\n")
            file.flush()

    def _show_error(self, exc):
        self._end_live()
        if not isinstance(exc, errors.RemoteError):
            exc = errors.RemoteError(*errors.composite_entry(exc))
        # as ipyparallel: whole tracebacks for the first few, then one line each
        self._errors_streamed += 1
        if self._errors_streamed <= errors.CompositeError.tb_limit:
            print("\n".join(exc.render_traceback()), file=sys.stderr)
        else:
            print(exc, file=sys.stderr)
        sys.stderr.flush()


# -- progress bars: AsyncResult.wait_interactive, Client.wait_for_engines -------------------

#: environment variables that turn progress bars into plain text lines (CI, log files)
NONINTERACTIVE_ENV = ("KERNELPAR_NONINTERACTIVE", "IPP_NONINTERACTIVE")
#: plain-text progress prints at most one line per this many seconds (plus the last one)
TEXT_PROGRESS_INTERVAL = 1.0


def noninteractive_env():
    """Is one of :data:`NONINTERACTIVE_ENV` set (to anything but empty / ``0``)?"""
    return any(os.environ.get(name, "") not in ("", "0") for name in NONINTERACTIVE_ENV)


def in_jupyter_kernel():
    """Is this code running inside a Jupyter (ipykernel) kernel, where widgets display?"""
    return getattr(display._ipython_shell(), "kernel", None) is not None


def _isatty(file):
    try:
        return file.isatty()
    except Exception:
        return False


class TextProgress:
    """Progress as plain lines, ``f:   3/10 tasks finished after    2 s``: for logs and pipes.

    A line is printed when the count changed, at most every :data:`TEXT_PROGRESS_INTERVAL`
    seconds, and once more (whatever the count) on :meth:`close`.
    """

    def __init__(self, total, unit="tasks", verb="finished", initial=0, file=None, desc=None):
        self.desc = desc
        self.total = total
        self.unit = unit
        self.verb = verb
        self.n = initial
        self.file = file
        self._start = time.monotonic()
        self._printed = None  # count of the last line printed
        self._printed_at = None

    def _line(self):
        elapsed = time.monotonic() - self._start
        file = self.file or sys.stderr
        prefix = f"{self.desc}: " if self.desc else ""
        print(f"{prefix}{self.n:4d}/{self.total} {self.unit} {self.verb} after {elapsed:4.0f} s", file=file)
        file.flush()
        self._printed = self.n
        self._printed_at = time.monotonic()

    def update_to(self, n):
        self.n = n
        if n != self._printed and (
            self._printed_at is None or time.monotonic() - self._printed_at >= TEXT_PROGRESS_INTERVAL
        ):
            self._line()

    def close(self):
        if self._printed != self.n or self._printed_at is None:
            self._line()


class TqdmProgress:
    """A tqdm bar (terminal, or the notebook widget) behind the :class:`TextProgress` API."""

    def __init__(self, total, unit="tasks", desc=None, initial=0, widget=False, file=None):
        if widget:
            from tqdm.notebook import tqdm
            kwargs = {}
        else:
            from tqdm import tqdm
            kwargs = {"file": file or sys.stderr}
        self.bar = tqdm(total=total, unit=unit, desc=desc, initial=initial, **kwargs)

    @property
    def n(self):
        return self.bar.n

    def update_to(self, n):
        if n != self.bar.n:
            self.bar.update(n - self.bar.n)

    def close(self):
        self.bar.close()


def progress(total, unit="tasks", desc=None, widget=None, initial=0, verb="finished", file=None):
    """The progress display that fits where we run (on ``file``, default ``sys.stderr``).

    * :data:`NONINTERACTIVE_ENV` set: :class:`TextProgress`, whatever ``widget`` says;
    * ``widget=True``, or ``None`` inside a Jupyter kernel: tqdm's notebook widget (plain
      text if ipywidgets is missing);
    * otherwise a terminal tqdm bar when the output is a terminal (or ``widget=False`` in a
      kernel), else plain text.
    """
    file = file or sys.stderr  # as tqdm: stdout stays for results
    if noninteractive_env():
        return TextProgress(total, unit, verb, initial, file, desc)
    in_kernel = in_jupyter_kernel()
    if widget is None:
        widget = in_kernel
    elif not widget and in_kernel:
        return TqdmProgress(total, unit, desc, initial, widget=False, file=file)  # asked for it
    if widget:
        try:
            import ipywidgets  # noqa: F401  (tqdm.notebook needs it to draw anything)
        except ImportError:
            return TextProgress(total, unit, verb, initial, file, desc)
        return TqdmProgress(total, unit, desc, initial, widget=True)
    if _isatty(file):
        return TqdmProgress(total, unit, desc, initial, widget=False, file=file)
    return TextProgress(total, unit, verb, initial, file, desc)
