package registry

import (
	"net"
	"strconv"
	"time"
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
	Output     string    `json:"output,omitempty"` // last check's output, for operators
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
