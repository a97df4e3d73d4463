package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Group commit. With sync_always the engine fsyncs every stored message,
// so concurrent single publishes to one stream serialize on the disk: about
// 2,000/s here. An atomic batch is stored with one fsync for the batch but
// has a fixed cost (about 8 ms on one node, where the engine stages it in
// a file store of its own), so it wins from about 16 messages on. The
// Committer publishes what is queued individually while few writes wait,
// and as one atomic batch when many do; a batch that fails as a whole (a
// lost compare-and-set or a duplicate Nats-Msg-Id inside it) is retried
// message by message so that each write gets its own answer.
const (
	// BatchMinDefault is the queue depth from which writes go as a batch.
	BatchMinDefault = 16
	// BatchMaxDefault caps a batch (the engine's limit is 1,000).
	BatchMaxDefault = 256
	// commitTimeout bounds one flush, independent of any caller's ctx.
	// While a stream has no leader (a failover takes 4 to 9 s) nobody
	// answers a publish: the flush fails after this long with a transient
	// error, the API answers unavailable, and clients retry with the same
	// request ID, instead of every queued write waiting behind one stuck
	// flush.
	commitTimeout = 2 * time.Second
)

// Headers of the engine's atomic batch publish.
const (
	hdrBatchID     = "Nats-Batch-Id"
	hdrBatchSeq    = "Nats-Batch-Sequence"
	hdrBatchCommit = "Nats-Batch-Commit"
)

// Committer coalesces concurrent publishes to one stream, whose config
// must allow atomic publish. It has no goroutine of its own: the first
// caller to find no flush running flushes for everyone queued (leader and
// followers, as in a database's group commit).
type Committer struct {
	js       jetstream.JetStream
	nc       *nats.Conn
	min, max int

	mu       sync.Mutex
	queue    []*pendingPub
	flushing bool
	batchSeq uint64
}

type pendingPub struct {
	msg  *nats.Msg
	ack  *jetstream.PubAck
	err  error
	done chan struct{}
}

// NewCommitter returns a Committer on js. min and max of 0 mean
// BatchMinDefault and BatchMaxDefault.
func NewCommitter(js jetstream.JetStream, min, max int) *Committer {
	if min <= 0 {
		min = BatchMinDefault
	}
	if max <= 0 {
		max = BatchMaxDefault
	}
	return &Committer{js: js, nc: js.Conn(), min: min, max: max}
}

// Publish stores msg and returns its ack, like jetstream's PublishMsg;
// concurrent calls share fsyncs. The write goes ahead even if ctx ends
// while it is queued behind a flush; ctx bounds only the wait.
func (c *Committer) Publish(ctx context.Context, msg *nats.Msg) (*jetstream.PubAck, error) {
	p := &pendingPub{msg: msg, done: make(chan struct{})}
	c.mu.Lock()
	c.queue = append(c.queue, p)
	if !c.flushing {
		c.flushing = true
		for len(c.queue) > 0 {
			batch := c.take()
			c.mu.Unlock()
			c.flush(batch)
			c.mu.Lock()
		}
		c.flushing = false
	}
	c.mu.Unlock()
	select {
	case <-p.done:
		return p.ack, p.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// take removes up to max queued publishes, at most one per subject so that
// per-subject compare-and-set headers stay meaningful within a batch.
// c.mu must be held.
func (c *Committer) take() []*pendingPub {
	seen := make(map[string]bool, min(len(c.queue), c.max))
	var batch, rest []*pendingPub
	for _, p := range c.queue {
		if len(batch) < c.max && !seen[p.msg.Subject] {
			seen[p.msg.Subject] = true
			batch = append(batch, p)
		} else {
			rest = append(rest, p)
		}
	}
	c.queue = rest
	return batch
}

func (c *Committer) flush(batch []*pendingPub) {
	ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
	defer cancel()
	if len(batch) >= c.min && c.publishBatch(ctx, batch) {
		return
	}
	c.publishEach(ctx, batch)
}

// publishEach publishes asynchronously, so the messages pipeline, and
// waits for every ack.
func (c *Committer) publishEach(ctx context.Context, batch []*pendingPub) {
	futures := make([]jetstream.PubAckFuture, len(batch))
	for i, p := range batch {
		f, err := c.js.PublishMsgAsync(p.msg)
		if err != nil {
			p.err = err
			continue
		}
		futures[i] = f
	}
	for i, p := range batch {
		if f := futures[i]; f != nil {
			select {
			case p.ack = <-f.Ok():
			case p.err = <-f.Err():
			case <-ctx.Done():
				p.err = fmt.Errorf("store: publish: %w", ctx.Err())
			}
		}
		close(p.done)
	}
}

// batchAck is the engine's reply to a batch commit.
type batchAck struct {
	Stream   string              `json:"stream"`
	Sequence uint64              `json:"seq"`
	Count    int                 `json:"count"`
	Error    *jetstream.APIError `json:"error,omitempty"`
}

// publishBatch sends batch as one atomic batch. It reports false, having
// answered nobody, when the batch failed as a whole and each message
// should be retried alone.
func (c *Committer) publishBatch(ctx context.Context, batch []*pendingPub) bool {
	c.mu.Lock()
	c.batchSeq++
	id := fmt.Sprintf("%s-%d", nats.NewInbox()[7:], c.batchSeq)
	c.mu.Unlock()
	var reply *nats.Msg
	var err error
	committed := false
	for i, p := range batch {
		m := &nats.Msg{Subject: p.msg.Subject, Data: p.msg.Data, Header: nats.Header{}}
		for k, v := range p.msg.Header {
			m.Header[k] = v
		}
		m.Header.Set(hdrBatchID, id)
		m.Header.Set(hdrBatchSeq, strconv.Itoa(i+1))
		if i == len(batch)-1 {
			m.Header.Set(hdrBatchCommit, "1")
			committed = true
			reply, err = c.nc.RequestMsgWithContext(ctx, m)
		} else {
			err = c.nc.PublishMsg(m)
		}
		if err != nil {
			break
		}
	}
	if err != nil && !committed {
		return false // never committed: the engine abandons the batch
	}
	if err != nil {
		// The commit went out but its answer did not come back: the batch
		// may be stored. Retrying could store it twice, so fail each write
		// with an unknown outcome; callers retry with their own checks.
		for _, p := range batch {
			p.err = fmt.Errorf("store: batch commit: outcome unknown: %w", err)
			close(p.done)
		}
		return true
	}
	var ack batchAck
	if jerr := json.Unmarshal(reply.Data, &ack); jerr != nil || ack.Error != nil || ack.Count != len(batch) {
		return false
	}
	first := ack.Sequence - uint64(len(batch)) + 1
	for i, p := range batch {
		p.ack = &jetstream.PubAck{Stream: ack.Stream, Sequence: first + uint64(i)}
		close(p.done)
	}
	return true
}
