// Package mortar is the root of mortar's Go SDK: the backbone between
// microservices. It holds the connection to a mortar node (Dial, Conn),
// the error codes every part shares, and the version.
//
// A node admits only clients with a credential (Options.Token: an API key
// or a session token; or Options.User and Password). A client on the
// node's machine given none uses the node's local admin credential
// (LocalToken). docs/security.md explains.
//
// The parts:
//   - [github.com/mortarhq/mortar/rpc]: service-to-service calls over the
//     ZeroRPC protocol (ZeroMQ ZMTP 3 and MessagePack), interoperable with
//     zerorpc-python and zerorpc-node.
//   - [github.com/mortarhq/mortar/registry], [github.com/mortarhq/mortar/config],
//     [github.com/mortarhq/mortar/task], [github.com/mortarhq/mortar/push]:
//     service discovery, the configuration center, the task queue and the
//     push gateway.
//   - [github.com/mortarhq/mortar/auth]: permissions, subjects, passwords,
//     tokens, and the Verifier that checks RPC calls.
package mortar
