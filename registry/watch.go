package registry

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/internal/registrywire"
	"github.com/nats-io/nats.go"
)

// watchBuffer is how many change notices a watcher holds before NATS
// drops them as a slow consumer (a drop is noticed and triggers a
// re-read).
const watchBuffer = 4096

// Watcher follows the instances of one service (or all): Next returns
// first one put event per instance registered now, then every change,
// in order. It has no goroutine: Next does the work. A Watcher is for
// one goroutine at a time.
//
// Changes arrive as the registry bucket republishes them on core NATS:
// one subscription per watcher and no engine consumer. Each notice
// carries the previous revision of its instance; on a gap, a dropped
// notice, a reconnect and every ResyncInterval the watcher lists the
// service again and reports the difference, so it resumes where it was
// after any outage.
type Watcher struct {
	c       *Client
	service string
	sub     *nats.Subscription
	msgs    chan *nats.Msg
	status  chan nats.Status
	ticker  *time.Ticker

	state   map[string]Instance // by key
	seqs    map[string]uint64   // last revision seen per key, deletes included
	rev     uint64              // revision of the last list
	pending []Event
	resync  bool
	dropped int

	stopOnce sync.Once
	stopped  chan struct{}
}

// Watch starts watching service; "" watches every service. The first
// list is read before Watch returns. Stop the Watcher when done.
func (c *Client) Watch(ctx context.Context, service string) (*Watcher, error) {
	if service != "" {
		if err := registrywire.CheckService(service); err != nil {
			return nil, mortar.Errorf(mortar.CodeInvalidArgument, "registry: watch: %v", err)
		}
	}
	nc := c.conn.NATS()
	w := &Watcher{
		c: c, service: service,
		msgs:    make(chan *nats.Msg, watchBuffer),
		stopped: make(chan struct{}),
		state:   map[string]Instance{},
		seqs:    map[string]uint64{},
	}
	// Subscribe before listing, so no change falls between the two.
	sub, err := nc.ChanSubscribe(registrywire.EventSubject(service), w.msgs)
	if err != nil {
		return nil, fmt.Errorf("registry: watch %s: %w", service, err)
	}
	w.sub = sub
	w.status = nc.StatusChanged(nats.CONNECTED)
	if c.cfg.ResyncInterval > 0 {
		w.ticker = time.NewTicker(c.cfg.ResyncInterval)
	}
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = nc.FlushWithContext(fctx)
	cancel()
	if err == nil {
		err = w.relist(ctx)
	}
	if err != nil {
		w.Stop()
		return nil, err
	}
	return w, nil
}

// Stop ends the watch; Next returns ErrStopped. It is idempotent.
func (w *Watcher) Stop() {
	w.stopOnce.Do(func() {
		close(w.stopped)
		w.sub.Unsubscribe()
		w.c.conn.NATS().RemoveStatusListener(w.status)
		if w.ticker != nil {
			w.ticker.Stop()
		}
	})
}

// Instances returns the instances as the watcher knows them now, sorted
// by service and ID.
func (w *Watcher) Instances() []Instance {
	out := slices.Collect(maps.Values(w.state))
	sortInstances(out)
	return out
}

func sortInstances(s []Instance) {
	slices.SortFunc(s, func(a, b Instance) int {
		return cmp.Or(strings.Compare(a.Service, b.Service), strings.Compare(a.ID, b.ID))
	})
}

// Next returns the next event, waiting for one until ctx ends. If the
// node cannot be reached for a re-read, Next returns the error and tries
// again on the next call; the watcher's state is kept.
func (w *Watcher) Next(ctx context.Context) (Event, error) {
	var tick <-chan time.Time
	if w.ticker != nil {
		tick = w.ticker.C
	}
	for {
		select {
		case <-w.stopped:
			return Event{}, ErrStopped
		default:
		}
		if len(w.pending) > 0 {
			ev := w.pending[0]
			w.pending[0] = Event{}
			w.pending = w.pending[1:]
			return ev, nil
		}
		if d, _ := w.sub.Dropped(); d != w.dropped {
			w.dropped = d
			w.resync = true
		}
		if w.resync {
			if err := w.relist(ctx); err != nil {
				return Event{}, err
			}
			continue
		}
		select {
		case <-w.stopped:
			return Event{}, ErrStopped
		case m := <-w.msgs:
			w.apply(m)
		case <-w.status:
			w.resync = true
		case <-tick:
			w.resync = true
		case <-ctx.Done():
			return Event{}, ctx.Err()
		}
	}
}

// more reports whether Next has an event or a notice ready without
// waiting.
func (w *Watcher) more() bool { return len(w.pending) > 0 || len(w.msgs) > 0 || w.resync }

// relist reads the service again and queues the difference from what
// the watcher knew as events.
func (w *Watcher) relist(ctx context.Context) error {
	out, err := w.c.list(ctx, w.service)
	if err != nil {
		w.resync = true
		return err
	}
	next := make(map[string]Instance, len(out.Instances))
	seqs := make(map[string]uint64, len(out.Instances))
	for _, in := range out.Instances {
		k := in.key()
		next[k] = in
		seqs[k] = in.Revision
	}
	var puts []Instance
	for k, in := range next {
		if old, ok := w.state[k]; !ok || old.Revision != in.Revision {
			puts = append(puts, in)
		}
	}
	sortInstances(puts)
	for _, in := range puts {
		w.pending = append(w.pending, Event{Type: EventPut, Instance: in})
	}
	var dels []Instance
	for k, in := range w.state {
		if _, ok := next[k]; !ok {
			dels = append(dels, Instance{Service: in.Service, ID: in.ID})
		}
	}
	sortInstances(dels)
	for _, in := range dels {
		w.pending = append(w.pending, Event{Type: EventDelete, Instance: in})
	}
	w.state, w.seqs, w.rev, w.resync = next, seqs, out.Revision, false
	return nil
}

// apply turns one change notice into an event, or marks a gap.
func (w *Watcher) apply(m *nats.Msg) {
	ev, err := registrywire.DecodeEvent(m.Subject, m.Header, m.Data)
	if err != nil {
		w.c.log.Warn("ignoring a malformed registry event", "subject", m.Subject, "err", err)
		return
	}
	if ev.Seq <= w.rev || ev.Seq <= w.seqs[ev.Key] {
		return // already reflected
	}
	if ev.LastSeq > max(w.seqs[ev.Key], w.rev) {
		w.resync = true // missed a change of this instance
		return
	}
	w.seqs[ev.Key] = ev.Seq
	if ev.Deleted {
		if _, ok := w.state[ev.Key]; ok {
			delete(w.state, ev.Key)
			w.pending = append(w.pending, Event{Type: EventDelete, Instance: Instance{Service: ev.Service, ID: ev.ID}})
		}
		return
	}
	in, err := decodeRecord(ev)
	if err != nil {
		w.c.log.Warn("ignoring a malformed registry record", "subject", m.Subject, "err", err)
		return
	}
	w.state[ev.Key] = in
	w.pending = append(w.pending, Event{Type: EventPut, Instance: in})
}

// errMismatch: a record that does not name its own key.
var errMismatch = errors.New("registry: record does not match its key")

// decodeRecord decodes the instance of a put event.
func decodeRecord(ev registrywire.Event) (Instance, error) {
	var in Instance
	if err := json.Unmarshal(ev.Data, &in); err != nil {
		return Instance{}, err
	}
	if in.Service != ev.Service || in.ID != ev.ID {
		return Instance{}, errMismatch
	}
	in.Revision = ev.Seq
	return in, nil
}
