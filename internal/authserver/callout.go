package authserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/internal/api"
	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// CalloutQueue is the queue group of the nodes answering an external
// NATS server's auth callout: one of them answers each request.
const CalloutQueue = "mortar-callout"

// CalloutAccount is the account a connection admitted through the
// callout is placed in: the global account of a NATS server configured
// without accounts, where mortar's subjects and JetStream live.
const CalloutAccount = "$G"

const (
	// calloutWorkers answer requests at once: a password costs tens of
	// milliseconds of argon2, a credential missing from the cache a store
	// read.
	calloutWorkers = 16
	// calloutPending requests may wait for a worker; more are dropped
	// (the server refuses those connections when its auth timeout ends).
	calloutPending = 1024
	// calloutTimeout bounds the answer to a request that has no expiry.
	calloutTimeout = 10 * time.Second
)

// CalloutConfig configures a Callout.
type CalloutConfig struct {
	// IssuerSeed is the seed ("SA…") of the account key pair whose public
	// key the NATS server names as its auth_callout issuer. Responses and
	// the user JWTs in them are signed with it. Required.
	IssuerSeed string
	// XKeySeed is the seed ("SX…") of the curve key pair whose public key
	// the server names as its auth_callout xkey: the server then encrypts
	// requests to it, and the callout encrypts its responses to the
	// server. Empty: requests are expected in the clear, and an encrypted
	// one is not answered (and logged).
	XKeySeed string
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Validate reports whether the seeds are well formed and of the right
// kind. Its errors never repeat a seed.
func (c *CalloutConfig) Validate() error {
	_, _, err := c.keys()
	return err
}

// keys returns the key pairs of the seeds (xkey nil when there is none).
func (c *CalloutConfig) keys() (issuer, xkey nkeys.KeyPair, err error) {
	if c.IssuerSeed == "" {
		return nil, nil, errors.New("authserver: callout: no issuer seed")
	}
	if issuer, err = seedOf(c.IssuerSeed, nkeys.PrefixByteAccount, "issuer seed", "an account seed (SA…)"); err != nil {
		return nil, nil, err
	}
	if c.XKeySeed != "" {
		if xkey, err = seedOf(c.XKeySeed, nkeys.PrefixByteCurve, "xkey seed", "a curve seed (SX…)"); err != nil {
			return nil, nil, err
		}
	}
	return issuer, xkey, nil
}

// seedOf decodes seed, which must be of the kind prefix.
func seedOf(seed string, prefix nkeys.PrefixByte, what, want string) (nkeys.KeyPair, error) {
	p, _, err := nkeys.DecodeSeed([]byte(seed))
	if err != nil {
		return nil, fmt.Errorf("authserver: callout %s: not an nkey seed (a seed starts with S, its public key does not), want %s", what, want)
	}
	if p != prefix {
		return nil, fmt.Errorf("authserver: callout %s: the seed of a key of kind %q, want %s", what, p, want)
	}
	kp, err := nkeys.FromSeed([]byte(seed))
	if err != nil {
		return nil, fmt.Errorf("authserver: callout %s: %w", what, err)
	}
	return kp, nil
}

// Callout answers the auth callout of an external NATS server
// (https://docs.nats.io/running-a-nats-service/configuration/securing_nats/auth_callout),
// configured without operator or accounts: its authorization block names
// the node's user among auth_users and IssuerSeed's public key as issuer.
// The server sends every other connection's connect options to
// $SYS.REQ.USER.AUTH; the callout authenticates the credential there as
// NATSAuth does on an embedded server (natsLogin: the same subjects, the
// same NATS permissions, the same audit) and answers with a user JWT
// placing it in CalloutAccount, or the error "invalid credentials".
//
// Every node of a cluster may run one: they answer in the queue group
// CalloutQueue. Connections that arrive before a node serves wait for the
// server's auth timeout and are refused.
type Callout struct {
	s         *Server
	nc        *nats.Conn
	issuer    nkeys.KeyPair
	issuerPub string
	xkey      nkeys.KeyPair // nil: requests come in the clear
	log       *slog.Logger
	ready     chan struct{}
}

// NewCallout returns a Callout authenticating with s, subscribed through
// nc (a connection as one of the server's auth_users) once it runs.
func NewCallout(s *Server, nc *nats.Conn, cfg CalloutConfig) (*Callout, error) {
	issuer, xkey, err := cfg.keys()
	if err != nil {
		return nil, err
	}
	pub, err := issuer.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("authserver: callout issuer: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Callout{s: s, nc: nc, issuer: issuer, issuerPub: pub, xkey: xkey,
		log: log.With("component", "auth.callout"), ready: make(chan struct{})}, nil
}

// Register implements the node's part: the callout has no API
// operations.
func (c *Callout) Register(*api.Mux) {}

// Ready is closed once the callout answers requests.
func (c *Callout) Ready() <-chan struct{} { return c.ready }

// Run waits for the security layer to load, then answers callout
// requests until ctx ends.
func (c *Callout) Run(ctx context.Context) error {
	select {
	case <-c.s.Ready():
	case <-ctx.Done():
		return nil
	}
	msgs := make(chan *nats.Msg, calloutPending)
	sub, err := c.nc.ChanQueueSubscribe(server.AuthCalloutSubject, CalloutQueue, msgs)
	if err != nil {
		return fmt.Errorf("authserver: callout: subscribe: %w", err)
	}
	defer sub.Unsubscribe()
	fctx, cancel := context.WithTimeout(ctx, calloutTimeout)
	err = c.nc.FlushWithContext(fctx)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("authserver: callout: subscribe: %w", err)
	}
	c.log.Info("answering the nats auth callout", "subject", server.AuthCalloutSubject, "issuer", c.issuerPub, "xkey", c.xkey != nil)
	close(c.ready)
	var wg sync.WaitGroup
	for range calloutWorkers {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case m := <-msgs:
					c.answer(ctx, m)
				}
			}
		})
	}
	wg.Wait()
	return nil
}

// answer answers one request. A request it cannot read (not from a
// server, encrypted to another key) gets no answer: the server refuses
// the connection when its auth timeout ends.
func (c *Callout) answer(ctx context.Context, m *nats.Msg) {
	data := m.Data
	serverXKey := m.Header.Get(server.AuthRequestXKeyHeader)
	if serverXKey != "" {
		if c.xkey == nil {
			c.log.Error("an encrypted auth callout request, and no xkey seed to read it: set the xkey seed whose public key the server's auth_callout names")
			return
		}
		var err error
		if data, err = c.xkey.Open(data, serverXKey); err != nil {
			c.log.Warn("auth callout request: cannot decrypt", "err", err)
			return
		}
	}
	req, err := jwt.DecodeAuthorizationRequestClaims(string(data))
	if err != nil {
		c.log.Warn("auth callout request: malformed", "err", err)
		return
	}
	vr := jwt.CreateValidationResults()
	req.Validate(vr)
	if err := errors.Join(vr.Errors()...); err != nil || req.Server.ID == "" || req.Server.XKey != serverXKey {
		c.log.Warn("auth callout request: invalid", "server", req.Server.Name, "err", err)
		return
	}
	signed, err := c.respond(ctx, req).Encode(c.issuer)
	if err != nil {
		c.log.Error("auth callout response: sign", "err", err)
		return
	}
	out := []byte(signed)
	if serverXKey != "" {
		if out, err = c.xkey.Seal(out, serverXKey); err != nil {
			c.log.Error("auth callout response: encrypt", "err", err)
			return
		}
	}
	if err := m.Respond(out); err != nil {
		c.log.Warn("auth callout response: send", "err", err)
	}
}

// respond authenticates the request's credential and returns the
// response: a user JWT for the connection, or an error that never says
// why (the audit log does).
func (c *Callout) respond(ctx context.Context, req *jwt.AuthorizationRequestClaims) *jwt.AuthorizationResponseClaims {
	resp := jwt.NewAuthorizationResponseClaims(req.UserNkey)
	resp.Audience = req.Server.ID
	// The server waits until the request expires (whole seconds, rounded
	// down); an answer later than that is not heard.
	deadline := time.Now().Add(calloutTimeout)
	if req.Expires > 0 {
		deadline = time.Unix(req.Expires+1, 0)
	}
	ctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	o := req.ConnectOptions
	u, err := c.s.natsLogin(ctx, o.Token, o.Username, o.Password, req.ClientInformation.Host)
	if err != nil {
		resp.Error = errInvalid.Message
		if mortar.ErrorCode(err) != mortar.CodeUnauthenticated {
			resp.Error = "the security layer could not answer"
		}
		return resp
	}
	uc := jwt.NewUserClaims(req.UserNkey)
	uc.Audience = CalloutAccount
	uc.Name = u.principal
	if !u.deadline.IsZero() {
		uc.Expires = u.deadline.Unix()
	}
	uc.Permissions = jwtPermissions(u.perms)
	if resp.Jwt, err = uc.Encode(c.issuer); err != nil {
		c.log.Error("auth callout: sign the user JWT", "user", u.principal, "err", err)
		resp.Error = "the security layer could not answer"
	}
	return resp
}

// jwtPermissions returns p (nil: no limits) as user JWT permissions. No
// connection may subscribe to the callout's requests, which carry every
// connecting client's credential: not even an administrator's.
func jwtPermissions(p *server.Permissions) jwt.Permissions {
	var jp jwt.Permissions
	jp.Sub.Deny.Add(server.AuthCalloutSubject)
	if p == nil {
		return jp
	}
	if p.Publish != nil {
		jp.Pub.Allow.Add(p.Publish.Allow...)
		jp.Pub.Deny.Add(p.Publish.Deny...)
	}
	if p.Subscribe != nil {
		jp.Sub.Allow.Add(p.Subscribe.Allow...)
		jp.Sub.Deny.Add(p.Subscribe.Deny...)
	}
	if r := p.Response; r != nil {
		jp.Resp = &jwt.ResponsePermission{MaxMsgs: r.MaxMsgs, Expires: r.Expires}
	}
	return jp
}
