// Package authserver is the node's half of the security layer: users,
// roles, API keys, login sessions, token signing keys and the audit log in
// the replicated store; the "auth.*" API operations; authentication of
// every credential the node's surfaces receive (api.Authenticator, NATS
// connections); and the bootstrap of a new installation.
//
// Every node watches the auth bucket and keeps users, roles, keys and
// signing keys in memory, and the sessions bucket for live sessions; a
// compiled subject is cached per principal and the cache is dropped on
// any change to users or roles, so a revoked role or key stops working on
// every node within a watch round trip. A credential the watch has not
// delivered yet (created a moment ago on another node) is read from the
// store.
package authserver

import (
	"cmp"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/auth"
	"github.com/mortarhq/mortar/internal/authwire"
	"github.com/mortarhq/mortar/internal/store"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
)

// Defaults of Config.
const (
	SessionIdleDefault = 30 * time.Minute
	SessionMaxDefault  = 12 * time.Hour
	RememberTTLDefault = 30 * 24 * time.Hour
	AdminUser          = "admin"
	AdminRole          = "admin"
)

// Config configures a Server.
type Config struct {
	Store    *store.Store
	NodeName string
	// Internal is the credential of the node's own connections and
	// in-process calls (NewInternalCredential). Defaults to a new one.
	Internal string
	// DataDir is where the node writes the local admin credential
	// (authwire.LocalCredentialFile, mode 0600). Empty: none is written.
	DataDir string
	// AdminPassword is the bootstrap admin's password on a new
	// installation. Defaults to a generated one, printed once to Announce.
	AdminPassword string
	// Announce receives the generated bootstrap password. Defaults to the
	// log.
	Announce io.Writer
	// SessionIdle ends a session unused this long. Defaults to
	// SessionIdleDefault.
	SessionIdle time.Duration
	// SessionMax ends a session this long after login, used or not; it is
	// also a session token's lifetime. Defaults to SessionMaxDefault.
	SessionMax time.Duration
	// RememberTTL is a remember-me token's lifetime. Defaults to
	// RememberTTLDefault.
	RememberTTL time.Duration
	// Hasher hashes passwords. Defaults to auth.NewHasher(nil).
	Hasher *auth.Hasher
	// Throttle limits login attempts. Defaults to auth.NewThrottle(nil).
	Throttle *auth.Throttle
	// Realms are more realms to log in with, after the store's own;
	// Strategy combines them. Defaults to none and AtLeastOneSuccessful.
	Realms   []auth.Realm
	Strategy auth.Strategy
	// OIDC turns on logins through an OpenID Connect identity provider
	// (OIDCHandler, and ID tokens on auth.login); its realm comes right
	// after the store's. Nil: off.
	OIDC    *OIDCConfig
	Logger  *slog.Logger
	Metrics prometheus.Registerer
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
}

// Server is the node's security layer.
type Server struct {
	cfg      Config
	st       *store.Store
	log      *slog.Logger
	hasher   *auth.Hasher
	throttle *auth.Throttle
	totp     *auth.TOTPVerifier
	keyring  *auth.Keyring
	tokens   *auth.TokenCache
	authn    *auth.Authenticator
	internal string // the credential of the node's own connections
	node     *auth.Subject
	ready    chan struct{}
	audit    *auditor
	oidc     *oidcLogin // nil: OIDC login is off

	// misses bounds the store reads for credentials the cache does not
	// know (made a moment ago on another node, or made up).
	misses *rate.Limiter

	signingMu sync.Mutex  // serializes changes to the keyring's set
	loaded    atomic.Bool // the initial state is loaded: changes are news
	kick      atomic.Pointer[func([]kickTarget)]
	kicks     chan kickReq // disconnections waiting for their grace

	mu       sync.RWMutex
	users    map[string]*userRecord // by name
	roles    map[string]*roleRecord
	keys     map[string]*keyRecord // API keys by ID
	sessions map[string]*sessionRecord
	subjects map[string]*auth.Subject // compiled, by principal; dropped on any change
	gen      uint64                   // counts changes to users and roles
	touched  map[string]bool          // sessions used since the last renewal
}

// missRate is how many store reads per second credentials missing from
// the cache may cost.
const missRate = 200

// New validates cfg and returns a Server; Run loads the state and serves.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil {
		return nil, errors.New("authserver: no store")
	}
	cfg.SessionIdle = cmp.Or(cfg.SessionIdle, SessionIdleDefault)
	cfg.SessionMax = cmp.Or(cfg.SessionMax, SessionMaxDefault)
	cfg.RememberTTL = cmp.Or(cfg.RememberTTL, RememberTTLDefault)
	if cfg.SessionIdle < time.Second || cfg.SessionMax < time.Second || cfg.RememberTTL < time.Second {
		return nil, errors.New("authserver: session timeouts must be at least 1s")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.OIDC != nil {
		if err := cfg.OIDC.Validate(); err != nil {
			return nil, err
		}
	}
	var err error
	if cfg.Hasher == nil {
		if cfg.Hasher, err = auth.NewHasher(nil); err != nil {
			return nil, fmt.Errorf("authserver: %w", err)
		}
	}
	if cfg.Throttle == nil {
		if cfg.Throttle, err = auth.NewThrottle(nil); err != nil {
			return nil, fmt.Errorf("authserver: %w", err)
		}
	}
	totp, err := auth.NewTOTPVerifier(nil)
	if err != nil {
		return nil, fmt.Errorf("authserver: %w", err)
	}
	s := &Server{
		cfg:      cfg,
		st:       cfg.Store,
		log:      cfg.Logger.With("component", "auth"),
		hasher:   cfg.Hasher,
		throttle: cfg.Throttle,
		totp:     totp,
		keyring:  auth.NewKeyring(&auth.KeyringConfig{Now: cfg.Now}),
		tokens:   auth.NewTokenCache(auth.TokenCacheSizeDefault),
		internal: cmp.Or(cfg.Internal, NewInternalCredential()),
		ready:    make(chan struct{}),
		users:    map[string]*userRecord{},
		roles:    map[string]*roleRecord{},
		keys:     map[string]*keyRecord{},
		sessions: map[string]*sessionRecord{},
		subjects: map[string]*auth.Subject{},
		touched:  map[string]bool{},
		misses:   rate.NewLimiter(missRate, 2*missRate),
		kicks:    make(chan kickReq, 1024),
	}
	s.node = auth.NewSubject(auth.SubjectInfo{
		Principal:   "node:" + cfg.NodeName,
		Realm:       "node",
		Roles:       []string{AdminRole},
		Permissions: []auth.Permission{auth.MustParsePermission("*")},
	})
	realms := []auth.Realm{&storeRealm{s}}
	if cfg.OIDC != nil {
		s.oidc = newOIDCLogin(s, *cfg.OIDC)
		realms = append(realms, &oidcRealm{s.oidc})
	}
	s.authn = &auth.Authenticator{Realms: append(realms, cfg.Realms...), Strategy: cfg.Strategy}
	s.audit = newAuditor(s, cfg.Metrics)
	return s, nil
}

// Ready is closed once the state is loaded and the installation
// bootstrapped.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// NewInternalCredential returns a new internal credential: random, and
// never written anywhere.
func NewInternalCredential() string { return "mi_" + authwire.Random(32) }

// InternalCredential is the credential of the node's own connections and
// in-process calls: it stands for a subject permitted everything. It
// never leaves the process.
func (s *Server) InternalCredential() string { return s.internal }

// Run loads the state, bootstraps a new installation, and keeps the state
// current until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	authW, err := s.st.Auth.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("authserver: watch: %w", err)
	}
	defer authW.Stop()
	sessW, err := s.st.Sessions.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("authserver: watch sessions: %w", err)
	}
	defer sessW.Stop()
	if err := s.load(ctx, authW, s.applyAuth); err != nil {
		return err
	}
	if err := s.load(ctx, sessW, s.applySession); err != nil {
		return err
	}
	if err := s.bootstrap(ctx); err != nil {
		return err
	}
	s.loaded.Store(true)
	close(s.ready)
	if s.oidc != nil {
		defer s.oidc.client.CloseIdleConnections()
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { s.audit.run(ctx) })
	wg.Go(func() { s.renewSessions(ctx) })
	wg.Go(func() { s.runKicks(ctx) })
	if s.oidc != nil {
		wg.Go(func() { s.oidc.run(ctx) })
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-authW.Updates():
			if !ok {
				if ctx.Err() != nil {
					return nil // the watcher closes as ctx ends
				}
				return errors.New("authserver: watch ended")
			}
			s.applyAuth(e)
		case e, ok := <-sessW.Updates():
			if !ok {
				if ctx.Err() != nil {
					return nil // the watcher closes as ctx ends
				}
				return errors.New("authserver: session watch ended")
			}
			s.applySession(e)
		}
	}
}

// load applies a watcher's initial values, up to the nil that ends them.
func (s *Server) load(ctx context.Context, w jetstream.KeyWatcher, apply func(jetstream.KeyValueEntry)) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case e, ok := <-w.Updates():
			if !ok {
				return errors.New("authserver: watch ended while loading")
			}
			if e == nil {
				return nil
			}
			apply(e)
		}
	}
}

// Key prefixes of the auth bucket (store.AuthBucket).
const (
	userPrefix    = "u."
	rolePrefix    = "r."
	apiKeyPrefix  = "k."
	signingPrefix = "s."
)

// changed tells verifiers outside the node (auth.Verifier) to drop what
// they cached. Every node hears every change and tells; a verifier drops
// its cache once per notice, which is cheap.
func (s *Server) changed() {
	if s.loaded.Load() {
		s.st.JetStream().Conn().Publish(authwire.EventSubject, nil)
	}
}

// applyAuth applies one change of the auth bucket to the cache.
func (s *Server) applyAuth(e jetstream.KeyValueEntry) {
	defer s.changed()
	var kicked []kickTarget // NATS connections that must reconnect
	defer func() { s.kickNATS(kicked) }()
	k := e.Key()
	del := e.Operation() != jetstream.KeyValuePut
	switch {
	case strings.HasPrefix(k, signingPrefix):
		s.reloadSigningKeys(e)
		return
	case strings.HasPrefix(k, apiKeyPrefix):
		id := strings.TrimPrefix(k, apiKeyPrefix)
		s.mu.Lock()
		defer s.mu.Unlock()
		if del {
			if old := s.keys[id]; old != nil {
				kicked = append(kicked, kickTarget{old.User, apiKeyTag(id)})
			}
			delete(s.keys, id)
			return
		}
		if r, ok := decodeEntry[keyRecord](s, e); ok {
			s.keys[id] = r
		}
		return
	}
	name, err := authwire.DecodeName(k[min(2, len(k)):])
	if err != nil {
		s.log.Warn("skipping a malformed auth key", "key", k)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.subjects)
	s.gen++
	switch {
	case strings.HasPrefix(k, userPrefix):
		old := s.users[name]
		if del {
			delete(s.users, name)
			kicked = append(kicked, kickTarget{principal: name})
			return
		}
		r, ok := decodeEntry[userRecord](s, e)
		if !ok {
			return
		}
		r.rev = e.Revision()
		s.users[name] = r
		if old != nil && (old.Disabled != r.Disabled || !slices.Equal(old.Roles, r.Roles) || !slices.Equal(old.Permissions, r.Permissions)) {
			kicked = append(kicked, kickTarget{principal: name})
		}
	case strings.HasPrefix(k, rolePrefix):
		old := s.roles[name]
		if del {
			delete(s.roles, name)
			kicked = s.holders(name)
			return
		}
		r, ok := decodeEntry[roleRecord](s, e)
		if !ok {
			return
		}
		r.rev = e.Revision()
		s.roles[name] = r
		if old != nil && !slices.Equal(old.Permissions, r.Permissions) {
			kicked = s.holders(name)
		}
	}
}

// decodeEntry decodes a watched entry's value into a T; a malformed one
// is logged and skipped.
func decodeEntry[T any](s *Server, e jetstream.KeyValueEntry) (*T, bool) {
	var r T
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		s.log.Warn("skipping a malformed record", "bucket", e.Bucket(), "key", e.Key(), "err", err)
		return nil, false
	}
	return &r, true
}

// holders returns the connections of the users holding role. s.mu is
// held.
func (s *Server) holders(role string) []kickTarget {
	var out []kickTarget
	for name, u := range s.users {
		if slices.Contains(u.Roles, role) {
			out = append(out, kickTarget{principal: name})
		}
	}
	return out
}

// SetKick gives the server a way to disconnect the NATS connections of
// principals whose grants changed, or that presented a credential that
// was revoked: they reconnect (the SDK does on its own) and get what they
// may do now, or are refused. NATSAuth sets it for the embedded engine.
func (s *Server) SetKick(kick func([]kickTarget)) { s.kick.Store(&kick) }

// kickGrace is how long after a change the NATS connections it concerns
// are disconnected: time for the answer to the request that made the
// change (a logout over that very connection) to leave first.
const kickGrace = 250 * time.Millisecond

type kickReq struct {
	targets []kickTarget
	at      time.Time
}

// kickNATS has the NATS connections targets name disconnected after
// kickGrace, once the initial state is loaded.
func (s *Server) kickNATS(targets []kickTarget) {
	if s.kick.Load() == nil || len(targets) == 0 || !s.loaded.Load() {
		return
	}
	select {
	case s.kicks <- kickReq{targets, time.Now().Add(kickGrace)}:
	default:
		(*s.kick.Load())(targets) // the queue is full: at once
	}
}

// runKicks disconnects queued connections when they are due, until ctx
// ends.
func (s *Server) runKicks(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case r := <-s.kicks:
			t.Reset(time.Until(r.at))
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			(*s.kick.Load())(r.targets)
		}
	}
}

// reloadSigningKeys applies a change of one signing key to the keyring.
func (s *Server) reloadSigningKeys(e jetstream.KeyValueEntry) {
	s.signingMu.Lock()
	defer s.signingMu.Unlock()
	keys := s.keyring.Keys()
	id := strings.TrimPrefix(e.Key(), signingPrefix)
	keys = slices.DeleteFunc(keys, func(k auth.SigningKey) bool { return k.ID == id })
	if e.Operation() == jetstream.KeyValuePut {
		k, err := auth.UnmarshalSigningKey(e.Value())
		if err != nil || k.ID != id {
			s.log.Warn("skipping a malformed signing key", "key", e.Key(), "err", err)
		} else {
			keys = append(keys, k)
		}
	}
	s.keyring.SetKeys(keys)
	s.tokens.Purge()
}

// internalSubject returns the node's subject when cred is the internal
// credential.
func (s *Server) internalSubject(cred string) (*auth.Subject, bool) {
	if len(cred) == len(s.internal) && subtle.ConstantTimeCompare([]byte(cred), []byte(s.internal)) == 1 {
		return s.node, true
	}
	return nil, false
}

// errInvalid is the one answer to every bad credential: it never says
// which part was wrong.
var errInvalid = &mortar.Error{Code: mortar.CodeUnauthenticated, Message: "invalid credentials"}
