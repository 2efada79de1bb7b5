"""The ``kernelpar-legacy`` runner (PY2-01, PY2-03 in scripts): Python 2-era ``.py`` scripts and
``.ipy`` files with magics, run unchanged in a fresh interpreter each, with their own line
numbers in errors.
"""

import configparser
import os
import sys
import textwrap

import pytest
from legacy_cluster import COMPAT, ROOT, ok, run_legacy, write

PY2_SCRIPT = '''
import sys
from helper import half, helper_says
print "argv:", sys.argv[1:]
print "division:", 7/2, -7/2, 7.0/2, half(9)
print helper_says
x = 10
x /= 4
print "x:", x
squares = map(lambda i: i*i, range(4))
print "map is a list:", squares == [0, 1, 4, 9], range(3) + [3]
d = {'b': 2, 'a': 1}
keys = d.keys()
keys.sort()
print "keys:", keys, sorted(k for k, v in d.iteritems())
total = 0
for i in xrange(5):
    total += i
print "xrange:", total, d.has_key('a')
try:
    raise ValueError, "bad value"
except ValueError, e:
    print "caught:", e
print "no newline",
print
if len(sys.argv) > 1 and sys.argv[1] == "fail":
    raise KeyError, "the end"
sys.exit(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
'''

PY2_HELPER = '''
def half(n):
    return n / 2
helper_says = "helper %s" % `half(5)`
'''


@pytest.fixture
def script_dir(tmp_path):
    d = tmp_path / "legacy"
    d.mkdir()
    write(d / "script.py", PY2_SCRIPT)
    write(d / "helper.py", PY2_HELPER)
    return d


def test_runner_runs_a_python2_script(script_dir, tmp_path):
    out = run_legacy(script_dir / "script.py", "7", ipython_dir=tmp_path / "ipython", cwd=tmp_path)
    assert out.returncode == 7, out.stderr
    assert out.stdout.split("\n") == [
        "argv: ['7']",
        "division: 3 -4 3.5 4",
        "helper 2",
        "x: 2",
        "map is a list: True [0, 1, 2, 3]",
        "keys: ['a', 'b'] ['a', 'b']",
        "xrange: 10 True",
        "caught: bad value",
        "no newline ",
        "",
    ]
    assert out.stderr == ""


def test_runner_honours_future_division_and_true_division(script_dir, tmp_path):
    write(script_dir / "future.py", """
        from __future__ import division
        from helper import half
        print 7/2, half(9)
    """)
    out = run_legacy(script_dir / "future.py", ipython_dir=tmp_path / "ipython", cwd=tmp_path)
    assert ok(out) == "3.5 4\n"          # the module keeps its own (classic) division
    out = run_legacy(script_dir / "script.py", ipython_dir=tmp_path / "ipython", cwd=tmp_path,
                     options=["--true-division"])
    assert out.returncode == 0, out.stderr
    assert "division: 3.5 -3.5 3.5 4.5" in out.stdout


def test_runner_reports_errors_with_the_scripts_lines(script_dir, tmp_path):
    out = run_legacy(script_dir / "script.py", "fail", ipython_dir=tmp_path / "ipython", cwd=tmp_path)
    assert out.returncode == 1
    assert out.stdout.startswith("argv: ['fail']")
    script = str(script_dir / "script.py")
    assert out.stderr.startswith("Traceback (most recent call last):\n")
    assert f'File "{script}", line 26, in <module>\n    raise KeyError, "the end"\n' in out.stderr
    assert out.stderr.endswith("KeyError: 'the end'\n")
    assert "runner.py" not in out.stderr


def test_runner_untranslatable_script_shows_the_original_line(tmp_path):
    bad = write(tmp_path / "bad.py", """
        print "fine"
        x = `1` +
    """)
    out = run_legacy(bad, ipython_dir=tmp_path / "ipython", cwd=tmp_path)
    assert out.returncode == 1 and out.stdout == ""
    assert out.stderr.startswith(f'  File "{bad}", line 2\n    x = `1` +\n')
    assert "SyntaxError: invalid syntax (neither Python 3 nor Python 2)" in out.stderr


def test_a_module_that_does_not_translate_is_reported_at_its_line_without_the_translators_frames(tmp_path):
    write(tmp_path / "badmod.py", """
        def f():
            return 1 +
    """)
    main = write(tmp_path / "main.py", """
        import badmod
    """)
    out = run_legacy(main, ipython_dir=tmp_path / "ipython", cwd=tmp_path)
    assert out.returncode == 1
    assert out.stderr.startswith(f'Traceback (most recent call last):\n  File "{main}", line 1, in <module>\n'
                                 f'    import badmod\n  File "{tmp_path / "badmod.py"}", line 2\n'
                                 "    return 1 +\n"), out.stderr
    assert out.stderr.splitlines()[-1].startswith("SyntaxError: invalid syntax"), out.stderr


def test_runner_usage_errors(tmp_path):
    out = run_legacy(tmp_path / "missing.py", ipython_dir=tmp_path / "ipython", cwd=tmp_path)
    assert out.returncode == 2
    assert f"no such script: {tmp_path / 'missing.py'}" in out.stderr


def test_console_script_entry_point():
    cfg = configparser.ConfigParser()
    cfg.read(os.path.join(ROOT, "setup.cfg"))
    scripts = dict(line.split(" = ") for line in cfg["options.entry_points"]["console_scripts"].strip().split("\n"))
    assert scripts["kernelpar-legacy"] == "kernelpar_compat.runner:main"


def test_runner_runs_an_ipy_file_with_magics(tmp_path):
    script = write(tmp_path / "session.ipy", """
        import sys
        print "argv:", sys.argv[1:]
        def twice(x):
            return 2*x

        # a comment between inputs
        twice(7/2)
        try:
            %time z = 1
        except ZeroDivisionError, e:
            print "not raised"
        else:
            print "magic in a block:", z
        ok = [1,
        2]
        print "ok:", ok
        sys.exit(5)
        print "never"
    """)
    out = run_legacy(script, "a", ipython_dir=tmp_path / "ipython", cwd=tmp_path)
    assert out.returncode == 5, out.stderr
    lines = out.stdout.split("\n")
    assert lines[0] == "argv: ['a']"
    assert "Out[4]: 6" in lines      # each statement is one input, its value shown as in a session
    assert "magic in a block: 1" in lines
    assert "ok: [1, 2]" in lines and "never" not in out.stdout


def test_ipy_files_are_split_into_inputs_as_typed_at_the_prompt():
    if COMPAT not in sys.path:
        sys.path.insert(0, COMPAT)
    from kernelpar_compat.ipyscript import split_inputs

    source = textwrap.dedent('''\
        # a header comment
        import time
        text = """a

        # in a string
        """
        def f():
            # a comment inside

            return 1

        # between inputs
        px print a
        @mec.parallel()
        def g(x): return x
        try:
            %px 1/0
        except CompositeError, e:
            print "caught"
        values = [1,
        2]
        %%timeit
        x = 1
        y = 2
    ''')
    assert [text for _, text in split_inputs(source)] == [
        "import time\n",
        'text = """a\n\n# in a string\n"""\n',
        "def f():\n    # a comment inside\n\n    return 1\n",
        "px print a\n",
        "@mec.parallel()\ndef g(x): return x\n",
        'try:\n    %px 1/0\nexcept CompositeError, e:\n    print "caught"\n',
        "values = [1,\n2]\n",
        "%%timeit\nx = 1\ny = 2\n",
    ]
    assert [number for number, _ in split_inputs(source)] == [2, 3, 7, 13, 14, 16, 20, 22]


def test_runner_ipy_error_stops_the_file(tmp_path):
    script = write(tmp_path / "fails.ipy", """
        print "before"
        raise ValueError, "stop here"
        print "after"
    """)
    out = run_legacy(script, ipython_dir=tmp_path / "ipython", cwd=tmp_path)
    assert out.returncode == 1
    assert out.stdout == "before\n"
    assert "ValueError: stop here" in out.stderr and 'raise ValueError, "stop here"' in out.stderr
