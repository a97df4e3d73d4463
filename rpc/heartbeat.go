package rpc

import (
	"sync/atomic"
	"time"
)

// epoch anchors mono, a cheap monotonic clock in nanoseconds.
var epoch = time.Now()

func mono() int64 { return int64(time.Since(epoch)) }

// channel is the state both ends keep for one open zerorpc channel: its ID
// and the heartbeat bookkeeping. A channel is identified by the message_id
// of its first event; every later event carries it as response_to.
type channel struct {
	id       []byte   // the ID's exact msgpack encoding, sent as response_to
	envelope [][]byte // ZMTP frames before the payload (routing, delimiter)
	lastSeen atomic.Int64
	lastHB   atomic.Int64
}

func (ch *channel) init(id []byte, envelope [][]byte) {
	ch.id, ch.envelope = id, envelope
	now := mono()
	ch.lastSeen.Store(now)
	ch.lastHB.Store(now)
}

// heartbeated is a channel in a heartbeat sweep.
type heartbeated interface {
	state() *channel
	// lost is called when the peer has not heartbeated for two intervals.
	lost()
}

// heartbeats sends _zpc_hb on every channel that has been open for an
// interval since it last sent one, and reports channels whose peer stayed
// silent for two intervals, as zerorpc does. It sweeps four times per
// interval until done is closed. snapshot fills a slice with the open
// channels.
func heartbeats(c *conn, interval time.Duration, done <-chan struct{}, snapshot func([]heartbeated) []heartbeated) {
	t := time.NewTicker(interval / 4)
	defer t.Stop()
	var open []heartbeated
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		open = snapshot(open[:0])
		now := mono()
		for i, h := range open {
			ch := h.state()
			switch {
			case now-ch.lastSeen.Load() > 2*int64(interval):
				h.lost()
			case now-ch.lastHB.Load() >= int64(interval)-int64(interval/8):
				ch.lastHB.Store(now)
				c.sendEvent(ch.envelope, ch.id, nil, evHeartbeat, hbArgs)
			}
			open[i] = nil
		}
	}
}
