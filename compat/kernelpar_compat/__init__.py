"""kernelpar_compat: what makes old programs run on kernelpar, kept apart from the core.

kernelpar itself (the ``kernelpar`` package) is a Python 3 implementation of the ipyparallel
API.  This top-level ``compat/`` package holds the extra layer that lets programs written for
IPython 0.10's ``IPython.kernel`` run unchanged: Python 2 source translation, classic integer
division, and (in later modules) the legacy import hook, launcher and IPython extension.

Nothing in ``kernelpar`` imports ``kernelpar_compat``; the dependency only goes the other way
(compat builds on kernelpar), so a plain ``import kernelpar`` never installs hooks, rewrites
code or pulls in ``fissix``.

Modules
-------
``kernelpar_compat.py2source``
    A pure module (no side effects on import): :func:`~kernelpar_compat.py2source.translate`
    turns Python 2-era source (print statements, ``except E, e``, ``xrange``, ``iteritems``,
    list-returning builtins, classic ``/`` ...) into Python 3 source with the same line
    numbers, using ``fissix`` (lib2to3's fixers); translations are cached.
"""

__all__ = ["py2source"]
