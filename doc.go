// Package mortar is the root of mortar's Go SDK: the backbone between
// microservices. Today it holds the version; the connection to a mortar
// node (Dial, Conn) arrives with the control plane.
//
// The parts:
//   - [github.com/mortarhq/mortar/rpc]: service-to-service calls over the
//     ZeroRPC protocol (ZeroMQ ZMTP 3 and MessagePack), interoperable with
//     zerorpc-python and zerorpc-node.
package mortar
