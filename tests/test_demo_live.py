"""The README's first command: ``python -m kernelpar.demo`` runs real work and stops cleanly."""

import os
import re
import sys

import pytest
from grouprun import run_to_end

DEMO_TIMEOUT = 120

pytestmark = [pytest.mark.slow, pytest.mark.timeout(DEMO_TIMEOUT + 30)]


def test_demo_does_its_work_and_stops_everything(tmp_path):
    env = dict(os.environ, IPYTHONDIR=str(tmp_path / "ipython"))
    returncode, output = run_to_end([sys.executable, "-m", "kernelpar.demo", "-n", "2"], env, DEMO_TIMEOUT,
                                    "the demo")
    assert returncode == 0, output
    assert "cluster up, engines [0, 1]" in output, output
    assert "total 17984" in output, "the number of primes below 200,000"
    squares = re.search(r"sum of squares: (\S+) \(numpy locally: (\S+)\)", output)
    assert squares and squares.group(1) == squares.group(2), output
    pi = re.search(r"pi ~ (\d\.\d+)", output)
    assert pi and abs(float(pi.group(1)) - 3.14159) < 0.01, output
    assert output.rstrip().splitlines()[-1].startswith("stopped the cluster; total"), output
