package cli

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/internal/authserver"
	"github.com/mortarhq/mortar/internal/node"
	"github.com/mortarhq/mortar/internal/pushserver"
	"github.com/mortarhq/mortar/internal/store"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// ExitStartup is the exit code of a server that failed to start.
const ExitStartup = 3

// startupError marks a server that could not start.
type startupError struct{ err error }

func (e startupError) Error() string { return e.err.Error() }
func (e startupError) Unwrap() error { return e.err }

func newServerCmd(stderr io.Writer) *cobra.Command {
	var (
		cfg       node.Config
		oidc      authserver.OIDCConfig
		routes    string
		seedFile  string
		dur       string
		logLevel  string
		logFormat string
	)
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run a mortar node (the control plane)",
		Long: `Run a mortar node: an embedded NATS server with JetStream holding all state
in --data-dir, the registry and config servers, and the admin HTTP API with
/healthz, /readyz and /metrics.

With no flags it runs a single node: NATS clients on 127.0.0.1:4222, the
admin API on 127.0.0.1:7070, data in ./mortar-data, every write fsynced
before it is acknowledged. State survives restarts. SIGINT or SIGTERM stops
it gracefully.

A cluster is three or more nodes, each with its own --name and
--cluster-listen, and --routes listing every node's cluster address:

  mortar server --name n1 --data-dir d1 --port 4222 --admin 127.0.0.1:7070 \
    --cluster-listen 127.0.0.1:6222 --routes 127.0.0.1:6222,127.0.0.1:6223,127.0.0.1:6224

Security is on: every client authenticates (docs/security.md). A new
installation gets the user admin, with the password of --admin-password or
a generated one printed once; the node writes a local admin credential
into DATA_DIR/admin.credential (mode 0600), which the CLI and SDK on this
machine use when given no other. With --oidc-issuer users also log in
through an OpenID Connect identity provider, in a browser at
http://ADMIN/auth/oidc/login (docs/security.md, "OIDC login").

State is then replicated on three nodes (R3): an acknowledged write
survives the loss of any one of them. --nats-url uses an existing NATS
cluster (JetStream enabled) instead of embedding one; with
--nats-callout-seed the node answers that NATS's auth callout, so
connections to it authenticate with mortar credentials
(docs/security.md, "External NATS").

Exit codes: 0 after a graceful stop, 2 for bad flags, 3 when the node
could not start.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(stderr, logLevel, logFormat)
			if err != nil {
				return usageError{err}
			}
			cfg.Logger = log
			cfg.Auth.Announce = cmd.OutOrStdout()
			cfg.Durability = node.Durability(dur)
			if routes != "" {
				cfg.Routes = strings.Split(routes, ",")
			}
			if seedFile != "" {
				if cfg.CalloutIssuerSeed != "" {
					return usagef("give --nats-callout-seed or --nats-callout-seed-file, not both")
				}
				b, err := os.ReadFile(seedFile)
				if err != nil {
					return usagef("--nats-callout-seed-file: %v", err)
				}
				cfg.CalloutIssuerSeed = strings.TrimSpace(string(b))
			}
			if oidc.Issuer != "" {
				cfg.Auth.OIDC = &oidc
			} else if f := changedWithPrefix(cmd, "oidc-"); f != "" {
				return usagef("--%s needs --oidc-issuer", f)
			}
			n, err := node.New(&cfg)
			if err != nil {
				return usageError{err}
			}
			ctx := cmd.Context()
			errc := make(chan error, 1)
			go func() { errc <- n.Run(ctx) }()
			select {
			case <-n.Ready():
				fmt.Fprintf(cmd.OutOrStdout(), "mortar %s node %q ready\n  nats:  %s\n  admin: %s\n  data:  %s\n",
					mortar.Version(), n.Name(), cmp.Or(n.ClientURL(), "in-process"), cmp.Or(adminHTTP(n.AdminAddr()), "off"), dataDirLine(cfg))
				if a := n.AdminAddr(); a != "" {
					fmt.Fprintf(cmd.OutOrStdout(), "  push:  ws://%s/push/ws (demo: http://%s/push/demo)\n", a, a)
				}
				if pa := n.PushTCPAddr(); pa != "" {
					fmt.Fprintf(cmd.OutOrStdout(), "  push:  tcp://%s\n", pa)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "  credential: %s (the CLI and SDK on this machine use it)\n", filepath.Join(cfg.DataDir, mortar.LocalCredentialFile))
				if a := n.AdminAddr(); a != "" && cfg.Auth.OIDC != nil {
					fmt.Fprintf(cmd.OutOrStdout(), "  oidc login: http://%s%s\n", a, authserver.OIDCLoginPath)
				}
				if ca := n.ClusterAddr(); ca != "" {
					fmt.Fprintf(cmd.OutOrStdout(), "  cluster routes: %s\n", ca)
				}
				return <-errc
			case err := <-errc:
				if err != nil && !errors.Is(err, ctx.Err()) {
					return startupError{err}
				}
				return err
			}
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Name, "name", "", "node name, stable across restarts (default: the host name)")
	f.StringVar(&cfg.DataDir, "data-dir", node.DataDirDefault, "directory for the node's state")
	f.StringVar(&cfg.Host, "host", node.HostDefault, "address NATS clients connect to")
	f.IntVar(&cfg.Port, "port", node.PortDefault, "NATS client port (-1 picks a random port)")
	f.StringVar(&cfg.AdminAddr, "admin", node.AdminAddrDefault, `admin HTTP address (API, /healthz, /readyz, /metrics); "off" disables it`)
	f.StringVar(&cfg.ClusterName, "cluster-name", node.ClusterNameDefault, "cluster name, the same on every node")
	f.StringVar(&cfg.ClusterListen, "cluster-listen", "", "host:port for cluster routes (enables clustering)")
	f.StringVar(&routes, "routes", "", "comma-separated cluster addresses of the nodes (host:port)")
	f.StringVar(&cfg.NATSURL, "nats-url", "", "use this external NATS cluster instead of embedding one")
	f.StringVar(&cfg.NATSUser, "nats-user", "", "with --nats-url: the node's user on that NATS (one of its auth_callout's auth_users with --nats-callout-seed)")
	f.StringVar(&cfg.NATSPassword, "nats-password", "", "with --nats-url: the password of --nats-user (better in the environment than on the command line)")
	f.StringVar(&cfg.CalloutIssuerSeed, "nats-callout-seed", "", "with --nats-url: answer that NATS's auth callout, signing with this account seed (SA…), whose public key its auth_callout names as issuer (better in the environment or --nats-callout-seed-file)")
	f.StringVar(&seedFile, "nats-callout-seed-file", "", "read --nats-callout-seed from this file (such as an nsc .nk file)")
	f.StringVar(&cfg.CalloutXKeySeed, "nats-callout-xkey-seed", "", "the curve seed (SX…) whose public key the NATS's auth_callout names as xkey, when it encrypts callout requests")
	f.StringVar(&dur, "durability", string(node.DurabilityAlways), `"always" fsyncs every write before acknowledging it; "interval" fsyncs every --sync-interval (faster, see docs/operations.md)`)
	f.DurationVar(&cfg.SyncInterval, "sync-interval", node.SyncIntervalDefault, "fsync period with --durability interval")
	f.IntVar(&cfg.Replicas, "replicas", 0, "replication factor of mortar's state (default 3 in a cluster, else 1)")
	f.Float64Var(&cfg.SelfPreservation, "self-preservation", 0, "registry: stop evicting when more than this fraction of the node's leased instances (at least 5) lapse at once (default 0.5; negative disables)")
	f.StringVar(&cfg.Push.TCPAddr, "push-tcp", node.PushTCPAddrDefault, `push gateway's length-prefixed TCP address; "off" disables it (WebSocket and SSE are on --admin)`)
	f.StringSliceVar(&cfg.Push.Secrets, "push-secret", nil, "secret(s) that sign push connect tokens, comma-separated while rotating (default: generated into DATA_DIR/push.secret)")
	f.DurationVar(&cfg.Push.Ping, "push-ping", pushserver.PingDefault, "push: ping a connection after this long without writing to it")
	f.DurationVar(&cfg.Push.Pong, "push-pong", pushserver.PongDefault, "push: close a connection silent for --push-ping plus this")
	f.DurationVar(&cfg.Push.Idle, "push-idle", 0, "push: close a connection without data either way for this long (0: never)")
	f.DurationVar(&cfg.Push.ConnectTimeout, "push-connect-timeout", pushserver.ConnectTimeoutDefault, "push: close a connection that has not sent connect by then")
	f.StringVar(&cfg.Push.SameClient, "push-same-client", pushserver.SameClientReplace, `push: a second connection with a client ID "replace"s the first, or both are "keep"t`)
	f.IntVar(&cfg.Push.MaxFrame, "push-max-frame", pushserver.MaxFrameDefault, "push: largest frame a client may send, in bytes")
	f.IntVar(&cfg.Push.SendQueue, "push-send-queue", pushserver.SendQueueDefault, "push: bytes queued to a connection before it is closed as slow")
	f.Float64Var(&cfg.Push.Rate, "push-rate", pushserver.RateDefault, "push: messages per second a client may send")
	f.IntVar(&cfg.Push.Burst, "push-burst", pushserver.BurstDefault, "push: burst of messages a client may send")
	f.IntVar(&cfg.Push.HistorySize, "push-history-size", store.PushHistorySizeDefault, "push: messages kept per channel for recovery (-1: no history)")
	f.DurationVar(&cfg.Push.HistoryTTL, "push-history-ttl", store.PushHistoryTTLDefault, "push: how long channel history is kept")
	f.StringSliceVar(&cfg.Push.TokenPerms, "push-token-perms", pushserver.TokenPermsDefault, "push: what a connection with a push token that names no perms may do (permissions, comma-separated)")
	f.StringVar(&cfg.Auth.AdminPassword, "admin-password", "", "password of the admin user a new installation creates (default: generated and printed once)")
	f.DurationVar(&cfg.Auth.SessionIdle, "session-idle", authserver.SessionIdleDefault, "a login session unused this long ends")
	f.DurationVar(&cfg.Auth.SessionMax, "session-max", authserver.SessionMaxDefault, "a login session ends this long after login, used or not")
	f.StringVar(&oidc.Issuer, "oidc-issuer", "", "log users in through this OpenID Connect provider (its issuer URL); see docs/security.md")
	f.StringVar(&oidc.ClientID, "oidc-client-id", "", "OIDC: mortar's client ID at the provider")
	f.StringVar(&oidc.ClientSecret, "oidc-client-secret", "", "OIDC: the client's secret (better in the environment than on the command line)")
	f.StringVar(&oidc.RedirectURL, "oidc-redirect-url", "", "OIDC: the callback registered at the provider, such as http://127.0.0.1:7070/auth/oidc/callback (default: http://HOST/auth/oidc/callback, HOST as the browser reached --admin)")
	f.StringSliceVar(&oidc.Scopes, "oidc-scope", nil, "OIDC: a scope to ask for (repeatable; default openid, email, profile)")
	f.StringVar(&oidc.UserClaim, "oidc-user-claim", authserver.OIDCUserClaimDefault, "OIDC: the ID token claim that names the mortar user: email, preferred_username, sub, …")
	f.StringVar(&oidc.RolesClaim, "oidc-roles-claim", "", "OIDC: a claim listing groups; each that names a mortar role grants it, at every login")
	f.StringSliceVar(&oidc.DefaultRoles, "oidc-default-role", nil, "OIDC: a role a user gets when its first login creates it (repeatable)")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&logFormat, "log-format", "text", "text or json")
	return cmd
}

// changedWithPrefix returns the name of a flag of cmd starting with
// prefix that was set (on the command line or in the environment), or "".
func changedWithPrefix(cmd *cobra.Command, prefix string) string {
	name := ""
	cmd.Flags().Visit(func(f *pflag.Flag) {
		if name == "" && strings.HasPrefix(f.Name, prefix) {
			name = f.Name
		}
	})
	return name
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

func adminHTTP(addr string) string {
	if addr == "" {
		return ""
	}
	return "http://" + addr
}

func dataDirLine(cfg node.Config) string {
	if cfg.NATSURL != "" {
		return "external NATS at " + cfg.NATSURL
	}
	return cfg.DataDir
}
