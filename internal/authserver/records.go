package authserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/auth"
	"github.com/mortarhq/mortar/internal/authwire"
	"github.com/mortarhq/mortar/internal/store"
	"github.com/nats-io/nats.go/jetstream"
)

// userRecord is a user in the auth bucket ("u.<name>").
type userRecord struct {
	Name        string   `json:"name"`
	Hash        string   `json:"hash,omitempty"` // PHC; empty: no password login
	Roles       []string `json:"roles,omitempty"`
	Permissions []string `json:"permissions,omitempty"`
	TOTP        string   `json:"totp,omitempty"` // base32 secret of the second factor
	// TOTPPending is a second factor enrolled but not yet confirmed with
	// a code: it does not count until auth.totp.confirm.
	TOTPPending string `json:"totp_pending,omitempty"`
	Disabled    bool   `json:"disabled,omitempty"`
	// Realm is "oidc" for a user an OIDC login created; empty for a local
	// one. Only OIDC logins log in as an OIDC user, and never as a local
	// one.
	Realm string `json:"realm,omitempty"`
	// OIDCRoles are the roles the user holds only because the last OIDC
	// login's roles claim named them: the next login takes away those the
	// claim no longer names.
	OIDCRoles []string  `json:"oidc_roles,omitempty"`
	Created   time.Time `json:"created"`
	Updated   time.Time `json:"updated"`

	rev uint64
}

func (u *userRecord) view() authwire.User {
	return authwire.User{
		Name: u.Name, Realm: u.Realm, Roles: nonNil(u.Roles), Permissions: nonNil(u.Permissions),
		Password: u.Hash != "", TOTP: u.TOTP != "", Disabled: u.Disabled,
		Created: u.Created, Updated: u.Updated,
	}
}

// roleRecord is a role in the auth bucket ("r.<name>").
type roleRecord struct {
	Name        string    `json:"name"`
	Permissions []string  `json:"permissions"`
	Created     time.Time `json:"created"`
	Updated     time.Time `json:"updated"`

	rev uint64
}

func (r *roleRecord) view() authwire.Role {
	return authwire.Role{Name: r.Name, Permissions: nonNil(r.Permissions), Created: r.Created, Updated: r.Updated}
}

// keyRecord is an API key in the auth bucket ("k.<id>"): its SHA-256.
type keyRecord struct {
	ID      string    `json:"id"`
	Hash    []byte    `json:"hash"`
	User    string    `json:"user"`
	Name    string    `json:"name,omitempty"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires,omitzero"`
}

func (k *keyRecord) view() authwire.APIKey {
	return authwire.APIKey{ID: k.ID, User: k.User, Name: k.Name, Created: k.Created, Expires: k.Expires}
}

// sessionRecord is a login session in the sessions bucket
// ("<user>.<id>"), or a remember-me token ("<user>.r.<id>", Hash set).
type sessionRecord struct {
	ID       string    `json:"id"`
	User     string    `json:"user"`
	Created  time.Time `json:"created"`
	Expires  time.Time `json:"expires"`
	LastUsed time.Time `json:"last_used"`
	Addr     string    `json:"addr,omitempty"`
	Hash     []byte    `json:"hash,omitempty"` // remember-me tokens only

	rev uint64 // the revision this node last saw
}

func (r *sessionRecord) view() authwire.Session {
	return authwire.Session{ID: r.ID, User: r.User, Created: r.Created, Expires: r.Expires, LastUsed: r.LastUsed, Addr: r.Addr}
}

func userKey(name string) string        { return userPrefix + authwire.EncodeName(name) }
func roleKey(name string) string        { return rolePrefix + authwire.EncodeName(name) }
func sessionKey(user, id string) string { return authwire.EncodeName(user) + "." + id }
func rememberKey(user, id string) string {
	return authwire.EncodeName(user) + ".r." + id
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// getUser returns the user name, from the cache or, when the watch has
// not delivered it yet, from the store. It returns nil for no such user.
func (s *Server) getUser(ctx context.Context, name string) (*userRecord, error) {
	s.mu.RLock()
	u := s.users[name]
	s.mu.RUnlock()
	if u != nil {
		return u, nil
	}
	var r userRecord
	rev, err := s.read(ctx, userKey(name), &r)
	if err != nil || rev == 0 {
		return nil, err
	}
	r.rev = rev
	return &r, nil
}

// read decodes key's value into v and returns its revision; 0 when the
// key does not exist. It reads from the leader, so it sees every
// acknowledged write.
func (s *Server) read(ctx context.Context, key string, v any) (uint64, error) {
	b, rev, err := s.st.KVGet(ctx, store.AuthBucket, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, store.APIError(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return 0, fmt.Errorf("authserver: %s: %w", key, err)
	}
	return rev, nil
}

// maxAttempts bounds a read-modify-write loop under contention.
const maxAttempts = 16

// update applies fn to the record at key and writes it back if the key
// has not changed since it was read, retrying on a lost race. fn returns
// an error to abandon the change. The record must exist.
func update[T any](ctx context.Context, s *Server, key, what string, fn func(*T) error) (*T, error) {
	for range maxAttempts {
		var v T
		rev, err := s.read(ctx, key, &v)
		if err != nil {
			return nil, err
		}
		if rev == 0 {
			return nil, mortar.Errorf(mortar.CodeNotFound, "no such %s", what)
		}
		if err := fn(&v); err != nil {
			return nil, err
		}
		b, err := json.Marshal(&v)
		if err != nil {
			return nil, err
		}
		_, err = s.st.Auth.Update(ctx, key, b, rev)
		if err == nil {
			return &v, nil
		}
		if !isConflict(err) {
			return nil, store.APIError(err)
		}
	}
	return nil, mortar.Errorf(mortar.CodeConflict, "%s changed concurrently; retry", what)
}

// create writes a new record at key; already_exists if it exists.
func (s *Server) create(ctx context.Context, key, what string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := s.st.Auth.Create(ctx, key, b); err != nil {
		if errors.Is(err, jetstream.ErrKeyExists) {
			return mortar.Errorf(mortar.CodeAlreadyExists, "%s exists", what)
		}
		return store.APIError(err)
	}
	return nil
}

func isConflict(err error) bool {
	if apiErr, ok := errors.AsType[*jetstream.APIError](err); ok && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence {
		return true
	}
	return errors.Is(err, jetstream.ErrKeyExists)
}

// checkPermissions parses perms, refusing a malformed one or too many.
func checkPermissions(perms []string) error {
	if len(perms) > authwire.MaxPermissions {
		return mortar.Errorf(mortar.CodeInvalidArgument, "%d permissions: at most %d", len(perms), authwire.MaxPermissions)
	}
	for _, p := range perms {
		if _, err := auth.ParsePermission(p); err != nil {
			return mortar.Errorf(mortar.CodeInvalidArgument, "%v", err)
		}
	}
	return nil
}

// checkNames refuses a malformed user or role name among names.
func checkNames(what string, names []string) error {
	if len(names) > authwire.MaxRoles {
		return mortar.Errorf(mortar.CodeInvalidArgument, "%d %ss: at most %d", len(names), what, authwire.MaxRoles)
	}
	for _, n := range names {
		if !authwire.ValidName(n) {
			return mortar.Errorf(mortar.CodeInvalidArgument, "%s %q: want 1 to 64 of [A-Za-z0-9_.@-], starting with a letter or digit", what, n)
		}
	}
	return nil
}

// union adds add to have, once each, keeping the order.
func union(have, add []string) []string {
	for _, a := range add {
		if !slices.Contains(have, a) {
			have = append(have, a)
		}
	}
	return have
}

// without removes drop from have.
func without(have, drop []string) []string {
	return slices.DeleteFunc(have, func(s string) bool { return slices.Contains(drop, s) })
}
