package pushwire

import (
	"encoding/json"
	"time"
)

// The node API operations of the push gateway (push.*), shared by the
// node and the SDK. docs/api.md lists them.

// SendRequest is push.send: data to exactly one of client, user, channel
// or all.
type SendRequest struct {
	Client  string          `json:"client,omitempty"`
	User    string          `json:"user,omitempty"`
	Channel string          `json:"channel,omitempty"`
	All     bool            `json:"all,omitempty"`
	Data    json.RawMessage `json:"data"`
	// Ack asks connections to acknowledge; the reply lists those that did
	// within AckWait (a Go duration, default 5s), or as soon as AckMin
	// (default 1) did.
	Ack     bool   `json:"ack,omitempty"`
	AckWait string `json:"ack_wait,omitempty"`
	AckMin  int    `json:"ack_min,omitempty"`
}

// SendReply is push.send's answer.
type SendReply struct {
	Offset uint64 `json:"offset,omitempty"` // the channel message's offset, when it keeps history
	Acks   []Ack  `json:"acks,omitempty"`
}

// ConnsRequest is push.conns and push.presence.
type ConnsRequest struct {
	Client  string `json:"client,omitempty"`
	User    string `json:"user,omitempty"`
	Channel string `json:"channel,omitempty"`
	Limit   int    `json:"limit,omitempty"` // default 100, at most 10000
}

// ConnsReply lists connections across the cluster.
type ConnsReply struct {
	Total int        `json:"total"` // matching connections on the nodes that answered
	Nodes int        `json:"nodes"` // nodes that answered
	Conns []ConnInfo `json:"conns"`
}

// HistoryRequest is push.history.
type HistoryRequest struct {
	Channel string `json:"channel"`
	After   uint64 `json:"after,omitempty"`
	Limit   int    `json:"limit,omitempty"`
}

// HistoryReply is a channel's retained messages.
type HistoryReply struct {
	Epoch  string        `json:"epoch"`
	Oldest uint64        `json:"oldest,omitempty"`
	Pubs   []Publication `json:"pubs"`
}

// ControlRequest is push.subscribe, push.unsubscribe and push.disconnect:
// the connections of a client or of a user, on every node.
type ControlRequest struct {
	Client  string `json:"client,omitempty"`
	User    string `json:"user,omitempty"`
	Channel string `json:"channel,omitempty"` // subscribe and unsubscribe
}

// ControlReply counts the connections acted on.
type ControlReply struct {
	Conns int `json:"conns"`
	Nodes int `json:"nodes"`
}

// TokenRequest is push.token: a connect token signed with the node's
// secret, for testing and for backends that do not sign their own.
type TokenRequest struct {
	Client   string   `json:"client"`
	User     string   `json:"user,omitempty"`
	Channels []string `json:"channels,omitempty"`
	TTL      string   `json:"ttl,omitempty"` // a Go duration; default 24h, "0" never expires
	// Perms limit what the connection may do (Claims.Perms); the caller
	// must hold each itself.
	Perms []string `json:"perms,omitempty"`
}

// TokenReply carries the token.
type TokenReply struct {
	Token   string    `json:"token"`
	Expires time.Time `json:"expires,omitzero"`
}

// ConnInfo describes one connection, for push.conns and presence.
type ConnInfo struct {
	Conn      string    `json:"conn"`
	Client    string    `json:"client"`
	User      string    `json:"user,omitempty"`
	Node      string    `json:"node"`
	Transport string    `json:"transport"`
	Encoding  string    `json:"encoding"`
	Remote    string    `json:"remote,omitempty"`
	Since     time.Time `json:"since"`
	Channels  []string  `json:"channels,omitempty"`
}

// Ack is what a publisher waiting for acknowledgements receives, one per
// acknowledging connection.
type Ack struct {
	ID   string `json:"id"`
	Conn string `json:"conn,omitempty"`
}

// LocateRequest is push.locate.
type LocateRequest struct {
	Client string `json:"client"`
}

// LocateReply says where a client ID is connected, as the answering
// node's directory knows it (a connect reaches every node's directory
// within about 50 ms).
type LocateReply struct {
	Client string     `json:"client"`
	Nodes  []Location `json:"nodes"`
}

// Location is a node holding a client's connections.
type Location struct {
	Node  string `json:"node"`
	Conns int    `json:"conns"`
}
