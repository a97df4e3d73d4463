// Loads zerorpc-node 0.9.8 on zeromq 6.
//
// zerorpc-node only installs with its zeromq dependency overridden to 6.x
// (package.json), and zeromq 6 keeps the v5 API zerorpc-node uses only as
// "zeromq/v5-compat": alias that module before zerorpc requires "zeromq".
"use strict";

var compat = require("zeromq/v5-compat");
var path = require.resolve("zeromq");
require.cache[path] = { id: path, filename: path, loaded: true, exports: compat };

module.exports = require("zerorpc");
