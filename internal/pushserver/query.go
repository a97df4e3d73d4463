package pushserver

import (
	"cmp"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/mortarhq/mortar/internal/pushwire"
	"github.com/nats-io/nats.go"
)

// connQuery selects connections; empty fields match all.
type connQuery struct {
	Client  string `json:"client,omitempty"`
	User    string `json:"user,omitempty"`
	Channel string `json:"channel,omitempty"`
	Limit   int    `json:"limit,omitempty"`
}

// connAnswer is one node's answer to a connQuery.
type connAnswer struct {
	Node  string              `json:"node"`
	Total int                 `json:"total"` // matching connections, of which Conns lists up to the limit
	Conns []pushwire.ConnInfo `json:"conns"`
}

// local answers q from this node's connections.
func (s *Server) local(q connQuery) connAnswer {
	var cs []*conn
	switch {
	case q.Client != "":
		cs = s.hub.byClient(q.Client)
	case q.User != "":
		cs = s.hub.byUser(q.User)
	case q.Channel != "":
		cs = s.hub.byChannel(q.Channel)
	default:
		cs = s.hub.everyone()
	}
	ans := connAnswer{Node: s.cfg.NodeName, Total: len(cs)}
	slices.SortFunc(cs, func(a, b *conn) int { return cmp.Compare(a.serial, b.serial) })
	for _, c := range cs[:min(len(cs), q.Limit)] {
		ans.Conns = append(ans.Conns, c.info())
	}
	return ans
}

func (c *conn) info() pushwire.ConnInfo {
	c.mu.Lock()
	subs := slices.Clone(c.subs)
	c.mu.Unlock()
	slices.Sort(subs)
	i := pushwire.ConnInfo{
		Conn: c.id(), Client: c.client, User: c.user, Node: c.s.cfg.NodeName,
		Transport: c.tr.String(), Encoding: cmpEnc(c.encoding()).String(),
		Since: time.Unix(0, c.since).UTC(), Channels: subs,
	}
	if c.remote != nil {
		i.Remote = c.remote.String()
	}
	return i
}

// onQuery answers a gather from any node, this one included.
func (s *Server) onQuery(msg *nats.Msg) {
	var q connQuery
	if msg.Reply == "" || json.Unmarshal(msg.Data, &q) != nil {
		return
	}
	b, err := json.Marshal(s.local(q))
	if err != nil {
		s.log.Error("push query", "err", err)
		return
	}
	msg.Respond(b)
}

// conns gathers the matching connections of every node.
func (s *Server) conns(ctx context.Context, q connQuery) (connAnswer, int, error) {
	var all connAnswer
	nodes, err := s.gather(ctx, queryPrefix+"conns", q, func(b []byte) {
		var a connAnswer
		if json.Unmarshal(b, &a) == nil {
			all.Total += a.Total
			all.Conns = append(all.Conns, a.Conns...)
		}
	})
	slices.SortFunc(all.Conns, func(a, b pushwire.ConnInfo) int {
		return cmp.Or(strings.Compare(a.Client, b.Client), a.Since.Compare(b.Since), strings.Compare(a.Conn, b.Conn))
	})
	if len(all.Conns) > q.Limit {
		all.Conns = all.Conns[:q.Limit]
	}
	return all, nodes, err
}
