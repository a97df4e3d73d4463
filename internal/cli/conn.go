package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/spf13/cobra"
)

// nodeFlags are the flags of every command that talks to a node.
type nodeFlags struct {
	url     string
	timeout time.Duration
	output  string
}

// addNodeFlags adds --url, --timeout and -o to cmd and its children.
func addNodeFlags(cmd *cobra.Command) *nodeFlags {
	nf := &nodeFlags{}
	f := cmd.PersistentFlags()
	f.StringVar(&nf.url, "url", mortar.DefaultURL, "NATS URL(s) of the mortar node(s), comma-separated")
	f.DurationVar(&nf.timeout, "timeout", 10*time.Second, "give up on a request after this long")
	f.StringVarP(&nf.output, "output", "o", "table", "output format: table or json")
	return nf
}

// dial connects to the node; the caller closes the Conn.
func (nf *nodeFlags) dial(ctx context.Context, stderr io.Writer) (*mortar.Conn, error) {
	if nf.output != "table" && nf.output != "json" {
		return nil, usagef("--output %q: want table or json", nf.output)
	}
	dctx, cancel := context.WithTimeout(ctx, nf.timeout)
	defer cancel()
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c, err := mortar.Dial(dctx, nf.url, &mortar.Options{Name: "mortar-cli", Logger: log})
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w (is `mortar server` running?)", nf.url, err)
	}
	return c, nil
}

// ctx returns a context bounded by --timeout.
func (nf *nodeFlags) ctx(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(parent, nf.timeout)
}

// json reports whether -o json was asked for.
func (nf *nodeFlags) json() bool { return nf.output == "json" }

// writeJSON writes v as indented JSON.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
