"""Jupyter against real kernels: ``bind_kernel`` with a jupyter_client console, and the
course notebook executed headless with nbclient on an ipykernel kernel.

ipykernel, jupyter_client, nbclient and nbformat come with the ``test`` extra; these tests
fail (they do not skip) when they are missing.
"""

import json
import os
import re
import stat
import sys
from pathlib import Path

import pytest

import kernelpar as ipp

NOTEBOOK = Path(__file__).parent / "notebooks" / "course.ipynb"
TIMEOUT = 60


@pytest.fixture(scope="module")
def bound_file(rc):
    path = rc[0].apply_sync(ipp.bind_kernel)
    assert isinstance(path, str)
    return path


@pytest.fixture
def console(bound_file):
    from jupyter_client import BlockingKernelClient

    kc = BlockingKernelClient()
    kc.load_connection_file(bound_file)
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=TIMEOUT)
        yield kc
    finally:
        kc.stop_channels()


def run(kc, code):
    """Run ``code`` like ``jupyter console`` does; return (reply content, iopub messages)."""
    seen = []
    reply = kc.execute_interactive(code, timeout=TIMEOUT, output_hook=seen.append)
    return reply["content"], seen


def results(seen):
    return [m["content"]["data"]["text/plain"] for m in seen if m["msg_type"] == "execute_result"]


def test_bind_kernel_writes_private_connection_file(rc, bound_file, cluster):
    pid = rc[0].apply_sync(os.getpid)
    assert os.path.basename(bound_file) == f"kernel-{pid}.json"
    assert os.path.dirname(bound_file) == os.path.join(cluster.profile_dir, "security")
    assert stat.S_IMODE(os.stat(bound_file).st_mode) == 0o600
    with open(bound_file) as f:
        info = json.load(f)
    assert info["ip"] == "127.0.0.1" and info["transport"] == "tcp" and info["key"]
    # idempotent: the same kernel, the same file
    assert rc[0].apply_sync(ipp.bind_kernel) == bound_file


def test_bind_kernel_via_px_prints_the_file(rc, bound_file):
    view = rc[0]
    ar = view.execute("import kernelpar as _kp; _path = _kp.bind_kernel()", block=False)
    ar.get(timeout=TIMEOUT)
    assert bound_file in ar.stdout
    assert "--existing" in ar.stdout
    assert view.pull("_path", block=True) == bound_file


def test_console_shares_the_engine_namespace(rc, console):
    reply, _ = run(console, "a = 42")
    assert reply["status"] == "ok"
    assert rc[0].pull("a", block=True) == 42

    rc[0].push({"from_client": [1, 2, 3]}, block=True)
    reply, seen = run(console, "from_client + [len(from_client)]")
    assert reply["status"] == "ok"
    assert results(seen) == ["[1, 2, 3, 3]"]

    # functions defined in the console run on the engine through apply
    run(console, "def triple(x):\n    return 3 * x")
    assert rc[0].apply_sync(ipp.Reference("triple"), 5) == 15


def test_engine_cells_keep_the_engine_shell_after_a_console_bound(rc, console):
    # the console's shell shares the namespace: its get_ipython must not replace the engine's,
    # or the engine's magics (%matplotlib inline...) would run in the console's kernel
    run(console, "b = 1")
    rc[0].execute("shell_name = type(get_ipython()).__name__", block=True)
    assert rc[0].pull("shell_name", block=True) == "EngineShell"


def test_console_output_and_errors(rc, console):
    reply, seen = run(console, "import os\nprint('pid', os.getpid())")
    streams = "".join(m["content"]["text"] for m in seen if m["msg_type"] == "stream")
    assert streams == f"pid {rc[0].apply_sync(os.getpid)}\n"

    reply, seen = run(console, "1 / 0")
    assert reply["status"] == "error" and reply["ename"] == "ZeroDivisionError"
    # the engine itself is unaffected
    assert rc[0].apply_sync(lambda: 7) == 7


def test_bind_kernel_outside_an_engine():
    with pytest.raises(RuntimeError, match="IPEngine"):
        ipp.bind_kernel()


# ---------------------------------------------------------------------------------------


def _kernel_name():
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec("python3")
    except NoSuchKernel:
        import subprocess

        subprocess.run([sys.executable, "-m", "ipykernel", "install", "--user"], check=True, timeout=TIMEOUT)
    return "python3"


def _text(cell):
    """Everything a code cell displayed, as plain text."""
    parts = []
    for out in cell.get("outputs", []):
        if out["output_type"] == "stream":
            parts.append(out["text"])
        elif out["output_type"] in ("execute_result", "display_data"):
            parts.append(out["data"].get("text/plain", ""))
        elif out["output_type"] == "error":
            parts.append(f"ERROR {out['ename']}: {out['evalue']}")
    return "".join(parts)


@pytest.mark.slow
def test_course_notebook(tmp_path, ipython_dir):
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        nb,
        kernel_name=_kernel_name(),
        timeout=TIMEOUT,
        startup_timeout=TIMEOUT,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()  # raises CellExecutionError on any cell error

    outputs = {}
    for cell in nb.cells:
        if cell.cell_type == "code":
            outputs[cell.source] = _text(cell)

    def out(prefix):
        matches = [v for k, v in outputs.items() if k.startswith(prefix)]
        assert len(matches) == 1, prefix
        return matches[0]

    assert out("rc.ids") == "[0, 1]"
    assert outputs["rc[0]"] == "<DirectView 0>"
    assert out("rc[0,1]") == "<DirectView [0, 1]>"
    assert out("mul(5, 6)") == "30"
    assert out("rc[0].apply(mul") == "30"
    assert out("d = _") == "True"
    assert out("rc[:].apply(mul") == "[30, 30]"
    assert out("len(set(r['pid']") == "2"
    expected_map = str([a * b for a, b in zip(range(1, 10), range(2, 11))])
    assert out("list(map(") == expected_map
    assert out("list(dview.map(") == expected_map
    assert out("dview.pull('a')") == "[1.032, 1.032]"
    assert out("dview.pull('b', targets=0)") == "3453"
    assert out("dview.pull(('a', 'b'))") == "[[1.032, 3453], [1.032, 3453]]"
    assert out("ar.get()") == "[1.032, 1.032]"
    assert out("dview['a']") == "[range(0, 8), range(8, 16)]"
    # as in ipyparallel, gathered ranges are not concatenated (only lists, tuples, arrays are)
    assert out("dview.gather('a')") == "[range(0, 8), range(8, 16)]"
    assert out("dview.block = False") == "[range(0, 16), range(16, 32)]"
    assert out("len(set(getpid()))") == "2"
    assert out("import numpy as np\nA =") == "np.True_" or out("import numpy as np\nA =") == "True"

    # %%px --local: both engines' results, prefixed, and the local one
    import numpy

    px_local = out("%%px --local\nnp.__version__")
    for i in (0, 1):
        assert re.search(rf"Out\[{i}:\d+\]: '{re.escape(numpy.__version__)}'", px_local), px_local
    assert px_local.rstrip().endswith(f"'{numpy.__version__}'")

    # the seed's plot on engines 0 and 1: each figure comes back as an image
    [plot] = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith("%%px --target 0:2")]
    images = [o for o in plot.outputs if "image/png" in o.get("data", {})]
    assert len(images) == 2, plot.outputs
    assert "[output:0]" in _text(plot) and "[output:1]" in _text(plot)

    lines = out("%%px\nimport os, socket")
    # multi-line output starts on the line after its prefix, as in ipyparallel
    for i in (0, 1):
        assert re.search(rf"\[stdout:{i}\] \n\d+\n\S+\n", lines), lines
    assert "importing matplotlib.pyplot on engine(s)" in out("with rc[:].sync_imports()")
    assert out("rc.close()") == "cluster stopped\n"


#: the seed course notebook (the project's ../shared/seeds/004_...), as the text it came as
SEED = Path(__file__).parent / "notebooks" / "seed_course.txt"


def _seed_code_cells(text):
    """The code cells of the seed course notebook's text dump ("In [None]:" then the code)."""
    lines = text.split("\n")
    cells, i = [], 0
    while i < len(lines):
        if lines[i].strip() == "In [None]:":
            j = i + 1
            while j < len(lines) and lines[j].strip():
                j += 1
            cells.append("\n".join(lines[i + 1:j]))
            i = j
        else:
            i += 1
    return cells


def test_the_seed_course_notebook_runs_unchanged(tmp_path, monkeypatch):
    """The course's own cells, in order and unchanged, against `ipcluster start --n 4` as the
    course starts it; the only setup is a kernel startup file enabling kernelpar_compat (what a
    course server would install once), so `import ipyparallel as ipp` gives kernelpar."""
    import subprocess

    import nbformat
    from nbclient import NotebookClient

    ipython_dir = tmp_path / "ipython"
    startup = ipython_dir / "profile_default" / "startup"
    startup.mkdir(parents=True)
    (startup / "00-kernelpar.py").write_text("import kernelpar_compat.enable\n")
    monkeypatch.setenv("IPYTHONDIR", str(ipython_dir))
    cells = _seed_code_cells(SEED.read_text())
    assert cells[0] == "import ipyparallel as ipp" and cells[1] == 'rc = ipp.Client(profile="default")'
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    ipcluster = [sys.executable, "-m", "kernelpar.cluster"]
    subprocess.run(ipcluster + ["start", "--n", "4", "--daemonize"], check=True, timeout=120)
    try:
        NotebookClient(nb, kernel_name=_kernel_name(), timeout=TIMEOUT, startup_timeout=TIMEOUT,
                       resources={"metadata": {"path": str(tmp_path)}}).execute()
    finally:
        subprocess.run(ipcluster + ["stop"], timeout=120)
    text = {c.source: _text(c) for c in nb.cells}
    assert text["rc.ids"] == "[0, 1, 2, 3]"
    assert text["rc[0,1,2,3]"] == "<DirectView [0, 1, 2, 3]>"
    plot = next(c for c in nb.cells if c.source.startswith("%%px --target 0:2"))
    assert sum("image/png" in o.get("data", {}) for o in plot.outputs) == 2
    assert all(f"[stdout:{i}]" in text["%%px \nimport os, socket\nprint(os.getpid())\nprint(socket.gethostname())"]
               for i in range(4))
