package pushserver

import (
	"context"
	"encoding/json"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/internal/api"
	"github.com/mortarhq/mortar/internal/pushwire"
	"github.com/nats-io/nats.go"
)

// Limits of the API operations.
const (
	connsLimitDefault = 100
	connsLimitMax     = 10000
	ackWaitDefault    = 5 * time.Second
	ackWaitMax        = time.Minute
)

// Register adds the push operations to mux.
func (s *Server) Register(mux *api.Mux) {
	mux.Handle("push.send", api.Typed("push:send", s.sendOp))
	mux.Handle("push.conns", api.Typed("push:read", s.connsOp))
	mux.Handle("push.presence", api.Typed("push:read", s.presenceOp))
	mux.Handle("push.history", api.Typed("push:read", s.historyOp))
	mux.Handle("push.subscribe", api.Typed("push:admin", s.controlOp("sub")))
	mux.Handle("push.unsubscribe", api.Typed("push:admin", s.controlOp("unsub")))
	mux.Handle("push.disconnect", api.Typed("push:admin", s.controlOp("disconnect")))
	mux.Handle("push.token", api.Typed("push:token", s.tokenOp))
	mux.Handle("push.locate", api.Typed("push:read", s.locateOp))
}

// sendTarget is the one target a push.send names.
func sendTarget(r *pushwire.SendRequest) (target, error) {
	var ts []target
	if r.Client != "" {
		ts = append(ts, target{kindClient, r.Client})
	}
	if r.User != "" {
		ts = append(ts, target{kindUser, r.User})
	}
	if r.Channel != "" {
		ts = append(ts, target{kindChannel, r.Channel})
	}
	if r.All {
		ts = append(ts, target{kind: kindAll})
	}
	if len(ts) != 1 {
		return target{}, mortar.Errorf(mortar.CodeInvalidArgument, "name exactly one of client, user, channel or all")
	}
	if len(r.Data) == 0 {
		return target{}, mortar.Errorf(mortar.CodeInvalidArgument, "data is required (any JSON value)")
	}
	return ts[0], nil
}

func (s *Server) sendOp(ctx context.Context, _ string, req *pushwire.SendRequest) (any, error) {
	t, err := sendTarget(req)
	if err != nil {
		return nil, err
	}
	if !req.Ack {
		off, err := s.publish(ctx, t, req.Data, "")
		return pushwire.SendReply{Offset: off}, err
	}
	wait, err := parseDuration("ack_wait", req.AckWait, ackWaitDefault, ackWaitMax)
	if err != nil {
		return nil, err
	}
	inbox := s.nc.NewRespInbox()
	acks := make(chan *nats.Msg, 256)
	sub, err := s.nc.ChanSubscribe(inbox, acks)
	if err != nil {
		return nil, mortar.Errorf(mortar.CodeUnavailable, "push: %v", err)
	}
	defer sub.Unsubscribe()
	off, err := s.publish(ctx, t, req.Data, inbox)
	if err != nil {
		return nil, err
	}
	rep := pushwire.SendReply{Offset: off, Acks: []pushwire.Ack{}}
	want := max(req.AckMin, 1)
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for len(rep.Acks) < want {
		select {
		case m := <-acks:
			var a pushwire.Ack
			if json.Unmarshal(m.Data, &a) == nil {
				rep.Acks = append(rep.Acks, a)
			}
		case <-ctx.Done():
			return rep, nil
		}
	}
	return rep, nil
}

func parseDuration(field, s string, def, most time.Duration) (time.Duration, error) {
	if s == "" {
		return def, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 || d > most {
		return 0, mortar.Errorf(mortar.CodeInvalidArgument, "%s %q: want a duration up to %s", field, s, most)
	}
	return d, nil
}

func (s *Server) connsOp(ctx context.Context, _ string, req *pushwire.ConnsRequest) (any, error) {
	limit := req.Limit
	if limit == 0 {
		limit = connsLimitDefault
	}
	if limit < 0 || limit > connsLimitMax {
		return nil, mortar.Errorf(mortar.CodeInvalidArgument, "limit must be 1 to %d", connsLimitMax)
	}
	ans, nodes, err := s.conns(ctx, connQuery{Client: req.Client, User: req.User, Channel: req.Channel, Limit: limit})
	if err != nil {
		return nil, mortar.Errorf(mortar.CodeUnavailable, "push: %v", err)
	}
	if ans.Conns == nil {
		ans.Conns = []pushwire.ConnInfo{}
	}
	return pushwire.ConnsReply{Total: ans.Total, Nodes: nodes, Conns: ans.Conns}, nil
}

func (s *Server) presenceOp(ctx context.Context, id string, req *pushwire.ConnsRequest) (any, error) {
	if err := checkChannel(req.Channel); err != nil {
		return nil, err
	}
	return s.connsOp(ctx, id, &pushwire.ConnsRequest{Channel: req.Channel, Limit: req.Limit})
}

func (s *Server) historyOp(ctx context.Context, _ string, req *pushwire.HistoryRequest) (any, error) {
	if err := checkChannel(req.Channel); err != nil {
		return nil, err
	}
	if s.hist == nil {
		return nil, mortar.Errorf(mortar.CodeFailedPrecondition, "push history is off on this node")
	}
	limit := s.historyLimit()
	if req.Limit > 0 {
		limit = min(limit, req.Limit)
	}
	pubs, oldest, err := s.history(ctx, req.Channel, req.After, limit)
	if err != nil {
		return nil, mortar.Errorf(mortar.CodeUnavailable, "push history: %v", err)
	}
	if pubs == nil {
		pubs = []pushwire.Publication{}
	}
	return pushwire.HistoryReply{Epoch: s.epoch, Oldest: oldest, Pubs: pubs}, nil
}

func (s *Server) controlOp(op string) func(context.Context, string, *pushwire.ControlRequest) (any, error) {
	return func(ctx context.Context, _ string, req *pushwire.ControlRequest) (any, error) {
		if (req.Client == "") == (req.User == "") {
			return nil, mortar.Errorf(mortar.CodeInvalidArgument, "name exactly one of client or user")
		}
		if op != "disconnect" {
			if err := checkChannel(req.Channel); err != nil {
				return nil, err
			}
		}
		var rep pushwire.ControlReply
		nodes, err := s.gather(ctx, ctlPrefix+op, control{Client: req.Client, User: req.User, Channel: req.Channel}, func(b []byte) {
			var r controlReply
			if json.Unmarshal(b, &r) == nil {
				rep.Conns += r.Conns
			}
		})
		if err != nil {
			return nil, mortar.Errorf(mortar.CodeUnavailable, "push: %v", err)
		}
		rep.Nodes = nodes
		return rep, nil
	}
}

func (s *Server) tokenOp(ctx context.Context, _ string, req *pushwire.TokenRequest) (any, error) {
	ttl := 24 * time.Hour
	if req.TTL == "0" {
		ttl = 0
	} else if req.TTL != "" {
		var err error
		if ttl, err = parseDuration("ttl", req.TTL, ttl, 10*365*24*time.Hour); err != nil {
			return nil, err
		}
	}
	now := time.Now()
	if err := checkDelegation(ctx, req.Perms); err != nil {
		return nil, err
	}
	c := pushwire.Claims{Client: req.Client, User: req.User, Channels: req.Channels, Perms: req.Perms, IssuedAt: now.Unix()}
	var rep pushwire.TokenReply
	if ttl > 0 {
		rep.Expires = now.Add(ttl).Truncate(time.Second).UTC()
		c.Expires = rep.Expires.Unix()
	}
	tok, err := pushwire.SignToken(s.cfg.Secrets[0], c)
	if err != nil {
		return nil, mortar.Errorf(mortar.CodeInvalidArgument, "%v", err)
	}
	rep.Token = tok
	return rep, nil
}

func (s *Server) locateOp(_ context.Context, _ string, req *pushwire.LocateRequest) (any, error) {
	if err := pushwire.CheckName("client ID", req.Client, pushwire.MaxClientLen); err != nil {
		return nil, mortar.Errorf(mortar.CodeInvalidArgument, "%v", err)
	}
	return pushwire.LocateReply{Client: req.Client, Nodes: s.locate(req.Client)}, nil
}
