"""Small functions that views send to engines (``push``, ``pull``, ``map``, imports).

They live in an importable module, so they are pickled *by reference* under every
serializer mode (``use_pickle`` included) and the engine imports them from its own
kernelpar.  The engine's user namespace reaches them as an argument,
``Reference("globals()")``, which the engine evaluates in that namespace: no function here
depends on which globals it was given.
"""

from ..wire.serialize import Reference

#: evaluates, on the engine, to the engine's user namespace
USER_NAMESPACE = Reference("globals()")


def update_namespace(namespace, values):
    """``push``: bind every name of ``values`` in the user namespace."""
    namespace.update(values)


def identity(value):
    """``pull``: the argument was a :class:`Reference` already resolved by the engine."""
    return value


def map_chunk(f, *sequences):
    """``map``: one engine's share of the calls, as a list."""
    return list(map(f, *sequences))


def import_module(namespace, name, fromlist, level):
    """``sync_imports``: run one ``import`` statement in the user namespace."""
    module = __import__(name, namespace, namespace, fromlist, level)
    if fromlist:
        for attr in fromlist:
            if attr == "*":
                public = getattr(module, "__all__", None) or [n for n in vars(module) if not n.startswith("_")]
                namespace.update({n: getattr(module, n) for n in public})
            else:
                namespace[attr] = getattr(module, attr)
    else:
        namespace[name.partition(".")[0]] = module
