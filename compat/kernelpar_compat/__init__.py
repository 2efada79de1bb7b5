"""kernelpar_compat: what makes old programs run on kernelpar, kept apart from the core.

kernelpar itself (the ``kernelpar`` package) is a Python 3 implementation of the ipyparallel
API and of IPython 0.10's ``IPython.kernel`` API (``kernelpar.client.legacy``).  This
top-level ``compat/`` package holds the extra layer that lets programs written for them run
*unchanged*: the old import names, Python 2 source translation and classic integer division.

Nothing in ``kernelpar`` imports ``kernelpar_compat``; the dependency only goes the other way
(compat builds on kernelpar), so a plain ``import kernelpar`` never installs hooks, rewrites
code or pulls in ``fissix``.  Importing this package does nothing either: each way in is
explicit.

Ways in
-------
``import kernelpar_compat.enable``
    The one line for a notebook or a kernel startup file: the import hook
    (:mod:`.imports`), so ``import ipyparallel``, ``from IPython import parallel`` and
    ``from IPython.kernel import client`` give kernelpar.  Importing ``IPython.kernel``
    through it also turns on legacy mode for engine sources (see below).
``%load_ext kernelpar_compat``
    IPython/Jupyter extension (:mod:`.extension`): legacy mode plus translation of
    Python 2 cells (``print x``, ``7/2 == 3``) and of Python 2 modules next to the notebook.
``kernelpar-legacy script.py|script.ipy [args]`` (also ``python -m kernelpar_compat``)
    The runner (:mod:`.runner`): runs a Python 2-era client script, or an ``.ipy`` file
    with magics, unchanged.
``kernelpar_compat.legacy_mode(on=True, division=True)``
    Legacy mode by hand (:mod:`.legacymode`): the import hook, translation of the code the
    0.10 API sends to engines (``execute``, ``%px``, ``StringTask``, ``run``), classic
    division there unless ``division=False``, and the prelude (``raw_input``, ``sets``...).

Modules
-------
:mod:`.py2source` (with :mod:`.fixers`, :mod:`.py2usage`, :mod:`.division`, :mod:`.exceptnames`)
    Python 2 source to Python 3 source with the same line numbers; a pure module.
:mod:`.imports`, :mod:`.genutils`, :mod:`.kernelcore`
    The import hook and the shims it maps ``IPython.genutils``/``IPython.kernel.core`` to.
:mod:`.legacymode`, :mod:`.prelude`, :mod:`.localmodules`
    Switching legacy mode on and off; what processes run when it comes on; translated
    imports of the modules next to a legacy script.
:mod:`.extension`, :mod:`.runner`, :mod:`.ipyscript`
    The IPython extension, the ``kernelpar-legacy`` command, and running ``.ipy`` files.
"""

__all__ = ["legacy_mode", "load_ipython_extension", "unload_ipython_extension"]


def legacy_mode(on=True, division=True):
    """Switch legacy mode on (``division``: classic ``/``) or, with ``on=False``, off."""
    from . import legacymode

    if on:
        legacymode.enable(division=division)
    else:
        legacymode.disable()


def load_ipython_extension(shell):
    from .extension import load_ipython_extension

    load_ipython_extension(shell)


def unload_ipython_extension(shell):
    from .extension import unload_ipython_extension

    unload_ipython_extension(shell)
