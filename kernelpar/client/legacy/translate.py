"""The hook through which legacy mode translates Python 2-era code sent to engines.

``execute``, ``%px``, ``%autopx``, ``StringTask`` and ``run`` send source text written for
Python 2 in old tutorials (``print c``).  ``kernelpar`` itself does not translate: the
compat layer (``kernelpar_compat``, the runner ``kernelpar-legacy`` and the IPython
extension) registers its translator with :func:`set_translator`.  Without one, sources go
to the engines as they are.  The text users see (``input`` of the result dicts, the
Results List) is always the original.

A translator may need helpers on the engines (classic division's ``__kp_classic_div__``):
``engine_prelude`` is self-contained source that each engine runs once, outside the user
namespace, before the first translated source.
"""

_translator = None
_engine_prelude = None


def set_translator(translator, engine_prelude=None):
    """Use ``translator(source, filename) -> str`` for engine sources (None: no translation)."""
    global _translator, _engine_prelude
    _translator = translator
    _engine_prelude = engine_prelude if translator is not None else None


def get_translator():
    """The registered translator, or None."""
    return _translator


def engine_prelude():
    """Source each engine runs once before translated code (None if there is none)."""
    return _engine_prelude


def for_engine(source, filename="<string>"):
    """The source an engine should run for ``source`` (``source`` itself without a translator).

    A source that cannot be translated raises the translator's SyntaxError, which names the
    original line.
    """
    if _translator is None:
        return source
    return _translator(source, filename)
