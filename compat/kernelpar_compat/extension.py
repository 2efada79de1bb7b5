"""The IPython/Jupyter extension: ``%load_ext kernelpar_compat`` runs Python 2-era cells.

Loading it (one line in a notebook or an IPython session):

* switches :mod:`legacy mode <.legacymode>` on: the import hook (``from IPython.kernel import
  client``, ``from IPython import parallel``), translation of the code sent to engines, the
  prelude (``raw_input``, ``sets`` ...);
* adds :class:`CellTranslator` to the shell's ``input_transformers_post``: a cell that does
  not compile as Python 3, or uses Python 2-only names, is translated
  (:func:`.py2source.translate`), so ``print x``, ``except E, e:`` (the name stays bound after
  the handler, as in Python 2) and ``xrange`` work.  The session counts as Python 2, so in
  cells that do compile as Python 3 the list-returning builtins still give lists
  (``squares = map(f, xs)`` then ``squares[1:]`` in the next cell; ``assume_py2``), and ``/``
  is classic division (``7/2 == 3``) until a cell says ``from __future__ import division``
  (as in a Python 2 session, for the rest of the session);
  ``kernelpar_compat.legacy_mode(division=False)`` turns classic division off.  Other Python 3
  cells (``print("a", b)`` included) are left exactly as they are.  A cell that is neither
  Python 3 nor translatable Python 2 fails with a SyntaxError showing its original line;
  tracebacks of translated cells show their original lines too;
* translates Python 2 modules imported from the shell's working directory (the notebook's
  directory), see :mod:`.localmodules`.

The transformer runs after IPython's own (``%px print a`` is a magic call by then, whose
argument goes to the engines and is translated there).  ``%unload_ext kernelpar_compat``
undoes all of it (what ``legacy_mode`` installed, unless it was on before loading).
The runner ``kernelpar-legacy`` uses the same extension for ``.ipy`` files.
"""

import collections
import linecache
import os
import re

from . import legacymode, localmodules
from .py2source import translate

#: the file name translation errors name for a cell
CELL_FILENAME = "<ipython-input>"
_FUTURE_DIVISION = re.compile(r"^[ \t]*from[ \t]+__future__[ \t]+import[^\n]*\bdivision\b", re.MULTILINE)


class CellTranslator:
    """An IPython ``input_transformers_post`` entry: Python 2 cells to Python 3 cells."""

    #: how many recent translations :meth:`was_translated` knows
    REMEMBERED = 32

    def __init__(self):
        # a Python 2 session kept true division once an input had imported it
        self.future_division = False
        self._recent = collections.OrderedDict()

    def __call__(self, lines):
        cell = "".join(lines)
        if _FUTURE_DIVISION.search(cell):
            self.future_division = True
        division = legacymode.classic_division() and not self.future_division
        translated = translate(cell, CELL_FILENAME, division=division, assume_py2=True)
        if translated is cell:
            return lines
        self._recent[translated] = None
        while len(self._recent) > self.REMEMBERED:
            self._recent.popitem(last=False)
        return translated.splitlines(keepends=True)

    def was_translated(self, code):
        """Whether ``code`` is a recent translation of this translator's."""
        return code in self._recent


class _Loaded:
    """What one load did, so that unloading undoes exactly that."""

    def __init__(self, shell, directory):
        self.shell = shell
        self.was_enabled = legacymode.is_enabled()
        self.directory = directory
        self.translator = CellTranslator()

    def apply(self):
        if not self.was_enabled:
            legacymode.enable()
        localmodules.translate_modules_in(self.directory)
        self.shell.input_transformers_post.append(self.translator)
        self.compiler = self.shell.compile
        self.cache_code = self.compiler.cache
        self.compiler.cache = self._cache_original_lines

    def _cache_original_lines(self, transformed_code, number=0, raw_code=None):
        """IPython's ``compile.cache``, keeping a translated cell's *original* lines for tracebacks.

        Translation keeps line numbers, so the Python 2 text lines up with the code that runs.
        """
        name = self.cache_code(transformed_code, number, raw_code)
        if raw_code is not None and self.translator.was_translated(transformed_code):
            original = raw_code.splitlines()
            entry = linecache.cache.get(name)
            if entry is not None and len(original) == len(transformed_code.splitlines()):
                linecache.cache[name] = (entry[0], entry[1], [line + "\n" for line in original], entry[3])
        return name

    def undo(self):
        if self.compiler.__dict__.get("cache") == self._cache_original_lines:
            del self.compiler.cache
        try:
            self.shell.input_transformers_post.remove(self.translator)
        except ValueError:
            pass
        localmodules.stop_translating(self.directory)
        if not self.was_enabled:
            legacymode.disable()


_loaded = {}   # id(shell) -> _Loaded


def install(shell, directory=None):
    """What loading the extension does; modules are translated from ``directory`` (default: cwd)."""
    if id(shell) in _loaded:
        return
    loaded = _Loaded(shell, os.getcwd() if directory is None else directory)
    loaded.apply()
    _loaded[id(shell)] = loaded


def load_ipython_extension(shell):
    install(shell)


def unload_ipython_extension(shell):
    loaded = _loaded.pop(id(shell), None)
    if loaded is not None:
        loaded.undo()
