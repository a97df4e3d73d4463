package auth

import (
	"cmp"
	"container/list"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"
)

// The TOTP parameters of NewTOTP's keys, which TOTPVerifier checks: RFC
// 6238's defaults with HMAC-SHA1. They are what authenticator apps
// expect; some (Google Authenticator among them) ignore a key URL's
// algorithm, digits and period and use these whatever the URL says.
const (
	// TOTPPeriod is the length of a time step.
	TOTPPeriod = 30 * time.Second
	// TOTPDigits is the number of decimal digits in a code.
	TOTPDigits = 6
	// TOTPSecretLen is the length, in bytes, of the secrets NewTOTP makes:
	// 160 bits, the length RFC 4226 recommends and an HMAC-SHA1 output's.
	TOTPSecretLen = 20
)

// Bounds on TOTP secrets and on TOTPConfig.
const (
	// MinTOTPSecretLen is the shortest secret, in bytes, that Verify
	// accepts: RFC 4226's minimum of 128 bits. The 80-bit secrets some
	// older systems made are refused as malformed.
	MinTOTPSecretLen = 16
	// MaxTOTPSecretLen is the longest secret, in bytes: RFC 6238's
	// HMAC-SHA512 test seed is this long.
	MaxTOTPSecretLen = 64
	// MaxTOTPSkew is the largest TOTPConfig.Skew. Verify computes
	// 2×Skew+1 codes.
	MaxTOTPSkew = 10
)

// The TOTPConfig defaults.
const (
	// TOTPSkewDefault is one step either side, as RFC 6238 section 5.2
	// recommends: a code typed just as it changes still works, and each
	// code is valid for 90 seconds at most.
	TOTPSkewDefault = 1
	// TOTPMaxAccountsDefault bounds the accounts a TOTPVerifier remembers.
	TOTPMaxAccountsDefault = 100_000
)

// ErrMalformedTOTPSecret is returned, wrapped with the reason, for a
// stored TOTP secret that Verify cannot use. The reason never quotes the
// secret.
var ErrMalformedTOTPSecret = errors.New("auth: malformed TOTP secret")

// TOTPKey is a new TOTP secret, to be stored for the account and shown to
// its owner once.
type TOTPKey struct {
	// Secret is the shared secret in unpadded base32 (RFC 4648), as
	// authenticator apps take it typed in and as TOTPVerifier.Verify takes
	// it.
	Secret string
	// URL is the key as an otpauth://totp/Issuer:account?secret=...
	// URL (Google Authenticator's Key Uri Format), the text of the QR
	// code an authenticator app scans.
	URL string
}

// NewTOTP returns a new TOTP key for the account at issuer: a random
// TOTPSecretLen-byte secret, HMAC-SHA1, TOTPDigits digits and a
// TOTPPeriod step. issuer and account label the key in the user's
// authenticator app; both must be non-empty and neither may contain a
// colon, which separates them in the URL.
func NewTOTP(issuer, account string) (TOTPKey, error) {
	switch {
	case issuer == "" || account == "":
		return TOTPKey{}, errors.New("auth: new TOTP key: empty issuer or account")
	case strings.Contains(issuer, ":") || strings.Contains(account, ":"):
		return TOTPKey{}, errors.New("auth: new TOTP key: issuer or account contains a colon")
	}
	k, err := totp.Generate(totp.GenerateOpts{
		Issuer:      issuer,
		AccountName: account,
		Period:      uint(TOTPPeriod / time.Second),
		SecretSize:  TOTPSecretLen,
		Digits:      otp.DigitsSix,
		Algorithm:   otp.AlgorithmSHA1,
	})
	if err != nil {
		return TOTPKey{}, fmt.Errorf("auth: new TOTP key: %w", err)
	}
	return TOTPKey{Secret: k.Secret(), URL: k.URL()}, nil
}

// TOTPConfig configures a TOTPVerifier. Its zero value accepts one step
// either side and remembers up to 100,000 accounts.
type TOTPConfig struct {
	// Skew is how many time steps either side of the current one a code
	// may be for, to allow for clock drift between server and phone and
	// for the time a person takes to type. Defaults to TOTPSkewDefault (so
	// 0 also means 1); at most MaxTOTPSkew.
	Skew uint
	// MaxAccounts bounds how many accounts' last accepted steps the
	// verifier remembers. It forgets an account once no code it could
	// still accept is at risk of replay (a step or so after the window
	// has passed) and, when more accounts than this have had codes
	// accepted within that time, the one accepted longest ago first,
	// which opens that account's last code to replay. Defaults to
	// TOTPMaxAccountsDefault; negative is an error.
	MaxAccounts int
}

// TOTPVerifier checks TOTP codes (RFC 6238: HMAC-SHA1, TOTPDigits digits,
// TOTPPeriod steps) and remembers, per account, the last time step it
// accepted a code for, so that a code is accepted at most once: RFC 6238
// section 5.2 requires that a verifier refuse the second use of a code.
// A code for a step at or before the last accepted one is refused, so
// once a code is accepted the codes before it are spent too.
//
// A TOTPVerifier does not limit attempts: with skew 1, three of the
// million codes are right at any time, so guessing must be throttled, for
// example by counting a wrong code as a failed login in a Throttle.
//
// A TOTPVerifier is safe for concurrent use. The memory is per process: a
// code accepted on one node can be replayed once on another until the
// window passes, unless the caller sends each account to one node.
type TOTPVerifier struct {
	skew        int
	maxAccounts int

	mu       sync.Mutex
	accounts map[string]*list.Element // of *totpAccount, in order
	order    *list.List               // least recently accepted first
}

// totpAccount is what a TOTPVerifier remembers of an account.
type totpAccount struct {
	name string
	step int // the last time step a code was accepted for
}

// NewTOTPVerifier returns a TOTPVerifier for cfg; a nil cfg means all
// defaults. It returns an error if Skew is above MaxTOTPSkew or
// MaxAccounts is negative. cfg is not modified.
func NewTOTPVerifier(cfg *TOTPConfig) (*TOTPVerifier, error) {
	var c TOTPConfig
	if cfg != nil {
		c = *cfg
	}
	switch {
	case c.Skew > MaxTOTPSkew:
		return nil, fmt.Errorf("auth: new TOTP verifier: skew %d above %d", c.Skew, MaxTOTPSkew)
	case c.MaxAccounts < 0:
		return nil, fmt.Errorf("auth: new TOTP verifier: max accounts %d is negative", c.MaxAccounts)
	}
	return &TOTPVerifier{
		skew:        int(cmp.Or(c.Skew, TOTPSkewDefault)),
		maxAccounts: cmp.Or(c.MaxAccounts, TOTPMaxAccountsDefault),
		accounts:    make(map[string]*list.Element),
		order:       list.New(),
	}, nil
}

// Verify reports whether code is the account's TOTP code at now, give or
// take the skew, for a step after the last one accepted for the account;
// if so, it remembers that step. secret is the account's stored secret in
// base32 (RFC 4648, either case, padded or not) of MinTOTPSecretLen to
// MaxTOTPSecretLen bytes; bits after the last whole byte are ignored, as
// authenticator apps ignore them.
//
// code must be exactly TOTPDigits ASCII digits: no spaces, which a caller
// that allows them must remove. It is compared in constant time against
// each code in the window.
//
// A wrong, reused or malformed code is false with a nil error, as is any
// code at a time before 1970. err is non-nil only for a malformed secret,
// wrapping ErrMalformedTOTPSecret.
func (v *TOTPVerifier) Verify(account, secret, code string, now time.Time) (bool, error) {
	canon, err := parseTOTPSecret(secret)
	if err != nil {
		return false, err
	}
	unix := now.Unix()
	if !validTOTPCode(code) || unix < 0 {
		return false, nil
	}
	step := int(unix / int64(TOTPPeriod/time.Second))
	matched := -1
	for s := max(step-v.skew, 0); s <= step+v.skew; s++ {
		want, err := hotp.GenerateCodeCustom(canon, uint64(s), hotp.ValidateOpts{
			Digits:    otp.DigitsSix,
			Algorithm: otp.AlgorithmSHA1,
		})
		if err != nil { // canon is valid base32, so this cannot happen
			return false, fmt.Errorf("auth: verify TOTP code: %w", err)
		}
		eq := subtle.ConstantTimeCompare([]byte(want), []byte(code))
		matched = subtle.ConstantTimeSelect(eq, s, matched)
	}
	if matched < 0 {
		return false, nil
	}
	return v.accept(account, matched, step), nil
}

// accept records that account presented a code for step at the current
// step now, unless a code for that step or a later one was accepted
// before. It reports whether the code is fresh.
func (v *TOTPVerifier) accept(account string, step, now int) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.forgetStale(now)
	if e, ok := v.accounts[account]; ok {
		a := e.Value.(*totpAccount)
		if step <= a.step {
			return false
		}
		a.step = step
		v.order.MoveToBack(e)
		return true
	}
	a := &totpAccount{name: strings.Clone(account), step: step}
	v.accounts[a.name] = v.order.PushBack(a)
	for len(v.accounts) > v.maxAccounts {
		v.forget(v.order.Front())
	}
	return true
}

// forgetStale forgets, from the least recently accepted on, accounts whose
// last step is so far behind now that no code in the window could be for
// it. It keeps one step more than that, so that a call with a now up to
// one period earlier (concurrent calls whose times cross a step boundary)
// still finds them.
func (v *TOTPVerifier) forgetStale(now int) {
	for e := v.order.Front(); e != nil && e.Value.(*totpAccount).step < now-v.skew-1; e = v.order.Front() {
		v.forget(e)
	}
}

func (v *TOTPVerifier) forget(e *list.Element) {
	delete(v.accounts, e.Value.(*totpAccount).name)
	v.order.Remove(e)
}

// validTOTPCode reports whether code is exactly TOTPDigits ASCII digits.
func validTOTPCode(code string) bool {
	if len(code) != TOTPDigits {
		return false
	}
	for i := range len(code) {
		if code[i] < '0' || code[i] > '9' {
			return false
		}
	}
	return true
}

var base32NoPadding = base32.StdEncoding.WithPadding(base32.NoPadding)

// parseTOTPSecret checks that s is a base32 secret of MinTOTPSecretLen to
// MaxTOTPSecretLen bytes and returns it in canonical form: upper case,
// unpadded.
func parseTOTPSecret(s string) (string, error) {
	// 8 characters per 5 bytes, padded to a multiple of 8.
	const maxEncodedLen = (MaxTOTPSecretLen + 4) / 5 * 8
	if len(s) > maxEncodedLen {
		return "", fmt.Errorf("%w: longer than %d characters", ErrMalformedTOTPSecret, maxEncodedLen)
	}
	b := []byte(s)
	for i, c := range b {
		switch {
		case 'a' <= c && c <= 'z':
			b[i] = c - 'a' + 'A'
		case 'A' <= c && c <= 'Z', '2' <= c && c <= '7', c == '=':
		default:
			return "", fmt.Errorf("%w: byte %d is not a base32 character", ErrMalformedTOTPSecret, i)
		}
	}
	enc := base32NoPadding
	if strings.HasSuffix(s, "=") {
		enc = base32.StdEncoding
	}
	key, err := enc.DecodeString(string(b))
	if err != nil {
		// A CorruptInputError gives only an offset, never the input.
		return "", fmt.Errorf("%w: %v", ErrMalformedTOTPSecret, err)
	}
	if len(key) < MinTOTPSecretLen || len(key) > MaxTOTPSecretLen {
		return "", fmt.Errorf("%w: %d bytes, want %d to %d", ErrMalformedTOTPSecret, len(key), MinTOTPSecretLen, MaxTOTPSecretLen)
	}
	return base32NoPadding.EncodeToString(key), nil
}
