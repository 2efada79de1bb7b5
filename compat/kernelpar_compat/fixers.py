"""The fissix fixers (lib2to3's, plus a few of our own) and running them with the
line numbers kept (see :mod:`.py2source`)."""

import threading

from .py2print import PRINT_HELPER

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
#: buffer), ``fix_idioms``, ``fix_set_literal``, ``fix_ws_comma`` (cosmetic).  Fixers of
#: our own run after these: ``string`` module functions and constants
#: (``string.join(words, sep)``, ``string.letters`` ...); ``cmp``, ``file(...)`` and
#: ``time.clock``; ``cmp=`` in ``sorted()``/``.sort()`` (and ``sorted(x, f)``) to
#: ``key=cmp_to_key(...)``; octal longs (``0777L``), which fix_numliterals gets wrong.  Two
#: replace fissix's: ``print`` (``fix_print``, but a trailing comma keeps Python 2's
#: softspace, see :mod:`.py2print`) and ``types`` (``fix_types``, but ``StringType`` is
#: ``str``, and ``from types import StringType`` works).
FIXERS = tuple(
    "fissix.fixes.fix_" + name
    for name in (
        "apply", "asserts", "basestring", "dict", "except", "exec", "execfile", "exitfunc",
        "filter", "funcattrs", "getcwdu", "has_key", "imports", "imports2", "input", "intern",
        "isinstance", "itertools", "itertools_imports", "long", "map", "metaclass",
        "methodattrs", "ne", "next", "nonzero", "numliterals", "operator", "paren",
        "raise", "raw_input", "reduce", "reload", "renames", "repr", "standarderror",
        "sys_exc", "throw", "tuple_params", "unicode", "urllib", "xrange",
        "xreadlines", "zip",
    )
)

_fissix = None           # the loaded fissix pieces (imported lazily: the pure path needs none)
_tool = None
_tool_lock = threading.RLock()


def load_fissix():
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

STRING_CONSTANTS = {"letters": "ascii_letters", "lowercase": "ascii_lowercase",
                     "uppercase": "ascii_uppercase"}
# string.f(s, *rest) -> s.f(*rest)
STRING_METHODS = {
    "lower": "lower", "upper": "upper", "strip": "strip", "lstrip": "lstrip",
    "rstrip": "rstrip", "split": "split", "splitfields": "split", "rsplit": "rsplit",
    "replace": "replace", "find": "find", "rfind": "rfind", "index": "index",
    "rindex": "rindex", "count": "count", "capitalize": "capitalize", "swapcase": "swapcase",
    "expandtabs": "expandtabs", "ljust": "ljust", "rjust": "rjust", "center": "center",
    "zfill": "zfill", "translate": "translate",
}
# string.f(*args) -> g(*args)
STRING_FUNCTIONS = {"atoi": "int", "atol": "int", "atof": "float",
                     "maketrans": "str.maketrans"}
STRING_JOIN = {"join", "joinfields"}
_CMP_LAMBDA = "(lambda a, b: (a > b) - (a < b))"


def _custom_fixers():
    fx = load_fissix()
    from fissix.fixes import fix_types  # the fixers ours build on: fissix is there now
    from fissix.fixes.fix_print import FixPrint

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
            if attr in STRING_CONSTANTS:
                name.replace(fu.Name(STRING_CONSTANTS[attr], prefix=name.prefix))
                return None
            rest = results["rest"]
            if not rest or rest[0].type != syms.trailer or rest[0].children[0].value != "(":
                return None
            args = call_args(rest[0])
            if args is None:
                return None
            old = str(node)
            if attr in STRING_METHODS and args and not (attr == "translate" and len(args) > 2):
                obj = args[0].clone()
                obj.prefix = ""
                if needs_parens(obj):
                    obj = fu.parenthesize(obj)
                new, rpar = build_call(node.prefix, [obj, fu.Dot(),
                                                     fu.Name(STRING_METHODS[attr])],
                                       args[1:], rest[1:])
            elif attr in STRING_JOIN and 1 <= len(args) <= 2:
                if len(args) == 2:
                    sep = args[1].clone()
                    sep.prefix = ""
                    if needs_parens(sep):
                        sep = fu.parenthesize(sep)
                else:
                    sep = fu.String('" "')
                new, rpar = build_call(node.prefix, [sep, fu.Dot(), fu.Name("join")],
                                       args[:1], rest[1:])
            elif attr in STRING_FUNCTIONS and args:
                new, rpar = build_call(node.prefix, [fu.Name(STRING_FUNCTIONS[attr])],
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

    class _FixKpPrint(FixPrint):
        """fix_print, but ``print a, b,`` calls the helper of :mod:`.py2print` (Python 2's
        softspace: no space after a line that ends in a newline)."""

        def transform(self, node, results):
            args = node.children[1:] if "bare" not in results else []
            call = super().transform(node, results)
            if call is not None and args and args[-1] == fu.Comma():
                call.children[0].value = PRINT_HELPER
            return call

    #: fix_types's names, but ``StringType`` is ``str``: a Python 2 script's string literals
    #: are ``str`` once translated, and ``type(s) == StringType`` must stay true for them
    type_names = dict(fix_types._TYPE_MAPPING, StringType="str")

    class _FixKpTypes(fixer_base.BaseFix):
        """``types.StringType`` and friends, and ``from types import StringType`` (the names
        Python 3's ``types`` lacks are bound on the same line: ``StringType = str``)."""
        BM_compatible = True
        PATTERN = "|".join(
            ["power< 'types' trailer< '.' name='%s' > >" % t for t in type_names]
            + ["import_from< 'from' 'types' 'import' names=any >"])

        def transform(self, node, results):
            if "names" not in results:
                return fu.Name(type_names[results["name"].value], prefix=node.prefix)
            names = results["names"]
            items = names.children if names.type == syms.import_as_names else [names]
            kept, bound = [], []
            for item in items:
                if item.type == token.COMMA:
                    continue
                name, alias = ((item.children[0].value, item.children[2].value)
                               if item.type == syms.import_as_name else (item.value, item.value))
                if name in type_names:
                    bound.append((alias, type_names[name]))
                else:
                    kept.append(str(item).strip())
            if not bound:
                return None
            statements = [f"from types import {', '.join(kept)}"] if kept else []
            statements += [f"{alias} = {value}" for alias, value in bound]
            return Leaf(token.NAME, "; ".join(statements), prefix=node.prefix)

    return [_FixKpString, _FixKpBuiltins, _FixKpSortCmp, _FixKpNumber, _FixKpPrint, _FixKpTypes]


def _get_tool():
    global _tool
    if _tool is None:
        fx = load_fissix()
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
# Running the fixers
# ---------------------------------------------------------------------------------------------

class Unparsable(Exception):
    def __init__(self, msg, lineno, offset, cause):
        super().__init__(msg)
        self.msg, self.lineno, self.offset, self.cause = msg, lineno, offset, cause


def run_fixers(source, py3_valid, print_statements=True):
    """Source through the fissix fixers; raises Unparsable when fissix cannot parse it.

    ``print_statements=False`` reads valid Python 3 source with ``print`` as the function
    (``print("a", b)`` stays a call, not the print statement of a tuple).
    """
    fx = load_fissix()
    pygram, syms, token = fx["pygram"], fx["pygram"].python_symbols, fx["token"]
    features = fx["refactor"]._detect_future_features(source)
    if py3_valid or "print_function" in features:
        grammars = [pygram.python_grammar_no_print_statement, pygram.python_grammar,
                    pygram.python_grammar_no_print_and_exec_statement]
        if py3_valid and print_statements:
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
        return Unparsable("invalid syntax", lineno, col + 1, e)
    if isinstance(e, fx["tokenize"].TokenError):
        msg, (lineno, col) = e.args[0], e.args[1]
        return Unparsable(msg, lineno, col + 1, e)
    if isinstance(e, SyntaxError):
        return Unparsable(e.msg or "invalid syntax", e.lineno or 1, e.offset, e)
    return Unparsable(str(e), 1, None, e)  # pragma: no cover


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
