"""``IPython.kernel.magic``: IPython 0.10's ``%px``, ``%result`` and ``%autopx``.

They act on the MultiEngineClient of the last ``mec.activate()`` (0.10 kept it in
``__IPYTHON__.activeController``; here it is :data:`active_client`), and print 0.10's texts:

* ``%px code``: ``Parallel execution on engines: <targets>``, then returns
  ``mec.execute(code)`` (IPython shows the Results List, or the PendingResult when not
  blocking);
* ``%result [n]``: returns ``mec.get_result(n)`` (not an int: the latest);
* ``%autopx``: ``Auto Parallel Enabled`` / ``Type %autopx to disable``, then every cell
  goes to ``mec.execute`` and the result's repr is printed, until ``%autopx`` again
  (``Auto Parallel Disabled``).

:func:`install` registers the three names in the running IPython (importing
``IPython.kernel.client`` does, as in 0.10); :func:`activate` also (re)binds them,
since the modern magics use ``%px``, ``%autopx`` and ``%result`` too.  Outside IPython
``activate`` prints 0.10's message.  IPython is never imported here: only a running
one (already in ``sys.modules``) is used.
"""

import sys

NO_ACTIVE_CONTROLLER = """
Error:  No Controller is activated
Use activate() on a RemoteController object to activate it for magics.
"""

NO_ACTIVE_AUTOPX = "No active RemoteController found, use RemoteController.activate()."

NOT_IN_IPYTHON = "The IPython Controller magics only work within IPython."

#: the MultiEngineClient the magics use (set by ``activate``)
active_client = None

#: the autopx input transformer while %autopx is on
_autopx_transformer = None


def running_shell():
    """The running IPython shell, or None (never imports IPython)."""
    ipython = sys.modules.get("IPython")
    return ipython.get_ipython() if ipython is not None else None


def activate(client):
    """Make ``client`` the magics' client and (re)bind the magics in the running IPython."""
    global active_client
    shell = running_shell()
    if shell is None:
        print(NOT_IN_IPYTHON)
        return
    active_client = client
    install(shell)


def install(shell=None):
    """Register ``%px``, ``%result`` and ``%autopx`` in ``shell`` (default: the running one)."""
    shell = shell or running_shell()
    if shell is None:
        return
    for name, func in (("px", magic_px), ("result", magic_result), ("autopx", magic_autopx)):
        shell.register_magic_function(func, "line", name)


def magic_px(line=""):
    """Execute the given Python code on the active MultiEngineClient's engines."""
    if active_client is None:
        print(NO_ACTIVE_CONTROLLER)
        return None
    print(f"Parallel execution on engines: {active_client.targets}")
    return active_client.execute(line)


# IPython would expand $name and {expr} in the line; 0.10 sent Python 2 code, which may
# contain both (format strings): send the text as typed
magic_px._ipython_magic_no_var_expand = True


def magic_result(line=""):
    """The result of command ``n`` (default: the latest) on the active client's engines."""
    try:
        index = int(line)
    except ValueError:
        index = None
    if active_client is None:
        print(NO_ACTIVE_CONTROLLER)
        return None
    return active_client.get_result(index)


def magic_autopx(line=""):
    """Toggle sending every input cell to the active client's engines."""
    if _autopx_transformer is not None:
        _disable_autopx()
    else:
        _enable_autopx()


def run_autopx_cell(cell):
    """What a cell becomes while %autopx is on: execute it remotely, print the repr."""
    print(repr(active_client.execute(cell.rstrip("\n"))))


def _enable_autopx():
    global _autopx_transformer
    shell = running_shell()
    if active_client is None or shell is None:
        print(NO_ACTIVE_AUTOPX)
        return

    def autopx_transformer(lines):
        cell = "".join(lines)
        if not cell.strip() or cell.lstrip().startswith(("%autopx", "autopx")):
            return lines
        return [f"__import__({__name__!r}, fromlist=['_']).run_autopx_cell({cell!r})\n"]

    # runs on the whole cell, not on each check for completeness
    autopx_transformer.has_side_effects = True
    shell.input_transformers_cleanup.insert(0, autopx_transformer)
    _autopx_transformer = autopx_transformer
    print("Auto Parallel Enabled\nType %autopx to disable")


def _disable_autopx():
    global _autopx_transformer
    transformer, _autopx_transformer = _autopx_transformer, None
    shell = running_shell()
    if shell is not None and transformer in shell.input_transformers_cleanup:
        shell.input_transformers_cleanup.remove(transformer)
    print("Auto Parallel Disabled")
