package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/spf13/cobra"

	"github.com/mortarhq/mortar/rpc"
)

type callOpts struct {
	json      bool
	inspect   bool
	timeout   time.Duration
	heartbeat time.Duration
}

func newCallCmd(stdout, stderr io.Writer) *cobra.Command {
	var o callOpts
	cmd := &cobra.Command{
		Use:   "call ENDPOINT [METHOD [ARG...]]",
		Short: "Call a method on a zerorpc server (mortar, zerorpc-python, zerorpc-node)",
		Long: `Call a method on any zerorpc server and print the result; a streaming
method's items are printed one per line as they arrive.

Each ARG is a JSON literal (1, 2.5, true, null, "text", [1,2], {"k":1});
anything that is not valid JSON is sent as a string, so 'mortar call EP
echo hello' sends "hello". Without METHOD, or with --inspect, the server's
methods are listed with their arguments and docs.

Strings print as they are and other values as JSON; --json prints every
value as JSON, one per line. Binary values print as text when they are
UTF-8, else base64.`,
		Example: `  mortar call tcp://127.0.0.1:4242 add 1 2
  mortar call tcp://127.0.0.1:4242 count 3
  mortar call --json tcp://127.0.0.1:4242 echo '{"k": [1, 2]}'
  mortar call tcp://127.0.0.1:4242            # list methods`,
		Args: minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runCall(cmd.Context(), stdout, stderr, o, args)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.json, "json", false, "print results as JSON, one value per line")
	f.BoolVar(&o.inspect, "inspect", false, "list the server's methods with their docs")
	f.DurationVar(&o.timeout, "timeout", 30*time.Second, "give up on the call after this long")
	f.DurationVar(&o.heartbeat, "heartbeat", rpc.HeartbeatIntervalDefault, "heartbeat interval; must match the server's")
	f.SetInterspersed(false) // negative numbers as ARGs are not flags
	return cmd
}

func runCall(ctx context.Context, stdout, stderr io.Writer, o callOpts, args []string) error {
	if o.timeout <= 0 {
		return usagef("--timeout must be positive")
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	c, err := rpc.Dial(ctx, args[0], &rpc.ClientConfig{HeartbeatInterval: o.heartbeat, Logger: logger})
	if err != nil {
		return err
	}
	defer c.Close()
	if len(args) == 1 || o.inspect {
		return inspect(ctx, c, stdout, o.json)
	}
	callArgs := make([]any, len(args)-2)
	for i, a := range args[2:] {
		callArgs[i] = parseArg(a)
	}
	for item, err := range c.Stream(ctx, args[1], callArgs...) {
		if err != nil {
			return err
		}
		v, err := item.Value()
		if err != nil {
			return fmt.Errorf("decode reply: %w", err)
		}
		if err := printValue(stdout, v, o.json); err != nil {
			return err
		}
	}
	return nil
}

// parseArg reads a JSON literal, keeping integers as int64 and other
// numbers as float64; anything else is a string.
func parseArg(s string) any {
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil || d.More() {
		return s
	}
	if _, err := d.Token(); err != io.EOF {
		return s
	}
	return fromJSON(v)
}

func fromJSON(v any) any {
	switch v := v.(type) {
	case json.Number:
		if i, err := v.Int64(); err == nil {
			return i
		}
		f, _ := v.Float64()
		return f
	case []any:
		for i := range v {
			v[i] = fromJSON(v[i])
		}
	case map[string]any:
		for k := range v {
			v[k] = fromJSON(v[k])
		}
	}
	return v
}

// toJSON makes a decoded msgpack value encodable as JSON: binary as text
// (or base64 if not UTF-8), map keys as strings.
func toJSON(v any) any {
	switch v := v.(type) {
	case []byte:
		if utf8.Valid(v) {
			return string(v)
		}
		return base64.StdEncoding.EncodeToString(v)
	case []any:
		out := make([]any, len(v))
		for i := range v {
			out[i] = toJSON(v[i])
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[k] = toJSON(x)
		}
		return out
	case map[any]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[fmt.Sprint(toJSON(k))] = toJSON(x)
		}
		return out
	}
	return v
}

func printValue(w io.Writer, v any, asJSON bool) error {
	v = toJSON(v)
	if s, ok := v.(string); ok && !asJSON {
		_, err := fmt.Fprintln(w, s)
		return err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("print result: %w", err)
	}
	_, err := w.Write(buf.Bytes())
	return err
}

// inspection is the reply of _zerorpc_inspect.
type inspection struct {
	Name    string `msgpack:"name" json:"name"`
	Methods map[string]struct {
		Args []struct {
			Name string `msgpack:"name" json:"name"`
		} `msgpack:"args" json:"args"`
		Doc string `msgpack:"doc" json:"doc"`
	} `msgpack:"methods" json:"methods"`
}

func inspect(ctx context.Context, c *rpc.Client, w io.Writer, asJSON bool) error {
	var in inspection
	if err := c.Call(ctx, "_zerorpc_inspect", &in); err != nil {
		return err
	}
	if asJSON {
		return json.NewEncoder(w).Encode(in)
	}
	fmt.Fprintln(w, in.Name)
	names := make([]string, 0, len(in.Methods))
	for name := range in.Methods {
		names = append(names, name)
	}
	slices.Sort(names)
	sigs := make([]string, len(names))
	width := 0
	for i, name := range names {
		var args []string
		for _, a := range in.Methods[name].Args {
			args = append(args, a.Name)
		}
		sigs[i] = fmt.Sprintf("%s(%s)", name, strings.Join(args, ", "))
		width = max(width, len(sigs[i]))
	}
	for i, name := range names {
		doc, _, _ := strings.Cut(in.Methods[name].Doc, "\n")
		if _, err := fmt.Fprintf(w, "  %-*s  %s\n", width, sigs[i], doc); err != nil {
			return err
		}
	}
	return nil
}
