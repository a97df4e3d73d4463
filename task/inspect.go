package task

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mortarhq/mortar/internal/taskwire"
	"github.com/nats-io/nats.go"
)

// TaskInfo is a task a worker runs or holds.
type TaskInfo struct {
	ID      string    `json:"id"`
	Task    string    `json:"name"`
	Queue   string    `json:"queue"`
	Started time.Time `json:"time_start,omitzero"` // running tasks only
}

// Inspection is one worker's answer to Inspect: Celery's inspect active
// and reserved.
type Inspection struct {
	Worker      string     `json:"hostname"`
	Queues      []string   `json:"queues"`
	Concurrency int        `json:"concurrency"`
	Active      []TaskInfo `json:"active"`   // running
	Reserved    []TaskInfo `json:"reserved"` // taken from a queue, waiting for a free slot
}

// InspectTimeoutDefault is how long Inspect waits for workers' answers
// unless ctx ends sooner (Celery's inspect timeout).
const InspectTimeoutDefault = time.Second

// Inspect asks every running worker what it runs and holds. Workers that
// have not answered within a second (or when ctx ends, if sooner) are
// left out.
func (c *Client) Inspect(ctx context.Context) ([]Inspection, error) {
	ctx, cancel := context.WithTimeout(ctx, InspectTimeoutDefault)
	defer cancel()
	nc := c.conn.NATS()
	inbox := nc.NewRespInbox()
	ch := make(chan *nats.Msg, 256)
	sub, err := nc.ChanSubscribe(inbox, ch)
	if err != nil {
		return nil, fmt.Errorf("task: inspect: %w", err)
	}
	defer sub.Unsubscribe()
	if err := nc.PublishRequest(taskwire.InspectSubject, inbox, nil); err != nil {
		return nil, fmt.Errorf("task: inspect: %w", err)
	}
	var out []Inspection
	for {
		select {
		case m := <-ch:
			var in Inspection
			if json.Unmarshal(m.Data, &in) == nil && in.Worker != "" {
				out = append(out, in)
			}
		case <-ctx.Done():
			slices.SortFunc(out, func(a, b Inspection) int { return strings.Compare(a.Worker, b.Worker) })
			return out, nil
		}
	}
}

// inspect answers an inspection request.
func (w *Worker) inspect(bufs []*prefetch, queues []string) Inspection {
	in := Inspection{Worker: w.cfg.Name, Queues: w.cfg.Queues, Concurrency: w.cfg.Concurrency, Active: w.revoked.active(), Reserved: []TaskInfo{}}
	for i, b := range bufs {
		b.mu.Lock()
		for _, h := range b.msgs {
			hd := h.msg.Headers()
			in.Reserved = append(in.Reserved, TaskInfo{ID: hd.Get(taskwire.HdrID), Task: hd.Get(taskwire.HdrTask), Queue: queues[i]})
		}
		b.mu.Unlock()
	}
	return in
}
