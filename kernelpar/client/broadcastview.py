"""``BroadcastView``: "every engine does the same thing" for O(1) client messages.

``rc.broadcast_view(targets='all', is_coalescing=False)``.  A DirectView whose
``apply`` and ``execute`` (and so ``push``, ``pull``, ``update``, ``get``...) send *one*
message to the controller, which gives each target engine its copy
(:mod:`kernelpar.controller.broadcast`); each copy has its own msg_id, future and
metadata, so results, errors and output behave as with a DirectView.  With
``is_coalescing=True`` the controller also gathers the replies into one message, so
the client receives one message per call instead of one per engine.  ``scatter``,
``gather`` and ``map`` send a different share to each engine, so they stay per-engine
messages (ipyparallel's are never coalescing either).
"""

from ..wire.protocol import execute_content
from ..wire.serialize import pack_apply
from .asyncresult import AsyncResult
from .remotefunction import getname
from .view import DirectView


class BroadcastView(DirectView):
    flags = DirectView.flags + ("is_coalescing",)

    def __init__(self, client, targets="all", is_coalescing=False, **kwargs):
        DirectView.__init__(self, client, targets, **kwargs)
        self.is_coalescing = is_coalescing

    def __repr__(self):
        return f"<BroadcastView {self.targets}{' coalescing' if self.is_coalescing else ''}>"

    def _broadcast(self, kind, msg_type, targets, content, buffers, fname):
        pairs, single = self.client._resolve_targets(self.targets if targets is None else targets)
        futures, frames = self.client._broadcast(kind, msg_type, pairs, content, buffers, self.is_coalescing,
                                                 self.label, self.history)
        ar = AsyncResult(self.client, futures[0] if single else futures, fname=fname)
        self.client._send_broadcast(futures, frames)
        return ar

    def _really_apply(self, f, args=(), kwargs=None, targets=None, block=None, track=None, fname=None):
        block = self.block if block is None else block
        ar = self._broadcast("apply", "apply_request", targets, None, pack_apply(f, args, kwargs or {}),
                             fname or getname(f))
        return self._finish(ar, block)

    def execute(self, code, silent=True, targets=None, block=None):
        block = self.block if block is None else block
        ar = self._broadcast("execute", "execute_request", targets, execute_content(code, silent), (), "execute")
        self._finish(ar, block)
        return ar
