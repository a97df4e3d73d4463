package auth

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"runtime"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Argon2Params are argon2id's cost parameters.
type Argon2Params struct {
	// Memory is the memory cost in KiB (argon2's m). Defaults to
	// Argon2MemoryDefault.
	Memory uint32
	// Time is the number of passes over the memory (argon2's t). Defaults
	// to Argon2TimeDefault.
	Time uint32
	// Threads is the degree of parallelism (argon2's p): a hash runs this
	// many goroutines. Defaults to Argon2ThreadsDefault.
	Threads uint8
	// SaltLen is the salt length in bytes. Defaults to Argon2SaltLenDefault.
	SaltLen uint32
	// KeyLen is the length of the derived hash in bytes. Defaults to
	// Argon2KeyLenDefault.
	KeyLen uint32
}

// The default Argon2Params: OWASP's minimum for argon2id (m=19 MiB, t=2,
// p=1) with a 16-byte salt and a 32-byte hash, as the argon2 reference CLI
// makes. Measured here (2-core AMD EPYC, x/crypto v0.58.0; BenchmarkHash
// and BenchmarkVerify), one hash or verification at these parameters
// costs 20 to 35 ms of CPU and 19 MiB of memory.
const (
	Argon2MemoryDefault  = 19456 // KiB
	Argon2TimeDefault    = 2
	Argon2ThreadsDefault = 1
	Argon2SaltLenDefault = 16
	Argon2KeyLenDefault  = 32
)

// Bounds on Argon2Params. ParsePHC, and so Verify, rejects a stored string
// outside them, so that a corrupt or hostile string cannot make a
// verification allocate gigabytes or run for minutes: the worst it can ask
// for is MaxArgon2Memory and MaxArgon2Time passes (1 GiB and 10 s of CPU
// here). NewHasher applies the same bounds, except that Hash wants a salt
// of at least 16 bytes.
//
// The memory floor is Argon2's own, 8 KiB per thread, so that tests can
// hash in microseconds; it is far below what a deployment should use. For
// a deployment, OWASP lists these equivalent argon2id minimums (memory,
// time): 46 MiB t=1, 19 MiB t=2 (the default), 12 MiB t=3, 9 MiB t=4 and
// 7 MiB t=5, all with p=1.
const (
	// MaxArgon2Memory is the largest Memory, in KiB (1 GiB). RFC 9106's
	// second recommended option uses 64 MiB; its first, 2 GiB, is out of
	// bounds.
	MaxArgon2Memory = 1 << 20
	// MaxArgon2Time is the largest Time.
	MaxArgon2Time = 10
	// MaxArgon2Threads is the largest Threads.
	MaxArgon2Threads = 16
	// MinArgon2SaltLen is the shortest salt, in bytes, that Verify accepts
	// in a stored string: RFC 9106's minimum, which the argon2 reference
	// test vectors use. Hash uses at least 16 bytes.
	MinArgon2SaltLen = 8
	// MaxArgon2SaltLen is the longest salt, in bytes.
	MaxArgon2SaltLen = 64
	// MinArgon2KeyLen is the shortest hash, in bytes.
	MinArgon2KeyLen = 16
	// MaxArgon2KeyLen is the longest hash, in bytes.
	MaxArgon2KeyLen = 64
)

// minHashSaltLen is the shortest salt Hash makes: RFC 9106 recommends 16
// bytes for password hashing.
const minHashSaltLen = 16

// MaxPasswordLen is the longest password, in bytes, that Hash accepts and
// Verify can match. It bounds the work a request can cause; a passphrase
// of 1 KiB is far beyond what anyone types.
const MaxPasswordLen = 1024

var (
	// ErrEmptyPassword is returned by Hash for the empty password.
	ErrEmptyPassword = errors.New("auth: empty password")
	// ErrPasswordTooLong is returned by Hash for a password longer than
	// MaxPasswordLen bytes.
	ErrPasswordTooLong = fmt.Errorf("auth: password longer than %d bytes", MaxPasswordLen)
	// ErrMalformedHash is returned, wrapped with the reason, for a stored
	// hash string that Verify cannot use. The reason never quotes the
	// salt or hash.
	ErrMalformedHash = errors.New("auth: malformed password hash")
)

// HasherConfig configures a Hasher. Its zero value is OWASP's minimum with
// one hash per CPU at a time.
type HasherConfig struct {
	// Params are the parameters Hash uses; zero fields take the defaults
	// (Argon2MemoryDefault and so on). They must lie within the bounds
	// (MaxArgon2Memory and so on), with a salt of at least 16 bytes.
	Params Argon2Params
	// Concurrency is how many hashes and verifications run at once; the
	// others wait for a slot. It bounds the CPU (Concurrency × Threads
	// cores) and memory (Concurrency × Memory) that logins can use, though
	// verifying a string made with larger parameters uses that string's
	// memory, up to MaxArgon2Memory. Defaults to runtime.GOMAXPROCS(0) at
	// NewHasher; negative is an error.
	Concurrency int
}

// Hasher hashes passwords with argon2id into PHC strings and verifies them,
// running at most HasherConfig.Concurrency hashes at once. It is safe for
// concurrent use.
//
// Hash always makes argon2id. Verify also accepts bcrypt hashes ($2a$,
// $2b$, $2y$) imported from other systems, and asks for a rehash on every
// bcrypt match. bcrypt reads only the first 72 bytes of a password, so
// Verify matches a bcrypt hash on those alone, as the system that made it
// did.
//
// Passwords are hashed as the bytes given: Hasher applies no Unicode
// normalization, so a caller that normalizes must do so on both Hash and
// Verify.
type Hasher struct {
	params Argon2Params
	slots  chan struct{} // a send takes a slot, a receive frees it

	dummy string // the PHC string DummyVerify verifies against

	// testHookSlot, when set, runs just after a hash takes its slot.
	testHookSlot func()
}

// NewHasher returns a Hasher for cfg; a nil cfg means all defaults. It
// returns an error if the parameters are outside the bounds or Concurrency
// is negative. cfg is not modified.
func NewHasher(cfg *HasherConfig) (*Hasher, error) {
	var c HasherConfig
	if cfg != nil {
		c = *cfg
	}
	p := c.Params
	p.Memory = cmp.Or(p.Memory, Argon2MemoryDefault)
	p.Time = cmp.Or(p.Time, Argon2TimeDefault)
	p.Threads = cmp.Or(p.Threads, Argon2ThreadsDefault)
	p.SaltLen = cmp.Or(p.SaltLen, Argon2SaltLenDefault)
	p.KeyLen = cmp.Or(p.KeyLen, Argon2KeyLenDefault)
	if err := p.check(minHashSaltLen); err != nil {
		return nil, fmt.Errorf("auth: new hasher: %w", err)
	}
	if c.Concurrency < 0 {
		return nil, fmt.Errorf("auth: new hasher: concurrency %d is negative", c.Concurrency)
	}
	n := cmp.Or(c.Concurrency, runtime.GOMAXPROCS(0))
	// The dummy's salt and hash are zeros: DummyVerify ignores its result.
	dummy := PHC{Algorithm: "argon2id", Version: argon2.Version, Params: p,
		Salt: make([]byte, p.SaltLen), Hash: make([]byte, p.KeyLen)}
	return &Hasher{params: p, slots: make(chan struct{}, n), dummy: dummy.String()}, nil
}

// Params returns the parameters h hashes with, defaults applied.
func (h *Hasher) Params() Argon2Params { return h.params }

// Hash returns password hashed with argon2id under a fresh random salt, as
// a PHC string:
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>
//
// with salt and hash in unpadded standard base64, the format of the argon2
// reference implementation. It waits for a slot first, and returns ctx's
// error if ctx ends before one is free. The password must be 1 to
// MaxPasswordLen bytes.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	switch {
	case password == "":
		return "", ErrEmptyPassword
	case len(password) > MaxPasswordLen:
		return "", ErrPasswordTooLong
	}
	p := h.params
	salt := make([]byte, p.SaltLen)
	rand.Read(salt) // never fails: since Go 1.24 it crashes the program instead
	var key []byte
	err := h.run(ctx, func() {
		key = argon2.IDKey([]byte(password), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	})
	if err != nil {
		return "", err
	}
	return PHC{Algorithm: "argon2id", Version: argon2.Version, Params: p, Salt: salt, Hash: key}.String(), nil
}

// Verify reports whether password matches encoded, an argon2id PHC string
// (as Hash makes) or an imported bcrypt hash. It compares in constant time.
//
// An argon2id string is checked with its own parameters, within the bounds
// (MaxArgon2Memory and so on), so that h's parameters can be raised while
// older hashes still verify. When the password matches but encoded was
// made with parameters other than h's, or with bcrypt, rehash is true: the
// caller should store a new Hash of the password, which it has at hand
// only now.
//
// err is non-nil only when encoded is malformed (wrapping ErrMalformedHash)
// or ctx ends while Verify waits for a slot; a wrong password is ok=false
// with a nil error. The empty password and passwords longer than
// MaxPasswordLen never match, so an imported hash of the empty password
// cannot be used to log in.
func (h *Hasher) Verify(ctx context.Context, encoded, password string) (ok, rehash bool, err error) {
	if strings.HasPrefix(encoded, "$2") {
		return h.verifyBcrypt(ctx, encoded, password)
	}
	phc, err := ParsePHC(encoded)
	if err != nil {
		return false, false, err
	}
	if !matchable(password) {
		return false, false, nil
	}
	p := phc.Params
	err = h.run(ctx, func() {
		key := argon2.IDKey([]byte(password), phc.Salt, p.Time, p.Memory, p.Threads, p.KeyLen)
		ok = subtle.ConstantTimeCompare(key, phc.Hash) == 1
	})
	if err != nil || !ok {
		return false, false, err
	}
	return true, p != h.params, nil
}

// DummyVerify runs Verify against a hash with h's parameters and discards
// the result. Call it when the user is unknown, so that the time a login
// takes does not tell whether the user exists: the work is Verify's, down
// to parsing the string. Like Verify, it takes a slot and returns early if
// ctx ends while it waits for one.
func (h *Hasher) DummyVerify(ctx context.Context, password string) {
	_, _, _ = h.Verify(ctx, h.dummy, password)
}

// matchable reports whether Verify tries password at all.
func matchable(password string) bool {
	return password != "" && len(password) <= MaxPasswordLen
}

// run calls fn holding one of h's slots, waiting for a slot until ctx ends.
// fn must not block on anything but the CPU.
func (h *Hasher) run(ctx context.Context, fn func()) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("auth: wait for a hashing slot: %w", err)
	}
	select {
	case h.slots <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("auth: wait for a hashing slot: %w", ctx.Err())
	}
	defer func() { <-h.slots }()
	if h.testHookSlot != nil {
		h.testHookSlot()
	}
	fn()
	return nil
}

// check reports whether p lies within the bounds, with a salt of at least
// minSalt bytes.
func (p Argon2Params) check(minSalt uint32) error {
	switch {
	case p.Threads < 1 || p.Threads > MaxArgon2Threads:
		return fmt.Errorf("threads (p) %d outside 1..%d", p.Threads, MaxArgon2Threads)
	case p.Memory < 8*uint32(p.Threads) || p.Memory > MaxArgon2Memory:
		return fmt.Errorf("memory (m) %d KiB outside %d..%d KiB (at least 8 KiB per thread)",
			p.Memory, 8*uint32(p.Threads), MaxArgon2Memory)
	case p.Time < 1 || p.Time > MaxArgon2Time:
		return fmt.Errorf("time (t) %d outside 1..%d", p.Time, MaxArgon2Time)
	case p.SaltLen < minSalt || p.SaltLen > MaxArgon2SaltLen:
		return fmt.Errorf("salt length %d outside %d..%d bytes", p.SaltLen, minSalt, MaxArgon2SaltLen)
	case p.KeyLen < MinArgon2KeyLen || p.KeyLen > MaxArgon2KeyLen:
		return fmt.Errorf("key length %d outside %d..%d bytes", p.KeyLen, MinArgon2KeyLen, MaxArgon2KeyLen)
	}
	return nil
}
