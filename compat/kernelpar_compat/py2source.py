"""Translate Python 2-era source into Python 3 source, keeping its line numbers.

This is the source half of kernelpar's legacy mode.  It is used for client scripts (the legacy
launcher), for the code strings and files sent to engines (``execute``, ``%px``, ``%autopx``,
``StringTask``, ``run``) and for interactive cells (the IPython extension).  It is a pure
module: importing it changes nothing; only :func:`install_helpers` (or running
:data:`CLASSIC_DIVISION_PRELUDE`) touches ``builtins``.

Public API
----------
``translate(source, filename="<string>", division=True) -> str``
    Python 3 source for ``source``.  Source that already is Python 3, shows no Python 2-only
    usage and needs no division rewrite is returned *unchanged* (the very same object).
    Everything else goes through ``fissix`` (lib2to3's fixers, see :data:`FIXERS`) and then,
    unless ``division`` is false or the source says ``from __future__ import division``,
    every ``a / b`` becomes ``__kp_classic_div__(a, b)`` and ``a /= b`` becomes
    ``a = __kp_classic_idiv__(a, (b))`` (classic division, see :func:`classic_div`).
    Lines are kept where they were, so tracebacks point at the user's lines.  Results are
    kept in a bounded LRU cache keyed by the source text.  Source that is neither Python 3
    nor translatable Python 2 raises :class:`SyntaxError` naming the original line.
``needs_translation(source, division=True) -> bool``
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

import ast
import builtins
import collections
import io
import sys
import threading
import tokenize
import types
import warnings
from bisect import bisect_left

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

DIV_HELPER = "__kp_classic_div__"
IDIV_HELPER = "__kp_classic_idiv__"
HELPER_FILENAME = "<kernelpar classic division>"

# ---------------------------------------------------------------------------------------------
# Classic division helpers.  One source text serves both this module (exec'd into a private
# namespace: no side effects) and engines (CLASSIC_DIVISION_PRELUDE, which installs them into
# builtins).  Everything is inside a factory so that nothing leaks into the namespace it runs in.
# ---------------------------------------------------------------------------------------------

_HELPERS_FACTORY = '''\
def __kp_make_classic_division__():
    import operator

    def integral(x):
        # int, bool and their subclasses; NumPy integer/bool scalars and arrays (numpy is not
        # imported: its types are recognised by module name and dtype).
        t = type(x)
        if issubclass(t, int):
            return True
        mod = getattr(t, "__module__", None) or ""
        if mod == "numpy" or mod.startswith("numpy."):
            kind = getattr(getattr(x, "dtype", None), "kind", None)
            return kind in ("i", "u", "b")
        return False

    def __kp_classic_div__(a, b):
        """a / b as Python 2 did it without ``from __future__ import division``."""
        ta = type(a)
        tb = type(b)
        if (ta is int or ta is bool) and (tb is int or tb is bool):
            return a // b
        if ta is float or tb is float:
            return a / b
        if integral(a) and integral(b):
            return a // b
        div = getattr(ta, "__div__", None)          # a Python 2 class
        if div is not None:
            r = div(a, b)
            if r is not NotImplemented:
                return r
        rdiv = getattr(tb, "__rdiv__", None)
        if rdiv is not None:
            r = rdiv(b, a)
            if r is not NotImplemented:
                return r
        return a / b

    def __kp_classic_idiv__(a, b):
        """a /= b as Python 2 did it (in place where the type supports it)."""
        if integral(a) and integral(b):
            return operator.ifloordiv(a, b)
        idiv = getattr(type(a), "__idiv__", None)   # a Python 2 class
        if idiv is not None:
            r = idiv(a, b)
            if r is not NotImplemented:
                return r
        if getattr(type(a), "__div__", None) is not None or \\
                getattr(type(b), "__rdiv__", None) is not None:
            return __kp_classic_div__(a, b)
        return operator.itruediv(a, b)

    return __kp_classic_div__, __kp_classic_idiv__
'''

CLASSIC_DIVISION_PRELUDE = _HELPERS_FACTORY + '''
import builtins as __kp_builtins__
__kp_builtins__.__kp_classic_div__, __kp_builtins__.__kp_classic_idiv__ = \\
    __kp_make_classic_division__()
del __kp_builtins__, __kp_make_classic_division__
'''


def _make_helpers():
    ns = {"__name__": __name__}
    exec(compile(_HELPERS_FACTORY, HELPER_FILENAME, "exec"), ns)  # noqa: S102 - our own text
    return ns["__kp_make_classic_division__"]()


classic_div, classic_idiv = _make_helpers()


def install_helpers(namespace=None):
    """Make the classic-division helpers resolvable by translated code.

    With no argument they go into ``builtins`` (visible from every namespace, not listed by
    ``dir()``/``%who``, kept across namespace resets); with a dict they go into that dict.
    Idempotent.
    """
    target = builtins.__dict__ if namespace is None else namespace
    target[DIV_HELPER] = classic_div
    target[IDIV_HELPER] = classic_idiv


# ---------------------------------------------------------------------------------------------
# Fixers
# ---------------------------------------------------------------------------------------------

#: The fissix fixers applied (fissix runs them in each fixer's run_order).  This is 2to3's
#: default set (every fixer that is not "explicit") minus ``fix_future`` (``from __future__``
#: lines are valid Python 3 and we read ``division`` from them) and ``fix_import`` (it turns
#: ``import psum`` into ``from . import psum`` when a sibling file exists, which breaks scripts
#: and engine code run as ``__main__``).  fissix's own ``fix_sorted`` is left out too: it takes
#: the first positional argument of *any* ``.sort(...)`` call for a ``cmp`` function, which
#: breaks ``numpy.sort(a)``.  Left out as 2to3 does: ``fix_buffer`` (memoryview is not
#: buffer), ``fix_idioms``, ``fix_set_literal``, ``fix_ws_comma`` (cosmetic).  Four fixers of
#: our own run after these: ``string`` module functions and constants
#: (``string.join(words, sep)``, ``string.letters`` ...); ``cmp``, ``file(...)`` and
#: ``time.clock``; ``cmp=`` in ``sorted()``/``.sort()`` (and ``sorted(x, f)``) to
#: ``key=cmp_to_key(...)``; octal longs (``0777L``), which fix_numliterals gets wrong.
FIXERS = tuple(
    "fissix.fixes.fix_" + name
    for name in (
        "apply", "asserts", "basestring", "dict", "except", "exec", "execfile", "exitfunc",
        "filter", "funcattrs", "getcwdu", "has_key", "imports", "imports2", "input", "intern",
        "isinstance", "itertools", "itertools_imports", "long", "map", "metaclass",
        "methodattrs", "ne", "next", "nonzero", "numliterals", "operator", "paren", "print",
        "raise", "raw_input", "reduce", "reload", "renames", "repr", "standarderror",
        "sys_exc", "throw", "tuple_params", "types", "unicode", "urllib", "xrange",
        "xreadlines", "zip",
    )
)

_fissix = None           # the loaded fissix pieces (imported lazily: the pure path needs none)
_tool = None
_tool_lock = threading.RLock()


def _load_fissix():
    global _fissix
    if _fissix is None:
        try:
            from fissix import fixer_base, fixer_util, pygram, pytree, refactor
            from fissix.pgen2 import parse as pgen_parse
            from fissix.pgen2 import token
            from fissix.pgen2 import tokenize as pgen_tokenize
        except ImportError as e:     # pragma: no cover - depends on the installation
            raise ImportError(
                "translating Python 2 source needs the 'fissix' package "
                "(pip install fissix, or pip install 'kernelpar[legacy]')") from e
        _fissix = {"fixer_base": fixer_base, "fixer_util": fixer_util, "pygram": pygram,
                   "pytree": pytree, "refactor": refactor, "parse": pgen_parse, "token": token,
                   "tokenize": pgen_tokenize}
    return _fissix


# Custom fixers.  They are defined lazily (their base class lives in fissix).

_STRING_CONSTANTS = {"letters": "ascii_letters", "lowercase": "ascii_lowercase",
                     "uppercase": "ascii_uppercase"}
# string.f(s, *rest) -> s.f(*rest)
_STRING_METHODS = {
    "lower": "lower", "upper": "upper", "strip": "strip", "lstrip": "lstrip",
    "rstrip": "rstrip", "split": "split", "splitfields": "split", "rsplit": "rsplit",
    "replace": "replace", "find": "find", "rfind": "rfind", "index": "index",
    "rindex": "rindex", "count": "count", "capitalize": "capitalize", "swapcase": "swapcase",
    "expandtabs": "expandtabs", "ljust": "ljust", "rjust": "rjust", "center": "center",
    "zfill": "zfill", "translate": "translate",
}
# string.f(*args) -> g(*args)
_STRING_FUNCTIONS = {"atoi": "int", "atol": "int", "atof": "float",
                     "maketrans": "str.maketrans"}
_STRING_JOIN = {"join", "joinfields"}
_CMP_LAMBDA = "(lambda a, b: (a > b) - (a < b))"


def _custom_fixers():
    fx = _load_fissix()
    fixer_base, fu, token, syms = fx["fixer_base"], fx["fixer_util"], fx["token"], \
        fx["pygram"].python_symbols
    Leaf, Node = fx["pytree"].Leaf, fx["pytree"].Node

    def needs_parens(node):
        if node.type in (token.NAME, token.STRING) or node.type == syms.atom:
            return False
        if node.type == syms.power:
            return any(c.type == token.DOUBLESTAR for c in node.children)
        return True

    def call_args(trailer):
        """The positional arguments of a call trailer, or None if it has other kinds."""
        if len(trailer.children) == 2:
            return []
        inner = trailer.children[1]
        items = inner.children if inner.type == syms.arglist else [inner]
        args = [c for c in items if c.type != token.COMMA]
        for a in args:
            if a.type == syms.argument or a.type == syms.star_expr or \
                    (a.type == token.DOUBLESTAR or (a.children and a.children[0].type in
                                                    (token.STAR, token.DOUBLESTAR))):
                return None
        return args

    def keep_newlines(old_text, new_node, rpar):
        missing = old_text.count("\n") - str(new_node).count("\n")
        if missing > 0:
            rpar.prefix = "\n" * missing + rpar.prefix

    def build_call(prefix, func_nodes, args, more):
        """``func_nodes...(args...)`` followed by the trailers ``more``."""
        arglist = []
        for i, a in enumerate(args):
            a = a.clone()
            if i == 0:
                a.prefix = ""
            else:
                arglist.append(fu.Comma())
                a.prefix = " "
            arglist.append(a)
        rpar = fu.RParen()
        trailer = Node(syms.trailer, [fu.LParen()] + (
            [Node(syms.arglist, arglist)] if len(arglist) > 1 else arglist) + [rpar])
        node = Node(syms.power, list(func_nodes) + [trailer] + [m.clone() for m in more])
        node.prefix = prefix
        return node, rpar

    class _FixKpString(fixer_base.BaseFix):
        """``string`` module functions and constants Python 3 removed (module imported)."""
        BM_compatible = True
        order = "post"
        run_order = 10
        PATTERN = "power< 'string' trailer< '.' name=any > rest=any* >"

        def transform(self, node, results):
            name = results["name"]
            if name.type != token.NAME or not fu.does_tree_import(None, "string", node):
                return None
            attr = name.value
            if attr in _STRING_CONSTANTS:
                name.replace(fu.Name(_STRING_CONSTANTS[attr], prefix=name.prefix))
                return None
            rest = results["rest"]
            if not rest or rest[0].type != syms.trailer or rest[0].children[0].value != "(":
                return None
            args = call_args(rest[0])
            if args is None:
                return None
            old = str(node)
            if attr in _STRING_METHODS and args and not (attr == "translate" and len(args) > 2):
                obj = args[0].clone()
                obj.prefix = ""
                if needs_parens(obj):
                    obj = fu.parenthesize(obj)
                new, rpar = build_call(node.prefix, [obj, fu.Dot(),
                                                     fu.Name(_STRING_METHODS[attr])],
                                       args[1:], rest[1:])
            elif attr in _STRING_JOIN and 1 <= len(args) <= 2:
                if len(args) == 2:
                    sep = args[1].clone()
                    sep.prefix = ""
                    if needs_parens(sep):
                        sep = fu.parenthesize(sep)
                else:
                    sep = fu.String('" "')
                new, rpar = build_call(node.prefix, [sep, fu.Dot(), fu.Name("join")],
                                       args[:1], rest[1:])
            elif attr in _STRING_FUNCTIONS and args:
                new, rpar = build_call(node.prefix, [fu.Name(_STRING_FUNCTIONS[attr])],
                                       args, rest[1:])
            else:
                return None
            keep_newlines(old, new, rpar)
            return new

    class _FixKpBuiltins(fixer_base.BaseFix):
        """``cmp`` (a builtin in Python 2), ``file(...)`` and ``time.clock``.

        ``cmp`` becomes an inline lambda; ``file(...)`` calls become ``open(...)``;
        ``time.clock`` (removed in 3.8) becomes ``time.perf_counter`` (elapsed time is what
        timing code means; Python 2 on Linux measured process CPU time).
        """
        BM_compatible = True
        order = "post"
        run_order = 10
        PATTERN = """
            name='cmp'
            | power< name='file' trailer< '(' any* ')' > any* >
            | power< 'time' trailer< '.' clock='clock' > any* >
        """

        def transform(self, node, results):
            root = fu.find_root(node)
            if "clock" in results:
                if fu.does_tree_import(None, "time", node):
                    clock = results["clock"]
                    clock.replace(fu.Name("perf_counter", prefix=clock.prefix))
                return None
            name = results["name"]
            if not fu.is_probably_builtin(name) or fu.find_binding(name.value, root):
                return None
            if name.value == "cmp":
                return Leaf(token.NAME, _CMP_LAMBDA, prefix=node.prefix)
            name.replace(fu.Name("open", prefix=name.prefix))
            return None

    class _FixKpSortCmp(fixer_base.BaseFix):
        """``sorted(x, cmp=f)``, ``sorted(x, f)``, ``l.sort(cmp=f)``: ``key=cmp_to_key(f)``."""
        BM_compatible = True
        order = "post"
        run_order = 10
        PATTERN = """
            power< name='sorted' trailer< '(' args=any ')' > any* >
            | power< any+ trailer< '.' 'sort' > trailer< '(' args=any ')' > any* >
        """

        def transform(self, node, results):
            args = results["args"]
            items = args.children if args.type == syms.arglist else [args]
            keywords = {c.children[0].value: c for c in items
                        if c.type == syms.argument and len(c.children) == 3
                        and c.children[1].value == "="}
            if "key" in keywords:
                return
            name = results.get("name")
            if name is not None and (not fu.is_probably_builtin(name)
                                     or fu.find_binding("sorted", fu.find_root(node))):
                return
            cmp_arg = keywords.get("cmp")
            if cmp_arg is not None:
                value = cmp_arg.children[2]
                cmp_arg.children[0].replace(fu.Name("key", prefix=cmp_arg.children[0].prefix))
            elif name is not None and args.type == syms.arglist:
                positional = [c for c in items if c.type != token.COMMA]
                if len(positional) != 2 or any(
                        c.type in (syms.argument, syms.star_expr) for c in positional):
                    return
                value = positional[1]
                kw = Node(syms.argument, [fu.Name("key"), Leaf(token.EQUAL, "="),
                                          value.clone()])
                kw.prefix = value.prefix
                value.replace(kw)
                value = kw.children[2]
                value.prefix = ""
            else:
                return
            new = value.clone()
            new.prefix = ""
            value.replace(fu.Call(fu.Name("cmp_to_key"), [new], prefix=value.prefix))
            fu.touch_import("functools", "cmp_to_key", node)
            return

    class _FixKpNumber(fixer_base.BaseFix):
        """Octal longs (``0777L``): fix_numliterals drops the ``L`` but keeps ``0777``."""
        _accept_type = token.NUMBER

        def match(self, node):
            v = node.value.rstrip("lL")
            return v.startswith("0") and v.isdigit() and len(set(v)) > 1

        def transform(self, node, results):
            return fu.Number("0o" + node.value.rstrip("lL")[1:], prefix=node.prefix)

    return [_FixKpString, _FixKpBuiltins, _FixKpSortCmp, _FixKpNumber]


def _get_tool():
    global _tool
    if _tool is None:
        fx = _load_fissix()
        custom = _custom_fixers()

        class _Tool(fx["refactor"].RefactoringTool):
            def get_fixers(self):
                pre, post = super().get_fixers()
                for cls in custom:
                    fixer = cls(self.options, self.fixer_log)
                    (pre if fixer.order == "pre" else post).append(fixer)
                key = lambda f: f.run_order
                pre.sort(key=key)
                post.sort(key=key)
                return pre, post

        _tool = _Tool(list(FIXERS), options={"print_function": False})
    return _tool


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

def _parse3(source, filename="<string>"):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return compile(source, filename, "exec",
                       ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)


def _future_division(tree):
    body = tree.body
    i = 0
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        i = 1
    for stmt in body[i:]:
        if not (isinstance(stmt, ast.ImportFrom) and stmt.module == "__future__"):
            break
        if any(a.name == "division" for a in stmt.names):
            return True
    return False


_PY2_BUILTINS = frozenset({
    "xrange", "unicode", "long", "basestring", "unichr", "raw_input", "execfile", "reduce",
    "intern", "apply", "cmp", "file", "reload", "StandardError",
})
_PY2_ATTRS = frozenset({
    "iteritems", "iterkeys", "itervalues", "has_key", "viewitems", "viewkeys", "viewvalues",
    "xreadlines", "func_name", "func_code", "func_defaults", "func_globals", "func_closure",
    "func_doc", "func_dict", "im_func", "im_self", "im_class",
})
_PY2_MODULE_ATTRS = {
    "sys": {"maxint", "exc_type", "exc_value", "exc_traceback", "exc_clear", "exitfunc"},
    "os": {"getcwdu"},
    "time": {"clock"},
    "itertools": {"imap", "izip", "ifilter", "ifilterfalse", "izip_longest"},
    "operator": {"isCallable", "sequenceIncludes", "isSequenceType", "isMappingType",
                 "isNumberType", "repeat", "irepeat"},
    "string": set(_STRING_CONSTANTS) | set(_STRING_METHODS) | set(_STRING_FUNCTIONS)
    | _STRING_JOIN,
    "types": {name for name in (
        "BooleanType", "BufferType", "ClassType", "ComplexType", "DictType", "DictionaryType",
        "FileType", "FloatType", "InstanceType", "IntType", "ListType", "LongType", "NoneType",
        "ObjectType", "SliceType", "StringType", "StringTypes", "TupleType", "TypeType",
        "UnboundMethodType", "UnicodeType", "XRangeType") if not hasattr(types, name)},
}
_LIST_ONLY_METHODS = frozenset({"sort", "append", "extend", "insert", "remove", "pop", "index",
                                "count", "reverse"})
_VIEW_METHODS = frozenset({"keys", "values", "items"})
_ITER_BUILTINS = frozenset({"map", "filter", "zip"})
_py2_modules = None


def _py2_only_modules():
    global _py2_modules
    if _py2_modules is None:
        names = {"urllib2", "urlparse", "cPickle", "cStringIO", "StringIO", "Queue",
                 "ConfigParser", "SocketServer", "__builtin__", "commands", "copy_reg",
                 "httplib", "htmlentitydefs", "HTMLParser", "xmlrpclib", "cookielib",
                 "Cookie", "BaseHTTPServer", "SimpleHTTPServer", "CGIHTTPServer", "thread",
                 "dummy_thread", "Tkinter", "tkMessageBox", "UserDict", "UserList",
                 "UserString", "anydbm", "whichdb", "dbhash", "dumbdbm", "gdbm", "robotparser",
                 "markupbase", "_winreg", "repr"}
        try:
            from fissix.fixes import fix_imports
            names |= set(fix_imports.MAPPING)
        except ImportError:      # pragma: no cover
            pass
        _py2_modules = frozenset(names - set(getattr(sys, "stdlib_module_names", ())))
    return _py2_modules


_NAMED_NODES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.ExceptHandler,
                ast.MatchAs, ast.MatchStar)


def _bound_names(tree):
    """(every name the code binds anywhere, the names bound by ``import m``)."""
    bound = set()
    modules = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            bound.add(node.id)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                name = alias.asname or alias.name.split(".")[0]
                bound.add(name)
                if alias.asname is None or alias.asname == alias.name:
                    modules.add(name)
        elif isinstance(node, ast.ImportFrom):
            bound.update(a.asname or a.name for a in node.names)
        elif isinstance(node, _NAMED_NODES) and node.name:
            bound.add(node.name)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            bound.update(node.names)
    return bound, modules


def _has_py2_usage(tree):
    """Whether Python 3-compilable code uses things only Python 2 had (see module doc)."""
    bound, modules = _bound_names(tree)

    def builtin_call(node, names):
        return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id in names and node.func.id not in bound)

    def view_call(node):
        return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in _VIEW_METHODS and not node.args and not node.keywords)

    def listish(node):       # what Python 2 gave a list for and Python 3 does not
        return builtin_call(node, _ITER_BUILTINS) or view_call(node)

    def is_list(node):
        return isinstance(node, (ast.List, ast.ListComp)) or builtin_call(node, {"list"})

    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Load) and node.id in _PY2_BUILTINS \
                    and node.id not in bound:
                return True
        elif isinstance(node, ast.Attribute):
            if node.attr in _PY2_ATTRS:
                return True
            if isinstance(node.value, ast.Name) and node.value.id in modules and \
                    node.attr in _PY2_MODULE_ATTRS.get(node.value.id, ()):
                return True
            if node.attr in _LIST_ONLY_METHODS and listish(node.value):
                return True
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) \
                else [node.module or ""]
            if any(m.split(".")[0] in _py2_only_modules() and m.split(".")[0] != "urllib"
                   for m in mods):
                return True
            if isinstance(node, ast.ImportFrom) and node.module == "urllib" and \
                    any(a.name not in ("error", "parse", "request", "response", "robotparser")
                        for a in node.names):
                return True
        elif isinstance(node, ast.Subscript):
            if listish(node.value):
                return True
        elif isinstance(node, ast.BinOp):
            if isinstance(node.op, (ast.Add, ast.Mult)) and any(
                    listish(x) or builtin_call(x, {"range"}) for x in (node.left, node.right)):
                return True
            if isinstance(node.op, ast.RShift) and isinstance(node.left, ast.Name) \
                    and node.left.id == "print":        # print >>f, x
                return True
        elif isinstance(node, ast.Compare):
            operands = [node.left] + list(node.comparators)
            if any(isinstance(op, (ast.Eq, ast.NotEq)) for op in node.ops):
                if any(builtin_call(x, _ITER_BUILTINS) for x in operands):
                    return True
                if any(builtin_call(x, {"range"}) or view_call(x) for x in operands) and \
                        any(is_list(x) for x in operands):
                    return True
        elif isinstance(node, ast.Call):
            if builtin_call(node, {"len"}) and node.args and \
                    builtin_call(node.args[0], _ITER_BUILTINS):
                return True
            if builtin_call(node, {"sorted"}) and len(node.args) > 1:
                return True
            if (builtin_call(node, {"sorted"}) or (isinstance(node.func, ast.Attribute)
                                                   and node.func.attr == "sort")) and \
                    any(k.arg == "cmp" for k in node.keywords):
                return True
        elif isinstance(node, ast.Expr):
            v = node.value
            if isinstance(v, ast.Name) and v.id == "print":          # bare print
                return True
            if isinstance(v, ast.Tuple) and v.elts and isinstance(v.elts[0], ast.Call) and \
                    isinstance(v.elts[0].func, ast.Name) and v.elts[0].func.id == "print":
                return True                                          # print (x), y
        elif isinstance(node, ast.ClassDef):
            for stmt in node.body:
                if isinstance(stmt, ast.Assign) and any(
                        isinstance(t, ast.Name) and t.id == "__metaclass__"
                        for t in stmt.targets):
                    return True
    return False


def _division_sites(tree, future_division):
    """Whether the division pass has anything to do."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.BinOp, ast.AugAssign)) and isinstance(node.op, ast.Div) \
                and not future_division:
            return True
        if isinstance(node, ast.Attribute) and node.attr in ("div", "idiv") and \
                isinstance(node.value, ast.Name) and node.value.id == "operator":
            return True
    return False


# ---------------------------------------------------------------------------------------------
# Running the fixers
# ---------------------------------------------------------------------------------------------

class _Unparsable(Exception):
    def __init__(self, msg, lineno, offset, cause):
        super().__init__(msg)
        self.msg, self.lineno, self.offset, self.cause = msg, lineno, offset, cause


def _run_fixers(source, py3_valid):
    """Source through the fissix fixers; raises _Unparsable when fissix cannot parse it."""
    fx = _load_fissix()
    pygram, syms, token = fx["pygram"], fx["pygram"].python_symbols, fx["token"]
    features = fx["refactor"]._detect_future_features(source)
    if py3_valid or "print_function" in features:
        grammars = [pygram.python_grammar_no_print_statement, pygram.python_grammar,
                    pygram.python_grammar_no_print_and_exec_statement]
        if py3_valid:
            # "print" alone is Python 2's empty print; try the print-statement grammar first
            grammars[0], grammars[1] = grammars[1], grammars[0]
    else:
        grammars = [pygram.python_grammar, pygram.python_grammar_no_print_statement]
    data = source if source.endswith("\n") else source + "\n"
    with _tool_lock:
        tool = _get_tool()
        first_error = None
        tree = None
        for grammar in grammars:
            tool.driver.grammar = grammar
            try:
                tree = tool.driver.parse_string(data)
                break
            except (fx["parse"].ParseError, fx["tokenize"].TokenError, SyntaxError,
                    IndentationError) as e:
                if first_error is None:
                    first_error = e
            finally:
                tool.driver.grammar = tool.grammar
        if tree is None:
            raise _error_position(first_error)
        tree.future_features = features
        original = [n for n in tree.pre_order() if n.type == syms.simple_stmt]
        try:
            tool.refactor_tree(tree, "<kernelpar legacy source>")
        finally:
            del tool.fixer_log[:]
            del tool.errors[:]
        _restore_lines(tree, {id(n) for n in original}, syms, token, fx["pytree"].Leaf)
        result = str(tree)
    if not source.endswith("\n") and result.endswith("\n"):
        result = result[:-1]
    return result


def _error_position(e):
    fx = _fissix
    if isinstance(e, fx["parse"].ParseError):
        lineno, col = e.context[1]
        return _Unparsable("invalid syntax", lineno, col + 1, e)
    if isinstance(e, fx["tokenize"].TokenError):
        msg, (lineno, col) = e.args[0], e.args[1]
        return _Unparsable(msg, lineno, col + 1, e)
    if isinstance(e, SyntaxError):
        return _Unparsable(e.msg or "invalid syntax", e.lineno or 1, e.offset, e)
    return _Unparsable(str(e), 1, None, e)  # pragma: no cover


def _restore_lines(tree, original_ids, syms, token, Leaf):
    """Undo the line insertions some fixers make, so line numbers stay the user's.

    ``touch_import`` (reduce, intern, reload, sorted's cmp_to_key, operator, exitfunc) adds an
    import statement on a new line, ``fix_tuple_params`` and ``fix_except`` add unpacking
    statements, and ``fix_urllib``/``fix_exitfunc`` split one statement into several lines.
    New statements are joined with ``;`` to a neighbouring simple statement (at module level,
    failing that, put on a free line above the first statement that runs); split statements
    are rejoined with ``;``; statements that moved up because a fixer removed a line
    (``fix_metaclass``) get blank lines in front.  A new statement with no such place (e.g. a
    tuple parameter's unpacking before a compound first statement) stays on its own line:
    the only case where lines move.
    """
    def is_newline(leaf):
        return leaf.type == token.NEWLINE

    # 0. fix_except's "(a, b) = e.args" goes into the suite as a bare expression followed by
    #    a copy of the suite's NEWLINE and INDENT: join it to the first statement with ";"
    statement_types = {syms.simple_stmt, syms.if_stmt, syms.while_stmt, syms.for_stmt,
                       syms.try_stmt, syms.with_stmt, syms.funcdef, syms.classdef,
                       syms.decorated, syms.async_stmt, syms.async_funcdef}
    for suite in [n for n in tree.pre_order() if n.type == syms.suite]:
        kids = suite.children
        for k in range(len(kids) - 3):
            x = kids[k]
            if isinstance(x, Leaf) or x.type in statement_types:
                continue
            if kids[k + 1].type == token.NEWLINE and kids[k + 2].type == token.INDENT and \
                    kids[k + 3].type == syms.simple_stmt:
                stmt = kids[k + 3]
                del kids[k:k + 3]
                x.parent = None
                stmt.prefix = " "
                stmt.insert_child(0, Leaf(token.SEMI, ";"))
                stmt.insert_child(0, x)
                suite.changed()
                break

    # 1. NEWLINE tokens in the middle of one simple statement -> ";"
    for node in list(tree.pre_order()):
        if node.type != syms.simple_stmt:
            continue
        kids = node.children
        for i in range(len(kids) - 1):
            if is_newline(kids[i]) and kids[i].value:
                kids[i].replace(Leaf(token.SEMI, ";"))
                if i + 1 < len(kids) and not kids[i + 1].prefix.strip():
                    kids[i + 1].prefix = " "

    # 2. new statements -> joined with a neighbour
    def inserted(node):
        if node.type != syms.simple_stmt or id(node) in original_ids:
            return False
        last = node.children[-1] if node.children else None
        return last is not None and is_newline(last) and last.lineno == 0

    parents = [tree] + [n for n in tree.pre_order() if n.type == syms.suite]
    for parent in parents:
        i = 0
        while i < len(parent.children):
            node = parent.children[i]
            if not inserted(node):
                i += 1
                continue
            prev = parent.children[i - 1] if i > 0 else None
            nxt = parent.children[i + 1] if i + 1 < len(parent.children) else None
            body = list(node.children[:-1])
            if prev is not None and prev.type == syms.simple_stmt:
                for c in body:
                    c.remove()
                pos = len(prev.children) - 1
                if not (pos > 0 and prev.children[pos - 1].type == token.SEMI):
                    prev.insert_child(pos, Leaf(token.SEMI, ";"))
                    pos += 1
                body[0].prefix = " "
                for c in body:
                    prev.insert_child(pos, c)
                    pos += 1
                node.remove()
                continue
            if nxt is not None and nxt.type == syms.simple_stmt:
                # first in a suite: the INDENT token holds the indentation (the fixer set
                # nxt's prefix); otherwise nxt's prefix holds the comments above it
                saved = node.prefix if prev is not None and prev.type == token.INDENT \
                    else nxt.prefix
                for c in body:
                    c.remove()
                nxt.prefix = " "
                nxt.insert_child(0, Leaf(token.SEMI, ";"))
                for c in reversed(body):
                    nxt.insert_child(0, c)
                nxt.prefix = saved
                node.remove()
                continue
            if parent is tree and _place_on_free_line(tree, node, syms, token):
                continue
            i += 1

    # 3. lines removed (fix_metaclass drops the "__metaclass__ = M" line): blank lines in
    #    front of the statements that moved up
    line = 1
    prev = None
    for leaf in tree.leaves():
        at = line + leaf.prefix.count("\n")
        starts_statement = prev is None or prev.type in (token.NEWLINE, token.INDENT,
                                                         token.DEDENT)
        if leaf.lineno and at < leaf.lineno and starts_statement and leaf.type not in (
                token.INDENT, token.DEDENT, token.ENDMARKER, token.NEWLINE):
            pad = leaf.lineno - at
            target = prev if prev is not None and prev.type == token.INDENT else leaf
            target.prefix = "\n" * pad + target.prefix
            at += pad
        line = at + leaf.value.count("\n")
        prev = leaf


def _place_on_free_line(tree, node, syms, token):
    """Move a new top-level statement onto a blank (or comment) line above the first
    top-level statement that runs code, i.e. among the leading ``def``s; True if done."""
    text = str(node).strip()
    kids = [c for c in tree.children if c is not node]
    places = []                      # leaves whose prefix is at module level
    for child in kids:
        places.append(child)
        if child.type not in (syms.funcdef, syms.async_funcdef):
            break
        trailing = []
        for lf in reversed(list(child.leaves())):
            if lf.type != token.DEDENT:
                break
            trailing.append(lf)
        places.extend(reversed(trailing))
    for leaf in places:
        first = leaf if not hasattr(leaf, "children") else next(leaf.leaves(), None)
        if first is None:
            continue
        lines = first.prefix.split("\n")
        # all but the last element are whole lines; the last is the indentation of `first`
        for want_blank in (True, False):
            for k, line in enumerate(lines[:-1]):
                if want_blank and not line.strip():
                    lines[k] = text
                elif not want_blank and line.startswith("#") and \
                        first.get_lineno() - (len(lines) - 1 - k) > 2:
                    lines[k] = text + "  " + line
                else:
                    continue
                first.prefix = "\n".join(lines)
                node.remove()
                return True
    return False


# ---------------------------------------------------------------------------------------------
# The division pass (on the Python 3 AST, spliced into the text at the tokens' positions)
# ---------------------------------------------------------------------------------------------

class _DivToCall(ast.NodeTransformer):
    def visit_BinOp(self, node):
        self.generic_visit(node)
        if isinstance(node.op, ast.Div):
            return ast.Call(ast.Name(DIV_HELPER, ast.Load()), [node.left, node.right], [])
        return node


def _rewrite_division(src, tree, future_division):
    starts = [0]
    for i, ch in enumerate(src):
        if ch == "\n":
            starts.append(i + 1)
    nlines = len(starts)

    def line_text(row):
        end = starts[row] - 1 if row < nlines else len(src)
        return src[starts[row - 1]:end]

    def offset(row, bcol):         # AST (line, utf-8 byte column) -> str offset
        text = line_text(row)
        col = bcol if text.isascii() else len(text.encode("utf-8")[:bcol].decode("utf-8",
                                                                                   "replace"))
        return starts[row - 1] + col

    ops = {"/": [], "/=": []}
    try:
        for tok in tokenize.generate_tokens(io.StringIO(src).readline):
            if tok.type == tokenize.OP and tok.string in ops:
                (r, c) = tok.start
                ops[tok.string].append(starts[r - 1] + c)
    except (tokenize.TokenError, SyntaxError):      # pragma: no cover - src compiled already
        return src

    def find_op(kind, lo, hi):
        seq = ops[kind]
        k = bisect_left(seq, lo)
        if k < len(seq) and seq[k] < hi:
            return seq[k]
        return None

    def span(node):
        return offset(node.lineno, node.col_offset), offset(node.end_lineno, node.end_col_offset)

    # edits: (offset, group, order, delete, text); group 0 = closing ")", 1 = opening, 2 = replace
    edits = []
    augs = []
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div) and not future_division:
            start, end = span(node)
            op = find_op("/", span(node.left)[1], span(node.right)[0])
            if op is None:          # e.g. inside an f-string on Python < 3.12
                continue
            left_end = span(node.left)[1]
            if src[left_end:op].strip(" \t"):      # a ")" or a line break: keep it
                left_end = op
            edits.append((start, 1, -end, 0, DIV_HELPER + "("))
            edits.append((left_end, 2, 0, op + 1 - left_end, ","))
            edits.append((end, 0, -start, 0, ")"))
        elif isinstance(node, ast.AugAssign) and isinstance(node.op, ast.Div) \
                and not future_division:
            augs.append(node)
        elif isinstance(node, ast.Attribute) and node.attr in ("div", "idiv") and \
                isinstance(node.value, ast.Name) and node.value.id == "operator" and \
                isinstance(node.ctx, ast.Load):
            start, end = span(node)
            if "\n" not in src[start:end]:
                edits.append((start, 2, 0, end - start,
                              DIV_HELPER if node.attr == "div" else IDIV_HELPER))

    def apply(edit_list, text, base):
        out = []
        cur = 0
        for off, _g, _o, delete, new in sorted(edit_list):
            off -= base
            if off < cur:            # pragma: no cover - overlapping edits cannot happen
                continue
            out.append(text[cur:off])
            out.append(new)
            cur = off + delete
        out.append(text[cur:])
        return "".join(out)

    for node in augs:
        tstart, tend = span(node.target)
        op = find_op("/=", tend, span(node.value)[0])
        if op is None:
            continue
        vstart, vend = span(node.value)
        target_text = src[tstart:tend]
        if "\n" in target_text:
            target_text = ast.unparse(_DivToCall().visit(ast.parse(ast.unparse(node.target),
                                                                   mode="eval")).body)
        else:
            inner = [e for e in edits if tstart <= e[0] and e[0] + e[3] <= tend
                     and not (e[0] == tend and e[1] == 1)]
            target_text = apply(inner, target_text, tstart)
        gap = src[op + 2:vstart]
        delete = vstart - op if "\n" not in gap and "#" not in gap and "\\" not in gap else 2
        edits.append((op, 2, 0, delete, f"= {IDIV_HELPER}({target_text}, ("))
        edits.append((vend, 0, -vstart, 0, "))"))

    if not edits:
        return src
    return apply(edits, src, 0)


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


def translate(source, filename="<string>", division=True):
    """Python 3 source for Python 2-era ``source`` (see the module documentation).

    ``filename`` only labels errors.  ``division=False`` leaves ``/`` alone.  Raises
    :class:`SyntaxError` (naming ``filename`` and the original line) when ``source`` is
    neither Python 3 nor translatable Python 2.
    """
    if isinstance(source, bytes):
        source = decode_source(source)
    if not isinstance(source, str):
        raise TypeError(f"source must be str, not {type(source).__name__}")
    key = (source, bool(division))
    hit = _cache.get(key)
    if hit is not None:
        return hit
    result = _translate(source, filename, bool(division))
    if result == source:
        result = source
    _cache.put(key, result)
    return result


def needs_translation(source, division=True):
    """Whether :func:`translate` would not return ``source`` unchanged (or would reject it)."""
    try:
        return translate(source, division=division) is not source
    except SyntaxError:
        return True


def _translate(source, filename, division):
    src = source
    src = src.removeprefix("\ufeff")
    if "\r" in src:
        src = src.replace("\r\n", "\n").replace("\r", "\n")
    try:
        tree = _parse3(src, filename)
    except TabError:
        src = _expand_indentation_tabs(src)
        try:
            tree = _parse3(src, filename)
        except (SyntaxError, ValueError):
            tree = None
    except (SyntaxError, ValueError):
        tree = None

    if tree is not None:
        if _has_py2_usage(tree):
            try:
                fixed = _run_fixers(src, py3_valid=True)
                tree = _parse3(fixed, filename)
                src = fixed
            except (_Unparsable, SyntaxError, ValueError, ImportError):
                pass                    # keep the Python 3 source as it is (no fissix: too)
    else:
        try:
            fixed = _run_fixers(src, py3_valid=False)
        except _Unparsable as e:
            raise _unparsable_error(src, filename, e) from None
        try:
            tree = _parse3(fixed, filename)
        except SyntaxError as e:
            raise _syntax_error(f"Python 2 source could not be translated: {e.msg}", src,
                                filename, e.lineno or 1, None, e) from None
        src = fixed

    if division:
        future = _future_division(tree)
        if _division_sites(tree, future):
            src = _rewrite_division(src, tree, future)
            try:
                _parse3(src, filename)
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
        _parse3(src, filename)
    except SyntaxError as err:
        py3 = err
    except ValueError:
        pass
    fx = _fissix
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
