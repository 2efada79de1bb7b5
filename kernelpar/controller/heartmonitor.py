"""Heartbeat bookkeeping: which engines answered recent pings (pure, no I/O).

The hub publishes a numbered ping every period; each engine's C heart echoes it back.
An engine is *dead* once more than ``max_missed`` consecutive pings went unanswered.
The I/O side calls :meth:`HeartMonitor.tick` once per period (it returns the next beat
number to publish and the engines that just died) and :meth:`HeartMonitor.pong` for each
echo received.
"""


class HeartMonitor:
    def __init__(self, max_missed):
        if max_missed < 1:
            raise ValueError(f"max_missed must be at least 1, not {max_missed}")
        self.max_missed = max_missed
        self.beat = 0
        self._last_answer = {}

    def forget(self, ident):
        self._last_answer.pop(ident, None)

    def pong(self, ident, beat):
        """Record an echo; an ident is watched from its first echo on."""
        if beat <= self.beat:
            self._last_answer[ident] = max(beat, self._last_answer.get(ident, beat))

    def tick(self):
        """Advance one period: return ``(beat_to_publish, idents_now_dead)``."""
        self.beat += 1
        dead = [i for i, last in self._last_answer.items() if self.beat - last > self.max_missed + 1]
        for ident in dead:
            del self._last_answer[ident]
        return self.beat, dead
