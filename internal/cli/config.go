package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mortarhq/mortar/config"
	"github.com/spf13/cobra"
)

// configFlags are the flags every config command shares, and where the
// commands write.
type configFlags struct {
	*nodeFlags
	ns     string
	author string
	stdout io.Writer
	stderr io.Writer
}

// newConfigCmd is "mortar config": the config center commands.
func newConfigCmd(stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Read, write, watch and gray-release configuration",
		Long: `The config center: versioned values under NAMESPACE / GROUP / KEY.

A key is named GROUP/KEY: the group is 1 to 64 of [A-Za-z0-9_-], the key
is everything after the first slash (any UTF-8, up to 256 bytes, slashes
allowed). The namespace comes from --ns (default "default").

Every write makes a new version with author, time and comment; history is
unlimited. Values are at most 1 MiB; a json, yaml or toml value must parse.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cf := &configFlags{nodeFlags: addNodeFlags(cmd), stdout: stdout, stderr: stderr}
	pf := cmd.PersistentFlags()
	pf.StringVar(&cf.ns, "ns", config.NamespaceDefault, "namespace")
	pf.StringVar(&cf.author, "author", os.Getenv("USER"), "author recorded with writes")
	cmd.AddCommand(
		configGetCmd(cf), configSetCmd(cf), configEditCmd(cf), configDeleteCmd(cf),
		configListCmd(cf), configWatchCmd(cf), configHistoryCmd(cf), configDiffCmd(cf),
		configRollbackCmd(cf), configGrayCmd(cf), configNSCmd(cf),
	)
	return cmd
}

// splitKey splits GROUP/KEY.
func splitKey(s string) (group, key string, err error) {
	group, key, ok := strings.Cut(s, "/")
	if !ok || group == "" || key == "" {
		return "", "", usagef("%q: name a key as GROUP/KEY", s)
	}
	return group, key, nil
}

// client dials the node and returns a client on it in --ns, writing as
// --author; cfg gives the rest. done closes the connection.
func (cf *configFlags) client(cmd *cobra.Command, cfg config.Config) (c *config.Client, done func(), err error) {
	conn, err := cf.dial(cmd.Context(), cf.stderr)
	if err != nil {
		return nil, nil, err
	}
	cfg.Namespace, cfg.Author = cf.ns, cf.author
	if c, err = config.New(conn, &cfg); err != nil {
		conn.Close()
		return nil, nil, usagef("%v", err)
	}
	return c, conn.Close, nil
}

// result is what a config command prints: data as JSON with -o json,
// text otherwise. A result without data prints its text either way; one
// without either prints nothing.
type result struct {
	data any
	text func(w io.Writer) error
}

// printf is a result's text made of one formatted write.
func printf(format string, args ...any) func(io.Writer) error {
	return func(w io.Writer) error {
		_, err := fmt.Fprintf(w, format, args...)
		return err
	}
}

// run dials the node and calls fn with a client and a --timeout ctx,
// then prints fn's result.
func (cf *configFlags) run(cmd *cobra.Command, fn func(ctx context.Context, c *config.Client) (*result, error)) error {
	c, done, err := cf.client(cmd, config.Config{})
	if err != nil {
		return err
	}
	defer done()
	ctx, cancel := cf.ctx(cmd.Context())
	defer cancel()
	r, err := fn(ctx, c)
	if err != nil {
		return err
	}
	return cf.print(r)
}

// print writes r to stdout.
func (cf *configFlags) print(r *result) error {
	switch {
	case r == nil:
		return nil
	case r.data != nil && cf.json():
		return writeJSON(cf.stdout, r.data)
	case r.text != nil:
		return r.text(cf.stdout)
	}
	return nil
}

// onKey is the RunE of a command on GROUP/KEY that checks nothing else
// before it dials: run with the key split.
func (cf *configFlags) onKey(fn func(ctx context.Context, c *config.Client, group, key string) (*result, error)) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		group, key, err := splitKey(args[0])
		if err != nil {
			return err
		}
		return cf.run(cmd, func(ctx context.Context, c *config.Client) (*result, error) {
			return fn(ctx, c, group, key)
		})
	}
}

// written is the result of a write: the version, or "version N".
func written(v *config.Version, err error) (*result, error) {
	if err != nil {
		return nil, err
	}
	what := "version"
	if v.Deleted {
		what = "deleted at version"
	}
	return &result{v, printf("%s %d\n", what, v.Version)}, nil
}

// readValue reads the value of a set: --file, "-" for standard input, or
// the argument after GROUP/KEY.
func readValue(cmd *cobra.Command, args []string, file string) ([]byte, error) {
	switch {
	case file != "":
		return os.ReadFile(file)
	case len(args) == 2 && args[1] == "-":
		return io.ReadAll(cmd.InOrStdin())
	case len(args) == 2:
		return []byte(args[1]), nil
	}
	return nil, usagef("give VALUE, --file FILE or - for standard input")
}

func configGetCmd(cf *configFlags) *cobra.Command {
	var version uint64
	cmd := &cobra.Command{
		Use:   "get GROUP/KEY",
		Short: "Print a value (the current version, or --version N)",
		Long: `Print a value's bytes as they are. With -o json, print the value and its
metadata (version, author, time, comment, content type).`,
		Example: `  mortar config get app/db.url
  mortar config get --ns team-a --version 3 app/limits.json`,
		Args: cfgExactArgs(1),
		RunE: cf.onKey(func(ctx context.Context, c *config.Client, group, key string) (*result, error) {
			var v *config.Value
			var err error
			if version > 0 {
				v, err = c.GetVersion(ctx, group, key, version)
			} else {
				v, err = c.Get(ctx, group, key)
			}
			if err != nil {
				return nil, err
			}
			return &result{valueJSON(v), printf("%s", v.Data)}, nil
		}),
	}
	cmd.Flags().Uint64Var(&version, "version", 0, "print this version instead of the current one")
	return cmd
}

func valueJSON(v *config.Value) map[string]any {
	m := map[string]any{
		"group": v.Group, "key": v.Key, "exists": v.Exists, "version": v.Version, "revision": v.Revision,
		"content_type": v.ContentType, "author": v.Author, "time": v.Time, "comment": v.Comment, "gray": v.Gray,
		"value": string(v.Data),
	}
	return m
}

func configSetCmd(cf *configFlags) *cobra.Command {
	var (
		file, ctype, comment string
		expect               int64
	)
	cmd := &cobra.Command{
		Use:   "set GROUP/KEY [VALUE | -]",
		Short: "Write a new version of a key",
		Long: `Write VALUE, the contents of --file, or standard input ("-") as the next
version. --expect-version N makes it a compare-and-set (0: the key must
not exist); a lost race fails with a conflict and writes nothing.`,
		Example: `  mortar config set app/db.url postgres://db:5432/app
  mortar config set --type json --comment "raise limit" app/limits --file limits.json
  mortar config set --expect-version 4 app/db.url postgres://db2/app`,
		Args: cfgRangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			group, key, err := splitKey(args[0])
			if err != nil {
				return err
			}
			if file != "" && len(args) == 2 {
				return usagef("give VALUE or --file, not both")
			}
			data, err := readValue(cmd, args, file)
			if err != nil {
				return err
			}
			opts := &config.SetOpts{ContentType: ctype, Comment: comment}
			if cmd.Flags().Changed("expect-version") {
				if expect < 0 {
					return usagef("--expect-version must be 0 or more")
				}
				opts.ExpectedVersion = config.Expect(uint64(expect))
			}
			return cf.run(cmd, func(ctx context.Context, c *config.Client) (*result, error) {
				return written(c.Set(ctx, group, key, data, opts))
			})
		},
	}
	f := cmd.Flags()
	f.StringVarP(&file, "file", "f", "", "read the value from this file")
	f.StringVar(&ctype, "type", "", "content type: text, json, yaml, toml, properties (default: keep the current one, else text)")
	f.StringVarP(&comment, "comment", "m", "", "comment recorded with the version")
	f.Int64Var(&expect, "expect-version", -1, "write only if the current version is this (0: only if the key does not exist)")
	return cmd
}

func configEditCmd(cf *configFlags) *cobra.Command {
	var comment string
	cmd := &cobra.Command{
		Use:   "edit GROUP/KEY",
		Short: "Edit a value in $EDITOR and write it back with compare-and-set",
		Long: `Open the current value in $EDITOR (or vi). When the editor exits, write
the result as a new version if it changed, under compare-and-set: if
someone else wrote meanwhile, nothing is written and the command fails
with a conflict. A key that does not exist starts empty.`,
		Args: cfgExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			group, key, err := splitKey(args[0])
			if err != nil {
				return err
			}
			c, done, err := cf.client(cmd, config.Config{})
			if err != nil {
				return err
			}
			defer done()
			ctx, cancel := cf.ctx(cmd.Context())
			cur, err := c.GetVersion(ctx, group, key, 0)
			cancel()
			var old []byte
			var version uint64
			switch {
			case err == nil:
				old, version = cur.Data, cur.Version
				if !cur.Exists {
					version = 0
				}
			case errors.Is(err, config.ErrNotFound):
			default:
				return err
			}
			edited, err := runEditor(cmd, key, old)
			if err != nil {
				return err
			}
			if bytes.Equal(edited, old) {
				fmt.Fprintln(cf.stderr, "unchanged; nothing written")
				return nil
			}
			ctx, cancel = cf.ctx(cmd.Context())
			defer cancel()
			r, err := written(c.Set(ctx, group, key, edited, &config.SetOpts{Comment: comment, ExpectedVersion: config.Expect(version)}))
			if errors.Is(err, config.ErrConflict) {
				return fmt.Errorf("%w (the key changed while you edited; your text was not saved)", err)
			}
			if err != nil {
				return err
			}
			return cf.print(r)
		},
	}
	cmd.Flags().StringVarP(&comment, "comment", "m", "", "comment recorded with the version")
	return cmd
}

// runEditor opens data in $EDITOR and returns the result.
func runEditor(cmd *cobra.Command, key string, data []byte) ([]byte, error) {
	dir, err := os.MkdirTemp("", "mortar-edit-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	name := filepath.Join(dir, strings.Map(func(r rune) rune {
		if r == '/' || r == os.PathSeparator || r < ' ' {
			return '_'
		}
		return r
	}, filepath.Base("x/"+key)))
	if err := os.WriteFile(name, data, 0o600); err != nil {
		return nil, err
	}
	editor := os.Getenv("VISUAL")
	if editor == "" {
		editor = os.Getenv("EDITOR")
	}
	if editor == "" {
		editor = "vi"
	}
	fields := strings.Fields(editor)
	ed := exec.CommandContext(cmd.Context(), fields[0], append(fields[1:], name)...)
	ed.Stdin, ed.Stdout, ed.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := ed.Run(); err != nil {
		return nil, fmt.Errorf("editor %s: %w", editor, err)
	}
	return os.ReadFile(name)
}

func configDeleteCmd(cf *configFlags) *cobra.Command {
	var comment string
	cmd := &cobra.Command{
		Use:   "delete GROUP/KEY",
		Short: "Delete a key (a tombstone version; history stays)",
		Args:  cfgExactArgs(1),
		RunE: cf.onKey(func(ctx context.Context, c *config.Client, group, key string) (*result, error) {
			return written(c.Delete(ctx, group, key, &config.DeleteOpts{Comment: comment}))
		}),
	}
	cmd.Flags().StringVarP(&comment, "comment", "m", "", "comment recorded with the deletion")
	return cmd
}

func configListCmd(cf *configFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "list [GROUP]",
		Short: "List the keys of a namespace, or of one group",
		Args:  cfgRangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			group := ""
			if len(args) == 1 {
				group = args[0]
			}
			return cf.run(cmd, func(ctx context.Context, c *config.Client) (*result, error) {
				keys, err := c.List(ctx, group)
				if err != nil {
					return nil, err
				}
				return &result{keys, func(w io.Writer) error {
					tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
					fmt.Fprintln(tw, "KEY\tVERSION\tTYPE\tSIZE\tUPDATED\tGRAY")
					for _, k := range keys {
						gray := ""
						if k.Gray {
							gray = "yes"
						}
						fmt.Fprintf(tw, "%s/%s\t%d\t%s\t%d\t%s\t%s\n", k.Group, k.Key, k.Version, k.ContentType, k.Size, k.Time.Format(time.RFC3339), gray)
					}
					return tw.Flush()
				}}, nil
			})
		},
	}
}

func configWatchCmd(cf *configFlags) *cobra.Command {
	var labels []string
	var address string
	cmd := &cobra.Command{
		Use:   "watch GROUP/KEY",
		Short: "Print a value, then every change, until interrupted",
		Long: `Print the current value, then each new one as it is written (one JSON
object per line with -o json). --label and --address make the watch see
gray releases as an instance with those labels or that address would.
--timeout does not apply.`,
		Example: `  mortar config watch app/db.url
  mortar config watch -o json --label canary=true app/limits`,
		Args: cfgExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			group, key, err := splitKey(args[0])
			if err != nil {
				return err
			}
			lm := map[string]string{}
			for _, l := range labels {
				k, v, ok := strings.Cut(l, "=")
				if !ok || k == "" {
					return usagef("--label %q: want KEY=VALUE", l)
				}
				lm[k] = v
			}
			c, done, err := cf.client(cmd, config.Config{Labels: lm, Address: address})
			if err != nil {
				return err
			}
			defer done()
			w, err := c.Watch(cmd.Context(), group, key)
			if err != nil {
				return err
			}
			defer w.Stop()
			for {
				v, err := w.Next(cmd.Context())
				if err != nil {
					if cmd.Context().Err() != nil {
						return nil
					}
					return err
				}
				if cf.json() {
					if err := writeJSONLine(cf.stdout, valueJSON(v)); err != nil {
						return err
					}
					continue
				}
				switch {
				case !v.Exists:
					fmt.Fprintf(cf.stdout, "# version %d: (no value)\n", v.Version)
				case v.Gray:
					fmt.Fprintf(cf.stdout, "# version %d, gray generation %d:\n%s\n", v.Version, v.GrayGeneration, v.Data)
				default:
					fmt.Fprintf(cf.stdout, "# version %d:\n%s\n", v.Version, v.Data)
				}
			}
		},
	}
	cmd.Flags().StringSliceVar(&labels, "label", nil, "instance label KEY=VALUE for gray releases (repeatable)")
	cmd.Flags().StringVar(&address, "address", "", "instance address for gray releases")
	return cmd
}

func writeJSONLine(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

func configHistoryCmd(cf *configFlags) *cobra.Command {
	var limit int
	var before uint64
	cmd := &cobra.Command{
		Use:   "history GROUP/KEY",
		Short: "List versions, newest first",
		Args:  cfgExactArgs(1),
		RunE: cf.onKey(func(ctx context.Context, c *config.Client, group, key string) (*result, error) {
			vs, more, err := c.History(ctx, group, key, &config.HistoryOpts{Before: before, Limit: limit})
			if err != nil {
				return nil, err
			}
			return &result{map[string]any{"versions": vs, "more": more}, func(w io.Writer) error {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "VERSION\tTIME\tAUTHOR\tSIZE\tCOMMENT")
				for _, v := range vs {
					comment := v.Comment
					if v.Deleted {
						comment = strings.TrimSpace("(deleted) " + comment)
					}
					fmt.Fprintf(tw, "%d\t%s\t%s\t%d\t%s\n", v.Version, v.Time.Format(time.RFC3339), v.Author, v.Size, comment)
				}
				if more {
					fmt.Fprintf(tw, "…\t(older: --before %d)\n", vs[len(vs)-1].Version)
				}
				return tw.Flush()
			}}, nil
		}),
	}
	cmd.Flags().IntVar(&limit, "limit", 20, "versions per page (at most 1000)")
	cmd.Flags().Uint64Var(&before, "before", 0, "list versions older than this one")
	return cmd
}

func configDiffCmd(cf *configFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "diff GROUP/KEY V1 [V2]",
		Short: "Show a unified diff between two versions (V2 defaults to the current one)",
		Args:  cfgRangeArgs(2, 3),
		RunE: func(cmd *cobra.Command, args []string) error {
			group, key, err := splitKey(args[0])
			if err != nil {
				return err
			}
			var vs [2]uint64
			for i, a := range args[1:] {
				if vs[i], err = strconv.ParseUint(a, 10, 64); err != nil || vs[i] == 0 {
					return usagef("version %q: want a number from 1", a)
				}
			}
			return cf.run(cmd, func(ctx context.Context, c *config.Client) (*result, error) {
				d, err := c.Diff(ctx, group, key, vs[0], vs[1])
				if err != nil {
					return nil, err
				}
				return &result{map[string]any{"from": vs[0], "to": vs[1], "diff": d}, printf("%s", d)}, nil
			})
		},
	}
}

func configRollbackCmd(cf *configFlags) *cobra.Command {
	var to uint64
	var comment string
	cmd := &cobra.Command{
		Use:     "rollback GROUP/KEY --to N",
		Short:   "Write a new version equal to version N",
		Example: `  mortar config rollback app/db.url --to 3 -m "v4 broke logins"`,
		Args:    cfgExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			group, key, err := splitKey(args[0])
			if err != nil {
				return err
			}
			if to == 0 {
				return usagef("--to N is required")
			}
			return cf.run(cmd, func(ctx context.Context, c *config.Client) (*result, error) {
				return written(c.Rollback(ctx, group, key, to, &config.RollbackOpts{Comment: comment}))
			})
		},
	}
	cmd.Flags().Uint64Var(&to, "to", 0, "the version to copy")
	cmd.Flags().StringVarP(&comment, "comment", "m", "", "comment (default: rollback to version N)")
	return cmd
}

func configGrayCmd(cf *configFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "gray",
		Short: "Gray release: a value seen only by matching instances",
		Long: `A gray release gives a key a second value that only instances matching a
rule see: a label selector (--selector "canary=true,zone in (a,b)"; terms
k=v, k!=v, k in (…), k notin (…), k, !k must all hold) and/or addresses
(--address host:port, repeatable). promote makes it the next version for
everyone; abandon drops it.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	var (
		selector, file, ctype, comment string
		addrs                          []string
	)
	set := &cobra.Command{
		Use:     "set GROUP/KEY [VALUE | -]",
		Short:   "Start or replace a gray release",
		Example: `  mortar config gray set app/limits '{"max":200}' --selector canary=true`,
		Args:    cfgRangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			group, key, err := splitKey(args[0])
			if err != nil {
				return err
			}
			data, err := readValue(cmd, args, file)
			if err != nil {
				return err
			}
			return cf.run(cmd, func(ctx context.Context, c *config.Client) (*result, error) {
				g, err := c.SetGray(ctx, group, key, data, config.Rule{Selector: selector, Addresses: addrs}, &config.GrayOpts{ContentType: ctype, Comment: comment})
				if err != nil {
					return nil, err
				}
				return &result{g, printf("gray generation %d on version %d\n", g.Generation, g.BaseVersion)}, nil
			})
		},
	}
	set.Flags().StringVar(&selector, "selector", "", "label selector of the instances that see the gray value")
	set.Flags().StringSliceVar(&addrs, "address", nil, "address of an instance that sees the gray value (repeatable)")
	set.Flags().StringVarP(&file, "file", "f", "", "read the value from this file")
	set.Flags().StringVar(&ctype, "type", "", "content type (default: the current version's)")
	set.Flags().StringVarP(&comment, "comment", "m", "", "comment")
	get := &cobra.Command{
		Use:   "get GROUP/KEY",
		Short: "Show the active gray release",
		Args:  cfgExactArgs(1),
		RunE: cf.onKey(func(ctx context.Context, c *config.Client, group, key string) (*result, error) {
			g, err := c.GetGray(ctx, group, key)
			if err != nil {
				return nil, err
			}
			val, _ := g.Value.Bytes()
			return &result{g, printf("# gray generation %d on version %d, selector %q, addresses %v\n%s\n",
				g.Generation, g.BaseVersion, g.Rule.Selector, g.Rule.Addresses, val)}, nil
		}),
	}
	end := func(use, short string, promote bool) *cobra.Command {
		var comment string
		c := &cobra.Command{
			Use:   use + " GROUP/KEY",
			Short: short,
			Args:  cfgExactArgs(1),
			RunE: cf.onKey(func(ctx context.Context, c *config.Client, group, key string) (*result, error) {
				if promote {
					return written(c.Promote(ctx, group, key, comment))
				}
				if err := c.Abandon(ctx, group, key, comment); err != nil {
					return nil, err
				}
				return &result{text: printf("abandoned\n")}, nil // the same with -o json
			}),
		}
		c.Flags().StringVarP(&comment, "comment", "m", "", "comment")
		return c
	}
	cmd.AddCommand(set, get, end("promote", "Make the gray value the next version for everyone", true),
		end("abandon", "Drop the gray release", false))
	return cmd
}

func configNSCmd(cf *configFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ns",
		Short: "Create, list and delete namespaces",
		Args:  noArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	var comment string
	create := &cobra.Command{
		Use:   "create NAMESPACE",
		Short: "Create a namespace",
		Args:  cfgExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return cf.run(cmd, func(ctx context.Context, c *config.Client) (*result, error) {
				return nil, c.CreateNamespace(ctx, args[0], comment)
			})
		},
	}
	create.Flags().StringVarP(&comment, "comment", "m", "", "comment")
	list := &cobra.Command{
		Use:   "list",
		Short: "List namespaces",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cf.run(cmd, func(ctx context.Context, c *config.Client) (*result, error) {
				nss, err := c.Namespaces(ctx)
				if err != nil {
					return nil, err
				}
				return &result{nss, func(w io.Writer) error {
					for _, ns := range nss {
						fmt.Fprintln(w, ns.NS)
					}
					return nil
				}}, nil
			})
		},
	}
	del := &cobra.Command{
		Use:   "delete NAMESPACE",
		Short: "Delete an empty namespace",
		Args:  cfgExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return cf.run(cmd, func(ctx context.Context, c *config.Client) (*result, error) {
				return nil, c.DeleteNamespace(ctx, args[0])
			})
		},
	}
	cmd.AddCommand(create, list, del)
	return cmd
}

func cfgExactArgs(n int) cobra.PositionalArgs { return cfgRangeArgs(n, n) }

func cfgRangeArgs(lo, hi int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < lo || len(args) > hi {
			if lo == hi {
				return usagef("%q takes %d argument(s), got %d", cmd.CommandPath(), lo, len(args))
			}
			return usagef("%q takes %d to %d arguments, got %d", cmd.CommandPath(), lo, hi, len(args))
		}
		return nil
	}
}
