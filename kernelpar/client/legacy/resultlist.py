"""``ResultList``: the list of execute result dicts that displays as a ``<Results List>``.

``MultiEngineClient.execute`` and ``get_result`` return one (``run`` returns a plain list,
as 0.10 did).  The text is 0.10's, byte for byte::

    <Results List>
    [0] In [1]: print "Hello World"
    [0] Out[1]: Hello World

    [1] In [1]: ...

``[id]`` is green, ``In`` blue, ``Out``/``Err`` red, each label followed by a reset.
Colours are off on Windows (as in 0.10), when ``$NO_COLOR`` is set, or when
``ResultList.colors`` is set to False.
"""

import os
import sys

GREEN = "\x1b[0;32m"
BLUE = "\x1b[0;34m"
RED = "\x1b[0;31m"
NORMAL = "\x1b[0m"


class ResultList(list):
    """A list of result dicts with 0.10's ``<Results List>`` repr."""

    #: ANSI colours in the repr
    colors = sys.platform != "win32" and not os.environ.get("NO_COLOR")

    def __repr__(self):
        green, blue, red, normal = (GREEN, BLUE, RED, NORMAL) if self.colors else ("", "", "", "")
        output = ["<Results List>\n"]
        for cmd in self:
            if not isinstance(cmd, dict):
                output.append(f"{cmd!r}\n")
                continue
            target, number = cmd.get("id"), cmd.get("number")
            text = (cmd.get("input") or {}).get("translated", "No Input")
            output.append(f"{green}[{target}]{blue} In [{number}]:{normal} {text}\n")
            stdout, stderr = cmd.get("stdout"), cmd.get("stderr")
            if stdout:
                output.append(f"{green}[{target}]{red} Out[{number}]:{normal} {stdout}\n")
            if stderr:
                output.append(f"{green}[{target}]{red} Err[{number}]:\n{normal} {stderr}")
        return "".join(output)

    __str__ = __repr__
