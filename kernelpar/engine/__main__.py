"""``python -m kernelpar.engine``: the same as the ``ipengine`` command."""

import sys

from .app import main

sys.exit(main())
