"""Serialization of Python objects into message buffers.

Everything is pickled with protocol 5.  Large contiguous buffers (numpy arrays,
big ``bytes``/``bytearray``/``memoryview`` values) go *out of band*: the pickle stream
only refers to them, and they travel as their own zmq frames, sent with ``copy=False``
and received as read-only views on the frame memory (no Python-level copy on either side).
So ``serialize_object`` returns ``[pickle_bytes, *buffers]`` and ``deserialize_object``
takes the same list back.

Functions are shipped by value with cloudpickle, with ipyparallel's rule for *interactive*
functions (those whose ``__module__`` is ``__main__``, including lambdas and closures typed
at a prompt): their globals are not captured on the client; on the receiving side they get
the *user namespace* (the engine's, or ``__main__`` on a client) as globals.  That is why
``lambda x: a + x`` works after ``push({'a': 1})``.  Functions of importable modules are
pickled by reference.  ``use_cloudpickle()`` switches to cloudpickle's own by-value
globals; ``use_pickle()`` restores the default (ipyparallel's names and meanings).
"""

import functools
import io
import pickle
import sys
import types
from pickle import PickleBuffer

import cloudpickle

#: buffers at least this big travel as their own frames, zero-copy
BUFFER_THRESHOLD = 64 * 1024
PICKLE_PROTOCOL = 5

_mode = "canning"
_user_namespace = None


class SerializationError(TypeError):
    """An object that cannot be pickled or unpickled; the message names its type."""


class Reference:
    """An argument placeholder evaluated in the engine's namespace: ``Reference('a.b')``."""

    def __init__(self, name):
        if not isinstance(name, str):
            raise TypeError(f"Reference needs an expression string, not {type(name).__name__}")
        self.name = name

    def resolve(self, namespace):
        return eval(self.name, namespace)

    def __repr__(self):
        return f"<Reference: {self.name!r}>"


def interactive(f):
    """Mark ``f`` as interactive: on an engine its globals are the user namespace."""
    f.__module__ = "__main__"
    return f


def set_user_namespace(namespace):
    """Name the dict that interactive functions get as globals when unpickled here."""
    global _user_namespace
    _user_namespace = namespace


def user_namespace():
    if _user_namespace is not None:
        return _user_namespace
    return sys.modules["__main__"].__dict__


def use_pickle():
    """Restore the default: interactive functions use the receiver's user namespace."""
    _set_mode("canning")


def use_cloudpickle():
    """Pickle functions with cloudpickle's own by-value globals."""
    _set_mode("cloudpickle")


def use_dill():
    """Not supported: says so, and what does the same job (ipyparallel's switch to dill)."""
    raise NotImplementedError("kernelpar does not serialize with dill; use_cloudpickle() ships functions, "
                              "lambdas and closures by value with their globals, which is what use_dill() is used for")


def _set_mode(mode):
    global _mode
    _mode = mode


def _rebuild_interactive(code, name, qualname, defaults, kwdefaults, closure, attrs):
    cells = None if closure is None else tuple(types.CellType(v) if v is not _EMPTY else types.CellType() for v in closure)
    f = types.FunctionType(code, user_namespace(), name, defaults, cells)
    f.__qualname__ = qualname
    f.__kwdefaults__ = kwdefaults
    f.__module__ = "__main__"
    if attrs:
        f.__dict__.update(attrs)
    return f


class _Empty:
    def __reduce__(self):
        return (_empty, ())


def _empty():
    return _EMPTY


_EMPTY = _Empty()


def _cell_value(cell):
    try:
        return cell.cell_contents
    except ValueError:
        return _EMPTY


class _CanningPickler(cloudpickle.Pickler):
    def reducer_override(self, obj):
        if type(obj) is types.FunctionType and obj.__module__ == "__main__":
            closure = None if obj.__closure__ is None else tuple(_cell_value(c) for c in obj.__closure__)
            return _rebuild_interactive, (
                obj.__code__,
                obj.__name__,
                obj.__qualname__,
                obj.__defaults__,
                obj.__kwdefaults__,
                closure,
                obj.__dict__ or None,
            )
        return super().reducer_override(obj)


class _OutOfBand:
    """Wraps a large bytes-like value so that pickle sends its memory out of band."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def __reduce_ex__(self, protocol):
        rebuild = {bytes: bytes, bytearray: bytearray}.get(type(self.value), memoryview)
        return rebuild, (PickleBuffer(self.value),)


def _wrap_large(obj, threshold):
    if isinstance(obj, (bytes, bytearray, memoryview)) and _nbytes(obj) >= threshold:
        return _OutOfBand(obj)
    return obj


def _nbytes(obj):
    return obj.nbytes if isinstance(obj, memoryview) else len(obj)


def wrap_buffers(values, threshold=BUFFER_THRESHOLD):
    """Mark the large bytes-like items of a list/tuple/dict (one level) for out-of-band transfer."""
    if isinstance(values, dict):
        return {k: _wrap_large(v, threshold) for k, v in values.items()}
    if isinstance(values, (list, tuple)):
        return type(values)(_wrap_large(v, threshold) for v in values)
    return _wrap_large(values, threshold)


#: exact types that C pickle writes as the canning pickler would: no code, class or module inside
_ATOM_TYPES = frozenset({type(None), bool, int, float, complex, str, bytes, bytearray, range})
_CONTAINER_TYPES = frozenset({tuple, list, set, frozenset})
#: how many objects :func:`_is_plain` looks at before leaving ``obj`` to cloudpickle
_PLAIN_SCAN_LIMIT = 64


def _own_tuple_type(kind):
    """Whether ``kind`` is a tuple subclass (a namedtuple) importable from this package."""
    module = getattr(kind, "__module__", None)
    return isinstance(module, str) and module.startswith("kernelpar.") and _importable_tuple(kind)


@functools.cache  # only this package's classes reach it: a bounded set
def _importable_tuple(kind):
    return issubclass(kind, tuple) and getattr(sys.modules.get(kind.__module__), kind.__qualname__, None) is kind


def _is_plain(obj):
    """Whether the C pickler alone can write ``obj``, as cloudpickle would (a small task's
    arguments then pickle in about half the time).

    True for small trees of atoms, containers, plain numpy arrays, PrePickled values,
    References and this package's own module-level functions and namedtuples (every
    engine imports them by name), which is what most tasks' arguments are.
    """
    todo = [obj]
    for _ in range(_PLAIN_SCAN_LIMIT):
        if not todo:
            return True
        item = todo.pop()
        kind = type(item)
        if kind in _ATOM_TYPES or kind in _OWN_PICKLABLE_TYPES:
            continue
        if kind in _CONTAINER_TYPES:
            todo.extend(item)
        elif kind is dict:
            todo.extend(item.keys())
            todo.extend(item.values())
        elif kind is types.FunctionType:
            if not (item.__module__ or "").startswith("kernelpar.") or "<" in item.__qualname__:
                return False
        elif kind.__module__ == "numpy" and kind.__name__ == "ndarray":
            if item.dtype.hasobject:
                return False
        elif _own_tuple_type(kind):
            todo.extend(item)
        else:
            return False
    return not todo


def serialize_object(obj, threshold=BUFFER_THRESHOLD):
    """Pickle ``obj`` into ``[pickle_bytes, *out_of_band_buffers]``."""
    buffers = []

    def keep_large(pb):
        raw = pb.raw()
        if raw.nbytes < threshold:
            return True
        buffers.append(raw)
        return False

    out = io.BytesIO()
    if _is_plain(obj):
        pickler_class = pickle.Pickler
    else:
        pickler_class = _CanningPickler if _mode == "canning" else cloudpickle.Pickler
    try:
        pickler_class(out, protocol=PICKLE_PROTOCOL, buffer_callback=keep_large).dump(obj)
    except Exception as e:
        raise SerializationError(f"cannot serialize {_describe(obj)}: {e}") from e
    return [out.getbuffer(), *buffers]


def deserialize_object(buffers):
    """Inverse of :func:`serialize_object`; buffers may be zmq frames, bytes or memoryviews."""
    if not buffers:
        raise SerializationError("no data buffers in message")
    data, *oob = [_as_buffer(b) for b in buffers]
    try:
        return pickle.loads(data, buffers=oob)
    except KeyboardInterrupt:
        raise
    except BaseException as e:  # a pickle runs code of its own choosing: SystemExit too
        raise SerializationError(f"cannot deserialize object: {type(e).__name__}: {e}") from e


def _as_buffer(b):
    return b.buffer if hasattr(b, "buffer") and not isinstance(b, memoryview) else b


def _describe(obj):
    if isinstance(obj, tuple) and len(obj) == 3 and callable(obj[0]) and isinstance(obj[1], tuple):
        f, args, kwargs = obj
        for i, a in enumerate(args):
            if not _picklable(a):
                return f"argument {i} of {getattr(f, '__name__', 'function')} ({type(a).__name__})"
        for k, v in kwargs.items():
            if not _picklable(v):
                return f"keyword argument {k!r} of {getattr(f, '__name__', 'function')} ({type(v).__name__})"
        return f"function {getattr(f, '__name__', f)!r}"
    return f"object of type {type(obj).__name__}"


def _picklable(obj):
    try:
        cloudpickle.dumps(obj)
    except Exception:
        return False
    return True


class PrePickled:
    """``obj`` pickled now, to travel in many messages for the price of one pickling.

    ipyparallel's name and use: pass ``PrePickled(obj)`` wherever ``obj`` would go (an
    argument, a pushed value, the function itself); it unpickles to a copy of ``obj``
    on the other side.  Its large buffers still travel out of band, without a copy (so
    changing ``obj`` in place before a send changes what is sent).  Raises
    :class:`SerializationError` if ``obj`` cannot be pickled.
    """

    __slots__ = ("buffers", "data", "name")

    def __init__(self, obj):
        data, *self.buffers = serialize_object(obj)
        self.data = bytes(data)
        #: what reprs and results call it (the name of a function, else of its type)
        self.name = getattr(obj, "__name__", None) or type(obj).__name__

    def __repr__(self):
        return f"<PrePickled {self.name}>"

    def __reduce__(self):
        return _unpickle, (self.data, *(PickleBuffer(b) for b in self.buffers))


#: this module's classes that pickle by name and hold only plain data
_OWN_PICKLABLE_TYPES = frozenset({PrePickled, Reference, _OutOfBand})


def _unpickle(data, *buffers):
    return pickle.loads(data, buffers=buffers)


def pickled_once(obj):
    """:class:`PrePickled` ``obj``, or ``obj`` itself if it cannot be pickled (the
    message's own pickling then names the culprit).

    A ``map`` sends its function with every chunk; pickling a function by value is
    most of the cost of a small task's message.
    """
    try:
        return PrePickled(obj)
    except SerializationError:
        return obj


def pack_apply(f, args, kwargs, threshold=BUFFER_THRESHOLD):
    """Buffers of an ``apply_request``: ``f(*args, **kwargs)`` pickled together."""
    if not callable(f) and not isinstance(f, (Reference, PrePickled)):
        raise TypeError(f"apply needs a callable, not {type(f).__name__}")
    return serialize_object((f, wrap_buffers(tuple(args), threshold), wrap_buffers(dict(kwargs), threshold)), threshold)


def unpack_apply(buffers, namespace):
    """Return ``(f, args, kwargs)`` with every :class:`Reference` resolved in ``namespace``."""
    f, args, kwargs = deserialize_object(buffers)
    f = _resolve(f, namespace)
    return f, [_resolve(a, namespace) for a in args], {k: _resolve(v, namespace) for k, v in kwargs.items()}


def _resolve(obj, namespace):
    if isinstance(obj, Reference):
        return obj.resolve(namespace)
    if type(obj) in (list, tuple):
        return type(obj)(_resolve(o, namespace) for o in obj)
    if type(obj) is dict:
        return {k: _resolve(v, namespace) for k, v in obj.items()}
    return obj
