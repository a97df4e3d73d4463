package task

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/mortarhq/mortar/internal/taskwire"
	"github.com/nats-io/nats.go"
)

// Event types, as Celery's.
const (
	EventTaskSent        = "task-sent"
	EventTaskReceived    = "task-received"
	EventTaskStarted     = "task-started"
	EventTaskSucceeded   = "task-succeeded"
	EventTaskFailed      = "task-failed"
	EventTaskRetried     = "task-retried"
	EventTaskRevoked     = "task-revoked"
	EventWorkerOnline    = "worker-online"
	EventWorkerHeartbeat = "worker-heartbeat"
	EventWorkerOffline   = "worker-offline"
)

// HeartbeatInterval is how often a worker sends worker-heartbeat.
const HeartbeatInterval = 2 * time.Second

// Event is one task or worker event, with Celery's field names. Task
// events are sent only by clients and workers that enable them
// (Config.Events, WorkerConfig.Events); worker events always.
type Event struct {
	Type   string    `json:"type"`
	Time   time.Time `json:"timestamp"`
	Worker string    `json:"hostname,omitempty"` // the worker, or the sender's host@pid

	// Task events.
	ID        string  `json:"uuid,omitempty"`
	Task      string  `json:"name,omitempty"`
	Queue     string  `json:"queue,omitempty"`
	Retries   int     `json:"retries,omitempty"`
	Runtime   float64 `json:"runtime,omitempty"`   // seconds, task-succeeded and task-failed
	Exception string  `json:"exception,omitempty"` // task-failed, task-retried, task-revoked

	// Worker events.
	Queues      []string `json:"queues,omitempty"`
	Concurrency int      `json:"concurrency,omitempty"`
	Active      int      `json:"active,omitempty"`
	Processed   int64    `json:"processed,omitempty"`
	Freq        float64  `json:"freq,omitempty"` // seconds between heartbeats
}

func emit(nc *nats.Conn, e *Event) {
	e.Time = time.Now().UTC()
	b, _ := json.Marshal(e)
	nc.Publish(taskwire.EventPrefix+e.Type, b) // best effort, as Celery's events
}

// Monitor follows the events of every client and worker.
type Monitor struct {
	sub     *nats.Subscription
	ch      chan *nats.Msg
	dropped atomic.Int64
}

// MonitorBuffer is how many events a Monitor holds for a slow reader;
// beyond it events are dropped and counted (Monitor.Dropped).
const MonitorBuffer = 4096

// Monitor starts following events; types limits them to these event
// types (none: all). Stop it when done.
func (c *Client) Monitor(types ...string) (*Monitor, error) {
	m := &Monitor{ch: make(chan *nats.Msg, MonitorBuffer)}
	deliver := func(msg *nats.Msg) {
		select {
		case m.ch <- msg:
		default:
			m.dropped.Add(1)
		}
	}
	nc := c.conn.NATS()
	var err error
	if len(types) == 0 {
		m.sub, err = nc.Subscribe(taskwire.EventPrefix+"*", deliver)
	} else {
		want := map[string]bool{}
		for _, t := range types {
			want[taskwire.EventPrefix+t] = true
		}
		m.sub, err = nc.Subscribe(taskwire.EventPrefix+"*", func(msg *nats.Msg) {
			if want[msg.Subject] {
				deliver(msg)
			}
		})
	}
	if err != nil {
		return nil, fmt.Errorf("task: monitor: %w", err)
	}
	return m, nil
}

// Next returns the next event, waiting until one comes or ctx ends.
func (m *Monitor) Next(ctx context.Context) (Event, error) {
	for {
		select {
		case msg := <-m.ch:
			var e Event
			if json.Unmarshal(msg.Data, &e) == nil {
				return e, nil
			}
			m.dropped.Add(1) // not an event
		case <-ctx.Done():
			return Event{}, ctx.Err()
		}
	}
}

// Dropped counts the events lost because the reader was slow.
func (m *Monitor) Dropped() int64 { return m.dropped.Load() }

// Stop ends the monitor.
func (m *Monitor) Stop() { m.sub.Unsubscribe() }
