package push

import (
	"fmt"
	"time"

	"github.com/mortarhq/mortar/internal/pushwire"
)

// Claims is what a connect token grants.
type Claims struct {
	Client   string    // the client ID (required)
	User     string    // the user, for pushes to a user
	Channels []string  // channels the node subscribes the connection to at connect
	Expires  time.Time // zero never expires
	// Perms limit what the connection may do: permissions such as
	// "push:subscribe:news" and "push:publish:chat-room-1". None means
	// the node's default (--push-token-perms: any channel).
	Perms []string
}

// SignToken returns a connect token for c signed with secret, the node's
// push secret (--push-secret). The token is a JWT signed with HS256, so
// backends in other languages can issue it with any JWT library: see
// docs/push.md.
func SignToken(secret []byte, c Claims) (string, error) {
	wc := pushwire.Claims{Client: c.Client, User: c.User, Channels: c.Channels, Perms: c.Perms, IssuedAt: time.Now().Unix()}
	if !c.Expires.IsZero() {
		wc.Expires = c.Expires.Unix()
	}
	tok, err := pushwire.SignToken(secret, wc)
	if err != nil {
		return "", fmt.Errorf("push: %w", err)
	}
	return tok, nil
}
