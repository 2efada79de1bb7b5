"""Python 3 source that only Python 2 could run: names, modules and list-only uses of
``map``/``filter``/``zip``/dict views that mark source as needing translation."""

import ast
import sys
import types
import warnings

from .fixers import STRING_CONSTANTS, STRING_FUNCTIONS, STRING_JOIN, STRING_METHODS


def parse3(source, filename="<string>"):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return compile(source, filename, "exec",
                       ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)


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
    "string": set(STRING_CONSTANTS) | set(STRING_METHODS) | set(STRING_FUNCTIONS)
    | STRING_JOIN,
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


def has_py2_usage(tree):
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
                # a range equals nothing but a range: compared to anything else, it was a list
                ranges = [builtin_call(x, {"range"}) for x in operands]
                if any(ranges) and not all(ranges):
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
