"""``IPython.kernel.client``: what ``from IPython.kernel import client`` gives.

``client.MultiEngineClient()`` and ``client.TaskClient()`` (real classes here; 0.10's
were factory functions returning instances), ``MapTask``, ``StringTask`` and
``CompositeError``.  As in 0.10, importing this module inside IPython installs the
parallel magics ``%px``, ``%result`` and ``%autopx`` (:mod:`.magic`); they print "No
Controller is activated" until ``mec.activate()``.
"""

from . import magic
from .error import CompositeError
from .multiengineclient import MultiEngineClient
from .task import MapTask, StringTask
from .taskclient import TaskClient

__all__ = ["CompositeError", "MapTask", "MultiEngineClient", "StringTask", "TaskClient"]

magic.install()
