// Package configwire is the config center's layout on the engine, shared by
// the server half (internal/configserver) and the SDK (package config):
// names and their validation, subjects, the metadata header of every
// stored version, gray release rules, content-type checks and the line
// diff. Every decoder of bytes from the network lives here and is fuzzed.
package configwire

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
)

// Limits.
const (
	MaxValueBytes   = 1 << 20 // a value is at most 1 MiB
	MaxKeyBytes     = 256     // a key is 1..256 bytes of UTF-8
	MaxNameBytes    = 64      // a namespace or group is 1..64 of [A-Za-z0-9_-]
	MaxCommentBytes = 1024
	MaxAuthorBytes  = 256
	DefaultNS       = "default"
)

// Stream layout: one stream holds every version of every key, every gray
// record and every namespace record; its leader republishes each stored
// message once on EventPrefix + the subject without "mortar.cfg.".
const (
	Stream        = "MORTAR_CONFIG"
	SubjectPrefix = "mortar.cfg."
	ValuePrefix   = "mortar.cfg.v."  // + <ns>.<group>.<enckey>
	GrayPrefix    = "mortar.cfg.g."  // + <ns>.<group>.<enckey>
	NSPrefix      = "mortar.cfg.ns." // + <ns>
	EventPrefix   = "mortar.cfg.ev." // + v|g|ns.…
	// HeaderMeta carries a version's Record as JSON.
	HeaderMeta = "Mortar-Config"
)

// Content types a value may have.
const (
	TypeText       = "text"
	TypeJSON       = "json"
	TypeYAML       = "yaml"
	TypeTOML       = "toml"
	TypeProperties = "properties"
)

// ContentTypes lists the valid content types.
var ContentTypes = []string{TypeText, TypeJSON, TypeYAML, TypeTOML, TypeProperties}

// Record is the metadata of one stored message: a version of a key, a
// gray record, or a namespace record. It rides as JSON in HeaderMeta; the
// message body is the raw value.
type Record struct {
	// Version is the key's version (1, 2, …; dense per key) for a value,
	// or the gray record's generation for a gray record.
	Version     uint64    `json:"version"`
	Author      string    `json:"author,omitempty"`
	Time        time.Time `json:"time"`
	Comment     string    `json:"comment,omitempty"`
	ContentType string    `json:"content_type,omitempty"`
	SHA256      string    `json:"sha256,omitempty"`
	Size        int       `json:"size"`
	// Deleted marks a tombstone (value), a cleared gray record, or a
	// deleted namespace.
	Deleted bool `json:"deleted,omitempty"`
	// RollbackOf is the version this one copies, for a rollback.
	RollbackOf uint64 `json:"rollback_of,omitempty"`
	// PromotedFrom is the gray generation a promoted version came from.
	PromotedFrom uint64 `json:"promoted_from,omitempty"`
	// Gray only: the rule, the main version it was made against, and
	// why it was cleared ("promoted", "abandoned").
	Rule        *Rule  `json:"rule,omitempty"`
	BaseVersion uint64 `json:"base_version,omitempty"`
	Outcome     string `json:"outcome,omitempty"`
}

// Sum returns the hex SHA-256 of data.
func Sum(data []byte) string {
	s := sha256.Sum256(data)
	return hex.EncodeToString(s[:])
}

// EncodeHeader returns the header value for r.
func EncodeHeader(r *Record) string {
	b, _ := json.Marshal(r) // escapes control characters: no CR or LF
	return string(b)
}

// ErrMalformed is returned for stored or republished bytes that do not
// decode.
var ErrMalformed = errors.New("configwire: malformed record")

// DecodeRecord decodes the metadata header of a stored or republished
// message and checks the body against it.
func DecodeRecord(h nats.Header, data []byte) (*Record, error) {
	r, err := DecodeMeta(h)
	if err != nil {
		return nil, err
	}
	if r.Size != len(data) {
		return nil, fmt.Errorf("%w: size %d, body %d bytes", ErrMalformed, r.Size, len(data))
	}
	if r.SHA256 != "" && r.SHA256 != Sum(data) {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrMalformed)
	}
	return r, nil
}

// DecodeMeta decodes the metadata header alone (a headers-only read).
func DecodeMeta(h nats.Header) (*Record, error) {
	raw := h.Get(HeaderMeta)
	if raw == "" {
		return nil, fmt.Errorf("%w: no %s header", ErrMalformed, HeaderMeta)
	}
	var r Record
	if err := json.Unmarshal([]byte(raw), &r); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if r.Size < 0 || r.Size > MaxValueBytes {
		return nil, fmt.Errorf("%w: size %d", ErrMalformed, r.Size)
	}
	if r.Rule != nil {
		if err := r.Rule.Validate(); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
		}
	}
	return &r, nil
}

// ValidName reports whether s is a valid namespace or group name.
func ValidName(s string) bool {
	if len(s) == 0 || len(s) > MaxNameBytes {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// CheckKey returns why key is not a valid key, or nil.
func CheckKey(key string) error {
	switch {
	case key == "":
		return errors.New("key is empty")
	case len(key) > MaxKeyBytes:
		return fmt.Errorf("key is %d bytes, more than %d", len(key), MaxKeyBytes)
	case !utf8.ValidString(key):
		return errors.New("key is not valid UTF-8")
	}
	return nil
}

// EncodeKey encodes a free-form key as one subject token.
func EncodeKey(key string) string { return base64.RawURLEncoding.EncodeToString([]byte(key)) }

// DecodeKey reverses EncodeKey.
func DecodeKey(tok string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return "", fmt.Errorf("%w: key token %q", ErrMalformed, tok)
	}
	if err := CheckKey(string(b)); err != nil {
		return "", fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return string(b), nil
}

// ValueSubject is the subject of a key's versions.
func ValueSubject(ns, group, key string) string {
	return ValuePrefix + ns + "." + group + "." + EncodeKey(key)
}

// GraySubject is the subject of a key's gray records.
func GraySubject(ns, group, key string) string {
	return GrayPrefix + ns + "." + group + "." + EncodeKey(key)
}

// NSSubject is the subject of a namespace's records.
func NSSubject(ns string) string { return NSPrefix + ns }

// EventSubject is where the stream republishes messages stored on subj.
func EventSubject(subj string) string {
	return EventPrefix + strings.TrimPrefix(subj, SubjectPrefix)
}

// KeyEvents is the subject a watcher of one key subscribes to: its
// versions and its gray records.
func KeyEvents(ns, group, key string) string {
	return EventPrefix + "*." + ns + "." + group + "." + EncodeKey(key)
}

// Event is a republished message's address.
type Event struct {
	Gray             bool
	NS, Group, Key   string
	Seq, LastSeq     uint64 // stream sequence, and the previous one on its subject
	StoredSubjectRaw string
}

// ParseEventSubject splits a republished value or gray subject.
func ParseEventSubject(subj string) (Event, error) {
	rest, ok := strings.CutPrefix(subj, EventPrefix)
	if !ok {
		return Event{}, fmt.Errorf("%w: subject %q", ErrMalformed, subj)
	}
	parts := strings.Split(rest, ".")
	if len(parts) != 4 || (parts[0] != "v" && parts[0] != "g") || !ValidName(parts[1]) || !ValidName(parts[2]) {
		return Event{}, fmt.Errorf("%w: subject %q", ErrMalformed, subj)
	}
	key, err := DecodeKey(parts[3])
	if err != nil {
		return Event{}, err
	}
	return Event{Gray: parts[0] == "g", NS: parts[1], Group: parts[2], Key: key, StoredSubjectRaw: SubjectPrefix + rest}, nil
}
