package pushserver

import (
	"context"
	"encoding/json"
	"hash/fnv"
	"sort"
	"sync"
	"time"

	"github.com/mortarhq/mortar/internal/pushwire"
	"github.com/nats-io/nats.go"
)

// The directory: every node keeps, in memory, which node holds each client
// ID in the cluster (its own connections are in the hub). Nodes announce
// their connects and disconnects in batches on core NATS, with a digest of
// their whole set (a count and an XOR of entry hashes); a receiver whose
// copy disagrees with the digest asks that node for a snapshot. A node not
// heard from for three announce intervals is dropped. Nothing touches the
// replicated log: like heartbeats, this is state that heals itself.
//
// Pushes do not need it (every node hears every push and delivers to what
// it holds); it answers "where is client X" at once, from any node.

// Directory subjects.
const (
	dirEvents   = "mortar.push.dir.ev"    // batches of events and digests, from every node
	dirSnapshot = "mortar.push.dir.snap." // + node: request that node's whole set
)

// dirIntervalDefault is how often a node announces its digest when it has
// no events; dirFlush how long it gathers events into one announcement.
const (
	dirIntervalDefault = 5 * time.Second
	dirFlush           = 50 * time.Millisecond
)

// dirEvent is one connect ('+') or disconnect ('-').
type dirEvent struct {
	Op     string `json:"o"`
	Conn   string `json:"k"`
	Client string `json:"c"`
}

// dirBatch is what a node announces: events, then the digest of its whole
// set after them.
type dirBatch struct {
	Node   string     `json:"n"`
	Events []dirEvent `json:"e,omitempty"`
	Count  int        `json:"count"`
	Sum    uint64     `json:"sum"`
}

// dirSnap is a node's whole set, conn ID → client ID.
type dirSnap struct {
	Node  string            `json:"n"`
	Conns map[string]string `json:"conns"`
	Count int               `json:"count"`
	Sum   uint64            `json:"sum"`
}

// directory is this node's view of the others, and its own digest.
type directory struct {
	self     string
	interval time.Duration
	wake     chan struct{} // signalled when pending stops being empty

	mu       sync.Mutex
	pending  []dirEvent
	count    int    // own connections
	sum      uint64 // own digest
	nodes    map[string]*dirNode
	byClient map[string]map[string]int // client → node → connections
}

// dirNode is one other node's set as this node knows it.
type dirNode struct {
	conns   map[string]string // conn → client
	sum     uint64
	seen    time.Time
	syncing bool
}

func newDirectory(self string, interval time.Duration) *directory {
	return &directory{self: self, interval: interval, wake: make(chan struct{}, 1), nodes: map[string]*dirNode{}, byClient: map[string]map[string]int{}}
}

func entryHash(conn, client string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(conn))
	h.Write([]byte{0})
	h.Write([]byte(client))
	return h.Sum64()
}

// local records a connect or disconnect of this node.
func (d *directory) local(op, conn, client string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.pending) == 0 {
		select {
		case d.wake <- struct{}{}:
		default:
		}
	}
	d.pending = append(d.pending, dirEvent{Op: op, Conn: conn, Client: client})
	d.sum ^= entryHash(conn, client)
	if op == "+" {
		d.count++
	} else {
		d.count--
	}
}

// take returns the batch to announce: pending events, or just the digest
// when heartbeat is set; ok is false when there is nothing to send.
func (d *directory) take(heartbeat bool) (b dirBatch, ok bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.pending) == 0 && !heartbeat {
		return b, false
	}
	b = dirBatch{Node: d.self, Events: d.pending, Count: d.count, Sum: d.sum}
	d.pending = nil
	return b, true
}

// apply folds another node's batch in, and reports whether that node's
// digest disagrees with this node's copy (a snapshot is then needed).
func (d *directory) apply(b dirBatch, now time.Time) (resync bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := d.node(b.Node)
	n.seen = now
	for _, e := range b.Events {
		switch e.Op {
		case "+":
			if _, dup := n.conns[e.Conn]; !dup {
				n.conns[e.Conn] = e.Client
				n.sum ^= entryHash(e.Conn, e.Client)
				d.index(e.Client, b.Node, 1)
			}
		case "-":
			if c, ok := n.conns[e.Conn]; ok {
				delete(n.conns, e.Conn)
				n.sum ^= entryHash(e.Conn, c)
				d.index(c, b.Node, -1)
			}
		}
	}
	if len(n.conns) == b.Count && n.sum == b.Sum || n.syncing {
		return false
	}
	n.syncing = true
	return true
}

// replace installs a snapshot of a node's set.
func (d *directory) replace(s dirSnap, now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.dropLocked(s.Node)
	n := d.node(s.Node)
	n.seen = now
	for conn, client := range s.Conns {
		n.conns[conn] = client
		n.sum ^= entryHash(conn, client)
		d.index(client, s.Node, 1)
	}
}

// syncFailed lets the next disagreeing digest ask again.
func (d *directory) syncFailed(node string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if n := d.nodes[node]; n != nil {
		n.syncing = false
	}
}

// expire drops nodes not heard from for three intervals.
func (d *directory) expire(now time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for name, n := range d.nodes {
		if now.Sub(n.seen) > 3*d.interval {
			d.dropLocked(name)
		}
	}
}

// locate returns the other nodes holding client, with their connection
// counts.
func (d *directory) locate(client string) map[string]int {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[string]int, len(d.byClient[client]))
	for node, n := range d.byClient[client] {
		out[node] = n
	}
	return out
}

func (d *directory) node(name string) *dirNode {
	n := d.nodes[name]
	if n == nil {
		n = &dirNode{conns: map[string]string{}}
		d.nodes[name] = n
	}
	return n
}

func (d *directory) dropLocked(name string) {
	n := d.nodes[name]
	if n == nil {
		return
	}
	for _, client := range n.conns {
		d.index(client, name, -1)
	}
	delete(d.nodes, name)
}

// index adjusts byClient. d.mu is held.
func (d *directory) index(client, node string, delta int) {
	m := d.byClient[client]
	if m == nil {
		m = map[string]int{}
		d.byClient[client] = m
	}
	if m[node] += delta; m[node] <= 0 {
		delete(m, node)
	}
	if len(m) == 0 {
		delete(d.byClient, client)
	}
}

// runDirectory announces this node's events and digest, answers snapshot
// requests, folds in the other nodes' announcements and resyncs when they
// disagree, until ctx ends.
func (s *Server) runDirectory(ctx context.Context) error {
	d := s.dir
	var wg sync.WaitGroup
	defer wg.Wait()
	onBatch := func(m *nats.Msg) {
		var b dirBatch
		if json.Unmarshal(m.Data, &b) != nil || b.Node == d.self || b.Node == "" {
			return
		}
		if d.apply(b, time.Now()) {
			wg.Go(func() { s.resync(ctx, b.Node) })
		}
	}
	evSub, err := s.nc.Subscribe(dirEvents, onBatch)
	if err != nil {
		return err
	}
	defer evSub.Unsubscribe()
	snapSub, err := s.nc.Subscribe(dirSnapshot+d.self, func(m *nats.Msg) {
		b, err := json.Marshal(s.snapshot())
		if err == nil {
			m.Respond(b)
		}
	})
	if err != nil {
		return err
	}
	defer snapSub.Unsubscribe()

	// A first event opens a batching window of dirFlush; an idle node
	// wakes only for its digest.
	flush := time.NewTimer(dirFlush)
	flush.Stop()
	defer flush.Stop()
	beat := time.NewTicker(d.interval)
	defer beat.Stop()
	announce := func(heartbeat bool) {
		b, ok := d.take(heartbeat)
		if !ok {
			return
		}
		data, _ := json.Marshal(b)
		if err := s.nc.Publish(dirEvents, data); err != nil {
			s.log.Debug("push directory announce", "err", err)
		}
	}
	announce(true)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-d.wake:
			flush.Reset(dirFlush)
		case <-flush.C:
			announce(false)
		case now := <-beat.C:
			announce(true)
			d.expire(now)
		}
	}
}

// resync replaces this node's copy of node's set with a snapshot.
func (s *Server) resync(ctx context.Context, node string) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	m, err := s.nc.RequestWithContext(ctx, dirSnapshot+node, nil)
	var snap dirSnap
	if err == nil {
		err = json.Unmarshal(m.Data, &snap)
	}
	if err != nil {
		s.log.Debug("push directory resync", "node", node, "err", err)
		s.dir.syncFailed(node)
		return
	}
	s.dir.replace(snap, time.Now())
}

// snapshot is this node's whole set, from the hub.
func (s *Server) snapshot() dirSnap {
	snap := dirSnap{Node: s.cfg.NodeName, Conns: map[string]string{}}
	s.hub.mu.RLock()
	for c := range s.hub.all {
		snap.Conns[c.id()] = c.client
		snap.Sum ^= entryHash(c.id(), c.client)
	}
	s.hub.mu.RUnlock()
	snap.Count = len(snap.Conns)
	return snap
}

// locate answers from this node's hub and directory.
func (s *Server) locate(client string) []pushwire.Location {
	where := s.dir.locate(client)
	if n := len(s.hub.byClient(client)); n > 0 {
		where[s.cfg.NodeName] = n
	}
	locs := make([]pushwire.Location, 0, len(where))
	for node, n := range where {
		locs = append(locs, pushwire.Location{Node: node, Conns: n})
	}
	sort.Slice(locs, func(i, j int) bool { return locs[i].Node < locs[j].Node })
	return locs
}
