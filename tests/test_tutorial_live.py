"""The tutorial's examples, run by Sphinx's doctest builder against real clusters.

Every page of ``tutorial/`` starts its own cluster (the classic page an ``ipcluster
local``) and stops it; this test runs the builder in a fresh IPython directory and fails
with the builder's report when an example's output differs from the page, or when Sphinx
warns about a page.
"""

import os
import sys

import pytest
from grouprun import run_to_end

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir)
#: the builder's whole run on a loaded 2-core machine, clusters included
BUILD_TIMEOUT = 300

pytestmark = [pytest.mark.slow, pytest.mark.timeout(BUILD_TIMEOUT + 30)]


def test_every_tutorial_example_gives_the_output_the_page_shows(tmp_path):
    out = tmp_path / "doctest"
    env = dict(os.environ, IPYTHONDIR=str(tmp_path / "ipython"))
    # -W: a Sphinx warning (a broken reference, a malformed page) fails the test too
    command = [sys.executable, "-m", "sphinx", "-b", "doctest", "-q", "-W", "--keep-going",
               os.path.join(ROOT, "tutorial"), str(out)]
    returncode, output = run_to_end(command, env, BUILD_TIMEOUT, "the tutorial's doctests")
    report = (out / "output.txt").read_text() if (out / "output.txt").exists() else ""
    assert returncode == 0 and "0 failures in tests" in report, f"{output}\n{report}"
    assert "0 failures in setup code" in report and "0 failures in cleanup code" in report, report
