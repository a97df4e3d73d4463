"""TestService conformance checks, shared by the Python client peers.

zpeer.py (raw pyzmq + msgpack) and ../zerorpc-python/client.py (the real
zerorpc library) each wrap their client in a small adapter and call run().
Every check prints one JSON line {"check": NAME, "ok": BOOL, "detail": ...},
plus "skipped": true for a check the peer cannot express. rpc/interop_test.go
parses these lines; node/client.js prints the same check names.
"""

import json
import time


def typeof(x):
    """Return the msgpack type name of x."""
    for t, name in ((type(None), "nil"), (bool, "bool"), (int, "int"), (float, "float"),
                    (str, "str"), (bytes, "bin"), (list, "array"), (dict, "map")):
        if isinstance(x, t):
            return name
    return type(x).__name__


NAME = "TestService"

# TestService's methods: argument names and docs, as every server reports them.
METHODS = {
    "hello": ([], "Return the string 'hello'."),
    "echo": (["x"], "Return x unchanged."),
    "add": (["a", "b"], "Return a + b."),
    "typeof": (["x"], "Return the msgpack type name of x."),
    "fail": (["msg"], "Raise TestError(msg)."),
    "count": (["n"], "Stream the integers 0..n-1."),
    "count_then_fail": (["n", "msg"], "Stream 0..n-1, then raise TestError(msg)."),
    "sleep": (["seconds"], "Sleep for seconds, then return seconds."),
    "header": (["key"], "Return the value of key in the request event header, or nil."),
}

# echo's round trips: check label, value. The labels match node/client.js
# and the Go conformance tests.
ECHO = [
    ("nil", None), ("true", True), ("false", False),
    ("0", 0), ("1", 1), ("-1", -1), ("uint64_max", 2**64 - 1), ("int64_min", -2**63),
    ("1.5", 1.5), ("empty_str", ""), ("utf8_str", "h\u00e9llo"),
    ("empty_bin", b""), ("bin", b"\x00\xff"),
    ("array", [1, "a", b"b"]), ("map", {"k": [1, 2]}),
    ("large_bin", bytes(range(256)) * 400),  # 100 KiB: ZMTP long frames both ways
]

TYPEOF = [
    ("nil", None), ("bool", True), ("int", 7), ("float", 1.5),
    ("str", "s"), ("bin", b"b"), ("array", [1]), ("map", {"a": 1}),
]


class Remote(Exception):
    """An ERR reply: zerorpc's (name, message, traceback)."""

    def __init__(self, name, msg, traceback):
        super().__init__("%s: %s" % (name, msg))
        self.name, self.msg, self.traceback = name, msg, traceback


class Skip(Exception):
    """Raised by a check the peer cannot express."""


def same(a, b):
    """Equal values of exactly the same types (True is not 1, 1.0 is not 1)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(map(same, a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b


def short(v):
    r = repr(v)
    return r if len(r) <= 200 else "%s... (%d chars)" % (r[:200], len(r))


def want(got, expected):
    assert same(got, expected), "got %s (%s), want %s (%s)" % (
        short(got), type(got).__name__, short(expected), type(expected).__name__)
    return short(got)


def want_remote(fn, name, msg=None):
    try:
        got = fn()
    except Remote as e:
        assert e.name == name, "got ERR %r, want %s" % (e, name)
        assert msg is None or e.msg == msg, "got message %r, want %r" % (e.msg, msg)
        return e
    raise AssertionError("got %r, want ERR %s" % (got, name))


class Adapter:
    """What run() needs from a client. call raises Remote for ERR; stream
    returns (items, Remote or None); call_async returns an object whose
    get() waits for the result."""

    def call(self, method, *args):
        raise NotImplementedError

    def stream(self, method, *args):
        raise NotImplementedError

    def call_async(self, method, *args):
        raise NotImplementedError

    def call_with_header(self, header, method, *args):
        raise Skip("this client cannot add header keys")

    def extra_checks(self):
        """More (name, fn) checks, run after the common ones."""
        return []


def run(peer, skip_slow=False):
    """Runs every check against peer; returns whether all passed."""
    results = []

    def check(name, fn):
        line = {"check": name}
        try:
            line["ok"], line["detail"] = True, fn()
        except Skip as e:
            line.update(ok=True, detail="skipped: %s" % e, skipped=True)
        except AssertionError as e:
            line.update(ok=False, detail=str(e))
        except Exception as e:  # a transport failure, a timeout, a crash
            line.update(ok=False, detail="%s: %s" % (type(e).__name__, e))
        print(json.dumps(line), flush=True)
        results.append(line["ok"])

    check("hello", lambda: want(peer.call("hello"), "hello"))
    check("add/int", lambda: want(peer.call("add", 1, 2), 3))
    check("add/float", lambda: want(peer.call("add", 1, 2.5), 3.5))
    for label, v in ECHO:
        check("echo/" + label, lambda v=v: want(peer.call("echo", v), v))
    for label, v in TYPEOF:
        check("typeof/" + label, lambda v=v, label=label: want(peer.call("typeof", v), label))

    def fail():
        e = want_remote(lambda: peer.call("fail", "boom"), "TestError", "boom")
        assert e.traceback, "empty traceback"
        return "%r with a %d-char traceback" % (e, len(e.traceback))
    check("fail", fail)

    def count(n):
        items, err = peer.stream("count", n)
        assert err is None, "stream failed after %d items: %r" % (len(items), err)
        return want(items, list(range(n))) if n < 10 else "%d items in order" % len(items)
    for n in (5, 0, 300):
        check("count/%d" % n, lambda n=n: count(n))

    def count_then_fail():
        items, err = peer.stream("count_then_fail", 3, "late")
        want(items, [0, 1, 2])
        assert isinstance(err, Remote), "stream ended with %r, want ERR TestError" % (err,)
        assert (err.name, err.msg) == ("TestError", "late"), "got %r" % err
        return "items %r then %r" % (items, err)
    check("count_then_fail", count_then_fail)

    check("unknown_method", lambda: repr(want_remote(lambda: peer.call("no_such_method"), "NameError")))
    check("wrong_arity", lambda: repr(want_remote(lambda: peer.call("add", 1), "TypeError")))

    def concurrency():
        slow = peer.call_async("sleep", 1)
        t0 = time.monotonic()
        want(peer.call("hello"), "hello")
        dt = time.monotonic() - t0
        assert dt < 0.5, "hello took %.2fs while sleep(1) was in flight" % dt
        want(slow.get(), 1)
        return "hello took %.3fs while sleep(1) was in flight" % dt
    check("concurrency", concurrency)

    def heartbeat():
        if skip_slow:
            raise Skip("slow check (-short)")
        t0 = time.monotonic()
        want(peer.call("sleep", 2.5), 2.5)
        return "sleep(2.5) returned after %.2fs" % (time.monotonic() - t0)
    check("heartbeat", heartbeat)

    def header():
        got = peer.call_with_header({"x-token": "secret"}, "header", "x-token")
        want(got, "secret")
        want(peer.call("header", "x-absent"), None)
        return "x-token=%r" % got
    check("header", header)

    def inspect():
        r = peer.call("_zerorpc_inspect")
        assert r.get("name") == NAME, "name %r" % r.get("name")
        methods = r.get("methods", {})
        assert set(methods) == set(METHODS), "methods %s" % sorted(methods)
        for m, (args, doc) in METHODS.items():
            got = [a.get("name") for a in methods[m].get("args") or []]
            assert got == args, "%s args %r, want %r" % (m, got, args)
            assert methods[m].get("doc") == doc, "%s doc %r" % (m, methods[m].get("doc"))
        return "%d methods with args and docs" % len(methods)
    check("inspect", inspect)
    check("ping", lambda: want(peer.call("_zerorpc_ping"), ["pong", NAME]))
    check("name", lambda: want(peer.call("_zerorpc_name"), NAME))
    check("list", lambda: want(sorted(peer.call("_zerorpc_list")), sorted(METHODS)))
    check("help", lambda: want(peer.call("_zerorpc_help", "add"), METHODS["add"][1]))

    for name, fn in peer.extra_checks():
        check(name, fn)
    return all(results)
