package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mortarhq/mortar"
	"github.com/mortarhq/mortar/internal/authwire"
	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"
)

// newAuthCmds returns the security commands: login, logout, whoami, user,
// role, apikey, session and audit.
func newAuthCmds(stdout, stderr io.Writer) []*cobra.Command {
	return []*cobra.Command{
		newLoginCmd(stdout, stderr), newLogoutCmd(stdout, stderr), newWhoamiCmd(stdout, stderr),
		newUserCmd(stdout, stderr), newRoleCmd(stdout, stderr), newAPIKeyCmd(stdout, stderr),
		newSessionCmd(stdout, stderr), newAuditCmd(stdout, stderr),
	}
}

func newLoginCmd(stdout, stderr io.Writer) *cobra.Command {
	var user, totp, session, admin string
	var fromStdin, viaOIDC bool
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Log in to a node and keep the session token for the CLI",
		Long: `Log in with a user name and password (asked for on the terminal, or read
from stdin with --password-stdin) and keep the session's token in
~/.config/mortar/credentials.json (mode 0600), for the node URL: later
commands with that --url present it. The token lasts as long as the session
(12 hours at most; 30 minutes unused by default).

A node with OIDC login (mortar server --oidc-issuer) logs users in through
their identity provider in a browser: --oidc prints the page to open, whose
answer shows a session token; --session TOKEN checks that token with the
node and keeps it.

Without a login the CLI uses the local admin credential the node writes
into its data dir, when it runs on this machine.`,
		Example: `  mortar login --user alice
  echo "$PASSWORD" | mortar login --user ci --password-stdin
  mortar login --oidc --admin http://127.0.0.1:7070
  mortar login --session eyJhbGciOiJFZERTQSIs...`,
		Args: noArgs,
	}
	nf := addNodeFlags(cmd)
	cmd.Flags().StringVar(&user, "user", "admin", "user name")
	cmd.Flags().StringVar(&totp, "totp", "", "the current code of the user's second factor, if it has one")
	cmd.Flags().BoolVar(&fromStdin, "password-stdin", false, "read the password from the first line of stdin")
	cmd.Flags().StringVar(&session, "session", "", "keep this session token (from the browser login's page) instead of logging in with a password")
	cmd.Flags().BoolVar(&viaOIDC, "oidc", false, "print the node's browser login page (OIDC), which shows a token for --session")
	cmd.Flags().StringVar(&admin, "admin", "http://127.0.0.1:7070", "the node's admin HTTP URL, for --oidc")
	withoutEnv(cmd.Flags(), "user", "totp", "password-stdin", "session", "oidc")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if nf.output != "table" && nf.output != "json" {
			return usagef("--output %q: want table or json", nf.output)
		}
		switch {
		case viaOIDC && session != "":
			return usagef("--oidc or --session, not both")
		case viaOIDC:
			if !strings.Contains(admin, "://") {
				admin = "http://" + admin
			}
			hint := ""
			if nf.url != mortar.DefaultURL {
				hint = " --url " + nf.url
			}
			fmt.Fprintf(stdout, "Open %s/auth/oidc/login in a browser and log in; then keep the token the page shows:\n  mortar login%s --session TOKEN\n", strings.TrimRight(admin, "/"), hint)
			return nil
		case session != "":
			return keepSession(cmd, nf, stdout, stderr, session)
		}
		password, err := readSecret(cmd, stderr, "Password for "+user+": ", fromStdin)
		if err != nil {
			return err
		}
		dctx, cancel := nf.ctx(cmd.Context())
		defer cancel()
		c, err := mortar.Dial(dctx, nf.url, &mortar.Options{Name: "mortar-cli", User: user, Password: password, Logger: quietLog(stderr)})
		if err != nil {
			return fmt.Errorf("log in to %s: %w", nf.url, loginError(err))
		}
		defer c.Close()
		token, expires := c.Session()
		return keepLogin(stdout, nf.url, user, token, expires)
	}
	return cmd
}

// keepSession checks a session token (from the OIDC browser login) with
// the node, and keeps it for --url.
func keepSession(cmd *cobra.Command, nf *nodeFlags, stdout, stderr io.Writer, token string) error {
	nf.token = token
	var v authwire.VerifyResponse
	if err := nf.do(cmd, stderr, "auth.verify", authwire.VerifyRequest{Credential: token}, &v); err != nil {
		return fmt.Errorf("check the session token: %w", err)
	}
	if v.Expires.IsZero() {
		return usagef("--session: not a session token (pass an API key as --token)")
	}
	return keepLogin(stdout, nf.url, v.Principal, token, v.Expires)
}

// keepLogin saves a session token of user for url, in the CLI's
// credentials file.
func keepLogin(stdout io.Writer, url, user, token string, expires time.Time) error {
	logins, _ := loadLogins()
	logins[url] = savedLogin{User: user, Token: token, Expires: expires}
	if err := saveLogins(logins); err != nil {
		return fmt.Errorf("keep the token: %w", err)
	}
	fmt.Fprintf(stdout, "logged in to %s as %s until %s\n", url, user, expires.Local().Format(time.RFC3339))
	return nil
}

// loginError says what a refused login means.
func loginError(err error) error {
	if errors.Is(err, nats.ErrAuthorization) {
		return errors.New("invalid credentials, or too many failed attempts (the node's audit log tells which)")
	}
	return err
}

func newLogoutCmd(stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "logout",
		Short: "End the session of `mortar login` and forget its token",
		Args:  noArgs,
	}
	nf := addNodeFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		logins, err := loadLogins()
		if err != nil {
			return err
		}
		l, ok := logins[nf.url]
		if !ok {
			fmt.Fprintf(stdout, "not logged in to %s\n", nf.url)
			return nil
		}
		nf.token = l.Token
		if err := nf.do(cmd, stderr, "auth.logout", struct{}{}, nil); err != nil && mortar.ErrorCode(err) != mortar.CodeUnauthenticated {
			return err
		}
		delete(logins, nf.url)
		if err := saveLogins(logins); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "logged out of %s\n", nf.url)
		return nil
	}
	return cmd
}

func newWhoamiCmd(stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "whoami",
		Short: "Show whom the CLI's credential stands for, with its roles and permissions",
		Args:  noArgs,
	}
	nf := addNodeFlags(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		var w authwire.WhoAmI
		if err := nf.do(cmd, stderr, "auth.whoami", struct{}{}, &w); err != nil {
			return err
		}
		if nf.json() {
			return writeJSON(stdout, w)
		}
		fmt.Fprintf(stdout, "user:        %s\nroles:       %s\npermissions: %s\n", w.User, strings.Join(w.Roles, ", "), strings.Join(w.Permissions, ", "))
		if w.Session != "" {
			fmt.Fprintf(stdout, "session:     %s\n", w.Session)
		}
		return nil
	}
	return cmd
}

// listFlags are the repeatable --role and --perm flags.
type grantFlags struct{ roles, perms []string }

func (g *grantFlags) add(cmd *cobra.Command, roles bool) {
	if roles {
		cmd.Flags().StringArrayVar(&g.roles, "role", nil, "a role (repeatable)")
	}
	cmd.Flags().StringArrayVar(&g.perms, "perm", nil, "a permission, Shiro style: domain:action:instance (repeatable)")
	withoutEnv(cmd.Flags(), "perm")
	if roles {
		withoutEnv(cmd.Flags(), "role")
	}
}

func newUserCmd(stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "user",
		Short: "Manage users: add, passwd, list, remove, grant, revoke",
		Long: `Users log in with a password (and a second factor if they have one), or act
through API keys. A user's permissions are its roles' and its own; see
docs/security.md for the permission syntax and the catalog.`,
		Example: `  mortar user add alice --role ops
  mortar user add orders-svc --no-password --perm 'registry:write:orders'
  echo "$NEW" | mortar user passwd alice --password-stdin
  mortar user grant alice --perm 'config:write:prod'
  mortar user list`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	nf := addNodeFlags(cmd)

	var g grantFlags
	var fromStdin, noPassword bool
	add := &cobra.Command{
		Use:   "add NAME",
		Short: "Add a user",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := authwire.UserRequest{Name: args[0], Roles: g.roles, Permissions: g.perms}
			if !noPassword {
				p, err := readSecret(cmd, stderr, "Password for "+args[0]+": ", fromStdin)
				if err != nil {
					return err
				}
				req.Password = p
			}
			if err := nf.do(cmd, stderr, "auth.user.add", req, nil); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "added user %s\n", args[0])
			return nil
		},
	}
	g.add(add, true)
	add.Flags().BoolVar(&fromStdin, "password-stdin", false, "read the password from the first line of stdin")
	add.Flags().BoolVar(&noPassword, "no-password", false, "a user that cannot log in with a password (a service, with API keys)")
	withoutEnv(add.Flags(), "password-stdin", "no-password")

	var passwdStdin bool
	passwd := &cobra.Command{
		Use:   "passwd NAME",
		Short: "Set a user's password (your own asks for the current one)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := authwire.PasswordRequest{Name: args[0]}
			var w authwire.WhoAmI
			if err := nf.do(cmd, stderr, "auth.whoami", struct{}{}, &w); err != nil {
				return err
			}
			var err error
			if w.User == args[0] && !passwdStdin {
				if req.Old, err = readSecret(cmd, stderr, "Current password: ", false); err != nil {
					return err
				}
			}
			if req.Password, err = readSecret(cmd, stderr, "New password for "+args[0]+": ", passwdStdin); err != nil {
				return err
			}
			if err := nf.do(cmd, stderr, "auth.user.passwd", req, nil); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "changed the password of %s\n", args[0])
			return nil
		},
	}
	passwd.Flags().BoolVar(&passwdStdin, "password-stdin", false, "read the new password from the first line of stdin")
	withoutEnv(passwd.Flags(), "password-stdin")

	list := &cobra.Command{
		Use:   "list",
		Short: "List users",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out struct {
				Users []authwire.User `json:"users"`
			}
			if err := nf.do(cmd, stderr, "auth.user.list", struct{}{}, &out); err != nil {
				return err
			}
			if nf.json() {
				return writeJSON(stdout, out.Users)
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tROLES\tPERMISSIONS\tPASSWORD\tTOTP")
			for _, u := range out.Users {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", u.Name, strings.Join(u.Roles, ","), strings.Join(u.Permissions, " "), yesNo(u.Password), yesNo(u.TOTP))
			}
			return tw.Flush()
		},
	}
	remove := &cobra.Command{
		Use:   "remove NAME",
		Short: "Remove a user, its sessions and its API keys",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out map[string]int
			if err := nf.do(cmd, stderr, "auth.user.remove", authwire.NameRequest{Name: args[0]}, &out); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "removed user %s (%d sessions, %d API keys)\n", args[0], out["sessions"], out["apikeys"])
			return nil
		},
	}
	cmd.AddCommand(add, passwd, list, remove, grantCmd(nf, stdout, stderr, "user", true), grantCmd(nf, stdout, stderr, "user", false),
		totpCmd(nf, stdout, stderr))
	return cmd
}

// totpCmd is "user totp enroll|confirm|disable": a user's second factor.
func totpCmd(nf *nodeFlags, stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "totp",
		Short: "A user's second factor (TOTP): enroll, confirm, disable",
		Long: `Enroll prints a secret (and its otpauth:// URL for a QR code) for an
authenticator app; confirm turns it on with a current code from the app;
from then on the user's logins need a code too (mortar login --totp).
Disable removes it: a user removing its own gives a current code.`,
		Example: `  mortar user totp enroll alice
  mortar user totp confirm alice 123456
  mortar user totp disable alice 654321`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	enroll := &cobra.Command{
		Use:   "enroll USER",
		Short: "Give a user a new second factor to confirm",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var e authwire.TOTPEnrollment
			if err := nf.do(cmd, stderr, "auth.totp.enroll", authwire.TOTPRequest{Name: args[0]}, &e); err != nil {
				return err
			}
			if nf.json() {
				return writeJSON(stdout, e)
			}
			fmt.Fprintf(stdout, "secret: %s\nurl:    %s\nconfirm with: mortar user totp confirm %s CODE\n", e.Secret, e.URL, args[0])
			return nil
		},
	}
	confirm := &cobra.Command{
		Use:   "confirm USER CODE",
		Short: "Turn an enrolled second factor on with a current code",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := nf.do(cmd, stderr, "auth.totp.confirm", authwire.TOTPRequest{Name: args[0], Code: args[1]}, nil); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "second factor on for %s\n", args[0])
			return nil
		},
	}
	disable := &cobra.Command{
		Use:   "disable USER [CODE]",
		Short: "Remove a user's second factor",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := authwire.TOTPRequest{Name: args[0]}
			if len(args) == 2 {
				req.Code = args[1]
			}
			if err := nf.do(cmd, stderr, "auth.totp.disable", req, nil); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "second factor off for %s\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(enroll, confirm, disable)
	return cmd
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// grantCmd is "user grant|revoke NAME --role … --perm …" and "role
// grant|revoke ROLE PERM…".
func grantCmd(nf *nodeFlags, stdout, stderr io.Writer, what string, grant bool) *cobra.Command {
	verb, prep := "grant", "to"
	if !grant {
		verb, prep = "revoke", "from"
	}
	var g grantFlags
	c := &cobra.Command{
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := authwire.GrantRequest{Name: args[0], Roles: g.roles, Permissions: append(g.perms, args[1:]...)}
			if len(req.Roles)+len(req.Permissions) == 0 {
				return usagef("name what to %s", verb)
			}
			if err := nf.do(cmd, stderr, "auth."+what+"."+verb, req, nil); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "%sed %s %s %s %s\n", strings.TrimSuffix(verb, "e"), strings.Join(append(req.Roles, req.Permissions...), ", "), prep, what, args[0])
			return nil
		},
	}
	if what == "user" {
		c.Use = verb + " NAME"
		c.Short = strings.ToUpper(verb[:1]) + verb[1:] + " roles (--role) and permissions (--perm) " + prep + " a user"
		g.add(c, true)
	} else {
		c.Use = verb + " ROLE PERMISSION..."
		c.Short = strings.ToUpper(verb[:1]) + verb[1:] + " permissions " + prep + " a role"
	}
	return c
}

func newRoleCmd(stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "role",
		Short: "Manage roles: add, grant, revoke, list, remove",
		Long: `A role is a named set of permissions (Shiro's wildcard permissions:
"config:read:prod", "registry:*", "task:submit:email,sms"). The built-in
role admin holds "*".`,
		Example: `  mortar role add ops 'registry:*' 'config:*' 'task:admin'
  mortar role grant ops 'push:send'
  mortar role revoke ops 'config:*'
  mortar role list`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	nf := addNodeFlags(cmd)
	add := &cobra.Command{
		Use:   "add ROLE [PERMISSION...]",
		Short: "Add a role with permissions",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := nf.do(cmd, stderr, "auth.role.add", authwire.RoleRequest{Name: args[0], Permissions: args[1:]}, nil); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "added role %s\n", args[0])
			return nil
		},
	}
	list := &cobra.Command{
		Use:   "list",
		Short: "List roles and their permissions",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out struct {
				Roles []authwire.Role `json:"roles"`
			}
			if err := nf.do(cmd, stderr, "auth.role.list", struct{}{}, &out); err != nil {
				return err
			}
			if nf.json() {
				return writeJSON(stdout, out.Roles)
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ROLE\tPERMISSIONS")
			for _, r := range out.Roles {
				fmt.Fprintf(tw, "%s\t%s\n", r.Name, strings.Join(r.Permissions, " "))
			}
			return tw.Flush()
		},
	}
	remove := &cobra.Command{
		Use:   "remove ROLE",
		Short: "Remove a role",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := nf.do(cmd, stderr, "auth.role.remove", authwire.NameRequest{Name: args[0]}, nil); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "removed role %s\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(add, grantCmd(nf, stdout, stderr, "role", true), grantCmd(nf, stdout, stderr, "role", false), list, remove)
	return cmd
}

func newAPIKeyCmd(stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "apikey",
		Short: "Manage API keys: create, list, revoke",
		Long: `An API key lets a service act as a user without a password. It is shown
once, when created; the node keeps only its SHA-256. Present it as the
SDK's Options.Token, the CLI's --token, or "Authorization: Bearer KEY".`,
		Example: `  mortar apikey create --user orders-svc --name "orders in prod"
  mortar apikey list --user orders-svc
  mortar apikey revoke 3q2-7sYhJb0aQ1Zp`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	nf := addNodeFlags(cmd)
	var req authwire.APIKeyRequest
	create := &cobra.Command{
		Use:   "create",
		Short: "Create an API key (printed once)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if req.User == "" {
				return usagef("--user is required")
			}
			var k authwire.APIKey
			if err := nf.do(cmd, stderr, "auth.apikey.create", req, &k); err != nil {
				return err
			}
			if nf.json() {
				return writeJSON(stdout, k)
			}
			fmt.Fprintf(stdout, "%s\n", k.Key)
			fmt.Fprintf(stderr, "API key %s for %s: shown this once; keep it secret\n", k.ID, k.User)
			return nil
		},
	}
	create.Flags().StringVar(&req.User, "user", "", "the user the key acts as (required)")
	create.Flags().StringVar(&req.Name, "name", "", "what the key is for")
	create.Flags().DurationVar(&req.TTL, "ttl", 0, "the key expires after this long (0: never)")
	withoutEnv(create.Flags(), "user", "name", "ttl")
	var ref authwire.APIKeyRef
	list := &cobra.Command{
		Use:   "list",
		Short: "List API keys (never the keys themselves)",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var out struct {
				Keys []authwire.APIKey `json:"apikeys"`
			}
			if err := nf.do(cmd, stderr, "auth.apikey.list", ref, &out); err != nil {
				return err
			}
			if nf.json() {
				return writeJSON(stdout, out.Keys)
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tUSER\tNAME\tCREATED\tEXPIRES")
			for _, k := range out.Keys {
				exp := "never"
				if !k.Expires.IsZero() {
					exp = k.Expires.Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.ID, k.User, k.Name, k.Created.Format(time.RFC3339), exp)
			}
			return tw.Flush()
		},
	}
	list.Flags().StringVar(&ref.User, "user", "", "only this user's keys")
	withoutEnv(list.Flags(), "user")
	revoke := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke an API key",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := nf.do(cmd, stderr, "auth.apikey.revoke", authwire.APIKeyRef{ID: args[0]}, nil); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "revoked API key %s\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}

func newSessionCmd(stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "session",
		Short: "List and revoke a user's login sessions",
		Example: `  mortar session list alice
  mortar session revoke alice            # every session of alice
  mortar session revoke alice SESSION-ID`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	nf := addNodeFlags(cmd)
	list := &cobra.Command{
		Use:   "list USER",
		Short: "List a user's live sessions",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var out struct {
				Sessions []authwire.Session `json:"sessions"`
			}
			if err := nf.do(cmd, stderr, "auth.session.list", authwire.SessionRef{User: args[0]}, &out); err != nil {
				return err
			}
			if nf.json() {
				return writeJSON(stdout, out.Sessions)
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tCREATED\tLAST USED\tEXPIRES\tADDRESS")
			for _, s := range out.Sessions {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.ID, s.Created.Format(time.RFC3339), s.LastUsed.Format(time.RFC3339), s.Expires.Format(time.RFC3339), s.Addr)
			}
			return tw.Flush()
		},
	}
	revoke := &cobra.Command{
		Use:   "revoke USER [SESSION]",
		Short: "End one session of a user, or all of them and its remember-me tokens",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref := authwire.SessionRef{User: args[0]}
			if len(args) == 2 {
				ref.ID = args[1]
			}
			var out map[string]int
			if err := nf.do(cmd, stderr, "auth.session.revoke", ref, &out); err != nil {
				return err
			}
			fmt.Fprintf(stdout, "ended %d of %s's sessions\n", out["ended"], args[0])
			return nil
		},
	}
	cmd.AddCommand(list, revoke)
	return cmd
}

func newAuditCmd(stdout, stderr io.Writer) *cobra.Command {
	var req authwire.AuditRequest
	var since time.Duration
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Show the security audit log: logins, failures, denials, changes",
		Example: `  mortar audit
  mortar audit --kind 'login.*' --since 1h
  mortar audit --kind denied -o json`,
		Args: noArgs,
	}
	nf := addNodeFlags(cmd)
	cmd.Flags().StringVar(&req.Kind, "kind", "", "only entries of this kind (login.ok, login.fail, denied, user.*, …)")
	cmd.Flags().DurationVar(&since, "since", 0, "only entries of the last duration")
	cmd.Flags().IntVar(&req.Limit, "limit", 100, "at most this many entries")
	withoutEnv(cmd.Flags(), "kind", "since", "limit")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if since > 0 {
			req.Since = time.Now().Add(-since)
		}
		var out authwire.AuditResponse
		if err := nf.do(cmd, stderr, "auth.audit", req, &out); err != nil {
			return err
		}
		if nf.json() {
			return writeJSON(stdout, out.Entries)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TIME\tKIND\tPRINCIPAL\tTARGET\tOP\tPERMISSION\tADDRESS\tDETAIL")
		for _, e := range out.Entries {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Time.Local().Format(time.RFC3339), e.Kind, e.Principal, e.Target, e.Op, e.Permission, e.Addr, e.Detail)
		}
		return tw.Flush()
	}
	return cmd
}
