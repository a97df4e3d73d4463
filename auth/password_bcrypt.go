package auth

import (
	"context"
	"errors"

	"golang.org/x/crypto/bcrypt"
)

// MaxBcryptCost is the highest bcrypt cost Verify accepts in an imported
// hash. A cost-10 hash takes about 60 ms here and each step doubles it, so
// a cost-16 hash takes about 4 s; the format allows 31, about 35 hours.
const MaxBcryptCost = 16

// bcryptLen is the length of every bcrypt hash string: "$2b$", a two-digit
// cost, "$", 22 characters of salt and 31 of hash.
const bcryptLen = 60

// checkBcrypt reports whether s is a bcrypt hash Verify accepts: variant
// $2a$, $2b$ or $2y$ (not the buggy $2x$), cost 04 to MaxBcryptCost, and
// bcrypt's base64 alphabet.
func checkBcrypt(s string) error {
	if len(s) != bcryptLen {
		return malformed("bcrypt: length %d, want %d", len(s), bcryptLen)
	}
	switch s[:4] {
	case "$2a$", "$2b$", "$2y$":
	default:
		return malformed("bcrypt: unsupported variant (want $2a$, $2b$ or $2y$)")
	}
	c0, c1 := s[4], s[5]
	if c0 < '0' || c0 > '9' || c1 < '0' || c1 > '9' || s[6] != '$' {
		return malformed("bcrypt: malformed cost")
	}
	if cost := int(c0-'0')*10 + int(c1-'0'); cost < bcrypt.MinCost || cost > MaxBcryptCost {
		return malformed("bcrypt: cost %d outside %d..%d", cost, bcrypt.MinCost, MaxBcryptCost)
	}
	for _, c := range []byte(s[7:]) {
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '.' && c != '/' {
			return malformed("bcrypt: invalid character in salt or hash")
		}
	}
	return nil
}

// verifyBcrypt is Verify for a bcrypt hash: a match always asks for a
// rehash, since Hash makes only argon2id.
func (h *Hasher) verifyBcrypt(ctx context.Context, encoded, password string) (ok, rehash bool, err error) {
	if err := checkBcrypt(encoded); err != nil {
		return false, false, err
	}
	if !matchable(password) {
		return false, false, nil
	}
	var cmpErr error
	err = h.run(ctx, func() {
		cmpErr = bcrypt.CompareHashAndPassword([]byte(encoded), []byte(password))
	})
	switch {
	case err != nil:
		return false, false, err
	case cmpErr == nil:
		return true, true, nil
	case errors.Is(cmpErr, bcrypt.ErrMismatchedHashAndPassword):
		return false, false, nil
	}
	return false, false, malformed("bcrypt: %v", cmpErr)
}
