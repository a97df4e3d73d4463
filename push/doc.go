// Package push is the SDK of mortar's push gateway: long connections
// from devices and browsers to the nodes, with heartbeats, and pushes to
// a client ID, a user, a channel or everyone, wherever in the cluster the
// target is connected. docs/push.md in the repository is the protocol.
//
// # Pushing from a backend
//
// A [Client] on a [mortar.Conn] sends and inspects:
//
//	pc, _ := push.New(conn, nil)
//	pc.Send(ctx, push.ToClient("phone-1"), map[string]string{"title": "hello"}, nil)
//	pc.Send(ctx, push.ToChannel("news"), "breaking", nil)
//	res, _ := pc.Send(ctx, push.ToUser("alice"), "ping", &push.SendOpts{Ack: true})
//
// [Client.Send] takes any value that encodes to JSON. With
// [SendOpts.Ack] it waits for the connections to acknowledge. A push to a
// target with no connection is not an error: pushes are not stored,
// except a channel's recent history ([Client.History]). [Client.Conns]
// and [Client.Presence] list connections across the cluster;
// [Client.Subscribe] and [Client.Unsubscribe] change a client's channels
// from the server side; [Client.Disconnect] closes a client's
// connections.
//
// # Connect tokens
//
// A device proves its client ID with a token signed with the node's push
// secret: [SignToken] in a Go backend, any JWT library (HS256) elsewhere,
// or [Client.Token] to have a node sign it. [Claims] name the client ID,
// the user, an expiry and channels to subscribe at connect.
//
// # Devices
//
// A [Device] is the client end of one long connection, for Go programs
// (WebSocket ws:// or wss://, or length-prefixed TCP tcp://; JSON or
// msgpack). It reconnects with full-jitter backoff, subscribes again to
// its channels and recovers the messages it missed while away:
//
//	d, _ := push.NewDevice(&push.DeviceConfig{
//		URL:    "ws://127.0.0.1:7070/push/ws",
//		Token:  tok,
//		OnPush: func(p push.Push) { fmt.Printf("%s\n", p.Data) },
//	})
//	d.Start(ctx)
//	d.Subscribe(ctx, "news")
//
// Browsers use the JavaScript client every node serves at
// /push/mortar-push.js; /push/demo shows pushes arriving live.
package push
