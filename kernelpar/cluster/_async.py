"""``<name>_sync`` twins for coroutine methods, usable from scripts and notebooks alike.

A twin runs its coroutine to completion on a private event loop.  When the calling
thread already runs an asyncio loop (Jupyter, IPython's autoawait), blocking that loop
would deadlock, so the coroutine runs on a fresh loop in a helper thread instead.
The cluster's coroutines only poll subprocesses and files, so they hold nothing bound
to a particular loop and either place is fine.
"""

import asyncio
import concurrent.futures
import functools
import inspect


def run_sync(coro):
    """Run ``coro`` to completion and return its result, from any thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="kernelpar-sync") as pool:
        return pool.submit(asyncio.run, coro).result()


def _sync_twin(method):
    @functools.wraps(method)
    def twin(self, *args, **kwargs):
        return run_sync(method(self, *args, **kwargs))

    twin.__name__ = twin.__qualname__ = f"{method.__name__}_sync"
    twin.__doc__ = f"Blocking version of :meth:`{method.__name__}`.\n\n{method.__doc__ or ''}"
    return twin


def with_sync_twins(cls):
    """Class decorator: add ``name_sync`` for every public coroutine method ``name``."""
    for name, member in list(vars(cls).items()):
        if inspect.iscoroutinefunction(member) and not name.startswith("_"):
            setattr(cls, f"{name}_sync", _sync_twin(member))
    return cls
