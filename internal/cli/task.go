package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mortarhq/mortar/task"
	"github.com/spf13/cobra"
)

// newTaskCmd is "mortar task": send, follow and control tasks.
func newTaskCmd(stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "task",
		Short: "Send tasks, read their results, revoke them, list them",
		Long: `The task queue: producers send named tasks to queues, workers (Go
programs using the task package, or any language publishing mortar's
message format) run them, and results are kept for 24 hours.

A task is named like proj.tasks.add. Its arguments are Celery's: a list of
positional arguments and a map of keyword arguments, in JSON.`,
		Example: `  mortar task send proj.add 2 3
  mortar task send proj.report --kwargs '{"month":"2026-11"}' --queue reports --countdown 10m
  mortar task send proj.add 2 3 --wait
  mortar task get 5f0c7f0e-1b2a-4c3d-9e8f-0a1b2c3d4e5f
  mortar task revoke 5f0c7f0e-1b2a-4c3d-9e8f-0a1b2c3d4e5f --terminate
  mortar task list --state queued --queue reports
  mortar task workers
  mortar task events`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	nf := addNodeFlags(cmd)
	cmd.AddCommand(taskSendCmd(nf, stdout, stderr), taskGetCmd(nf, stdout, stderr), taskRevokeCmd(nf, stdout, stderr),
		taskListCmd(nf, stdout, stderr), taskWorkersCmd(nf, stdout, stderr), taskEventsCmd(nf, stdout, stderr),
		taskRateLimitCmd(nf, stdout, stderr))
	return cmd
}

// withTasks dials and runs fn with a task client. fn bounds its own
// requests.
func withTasks(nf *nodeFlags, cmd *cobra.Command, stderr io.Writer, fn func(c *task.Client) error) error {
	conn, err := nf.dial(cmd.Context(), stderr)
	if err != nil {
		return err
	}
	defer conn.Close()
	c, err := task.New(conn, nil)
	if err != nil {
		return err
	}
	return fn(c)
}

// runTasks is withTasks for a command of one request: fn's ctx is
// bounded by --timeout.
func runTasks(nf *nodeFlags, cmd *cobra.Command, stderr io.Writer, fn func(ctx context.Context, c *task.Client) error) error {
	return withTasks(nf, cmd, stderr, func(c *task.Client) error {
		ctx, cancel := nf.ctx(cmd.Context())
		defer cancel()
		return fn(ctx, c)
	})
}

// jsonArgs reads positional arguments: each is JSON if it parses as JSON
// (2, true, "x", [1,2], {"a":1}), otherwise a string.
func jsonArgs(args []string) json.RawMessage {
	vals := make([]json.RawMessage, len(args))
	for i, a := range args {
		vals[i] = jsonArg(a)
	}
	b, _ := json.Marshal(vals)
	return b
}

// parseWhen reads a time as RFC 3339 or as a duration from now.
func parseWhen(flag, s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil {
		return time.Now().Add(d), nil
	}
	return time.Time{}, usagef("--%s %q: want an RFC 3339 time (2026-12-01T08:00:00Z) or a duration from now (90s)", flag, s)
}

func taskSendCmd(nf *nodeFlags, stdout, stderr io.Writer) *cobra.Command {
	var (
		kwargs, queue, id, eta, expires, priority string
		countdown, timeLimit, softLimit           time.Duration
		maxRetries                                int
		wait, ignoreResult                        bool
	)
	cmd := &cobra.Command{
		Use:   "send NAME [ARG...]",
		Short: "Send a task",
		Long: `Send the task NAME with positional arguments ARG..., each read as JSON
if it is JSON (2, true, [1,2], {"a":1}, "quoted") and as a string
otherwise. Print its ID, or with --wait its result once it has run.`,
		Example: `  mortar task send proj.add 2 3
  mortar task send proj.email --kwargs '{"to":"ann@example.com"}' --expires 1h
  mortar task send proj.add 2 3 --wait`,
		Args: minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts := &task.SendOpts{Queue: queue, ID: id, Countdown: countdown, TimeLimit: timeLimit, SoftTimeLimit: softLimit, IgnoreResult: ignoreResult}
			var err error
			if eta != "" {
				if opts.ETA, err = parseWhen("eta", eta); err != nil {
					return err
				}
			}
			if expires != "" {
				if opts.Expires, err = parseWhen("expires", expires); err != nil {
					return err
				}
			}
			switch priority {
			case "high":
				opts.Priority = task.PriorityHigh
			case "low":
				opts.Priority = task.PriorityLow
			case "", "normal":
			default:
				return usagef("--priority %q: want high, normal or low", priority)
			}
			if cmd.Flags().Changed("max-retries") {
				opts.MaxRetries = &maxRetries
			}
			var kw json.RawMessage
			if kwargs != "" {
				if kw = json.RawMessage(kwargs); !json.Valid(kw) || kw[0] != '{' {
					return usagef("--kwargs %q: want a JSON object", kwargs)
				}
			}
			return runTasks(nf, cmd, stderr, func(ctx context.Context, c *task.Client) error {
				r, err := c.Send(ctx, args[0], jsonArgs(args[1:]), kw, opts)
				if err != nil {
					return err
				}
				if !wait {
					if nf.json() {
						return writeJSON(stdout, map[string]string{"id": r.ID})
					}
					fmt.Fprintln(stdout, r.ID)
					return nil
				}
				st, err := r.Wait(ctx)
				if err != nil {
					return err
				}
				return printStatus(stdout, nf, st)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&kwargs, "kwargs", "", "keyword arguments, a JSON object")
	f.StringVar(&queue, "queue", "", "the queue (default \"default\")")
	f.StringVar(&priority, "priority", "", "high, normal or low: workers take a queue's higher band first")
	f.StringVar(&id, "id", "", "the task's ID (default: a new UUID); a repeated send with one ID within 2 minutes is queued once")
	f.DurationVar(&countdown, "countdown", 0, "run no sooner than this from now")
	f.StringVar(&eta, "eta", "", "run no sooner than this time (RFC 3339)")
	f.StringVar(&expires, "expires", "", "never start after this time (RFC 3339, or a duration from now)")
	f.IntVar(&maxRetries, "max-retries", 0, "retries allowed (default: the worker's policy)")
	f.DurationVar(&timeLimit, "time-limit", 0, "the worker gives the run up after this long")
	f.DurationVar(&softLimit, "soft-time-limit", 0, "the handler's context ends after this long")
	f.BoolVar(&ignoreResult, "ignore-result", false, "store no result")
	f.BoolVar(&wait, "wait", false, "wait for the task to end (within --timeout) and print its result")
	withoutEnv(f, "kwargs", "priority", "id", "countdown", "eta", "expires", "max-retries", "time-limit", "soft-time-limit", "ignore-result", "wait")
	return cmd
}

// printStatus prints a task's status.
func printStatus(w io.Writer, nf *nodeFlags, st *task.Status) error {
	if nf.json() {
		return writeJSON(w, st)
	}
	line := func(k, v string) {
		if v != "" {
			fmt.Fprintf(w, "%-10s%s\n", k+":", v)
		}
	}
	line("id", st.ID)
	line("task", st.Task)
	line("state", string(st.State))
	line("result", string(st.Result))
	line("progress", string(st.Progress))
	if st.Error != nil {
		line("error", st.Error.Type+": "+st.Error.Message)
	}
	if st.Retries > 0 {
		line("retries", strconv.Itoa(st.Retries))
	}
	line("worker", st.Worker)
	if !st.DateDone.IsZero() {
		line("done", st.DateDone.Format(time.RFC3339Nano))
	}
	if st.Error != nil && st.Error.Traceback != "" {
		fmt.Fprintf(w, "traceback:\n%s", st.Error.Traceback)
	}
	return nil
}

func taskGetCmd(nf *nodeFlags, stdout, stderr io.Writer) *cobra.Command {
	var wait bool
	cmd := &cobra.Command{
		Use:   "get ID",
		Short: "Show a task's state and result",
		Long: `Show the state of task ID (PENDING when nothing is stored: not yet run,
unknown, or its result expired), its result or error. With --wait, wait
for it to end first.`,
		Example: `  mortar task get 5f0c7f0e-1b2a-4c3d-9e8f-0a1b2c3d4e5f
  mortar task get 5f0c7f0e-1b2a-4c3d-9e8f-0a1b2c3d4e5f --wait --timeout 1m`,
		Args: cfgRangeArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runTasks(nf, cmd, stderr, func(ctx context.Context, c *task.Client) error {
				r := c.Result(args[0])
				get := r.Status
				if wait {
					get = r.Wait
				}
				st, err := get(ctx)
				if err != nil {
					return err
				}
				return printStatus(stdout, nf, st)
			})
		},
	}
	cmd.Flags().BoolVar(&wait, "wait", false, "wait for the task to end (within --timeout)")
	withoutEnv(cmd.Flags(), "wait")
	return cmd
}

func taskRevokeCmd(nf *nodeFlags, stdout, stderr io.Writer) *cobra.Command {
	var terminate bool
	cmd := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a task",
		Long: `Revoke task ID: if it waits in a queue it never starts, if it is delayed
it is removed; with --terminate a running task is stopped (its handler's
context is cancelled). It is recorded as REVOKED unless it has already
ended.`,
		Example: `  mortar task revoke 5f0c7f0e-1b2a-4c3d-9e8f-0a1b2c3d4e5f
  mortar task revoke 5f0c7f0e-1b2a-4c3d-9e8f-0a1b2c3d4e5f --terminate`,
		Args: cfgRangeArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runTasks(nf, cmd, stderr, func(ctx context.Context, c *task.Client) error {
				if err := c.Revoke(ctx, args[0], &task.RevokeOpts{Terminate: terminate}); err != nil {
					return err
				}
				fmt.Fprintf(stdout, "revoked %s\n", args[0])
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&terminate, "terminate", false, "also stop it if it is running")
	withoutEnv(cmd.Flags(), "terminate")
	return cmd
}

func taskListCmd(nf *nodeFlags, stdout, stderr io.Writer) *cobra.Command {
	var state, queue string
	var limit int
	cmd := &cobra.Command{
		Use:   "list --state STATE",
		Short: "List tasks in a state",
		Long: `List tasks in STATE: queued (in the queue, waiting or taken by a worker),
delayed (held until an ETA or a retry), active (running), reserved (taken
by a worker, waiting for a free slot), dead (in the dead letters), or a
stored state: success, failure, retry, started, revoked. The stored
states read the results kept (24 hours), until --limit are found.`,
		Example: `  mortar task list --state queued
  mortar task list --state delayed --queue reports
  mortar task list --state failure --limit 20`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if state == "" {
				return usagef("--state is required: one of %s", strings.Join(task.ListStates, ", "))
			}
			return runTasks(nf, cmd, stderr, func(ctx context.Context, c *task.Client) error {
				ls, err := c.List(ctx, state, queue, limit)
				if err != nil {
					return err
				}
				if nf.json() {
					return writeJSON(stdout, ls)
				}
				tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tTASK\tQUEUE\tSTATE\tTIME\tWORKER\tERROR")
				for _, l := range ls {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", l.ID, l.Task, l.Queue, l.State, fmtTime(l.Time), l.Worker, l.Error)
				}
				return tw.Flush()
			})
		},
	}
	cmd.Flags().StringVar(&state, "state", "", "the state: "+strings.Join(task.ListStates, ", "))
	cmd.Flags().StringVar(&queue, "queue", "", "the queue (default \"default\")")
	cmd.Flags().IntVar(&limit, "limit", 100, "list at most this many")
	withoutEnv(cmd.Flags(), "state", "limit")
	return cmd
}

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Format(time.RFC3339)
}

func taskWorkersCmd(nf *nodeFlags, stdout, stderr io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "workers",
		Short: "List the workers and their heartbeats",
		Long: `List the workers heard from in the last five minutes: queues,
concurrency, tasks running, tasks processed, and when the node last heard
their heartbeat (every 2 seconds). A worker is offline once it said
goodbye or missed three heartbeats.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runTasks(nf, cmd, stderr, func(ctx context.Context, c *task.Client) error {
				ws, err := c.Workers(ctx)
				if err != nil {
					return err
				}
				if nf.json() {
					return writeJSON(stdout, ws)
				}
				tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "WORKER\tSTATUS\tQUEUES\tCONCURRENCY\tACTIVE\tPROCESSED\tLAST HEARD")
				for _, w := range ws {
					status := "online"
					if !w.Online {
						status = "offline"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%s ago\n", w.Worker, status, strings.Join(w.Queues, ","),
						w.Concurrency, w.Active, w.Processed, time.Since(w.LastSeen).Round(time.Second))
				}
				return tw.Flush()
			})
		},
	}
}

func taskEventsCmd(nf *nodeFlags, stdout, stderr io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "events [TYPE...]",
		Short: "Follow task and worker events",
		Long: `Print task events (task-sent, task-received, task-started,
task-succeeded, task-failed, task-retried, task-revoked) and worker events
(worker-online, worker-heartbeat, worker-offline) as they happen, one JSON
object per line, until interrupted. TYPE limits them. Task events come
only from clients and workers that enable them.`,
		Example: `  mortar task events
  mortar task events task-failed task-retried`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withTasks(nf, cmd, stderr, func(c *task.Client) error {
				mon, err := c.Monitor(args...)
				if err != nil {
					return err
				}
				defer mon.Stop()
				enc := json.NewEncoder(stdout)
				for {
					e, err := mon.Next(cmd.Context())
					if err != nil {
						return nil // interrupted
					}
					if err := enc.Encode(e); err != nil {
						return err
					}
				}
			})
		},
	}
}

// seqArgs reads dead letter sequence numbers.
func seqArgs(args []string) ([]uint64, error) {
	seqs := make([]uint64, len(args))
	for i, a := range args {
		n, err := strconv.ParseUint(a, 10, 64)
		if err != nil || n == 0 {
			return nil, usagef("%q: want a dead letter's SEQ (see mortar dlq list)", a)
		}
		seqs[i] = n
	}
	return seqs, nil
}

func taskRateLimitCmd(nf *nodeFlags, stdout, stderr io.Writer) *cobra.Command {
	var remove bool
	cmd := &cobra.Command{
		Use:   "rate-limit [NAME (RATE | --remove)]",
		Short: "Show, set or remove the rate limits of tasks",
		Long: `Without arguments, list the rate limits. With NAME and RATE, limit the
task NAME to RATE across every worker, runs evenly spaced; RATE is as
Celery writes it: 10/s, 100/m, 0.5/h. With NAME and --remove, lift the
limit. Workers apply a change at once.`,
		Example: `  mortar task rate-limit proj.email 10/m
  mortar task rate-limit
  mortar task rate-limit proj.email --remove`,
		Args: cfgRangeArgs(0, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case len(args) == 1 && !remove:
				return usagef("give NAME a RATE, or --remove")
			case len(args) == 2 && remove:
				return usagef("RATE and --remove: give one")
			case len(args) == 0 && remove:
				return usagef("--remove needs the task NAME")
			}
			return runTasks(nf, cmd, stderr, func(ctx context.Context, c *task.Client) error {
				if len(args) > 0 {
					rate := ""
					if len(args) == 2 {
						rate = args[1]
					}
					if err := c.SetRateLimit(ctx, args[0], rate); err != nil {
						return err
					}
					if rate == "" {
						fmt.Fprintf(stdout, "removed the rate limit of %s\n", args[0])
					} else {
						fmt.Fprintf(stdout, "limited %s to %s\n", args[0], rate)
					}
					return nil
				}
				ls, err := c.RateLimits(ctx)
				if err != nil {
					return err
				}
				if nf.json() {
					return writeJSON(stdout, ls)
				}
				tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "TASK\tRATE")
				for _, l := range ls {
					fmt.Fprintf(tw, "%s\t%s\n", l.Task, l.Rate)
				}
				return tw.Flush()
			})
		},
	}
	cmd.Flags().BoolVar(&remove, "remove", false, "lift the limit")
	withoutEnv(cmd.Flags(), "remove")
	return cmd
}
