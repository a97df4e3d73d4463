// The TestService conformance checks (as ../python/checks.py), run with
// zerorpc-node's zerorpc.Client.
//
//     node client.js ENDPOINT [--heartbeat S] [--skip-slow]
//
// Prints one JSON line {"check", "ok", "detail"} per check ("skipped": true
// for what zerorpc-node cannot express) and exits 0 iff all passed.
"use strict";

var zerorpc = require("./zerorpc");

var NAME = "TestService";
var METHODS = {
    hello: [[], "Return the string 'hello'."],
    echo: [["x"], "Return x unchanged."],
    add: [["a", "b"], "Return a + b."],
    typeof: [["x"], "Return the msgpack type name of x."],
    fail: [["msg"], "Raise TestError(msg)."],
    count: [["n"], "Stream the integers 0..n-1."],
    count_then_fail: [["n", "msg"], "Stream 0..n-1, then raise TestError(msg)."],
    sleep: [["seconds"], "Sleep for seconds, then return seconds."],
    header: [["key"], "Return the value of key in the request event header, or nil."],
};

// msgpack-lite, zerorpc-node's codec, encodes numbers outside int32 as
// float64 and decodes 64-bit ints into lossy doubles: those echo checks
// are skipped (null value).
var NO_INT64 = "zerorpc-node (msgpack-lite) has no 64-bit integers";
var ECHO = [
    ["nil", null], ["true", true], ["false", false],
    ["0", 0], ["1", 1], ["-1", -1], ["uint64_max", NO_INT64], ["int64_min", NO_INT64],
    ["1.5", 1.5], ["empty_str", ""], ["utf8_str", "h\u00e9llo"],
    ["empty_bin", Buffer.alloc(0)], ["bin", Buffer.from([0, 0xff])],
    ["array", [1, "a", Buffer.from("b")]], ["map", { k: [1, 2] }],
    ["large_bin", largeBin()], // 100 KiB: ZMTP long frames both ways
];
var TYPEOF = [
    ["nil", null], ["bool", true], ["int", 7], ["float", 1.5],
    ["str", "s"], ["bin", Buffer.from("b")], ["array", [1]], ["map", { a: 1 }],
];

function largeBin() {
    var b = Buffer.alloc(256 * 400);
    for (var i = 0; i < b.length; i++) b[i] = i % 256;
    return b;
}

function Skip(reason) { this.reason = reason; }

function show(v) {
    var s = showFull(v);
    return s.length <= 200 ? s : s.slice(0, 200) + "... (" + s.length + " chars)";
}

function showFull(v) {
    if (Buffer.isBuffer(v)) return "<bin " + v.toString("hex") + ">";
    if (Array.isArray(v)) return "[" + v.map(showFull).join(", ") + "]";
    if (v && typeof v === "object") return "{" + Object.keys(v).map(function(k) { return JSON.stringify(k) + ": " + showFull(v[k]); }).join(", ") + "}";
    return JSON.stringify(v);
}

// same: equal values of the same JS types (int and float are both numbers
// in JS: zerorpc-node cannot tell them apart).
function same(a, b) {
    if (Buffer.isBuffer(a) || Buffer.isBuffer(b)) return Buffer.isBuffer(a) && Buffer.isBuffer(b) && a.equals(b);
    if (Array.isArray(a) || Array.isArray(b)) {
        return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every(function(x, i) { return same(x, b[i]); });
    }
    if (a && b && typeof a === "object" && typeof b === "object") {
        var ka = Object.keys(a).sort(), kb = Object.keys(b).sort();
        return same(ka, kb) && ka.every(function(k) { return same(a[k], b[k]); });
    }
    return a === b;
}

function want(got, expected) {
    if (!same(got, expected)) throw new Error("got " + show(got) + ", want " + show(expected));
    return show(got);
}

function main() {
    var argv = process.argv.slice(2);
    var endpoint = argv[0];
    var i = argv.indexOf("--heartbeat");
    var heartbeat = i >= 0 ? Number(argv[i + 1]) : 5;
    var skipSlow = argv.indexOf("--skip-slow") >= 0;
    if (!endpoint || !(heartbeat > 0)) {
        console.error("usage: node client.js ENDPOINT [--heartbeat SECONDS] [--skip-slow]");
        process.exit(2);
    }
    var client = new zerorpc.Client({ timeout: 15, heartbeatInterval: heartbeat * 1000 });
    client.on("error", function(err) { console.error("client error:", err); });
    client.connect(endpoint);

    // call resolves with an OK reply's result, rejects with the Error
    // zerorpc-node makes of an ERR (name, message, stack = traceback).
    function call(method) {
        var args = Array.prototype.slice.call(arguments, 1);
        return new Promise(function(resolve, reject) {
            client.invoke.apply(client, [method].concat(args, [function(err, res, more) {
                if (err) reject(err);
                else if (more) reject(new Error(method + " streamed; want a single result"));
                else resolve(res);
            }]));
        });
    }

    // stream resolves with {items, err}: the STREAM items, then the ERR if
    // the stream ended with one.
    function stream(method) {
        var args = Array.prototype.slice.call(arguments, 1);
        return new Promise(function(resolve, reject) {
            var items = [];
            client.invoke.apply(client, [method].concat(args, [function(err, res, more) {
                if (err) resolve({ items: items, err: err });
                else if (more) items.push(res);
                else if (res !== undefined) reject(new Error(method + " replied OK " + show(res) + "; want a stream"));
                else resolve({ items: items, err: null });
            }]));
        });
    }

    function wantRemote(promise, name, msg) {
        return promise.then(function(res) {
            throw new Error("got " + show(res) + ", want ERR " + name);
        }, function(err) {
            if (err.name !== name) throw new Error("got ERR " + err.name + ": " + err.message + ", want " + name);
            if (msg !== undefined && err.message !== msg) throw new Error("got message " + JSON.stringify(err.message) + ", want " + JSON.stringify(msg));
            return err;
        });
    }

    var allOK = true;
    async function check(name, fn) {
        var line = { check: name };
        try {
            line.ok = true;
            line.detail = await fn();
        } catch (e) {
            if (e instanceof Skip) {
                line.detail = "skipped: " + e.reason;
                line.skipped = true;
            } else {
                line.ok = false;
                line.detail = (e && e.name && e.name !== "Error" ? e.name + ": " : "") + (e && e.message || String(e));
            }
        }
        allOK = allOK && line.ok;
        console.log(JSON.stringify(line));
    }

    async function run() {
        await check("hello", async function() { return want(await call("hello"), "hello"); });
        await check("add/int", async function() {
            return want(await call("add", 1, 2), 3) + " (JS numbers hide int vs float)";
        });
        await check("add/float", async function() { return want(await call("add", 1, 2.5), 3.5); });
        for (var e of ECHO) {
            await check("echo/" + e[0], async function(v) {
                if (v === NO_INT64) throw new Skip(NO_INT64);
                return want(await call("echo", v), v);
            }.bind(null, e[1]));
        }
        for (var t of TYPEOF) {
            await check("typeof/" + t[0], async function(label, v) {
                return want(await call("typeof", v), label);
            }.bind(null, t[0], t[1]));
        }
        await check("fail", async function() {
            var err = await wantRemote(call("fail", "boom"), "TestError", "boom");
            if (!err.stack) throw new Error("empty traceback");
            return "TestError: boom with a " + err.stack.length + "-char traceback";
        });
        for (var n of [5, 0, 300]) {
            await check("count/" + n, async function(n) {
                var r = await stream("count", n);
                if (r.err) throw new Error("stream failed after " + r.items.length + " items: " + r.err.name + ": " + r.err.message);
                var want_ = [];
                for (var i = 0; i < n; i++) want_.push(i);
                want(r.items, want_);
                return n < 10 ? show(r.items) : r.items.length + " items in order";
            }.bind(null, n));
        }
        await check("count_then_fail", async function() {
            var r = await stream("count_then_fail", 3, "late");
            want(r.items, [0, 1, 2]);
            if (!r.err || r.err.name !== "TestError" || r.err.message !== "late") {
                throw new Error("stream ended with " + (r.err ? r.err.name + ": " + r.err.message : "STREAM_DONE") + ", want ERR TestError: late");
            }
            return "items " + show(r.items) + " then TestError: late";
        });
        await check("unknown_method", async function() {
            var err = await wantRemote(call("no_such_method"), "NameError");
            return err.name + ": " + err.message;
        });
        await check("wrong_arity", async function() {
            var err = await wantRemote(call("add", 1), "TypeError");
            return err.name + ": " + err.message;
        });
        await check("concurrency", async function() {
            var slow = call("sleep", 1);
            slow.catch(function() {}); // awaited below; not an unhandled rejection meanwhile
            var t0 = Date.now();
            want(await call("hello"), "hello");
            var dt = (Date.now() - t0) / 1000;
            if (dt >= 0.5) throw new Error("hello took " + dt + "s while sleep(1) was in flight");
            want(await slow, 1);
            return "hello took " + dt.toFixed(3) + "s while sleep(1) was in flight";
        });
        await check("heartbeat", async function() {
            if (skipSlow) throw new Skip("slow check (-short)");
            var t0 = Date.now();
            want(await call("sleep", 2.5), 2.5);
            return "sleep(2.5) returned after " + ((Date.now() - t0) / 1000).toFixed(2) + "s";
        });
        await check("header", async function() {
            throw new Skip("zerorpc-node's client cannot add header keys");
        });
        await check("inspect", async function() {
            var r = await call("_zerorpc_inspect");
            if (r.name !== NAME) throw new Error("name " + show(r.name));
            var methods = r.methods || {};
            want(Object.keys(methods).sort(), Object.keys(METHODS).sort());
            for (var m in METHODS) {
                var args = (methods[m].args || []).map(function(a) { return a.name; });
                if (!same(args, METHODS[m][0])) throw new Error(m + " args " + show(args) + ", want " + show(METHODS[m][0]));
                if (methods[m].doc !== METHODS[m][1]) throw new Error(m + " doc " + show(methods[m].doc));
            }
            return Object.keys(methods).length + " methods with args and docs";
        });
        await check("ping", async function() { return want(await call("_zerorpc_ping"), ["pong", NAME]); });
        await check("name", async function() { return want(await call("_zerorpc_name"), NAME); });
        await check("list", async function() {
            return want((await call("_zerorpc_list")).slice().sort(), Object.keys(METHODS).sort());
        });
        await check("help", async function() { return want(await call("_zerorpc_help", "add"), METHODS.add[1]); });
    }

    process.on("unhandledRejection", function(e) { console.error("unhandled rejection:", e); });
    run().then(function() {
        client.close();
        process.exit(allOK ? 0 : 1);
    }, function(e) {
        console.error(e);
        process.exit(2);
    });
}

main();
