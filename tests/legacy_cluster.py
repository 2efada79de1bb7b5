"""Test helpers for legacy programs: a private ``ipcluster local -n N`` and the runner.

Legacy scripts find their cluster through the FURL files in ``$IPYTHONDIR/security``, as
0.10's did, so each cluster gets an IPython directory of its own (never the session's).
Processes run with ``compat/`` and the source tree first on ``$PYTHONPATH``: the
interpreter, the engines and the runner then use this tree's ``kernelpar`` and
``kernelpar_compat`` whatever is installed.
"""

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
COMPAT = os.path.join(ROOT, "compat")
#: how long ``ipcluster local`` may take to report its engines (a loaded 2-core machine)
START_TIMEOUT = 120
STOP_TIMEOUT = 30
READY = "Ctrl-C stops everything."


def environment(ipython_dir, **extra):
    """``os.environ`` with ``$IPYTHONDIR`` and this tree first on ``$PYTHONPATH``."""
    env = dict(os.environ)
    env["IPYTHONDIR"] = str(ipython_dir)
    env["PYTHONPATH"] = os.pathsep.join([COMPAT, ROOT] + [p for p in [env.get("PYTHONPATH")] if p])
    env.update(extra)
    return env


@contextlib.contextmanager
def ipcluster_local(n, ipython_dir, cwd):
    """``ipcluster local -n n`` in ``cwd`` (the engines' working directory), running until exit.

    Yields the path of its output file.  Stopped with Ctrl-C (SIGINT) as a user would, and
    killed (its whole process group) if that does not end it.
    """
    os.makedirs(ipython_dir, exist_ok=True)
    output = os.path.join(str(ipython_dir), "ipcluster.out")
    with open(output, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "kernelpar.cluster", "local", "-n", str(n)],
                                cwd=str(cwd), env=environment(ipython_dir), stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            with open(output) as f:
                text = f.read()
            if READY in text:
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ipcluster local -n {n} did not start (exit {proc.poll()}):\n{text}")
            time.sleep(0.2)
        yield output
    finally:
        _stop(proc)


def _stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(STOP_TIMEOUT)


def ok(out):
    """The stdout of a CompletedProcess that exited 0 (else fail, showing both streams)."""
    assert out.returncode == 0, f"exit {out.returncode}\nstdout:\n{out.stdout}\nstderr:\n{out.stderr}"
    return out.stdout


def write(path, text):
    """Write ``text`` (dedented, leading newlines dropped) to ``path``; return ``path``."""
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def run_legacy(script, *args, ipython_dir, cwd, timeout=180, options=()):
    """``kernelpar-legacy [options] script [args]`` (as ``python -m kernelpar_compat``); the CompletedProcess."""
    return subprocess.run([sys.executable, "-m", "kernelpar_compat", *options, str(script), *map(str, args)],
                          cwd=str(cwd), env=environment(ipython_dir), capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, check=False)
