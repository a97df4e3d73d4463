#!/usr/bin/python3
"""zpeer: a small ZeroRPC peer written from scratch on pyzmq and msgpack.

It is an independent implementation of the wire protocol (not zerorpc-python)
for mortar's interop tests:

    zpeer.py client ENDPOINT [--heartbeat S] [--skip-slow]
        runs the conformance checks of checks.py against a TestService
        server, one JSON line per check; exits 0 iff all passed.
    zpeer.py server ENDPOINT [--heartbeat S]
        serves TestService on a ROUTER socket, prints "listening ENDPOINT"
        once bound, and runs until SIGTERM or EOF on stdin.

The wire: a DEALER's message is [b"", payload], a ROUTER sees [identity,
b"", payload]; payload is msgpack [header, name, args] with header
{"message_id": bytes, "v": 3} plus, after a channel's first event,
"response_to": the first event's message_id. Both ends heartbeat every open
channel (_zpc_hb) and give up after two silent intervals; a sender may send
one event on credit and one more per slot granted by _zpc_more.
"""

import argparse
import heapq
import inspect
import os
import signal
import sys
import time
import traceback
import uuid

import msgpack
import zmq

from checks import METHODS, NAME, Adapter, Remote, run, typeof

WINDOW = 100  # stream items a client lets a server send ahead, as zerorpc-python


def pack(header, name, args):
    return msgpack.packb([header, name, args], use_bin_type=True)


def unpack(payload):
    return msgpack.unpackb(payload, raw=False, strict_map_key=False)


def new_id():
    return uuid.uuid4().bytes


def header_for(channel_id=None, extra=None, message_id=None):
    h = {"message_id": message_id or new_id(), "v": 3}
    if channel_id is not None:
        h["response_to"] = channel_id
    h.update(extra or {})
    return h


# ---------------------------------------------------------------- client


class Call:
    """One channel opened by the client: a call and the events it got."""

    def __init__(self, client, method):
        self.client, self.method, self.id = client, method, new_id()
        self.items, self.reply, self.done = [], None, False  # reply: (name, args)
        self.reserved = 1  # events the server may send before it needs _zpc_more
        self.manual = False  # True: the caller grants _zpc_more itself
        self.last_seen = self.last_hb = time.monotonic()

    def get(self, timeout=15):
        self.client.wait(self, timeout)
        name, args = self.reply
        if name == "OK":
            return args[0]
        if name == "ERR":
            raise Remote(*args)
        raise RuntimeError("%s: %s" % (name, args))


class Client(Adapter):
    def __init__(self, endpoint, heartbeat):
        self.sock = zmq.Context.instance().socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)
        self.hb, self.calls, self.problems = heartbeat, {}, []

    def start(self, method, args, extra_header=None):
        call = Call(self, method)
        self.calls[call.id] = call
        self.sock.send_multipart([b"", pack(header_for(None, extra_header, call.id), method, list(args))])
        return call

    def send_on(self, call, name, args):
        self.sock.send_multipart([b"", pack(header_for(call.id), name, args)])

    def wait(self, call, timeout):
        self.pump(time.monotonic() + timeout, call)
        if not call.done:
            self.finish(call, "TIMEOUT", "no reply within %ss" % timeout)

    def pump(self, until, call=None):
        """Handles events and heartbeats until the time until, or call is done."""
        while not (call and call.done) and time.monotonic() < until:
            if self.sock.poll(min(50, max(1, (until - time.monotonic()) * 1000))):
                while True:
                    try:
                        frames = self.sock.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    self.dispatch(frames)
            self.tick()

    def finish(self, call, name, args):
        call.reply, call.done = (name, args), True
        self.calls.pop(call.id, None)

    def problem(self, what):
        if what not in self.problems:
            self.problems.append(what)

    def dispatch(self, frames):
        if len(frames) != 2 or frames[0] != b"":
            self.problem("envelope of %d frames" % len(frames))
        header, name, args = unpack(frames[-1])
        if header.get("v") != 3 or not isinstance(header.get("message_id"), bytes):
            self.problem("%s header %r: want v 3 and a bin message_id" % (name, header))
        rt = header.get("response_to")
        call = self.calls.get(rt)
        if call is None:
            if name not in ("_zpc_hb", "_zpc_more"):  # late ones are harmless
                self.problem("%s for unknown channel %r" % (name, rt))
            return
        call.last_seen = time.monotonic()
        if name in ("_zpc_hb", "_zpc_more"):
            return
        if call.reserved <= 0:
            self.problem("%s: %s sent without credit" % (call.method, name))
        call.reserved -= 1
        if name == "STREAM":
            call.items.append(args)
            # zerorpc-python's BufferedChannel: once the first event is
            # consumed, top the window up whenever less than half is left.
            if not call.manual and call.reserved < WINDOW // 2:
                self.send_on(call, "_zpc_more", [WINDOW - call.reserved])
                call.reserved = WINDOW
            return
        if name == "STREAM_DONE" and args is not None:
            self.problem("STREAM_DONE args %r, want nil" % (args,))
        if name == "ERR" and (not isinstance(args, list) or len(args) != 3):
            self.problem("ERR args %r, want [name, message, traceback]" % (args,))
        self.finish(call, name, args)

    def tick(self):
        now = time.monotonic()
        for call in list(self.calls.values()):
            if now - call.last_seen > 2 * self.hb:
                self.finish(call, "LOST", "no event for %.1fs (heartbeat %ss)" % (now - call.last_seen, self.hb))
            elif now - call.last_hb >= self.hb:
                call.last_hb = now
                self.send_on(call, "_zpc_hb", [0])

    # The checks.Adapter interface.

    def call(self, method, *args):
        return self.start(method, args).get()

    def call_async(self, method, *args):
        return self.start(method, args)

    def call_with_header(self, header, method, *args):
        return self.start(method, args, header).get()

    def stream(self, method, *args):
        call = self.start(method, args)
        self.wait(call, 15)
        name, rargs = call.reply
        if name == "STREAM_DONE":
            return call.items, None
        if name == "ERR":
            return call.items, Remote(*rargs)
        raise RuntimeError("stream ended with %s %r after %d items" % (name, rargs, len(call.items)))

    def grant(self, call, n):
        self.send_on(call, "_zpc_more", [n])
        call.reserved += n

    def extra_checks(self):
        def flow_control():
            # A consumer that grants nothing for a while: the server must
            # stop at its credit (1 event, then what _zpc_more grants).
            call = self.start("count", [250])
            call.manual = True
            for more, credit in ((0, 1), (100, 101)):
                if more:
                    self.grant(call, more)
                self.pump(time.monotonic() + 0.3, call)
                assert len(call.items) == credit, "%d items sent on a credit of %d" % (len(call.items), credit)
            self.grant(call, 200)
            self.wait(call, 15)
            assert call.reply == ("STREAM_DONE", None) and call.items == list(range(250)), \
                "got %d items then %r" % (len(call.items), call.reply)
            return "1 item on credit, 100 more per _zpc_more [100], then the rest"

        def wire():
            more = " (and %d more)" % (len(self.problems) - 5) if len(self.problems) > 5 else ""
            assert not self.problems, "; ".join(self.problems[:5]) + more
            return "every reply: v 3, bin message_id, response_to = our id, credits respected"
        return [("flow_control", flow_control), ("wire", wire)]


# ---------------------------------------------------------------- server


class TestError(Exception):
    pass


class Later:
    """A result sent after a delay, without blocking other calls."""

    def __init__(self, seconds, value):
        self.seconds, self.value = seconds, value


def hello():
    """Return the string 'hello'."""
    return "hello"


def echo(x):
    """Return x unchanged."""
    return x


def add(a, b):
    """Return a + b."""
    for v in (a, b):
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise TypeError("unsupported operand types for +: %r and %r" % (typeof(a), typeof(b)))
    return a + b


def fail(msg):
    """Raise TestError(msg)."""
    raise TestError(msg)


def count(n):
    """Stream the integers 0..n-1."""
    yield from range(n)


def count_then_fail(n, msg):
    """Stream 0..n-1, then raise TestError(msg)."""
    yield from range(n)
    raise TestError(msg)


def sleep(seconds):
    """Sleep for seconds, then return seconds."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds <= 86400:
        raise TypeError("seconds must be a number from 0 to 86400")
    return Later(seconds, seconds)


def header(key):
    """Return the value of key in the request event header, or nil."""
    raise AssertionError("Server.builtins serves it: it needs the request header")


SERVICE = {f.__name__: f for f in (hello, echo, add, typeof, fail, count, count_then_fail, sleep, header)}


def describe(f):
    return list(inspect.signature(f).parameters), inspect.getdoc(f)


assert {m: describe(f) for m, f in SERVICE.items()} == METHODS, "SERVICE out of step with checks.METHODS"


class Channel:
    """A channel a client opened: one call, its credits and its replies."""

    def __init__(self, envelope, request_header):
        self.envelope, self.header = envelope, request_header
        self.id = request_header["message_id"]
        self.credits, self.outbox, self.stream, self.closed = 1, [], None, False
        self.last_seen = self.last_hb = time.monotonic()


class Server:
    def __init__(self, endpoint, heartbeat):
        self.sock = zmq.Context.instance().socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.bind(endpoint)
        self.hb, self.channels, self.timers, self.seq = heartbeat, {}, [], 0
        self.stopping = False

    def builtins(self, ch):
        """zerorpc's introspection methods, and header(), which reads ch."""
        described = {m: describe(f) for m, f in SERVICE.items()}

        def method(m):
            if m not in described:
                raise NameError(m)
            return described[m]
        return {
            "_zerorpc_inspect": lambda: {"name": NAME, "methods": {
                m: {"args": [{"name": a} for a in args], "doc": doc} for m, (args, doc) in described.items()}},
            "_zerorpc_ping": lambda: ["pong", NAME],
            "_zerorpc_name": lambda: NAME,
            "_zerorpc_list": lambda: sorted(SERVICE),
            "_zerorpc_help": lambda m: method(m)[1],
            "_zerorpc_args": lambda m: [method(m)[0], None, None, None],
            "header": lambda key: ch.header.get(key),
        }

    def serve(self):
        print("listening", self.sock.getsockopt_string(zmq.LAST_ENDPOINT), flush=True)
        poller = zmq.Poller()
        poller.register(self.sock, zmq.POLLIN)
        poller.register(sys.stdin.fileno(), zmq.POLLIN)
        while not self.stopping:
            wait = self.hb / 4
            if self.timers:
                wait = min(wait, max(0, self.timers[0][0] - time.monotonic()))
            ready = dict(poller.poll(wait * 1000))
            if self.sock in ready:
                while True:
                    try:
                        self.handle(self.sock.recv_multipart(zmq.NOBLOCK))
                    except zmq.Again:
                        break
            if sys.stdin.fileno() in ready and not os.read(sys.stdin.fileno(), 4096):
                break  # EOF: the test is done with us
            while self.timers and self.timers[0][0] <= time.monotonic():
                heapq.heappop(self.timers)[2]()
            self.tick()
        self.sock.close()

    def handle(self, frames):
        envelope, payload = frames[:-1], frames[-1]
        try:
            header, name, args = unpack(payload)
        except Exception as e:
            print("dropped malformed event:", e, file=sys.stderr)
            return
        if not isinstance(header, dict):
            header = {}
        rt = header.get("response_to")
        if rt is not None:  # an event on an open channel
            ch = self.channels.get((envelope[0], rt))
            if ch is not None:
                ch.last_seen = time.monotonic()
                if name == "_zpc_more":
                    ch.credits += int(args[0])
                    self.flush(ch)
            return
        if "message_id" not in header:
            return
        ch = Channel(envelope, header)
        self.channels[(envelope[0], ch.id)] = ch
        self.call(ch, name, args if isinstance(args, list) else [])

    def call(self, ch, name, args):
        try:
            fn = self.builtins(ch).get(name) or SERVICE.get(name)
            if fn is None:
                raise NameError(name)
            inspect.signature(fn).bind(*args)  # TypeError for a wrong arity
            result = fn(*args)
        except Exception as e:
            return self.reply(ch, "ERR", error_args(e))
        if inspect.isgenerator(result):
            ch.stream = result
            self.flush(ch)
        elif isinstance(result, Later):
            self.seq += 1
            heapq.heappush(self.timers, (time.monotonic() + result.seconds, self.seq,
                                         lambda: self.reply(ch, "OK", [result.value])))
        else:
            self.reply(ch, "OK", [result])

    def reply(self, ch, name, args):
        ch.outbox.append((name, args))
        self.flush(ch)

    def flush(self, ch):
        """Sends what the client has granted room for; pulls stream items."""
        while ch.credits > 0 and not ch.closed:
            if not ch.outbox and ch.stream is not None:
                try:
                    ch.outbox.append(("STREAM", next(ch.stream)))
                except StopIteration:
                    ch.outbox.append(("STREAM_DONE", None))
                    ch.stream = None
                except Exception as e:
                    ch.outbox.append(("ERR", error_args(e)))
                    ch.stream = None
            if not ch.outbox:
                return
            name, args = ch.outbox.pop(0)
            ch.credits -= 1
            self.send(ch, name, args)
            if name != "STREAM":
                self.close(ch)

    def send(self, ch, name, args):
        self.sock.send_multipart(ch.envelope + [pack(header_for(ch.id), name, args)])

    def close(self, ch):
        ch.closed = True
        self.channels.pop((ch.envelope[0], ch.id), None)

    def tick(self):
        now = time.monotonic()
        for ch in list(self.channels.values()):
            if now - ch.last_seen > 2 * self.hb:
                print("lost remote on channel %r" % ch.id, file=sys.stderr)
                self.close(ch)
            elif now - ch.last_hb >= self.hb:
                ch.last_hb = now
                self.send(ch, "_zpc_hb", [0])


def error_args(e):
    tb = "".join(traceback.format_exception(type(e), e, e.__traceback__))
    return [type(e).__name__, str(e), tb]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("role", choices=["client", "server"])
    p.add_argument("endpoint")
    p.add_argument("--heartbeat", type=float, default=5, help="heartbeat interval in seconds")
    p.add_argument("--skip-slow", action="store_true", help="client: skip the slow heartbeat check")
    a = p.parse_args()
    if a.role == "client":
        client = Client(a.endpoint, a.heartbeat)
        ok = run(client, a.skip_slow)
        client.sock.close()
        sys.exit(0 if ok else 1)
    try:
        server = Server(a.endpoint, a.heartbeat)
    except zmq.ZMQError as e:
        sys.exit("bind %s: %s" % (a.endpoint, e))

    def stop(*_):
        server.stopping = True
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.serve()


if __name__ == "__main__":
    main()
