package mortar

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Defaults for Options.
const (
	DefaultURL            = "nats://127.0.0.1:4222"
	ReconnectWaitDefault  = 250 * time.Millisecond
	AttemptTimeoutDefault = 5 * time.Second
)

// NATS subjects and headers of the node's API. docs/api.md documents them.
const (
	// APISubjectPrefix prefixes every API operation: the operation
	// "config.set" is served on "mortar.api.v1.config.set".
	APISubjectPrefix = "mortar.api.v1."
	// HeaderError carries an error code on an API reply whose body is an
	// Error in JSON.
	HeaderError = "Mortar-Error"
	// HeaderRequestID identifies one logical request across retries, so a
	// node applies a retried write once.
	HeaderRequestID = "Mortar-Request-Id"
	// HeaderAuthorization carries the caller's credential on an API
	// request, "Bearer <token>", as HTTP's header does.
	HeaderAuthorization = "Authorization"
	// HeaderRunAs names the user an API request runs as: its caller must
	// be permitted auth:runas:USER.
	HeaderRunAs = "Mortar-Run-As"
)

// Options configure Dial. A nil *Options means all defaults.
type Options struct {
	// Name identifies this client to the node (shown in connection lists).
	// Defaults to the program's name.
	Name string
	// ReconnectWait is the pause between reconnect attempts to the node
	// set. Defaults to ReconnectWaitDefault.
	ReconnectWait time.Duration
	// AttemptTimeout bounds one attempt of an API request; a request whose
	// attempt times out is retried with the same request ID until its ctx
	// ends. Defaults to AttemptTimeoutDefault.
	AttemptTimeout time.Duration
	// Logger receives connection events. Defaults to slog.Default().
	Logger *slog.Logger
	// Token is the credential the connection presents to the node and
	// carries on every API request: an API key, or a session token from
	// auth.login (`mortar login`). Defaults to the first of: the
	// MORTAR_TOKEN environment variable; the file MORTAR_TOKEN_FILE names;
	// the local admin credential a node on this machine wrote into its
	// data dir (MORTAR_DATA_DIR, else ./mortar-data), readable only by the
	// user that runs the node. LocalToken resolves it.
	Token string
	// RunAs makes every API request run as this user (Shiro's run-as): the
	// credential's subject must be permitted auth:runas:USER. Empty means
	// the credential's own subject.
	RunAs string
	// User and Password log in instead of a Token: the connection
	// presents them to the node, and Dial starts a login session
	// (auth.login) whose token every API request then carries. A session
	// ends (after 12 hours at most, by default); long-running services
	// use API keys.
	User, Password string
	// NATSOptions are applied last, for what mortar does not wrap (TLS,
	// an in-process dialer, a user and password instead of Token).
	NATSOptions []nats.Option
}

// Environment variables and files LocalToken reads.
const (
	EnvToken            = "MORTAR_TOKEN"
	EnvTokenFile        = "MORTAR_TOKEN_FILE"
	EnvDataDir          = "MORTAR_DATA_DIR"
	DataDirDefault      = "./mortar-data"
	LocalCredentialFile = "admin.credential"
)

// LocalToken returns the credential a client on this machine uses when
// it is given none (see Options.Token), and where it came from; "" when
// there is none.
func LocalToken() (token, source string) {
	if t := strings.TrimSpace(os.Getenv(EnvToken)); t != "" {
		return t, EnvToken
	}
	path, source := os.Getenv(EnvTokenFile), EnvTokenFile
	if path == "" {
		path = filepath.Join(cmp.Or(os.Getenv(EnvDataDir), DataDirDefault), LocalCredentialFile)
		source = path
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", ""
	}
	return strings.TrimSpace(string(b)), source
}

// Conn is a connection to a mortar node, or to any node of a cluster. It
// reconnects on its own; the SDK packages (registry, config, …) build on
// it. A Conn is safe for concurrent use.
type Conn struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	log     *slog.Logger
	attempt time.Duration
	token   string    // the credential every API request carries
	runAs   string    // the user every API request runs as, if any
	expires time.Time // when a login session's token ends
}

// login starts a session and makes its token the Conn's credential.
func (c *Conn) login(ctx context.Context, user, password string) error {
	var resp struct {
		Token   string    `json:"token"`
		Expires time.Time `json:"expires"`
	}
	req := map[string]string{"user": user, "password": password}
	if err := c.Do(ctx, "auth.login", req, &resp); err != nil {
		return err
	}
	c.token, c.expires = resp.Token, resp.Expires
	return nil
}

// Session returns the token of the session Dial started for
// Options.User, and when it ends; "" without one.
func (c *Conn) Session() (token string, expires time.Time) {
	if c.expires.IsZero() {
		return "", time.Time{}
	}
	return c.token, c.expires
}

// Dial connects to the node or nodes at urls, a comma-separated list of
// nats:// URLs (empty means DefaultURL). It returns once connected, or
// with ctx's error. The connection then reconnects forever, across the
// given nodes and those the cluster announces.
func Dial(ctx context.Context, urls string, opts *Options) (*Conn, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	o.Name = cmp.Or(o.Name, filepath.Base(os.Args[0]))
	o.ReconnectWait = cmp.Or(o.ReconnectWait, ReconnectWaitDefault)
	o.AttemptTimeout = cmp.Or(o.AttemptTimeout, AttemptTimeoutDefault)
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	log := o.Logger.With("component", "mortar.conn")
	if o.Token == "" && o.User == "" {
		var source string
		if o.Token, source = LocalToken(); o.Token != "" {
			log.Debug("using the local credential", "source", source)
		}
	}
	nopts := []nats.Option{
		nats.Name(o.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(o.ReconnectWait),
		nats.ReconnectJitter(o.ReconnectWait/4, o.ReconnectWait/4),
		nats.RetryOnFailedConnect(false),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("disconnected from node", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("reconnected to node", "url", nc.ConnectedUrlRedacted())
		}),
	}
	switch {
	case o.User != "":
		nopts = append(nopts, nats.UserInfo(o.User, o.Password), nats.CustomInboxPrefix(InboxPrefix("", o.User)))
	case o.Token != "":
		nopts = append(nopts, nats.Token(o.Token), nats.CustomInboxPrefix(InboxPrefix(o.Token, "")))
	}
	nopts = append(nopts, o.NATSOptions...)
	urls = cmp.Or(urls, DefaultURL)
	for {
		nc, err := nats.Connect(urls, nopts...)
		if err == nil {
			js, err := jetstream.New(nc)
			if err != nil {
				nc.Close()
				return nil, fmt.Errorf("mortar: dial %s: %w", urls, err)
			}
			c := &Conn{nc: nc, js: js, log: log, attempt: o.AttemptTimeout, token: o.Token, runAs: o.RunAs}
			if o.User != "" {
				if err := c.login(ctx, o.User, o.Password); err != nil {
					nc.Close()
					return nil, fmt.Errorf("mortar: dial %s: %w", urls, err)
				}
			}
			return c, nil
		}
		if !errors.Is(err, nats.ErrNoServers) {
			return nil, fmt.Errorf("mortar: dial %s: %w", urls, err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("mortar: dial %s: %w (%w)", urls, ctx.Err(), err)
		case <-time.After(o.ReconnectWait):
		}
	}
}

// InboxPrefix is the reply-subject prefix of a connection presenting the
// credential token (or, without one, the user name user): a hash of the
// credential. A node admits a connection to subscribe to replies under its
// own prefix and no others, since a plain _INBOX.> would let any client
// read every reply (tokens from auth.login among them). Dial sets it; a
// plain NATS client sets it with nats.CustomInboxPrefix.
func InboxPrefix(token, user string) string {
	cred := token
	if cred == "" {
		cred = "user:" + user
	}
	h := sha256.Sum256([]byte(cred))
	return "_INBOX_" + hex.EncodeToString(h[:8])
}

// NewConn wraps nc, a NATS connection to a node made elsewhere (with
// options mortar does not wrap, or inside a node), in a Conn. Closing the
// Conn closes nc.
func NewConn(nc *nats.Conn, opts *Options) (*Conn, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("mortar: new conn: %w", err)
	}
	log := cmp.Or(o.Logger, slog.Default()).With("component", "mortar.conn")
	return &Conn{nc: nc, js: js, log: log, attempt: cmp.Or(o.AttemptTimeout, AttemptTimeoutDefault), token: o.Token, runAs: o.RunAs}, nil
}

// NATS returns the underlying NATS connection, for subscriptions and for
// anything the SDK does not wrap.
func (c *Conn) NATS() *nats.Conn { return c.nc }

// JetStream returns a JetStream context on the connection.
func (c *Conn) JetStream() jetstream.JetStream { return c.js }

// Close drains nothing and closes the connection. Subscriptions made on
// it end.
func (c *Conn) Close() { c.nc.Close() }

// Do performs the node API operation op (for example "config.set") with
// req encoded as JSON, and decodes the reply into resp unless resp is
// nil. An API error comes back as *Error. When the node set cannot answer
// (no responders during a failover, a lost reply), Do retries with the
// same request ID, which the node uses to apply a write once, until ctx
// ends.
func (c *Conn) Do(ctx context.Context, op string, req, resp any) error {
	body, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("mortar: %s: encode request: %w", op, err)
	}
	msg := nats.NewMsg(APISubjectPrefix + op)
	msg.Data = body
	msg.Header.Set(HeaderRequestID, NewID())
	if c.token != "" {
		msg.Header.Set(HeaderAuthorization, "Bearer "+c.token)
	}
	if c.runAs != "" && op != "auth.login" {
		msg.Header.Set(HeaderRunAs, c.runAs)
	}
	backoff := 20 * time.Millisecond
	for {
		reply, err := c.attemptRequest(ctx, msg)
		if err == nil {
			return decodeReply(op, reply, resp)
		}
		if ctx.Err() != nil {
			return fmt.Errorf("mortar: %s: %w", op, ctx.Err())
		}
		if !retryable(err) {
			return fmt.Errorf("mortar: %s: %w", op, err)
		}
		c.log.Debug("retrying api request", "op", op, "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("mortar: %s: %w (last attempt: %w)", op, ctx.Err(), err)
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, time.Second)
	}
}

func (c *Conn) attemptRequest(ctx context.Context, msg *nats.Msg) (*nats.Msg, error) {
	actx, cancel := context.WithTimeout(ctx, c.attempt)
	defer cancel()
	reply, err := c.nc.RequestMsgWithContext(actx, msg)
	if err != nil {
		return nil, err
	}
	if code := reply.Header.Get(HeaderError); Code(code) == CodeUnavailable {
		return nil, replyError(reply)
	}
	return reply, nil
}

func retryable(err error) bool {
	return errors.Is(err, nats.ErrNoResponders) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrConnectionReconnecting) ||
		ErrorCode(err) == CodeUnavailable
}

func decodeReply(op string, reply *nats.Msg, resp any) error {
	if reply.Header.Get(HeaderError) != "" {
		return fmt.Errorf("mortar: %s: %w", op, replyError(reply))
	}
	if resp == nil {
		return nil
	}
	if err := json.Unmarshal(reply.Data, resp); err != nil {
		return fmt.Errorf("mortar: %s: decode reply: %w", op, err)
	}
	return nil
}

func replyError(reply *nats.Msg) *Error {
	var e Error
	if err := json.Unmarshal(reply.Data, &e); err != nil || e.Code == "" {
		return &Error{Code: Code(reply.Header.Get(HeaderError)), Message: string(reply.Data)}
	}
	return &e
}

// NewID returns a random 128-bit identifier in hex, for request and
// instance IDs.
func NewID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
