package pushserver

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/mortarhq/mortar/internal/pushwire"
	"github.com/nats-io/nats.go"
)

// control is a request to act on connections on every node: kick (a
// client connected elsewhere, replace policy), sub and unsub (server-side
// subscriptions), disconnect (an operator).
type control struct {
	Client  string `json:"client,omitempty"`
	User    string `json:"user,omitempty"`
	Channel string `json:"channel,omitempty"`
	Node    string `json:"node,omitempty"`  // kick: the node of the new connection
	Since   int64  `json:"since,omitempty"` // kick: when the new connection connected
}

// controlReply counts the connections a node acted on.
type controlReply struct {
	Node  string `json:"node"`
	Conns int    `json:"conns"`
}

// kickElsewhere tells the other nodes that c now holds its client ID:
// their connections with it that connected earlier close as replaced.
func (s *Server) kickElsewhere(c *conn) {
	b, _ := json.Marshal(control{Client: c.client, Node: s.cfg.NodeName, Since: c.since})
	if err := s.nc.Publish(ctlPrefix+"kick", b); err != nil {
		s.log.Warn("push kick", "client", c.client, "err", err)
	}
}

// onControl acts on this node's connections.
func (s *Server) onControl(msg *nats.Msg) {
	var req control
	if err := json.Unmarshal(msg.Data, &req); err != nil {
		s.log.Debug("push control: bad request", "subject", msg.Subject, "err", err)
		return
	}
	var cs []*conn
	switch {
	case req.Client != "":
		cs = s.hub.byClient(req.Client)
	case req.User != "":
		cs = s.hub.byUser(req.User)
	}
	// Connections already closing stay in the hub until their socket
	// closes; they are not acted on (nor counted) again.
	cs = slices.DeleteFunc(cs, func(c *conn) bool { return c.closed.Load() })
	n := 0
	switch op := strings.TrimPrefix(msg.Subject, ctlPrefix); op {
	case "kick":
		if req.Node == s.cfg.NodeName {
			return
		}
		for _, c := range cs {
			// The newest connection wins, whichever node hears of the
			// other first.
			if c.since < req.Since || (c.since == req.Since && s.cfg.NodeName < req.Node) {
				c.close(disconnectReplaced)
			}
		}
		return
	case "sub":
		for _, c := range cs {
			s.join(c, []subRequest{{channel: req.Channel}}, func(r []pushwire.SubResult) {
				c.notice(pushwire.OpSub, r[0])
			})
			n++
		}
	case "unsub":
		for _, c := range cs {
			if s.hub.unsubscribe(c, req.Channel) {
				c.notice(pushwire.OpUnsub, pushwire.SubResult{Channel: req.Channel})
				n++
			}
		}
	case "disconnect":
		for _, c := range cs {
			c.close(disconnectKicked)
			n++
		}
	default:
		return
	}
	if msg.Reply != "" {
		b, _ := json.Marshal(controlReply{Node: s.cfg.NodeName, Conns: n})
		msg.Respond(b)
	}
}

// notice tells the client about a server-side subscription change.
func (c *conn) notice(op string, r pushwire.SubResult) {
	c.send(&pushwire.Message{Op: op, Channel: r.Channel, Offset: r.Offset, Epoch: r.Epoch})
}

// gather sends req on subj to every node and collects their replies
// until as many as there are live nodes answered or ctx (bounded to a
// second) ends.
func (s *Server) gather(ctx context.Context, subj string, req any, each func([]byte)) (nodes int, err error) {
	body, err := json.Marshal(req)
	if err != nil {
		return 0, err
	}
	want := s.liveNodes(ctx)
	inbox := s.nc.NewRespInbox()
	ch := make(chan *nats.Msg, 64)
	sub, err := s.nc.ChanSubscribe(inbox, ch)
	if err != nil {
		return 0, err
	}
	defer sub.Unsubscribe()
	if err := s.nc.PublishRequest(subj, inbox, body); err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	for nodes < want {
		select {
		case m := <-ch:
			each(m.Data)
			nodes++
		case <-ctx.Done():
			return nodes, nil
		}
	}
	return nodes, nil
}

// liveNodes counts the nodes whose liveness key exists (1 when unknown).
func (s *Server) liveNodes(ctx context.Context) int {
	if s.cfg.Store == nil || s.cfg.Store.Nodes == nil {
		return 1
	}
	lister, err := s.cfg.Store.Nodes.ListKeys(ctx)
	if err != nil {
		return 1
	}
	n := 0
	for range lister.Keys() {
		n++
	}
	return max(n, 1)
}
