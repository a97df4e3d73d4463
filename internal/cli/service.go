package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/internal/registrywire"
	"github.com/mortarhq/mortar/registry"
	"github.com/spf13/cobra"
)

// newServiceCmd is "mortar service": the registry commands.
func newServiceCmd(stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "service",
		Short: "Register, find and watch service instances",
		Long: `The service registry: instances of services register an address and a
port, and clients list, look up and watch them.

An instance is named SERVICE ID. SERVICE is 1 to 128 of [A-Za-z0-9_-],
starting with a letter or digit; ID is any printable text up to 256 bytes,
unique within its service (for example the host name, or host:port).

An instance registered with a lease (--ttl) must heartbeat: without one
for a whole TTL the registry evicts it. An instance without a lease stays
until it is deregistered. Its status (passing, warning or critical) comes
from its active health check, if it has one (--check); balancers skip
critical instances.`,
		Example: `  mortar service register orders orders-1 --address 10.0.0.5 --port 4242
  mortar service list
  mortar service list orders
  mortar service get orders orders-1
  mortar service watch orders
  mortar service deregister orders orders-1`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	nf := addNodeFlags(cmd)
	cmd.AddCommand(
		serviceListCmd(nf, stdout, stderr), serviceGetCmd(nf, stdout, stderr), serviceWatchCmd(nf, stdout, stderr),
		serviceRegisterCmd(nf, stdout, stderr), serviceDeregisterCmd(nf, stdout, stderr),
	)
	return cmd
}

// withRegistry dials and runs fn with a registry client whose log lines
// at level and above go to stderr. fn bounds its own requests.
func withRegistry(nf *nodeFlags, cmd *cobra.Command, stderr io.Writer, level slog.Level, fn func(c *registry.Client) error) error {
	conn, err := nf.dial(cmd.Context(), stderr)
	if err != nil {
		return err
	}
	defer conn.Close()
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	c, err := registry.New(conn, &registry.Config{Logger: log})
	if err != nil {
		return err
	}
	return fn(c)
}

// checkService returns a usage error unless s is a service name.
func checkService(s string) error {
	if err := registrywire.CheckService(s); err != nil {
		return usagef("%v", err)
	}
	return nil
}

// checkRef returns a usage error unless service and id name an instance.
func checkRef(service, id string) error {
	if err := registrywire.CheckRef(service, id); err != nil {
		return usagef("%v", err)
	}
	return nil
}

func serviceListCmd(nf *nodeFlags, stdout, stderr io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "list [SERVICE]",
		Short: "List the services, or the instances of one service",
		Long: `Without SERVICE, list every registered service with its number of
instances by status. With SERVICE, list its instances: ID, endpoint,
status, zone, version, weight, the node that owns the instance and how
long ago it registered. Critical instances are listed too.

With -o json, print the registry's records as they are.`,
		Example: `  mortar service list
  mortar service list orders
  mortar service list -o json orders`,
		Args: cfgRangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				if err := checkService(args[0]); err != nil {
					return err
				}
			}
			return withRegistry(nf, cmd, stderr, slog.LevelWarn, func(c *registry.Client) error {
				ctx, cancel := nf.ctx(cmd.Context())
				defer cancel()
				if len(args) == 0 {
					return listServices(ctx, c, nf, stdout)
				}
				return listInstances(ctx, c, nf, stdout, args[0])
			})
		},
	}
}

func listServices(ctx context.Context, c *registry.Client, nf *nodeFlags, stdout io.Writer) error {
	svcs, err := c.Services(ctx)
	if err != nil {
		return err
	}
	if nf.json() {
		return writeJSON(stdout, cmpSlice(svcs))
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tINSTANCES\tPASSING\tWARNING\tCRITICAL")
	for _, s := range svcs {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\n", s.Name, s.Instances, s.Passing, s.Warning, s.Critical)
	}
	return tw.Flush()
}

func listInstances(ctx context.Context, c *registry.Client, nf *nodeFlags, stdout io.Writer, service string) error {
	ins, err := c.List(ctx, service)
	if err != nil {
		return err
	}
	if nf.json() {
		return writeJSON(stdout, cmpSlice(ins))
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tENDPOINT\tSTATUS\tZONE\tVERSION\tWEIGHT\tNODE\tAGE")
	now := time.Now()
	for _, in := range ins {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", cell(in.ID), cell(in.Endpoint()), cell(string(in.Status)),
			cell(in.Zone), cell(in.Version), in.Weight, cell(in.Node), age(now, in.Registered))
	}
	return tw.Flush()
}

// cmpSlice returns s, or an empty slice for nil, so that JSON shows [].
func cmpSlice[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// cell makes s fit a table cell: "-" when empty, and no tabs or line
// breaks.
func cell(s string) string {
	if s == "" {
		return "-"
	}
	return strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// age is how long before now t was, to the second (to the minute past an
// hour), or "-" for the zero time.
func age(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := max(now.Sub(t), 0)
	switch {
	case d < time.Hour:
		return d.Round(time.Second).String()
	case d < 48*time.Hour:
		return strings.TrimSuffix(d.Round(time.Minute).String(), "0s")
	default:
		return fmt.Sprintf("%dd%dh", d/(24*time.Hour), d%(24*time.Hour)/time.Hour)
	}
}

func serviceGetCmd(nf *nodeFlags, stdout, stderr io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "get SERVICE ID",
		Short: "Show one instance",
		Long: `Show everything the registry holds about one instance, one "key: value"
line each: endpoint, status (and the output of the health check that last
changed it), the node that owns it, its lease, health check, metadata and
tags. With -o json, print the record as it is. An instance that is not
registered is an error (exit code 1).`,
		Example: `  mortar service get orders orders-1
  mortar service get -o json orders orders-1`,
		Args: cfgExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			service, id := args[0], args[1]
			if err := checkRef(service, id); err != nil {
				return err
			}
			return withRegistry(nf, cmd, stderr, slog.LevelWarn, func(c *registry.Client) error {
				ctx, cancel := nf.ctx(cmd.Context())
				defer cancel()
				in, err := c.Get(ctx, service, id)
				if errors.Is(err, registry.ErrNotFound) {
					return fmt.Errorf("instance %s/%s is not registered", service, id)
				}
				if err != nil {
					return err
				}
				if nf.json() {
					return writeJSON(stdout, in)
				}
				return printInstance(stdout, in)
			})
		},
	}
}

// printInstance writes in as aligned "key: value" lines.
func printInstance(w io.Writer, in *registry.Instance) error {
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k+":", cell(v)) }
	row("service", in.Service)
	row("id", in.ID)
	row("endpoint", in.Endpoint())
	row("protocol", in.Protocol)
	row("version", in.Version)
	row("zone", in.Zone)
	row("weight", strconv.Itoa(in.Weight))
	row("status", string(in.Status))
	row("output", in.Output)
	row("node", in.Node)
	registered := ""
	if !in.Registered.IsZero() {
		registered = fmt.Sprintf("%s (%s ago)", in.Registered.Local().Format(time.RFC3339), age(time.Now(), in.Registered))
	}
	row("registered", registered)
	if in.TTL > 0 {
		row("ttl", fmt.Sprintf("%v (heartbeats expected, evicted without one for that long)", in.TTL))
	} else {
		row("ttl", "none (stays until deregistered)")
	}
	row("check", describeCheck(in))
	if len(in.Metadata) == 0 {
		row("metadata", "")
	}
	for i, k := range slices.Sorted(maps.Keys(in.Metadata)) {
		key := ""
		if i == 0 {
			key = "metadata:"
		}
		fmt.Fprintf(tw, "%s\t%s\n", key, cell(k+"="+in.Metadata[k]))
	}
	row("tags", strings.Join(in.Tags, ", "))
	row("revision", strconv.FormatUint(in.Revision, 10))
	return tw.Flush()
}

// describeCheck is one line about in's active health check.
func describeCheck(in *registry.Instance) string {
	c := in.Check
	if c == nil {
		return "none"
	}
	s := string(c.Type)
	switch c.Type {
	case registry.CheckHTTP:
		s += " GET " + cmp.Or(c.URL, "http://"+net.JoinHostPort(in.Address, strconv.Itoa(in.Port))+"/health")
	case registry.CheckTCP, registry.CheckRPC:
		s += " " + in.Endpoint()
	}
	return fmt.Sprintf("%s every %v, timeout %v; warning after %d failure(s), critical after %d",
		s, c.Interval, c.Timeout, c.WarningAfter, c.CriticalAfter)
}

func serviceWatchCmd(nf *nodeFlags, stdout, stderr io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "watch [SERVICE]",
		Short: "Print changes to the instances of a service (or all) until interrupted",
		Long: `Print a "put" line for each instance registered now, then one line per
change as it happens, until interrupted (Ctrl-C):

  TIME  put     SERVICE/ID  ENDPOINT  STATUS    registered or changed
  TIME  delete  SERVICE/ID                      deregistered or evicted

A put follows every change of an instance: its status, metadata, owner.
Without SERVICE, watch every service. With -o json, print one JSON object
per line: {"time", "type", "instance"}; a delete names only the instance's
service and id.

--timeout bounds only the connection and the first read; the watch itself
runs until interrupted. If the connection to the node drops, the watch
resumes once it is back, reporting what changed meanwhile as puts and
deletes; errors on the way go to stderr.`,
		Example: `  mortar service watch orders
  mortar service watch -o json`,
		Args: cfgRangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			service := ""
			if len(args) == 1 {
				service = args[0]
				if err := checkService(service); err != nil {
					return err
				}
			}
			return withRegistry(nf, cmd, stderr, slog.LevelWarn, func(c *registry.Client) error {
				return watchServices(cmd.Context(), c, nf, service, stdout, stderr)
			})
		},
	}
}

// watchLine is one event of "service watch -o json".
type watchLine struct {
	Time     time.Time          `json:"time"`
	Type     registry.EventType `json:"type"`
	Instance any                `json:"instance"`
}

// ref names an instance in a delete event.
type ref struct {
	Service string `json:"service"`
	ID      string `json:"id"`
}

func watchServices(ctx context.Context, c *registry.Client, nf *nodeFlags, service string, stdout, stderr io.Writer) error {
	wctx, cancel := nf.ctx(ctx)
	w, err := c.Watch(wctx, service)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer w.Stop()
	enc := json.NewEncoder(stdout)
	const minBackoff, maxBackoff = 250 * time.Millisecond, 5 * time.Second
	backoff := minBackoff
	for {
		ev, err := w.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, registry.ErrStopped) {
				return err
			}
			fmt.Fprintf(stderr, "mortar: watch: %v; retrying in %v\n", err, backoff)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		backoff = minBackoff
		now := time.Now()
		if nf.json() {
			line := watchLine{Time: now, Type: ev.Type, Instance: &ev.Instance}
			if ev.Type == registry.EventDelete {
				line.Instance = ref{ev.Instance.Service, ev.Instance.ID}
			}
			if err := enc.Encode(line); err != nil {
				return err
			}
			continue
		}
		in := &ev.Instance
		line := fmt.Sprintf("%s  %-6s  %s/%s", now.Format(time.RFC3339), ev.Type, in.Service, cell(in.ID))
		if ev.Type == registry.EventPut {
			line += fmt.Sprintf("  %s  %s", in.Endpoint(), cell(string(in.Status)))
		}
		if _, err := fmt.Fprintln(stdout, line); err != nil {
			return err
		}
	}
}

func serviceRegisterCmd(nf *nodeFlags, stdout, stderr io.Writer) *cobra.Command {
	var (
		in                          registry.Instance
		meta, tags                  []string
		checkType, checkURL         string
		checkInterval, checkTimeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "register SERVICE ID --address HOST --port PORT [flags]",
		Short: "Register an instance (once, or kept alive with a lease)",
		Long: `Register the instance ID of SERVICE at --address and --port. Registering
an instance that exists replaces it.

Without --ttl (or with --ttl 0) the instance has no lease: the command
registers it and exits, and the instance stays registered until
"mortar service deregister SERVICE ID", however long that is. Give it a
--check, so that its status shows when it stops answering (a critical
instance stays listed, but balancers skip it).

With --ttl, the instance has a lease: the command stays in the
foreground and heartbeats every third of the TTL, registering the
instance again if the registry dropped it, until interrupted (Ctrl-C);
then it deregisters the instance and exits. If the command dies without
deregistering, the registry evicts the instance once a TTL passes
without a heartbeat.

--check makes the node run an active health check on the instance:
  tcp   passing while a TCP connection to the endpoint opens
  http  GET --check-url (default http://ADDRESS:PORT/health): 2xx passing,
        429 warning, anything else critical
  rpc   call _zerorpc_ping on the endpoint
One failure makes the instance warning, three in a row critical, and a
success passing again.

The command prints what it registered and, with a lease, what it does
until it exits. With -o json it prints the registered record as JSON on
stdout and the rest on stderr.`,
		Example: `  # register once; it stays until deregistered
  mortar service register orders orders-1 --address 10.0.0.5 --port 4242

  # keep it registered with a 15 s lease while this command runs
  mortar service register orders orders-1 --address 10.0.0.5 --port 4242 --ttl 15s

  mortar service register web web-1 --address web-1.internal --port 8080 --protocol http \
    --version 2.3.0 --zone eu-1 --weight 50 --meta git=4f2a1c --tag canary \
    --check http --check-url http://web-1.internal:8080/healthz --check-interval 5s`,
		Args: cfgExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			in.Service, in.ID = args[0], args[1]
			if err := checkRef(in.Service, in.ID); err != nil {
				return err
			}
			f := cmd.Flags()
			switch {
			case in.Address == "":
				return usagef("--address is required: the host name or IP clients connect to")
			case !f.Changed("port"):
				return usagef("--port is required: the port clients connect to")
			case in.Port < 1 || in.Port > 65535:
				return usagef("--port %d: want 1 to 65535", in.Port)
			case in.TTL < 0:
				return usagef("--ttl %v: want 0 (no lease) or %s to %s", in.TTL, shortDur(registry.MinTTL), shortDur(registry.MaxTTL))
			}
			if len(meta) > 0 {
				in.Metadata = make(map[string]string, len(meta))
			}
			for _, m := range meta {
				k, v, ok := strings.Cut(m, "=")
				if !ok || k == "" {
					return usagef("--meta %q: want KEY=VALUE", m)
				}
				if _, dup := in.Metadata[k]; dup {
					return usagef("--meta %q: key %q given twice", m, k)
				}
				in.Metadata[k] = v
			}
			in.Tags = tags
			if checkType == "" {
				for _, name := range []string{"check-url", "check-interval", "check-timeout"} {
					if f.Changed(name) {
						return usagef("--%s needs --check", name)
					}
				}
			} else {
				if checkURL != "" && checkType != string(registry.CheckHTTP) {
					return usagef("--check-url needs --check http")
				}
				in.Check = &registry.Check{Type: registry.CheckType(checkType), URL: checkURL, Interval: checkInterval, Timeout: checkTimeout}
			}
			// Check everything else here, so that bad input is a usage
			// error before any connection.
			probe := in
			if err := probe.Normalize(); err != nil {
				if e, ok := errors.AsType[*mortar.Error](err); ok && e.Code == mortar.CodeInvalidArgument {
					return usagef("%s", e.Message)
				}
				return err
			}
			level := slog.LevelWarn
			if in.TTL > 0 {
				level = slog.LevelInfo // "registered again" and the like
			}
			return withRegistry(nf, cmd, stderr, level, func(c *registry.Client) error {
				return register(cmd.Context(), c, nf, in, stdout, stderr)
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&in.Address, "address", "", "host name or IP clients connect to (required)")
	fl.IntVar(&in.Port, "port", 0, "port clients connect to, 1 to 65535 (required)")
	fl.StringVar(&in.Protocol, "protocol", "", `protocol clients speak: zerorpc, http, grpc, tcp, … (default "zerorpc")`)
	fl.StringVar(&in.Version, "version", "", "version of the instance's software")
	fl.StringVar(&in.Zone, "zone", "", "zone (or region, rack) the instance runs in, for zone-aware balancing")
	fl.IntVar(&in.Weight, "weight", 0, fmt.Sprintf("relative weight for balancers, 1 to %d (default %d)", registry.MaxWeight, registry.WeightDefault))
	fl.StringArrayVar(&meta, "meta", nil, "metadata KEY=VALUE (repeatable)")
	fl.StringArrayVar(&tags, "tag", nil, "tag (repeatable)")
	fl.DurationVar(&in.TTL, "ttl", 0, fmt.Sprintf("lease, %s to %s: stay in the foreground heartbeating until interrupted; 0: register once, no lease", shortDur(registry.MinTTL), shortDur(registry.MaxTTL)))
	fl.StringVar(&checkType, "check", "", "active health check the node runs: tcp, http or rpc")
	fl.StringVar(&checkURL, "check-url", "", "URL of an http check (default http://ADDRESS:PORT/health)")
	fl.DurationVar(&checkInterval, "check-interval", 0, fmt.Sprintf("time between checks, at least %v (default %v)", registry.CheckIntervalMin, registry.CheckIntervalDef))
	fl.DurationVar(&checkTimeout, "check-timeout", 0, fmt.Sprintf("time a check may take, at most the interval (default %v)", registry.CheckTimeoutDef))
	// These describe the one instance being registered: no MORTAR_PORT
	// meant for mortar server may slip in.
	withoutEnv(fl, "address", "port", "protocol", "version", "zone", "weight", "meta", "tag", "ttl",
		"check", "check-url", "check-interval", "check-timeout")
	return cmd
}

// register registers in; with a lease, it heartbeats until ctx ends and
// then deregisters.
func register(ctx context.Context, c *registry.Client, nf *nodeFlags, in registry.Instance, stdout, stderr io.Writer) error {
	rctx, cancel := nf.ctx(ctx)
	var reg *registry.Registration
	var got *registry.Instance
	var err error
	if in.TTL == 0 {
		got, err = c.RegisterOnce(rctx, in)
	} else if reg, err = c.Register(rctx, in); err == nil {
		i := reg.Instance()
		got = &i
	}
	cancel()
	if err != nil {
		return err
	}
	name := got.Service + "/" + got.ID
	// Progress goes to stdout, unless stdout has the JSON record.
	say := stdout
	if nf.json() {
		say = stderr
		if err := writeJSON(stdout, got); err != nil {
			return err
		}
	}
	fmt.Fprintf(say, "registered %s at %s, status %s\n", name, got.Endpoint(), got.Status)
	if reg == nil {
		fmt.Fprintf(say, "no lease: it stays registered until `mortar service deregister %s %s`\n", got.Service, shellQuote(got.ID))
		return nil
	}
	fmt.Fprintf(say, "lease %v: heartbeating every %v until interrupted; Ctrl-C deregisters it\n", in.TTL, (in.TTL / 3).Round(time.Millisecond))
	select {
	case <-ctx.Done():
	case <-reg.Stopped():
		return fmt.Errorf("%s: the registration stopped (connection closed); the registry evicts it within %v", name, in.TTL)
	}
	fmt.Fprintf(say, "deregistering %s\n", name)
	sctx, cancel := nf.ctx(context.WithoutCancel(ctx))
	defer cancel()
	if err := reg.Stop(sctx); err != nil {
		return fmt.Errorf("%w (the registry evicts it within %v)", err, in.TTL)
	}
	fmt.Fprintf(say, "deregistered %s\n", name)
	return nil
}

// shortDur formats d without trailing zero units: 24h, not 24h0m0s.
func shortDur(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// shellQuote quotes s for a POSIX shell if it needs it.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || strings.ContainsRune("-_.:/@%+=,", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func serviceDeregisterCmd(nf *nodeFlags, stdout, stderr io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "deregister SERVICE ID",
		Short: "Remove an instance from the registry",
		Long: `Remove an instance at once, whether it has a lease or not, and print
"deregistered SERVICE/ID", or "SERVICE/ID was not registered" if there was
nothing to remove (not an error: exit code 0). With -o json, print
{"service", "id", "deregistered": true|false}.

A process that keeps the instance registered (a running
"mortar service register --ttl", or an SDK Registration) registers it
again; stop that process instead.`,
		Example: `  mortar service deregister orders orders-1`,
		Args:    cfgExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			service, id := args[0], args[1]
			if err := checkRef(service, id); err != nil {
				return err
			}
			return withRegistry(nf, cmd, stderr, slog.LevelWarn, func(c *registry.Client) error {
				ctx, cancel := nf.ctx(cmd.Context())
				defer cancel()
				ok, err := c.Deregister(ctx, service, id)
				if err != nil {
					return err
				}
				if nf.json() {
					return writeJSON(stdout, map[string]any{"service": service, "id": id, "deregistered": ok})
				}
				if ok {
					_, err = fmt.Fprintf(stdout, "deregistered %s/%s\n", service, id)
				} else {
					_, err = fmt.Fprintf(stdout, "%s/%s was not registered\n", service, id)
				}
				return err
			})
		},
	}
}
