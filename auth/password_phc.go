package auth

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// PHC is a parsed argon2id hash string in the PHC string format, as the
// argon2 reference implementation writes it:
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>
//
// where salt and hash are in standard base64 without padding.
type PHC struct {
	// Algorithm is "argon2id", the only one ParsePHC accepts.
	Algorithm string
	// Version is the Argon2 version, 19 (0x13), the only one ParsePHC
	// accepts.
	Version int
	// Params are m, t and p; ParsePHC sets SaltLen and KeyLen to the
	// lengths of Salt and Hash, and String ignores them.
	Params Argon2Params
	Salt   []byte
	Hash   []byte
}

// maxPHCLen bounds the input to ParsePHC. The longest string within the
// bounds is 208 bytes.
const maxPHCLen = 256

var b64 = base64.RawStdEncoding.Strict()

// String returns p in the PHC string format. For a PHC from ParsePHC it is
// the string that was parsed.
func (p PHC) String() string {
	var b strings.Builder
	b.Grow(40 + b64.EncodedLen(len(p.Salt)) + b64.EncodedLen(len(p.Hash)))
	fmt.Fprintf(&b, "$%s$v=%d$m=%d,t=%d,p=%d$", p.Algorithm, p.Version, p.Params.Memory, p.Params.Time, p.Params.Threads)
	b.WriteString(b64.EncodeToString(p.Salt))
	b.WriteByte('$')
	b.WriteString(b64.EncodeToString(p.Hash))
	return b.String()
}

// ParsePHC parses an argon2id PHC string, strictly: it accepts only the
// canonical form that String writes, so whatever it accepts String
// reproduces exactly. It rejects other algorithms (argon2i, argon2d),
// versions other than 19 (including a missing version, which means 16 in
// the reference implementation), the optional keyid and data parameters,
// missing, duplicate or reordered parameters, decimals with a sign or
// leading zeros, base64 with padding, line breaks or non-zero trailing
// bits, empty salts and hashes, and parameters or lengths outside the
// bounds (MaxArgon2Memory and so on). Errors wrap ErrMalformedHash.
func ParsePHC(s string) (PHC, error) {
	if len(s) > maxPHCLen {
		return PHC{}, malformed("longer than %d bytes", maxPHCLen)
	}
	f := strings.Split(s, "$")
	if len(f) == 5 && f[0] == "" && strings.HasPrefix(f[2], "m=") {
		// The reference implementation reads this as version 16.
		return PHC{}, malformed("missing version (want v=%d)", argon2.Version)
	}
	if len(f) != 6 || f[0] != "" {
		return PHC{}, malformed("not of the form $argon2id$v=19$m=M,t=T,p=P$SALT$HASH")
	}
	if err := checkAlgorithm(f[1]); err != nil {
		return PHC{}, err
	}
	if err := checkVersion(f[2]); err != nil {
		return PHC{}, err
	}
	params, err := parseArgon2Params(f[3])
	if err != nil {
		return PHC{}, err
	}
	salt, err := decodeB64("salt", f[4])
	if err != nil {
		return PHC{}, err
	}
	hash, err := decodeB64("hash", f[5])
	if err != nil {
		return PHC{}, err
	}
	params.SaltLen, params.KeyLen = uint32(len(salt)), uint32(len(hash))
	if err := params.check(MinArgon2SaltLen); err != nil {
		return PHC{}, malformed("%v", err)
	}
	return PHC{Algorithm: "argon2id", Version: argon2.Version, Params: params, Salt: salt, Hash: hash}, nil
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformedHash, fmt.Sprintf(format, args...))
}

func checkAlgorithm(alg string) error {
	switch {
	case alg == "argon2id":
		return nil
	case alg == "argon2i" || alg == "argon2d":
		return malformed("algorithm %s: only argon2id is supported", alg)
	case symbolic(alg):
		return malformed("unsupported algorithm %q", alg)
	}
	return malformed("unsupported algorithm")
}

// symbolic reports whether s is a PHC function name ([a-z0-9-]{1,32}),
// and so safe to quote in an error.
func symbolic(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for _, c := range []byte(s) {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' {
			return false
		}
	}
	return true
}

func checkVersion(v string) error {
	want := "v=" + strconv.Itoa(argon2.Version)
	switch {
	case v == want:
		return nil
	case strings.HasPrefix(v, "v="):
		return malformed("unsupported version (want %s)", want)
	}
	return malformed("want %s after the algorithm", want)
}

// argon2ParamNames are the parameters of an argon2id string, in the order
// they must appear.
var argon2ParamNames = [3]string{"m", "t", "p"}

// parseArgon2Params parses "m=M,t=T,p=P" into Memory, Time and Threads,
// without checking the bounds.
func parseArgon2Params(s string) (Argon2Params, error) {
	var (
		vals [3]uint32
		pos  = [3]int{-1, -1, -1} // where each name appeared
	)
	for i, kv := range strings.Split(s, ",") {
		name, val, _ := strings.Cut(kv, "=")
		j := -1
		for k, n := range argon2ParamNames {
			if name == n {
				j = k
			}
		}
		switch {
		case j < 0 && symbolic(name):
			return Argon2Params{}, malformed("unsupported parameter %q", name)
		case j < 0:
			return Argon2Params{}, malformed("unsupported parameter")
		case pos[j] >= 0:
			return Argon2Params{}, malformed("duplicate parameter %s", name)
		}
		n, err := parseDecimal(val)
		if err != nil {
			return Argon2Params{}, malformed("parameter %s: %v", name, err)
		}
		vals[j], pos[j] = n, i
	}
	for j, name := range argon2ParamNames {
		if pos[j] < 0 {
			return Argon2Params{}, malformed("missing parameter %s", name)
		}
	}
	for j := range pos {
		if pos[j] != j {
			return Argon2Params{}, malformed("parameters out of order (want m,t,p)")
		}
	}
	if vals[2] > MaxArgon2Threads {
		return Argon2Params{}, malformed("threads (p) %d outside 1..%d", vals[2], MaxArgon2Threads)
	}
	return Argon2Params{Memory: vals[0], Time: vals[1], Threads: uint8(vals[2])}, nil
}

// parseDecimal parses a PHC decimal that fits in 32 bits: digits only,
// without a sign or leading zeros.
func parseDecimal(s string) (uint32, error) {
	switch {
	case s == "":
		return 0, errors.New("no value")
	case len(s) > 1 && s[0] == '0':
		return 0, errors.New("leading zero")
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return 0, errors.New("not a decimal")
		}
	}
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, errors.New("out of range")
	}
	return uint32(n), nil
}

// decodeB64 decodes a salt or hash in the PHC's base64: the standard
// alphabet, no padding, trailing bits zero.
func decodeB64(what, s string) ([]byte, error) {
	if s == "" {
		return nil, malformed("empty %s", what)
	}
	// The decoder skips line breaks even in strict mode; the string would
	// then not be canonical.
	if strings.ContainsAny(s, "\r\n") {
		return nil, malformed("%s: line break in base64", what)
	}
	b, err := b64.DecodeString(s)
	if err != nil {
		return nil, malformed("%s: invalid base64", what)
	}
	return b, nil
}
