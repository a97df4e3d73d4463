// Package task is mortar's task queue, Celery's model in Go: producers
// send named tasks, workers run them, and the broker between them is the
// mortar node's engine (JetStream), so queued, delayed and retrying tasks
// survive restarts and, in a cluster, the loss of a minority of nodes.
//
// # Tasks
//
// A [Task] is a typed handle on a task name, shared by the code that
// sends it and the worker that runs it:
//
//	var Add = task.Define[AddArgs, int]("billing.add")
//
// A [Client] sends tasks ([Task.Delay], [Task.Apply] with [SendOpts];
// [Client.Send] for raw JSON arguments) and reads results ([Result.Get]
// waits without polling).
//
// # Workers
//
// A [Worker] takes tasks from one or more queues (strict or weighted
// priority), runs up to Concurrency at once, and acknowledges each task
// when it ends (at least once; AckEarly for at most once). A task whose
// worker dies runs again once its queue's visibility timeout lapses; a
// running task's worker keeps extending it. Handlers register with
// [Handle] (typed) or [Worker.HandleRaw].
//
// # Failures
//
// A handler's error is retried under the worker's [RetryPolicy]
// (exponential backoff with full jitter), unless it wraps [ErrSkipRetry];
// [RetryIn] asks for a retry after a given delay. A panic, a hard time
// limit, an unknown task name or an undecodable message fails the task at
// once. A task that fails for good is recorded as FAILURE and moved to
// its queue's dead letters with the reason.
//
// # Messages
//
// Task messages are laid out as Celery's message protocol 2 (headers,
// and the body [args, kwargs, embed]), so other languages can send tasks
// with a plain NATS publish; docs/tasks.md describes the format.
package task
