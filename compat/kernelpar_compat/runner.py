"""``kernelpar-legacy``: run a Python 2-era client script, or an ``.ipy`` file, unchanged.

::

    kernelpar-legacy [--true-division] script.py [args ...]
    kernelpar-legacy [--true-division] script.ipy [args ...]
    python -m kernelpar_compat ...          (the same)

Switches :mod:`legacy mode <.legacymode>` on (import hook: ``from IPython.kernel import
client``; translation of the code sent to engines; the prelude), then:

* ``script.py``: translates the script (:func:`.py2source.translate`, keeping its line
  numbers, so tracebacks show the script's own lines), and runs it as ``__main__`` with
  ``sys.argv == [script, *args]`` and the script's directory first on ``sys.path``, as
  ``python script.py`` would.  Python 2 modules imported from that directory are translated
  too (:mod:`.localmodules`);
* ``script.ipy``: runs it input by input in an IPython shell with magics (``%px``,
  ``%result``, ``%autopx``, ``px print c``), translating each input (:mod:`.ipyscript`).

Classic division (``7/2 == 3``) applies to the script, its Python 2 modules and the engine
code unless ``--true-division`` is given or a file says ``from __future__ import division``.

Exit code: the script's (``sys.exit(n)``, ``SystemExit`` honoured), 0 when it ends
normally, 1 with the traceback on stderr when it raises (or does not compile: the
SyntaxError shows the original line), 2 for a usage error.
"""

import argparse
import builtins
import os
import sys
import traceback
import types

from . import legacymode, localmodules
from .py2source import decode_source, translate


def _parser():
    parser = argparse.ArgumentParser(
        prog="kernelpar-legacy",
        description="Run a Python 2-era kernelpar / IPython 0.10 client script (.py) or IPython "
                    "script with magics (.ipy) unchanged, in legacy mode.")
    parser.add_argument("--true-division", action="store_true",
                        help="keep Python 3's true division (default: classic division, 7/2 == 3, "
                             "in the script, its modules and the code sent to engines)")
    parser.add_argument("script", help="the .py or .ipy file to run")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="arguments passed to the script (sys.argv[1:])")
    return parser


def exit_code(exc):
    """The process exit code for a ``SystemExit`` (a message is printed to stderr, as Python does)."""
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


#: frames a script's import of a Python 2 module that does not translate passes through
_IMPORT_MACHINERY = (os.path.dirname(os.path.abspath(__file__)) + os.sep, "<frozen importlib")


def _print_error(exc, skip_frames):
    tb = exc.__traceback__
    for _ in range(skip_frames):
        if tb is not None:
            tb = tb.tb_next
    sys.stdout.flush()
    report = traceback.TracebackException(type(exc), exc, tb)
    if isinstance(exc, SyntaxError):
        # the user's lines, as Python shows them for a module that does not compile
        report.stack = traceback.StackSummary.from_list(
            [frame for frame in report.stack if not frame.filename.startswith(_IMPORT_MACHINERY)])
    sys.stderr.write("".join(report.format()))


def run_py(path, args=()):
    """Run the Python 2-era script ``path`` as ``__main__``; return the exit code.

    Legacy mode must already be on (:func:`main` switches it on with its division setting).
    """
    path = os.path.abspath(path)
    directory = os.path.dirname(path)
    with open(path, "rb") as f:
        source = decode_source(f.read())
    try:
        code = compile(translate(source, path, division=legacymode.classic_division(), assume_py2=True), path, "exec",
                       dont_inherit=True)
    except SyntaxError as e:
        # only the error itself (File, the original line, caret), not the translator's frames
        sys.stderr.write("".join(traceback.format_exception_only(type(e), e)))
        return 1
    main_module = types.ModuleType("__main__")
    main_module.__dict__.update(__file__=path, __builtins__=builtins, __spec__=None, __cached__=None)
    saved = sys.modules["__main__"], sys.argv, list(sys.path)
    sys.modules["__main__"], sys.argv = main_module, [path, *args]
    sys.path[0:1] = [directory]
    localmodules.translate_modules_in(directory)
    try:
        exec(code, main_module.__dict__)  # noqa: S102 - running the user's script is the point
    except SystemExit as e:
        return exit_code(e)
    except KeyboardInterrupt as e:
        _print_error(e, skip_frames=1)
        return 130
    except BaseException as e:  # noqa: BLE001 - any failure of the script is reported, as Python does
        _print_error(e, skip_frames=1)
        return 1
    finally:
        localmodules.stop_translating(directory)
        sys.modules["__main__"], sys.argv = saved[0], saved[1]
        sys.path[:] = saved[2]
    return 0


def main(argv=None):
    """The ``kernelpar-legacy`` command; returns the exit code."""
    parser = _parser()
    options = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if not os.path.isfile(options.script):
        parser.error(f"no such script: {options.script}")
    legacymode.enable(division=not options.true_division)
    if options.script.endswith(".ipy"):
        from .ipyscript import run_ipy

        return run_ipy(options.script, options.args)
    return run_py(options.script, options.args)
