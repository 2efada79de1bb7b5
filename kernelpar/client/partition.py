"""How sequences are split across engines and put back together (pure code, no I/O).

Used by ``scatter``/``gather``, ``DirectView.map`` and ``@parallel`` functions.  Two
distributions, as in ipyparallel:

* ``'b'`` (block): ``p`` contiguous slices whose sizes differ by at most one, the bigger
  ones first.  A numpy array is sliced along axis 0, so each piece is a *view* of the
  caller's memory and travels as an out-of-band buffer without a copy.
* ``'r'`` (round robin): piece ``i`` is ``seq[i::p]``.

Joining concatenates numpy arrays, chains lists/tuples into one list and leaves any other
pieces (scalars, e.g. after ``flatten=True``) as a list of the pieces.
"""

import sys
from itertools import chain

DISTS = ("b", "r")


def is_array(obj):
    """Is ``obj`` a numpy array?  (Never imports numpy itself: no numpy, no arrays.)"""
    np = sys.modules.get("numpy")
    return np is not None and isinstance(obj, np.ndarray)


def check_dist(dist):
    if dist not in DISTS:
        raise ValueError(f"dist must be 'b' (blocks) or 'r' (round robin), not {dist!r}")


def as_sequence(obj):
    """``obj`` itself if it can be sliced and measured, else ``list(obj)`` (generators, sets)."""
    if is_array(obj) or isinstance(obj, (list, tuple, range, str, bytes)):
        return obj
    try:
        len(obj)
        obj[0:0]
    except Exception:
        return list(obj)
    return obj


def block_bounds(n, parts):
    """``[(lo, hi), ...]``: ``parts`` contiguous ranges covering ``range(n)``, bigger first."""
    if parts < 1:
        raise ValueError(f"cannot split into {parts} parts")
    base, extra = divmod(n, parts)
    bounds = []
    lo = 0
    for p in range(parts):
        hi = lo + base + (1 if p < extra else 0)
        bounds.append((lo, hi))
        lo = hi
    return bounds


def partition(seq, parts, dist="b", n=None):
    """Split ``seq`` into a list of ``parts`` pieces (some empty when ``len(seq) < parts``).

    ``n`` limits the split to the first ``n`` items (``map`` over sequences of unequal
    length uses the shortest, like the builtin).
    """
    check_dist(dist)
    n = len(seq) if n is None else n
    if dist == "b":
        return [seq[lo:hi] for lo, hi in block_bounds(n, parts)]
    if parts < 1:
        raise ValueError(f"cannot split into {parts} parts")
    return [seq[p:n:parts] for p in range(parts)]


def flatten_singletons(pieces):
    """``scatter(..., flatten=True)``: a piece of length one is sent as its only element."""
    return [piece[0] if len(piece) == 1 else piece for piece in pieces]


def concatenate(pieces):
    """Join pieces in order: arrays concatenated, lists/tuples chained, others listed."""
    if not pieces:
        return []
    first = pieces[0]
    if is_array(first):
        return sys.modules["numpy"].concatenate(pieces)
    if isinstance(first, (list, tuple)):
        return list(chain.from_iterable(pieces))
    return list(pieces)


def join(pieces, dist="b"):
    """Inverse of :func:`partition` applied to per-piece results."""
    check_dist(dist)
    if dist == "b" or not pieces:
        return concatenate(pieces)
    first = pieces[0]
    stride = len(pieces)
    if is_array(first):
        np = sys.modules["numpy"]
        total = sum(len(p) for p in pieces)
        out = np.empty((total,) + first.shape[1:], dtype=np.result_type(*pieces))
        for i, piece in enumerate(pieces):
            out[i::stride] = piece
        return out
    if isinstance(first, (list, tuple)):
        total = sum(len(p) for p in pieces)
        out = [None] * total
        for i, piece in enumerate(pieces):
            out[i::stride] = list(piece)
        return out
    return list(pieces)


def common_length(sequences):
    """Builtin ``map`` semantics: the shortest sequence decides how many calls are made."""
    return min((len(s) for s in sequences), default=0)
