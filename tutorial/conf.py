"""Sphinx configuration of the kernelpar tutorial.

The tutorial's examples are doctests: ``python -m sphinx -b doctest tutorial OUT`` runs
every page against real clusters, and tests/test_tutorial_live.py does that in CI, so
the outputs shown are the outputs users get.  Each page starts its own cluster and stops
it in its ``testcleanup``, even when an example fails.
"""

import doctest
import os
import sys

project = "kernelpar tutorial"
author = "the kernelpar developers"
extensions = ["sphinx.ext.doctest"]
exclude_patterns = ["_build"]
html_theme = "alabaster"

# engines report the order they finished in, and reprs carry ids: say so in the examples
# with "..." rather than hide whole outputs
doctest_default_flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE | doctest.DONT_ACCEPT_TRUE_FOR_1

# the examples run as a session's code does: what they define belongs to __main__, which
# decides how functions travel to the engines (with the engine's namespace as globals),
# and their namespace is the client's user namespace (where error hints look names up)
doctest_global_setup = """
__name__ = '__main__'
from kernelpar.wire.serialize import set_user_namespace
set_user_namespace(globals())
"""

# the classic page starts its ``ipcluster local`` with the tests' helper
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "tests"))
