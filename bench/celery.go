package main

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Celery runs in two Python processes the benchmark starts: a worker
// and a producer, which the driver commands over its stdin and stdout.
// The tasks report to Redis (see celery/benchtasks.py), where the driver
// waits for them with BLPOP.

//go:embed celery/benchtasks.py
var celeryTasks []byte

// celeryPython is Debian's python3, which python3-celery and
// python3-redis install into (a python3 earlier on PATH may not have
// them).
const celeryPython = "/usr/bin/python3"

// celeryWorkerArgs are the worker's arguments after "python3".
var celeryWorkerArgs = []string{"-m", "celery", "-A", "benchtasks", "worker", "--concurrency=2", "--pool=prefork",
	"--without-gossip", "--without-mingle", "--without-heartbeat", "-Q", "bench", "--loglevel=WARNING"}

func init() {
	registerTask(taskSystem{
		name: "celery",
		about: "Celery 5.2 (Debian python3-celery, python3-redis) with " + redisAbout + " as broker and result backend. " +
			"Worker: `python3 " + strings.Join(celeryWorkerArgs, " ") + "`, otherwise defaults (prefetch multiplier 4, acks early, before the task runs). " +
			"Producer: a Python process calling send_task in a loop, on an app without a result backend (so it does not subscribe to every result, as .delay() with a Redis backend would). " +
			"Every task, in task_postrun, runs a Lua script on Redis (INCR a count; at the target, push the time), one round trip per task that the Go systems do not make; the driver waits with BLPOP. " +
			"Results on: a task with ignore_result=False, whose \"ok\" the Redis result backend stores (expiring in a day). " +
			"Pickup: the producer's time.time_ns() just before send_task against the task's at its first statement (same machine clock).",
		results: true,
		check:   checkCelery,
		start:   startCelery,
	})
}

// checkCelery reports a missing redis-server, python3 or Celery.
func checkCelery() error {
	if err := checkRedis(); err != nil {
		return err
	}
	if out, err := exec.Command(celeryPython, "-c", "import celery, redis").CombinedOutput(); err != nil {
		return fmt.Errorf("%s cannot import celery and redis (apt-get install python3-celery python3-redis): %v %s", celeryPython, err, bytes.TrimSpace(out))
	}
	return nil
}

// Redis keys benchtasks.py uses.
const (
	celeryDone     = "bench:done"
	celeryTarget   = "bench:target"
	celeryFinished = "bench:finished"
	celeryStarted  = "bench:started"
	celeryReady    = "bench:ready"
)

// celery is a running worker and producer.
type celery struct {
	rp       *redisProc
	worker   *extProc
	producer *extProc
	in       io.WriteCloser // the producer's stdin
	lines    chan string    // the producer's stdout; closed at EOF
}

func startCelery(ctx context.Context, dir string, _ *taskOptions, _ io.Writer) (srv *taskServer, err error) {
	if err := checkCelery(); err != nil {
		return nil, err
	}
	rp, err := startRedis(ctx, dir)
	if err != nil {
		return nil, err
	}
	c := &celery{rp: rp}
	defer func() {
		if err != nil {
			err = errors.Join(err, c.stop())
		}
	}()
	cdir := filepath.Join(dir, "celery")
	if err := os.MkdirAll(cdir, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(cdir, "benchtasks.py"), celeryTasks, 0o644); err != nil {
		return nil, err
	}
	env := append(os.Environ(), "BENCH_REDIS=redis://"+rp.addr+"/0", "PYTHONDONTWRITEBYTECODE=1")
	cmd := exec.Command(celeryPython, celeryWorkerArgs...)
	cmd.Dir, cmd.Env = cdir, env
	if c.worker, err = startExt("celery worker", filepath.Join(cdir, "worker.log"), cmd); err != nil {
		return nil, err
	}
	if _, err := c.blpop(ctx, celeryReady, 60*time.Second); err != nil {
		return nil, fmt.Errorf("worker not ready: %w", err)
	}

	// The producer's stdin and stdout are pipes of our own, not
	// exec's, so that reading does not race with exec's Wait.
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, err
	}
	cmd = exec.Command(celeryPython, "benchtasks.py")
	cmd.Dir, cmd.Env, cmd.Stdin, cmd.Stdout = cdir, env, inR, outW
	c.producer, err = startExt("celery producer", filepath.Join(cdir, "producer.log"), cmd)
	inR.Close()
	outW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		return nil, err
	}
	c.in, c.lines = inW, make(chan string, 16)
	go func() {
		defer close(c.lines)
		defer outR.Close()
		sc := bufio.NewScanner(outR)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
	}()
	if line, err := c.readLine(30 * time.Second); err != nil || line != "ready" {
		return nil, fmt.Errorf("producer: got %q, %v; want \"ready\"", line, err)
	}
	return &taskServer{
		serverPIDs: []int{rp.pid()},
		otherPIDs:  []int{c.worker.pid(), c.producer.pid()},
		throughput: c.throughput,
		pickup:     c.pickup,
		stop:       c.stop,
	}, nil
}

// arm makes the task that brings the done count up by n push its time.
func (c *celery) arm(ctx context.Context, n int) error {
	base, err := c.rp.client.Get(ctx, celeryDone).Int64()
	if err != nil && !errors.Is(err, redis.Nil) {
		return err
	}
	return c.rp.client.Set(ctx, celeryTarget, base+int64(n), 0).Err()
}

func (c *celery) throughput(ctx context.Context, n int, results bool) (start, end time.Time, err error) {
	if err := c.arm(ctx, n); err != nil {
		return start, end, err
	}
	task := "bench.noop"
	if results {
		task = "bench.noop_result"
	}
	start = time.Now()
	if _, err := fmt.Fprintf(c.in, "run %d %s\n", n, task); err != nil {
		return start, end, fmt.Errorf("producer: %w", err)
	}
	if end, err = c.blpop(ctx, celeryFinished, stallTimeout); err != nil {
		return start, end, err
	}
	if line, err := c.readLine(stallTimeout); err != nil || line != "sent" {
		return start, end, fmt.Errorf("producer: got %q, %v; want \"sent\"", line, err)
	}
	return start, end, nil
}

func (c *celery) pickup(ctx context.Context, i int) (time.Duration, error) {
	if err := c.arm(ctx, 1); err != nil {
		return 0, err
	}
	if _, err := fmt.Fprintf(c.in, "pickup %d\n", i); err != nil {
		return 0, fmt.Errorf("producer: %w", err)
	}
	line, err := c.readLine(stallTimeout)
	if err != nil {
		return 0, fmt.Errorf("producer: %w", err)
	}
	ns, err := strconv.ParseInt(line, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("producer: got %q, want a time", line)
	}
	started, err := c.blpop(ctx, celeryStarted, stallTimeout)
	if err != nil {
		return 0, err
	}
	if _, err := c.blpop(ctx, celeryFinished, stallTimeout); err != nil {
		return 0, err
	}
	return started.Sub(time.Unix(0, ns)), nil
}

// blpop waits for a time_ns pushed onto key. While it waits, progress in
// the done count pushes the deadline back: it fails once the count has
// stood still for timeout, or a Celery process has exited.
func (c *celery) blpop(ctx context.Context, key string, timeout time.Duration) (time.Time, error) {
	done := func() int64 { n, _ := c.rp.client.Get(ctx, celeryDone).Int64(); return n }
	last, lastChange := done(), time.Now()
	for {
		v, err := c.rp.client.BLPop(ctx, time.Second, key).Result()
		switch {
		case err == nil:
			ns, err := strconv.ParseInt(v[1], 10, 64)
			return time.Unix(0, ns), err
		case !errors.Is(err, redis.Nil):
			return time.Time{}, err
		}
		for _, p := range []*extProc{c.worker, c.producer} {
			if p != nil && p.exited() {
				return time.Time{}, fmt.Errorf("%s exited: %v%s", p.name, p.err, p.logTail())
			}
		}
		if n := done(); n != last {
			last, lastChange = n, time.Now()
		} else if time.Since(lastChange) > timeout {
			return time.Time{}, fmt.Errorf("waiting for %s: %d tasks done, none for %v", key, n, timeout)
		}
	}
}

// readLine reads a line the producer wrote.
func (c *celery) readLine(timeout time.Duration) (string, error) {
	select {
	case line, ok := <-c.lines:
		if !ok {
			return "", fmt.Errorf("producer exited%s", c.producer.logTail())
		}
		return line, nil
	case <-time.After(timeout):
		return "", fmt.Errorf("no answer in %v", timeout)
	}
}

// stop stops the producer (closing its stdin ends it), the worker and
// Redis.
func (c *celery) stop() error {
	var err error
	if c.producer != nil {
		c.in.Close()
		select {
		case <-c.producer.done:
		case <-time.After(stopGrace):
		}
		err = c.producer.stop()
		for range c.lines { // the reader ends at EOF
		}
	}
	if c.worker != nil {
		err = errors.Join(err, c.worker.stop())
	}
	return errors.Join(err, c.rp.stop())
}
