package pushserver

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/internal/pushwire"
	"github.com/mortarhq/mortar/internal/store"
	"github.com/nats-io/nats.go"
)

// Core NATS subjects between nodes. Names are base64url-encoded into one
// subject token.
const (
	routePrefix   = "mortar.push.to."   // + client|user|chan.<name>, or all
	ctlPrefix     = "mortar.push.ctl."  // + kick|sub|unsub|disconnect
	queryPrefix   = "mortar.push.q."    // + conns|presence
	headerAck     = "Mortar-Push-Ack"   // where clients' acknowledgements go
	headerSeq     = "Nats-Sequence"     // set by the history stream's republish
	headerPubTime = "Mortar-Push-Start" // Unix nanoseconds at publish, for the latency metric
)

// kind is what a push is addressed to.
type kind string

const (
	kindClient  kind = "client"
	kindUser    kind = "user"
	kindChannel kind = "chan"
	kindAll     kind = "all"
)

// target is a push's address.
type target struct {
	kind kind
	name string
}

func (t target) subject() string {
	if t.kind == kindAll {
		return routePrefix + string(kindAll)
	}
	return routePrefix + string(t.kind) + "." + encodeName(t.name)
}

func encodeName(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func decodeName(s string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	return string(b), err
}

// parseTarget reads a route subject back.
func parseTarget(subj string) (target, error) {
	rest, ok := strings.CutPrefix(subj, routePrefix)
	if !ok {
		return target{}, fmt.Errorf("not a push subject")
	}
	if rest == string(kindAll) {
		return target{kind: kindAll}, nil
	}
	k, enc, ok := strings.Cut(rest, ".")
	if !ok {
		return target{}, fmt.Errorf("no name")
	}
	name, err := decodeName(enc)
	if err != nil {
		return target{}, err
	}
	switch kind(k) {
	case kindClient, kindUser, kindChannel:
		return target{kind: kind(k), name: name}, nil
	}
	return target{}, fmt.Errorf("unknown kind %q", k)
}

// subscribe starts the node's three subscriptions: deliveries, control
// and queries.
func (s *Server) subscribe() ([]*nats.Subscription, error) {
	var subs []*nats.Subscription
	for subj, fn := range map[string]nats.MsgHandler{
		routePrefix + ">": s.onRoute,
		ctlPrefix + ">":   s.onControl,
		queryPrefix + ">": s.onQuery,
	} {
		sub, err := s.nc.Subscribe(subj, fn)
		if err != nil {
			for _, sub := range subs {
				sub.Unsubscribe()
			}
			return nil, fmt.Errorf("pushserver: subscribe %s: %w", subj, err)
		}
		sub.SetPendingLimits(1<<20, 256<<20)
		subs = append(subs, sub)
	}
	if err := s.nc.Flush(); err != nil {
		return nil, fmt.Errorf("pushserver: subscribe: %w", err)
	}
	return subs, nil
}

// onRoute delivers one push to this node's connections.
func (s *Server) onRoute(msg *nats.Msg) {
	t, err := parseTarget(msg.Subject)
	if err != nil {
		s.log.Debug("push route: bad subject", "subject", msg.Subject, "err", err)
		return
	}
	if !json.Valid(msg.Data) {
		s.log.Warn("push route: data is not JSON; dropped", "subject", msg.Subject)
		return
	}
	var cs []*conn
	switch t.kind {
	case kindClient:
		cs = s.hub.byClient(t.name)
	case kindUser:
		cs = s.hub.byUser(t.name)
	case kindChannel:
		cs = s.hub.byChannel(t.name)
	case kindAll:
		cs = s.hub.everyone()
	}
	if start, err := strconv.ParseInt(msg.Header.Get(headerPubTime), 10, 64); err == nil {
		s.metrics.latency.Observe(time.Since(time.Unix(0, start)).Seconds())
	}
	if len(cs) == 0 {
		return
	}
	m := pushwire.Message{Op: pushwire.OpPush, Data: msg.Data}
	if t.kind == kindChannel {
		m.Channel = t.name
		m.Offset, _ = strconv.ParseUint(msg.Header.Get(headerSeq), 10, 64)
	}
	if reply := msg.Header.Get(headerAck); reply != "" {
		m.Ack = s.acks.add(reply, s.cfg.NodeName, s.serial.Add(1))
	}
	s.metrics.pushes.WithLabelValues(string(t.kind)).Add(float64(len(cs)))
	deliver(cs, newFrame(m))
}

// publish sends data to t through the cluster: a channel with history
// goes through the history stream (which returns its offset and
// republishes it to every node), anything else straight to the nodes.
// ackTo, when set, is where clients' acknowledgements go.
func (s *Server) publish(ctx context.Context, t target, data []byte, ackTo string) (uint64, error) {
	if !json.Valid(data) {
		return 0, mortar.Errorf(mortar.CodeInvalidArgument, "push data must be JSON")
	}
	if t.kind != kindAll {
		max := pushwire.MaxClientLen
		if t.kind == kindChannel {
			max = pushwire.MaxChannelLen
		}
		if err := pushwire.CheckName(string(t.kind), t.name, max); err != nil {
			return 0, mortar.Errorf(mortar.CodeInvalidArgument, "%v", err)
		}
	}
	msg := nats.NewMsg(t.subject())
	msg.Data = data
	msg.Header.Set(headerPubTime, strconv.FormatInt(time.Now().UnixNano(), 10))
	if ackTo != "" {
		msg.Header.Set(headerAck, ackTo)
	}
	if t.kind == kindChannel && s.hist != nil {
		msg.Subject = store.PushHistoryPrefix + encodeName(t.name)
		ack, err := s.cfg.Store.JetStream().PublishMsg(ctx, msg)
		if err != nil {
			return 0, mortar.Errorf(mortar.CodeUnavailable, "push history: %v", err)
		}
		return ack.Sequence, nil
	}
	if err := s.nc.PublishMsg(msg); err != nil {
		return 0, mortar.Errorf(mortar.CodeUnavailable, "push: %v", err)
	}
	return 0, nil
}
