"""Running a command to its end in a process group of its own (for tests of whole programs)."""

import os
import signal
import subprocess

import pytest


def run_to_end(command, env, timeout, what):
    """``(returncode, output)`` of ``command``, stdout and stderr together.

    If it runs longer than ``timeout`` seconds, its whole group is killed (nothing it
    started is left) and the test fails naming ``what``, with the output so far.
    """
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        pytest.fail(f"{what} did not finish in {timeout} s:\n{output}")
    return proc.returncode, output
