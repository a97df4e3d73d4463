package config

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/internal/configwire"
	"github.com/nats-io/nats.go"
)

// ErrWatcherStopped is returned by Next after Stop.
var ErrWatcherStopped = errors.New("config: watcher stopped")

// watchBuffer is how many change notices a watcher holds before NATS
// drops them as a slow consumer (a dropped notice shows as a gap and
// triggers a re-read).
const watchBuffer = 1024

// flushTimeout bounds the round trip that makes a watch's subscription
// effective on the node when Watch's ctx has no deadline: as long as one
// attempt of an API request.
const flushTimeout = mortar.AttemptTimeoutDefault

// keyState is what a watcher knows of a key: the last message on its
// value subject and on its gray subject.
type keyState struct {
	group, key string
	mainSeq    uint64
	main       *configwire.Record // nil: never written
	mainData   []byte
	graySeq    uint64
	gray       *configwire.Record // nil or Deleted: no active gray release
	grayData   []byte
}

func stateOf(group, key string, r *configwire.GetResponse) *keyState {
	st := &keyState{group: group, key: key, mainSeq: r.Revision, graySeq: r.GrayRevision}
	if r.Version > 0 {
		st.main = &configwire.Record{
			Version: r.Version, Author: r.Author, Time: r.Time, Comment: r.Comment,
			ContentType: r.ContentType, Deleted: !r.Exists,
		}
		st.mainData = valueBytes(r.Value)
	}
	if g := r.Gray; g != nil {
		rule := g.Rule
		st.gray = &configwire.Record{
			Version: g.Generation, Author: g.Author, Time: g.Time, Comment: g.Comment,
			ContentType: g.ContentType, Rule: &rule, BaseVersion: g.BaseVersion,
		}
		st.grayData = valueBytes(g.Value)
		st.graySeq = g.Revision
	}
	return st
}

// effective resolves gray versus main for an instance.
func (st *keyState) effective(labels map[string]string, addr string) *Value {
	if g := st.gray; g != nil && !g.Deleted && g.Rule != nil && g.Rule.Matches(labels, addr) {
		v := &Value{
			Group: st.group, Key: st.key, Data: st.grayData, Exists: true, Revision: st.graySeq,
			ContentType: g.ContentType, Author: g.Author, Time: g.Time, Comment: g.Comment,
			Gray: true, GrayGeneration: g.Version,
		}
		if st.main != nil {
			v.Version = st.main.Version
		}
		if v.Data == nil {
			v.Data = []byte{}
		}
		return v
	}
	vi := configwire.VersionInfo{Revision: st.mainSeq}
	if m := st.main; m != nil {
		vi = m.Info(st.mainSeq)
	}
	return mainValue(st.group, st.key, &vi, st.mainData)
}

// Watcher follows one key: Next returns its value as this client sees it
// (gray releases resolved), first the current one, then each change, in
// order. It has no goroutine: Next does the work. A Watcher is for one
// goroutine at a time.
//
// Changes arrive as the config stream republishes them on core NATS, one
// subscription per watcher and no engine consumer. Each notice carries
// the previous sequence of its subject: on a gap (a lost notice), on a
// reconnect and every ResyncInterval, the watcher re-reads the key, so it
// never misses the latest value; versions the gap skipped (up to
// MaxReplay of them) are read from the history and returned first, in
// order, so that a watcher of the main value sees every version.
type Watcher struct {
	c      *Client
	group  string
	key    string
	sub    *nats.Subscription
	msgs   chan *nats.Msg
	status chan nats.Status

	state    *keyState
	emitted  bool
	lastSeen [2]uint64 // (gray generation or 0, main sequence) last returned
	lastVer  uint64    // main version last returned (0 after a gray value)
	replay   []*Value  // versions a gap skipped, returned before the current one
	resync   bool
	ticker   *time.Ticker

	stopOnce sync.Once
	stopped  chan struct{}
}

// Watch starts watching group/key. Stop the Watcher when done.
func (c *Client) Watch(ctx context.Context, group, key string) (*Watcher, error) {
	k := c.key(group, key)
	if !configwire.ValidName(k.Group) {
		return nil, fmt.Errorf("config: watch %s/%s: bad group name", group, key)
	}
	if err := configwire.CheckKey(key); err != nil {
		return nil, fmt.Errorf("config: watch %s/%s: %w", group, key, err)
	}
	nc := c.conn.NATS()
	w := &Watcher{
		c: c, group: group, key: key,
		msgs:    make(chan *nats.Msg, watchBuffer),
		stopped: make(chan struct{}),
	}
	// Subscribe before reading, so no change falls between the two.
	sub, err := nc.ChanSubscribe(configwire.KeyEvents(k.NS, group, key), w.msgs)
	if err != nil {
		return nil, fmt.Errorf("config: watch %s/%s: %w", group, key, err)
	}
	w.sub = sub
	// NATS refuses to flush under a ctx without a deadline; give the
	// flush one of its own then.
	fctx := ctx
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		fctx, cancel = context.WithTimeout(ctx, flushTimeout)
		defer cancel()
	}
	if err := nc.FlushWithContext(fctx); err != nil {
		sub.Unsubscribe()
		return nil, fmt.Errorf("config: watch %s/%s: %w", group, key, err)
	}
	w.status = nc.StatusChanged(nats.CONNECTED)
	if c.cfg.ResyncInterval > 0 {
		w.ticker = time.NewTicker(c.cfg.ResyncInterval)
	}
	if err := w.read(ctx); err != nil {
		w.Stop()
		return nil, err
	}
	return w, nil
}

// Stop ends the watch. It is idempotent; Next then returns
// ErrWatcherStopped.
func (w *Watcher) Stop() {
	w.stopOnce.Do(func() {
		w.sub.Unsubscribe()
		w.c.conn.NATS().RemoveStatusListener(w.status)
		if w.ticker != nil {
			w.ticker.Stop()
		}
		close(w.stopped)
	})
}

// read re-reads the key's state.
func (w *Watcher) read(ctx context.Context) error {
	var resp configwire.GetResponse
	req := configwire.GetRequest{Key: w.c.key(w.group, w.key), WithGray: true}
	if err := w.c.conn.Do(ctx, "config.get", req, &resp); err != nil {
		return fmt.Errorf("config: watch %s/%s: %w", w.group, w.key, err)
	}
	w.state = stateOf(w.group, w.key, &resp)
	w.resync = false
	return nil
}

// Next returns the first value (the current one; Exists false if the key
// does not exist), then blocks until the value this client sees changes
// and returns it. It returns ctx's error when ctx ends (the watch stays
// usable) and ErrWatcherStopped after Stop. A failed re-read is returned
// as an error too; the next call retries it.
func (w *Watcher) Next(ctx context.Context) (*Value, error) {
	var tick <-chan time.Time
	if w.ticker != nil {
		tick = w.ticker.C
	}
	for {
		select {
		case <-w.stopped:
			return nil, ErrWatcherStopped
		default:
		}
		if len(w.replay) > 0 {
			v := w.replay[0]
			w.replay = w.replay[1:]
			w.lastVer = v.Version
			return v, nil
		}
		if w.resync {
			if err := w.read(ctx); err != nil {
				return nil, err
			}
			if err := w.fillGap(ctx); err != nil {
				return nil, err
			}
			if len(w.replay) > 0 {
				continue
			}
		}
		if v := w.changed(); v != nil {
			w.lastVer = 0
			if !v.Gray {
				w.lastVer = v.Version
			}
			return v, nil
		}
		select {
		case m := <-w.msgs:
			w.apply(m)
		case <-w.status:
			w.resync = true // reconnected: notices may have been lost
		case <-tick:
			w.resync = true
		case <-w.stopped:
			return nil, ErrWatcherStopped
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// MaxReplay bounds the versions a watcher reads back from the history
// after a gap; beyond it, the oldest skipped versions are not returned.
const MaxReplay = 1000

// fillGap queues the main versions between the last one returned and the
// current one, if a re-read found more than one step between them and
// this client sees the main value: one history page, then one read per
// version by its revision.
func (w *Watcher) fillGap(ctx context.Context) error {
	cur := w.state.effective(w.c.cfg.Labels, w.c.cfg.Address)
	if w.lastVer == 0 || cur.Gray || cur.Version <= w.lastVer+1 {
		return nil
	}
	skipped := min(cur.Version-w.lastVer-1, MaxReplay)
	page, _, err := w.c.History(ctx, w.group, w.key, &HistoryOpts{Before: cur.Version, Limit: int(skipped)})
	if err == nil {
		for i := len(page) - 1; i >= 0; i-- { // oldest first
			var val *Value
			if val, err = w.c.getRevision(ctx, w.group, w.key, page[i].Revision); err != nil {
				break
			}
			w.replay = append(w.replay, val)
		}
	}
	if err != nil {
		w.replay = nil
		w.resync = true // try the whole re-read again
		return err
	}
	return nil
}

// changed returns the effective value if it differs from the last one
// returned.
func (w *Watcher) changed() *Value {
	v := w.state.effective(w.c.cfg.Labels, w.c.cfg.Address)
	id := [2]uint64{0, w.state.mainSeq}
	if v.Gray {
		id = [2]uint64{v.GrayGeneration, 0}
	}
	if w.emitted && id == w.lastSeen {
		return nil
	}
	w.emitted, w.lastSeen = true, id
	return v
}

// apply folds one change notice into the state, or marks a re-read when
// it shows a gap.
func (w *Watcher) apply(m *nats.Msg) {
	ev, rec, err := configwire.DecodeEvent(m.Subject, m.Header, m.Data)
	if err != nil {
		w.c.log.Warn("config watch: malformed change notice; re-reading", "subject", m.Subject, "err", err)
		w.resync = true
		return
	}
	seq := &w.state.mainSeq
	if ev.Gray {
		seq = &w.state.graySeq
	}
	switch {
	case ev.Seq <= *seq:
		return // already known (read after subscribing)
	case ev.LastSeq != *seq:
		w.resync = true // a notice was lost
		return
	}
	*seq = ev.Seq
	if ev.Gray {
		w.state.gray, w.state.grayData = rec, m.Data
	} else {
		w.state.main, w.state.mainData = rec, m.Data
	}
}
