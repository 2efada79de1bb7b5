"""A compact, append-only list of message ids (``Client.history``, ``View.history``).

Task msg_ids are ``<prefix><n>`` with ``n`` from one counter per client, so a history is
stored as runs of consecutive integers: a client that submits 10^6 tasks through one view
keeps one run, not 10^6 strings.  This is what keeps a long-running client's memory flat
(ipyparallel's list grows by ~80 bytes per task, forever).  It behaves as a read-only
sequence of strings: ``len``, indexing and slicing (negative too), iteration, ``in``,
``index`` and ``==`` with a list.
"""

import bisect
import threading
from collections.abc import Sequence


class IdHistory(Sequence):
    def __init__(self, prefix):
        self._prefix = prefix
        self._starts = []  # first n of each run
        self._stops = []  # one past the last n of each run
        self._offsets = []  # index in the history of each run's first entry
        self._len = 0
        self._lock = threading.Lock()

    def append_number(self, n):
        """Record msg_id ``<prefix><n>`` (callers hand out ``n`` in increasing order)."""
        with self._lock:
            if self._stops and self._stops[-1] == n:
                self._stops[-1] = n + 1
            else:
                self._starts.append(n)
                self._stops.append(n + 1)
                self._offsets.append(self._len)
            self._len += 1

    def __len__(self):
        return self._len

    def _number(self, index):
        run = bisect.bisect_right(self._offsets, index) - 1
        return self._starts[run] + index - self._offsets[run]

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self._len))]
        if index < 0:
            index += self._len
        if not 0 <= index < self._len:
            raise IndexError("history index out of range")
        return f"{self._prefix}{self._number(index)}"

    def __iter__(self):
        # Snapshot the runs so that concurrent appends do not disturb an iteration.
        with self._lock:
            runs = list(zip(self._starts, self._stops))
        prefix = self._prefix
        for start, stop in runs:
            for n in range(start, stop):
                yield f"{prefix}{n}"

    def _parse(self, msg_id):
        if not isinstance(msg_id, str) or not msg_id.startswith(self._prefix):
            return None
        digits = msg_id[len(self._prefix):]
        return int(digits) if digits.isdigit() else None

    def __contains__(self, msg_id):
        return self._locate(msg_id) is not None

    def _locate(self, msg_id):
        n = self._parse(msg_id)
        if n is None:
            return None
        run = bisect.bisect_right(self._starts, n) - 1
        if run >= 0 and n < self._stops[run]:
            return self._offsets[run] + n - self._starts[run]
        return None

    def index(self, msg_id, start=0, stop=None):
        i = self._locate(msg_id)
        if i is None or i < start or (stop is not None and i >= stop):
            raise ValueError(f"{msg_id!r} is not in history")
        return i

    def count(self, msg_id):
        return 1 if msg_id in self else 0

    def __eq__(self, other):
        if isinstance(other, (IdHistory, list, tuple)):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other))
        return NotImplemented

    def __repr__(self):
        return repr(list(self))
