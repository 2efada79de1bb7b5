"""The controller: one process holding the hub, the C queues and (later) the schedulers.

Run it with ``ipcontroller`` or ``python -m kernelpar.controller``; see :mod:`.app`.
"""
