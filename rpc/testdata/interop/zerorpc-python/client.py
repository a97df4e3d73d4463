#!/usr/bin/python3
"""The conformance checks of ../python/checks.py, run with zerorpc-python's
own zerorpc.Client.

    MORTAR_ZERORPC_PYTHON=/path/to/zerorpc-python client.py ENDPOINT [--heartbeat S] [--skip-slow]

Prints one JSON line per check; exits 0 iff all passed.
"""

import argparse
import os
import sys

from zerorpc_compat import zerorpc

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
from checks import Adapter, Remote, run  # noqa: E402


class ExtraHeader:
    """zerorpc middleware: adds self.keys to every request's header."""

    def __init__(self):
        self.keys = {}

    def get_task_context(self):
        return self.keys


class ZerorpcClient(Adapter):
    def __init__(self, endpoint, heartbeat):
        self.extra = ExtraHeader()
        zerorpc.Context.get_instance().register_middleware(self.extra)
        self.client = zerorpc.Client(endpoint, timeout=15, heartbeat=heartbeat)

    def call(self, method, *args):
        try:
            return self.client(method, *args)
        except zerorpc.RemoteError as e:
            raise Remote(e.name, e.msg, e.traceback)

    def call_async(self, method, *args):
        return self.client(method, *args, async_=True)

    def call_with_header(self, header, method, *args):
        self.extra.keys = header
        try:
            return self.call(method, *args)
        finally:
            self.extra.keys = {}

    def stream(self, method, *args):
        items = []
        try:
            for item in self.client(method, *args):
                items.append(item)
        except zerorpc.RemoteError as e:
            return items, Remote(e.name, e.msg, e.traceback)
        return items, None


def main():
    p = argparse.ArgumentParser()
    p.add_argument("endpoint")
    p.add_argument("--heartbeat", type=float, default=5)
    p.add_argument("--skip-slow", action="store_true")
    a = p.parse_args()
    peer = ZerorpcClient(a.endpoint, a.heartbeat)
    ok = run(peer, a.skip_slow)
    peer.client.close()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
