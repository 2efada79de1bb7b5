"""Python 2-era modules next to a legacy script, imported with translation.

Legacy programs come as a few files in one directory: ``rmt.ipy`` does
``from rmtkernel import *``, ``pwordfreq.py`` ``from wordfreq import wordfreq``,
``mcdriver.py`` ``from mcpricer import MCOptionPricer``, all Python 2 modules.  While a
directory is registered here (the runner registers the script's directory, the IPython
extension the directory the shell runs in), modules whose source file lies in it and that
are recognisably Python 2 (they do not compile as Python 3, or use names and methods only
Python 2 has: :func:`.py2source.needs_translation` without division) are compiled from
:func:`.py2source.translate`'s text (classic division as legacy mode says), with their own
file name, so tracebacks show their lines.  Plain Python 3 modules in that directory, and
modules anywhere else (the standard library, site-packages), are imported as usual: a
Python 3 package that happens to sit next to a legacy script keeps true division.

Where a module is found is decided by the normal path search (``sys.path`` order); only its
loader is replaced.  Translated modules are compiled from source every time, never from
``__pycache__`` (a cached compile of the untranslated text would be wrong).
"""

import importlib.abc
import importlib.machinery
import os
import sys
import threading

from . import imports, legacymode
from .py2source import decode_source, needs_translation, translate

_lock = threading.Lock()
_directories = {}        # registered directory (real path) -> registrations


class LegacySourceLoader(importlib.machinery.SourceFileLoader):
    """A source file loader that compiles the translated text and keeps no bytecode."""

    def get_code(self, fullname):
        path = self.get_filename(fullname)
        source = decode_source(self.get_data(path))
        if needs_translation(source, division=False):
            source = translate(source, path, division=legacymode.classic_division(), assume_py2=True)
        return compile(source, path, "exec", dont_inherit=True)


class LegacySourceFinder(importlib.abc.MetaPathFinder):
    """Gives modules whose file is in a registered directory a :class:`LegacySourceLoader`."""

    def find_spec(self, fullname, path, target=None):
        if not _directories:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or not isinstance(spec.loader, importlib.machinery.SourceFileLoader):
            return None
        if not _in_registered_directory(spec.origin):
            return None
        spec.loader = LegacySourceLoader(fullname, spec.origin)
        return spec


def _in_registered_directory(filename):
    real = os.path.realpath(filename)
    return any(real.startswith(d + os.sep) for d in list(_directories))


def translate_modules_in(directory):
    """Translate modules imported from ``directory`` (and below it) until :func:`stop_translating`."""
    real = os.path.realpath(directory)
    with _lock:
        _directories[real] = _directories.get(real, 0) + 1
        if not any(isinstance(f, LegacySourceFinder) for f in sys.meta_path):
            # after the import hook (which answers for other names), before the path finder
            position = next((i + 1 for i, f in enumerate(sys.meta_path) if isinstance(f, imports.AliasFinder)), 0)
            sys.meta_path.insert(position, LegacySourceFinder())


def stop_translating(directory):
    """Undo one :func:`translate_modules_in` (modules already imported stay as they are)."""
    real = os.path.realpath(directory)
    with _lock:
        count = _directories.get(real, 0) - 1
        if count > 0:
            _directories[real] = count
            return
        _directories.pop(real, None)
        if not _directories:
            sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, LegacySourceFinder)]
