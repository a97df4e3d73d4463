package pushserver

import "time"

// Idle detection, as netty's IdleStateHandler but on one timer wheel: a
// connection's timer fires at its earliest deadline, and onTimer acts on
// whichever passed and sets the timer for the next. Reads and writes only
// stamp times; they never touch the wheel.

// scheduleIdle sets c's timer to its next deadline.
func (s *Server) scheduleIdle(c *conn) {
	now := s.now.Load()
	next := c.lastWrite.Load() + int64(s.cfg.Ping)
	if c.tr != transportSSE {
		next = min(next, c.lastRead.Load()+int64(s.cfg.Ping+s.cfg.Pong))
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
		if time.Duration(now-c.since) >= s.cfg.ConnectTimeout-s.cfg.Tick {
			c.close(disconnectNoConnect)
			return
		}
		s.wheel.Schedule(&c.timer, s.cfg.Tick)
		return
	}
	if c.tr != transportSSE && time.Duration(now-c.lastRead.Load()) >= s.cfg.Ping+s.cfg.Pong {
		s.metrics.idle.Inc()
		c.close(disconnectIdle)
		return
	}
	if s.cfg.Idle > 0 && time.Duration(now-c.lastData.Load()) >= s.cfg.Idle {
		c.close(disconnectIdle)
		return
	}
	if time.Duration(now-c.lastWrite.Load()) >= s.cfg.Ping {
		c.write(heartbeat(c.tr, c.enc))
		s.metrics.pings.Inc()
	}
	s.scheduleIdle(c)
}
