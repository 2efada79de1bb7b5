"""What the legacy API runs *on the engines*: IPython 0.10's interpreter semantics.

The MultiEngineClient (and the TaskClient) call these functions with ``apply`` through
the modern machinery, except ``execute``, which the engine itself calls for the
MultiEngineClient's ``execute_request`` (``legacy_execute`` in
:mod:`kernelpar.wire.protocol`).  They live in an importable module, so they are pickled
by reference and the engine imports them from its own kernelpar.  Each takes the namespace
to work on as its first argument; :data:`USER_NAMESPACE` (None) means the engine's user
namespace, found on the engine (:func:`kernelpar.wire.serialize.user_namespace`).  That
is cheaper than :mod:`kernelpar.client.enginefuncs`' ``Reference("globals()")``, which
the engine compiles and evaluates for every request (measured: 30 us -> 6 us to unpack a
request, 28 us -> 14 us to pack one).

Stable API for the other legacy modules (the TaskClient runs StringTasks with it)
--------------------------------------------------------------------------------
``namespace`` is a dict, or :data:`USER_NAMESPACE` for the engine's own.

``execute(namespace, raw, source, prelude=None) -> dict``
    Run ``source`` (the text to run: ``raw`` itself, or its Python 3 translation) the
    0.10 way and return the result dict ``{'id', 'number', 'input': {'raw',
    'translated'}}`` plus ``stdout``/``stderr``/``display`` when there is any (``input``
    holds ``raw`` twice: users see their own text).  Failures raise the exception of the
    first failing statement (a ``SyntaxError`` before anything runs); the command
    number is used up either way.  ``prelude`` (``translate.engine_prelude()``) runs
    once per engine process, outside the user namespace.
``reset(namespace) -> None``
    A fresh interpreter: namespace, result history, properties and numbering cleared,
    ``id``/``mpi`` seeded again.
``properties(namespace) -> dict``
    The engine's properties (the live dict that ``set_properties`` fills and ``depend``
    functions are given).
``push(namespace, values)``, ``pull(namespace, keys)``
    0.10's namespace access (``pull``'s shapes and ``NameError("name x is not defined")``).
``run_prelude(prelude) -> None``
    Run the prelude now if this process has not yet: before calling functions that
    translated client code defined (they may need its helpers).

Engine state
------------
Each namespace touched by the legacy API carries its state (command counter, result
history, properties) under :data:`STATE_KEY`, a name ``keys()`` hides.  Keeping it in the
namespace means whatever empties the namespace (``reset``, the modern ``rc.clear()``)
also gives a fresh interpreter, exactly as 0.10's reset did.  The first time the legacy
API touches a namespace it seeds ``id`` (the engine id: it shadows the builtin ``id()``,
which is why engines that only see the modern API never get it) and ``mpi``.

Execution (0.10's ``Interpreter.execute``, spec §4)
----------------------------------------------------
The source is split into top-level statements, each compiled in ``'single'`` mode and run
with the namespace as globals and locals; expression values go to a display trap that
keeps the last non-None one (``display``), never to stdout; stdout/stderr are captured
for the call into the result dict (not streamed to iopub: 0.10 clients never saw output
before the result, and it keeps a legacy call as cheap as a modern one).  Unlike 0.10,
execution stops at the first failing statement (spec ⟂ MEC-05b).
"""

import ast
import builtins
import copy
import functools
import io
import linecache
import pickle
import pprint
import sys
import textwrap
import types
from collections import OrderedDict

from ...wire.serialize import user_namespace
from .error import InvalidProperty

#: the first argument meaning "the engine's user namespace"
USER_NAMESPACE = None

#: where a namespace keeps its legacy state (hidden from ``keys()``)
STATE_KEY = "__kernelpar_legacy__"

#: result dicts kept per engine for ``get_result`` (older command numbers are forgotten)
HISTORY_LIMIT = 1000

#: names ``keys()`` leaves out: 0.10's list, the state, and the module attributes a
#: kernelpar engine namespace has (0.10's interpreter namespace had none)
HIDDEN_KEYS = frozenset(("__name__", "_ih", "_oh", "__builtins__", "In", "Out", "_", "__", "___", "__IP", "input",
                         "raw_input", STATE_KEY, "__doc__", "__package__", "__loader__", "__spec__"))

#: preludes this process ran already (normally one)
_preludes_run = set()

#: this engine's id, once known
_engine_id = None


class LegacyState:
    """One engine interpreter's 0.10 bookkeeping (see the module docstring)."""

    __slots__ = ("number", "history", "properties")

    def __init__(self):
        self.number = 1
        self.history = OrderedDict()
        self.properties = {}

    def __reduce__(self):
        # ``globals()`` may be pulled whole (``keys()`` is the usual way, but be safe)
        return (LegacyState, ())


def on_namespace(f):
    """``f(namespace, ...)`` with :data:`USER_NAMESPACE` replaced by the engine's namespace."""

    @functools.wraps(f)
    def in_namespace(namespace, *args, **kwargs):
        return f(user_namespace() if namespace is None else namespace, *args, **kwargs)

    return in_namespace


def engine_id():
    """This engine's id (None outside an engine process).

    Imported here, not at the top: this module is also imported by clients, which must
    not load the engine package.
    """
    global _engine_id
    if _engine_id is None:
        from ...engine.kernel import Kernel

        kernel = Kernel.instance
        _engine_id = kernel.engine_id if kernel is not None else None
    return _engine_id


def state(namespace):
    """The legacy state of ``namespace``, created (and ``id``/``mpi`` seeded) on first use."""
    st = namespace.get(STATE_KEY)
    if type(st) is not LegacyState:
        st = namespace[STATE_KEY] = LegacyState()
        namespace["id"] = engine_id()
        # an engine run under MPI has mpi4py loaded; 0.10's --mpi=mpi4py gave its MPI module
        namespace["mpi"] = sys.modules.get("mpi4py.MPI")
    return st


# -- the stable API ----------------------------------------------------------------------------


@on_namespace
def execute(namespace, raw, source, prelude=None):
    """Run ``source`` statement by statement; the result dict (see the module docstring)."""
    st = state(namespace)
    number = st.number
    st.number += 1
    run_prelude(prelude)
    statements = _compile_statements(source)
    trap = _DisplayTrap(namespace)
    out, err = io.StringIO(), io.StringIO()
    saved = sys.stdout, sys.stderr, sys.displayhook
    sys.stdout, sys.stderr, sys.displayhook = out, err, trap
    try:
        for code in statements:
            exec(code, namespace)
    finally:
        sys.stdout, sys.stderr, sys.displayhook = saved
    result = {"id": engine_id(), "number": number, "input": {"raw": raw, "translated": raw}}
    stdout, stderr = out.getvalue(), err.getvalue()
    if stdout:
        result["stdout"] = stdout
    if stderr:
        result["stderr"] = stderr
    if trap.value is not None:
        result["display"] = {"pprint": pprint.pformat(trap.value), "repr": repr(trap.value)}
    st.history[number] = result
    if len(st.history) > HISTORY_LIMIT:
        st.history.popitem(last=False)
    return result


def run_prelude(prelude):
    """Run the legacy-mode prelude once in this process, outside the user namespace."""
    if prelude is not None and prelude not in _preludes_run:
        exec(prelude, {"__builtins__": builtins, "__name__": "__kernelpar_prelude__"})
        _preludes_run.add(prelude)


@on_namespace
def reset(namespace):
    """A fresh interpreter in the same namespace dict (functions hold on to it)."""
    namespace.clear()
    namespace.update(__name__="__main__", __builtins__=builtins)
    state(namespace)


@on_namespace
def properties(namespace):
    """The engine's properties dict (live)."""
    return state(namespace).properties


# -- execution helpers -------------------------------------------------------------------------


class _DisplayTrap:
    """``sys.displayhook`` while legacy code runs: keeps the last value, shifts ``_``s."""

    __slots__ = ("namespace", "value")

    def __init__(self, namespace):
        self.namespace = namespace
        self.value = None

    def __call__(self, value):
        if value is None:
            return
        self.value = value
        ns = self.namespace
        ns["___"], ns["__"], ns["_"] = ns.get("__"), ns.get("_"), value


@functools.lru_cache(maxsize=256)
def _compile_statements(source):
    """The top-level statements of ``source``, each compiled in 'single' mode.

    Parsing the whole source first finds a SyntaxError anywhere before anything runs.
    ``from __future__`` imports apply to the statements after them, as in one module.
    Code indented as a whole runs (0.10 stripped the source).
    """
    source = textwrap.dedent(source)
    filename = f"<legacy-input-{hash(source) & 0xFFFFFFFF:08x}>"
    tree = ast.parse(source, filename)
    flags = 0
    statements = []
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module == "__future__":
            for alias in node.names:
                feature = getattr(__import__("__future__"), alias.name, None)
                flags |= getattr(feature, "compiler_flag", 0)
        statements.append(compile(ast.Interactive(body=[node]), filename, "single", flags, dont_inherit=True))
    # so that tracebacks show the source lines
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    return tuple(statements)


# -- namespace access --------------------------------------------------------------------------


@on_namespace
def push(namespace, values):
    """``push``: ``dict.update`` of the namespace."""
    state(namespace)
    namespace.update(values)


@on_namespace
def pull(namespace, keys):
    """``pull``: one value for a str (or a one-key sequence), else a list in key order."""
    state(namespace)
    if isinstance(keys, str):
        return _lookup(namespace, keys)
    if not isinstance(keys, (list, tuple)):
        raise TypeError("keys must be a strong or a list/tuple of strings")
    values = [_lookup(namespace, key) for key in keys]
    return values[0] if len(values) == 1 else values


def _lookup(namespace, key):
    if not isinstance(key, str):
        raise TypeError("objects must be keyed by strings.")
    try:
        return namespace[key]
    except KeyError:
        raise NameError(f"name {key} is not defined") from None


@on_namespace
def push_function(namespace, functions, prelude=None):
    """``push_function``: every value must be a function (rebuilt with these globals).

    The prelude runs first: the functions may be translated client code that needs it.
    """
    state(namespace)
    run_prelude(prelude)
    for value in functions.values():
        if not isinstance(value, types.FunctionType):
            raise TypeError("function object expected")
    namespace.update(functions)


@on_namespace
def keys(namespace):
    """The names of the namespace, without the interpreter's own."""
    state(namespace)
    return [name for name in namespace if name not in HIDDEN_KEYS]


@on_namespace
def get_result(namespace, number=None):
    """The stored result dict of command ``number`` (None: the latest)."""
    history = state(namespace).history
    if not history:
        raise IndexError("no results in the history")
    if number is None:
        return history[next(reversed(history))]
    try:
        return history[number]
    except (KeyError, TypeError):
        raise IndexError(f"no result with number {number!r} in the history") from None


@on_namespace
def raw_map_chunk(namespace, func, seq, prelude=None):
    """This engine's part of ``raw_map``: 0.10's helper names stay in the namespace.

    The prelude runs first: ``func`` may be translated client code that needs it.
    """
    state(namespace)
    run_prelude(prelude)
    namespace["_ipython_map_func"] = func
    namespace["_ipython_map_seq"] = seq
    f = eval(func, namespace) if isinstance(func, str) else func
    result = namespace["_ipython_map_seq_result"] = list(map(f, *zip(*seq))) if len(seq) else []
    return result


# -- properties --------------------------------------------------------------------------------


@on_namespace
def set_properties(namespace, values):
    props = properties(namespace)
    for key, value in values.items():
        try:
            copied = copy.deepcopy(value)
            pickle.dumps(copied)
        except Exception as e:
            raise InvalidProperty(f"property {key!r} is not picklable: {e}") from None
        props[key] = copied


@on_namespace
def get_properties(namespace, keys=None):
    props = properties(namespace)
    if keys is None:
        return dict(props)
    if isinstance(keys, str):
        keys = [keys]
    return {key: props[key] for key in keys}


@on_namespace
def has_properties(namespace, keys):
    props = properties(namespace)
    if isinstance(keys, str):
        keys = [keys]
    return [key in props for key in keys]


@on_namespace
def del_properties(namespace, keys):
    props = properties(namespace)
    if isinstance(keys, str):
        keys = [keys]
    for key in keys:
        del props[key]


@on_namespace
def clear_properties(namespace):
    properties(namespace).clear()
