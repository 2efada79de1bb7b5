"""Re-showing the output a task produced on its engine (``AsyncResult.display_outputs``).

Streams as text: ``[stdout:N] text``, ``[stderr:N] text`` (on stderr).  Then
``[output:N]`` before each rich display and ``Out[N:count]: value`` for an execute result:
printed as text outside IPython; inside a running IPython shell published through its
display publisher as ipyparallel does (rich displays and results with every mime type
the engine gave, the prompt added to the text form).  IPython is only used if it is
already imported (``import kernelpar`` stays light).
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
    if shell is None:
        print(f"[output:{eid}]")
        data = content.get("data") or {}
        if "text/plain" in data:
            print(data["text/plain"])
        return
    _publish({"text/plain": f"[output:{eid}]"})
    _publish(content.get("data") or {}, dict(content.get("metadata") or {}, engine=eid))


def _publish(data, metadata=None):
    # through the display publisher, not stdout: a frontend keeps labels, rich outputs and
    # results in order (stdout is flushed in batches), and shows each in its richest form
    from IPython.display import publish_display_data

    publish_display_data(data=data, metadata=metadata)


def _show_result(md, shell):
    execute_result = md.get("execute_result")
    if not execute_result:
        return
    data = execute_result.get("data") or {}
    text = data.get("text/plain", "")
    prompt = f"Out[{md.get('engine_id')}:{execute_result.get('execution_count')}]: "
    text = prompt + ("\n" if "\n" in text else "") + text
    if shell is None:
        print(text)
        return
    # every form the engine gave (a DataFrame's HTML table); the text one with the prompt
    _publish(dict(data, **{"text/plain": text}), dict(execute_result.get("metadata") or {}, engine=md.get("engine_id")))


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
            _show_result(md, shell)
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
        _show_result(md, shell)
