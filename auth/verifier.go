package auth

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/internal/authwire"
	"github.com/mortarhq/mortar/internal/msgpack"
	"github.com/mortarhq/mortar/rpc"
	"github.com/nats-io/nats.go"
)

// Defaults of VerifierConfig.
const (
	VerifierTTLDefault  = 30 * time.Second
	VerifierSizeDefault = 10000
)

// RPCHeader is the event header key that carries a caller's credential on
// an RPC call. Any zerorpc client can set it.
const RPCHeader = "auth"

// VerifierConfig configures a Verifier. A nil *VerifierConfig means
// defaults.
type VerifierConfig struct {
	// TTL bounds how long a verified credential is trusted without asking
	// the node again. The node also announces every change to users,
	// roles and keys and every ended session, and the Verifier then
	// forgets everything at once; TTL bounds the staleness should a
	// notice be lost. Defaults to VerifierTTLDefault.
	TTL time.Duration
	// Size bounds the credentials remembered. Defaults to
	// VerifierSizeDefault.
	Size int
}

// Verifier resolves credentials that callers present to a service (on an
// RPC call, say) into subjects, asking the node (auth.verify) and caching
// the answer, so that a check on the hot path is a map lookup and a walk
// of the subject's compiled grants. It is safe for concurrent use.
type Verifier struct {
	conn *mortar.Conn
	ttl  time.Duration
	size int
	sub  *nats.Subscription

	mu      sync.RWMutex
	entries map[string]verified

	perms     sync.Map     // rpc:call permission by callKey
	permCount atomic.Int64 // entries in perms, bounded: method names come from callers
}

// maxCallPermissions bounds the parsed rpc:call permissions a Verifier
// keeps.
const maxCallPermissions = 4096

// callKey names a method of a service.
type callKey struct{ service, method string }

type verified struct {
	s     *Subject
	until time.Time
}

// NewVerifier returns a Verifier asking the node conn is connected to.
// Close it to stop listening for changes.
func NewVerifier(conn *mortar.Conn, cfg *VerifierConfig) (*Verifier, error) {
	var c VerifierConfig
	if cfg != nil {
		c = *cfg
	}
	if c.TTL < 0 || c.Size < 0 {
		return nil, errors.New("auth: verifier: negative TTL or size")
	}
	v := &Verifier{
		conn:    conn,
		ttl:     cmp.Or(c.TTL, VerifierTTLDefault),
		size:    cmp.Or(c.Size, VerifierSizeDefault),
		entries: map[string]verified{},
	}
	sub, err := conn.NATS().Subscribe(authwire.EventSubject, func(*nats.Msg) { v.Purge() })
	if err != nil {
		return nil, fmt.Errorf("auth: verifier: %w", err)
	}
	v.sub = sub
	return v, nil
}

// Close stops listening for changes; the Verifier keeps answering from
// the node and its cache.
func (v *Verifier) Close() { v.sub.Unsubscribe() }

// Purge forgets every verified credential.
func (v *Verifier) Purge() {
	v.mu.Lock()
	clear(v.entries)
	v.mu.Unlock()
}

// Subject returns the subject credential stands for. A credential the node
// refuses is an error with code unauthenticated.
func (v *Verifier) Subject(ctx context.Context, credential string) (*Subject, error) {
	if s := v.cached([]byte(credential)); s != nil {
		return s, nil
	}
	return v.verify(ctx, credential)
}

// cached returns the subject of a credential verified before and not yet
// due again, without allocating.
func (v *Verifier) cached(credential []byte) *Subject {
	v.mu.RLock()
	e, ok := v.entries[string(credential)]
	v.mu.RUnlock()
	if ok && time.Now().Before(e.until) {
		return e.s
	}
	return nil
}

// verify asks the node for credential's subject and remembers it.
func (v *Verifier) verify(ctx context.Context, credential string) (*Subject, error) {
	now := time.Now()
	if credential == "" {
		return nil, mortar.Errorf(mortar.CodeUnauthenticated, "credentials required")
	}
	var resp authwire.VerifyResponse
	if err := v.conn.Do(ctx, "auth.verify", authwire.VerifyRequest{Credential: credential}, &resp); err != nil {
		return nil, err
	}
	info := SubjectInfo{Principal: resp.Principal, Realm: resp.Realm, Roles: resp.Roles}
	for _, p := range resp.Permissions {
		if pp, err := ParsePermission(p); err == nil {
			info.Permissions = append(info.Permissions, pp)
		}
	}
	s := NewSubject(info)
	until := now.Add(v.ttl)
	if !resp.Expires.IsZero() && resp.Expires.Before(until) {
		until = resp.Expires
	}
	v.mu.Lock()
	if len(v.entries) >= v.size {
		for k := range v.entries { // evict one, whichever the map yields
			delete(v.entries, k)
			break
		}
	}
	v.entries[credential] = verified{s: s, until: until}
	v.mu.Unlock()
	return s, nil
}

// RPCServer returns an rpc server interceptor that admits a call only when
// the credential in its RPCHeader stands for a subject permitted
// "rpc:call:SERVICE:METHOD" (service and method escaped with EscapePart).
// The handler finds the subject with SubjectFrom. A refused call gets an
// ERR named "Unauthenticated" or "PermissionDenied".
func (v *Verifier) RPCServer(service string) rpc.Interceptor {
	return func(ctx context.Context, req *rpc.Request, next func(context.Context) error) error {
		s, err := v.callSubject(ctx, req)
		if err != nil {
			if mortar.ErrorCode(err) == mortar.CodeUnauthenticated {
				return &rpc.RemoteError{Name: "Unauthenticated", Message: mortar.ErrorMessage(err)}
			}
			return err
		}
		p := v.callPermission(service, req.Method)
		if !s.IsPermittedPerm(p) {
			return &rpc.RemoteError{Name: "PermissionDenied", Message: "permission denied: " + p.String()}
		}
		return next(WithSubject(ctx, s))
	}
}

// callSubject returns the subject of the credential in req's header: from
// the cache straight off the header's bytes when it can.
func (v *Verifier) callSubject(ctx context.Context, req *rpc.Request) (*Subject, error) {
	if b, _, err := msgpack.ReadStringBytes(req.HeaderValue(RPCHeader)); err == nil {
		if s := v.cached(b); s != nil {
			return s, nil
		}
	}
	return v.verify(ctx, req.Header().String(RPCHeader))
}

// callPermission returns rpc:call:service:method, parsed once per method.
func (v *Verifier) callPermission(service, method string) Permission {
	key := callKey{service, method}
	if p, ok := v.perms.Load(key); ok {
		return p.(Permission)
	}
	p, err := ParsePermission("rpc:call:" + EscapePart(service) + ":" + EscapePart(method))
	if err != nil {
		// A name EscapePart cannot make one subpart of: nothing implies
		// it but a grant of everything.
		p = MustParsePermission("rpc:call:" + EscapePart(service) + ":%00")
	}
	if v.permCount.Add(1) <= maxCallPermissions {
		v.perms.Store(key, p)
	}
	return p
}

// RPCClient returns an rpc client interceptor that sends credential in
// every call's RPCHeader.
func RPCClient(credential string) rpc.Interceptor {
	return func(ctx context.Context, req *rpc.Request, next func(context.Context) error) error {
		if err := req.Header().Set(RPCHeader, credential); err != nil {
			return err
		}
		return next(ctx)
	}
}
