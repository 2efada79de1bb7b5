"""A hint for the commonest surprise of remote code: a ``NameError`` for a client's name.

Functions defined in a session (``__main__``) run on the engines with the *engine's*
namespace as their globals (ipyparallel's rule, which users rely on to read what ``push``
put there), and ``execute`` code runs there too.  So a module imported, or a variable
set, only in the client is missing on the engines, and the engine's ``NameError`` does
not say why.  :func:`name_error_hint` looks the missing name up in the client's user
namespace and, when it is there, says what to do; the client attaches the hint to the
``RemoteError`` as an exception note (PEP 678), which leaves ``str(error)`` as
ipyparallel's and shows in tracebacks, plain and IPython's alike.
"""

import re
import types

from ..wire.serialize import user_namespace

_MISSING_NAME = re.compile(r"^name '([A-Za-z_][A-Za-z0-9_]*)' is not defined")
_ABSENT = object()


def _import_statement(name, module):
    qualified = module.__name__
    if qualified == name:
        return f"import {name}"
    parent, _, last = qualified.rpartition(".")
    if last == name and parent:
        return f"from {parent} import {name}"
    return f"import {qualified} as {name}"


def name_error_hint(ename, evalue, namespace=None, method="apply"):
    """The hint for a remote ``ename: evalue`` raised by ``method`` ("apply": a function
    sent from here; "execute": code), or None when there is nothing to say."""
    if ename != "NameError":
        return None
    match = _MISSING_NAME.match(evalue)
    if match is None:
        return None
    name = match.group(1)
    namespace = user_namespace() if namespace is None else namespace
    # one lookup: this runs on the client's IO thread while the user's thread may change names
    value = namespace.get(name, _ABSENT)
    if value is _ABSENT:
        return None
    where = "where code sent from here looks up its global names"
    function = method != "execute"
    if isinstance(value, types.ModuleType):
        statement = _import_statement(name, value)
        return (f"NameError hint: '{name}' is imported in this client but not on the engines, {where}: "
                f"import it there too (view.execute({statement!r}) or %px {statement})"
                f"{' or inside the function' if function else ''}.")
    return (f"NameError hint: '{name}' is defined in this client but not on the engines, {where}: "
            f"send it with view.push({{'{name}': {name}}}){' or pass it as an argument' if function else ''}.")
