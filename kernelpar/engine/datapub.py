"""``publish_data``: send a namespace of Python objects from a running task to its client.

On an engine, ``publish_data({'step': i, 'partial': arr})`` sends one ``data_message`` on
iopub for the request being run; its content names the keys (``{"keys": [...]}``) and the
dict itself travels pickled in the message's buffer frames
(:func:`~kernelpar.wire.serialize.serialize_object`).  The client merges successive
publications into the task's ``metadata['data']`` (``dict.update``), readable as
``ar.data`` while the task still runs.

Call it from the code of the task (the engine's main thread).  Outside a task (idle
engine, or not an engine at all) there is nobody to send to: ``RuntimeError``.
"""

from ..wire.serialize import serialize_object

__all__ = ["publish_data"]


def publish_data(data):
    """Publish ``data`` (a dict: think of it as a namespace) to the client of the running task."""
    from .kernel import Kernel

    kernel = Kernel.instance
    if kernel is None or kernel.current is None:
        raise RuntimeError("publish_data() can only be called from code running on an engine")
    data = dict(data)
    frames = serialize_object(data)
    # the IO thread sends later: copy out-of-band buffers so that changing an array right
    # after publishing it does not change what is sent
    buffers = [frames[0], *(bytes(b) for b in frames[1:])]
    kernel.publish("data_message", {"keys": [str(k) for k in data]}, buffers)
