"""Python 2's ``print a, b,`` (a trailing comma): the helper translated code calls.

2to3 turns ``print line,`` into ``print(line, end=" ")``, which always writes the space.
Python 2 wrote it only if the next thing printed on that line needed one: its "softspace"
was not set after text ending in a newline (or another whitespace character but ``' '``).
So ``for line in f: print line,`` printed the file as it is; with ``end=" "`` every line
but the first starts with a space.  Translated code calls :data:`PRINT_HELPER` for print
statements with a trailing comma (:mod:`.fixers`); it writes the items as Python 2 did and
the trailing space only when Python 2's softspace would have put one before whatever
comes next.  One difference is left: ``print x,`` followed by a bare ``print`` ends the
line with that space (Python 2 dropped it).

Like the classic-division helpers, the helper lives in ``builtins`` (see :mod:`.py2source`,
"Where the helpers live"): :data:`PY2_PRINT_PRELUDE` installs it there on engines, and
:func:`kernelpar_compat.division.install_helpers` in a client process.
"""

PRINT_HELPER = "__kp_print_comma__"

_HELPER_SOURCE = '''\
def __kp_print_comma__(*values, end=" ", file=None):
    """Python 2's ``print values...,``: no space after text ending in a newline."""
    import sys
    out = sys.stdout if file is None else file
    pending = False
    for value in values:
        if pending:
            out.write(" ")
        text = str(value)
        out.write(text)
        pending = not (text[-1:].isspace() and text[-1:] != " ")
    if pending:
        out.write(end)
'''

#: installs the helper into ``builtins`` of the process that runs it, leaving no other name
PY2_PRINT_PRELUDE = _HELPER_SOURCE + '''
import builtins as __kp_builtins__
__kp_builtins__.__kp_print_comma__ = __kp_print_comma__
del __kp_builtins__, __kp_print_comma__
'''


def _make_helper():
    namespace = {"__name__": __name__}
    exec(compile(_HELPER_SOURCE, "<kernelpar print statement>", "exec"), namespace)  # noqa: S102 - our own text
    return namespace[PRINT_HELPER]


print_comma = _make_helper()
