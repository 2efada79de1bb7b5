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

log = logging.getLogger("kernelpar.client")

#: how often ``stream_output`` looks for new output (seconds)
STREAM_INTERVAL = 0.05
#: an unfinished line (no newline yet, no ``\r``) unchanged this long is shown anyway
PARTIAL_LINE_DELAY = 0.5


def _visible(line):
    """What a terminal shows of one line of output rewritten with carriage returns."""
    body = line.rstrip("\r")
    return body[body.rfind("\r") + 1:]


def _collapse_cr(text):
    """Each ``\\n``-separated line of ``text`` reduced to what a terminal shows of it."""
    if "\r" not in text:
        return text
    return "\n".join(_visible(line) for line in text.split("\n"))


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
                    self._stream(i, eid, name, md[name], now, final)
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

    def _stream(self, i, eid, name, text, now, final):
        key = (i, name)
        state = self._streams.get(key)
        if state is None:
            state = self._streams[key] = ["", "", now]
        seen, pending, changed = state
        new = ""
        if text is not seen and text != seen:
            if text.startswith(seen):
                new = text[len(seen):]
            else:  # rewritten rather than appended to: show from where they differ
                new = text[len(os.path.commonprefix([text, seen])):]
            pending += new
            changed = now
        file = sys.stdout if name == "stdout" else sys.stderr
        prefix = f"[{name}:{eid}] "
        cut = pending.rfind("\n")
        if cut >= 0:
            complete, pending = pending[: cut + 1], pending[cut + 1:]
            self._emit(file, key, prefix, _collapse_cr(complete))
        if pending:
            if final or ("\r" not in pending and now - changed >= PARTIAL_LINE_DELAY):
                self._emit(file, key, prefix, _collapse_cr(pending) + "\n")
                pending = ""
            elif new and "\r" in pending and _live_capable(file):
                self._show_live(file, key, prefix, _visible(pending))
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
        lines = errors.CompositeError("", [errors.composite_entry(exc)]).render_traceback()
        while lines and not lines[-1]:
            lines.pop()
        print("\n".join(lines), file=sys.stderr)
        sys.stderr.flush()
