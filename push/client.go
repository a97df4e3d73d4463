package push

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/internal/pushwire"
)

// Types of the node's answers.
type (
	// ConnInfo describes one connection.
	ConnInfo = pushwire.ConnInfo
	// Ack is one connection's acknowledgement of a push.
	Ack = pushwire.Ack
	// Publication is one message of a channel's history.
	Publication = pushwire.Publication
	// Location is a node holding a client's connections.
	Location = pushwire.Location
)

// Target is where a push goes: a client ID, a user, a channel, or
// everyone. Make one with ToClient, ToUser, ToChannel or ToAll.
type Target struct {
	kind, name string
}

// ToClient addresses every connection of one client ID (one, unless the
// node keeps several per client).
func ToClient(id string) Target { return Target{"client", id} }

// ToUser addresses every connection of a user.
func ToUser(user string) Target { return Target{"user", user} }

// ToChannel addresses every subscriber of a channel.
func ToChannel(channel string) Target { return Target{"channel", channel} }

// ToAll addresses every connection of every node.
func ToAll() Target { return Target{kind: "all"} }

func (t Target) String() string {
	if t.kind == "all" {
		return "all"
	}
	return t.kind + " " + t.name
}

// Client pushes to long connections through the cluster and inspects
// them. It is safe for concurrent use.
type Client struct {
	conn *mortar.Conn
}

// Config configures a Client. It has no fields yet; nil is fine.
type Config struct{}

// New returns a Client on conn.
func New(conn *mortar.Conn, _ *Config) (*Client, error) {
	if conn == nil {
		return nil, errors.New("push: new: nil connection")
	}
	return &Client{conn: conn}, nil
}

// SendOpts are the options of Send.
type SendOpts struct {
	// Ack asks the receiving connections to acknowledge: Send then waits
	// until AckMin of them did (default 1) or AckWait passed (default 5s,
	// at most a minute), and reports who did.
	Ack     bool
	AckMin  int
	AckWait time.Duration
}

// SendResult is what Send learned.
type SendResult struct {
	// Offset is the message's position in its channel's history (channel
	// pushes with history on; otherwise 0).
	Offset uint64
	// Acks lists the acknowledgements received (with SendOpts.Ack).
	Acks []Ack
}

// Send pushes data, encoded as JSON (a json.RawMessage goes as is), to
// the target. Without acknowledgements it returns once the push is on its
// way to every node; a target with no connection is not an error.
func (c *Client) Send(ctx context.Context, to Target, data any, opts *SendOpts) (*SendResult, error) {
	raw, err := marshal(data)
	if err != nil {
		return nil, fmt.Errorf("push: send to %s: %w", to, err)
	}
	req := pushwire.SendRequest{Data: raw}
	switch to.kind {
	case "client":
		req.Client = to.name
	case "user":
		req.User = to.name
	case "channel":
		req.Channel = to.name
	case "all":
		req.All = true
	default:
		return nil, errors.New("push: send: no target (use ToClient, ToUser, ToChannel or ToAll)")
	}
	if opts != nil && opts.Ack {
		req.Ack, req.AckMin = true, opts.AckMin
		if opts.AckWait > 0 {
			req.AckWait = opts.AckWait.String()
		}
	}
	var rep pushwire.SendReply
	if err := c.conn.Do(ctx, "push.send", req, &rep); err != nil {
		return nil, fmt.Errorf("push: send to %s: %w", to, err)
	}
	return &SendResult{Offset: rep.Offset, Acks: rep.Acks}, nil
}

func marshal(v any) (json.RawMessage, error) {
	if raw, ok := v.(json.RawMessage); ok {
		if !json.Valid(raw) {
			return nil, errors.New("data is not valid JSON")
		}
		return raw, nil
	}
	return json.Marshal(v)
}

// ConnsFilter selects connections; the zero value selects all.
type ConnsFilter struct {
	Client, User, Channel string
	Limit                 int // default 100, at most 10,000
}

// Conns lists connections across the cluster.
type Conns struct {
	Total int        // matching connections on the nodes that answered
	Nodes int        // nodes that answered
	Conns []ConnInfo // up to the filter's limit, by client ID
}

// Conns lists the connections that match f (nil for all).
func (c *Client) Conns(ctx context.Context, f *ConnsFilter) (*Conns, error) {
	var req pushwire.ConnsRequest
	if f != nil {
		req = pushwire.ConnsRequest{Client: f.Client, User: f.User, Channel: f.Channel, Limit: f.Limit}
	}
	var rep pushwire.ConnsReply
	if err := c.conn.Do(ctx, "push.conns", req, &rep); err != nil {
		return nil, fmt.Errorf("push: conns: %w", err)
	}
	return &Conns{Total: rep.Total, Nodes: rep.Nodes, Conns: rep.Conns}, nil
}

// Presence lists the connections subscribed to channel.
func (c *Client) Presence(ctx context.Context, channel string) (*Conns, error) {
	var rep pushwire.ConnsReply
	if err := c.conn.Do(ctx, "push.presence", pushwire.ConnsRequest{Channel: channel, Limit: 10000}, &rep); err != nil {
		return nil, fmt.Errorf("push: presence %s: %w", channel, err)
	}
	return &Conns{Total: rep.Total, Nodes: rep.Nodes, Conns: rep.Conns}, nil
}

// History is a channel's retained messages.
type History struct {
	Epoch  string        // the history's identity; offsets compare only within one
	Oldest uint64        // the oldest retained offset (0 when empty)
	Pubs   []Publication // oldest first
}

// History returns the channel's retained messages after offset after (0
// for all), at most limit (0 for the history's size).
func (c *Client) History(ctx context.Context, channel string, after uint64, limit int) (*History, error) {
	var rep pushwire.HistoryReply
	if err := c.conn.Do(ctx, "push.history", pushwire.HistoryRequest{Channel: channel, After: after, Limit: limit}, &rep); err != nil {
		return nil, fmt.Errorf("push: history %s: %w", channel, err)
	}
	return &History{Epoch: rep.Epoch, Oldest: rep.Oldest, Pubs: rep.Pubs}, nil
}

// Subscribe subscribes every connection of a client or user (to is
// ToClient or ToUser) to channel, on whichever nodes hold them, and
// returns how many connections it subscribed.
func (c *Client) Subscribe(ctx context.Context, to Target, channel string) (int, error) {
	return c.control(ctx, "push.subscribe", to, channel)
}

// Unsubscribe undoes Subscribe, or the client's own subscription.
func (c *Client) Unsubscribe(ctx context.Context, to Target, channel string) (int, error) {
	return c.control(ctx, "push.unsubscribe", to, channel)
}

// Disconnect closes every connection of a client or user (code 4007;
// clients do not reconnect on their own).
func (c *Client) Disconnect(ctx context.Context, to Target) (int, error) {
	return c.control(ctx, "push.disconnect", to, "")
}

func (c *Client) control(ctx context.Context, op string, to Target, channel string) (int, error) {
	req := pushwire.ControlRequest{Channel: channel}
	switch to.kind {
	case "client":
		req.Client = to.name
	case "user":
		req.User = to.name
	default:
		return 0, fmt.Errorf("push: %s: target must be a client or a user, not %s", op, to)
	}
	var rep pushwire.ControlReply
	if err := c.conn.Do(ctx, op, req, &rep); err != nil {
		return 0, fmt.Errorf("push: %s %s: %w", op, to, err)
	}
	return rep.Conns, nil
}

// Locate returns the nodes where a client ID is connected, from the
// answering node's directory: every node keeps one for the whole cluster,
// so this costs one request however large the cluster. A client that
// connected in the last ~50 ms may not be listed yet.
func (c *Client) Locate(ctx context.Context, clientID string) ([]Location, error) {
	var rep pushwire.LocateReply
	if err := c.conn.Do(ctx, "push.locate", pushwire.LocateRequest{Client: clientID}, &rep); err != nil {
		return nil, fmt.Errorf("push: locate %s: %w", clientID, err)
	}
	return rep.Nodes, nil
}

// Token asks the node to sign a connect token for claims with its own
// secret, valid for ttl (0 means 24 hours). Backends that hold the secret
// sign locally with SignToken instead.
func (c *Client) Token(ctx context.Context, claims Claims, ttl time.Duration) (string, error) {
	req := pushwire.TokenRequest{Client: claims.Client, User: claims.User, Channels: claims.Channels, Perms: claims.Perms}
	if ttl > 0 {
		req.TTL = ttl.String()
	}
	var rep pushwire.TokenReply
	if err := c.conn.Do(ctx, "push.token", req, &rep); err != nil {
		return "", fmt.Errorf("push: token: %w", err)
	}
	return rep.Token, nil
}
