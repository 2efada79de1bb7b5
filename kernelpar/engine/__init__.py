"""The kernelpar engine: runs the code clients send, one request at a time.

Modules, one job each:

* :mod:`.app`: the ``ipengine`` command line, connection info, signal handlers;
* :mod:`.iothread`: every socket, on a Twisted reactor in an IO thread;
* :mod:`.kernel`: the user namespace and the main-thread request loop (apply, execute);
* :mod:`.shell`: IPython for ``execute_request`` (display, results, tracebacks on iopub);
* :mod:`.capture`: per-request stdout/stderr capture, streamed while a task runs;
* :mod:`.control`: abort, clear, shutdown and signal requests;
* :mod:`.heart`: the C heartbeat echo and the watch for a vanished controller.
"""
