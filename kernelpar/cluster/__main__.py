"""``python -m kernelpar.cluster``: the ``ipcluster`` command."""

from .app import main

main()
