"""``view.sync_imports()``: ``import`` statements that run locally *and* on the engines.

Inside the ``with`` block ``builtins.__import__`` is replaced for the calling thread:
each top-level import statement runs locally, then once per distinct statement on the
view's engines (:func:`.enginefuncs.import_module`).  Imports that the imported modules
make themselves run with the real ``__import__`` (the hook steps aside while the local
import runs), so only the user's own statements are sent.  ``import a as b`` binds ``a``
remotely (aliases are invisible to ``__import__``), as in ipyparallel.  Remote import
errors are raised when the block ends.
"""

import builtins
import threading
from contextlib import contextmanager

from .. import errors
from .enginefuncs import USER_NAMESPACE, import_module


@contextmanager
def sync_imports(view, local=True, quiet=False):
    if not local:
        raise NotImplementedError("remote-only imports are not implemented: use sync_imports(local=True)")
    real_import = builtins.__import__
    owner = threading.current_thread()
    seen = set()
    pending = []
    state = {"busy": False}

    def view_import(name, globals=None, locals=None, fromlist=(), level=0):
        if threading.current_thread() is not owner or state["busy"]:
            return real_import(name, globals, locals, fromlist, level)
        # imports made by the import itself, or by pickling the remote call, stay local
        state["busy"] = True
        try:
            module = real_import(name, globals, locals, fromlist, level)
            fromlist = tuple(fromlist or ())
            key = (name, fromlist)
            if level <= 0 and key not in seen:
                seen.add(key)
                if not quiet:
                    if fromlist:
                        print(f"importing {', '.join(fromlist)} from {name} on engine(s)")
                    else:
                        print(f"importing {name} on engine(s)")
                pending.append(view.apply_async(import_module, USER_NAMESPACE, name, fromlist, level))
        finally:
            state["busy"] = False
        return module

    builtins.__import__ = view_import
    try:
        yield
    except errors.CompositeError as e:
        e.raise_exception()
    finally:
        builtins.__import__ = real_import
    for ar in pending:
        ar.get()
