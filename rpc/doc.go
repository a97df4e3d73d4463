// Package rpc is mortar's service-to-service RPC: the ZeroRPC protocol
// (v3) in Go, wire-compatible with zerorpc-python and zerorpc-node in both
// directions. It runs on ZeroMQ's ZMTP 3.1 over TCP (a [Server] is a
// ROUTER, a [Client] a DEALER) with MessagePack events; docs/protocol.md
// in the repository describes the wire as implemented.
//
// # Serving
//
// A [Server] exposes plain functions with [Server.Handle], or a struct's
// exported methods with [Server.HandleObject] (named in snake_case).
// Arguments are decoded from msgpack into the parameters' Go types; a
// parameter of type any receives the value with its msgpack type kept
// (str as string, bin as []byte, int as int64 or uint64, float as float32
// or float64). An optional leading context.Context is cancelled when the
// client's deadline passes, when it cancels, when its heartbeats stop, or
// when the server closes.
//
//	srv := rpc.NewServer(&rpc.ServerConfig{Name: "Calc"})
//	srv.Handle("add", func(a, b int) int { return a + b },
//		&rpc.MethodOpts{Doc: "Return a + b.", Args: []string{"a", "b"}})
//	err := srv.ListenAndServe("tcp://127.0.0.1:4242")
//
// A handler streams by taking a trailing send func(T) error, or by
// returning an iter.Seq[T] or iter.Seq2[T, error]. Returning an error
// sends zerorpc's ERR event; return a [*RemoteError] to choose the name
// the caller sees. [Server.Shutdown] finishes the calls in flight.
//
// Every server also answers zerorpc's built-ins: _zerorpc_inspect,
// _zerorpc_ping, _zerorpc_name, _zerorpc_list, _zerorpc_help and
// _zerorpc_args.
//
// # Calling
//
// A [Client] multiplexes any number of concurrent calls over one
// connection:
//
//	c, err := rpc.Dial(ctx, "tcp://127.0.0.1:4242", nil)
//	var sum int
//	err = c.Call(ctx, "add", &sum, 1, 2)
//	for item, err := range c.Stream(ctx, "count", 10) { … }
//
// The context's deadline travels to the server; cancelling it, or breaking
// out of a Stream loop, tells the server to stop. Remote errors come back
// as [*RemoteError]; a silent server fails the call with [ErrLostRemote],
// a broken connection with [ErrConnLost], and the next call redials.
//
// # Middleware
//
// An [Interceptor] wraps every call on a client or a server and sees the
// [Request], whose [Header] carries the event header: clients add keys
// (auth tokens, trace context), servers read them, and keys neither side
// knows pass through untouched. A handler reads its request with
// [RequestFromContext].
//
// # Heartbeats and limits
//
// Calls that run longer than the heartbeat interval (5 s, as zerorpc)
// exchange _zpc_hb on their channel; two silent intervals mean the peer is
// lost. Both ends must use the same interval. Incoming messages above
// MaxMessageSize disconnect the peer; a peer that does not read its
// replies is disconnected after WriteTimeout, without slowing other peers.
package rpc
