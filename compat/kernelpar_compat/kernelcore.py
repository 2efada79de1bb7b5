"""``IPython.kernel.core`` for the import hook: the package 0.10 kept the engine interpreter in.

Legacy programs only import ``IPython.kernel.core.error`` from it (``EngineError`` and
friends), which the hook maps to :mod:`kernelpar.client.legacy.error`; this module is the
package that name needs as its parent.
"""

# a package for the import system (IPython.kernel.core.<x> is looked up through the hook)
__path__ = []
