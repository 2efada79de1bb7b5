"""What the source-translation tests share: kernelpar_compat importable from the source tree,
and small helpers (``src`` dedents, ``run`` translates and executes, ``same_lines``).
"""

import sys
import textwrap
from pathlib import Path

_COMPAT = str(Path(__file__).resolve().parents[1] / "compat")
if _COMPAT not in sys.path:
    sys.path.insert(0, _COMPAT)

from kernelpar_compat.py2source import (
    install_helpers,
    translate,
)


def src(text):
    return textwrap.dedent(text).lstrip("\n")


def run(source, filename="<test>", **ns):
    """Translate, then execute in a fresh namespace (helpers in it); return the namespace."""
    code = translate(source, filename)
    install_helpers(ns)
    exec(compile(code, filename, "exec"), ns)  # noqa: S102
    return ns


def same_lines(before, after):
    return before.count("\n") == after.count("\n")
