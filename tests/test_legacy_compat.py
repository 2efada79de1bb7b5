"""kernelpar_compat's ways in for IPython 0.10-era programs: the ``IPython.kernel`` import hook
(CON-02), legacy mode for engine sources (PY2-02, PY2-03), the IPython extension, and Python 2
scripts and engine code on a live cluster.  The ``kernelpar-legacy`` runner alone (PY2-01) is
tested in :mod:`test_legacy_runner`.

Legacy mode changes process-wide state (``builtins``, ``sys.modules``, the translator of
``kernelpar.client.legacy``), so each case runs in a fresh interpreter (or an in-process
IPython shell that is unloaded again) and the test process itself stays untouched.
"""

import importlib
import os
import subprocess
import sys
import textwrap

import pytest
from legacy_cluster import COMPAT, environment, ipcluster_local, ok, run_legacy, write


def run(code, tmp_path, extra_path=None, timeout=120, python_args=()):
    env = environment(tmp_path / "ipython")
    if extra_path:
        env["PYTHONPATH"] = os.pathsep.join([str(extra_path), env["PYTHONPATH"]])
    return subprocess.run([sys.executable, *python_args, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env=env, cwd=str(tmp_path), timeout=timeout, check=False)


# -- the import hook (CON-02) -------------------------------------------------------------------


def test_ipython_kernel_names_are_the_legacy_modules(tmp_path):
    out = run("""
        import os, stat, sys, time as time_module
        import IPython                      # a real package: the hook answers for two of its submodules
        import kernelpar_compat.enable
        from IPython.kernel import TaskRejectError
        from IPython.kernel.error import *
        import IPython.kernel, IPython.kernel.error, IPython.kernel.core.error
        import kernelpar.client.legacy as legacy, kernelpar.client.legacy.error as error, kernelpar.errors
        assert IPython.kernel is legacy and IPython.kernel.error is error and IPython.kernel.core.error is error
        assert TaskRejectError is kernelpar.errors.TaskRejectError
        assert CompositeError is error.CompositeError and InvalidEngineID is error.InvalidEngineID
        assert QueueCleared is error.QueueCleared and EngineError is kernelpar.errors.EngineError
        # the modules keep their own names and specs
        assert error.__name__ == error.__spec__.name == "kernelpar.client.legacy.error"
        # the rest of IPython is IPython's own
        import IPython.core.interactiveshell
        assert "site-packages" in IPython.__file__ or "dist-packages" in IPython.__file__, IPython.__file__

        from IPython.genutils import time, get_ipython_dir, get_security_dir, flatten
        assert time is time_module
        assert get_ipython_dir() == os.environ["IPYTHONDIR"]
        assert get_security_dir() == os.path.join(os.environ["IPYTHONDIR"], "security")
        assert stat.S_IMODE(os.stat(get_security_dir()).st_mode) == 0o700
        assert flatten([[1, 2], [3], []]) == [1, 2, 3]
        try:
            import IPython.kernel.no_such_module
        except ImportError as e:
            print("refused:", e)
    """, tmp_path)
    assert "refused: IPython.kernel.no_such_module stands for kernelpar.client.legacy.no_such_module" in ok(out)


def test_from_ipython_kernel_import_client(tmp_path):
    # the documented entry point (spec section 2): needs the whole 0.10 client API
    out = run("""
        import kernelpar_compat.enable
        from IPython.kernel import client
        import kernelpar.client.legacy.client as legacy_client
        assert client is legacy_client
        for name in ("MultiEngineClient", "TaskClient", "MapTask", "StringTask", "CompositeError"):
            assert callable(getattr(client, name)), name
        print("ok")
    """, tmp_path)
    assert ok(out).strip() == "ok"


def test_a_real_ipython_kernel_is_never_shadowed(tmp_path):
    # IPython 4-7 ship IPython.kernel (a shim for ipykernel): it is used, with a warning
    fake = tmp_path / "fake"
    (fake / "IPython" / "kernel").mkdir(parents=True)
    (fake / "IPython" / "__init__.py").write_text("")
    (fake / "IPython" / "kernel" / "__init__.py").write_text("SHIM = True\n")
    out = run("""
        import warnings
        warnings.simplefilter("always")
        import kernelpar_compat.enable
        import IPython.kernel
        print("shim" if getattr(IPython.kernel, "SHIM", False) else "alias")
    """, tmp_path, extra_path=fake)
    assert ok(out).strip() == "shim"
    assert "IPython.kernel is installed: it is used, not kernelpar's alias of it" in out.stderr
    assert "IPython 4-7 ship a shim for ipykernel" in out.stderr


def test_importing_kernelpar_installs_no_hook(tmp_path):
    out = run("""
        import sys
        import kernelpar, kernelpar.client.legacy, kernelpar.client.legacy.error
        from kernelpar.client.legacy import translate
        for name in ("IPython.kernel", "IPython.genutils", "ipyparallel"):
            try:
                __import__(name)
            except ModuleNotFoundError:
                print("not aliased:", name)
        assert not any(m.startswith("kernelpar_compat") for m in sys.modules)
        assert translate.get_translator() is None and translate.engine_prelude() is None
        assert translate.for_engine("print c") == "print c"
    """, tmp_path)
    assert ok(out).split("\n")[:3] == ["not aliased: IPython.kernel", "not aliased: IPython.genutils",
                                       "not aliased: ipyparallel"]


def test_uninstall_forgets_the_aliases(tmp_path):
    out = run("""
        import sys, IPython
        from kernelpar_compat import imports
        imports.install()
        import IPython.kernel.error, IPython.genutils
        imports.uninstall()
        assert not hasattr(IPython, "kernel") and not hasattr(IPython, "genutils")
        assert not any(m.startswith(("IPython.kernel", "IPython.genutils")) for m in sys.modules)
        assert sys.modules["kernelpar.client.legacy.error"].__spec__.name == "kernelpar.client.legacy.error"
        try:
            import IPython.kernel
        except ModuleNotFoundError:
            print("gone")
    """, tmp_path)
    assert ok(out).strip() == "gone"


# -- legacy mode ---------------------------------------------------------------------------------


def test_legacy_mode_on_and_off(tmp_path):
    out = run("""
        import builtins, sys
        import kernelpar_compat
        from kernelpar_compat import prelude
        from kernelpar.client.legacy import translate

        kernelpar_compat.legacy_mode()
        assert translate.for_engine("print c") == "print(c)"
        assert translate.for_engine("c = 7/2") == "c = __kp_classic_div__(7,2)"
        assert translate.for_engine("from __future__ import division\\nc = 7/2").endswith("c = 7/2")
        assert translate.for_engine("c = 7 // 2") == "c = 7 // 2"       # Python 3 without /: unchanged
        assert translate.engine_prelude() == prelude.LEGACY_PRELUDE
        # the prelude ran here too: what translated client code may use
        import sets, cPickle, pickle, StringIO, Queue, queue, __builtin__, commands
        assert sets.Set is set and sets.ImmutableSet is frozenset and cPickle is pickle and Queue is queue
        assert __builtin__ is builtins and raw_input is input and StringIO.StringIO("x").read() == "x"
        assert __kp_classic_div__(7, 2) == 3 and __kp_classic_div__(7.0, 2) == 3.5
        import IPython.kernel                                   # the hook is on

        class Score:                                            # Python 2 compared through __cmp__
            def __init__(self, v):
                self.v = v
            def __cmp__(self, other):
                return (self.v > other.v) - (self.v < other.v)
        assert [s.v for s in sorted([Score(3), Score(1), Score(2)])] == [1, 2, 3]
        assert Score(1) == Score(1) and Score(1) != Score(2) and Score(2) >= Score(1)
        assert len({Score(1), Score(1)}) == 2                   # still hashed by identity

        kernelpar_compat.legacy_mode(division=False)
        assert translate.for_engine("c = 7/2") == "c = 7/2"
        assert translate.for_engine("print c") == "print(c)"

        kernelpar_compat.legacy_mode(False)
        assert translate.get_translator() is None and translate.engine_prelude() is None
        assert translate.for_engine("print c") == "print c"
        assert not hasattr(builtins, "raw_input") and "sets" not in sys.modules and "cPickle" not in sys.modules
        assert "IPython.kernel" not in sys.modules              # legacy_mode installed the hook: gone again
        assert not hasattr(builtins.__build_class__, "__kp_original__")

        class Again:
            def __cmp__(self, other):
                return 0
        assert "__lt__" not in vars(Again)
        print("ok")
    """, tmp_path)
    assert ok(out).strip() == "ok"


def test_importing_ipython_kernel_turns_legacy_mode_on(tmp_path):
    out = run("""
        import kernelpar_compat.enable
        from kernelpar.client.legacy import translate
        assert translate.get_translator() is None       # the enable line alone: import names only
        import IPython.kernel
        print(translate.for_engine("print c"))
    """, tmp_path)
    assert ok(out).strip() == "print(c)"
    # ... unless the program chose otherwise
    out = run("""
        import kernelpar_compat, kernelpar_compat.enable
        kernelpar_compat.legacy_mode(False)
        import IPython.kernel
        from kernelpar.client.legacy import translate
        print(translate.for_engine("print c"))
    """, tmp_path)
    assert ok(out).strip() == "print c"


def test_untranslatable_engine_source_shows_the_original_line(tmp_path):
    out = run("""
        import traceback
        import kernelpar_compat
        from kernelpar.client.legacy import translate
        kernelpar_compat.legacy_mode()
        try:
            translate.for_engine("a = 1\\nprint `a` +\\nb = 2\\n", "<engine code>")
        except SyntaxError as e:
            print(e.filename, e.lineno, repr(e.text))
    """, tmp_path)
    assert ok(out).strip() == "<engine code> 2 'print `a` +\\n'"


def test_the_engine_prelude_needs_only_the_standard_library(tmp_path):
    # what an engine without kernelpar_compat (nor site-packages: python -S) gets from it
    prelude_file = tmp_path / "prelude.py"
    sys.path.insert(0, COMPAT)
    try:
        prelude_file.write_text(importlib.import_module("kernelpar_compat.prelude").LEGACY_PRELUDE)
    finally:
        sys.path.remove(COMPAT)
    out = subprocess.run([sys.executable, "-S", "-c", textwrap.dedent(f"""
        import builtins, sys
        ns = {{"__builtins__": builtins, "__name__": "__prelude__"}}
        source = open({str(prelude_file)!r}).read()
        exec(source, ns)
        exec(source, ns)                            # twice: idempotent
        assert sorted(ns) == ["__builtins__", "__name__"], sorted(ns)
        assert "kernelpar_compat" not in sys.modules
        import sets, cPickle
        assert sets.Set is set and raw_input is input
        assert __kp_classic_div__(7, 2) == 3 and __kp_classic_div__(-7, 2) == -4
        a = [1, 2]; a = __kp_classic_idiv__(a[0], 2); assert a == 0
        print("ok")
    """)], capture_output=True, text=True, timeout=60, env={"PATH": os.environ.get("PATH", "")}, cwd=str(tmp_path),
                         check=False)
    assert ok(out).strip() == "ok"


# -- the IPython extension -------------------------------------------------------------------------


def test_extension_in_an_ipython_shell(tmp_path):
    write(tmp_path / "oldmodule.py", """
        def third(n):
            return n / 3
        print "oldmodule imported"
    """)
    out = run("""
        import sys
        from IPython.core.interactiveshell import InteractiveShell
        from kernelpar.client.legacy import translate
        shell = InteractiveShell.instance(colors="NoColor")

        def cell(code):
            result = shell.run_cell(code)
            error = result.error_before_exec or result.error_in_exec
            return result.result if error is None else error

        assert isinstance(cell('print "x"'), SyntaxError)           # not loaded yet
        cell("%load_ext kernelpar_compat")
        cell('print "hello", 7/2')
        assert cell("7/2") == 3 and cell("7.0/2") == 3.5 and cell("[x for x in xrange(3)]") == [0, 1, 2]
        assert cell("from oldmodule import third\\nthird(7)") == 2
        assert cell("from IPython.kernel import TaskRejectError\\nfrom IPython import parallel\\nparallel.__name__") \\
            == "kernelpar"
        assert translate.for_engine("print c") == "print(c)"
        bad = cell('print "a"\\nx = `1` +')
        assert isinstance(bad, SyntaxError) and bad.lineno == 2 and bad.text == "x = `1` +\\n", (bad.lineno, bad.text)
        cell("from __future__ import division")
        assert cell("7/2") == 3.5                                   # for the rest of the session

        cell("%unload_ext kernelpar_compat")
        assert isinstance(cell('print "x"'), SyntaxError)
        assert translate.get_translator() is None
        assert isinstance(cell("import IPython.kernel"), ModuleNotFoundError)
        print("done")
    """, tmp_path)
    stdout = ok(out)
    assert "hello 3\n" in stdout and "oldmodule imported\n" in stdout and stdout.endswith("done\n")
    assert "x = `1` +" in stdout                                     # IPython showed the original line


# -- live: Python 2 client scripts and engine code on a cluster ---------------------------------------


MODERN_PY2_SCRIPT = '''
import sys
from IPython import parallel
rc = parallel.Client(url_file=sys.argv[1])
dview = rc[:]
print "ids:", rc.ids
print "map:", dview.map_sync(lambda x: x*2, range(4)) == map(lambda x: x*2, range(4))
print "classic division here:", 7/2, [x/2 for x in range(4)]
try:
    dview.execute("1/0", block=True)
except parallel.CompositeError, e:
    print "caught:", e.elist[0][0]
rc.close()
'''


def test_runner_python2_script_against_a_live_cluster(cluster, rc, tmp_path):
    # PY2-01 with the modern API from a Python 2 script (print, except X, e, list-returning map)
    from kernelpar.wire import connection

    url_file = connection.connection_file(cluster.profile_dir, "client", cluster.cluster_id)
    script = write(tmp_path / "modern.py", MODERN_PY2_SCRIPT)
    out = run_legacy(script, url_file, ipython_dir=tmp_path / "ipython", cwd=tmp_path)
    assert ok(out).split("\n") == [
        f"ids: {rc.ids}",
        "map: True",
        "classic division here: 3 [0, 0, 1, 1]",
        "caught: ZeroDivisionError",
        "",
    ]


ENGINE_CODE_SCRIPT = '''
import re
from IPython.kernel.multiengineclient import MultiEngineClient
from IPython.kernel.error import CompositeError
from IPython.kernel import client
mec = MultiEngineClient()
tc = client.TaskClient()
mec.set_properties(dict(second=True), targets=[1])
task = client.MapTask(lambda x: x/2, (7,), depend=lambda p: p.get('second', False))
print "task:", tc.run(task, block=True)
print "map:", mec.map(lambda x: x/2, range(4))
mec.execute('c = 7/2')
mec.execute('from __future__ import division\\nd = 7/2')
print "classic:", mec.pull('c'), "future:", mec.pull('d')
result = mec.execute('print "engine", c')
print result[0]['input']['raw'], "|", result[0]['stdout'].strip()
print '[0] In [3]: print "engine", c' in re.sub('\\x1b\\[[0-9;]*m', '', repr(result))
mec.execute('import sets; s = sets.Set([1, 1]); n = len(s)')
print "sets:", mec.pull('n')
try:
    mec.execute('print `1` +')
except CompositeError, e:
    print "syntax error:", e.elist[0][0].__name__
lines = mec.execute("for line in ['a\\\\n', 'b\\\\n']: print line,\\nprint 1,\\nprint 2", targets=0)
print repr(lines[0]['stdout'])
for line in ["x\\n", "y\\n"]:
    print line,
'''


def test_engine_sources_in_legacy_mode(tmp_path):
    # PY2-02 / PY2-03 through the 0.10 API on ipcluster local: the engines run the translated
    # code, the Results List shows the original; a MapTask (on engine 1) and a map (engine 0
    # first) are the first legacy code their fresh engines run: they bring the prelude along
    ipython_dir = tmp_path / "ipython"
    with ipcluster_local(2, ipython_dir, cwd=tmp_path):
        out = run_legacy(write(tmp_path / "engine_code.py", ENGINE_CODE_SCRIPT), ipython_dir=ipython_dir,
                         cwd=tmp_path)
    assert ok(out).split("\n") == [
        "task: 3",
        "map: [0, 0, 1, 1]",
        "classic: [3, 3] future: [3.5, 3.5]",
        'print "engine", c | engine 3',
        "True",
        "sets: [1, 1]",
        "syntax error: SyntaxError",
        "'a\\nb\\n1 2\\n'",
        "x",
        "y",
        "",
    ]


@pytest.mark.slow
def test_extension_in_a_jupyter_kernel(tmp_path, monkeypatch):
    # a 2013-era course notebook's cells in a real ipykernel, after one %load_ext line
    import nbformat
    from nbclient import NotebookClient
    from test_jupyter_live import TIMEOUT, _kernel_name, _text

    kernel_name = _kernel_name()
    env = environment(tmp_path / "ipython")
    for name in ("IPYTHONDIR", "PYTHONPATH"):
        monkeypatch.setenv(name, env[name])
    cells = ["%load_ext kernelpar_compat",
             'print "x", 7/2',
             "7/2",
             "squares = map(lambda x: x*x, range(4))",
             "squares[1:]",
             "from IPython import parallel\nfrom IPython.kernel import client\nprint parallel.__name__, client.__name__",
             "try:\n    1/0\nexcept ZeroDivisionError, e:\n    pass",
             "type(e).__name__"]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    NotebookClient(nb, kernel_name=kernel_name, timeout=TIMEOUT, startup_timeout=TIMEOUT,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert [_text(c) for c in nb.cells] == ["", "x 3\n", "3", "", "[1, 4, 9]",
                                            "kernelpar kernelpar.client.legacy.client\n", "", "'ZeroDivisionError'"]
