"""Task dependencies: functional (``@require``, ``@depend``) and graph (``Dependency``).

Functional dependencies travel *with the task*: the decorators wrap a function in a
:class:`dependent`, a plain picklable callable.  When an engine calls it, it first runs
the dependency check in the engine's own process; a check that returns exactly
``False`` (or raises :class:`~kernelpar.errors.UnmetDependency`) raises
``UnmetDependency`` instead of running the function, so the reply's ``ename`` is
``"UnmetDependency"`` and the task scheduler can try another engine.

* ``@require('numpy', mod, f, name=obj)`` imports modules into the engine's user namespace
  (the globals of interactive functions, see :mod:`kernelpar.wire.serialize`) and pushes
  objects there before the call.
* ``@depend(check, *args, **kwargs)`` runs ``check(*args, **kwargs)`` on the engine first.

Graph dependencies are sets of msg_ids (:class:`Dependency`), given to a
``LoadBalancedView`` as its ``after`` (time) and ``follow`` (location) flags;
:func:`as_dependency_dict` turns what users pass there into the wire form.
"""

import importlib
import sys
from types import ModuleType

from ..errors import UnmetDependency
from ..wire.serialize import user_namespace

__all__ = ["Dependency", "as_dependency_dict", "depend", "dependent", "require"]


def _callable_name(f):
    return getattr(f, "__name__", None) or type(f).__name__


class depend:
    """Decorator: ``@depend(check, *args, **kwargs)`` makes a task run only where
    ``check(*args, **kwargs)`` (called on the engine, before the task) does not return
    ``False`` nor raise ``UnmetDependency``; elsewhere the task raises ``UnmetDependency``
    and a load-balanced scheduler tries another engine::

        def has_gpu():
            import os
            return "CUDA_VISIBLE_DEVICES" in os.environ

        @depend(has_gpu)
        def train(data):
            ...

        view.apply(train, data)
    """

    def __init__(self, _wrapped_f, /, *args, **kwargs):
        self.f = _wrapped_f
        self.args = args
        self.kwargs = kwargs

    def __call__(self, f):
        return dependent(f, self.f, *self.args, **self.kwargs)


class dependent:
    """``f`` guarded by the check ``df(*dargs, **dkwargs)``: what ``@depend``/``@require`` build.

    An object rather than a closure so that it pickles: the engine unpickles it like any
    function and calls it, and :meth:`__call__` runs the check there before ``f``.
    """

    def __init__(self, _wrapped_f, _wrapped_df, /, *dargs, **dkwargs):
        if not callable(_wrapped_f):
            raise TypeError(f"dependent needs a callable to wrap, not {type(_wrapped_f).__name__}")
        if not callable(_wrapped_df):
            raise TypeError(f"the dependency check must be callable, not {type(_wrapped_df).__name__}")
        self.f = _wrapped_f
        self.df = _wrapped_df
        self.dargs = dargs
        self.dkwargs = dkwargs
        self.__name__ = _callable_name(_wrapped_f)
        self.__qualname__ = getattr(_wrapped_f, "__qualname__", self.__name__)
        self.__doc__ = getattr(_wrapped_f, "__doc__", None)
        self.__wrapped__ = _wrapped_f  # inspect.signature() shows f's parameters

    def check_dependency(self):
        """Run the check; raise ``UnmetDependency`` if it returns exactly ``False``."""
        if self.df(*self.dargs, **self.dkwargs) is False:
            raise UnmetDependency(f"{_callable_name(self.df)} returned False: {self.__name__} cannot run here")

    def __call__(self, *args, **kwargs):
        self.check_dependency()
        return self.f(*args, **kwargs)

    def __repr__(self):
        return f"<dependent {self.__name__} on {_callable_name(self.df)}>"


def _import_into(name, namespace):
    """``import name`` with ``namespace`` as globals: binds the top-level package name."""
    importlib.import_module(name)
    top = name.partition(".")[0]
    namespace[top] = sys.modules[top]


def _require(*modules, **mapping):
    """The check of ``@require``: import ``modules`` and bind ``mapping`` in the user namespace.

    Runs on the engine, where :func:`user_namespace` is the namespace interactive functions
    get as globals, so the task sees the names.  A module that cannot be imported here
    raises ``UnmetDependency`` (another engine may have it).
    """
    namespace = user_namespace()
    for name in modules:
        try:
            _import_into(name, namespace)
        except ImportError as e:
            raise UnmetDependency(f"cannot import {name!r} here: {e}") from e
    namespace.update(mapping)
    return True


def require(*objects, **mapping):
    """Decorator: make modules and objects available on the engine when the task runs.

    Modules, by name or as module objects, are imported into the engine's user namespace
    first (an engine where the import fails raises ``UnmetDependency``, so a load-balanced
    task goes elsewhere).  Functions (anything with a ``__name__``) passed positionally are
    pushed under their ``__name__``; other objects are pushed by keyword::

        @require("numpy")
        def norm(a):
            return numpy.linalg.norm(a, 2)

        square = lambda x: x * x

        @require(square, offset=1)
        def shifted(a):
            return square(a) + offset

    Like ``push``, the names land in the user namespace: functions defined in ``__main__``
    (or marked ``@interactive``) see them as globals.
    """
    names = []
    for obj in objects:
        if isinstance(obj, ModuleType):
            obj = obj.__name__
        if isinstance(obj, str):
            names.append(obj)
        elif getattr(obj, "__name__", None):
            mapping[obj.__name__] = obj
        else:
            raise TypeError(
                f"require takes modules, module names and functions positionally; "
                f"pass other objects by keyword, not {type(obj).__name__}"
            )
    return depend(_require, *names, **mapping)


_DICT_KEYS = frozenset({"dependencies", "all", "success", "failure"})


def _msg_ids_of(obj):
    """The msg_ids an AsyncResult-like object stands for, or None if ``obj`` is not one."""
    msg_ids = getattr(obj, "msg_ids", None)
    if msg_ids is None:
        return None
    if isinstance(msg_ids, str) or not isinstance(msg_ids, (list, tuple, set, frozenset)):
        raise TypeError(f"invalid dependency: {type(obj).__name__}.msg_ids is a {type(msg_ids).__name__}")
    for m in msg_ids:
        if not isinstance(m, str):
            raise TypeError(f"invalid dependency: {type(obj).__name__}.msg_ids holds a {type(m).__name__}")
    return list(msg_ids)


def _collect_ids(dependencies):
    if isinstance(dependencies, str):
        return [dependencies]
    ids = _msg_ids_of(dependencies)
    if ids is not None:
        return ids
    if not isinstance(dependencies, (list, tuple, set, frozenset)):
        raise TypeError(
            "invalid dependency type: "
            f"{type(dependencies).__name__} (expected a msg_id, an AsyncResult, a list of them or a Dependency)"
        )
    ids = []
    for d in dependencies:
        if isinstance(d, str):
            ids.append(d)
        elif isinstance(d, Dependency):
            ids.extend(d)
        else:
            found = _msg_ids_of(d)
            if found is None:
                raise TypeError(
                    f"invalid dependency type: {type(d).__name__} in a {type(dependencies).__name__} "
                    "(expected msg_ids or AsyncResults)"
                )
            ids.extend(found)
    return ids


def _as_set(ids):
    return ids if isinstance(ids, (set, frozenset, dict)) else set(ids)


class Dependency(set):
    """A set of msg_ids that a task waits for (``after``) or follows (``follow``).

    Parameters
    ----------
    dependencies : msg_id, AsyncResult, list/set/tuple of those, Dependency, or the
        ``as_dict()`` form
    all : bool (default True)
        met when *all* of them finished (True) or when *any* did (False)
    success : bool (default True)
        a successful task counts as finished
    failure : bool (default False)
        a failed task counts as finished

    With ``all=success=True, failure=False`` the dependency becomes impossible as soon as
    one of the tasks fails.  Passing a ``Dependency`` copies its msg_ids only; the flags
    are this call's.
    """

    all = True
    success = True
    failure = False

    def __init__(self, dependencies=[], all=True, success=True, failure=False):  # noqa: B006 (never mutated)
        if isinstance(dependencies, dict):
            unknown = set(dependencies) - _DICT_KEYS
            if unknown:
                raise TypeError(f"invalid dependency dict: unexpected keys {sorted(map(str, unknown))}")
            all = dependencies.get("all", all)
            success = dependencies.get("success", success)
            failure = dependencies.get("failure", failure)
            dependencies = dependencies.get("dependencies", [])
            if isinstance(dependencies, dict):
                raise TypeError("invalid dependency dict: 'dependencies' is a dict")
        if not (success or failure):
            raise ValueError("Must depend on at least one of successes or failures!")
        set.__init__(self, _collect_ids(dependencies))
        self.all = bool(all)
        self.success = bool(success)
        self.failure = bool(failure)

    def _counted(self, completed, failed, count_success, count_failure):
        pools = []
        if count_success:
            pools.append(_as_set(completed))
        if count_failure and failed is not None:
            pools.append(_as_set(failed))
        return [msg_id for msg_id in self if any(msg_id in pool for pool in pools)]

    def check(self, completed, failed=None):
        """Whether the dependency is met, given the msg_ids that completed and that failed."""
        if not self:
            return True
        hits = self._counted(completed, failed, self.success, self.failure)
        return len(hits) == len(self) if self.all else bool(hits)

    def unreachable(self, completed, failed=None):
        """Whether the dependency can no longer be met, given what completed and failed."""
        if not self:
            return False
        misses = self._counted(completed, failed, not self.success, not self.failure)
        return bool(misses) if self.all else len(misses) == len(self)

    def as_dict(self):
        """The JSON-able form (what travels in a task's metadata)."""
        return {"dependencies": sorted(self), "all": self.all, "success": self.success, "failure": self.failure}

    def __repr__(self):
        flags = f"all={self.all}, success={self.success}, failure={self.failure}"
        return f"Dependency({sorted(self)!r}, {flags})"


def as_dependency_dict(value):
    """Validate an ``after``/``follow`` flag; return its ``as_dict()`` form, None if empty.

    Accepts None, a msg_id, an AsyncResult (anything with ``msg_ids``), a list/set/tuple
    of those, a :class:`Dependency` (its flags are kept) or the ``as_dict()`` form.
    """
    if value is None:
        return None
    try:
        dep = value if isinstance(value, Dependency) else Dependency(value)
    except TypeError as e:
        raise TypeError(f"after/follow must be msg_ids, AsyncResults or a Dependency: {e}") from None
    if not dep:
        return None
    return dep.as_dict()
