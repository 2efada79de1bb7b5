"""``python -m kernelpar_compat script.py|script.ipy [args]``: the ``kernelpar-legacy`` runner."""

import sys

from .runner import main

sys.exit(main())
