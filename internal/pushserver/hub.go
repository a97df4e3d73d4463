package pushserver

import (
	"runtime"
	"slices"
	"sync"
)

// hub indexes this node's authenticated connections. Lock order:
// hub.mu, then conn.mu or directory.mu.
type hub struct {
	mu       sync.RWMutex
	clients  map[string][]*conn // by client ID: one, or several with SameClientKeep
	users    map[string][]*conn
	channels map[string]map[*conn]struct{}
	all      map[*conn]struct{}

	// changed, when set, hears every connection entering ('+') or
	// leaving ('-') the index, under mu, in order.
	changed func(op, conn, client string)
}

func newHub() hub {
	return hub{
		clients:  map[string][]*conn{},
		users:    map[string][]*conn{},
		channels: map[string]map[*conn]struct{}{},
		all:      map[*conn]struct{}{},
	}
}

// add indexes c and returns the connections it replaces (with replace,
// the older ones with the same client ID). It returns false when c closed
// first.
func (h *hub) add(c *conn, replace bool) (replaced []*conn, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if c.closed.Load() {
		return nil, false
	}
	c.indexed = true
	if replace {
		replaced = h.clients[c.client]
		h.clients[c.client] = []*conn{c}
	} else {
		h.clients[c.client] = append(h.clients[c.client], c)
	}
	if c.user != "" {
		h.users[c.user] = append(h.users[c.user], c)
	}
	h.all[c] = struct{}{}
	if h.changed != nil {
		h.changed("+", c.id(), c.client)
	}
	return replaced, true
}

// remove drops c from every index; false when it was not indexed.
func (h *hub) remove(c *conn) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !c.indexed {
		return false
	}
	c.indexed = false
	c.mu.Lock()
	subs := c.subs
	c.subs = nil
	c.mu.Unlock()
	delete(h.all, c)
	if h.changed != nil {
		h.changed("-", c.id(), c.client)
	}
	deleteConn(h.clients, c.client, c)
	if c.user != "" {
		deleteConn(h.users, c.user, c)
	}
	for _, ch := range subs {
		h.unsubscribeLocked(c, ch)
	}
	return true
}

// deleteConn removes c from m[key], dropping the key when it empties.
func deleteConn(m map[string][]*conn, key string, c *conn) {
	cs := slices.DeleteFunc(m[key], func(x *conn) bool { return x == c })
	if len(cs) == 0 {
		delete(m, key)
		return
	}
	m[key] = cs
}

// subscribe adds c to channel ch; false when it already was.
func (h *hub) subscribe(c *conn, ch string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !c.indexed {
		return false // closed meanwhile
	}
	set := h.channels[ch]
	if set == nil {
		set = map[*conn]struct{}{}
		h.channels[ch] = set
	}
	if _, ok := set[c]; ok {
		return false
	}
	set[c] = struct{}{}
	c.mu.Lock()
	c.subs = append(c.subs, ch)
	c.mu.Unlock()
	return true
}

// unsubscribe removes c from ch; false when it was not subscribed.
func (h *hub) unsubscribe(c *conn, ch string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.unsubscribeLocked(c, ch) {
		return false
	}
	c.mu.Lock()
	c.subs = slices.DeleteFunc(c.subs, func(s string) bool { return s == ch })
	delete(c.recovering, ch)
	c.mu.Unlock()
	return true
}

func (h *hub) unsubscribeLocked(c *conn, ch string) bool {
	set := h.channels[ch]
	if _, ok := set[c]; !ok {
		return false
	}
	delete(set, c)
	if len(set) == 0 {
		delete(h.channels, ch)
	}
	return true
}

// byClient, byUser and byChannel return a copy of the connections to
// deliver to, so that writes happen outside the lock.
func (h *hub) byClient(id string) []*conn {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return slices.Clone(h.clients[id])
}

func (h *hub) byUser(u string) []*conn {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return slices.Clone(h.users[u])
}

func (h *hub) byChannel(ch string) []*conn {
	h.mu.RLock()
	defer h.mu.RUnlock()
	set := h.channels[ch]
	cs := make([]*conn, 0, len(set))
	for c := range set {
		cs = append(cs, c)
	}
	return cs
}

func (h *hub) everyone() []*conn {
	h.mu.RLock()
	defer h.mu.RUnlock()
	cs := make([]*conn, 0, len(h.all))
	for c := range h.all {
		cs = append(cs, c)
	}
	return cs
}

// len reports the authenticated connections and channels.
func (h *hub) len() (conns, channels int) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.all), len(h.channels)
}

// parallelMin is the fan-out size from which delivery spreads over the
// CPUs: below it one goroutine is faster than starting more.
const parallelMin = 512

// deliver writes f to every connection in cs.
func deliver(cs []*conn, f *frame) {
	n := runtime.GOMAXPROCS(0)
	if len(cs) < parallelMin || n == 1 {
		for _, c := range cs {
			c.sendFrame(f)
		}
		return
	}
	var wg sync.WaitGroup
	chunk := (len(cs) + n - 1) / n
	for part := range slices.Chunk(cs, chunk) {
		wg.Go(func() {
			for _, c := range part {
				c.sendFrame(f)
			}
		})
	}
	wg.Wait()
}
