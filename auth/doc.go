// Package auth is mortar's security layer in the style of Apache Shiro:
// authentication, authorization with wildcard permissions, password hashing
// and sessions, usable as a library on its own and enforced by the node on
// every surface.
package auth
