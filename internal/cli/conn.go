package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"
)

// nodeFlags are the flags of every command that talks to a node.
type nodeFlags struct {
	url     string
	token   string
	runAs   string
	timeout time.Duration
	output  string
}

// addNodeFlags adds --url, --timeout and -o to cmd and its children.
func addNodeFlags(cmd *cobra.Command) *nodeFlags {
	nf := &nodeFlags{}
	f := cmd.PersistentFlags()
	f.StringVar(&nf.url, "url", mortar.DefaultURL, "NATS URL(s) of the mortar node(s), comma-separated")
	f.StringVar(&nf.token, "token", "", "credential: an API key or session token (default: the `mortar login` token for --url, else the local admin credential in $MORTAR_DATA_DIR or ./mortar-data)")
	f.StringVar(&nf.runAs, "run-as", "", "run every request as this user (the credential's user must be permitted auth:runas:USER)")
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
	c, err := mortar.Dial(dctx, nf.url, &mortar.Options{Name: "mortar-cli", Logger: quietLog(stderr), Token: nf.credential(), RunAs: nf.runAs})
	if errors.Is(err, nats.ErrAuthorization) {
		return nil, fmt.Errorf("connect to %s: the node refused the credential: log in with `mortar login`, or pass --token", nf.url)
	}
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w (is `mortar server` running?)", nf.url, err)
	}
	return c, nil
}

// quietLog logs warnings and errors to stderr.
func quietLog(stderr io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// credential is --token, else the saved login for --url; empty lets
// mortar.Dial find the local admin credential.
func (nf *nodeFlags) credential() string {
	if nf.token != "" {
		return nf.token
	}
	return savedToken(nf.url)
}

// do dials, runs op with req and decodes the answer into resp, within
// --timeout.
func (nf *nodeFlags) do(cmd *cobra.Command, stderr io.Writer, op string, req, resp any) error {
	c, err := nf.dial(cmd.Context(), stderr)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := nf.ctx(cmd.Context())
	defer cancel()
	return c.Do(ctx, op, req, resp)
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
