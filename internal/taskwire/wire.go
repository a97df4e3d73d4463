// Package taskwire is what the task queue's SDK, its server half and any
// other-language producer agree on: the engine layout (streams, subjects,
// buckets) and the task message, laid out as Celery's message protocol 2.
//
// A task message is a NATS message on QueuePrefix+queue. Celery's headers
// travel as NATS headers with Celery's names (lang, task, id, root_id,
// parent_id, group, retries, eta, expires, timelimit, argsrepr,
// kwargsrepr, origin) plus a few of mortar's own, prefixed "mortar-";
// the body is Celery's [args, kwargs, embed] in JSON. docs/tasks.md
// documents the format for producers in other languages.
package taskwire

import (
	"cmp"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Engine layout.
const (
	// Stream holds every queued task (work-queue retention: a message is
	// gone once a worker acknowledges it) and every delayed one.
	Stream = "MORTAR_TASKS"
	// QueuePrefix+queue is where a task waits for a worker.
	QueuePrefix = "mortar.task.q."
	// DelayPrefix+queue+"."+id holds a task until its ETA; the engine
	// moves it to its queue then (a message schedule).
	DelayPrefix = "mortar.task.d."
	// SchedulePrefix+name holds a schedule (Celery beat's entry): the
	// engine sends a copy of it to its queue each time it fires.
	SchedulePrefix = "mortar.task.s."
	// DeadStream holds dead letters on DeadPrefix+queue.
	DeadStream = "MORTAR_DEAD"
	DeadPrefix = "mortar.task.dead."
	// ResultBucket is the KV bucket of results, keyed by task ID. It
	// republishes every result on ResultPrefix+id, so a waiter needs no
	// engine consumer.
	ResultBucket = "mortar_results"
	ResultPrefix = "mortar.task.result."
	// RevokedBucket holds revoked task IDs (value: a Revocation) for
	// RevokedTTL; every worker mirrors it.
	RevokedBucket = "mortar_revoked"
	// UniqueBucket holds the unique keys of recent sends, each with the
	// TTL of its window (value: the task ID).
	UniqueBucket = "mortar_unique"
	// ChordBucket holds each chord's join state, keyed by its group ID
	// (value: a ChordState), so the body is sent once.
	ChordBucket = "mortar_chords"
	// RateBucket holds rate limits per task name: RateKey(name) the limit
	// (a RateLimit), TokensKey(name) its token bucket (a Tokens), so that
	// every worker of a cluster draws on one bucket.
	RateBucket = "mortar_rates"
	// EventPrefix+type carries events on core NATS: task events (types
	// as Celery's: task-sent, task-received, …) when enabled, and worker
	// heartbeats (worker-online, worker-heartbeat, worker-offline).
	EventPrefix = "mortar.task.ev."
	// InspectSubject is a request to every worker for what it runs and
	// holds; each answers with an Inspection.
	InspectSubject = "mortar.task.control.inspect"
)

// RevokedTTL is how long a revocation is remembered: a task revoked while
// queued must meet it before this passes. Delayed tasks are removed from
// the engine at once instead.
const RevokedTTL = 24 * time.Hour

// ChordTTL bounds how long a chord's header may take.
const ChordTTL = 7 * 24 * time.Hour

// ChordState is the value of a ChordBucket key.
type ChordState struct {
	IDs    []string  `json:"ids"`              // the header's tasks, in order
	Done   []bool    `json:"done"`             // which of them succeeded
	Body   Signature `json:"body"`             // sent with the header's results once all are done
	Fired  bool      `json:"fired,omitempty"`  // the body was sent
	Failed string    `json:"failed,omitempty"` // why the chord failed: a header task failed for good
}

// RateLimit is the value of a RateKey: Rate tasks per Per at most,
// evenly spaced (a token bucket holding one token, as Celery's).
type RateLimit struct {
	Task string        `json:"task"`
	Rate float64       `json:"rate"`
	Per  time.Duration `json:"per"`
}

// Tokens is the value of a TokensKey: the tokens left At (unix nanos).
type Tokens struct {
	Tokens float64 `json:"tokens"`
	At     int64   `json:"at"`
}

// RateKey and TokensKey are a task name's keys in RateBucket.
func RateKey(task string) string {
	return "limit." + base64.RawURLEncoding.EncodeToString([]byte(task))
}
func TokensKey(task string) string {
	return "tokens." + base64.RawURLEncoding.EncodeToString([]byte(task))
}

// ParseRate reads a rate limit as Celery writes it: "10/s", "100/m",
// "0.5/h"; a bare number is per second.
func ParseRate(s string) (rate float64, per time.Duration, err error) {
	n, unit, found := strings.Cut(s, "/")
	per = time.Second
	if found {
		switch unit {
		case "s":
		case "m":
			per = time.Minute
		case "h":
			per = time.Hour
		default:
			return 0, 0, fmt.Errorf("rate %q: want N/s, N/m or N/h", s)
		}
	}
	rate, err = strconv.ParseFloat(n, 64)
	if err != nil || rate <= 0 || rate > 1e9 {
		return 0, 0, fmt.Errorf("rate %q: want N/s, N/m or N/h with N a positive number", s)
	}
	return rate, per, nil
}

// Revocation is the value of a RevokedBucket key.
type Revocation struct {
	// Terminate also ends the task if it is running (its handler's ctx is
	// cancelled).
	Terminate bool      `json:"terminate,omitempty"`
	At        time.Time `json:"at"`
}

// Limits.
const (
	MaxQueueBytes = 64
	MaxNameBytes  = 256
	MaxIDBytes    = 128
	// MaxMessageBytes bounds a whole task message.
	MaxMessageBytes = 1 << 20
)

// Priority bands: a queue is three subjects, each with its consumer; a
// worker takes from a higher band first.
const (
	BandHigh   = "high"
	BandNormal = ""
	BandLow    = "low"
)

// Bands are the priority bands, highest first.
var Bands = []string{BandHigh, BandNormal, BandLow}

// QueueSubject is the subject a task of queue q is published on, in the
// normal band.
func QueueSubject(q string) string { return QueuePrefix + q }

// BandSubject is the subject of queue q's tasks in band.
func BandSubject(q, band string) string {
	if band == BandNormal {
		return QueuePrefix + q
	}
	return QueuePrefix + q + "." + band
}

// ParseQueueSubject returns the queue and band of a task's subject.
func ParseQueueSubject(subj string) (q, band string) {
	rest := strings.TrimPrefix(subj, QueuePrefix)
	q, band, _ = strings.Cut(rest, ".")
	return q, band
}

// DelaySubject is the subject that holds task id of queue q until its ETA.
func DelaySubject(q, id string) string { return DelayPrefix + q + "." + id }

// DeadSubject is the subject of queue q's dead letters.
func DeadSubject(q string) string { return DeadPrefix + q }

// ConsumerName is the durable consumer of queue q's normal band, shared
// by its workers.
func ConsumerName(q string) string { return "q_" + q }

// BandConsumerName is the durable consumer of queue q's band.
func BandConsumerName(q, band string) string {
	switch band {
	case BandHigh:
		return "qh_" + q
	case BandLow:
		return "ql_" + q
	}
	return ConsumerName(q)
}

// CheckQueue returns an error unless q is a queue name: 1 to 64 of
// [A-Za-z0-9_-].
func CheckQueue(q string) error {
	if !token(q, MaxQueueBytes) {
		return fmt.Errorf("queue %q: want 1 to %d of [A-Za-z0-9_-]", q, MaxQueueBytes)
	}
	return nil
}

// CheckID returns an error unless id is a task ID: 1 to 128 of
// [A-Za-z0-9_-] (a UUID is one).
func CheckID(id string) error {
	if !token(id, MaxIDBytes) {
		return fmt.Errorf("task id %q: want 1 to %d of [A-Za-z0-9_-]", id, MaxIDBytes)
	}
	return nil
}

// CheckName returns an error unless name is a task name: 1 to 256
// printable ASCII characters without spaces, such as "proj.tasks.add".
func CheckName(name string) error {
	ok := len(name) > 0 && len(name) <= MaxNameBytes
	for i := 0; ok && i < len(name); i++ {
		ok = name[i] > ' ' && name[i] < 0x7f
	}
	if !ok {
		return fmt.Errorf("task name %q: want 1 to %d printable ASCII characters without spaces", name, MaxNameBytes)
	}
	return nil
}

func token(s string, max int) bool {
	if len(s) == 0 || len(s) > max {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// formatTime and parseTime are how times travel in headers: RFC 3339 with
// nanoseconds, in UTC, as Celery's eta and expires (ISO 8601).
func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func parseTime(s string) (time.Time, error) { return time.Parse(time.RFC3339Nano, s) }

// VisibilityDefault is how long a queue's task may go unacknowledged
// before the engine hands it to another worker. A worker extends it while
// a task runs, so it bounds only how soon a dead worker's task comes back.
const VisibilityDefault = 30 * time.Second

// MaxDeliverDefault bounds the deliveries of one message: a task whose
// worker dies every time it runs stops being redelivered after this many.
const MaxDeliverDefault = 20

// MaxDeliveriesPrefix+stream+"."+consumer is the engine's advisory of a
// message delivered MaxDeliver times without an acknowledgement; the node
// moves the task to the dead letters.
const MaxDeliveriesPrefix = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES."

// QueueConsumer is the durable consumer of queue q that its workers
// share; the first worker of a queue creates it.
func QueueConsumer(q, band string) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       BandConsumerName(q, band),
		Description:   "mortar task queue " + q + " " + cmp.Or(band, "normal"),
		FilterSubject: BandSubject(q, band),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       VisibilityDefault,
		MaxDeliver:    MaxDeliverDefault,
		MaxAckPending: 20000,
	}
}
