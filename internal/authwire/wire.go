// Package authwire holds what the node's security layer, the CLI and the
// SDK share: the API's request and reply types (operations "auth.*") and
// the forms of credentials. docs/security.md documents them.
package authwire

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"regexp"
	"strings"
	"time"

	"github.com/mortarhq/mortar"
)

// Credential prefixes. A credential is one string, whatever its kind, so
// every transport carries it the same way (a bearer token, a NATS token).
const (
	// APIKeyPrefix starts an API key: "mk_<id>_<secret>", id 16 and
	// secret 43 base64url characters (96 and 256 random bits).
	APIKeyPrefix = "mk_"
	// RememberPrefix starts a remember-me token: "mr_<user>_<id>_<secret>".
	RememberPrefix = "mr_"
)

// LocalCredentialFile is the name, in a node's data directory, of the
// local admin credential the node writes (mode 0600) for the CLI and SDK
// on the same machine.
const LocalCredentialFile = mortar.LocalCredentialFile

// Limits.
const (
	MaxNameLen       = 64
	MaxPermissions   = 1000 // per user or role
	MaxRoles         = 100  // per user
	MaxCredentialLen = 8 << 10
)

var nameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$`)

// ValidName reports whether s may name a user or a role: 1 to 64 of
// [A-Za-z0-9_.@-], starting with a letter or digit.
func ValidName(s string) bool { return nameRe.MatchString(s) }

// EncodeName encodes a user or role name for a key of the store (keys
// allow no '@').
func EncodeName(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// DecodeName reverses EncodeName.
func DecodeName(s string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	return string(b), err
}

// Random returns n random bytes in base64url.
func Random(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// NewAPIKey returns a new API key and its ID.
func NewAPIKey() (key, id string) {
	id = Random(12)
	return APIKeyPrefix + id + "_" + Random(32), id
}

var errBadKey = errors.New("malformed API key")

// ParseAPIKey splits an API key into its ID and the hash it is stored as.
func ParseAPIKey(key string) (id string, hash []byte, err error) {
	rest, ok := strings.CutPrefix(key, APIKeyPrefix)
	if !ok || len(rest) != 16+1+43 || rest[16] != '_' {
		return "", nil, errBadKey
	}
	id = rest[:16]
	if _, err := base64.RawURLEncoding.DecodeString(id); err != nil {
		return "", nil, errBadKey
	}
	if _, err := base64.RawURLEncoding.DecodeString(rest[17:]); err != nil {
		return "", nil, errBadKey
	}
	return id, HashSecret(key), nil
}

// HashSecret is how a random secret (an API key, a remember-me token) is
// stored: SHA-256. The secret has 256 bits, so a slow hash adds nothing.
func HashSecret(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// SameHash compares two hashes in constant time.
func SameHash(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }

// EventSubject carries a notice, on core NATS, whenever users, roles, API
// keys change or a session ends: verifiers outside the node (auth.Verifier)
// drop what they cached.
const EventSubject = "mortar.auth.ev.changed"

// SessionEventPrefix + kind ("start", "stop", "expire") carries a
// SessionEvent on core NATS when a login session starts, is ended (logout,
// revocation) or expires. Every node of a cluster announces a stop or an
// expiry (each sees it); listeners keep one per session and kind.
const SessionEventPrefix = "mortar.auth.ev.session."

// SessionEvent is a login session's start, stop or expiry.
type SessionEvent struct {
	Kind    string    `json:"kind"` // start, stop, expire
	User    string    `json:"user"`
	Session string    `json:"session"`
	Time    time.Time `json:"time"`
	Node    string    `json:"node"`
}

// VerifyRequest is auth.verify: a credential a service received (on an
// RPC call, say) to resolve into its subject.
type VerifyRequest struct {
	Credential string `json:"credential"`
}

// VerifyResponse is the subject a credential stands for.
type VerifyResponse struct {
	Principal   string   `json:"principal"`
	Realm       string   `json:"realm,omitempty"`
	Roles       []string `json:"roles"`
	Permissions []string `json:"permissions"`
	// Expires is when the credential ends, if it does (a session token, an
	// API key with a TTL).
	Expires time.Time `json:"expires,omitzero"`
}

// LoginRequest is auth.login: a user name and password (and a TOTP code
// for a user with a second factor), a remember-me token, or an ID token
// of the node's OIDC identity provider.
type LoginRequest struct {
	User     string `json:"user,omitempty"`
	Password string `json:"password,omitempty"`
	TOTP     string `json:"totp,omitempty"`
	// Remember asks for a remember-me token besides the session.
	Remember bool `json:"remember,omitempty"`
	// RememberToken logs in with a remember-me token instead of a
	// password; it is spent, and a new one comes back.
	RememberToken string `json:"remember_token,omitempty"`
	// IDToken logs in with an OpenID Connect ID token the caller got from
	// the node's identity provider (its audience the node's client ID),
	// instead of a password.
	IDToken string `json:"id_token,omitempty"`
}

// LoginResponse is the answer to auth.login.
type LoginResponse struct {
	User    string    `json:"user"`
	Token   string    `json:"token"`   // a bearer token (JWT) for the session
	Session string    `json:"session"` // the session's ID
	Expires time.Time `json:"expires"` // when the token and session end at the latest
	// RememberToken, when asked for: exchange it for a new session with
	// auth.login after this one ends.
	RememberToken string `json:"remember_token,omitempty"`
}

// WhoAmI is the answer to auth.whoami.
type WhoAmI struct {
	User        string   `json:"user"`
	Realm       string   `json:"realm,omitempty"`
	Roles       []string `json:"roles"`
	Permissions []string `json:"permissions"`
	Session     string   `json:"session,omitempty"`
	// RunAsOf is the principal acting, when running as User.
	RunAsOf string `json:"run_as_of,omitempty"`
}

// User is a user as the API shows it (never its password hash).
type User struct {
	Name        string    `json:"name"`
	Realm       string    `json:"realm,omitempty"` // "oidc" for a user an OIDC login created
	Roles       []string  `json:"roles"`
	Permissions []string  `json:"permissions"`
	Password    bool      `json:"password"` // has a password (service accounts may not)
	TOTP        bool      `json:"totp"`
	Disabled    bool      `json:"disabled,omitempty"`
	Created     time.Time `json:"created"`
	Updated     time.Time `json:"updated"`
}

// UserRequest is auth.user.add: a user with its roles and direct
// permissions; an empty Password makes an account that cannot log in with
// a password (a service, using API keys).
type UserRequest struct {
	Name        string   `json:"name"`
	Password    string   `json:"password,omitempty"`
	Roles       []string `json:"roles,omitempty"`
	Permissions []string `json:"permissions,omitempty"`
}

// NameRequest names one user or role (auth.user.remove, auth.role.remove,
// auth.user.get).
type NameRequest struct {
	Name string `json:"name"`
}

// PasswordRequest is auth.user.passwd. A user changing their own password
// gives Old; changing another's needs auth:user:write.
type PasswordRequest struct {
	Name     string `json:"name"`
	Password string `json:"password"`
	Old      string `json:"old,omitempty"`
}

// GrantRequest is auth.user.grant and auth.user.revoke (roles and
// permissions to or from a user), auth.role.grant and auth.role.revoke
// (permissions to or from a role).
type GrantRequest struct {
	Name        string   `json:"name"`
	Roles       []string `json:"roles,omitempty"`
	Permissions []string `json:"permissions,omitempty"`
}

// TOTPRequest is auth.totp.enroll, auth.totp.confirm (with Code) and
// auth.totp.disable.
type TOTPRequest struct {
	Name string `json:"name"`
	Code string `json:"code,omitempty"`
}

// TOTPEnrollment is the answer to auth.totp.enroll: the secret to give an
// authenticator app (typed in, or as the otpauth:// URL in a QR code).
// The second factor counts once a code from the app is confirmed.
type TOTPEnrollment struct {
	Secret string `json:"secret"`
	URL    string `json:"url"`
}

// Role is a role as the API shows it.
type Role struct {
	Name        string    `json:"name"`
	Permissions []string  `json:"permissions"`
	Created     time.Time `json:"created"`
	Updated     time.Time `json:"updated"`
}

// RoleRequest is auth.role.add.
type RoleRequest struct {
	Name        string   `json:"name"`
	Permissions []string `json:"permissions,omitempty"`
}

// APIKeyRequest is auth.apikey.create: a key acting as User. TTL zero
// means no expiry.
type APIKeyRequest struct {
	User string        `json:"user"`
	Name string        `json:"name,omitempty"` // what it is for
	TTL  time.Duration `json:"ttl,omitempty"`
}

// APIKey is an API key as the API shows it; Key is set only in the answer
// to auth.apikey.create, the one time the key is shown.
type APIKey struct {
	ID      string    `json:"id"`
	User    string    `json:"user"`
	Name    string    `json:"name,omitempty"`
	Created time.Time `json:"created"`
	Expires time.Time `json:"expires,omitzero"`
	Key     string    `json:"key,omitempty"`
}

// APIKeyRef names an API key (auth.apikey.revoke), or lists a user's
// (auth.apikey.list; empty User lists all).
type APIKeyRef struct {
	ID   string `json:"id,omitempty"`
	User string `json:"user,omitempty"`
}

// Session is a login session as the API shows it.
type Session struct {
	ID       string    `json:"id"`
	User     string    `json:"user"`
	Created  time.Time `json:"created"`
	Expires  time.Time `json:"expires"` // the absolute timeout
	LastUsed time.Time `json:"last_used"`
	Addr     string    `json:"addr,omitempty"`
}

// SessionRef names a user's sessions (auth.session.list), one of them, or
// all of them (auth.session.revoke with an empty ID).
type SessionRef struct {
	User string `json:"user"`
	ID   string `json:"id,omitempty"`
}

// AuditRequest is auth.audit: entries after sequence After (0: from the
// oldest kept, or Since), of the kinds that match Kind (a NATS subject
// filter below "mortar.audit.", like "login.*"; empty: all), at most
// Limit.
type AuditRequest struct {
	After uint64    `json:"after,omitempty"`
	Since time.Time `json:"since,omitzero"`
	Kind  string    `json:"kind,omitempty"`
	Limit int       `json:"limit,omitempty"`
}

// AuditEntry is one security event.
type AuditEntry struct {
	Seq        uint64    `json:"seq,omitempty"`
	Time       time.Time `json:"time"`
	Kind       string    `json:"kind"`                 // login.ok, login.fail, denied, user.add, …
	Principal  string    `json:"principal,omitempty"`  // who acted (or tried to)
	Target     string    `json:"target,omitempty"`     // whom or what it concerned
	Op         string    `json:"op,omitempty"`         // the API operation or surface
	Permission string    `json:"permission,omitempty"` // the permission refused
	Addr       string    `json:"addr,omitempty"`
	Node       string    `json:"node,omitempty"`
	Detail     string    `json:"detail,omitempty"` // what the caller was not told
}

// AuditResponse is the answer to auth.audit.
type AuditResponse struct {
	Entries []AuditEntry `json:"entries"`
	// Next is the sequence to ask After for the next page; 0 when done.
	Next uint64 `json:"next,omitempty"`
}
