"""Old import names resolved to kernelpar: ``import ipyparallel``, ``from IPython import parallel``.

Scripts and notebooks written for ipyparallel (or for IPython 0.11-3.x, where it was
``IPython.parallel``) run on kernelpar once :func:`install` has put :class:`AliasFinder`
on ``sys.meta_path`` (``import kernelpar_compat.enable`` is the one line a notebook needs).
It is opt-in: ``import kernelpar`` never installs it.

An alias never shadows a real module silently: when the old name can be imported from
anywhere else (ipyparallel really is installed), that module is used and a warning says
that the alias was not applied.  Submodules follow the package (``ipyparallel.error`` is
``kernelpar.error``), except where kernelpar keeps the piece elsewhere
(:data:`MOVED`).  A name kernelpar does not have fails as an ImportError naming both.
"""

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

#: old top-level names and the kernelpar package they stand for
ALIASES = {"ipyparallel": "kernelpar", "IPython.parallel": "kernelpar"}
#: old submodules that live under another name in kernelpar
MOVED = {
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


def target_of(fullname):
    """The kernelpar module an old name stands for, or None if it is not an alias."""
    for old, new in ALIASES.items():
        if fullname == old:
            return new
        if fullname.startswith(old + "."):
            rest = fullname[len(old) + 1:]
            return MOVED.get(rest, f"{new}.{rest}")
    return None


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, target):
        self.target = target

    def create_module(self, spec):
        try:
            return importlib.import_module(self.target)
        except ModuleNotFoundError as e:
            raise ImportError(f"{spec.name} stands for {self.target}, which kernelpar does not have ({e})",
                              name=spec.name) from None

    def exec_module(self, module):
        # the kernelpar module is already executed; the import system registers it under
        # the old name (sys.modules), so both names are the same module object
        pass


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
                    warnings.warn(f"{fullname} is installed: it is used, not kernelpar's alias of it", stacklevel=2)
                return None
        else:
            # a submodule follows its package: aliased only if the package is our alias
            parent = sys.modules.get(fullname.rpartition(".")[0])
            if parent is None or not getattr(parent, "__name__", "").startswith("kernelpar"):
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
    """Remove the alias finder and forget the modules imported through it."""
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, AliasFinder)]
    for name in [n for n in sys.modules if target_of(n) is not None]:
        del sys.modules[name]
