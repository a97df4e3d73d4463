package task

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/internal/taskwire"
	"github.com/nats-io/nats.go/jetstream"
)

// RateLimit is a task's rate limit, enforced across every worker.
type RateLimit struct {
	Task string `json:"task"`
	Rate string `json:"rate"` // "10/s", "100/m", "0.5/h"
}

// SetRateLimit limits the task name to rate ("10/s", "100/m", "0.5/h";
// Celery's notation) across every worker of the cluster, runs evenly
// spaced; an empty rate removes the limit. Workers apply a change at
// once.
func (c *Client) SetRateLimit(ctx context.Context, name, rate string) error {
	if err := taskwire.CheckName(name); err != nil {
		return fmt.Errorf("task: rate limit: %w", mortar.Errorf(mortar.CodeInvalidArgument, "%v", err))
	}
	kv, err := c.js.KeyValue(ctx, taskwire.RateBucket)
	if err != nil {
		return fmt.Errorf("task: rate limit %s: %w", name, err)
	}
	if rate == "" {
		if err := kv.Delete(ctx, taskwire.RateKey(name)); err != nil {
			return fmt.Errorf("task: rate limit %s: %w", name, err)
		}
		return nil
	}
	r, per, err := taskwire.ParseRate(rate)
	if err != nil {
		return fmt.Errorf("task: rate limit %s: %w", name, mortar.Errorf(mortar.CodeInvalidArgument, "%v", err))
	}
	b, _ := json.Marshal(taskwire.RateLimit{Task: name, Rate: r, Per: per})
	if _, err := kv.Put(ctx, taskwire.RateKey(name), b); err != nil {
		return fmt.Errorf("task: rate limit %s: %w", name, err)
	}
	return nil
}

// RateLimits lists the rate limits, by task name.
func (c *Client) RateLimits(ctx context.Context) ([]RateLimit, error) {
	kv, err := c.js.KeyValue(ctx, taskwire.RateBucket)
	if err != nil {
		return nil, fmt.Errorf("task: rate limits: %w", err)
	}
	out := []RateLimit{}
	keys, err := kv.ListKeysFiltered(ctx, "limit.*")
	if err != nil {
		return nil, fmt.Errorf("task: rate limits: %w", err)
	}
	for k := range keys.Keys() {
		e, err := kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("task: rate limits: %w", err)
		}
		var l taskwire.RateLimit
		if json.Unmarshal(e.Value(), &l) == nil {
			out = append(out, RateLimit{Task: l.Task, Rate: formatRate(l)})
		}
	}
	slices.SortFunc(out, func(a, b RateLimit) int { return strings.Compare(a.Task, b.Task) })
	return out, nil
}

func formatRate(l taskwire.RateLimit) string {
	unit := map[time.Duration]string{time.Second: "s", time.Minute: "m", time.Hour: "h"}[l.Per]
	return fmt.Sprintf("%g/%s", l.Rate, unit)
}

// rateLimits mirrors the rate limits in a worker and draws tokens.
type rateLimits struct {
	kv jetstream.KeyValue

	mu     sync.Mutex
	limits map[string]taskwire.RateLimit // by task name
}

func (r *rateLimits) apply(e jetstream.KeyValueEntry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e.Operation() != jetstream.KeyValuePut {
		for name := range r.limits {
			if taskwire.RateKey(name) == e.Key() {
				delete(r.limits, name)
			}
		}
		return
	}
	var l taskwire.RateLimit
	if json.Unmarshal(e.Value(), &l) == nil && l.Rate > 0 && l.Per > 0 {
		r.limits[l.Task] = l
	}
}

func (r *rateLimits) limit(name string) (taskwire.RateLimit, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	l, ok := r.limits[name]
	return l, ok
}

// take draws a token for a run of l.Task from the cluster's bucket (one
// token at most, refilled at the limit's rate) and returns 0, or how
// long until a token will be there.
func (r *rateLimits) take(ctx context.Context, l taskwire.RateLimit) (time.Duration, error) {
	key := taskwire.TokensKey(l.Task)
	perToken := time.Duration(float64(l.Per) / l.Rate)
	for {
		now := time.Now()
		var t taskwire.Tokens
		var rev uint64
		e, err := r.kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			t = taskwire.Tokens{Tokens: 1, At: now.UnixNano()}
		case err != nil:
			return 0, err
		default:
			rev = e.Revision()
			if json.Unmarshal(e.Value(), &t) != nil {
				t = taskwire.Tokens{Tokens: 1, At: now.UnixNano()}
			}
		}
		elapsed := now.Sub(time.Unix(0, t.At))
		tokens := min(1, t.Tokens+float64(elapsed)/float64(perToken))
		if tokens < 1 {
			return time.Duration((1 - tokens) * float64(perToken)), nil
		}
		b, _ := json.Marshal(taskwire.Tokens{Tokens: tokens - 1, At: now.UnixNano()})
		if rev == 0 {
			_, err = r.kv.Create(ctx, key, b)
		} else {
			_, err = r.kv.Update(ctx, key, b, rev)
		}
		if err == nil {
			return 0, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !isWrongLast(err) {
			return 0, err
		}
		// Another worker drew first: look again.
	}
}
