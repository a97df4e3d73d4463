package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mortarhq/mortar/push"
	"github.com/spf13/cobra"
)

// newPushCmd is "mortar push": push to long connections and look at them.
func newPushCmd(stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "push",
		Short: "Push to connected devices and browsers; list connections and presence",
		Long: `The push gateway: devices and browsers hold long connections to the nodes
(WebSocket and SSE on the admin port, length-prefixed TCP on --push-tcp),
and any backend pushes to them by client ID, user, channel or to all,
wherever in the cluster they are connected. docs/push.md is the protocol.

A MESSAGE is JSON if it parses as JSON ({"a":1}, 2, true, "x"), otherwise
it is sent as a JSON string.`,
		Example: `  mortar push send --client phone-1 '{"title":"hello"}'
  mortar push send --channel news "breaking"
  mortar push send --user alice --ack '{"kind":"direct"}'
  mortar push send --all '{"maintenance":"in 5 minutes"}'
  mortar push conns
  mortar push presence news
  mortar push locate phone-1
  mortar push history news
  mortar push token --client phone-1 --user alice --channel news`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	nf := addNodeFlags(cmd)
	cmd.AddCommand(pushSendCmd(nf, stdout, stderr), pushConnsCmd(nf, stdout, stderr), pushPresenceCmd(nf, stdout, stderr),
		pushHistoryCmd(nf, stdout, stderr), pushTokenCmd(nf, stdout, stderr), pushControlCmd(nf, stdout, stderr, "subscribe"),
		pushControlCmd(nf, stdout, stderr, "unsubscribe"), pushControlCmd(nf, stdout, stderr, "disconnect"),
		pushLocateCmd(nf, stdout, stderr))
	return cmd
}

// runPush dials and runs fn with a push client, its ctx bounded by
// --timeout.
func runPush(nf *nodeFlags, cmd *cobra.Command, stderr io.Writer, fn func(ctx context.Context, c *push.Client) error) error {
	conn, err := nf.dial(cmd.Context(), stderr)
	if err != nil {
		return err
	}
	defer conn.Close()
	c, err := push.New(conn, nil)
	if err != nil {
		return err
	}
	ctx, cancel := nf.ctx(cmd.Context())
	defer cancel()
	return fn(ctx, c)
}

// targetFlags are --client, --user, --channel and --all.
type targetFlags struct {
	client, user, channel string
	all                   bool
}

func (tf *targetFlags) add(cmd *cobra.Command, all bool) {
	f := cmd.Flags()
	f.StringVar(&tf.client, "client", "", "a client ID")
	f.StringVar(&tf.user, "user", "", "a user: all of their connections")
	if all {
		f.StringVar(&tf.channel, "channel", "", "a channel: all of its subscribers")
		f.BoolVar(&tf.all, "all", false, "every connection on every node")
	}
	withoutEnv(f, "client", "user")
	if all {
		withoutEnv(f, "channel", "all")
	}
}

func (tf *targetFlags) target() (push.Target, error) {
	var ts []push.Target
	if tf.client != "" {
		ts = append(ts, push.ToClient(tf.client))
	}
	if tf.user != "" {
		ts = append(ts, push.ToUser(tf.user))
	}
	if tf.channel != "" {
		ts = append(ts, push.ToChannel(tf.channel))
	}
	if tf.all {
		ts = append(ts, push.ToAll())
	}
	if len(ts) != 1 {
		return push.Target{}, usagef("name exactly one target: --client, --user, --channel or --all")
	}
	return ts[0], nil
}

func pushSendCmd(nf *nodeFlags, stdout, stderr io.Writer) *cobra.Command {
	var (
		tf      targetFlags
		ack     bool
		ackWait time.Duration
		ackMin  int
	)
	cmd := &cobra.Command{
		Use:   "send (--client ID | --user U | --channel C | --all) MESSAGE",
		Short: "Push a message",
		Long: `Push MESSAGE to a client ID, a user, a channel or everyone. It reaches the
target on whichever node it is connected. With --ack, wait for the
connections to acknowledge (up to --ack-wait, or until --ack-min did) and
list them. A channel push prints its offset in the channel's history.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			to, err := tf.target()
			if err != nil {
				return err
			}
			var opts *push.SendOpts
			if ack {
				opts = &push.SendOpts{Ack: true, AckWait: ackWait, AckMin: ackMin}
			}
			return runPush(nf, cmd, stderr, func(ctx context.Context, c *push.Client) error {
				if ack {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(cmd.Context(), nf.timeout+ackWait)
					defer cancel()
				}
				res, err := c.Send(ctx, to, jsonArg(args[0]), opts)
				if err != nil {
					return err
				}
				if nf.json() {
					return writeJSON(stdout, res)
				}
				if res.Offset != 0 {
					fmt.Fprintf(stdout, "sent to %s, offset %d\n", to, res.Offset)
				} else {
					fmt.Fprintf(stdout, "sent to %s\n", to)
				}
				if ack {
					fmt.Fprintf(stdout, "%d acknowledged\n", len(res.Acks))
					for _, a := range res.Acks {
						fmt.Fprintf(stdout, "  %s\n", a.Conn)
					}
				}
				return nil
			})
		},
	}
	tf.add(cmd, true)
	f := cmd.Flags()
	f.BoolVar(&ack, "ack", false, "wait for acknowledgements")
	f.DurationVar(&ackWait, "ack-wait", 5*time.Second, "with --ack, how long to wait")
	f.IntVar(&ackMin, "ack-min", 0, "with --ack, stop waiting once this many acknowledged (default 1)")
	return cmd
}

// jsonArg is a as JSON if it parses, else a as a JSON string.
func jsonArg(a string) json.RawMessage {
	if json.Valid([]byte(a)) {
		return json.RawMessage(a)
	}
	b, _ := json.Marshal(a)
	return b
}

func pushConnsCmd(nf *nodeFlags, stdout, stderr io.Writer) *cobra.Command {
	var (
		tf    targetFlags
		limit int
	)
	cmd := &cobra.Command{
		Use:   "conns [--client ID | --user U]",
		Short: "List connections across the cluster",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runPush(nf, cmd, stderr, func(ctx context.Context, c *push.Client) error {
				res, err := c.Conns(ctx, &push.ConnsFilter{Client: tf.client, User: tf.user, Limit: limit})
				if err != nil {
					return err
				}
				return printConns(nf, stdout, res)
			})
		},
	}
	tf.add(cmd, false)
	cmd.Flags().IntVar(&limit, "limit", 100, "list at most this many (up to 10000)")
	return cmd
}

func pushPresenceCmd(nf *nodeFlags, stdout, stderr io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "presence CHANNEL",
		Short: "List the connections subscribed to a channel",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPush(nf, cmd, stderr, func(ctx context.Context, c *push.Client) error {
				res, err := c.Presence(ctx, args[0])
				if err != nil {
					return err
				}
				return printConns(nf, stdout, res)
			})
		},
	}
}

func printConns(nf *nodeFlags, w io.Writer, res *push.Conns) error {
	if nf.json() {
		return writeJSON(w, res)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLIENT\tUSER\tNODE\tCONN\tTRANSPORT\tSINCE\tCHANNELS")
	for _, c := range res.Conns {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s/%s\t%s\t%s\n", c.Client, c.User, c.Node, c.Conn, c.Transport, c.Encoding,
			c.Since.Local().Format(time.DateTime), strings.Join(c.Channels, ","))
	}
	tw.Flush()
	more := ""
	if res.Total > len(res.Conns) {
		more = fmt.Sprintf(", %d listed", len(res.Conns))
	}
	fmt.Fprintf(w, "%d connections on %d nodes%s\n", res.Total, res.Nodes, more)
	return nil
}

func pushHistoryCmd(nf *nodeFlags, stdout, stderr io.Writer) *cobra.Command {
	var (
		after uint64
		limit int
	)
	cmd := &cobra.Command{
		Use:   "history CHANNEL",
		Short: "Show a channel's retained messages",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPush(nf, cmd, stderr, func(ctx context.Context, c *push.Client) error {
				h, err := c.History(ctx, args[0], after, limit)
				if err != nil {
					return err
				}
				if nf.json() {
					return writeJSON(stdout, h)
				}
				for _, p := range h.Pubs {
					fmt.Fprintf(stdout, "%d\t%s\n", p.Offset, p.Data)
				}
				fmt.Fprintf(stdout, "%d messages, epoch %s\n", len(h.Pubs), h.Epoch)
				return nil
			})
		},
	}
	cmd.Flags().Uint64Var(&after, "after", 0, "only messages after this offset")
	cmd.Flags().IntVar(&limit, "limit", 0, "at most this many (default: the history's size)")
	return cmd
}

func pushTokenCmd(nf *nodeFlags, stdout, stderr io.Writer) *cobra.Command {
	var (
		claims push.Claims
		ttl    time.Duration
	)
	cmd := &cobra.Command{
		Use:   "token --client ID [--user U] [--channel C]...",
		Short: "Print a connect token signed by the node",
		Long: `Ask the node to sign a connect token with its push secret: for trying the
gateway out (the demo page at /push/demo takes it). Backends sign their
own with push.SignToken or any JWT library (HS256, see docs/push.md).`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if claims.Client == "" {
				return usagef("--client is required")
			}
			return runPush(nf, cmd, stderr, func(ctx context.Context, c *push.Client) error {
				tok, err := c.Token(ctx, claims, ttl)
				if err != nil {
					return err
				}
				if nf.json() {
					return writeJSON(stdout, map[string]string{"token": tok})
				}
				fmt.Fprintln(stdout, tok)
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&claims.Client, "client", "", "the client ID the token admits")
	f.StringVar(&claims.User, "user", "", "the user the connection belongs to")
	f.StringArrayVar(&claims.Channels, "channel", nil, "a channel to subscribe the connection to at connect (repeatable)")
	f.StringArrayVar(&claims.Perms, "perm", nil, "what the connection may do, e.g. push:subscribe:news (repeatable; default: the node's --push-token-perms)")
	f.DurationVar(&ttl, "ttl", 24*time.Hour, "how long the token is valid")
	withoutEnv(f, "client", "user", "channel", "perm", "ttl")
	return cmd
}

// pushControlCmd is subscribe, unsubscribe or disconnect: acting on the
// connections of a client or user on every node.
func pushControlCmd(nf *nodeFlags, stdout, stderr io.Writer, verb string) *cobra.Command {
	var tf targetFlags
	use, short := verb+" (--client ID | --user U) CHANNEL", "Subscribe a client's or user's connections to a channel"
	nargs := cobra.ExactArgs(1)
	switch verb {
	case "unsubscribe":
		short = "Unsubscribe a client's or user's connections from a channel"
	case "disconnect":
		use, short, nargs = verb+" (--client ID | --user U)", "Close a client's or user's connections (they do not reconnect)", noArgs
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  nargs,
		RunE: func(cmd *cobra.Command, args []string) error {
			to, err := tf.target()
			if err != nil {
				return err
			}
			return runPush(nf, cmd, stderr, func(ctx context.Context, c *push.Client) error {
				var n int
				var err error
				switch verb {
				case "subscribe":
					n, err = c.Subscribe(ctx, to, args[0])
				case "unsubscribe":
					n, err = c.Unsubscribe(ctx, to, args[0])
				default:
					n, err = c.Disconnect(ctx, to)
				}
				if err != nil {
					return err
				}
				if nf.json() {
					return writeJSON(stdout, map[string]int{"conns": n})
				}
				fmt.Fprintf(stdout, "%s: %d connections\n", verb, n)
				return nil
			})
		},
	}
	tf.add(cmd, false)
	return cmd
}

func pushLocateCmd(nf *nodeFlags, stdout, stderr io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "locate CLIENT",
		Short: "Show which nodes a client ID is connected to",
		Long: `Show which nodes hold a client ID's connections, from the answering node's
directory of the whole cluster (one request, however many nodes).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPush(nf, cmd, stderr, func(ctx context.Context, c *push.Client) error {
				locs, err := c.Locate(ctx, args[0])
				if err != nil {
					return err
				}
				if nf.json() {
					return writeJSON(stdout, locs)
				}
				if len(locs) == 0 {
					fmt.Fprintf(stdout, "%s is not connected\n", args[0])
					return nil
				}
				for _, l := range locs {
					fmt.Fprintf(stdout, "%s\t%d connections\n", l.Node, l.Conns)
				}
				return nil
			})
		},
	}
}
