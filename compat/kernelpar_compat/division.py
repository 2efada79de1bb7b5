"""Classic (Python 2) division: the helpers translated code calls, and the rewrite of
``a / b`` into calls of them (see :mod:`.py2source` for where the helpers live)."""

import ast
import builtins
import io
import tokenize
from bisect import bisect_left

from .py2print import PRINT_HELPER, print_comma

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
    """Make the helpers resolvable by translated code: classic division's, and that of
    ``print`` statements ending in a comma (:mod:`.py2print`).

    With no argument they go into ``builtins`` (visible from every namespace, not listed by
    ``dir()``/``%who``, kept across namespace resets); with a dict they go into that dict.
    Idempotent.
    """
    target = builtins.__dict__ if namespace is None else namespace
    target[DIV_HELPER] = classic_div
    target[IDIV_HELPER] = classic_idiv
    target[PRINT_HELPER] = print_comma


def future_division(tree):
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


def division_sites(tree, future_division):
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
# The division pass (on the Python 3 AST, spliced into the text at the tokens' positions)
# ---------------------------------------------------------------------------------------------

class _DivToCall(ast.NodeTransformer):
    def visit_BinOp(self, node):
        self.generic_visit(node)
        if isinstance(node.op, ast.Div):
            return ast.Call(ast.Name(DIV_HELPER, ast.Load()), [node.left, node.right], [])
        return node


def rewrite_division(src, tree, future_division):
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
