package auth

import (
	"encoding/json"
	"fmt"
	"sync"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/internal/authwire"
	"github.com/nats-io/nats.go"
)

// SessionEvent is a login session starting, being ended (logout or
// revocation: "stop") or expiring (its idle timeout passed: "expire"):
// Shiro's SessionListener, across the cluster.
type SessionEvent = authwire.SessionEvent

// Session event kinds.
const (
	SessionStart  = "start"
	SessionStop   = "stop"
	SessionExpire = "expire"
)

// sessionSeen bounds the events a listener remembers to drop the copies
// other nodes announce.
const sessionSeen = 4096

// SessionListener receives the session events the nodes announce. Each
// node of a cluster announces a stop or an expiry it sees; the listener
// passes on one per session and kind. The connection's subject needs a
// permission on auth:session (say auth:session:read) to listen.
type SessionListener struct {
	sub *nats.Subscription

	mu   sync.Mutex
	seen map[string]bool

	callMu  sync.Mutex // held while fn runs
	stopped bool       // guarded by callMu
}

// ListenSessions calls fn, on one goroutine, with every session event
// until Stop.
func ListenSessions(conn *mortar.Conn, fn func(SessionEvent)) (*SessionListener, error) {
	l := &SessionListener{seen: map[string]bool{}}
	sub, err := conn.NATS().Subscribe(authwire.SessionEventPrefix+"*", func(m *nats.Msg) {
		var e SessionEvent
		if json.Unmarshal(m.Data, &e) != nil || !l.first(e) {
			return
		}
		l.callMu.Lock()
		defer l.callMu.Unlock()
		if !l.stopped {
			fn(e)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("auth: listen to sessions: %w", err)
	}
	if err := conn.NATS().Flush(); err != nil {
		sub.Unsubscribe()
		return nil, fmt.Errorf("auth: listen to sessions: %w", err)
	}
	l.sub = sub
	return l, nil
}

// first reports whether e is the first copy of its event.
func (l *SessionListener) first(e SessionEvent) bool {
	key := e.Kind + "\x00" + e.User + "\x00" + e.Session
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seen[key] {
		return false
	}
	if len(l.seen) >= sessionSeen {
		clear(l.seen)
	}
	l.seen[key] = true
	return true
}

// Stop ends the listening; fn is not called after Stop returns.
func (l *SessionListener) Stop() {
	l.sub.Unsubscribe()
	l.callMu.Lock()
	l.stopped = true
	l.callMu.Unlock()
}
