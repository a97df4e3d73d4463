#!/usr/bin/python3
"""TestService served by the real zerorpc-python (zerorpc.Server).

    MORTAR_ZERORPC_PYTHON=/path/to/zerorpc-python server.py ENDPOINT [--heartbeat S]

Prints "listening ENDPOINT" once bound, serves until SIGTERM or EOF on stdin.
"""

import argparse
import os
import signal
import sys

import gevent
import gevent.local
import gevent.select

from zerorpc_compat import zerorpc

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
from checks import typeof  # noqa: E402

_task = gevent.local.local()  # the request header of the call a greenlet serves


class HeaderCapture:
    """zerorpc middleware: remember each request's header for header()."""

    def load_task_context(self, event_header):
        _task.header = event_header


class TestError(Exception):
    pass


def hello():
    """Return the string 'hello'."""
    return "hello"


def echo(x):
    """Return x unchanged."""
    return x


def add(a, b):
    """Return a + b."""
    return a + b


def fail(msg):
    """Raise TestError(msg)."""
    raise TestError(msg)


@zerorpc.stream
def count(n):
    """Stream the integers 0..n-1."""
    return iter(range(n))


@zerorpc.stream
def count_then_fail(n, msg):
    """Stream 0..n-1, then raise TestError(msg)."""
    yield from range(n)
    raise TestError(msg)


def sleep(seconds):
    """Sleep for seconds, then return seconds."""
    gevent.sleep(seconds)
    return seconds


def header(key):
    """Return the value of key in the request event header, or nil."""
    return getattr(_task, "header", {}).get(key)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("endpoint")
    p.add_argument("--heartbeat", type=float, default=5)
    a = p.parse_args()
    zerorpc.Context.get_instance().register_middleware(HeaderCapture())
    methods = {f.__name__: f for f in (hello, echo, add, typeof, fail, count, count_then_fail, sleep, header)}
    server = zerorpc.Server(methods, name="TestService", heartbeat=a.heartbeat)
    server.bind(a.endpoint)
    print("listening", a.endpoint, flush=True)

    def stdin_eof():
        while True:
            gevent.select.select([sys.stdin.fileno()], [], [])
            if not os.read(sys.stdin.fileno(), 4096):
                return
    watcher = gevent.spawn(stdin_eof)
    gevent.signal_handler(signal.SIGTERM, watcher.kill)
    serving = gevent.spawn(server.run)
    gevent.joinall([watcher, serving], count=1)
    server.stop()
    server.close()


if __name__ == "__main__":
    main()
