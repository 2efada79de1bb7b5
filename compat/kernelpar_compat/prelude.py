"""What a process runs once when legacy mode comes on: :data:`LEGACY_PRELUDE`.

Translated Python 2 code needs a few things the Python 3 process does not have:

* the classic division helpers (``__kp_classic_div__``, see :mod:`.division`) and the
  helper of ``print`` statements ending in a comma (see :mod:`.py2print`);
* modules Python 3 removed that 0.10-era code imports and no fixer renames, or that code
  which compiles as Python 3 (and so is not translated) still imports: ``sets`` (``Set`` is
  ``set``, ``ImmutableSet`` is ``frozenset``), ``cPickle`` (``pickle``), ``StringIO`` and
  ``cStringIO`` (``StringIO`` is ``io.StringIO``), ``Queue`` (``queue``), ``__builtin__``
  (``builtins``), ``copy_reg`` (``copyreg``) and ``commands`` (``getoutput``,
  ``getstatusoutput``).  They go into ``sys.modules`` only where no real module of the name
  can be imported;
* ``raw_input`` (``input``), as a builtin;
* comparisons through ``__cmp__``: classes that define it get ``__lt__``, ``__eq__``... calling it
  (``builtins.__build_class__`` is wrapped; :mod:`.legacymode` puts the original back);
* the import hook (:mod:`.imports`), so that engine code can say
  ``from IPython.kernel import TaskRejectError`` (``taskreject.py`` does).

Engines run the text (:func:`kernelpar.client.legacy.translate.engine_prelude`) outside the
user namespace; it leaves no name there, and survives ``reset()`` because everything lives in
``builtins`` and ``sys.modules``.  It is plain source: the division helpers and module aliases
need nothing but the standard library.  Only the import hook needs ``kernelpar_compat``
importable on the engine, which it is wherever kernelpar is installed (one distribution); an
engine run from a checkout with only ``kernelpar`` on its path goes without it, and
``import IPython.kernel`` there fails as a plain ModuleNotFoundError.

The client process (runner, IPython extension, ``legacy_mode()``) runs the same text, so
translated client code sees what translated engine code sees; :mod:`.legacymode` records
what it added and takes it away again when legacy mode is switched off.
"""

from .division import CLASSIC_DIVISION_PRELUDE
from .py2print import PRINT_HELPER, PY2_PRINT_PRELUDE

#: file name the prelude's code is compiled under (shows in tracebacks through the helpers)
PRELUDE_FILENAME = "<kernelpar legacy prelude>"

_REMOVED_NAMES_PRELUDE = '''
def __kp_legacy_names__():
    import builtins
    import copyreg
    import importlib.util
    import io
    import pickle
    import queue
    import subprocess
    import sys
    import types

    def alias(name, module):
        if name in sys.modules:
            return
        try:
            if importlib.util.find_spec(name) is not None:
                return                      # a real module of that name is installed
        except (ImportError, ValueError):
            pass
        sys.modules[name] = module

    def shim(name, doc, **attrs):
        module = types.ModuleType(name, doc)
        module.__dict__.update(attrs)
        return module

    alias("sets", shim("sets", "Python 2's sets (legacy mode): Set is set, ImmutableSet is frozenset",
                       Set=set, ImmutableSet=frozenset))
    alias("cPickle", pickle)
    alias("StringIO", shim("StringIO", "Python 2's StringIO (legacy mode)", StringIO=io.StringIO))
    alias("cStringIO", shim("cStringIO", "Python 2's cStringIO (legacy mode)", StringIO=io.StringIO))
    alias("Queue", queue)
    alias("__builtin__", builtins)
    alias("copy_reg", copyreg)
    alias("commands", shim("commands", "Python 2's commands (legacy mode)",
                           getoutput=subprocess.getoutput, getstatusoutput=subprocess.getstatusoutput))
    if not hasattr(builtins, "raw_input"):
        builtins.raw_input = builtins.input
    try:
        from kernelpar_compat.imports import install
    except ImportError:
        return                              # see kernelpar_compat.prelude: no IPython.kernel here
    install()

__kp_legacy_names__()
del __kp_legacy_names__
'''

# Python 2 compared instances of a class that defines only __cmp__ through it (sorted(),
# <, ==); Python 3 ignores __cmp__.  Classes are built through builtins.__build_class__, so
# wrapping it gives each class that defines __cmp__ the rich comparisons that call it, with
# no line added to the user's source.  Classes without __cmp__ are returned untouched.
_CMP_CLASSES_PRELUDE = '''
def __kp_cmp_classes__():
    import builtins
    import operator

    build = builtins.__build_class__
    if getattr(build, "__kp_original__", None) is not None:
        return                              # installed already

    def through_cmp(test):
        def compare(self, other):
            result = type(self).__cmp__(self, other)
            return result if result is NotImplemented else test(result, 0)
        return compare

    def build_class(func, name, *bases, **kwargs):
        cls = build(func, name, *bases, **kwargs)
        if isinstance(cls, type) and "__cmp__" in vars(cls):
            for method, test in (("__lt__", operator.lt), ("__le__", operator.le), ("__gt__", operator.gt),
                                 ("__ge__", operator.ge), ("__eq__", operator.eq), ("__ne__", operator.ne)):
                if method not in vars(cls):
                    setattr(cls, method, through_cmp(test))
        return cls

    build_class.__kp_original__ = build
    builtins.__build_class__ = build_class

__kp_cmp_classes__()
del __kp_cmp_classes__
'''

#: the whole prelude: classic division helpers, removed modules and names, the import hook
LEGACY_PRELUDE = CLASSIC_DIVISION_PRELUDE + PY2_PRINT_PRELUDE + _CMP_CLASSES_PRELUDE + _REMOVED_NAMES_PRELUDE
#: the names the prelude may add to ``builtins`` and to ``sys.modules``
BUILTIN_NAMES = ("__kp_classic_div__", "__kp_classic_idiv__", PRINT_HELPER, "raw_input")
MODULE_NAMES = ("sets", "cPickle", "StringIO", "cStringIO", "Queue", "__builtin__", "copy_reg", "commands")


def run_prelude():
    """Run :data:`LEGACY_PRELUDE` in this process, in a namespace of its own (idempotent)."""
    exec(compile(LEGACY_PRELUDE, PRELUDE_FILENAME, "exec", dont_inherit=True), {"__name__": "__kp_prelude__"})  # noqa: S102
