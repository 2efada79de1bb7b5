"""Translate Python 2-era source into Python 3 source, keeping its line numbers.

This is the source half of kernelpar's legacy mode, and its public face: the pieces live in
:mod:`.fixers` (fissix and our fixers), :mod:`.py2usage` (Python 3 source only Python 2 could
run) and :mod:`.division` (classic division).  It is used for client scripts (the legacy
launcher), for the code strings and files sent to engines (``execute``, ``%px``, ``%autopx``,
``StringTask``, ``run``) and for interactive cells (the IPython extension).  It is a pure
module: importing it changes nothing; only :func:`install_helpers` (or running
:data:`CLASSIC_DIVISION_PRELUDE`) touches ``builtins``.

Public API
----------
``translate(source, filename="<string>", division=True, assume_py2=False) -> str``
    Python 3 source for ``source``.  Source that already is Python 3, shows no Python 2-only
    usage and needs no division rewrite is returned *unchanged* (the very same object).
    ``assume_py2=True`` says the source is known to be Python 2-era (a legacy script, an
    engine code string of the 0.10 API, a cell of a legacy session): then valid Python 3
    source is given the fixers for list-returning builtins too (``x = map(f, xs)`` becomes
    ``x = list(map(f, xs))``, as Python 2 gave a list; ``print(a, b)`` stays a call), since
    whether the value is used as a list may only show in another cell or code string.
    Everything else goes through ``fissix`` (lib2to3's fixers, see :data:`FIXERS`) and then,
    unless ``division`` is false or the source says ``from __future__ import division``,
    every ``a / b`` becomes ``__kp_classic_div__(a, b)`` and ``a /= b`` becomes
    ``a = __kp_classic_idiv__(a, (b))`` (classic division, see :func:`classic_div`).
    Lines are kept where they were, so tracebacks point at the user's lines.  Results are
    kept in a bounded LRU cache keyed by the source text.  Source that is neither Python 3
    nor translatable Python 2 raises :class:`SyntaxError` naming the original line.
``needs_translation(source, division=True, assume_py2=False) -> bool``
    Whether :func:`translate` would change (or reject) ``source``.
``classic_div(a, b)``, ``classic_idiv(a, b)``
    Python 2's ``/`` and ``/=``: floor division when both operands are integral (``int``,
    ``bool``, NumPy integer/bool scalars and arrays), a class's own ``__div__``/``__rdiv__``
    /``__idiv__`` when it defines them (Python 2 classes), true division otherwise.
``install_helpers(namespace=None)``
    Makes ``__kp_classic_div__``/``__kp_classic_idiv__`` resolvable: into ``builtins``
    (default) or into the given namespace dict.
``CLASSIC_DIVISION_PRELUDE``
    Self-contained source (it does not import ``kernelpar_compat``) that installs the same
    two helpers into ``builtins`` of the process that runs it, leaving no name behind in the
    namespace it runs in.  Engines run it once in legacy mode; see "Where the helpers live".
``decode_source(data) -> str``
    Bytes of a Python 2 file to text (PEP 263 coding cookie, else UTF-8, else Latin-1).
``cache_info()``, ``cache_clear()``


Where the helpers live
----------------------
Translated code calls two helpers by name.  They are installed into ``builtins`` rather than
prepended to the translated text: a prelude would shift every line (tracebacks would no longer
point at the user's lines) and would put names into the user namespace (``keys()``, ``%who``,
``reset``).  In the client process (launcher, IPython extension) call
:func:`install_helpers`.  On engines, run :data:`CLASSIC_DIVISION_PRELUDE` once when legacy
mode is switched on (it survives ``reset()`` because it is not in the user namespace); because
it is plain source, engines do not need ``kernelpar_compat`` (nor ``fissix``) installed: the
translation itself is done on the client.  The helpers' frames show up in tracebacks under the
file name :data:`HELPER_FILENAME`, which a traceback formatter may drop.

The Python 3 check and "Python 2-only usage"
--------------------------------------------
Most Python 2 code fails to compile as Python 3 (``print x``, ``except E, e``, ``0777``,
backquotes ...) and is translated for that reason.  Some compiles but cannot work, e.g.
``for i in xrange(n)``, ``d.iteritems()``, ``map(f, xs) == ys``, ``d.keys().sort()`` or
``string.letters``.  Such usage (names and attributes Python 3 does not have, and operations
on ``map``/``filter``/``zip``/dict views that only a list supports) also sends the source
through the fixers; Python 3 code that merely uses ``map`` or ``d.keys()`` is left alone.
"""
import collections
import io
import re
import threading
import tokenize

from .division import (  # the public API lives here, the pieces in the sibling modules
    CLASSIC_DIVISION_PRELUDE,
    DIV_HELPER,
    HELPER_FILENAME,
    IDIV_HELPER,
    classic_div,
    classic_idiv,
    division_sites,
    future_division,
    install_helpers,
    rewrite_division,
)
from .exceptnames import keep_except_names
from .fixers import FIXERS, Unparsable, load_fissix, run_fixers
from .py2usage import has_py2_usage, parse3

__all__ = [
    "CACHE_SIZE",
    "CLASSIC_DIVISION_PRELUDE",
    "DIV_HELPER",
    "FIXERS",
    "HELPER_FILENAME",
    "IDIV_HELPER",
    "cache_clear",
    "cache_info",
    "classic_div",
    "classic_idiv",
    "decode_source",
    "install_helpers",
    "needs_translation",
    "translate",
]

# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------

def _line(source, lineno):
    lines = source.split("\n")
    if 1 <= lineno <= len(lines):
        return lines[lineno - 1] + "\n"
    return None


def _syntax_error(msg, source, filename, lineno, offset=None, cause=None):
    text = _line(source, lineno) if lineno else None
    if offset is None and text is not None:
        offset = len(text) - len(text.lstrip()) + 1
    err = SyntaxError(msg, (filename, lineno, offset, text))
    err.__cause__ = cause
    return err


# ---------------------------------------------------------------------------------------------
# Python 3 parsing and Python 2-only usage
# ---------------------------------------------------------------------------------------------

# ---------------------------------------------------------------------------------------------
# Tabs: Python 2 accepted inconsistent tab/space indentation (a tab is 8 columns)
# ---------------------------------------------------------------------------------------------

def _expand_indentation_tabs(src):
    inside = set()
    try:
        for tok in tokenize.generate_tokens(io.StringIO(src).readline):
            if tok.type == tokenize.STRING and tok.end[0] > tok.start[0]:
                inside.update(range(tok.start[0] + 1, tok.end[0] + 1))
    except (tokenize.TokenError, SyntaxError):
        pass
    lines = src.split("\n")
    for i, line in enumerate(lines):
        if i + 1 in inside:
            continue
        stripped = line.lstrip(" \t")
        indent = line[:len(line) - len(stripped)]
        if "\t" in indent:
            lines[i] = indent.expandtabs(8) + stripped
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# translate / needs_translation and the cache
# ---------------------------------------------------------------------------------------------

CACHE_SIZE = 256                 # entries
_CACHE_CHARS = 64 * 1024 * 1024  # and at most this many characters of keys + values
CacheInfo = collections.namedtuple("CacheInfo", "hits misses maxsize currsize")


class _LRUCache:
    def __init__(self, maxsize, maxchars):
        self.maxsize, self.maxchars = maxsize, maxchars
        self.data = collections.OrderedDict()
        self.chars = 0
        self.hits = self.misses = 0
        self.lock = threading.Lock()

    @staticmethod
    def _size(key, value):
        return len(key[0]) + (0 if value is key[0] else len(value))

    def get(self, key):
        with self.lock:
            try:
                value = self.data[key]
            except KeyError:
                self.misses += 1
                return None
            self.data.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key, value):
        size = self._size(key, value)
        if size > self.maxchars:
            return
        with self.lock:
            if key in self.data:
                self.chars -= self._size(key, self.data.pop(key))
            self.data[key] = value
            self.chars += size
            while len(self.data) > self.maxsize or self.chars > self.maxchars:
                k, v = self.data.popitem(last=False)
                self.chars -= self._size(k, v)

    def clear(self):
        with self.lock:
            self.data.clear()
            self.chars = 0
            self.hits = self.misses = 0

    def info(self):
        with self.lock:
            return CacheInfo(self.hits, self.misses, self.maxsize, len(self.data))


_cache = _LRUCache(CACHE_SIZE, _CACHE_CHARS)


def cache_info():
    """``CacheInfo(hits, misses, maxsize, currsize)`` of the translation cache."""
    return _cache.info()


def cache_clear():
    """Empty the translation cache (and reset its counters)."""
    _cache.clear()


def translate(source, filename="<string>", division=True, assume_py2=False):
    """Python 3 source for Python 2-era ``source`` (see the module documentation).

    ``filename`` only labels errors.  ``division=False`` leaves ``/`` alone.
    ``assume_py2=True``: list-returning builtins become lists in valid Python 3 source too.
    Raises :class:`SyntaxError` (naming ``filename`` and the original line) when ``source``
    is neither Python 3 nor translatable Python 2.
    """
    if isinstance(source, bytes):
        source = decode_source(source)
    if not isinstance(source, str):
        raise TypeError(f"source must be str, not {type(source).__name__}")
    key = (source, bool(division), bool(assume_py2))
    hit = _cache.get(key)
    if hit is not None:
        return hit
    result = _translate(source, filename, bool(division), bool(assume_py2))
    if result == source:
        result = source
    _cache.put(key, result)
    return result


def needs_translation(source, division=True, assume_py2=False):
    """Whether :func:`translate` would not return ``source`` unchanged (or would reject it)."""
    try:
        return translate(source, division=division, assume_py2=assume_py2) is not source
    except SyntaxError:
        return True


#: calls whose Python 2 result was a list (a cheap test before fissix parses valid Python 3)
_LIST_BUILTIN_CALL = re.compile(r"\b(?:map|filter|zip|range|keys|values|items)\s*\(")


def _translate(source, filename, division, assume_py2):
    src = source
    src = src.removeprefix("\ufeff")
    if "\r" in src:
        src = src.replace("\r\n", "\n").replace("\r", "\n")
    try:
        tree = parse3(src, filename)
    except TabError:
        src = _expand_indentation_tabs(src)
        try:
            tree = parse3(src, filename)
        except (SyntaxError, ValueError):
            tree = None
    except (SyntaxError, ValueError):
        tree = None

    python2 = False                     # the source went through the fixers as Python 2
    if tree is not None:
        py2_usage = has_py2_usage(tree)
        if py2_usage or (assume_py2 and _LIST_BUILTIN_CALL.search(src)):
            try:
                fixed = run_fixers(src, py3_valid=True, print_statements=py2_usage)
                tree = parse3(fixed, filename)
                src = fixed
                python2 = True
            except (Unparsable, SyntaxError, ValueError, ImportError):
                pass                    # keep the Python 3 source as it is (no fissix: too)
    else:
        try:
            fixed = run_fixers(src, py3_valid=False)
        except Unparsable as e:
            raise _unparsable_error(src, filename, e) from None
        try:
            tree = parse3(fixed, filename)
        except SyntaxError as e:
            raise _syntax_error(f"Python 2 source could not be translated: {e.msg}", src,
                                filename, e.lineno or 1, None, e) from None
        src = fixed
        python2 = True

    if python2:
        kept = keep_except_names(src, tree)
        if kept is not src:
            src, tree = kept, parse3(kept, filename)

    if division:
        future = future_division(tree)
        if division_sites(tree, future):
            src = rewrite_division(src, tree, future)
            try:
                parse3(src, filename)
            except SyntaxError as e:       # pragma: no cover - would be a bug here
                raise _syntax_error(f"classic division rewrite failed: {e.msg}", source,
                                    filename, e.lineno or 1, None, e) from None
    return src


def _unparsable_error(src, filename, e):
    """The SyntaxError for source that neither Python 3 nor fissix's Python 2 grammar takes.

    Python 3's own error is used when it concerns the same line or a bracket, or when fissix
    only found the end of the file inside a bracket (Python 3 names the bracket's line).
    """
    py3 = None
    try:
        parse3(src, filename)
    except SyntaxError as err:
        py3 = err
    except ValueError:
        pass
    fx = load_fissix()
    bracket = py3 is not None and any(m in (py3.msg or "") for m in
                                      ("was never closed", "unmatched", "does not match"))
    if py3 is not None and py3.lineno and (py3.lineno == e.lineno or bracket or isinstance(
            e.cause, fx["tokenize"].TokenError)):
        err = type(py3)(py3.msg, (filename, py3.lineno, py3.offset, _line(src, py3.lineno)))
        err.__cause__ = e.cause
        return err
    if isinstance(e.cause, fx["parse"].ParseError) and e.cause.type == fx["token"].INDENT:
        err = IndentationError("unexpected indent",
                               (filename, e.lineno, e.offset, _line(src, e.lineno)))
        err.__cause__ = e.cause
        return err
    return _syntax_error("invalid syntax (neither Python 3 nor Python 2)", src, filename,
                         e.lineno, e.offset, e.cause)


def decode_source(data):
    """Text of a Python 2 source file: BOM or PEP 263 cookie, else UTF-8, else Latin-1."""
    if isinstance(data, str):
        return data
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError:                 # unknown or inconsistent coding cookie
        encoding = "utf-8"
    try:
        text = data.decode(encoding)
    except (LookupError, UnicodeDecodeError):
        text = data.decode("latin-1")
    return text.removeprefix("\ufeff")
