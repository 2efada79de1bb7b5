"""What the live MultiEngineClient tests share: a legacy client of the session cluster whose
engines are reset before a module's tests and cleared after them (nothing legacy, such as
``id`` shadowing the builtin, outlives the module), and waiting without timing: code that
holds until a file exists, and waits on the hub's own view of the queues.
"""

import re
import time

import pytest

from kernelpar.client.legacy.multiengineclient import MultiEngineClient

ANSI = re.compile(r"\x1b\[[0-9;]*m")
WAIT = 30.0


@pytest.fixture(scope="module")
def clean_engines(rc):
    MultiEngineClient.from_client(rc).reset()
    yield
    rc[:].clear(block=True)


@pytest.fixture
def mec(rc, clean_engines):
    return MultiEngineClient.from_client(rc)


@pytest.fixture
def release(tmp_path):
    """A file whose creation lets :func:`hold` code finish; created at teardown at the latest."""
    path = tmp_path / "release"
    yield path
    path.touch()


def plain(result_list):
    return ANSI.sub("", repr(result_list))


def wait_until(condition, what, timeout=WAIT):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def hold(path):
    """Code that runs until ``path`` exists."""
    return f"import os, time\nwhile not os.path.exists({str(path)!r}): time.sleep(0.01)\n"


def wait_queued(mec, eid, n):
    """Until the hub shows ``n`` commands waiting behind the running one on engine ``eid``.

    The hub's own list: ``queue_status`` also shows this client's commands still on their
    way, which the engine could not abort yet.
    """
    rc = mec._client
    wait_until(lambda: len(rc.queue_status(targets=[eid], verbose=True)[eid]["queue"]) >= n + 1,
               f"{n} queued commands")
