"""The parallel magics, an IPython extension: ``%px``, ``%%px``, ``%pxresult``, ``%pxconfig``
and ``%autopx``.

A set of magics belongs to one view; ``view.activate(suffix)`` /
``client.activate(targets, suffix)`` register it, and so does the first ``Client()``
created inside IPython (:func:`activate_first_client`).  Each name gets the suffix
(``%px0``, ``%%px0``, ``%pxresult0``...); the unsuffixed set also answers to ``%result``.
This module imports IPython: it is only imported from inside a running IPython.

* ``%px code``: run one line on the engines (``$x``/``{x}`` are *not* expanded locally,
  so f-strings reach the engines).  Blocking: show the output, return nothing;
  non-blocking: return the AsyncResult.
* ``%%px [options]``: run the cell; options below.  ``%pxconfig [exec options]`` makes
  them the defaults of the set; ``%pxresult [output options]`` shows the last result.
* ``%autopx``: toggle sending every following cell through ``%%px``.

Output forms: ``[stdout:N] text``, ``[stderr:N] text`` (on stderr), ``[output:N]`` before
a rich display, ``Out[N:count]: value``; errors as per-engine tracebacks headed
``[N:execute]``.  With streaming (the default unless ``$KERNELPAR_NONINTERACTIVE`` or ``$IPP_NONINTERACTIVE`` is set)
stdout, stderr, displays and tracebacks show while the cell runs
(:meth:`.AsyncResult.stream_output`), ``Out[...]`` at the end, and the error raised
afterwards only says how many tasks failed (``AlreadyDisplayedError``).  Without
streaming the output is shown when all is done, before the error is raised.  Ctrl-C
while waiting sends ``--signal-on-interrupt`` (``SIGINT``) to the cell's engines.
Mistakes in options or targets are ``UsageError`` messages, not tracebacks.
"""

import re
import signal
import sys
import warnings
from contextlib import nullcontext

from IPython.core.error import UsageError
from IPython.core.magic import Magics, no_var_expand
from IPython.core.magic_arguments import MagicArgumentParser

from .. import errors
from .asyncresult import composite
from .streaming import noninteractive_env

NO_LAST_RESULT = "%pxresult shows the result of the last %px or %%px, and there is none yet."

#: after Ctrl-C and the signal, how long to wait for the engines to report (seconds)
INTERRUPT_WAIT = 5.0

# 'a:b:c' with optional (possibly negative) integers: a slice of client.ids
_SLICE = re.compile(r"^\s*(-?\d+)?\s*:\s*(-?\d+)?\s*(?::\s*(-?\d+)?\s*)?$")


# -- option parsers -----------------------------------------------------------------------


def _add_exec_options(parser):
    parser.add_argument("-b", "--block", action="store_const", const=True, dest="block",
                        help="wait for the result (blocking execution)")
    parser.add_argument("-a", "--noblock", action="store_const", const=False, dest="block",
                        help="return the AsyncResult at once (non-blocking execution)")
    parser.add_argument("--stream", action="store_const", const=True, dest="stream",
                        help="show stdout/stderr/displays while the cell runs (blocking only)")
    parser.add_argument("--no-stream", action="store_const", const=False, dest="stream",
                        help="show the output once the cell is done")
    parser.add_argument("-t", "--targets", dest="targets", metavar="TARGETS",
                        help="engines to run on: 'all', a slice of the engine ids such as '0:2' or '::2', "
                             "or a Python expression (an id, a list of ids)")
    parser.add_argument("--verbose", action="store_const", const=True, dest="verbose",
                        help="say where each execution goes")
    parser.add_argument("--no-verbose", action="store_const", const=False, dest="verbose",
                        help="don't say where each execution goes")
    parser.add_argument("--progress-after", type=float, dest="progress_after", metavar="SECONDS",
                        help="show a progress bar once waiting took this long (-1: never, 0: at once)")
    parser.add_argument("--signal-on-interrupt", dest="signal", metavar="SIGNAL",
                        help="signal sent to the engines on Ctrl-C (a name or a number; default SIGINT)")


def _add_output_options(parser):
    parser.add_argument("-r", action="store_const", const="order", dest="groupby",
                        help="collate the outputs in order (same as --group-outputs=order)")
    parser.add_argument("-e", action="store_const", const="engine", dest="groupby",
                        help="group the outputs by engine (same as --group-outputs=engine)")
    parser.add_argument("--group-outputs", choices=("type", "engine", "order"), dest="groupby",
                        help="type: all stdout, then all stderr, then displays; engine: each engine's "
                             "outputs together; order: like type, the n-th displays of all engines together")
    parser.add_argument("-o", "--out", dest="save_name", metavar="NAME",
                        help="store the AsyncResult in the user namespace under NAME")
    parser.set_defaults(groupby="type")


def _cell_parser(prog):
    parser = MagicArgumentParser(prog=prog)
    _add_exec_options(parser)
    parser.add_argument("--local", action="store_true", help="also run the cell here, after sending it")
    _add_output_options(parser)
    return parser


def _config_parser(prog):
    parser = MagicArgumentParser(prog=prog)
    _add_exec_options(parser)
    return parser


def _result_parser(prog):
    parser = MagicArgumentParser(prog=prog)
    _add_output_options(parser)
    return parser


def _parse(parser, line):
    try:
        return parser.parse_argstring(line)
    except ValueError as e:  # e.g. an unclosed quote
        raise UsageError(str(e)) from None


def _signal_spec(spec):
    """``(shown, sent)`` for a ``--signal-on-interrupt`` value; UsageError if it is none."""
    text = str(spec).strip()
    if re.fullmatch(r"\d+", text):
        number = int(text)
        if number not in signal.valid_signals():
            raise UsageError(f"--signal-on-interrupt: invalid signal number {number}")
        return text, number
    name = text.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    if not isinstance(getattr(signal.Signals, name, None), signal.Signals):
        raise UsageError(f"--signal-on-interrupt: unknown signal {text!r}")
    return text, name


def _targets_str(targets):
    if isinstance(targets, (list, tuple, range)) and len(targets) > 10:
        targets = list(targets)
        return str(targets[:4])[:-1] + ", ..., " + str(targets[-4:])[1:]
    return str(list(targets) if isinstance(targets, range) else targets)


class ParallelMagics(Magics):
    """One set of parallel magics, bound to one view (see the module docstring)."""

    # the magics are set up per instance in __init__, not by @magics_class
    registered = True

    def __init__(self, shell, view, suffix=""):
        self.view = view
        self.suffix = suffix
        self.last_result = None
        self.verbose = False
        self.stream = not noninteractive_env()
        self.progress_after = -1.0 if noninteractive_env() else 2.0
        self.signal_on_interrupt = "SIGINT"
        self._autopx_transformer = None
        px = "px" + suffix
        # (IPython's help formatter puts the '%' in front of these)
        self._cell_parser = _cell_parser(f"%{px}")
        self._config_parser = _config_parser(f"pxconfig{suffix}")
        self._result_parser = _result_parser(f"pxresult{suffix}")
        line = {px: self.px, f"pxresult{suffix}": self.pxresult, f"pxconfig{suffix}": self.pxconfig,
                f"autopx{suffix}": self.autopx}
        if not suffix:
            line["result"] = self.pxresult  # the legacy name
        self.magics = {"line": line, "cell": {px: self.cell_px}}
        super().__init__(shell=shell)

    def __repr__(self):
        return f"<ParallelMagics %px{self.suffix} on {self.view!r}>"

    # -- targets -------------------------------------------------------------------------

    def _eval_targets(self, spec):
        """The targets a ``-t/--targets`` value means; UsageError if it means none."""
        text = spec.strip()
        if text == "all":
            return "all"
        client = self.view.client
        match = _SLICE.match(text)
        try:
            if match:
                bounds = [None if g is None else int(g) for g in match.groups()]
                targets = client.ids[slice(*bounds)]
            else:
                targets = eval(text, self.shell.user_ns)
        except Exception as e:
            raise UsageError(f"Invalid targets {spec!r}: {type(e).__name__}: {e}") from None
        self._check_targets(targets, spec)
        return targets

    def _check_targets(self, targets, spec):
        if targets is None or targets == "all":
            return
        try:
            self.view.client._resolve_targets(targets)
        except errors.NoEnginesRegistered as e:
            raise UsageError(str(e)) from None
        except (IndexError, TypeError, ValueError) as e:
            raise UsageError(f"Invalid targets {spec!r}: {e}") from None

    # -- the magics ------------------------------------------------------------------------

    @no_var_expand
    def px(self, line=""):
        """Run one line of code on the engines: ``%px a = os.getpid()``.

        ``$name`` and ``{expr}`` are sent as they are (f-strings are evaluated on the
        engines).  Blocking views print the engines' output and return nothing;
        non-blocking ones return the AsyncResult (also kept for ``%pxresult``).
        """
        return self.parallel_execute(line)

    def cell_px(self, line="", cell=None):
        """Run the cell on the engines (options: see below).

        ``--targets``, ``--block``/``--noblock`` and the other execution options apply to
        this cell only; ``%pxconfig`` changes the defaults.  ``--local`` also runs the
        cell here, after sending it to the engines.
        """
        args = _parse(self._cell_parser, line)
        targets = self._eval_targets(args.targets) if args.targets else None
        sig = _signal_spec(args.signal) if args.signal is not None else None
        block = self.view.block if args.block is None else args.block
        options = {"groupby": args.groupby, "save_name": args.save_name, "stream": args.stream,
                   "progress_after": args.progress_after, "signal": sig, "targets": targets, "verbose": args.verbose}
        if not args.local:
            return self.parallel_execute(cell, block=block, **options)
        # send first, run here, then wait (if blocking) for the engines
        ar = self.parallel_execute(cell, block=False, **options)
        self.shell.run_cell(cell)
        if not block:
            return ar
        self._wait_and_show(ar, args.groupby, options["stream"], args.progress_after, sig)
        return None

    def pxconfig(self, line=""):
        """Change the defaults of these magics: targets, blocking, streaming, verbosity,
        progress bar delay and the signal sent on Ctrl-C."""
        args = _parse(self._config_parser, line)
        targets = self._eval_targets(args.targets) if args.targets else None
        sig = _signal_spec(args.signal) if args.signal is not None else None
        if args.targets:
            self.view.targets = targets
        if args.block is not None:
            self.view.block = args.block
        if args.verbose is not None:
            self.verbose = args.verbose
        if args.stream is not None:
            self.stream = args.stream
        if args.progress_after is not None:
            self.progress_after = args.progress_after
        if sig is not None:
            self.signal_on_interrupt = sig[0]

    def pxresult(self, line=""):
        """Show the output of the last ``%px``/``%%px`` (waiting for it if needed).

        ``-o NAME`` stores its AsyncResult in the user namespace instead.
        """
        args = _parse(self._result_parser, line)
        ar = self.last_result
        if ar is None:
            raise UsageError(NO_LAST_RESULT)
        if args.save_name:
            self.shell.user_ns[args.save_name] = ar
            return
        ar.wait()
        ar.display_outputs(groupby=args.groupby)
        if ar.exception() is not None:
            ar.get()  # raise the remote error(s)

    def autopx(self, line=""):
        """Toggle sending every following cell to the engines (as with ``%%px``).

        A cell starting with ``%autopx`` turns it off again.  Prefer ``%%px``: cells
        then say where they run.
        """
        if self._autopx_transformer is not None:
            self._disable_autopx()
        else:
            self._enable_autopx()

    # -- execution -------------------------------------------------------------------------

    def parallel_execute(self, cell, block=None, groupby="type", save_name=None, stream=None, progress_after=None,
                         signal=None, targets=None, verbose=None):
        """What ``%px``, ``%%px`` and ``%autopx`` do: send ``cell``, then show or return."""
        block = self.view.block if block is None else block
        verbose = self.verbose if verbose is None else verbose
        if verbose:
            shown = self.view.targets if targets is None else targets
            base = "Parallel" if block else "Async parallel"
            print(f"{base} execution on engine(s): {_targets_str(shown)}")
        execute = getattr(self.view, "execute", None)
        if execute is None:
            raise UsageError(f"the magics need a view that can execute code (a DirectView), not {self.view!r}")
        try:
            ar = execute(cell, silent=False, block=False, targets=targets)
        except errors.NoEnginesRegistered as e:
            raise UsageError(str(e)) from None
        except (IndexError, TypeError) as e:  # the view's targets name engines that are gone
            raise UsageError(f"Invalid targets {self.view.targets!r}: {e}") from None
        ar._fname = "%px"
        self.last_result = ar
        if save_name:
            self.shell.user_ns[save_name] = ar
        if not block:
            return ar
        self._wait_and_show(ar, groupby, stream, progress_after, signal)
        return None

    def _wait_and_show(self, ar, groupby, stream, progress_after, sig):
        stream = self.stream if stream is None else stream
        progress_after = self.progress_after if progress_after is None else progress_after
        if sig is None:
            sig = _signal_spec(self.signal_on_interrupt)
        interrupted = False
        with ar.stream_output() if stream else nullcontext():
            try:
                self._wait(ar, progress_after)
            except KeyboardInterrupt:
                interrupted = True
                self._interrupt(ar, sig)
        if interrupted:
            self._show_interrupted(ar, groupby, stream)
            return
        failed = ar.exception() is not None
        # the output always shows, errors or not (when streamed, only the results are left)
        ar.display_outputs(groupby, result_only=stream)
        if not failed:
            return
        if stream:
            n = sum(1 for child in ar._children if child.exception() is not None)
            raise errors.AlreadyDisplayedError(n)
        exc = ar.exception()
        if not isinstance(exc, errors.RemoteError):
            # e.g. EngineError on one engine: shown like the others, "[N:execute]" and why
            raise composite(ar._fname, [exc]) from None
        ar.get()  # raises the RemoteError / CompositeError, shown per engine by IPython

    @staticmethod
    def _wait(ar, progress_after):
        if progress_after is not None and progress_after >= 0 and not ar.wait(progress_after):
            try:
                ar.wait_interactive()
            except ImportError:  # no tqdm: no progress bar
                pass
        ar.wait()

    def _interrupt(self, ar, sig):
        shown, sent = sig
        print(f"Received Keyboard Interrupt. Sending signal {shown} to engines...", file=sys.stderr)
        targets = sorted({md["engine_id"] for md in ar._metadata if md["engine_id"] is not None})
        try:
            self.view.client.send_signal(sent, targets=targets, block=True)
        except KeyboardInterrupt:
            return
        except Exception as e:
            print(f"Could not signal the engines: {e}", file=sys.stderr)
            return
        try:  # let the engines report what the signal did
            ar.wait(INTERRUPT_WAIT)
        except KeyboardInterrupt:
            pass

    @staticmethod
    def _show_interrupted(ar, groupby, stream):
        if not ar.done():
            print("The engines are still running the cell; %pxresult shows its result when it is done.",
                  file=sys.stderr)
            return
        ar.display_outputs(groupby, result_only=stream)
        exc = ar.exception()
        if exc is not None and not stream:
            lines = exc.render_traceback() if hasattr(exc, "render_traceback") else [str(exc)]
            print("\n".join(lines), file=sys.stderr)

    # -- %autopx ---------------------------------------------------------------------------

    def _enable_autopx(self):
        shell = self.shell
        if getattr(shell, "kernel", None) is not None:
            warnings.warn("%autopx is discouraged in notebooks: use %%px cells instead", stacklevel=2)
        toggle = re.compile(rf"^\s*%autopx{re.escape(self.suffix)}\b")
        magic_name = "px" + self.suffix

        def autopx_transformer(lines):
            cell = "".join(lines)
            if not cell.strip() or toggle.match(cell):
                return lines
            # a statement, not an expression: nothing is displayed as the cell's Out
            return [f"get_ipython().run_cell_magic({magic_name!r}, '', {cell!r})\n", "pass\n"]

        # ran on the whole cell, but not by check_complete (a terminal still sees open blocks)
        autopx_transformer.has_side_effects = True
        shell.input_transformers_cleanup.insert(0, autopx_transformer)
        self._autopx_transformer = autopx_transformer
        print("%autopx enabled")

    def _disable_autopx(self):
        transformer, self._autopx_transformer = self._autopx_transformer, None
        if transformer is None:
            return
        try:
            self.shell.input_transformers_cleanup.remove(transformer)
        except ValueError:
            pass
        print("%autopx disabled")


# %%px? / %pxconfig? / %pxresult? list the options
for _name, _parser in (("cell_px", _cell_parser("%px")), ("pxconfig", _config_parser("pxconfig")),
                       ("pxresult", _result_parser("pxresult"))):
    _method = getattr(ParallelMagics, _name)
    _method.__doc__ = (_method.__doc__ or "") + "\n" + _parser.format_help()
del _name, _parser, _method


def activate_first_client(client):
    """Register the magics for ``client`` if it is the first client in a running IPython
    (or the client of the current ``%px`` was closed)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None:
        return
    current = shell.magics_manager.magics["line"].get("px")
    owner = getattr(current, "__self__", None)
    if current is not None and not (isinstance(owner, ParallelMagics) and owner.view.client.closed):
        return
    client.activate()
