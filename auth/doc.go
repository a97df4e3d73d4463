// Package auth is mortar's security layer in the style of Apache Shiro:
// authentication, authorization with wildcard permissions, password
// hashing and sessions, usable as a library on its own and enforced by the
// node on every surface.
//
// As a library: ParsePermission and Permission.Implies are Shiro's
// WildcardPermission; CompileGrants answers a subject's checks in time
// proportional to the permission, not to its grants; Subject, Realm,
// Authenticator and SimpleRealm are Shiro's model; Hasher hashes
// passwords with argon2id; TOTPVerifier checks second factors; Throttle
// limits login attempts; Keyring issues and verifies EdDSA tokens with key
// rotation and JWKS.
//
// With a node: Verifier resolves the credentials callers present to a
// service into subjects (asking the node, cached), and its RPCServer
// interceptor checks "rpc:call:SERVICE:METHOD" on every call; RPCClient
// sends a credential. docs/security.md has the rest.
package auth
