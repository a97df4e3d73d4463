// TestService served by zerorpc-node's zerorpc.Server.
//
//     node server.js ENDPOINT [--heartbeat S]
//
// Prints "listening ENDPOINT" once bound, serves until SIGTERM or EOF on
// stdin. zerorpc-node passes each method its arguments plus a trailing
// reply(error, item, more) callback, and derives _zerorpc_inspect's argument
// names from the functions' source, so each method is written out with its
// parameters. What zerorpc-node itself cannot do (and the Go tests skip):
// unknown methods get no reply at all, there is no _zerorpc_name,
// _zerorpc_list or _zerorpc_help, _zerorpc_ping answers ["pong", ""],
// _zerorpc_inspect has empty docs, and methods cannot see the request
// header (header() always returns nil).
"use strict";

var zerorpc = require("./zerorpc");

function TestService() {} // its name is what _zerorpc_inspect reports

function testError(msg) {
    var e = new Error(msg);
    e.name = "TestError";
    return e;
}

// replyFor checks the number of arguments a method got (zerorpc-node
// does not) and returns the reply callback, always the last argument, or
// null after sending a TypeError.
function replyFor(args, want, name) {
    var reply = args[args.length - 1];
    if (args.length - 1 !== want) {
        reply(new TypeError(name + "() takes " + want + " arguments (" + (args.length - 1) + " given)"));
        return null;
    }
    return reply;
}

function typeOf(x) {
    if (x === null || x === undefined) return "nil";
    if (typeof x === "boolean") return "bool";
    if (typeof x === "number") return Number.isInteger(x) ? "int" : "float";
    if (typeof x === "string") return "str";
    if (Buffer.isBuffer(x)) return "bin";
    if (Array.isArray(x)) return "array";
    return "map";
}

// stream sends items as STREAM events, then STREAM_DONE, or err as ERR.
// The first reply(null, undefined, true) marks the reply as a stream (it
// sends nothing): without it an empty stream would be sent as OK [nil].
function stream(reply, items, err) {
    reply(null, undefined, true);
    items.forEach(function(item) { reply(null, item, true); });
    if (err) reply(err); else reply();
}

TestService.prototype.hello = function(reply) {
    if ((reply = replyFor(arguments, 0, "hello"))) reply(null, "hello");
};

TestService.prototype.echo = function(x, reply) {
    if ((reply = replyFor(arguments, 1, "echo"))) reply(null, x);
};

TestService.prototype.add = function(a, b, reply) {
    if (!(reply = replyFor(arguments, 2, "add"))) return;
    if (typeof a !== "number" || typeof b !== "number") {
        return reply(new TypeError("unsupported operand types for +: '" + typeOf(a) + "' and '" + typeOf(b) + "'"));
    }
    reply(null, a + b);
};

TestService.prototype.typeof = function(x, reply) {
    if ((reply = replyFor(arguments, 1, "typeof"))) reply(null, typeOf(x));
};

TestService.prototype.fail = function(msg, reply) {
    if ((reply = replyFor(arguments, 1, "fail"))) reply(testError(msg));
};

TestService.prototype.count = function(n, reply) {
    if (!(reply = replyFor(arguments, 1, "count"))) return;
    var items = [];
    for (var i = 0; i < n; i++) items.push(i);
    stream(reply, items);
};

TestService.prototype.count_then_fail = function(n, msg, reply) {
    if (!(reply = replyFor(arguments, 2, "count_then_fail"))) return;
    var items = [];
    for (var i = 0; i < n; i++) items.push(i);
    stream(reply, items, testError(msg));
};

TestService.prototype.sleep = function(seconds, reply) {
    if (!(reply = replyFor(arguments, 1, "sleep"))) return;
    if (typeof seconds !== "number" || seconds < 0 || seconds > 86400) {
        return reply(new TypeError("seconds must be a number from 0 to 86400"));
    }
    setTimeout(function() { reply(null, seconds); }, seconds * 1000);
};

TestService.prototype.header = function(key, reply) {
    if ((reply = replyFor(arguments, 1, "header"))) reply(null, null);
};

function main() {
    var argv = process.argv.slice(2);
    var endpoint = argv[0];
    var heartbeat = 5;
    var i = argv.indexOf("--heartbeat");
    if (i >= 0) heartbeat = Number(argv[i + 1]);
    if (!endpoint || !(heartbeat > 0)) {
        console.error("usage: node server.js ENDPOINT [--heartbeat SECONDS]");
        process.exit(2);
    }
    var server = new zerorpc.Server(new TestService(), heartbeat * 1000);
    server.on("error", function(err) { console.error("server error:", err); });
    try {
        server.bind(endpoint);
    } catch (e) {
        console.error("bind " + endpoint + ": " + e.message);
        process.exit(1);
    }
    console.log("listening " + endpoint);
    var stop = function() {
        server.close();
        process.exit(0);
    };
    process.on("SIGTERM", stop);
    process.stdin.on("end", stop);
    process.stdin.resume();
}

main();
