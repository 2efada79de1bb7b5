"""``import kernelpar_compat.enable``: the one line that makes old import names work.

Installs :mod:`.imports`' alias finder, so ``import ipyparallel as ipp``,
``from IPython import parallel`` and ``from IPython.kernel import client`` give kernelpar.
Using the 0.10 names also switches legacy mode on for the code sent to engines (see
:mod:`.legacymode`); Python 2 *cells* need the extension: ``%load_ext kernelpar_compat``.
"""

from .imports import install

install()
