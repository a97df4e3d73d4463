package task

import (
	"errors"
	"math/rand/v2"
	"time"
)

// ErrSkipRetry marks an error that must not be retried: the task fails at
// once. Wrap an error with SkipRetry, or with %w next to ErrSkipRetry.
var ErrSkipRetry = errors.New("task: skip retry")

// SkipRetry returns err marked so that the task is not retried: it
// reads as err, and wraps both err and ErrSkipRetry.
func SkipRetry(err error) error { return &skipError{err} }

type skipError struct{ err error }

func (e *skipError) Error() string {
	if e.err == nil {
		return ErrSkipRetry.Error()
	}
	return e.err.Error()
}

func (e *skipError) Unwrap() []error { return []error{e.err, ErrSkipRetry} }

// retryError asks for a retry after a given delay (RetryIn).
type retryError struct {
	err   error
	after time.Duration
}

func (e *retryError) Error() string {
	if e.err == nil {
		return "task: retry requested"
	}
	return e.err.Error()
}

func (e *retryError) Unwrap() error { return e.err }

// RetryIn returns an error that makes the worker retry the task after d,
// as Celery's self.retry(countdown=d): the retry counts against the task's
// MaxRetries, and err is what the task failed with if none are left.
func RetryIn(d time.Duration, err error) error { return &retryError{err: err, after: max(d, 0)} }

// RetryPolicy is how a worker retries a failed task. Its zero value is
// Celery's default: 3 retries, with exponential backoff.
type RetryPolicy struct {
	// MaxRetries is how many times a task is retried after its first run.
	// Defaults to MaxRetriesDefault; negative means never.
	MaxRetries int
	// BackoffMin and BackoffMax bound the delay before a retry: retry n
	// (from 0) waits a random time between 0 and min(BackoffMax,
	// BackoffMin·2ⁿ) ("full jitter"). Default to BackoffMinDefault and
	// BackoffMaxDefault.
	BackoffMin, BackoffMax time.Duration
	// RetryOn says which errors are retried. Defaults to every error
	// except those wrapping ErrSkipRetry (which are never retried), time
	// limits and panics.
	RetryOn func(error) bool
}

// Retry policy defaults.
const (
	MaxRetriesDefault = 3
	BackoffMinDefault = time.Second
	BackoffMaxDefault = 10 * time.Minute
)

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.MaxRetries == 0 {
		p.MaxRetries = MaxRetriesDefault
	}
	if p.BackoffMin <= 0 {
		p.BackoffMin = BackoffMinDefault
	}
	if p.BackoffMax <= 0 {
		p.BackoffMax = BackoffMaxDefault
	}
	return p
}

// backoff is the delay before retry n (from 0), full jitter.
func backoff(n int, lo, hi time.Duration) time.Duration {
	d := lo
	for i := 0; i < n && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	if d <= 0 {
		return 0
	}
	return rand.N(d + 1)
}
