"""Running an ``.ipy`` file the way IPython 0.10 did: input by input, in an IPython shell.

0.10 ran an ``.ipy`` file as if it were typed at the prompt: each complete top-level
statement (a line, or a block up to the next unindented line) was one input.  That matters:
``%autopx`` switches the *following* inputs to the engines until the next ``%autopx``, and
a session shows each expression's value (``Out[n]: <Results List> ...``).  Modern IPython
runs a whole file as one cell, so this module splits the file itself (:func:`split_inputs`)
and runs each input with ``run_cell`` in an :class:`ScriptShell` that has the
:mod:`extension <.extension>` loaded (Python 2 inputs translated, legacy mode on).  Magics,
also inside blocks (``try: %px 1/0``), and automagic (``px print c``) work as at the prompt.

The first input that fails stops the file: its traceback goes to stderr and the run's exit
code is 1; ``SystemExit`` ends the run with its code, silently.
"""

import io
import os
import sys
import tokenize
import warnings

from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

from . import extension
from .py2source import decode_source
from .runner import exit_code

#: lines that continue the statement above them even though they start in column 0
_CONTINUATIONS = ("else", "elif", "except", "finally")


def _is_code(line):
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("#")


def _closed(lines):
    """Whether the text has no open bracket, string or backslash continuation at its end."""
    try:
        for _ in tokenize.generate_tokens(io.StringIO("".join(lines)).readline):
            pass
    except tokenize.TokenError:
        return False
    except (SyntaxError, ValueError):   # e.g. inconsistent dedent: the input ends here anyway
        pass
    return True


def _starts_input(line):
    if not _is_code(line) or line[0] in " \t":
        return False
    word = line.split(None, 1)[0].rstrip(":")
    return word not in _CONTINUATIONS


def split_inputs(source):
    """The inputs of an ``.ipy`` file: ``[(first line number, text), ...]``.

    A new input starts at each unindented code line that does not continue the statement
    before it (``else:``, ``except ...:``, a line after a decorator, a line inside an open
    bracket or string).  A cell magic (``%%timeit``) takes the rest of the file, as in
    IPython.  Comments and blank lines between inputs belong to none: an input is the lines
    from its first code line to its last (a one-line input stays one line, which IPython
    needs for automagic: ``px print c``).
    """
    inputs, current, start = [], [], 1

    def finish():
        while current and not _is_code(current[-1]) and _closed(current[:-1]):
            current.pop()
        if current:
            inputs.append((start, "".join(current)))

    for number, line in enumerate(source.splitlines(keepends=True), 1):
        last_code = next((prev for prev in reversed(current) if _is_code(prev)), None)
        if (last_code is not None and _starts_input(line) and not last_code.lstrip().startswith("@")
                and not current[0].startswith("%%") and _closed(current)):
            finish()
            current = []
        if not current:
            if not _is_code(line):
                continue
            start = number
        current.append(line)
    finish()
    return inputs


class ScriptShell(InteractiveShell):
    """The shell ``.ipy`` files run in: tracebacks to stderr, ``SystemExit`` ends the file."""

    def _showtraceback(self, etype, evalue, stb):
        sys.stdout.flush()
        print(self.InteractiveTB.stb2text(stb), file=sys.stderr)
        sys.stderr.flush()

    def showtraceback(self, exc_tuple=None, *args, **kwargs):
        etype = (exc_tuple or sys.exc_info())[0]
        if etype is not None and issubclass(etype, SystemExit):
            return          # not an error here: the runner exits with its code
        super().showtraceback(exc_tuple, *args, **kwargs)


def run_ipy(path, args=()):
    """Run the ``.ipy`` file ``path`` with ``sys.argv == [path, *args]``; return the exit code.

    Legacy mode must already be on (the runner switches it on with its division setting).
    """
    path = os.path.abspath(path)
    directory = os.path.dirname(path)
    with open(path, "rb") as f:
        source = decode_source(f.read())
    colors = "Linux" if sys.stderr.isatty() else "NoColor"
    # a script's inputs are not the user's typed history (and runs may overlap)
    shell = ScriptShell.instance(colors=colors, config=Config(HistoryManager={"enabled": False}))
    extension.install(shell, directory)
    sys.argv = [path, *args]
    sys.path.insert(0, directory)
    shell.user_ns["__file__"] = path
    warnings.filterwarnings("ignore", message="To exit: use 'exit', 'quit', or Ctrl-D")
    for _, text in split_inputs(source):
        result = shell.run_cell(text, store_history=True)
        error = result.error_before_exec or result.error_in_exec
        if isinstance(error, SystemExit):
            return exit_code(error)
        if error is not None:
            return 1
    return 0
