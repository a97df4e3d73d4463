"""Imports zerorpc-python from the checkout MORTAR_ZERORPC_PYTHON names.

zerorpc-python is not packaged for Debian, so the interop tests that use it
run only when MORTAR_ZERORPC_PYTHON points at a checkout (the directory
holding the zerorpc package). Its dependencies (pyzmq, msgpack, gevent,
future) come from Debian: python3-zmq python3-msgpack python3-gevent
python3-future.
"""

import collections
import inspect
import os
import sys

# zerorpc-python's introspection calls inspect.getargspec, gone in Python 3.11.
if not hasattr(inspect, "getargspec"):
    ArgSpec = collections.namedtuple("ArgSpec", "args varargs keywords defaults")

    def getargspec(f):
        s = inspect.getfullargspec(f)
        return ArgSpec(s.args, s.varargs, s.varkw, s.defaults)
    inspect.getargspec = getargspec

if os.environ.get("MORTAR_ZERORPC_PYTHON"):
    sys.path.insert(0, os.environ["MORTAR_ZERORPC_PYTHON"])

import zerorpc  # noqa: E402

__all__ = ["zerorpc"]
