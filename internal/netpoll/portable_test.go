//go:build !linux || netpoll_portable

package netpoll

// pendingSettles reports whether pendingLen is exact once the peer has read
// everything: with the portable implementation the writer goroutine may not
// yet have noticed its write returned.
const pendingSettles = false

// pendingLen returns the bytes queued or being written for c.
func pendingLen(c *Conn) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending) + c.inflight
}
