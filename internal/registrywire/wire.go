// Package registrywire is what the registry's SDK and server halves agree
// on: the bucket, the engine key of an instance, the core NATS subjects of
// heartbeats and change events, and the decoding of a change event.
//
// An instance of service S with ID I is the key S.base64url(I) of the
// bucket Bucket (IDs are free-form; engine keys are not). The bucket
// republishes every write on EventPrefix+key with the headers
// Nats-Sequence (the write's revision) and Nats-Last-Sequence (the
// previous revision of the same key, 0 if none), so a watcher sees a gap.
// Instances heartbeat by publishing anything on HeartbeatPrefix+key.
package registrywire

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
)

// Bucket is the KV bucket of instances.
const Bucket = "mortar_registry"

// Core NATS subject prefixes.
const (
	EventPrefix     = "mortar.registry.ev."
	HeartbeatPrefix = "mortar.registry.hb."
)

// Limits on names.
const (
	MaxServiceBytes = 128
	MaxIDBytes      = 256
)

// ErrMalformed is wrapped by every decoding error.
var ErrMalformed = errors.New("registry: malformed event")

// ValidService reports whether s is a service name: 1 to 128 of
// [A-Za-z0-9_-], starting with a letter or digit.
func ValidService(s string) bool {
	if len(s) == 0 || len(s) > MaxServiceBytes || s[0] == '-' || s[0] == '_' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// ValidID reports whether id is an instance ID: 1 to 256 bytes of valid
// UTF-8 without control characters.
func ValidID(id string) bool {
	if len(id) == 0 || len(id) > MaxIDBytes {
		return false
	}
	for _, r := range id {
		if r < 0x20 || r == 0x7f || r == 0xfffd {
			return false
		}
	}
	return true
}

// CheckService returns an error that says what a service name must be,
// unless s is one.
func CheckService(s string) error {
	if !ValidService(s) {
		return fmt.Errorf("service %q: want 1 to %d of [A-Za-z0-9_-], starting with a letter or digit", s, MaxServiceBytes)
	}
	return nil
}

// CheckRef returns an error that says what is wrong with service or id,
// unless both are valid.
func CheckRef(service, id string) error {
	if err := CheckService(service); err != nil {
		return err
	}
	if !ValidID(id) {
		return fmt.Errorf("id %q: want 1 to %d bytes of printable UTF-8", id, MaxIDBytes)
	}
	return nil
}

// Key is the engine key of an instance.
func Key(service, id string) string {
	return service + "." + base64.RawURLEncoding.EncodeToString([]byte(id))
}

// ParseKey splits an engine key into service and ID.
func ParseKey(key string) (service, id string, err error) {
	service, enc, ok := strings.Cut(key, ".")
	if !ok || !ValidService(service) || enc == "" {
		return "", "", fmt.Errorf("%w: key %q", ErrMalformed, key)
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(enc)
	if err != nil || !ValidID(string(raw)) {
		return "", "", fmt.Errorf("%w: key %q", ErrMalformed, key)
	}
	return service, string(raw), nil
}

// EventSubject is the subject a watcher of service subscribes to; ""
// means every service.
func EventSubject(service string) string {
	if service == "" {
		return EventPrefix + ">"
	}
	return EventPrefix + service + ".*"
}

// HeartbeatSubject is where an instance heartbeats.
func HeartbeatSubject(service, id string) string { return HeartbeatPrefix + Key(service, id) }

// Event is a decoded change event.
type Event struct {
	Service, ID string
	Key         string
	Seq         uint64 // revision of this write
	LastSeq     uint64 // previous revision of the key; 0 if none
	Deleted     bool   // a delete or purge; Data is empty
	Data        []byte // the instance record (JSON) of a put
}

// Headers the stream adds or the KV sets.
const (
	hdrSequence     = "Nats-Sequence"
	hdrLastSequence = "Nats-Last-Sequence"
	hdrOperation    = "KV-Operation"
)

// DecodeEvent decodes a message the bucket republished.
func DecodeEvent(subject string, h nats.Header, data []byte) (Event, error) {
	key, ok := strings.CutPrefix(subject, EventPrefix)
	if !ok {
		return Event{}, fmt.Errorf("%w: subject %q", ErrMalformed, subject)
	}
	service, id, err := ParseKey(key)
	if err != nil {
		return Event{}, err
	}
	ev := Event{Service: service, ID: id, Key: key}
	ev.Seq, err = strconv.ParseUint(h.Get(hdrSequence), 10, 64)
	if err != nil || ev.Seq == 0 {
		return Event{}, fmt.Errorf("%w: %s header %q", ErrMalformed, hdrSequence, h.Get(hdrSequence))
	}
	ev.LastSeq, err = strconv.ParseUint(h.Get(hdrLastSequence), 10, 64)
	if err != nil || ev.LastSeq >= ev.Seq {
		return Event{}, fmt.Errorf("%w: %s header %q", ErrMalformed, hdrLastSequence, h.Get(hdrLastSequence))
	}
	switch op := h.Get(hdrOperation); op {
	case "":
		if len(data) == 0 {
			return Event{}, fmt.Errorf("%w: empty record", ErrMalformed)
		}
		ev.Data = data
	case "DEL", "PURGE":
		ev.Deleted = true
	default:
		return Event{}, fmt.Errorf("%w: %s %q", ErrMalformed, hdrOperation, op)
	}
	return ev, nil
}

// Ref names one instance in a request.
type Ref struct {
	Service string `json:"service"`
	ID      string `json:"id"`
}

// ListRequest is the body of registry.list; an empty Service lists every
// service's instances.
type ListRequest struct {
	Service string `json:"service,omitempty"`
}

// DeregisterResponse is the answer to registry.deregister.
type DeregisterResponse struct {
	Deleted bool `json:"deleted"`
}

// ServiceInfo summarises one service in registry.services.
type ServiceInfo struct {
	Name      string `json:"name"`
	Instances int    `json:"instances"`
	Passing   int    `json:"passing"`
	Warning   int    `json:"warning"`
	Critical  int    `json:"critical"`
}
