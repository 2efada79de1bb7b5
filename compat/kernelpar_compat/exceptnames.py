"""Python 2 kept the name of ``except E, e:`` bound after the handler; Python 3 deletes it.

0.10's documented session catches an error and uses it in the *next* input::

    try: mec.execute('1/0')
    except client.CompositeError, e: print "caught"
    e.print_tracebacks()

After fissix, the handler reads ``except CompositeError as e:``, and Python 3 unbinds ``e``
when the handler ends.  :func:`keep_except_names` catches into a helper name instead and
binds the user's name from it as the handler's first statement, on the same line::

    except client.CompositeError as __kp_exc__: e = __kp_exc__; print("caught")

so the name outlives the handler as it did in Python 2, and line numbers do not move.  It is
applied to translated Python 2 source only.  A handler whose first statement is compound
(``if``, ``for``, ``with``...; nothing can be put before it on its line) keeps Python 3's
behaviour.
"""

import ast
import io
import tokenize

#: the name handlers catch into; the user's name is bound from it
CAUGHT = "__kp_exc__"
_SIMPLE = (ast.Expr, ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Pass, ast.Break, ast.Continue, ast.Return,
           ast.Raise, ast.Delete, ast.Global, ast.Nonlocal, ast.Import, ast.ImportFrom, ast.Assert)


def keep_except_names(src, tree):
    """``src`` with each named handler's name kept bound after it (see the module doc)."""
    handlers = [h for h in ast.walk(tree) if isinstance(h, ast.ExceptHandler) and h.name and h.body
                and isinstance(h.body[0], _SIMPLE)]
    if not handlers:
        return src
    starts = [0]
    for i, ch in enumerate(src):
        if ch == "\n":
            starts.append(i + 1)

    def offset(row, byte_col):      # AST (line, utf-8 byte column) -> str offset
        line = src[starts[row - 1]:]
        line = line[:line.find("\n")] if "\n" in line else line
        col = byte_col if line.isascii() else len(line.encode("utf-8")[:byte_col].decode("utf-8", "replace"))
        return starts[row - 1] + col

    # positions of the NAME after each top-level "as" (keyed by the position of the "as")
    names_after_as = {}
    previous = None
    try:
        for tok in tokenize.generate_tokens(io.StringIO(src).readline):
            if tok.type == tokenize.NAME and previous is not None and previous.string == "as":
                names_after_as[_offset_of(starts, previous.start)] = (_offset_of(starts, tok.start), tok.string)
            if tok.type not in (tokenize.NL, tokenize.COMMENT):
                previous = tok
    except (tokenize.TokenError, SyntaxError):     # pragma: no cover - src compiled already
        return src

    edits = []
    for handler in handlers:
        head_start = offset(handler.lineno, handler.col_offset)
        body_start = offset(handler.body[0].lineno, handler.body[0].col_offset)
        found = [v for k, v in names_after_as.items() if head_start < k < body_start and v[1] == handler.name]
        if not found:
            continue
        name_at = found[-1][0]
        edits.append((name_at, len(handler.name), CAUGHT))
        edits.append((body_start, 0, f"{handler.name} = {CAUGHT}; "))
    out, cursor = [], 0
    for at, delete, text in sorted(edits):
        out.append(src[cursor:at])
        out.append(text)
        cursor = at + delete
    out.append(src[cursor:])
    return "".join(out)


def _offset_of(starts, position):
    row, col = position
    return starts[row - 1] + col
