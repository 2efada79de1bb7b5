"""The wire layer: framing and signing, serialization, connection files, protocol.

Imports nothing else of kernelpar's (except the version), so every other package can
use it: ``session`` (Jupyter framing with HMAC-SHA256), ``serialize`` (pickle protocol 5
with out-of-band buffers), ``connection`` (connection files, versions), ``protocol``
(the sockets and messages), ``zmqtwisted`` (a zmq socket on a Twisted reactor),
``furl`` and ``furlrequest`` (IPython 0.10's FURL files and the handshake behind them).
"""
