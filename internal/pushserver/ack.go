package pushserver

import (
	"encoding/json"
	"strconv"
	"sync"
	"time"

	"github.com/mortarhq/mortar/internal/pushwire"
	"github.com/nats-io/nats.go"
)

// ackWindow is how long a node remembers where a push's
// acknowledgements go.
const ackWindow = time.Minute

// ackTable maps the ack IDs this node put on pushes to the publisher's
// reply subject.
type ackTable struct {
	mu      sync.Mutex
	pending map[string]ackEntry
}

type ackEntry struct {
	reply   string
	expires time.Time
}

func (t *ackTable) init() { t.pending = map[string]ackEntry{} }

// add remembers reply under a new ID and returns the ID.
func (t *ackTable) add(reply, node string, serial uint64) string {
	id := node + "-a" + strconv.FormatUint(serial, 10)
	t.mu.Lock()
	t.pending[id] = ackEntry{reply: reply, expires: time.Now().Add(ackWindow)}
	t.mu.Unlock()
	return id
}

// ack forwards a client's acknowledgement of id, if it is known.
func (t *ackTable) ack(nc *nats.Conn, id, conn string) {
	t.mu.Lock()
	e, ok := t.pending[id]
	t.mu.Unlock()
	if !ok {
		return
	}
	b, _ := json.Marshal(pushwire.Ack{ID: id, Conn: conn})
	nc.Publish(e.reply, b)
}

// expire forgets IDs past their window.
func (t *ackTable) expire(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for id, e := range t.pending {
		if now.After(e.expires) {
			delete(t.pending, id)
		}
	}
}
