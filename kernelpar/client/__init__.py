"""The client side: ``Client``, views, ``AsyncResult`` and friends.

Modules, one job each:

* :mod:`.client`: ``Client`` (connection handshake, engine table, control requests);
* :mod:`.connect`: finding and reading the connection file;
* :mod:`.ioloop`: the IO thread that alone owns the sockets;
* :mod:`.dispatch`: replies, output and notifications -> resolved futures;
* :mod:`.futures`: one request's future and metadata;
* :mod:`.asyncresult`: ``AsyncResult``, ``AsyncMapResult``;
* :mod:`.view`: ``View`` and ``DirectView``; :mod:`.lbview`: ``LoadBalancedView``;
* :mod:`.executor`: ``view.executor``; :mod:`.remotefunction`: ``@remote``/``@parallel``;
* :mod:`.dependency`: ``require``/``depend``/``Dependency``;
* :mod:`.hubqueries`: task records on the hub (``db_query``, ``get_result``...); :mod:`.hubresult`:
  ``AsyncHubResult``; :mod:`.hubrecords`: decoding the hub's records;
* :mod:`.partition`: scatter/gather/map splitting (pure);
* :mod:`.enginefuncs`: the helpers views run on engines; :mod:`.imports`: ``sync_imports``;
* :mod:`.executereply`: ``ExecuteReply``; :mod:`.display`: re-showing output;
* :mod:`.history`: the compact msg_id history.
"""

from .asyncresult import AsyncMapResult, AsyncResult
from .broadcastview import BroadcastView
from .client import Client
from .dependency import Dependency, depend, dependent, require
from .executereply import ExecuteReply
from .executor import ViewExecutor
from .futures import MessageFuture, Metadata
from .hubresult import AsyncHubResult
from .lbview import LoadBalancedView
from .remotefunction import ParallelFunction, RemoteFunction, parallel, remote
from .view import DirectView

__all__ = [
    "AsyncMapResult", "AsyncResult", "BroadcastView", "Client", "DirectView", "ExecuteReply", "MessageFuture", "Metadata",
    "ViewExecutor",
    "ParallelFunction", "RemoteFunction", "parallel", "remote",
    "Dependency", "depend", "dependent", "require", "AsyncHubResult", "LoadBalancedView",
]
