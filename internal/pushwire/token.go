package pushwire

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Claims is what a connect token says. A token is a JWT (RFC 7519)
// signed with HMAC-SHA256 (alg HS256), so any language's JWT library can
// issue one with the node's push secret.
type Claims struct {
	Client   string   `json:"cid"`                // the client ID the token admits (required)
	User     string   `json:"sub,omitempty"`      // the user the connection belongs to
	Expires  int64    `json:"exp,omitempty"`      // Unix seconds; 0 never expires
	IssuedAt int64    `json:"iat,omitempty"`      // Unix seconds
	Channels []string `json:"channels,omitempty"` // channels the node subscribes the connection to at connect
	// Perms are what the connection may do, as permissions
	// ("push:subscribe:news", "push:publish:chat-*"… see docs/push.md);
	// none means the node's default for tokens.
	Perms []string `json:"perms,omitempty"`
}

// Token errors. A connect with any of them is refused as unauthorized;
// the node logs which one.
var (
	ErrTokenMalformed = errors.New("pushwire: malformed token")
	ErrTokenSignature = errors.New("pushwire: token signature does not verify")
	ErrTokenExpired   = errors.New("pushwire: token expired")
)

// MaxTokenLen bounds a token: its claims carry a channel list.
const MaxTokenLen = 8 << 10

// tokenHeader is the JWT header of every token mortar signs, encoded.
var tokenHeader = base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))

// SignToken returns a connect token for c signed with secret.
func SignToken(secret []byte, c Claims) (string, error) {
	if len(secret) == 0 {
		return "", errors.New("pushwire: sign token: empty secret")
	}
	if err := CheckName("client ID", c.Client, MaxClientLen); err != nil {
		return "", fmt.Errorf("pushwire: sign token: %w", err)
	}
	if c.User != "" {
		if err := CheckName("user", c.User, MaxClientLen); err != nil {
			return "", fmt.Errorf("pushwire: sign token: %w", err)
		}
	}
	for _, ch := range c.Channels {
		if err := CheckName("channel", ch, MaxChannelLen); err != nil {
			return "", fmt.Errorf("pushwire: sign token: %w", err)
		}
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("pushwire: sign token: %w", err)
	}
	signed := tokenHeader + "." + base64.RawURLEncoding.EncodeToString(payload)
	tok := signed + "." + base64.RawURLEncoding.EncodeToString(tokenMAC(secret, signed))
	if len(tok) > MaxTokenLen {
		return "", fmt.Errorf("pushwire: sign token: %d bytes, over the limit of %d", len(tok), MaxTokenLen)
	}
	return tok, nil
}

// VerifyToken checks tok against any of secrets (more than one while a
// secret is rotated) and its expiry at now, and returns its claims.
func VerifyToken(secrets [][]byte, tok string, now time.Time) (Claims, error) {
	var c Claims
	if len(tok) > MaxTokenLen {
		return c, fmt.Errorf("%w: too long", ErrTokenMalformed)
	}
	head, rest, ok1 := strings.Cut(tok, ".")
	body, sig, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 {
		return c, fmt.Errorf("%w: not three parts", ErrTokenMalformed)
	}
	if err := checkHeader(head); err != nil {
		return c, err
	}
	mac, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		return c, fmt.Errorf("%w: signature: %v", ErrTokenMalformed, err)
	}
	signed := tok[:len(head)+1+len(body)]
	verified := false
	for _, s := range secrets {
		if len(s) > 0 && hmac.Equal(mac, tokenMAC(s, signed)) {
			verified = true
			break
		}
	}
	if !verified {
		return c, ErrTokenSignature
	}
	payload, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil {
		return c, fmt.Errorf("%w: claims: %v", ErrTokenMalformed, err)
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return c, fmt.Errorf("%w: claims: %v", ErrTokenMalformed, err)
	}
	if err := CheckName("client ID", c.Client, MaxClientLen); err != nil {
		return c, fmt.Errorf("%w: %v", ErrTokenMalformed, err)
	}
	if c.User != "" {
		if err := CheckName("user", c.User, MaxClientLen); err != nil {
			return c, fmt.Errorf("%w: %v", ErrTokenMalformed, err)
		}
	}
	for _, ch := range c.Channels {
		if err := CheckName("channel", ch, MaxChannelLen); err != nil {
			return c, fmt.Errorf("%w: %v", ErrTokenMalformed, err)
		}
	}
	if c.Expires != 0 && now.Unix() >= c.Expires {
		return c, ErrTokenExpired
	}
	return c, nil
}

// checkHeader accepts only HS256: a token naming another algorithm (or
// "none") is refused before its signature is looked at.
func checkHeader(head string) error {
	if head == tokenHeader {
		return nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return fmt.Errorf("%w: header: %v", ErrTokenMalformed, err)
	}
	var h struct {
		Alg string `json:"alg"`
		Typ string `json:"typ"`
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		return fmt.Errorf("%w: header: %v", ErrTokenMalformed, err)
	}
	if h.Alg != "HS256" {
		return fmt.Errorf("%w: algorithm %q, want HS256", ErrTokenMalformed, h.Alg)
	}
	if h.Typ != "" && !strings.EqualFold(h.Typ, "JWT") {
		return fmt.Errorf("%w: type %q, want JWT", ErrTokenMalformed, h.Typ)
	}
	return nil
}

func tokenMAC(secret []byte, signed string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(signed))
	return m.Sum(nil)
}
