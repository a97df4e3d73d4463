package task

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/internal/taskwire"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// ConcurrencyDefault is how many tasks a worker runs at once by default.
const ConcurrencyDefault = 10

// WorkerConfig configures a Worker. Its zero value works.
type WorkerConfig struct {
	// Queues are the queues the worker takes tasks from, in priority
	// order: while the first has a task, the worker takes no task from
	// the second (strict priority), unless Weights is set. Defaults to
	// [QueueDefault].
	Queues []string
	// Weights, when set, has one positive weight per queue: a free
	// worker takes its next task from a queue that has one, chosen at
	// random with these weights (weighted priority).
	Weights []int
	// Concurrency is how many tasks run at once, across the queues
	// without a QueueConcurrency. Defaults to ConcurrencyDefault.
	Concurrency int
	// QueueConcurrency gives queues runners of their own: QueueConcurrency[q]
	// tasks of queue q run at once, whatever the other queues hold, and
	// q is left out of the shared Concurrency (and of Weights' choice).
	// Defaults to none.
	QueueConcurrency map[string]int
	// Prefetch is how many tasks per queue the worker takes ahead of
	// running them (Celery's prefetch multiplier times concurrency): the
	// engine hands tasks over in batches of about half of it, so a larger
	// prefetch costs less per task. Tasks taken ahead are kept invisible
	// to other workers while they wait, but they wait: for tasks that run
	// long, set it to Concurrency, so that an idle worker is not kept from
	// tasks another holds. Defaults to 4 × Concurrency.
	Prefetch int
	// Visibility is how long a task of a queue may go unacknowledged
	// before the engine hands it to another worker; the worker extends it
	// while the task runs, so it bounds how soon a dead worker's task runs
	// again. It is a setting of the queue, taken from the worker that
	// creates the queue's consumer (the first to start). Defaults to
	// taskwire's 30 s.
	Visibility time.Duration
	// MaxDeliveries is how many times a task of a queue is delivered
	// without being acknowledged (its worker died running it, or retried
	// it within a second) before it goes to the dead letters (reason
	// max_deliveries). A setting of the queue, like Visibility. Defaults
	// to taskwire's 20.
	MaxDeliveries int
	// Name identifies the worker in results and logs. Defaults to
	// host@pid.
	Name string
	// Retry is the retry policy of every task, unless the sender
	// overrides it (SendOpts). The zero value is Celery's default.
	Retry RetryPolicy
	// AckEarly acknowledges a task as it starts instead of when it ends
	// (Celery's acks_late=False): a task whose worker dies mid-run is
	// then lost rather than run again. Defaults to false: at least once.
	AckEarly bool
	// TrackStarted records STARTED when a task starts, as Celery's
	// task_track_started; otherwise a task is PENDING until it ends.
	// Defaults to false.
	TrackStarted bool
	// Events sends task events (task-received, task-started, …) for
	// monitors, as Celery's -E. Worker heartbeats are sent regardless.
	// Defaults to false.
	Events bool
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Metrics is where the worker registers its metrics
	// (mortar_task_runs_total, mortar_task_run_seconds,
	// mortar_task_active); nil means nowhere.
	Metrics prometheus.Registerer
}

// Worker runs tasks from queues. Register handlers with Handle and
// HandleRaw, then Start it; Stop finishes what runs.
type Worker struct {
	conn    *mortar.Conn
	js      jetstream.JetStream
	cfg     WorkerConfig
	retry   RetryPolicy
	log     *slog.Logger
	results resultWriter

	mu       sync.Mutex
	handlers map[string]rawHandler
	state    int                     // 0 new, 1 started, 2 stopping or stopped
	stop     context.CancelCauseFunc // ends fetching
	hard     context.CancelCauseFunc // ends running handlers
	done     chan struct{}           // closed when every goroutine is gone
	consumes []jetstream.ConsumeContext

	visibility map[string]time.Duration // per queue, from its consumer; set by Start
	revoked    *revocations
	rates      *rateLimits
	processed  atomic.Int64
	m          workerMetrics
	acks       chan pendingAck // to the acker; set by Start
	opCtx      context.Context // the tasks' writes: outlives a hard stop; set by Start
}

type workerMetrics struct {
	runs     *prometheus.CounterVec
	duration *prometheus.HistogramVec
	active   prometheus.GaugeFunc
	byTask   map[string]*taskMetrics // by handled name, and "unknown"; fixed by Start
}

// taskMetrics are one task's series, looked up once.
type taskMetrics struct {
	runs     map[State]prometheus.Counter
	duration prometheus.Observer
}

func (m *workerMetrics) forTask(name string) *taskMetrics {
	if tm := m.byTask[name]; tm != nil {
		return tm
	}
	return m.byTask["unknown"]
}

// bind looks up the series of every handled task.
func (m *workerMetrics) bind(names []string) {
	m.byTask = map[string]*taskMetrics{}
	for _, n := range append(names, "unknown") {
		tm := &taskMetrics{runs: map[State]prometheus.Counter{}, duration: m.duration.WithLabelValues(n)}
		for _, st := range []State{Success, Failure, Retry, Revoked} {
			tm.runs[st] = m.runs.WithLabelValues(n, string(st))
		}
		m.byTask[n] = tm
	}
}

func (w *Worker) newMetrics(reg prometheus.Registerer) error {
	w.m = workerMetrics{
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mortar_task_runs_total", Help: "Task runs ended by this worker, by task and state (SUCCESS, FAILURE, RETRY, REVOKED).",
		}, []string{"task", "state"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "mortar_task_run_seconds", Help: "How long handlers ran, by task.", Buckets: prometheus.ExponentialBuckets(0.0005, 4, 12),
		}, []string{"task"}),
		active: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "mortar_task_active", Help: "Tasks running in this worker.",
		}, func() float64 { return float64(len(w.revoked.active())) }),
	}
	if reg == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{w.m.runs, w.m.duration, w.m.active} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

type rawHandler func(ctx context.Context, req *Request) (any, error)

// NewWorker returns a Worker on conn.
func NewWorker(conn *mortar.Conn, cfg *WorkerConfig) (*Worker, error) {
	var c WorkerConfig
	if cfg != nil {
		c = *cfg
	}
	if len(c.Queues) == 0 {
		c.Queues = []string{QueueDefault}
	}
	c.Queues = append([]string(nil), c.Queues...)
	seen := map[string]bool{}
	for _, q := range c.Queues {
		if err := taskwire.CheckQueue(q); err != nil {
			return nil, fmt.Errorf("task: new worker: %w", err)
		}
		if seen[q] {
			return nil, fmt.Errorf("task: new worker: queue %q listed twice", q)
		}
		seen[q] = true
	}
	if c.Weights != nil {
		if len(c.Weights) != len(c.Queues) {
			return nil, fmt.Errorf("task: new worker: %d weights for %d queues", len(c.Weights), len(c.Queues))
		}
		for _, w := range c.Weights {
			if w <= 0 {
				return nil, fmt.Errorf("task: new worker: weight %d: want a positive weight", w)
			}
		}
	}
	if c.Visibility < 0 || c.Visibility > 0 && c.Visibility < time.Second {
		return nil, fmt.Errorf("task: new worker: visibility %v: want at least 1s", c.Visibility)
	}
	if c.MaxDeliveries < 0 {
		return nil, fmt.Errorf("task: new worker: max deliveries %d: want a positive number", c.MaxDeliveries)
	}
	for q, n := range c.QueueConcurrency {
		if !slices.Contains(c.Queues, q) {
			return nil, fmt.Errorf("task: new worker: queue concurrency for %q: not one of the worker's queues", q)
		}
		if n <= 0 {
			return nil, fmt.Errorf("task: new worker: queue %s: concurrency %d: want a positive number", q, n)
		}
	}
	c.QueueConcurrency = maps.Clone(c.QueueConcurrency)
	if c.Concurrency < 0 {
		return nil, fmt.Errorf("task: new worker: concurrency %d: want a positive number", c.Concurrency)
	}
	c.Concurrency = cmp.Or(c.Concurrency, ConcurrencyDefault)
	if c.Prefetch < 0 {
		return nil, fmt.Errorf("task: new worker: prefetch %d: want a positive number", c.Prefetch)
	}
	c.Prefetch = cmp.Or(c.Prefetch, 4*c.Concurrency)
	if c.Name == "" {
		host, _ := os.Hostname()
		c.Name = host + "@" + strconv.Itoa(os.Getpid())
	}
	log := cmp.Or(c.Logger, slog.Default()).With("component", "task.worker", "worker", c.Name)
	w := &Worker{
		conn: conn, js: conn.JetStream(), cfg: c, retry: c.Retry.withDefaults(), log: log,
		handlers: map[string]rawHandler{}, done: make(chan struct{}), visibility: map[string]time.Duration{},
		revoked: newRevocations(),
	}
	w.results = resultWriter{js: w.js, worker: c.Name}
	if err := w.newMetrics(c.Metrics); err != nil {
		return nil, fmt.Errorf("task: new worker: metrics: %w", err)
	}
	w.handlers[mapTask] = w.mapHandler(false)
	w.handlers[starmapTask] = w.mapHandler(true)
	return w, nil
}

// Request is what a handler knows of the task it runs; a typed handler
// finds it with RequestFrom.
type Request struct {
	ID, Task, Queue         string
	RootID, ParentID, Group string
	// Retries counts the runs of this task before this one.
	Retries int
	Args    json.RawMessage // a JSON array
	Kwargs  json.RawMessage // a JSON object
	Headers map[string]string

	w *Worker
	m *taskwire.Message
}

// Progress records v, encoded as JSON, as the progress of the task that
// ctx's handler runs: its status becomes STARTED with Progress v, for
// Status and Monitor readers. It fails outside a handler and for a task
// that ignores its result.
func Progress(ctx context.Context, v any) error {
	r := RequestFrom(ctx)
	if r == nil || r.w == nil {
		return errors.New("task: progress: not inside a task handler")
	}
	if r.m.IgnoreResult {
		return errors.New("task: progress: the task ignores its result")
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("task: progress: %w", err)
	}
	st := &Status{ID: r.ID, Task: r.Task, State: Started, Retries: r.Retries, Progress: b}
	if err := r.w.results.put(ctx, st); err != nil {
		return fmt.Errorf("task: progress: %w", err)
	}
	return nil
}

type requestKey struct{}

// RequestFrom returns the request a handler's ctx belongs to, or nil.
func RequestFrom(ctx context.Context) *Request {
	r, _ := ctx.Value(requestKey{}).(*Request)
	return r
}

// HandleRaw registers fn as the handler of the task name. What fn returns
// is stored as the result, encoded as JSON. It panics if name is invalid
// or already handled, or if the worker has started: programming errors.
func (w *Worker) HandleRaw(name string, fn func(ctx context.Context, req *Request) (any, error)) {
	if err := taskwire.CheckName(name); err != nil {
		panic("task: handle: " + err.Error())
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.state != 0 {
		panic("task: handle " + name + ": the worker has started")
	}
	if _, dup := w.handlers[name]; dup {
		panic("task: handle " + name + ": handled twice")
	}
	w.handlers[name] = fn
}

// Handle registers fn as the handler of t on w; see HandleRaw.
func Handle[A, R any](w *Worker, t Task[A, R], fn func(ctx context.Context, args A) (R, error)) {
	w.HandleRaw(t.Name, func(ctx context.Context, req *Request) (any, error) {
		var a A
		if err := decodeArgs(req.Args, req.Kwargs, &a); err != nil {
			return nil, SkipRetry(fmt.Errorf("arguments: %w", err))
		}
		return fn(ctx, a)
	})
}

// Start binds the worker to its queues (creating a queue's consumer if it
// is the queue's first worker) and starts taking tasks. Cancelling ctx
// stops the worker hard: running handlers see their ctx end and their
// tasks go back to their queues.
func (w *Worker) Start(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.state != 0 {
		return errors.New("task: worker: started twice")
	}
	// The worker's contexts: fetchCtx ends when it stops taking tasks,
	// hardCtx when running handlers must stop.
	fetchCtx, stop := context.WithCancelCause(ctx)
	hardCtx, hard := context.WithCancelCause(context.WithoutCancel(ctx))
	// One buffer per queue and band, queue by queue, highest band first:
	// the order of strict priority. Each buffer feeds one set of runners.
	var bufs []*prefetch
	var bufQueues []string // the queue of each buffer
	fail := func(err error) error {
		stop(err)
		hard(err)
		w.stopConsumes()
		for _, b := range bufs {
			b.returnAll()
		}
		return err
	}
	groups := w.runnerSets()
	for _, rs := range groups {
		for _, qi := range rs.queues {
			q := w.cfg.Queues[qi]
			for _, band := range taskwire.Bands {
				cons, err := w.bind(ctx, q, band)
				if err != nil {
					return fail(fmt.Errorf("task: worker: queue %s: %w", q, err))
				}
				w.visibility[q] = cons.CachedInfo().Config.AckWait
				b := newPrefetch(w.cfg.Prefetch, w.visibility[q]/3)
				cc, err := cons.Consume(func(msg jetstream.Msg) { rs.receive(fetchCtx, b, msg) },
					jetstream.PullMaxMessages(w.cfg.Prefetch),
					jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
						// Missed heartbeats (a busy or cut connection) and the
						// like: consuming goes on once the engine answers.
						w.log.Warn("task fetch", "queue", q, "err", err)
					}))
				if err != nil {
					return fail(fmt.Errorf("task: worker: queue %s: %w", q, err))
				}
				w.consumes = append(w.consumes, cc)
				rs.bufs = append(rs.bufs, b)
				bufs = append(bufs, b)
				bufQueues = append(bufQueues, q)
			}
		}
	}
	var wgRevoked sync.WaitGroup
	stopRevoked, err := mirror(ctx, w.js, taskwire.RevokedBucket, ">", &wgRevoked, w.revoked.add)
	if err != nil {
		return fail(fmt.Errorf("task: worker: revocations: %w", err))
	}
	rateKV, err := w.js.KeyValue(ctx, taskwire.RateBucket)
	var stopRates func()
	if err == nil {
		w.rates = &rateLimits{kv: rateKV, limits: map[string]taskwire.RateLimit{}}
		stopRates, err = mirror(ctx, w.js, taskwire.RateBucket, "limit.*", &wgRevoked, w.rates.apply)
	}
	if err != nil {
		stopRevoked()
		wgRevoked.Wait()
		return fail(fmt.Errorf("task: worker: rate limits: %w", err))
	}
	w.state = 1
	w.m.bind(slices.Collect(maps.Keys(w.handlers)))
	w.opCtx = context.WithoutCancel(ctx)
	w.hard = hard
	w.stop = stop
	context.AfterFunc(ctx, func() { hard(context.Cause(ctx)) })
	// Once fetching ends, each consumer hands what it prefetched to
	// receive, which returns it to the queue, and closes.
	consumes := w.consumes
	context.AfterFunc(fetchCtx, func() {
		for _, cc := range consumes {
			cc.Drain()
		}
	})
	var wg sync.WaitGroup
	w.acks = make(chan pendingAck, 4*w.cfg.Concurrency)
	var wgAck sync.WaitGroup
	wgAck.Go(func() { w.acker(w.acks) })
	for _, rs := range groups {
		for range rs.n {
			wg.Go(func() {
				for msg := rs.next(fetchCtx); msg != nil; msg = rs.next(fetchCtx) {
					w.run(hardCtx, msg)
				}
			})
		}
	}
	nc := w.conn.NATS()
	inspectSub, err := nc.Subscribe(taskwire.InspectSubject, func(m *nats.Msg) {
		b, _ := json.Marshal(w.inspect(bufs, bufQueues))
		m.Respond(b)
	})
	if err != nil {
		w.log.Warn("task worker cannot answer inspections", "err", err)
	}
	wg.Go(func() { w.heartbeats(fetchCtx) })
	keeperStop := make(chan struct{})
	wgAck.Go(func() { w.keepVisible(bufs, keeperStop) })
	go func() {
		wg.Wait()
		for _, cc := range consumes {
			<-cc.Closed()
		}
		for _, b := range bufs {
			b.returnAll()
		}
		close(keeperStop)
		close(w.acks)
		wgAck.Wait()
		if inspectSub != nil {
			inspectSub.Unsubscribe()
		}
		emit(nc, w.workerEvent(EventWorkerOffline))
		stopRevoked()
		stopRates()
		wgRevoked.Wait()
		hard(nil)
		close(w.done)
	}()
	return nil
}

func (w *Worker) stopConsumes() {
	for _, cc := range w.consumes {
		cc.Stop()
	}
	w.consumes = nil
}

// heartbeats sends worker-online, then worker-heartbeat every
// HeartbeatInterval until ctx ends.
func (w *Worker) heartbeats(ctx context.Context) {
	nc := w.conn.NATS()
	emit(nc, w.workerEvent(EventWorkerOnline))
	t := time.NewTicker(HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			emit(nc, w.workerEvent(EventWorkerHeartbeat))
		case <-ctx.Done():
			return
		}
	}
}

func (w *Worker) workerEvent(typ string) *Event {
	return &Event{Type: typ, Worker: w.cfg.Name, Queues: w.cfg.Queues, Concurrency: w.cfg.Concurrency,
		Active: len(w.revoked.active()), Processed: w.processed.Load(), Freq: HeartbeatInterval.Seconds()}
}

// event sends a task event, if the worker sends them.
func (w *Worker) event(typ string, m *taskwire.Message, queue string, e Event) {
	if !w.cfg.Events {
		return
	}
	ev := e // only this copy escapes, and only when events are on
	ev.Type, ev.Worker, ev.Queue = typ, w.cfg.Name, queue
	if m != nil {
		ev.ID, ev.Task = m.ID, m.Task
	}
	emit(w.conn.NATS(), &ev)
}

// runnerSets splits the worker's queues among runner sets: one per queue
// with a QueueConcurrency, in the order of Queues, then the shared pool
// for the rest, if any.
func (w *Worker) runnerSets() []*runners {
	var sets []*runners
	shared := &runners{n: w.cfg.Concurrency, avail: make(chan struct{}, 1)}
	for i, q := range w.cfg.Queues {
		if n := w.cfg.QueueConcurrency[q]; n > 0 {
			sets = append(sets, &runners{n: n, queues: []int{i}, avail: make(chan struct{}, 1)})
			continue
		}
		shared.queues = append(shared.queues, i)
		if w.cfg.Weights != nil {
			shared.weights = append(shared.weights, w.cfg.Weights[i])
		}
	}
	if len(shared.queues) > 0 {
		sets = append(sets, shared)
	}
	return sets
}

// bind returns the consumer of queue q's band, creating it with the
// worker's queue settings if it is the first.
func (w *Worker) bind(ctx context.Context, q, band string) (jetstream.Consumer, error) {
	cc := taskwire.QueueConsumer(q, band)
	if w.cfg.Visibility > 0 {
		cc.AckWait = w.cfg.Visibility
	}
	if w.cfg.MaxDeliveries > 0 {
		cc.MaxDeliver = w.cfg.MaxDeliveries
	}
	cons, err := w.js.CreateConsumer(ctx, taskwire.Stream, cc)
	if errors.Is(err, jetstream.ErrConsumerExists) {
		cons, err = w.js.Consumer(ctx, taskwire.Stream, cc.Durable)
	}
	return cons, err
}

// Stop stops taking tasks, waits for the running ones to finish and
// returns when the worker has stopped. If ctx ends first, the running
// handlers' ctx is cancelled, their tasks go back to their queues, and
// Stop returns ctx's error once they return. Stop is idempotent and safe
// before Start.
func (w *Worker) Stop(ctx context.Context) error {
	w.mu.Lock()
	switch w.state {
	case 0:
		w.state = 2
		close(w.done)
		w.mu.Unlock()
		return nil
	case 1:
		w.state = 2
		w.stop(errStopped)
	}
	w.mu.Unlock()
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		w.hard(ctx.Err())
		<-w.done
		return fmt.Errorf("task: worker: stop: %w", ctx.Err())
	}
}

// Stopped is closed once the worker has stopped.
func (w *Worker) Stopped() <-chan struct{} { return w.done }

var errStopped = errors.New("task: worker stopped")
