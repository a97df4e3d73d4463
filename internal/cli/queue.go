package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mortarhq/mortar/task"
	"github.com/spf13/cobra"
)

// newQueueCmd is "mortar queue": the counters and controls of queues.
func newQueueCmd(stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "queue",
		Short: "Show queue counters; pause, resume and purge queues",
		Long: `Task queues. A queue exists once a worker has bound it. Its counters
come from the engine: waiting (not yet taken), taken (running or prefetched
by a worker), delayed (until an ETA or a retry), dead (dead letters).`,
		Example: `  mortar queue stats
  mortar queue stats reports
  mortar queue pause reports --for 10m
  mortar queue resume reports
  mortar queue purge reports --yes`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	nf := addNodeFlags(cmd)
	cmd.AddCommand(queueStatsCmd(nf, stdout, stderr), queuePauseCmd(nf, stdout, stderr),
		queueResumeCmd(nf, stdout, stderr), queuePurgeCmd(nf, stdout, stderr))
	return cmd
}

func queueStatsCmd(nf *nodeFlags, stdout, stderr io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "stats [QUEUE]",
		Short: "Show the counters of every queue, or of one",
		Args:  cfgRangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runTasks(nf, cmd, stderr, func(ctx context.Context, c *task.Client) error {
				var qs []task.QueueStats
				if len(args) == 1 {
					q, err := c.QueueStats(ctx, args[0])
					if err != nil {
						return err
					}
					qs = []task.QueueStats{*q}
				} else {
					var err error
					if qs, err = c.Queues(ctx); err != nil {
						return err
					}
				}
				if nf.json() {
					return writeJSON(stdout, qs)
				}
				tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "QUEUE\tWAITING\tTAKEN\tDELAYED\tDEAD\tREDELIVERED\tVISIBILITY\tSTATE")
				for _, q := range qs {
					state := "running"
					if q.Paused {
						state = "paused"
						if q.PausedUntil.Year() < 9999 {
							state += " until " + q.PausedUntil.Format(time.RFC3339)
						}
					}
					fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n", q.Queue, q.Waiting, q.Taken, q.Delayed, q.Dead, q.Redelivered, q.Visibility, state)
				}
				return tw.Flush()
			})
		},
	}
}

func queuePauseCmd(nf *nodeFlags, stdout, stderr io.Writer) *cobra.Command {
	var until string
	var d time.Duration
	cmd := &cobra.Command{
		Use:   "pause QUEUE",
		Short: "Stop workers from taking tasks from a queue",
		Long: `Pause QUEUE: no worker takes a task from it until it is resumed, or
until --until, or for --for. Running tasks go on; sends go on.`,
		Args: cfgRangeArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var at time.Time
			switch {
			case until != "" && d > 0:
				return usagef("--until and --for: give one")
			case until != "":
				var err error
				if at, err = parseWhen("until", until); err != nil {
					return err
				}
			case d > 0:
				at = time.Now().Add(d)
			}
			return runTasks(nf, cmd, stderr, func(ctx context.Context, c *task.Client) error {
				if err := c.PauseQueue(ctx, args[0], at); err != nil {
					return err
				}
				if at.IsZero() {
					fmt.Fprintf(stdout, "paused %s until resumed\n", args[0])
				} else {
					fmt.Fprintf(stdout, "paused %s until %s\n", args[0], at.UTC().Format(time.RFC3339))
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&until, "until", "", "resume by itself at this time (RFC 3339)")
	cmd.Flags().DurationVar(&d, "for", 0, "resume by itself after this long")
	withoutEnv(cmd.Flags(), "until", "for")
	return cmd
}

func queueResumeCmd(nf *nodeFlags, stdout, stderr io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "resume QUEUE",
		Short: "Let workers take tasks from a paused queue again",
		Args:  cfgRangeArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runTasks(nf, cmd, stderr, func(ctx context.Context, c *task.Client) error {
				if err := c.ResumeQueue(ctx, args[0]); err != nil {
					return err
				}
				fmt.Fprintf(stdout, "resumed %s\n", args[0])
				return nil
			})
		},
	}
}

func queuePurgeCmd(nf *nodeFlags, stdout, stderr io.Writer) *cobra.Command {
	var yes, delayed bool
	cmd := &cobra.Command{
		Use:   "purge QUEUE --yes",
		Short: "Remove a queue's waiting tasks",
		Long: `Remove every task waiting in QUEUE (with --delayed, its delayed tasks
too). They are gone: they never run and leave no result. Tasks already
taken by a worker run to their end.`,
		Args: cfgRangeArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !yes {
				return usagef("purge removes tasks for good: add --yes")
			}
			return runTasks(nf, cmd, stderr, func(ctx context.Context, c *task.Client) error {
				n, err := c.PurgeQueue(ctx, args[0], delayed)
				if err != nil {
					return err
				}
				fmt.Fprintf(stdout, "purged %d tasks from %s\n", n, args[0])
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&yes, "yes", false, "yes, remove them")
	cmd.Flags().BoolVar(&delayed, "delayed", false, "also remove the delayed tasks")
	withoutEnv(cmd.Flags(), "yes", "delayed")
	return cmd
}

// newScheduleCmd is "mortar schedule": Celery beat's entries.
func newScheduleCmd(stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "schedule",
		Short: "Add, list and remove task schedules",
		Long: `Schedules send a task again and again: every interval, on a cron spec
in a time zone, or once at a time. The node's engine fires them (one node
of a cluster, never twice for one time); after downtime a schedule fires
once for all the times it missed, then keeps its rhythm.`,
		Example: `  mortar schedule add cleanup proj.cleanup --every 10m
  mortar schedule add report proj.report '"daily"' --cron "0 8 * * 1-5" --tz Europe/Paris
  mortar schedule add launch proj.launch --at 2026-12-24T18:00:00Z
  mortar schedule list
  mortar schedule remove cleanup`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	nf := addNodeFlags(cmd)
	cmd.AddCommand(scheduleAddCmd(nf, stdout, stderr), scheduleListCmd(nf, stdout, stderr), scheduleRemoveCmd(nf, stdout, stderr))
	return cmd
}

func scheduleAddCmd(nf *nodeFlags, stdout, stderr io.Writer) *cobra.Command {
	var sc task.Schedule
	var kwargs, at string
	var every time.Duration
	cmd := &cobra.Command{
		Use:   "add NAME TASK [ARG...] (--every D | --cron SPEC | --at TIME)",
		Short: "Add or replace a schedule",
		Long: `Add the schedule NAME (1 to 64 of [A-Za-z0-9_-]; an existing one is
replaced) that sends TASK with ARG... (read as in mortar task send).
--cron takes 5 fields (minute hour day-of-month month day-of-week), or 6
with seconds first, or @hourly, @daily, @weekly, @monthly, @yearly.`,
		Args: minArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			sc.Name, sc.Task = args[0], args[1]
			if len(args) > 2 {
				sc.Args = jsonArgs(args[2:])
			}
			if kwargs != "" {
				if sc.Kwargs = json.RawMessage(kwargs); !json.Valid(sc.Kwargs) {
					return usagef("--kwargs %q: want a JSON object", kwargs)
				}
			}
			if every > 0 {
				sc.Every = every.String()
			}
			if at != "" {
				var err error
				if sc.At, err = parseWhen("at", at); err != nil {
					return err
				}
			}
			return runTasks(nf, cmd, stderr, func(ctx context.Context, c *task.Client) error {
				if err := c.AddSchedule(ctx, sc); err != nil {
					return err
				}
				fmt.Fprintf(stdout, "scheduled %s\n", sc.Name)
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.DurationVar(&every, "every", 0, "fire every interval (1s or more)")
	f.StringVar(&sc.Cron, "cron", "", "fire on this cron spec")
	f.StringVar(&sc.TimeZone, "tz", "", "the cron spec's IANA time zone (default UTC)")
	f.StringVar(&at, "at", "", "fire once at this time (RFC 3339, or a duration from now)")
	f.StringVar(&kwargs, "kwargs", "", "keyword arguments, a JSON object")
	f.StringVar(&sc.Queue, "queue", "", "the queue (default \"default\")")
	f.StringVar(&sc.Expires, "expires", "", "a run not started this long after firing never starts (a duration)")
	f.BoolVar(&sc.IgnoreResult, "ignore-result", false, "store no result of the runs")
	withoutEnv(f, "every", "cron", "tz", "at", "kwargs", "expires", "ignore-result")
	return cmd
}

func scheduleListCmd(nf *nodeFlags, stdout, stderr io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the schedules",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runTasks(nf, cmd, stderr, func(ctx context.Context, c *task.Client) error {
				scs, err := c.Schedules(ctx)
				if err != nil {
					return err
				}
				if nf.json() {
					return writeJSON(stdout, scs)
				}
				tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tWHEN\tTASK\tQUEUE\tARGS\tKWARGS")
				for _, s := range scs {
					when := "every " + s.Every
					switch {
					case s.Cron != "":
						when = "cron " + s.Cron + " " + cmp.Or(s.TimeZone, "UTC")
					case !s.At.IsZero():
						when = "at " + s.At.UTC().Format(time.RFC3339)
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, when, s.Task, cmp.Or(s.Queue, task.QueueDefault), cmp.Or(string(s.Args), "[]"), cmp.Or(string(s.Kwargs), "{}"))
				}
				return tw.Flush()
			})
		},
	}
}

func scheduleRemoveCmd(nf *nodeFlags, stdout, stderr io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "remove NAME",
		Short: "Remove a schedule",
		Args:  cfgRangeArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runTasks(nf, cmd, stderr, func(ctx context.Context, c *task.Client) error {
				if err := c.RemoveSchedule(ctx, args[0]); err != nil {
					return err
				}
				fmt.Fprintf(stdout, "removed schedule %s\n", args[0])
				return nil
			})
		},
	}
}

// newDLQCmd is "mortar dlq": dead letters.
func newDLQCmd(stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "List, retry and discard dead letters",
		Long: `Dead letters are tasks that failed for good (out of retries, an error
marked not to retry, a panic, a time limit, an unknown task name, a
message that does not decode), kept per queue with the reason until they
are retried or discarded. SEQ numbers them (see list).`,
		Example: `  mortar dlq list
  mortar dlq list reports
  mortar dlq show default 12
  mortar dlq retry default 12 13
  mortar dlq retry default --all
  mortar dlq discard default --all`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	nf := addNodeFlags(cmd)
	cmd.AddCommand(dlqListCmd(nf, stdout, stderr), dlqShowCmd(nf, stdout, stderr), dlqActCmd(nf, stdout, stderr, "retry"), dlqActCmd(nf, stdout, stderr, "discard"))
	return cmd
}

func dlqListCmd(nf *nodeFlags, stdout, stderr io.Writer) *cobra.Command {
	var after uint64
	var limit int
	cmd := &cobra.Command{
		Use:   "list [QUEUE]",
		Short: "List a queue's dead letters, oldest first",
		Args:  cfgRangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q := task.QueueDefault
			if len(args) == 1 {
				q = args[0]
			}
			return runTasks(nf, cmd, stderr, func(ctx context.Context, c *task.Client) error {
				ds, err := c.DeadLetters(ctx, q, after, limit)
				if err != nil {
					return err
				}
				if nf.json() {
					return writeJSON(stdout, ds)
				}
				tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "SEQ\tID\tTASK\tREASON\tRETRIES\tDIED\tERROR")
				for _, d := range ds {
					msg := strings.ReplaceAll(d.Error, "\n", " ")
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%d\t%s\t%s\n", d.Seq, d.ID, d.Task, d.Reason, d.Retries, d.Time.Format(time.RFC3339), msg)
				}
				return tw.Flush()
			})
		},
	}
	cmd.Flags().Uint64Var(&after, "after", 0, "only dead letters after this SEQ")
	cmd.Flags().IntVar(&limit, "limit", 100, "list at most this many (up to 1000)")
	withoutEnv(cmd.Flags(), "after", "limit")
	return cmd
}

func dlqShowCmd(nf *nodeFlags, stdout, stderr io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "show QUEUE SEQ",
		Short: "Show one dead letter whole: its task, arguments, reason and error",
		Args:  cfgRangeArgs(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			seqs, err := seqArgs(args[1:])
			if err != nil {
				return err
			}
			return runTasks(nf, cmd, stderr, func(ctx context.Context, c *task.Client) error {
				ds, err := c.DeadLetters(ctx, args[0], seqs[0]-1, 1)
				if err != nil {
					return err
				}
				if len(ds) == 0 || ds[0].Seq != seqs[0] {
					return fmt.Errorf("dead letter %d of queue %s: not found", seqs[0], args[0])
				}
				d := ds[0]
				if nf.json() {
					return writeJSON(stdout, d)
				}
				for _, kv := range [][2]string{{"seq", fmt.Sprint(d.Seq)}, {"queue", d.Queue}, {"id", d.ID}, {"task", d.Task},
					{"reason", d.Reason}, {"error", d.Error}, {"retries", fmt.Sprint(d.Retries)}, {"died", d.Time.Format(time.RFC3339Nano)},
					{"args", string(d.Args)}, {"kwargs", string(d.Kwargs)}} {
					fmt.Fprintf(stdout, "%-10s%s\n", kv[0]+":", kv[1])
				}
				return nil
			})
		},
	}
}

// dlqActCmd is "dlq retry" or "dlq discard".
func dlqActCmd(nf *nodeFlags, stdout, stderr io.Writer, verb string) *cobra.Command {
	var all bool
	short := map[string]string{
		"retry":   "Send dead letters back to their queue, retries reset",
		"discard": "Remove dead letters for good",
	}[verb]
	cmd := &cobra.Command{
		Use:   verb + " QUEUE (SEQ... | --all)",
		Short: short,
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			seqs, err := seqArgs(args[1:])
			if err != nil {
				return err
			}
			if len(seqs) == 0 && !all {
				return usagef("name dead letters by SEQ, or give --all")
			}
			if len(seqs) > 0 && all {
				return usagef("SEQ... and --all: give one")
			}
			return runTasks(nf, cmd, stderr, func(ctx context.Context, c *task.Client) error {
				act := c.RetryDead
				if verb == "discard" {
					act = c.DiscardDead
				}
				n, err := act(ctx, args[0], seqs...)
				if n > 0 || err == nil {
					fmt.Fprintf(stdout, "%s %d dead letters of %s\n", map[string]string{"retry": "retried", "discard": "discarded"}[verb], n, args[0])
				}
				return err
			})
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "every dead letter of the queue")
	withoutEnv(cmd.Flags(), "all")
	return cmd
}
