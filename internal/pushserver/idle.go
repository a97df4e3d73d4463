package pushserver

import "time"

// Idle detection, as netty's IdleStateHandler but on one timer wheel: a
// connection's timer fires at its earliest deadline, and onTimer acts on
// whichever passed and sets the timer for the next. Reads and writes only
// stamp times; they never touch the wheel.
//
// The node pings when it has written nothing for Ping (writer idle, which
// keeps proxies and NATs open) and when it has heard nothing for Ping and
// not pinged since (reader idle: the client is asked to prove it lives,
// however busy the connection is with pushes). It closes a connection it
// has heard nothing from for Ping+Pong, after a ping went unanswered.

// scheduleIdle sets c's timer to its next deadline.
func (s *Server) scheduleIdle(c *conn) {
	now := s.now.Load()
	next := c.lastWrite.Load() + int64(s.cfg.Ping)
	if c.tr != transportSSE {
		read := c.lastRead.Load()
		if c.lastPing.Load() > read {
			next = min(next, read+int64(s.cfg.Ping+s.cfg.Pong))
		} else {
			next = min(next, read+int64(s.cfg.Ping))
		}
	}
	if s.cfg.Idle > 0 {
		next = min(next, c.lastData.Load()+int64(s.cfg.Idle))
	}
	s.wheel.Schedule(&c.timer, max(time.Duration(next-now), s.cfg.Tick))
}

// onTimer runs on the wheel's goroutine when a connection's deadline
// may have passed.
func (s *Server) onTimer(c *conn) {
	if c.closed.Load() {
		return
	}
	now := s.now.Load()
	if !c.authed.Load() {
		if s.passed(now, c.since, s.cfg.ConnectTimeout) {
			c.close(disconnectNoConnect)
			return
		}
		s.wheel.Schedule(&c.timer, s.cfg.Tick)
		return
	}
	read, pinged := c.lastRead.Load(), c.lastPing.Load() > c.lastRead.Load()
	listens := c.tr != transportSSE // SSE clients never send
	if listens && pinged && s.passed(now, read, s.cfg.Ping+s.cfg.Pong) {
		s.metrics.idle.Inc()
		c.close(disconnectIdle)
		return
	}
	if s.cfg.Idle > 0 && s.passed(now, c.lastData.Load(), s.cfg.Idle) {
		c.close(disconnectIdle)
		return
	}
	if s.passed(now, c.lastWrite.Load(), s.cfg.Ping) || (listens && !pinged && s.passed(now, read, s.cfg.Ping)) {
		c.write(heartbeat(c.tr, c.encoding()))
		c.lastPing.Store(now)
		s.metrics.pings.Inc()
	}
	s.scheduleIdle(c)
}

// passed reports whether d has passed from stamp to now, two s.now
// readings. They move in whole ticks, give or take scheduling jitter, so
// half a tick of slack keeps a deadline that is a multiple of the tick
// (Ping = Tick, say) from slipping by a whole tick when the clock's tick
// lands a little early or the wheel fires just before the clock moves.
func (s *Server) passed(now, stamp int64, d time.Duration) bool {
	return time.Duration(now-stamp) >= d-s.cfg.Tick/2
}
