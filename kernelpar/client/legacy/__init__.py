"""The IPython 0.10 ``IPython.kernel`` API over kernelpar's own wire, controller and engines.

Old tutorials and scripts say ``from IPython.kernel import client`` and then
``client.MultiEngineClient()`` / ``client.TaskClient()``.  This package is that API: a
client layer, like the modern views, over the same controller and engines (no second
controller, no second protocol).  Its module names follow 0.10's, so the opt-in import
hook of ``kernelpar_compat`` maps ``IPython.kernel.<name>`` to ``kernelpar.client.legacy.<name>``
one to one:

``client``
    What ``from IPython.kernel import client`` gives: ``MultiEngineClient``, ``TaskClient``,
    ``MapTask``, ``StringTask``, ``CompositeError``.
``error``
    The ``IPython.kernel.error`` exceptions (and ``IPython.kernel.core.error``'s).
``furl``
    FURL files: finding them and resolving one to the cluster's connection information.
``multiengineclient``, ``mecdata``, ``commands``, ``pendingresult``, ``resultlist``, ``onengine``, ``magic``
    The MultiEngineClient, its scatter/gather/map methods, what every command shares
    (request metadata, replies turned into 0.10's exceptions, how functions are shipped),
    its non-blocking results, the ``<Results List>`` display, the functions it runs on
    engines (0.10's interpreter semantics) and ``%px``/``%result``/``%autopx``.
``taskclient``, ``task``, ``taskonengine``
    The TaskClient, ``MapTask``/``StringTask``/``TaskResult``/``ResultNS``, and what a task
    runs on its engine (0.10's push/execute/pull steps, ``depend`` and ``clear_before/after``).
``translate``
    Where legacy mode plugs in a translator for Python 2-era engine code (``kernelpar``
    never imports ``kernelpar_compat``: the compat layer registers itself here).

Nothing here is imported by ``import kernelpar``.
"""

from .error import TaskRejectError  # noqa: F401  (``from IPython.kernel import TaskRejectError``)
