"""``import kernelpar_compat.enable``: the one line that makes old import names work.

Installs :mod:`.imports`' alias finder, so ``import ipyparallel as ipp`` and
``from IPython import parallel`` give kernelpar.
"""

from .imports import install

install()
