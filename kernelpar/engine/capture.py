"""Per-request capture of stdout and stderr, shared by the main and the IO thread.

The main thread runs user code with ``sys.stdout``/``sys.stderr`` replaced by two
:class:`CaptureStream` objects.  Their text goes into one :class:`Capture` buffer that
is tagged with the request being run, so that the IO thread can publish it as iopub
``stream`` messages *while* the task runs: the first write after a flush asks the IO
thread (through ``schedule_flush``) to call :meth:`Capture.take` about 50 ms later.
When the request ends the main thread calls :meth:`Capture.end`, which returns what is
left, to be published just before the reply.

Invariant: the buffer only ever holds text of the request that is current, because
``end`` empties it when that request finishes.  So whatever ``take`` returns belongs to
the request it returns with it, even if a flush scheduled for one request fires during
the next.  ``take``, ``end`` and ``count`` add the messages about to be published to the
request's ``iopub`` count under the buffer's lock, so once ``end`` has returned that
count is final and the main thread can put it in the reply while the IO thread may
still be publishing.  Writes made while no request runs (a background thread when the engine is
idle) go to the process's real streams, i.e. the engine log.
"""

import io
import sys
import threading

FLUSH_INTERVAL = 0.05


class Capture:
    """The output buffer of the running request; every method is thread-safe."""

    def __init__(self, schedule_flush):
        #: called (from any thread) when the buffer goes from empty to non-empty
        self._schedule_flush = schedule_flush
        self._lock = threading.Lock()
        self._request = None
        # one buffer per stream, as ipykernel does: clients keep stdout and stderr apart,
        # so a flush sends at most two messages however the writes interleave
        self._buffers = {"stdout": [], "stderr": []}
        self._flush_pending = False
        self.stdout = CaptureStream(self, "stdout", sys.__stdout__)
        self.stderr = CaptureStream(self, "stderr", sys.__stderr__)

    def begin(self, request):
        """Start capturing for ``request`` (main thread, before user code runs)."""
        self._request = request
        # reinstalled on every request: user code may have replaced them
        sys.stdout = self.stdout
        sys.stderr = self.stderr

    def end(self):
        """Stop capturing; return the remaining ``[(name, text), ...]`` of the request."""
        with self._lock:
            request, self._request = self._request, None
            return self._drain(request)

    def take(self):
        """Return ``(request, [(name, text), ...])`` buffered so far and empty the buffer."""
        with self._lock:
            self._flush_pending = False
            return self._request, self._drain(self._request)

    def count(self, request, n):
        """Add ``n`` messages published for ``request`` to its ``iopub`` count."""
        with self._lock:
            request.iopub += n

    def _drain(self, request):
        streams = []
        for name, parts in self._buffers.items():
            if parts:
                streams.append((name, "".join(parts)))
                parts.clear()
        if streams and request is not None:
            request.iopub += len(streams)
        return streams

    @property
    def active(self):
        return self._request is not None

    def write(self, name, text):
        """Buffer ``text`` for the current request; False if no request is running."""
        with self._lock:
            if self._request is None:
                return False
            self._buffers[name].append(text)
            first = not self._flush_pending
            self._flush_pending = True
        if first:
            self._schedule_flush()
        return True


class CaptureStream(io.TextIOBase):
    """A text stream writing into a :class:`Capture` (or ``fallback`` when idle)."""

    encoding = "utf-8"
    errors = "strict"

    def __init__(self, capture, name, fallback):
        super().__init__()
        self._capture = capture
        self._fallback = fallback
        self.name = f"<{name}>"
        self.stream_name = name

    def writable(self):
        return True

    def isatty(self):
        return False

    def write(self, text):
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        if text and not self._capture.write(self.stream_name, text) and self._fallback is not None:
            self._fallback.write(text)
        return len(text)

    def flush(self):
        # the IO thread flushes on its own schedule (and always before the reply);
        # forcing a reactor wake-up per flush() would make print(..., flush=True) loops slow
        if not self._capture.active and self._fallback is not None:
            self._fallback.flush()
