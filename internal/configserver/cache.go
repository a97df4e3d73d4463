package configserver

import "sync"

// maxCached bounds the last-message cache; past it the cache starts over.
const maxCached = 1 << 16

// lastCache remembers, per subject, the last message this node wrote or
// read there, so that a write can skip reading it from the engine first.
// It is only a guess: every write is a compare-and-set on the subject's
// last sequence, so a stale entry (another node wrote since) costs one
// failed publish, after which the write reads the engine and retries.
// Reads never use it.
type lastCache struct {
	mu sync.Mutex
	m  map[string]*stored
}

func (c *lastCache) get(subj string) *stored {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[subj]
}

// put records st as subj's last message unless a later one is known.
func (c *lastCache) put(subj string, st *stored) {
	if st == nil {
		return
	}
	slim := &stored{seq: st.seq, rec: st.rec, hdr: st.hdr} // no value bytes
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxCached {
		c.m = make(map[string]*stored)
	}
	if old := c.m[subj]; old == nil || old.seq < st.seq {
		c.m[subj] = slim
	}
}

// drop forgets subj.
func (c *lastCache) drop(subj string) {
	c.mu.Lock()
	delete(c.m, subj)
	c.mu.Unlock()
}
