package registry

import (
	"cmp"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/internal/registrywire"
)

// Status is an instance's health as the registry sees it.
type Status string

// Health statuses. Balancers use passing and warning instances and skip
// critical ones.
const (
	StatusPassing  Status = "passing"
	StatusWarning  Status = "warning"
	StatusCritical Status = "critical"
)

// Instance is one registered instance of a service. Service and ID name
// it; the node fills Node, Status and Registered.
type Instance struct {
	Service  string            `json:"service"`            // [A-Za-z0-9_-], 1 to 128 bytes
	ID       string            `json:"id"`                 // free-form, 1 to 256 bytes; unique within Service
	Address  string            `json:"address"`            // host name or IP
	Port     int               `json:"port"`               // 1 to 65535
	Protocol string            `json:"protocol,omitempty"` // "zerorpc" (default), "http", "grpc", "tcp", …
	Version  string            `json:"version,omitempty"`
	Zone     string            `json:"zone,omitempty"`
	Weight   int               `json:"weight,omitempty"` // relative weight for balancers, 1 to 10000; defaults to 100
	Metadata map[string]string `json:"metadata,omitempty"`
	Tags     []string          `json:"tags,omitempty"`
	// TTL is the lease: without a heartbeat for this long the instance is
	// evicted. Zero means no lease (the instance stays until deregistered,
	// and an active Check, if any, decides its status).
	TTL time.Duration `json:"ttl,omitempty"`
	// Check is an optional active health check the node runs.
	Check *Check `json:"check,omitempty"`

	// Set by the node.
	Node       string    `json:"node,omitempty"`   // the node that owns the instance's lease
	Status     Status    `json:"status,omitempty"` // health
	Output     string    `json:"output,omitempty"` // output of the check that last changed Status, for operators
	Registered time.Time `json:"registered,omitzero"`
	Revision   uint64    `json:"revision,omitempty"` // the engine's revision of this record
}

// Endpoint returns "protocol://address:port", e.g. tcp://10.0.0.5:4242 for
// a zerorpc instance.
func (in *Instance) Endpoint() string {
	scheme := in.Protocol
	if scheme == "" || scheme == "zerorpc" {
		scheme = "tcp"
	}
	return scheme + "://" + net.JoinHostPort(in.Address, strconv.Itoa(in.Port))
}

// CheckType names an active health check.
type CheckType string

// Active check types.
const (
	CheckTCP  CheckType = "tcp"  // passing when a TCP connection opens
	CheckHTTP CheckType = "http" // GET the URL: 2xx passing, 429 warning, else critical
	CheckRPC  CheckType = "rpc"  // call _zerorpc_ping on the instance's endpoint
)

// Check is an active health check run by the node that owns the instance.
type Check struct {
	Type     CheckType     `json:"type"`
	Interval time.Duration `json:"interval,omitempty"` // defaults to 10s
	Timeout  time.Duration `json:"timeout,omitempty"`  // defaults to 2s
	// URL for an HTTP check; defaults to http://address:port/health.
	URL string `json:"url,omitempty"`
	// WarningAfter and CriticalAfter are how many consecutive failures
	// turn the status warning and critical; default 1 and 3.
	WarningAfter  int `json:"warning_after,omitempty"`
	CriticalAfter int `json:"critical_after,omitempty"`
}

// EventType is the kind of a watch event.
type EventType string

// Watch event types.
const (
	EventPut    EventType = "put"    // registered, or changed (status, metadata, owner)
	EventDelete EventType = "delete" // deregistered or evicted
)

// Event is one change seen by a watcher. For EventDelete only Service and
// ID of Instance are set.
type Event struct {
	Type     EventType `json:"type"`
	Instance Instance  `json:"instance"`
}

// Limits and defaults of an Instance.
const (
	WeightDefault      = 100
	MaxWeight          = 10000
	ProtocolDefault    = "zerorpc"
	MinTTL             = time.Second
	MaxTTL             = 24 * time.Hour
	MaxMetadata        = 64   // entries
	MaxMetadataKey     = 128  // bytes
	MaxMetadataValue   = 1024 // bytes
	MaxTags            = 64
	MaxTagBytes        = 128
	CheckIntervalMin   = time.Second
	CheckIntervalDef   = 10 * time.Second
	CheckTimeoutDef    = 2 * time.Second
	WarningAfterDef    = 1
	CriticalAfterDef   = 3
	maxAddressBytes    = 253
	maxShortFieldBytes = 128
)

// Normalize checks in and fills its defaults: Weight, Protocol, and the
// Check's interval, timeout and thresholds. It returns an error with code
// invalid_argument naming the first bad field.
func (in *Instance) Normalize() error {
	bad := func(format string, args ...any) error {
		return mortar.Errorf(mortar.CodeInvalidArgument, "instance: "+format, args...)
	}
	if err := registrywire.CheckRef(in.Service, in.ID); err != nil {
		return bad("%v", err)
	}
	switch {
	case in.Address == "" || len(in.Address) > maxAddressBytes || strings.ContainsAny(in.Address, " /\t\r\n"):
		return bad("address %q: want a host name or IP", in.Address)
	case in.Port < 1 || in.Port > 65535:
		return bad("port %d: want 1 to 65535", in.Port)
	case in.Weight < 0 || in.Weight > MaxWeight:
		return bad("weight %d: want 1 to %d (0 means %d)", in.Weight, MaxWeight, WeightDefault)
	case in.TTL != 0 && (in.TTL < MinTTL || in.TTL > MaxTTL):
		return bad("ttl %v: want %v to %v, or 0 for no lease", in.TTL, MinTTL, MaxTTL)
	case len(in.Protocol) > maxShortFieldBytes || len(in.Version) > maxShortFieldBytes || len(in.Zone) > maxShortFieldBytes:
		return bad("protocol, version and zone are at most %d bytes", maxShortFieldBytes)
	case len(in.Metadata) > MaxMetadata:
		return bad("%d metadata entries: at most %d", len(in.Metadata), MaxMetadata)
	case len(in.Tags) > MaxTags:
		return bad("%d tags: at most %d", len(in.Tags), MaxTags)
	}
	for k, v := range in.Metadata {
		if k == "" || len(k) > MaxMetadataKey || len(v) > MaxMetadataValue {
			return bad("metadata %q: keys 1 to %d bytes, values at most %d", k, MaxMetadataKey, MaxMetadataValue)
		}
	}
	for _, t := range in.Tags {
		if t == "" || len(t) > MaxTagBytes {
			return bad("tag %q: want 1 to %d bytes", t, MaxTagBytes)
		}
	}
	in.Weight = cmp.Or(in.Weight, WeightDefault)
	in.Protocol = cmp.Or(in.Protocol, ProtocolDefault)
	if c := in.Check; c != nil {
		cc := *c
		switch cc.Type {
		case CheckTCP, CheckRPC:
		case CheckHTTP:
			if cc.URL != "" {
				u, err := url.Parse(cc.URL)
				if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
					return bad("check url %q: want an http:// or https:// URL", cc.URL)
				}
			}
		default:
			return bad("check type %q: want tcp, http or rpc", cc.Type)
		}
		cc.Interval = cmp.Or(cc.Interval, CheckIntervalDef)
		cc.Timeout = cmp.Or(cc.Timeout, min(CheckTimeoutDef, cc.Interval))
		cc.WarningAfter = cmp.Or(cc.WarningAfter, WarningAfterDef)
		cc.CriticalAfter = cmp.Or(cc.CriticalAfter, CriticalAfterDef)
		switch {
		case cc.Interval < CheckIntervalMin || cc.Interval > time.Hour:
			return bad("check interval %v: want %v to 1h", cc.Interval, CheckIntervalMin)
		case cc.Timeout <= 0 || cc.Timeout > cc.Interval:
			return bad("check timeout %v: want more than 0 and at most the interval %v", cc.Timeout, cc.Interval)
		case cc.WarningAfter < 1 || cc.CriticalAfter < cc.WarningAfter || cc.CriticalAfter > 100:
			return bad("check thresholds warning_after %d, critical_after %d: want 1 ≤ warning ≤ critical ≤ 100", cc.WarningAfter, cc.CriticalAfter)
		}
		in.Check = &cc
	}
	return nil
}

// key is the instance's identity in maps.
func (in *Instance) key() string { return registrywire.Key(in.Service, in.ID) }
