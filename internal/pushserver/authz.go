package pushserver

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/auth"
	"github.com/mortarhq/mortar/internal/pushwire"
)

// TokenPermsDefault are the permissions of a connection whose push token
// names none: it may subscribe and publish to any channel, as before
// tokens could say.
var TokenPermsDefault = []string{"push:subscribe:*", "push:publish:*"}

// maxTokenSubjects bounds the compiled permission sets of push tokens the
// node keeps: tokens with the same perms share one.
const maxTokenSubjects = 1024

// subjects compiles and caches the subjects of push-token connections.
type subjects struct {
	mu sync.Mutex
	m  map[string]*auth.Subject
}

// forToken returns the subject of a connection admitted by claims: its
// perms, or the defaults, compiled once per distinct set.
func (s *Server) tokenSubject(claims pushwire.Claims) (*auth.Subject, error) {
	perms := claims.Perms
	if len(perms) == 0 {
		perms = s.cfg.TokenPerms
	}
	key := strings.Join(perms, "\x00")
	s.subs.mu.Lock()
	defer s.subs.mu.Unlock()
	if sub := s.subs.m[key]; sub != nil {
		return sub, nil
	}
	info := auth.SubjectInfo{Principal: claims.User, Realm: "push-token"}
	for _, p := range perms {
		pp, err := auth.ParsePermission(p)
		if err != nil {
			return nil, err
		}
		info.Permissions = append(info.Permissions, pp)
	}
	sub := auth.NewSubject(info)
	if s.subs.m == nil {
		s.subs.m = map[string]*auth.Subject{}
	}
	if len(s.subs.m) < maxTokenSubjects {
		s.subs.m[key] = sub
	}
	return sub, nil
}

// errNotPushToken marks a connect token that is not a push token (so it
// may be a mortar credential).
func notPushToken(err error) bool {
	return errors.Is(err, pushwire.ErrTokenMalformed) || errors.Is(err, pushwire.ErrTokenSignature)
}

// credentialClaims admits a connection by a mortar credential (a session
// token or an API key): the user is its principal, the client ID the one
// the client names, or a new one.
func (s *Server) credentialClaims(token, client, remote string) (pushwire.Claims, *auth.Subject, error) {
	ctx, cancel := context.WithTimeout(context.Background(), engineTimeout)
	defer cancel()
	sub, err := s.cfg.Authenticate(ctx, token, remote)
	if err != nil {
		return pushwire.Claims{}, nil, err
	}
	if client == "" {
		client = sub.Principal() + "-" + mortar.NewID()[:8]
	}
	if err := pushwire.CheckName("client ID", client, pushwire.MaxClientLen); err != nil {
		return pushwire.Claims{}, nil, mortar.Errorf(mortar.CodeInvalidArgument, "%v", err)
	}
	return pushwire.Claims{Client: client, User: sub.Principal(), IssuedAt: time.Now().Unix()}, sub, nil
}

// checkChannelPerm checks that c may act on channel: action is
// "subscribe" or "publish".
func checkChannelPerm(c *conn, action, channel string) error {
	if c.subject == nil {
		return mortar.Errorf(mortar.CodePermissionDenied, "permission denied: push:%s:%s", action, channel)
	}
	return c.subject.CheckPermission("push:" + action + ":" + auth.EscapePart(channel))
}

// checkDelegation checks that the caller of push.token holds every
// permission it asks the token to carry.
func checkDelegation(ctx context.Context, perms []string) error {
	sub, ok := auth.SubjectFrom(ctx)
	for _, p := range perms {
		if _, err := auth.ParsePermission(p); err != nil {
			return mortar.Errorf(mortar.CodeInvalidArgument, "perms: %v", err)
		}
		if ok && !sub.IsPermitted(p) {
			return mortar.Errorf(mortar.CodePermissionDenied, "permission denied: a token cannot carry %s, which the caller does not hold", p)
		}
	}
	if len(perms) > 64 || slices.Contains(perms, "") {
		return mortar.Errorf(mortar.CodeInvalidArgument, "perms: 1 to 64 non-empty permissions")
	}
	return nil
}
