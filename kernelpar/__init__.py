"""kernelpar: interactive parallel computing for Python, a drop-in for ipyparallel 9.2.

``import kernelpar as ipp`` gives the names ipyparallel code uses: ``ipp.Client``,
``ipp.Cluster``, views and results, ``Reference``/``interactive``, the ``@remote`` and
``@parallel`` decorators, serializer switches and every exception (also as
``ipp.error``).  Importing kernelpar does not import IPython.
"""

from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, FIRST_EXCEPTION  # noqa: F401

from . import error  # noqa: F401
from ._version import __version__, version_info  # noqa: F401
from .client import (  # noqa: F401
    AsyncHubResult,
    AsyncMapResult,
    AsyncResult,
    BroadcastView,
    Client,
    Dependency,
    DirectView,
    ExecuteReply,
    LoadBalancedView,
    ParallelFunction,
    RemoteFunction,
    ViewExecutor,
    depend,
    dependent,
    parallel,
    remote,
    require,
)
from .cluster import Cluster  # noqa: F401
from .errors import *  # noqa: F401,F403
from .engine.kernelbind import bind_kernel  # noqa: F401
from .wire.serialize import (  # noqa: F401
    PrePickled,
    Reference,
    deserialize_object,
    interactive,
    serialize_object,
    use_cloudpickle,
    use_dill,
    use_pickle,
)
