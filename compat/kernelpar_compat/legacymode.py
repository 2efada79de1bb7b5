"""Legacy mode: Python 2-era sources accepted, in this process and on the engines.

What is switched on
-------------------
* the import hook (:mod:`.imports`: ``IPython.kernel``, ``IPython.parallel``, ``ipyparallel``);
* the translator for engine sources: ``execute``, ``%px``, ``%autopx``, ``StringTask`` and
  ``run`` of the 0.10 API (:mod:`kernelpar.client.legacy`) send their code through
  :func:`translate_for_engine`, registered with
  :func:`kernelpar.client.legacy.translate.set_translator`; the text users see (the Results
  List) stays the original.  Engines run :data:`.prelude.LEGACY_PRELUDE` once before the first
  translated source;
* the same prelude in this process (:func:`.prelude.run_prelude`), for translated client code
  (the runner's scripts, the extension's cells, modules imported from a legacy directory).

Engine sources count as Python 2 (``assume_py2``: ``y = map(f, x)`` gives a list even though
it compiles as Python 3; the 0.10 API is Python 2-era by definition).  Classic division
(``7/2 == 3``) is part of it unless ``division=False``; a source with
``from __future__ import division`` keeps true division either way.

Limits: the modern API (``Client``, views, the modern ``%px``) is never translated, and a
function written in translated client code that divides (``lambda x: x/2``) calls the
classic division helper, which exists on an engine once the prelude ran there: the 0.10
API runs it, a modern view's ``apply``/``map`` does not.

Who switches it on
------------------
* ``kernelpar-legacy script.py`` (:mod:`.runner`), for the script's whole run;
* ``%load_ext kernelpar_compat`` (:mod:`.extension`), until ``%unload_ext``;
* ``kernelpar_compat.legacy_mode()`` (this module's :func:`enable`) explicitly, and
  ``kernelpar_compat.legacy_mode(False)`` (:func:`disable`) off again;
* importing ``IPython.kernel`` through the hook (``import kernelpar_compat.enable`` is the
  notebook line), unless the program already chose with ``legacy_mode(...)``: a program
  that uses the 0.10 names is 0.10-era code (:func:`default_on`).
"""

import builtins
import sys
import threading

from . import imports, prelude
from .py2source import translate

_lock = threading.RLock()
_chosen = False          # enable() or disable() was called (default_on() then does nothing)
_enabled = False
_division = True
_added = None            # what the client-side prelude added: (builtins names, sys.modules names)
_installed_hook = False  # enable() put the import hook there (disable() takes it away again)


def enable(division=True):
    """Switch legacy mode on (again, possibly with another ``division`` setting)."""
    global _chosen, _enabled, _division, _installed_hook
    from kernelpar.client.legacy.translate import set_translator

    with _lock:
        _chosen = True
        _division = bool(division)
        if _enabled:
            return
        if not imports.installed():
            imports.install()
            _installed_hook = True
        _run_client_prelude()
        set_translator(translate_for_engine, engine_prelude=prelude.LEGACY_PRELUDE)
        _enabled = True


def disable():
    """Switch legacy mode off: engine sources go as they are; this process's prelude is undone."""
    global _chosen, _enabled, _installed_hook
    from kernelpar.client.legacy.translate import get_translator, set_translator

    with _lock:
        _chosen = True
        if not _enabled:
            return
        if get_translator() is translate_for_engine:
            set_translator(None)
        _undo_client_prelude()
        if _installed_hook:
            imports.uninstall()
            _installed_hook = False
        _enabled = False


def default_on():
    """:func:`enable` unless legacy mode was already chosen on or off."""
    with _lock:
        if not _chosen:
            enable()


def is_enabled():
    return _enabled


def classic_division():
    """Whether translation rewrites ``/`` to classic division."""
    return _enabled and _division


def translate_for_engine(source, filename="<string>"):
    """The translator registered for engine sources (see :func:`.py2source.translate`)."""
    return translate(source, filename, division=classic_division(), assume_py2=True)


def _run_client_prelude():
    global _added
    if _added is not None:
        return
    # only the prelude's own names: modules it imported along the way stay imported
    new_names = [n for n in prelude.BUILTIN_NAMES if n not in vars(builtins)]
    new_modules = [n for n in prelude.MODULE_NAMES if n not in sys.modules]
    prelude.run_prelude()
    _added = ({n: vars(builtins)[n] for n in new_names if n in vars(builtins)},
              {n: sys.modules[n] for n in new_modules if n in sys.modules})


def _undo_client_prelude():
    global _added
    if _added is None:
        return
    names, modules = _added
    for table, added in ((vars(builtins), names), (sys.modules, modules)):
        for name, value in added.items():
            if table.get(name) is value:
                del table[name]
    original = getattr(builtins.__build_class__, "__kp_original__", None)
    if original is not None:
        builtins.__build_class__ = original
    _added = None
