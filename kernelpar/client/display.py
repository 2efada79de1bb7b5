"""Re-showing the output a task produced on its engine (``AsyncResult.display_outputs``).

Plain text everywhere: ``[stdout:N] text``, ``[stderr:N] text`` (on stderr),
``[output:N]`` before each rich display, ``Out[N:count]: value`` for an execute result.
Inside a running IPython shell rich displays are re-published to the frontend; IPython
is only used if it is already imported (``import kernelpar`` stays light).
"""

import sys


def _ipython_shell():
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return None
    try:
        return ipython.get_ipython()
    except Exception:
        return None


def print_stream(text, prefix="", file=None):
    if not text:
        return
    file = file or sys.stdout
    end = "" if text.endswith("\n") else "\n"
    multiline = text.count("\n") > int(text.endswith("\n"))
    if prefix and multiline and not text.startswith("\n"):
        prefix += "\n"
    print(f"{prefix}{text}", file=file, end=end)


def _show_rich(content, eid, shell):
    print(f"[output:{eid}]")
    data = content.get("data") or {}
    if shell is not None:
        from IPython.display import publish_display_data

        publish_display_data(data=data, metadata=dict(content.get("metadata") or {}, engine=eid))
    elif "text/plain" in data:
        print(data["text/plain"])


def _show_result(md):
    execute_result = md.get("execute_result")
    if not execute_result:
        return
    text = (execute_result.get("data") or {}).get("text/plain", "")
    prompt = f"Out[{md.get('engine_id')}:{execute_result.get('execution_count')}]: "
    print(prompt + ("\n" if "\n" in text else "") + text)


def display_outputs(metadata, groupby="type", result_only=False):
    """Print the outputs recorded in a list of task ``Metadata`` (see module docstring)."""
    if groupby not in ("type", "engine", "order"):
        raise ValueError(f"groupby must be one of 'type', 'engine', 'order', not {groupby!r}")
    shell = _ipython_shell()
    if groupby == "engine":
        for md in metadata:
            eid = md.get("engine_id")
            if not result_only:
                print_stream(md["stdout"], f"[stdout:{eid}] ")
                print_stream(md["stderr"], f"[stderr:{eid}] ", file=sys.stderr)
                for content in md["outputs"]:
                    _show_rich(content, eid, shell)
            _show_result(md)
        return
    if not result_only:
        for md in metadata:
            print_stream(md["stdout"], f"[stdout:{md.get('engine_id')}] ")
        for md in metadata:
            print_stream(md["stderr"], f"[stderr:{md.get('engine_id')}] ", file=sys.stderr)
        if groupby == "order":
            depth = max((len(md["outputs"]) for md in metadata), default=0)
            for i in range(depth):
                for md in metadata:
                    if i < len(md["outputs"]):
                        _show_rich(md["outputs"][i], md.get("engine_id"), shell)
        else:
            for md in metadata:
                for content in md["outputs"]:
                    _show_rich(content, md.get("engine_id"), shell)
    for md in metadata:
        _show_result(md)
