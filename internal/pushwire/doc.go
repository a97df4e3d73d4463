// Package pushwire is the wire format of mortar's push gateway: WebSocket
// framing (RFC 6455), length-prefixed TCP framing, and (elsewhere in the
// package) the protocol messages and connect tokens.
//
// The gateway runs connections on an event loop, so the decoders are
// incremental: [WSReader.Feed] and [FrameReader.Feed] take bytes in
// whatever chunks the network delivers and call back once per complete
// message. A reader keeps only the incomplete tail of the stream, and only
// while a frame is incomplete, so an idle connection holds no buffer.
// Encoders append to a caller's slice ([AppendFrame], [AppendClose],
// [AppendLenFrame]).
//
// The WebSocket opening handshake has a server half that runs in a
// net/http handler before it hijacks the connection ([CheckUpgrade],
// [SelectProtocol], [AppendUpgradeResponse]) and a client half over a raw
// net.Conn ([ClientHandshake]).
package pushwire
