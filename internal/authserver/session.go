package authserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/auth"
	"github.com/mortarhq/mortar/internal/authwire"
	"github.com/mortarhq/mortar/internal/store"
	"github.com/nats-io/nats.go/jetstream"
)

// login authenticates a user name and password (or a remember-me token,
// or an OIDC ID token) and starts a session. Every failure is errInvalid
// or a throttle refusal, whichever part was wrong; the audit log has the
// reason.
func (s *Server) login(ctx context.Context, req *authwire.LoginRequest, addr string) (*authwire.LoginResponse, error) {
	now := s.cfg.Now()
	if req.RememberToken != "" {
		return s.loginRemembered(ctx, req, addr)
	}
	if req.IDToken != "" {
		return s.loginIDToken(ctx, req, addr)
	}
	if wait, ok := s.throttle.Check(req.User, addr, now); !ok {
		s.audit.record(authwire.AuditEntry{Kind: "login.throttled", Principal: req.User, Addr: addr})
		return nil, mortar.Errorf(mortar.CodeResourceExhausted, "too many failed logins; retry in %s", wait.Round(time.Second))
	}
	sub, err := s.authn.Authenticate(ctx, auth.UsernamePassword{Username: req.User, Password: req.Password, TOTP: req.TOTP, Addr: addr})
	if err != nil {
		if errors.Is(err, auth.ErrInvalidCredentials) {
			s.throttle.Failed(req.User, addr, now)
			s.audit.record(authwire.AuditEntry{Kind: "login.fail", Principal: req.User, Addr: addr, Detail: auth.FailureReason(err)})
			return nil, errInvalid
		}
		s.throttle.Succeeded(req.User, addr, now) // not the caller's fault: release the attempt
		return nil, err
	}
	s.throttle.Succeeded(req.User, addr, now)
	resp, err := s.startSession(ctx, sub.Principal(), addr)
	if err != nil {
		return nil, err
	}
	if req.Remember {
		if resp.RememberToken, err = s.remember(ctx, sub.Principal()); err != nil {
			return nil, err
		}
	}
	s.audit.record(authwire.AuditEntry{Kind: "login.ok", Principal: sub.Principal(), Addr: addr, Target: resp.Session})
	return resp, nil
}

// startSession stores a new session of user and issues its token.
func (s *Server) startSession(ctx context.Context, user, addr string) (*authwire.LoginResponse, error) {
	now := s.cfg.Now().UTC()
	r := &sessionRecord{ID: authwire.Random(16), User: user, Created: now, Expires: now.Add(s.cfg.SessionMax), LastUsed: now, Addr: addr}
	b, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	key := sessionKey(user, r.ID)
	if r.rev, err = s.st.RenewSession(ctx, key, b, s.cfg.SessionIdle, 0); err != nil {
		return nil, store.APIError(err)
	}
	s.mu.Lock()
	s.sessions[key] = r
	s.mu.Unlock()
	s.sessionEvent("start", r)
	tok, err := s.keyring.Issue(auth.Claims{Subject: user, SessionID: r.ID, Kind: "session", ExpiresAt: r.Expires})
	if err != nil {
		return nil, fmt.Errorf("authserver: issue token: %w", err)
	}
	return &authwire.LoginResponse{User: user, Token: tok, Session: r.ID, Expires: r.Expires}, nil
}

// remember stores a remember-me token for user: an opaque random secret,
// kept as its hash, never anything to deserialize.
func (s *Server) remember(ctx context.Context, user string) (string, error) {
	now := s.cfg.Now().UTC()
	id, secret := authwire.Random(12), authwire.Random(32)
	tok := authwire.RememberPrefix + authwire.EncodeName(user) + "." + id + "." + secret
	r := &sessionRecord{ID: id, User: user, Created: now, Expires: now.Add(s.cfg.RememberTTL), LastUsed: now, Hash: authwire.HashSecret(tok)}
	b, err := json.Marshal(r)
	if err != nil {
		return "", err
	}
	if _, err := s.st.RenewSession(ctx, rememberKey(user, id), b, s.cfg.RememberTTL, 0); err != nil {
		return "", store.APIError(err)
	}
	return tok, nil
}

// loginRemembered spends a remember-me token for a new session and a new
// token. A token is good once: a stolen one that is used first makes the
// owner's next use fail, which the audit log shows.
func (s *Server) loginRemembered(ctx context.Context, req *authwire.LoginRequest, addr string) (*authwire.LoginResponse, error) {
	fail := func(detail string) error {
		s.audit.record(authwire.AuditEntry{Kind: "login.fail", Addr: addr, Detail: "remember-me token: " + detail})
		return errInvalid
	}
	rest, ok := strings.CutPrefix(req.RememberToken, authwire.RememberPrefix)
	parts := strings.Split(rest, ".")
	if !ok || len(parts) != 3 || len(req.RememberToken) > authwire.MaxCredentialLen {
		return nil, fail("malformed")
	}
	user, err := authwire.DecodeName(parts[0])
	if err != nil || !authwire.ValidName(user) {
		return nil, fail("malformed")
	}
	key := rememberKey(user, parts[1])
	b, rev, err := s.st.KVGet(ctx, store.SessionsBucket, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, fail("unknown or spent")
	}
	if err != nil {
		return nil, store.APIError(err)
	}
	var r sessionRecord
	if json.Unmarshal(b, &r) != nil || !authwire.SameHash(r.Hash, authwire.HashSecret(req.RememberToken)) {
		return nil, fail("wrong secret")
	}
	// Spend it: only the one delete that finds this revision wins.
	if err := s.st.Sessions.Delete(ctx, key, jetstream.LastRevision(rev)); err != nil {
		if isConflict(err) {
			return nil, fail("spent concurrently")
		}
		return nil, store.APIError(err)
	}
	if !s.cfg.Now().Before(r.Expires) {
		return nil, fail("expired")
	}
	if _, err := s.subject(ctx, user); err != nil {
		if errors.Is(err, errBadCredential) {
			return nil, fail(err.Error())
		}
		return nil, err
	}
	resp, err := s.startSession(ctx, user, addr)
	if err != nil {
		return nil, err
	}
	if resp.RememberToken, err = s.remember(ctx, user); err != nil {
		return nil, err
	}
	s.audit.record(authwire.AuditEntry{Kind: "login.ok", Principal: user, Addr: addr, Target: resp.Session, Detail: "remember-me"})
	return resp, nil
}

// applySession applies one change of the sessions bucket to the cache.
func (s *Server) applySession(e jetstream.KeyValueEntry) {
	key := e.Key()
	if strings.Count(key, ".") != 1 {
		return // remember-me tokens are read when used
	}
	if e.Operation() != jetstream.KeyValuePut {
		kind := "stop"
		if e.Operation() == jetstream.KeyValuePurge {
			kind = "expire"
		}
		s.endSession(key, kind)
		return
	}
	r, ok := decodeEntry[sessionRecord](s, e)
	if !ok {
		return
	}
	r.rev = e.Revision()
	s.mu.Lock()
	s.sessions[key] = r
	s.mu.Unlock()
}

// endSession forgets the session at key, if this node still knows it, and
// tells of its end (kind "stop" or "expire"): the audit log (every node
// ends it; the log keeps one entry), session listeners, verifiers, and the
// NATS connections that presented its token.
func (s *Server) endSession(key, kind string) {
	s.mu.Lock()
	r := s.sessions[key]
	delete(s.sessions, key)
	delete(s.touched, key)
	s.mu.Unlock()
	if r == nil {
		return
	}
	s.audit.recordOnce(key+"."+kind, authwire.AuditEntry{Kind: "session." + kind, Principal: r.User, Target: r.ID})
	s.sessionEvent(kind, r)
	s.changed()
	s.kickNATS([]kickTarget{{r.User, sessionTag(r.ID)}})
}

// sessionEvent announces a session's start, stop or expiry to listeners
// (auth.ListenSessions), once the initial state is loaded.
func (s *Server) sessionEvent(kind string, r *sessionRecord) {
	if !s.loaded.Load() {
		return
	}
	b, err := json.Marshal(authwire.SessionEvent{Kind: kind, User: r.User, Session: r.ID, Time: s.cfg.Now().UTC(), Node: s.cfg.NodeName})
	if err != nil {
		return
	}
	s.st.JetStream().Conn().Publish(authwire.SessionEventPrefix+kind, b)
}

// liveSession returns user's session id if it is alive, and marks it used.
func (s *Server) liveSession(ctx context.Context, user, id string) (*sessionRecord, error) {
	key := sessionKey(user, id)
	s.mu.RLock()
	r := s.sessions[key]
	s.mu.RUnlock()
	if r == nil {
		// Perhaps started on another node a moment ago.
		if !s.misses.Allow() {
			return nil, bad("session %s of %s not in the cache, and store reads for unknown sessions are rate limited", id, user)
		}
		b, _, err := s.st.KVGet(ctx, store.SessionsBucket, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil, bad("session %s of %s ended", id, user)
		}
		if err != nil {
			return nil, store.APIError(err)
		}
		var rec sessionRecord
		if err := json.Unmarshal(b, &rec); err != nil {
			return nil, bad("session %s of %s: %v", id, user, err)
		}
		r = &rec
	}
	if !s.cfg.Now().Before(r.Expires) {
		return nil, bad("session %s of %s expired", id, user)
	}
	s.mu.Lock()
	s.touched[key] = true
	s.mu.Unlock()
	return r, nil
}

// renewSessions keeps used sessions alive: every quarter of the idle
// timeout, each session used since the last round is written again with
// a fresh TTL. An unused session expires an idle timeout after its last
// renewal.
func (s *Server) renewSessions(ctx context.Context) {
	t := time.NewTicker(max(s.cfg.SessionIdle/4, 250*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.mu.Lock()
		var due []*sessionRecord
		for key := range s.touched {
			if r := s.sessions[key]; r != nil {
				c := *r
				due = append(due, &c)
			}
		}
		clear(s.touched)
		s.mu.Unlock()
		now := s.cfg.Now().UTC()
		for _, r := range due {
			r.LastUsed = now
			b, _ := json.Marshal(r)
			_, err := s.st.RenewSession(ctx, sessionKey(r.User, r.ID), b, s.cfg.SessionIdle, r.rev)
			switch {
			case err == nil || ctx.Err() != nil:
			case isConflict(err):
				// Ended meanwhile, or renewed by another node: either way
				// it is not this node's to write.
				s.log.Debug("session changed before its renewal", "user", r.User, "session", r.ID)
			default:
				s.log.Warn("renew session", "user", r.User, "session", r.ID, "err", err)
			}
		}
	}
}

// revokeSessions ends user's session id, or all of user's sessions and
// remember-me tokens when id is empty; it returns how many ended.
func (s *Server) revokeSessions(ctx context.Context, user, id string) (int, error) {
	var keys []string
	if id != "" {
		keys = []string{sessionKey(user, id)}
	} else {
		lister, err := s.st.Sessions.ListKeysFiltered(ctx, authwire.EncodeName(user)+".>")
		if err != nil {
			return 0, store.APIError(err)
		}
		for k := range lister.Keys() {
			keys = append(keys, k)
		}
	}
	n := 0
	for _, k := range keys {
		if _, _, err := s.st.KVGet(ctx, store.SessionsBucket, k); err != nil {
			if errors.Is(err, jetstream.ErrKeyNotFound) {
				continue
			}
			return n, store.APIError(err)
		}
		if err := s.st.Sessions.Delete(ctx, k); err != nil {
			return n, store.APIError(err)
		}
		s.endSession(k, "stop") // at once here; the watch tells the other nodes
		n++
	}
	return n, nil
}
