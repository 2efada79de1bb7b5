"""Old import names resolved to kernelpar: ``import ipyparallel``, ``from IPython import parallel``,
``from IPython.kernel import client``.

Scripts and notebooks written for ipyparallel (or for IPython 0.11-3.x, where it was
``IPython.parallel``), and programs written for IPython 0.10's ``IPython.kernel``, run on
kernelpar once :func:`install` has put :class:`AliasFinder` on ``sys.meta_path``
(``import kernelpar_compat.enable`` is the one line a notebook needs; the runner
``kernelpar-legacy`` and the IPython extension install it too).  It is opt-in:
``import kernelpar`` never installs it.

=====================  ====================================================================
old name               kernelpar module
=====================  ====================================================================
``ipyparallel``        ``kernelpar`` (submodules follow, except :data:`MOVED` ones)
``IPython.parallel``   ``kernelpar`` (the same)
``IPython.kernel``     ``kernelpar.client.legacy`` (the 0.10 API; ``IPython.kernel.<x>`` is
                       ``kernelpar.client.legacy.<x>``, ``IPython.kernel.core.error`` is
                       ``kernelpar.client.legacy.error``)
``IPython.genutils``   :mod:`kernelpar_compat.genutils` (what 0.10 scripts took from it)
=====================  ====================================================================

``IPython`` itself is a real package (IPython 8 has neither ``kernel`` nor ``genutils``): the
finder answers for those submodules of it, the rest of ``IPython`` is IPython's own.

An alias never shadows a real module silently: when the old name can be imported from
anywhere else (ipyparallel really is installed, or IPython 4-7's ``IPython.kernel`` shim for
ipykernel is), that module is used and a warning says that the alias was not applied.  A
name kernelpar does not have fails as an ImportError naming both.

Importing ``IPython.kernel`` through the finder also turns on legacy mode for engine sources
(:mod:`.legacymode`: Python 2 code strings sent to engines are translated) unless the program
already chose with ``kernelpar_compat.legacy_mode(...)``: code written for the 0.10 names is
0.10-era code.
"""

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

#: old names and the module each stands for
ALIASES = {
    "ipyparallel": "kernelpar",
    "IPython.parallel": "kernelpar",
    "IPython.kernel": "kernelpar.client.legacy",
    "IPython.genutils": "kernelpar_compat.genutils",
}
_MODERN_MOVED = {
    "serialize": "kernelpar.wire.serialize",
    "datapub": "kernelpar.datapub",
    "apps": "kernelpar.cluster",
    "cluster": "kernelpar.cluster",
    "controller.dependency": "kernelpar.client.dependency",
    "client.asyncresult": "kernelpar.client.asyncresult",
    "client.view": "kernelpar.client.view",
    "client.client": "kernelpar.client.client",
    "client.magics": "kernelpar.client.magics",
}
#: per old name: its submodules that live under another name
MOVED = {
    "ipyparallel": _MODERN_MOVED,
    "IPython.parallel": _MODERN_MOVED,
    "IPython.kernel": {
        "core": "kernelpar_compat.kernelcore",
        "core.error": "kernelpar.client.legacy.error",
    },
}
#: a hint added to the warning when a real module of that name is used instead of the alias
REAL_MODULE_HINTS = {
    "IPython.kernel": " (IPython 4-7 ship a shim for ipykernel under that name; with IPython >= 8, "
                      "or importing kernelpar.client.legacy directly, the 0.10 API is kernelpar's)",
}


def target_of(fullname):
    """The module an old name stands for, or None if it is not an alias."""
    for old, new in ALIASES.items():
        if fullname == old:
            return new
        if fullname.startswith(old + "."):
            rest = fullname[len(old) + 1:]
            return MOVED.get(old, {}).get(rest, f"{new}.{rest}")
    return None


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, target):
        self.target = target
        self._target_spec = None

    def create_module(self, spec):
        try:
            module = importlib.import_module(self.target)
        except ModuleNotFoundError as e:
            raise ImportError(f"{spec.name} stands for {self.target}, which kernelpar does not have ({e})",
                              name=spec.name) from None
        if spec.name == "IPython.kernel":
            from . import legacymode

            legacymode.default_on()
        self._target_spec = module.__spec__
        return module

    def exec_module(self, module):
        # the target module is already executed; the import system registers it under
        # the old name (sys.modules), so both names are the same module object.  It did set
        # the alias's spec on it: the module keeps its own (reload, pickling by name...)
        module.__spec__ = self._target_spec


class AliasFinder(importlib.abc.MetaPathFinder):
    """Resolves the names in :data:`ALIASES` (and their submodules) to kernelpar modules."""

    def __init__(self):
        self._warned = set()

    def find_spec(self, fullname, path, target=None):
        kernelpar_name = target_of(fullname)
        if kernelpar_name is None:
            return None
        if fullname in ALIASES:
            if self._real_module_exists(fullname, path, target):
                if fullname not in self._warned:
                    self._warned.add(fullname)
                    warnings.warn(f"{fullname} is installed: it is used, not kernelpar's alias of it"
                                  + REAL_MODULE_HINTS.get(fullname, ""), stacklevel=2)
                return None
        else:
            # a submodule follows its package: aliased only if the package is our alias
            parent_name = fullname.rpartition(".")[0]
            parent = sys.modules.get(parent_name)
            if parent is None or getattr(parent, "__name__", None) != target_of(parent_name):
                return None
        return importlib.util.spec_from_loader(fullname, _AliasLoader(kernelpar_name))

    def _real_module_exists(self, fullname, path, target):
        for finder in sys.meta_path:
            if finder is self or isinstance(finder, AliasFinder):
                continue
            find = getattr(finder, "find_spec", None)
            if find is not None and find(fullname, path, target) is not None:
                return True
        return False


def installed():
    """Whether the alias finder is on ``sys.meta_path``."""
    return any(isinstance(f, AliasFinder) for f in sys.meta_path)


def install():
    """Put the alias finder on ``sys.meta_path`` (idempotent); returns it."""
    for finder in sys.meta_path:
        if isinstance(finder, AliasFinder):
            return finder
    finder = AliasFinder()
    # first: otherwise the path finder would load kernelpar's files a second time under the
    # old names (ipyparallel.error found in kernelpar's directory), as distinct modules
    sys.meta_path.insert(0, finder)
    return finder


def uninstall():
    """Remove the alias finder and forget the modules imported through it.

    Only the aliases are forgotten: a real module of an old name (used because it is
    installed) and the kernelpar modules themselves stay imported.
    """
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, AliasFinder)]
    for name, module in list(sys.modules.items()):
        if target_of(name) is not None and getattr(module, "__name__", name) != name:
            del sys.modules[name]
            parent_name, _, attr = name.rpartition(".")
            parent = sys.modules.get(parent_name)
            # IPython.kernel set on the real IPython package (not a submodule on its own package)
            if getattr(parent, "__name__", None) == parent_name and getattr(parent, attr, None) is module:
                delattr(parent, attr)
