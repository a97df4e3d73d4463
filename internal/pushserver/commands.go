package pushserver

import (
	"context"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/auth"
	"github.com/mortarhq/mortar/internal/pushwire"
)

// engineTimeout bounds one command's wait on the engine.
const engineTimeout = 5 * time.Second

// connect authenticates c, indexes it, and makes the token's
// server-side subscriptions. A bad token closes the connection.
func (s *Server) connect(c *conn, m *pushwire.Message) error {
	if c.authed.Load() {
		c.replyErr(m.ID, mortar.Errorf(mortar.CodeFailedPrecondition, "already connected"))
		return nil
	}
	claims, sub, err := s.authenticate(m.Token, m.Client, c.remote.String(), c.tr)
	if err != nil {
		return disconnectAuth
	}
	c.subject = sub
	res, ok := s.admit(c, claims, claims.Channels)
	if !ok {
		return nil
	}
	if len(claims.Channels) == 0 {
		c.reply(m.ID, res)
		return nil
	}
	reqs := make([]subRequest, len(claims.Channels))
	for i, ch := range claims.Channels {
		reqs[i] = subRequest{channel: ch}
	}
	s.join(c, reqs, func(subs []pushwire.SubResult) {
		res.Subs = subs
		c.reply(m.ID, res)
	})
	return nil
}

// checkChannel checks a channel name from a request: invalid_argument
// when it is not one.
func checkChannel(ch string) error {
	if err := pushwire.CheckChannel(ch); err != nil {
		return mortar.Errorf(mortar.CodeInvalidArgument, "%v", err)
	}
	return nil
}

var errClientMismatch = mortar.Errorf(mortar.CodeUnauthenticated, "client ID does not match the token")

// authenticate verifies a connect token and, when the client named its
// client ID, that the token is for it; a token that is no push token may
// be a mortar credential (Config.Authenticate). It returns what the
// connection may do. A refusal is counted and logged.
func (s *Server) authenticate(token, client, remote string, tr transport) (pushwire.Claims, *auth.Subject, error) {
	var sub *auth.Subject
	claims, err := pushwire.VerifyToken(s.cfg.Secrets, token, time.Now())
	switch {
	case err != nil && notPushToken(err) && s.cfg.Authenticate != nil:
		claims, sub, err = s.credentialClaims(token, client, remote)
	case err == nil && client != "" && client != claims.Client:
		err = errClientMismatch
	case err == nil:
		sub, err = s.tokenSubject(claims)
	}
	if err != nil {
		s.metrics.refused.Inc()
		s.log.Info("push connect refused", "remote", remote, "transport", tr.String(), "client", client, "err", err)
	}
	return claims, sub, err
}

// admit makes c the authenticated connection of claims: it holds pushes
// on the channels about to be joined (hold), indexes c, closes the older
// connections it replaces here and elsewhere, and arms its idle timer. It
// returns the connect result, or false when c closed meanwhile.
func (s *Server) admit(c *conn, claims pushwire.Claims, hold []string) (pushwire.ConnectResult, bool) {
	c.client, c.user = claims.Client, claims.User
	c.authed.Store(true)
	c.mu.Lock()
	for _, ch := range hold {
		c.holdLocked(ch)
	}
	c.mu.Unlock()
	replace := s.cfg.SameClient == SameClientReplace
	replaced, ok := s.hub.add(c, replace)
	if !ok {
		return pushwire.ConnectResult{}, false
	}
	s.metrics.conns.WithLabelValues(c.tr.String()).Inc()
	for _, old := range replaced {
		old.close(disconnectReplaced)
	}
	if replace {
		s.kickElsewhere(c)
	}
	s.scheduleIdle(c)
	return pushwire.ConnectResult{
		Client: c.client, User: c.user, Conn: c.id(), Node: s.cfg.NodeName,
		Ping: int(s.cfg.Ping / time.Second), Pong: int(s.cfg.Pong / time.Second),
	}, true
}

// subRequest is one channel to join, and what the client last saw of it.
type subRequest struct {
	channel string
	recover bool
	offset  uint64
	epoch   string
}

// join subscribes c to each channel, then reports each channel's
// position (and, when asked, the messages the client missed) to done,
// and only then releases the pushes that arrived meanwhile, so that the
// client sees every message once and in order. Channels must already be
// held (holdLocked) when the caller needs pushes held from an earlier
// point.
func (s *Server) join(c *conn, reqs []subRequest, done func([]pushwire.SubResult)) {
	c.mu.Lock()
	for _, r := range reqs {
		c.holdLocked(r.channel)
	}
	c.mu.Unlock()
	for _, r := range reqs {
		s.hub.subscribe(c, r.channel)
	}
	finish := func() {
		results := make([]pushwire.SubResult, len(reqs))
		for i, r := range reqs {
			results[i] = s.channelState(c, r)
		}
		done(results)
		for i, r := range results {
			c.release(reqs[i].channel, r.Last())
		}
	}
	if s.hist == nil {
		finish()
		return
	}
	s.goAsync(finish)
}

// channelState is what a subscriber learns on joining: the channel's
// position and, on recovery, what it missed.
func (s *Server) channelState(c *conn, r subRequest) pushwire.SubResult {
	res := pushwire.SubResult{Channel: r.channel}
	if s.hist == nil {
		return res
	}
	ctx, cancel := context.WithTimeout(context.Background(), engineTimeout)
	defer cancel()
	var err error
	if r.recover {
		res, err = s.recoverChannel(ctx, r)
	} else {
		res.Offset, err = s.position(ctx, r.channel)
		res.Epoch = s.epoch
	}
	if err != nil {
		s.log.Warn("push channel state", "channel", r.channel, "conn", c.id(), "err", err)
		res = pushwire.SubResult{Channel: r.channel, Epoch: s.epoch}
	}
	return res
}

// holdLocked starts holding c's pushes on ch. c.mu is held.
func (c *conn) holdLocked(ch string) {
	if c.recovering == nil {
		c.recovering = map[string][]*frame{}
	}
	if _, ok := c.recovering[ch]; !ok {
		c.recovering[ch] = nil
	}
}

// release sends the pushes held on ch that are newer than after (the
// ones without offsets always) and stops holding.
func (c *conn) release(ch string, after uint64) {
	c.mu.Lock()
	held, ok := c.recovering[ch]
	delete(c.recovering, ch)
	if len(c.recovering) == 0 {
		c.recovering = nil
	}
	c.mu.Unlock()
	if !ok {
		return
	}
	for _, f := range held {
		if f.offset == 0 || f.offset > after {
			c.sendFrame(f)
		}
	}
}

func (s *Server) subscribeCmd(c *conn, m *pushwire.Message) {
	if err := checkChannel(m.Channel); err != nil {
		c.replyErr(m.ID, err)
		return
	}
	if err := checkChannelPerm(c, "subscribe", m.Channel); err != nil {
		c.replyErr(m.ID, err)
		return
	}
	r := subRequest{channel: m.Channel, recover: m.Recover, offset: m.Offset, epoch: m.Epoch}
	s.join(c, []subRequest{r}, func(res []pushwire.SubResult) { c.reply(m.ID, res[0]) })
}

func (s *Server) unsubscribeCmd(c *conn, m *pushwire.Message) {
	s.hub.unsubscribe(c, m.Channel)
	c.reply(m.ID, struct{}{})
}

// publishCmd publishes a client's message to a channel.
func (s *Server) publishCmd(c *conn, m *pushwire.Message) {
	if err := checkChannel(m.Channel); err != nil {
		c.replyErr(m.ID, err)
		return
	}
	if err := checkChannelPerm(c, "publish", m.Channel); err != nil {
		c.replyErr(m.ID, err)
		return
	}
	if len(m.Data) == 0 {
		c.replyErr(m.ID, mortar.Errorf(mortar.CodeInvalidArgument, "publish needs data"))
		return
	}
	t := target{kind: kindChannel, name: m.Channel}
	if s.hist == nil {
		if _, err := s.publish(context.Background(), t, m.Data, ""); err != nil {
			c.replyErr(m.ID, err)
			return
		}
		c.reply(m.ID, pushwire.PublishResult{})
		return
	}
	s.goAsync(func() {
		ctx, cancel := context.WithTimeout(context.Background(), engineTimeout)
		defer cancel()
		off, err := s.publish(ctx, t, m.Data, "")
		if err != nil {
			c.replyErr(m.ID, err)
			return
		}
		c.reply(m.ID, pushwire.PublishResult{Offset: off})
	})
}
